//! The publish API's request reader and decisions (`wsd::api`), on
//! arbitrary bytes in arbitrary pieces.
//!
//! Input layout: byte 0 picks the limits (a head of 64 or 512 bytes, a body
//! of 16 or 4096); byte 1 seeds the piece sizes (1 to 32 bytes each); the
//! rest is what a client sends on one connection.
//!
//! Properties, for every input:
//! - nothing panics, in `ApiConn::feed`, in `decide` on what it yields,
//!   or in `admit` on a head whose body is still to come;
//! - `consumed` is never more than was fed, and a request consumes at least
//!   a byte;
//! - the bytes a caller keeps stay under `max_head + max_body` (or a chunk
//!   line's bound), and the connection's own buffer never grows past
//!   `max_head + max_body`;
//! - after `NeedMore`, feeding the same bytes again needs more still;
//! - a refusal is for good: the next call returns it again;
//! - the requests and refusals are exactly those of the whole input fed in
//!   one piece, whatever the pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::api::{admit, decide, Access, ApiConn, ApiKeys, Decision, Feed, Grant, Limits, MAX_CHUNK_LINE};

fuzz_target!(|data: &[u8]| {
    let [pick, seed, input @ ..] = data else {
        return;
    };
    let limits = Limits {
        max_head: if pick & 1 == 0 { 64 } else { 512 },
        max_body: if pick & 2 == 0 { 16 } else { 4096 },
    };
    let whole = drive(input, &[input.len()], &limits);
    let mut cuts = Vec::new();
    let mut rng = u32::from(*seed) | 1;
    let mut at = 0;
    while at < input.len() {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        at = (at + 1 + (rng % 32) as usize).min(input.len());
        cuts.push(at);
    }
    let pieces = drive(input, &cuts, &limits);
    assert_eq!(pieces, whole, "pieces ending at {cuts:?}");
});

/// Feeds `input` in pieces ending at `cuts` as the reactor does; returns
/// what came out, each request as its Debug text.
fn drive(input: &[u8], cuts: &[usize], limits: &Limits) -> Vec<String> {
    let mut keys = ApiKeys::default();
    keys.add(b"0123456789abcdef").unwrap();
    let tokens = |token: &[u8], room: &str| match token {
        b"w" if room.len() % 2 == 0 => Grant::Write,
        b"w" => Grant::NoWrite,
        _ => Grant::Invalid,
    };
    let access = Access {
        keys: &keys,
        tokens: if input.len() % 2 == 0 { Some(&tokens) } else { None },
    };
    let bound = limits.max_head + limits.max_body;
    // A partial chunk-size or trailer line is kept too.
    let keep_bound = bound.max(MAX_CHUNK_LINE + 2);
    let mut conn = ApiConn::new();
    let mut pending = Vec::new();
    let mut seen = Vec::new();
    let mut from = 0;
    for &cut in cuts {
        pending.extend_from_slice(&input[from..cut]);
        from = cut;
        loop {
            match conn.feed(&pending, limits) {
                Ok(Feed::Request { request, consumed }) => {
                    assert!(consumed >= 1 && consumed <= pending.len());
                    assert!(request.body.len() <= limits.max_body);
                    let decision = decide(&request, &access);
                    if let Decision::Many(ms) = &decision {
                        assert!(ms.len() <= wsd::api::MAX_BATCH);
                    }
                    seen.push(format!("{request:?} {decision:?}"));
                    let keep_alive = request.keep_alive;
                    pending.drain(..consumed);
                    if !keep_alive {
                        return seen;
                    }
                }
                Ok(Feed::NeedMore { consumed, .. }) => {
                    assert!(consumed <= pending.len());
                    pending.drain(..consumed);
                    assert!(pending.len() < keep_bound, "kept {} bytes", pending.len());
                    assert!(conn.memory() <= bound, "holds {}", conn.memory());
                    // The reactor checks a head before its body is read.
                    if let Some(head) = conn.head(&pending, limits) {
                        assert!(head.body.is_empty());
                        let _ = admit(&head, &access);
                    }
                    assert!(matches!(
                        conn.feed(&pending, limits),
                        Ok(Feed::NeedMore { consumed: 0, .. })
                    ));
                    break;
                }
                Err(e) => {
                    assert_eq!(conn.feed(&pending, limits), Err(e));
                    seen.push(format!("{e:?}"));
                    return seen;
                }
            }
        }
    }
    seen
}
