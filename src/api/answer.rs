//! The API's answers, appended to the caller's output buffer: small JSON
//! bodies, always a `Content-Length`, and a `Connection` header that says
//! whether the connection stays open.

use std::io::Write as _;

use super::error::ParseError;
use super::message::Refusal;

/// Appends `100 Continue` (RFC 9110 §15.2.1), for a request that sent
/// `Expect: 100-continue` and waits for it before its body.
pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Appends the answer to a delivered publish: `200`,
/// `{"room":"/chat/eu","local_receivers":N}`; returns 200.
pub fn write_published(
    out: &mut Vec<u8>,
    room: &str,
    local_receivers: usize,
    keep_alive: bool,
) -> u16 {
    let mut body = Vec::with_capacity(48 + room.len());
    body.extend_from_slice(b"{\"room\":");
    // Writing a string to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, room);
    let _ = write!(body, ",\"local_receivers\":{local_receivers}}}");
    write(out, 200, &body, keep_alive)
}

/// Appends the answer to a delivered NDJSON batch: `200`,
/// `{"accepted":K}`; returns 200.
pub fn write_accepted(out: &mut Vec<u8>, accepted: usize, keep_alive: bool) -> u16 {
    let body = format!("{{\"accepted\":{accepted}}}");
    write(out, 200, body.as_bytes(), keep_alive)
}

/// Appends a refusal decided on a whole request (the connection may stay
/// open); returns its status.
pub fn write_refusal(out: &mut Vec<u8>, refusal: &Refusal, keep_alive: bool) -> u16 {
    write_error(out, refusal.status, &refusal.message, keep_alive)
}

/// Appends the answer to a request that cannot be read; the connection
/// closes after it. Returns its status.
pub fn write_parse_error(out: &mut Vec<u8>, err: ParseError) -> u16 {
    write_error(out, err.status(), err.message(), false)
}

/// Appends `{"error":message}` with `status` (for the reactor's own
/// answers too: 404 for other routes, 408 for a request that took too
/// long, 503 while draining); returns `status`.
pub fn write_error(out: &mut Vec<u8>, status: u16, message: &str, keep_alive: bool) -> u16 {
    let mut body = Vec::with_capacity(16 + message.len());
    body.extend_from_slice(b"{\"error\":");
    let _ = serde_json::to_writer(&mut body, message);
    body.push(b'}');
    write(out, status, &body, keep_alive)
}

/// Appends a whole answer; returns `status`.
fn write(out: &mut Vec<u8>, status: u16, body: &[u8], keep_alive: bool) -> u16 {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let extra = match status {
        // RFC 9110 §15.5.6: a 405 lists the methods the target allows.
        405 => "Allow: POST\r\n",
        // RFC 9110 §15.5.2: a 401 names the scheme to use (RFC 6750 §3).
        401 => "WWW-Authenticate: Bearer\r\n",
        _ => "",
    };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: {connection}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\n{extra}\r\n",
        reason(status),
        body.len() + 1,
    );
    out.extend_from_slice(body);
    out.push(b'\n');
    status
}

/// The reason phrase of each status the API answers with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    #[test]
    fn a_publish_answer_is_json_with_its_length() {
        let mut out = Vec::new();
        assert_eq!(write_published(&mut out, "/chat/\"eu\"", 3, true), 200);
        let t = text(&out);
        let (head, body) = t.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: keep-alive"), "{head}");
        assert!(
            head.contains(&format!("\r\nContent-Length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"room": "/chat/\"eu\"", "local_receivers": 3})
        );
    }

    #[test]
    fn refusals_carry_their_headers_and_close_when_told() {
        for (status, header) in [(405, "Allow: POST"), (401, "WWW-Authenticate: Bearer")] {
            let mut out = Vec::new();
            let refusal = Refusal::new(status, "no");
            write_refusal(&mut out, &refusal, false);
            let t = text(&out);
            assert!(t.contains(&format!("\r\n{header}\r\n")), "{t}");
            assert!(t.contains("\r\nConnection: close\r\n"), "{t}");
            assert!(t.ends_with("{\"error\":\"no\"}\n"), "{t}");
        }
        let mut out = Vec::new();
        assert_eq!(write_parse_error(&mut out, ParseError::BodyTooLarge), 413);
        assert!(text(&out).starts_with("HTTP/1.1 413 Content Too Large\r\n"));
        let mut out = Vec::new();
        assert_eq!(write_accepted(&mut out, 7, true), 200);
        assert!(text(&out).ends_with("\r\n\r\n{\"accepted\":7}\n"));
    }
}
