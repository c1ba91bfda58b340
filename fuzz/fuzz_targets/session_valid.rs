//! `Session::feed` (server role) on VALID masked client streams built from
//! structured input, against a naive reference assembler.
//!
//! The stream: messages (text from `String`, or bytes) split into fragments
//! at arbitrary byte offsets (inside multi-byte characters too), pings and
//! pongs before and between fragments, every frame with its own masking key
//! and a minimal or non-minimal length form, optionally ending with a Close
//! (empty, or a valid code and a UTF-8 reason) followed by bytes that must be
//! ignored. The stream is fed in arbitrary pieces.
//!
//! Properties: no error; exactly the messages the reference assembles and a
//! pong with the ping's payload for every ping, in stream order; the Close is
//! echoed with its code, or the session stays Open with nothing kept. When
//! the server closed first, the same stream produces nothing at all (no
//! message, no pong, no reply to the peer's Close) and no error.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsd::proto::frame::MAX_CONTROL_PAYLOAD;
use wsd::proto::{MessageKind, OpCode, State};
use wsd_fuzz::{Ev, Feeder, CLOSING_CODE, CLOSING_REASON, LIMITS};

#[derive(Arbitrary, Debug)]
struct Input {
    /// The server starts the closing handshake before the stream arrives:
    /// then nothing but its own Close may be reported.
    close_first: bool,
    messages: Vec<Message>,
    end: End,
    /// Where the stream is cut into reads (taken modulo its length + 1).
    cuts: Vec<u16>,
    /// Masking keys, used in turn (an all-zero key is valid too).
    keys: Vec<[u8; 4]>,
    /// Length forms, used in turn: 0 the shortest, 1 16-bit, 2 64-bit.
    forms: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Message {
    body: Body,
    /// Fragment boundaries, as byte offsets (modulo the length + 1).
    splits: Vec<u16>,
    /// Control frames, each after the fragment its index names (modulo
    /// the fragment count); `None` puts it before the first fragment.
    controls: Vec<(Option<u8>, Control)>,
}

#[derive(Arbitrary, Debug)]
struct Control {
    ping: bool,
    payload: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum End {
    Open,
    EmptyClose { garbage: Vec<u8> },
    Close { code: u16, reason: String, garbage: Vec<u8> },
}

/// Builds the masked client frames.
struct Writer<'a> {
    input: &'a Input,
    frames: usize,
    out: Vec<u8>,
}

impl Writer<'_> {
    fn frame(&mut self, fin: bool, op: OpCode, payload: &[u8]) {
        let i = self.frames;
        self.frames += 1;
        let key = pick(&self.input.keys, i).unwrap_or([0x37, 0xfa, 0x21, 0x3d]);
        let form = pick(&self.input.forms, i).unwrap_or(0) % 3;
        let len = payload.len();
        self.out.push((u8::from(fin) << 7) | op.nibble());
        match form {
            0 if len < 126 => self.out.push(0x80 | len as u8),
            0 | 1 if len < 65536 => {
                self.out.push(0x80 | 126);
                self.out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                self.out.push(0x80 | 127);
                self.out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        self.out.extend_from_slice(&key);
        // Masked the naive way: byte i with key[i % 4].
        self.out
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    }
}

fn pick<T: Copy>(v: &[T], i: usize) -> Option<T> {
    (!v.is_empty()).then(|| v[i % v.len()])
}

/// The longest prefix of `s` of at most `n` bytes that is whole characters.
fn cut_str(s: &str, mut n: usize) -> &str {
    n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

fn pong(payload: &[u8]) -> Ev {
    let mut f = vec![0x8A, payload.len() as u8];
    f.extend_from_slice(payload);
    Ev::Send(f)
}

fuzz_target!(|input: Input| {
    let mut w = Writer {
        input: &input,
        frames: 0,
        out: Vec::new(),
    };
    // The reference: what the session must report, in order.
    let mut expected = Vec::new();
    for m in &input.messages {
        let (kind, payload) = match &m.body {
            Body::Text(s) => (MessageKind::Text, cut_str(s, LIMITS.max_message).as_bytes()),
            Body::Binary(b) => (MessageKind::Binary, &b[..b.len().min(LIMITS.max_message)]),
        };
        let mut splits: Vec<usize> = m
            .splits
            .iter()
            .take(LIMITS.max_fragments as usize - 1)
            .map(|&s| usize::from(s) % (payload.len() + 1))
            .collect();
        splits.sort_unstable();
        splits.push(payload.len());
        let n = splits.len();
        let controls = |at: Option<usize>| {
            m.controls.iter().filter(move |(after, _)| {
                after.map(|a| usize::from(a) % n) == at
            })
        };
        let send_controls = |w: &mut Writer, expected: &mut Vec<Ev>, at| {
            for (_, c) in controls(at) {
                let p = &c.payload[..c.payload.len().min(MAX_CONTROL_PAYLOAD)];
                if c.ping {
                    w.frame(true, OpCode::Ping, p);
                    expected.push(pong(p));
                } else {
                    w.frame(true, OpCode::Pong, p);
                }
            }
        };
        send_controls(&mut w, &mut expected, None);
        let mut start = 0;
        for (i, &end) in splits.iter().enumerate() {
            let op = match (i, kind) {
                (0, MessageKind::Text) => OpCode::Text,
                (0, MessageKind::Binary) => OpCode::Binary,
                _ => OpCode::Continuation,
            };
            w.frame(i + 1 == n, op, &payload[start..end]);
            start = end;
            if i + 1 == n {
                expected.push(Ev::Message(kind, payload.to_vec()));
            }
            send_controls(&mut w, &mut expected, Some(i));
        }
    }
    let mut close_code = None;
    match &input.end {
        End::Open => {}
        End::EmptyClose { garbage } => {
            w.frame(true, OpCode::Close, b"");
            expected.push(Ev::Send(vec![0x88, 0x00]));
            w.out.extend_from_slice(garbage);
            close_code = Some(1005);
        }
        End::Close { code, reason, garbage } => {
            // Map any u16 onto the valid codes: 1000-1003, 1007-1014, 3000-4999.
            let code = match code % 2012 {
                c @ 0..=3 => 1000 + c,
                c @ 4..=11 => 1003 + c,
                c => 3000 + (c - 12),
            };
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(cut_str(reason, MAX_CONTROL_PAYLOAD - 2).as_bytes());
            w.frame(true, OpCode::Close, &payload);
            // The reply echoes the code, without a reason.
            let mut reply = vec![0x88, 0x02];
            reply.extend_from_slice(&code.to_be_bytes());
            expected.push(Ev::Send(reply));
            w.out.extend_from_slice(garbage);
            close_code = Some(code);
        }
    }
    let stream = w.out;

    let mut points: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| usize::from(c) % (stream.len() + 1))
        .collect();
    points.sort_unstable();
    let mut f = if input.close_first {
        Feeder::closing()
    } else {
        Feeder::new()
    };
    let mut start = 0;
    for p in points.into_iter().chain([stream.len()]) {
        f.push(&stream[start..p]);
        start = p;
    }
    let out = f.finish();
    assert_eq!(out.error, None, "{input:?}");
    if input.close_first {
        let mut ours = vec![0x88, 2 + CLOSING_REASON.len() as u8];
        ours.extend_from_slice(&CLOSING_CODE.to_be_bytes());
        ours.extend_from_slice(CLOSING_REASON.as_bytes());
        assert_eq!(out.events, [Ev::Send(ours)], "{input:?}");
        assert_eq!(out.close_code, Some(CLOSING_CODE));
        let state = if close_code.is_some() { State::Closed } else { State::CloseSent };
        assert_eq!(out.state, state);
    } else {
        assert_eq!(out.events, expected, "{input:?}");
        assert_eq!(out.close_code, close_code);
        let state = if close_code.is_some() { State::Closed } else { State::Open };
        assert_eq!(out.state, state);
    }
    assert!(out.kept.is_empty() && !out.in_message || out.state == State::Closed);
});
