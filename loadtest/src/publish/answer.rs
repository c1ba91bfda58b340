//! Reading the publish API's answers: one whole HTTP/1.1 response at a
//! time, sans-IO, from the start of a buffer.
//!
//! A response's body must be delimited by `Content-Length` (a keep-alive
//! connection needs it; wsd always sends one); 1xx, 204 and 304 have none.
//! A chunked answer or one without a length cannot be told from the next
//! one here, so it is an error and ends the connection.

use std::fmt;

use wsd::proto::Parsing;

/// The largest answer head accepted.
pub const MAX_HEAD: usize = 16 << 10;

/// The largest answer body accepted (the API's are a line of JSON).
pub const MAX_BODY: usize = 64 << 10;

/// Header lines accepted in one answer.
const MAX_HEADERS: usize = 32;

/// One whole answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Where the body starts (the head's length).
    pub body_at: usize,
    /// Whether the server closes the connection after it
    /// (`Connection: close`, or HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// Why the bytes are no answer we can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// Not an HTTP/1.x response head.
    Malformed,
    /// A head or body above [`MAX_HEAD`] or [`MAX_BODY`].
    TooLarge,
    /// No Content-Length where a body may follow (or a bad one).
    NoLength,
    /// A Transfer-Encoding (chunked) body.
    Chunked,
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnswerError::Malformed => "not an HTTP/1.1 response",
            AnswerError::TooLarge => "an answer above 16 KiB of head or 64 KiB of body",
            AnswerError::NoLength => "an answer without a valid Content-Length",
            AnswerError::Chunked => "a chunked answer (wsload reads Content-Length bodies only)",
        })
    }
}

/// Reads one answer from the start of `buf`: `Done` with its length (head
/// and body) once it is all there, `NeedMore` before.
pub fn parse_answer(buf: &[u8]) -> Result<Parsing<Answer>, AnswerError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(AnswerError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(Parsing::NeedMore(1)),
        Err(_) => return Err(AnswerError::Malformed),
    };
    if head > MAX_HEAD {
        return Err(AnswerError::TooLarge);
    }
    let status = r.code.ok_or(AnswerError::Malformed)?;
    let mut length: Option<usize> = None;
    let mut close = r.version == Some(0);
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| AnswerError::NoLength)?;
            let n: usize = v.trim().parse().map_err(|_| AnswerError::NoLength)?;
            // RFC 9112 §6.3: differing lengths make the framing unknowable.
            if length.is_some_and(|l| l != n) {
                return Err(AnswerError::NoLength);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(AnswerError::Chunked);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    // RFC 9112 §6.3: these never have a body, whatever the headers say.
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        0
    } else {
        length.ok_or(AnswerError::NoLength)?
    };
    if body > MAX_BODY {
        return Err(AnswerError::TooLarge);
    }
    let total = head + body;
    if buf.len() < total {
        return Ok(Parsing::NeedMore(total - buf.len()));
    }
    Ok(Parsing::Done {
        value: Answer {
            status,
            body_at: head,
            close,
        },
        offset: total,
    })
}

/// An answer in a line for an error report: its status line and, if any,
/// its body, both cut to 200 characters.
pub fn describe(raw: &[u8], a: &Answer) -> String {
    let line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let body = raw.get(a.body_at..).unwrap_or_default();
    let cut = |b: &[u8]| -> String {
        String::from_utf8_lossy(b.trim_ascii())
            .chars()
            .take(200)
            .collect()
    };
    match cut(body) {
        b if b.is_empty() => cut(line),
        b => format!("{}: {b}", cut(line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 38\r\nConnection: keep-alive\r\n\r\n{\"room\":\"/chat\",\"local_receivers\":10}\n";

    #[test]
    fn a_whole_answer_is_read_with_its_length() {
        let mut two = OK.to_vec();
        two.extend_from_slice(OK);
        let Ok(Parsing::Done { value, offset }) = parse_answer(&two) else {
            panic!("one answer");
        };
        assert_eq!(offset, OK.len());
        assert_eq!(value.status, 200);
        assert!(!value.close);
        assert_eq!(
            &OK[value.body_at..],
            b"{\"room\":\"/chat\",\"local_receivers\":10}\n"
        );
    }

    #[test]
    fn every_cut_of_an_answer_needs_more() {
        for n in 0..OK.len() {
            assert!(
                matches!(parse_answer(&OK[..n]), Ok(Parsing::NeedMore(_))),
                "{n}"
            );
        }
    }

    #[test]
    fn close_refusals_and_bodiless_statuses() {
        let a = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let Ok(Parsing::Done { value, offset }) = parse_answer(a) else {
            panic!("answer");
        };
        assert_eq!((value.status, value.close, offset), (401, true, a.len()));
        assert_eq!(describe(a, &value), "HTTP/1.1 401 Unauthorized: {}");
        let a = b"HTTP/1.0 204 No Content\r\n\r\n";
        let Ok(Parsing::Done { value, .. }) = parse_answer(a) else {
            panic!("answer");
        };
        assert_eq!((value.status, value.close), (204, true));
        let a = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
        assert_eq!(
            parse_answer(a),
            Ok(Parsing::Done {
                value: Answer {
                    status: 100,
                    body_at: 25,
                    close: false
                },
                offset: 25
            })
        );
    }

    #[test]
    fn answers_that_cannot_be_framed_are_errors() {
        let no_len = b"HTTP/1.1 200 OK\r\n\r\n{}";
        assert_eq!(parse_answer(no_len), Err(AnswerError::NoLength));
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(parse_answer(two), Err(AnswerError::NoLength));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_answer(chunked), Err(AnswerError::Chunked));
        let big = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n";
        assert_eq!(parse_answer(big), Err(AnswerError::TooLarge));
        assert_eq!(
            parse_answer(b"SSH-2.0-x\r\n\r\n"),
            Err(AnswerError::Malformed)
        );
        assert_eq!(
            parse_answer(&[b'a'; MAX_HEAD + 1]),
            Err(AnswerError::Malformed)
        );
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse_answer(&long), Err(AnswerError::TooLarge));
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_answer(&bytes);
        }

        #[test]
        fn a_valid_answer_is_read_the_same_from_any_prefix(cut in 0usize..200) {
            let cut = cut.min(OK.len());
            let whole = parse_answer(OK);
            match parse_answer(&OK[..cut]) {
                Ok(Parsing::NeedMore(_)) => prop_assert!(cut < OK.len()),
                other => prop_assert_eq!(other, whole),
            }
        }
    }
}
