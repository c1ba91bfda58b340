//! A request head: httparse for the syntax, then the few headers the API
//! acts on, with the framing rules of RFC 9112 §6 that keep a request
//! from being read two ways (the root of request smuggling).

use super::error::ParseError;
use crate::proto::handshake::MAX_HEADERS;

/// How the body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// Neither `Content-Length` nor `Transfer-Encoding`: no body.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed head, borrowed from the bytes it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Head<'a> {
    pub(super) method: &'a str,
    pub(super) target: &'a str,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub(super) version: u8,
    pub(super) content_type: Option<&'a [u8]>,
    pub(super) authorization: Option<&'a [u8]>,
    pub(super) keep_alive: bool,
    pub(super) framing: Framing,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub(super) expect_continue: bool,
    /// The head's length in bytes, its blank line included.
    pub(super) len: usize,
}

/// Parses a head from the start of `buf`: `Ok(None)` while it is
/// incomplete and under `max_head` bytes.
pub(super) fn parse(buf: &[u8], max_head: usize) -> Result<Option<Head<'_>>, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= max_head => n,
        Ok(httparse::Status::Partial) if buf.len() < max_head => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeadTooLarge),
        Err(_) => return Err(ParseError::BadRequest("malformed HTTP request")),
    };
    let version = req.version.unwrap_or(1);
    let mut head = Head {
        method: req.method.unwrap_or_default(),
        target: req.path.unwrap_or_default(),
        version,
        content_type: None,
        authorization: None,
        keep_alive: version == 1,
        framing: Framing::None,
        expect_continue: false,
        len,
    };
    let mut hosts = 0;
    let mut length = None;
    let mut chunked = None;
    let mut close = false;
    for h in req.headers.iter() {
        let name = h.name;
        let value = trim(h.value);
        let repeated = || ParseError::BadRequest("repeated header");
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("content-length") {
            // RFC 9112 §6.3: differing lengths are unrecoverable; one line
            // is all a client needs, so any repetition is refused.
            if length.replace(parse_length(value)?).is_some() {
                return Err(ParseError::BadRequest("more than one Content-Length"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked` alone: any other coding is one we would have
            // to decode (§6.1: "SHOULD respond with 501").
            if !value.eq_ignore_ascii_case(b"chunked") {
                return Err(ParseError::NotImplemented);
            }
            if chunked.replace(()).is_some() {
                return Err(repeated());
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            if head.content_type.replace(value).is_some() {
                return Err(repeated());
            }
        } else if name.eq_ignore_ascii_case("authorization") {
            if head.authorization.replace(value).is_some() {
                return Err(repeated());
            }
        } else if name.eq_ignore_ascii_case("connection") {
            close |= has_token(value, b"close");
            head.keep_alive |= has_token(value, b"keep-alive");
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue |= version == 1 && value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    // RFC 9112 §3.2: a 400 for an HTTP/1.1 request without Host, and for
    // any request with more than one.
    if hosts > 1 || (version == 1 && hosts == 0) {
        return Err(ParseError::BadRequest("a request needs one Host header"));
    }
    head.keep_alive &= !close;
    head.framing = match (length, chunked) {
        (Some(_), Some(())) => {
            // §6.1: "ought to be handled as an error"; a proxy in front may
            // have read it the other way.
            return Err(ParseError::BadRequest(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        // §6.1: chunked is HTTP/1.1; in a 1.0 request the framing is faulty.
        (None, Some(())) if version == 0 => {
            return Err(ParseError::BadRequest("chunked in an HTTP/1.0 request"))
        }
        (None, Some(())) => Framing::Chunked,
        (Some(n), None) => Framing::Length(n),
        (None, None) => Framing::None,
    };
    Ok(Some(head))
}

/// A `Content-Length` value: decimal digits only (no sign, no list), in
/// range.
fn parse_length(value: &[u8]) -> Result<u64, ParseError> {
    const BAD: ParseError = ParseError::BadRequest("malformed Content-Length");
    if value.is_empty() {
        return Err(BAD);
    }
    value.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(BAD);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(ParseError::BadRequest("Content-Length out of range"))
    })
}

/// Whether a comma list holds `token` (case-insensitive).
fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// Strips spaces and tabs at both ends.
pub(super) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head<'_>>, ParseError> {
        parse(text.as_bytes(), 8192)
    }

    #[test]
    fn the_headers_that_matter_are_picked_out() {
        let text = "POST /publish/a HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
             Authorization: Bearer k\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello";
        let h = head(text).unwrap().unwrap();
        assert_eq!((h.method, h.target, h.version), ("POST", "/publish/a", 1));
        assert_eq!(h.content_type, Some(&b"text/plain"[..]));
        assert_eq!(h.authorization, Some(&b"Bearer k"[..]));
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive && h.expect_continue);
        assert_eq!(h.len, text.len() - 5);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        for (text, keep) in [
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                false,
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
                false,
            ),
            ("GET / HTTP/1.0\r\n\r\n", false),
            ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        ] {
            assert_eq!(head(text).unwrap().unwrap().keep_alive, keep, "{text:?}");
        }
    }

    #[test]
    fn framing_that_could_be_read_two_ways_is_refused() {
        let bad = |text: &str| head(text).unwrap_err();
        for (text, err) in [
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                ParseError::BadRequest("both Content-Length and Transfer-Encoding"),
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
                ParseError::BadRequest("more than one Content-Length"),
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
                ParseError::BadRequest("malformed Content-Length"),
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n",
                ParseError::BadRequest("malformed Content-Length"),
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n",
                ParseError::BadRequest("Content-Length out of range"),
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                ParseError::NotImplemented,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                ParseError::BadRequest("repeated header"),
            ),
            (
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                ParseError::BadRequest("chunked in an HTTP/1.0 request"),
            ),
            (
                "POST / HTTP/1.1\r\n\r\n",
                ParseError::BadRequest("a request needs one Host header"),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                ParseError::BadRequest("a request needs one Host header"),
            ),
            ("POST /\0 HTTP/1.1\r\n\r\n", ParseError::BadRequest("malformed HTTP request")),
        ] {
            assert_eq!(bad(text), err, "{text:?}");
        }
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  18446744073709551615 \r\n\r\n")
                .unwrap()
                .unwrap()
                .framing,
            Framing::Length(u64::MAX)
        );
    }

    #[test]
    fn a_head_is_bounded() {
        assert_eq!(head("POST / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100));
        assert_eq!(parse(long.as_bytes(), 64), Err(ParseError::HeadTooLarge));
        assert_eq!(
            parse(&long.as_bytes()[..70], 64),
            Err(ParseError::HeadTooLarge)
        );
        assert_eq!(parse(&long.as_bytes()[..60], 64), Ok(None));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        let text = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_eq!(head(&text), Err(ParseError::HeadTooLarge));
    }
}
