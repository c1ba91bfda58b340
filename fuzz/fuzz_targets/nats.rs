//! The bus's NATS decoder (`wsd::bus::nats::codec::decode`) and subject
//! mapping, on arbitrary bytes.
//!
//! Input layout: byte 0 picks the payload limit (16 bytes if even, 1 MiB if
//! odd, so that both the oversized path and deep input are reached); the
//! rest is what a NATS server might send.
//!
//! Properties, for every input:
//! - decoding never panics, and operations back to back decode one after
//!   the other, each `offset` at least one byte and within the input;
//! - a `MSG`'s payload is the announced length and within the limit; an
//!   oversized one is announced at its control line, its skip the length
//!   and CRLF;
//! - every prefix of the input (the first 600) decodes to `NeedMore(n)`
//!   with `n >= 1` and no more than the operation lacks, or to the whole
//!   input's result: the same operation once it is all there, the same
//!   error as soon as the bytes show it;
//! - a `MSG` subject that decodes as a room encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::bus::nats::codec::{decode, Limits, Op, MAX_LINE};
use wsd::bus::nats::subject::{decode_room, encode_room};
use wsd::proto::Parsing;

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_payload: if first % 2 == 0 { 16 } else { 1 << 20 },
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
        assert!(*offset <= MAX_LINE + 2 + limits.max_payload + 2, "{offset}");
        match value {
            Op::Msg(head, payload) => {
                assert!(payload.len() <= limits.max_payload);
                round_trip(head.subject);
            }
            Op::Oversized(head, skip) => {
                assert!(*skip > limits.max_payload + 2);
                round_trip(head.subject);
            }
            _ => {}
        }
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

fn round_trip(subject: &[u8]) {
    if let Some(room) = decode_room(subject) {
        let mut again = Vec::new();
        encode_room(&mut again, &room);
        assert_eq!(again, subject);
    }
}
