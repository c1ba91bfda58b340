//! The opening handshake parser, `parse_request`, on arbitrary bytes.
//!
//! Properties, for every input `data`:
//! - it never panics, whatever the limit;
//! - `NeedMore` only while the input is under the limit;
//! - `Done { offset }` ⇒ `offset <= data.len()`, `offset <= max`, and the
//!   head ends with an empty line: `has_head_end(&data[..offset])` holds
//!   (hence `has_head_end(data)`: the reactor's cheap gate never hides a
//!   parseable head);
//! - the head is exactly `data[..offset]`: re-parsing it alone gives the same
//!   result, with `max == offset` too, and `max == offset - 1` is `TooLarge`;
//! - every strict prefix of a complete head is `NeedMore` (a request that
//!   arrives in pieces is never refused for being cut);
//! - an `Upgrade` has a path in origin form, a 24-byte key that is base64 of
//!   16 bytes, and borrows its key from inside the head.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::proto::handshake::{has_head_end, parse_request, Head, HandshakeError};
use wsd::proto::Parsing;

/// The daemon's default limit on a request head, and a small one that the
/// fuzzer's inputs reach.
const LIMITS: [usize; 3] = [8192, 256, 16];

fuzz_target!(|data: &[u8]| {
    for max in LIMITS {
        check(data, max);
    }
});

fn check(data: &[u8], max: usize) {
    let head_end = has_head_end(data);
    match parse_request(data, max) {
        Ok(Parsing::NeedMore(n)) => {
            assert_eq!(n, 1, "NeedMore asks for at least one byte");
            assert!(data.len() < max, "NeedMore at or over the limit {max}");
        }
        Ok(Parsing::Done { value, offset }) => {
            assert!(offset <= data.len(), "offset {offset} past the input");
            assert!(offset <= max, "offset {offset} over the limit {max}");
            assert!(offset > 0, "an empty head");
            assert!(head_end, "Done without has_head_end");
            let head = &data[..offset];
            assert!(has_head_end(head), "the head does not end with an empty line");
            check_head(&value, head);
            // The head alone parses the same, at its own length as the limit.
            assert_eq!(parse_request(head, max), Ok(Parsing::Done { value, offset }));
            assert_eq!(parse_request(head, offset), Ok(Parsing::Done { value, offset }));
            assert_eq!(parse_request(head, offset - 1), Err(HandshakeError::TooLarge));
            // Cut anywhere before its end, it is incomplete, not wrong. Every
            // cut for short heads; a spread of them for long ones.
            let step = (offset / 64).max(1);
            for cut in (0..offset).step_by(step).chain([offset - 1]) {
                assert_eq!(
                    parse_request(&head[..cut], max),
                    Ok(Parsing::NeedMore(1)),
                    "prefix of {cut} bytes of a {offset}-byte head"
                );
            }
        }
        Err(e) => {
            // Every error maps to an answer the reactor can write.
            assert!(matches!(e.status(), 400 | 403 | 405 | 426 | 431 | 503));
            assert!(!matches!(e, HandshakeError::Forbidden | HandshakeError::Unavailable));
        }
    }
}

fn check_head(value: &Head<'_>, head: &[u8]) {
    let range = head.as_ptr_range();
    match value {
        Head::Upgrade(req) => {
            assert!(req.path.starts_with('/'), "upgrade path {:?}", req.path);
            assert_eq!(req.key.len(), 24, "key {:?}", req.key);
            assert!(range.contains(&req.key.as_ptr()), "key outside the head");
            assert!(decodes_to_16_bytes(req.key), "key {:?}", req.key);
            assert!(req.offered_protocols().all(|p| !p.is_empty()));
        }
        Head::Plain { method, path } => {
            assert!(!method.is_empty());
            assert!(range.contains(&method.as_ptr()));
            assert!(
                path.starts_with('/') || range.contains(&path.as_ptr()),
                "plain path {path:?}"
            );
        }
    }
}

/// The naive check: 22 base64 characters then `==`, the 22nd carrying only
/// 2 significant bits (16 bytes = 128 bits = 21 full sextets + 2 bits).
fn decodes_to_16_bytes(key: &[u8]) -> bool {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    key.len() == 24
        && key[..22].iter().all(|&c| b64(c))
        && &key[22..] == b"=="
        && b"AQgw".contains(&key[21])
}
