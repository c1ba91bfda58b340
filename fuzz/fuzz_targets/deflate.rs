//! Compressed messages (permessage-deflate) through `Session::feed_with`
//! (server role), split into fragments and reads at arbitrary points.
//!
//! Input: which messages to send (each either a plaintext that is
//! compressed, or raw bytes sent as if compressed), whether the client
//! keeps its compression context, where each compressed payload is cut into
//! fragments, and where the whole stream is cut into reads.
//!
//! Properties:
//! - never panics; inflated output stays within the message limit and the
//!   inflate buffer never grows past it (plus one byte);
//! - the outcome (messages, frames sent, state, error) is the same whether
//!   the stream is fed whole, in the fuzzer's reads, or a byte at a time;
//! - with only compressed plaintexts (and text only when it is UTF-8), every
//!   message comes out exactly as it went in, in order, with no error;
//!   with raw bytes, any error is one permessage-deflate or the frame rules
//!   allow: 1007 (bad data or text) or 1009 (too big).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsd::proto::deflate::{Deflater, Inflater};
use wsd::proto::frame::{write_masked_frame, OpCode, RSV1};
use wsd::proto::{Inflate, MessageKind, ProtocolError, Role, Session, State};
use wsd_fuzz::{Ev, Recorder, LIMITS};

#[derive(Arbitrary, Debug)]
struct Input {
    /// The client keeps its context: the session's inflater is not reset.
    takeover: bool,
    messages: Vec<Msg>,
    /// Where the stream is cut into reads (taken modulo its length + 1).
    cuts: Vec<u16>,
}

#[derive(Arbitrary, Debug)]
struct Msg {
    text: bool,
    /// Compress these bytes (true), or send them as they are with RSV1.
    compress: bool,
    bytes: Vec<u8>,
    /// Where the payload is cut into fragments.
    fragments: Vec<u16>,
}

/// One session fed under the feed contract, with its own inflater.
struct Run {
    session: Session,
    buf: Vec<u8>,
    rec: Recorder,
    inflater: Inflater,
    out: Vec<u8>,
    reset: bool,
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    state: State,
    error: Option<ProtocolError>,
}

impl Run {
    fn new(takeover: bool) -> Run {
        Run {
            session: Session::new(Role::Server),
            buf: Vec::new(),
            rec: Recorder::default(),
            inflater: Inflater::new(15),
            out: Vec::new(),
            reset: !takeover,
        }
    }

    fn push(&mut self, piece: &[u8]) {
        self.buf.extend_from_slice(piece);
        let z = Inflate {
            inflater: &mut self.inflater,
            reset: self.reset,
            out: &mut self.out,
        };
        let keep = self
            .session
            .feed_with(&mut self.buf, &LIMITS, Some(z), &mut self.rec);
        assert!(keep <= self.buf.len());
        assert!(self.out.len() <= LIMITS.max_message);
        assert!(
            self.out.capacity() <= LIMITS.max_message + 1,
            "inflate buffer grew to {}",
            self.out.capacity()
        );
        self.buf.truncate(keep);
    }

    fn finish(self) -> Outcome {
        Outcome {
            events: self.rec.events,
            state: self.session.state(),
            error: self.session.error(),
        }
    }
}

fuzz_target!(|input: Input| {
    let mut deflater = Deflater::new(15);
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut all_valid = true;
    let mut key = 0x9E37_79B9u32;
    for m in input.messages.iter().take(8) {
        let payload = if m.compress {
            let mut c = Vec::new();
            assert!(deflater.compress(&m.bytes, &mut c, !input.takeover));
            c
        } else {
            all_valid = false;
            m.bytes.clone()
        };
        if m.text && std::str::from_utf8(&m.bytes).is_err() {
            all_valid = false;
        }
        if m.bytes.len() > LIMITS.max_message || payload.len() > LIMITS.max_message {
            all_valid = false;
        }
        let kind = if m.text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        expected.push(Ev::Message(kind, m.bytes.clone()));
        let mut cuts: Vec<usize> = m
            .fragments
            .iter()
            .take(6)
            .map(|&c| usize::from(c) % (payload.len() + 1))
            .collect();
        cuts.sort_unstable();
        cuts.push(payload.len());
        let mut at = 0;
        for (i, &end) in cuts.iter().enumerate() {
            let first = i == 0;
            let op = match (first, m.text) {
                (false, _) => OpCode::Continuation,
                (true, true) => OpCode::Text,
                (true, false) => OpCode::Binary,
            };
            key = key.rotate_left(7).wrapping_add(0x6D2B_79F5);
            let start = stream.len();
            write_masked_frame(&mut stream, op, &payload[at..end], key.to_le_bytes());
            // FIN only on the last fragment; RSV1 only on the first.
            stream[start] = (stream[start] & 0x0F)
                | (u8::from(i + 1 == cuts.len()) << 7)
                | if first { RSV1 << 4 } else { 0 };
            at = end;
        }
    }

    let mut whole = Run::new(input.takeover);
    whole.push(&stream);
    let whole = whole.finish();

    let mut pieces = Run::new(input.takeover);
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .take(16)
        .map(|&c| usize::from(c) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut at = 0;
    for c in cuts {
        pieces.push(&stream[at..c]);
        at = c;
    }
    pieces.push(&stream[at..]);
    assert_eq!(pieces.finish(), whole, "fed in pieces");

    if stream.len() <= 4096 {
        let mut bytes = Run::new(input.takeover);
        for b in stream.chunks(1) {
            bytes.push(b);
        }
        assert_eq!(bytes.finish(), whole, "fed a byte at a time");
    }

    if all_valid {
        assert_eq!(whole.error, None, "{whole:?}");
        assert_eq!(whole.state, State::Open);
        assert_eq!(whole.events, expected);
    } else if let Some(e) = whole.error {
        assert!(
            matches!(e.close_code(), 1007 | 1009),
            "unexpected error {e:?}"
        );
    }
});
