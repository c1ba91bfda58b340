//! The bus's RESP decoder (`wsd::bus::resp::decode`), on arbitrary bytes.
//!
//! Input layout: byte 0 picks the limit (`max_frame`: 64 bytes if even,
//! 1 MiB if odd, so that both the size check and deep input are reached);
//! the rest is what a Redis server might send.
//!
//! Properties, for every input:
//! - decoding never panics, and replies back to back decode one after the
//!   other, each `offset` at least one byte and within the input;
//! - a decoded reply re-encodes (`Frame::encode`) to exactly the bytes it
//!   was decoded from (numbers are canonical, nothing is lost);
//! - every prefix of the input (the first 600) decodes to `NeedMore(n)`
//!   with `n >= 1` and no more than the reply lacks, or to the whole
//!   input's result: the same reply once it is all there, the same error
//!   as soon as the bytes show it;
//! - a bulk string over the limit is refused (or, as the last element,
//!   handed out as `Oversized` for the caller to skip) without waiting for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::bus::resp::{decode, Limits, MAX_ITEMS, MAX_LINE};
use wsd::proto::Parsing;

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_frame: if first % 2 == 0 { 64 } else { 1 << 20 },
    };
    let mut at = 0;
    while let Some(rest) = input.get(at..) {
        check(rest, &limits);
        match decode(rest, &limits) {
            Ok(Parsing::Done { offset, .. }) => {
                assert!(offset >= 1 && offset <= rest.len());
                at += offset;
            }
            _ => break,
        }
    }
});

fn check(input: &[u8], limits: &Limits) {
    let whole = decode(input, limits);
    if let Ok(Parsing::Done { value, offset }) = &whole {
        let mut again = Vec::new();
        value.encode(&mut again);
        assert_eq!(again, &input[..*offset], "re-encoding of {value:?}");
        // A whole reply is within the limit, but for lines (which have
        // their own bound): an array header and up to 8 lines on top.
        let lines = (MAX_ITEMS + 1) * (MAX_LINE + 3);
        assert!(*offset <= limits.max_frame + lines, "{offset}");
    }
    for cut in 0..input.len().min(600) {
        let part = decode(&input[..cut], limits);
        match (&part, &whole) {
            (Ok(Parsing::NeedMore(n)), Ok(Parsing::Done { offset, .. })) => {
                assert!(*n >= 1 && cut + n <= *offset, "cut {cut}: NeedMore({n}), whole {offset}")
            }
            (Ok(Parsing::NeedMore(n)), _) => assert!(*n >= 1),
            (Ok(Parsing::Done { offset, .. }), _) => {
                assert_eq!(&part, &whole, "cut {cut} decoded, the whole differs");
                assert!(*offset <= cut);
            }
            (Err(e), _) => assert_eq!(&whole, &Err(*e), "cut {cut} failed, the whole differs"),
        }
    }
}
