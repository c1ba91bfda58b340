//! The upgrade request wsload sends, with what `--origin`, `--protocol`,
//! `--deflate` and `-H` add to it, and the checks of the subprotocol and
//! extensions the server chose.
//!
//! The extra header lines are validated and encoded once per run; each
//! connection copies them into its request, with its token if the run
//! sends one ([`crate::auth`]).

use crate::auth::{with_query_token, Credentials};
use crate::deflate::{parse_answer, Agreement, AnswerError};

/// Header lines wsload writes itself: `-H` may not repeat or replace them.
const OWN_HEADERS: [&str; 5] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
];

/// One `-H 'Name: value'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The field name, as given.
    pub name: String,
    /// The value, without surrounding whitespace.
    pub value: String,
}

/// RFC 9110 §5.6.2 `tchar`: what a header name or a subprotocol is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// A field value may hold any visible byte, spaces and tabs, but no other
/// control character: a CR or LF would end the line early.
fn check_value(what: &str, v: &str) -> Result<(), String> {
    match v.bytes().find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        Some(b) => Err(format!(
            "{what} '{}' holds the control character 0x{b:02x}",
            v.escape_debug()
        )),
        None => Ok(()),
    }
}

/// Parses a `-H` argument.
pub fn parse_header(s: &str) -> Result<Header, String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err(format!("'{s}' is not a header: expected 'Name: value'"));
    };
    if !is_token(name) {
        return Err(format!(
            "'{name}' is not a header name (letters, digits and !#$%&'*+-.^_`|~, no spaces)"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if OWN_HEADERS.contains(&lower.as_str()) {
        return Err(format!(
            "{name} is part of every upgrade request: wsload writes it"
        ));
    }
    match lower.as_str() {
        "origin" => return Err("give the Origin with --origin".into()),
        "sec-websocket-protocol" => return Err("give subprotocols with --protocol".into()),
        "sec-websocket-extensions" => {
            return Err(
                "offer permessage-deflate with --deflate; wsload speaks no other extension".into(),
            )
        }
        _ => {}
    }
    let value = value.trim_matches([' ', '\t']);
    check_value("the header value", value)?;
    Ok(Header {
        name: name.to_string(),
        value: value.to_string(),
    })
}

/// Parses an `--origin` argument.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let v = s.trim_matches([' ', '\t']);
    if v.is_empty() {
        return Err("the Origin is empty".into());
    }
    check_value("the Origin", v)?;
    Ok(v.to_string())
}

/// Parses a `--protocol` argument: one subprotocol name, a token.
pub fn parse_protocol(s: &str) -> Result<String, String> {
    if is_token(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a subprotocol name (letters, digits and !#$%&'*+-.^_`|~; give one per --protocol)"
        ))
    }
}

/// What a run adds to every upgrade request, and what it expects back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upgrade {
    /// Extra header lines, each ending in CRLF.
    lines: Vec<u8>,
    /// The subprotocols offered, in order of preference.
    protocols: Vec<String>,
    /// permessage-deflate offered (`--deflate`).
    deflate: bool,
    /// The token each request carries, if any.
    credentials: Option<Credentials>,
}

/// Why a 101 response is not acceptable for the request that was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolMismatch {
    /// Subprotocols were offered and the server chose none.
    NoneChosen,
    /// The server chose one that was not offered (RFC 6455 §4.1: the
    /// client must fail the connection).
    NotOffered(String),
}

impl Upgrade {
    /// The extras for `origin`, `protocols` and `headers`, already checked
    /// by the parsers above.
    /// With `deflate`, permessage-deflate is offered too.
    pub fn new(
        origin: Option<&str>,
        protocols: &[String],
        headers: &[Header],
        deflate: bool,
    ) -> Upgrade {
        let mut lines = Vec::new();
        let mut line = |name: &str, value: &str| {
            lines.extend_from_slice(name.as_bytes());
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value.as_bytes());
            lines.extend_from_slice(b"\r\n");
        };
        if let Some(o) = origin {
            line("Origin", o);
        }
        if !protocols.is_empty() {
            line("Sec-WebSocket-Protocol", &protocols.join(", "));
        }
        if deflate {
            line("Sec-WebSocket-Extensions", crate::deflate::OFFER);
        }
        for h in headers {
            line(&h.name, &h.value);
        }
        Upgrade {
            lines,
            protocols: protocols.to_vec(),
            deflate,
            credentials: None,
        }
    }

    /// The same, each request carrying a token from `credentials`.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Upgrade {
        self.credentials = credentials;
        self
    }

    /// Appends the upgrade request for `path` on `host`, with `key`, and
    /// the token (minted now, if minted) in the header or the query. Fails
    /// only if a token cannot be minted.
    pub fn write_request(
        &self,
        out: &mut Vec<u8>,
        host: &str,
        path: &str,
        key: &[u8; 24],
    ) -> Result<(), String> {
        let token = self
            .credentials
            .as_ref()
            .map(Credentials::token)
            .transpose()?;
        let (path, bearer) = match (&self.credentials, token) {
            (Some(c), Some(t)) if c.in_query => (with_query_token(path, &t), None),
            (_, t) => (path.to_string(), t),
        };
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
        out.extend_from_slice(key);
        out.extend_from_slice(b"\r\n");
        if let Some(t) = bearer {
            out.extend_from_slice(b"Authorization: Bearer ");
            out.extend_from_slice(t.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&self.lines);
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Checks the subprotocol a 101 response head agreed to.
    pub fn check_response(&self, head: &[u8]) -> Result<(), ProtocolMismatch> {
        let chosen = header_value(head, "sec-websocket-protocol");
        match chosen {
            None if self.protocols.is_empty() => Ok(()),
            None => Err(ProtocolMismatch::NoneChosen),
            Some(p) if self.protocols.iter().any(|o| o.as_bytes() == p) => Ok(()),
            Some(p) => Err(ProtocolMismatch::NotOffered(
                String::from_utf8_lossy(p).chars().take(100).collect(),
            )),
        }
    }

    /// The subprotocols offered.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Whether permessage-deflate is offered.
    pub fn deflate(&self) -> bool {
        self.deflate
    }

    /// Checks the extensions a 101 response head agreed to (every
    /// `Sec-WebSocket-Extensions` line): `Ok(None)` if none. Without
    /// `--deflate` any extension is one never offered.
    pub fn check_extensions(&self, head: &[u8]) -> Result<Option<Agreement>, AnswerError> {
        let mut all = String::new();
        for v in header_values(head, "sec-websocket-extensions") {
            all.push_str(&String::from_utf8_lossy(v));
            all.push(',');
        }
        match parse_answer(&all)? {
            Some(_) if !self.deflate => Err(AnswerError::NotOffered("permessage-deflate".into())),
            agreed => Ok(agreed),
        }
    }
}

/// The trimmed value of the first header line named `name` (lowercase) in
/// a response head.
fn header_value<'a>(head: &'a [u8], name: &'a str) -> Option<&'a [u8]> {
    header_values(head, name).next()
}

/// The trimmed values of every header line named `name` (lowercase).
fn header_values<'a>(head: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    head.split(|&b| b == b'\n').skip(1).filter_map(move |line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (n, v) = line.split_at(colon);
        n.eq_ignore_ascii_case(name.as_bytes())
            .then(|| v[1..].trim_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsd::proto::frame::Parsing;
    use wsd::proto::handshake::{parse_request, Head};

    const KEY: &[u8; 24] = b"dGhlIHNhbXBsZSBub25jZQ==";

    fn upgrade(origin: Option<&str>, protocols: &[&str], headers: &[&str]) -> Upgrade {
        let protocols: Vec<String> = protocols.iter().map(|p| p.to_string()).collect();
        let headers: Vec<Header> = headers
            .iter()
            .map(|h| parse_header(h).expect("valid header"))
            .collect();
        Upgrade::new(origin, &protocols, &headers, false)
    }

    #[test]
    fn the_request_carries_origin_protocols_and_headers_to_a_server() {
        let u = upgrade(
            Some("https://a.example"),
            &["chat", "superchat"],
            &["Authorization: Bearer x y", "X-Trace:1"],
        );
        let mut req = Vec::new();
        u.write_request(&mut req, "127.0.0.1:9001", "/room?x=1", KEY)
            .expect("no token to mint");
        let text = String::from_utf8(req.clone()).expect("ascii");
        assert!(text.contains("\r\nAuthorization: Bearer x y\r\n"), "{text}");
        assert!(text.contains("\r\nX-Trace: 1\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"));
        let Ok(Parsing::Done {
            value: Head::Upgrade(r),
            offset,
        }) = parse_request(&req, 8192)
        else {
            panic!("not an upgrade: {text}");
        };
        assert_eq!(offset, req.len());
        assert_eq!(r.path, "/room?x=1");
        assert_eq!(r.origin, Some(&b"https://a.example"[..]));
        let offered: Vec<_> = r.offered_protocols().collect();
        assert_eq!(offered, [&b"chat"[..], &b"superchat"[..]]);
    }

    #[test]
    fn without_extras_the_request_is_the_plain_upgrade() {
        let mut ours = Vec::new();
        Upgrade::default()
            .write_request(&mut ours, "h:1", "/", KEY)
            .expect("no token to mint");
        let mut theirs = Vec::new();
        wsd::proto::handshake::write_request(&mut theirs, "h:1", "/", KEY);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn headers_that_would_break_the_request_are_refused() {
        for bad in [
            "no colon",
            "Bad Name: x",
            ": empty name",
            "X-A: line\r\nX-B: injected",
            "X-A: nul\0",
            "Host: elsewhere",
            "sec-websocket-key: x",
            "Origin: https://a.example",
            "Sec-WebSocket-Protocol: chat",
            "Sec-WebSocket-Extensions: permessage-deflate",
        ] {
            assert!(parse_header(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_header("X-Empty:"),
            Ok(Header {
                name: "X-Empty".into(),
                value: String::new()
            })
        );
        assert!(parse_origin("https://a.example\n").is_err());
        assert!(parse_origin("  ").is_err());
        assert!(parse_protocol("chat, superchat").is_err());
        assert!(parse_protocol("").is_err());
        assert_eq!(parse_protocol("v2.chat"), Ok("v2.chat".into()));
    }

    #[test]
    fn the_chosen_subprotocol_must_be_one_offered() {
        let head = |p: &str| {
            format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n{p}\r\n")
                .into_bytes()
        };
        let none = Upgrade::default();
        let chat = upgrade(None, &["chat", "v2"], &[]);
        assert_eq!(none.check_response(&head("X: y")), Ok(()));
        assert_eq!(
            none.check_response(&head("Sec-WebSocket-Protocol: chat")),
            Err(ProtocolMismatch::NotOffered("chat".into()))
        );
        assert_eq!(
            chat.check_response(&head("sec-websocket-protocol:  v2 ")),
            Ok(())
        );
        assert_eq!(
            chat.check_response(&head("Sec-WebSocket-Protocol: other")),
            Err(ProtocolMismatch::NotOffered("other".into()))
        );
        assert_eq!(
            chat.check_response(&head("X: y")),
            Err(ProtocolMismatch::NoneChosen)
        );
    }

    #[test]
    fn deflate_is_offered_and_every_extensions_line_is_checked() {
        let on = Upgrade::new(None, &[], &[], true);
        let mut req = Vec::new();
        on.write_request(&mut req, "h:1", "/", KEY)
            .expect("no token to mint");
        let text = String::from_utf8(req).expect("ascii");
        assert!(
            text.contains(
                "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            ),
            "{text}"
        );
        let head = |lines: &str| {
            format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n{lines}\r\n")
                .into_bytes()
        };
        assert_eq!(on.check_extensions(&head("X: y\r\n")), Ok(None));
        let agreed = on.check_extensions(&head(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n",
        ));
        assert_eq!(
            agreed.map(|a| a.map(|a| a.client_max_window_bits)),
            Ok(Some(Some(10)))
        );
        // Two lines are one list: permessage-deflate twice is refused.
        let twice = head(
            "Sec-WebSocket-Extensions: permessage-deflate\r\nsec-websocket-extensions: permessage-deflate\r\n",
        );
        assert_eq!(on.check_extensions(&twice), Err(AnswerError::Twice));
        // Without --deflate nothing was offered, so nothing may be agreed.
        let off = Upgrade::default();
        assert_eq!(off.check_extensions(&head("X: y\r\n")), Ok(None));
        assert!(matches!(
            off.check_extensions(&head("Sec-WebSocket-Extensions: permessage-deflate\r\n")),
            Err(AnswerError::NotOffered(_))
        ));
    }
}
