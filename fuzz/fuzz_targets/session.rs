//! `Session::feed` (server role) on arbitrary byte streams cut at arbitrary
//! points.
//!
//! Input layout: byte 0's low nibble is a count `k`; the next `k` bytes are
//! the lengths of the first `k` pieces (0 is an empty read); the rest of the
//! input is the stream, and what the pieces do not cover is one last piece.
//! Byte 0's bit 4 makes the session start the closing handshake itself
//! (`close(1001, "bye")`) before the first byte arrives.
//!
//! Properties:
//! - never panics; the kept length never exceeds the bound of the module
//!   doc (max_message + 14 + 125) and a closed session keeps nothing;
//! - the outcome (messages and frames sent, in order; final state, error,
//!   close code; the bytes kept) is the same whether the stream is fed whole,
//!   in the fuzzer's pieces, or one byte at a time;
//! - every text message is valid UTF-8 and every message within the limit;
//! - every frame sent is a well-formed unmasked server control frame; a Close
//!   carries a valid code; at most one Close is sent and nothing after it;
//! - the session is Closed exactly when it sent a Close (a server that never
//!   calls `close()` only closes in reply or on error); on an error the Close
//!   carries the error's code; otherwise it echoes the peer's;
//! - a session that sent its own Close first (CloseSent) reports nothing
//!   more at all: no message, no pong, no second Close, and keeps its code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::proto::{MessageKind, OpCode, State};
use wsd_fuzz::{check_server_frame, close_code_of, Ev, Feeder, Outcome, CLOSING_CODE, LIMITS};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(first & 0x0F).min(rest.len());
    let (lens, stream) = rest.split_at(k);
    let closing = first & 0x10 != 0;
    let new = || if closing { Feeder::closing() } else { Feeder::new() };

    let mut whole = new();
    whole.push(stream);
    let whole = whole.finish();
    if closing {
        check_closing(&whole);
    } else {
        check_outcome(&whole);
    }

    let mut pieces = new();
    let mut at = 0;
    for &len in lens {
        let end = (at + usize::from(len)).min(stream.len());
        pieces.push(&stream[at..end]);
        at = end;
    }
    pieces.push(&stream[at..]);
    assert_eq!(pieces.finish(), whole, "fed in pieces {lens:?}");

    if stream.len() <= 2048 {
        let mut bytes = new();
        for b in stream.chunks(1) {
            bytes.push(b);
        }
        assert_eq!(bytes.finish(), whole, "fed a byte at a time");
    }
});

fn check_outcome(out: &Outcome) {
    let mut closes = 0;
    let mut last_close = None;
    for ev in &out.events {
        assert_eq!(closes, 0, "something reported after the Close: {ev:?}");
        match ev {
            Ev::Message(kind, payload) => {
                assert!(payload.len() <= LIMITS.max_message);
                if *kind == MessageKind::Text {
                    assert!(std::str::from_utf8(payload).is_ok(), "text {payload:02x?}");
                }
            }
            Ev::Send(frame) => match check_server_frame(frame) {
                (OpCode::Close, payload) => {
                    closes += 1;
                    last_close = Some(payload.to_vec());
                }
                (OpCode::Pong, _) => {}
                (op, _) => panic!("a server session sent {op:?}"),
            },
        }
    }
    assert_eq!(closes == 1, out.state == State::Closed, "{out:?}");
    assert!(out.state != State::CloseSent, "CloseSent without close()");
    if let Some(payload) = last_close {
        let sent = close_code_of(&payload);
        match out.error {
            Some(e) => {
                assert_eq!(sent, Some(e.close_code()), "{out:?}");
                assert_eq!(out.close_code, Some(e.close_code()));
            }
            // The peer's Close, echoed: 1005 stands for an empty one.
            None => assert_eq!(out.close_code, Some(sent.unwrap_or(1005)), "{out:?}"),
        }
        assert!(out.kept.is_empty());
    } else {
        assert_eq!(out.error, None);
        assert_eq!(out.close_code, None);
    }
}

fn check_closing(out: &Outcome) {
    let [Ev::Send(frame)] = &out.events[..] else {
        panic!("reported more after its own Close: {out:?}");
    };
    let (op, payload) = check_server_frame(frame);
    assert_eq!((op, close_code_of(payload)), (OpCode::Close, Some(CLOSING_CODE)));
    assert_eq!(out.close_code, Some(CLOSING_CODE), "{out:?}");
    assert_ne!(out.state, State::Open);
    if out.state == State::Closed {
        assert!(out.kept.is_empty());
    } else {
        assert_eq!(out.error, None);
    }
}
