//! The opening handshake (RFC 6455 §4): the HTTP/1.1 upgrade request, the
//! 101 answer, and the error answers. Parsing borrows the input (httparse);
//! answers are written into a caller's buffer.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::frame::Parsing;

/// The GUID of §1.3 that every accept key is derived with.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The most header lines a request may have; more is a 431.
pub const MAX_HEADERS: usize = 64;

/// The most `Sec-WebSocket-Protocol` header lines a request may have.
pub const MAX_PROTOCOL_HEADERS: usize = 4;

/// The most `Sec-WebSocket-Extensions` header lines a request may have.
pub const MAX_EXTENSION_HEADERS: usize = 4;

/// A parsed request head: a WebSocket upgrade, or plain HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head<'a> {
    /// A valid WebSocket upgrade request.
    Upgrade(Request<'a>),
    /// A request that does not try to be a WebSocket upgrade (no
    /// `Upgrade: websocket` and no `Sec-WebSocket-*` header): for the plain
    /// HTTP endpoints.
    Plain {
        /// The method, e.g. `GET`.
        method: &'a str,
        /// The request target, e.g. `/metrics`.
        path: &'a str,
    },
}

/// A valid upgrade request. Everything borrows the request bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The request target, e.g. `/chat?room=1`.
    pub path: &'a str,
    /// The `Sec-WebSocket-Key` as sent (24 base64 characters).
    pub key: &'a [u8],
    /// The `Origin` header, if any.
    pub origin: Option<&'a [u8]>,
    /// The `Sec-WebSocket-Protocol` header lines (each a comma list); §4.1
    /// allows the header more than once, as if the lists were one.
    protocol_headers: [&'a [u8]; MAX_PROTOCOL_HEADERS],
    protocol_lines: usize,
    /// The `Sec-WebSocket-Extensions` header lines, in order (§9.1).
    extension_headers: [&'a [u8]; MAX_EXTENSION_HEADERS],
    extension_lines: usize,
}

impl<'a> Request<'a> {
    /// The `Sec-WebSocket-Extensions` header lines, in order: each a comma
    /// list of offers, for [`crate::proto::deflate::negotiate`].
    pub fn extension_headers(&self) -> &[&'a [u8]] {
        self.extension_headers
            .get(..self.extension_lines)
            .unwrap_or_default()
    }

    /// The subprotocols the client offers, in its order of preference.
    pub fn offered_protocols(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.protocol_headers
            .get(..self.protocol_lines)
            .unwrap_or_default()
            .iter()
            .flat_map(|line| line.split(|&b| b == b','))
            .map(trim)
            .filter(|t| !t.is_empty())
    }

    /// The first subprotocol the client offers that is in `supported`
    /// (compared exactly: subprotocol names are case-sensitive tokens).
    pub fn select_protocol<'s>(&self, supported: &'s [String]) -> Option<&'s str> {
        self.offered_protocols()
            .find_map(|offered| supported.iter().find(|s| s.as_bytes() == offered))
            .map(String::as_str)
    }

    /// Whether the `Origin` is one of `allowed` (ASCII case-insensitive, as
    /// origins are serialized lowercase but not every client does). An
    /// empty list allows every request, with or without an Origin.
    pub fn origin_allowed(&self, allowed: &[String]) -> bool {
        allowed.is_empty()
            || self
                .origin
                .map(trim)
                .is_some_and(|o| allowed.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(o)))
    }
}

/// Why a request was refused: each variant is one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandshakeError {
    /// 400: the request is not a valid WebSocket upgrade; the text says why.
    BadRequest(&'static str),
    /// 403: the Origin is not allowed.
    Forbidden,
    /// 405: not a GET.
    MethodNotAllowed,
    /// 426: a `Sec-WebSocket-Version` other than 13 (§4.2.2).
    UnsupportedVersion,
    /// 431: the request head is larger than the limit or has too many lines.
    TooLarge,
    /// 503: the server is shutting down.
    Unavailable,
}

impl HandshakeError {
    /// The HTTP status code.
    pub const fn status(self) -> u16 {
        match self {
            HandshakeError::BadRequest(_) => 400,
            HandshakeError::Forbidden => 403,
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::TooLarge => 431,
            HandshakeError::Unavailable => 503,
        }
    }

    /// The reason phrase, and the body text.
    pub const fn reason(self) -> (&'static str, &'static str) {
        match self {
            HandshakeError::BadRequest(why) => ("Bad Request", why),
            HandshakeError::Forbidden => ("Forbidden", "origin not allowed"),
            HandshakeError::MethodNotAllowed => ("Method Not Allowed", "only GET can upgrade"),
            HandshakeError::UnsupportedVersion => {
                ("Upgrade Required", "only WebSocket version 13 is supported")
            }
            HandshakeError::TooLarge => {
                ("Request Header Fields Too Large", "request head too large")
            }
            HandshakeError::Unavailable => ("Service Unavailable", "server shutting down"),
        }
    }
}

/// Whether `buf` may hold a whole request head: it contains an empty line.
/// Cheap enough to run on every read, so a request that trickles in a byte
/// at a time is parsed once, not once per byte.
pub fn has_head_end(buf: &[u8]) -> bool {
    buf.windows(2).enumerate().any(|(i, w)| match w {
        [b'\n', b'\n'] => true,
        [b'\n', b'\r'] => buf.get(i + 2) == Some(&b'\n'),
        _ => false,
    })
}

/// Parses a request head from the start of `buf`.
///
/// Returns `NeedMore` while the head is incomplete and under `max_len`
/// bytes, or `Done` with the head and its length; bytes after it are the
/// first frames. A request with `Upgrade: websocket` or any
/// `Sec-WebSocket-*` header is taken as an upgrade and checked as §4.2.1
/// says: GET, HTTP/1.1, Host, `Upgrade: websocket`, `Connection: upgrade`
/// (case-insensitive tokens in comma lists), a key of 16 base64-encoded
/// bytes, and version 13. Any other request is [`Head::Plain`].
pub fn parse_request(buf: &[u8], max_len: usize) -> Result<Parsing<Head<'_>>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let offset = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= max_len => n,
        Ok(httparse::Status::Partial) if buf.len() < max_len => return Ok(Parsing::NeedMore(1)),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooLarge),
        Err(_) => return Err(HandshakeError::BadRequest("malformed HTTP request")),
    };
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    let mut host = None;
    let mut upgrade = false;
    let mut connection = false;
    let mut key = None;
    let mut version = None;
    let mut origin = None;
    let mut protocol_headers: [&[u8]; MAX_PROTOCOL_HEADERS] = [&[]; MAX_PROTOCOL_HEADERS];
    let mut protocol_lines = 0;
    let mut extension_headers: [&[u8]; MAX_EXTENSION_HEADERS] = [&[]; MAX_EXTENSION_HEADERS];
    let mut extension_lines = 0;
    let mut websocket_header = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name
            .as_bytes()
            .get(..14)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"sec-websocket-"))
        {
            websocket_header = true;
        }
        let slot = if name.eq_ignore_ascii_case("host") {
            &mut host
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            &mut key
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            &mut version
        } else if name.eq_ignore_ascii_case("origin") {
            &mut origin
        } else {
            if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                let Some(line) = protocol_headers.get_mut(protocol_lines) else {
                    return Err(HandshakeError::BadRequest(
                        "too many Sec-WebSocket-Protocol lines",
                    ));
                };
                *line = h.value;
                protocol_lines += 1;
            } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
                let Some(line) = extension_headers.get_mut(extension_lines) else {
                    return Err(HandshakeError::BadRequest(
                        "too many Sec-WebSocket-Extensions lines",
                    ));
                };
                *line = h.value;
                extension_lines += 1;
            } else if name.eq_ignore_ascii_case("upgrade") {
                // Upgrade and Connection may be repeated: tokens in any count.
                upgrade |= has_token(h.value, b"websocket");
            } else if name.eq_ignore_ascii_case("connection") {
                connection |= has_token(h.value, b"upgrade");
            }
            continue;
        };
        if slot.replace(h.value).is_some() {
            return Err(HandshakeError::BadRequest("repeated header"));
        }
    }
    if !upgrade && !websocket_header {
        // `*` (as in OPTIONS *) is left for the HTTP side to refuse.
        let path = origin_form(target).unwrap_or(target);
        return Ok(Parsing::Done {
            value: Head::Plain { method, path },
            offset,
        });
    }
    let path =
        origin_form(target).ok_or(HandshakeError::BadRequest("request target must be a path"))?;
    if method != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if req.version != Some(1) {
        return Err(HandshakeError::BadRequest("HTTP/1.1 required"));
    }
    if host.is_none() {
        return Err(HandshakeError::BadRequest("missing Host"));
    }
    if !upgrade {
        return Err(HandshakeError::BadRequest("missing Upgrade: websocket"));
    }
    if !connection {
        return Err(HandshakeError::BadRequest("missing Connection: upgrade"));
    }
    match version.map(trim) {
        Some(b"13") => {}
        Some(_) => return Err(HandshakeError::UnsupportedVersion),
        None => return Err(HandshakeError::BadRequest("missing Sec-WebSocket-Version")),
    }
    let key = trim(key.ok_or(HandshakeError::BadRequest("missing Sec-WebSocket-Key"))?);
    // §4.2.1: "a base64-encoded value that, when decoded, is 16 bytes".
    let mut decoded = [0u8; 18];
    if key.len() != 24 || BASE64.decode_slice(key, &mut decoded) != Ok(16) {
        return Err(HandshakeError::BadRequest(
            "Sec-WebSocket-Key is not 16 bytes of base64",
        ));
    }
    Ok(Parsing::Done {
        value: Head::Upgrade(Request {
            path,
            key,
            origin,
            protocol_headers,
            protocol_lines,
            extension_headers,
            extension_lines,
        }),
        offset,
    })
}

/// The path of a request target in origin form (`/chat?x`) or absolute
/// form (`http://host/chat?x`, which RFC 9112 §3.2.2 says a server must
/// accept; `ws://` and `wss://` too, as RFC 6455 §3 names them). `None` for
/// anything else.
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let (scheme, rest) = target.split_once("://")?;
    if !["http", "https", "ws", "wss"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return None;
    }
    // The authority ends at the first '/', '?' or the end; the path is
    // what follows ("/" when empty).
    match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => Some(&rest[i..]),
        _ => Some("/"),
    }
}

/// The `Sec-WebSocket-Accept` value for a key: base64(SHA-1(key ++ GUID)).
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let digest = Sha1::new().chain_update(key).chain_update(GUID).finalize();
    let mut out = [0u8; 28];
    // 20 bytes of digest are exactly 28 characters of padded base64.
    let _ = BASE64.encode_slice(digest, &mut out);
    out
}

/// Appends the 101 answer to a request with `key`, naming `protocol` if one
/// was chosen.
pub fn write_accept(out: &mut Vec<u8>, key: &[u8], protocol: Option<&str>) {
    write_accept_with(out, key, protocol, None);
}

/// [`write_accept`], also naming the accepted `extensions` (the value of a
/// `Sec-WebSocket-Extensions` header) if any.
pub fn write_accept_with(
    out: &mut Vec<u8>,
    key: &[u8],
    protocol: Option<&str>,
    extensions: Option<&str>,
) {
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.extend_from_slice(&accept_key(key));
    if let Some(p) = protocol {
        out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
    }
    if let Some(e) = extensions {
        out.extend_from_slice(b"\r\nSec-WebSocket-Extensions: ");
        out.extend_from_slice(e.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// Appends a complete HTTP answer with a short plain-text body and
/// `Connection: close`.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    reason: &str,
    extra_headers: &str,
    body: &str,
) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}\n",
        body.len() + 1
    );
}

/// Appends the answer for a refused request.
pub fn write_error(out: &mut Vec<u8>, err: HandshakeError) {
    let (reason, body) = err.reason();
    let extra = match err {
        // §4.2.2: tell the client which versions we speak.
        HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version: 13\r\n",
        HandshakeError::MethodNotAllowed => "Allow: GET\r\n",
        HandshakeError::Unavailable => "Retry-After: 1\r\n",
        _ => "",
    };
    write_response(out, err.status(), reason, extra, body);
}

/// Appends a client's upgrade request.
pub fn write_request(out: &mut Vec<u8>, host: &str, path: &str, key: &[u8; 24]) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\r\n\r\n");
}

/// A client key from 16 bytes of nonce.
pub fn client_key(nonce: [u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    let _ = BASE64.encode_slice(nonce, &mut out);
    out
}

/// Why a server's answer to an upgrade request is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// Not parseable as HTTP.
    Malformed,
    /// A status other than 101.
    Status(u16),
    /// 101, but the accept key does not match.
    BadAccept,
}

/// Parses a server's answer to a request sent with `key` (client side).
/// `Done` carries the head's length; what follows it is the first frames.
pub fn parse_response(buf: &[u8], key: &[u8; 24]) -> Result<Parsing<()>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let offset = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parsing::NeedMore(1)),
        Err(_) => return Err(ResponseError::Malformed),
    };
    match resp.code {
        Some(101) => {}
        Some(code) => return Err(ResponseError::Status(code)),
        None => return Err(ResponseError::Malformed),
    }
    let expected = accept_key(key);
    let ok = resp
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept") && trim(h.value) == expected);
    if !ok {
        return Err(ResponseError::BadAccept);
    }
    Ok(Parsing::Done { value: (), offset })
}

/// Whether a comma-separated header value contains `token` (ASCII case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request(extra: &str) -> String {
        format!("GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n")
    }

    fn parse(s: &str) -> Result<Parsing<Head<'_>>, HandshakeError> {
        parse_request(s.as_bytes(), 8192)
    }

    fn upgrade(s: &str) -> Request<'_> {
        match parse(s) {
            Ok(Parsing::Done {
                value: Head::Upgrade(r),
                ..
            }) => r,
            other => panic!("expected an upgrade, got {other:?}"),
        }
    }

    #[test]
    fn rfc_example_key_gives_the_rfc_accept() {
        // RFC 6455 §1.3.
        assert_eq!(&accept_key(KEY.as_bytes()), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn valid_request_is_accepted() {
        let req =
            request("Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n");
        match parse(&req) {
            Ok(Parsing::Done {
                value: Head::Upgrade(value),
                offset,
            }) => {
                assert_eq!(offset, req.len());
                assert_eq!(value.path, "/chat");
                assert_eq!(value.key, KEY.as_bytes());
                assert_eq!(value.origin, Some(&b"http://example.com"[..]));
                let offered: Vec<&[u8]> = value.offered_protocols().collect();
                assert_eq!(offered, [&b"chat"[..], b"superchat"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tokens_are_case_insensitive_and_in_lists() {
        let req = format!("GET / HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: {KEY}\r\nsec-websocket-version: 13\r\n\r\n");
        assert!(matches!(parse(&req), Ok(Parsing::Done { .. })));
    }

    #[test]
    fn every_prefix_of_a_request_needs_more() {
        let req = request("");
        for cut in 0..req.len() {
            assert_eq!(parse(&req[..cut]), Ok(Parsing::NeedMore(1)), "cut at {cut}");
        }
    }

    #[test]
    fn bytes_after_the_head_are_not_consumed() {
        let mut req = request("").into_bytes();
        let head = req.len();
        req.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        assert!(
            matches!(parse_request(&req, 8192), Ok(Parsing::Done { offset, .. }) if offset == head)
        );
    }

    #[test]
    fn head_end_detection() {
        assert!(has_head_end(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(has_head_end(b"GET / HTTP/1.1\n\n"));
        assert!(!has_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(!has_head_end(b"\n\r"));
    }

    fn status_of(s: &str) -> u16 {
        match parse(s) {
            Err(e) => e.status(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn requests_without_websocket_headers_are_plain_http() {
        for (req, method, path) in [
            (
                "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET",
                "/metrics",
            ),
            ("HEAD /healthz?x=1 HTTP/1.0\r\n\r\n", "HEAD", "/healthz?x=1"),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n",
                "POST",
                "/",
            ),
        ] {
            assert_eq!(
                parse(req),
                Ok(Parsing::Done {
                    value: Head::Plain { method, path },
                    offset: req.len()
                })
            );
        }
    }

    #[test]
    fn absolute_form_targets_are_accepted() {
        let req = request("").replace("GET /chat ", "GET ws://server.example.com/chat?x=1 ");
        assert_eq!(upgrade(&req).path, "/chat?x=1");
        let plain = "GET http://x:9001/healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(
            parse(plain),
            Ok(Parsing::Done {
                value: Head::Plain {
                    path: "/healthz",
                    ..
                },
                ..
            })
        ));
        let bare = "GET HTTP://x HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(
            parse(bare),
            Ok(Parsing::Done {
                value: Head::Plain { path: "/", .. },
                ..
            })
        ));
        // OPTIONS * is plain HTTP, for the HTTP side to refuse.
        let star = "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(
            parse(star),
            Ok(Parsing::Done {
                value: Head::Plain {
                    method: "OPTIONS",
                    path: "*"
                },
                ..
            })
        ));
        assert_eq!(
            status_of(&request("").replace("/chat", "ftp://x/chat")),
            400
        );
    }

    #[test]
    fn protocol_headers_may_repeat_and_the_clients_order_wins() {
        let req =
            request("Sec-WebSocket-Protocol: a, chat\r\nSec-WebSocket-Protocol: superchat\r\n");
        let r = upgrade(&req);
        let supported = ["superchat".to_string(), "chat".to_string()];
        assert_eq!(r.select_protocol(&supported), Some("chat"));
        assert_eq!(
            r.select_protocol(&["superchat".to_string()]),
            Some("superchat")
        );
        assert_eq!(
            r.select_protocol(&["Chat".to_string()]),
            None,
            "names are case-sensitive"
        );
        assert_eq!(r.select_protocol(&[]), None);
        let five = request(&"Sec-WebSocket-Protocol: x\r\n".repeat(MAX_PROTOCOL_HEADERS + 1));
        assert_eq!(status_of(&five), 400);
    }

    #[test]
    fn extension_lines_are_kept_in_order() {
        let req = request(
            "Sec-WebSocket-Extensions: foo, permessage-deflate\r\nsec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n",
        );
        assert_eq!(
            upgrade(&req).extension_headers(),
            [
                &b"foo, permessage-deflate"[..],
                b"permessage-deflate; client_max_window_bits"
            ]
        );
        assert!(upgrade(&request("")).extension_headers().is_empty());
        let five = request(&"Sec-WebSocket-Extensions: x\r\n".repeat(MAX_EXTENSION_HEADERS + 1));
        assert_eq!(status_of(&five), 400);
        let mut out = Vec::new();
        write_accept_with(&mut out, KEY.as_bytes(), None, Some("permessage-deflate"));
        assert!(out.ends_with(b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"));
    }

    #[test]
    fn origin_checks() {
        let allowed = ["https://example.com".to_string()];
        let with = request("Origin: HTTPS://Example.com\r\n");
        assert!(upgrade(&with).origin_allowed(&allowed));
        assert!(!upgrade(&request("Origin: https://evil.example\r\n")).origin_allowed(&allowed));
        assert!(
            !upgrade(&request("")).origin_allowed(&allowed),
            "no Origin is refused when a list is set"
        );
        assert!(
            upgrade(&request("")).origin_allowed(&[]),
            "no list allows all"
        );
    }

    #[test]
    fn wrong_version_is_426() {
        assert_eq!(
            status_of(&request("").replace("Version: 13", "Version: 8")),
            426
        );
    }

    #[test]
    fn not_get_is_405() {
        assert_eq!(status_of(&request("").replace("GET", "POST")), 405);
    }

    #[test]
    fn malformed_requests_are_400() {
        let req = request("");
        for bad in [
            req.replace("HTTP/1.1", "HTTP/1.0"),
            req.replace("Host: server.example.com\r\n", ""),
            req.replace("Upgrade: websocket\r\n", ""),
            req.replace("Upgrade: websocket", "Upgrade: h2c"),
            req.replace("Connection: Upgrade", "Connection: keep-alive"),
            req.replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), ""),
            req.replace(KEY, "dGhlIHNhbXBsZSBub25jZQ"),
            req.replace(KEY, "dGhlIHNhbXBsZSBub25jZXg="),
            req.replace("Sec-WebSocket-Version: 13\r\n", ""),
            req.replace("/chat", "*"),
            request(&format!("Sec-WebSocket-Key: {KEY}\r\n")),
            "GET / HTTP/1.1\r\nHost\r\n\r\n".to_string(),
            "\x00\x01\x02\r\n\r\n".to_string(),
        ] {
            assert_eq!(status_of(&bad), 400, "{bad:?}");
        }
    }

    #[test]
    fn oversized_head_is_431() {
        let big = request(&format!("X-Filler: {}\r\n", "a".repeat(9000)));
        assert_eq!(status_of(&big), 431);
        // Still incomplete at the limit: also 431, not a wait for more.
        assert_eq!(
            parse_request(&big.as_bytes()[..8192], 8192),
            Err(HandshakeError::TooLarge)
        );
        let many = request(&"X: y\r\n".repeat(MAX_HEADERS));
        assert_eq!(status_of(&many), 431);
    }

    #[test]
    fn error_answers_are_complete_http() {
        for err in [
            HandshakeError::BadRequest("why"),
            HandshakeError::Forbidden,
            HandshakeError::MethodNotAllowed,
            HandshakeError::UnsupportedVersion,
            HandshakeError::TooLarge,
            HandshakeError::Unavailable,
        ] {
            let mut out = Vec::new();
            write_error(&mut out, err);
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut resp = httparse::Response::new(&mut headers);
            let n = match resp.parse(&out) {
                Ok(httparse::Status::Complete(n)) => n,
                other => panic!("{other:?}"),
            };
            assert_eq!(resp.code, Some(err.status()));
            let len: usize = resp
                .headers
                .iter()
                .find(|h| h.name == "Content-Length")
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .unwrap();
            assert_eq!(out.len() - n, len);
            if err == HandshakeError::UnsupportedVersion {
                assert!(resp
                    .headers
                    .iter()
                    .any(|h| h.name == "Sec-WebSocket-Version" && h.value == b"13"));
            }
        }
    }

    #[test]
    fn client_request_and_server_answer_agree() {
        let key = client_key([7; 16]);
        let mut req = Vec::new();
        write_request(&mut req, "127.0.0.1:9001", "/", &key);
        let parsed = match parse_request(&req, 8192) {
            Ok(Parsing::Done {
                value: Head::Upgrade(value),
                ..
            }) => value,
            other => panic!("{other:?}"),
        };
        let mut resp = Vec::new();
        write_accept(&mut resp, parsed.key, None);
        assert_eq!(
            parse_response(&resp, &key),
            Ok(Parsing::Done {
                value: (),
                offset: resp.len()
            })
        );
        assert_eq!(
            parse_response(&resp, &client_key([8; 16])),
            Err(ResponseError::BadAccept)
        );
        assert_eq!(
            parse_response(&resp[..resp.len() - 1], &key),
            Ok(Parsing::NeedMore(1))
        );
        let mut refused = Vec::new();
        write_error(&mut refused, HandshakeError::UnsupportedVersion);
        assert_eq!(
            parse_response(&refused, &key),
            Err(ResponseError::Status(426))
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
                let _ = parse_request(&bytes, 512);
                let _ = has_head_end(&bytes);
            }
        }
    }
}
