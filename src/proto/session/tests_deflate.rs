//! The session with permessage-deflate agreed: RSV1 rules, compressed
//! messages whole and fragmented, limits and errors while inflating.

use super::tests::{raw_frame, Recorder};
use super::*;
use crate::proto::deflate::Deflater;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;

/// A session fed under the feed contract with a deflate context.
struct Feeder {
    session: Session,
    buf: Vec<u8>,
    limits: Limits,
    rec: Recorder,
    inflater: Inflater,
    out: Vec<u8>,
    reset: bool,
}

impl Feeder {
    fn new(reset: bool) -> Feeder {
        Feeder {
            session: Session::new(Role::Server),
            buf: Vec::new(),
            limits: Limits::default(),
            rec: Recorder::default(),
            inflater: Inflater::new(15),
            out: Vec::new(),
            reset,
        }
    }
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        let z = Inflate {
            inflater: &mut self.inflater,
            reset: self.reset,
            out: &mut self.out,
        };
        let keep = self
            .session
            .feed_with(&mut self.buf, &self.limits, Some(z), &mut self.rec);
        self.buf.truncate(keep);
    }
}

fn compress(msg: &[u8], z: &mut Deflater, reset: bool) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(z.compress(msg, &mut out, reset));
    out
}

fn closed_with(f: &Feeder, code: u16) {
    assert_eq!(f.session.state(), State::Closed);
    assert_eq!(f.rec.close_codes(), vec![Some(code)]);
}

#[test]
fn a_compressed_text_message_is_inflated_and_delivered() {
    let mut f = Feeder::new(true);
    let c = compress(
        "κόσμε, hello hello hello".as_bytes(),
        &mut Deflater::new(15),
        true,
    );
    f.push(&raw_frame(true, RSV1, TEXT, &c));
    assert_eq!(
        f.rec.messages,
        [(
            MessageKind::Text,
            "κόσμε, hello hello hello".as_bytes().to_vec()
        )]
    );
    // Uncompressed messages still pass on a deflate connection.
    f.push(&raw_frame(true, 0, BINARY, b"plain"));
    assert_eq!(f.rec.messages[1], (MessageKind::Binary, b"plain".to_vec()));
    assert_eq!(f.session.state(), State::Open);
}

#[test]
fn a_compressed_message_split_across_fragments_and_reads_is_assembled() {
    let msg: Vec<u8> = (0..20_000u32)
        .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
        .collect();
    let c = compress(&msg, &mut Deflater::new(15), true);
    for pieces in [1, 2, 3, 7] {
        let mut stream = Vec::new();
        let step = c.len().div_ceil(pieces);
        for (i, chunk) in c.chunks(step).enumerate() {
            let (rsv, op) = if i == 0 { (RSV1, BINARY) } else { (0, CONT) };
            stream.extend(raw_frame(
                i == pieces - 1 || chunk.len() < step,
                rsv,
                op,
                chunk,
            ));
            // A ping between fragments.
            stream.extend(raw_frame(true, 0, 0x9, b"p"));
        }
        for read in [1, 5, 4096, stream.len()] {
            let mut f = Feeder::new(true);
            for r in stream.chunks(read) {
                f.push(r);
            }
            assert_eq!(
                f.rec.messages.len(),
                1,
                "{pieces} fragments, reads of {read}"
            );
            assert!(f.rec.messages[0].1 == msg);
            assert_eq!(f.session.state(), State::Open);
        }
    }
}

#[test]
fn rsv1_without_deflate_is_1002() {
    let mut f = Feeder::new(true);
    f.buf = raw_frame(true, RSV1, TEXT, &[0x00]);
    let keep = f.session.feed(&mut f.buf, &f.limits, &mut f.rec);
    assert_eq!(keep, 0);
    closed_with(&f, 1002);
    assert_eq!(f.session.error(), Some(ProtocolError::ReservedBits));
}

#[test]
fn rsv1_on_a_continuation_frame_is_1002() {
    let mut f = Feeder::new(true);
    let c = compress(b"hello hello", &mut Deflater::new(15), true);
    let (a, b) = c.split_at(3);
    f.push(&raw_frame(false, RSV1, TEXT, a));
    f.push(&raw_frame(true, RSV1, CONT, b));
    closed_with(&f, 1002);
    assert_eq!(
        f.session.error(),
        Some(ProtocolError::CompressedContinuation)
    );
}

#[test]
fn rsv1_on_a_control_frame_is_1002() {
    for op in [0x8, 0x9, 0xA] {
        let mut f = Feeder::new(true);
        f.push(&raw_frame(true, RSV1, op, b""));
        closed_with(&f, 1002);
        assert_eq!(f.session.error(), Some(ProtocolError::CompressedControl));
    }
}

#[test]
fn rsv2_and_rsv3_stay_reserved_with_deflate() {
    for rsv in [0b010, 0b001, 0b110] {
        let mut f = Feeder::new(true);
        f.push(&raw_frame(true, rsv, TEXT, &[0x00]));
        closed_with(&f, 1002);
        assert_eq!(f.session.error(), Some(ProtocolError::ReservedBits));
    }
}

#[test]
fn invalid_compressed_data_is_1007() {
    let mut f = Feeder::new(true);
    f.push(&raw_frame(true, RSV1, BINARY, &[0xff, 0xff, 0xff]));
    closed_with(&f, 1007);
    assert_eq!(f.session.error(), Some(ProtocolError::InvalidCompressed));
}

#[test]
fn compressed_invalid_utf8_is_1007() {
    let mut f = Feeder::new(true);
    let mut text = "ok ".repeat(1000).into_bytes();
    text.extend_from_slice(b"\xff\xfe");
    let c = compress(&text, &mut Deflater::new(15), true);
    f.push(&raw_frame(true, RSV1, TEXT, &c));
    closed_with(&f, 1007);
    assert_eq!(f.session.error(), Some(ProtocolError::InvalidUtf8));
    // Text that ends inside a character.
    let mut f = Feeder::new(true);
    let c = compress(b"abc\xe2\x82", &mut Deflater::new(15), true);
    f.push(&raw_frame(true, RSV1, TEXT, &c));
    closed_with(&f, 1007);
}

#[test]
fn a_small_frame_that_inflates_past_the_limit_is_1009() {
    let mut f = Feeder::new(true);
    f.limits.max_message = 64 << 10;
    let c = compress(&vec![0u8; 1 << 20], &mut Deflater::new(15), true);
    assert!(c.len() < f.limits.max_message);
    f.push(&raw_frame(true, RSV1, BINARY, &c));
    closed_with(&f, 1009);
    assert_eq!(f.session.error(), Some(ProtocolError::MessageTooBig));
    assert!(
        f.out.capacity() <= (64 << 10) + 1,
        "grew to {}",
        f.out.capacity()
    );
}

#[test]
fn with_context_takeover_messages_refer_to_earlier_ones() {
    let mut z = Deflater::new(15);
    let msg = b"the same words again and again, the same words again";
    let first = compress(msg, &mut z, false);
    let second = compress(msg, &mut z, false);
    assert!(
        second.len() < first.len() / 2,
        "{} vs {}",
        second.len(),
        first.len()
    );
    let mut f = Feeder::new(false);
    f.push(&raw_frame(true, RSV1, TEXT, &first));
    f.push(&raw_frame(true, RSV1, TEXT, &second));
    assert_eq!(f.rec.messages.len(), 2);
    assert_eq!(f.rec.messages[1].1, msg);
    // Without the context (the peer agreed not to keep it) the second
    // message refers to nothing: 1007.
    let mut f = Feeder::new(true);
    f.push(&raw_frame(true, RSV1, TEXT, &first));
    f.push(&raw_frame(true, RSV1, TEXT, &second));
    closed_with(&f, 1007);
}

#[test]
fn nothing_is_inflated_after_our_close() {
    let mut f = Feeder::new(true);
    f.session.close(1001, "bye", &mut f.rec);
    f.push(&raw_frame(true, RSV1, BINARY, &[0xff, 0xff]));
    assert!(f.rec.messages.is_empty());
    assert_eq!(f.session.state(), State::CloseSent);
}
