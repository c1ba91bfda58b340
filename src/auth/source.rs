//! Where the token is in an upgrade request, and which room it asks for.
//!
//! Two places, as Centrifugo and most WebSocket servers accept them:
//!
//! - the header `Authorization: Bearer T` (RFC 6750 §2.1), for clients that
//!   can set headers;
//! - the query parameter `token=T` of the request target (§2.3), for
//!   browsers, whose WebSocket API cannot set headers. Percent-escapes in
//!   the value are decoded (a JWT needs none, but an over-eager encoder may
//!   add them).
//!
//! Both at once is refused as [`Refusal::Malformed`]: two credentials in
//! one request may carry different rights, and picking one would hide the
//! client's mistake. So are two `token` parameters, two `Authorization`
//! headers, and an empty token. An `Authorization` header with another
//! scheme (`Basic`, which a browser may resend to a site behind a password)
//! is not ours and is ignored.
//!
//! The room is the target's path without its query, exactly as the hub
//! names rooms (`src/net/reactor/upgrade.rs`): the `token` parameter,
//! like every parameter, never becomes part of the room.

use std::borrow::Cow;

use super::Refusal;

/// The longest token accepted, in bytes, checked before anything is parsed
/// or decoded. Tokens with a few dozen patterns are well under 2 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The most header lines [`authorization_header`] parses, as the handshake
/// parser does (`proto::handshake::MAX_HEADERS`).
const MAX_HEADERS: usize = crate::proto::handshake::MAX_HEADERS;

/// The room a request target names: its path without the query string.
pub fn room_of(target: &str) -> &str {
    target.split_once('?').map_or(target, |(path, _)| path)
}

/// The token of an upgrade request, from its target's `token` query
/// parameter or the value of its `Authorization` header (see the module
/// doc); `Ok(None)` when there is none. The token is borrowed unless its
/// value had percent-escapes.
pub fn token_of<'a>(
    target: &'a str,
    authorization: Option<&'a [u8]>,
) -> Result<Option<Cow<'a, str>>, Refusal> {
    let header = authorization.map(bearer).transpose()?.flatten();
    let query = query_token(target)?;
    match (header, query) {
        (Some(_), Some(_)) => Err(Refusal::Malformed),
        (Some(token), None) => Ok(Some(Cow::Borrowed(token))),
        (None, query) => Ok(query),
    }
}

/// The token of an `Authorization` header value (`Bearer T`): `Ok(None)`
/// for another scheme, [`Refusal::Malformed`] for a bearer value that holds
/// no token, or more than one word, or more than [`MAX_TOKEN_LEN`] bytes.
pub fn bearer_token(value: &[u8]) -> Result<Option<&str>, Refusal> {
    bearer(value)
}

/// The token of an `Authorization: Bearer` value; `None` for another
/// scheme. The scheme is case-insensitive (RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Result<Option<&str>, Refusal> {
    let value = value.trim_ascii();
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(at) => (value.get(..at), value.get(at..)),
        None => (Some(value), None),
    };
    if !scheme.is_some_and(|s| s.eq_ignore_ascii_case(b"bearer")) {
        return Ok(None);
    }
    let token = rest.unwrap_or_default().trim_ascii_start();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.contains(&b' ') {
        return Err(Refusal::Malformed);
    }
    std::str::from_utf8(token)
        .map(Some)
        .map_err(|_| Refusal::Malformed)
}

/// The value of the one `token` parameter of the target's query, decoded.
fn query_token(target: &str) -> Result<Option<Cow<'_, str>>, Refusal> {
    let Some((_, query)) = target.split_once('?') else {
        return Ok(None);
    };
    let mut found = None;
    for param in query.split('&') {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if name != "token" {
            continue;
        }
        if found.is_some() {
            return Err(Refusal::Malformed);
        }
        found = Some(value);
    }
    let Some(raw) = found else {
        return Ok(None);
    };
    // Decoding only shrinks: a value longer than three bytes per token
    // byte cannot decode to a token that fits.
    if raw.is_empty() || raw.len() > 3 * MAX_TOKEN_LEN {
        return Err(Refusal::Malformed);
    }
    let token = percent_decode(raw)?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::Malformed);
    }
    Ok(Some(token))
}

/// Decodes `%XX` escapes (`+` stays `+`: it is not a space outside forms,
/// and no JWT has either). A bad escape or a result that is not UTF-8 is
/// malformed.
fn percent_decode(raw: &str) -> Result<Cow<'_, str>, Refusal> {
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hi = bytes.next().and_then(hex).ok_or(Refusal::Malformed)?;
        let lo = bytes.next().and_then(hex).ok_or(Refusal::Malformed)?;
        out.push(hi << 4 | lo);
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| Refusal::Malformed)
}

/// The value of one hex digit.
fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The value of the `Authorization` header of a complete request head, for
/// callers that hold only the bytes; `Ok(None)` without one. A head that
/// does not parse, or with two `Authorization` headers (the field is not a
/// list, RFC 9110 §11.6.2), is malformed.
///
/// The reactor's handshake parser already walks the headers: capturing the
/// value there, beside `Origin`, saves this second parse.
pub fn authorization_header(head: &[u8]) -> Result<Option<&[u8]>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(Refusal::Malformed),
    }
    let mut found = None;
    for header in req.headers.iter() {
        if header.name.eq_ignore_ascii_case("authorization") {
            if found.is_some() {
                return Err(Refusal::Malformed);
            }
            found = Some(header.value);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(target: &str, auth: Option<&str>) -> Result<Option<String>, Refusal> {
        token_of(target, auth.map(str::as_bytes)).map(|t| t.map(Cow::into_owned))
    }

    #[test]
    fn the_room_is_the_path_without_the_query() {
        assert_eq!(room_of("/chat/a?token=x.y.z&b=1"), "/chat/a");
        assert_eq!(room_of("/chat/a"), "/chat/a");
        assert_eq!(room_of("/?token=t"), "/");
        assert_eq!(room_of("/a?"), "/a");
        // As the hub names it: no decoding, nothing else stripped.
        assert_eq!(room_of("/caf%C3%A9#x?y"), "/caf%C3%A9#x");
    }

    #[test]
    fn a_bearer_header_gives_the_token() {
        assert_eq!(token("/r", Some("Bearer a.b.c")), Ok(Some("a.b.c".into())));
        assert_eq!(
            token("/r", Some("bearer   a.b.c  ")),
            Ok(Some("a.b.c".into()))
        );
        assert_eq!(token("/r", Some("BEARER a.b.c")), Ok(Some("a.b.c".into())));
    }

    #[test]
    fn other_schemes_are_not_ours() {
        assert_eq!(token("/r", Some("Basic dXNlcjpwYXNz")), Ok(None));
        assert_eq!(token("/r", Some("Bearera.b.c")), Ok(None));
        assert_eq!(token("/r", Some("")), Ok(None));
        // And the query still counts.
        assert_eq!(
            token("/r?token=q", Some("Basic dXNlcjpwYXNz")),
            Ok(Some("q".into()))
        );
    }

    #[test]
    fn a_bad_bearer_value_is_malformed() {
        for bad in ["Bearer", "Bearer ", "Bearer a b"] {
            assert_eq!(token("/r", Some(bad)), Err(Refusal::Malformed), "{bad:?}");
        }
        assert_eq!(
            token_of("/r", Some(b"Bearer \xff")),
            Err(Refusal::Malformed)
        );
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(token("/r", Some(&long)), Err(Refusal::Malformed));
        let fits = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN));
        assert!(token("/r", Some(&fits)).unwrap().is_some());
    }

    #[test]
    fn the_query_parameter_gives_the_token() {
        assert_eq!(token("/r?token=a.b.c", None), Ok(Some("a.b.c".into())));
        assert_eq!(
            token("/r?x=1&token=a.b.c&y", None),
            Ok(Some("a.b.c".into()))
        );
        assert_eq!(token("/r?tokens=a&xtoken=b", None), Ok(None));
        assert_eq!(token("/r", None), Ok(None));
        assert_eq!(token("/r?", None), Ok(None));
    }

    #[test]
    fn query_escapes_are_decoded() {
        assert_eq!(token("/r?token=a%2Eb%2ec", None), Ok(Some("a.b.c".into())));
        assert_eq!(token("/r?token=a+b", None), Ok(Some("a+b".into())));
        for bad in [
            "/r?token=a%2",
            "/r?token=a%zz",
            "/r?token=%ff",
            "/r?token=%",
        ] {
            assert_eq!(token(bad, None), Err(Refusal::Malformed), "{bad}");
        }
        // Borrowed when there is nothing to decode.
        assert!(matches!(
            token_of("/r?token=abc", None),
            Ok(Some(Cow::Borrowed("abc")))
        ));
    }

    #[test]
    fn empty_duplicate_or_oversized_query_tokens_are_malformed() {
        for bad in ["/r?token=", "/r?token", "/r?token=a&token=a"] {
            assert_eq!(token(bad, None), Err(Refusal::Malformed), "{bad}");
        }
        let long = format!("/r?token={}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(token(&long, None), Err(Refusal::Malformed));
        let escaped = format!("/r?token={}", "%61".repeat(MAX_TOKEN_LEN));
        assert_eq!(token(&escaped, None).unwrap().unwrap().len(), MAX_TOKEN_LEN);
        let over = format!("/r?token={}", "%61".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(token(&over, None), Err(Refusal::Malformed));
    }

    #[test]
    fn header_and_query_together_are_ambiguous() {
        assert_eq!(
            token("/r?token=a", Some("Bearer a")),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn the_authorization_header_is_found_in_a_head() {
        let head = b"GET /r HTTP/1.1\r\nHost: x\r\nauthorization: Bearer t\r\n\r\n";
        assert_eq!(authorization_header(head), Ok(Some(&b"Bearer t"[..])));
        let none = b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(authorization_header(none), Ok(None));
        let two = b"GET /r HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n";
        assert_eq!(authorization_header(two), Err(Refusal::Malformed));
        assert_eq!(
            authorization_header(b"GET /r HTTP/1.1\r\n"),
            Err(Refusal::Malformed)
        );
        assert_eq!(authorization_header(b"\x00\x01"), Err(Refusal::Malformed));
    }
}
