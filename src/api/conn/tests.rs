//! [`ApiConn`] at every split point of its input: whatever the pieces, the
//! requests and refusals are those of the whole input fed at once.

use super::*;
use crate::api::chunked::MAX_LINE;

const LIMITS: Limits = Limits {
    max_head: 256,
    max_body: 64,
};

/// What a caller that follows the feed contract saw: each request (as its
/// Debug text) or refusal, and whether the input ended inside a request.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    events: Vec<String>,
    continues: usize,
    cut_short: bool,
}

/// Feeds `input` in pieces ending at `cuts` (then the rest), as the
/// reactor would: keep what is not consumed, append, feed everything.
fn drive(input: &[u8], cuts: &[usize], limits: &Limits) -> Seen {
    let mut conn = ApiConn::new();
    let mut pending = Vec::new();
    let mut seen = Seen {
        events: Vec::new(),
        continues: 0,
        cut_short: false,
    };
    let mut from = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        let cut = cut.clamp(from, input.len());
        pending.extend_from_slice(&input[from..cut]);
        from = cut;
        loop {
            match conn.feed(&pending, limits) {
                Ok(Feed::Request { request, consumed }) => {
                    assert!(consumed <= pending.len() && consumed > 0);
                    seen.events.push(format!("{request:?}"));
                    let keep_alive = request.keep_alive;
                    pending.drain(..consumed);
                    if !keep_alive {
                        return seen;
                    }
                }
                Ok(Feed::NeedMore {
                    consumed,
                    send_continue,
                }) => {
                    assert!(consumed <= pending.len());
                    pending.drain(..consumed);
                    seen.continues += usize::from(send_continue);
                    // Fed again as it is, it wants more still.
                    assert_eq!(
                        conn.feed(&pending, limits),
                        Ok(Feed::NeedMore {
                            consumed: 0,
                            send_continue: false
                        })
                    );
                    let keep_bound = (limits.max_head + limits.max_body).max(MAX_LINE + 2);
                    assert!(pending.len() < keep_bound);
                    assert!(conn.memory() <= limits.max_head + limits.max_body);
                    break;
                }
                Err(e) => {
                    seen.events.push(format!("{e:?}"));
                    assert_eq!(conn.feed(&pending, limits), Err(e), "failed for good");
                    return seen;
                }
            }
        }
    }
    seen.cut_short = conn.in_request() || !pending.is_empty();
    seen
}

/// Checks every 2-piece split and the byte-by-byte feed against the whole;
/// returns the whole's.
fn same_at_every_split(input: &[u8]) -> Seen {
    let whole = drive(input, &[], &LIMITS);
    for cut in 0..=input.len() {
        let split = drive(input, &[cut], &LIMITS);
        assert_eq!(
            split.events,
            whole.events,
            "cut at {cut} of {:?}",
            show(input)
        );
        assert_eq!(split.cut_short, whole.cut_short, "cut at {cut}");
    }
    let every: Vec<usize> = (0..input.len()).collect();
    let bytes = drive(input, &every, &LIMITS);
    assert_eq!(
        bytes.events,
        whole.events,
        "byte by byte: {:?}",
        show(input)
    );
    whole
}

fn show(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

#[test]
fn pipelined_requests_come_out_one_by_one_at_every_split() {
    let input = b"POST /publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
        POST /publish/b HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n\
        \r\nGET /publish/c?q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\
        POST /never HTTP/1.1\r\nHost: x\r\n\r\n";
    let seen = same_at_every_split(input);
    assert_eq!(seen.events.len(), 3, "{seen:?}");
    assert!(
        seen.events[0].contains("target: \"/publish/a\""),
        "{seen:?}"
    );
    assert!(seen.events[0].contains("body: [104, 101, 108, 108, 111]"));
    assert!(seen.events[1].contains("content_length: Some(0)"));
    assert!(seen.events[2].contains("keep_alive: false"));
    assert!(!seen.cut_short, "the request after a close is not read");
}

#[test]
fn chunked_bodies_are_decoded_at_every_split() {
    let input = b"POST /publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n1;ext=\"v\"\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n\
        POST /publish/b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok";
    let seen = same_at_every_split(input);
    assert_eq!(seen.events.len(), 2, "{seen:?}");
    let body = format!("{:?}", b"hello world");
    assert!(
        seen.events[0].contains(&format!("body: {body}")),
        "{seen:?}"
    );
    assert!(seen.events[0].contains("chunked: true"));
    assert!(seen.events[1].contains("body: [111, 107]"));
}

#[test]
fn http_1_0_closes_unless_kept_alive() {
    let seen = same_at_every_split(
        b"POST /publish/a HTTP/1.0\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.0\r\n\r\n",
    );
    assert_eq!(seen.events.len(), 1);
    assert!(seen.events[0].contains("keep_alive: false, "));
    let seen = same_at_every_split(
        b"POST /publish/a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.0\r\n\r\n",
    );
    assert_eq!(seen.events.len(), 2);
}

#[test]
fn a_partial_request_is_cut_short_at_the_end() {
    for input in [
        &b"POST /publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel"[..],
        b"POST /publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"POST /publish/a HTTP/1.1\r\nHo",
        // Found by fuzzing: empty lines first are not the end of a head, so
        // a bad byte later is not judged before the head is whole.
        b"\n\r\nzGET /publish/c HTTP/1.1\r\nHost: x\r\n\r\x8a",
    ] {
        let seen = same_at_every_split(input);
        assert!(seen.events.is_empty() && seen.cut_short, "{seen:?}");
    }
    assert!(!same_at_every_split(b"").cut_short);
}

#[test]
fn refusals_are_the_same_at_every_split() {
    let big = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(300));
    // Malformed early and too large in all: malformed, however it is cut.
    let bad_and_big = format!(
        "GET / HTTP/1.1\r\nHo st: x\r\n{}\r\n",
        "X: y\r\n".repeat(60)
    );
    for (input, err) in [
        (
            &b"POST /publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n"[..],
            ParseError::BodyTooLarge,
        ),
        (
            b"POST /publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n",
            ParseError::BodyTooLarge,
        ),
        (
            b"POST /publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n\
              0123456789abcdef0123456789abcdef\r\n21\r\n",
            ParseError::BodyTooLarge,
        ),
        (
            b"POST /publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            ParseError::BadRequest("malformed chunk size"),
        ),
        (
            b"POST /publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            ParseError::BadRequest("chunk data not followed by CRLF"),
        ),
        (
            b"POST /publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            ParseError::BadRequest("both Content-Length and Transfer-Encoding"),
        ),
        (
            b"POST /publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            ParseError::NotImplemented,
        ),
        (big.as_bytes(), ParseError::HeadTooLarge),
        (
            bad_and_big.as_bytes(),
            ParseError::BadRequest("malformed HTTP request"),
        ),
        (b"\x16\x03\x01\x02\x00", ParseError::BadRequest("not an HTTP request")),
        (b"SSH-2.0-x\r\n", ParseError::BadRequest("not an HTTP request")),
        // Found by fuzzing: a bad version refused the same way whether the
        // head is whole or not.
        (
            b"POST /publish/a HTTP/1.-1\r\nHost: x\r\n\r\n",
            ParseError::BadRequest("not an HTTP request"),
        ),
    ] {
        let seen = same_at_every_split(input);
        assert_eq!(seen.events, [format!("{err:?}")], "{}", show(input));
    }
}

#[test]
fn a_second_request_can_fail_after_a_first_succeeds() {
    let seen = same_at_every_split(
        b"POST /publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx\
          POST /publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n",
    );
    assert_eq!(seen.events.len(), 2);
    assert_eq!(seen.events[1], format!("{:?}", ParseError::BodyTooLarge));
}

#[test]
fn continue_is_asked_for_once_when_the_body_is_not_there() {
    let head =
        b"POST /publish/a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    let mut conn = ApiConn::new();
    assert_eq!(
        conn.feed(head, &LIMITS),
        Ok(Feed::NeedMore {
            consumed: 0,
            send_continue: true
        })
    );
    assert_eq!(conn.request_len(), Some(head.len() + 2));
    assert!(conn.in_request());
    let whole = [&head[..], b"ok"].concat();
    assert!(matches!(
        conn.feed(&whole, &LIMITS),
        Ok(Feed::Request { consumed, .. }) if consumed == whole.len()
    ));
    assert!(!conn.in_request());
    // Head and body together: no 100 needed.
    assert_eq!(drive(&whole, &[], &LIMITS).continues, 0);
    assert_eq!(drive(&whole, &[head.len()], &LIMITS).continues, 1);
    let chunked = b"POST /publish/a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(drive(chunked, &[], &LIMITS).continues, 1);
}

#[test]
fn a_chunked_body_is_held_by_the_connection_not_the_input() {
    let head = b"POST /publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut conn = ApiConn::new();
    let input = [&head[..], b"4\r\nabcd\r\n2\r"].concat();
    // The head and the first chunk are taken; the partial line is kept.
    assert_eq!(
        conn.feed(&input, &LIMITS),
        Ok(Feed::NeedMore {
            consumed: input.len() - 2,
            send_continue: false
        })
    );
    assert!(conn.memory() >= head.len() + 4);
    assert!(matches!(
        conn.feed(b"2\r\nef\r\n0\r\n\r\n", &LIMITS),
        Ok(Feed::Request { request, consumed: 12 }) if request.body == b"abcdef"
    ));
}

#[test]
fn the_connection_state_is_small() {
    assert!(
        std::mem::size_of::<ApiConn>() <= 64,
        "{}",
        std::mem::size_of::<ApiConn>()
    );
}
