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
    /// The `Authorization` header, if any (a bearer token for
    /// [`crate::auth`]); like every single-valued header, given twice it is
    /// a 400.
    pub authorization: Option<&'a [u8]>,
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

    /// The subprotocol to answer with: the first one the client offers
    /// that is in `supported`, or none. With `required`, an upgrade that
    /// offers none of `supported` (or offers nothing) is refused with
    /// [`HandshakeError::NoProtocol`] instead of accepted without one.
    pub fn negotiate_protocol<'s>(
        &self,
        supported: &'s [String],
        required: bool,
    ) -> Result<Option<&'s str>, HandshakeError> {
        match self.select_protocol(supported) {
            None if required => Err(HandshakeError::NoProtocol),
            chosen => Ok(chosen),
        }
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
    /// 400: a subprotocol is required and none offered is accepted.
    NoProtocol,
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
            HandshakeError::BadRequest(_) | HandshakeError::NoProtocol => 400,
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
            HandshakeError::NoProtocol => (
                "Bad Request",
                "a subprotocol is required and none offered is accepted",
            ),
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

/// Checks that `buf`, the bytes received so far, can still begin an HTTP/1
/// request, so that input which never will (a TLS ClientHello sent to a
/// `ws://` port, an SSH banner, a word typed into telnet) is refused at once
/// instead of waiting out the handshake timeout for a 408.
///
/// What is checked is the request line (RFC 9112 §3), as far as it has
/// arrived, and nothing after it:
///
/// ```text
/// *( CRLF / LF )                     ; empty lines first are ignored (§2.2)
/// method SP request-target SP "HTTP/" DIGIT "." DIGIT ( CRLF / LF )
/// method         = 1*tchar           ; RFC 9110 §5.6.2
/// request-target = 1*( %x21-7E / %x80-FF )
/// ```
///
/// It refuses only what no continuation could make acceptable to
/// [`parse_request`]: every byte it refuses, httparse refuses too, so a
/// valid request cut at any point is never refused. The check is looser
/// than the parser (any version digits, any non-space target bytes): the
/// rest is the parser's to refuse once the head is complete. Cost: one
/// pass over the request line, which is bounded by the head limit.
pub fn check_request_line(buf: &[u8]) -> Result<(), HandshakeError> {
    /// Where in the request line the next byte falls.
    #[derive(Clone, Copy)]
    enum At {
        /// Before the method, where empty lines may come.
        Start,
        /// After a CR of an empty line.
        StartCr,
        /// In the method, after at least one tchar.
        Method,
        /// The first byte of the request target.
        TargetStart,
        Target,
        /// The `i`th byte of `HTTP/d.d`.
        Version(u8),
        /// After the CR that ends the line.
        EndCr,
    }
    const NOT_HTTP: HandshakeError = HandshakeError::BadRequest("not an HTTP request");
    // A TLS record starts 0x16 (handshake), then the major version 3.
    if buf.first() == Some(&0x16) && buf.get(1).is_none_or(|&b| b == 0x03) {
        return Err(HandshakeError::BadRequest(
            "TLS handshake on a plain-text port: use ws://, not wss://",
        ));
    }
    let target_byte = |b: u8| matches!(b, 0x21..=0x7E | 0x80..=0xFF);
    let mut at = At::Start;
    for &b in buf {
        at = match (at, b) {
            (At::Start, b'\r') => At::StartCr,
            (At::Start | At::StartCr, b'\n') => At::Start,
            (At::Start | At::Method, b) if is_tchar(b) => At::Method,
            (At::Method, b' ') => At::TargetStart,
            (At::TargetStart | At::Target, b) if target_byte(b) => At::Target,
            (At::Target, b' ') => At::Version(0),
            (At::Version(i), b) if i < 5 && Some(&b) == b"HTTP/".get(usize::from(i)) => {
                At::Version(i + 1)
            }
            (At::Version(i @ (5 | 7)), b) if b.is_ascii_digit() => At::Version(i + 1),
            (At::Version(6), b'.') => At::Version(7),
            (At::Version(8), b'\r') => At::EndCr,
            // The request line is whole: the headers are the parser's.
            (At::Version(8) | At::EndCr, b'\n') => return Ok(()),
            _ => return Err(NOT_HTTP),
        };
    }
    Ok(())
}

/// `tchar` of RFC 9110 §5.6.2: the bytes of a token such as a method.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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
    let mut authorization = None;
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
        } else if name.eq_ignore_ascii_case("authorization") {
            &mut authorization
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
            return Err(HandshakeError::BadRequest(
                if name.eq_ignore_ascii_case("host") {
                    // RFC 9112 §3.2: more than one Host line is a 400.
                    "more than one Host header"
                } else {
                    "repeated header"
                },
            ));
        }
    }
    if !upgrade && !websocket_header {
        // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request)
        // status code to any HTTP/1.1 request message that lacks a Host".
        if req.version == Some(1) && host.is_none() {
            return Err(HandshakeError::BadRequest("missing Host"));
        }
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
            authorization,
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
    write_refusal(out, err, &[]);
}

/// Appends the answer for a refused request, like [`write_error`]; the body
/// of a [`HandshakeError::NoProtocol`] also lists `accepted`, the
/// subprotocols the server speaks, so the client's developer reads what to
/// offer.
pub fn write_refusal(out: &mut Vec<u8>, err: HandshakeError, accepted: &[String]) {
    let (reason, body) = err.reason();
    let extra = match err {
        // §4.2.2: tell the client which versions we speak.
        HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version: 13\r\n",
        HandshakeError::MethodNotAllowed => "Allow: GET\r\n",
        HandshakeError::Unavailable => "Retry-After: 1\r\n",
        _ => "",
    };
    if err == HandshakeError::NoProtocol && !accepted.is_empty() {
        let body = format!("{body}; accepted: {}", accepted.join(", "));
        write_response(out, err.status(), reason, extra, &body);
    } else {
        write_response(out, err.status(), reason, extra, body);
    }
}

/// Whether `s` is a token (RFC 9110 §5.6.2), as a subprotocol name must be
/// (RFC 6455 §4.1): not empty, no spaces, commas or quotes.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
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
mod tests;
