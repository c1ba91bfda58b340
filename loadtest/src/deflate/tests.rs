use super::*;
use flate2::{Decompress, FlushDecompress};
use proptest::prelude::*;
use wsd::proto::{Events, Inflate, Limits, MessageKind, ProtocolError, Role, Session};

fn ok(v: &str) -> Agreement {
    match parse_answer(v) {
        Ok(Some(a)) => a,
        other => panic!("{v:?}: {other:?}"),
    }
}

fn err(v: &str) -> AnswerError {
    match parse_answer(v) {
        Err(e) => e,
        other => panic!("{v:?} was accepted: {other:?}"),
    }
}

#[test]
fn no_answer_is_a_decline() {
    assert_eq!(parse_answer(""), Ok(None));
    assert_eq!(parse_answer(" , ,"), Ok(None));
}

#[test]
fn every_parameter_is_read() {
    assert_eq!(ok("permessage-deflate"), Agreement::default());
    let a = ok("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=8");
    assert_eq!(
        a,
        Agreement {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(8),
        }
    );
    assert!(ok("permessage-deflate;server_no_context_takeover").server_no_context_takeover);
    assert!(ok("permessage-deflate;client_no_context_takeover").client_no_context_takeover);
    assert_eq!(
        ok("permessage-deflate; client_max_window_bits = \"15\"").client_max_window_bits,
        Some(15)
    );
    assert_eq!(
        ok("permessage-deflate; server_max_window_bits=9").server_max_window_bits,
        Some(9)
    );
}

#[test]
fn window_bits_are_8_to_15_without_leading_zeros() {
    for bits in 8..=15u8 {
        let a = ok(&format!(
            "permessage-deflate; server_max_window_bits={bits}"
        ));
        assert_eq!(a.server_max_window_bits, Some(bits));
    }
    for bad in ["7", "16", "08", "0", "", "1a", "\"9", "-9", "9.0", "99"] {
        for p in ["server_max_window_bits", "client_max_window_bits"] {
            let v = format!("permessage-deflate; {p}={bad}");
            assert!(matches!(err(&v), AnswerError::BadBits(_)), "{v}");
        }
    }
}

#[test]
fn values_must_be_present_exactly_where_required() {
    for p in ["server_max_window_bits", "client_max_window_bits"] {
        let v = format!("permessage-deflate; {p}");
        assert_eq!(err(&v), AnswerError::Value(p));
    }
    for p in ["server_no_context_takeover", "client_no_context_takeover"] {
        let v = format!("permessage-deflate; {p}=1");
        assert_eq!(err(&v), AnswerError::Value(p));
    }
}

#[test]
fn duplicates_unknowns_and_other_extensions_fail() {
    for p in [
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits=10",
        "client_max_window_bits=10",
    ] {
        let v = format!("permessage-deflate; {p}; {p}");
        assert!(matches!(err(&v), AnswerError::Duplicate(_)), "{v}");
    }
    assert_eq!(
        err("permessage-deflate; mystery"),
        AnswerError::UnknownParam("mystery".into())
    );
    assert_eq!(
        err("permessage-deflate; Server_No_Context_Takeover"),
        AnswerError::UnknownParam("Server_No_Context_Takeover".into())
    );
    assert_eq!(
        err("x-webkit-deflate-frame"),
        AnswerError::NotOffered("x-webkit-deflate-frame".into())
    );
    assert_eq!(
        err("permessage-deflate, permessage-deflate"),
        AnswerError::Twice
    );
    assert!(matches!(
        err("permessage-deflate, other"),
        AnswerError::NotOffered(_)
    ));
}

/// Inflates with wsd's inflater, as the session does.
fn inflate(z: &mut Inflater, payload: &[u8], reset: bool) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    z.inflate(payload, &mut out, 1 << 20, reset, &mut |_| Ok(()))?;
    Ok(out)
}

/// Inflates with a bare flate2 decompressor, `00 00 ff ff` appended: an
/// oracle that shares no code with wsd's inflater.
fn oracle(z: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&TAIL);
    let mut out = Vec::with_capacity(1 << 20);
    z.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .expect("valid raw deflate");
    out
}

proptest! {
    #[test]
    fn compressed_messages_inflate_to_themselves(
        msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..6),
        bits in 8u8..=15,
        reset in any::<bool>(),
        repeat in any::<bool>(),
    ) {
        let mut c = Compressor::new(bits, reset);
        let mut ours = Inflater::new(bits);
        let mut bare = Decompress::new_with_window_bits(false, 15);
        for m in &msgs {
            // Repeat each message, so context takeover has something to use.
            for _ in 0..1 + usize::from(repeat) {
                let mut payload = Vec::new();
                prop_assert!(c.compress(m, &mut payload));
                prop_assert!(!payload.is_empty());
                prop_assert!(!payload.ends_with(&TAIL) || m.is_empty());
                prop_assert_eq!(&inflate(&mut ours, &payload, reset).expect("inflates"), m);
                if reset {
                    bare = Decompress::new_with_window_bits(false, 15);
                }
                prop_assert_eq!(&oracle(&mut bare, &payload), m);
            }
        }
    }
}

#[test]
fn without_context_takeover_each_message_stands_alone() {
    let msg = b"the same message, twice over, the same message".repeat(4);
    let mut alone = Compressor::new(15, true);
    let mut a = Vec::new();
    let mut b = Vec::new();
    assert!(alone.compress(&msg, &mut a) && alone.compress(&msg, &mut b));
    assert_eq!(a, b, "a reset compressor repeats itself");
    // A fresh inflater takes the second message alone.
    assert_eq!(inflate(&mut Inflater::new(15), &b, true), Ok(msg.clone()));
    let mut kept = Compressor::new(15, false);
    let mut a = Vec::new();
    let mut b = Vec::new();
    assert!(kept.compress(&msg, &mut a) && kept.compress(&msg, &mut b));
    assert!(
        b.len() < a.len() / 2,
        "context takeover matches the last message"
    );
    assert!(inflate(&mut Inflater::new(15), &b, true).is_err());
}

/// Collects messages; ignores frames to send.
#[derive(Default)]
struct Got(Vec<Vec<u8>>);

impl Events for Got {
    fn message(&mut self, _: MessageKind, payload: &[u8]) {
        self.0.push(payload.to_vec());
    }
    fn send(&mut self, _: &[u8]) {}
}

#[test]
fn a_deflate_bomb_fails_at_the_message_limit() {
    // 16 MiB of zeros compress to about 16 KiB at the best level.
    let mut c = Compress::new_with_window_bits(Compression::best(), false, 15);
    let mut payload = Vec::with_capacity(1 << 20);
    c.compress_vec(&vec![0u8; 16 << 20], &mut payload, FlushCompress::Sync)
        .expect("compress");
    assert!(payload.len() < 64 << 10, "{}", payload.len());
    let mut frame = encode_header(true, RSV1, OpCode::Binary, payload.len() as u64, None)
        .as_slice()
        .to_vec();
    frame.extend_from_slice(&payload);
    let limits = Limits {
        max_message: 64 << 10,
        max_frame: 64 << 10,
        ..Limits::default()
    };
    let mut d = Deflate::new(Agreement::default());
    let mut s = Session::new(Role::Client);
    let mut got = Got::default();
    let inflate = Inflate {
        inflater: &mut d.inflater,
        reset: false,
        out: &mut d.inflated,
    };
    s.feed_with(&mut frame, &limits, Some(inflate), &mut got);
    assert!(got.0.is_empty());
    assert_eq!(s.error(), Some(ProtocolError::MessageTooBig));
    assert!(
        d.inflated.capacity() <= 2 * limits.max_message,
        "{}",
        d.inflated.capacity()
    );
}

/// A masked client frame, as the codecs write them.
fn client_frame(op: OpCode, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut f = encode_header(true, 0, op, payload.len() as u64, Some(key))
        .as_slice()
        .to_vec();
    let at = f.len();
    f.extend_from_slice(payload);
    apply_mask(&mut f[at..], key, 0);
    f
}

/// Decodes one masked frame: header and unmasked payload, and its length.
fn open_frame(buf: &[u8]) -> (wsd::proto::frame::Header, Vec<u8>, usize) {
    let Ok(Parsing::Done { value, offset }) = decode_header(buf) else {
        panic!("no frame");
    };
    let end = offset + value.len as usize;
    let mut p = buf[offset..end].to_vec();
    apply_mask(&mut p, value.mask.expect("masked"), 0);
    (value, p, end)
}

#[test]
fn sealing_compresses_data_frames_and_leaves_the_rest() {
    let key = [9, 8, 7, 6];
    let msg = b"{\"id\":1,\"user\":\"the\"},".repeat(40);
    let mut out = b"already sent".to_vec();
    let from = out.len();
    out.extend(client_frame(OpCode::Text, &msg, key));
    out.extend(client_frame(OpCode::Ping, b"hi", key));
    out.extend(client_frame(OpCode::Binary, &msg, key));
    let partial = client_frame(OpCode::Binary, &msg, key);
    out.extend_from_slice(&partial[..20]);
    let mut d = Deflate::new(Agreement::default());
    let mut wire = Wire::default();
    let next = seal(&mut out, from, Some(&mut d), &mut wire);
    assert_eq!(&out[..from], b"already sent");
    assert_eq!(
        &out[next..],
        &partial[..20],
        "a partial frame waits as it was"
    );
    assert_eq!(wire.msg_out, 2 * msg.len() as u64);
    let mut inf = Inflater::new(15);
    let mut at = from;
    for (op, rsv) in [
        (OpCode::Text, RSV1),
        (OpCode::Ping, 0),
        (OpCode::Binary, RSV1),
    ] {
        let (h, p, len) = open_frame(&out[at..]);
        assert_eq!((h.opcode, h.rsv, h.mask), (op, rsv, Some(key)));
        if rsv == RSV1 {
            assert!(p.len() < msg.len() / 4);
            assert_eq!(inflate(&mut inf, &p, false), Ok(msg.clone()));
        } else {
            assert_eq!(p, b"hi");
        }
        at += len;
    }
    assert_eq!(at, next);
}

#[test]
fn sealing_without_deflate_only_counts() {
    let frame = client_frame(OpCode::Binary, &[1, 2, 3], [1, 1, 1, 1]);
    let mut out = frame.clone();
    let mut wire = Wire::default();
    assert_eq!(seal(&mut out, 0, None, &mut wire), frame.len());
    assert_eq!(out, frame);
    assert_eq!(wire.msg_out, 3);
}
