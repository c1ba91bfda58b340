use super::*;
use crate::proto::frame::RSV1;
use proptest::prelude::*;

/// Everything a session reported, in order.
#[derive(Default, Debug, PartialEq, Eq)]
pub(super) struct Recorder {
    pub(super) messages: Vec<(MessageKind, Vec<u8>)>,
    pub(super) sent: Vec<Vec<u8>>,
}

impl Events for Recorder {
    fn message(&mut self, kind: MessageKind, payload: &[u8]) {
        self.messages.push((kind, payload.to_vec()));
    }
    fn send(&mut self, frame: &[u8]) {
        self.sent.push(frame.to_vec());
    }
}

impl Recorder {
    /// The close codes of the Close frames sent (server frames, unmasked).
    pub(super) fn close_codes(&self) -> Vec<Option<u16>> {
        self.sent
            .iter()
            .filter(|f| f[0] & 0x0F == 0x8)
            .map(|f| (f[1] >= 2).then(|| u16::from_be_bytes([f[2], f[3]])))
            .collect()
    }
}

const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// A masked client frame with explicit FIN, RSV and opcode nibble.
pub(super) fn raw_frame(fin: bool, rsv: u8, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | op];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&KEY);
    let start = out.len();
    out.extend_from_slice(payload);
    crate::proto::mask::apply_mask_naive(&mut out[start..], KEY, 0);
    out
}

fn frame(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    raw_frame(fin, 0, op.nibble(), payload)
}

/// A buffer owner that follows the feed contract, as the reactor does.
struct Feeder {
    session: Session,
    buf: Vec<u8>,
    limits: Limits,
    rec: Recorder,
}

impl Feeder {
    fn new() -> Feeder {
        Feeder::with_limits(Limits::default())
    }
    fn with_limits(limits: Limits) -> Feeder {
        Feeder {
            session: Session::new(Role::Server),
            buf: Vec::new(),
            limits,
            rec: Recorder::default(),
        }
    }
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        let keep = self
            .session
            .feed(&mut self.buf, &self.limits, &mut self.rec);
        self.buf.truncate(keep);
    }
    fn push_in_pieces(&mut self, bytes: &[u8], piece: usize) {
        for chunk in bytes.chunks(piece.max(1)) {
            self.push(chunk);
        }
    }
}

fn feed_all(bytes: &[u8]) -> Feeder {
    let mut f = Feeder::new();
    f.push(bytes);
    f
}

fn fails_with(bytes: &[u8], code: u16) {
    let f = feed_all(bytes);
    assert_eq!(f.session.state(), State::Closed, "{bytes:?}");
    assert_eq!(f.rec.close_codes(), vec![Some(code)], "{bytes:?}");
    assert!(f.rec.messages.is_empty());
}

#[test]
fn single_text_frame_is_delivered() {
    let f = feed_all(&frame(true, OpCode::Text, b"Hello"));
    assert_eq!(f.rec.messages, vec![(MessageKind::Text, b"Hello".to_vec())]);
    assert!(f.rec.sent.is_empty());
    assert!(f.buf.is_empty());
}

#[test]
fn every_length_form_is_delivered() {
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 100_000] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let f = feed_all(&frame(true, OpCode::Binary, &payload));
        assert_eq!(
            f.rec.messages,
            vec![(MessageKind::Binary, payload)],
            "len {len}"
        );
    }
}

#[test]
fn pipelined_frames_with_a_partial_tail_keep_only_the_tail() {
    let mut bytes = frame(true, OpCode::Text, b"one");
    bytes.extend(frame(true, OpCode::Binary, b"two"));
    let third = frame(true, OpCode::Text, b"three");
    bytes.extend_from_slice(&third[..4]);
    let mut f = feed_all(&bytes);
    assert_eq!(f.rec.messages.len(), 2);
    f.push(&third[4..]);
    assert_eq!(f.rec.messages[2], (MessageKind::Text, b"three".to_vec()));
    assert!(f.buf.is_empty());
}

#[test]
fn fragments_with_a_ping_between_are_assembled() {
    let mut bytes = frame(false, OpCode::Text, b"Hel");
    bytes.extend(frame(true, OpCode::Ping, b"p!"));
    bytes.extend(frame(false, OpCode::Continuation, b"lo, "));
    bytes.extend(frame(true, OpCode::Pong, b"ignored"));
    bytes.extend(frame(true, OpCode::Continuation, b"world"));
    let f = feed_all(&bytes);
    assert_eq!(
        f.rec.messages,
        vec![(MessageKind::Text, b"Hello, world".to_vec())]
    );
    assert_eq!(f.rec.sent, vec![vec![0x8A, 2, b'p', b'!']]);
}

#[test]
fn a_whole_frame_fails_as_one_in_pieces_does() {
    // Whole, these frames meet the fast path; byte by byte, the general
    // parser. Each refusal must be the same: the code, and no message.
    let limits = || Limits {
        max_message: 100,
        max_frame: 80,
        max_fragments: 4,
    };
    let mut unmasked = frame(true, OpCode::Binary, b"abc");
    unmasked[1] &= 0x7F;
    unmasked.drain(2..6);
    let cases: [(&str, Vec<u8>, u16); 6] = [
        ("invalid UTF-8", frame(true, OpCode::Text, b"ok\xff"), 1007),
        (
            "cut character",
            frame(true, OpCode::Text, b"ab\xe2\x82"),
            1007,
        ),
        (
            "over max_frame",
            frame(true, OpCode::Binary, &[1; 81]),
            1009,
        ),
        (
            "continuation first",
            frame(true, OpCode::Continuation, b"x"),
            1002,
        ),
        ("RSV1 without deflate", raw_frame(true, 4, 2, b"x"), 1002),
        ("unmasked", unmasked, 1002),
    ];
    for (name, bytes, code) in cases {
        let mut whole = Feeder::with_limits(limits());
        whole.push(&bytes);
        let mut bytewise = Feeder::with_limits(limits());
        bytewise.push_in_pieces(&bytes, 1);
        for f in [&whole, &bytewise] {
            assert_eq!(f.session.state(), State::Closed, "{name}");
            assert_eq!(f.rec.close_codes(), vec![Some(code)], "{name}");
            assert!(f.rec.messages.is_empty(), "{name}");
        }
        assert_eq!(whole.session.error(), bytewise.session.error(), "{name}");
    }
    // Over max_message but under max_frame: only a message limit that is
    // lower than the frame limit can tell.
    let small = || Limits {
        max_message: 10,
        max_frame: 80,
        max_fragments: 4,
    };
    let mut f = Feeder::with_limits(small());
    f.push(&frame(true, OpCode::Binary, &[1; 11]));
    assert_eq!(f.rec.close_codes(), vec![Some(1009)]);
}

#[test]
fn same_events_whatever_the_split_points() {
    let mut bytes = frame(false, OpCode::Binary, &[7; 300]);
    bytes.extend(frame(true, OpCode::Ping, b"x"));
    bytes.extend(frame(true, OpCode::Continuation, &[9; 70_000]));
    bytes.extend(frame(true, OpCode::Text, "ünïcödé".as_bytes()));
    bytes.extend(frame(true, OpCode::Close, &1000u16.to_be_bytes()));
    let whole = feed_all(&bytes);
    assert_eq!(whole.rec.messages.len(), 2);
    for piece in [1, 2, 3, 5, 7, 13, 64, 1000, 4096] {
        let mut f = Feeder::new();
        f.push_in_pieces(&bytes, piece);
        assert_eq!(f.rec, whole.rec, "pieces of {piece}");
        assert_eq!(f.session.state(), State::Closed);
    }
}

#[test]
fn utf8_split_across_fragments_at_every_byte_is_accepted() {
    let text = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 😀".as_bytes();
    for cut in 0..=text.len() {
        let mut bytes = frame(false, OpCode::Text, &text[..cut]);
        bytes.extend(frame(true, OpCode::Continuation, &text[cut..]));
        let f = feed_all(&bytes);
        assert_eq!(
            f.rec.messages,
            vec![(MessageKind::Text, text.to_vec())],
            "cut {cut}"
        );
    }
}

#[test]
fn invalid_utf8_in_first_fragment_fails_before_the_rest_arrives() {
    // Autobahn 6.4.1: the bad sequence is in fragment one; fragment two has
    // not been sent yet when the server must already have closed.
    let mut f = Feeder::new();
    f.push(&frame(
        false,
        OpCode::Text,
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80",
    ));
    assert_eq!(f.session.state(), State::Closed);
    assert_eq!(f.rec.close_codes(), vec![Some(1007)]);
    assert_eq!(f.session.error(), Some(ProtocolError::InvalidUtf8));
}

#[test]
fn invalid_utf8_within_one_frame_fails_while_the_frame_arrives() {
    let bytes = frame(true, OpCode::Text, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80 and a long tail that has not arrived");
    let mut f = Feeder::new();
    // Header (6 bytes) and the first 13 payload bytes: up to the \x90.
    f.push(&bytes[..6 + 13]);
    assert_eq!(f.rec.close_codes(), vec![Some(1007)]);
}

#[test]
fn text_ending_inside_a_character_is_1007() {
    fails_with(&frame(true, OpCode::Text, b"ab\xe2\x82"), 1007);
}

#[test]
fn binary_is_not_utf8_checked() {
    let f = feed_all(&frame(true, OpCode::Binary, b"\xff\xfe"));
    assert_eq!(f.rec.messages.len(), 1);
}

#[test]
fn unmasked_client_frame_is_1002() {
    fails_with(&[0x81, 0x02, b'h', b'i'], 1002);
}

#[test]
fn reserved_bits_are_1002() {
    for rsv in 1..8 {
        fails_with(&raw_frame(true, rsv, 0x1, b"x"), 1002);
    }
    fails_with(&raw_frame(true, RSV1, 0x9, b""), 1002);
}

#[test]
fn reserved_opcodes_are_1002() {
    for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        fails_with(&raw_frame(true, 0, op, b""), 1002);
    }
}

#[test]
fn continuation_without_a_message_is_1002() {
    fails_with(&frame(true, OpCode::Continuation, b"x"), 1002);
}

#[test]
fn new_message_inside_a_fragmented_one_is_1002() {
    let mut bytes = frame(false, OpCode::Text, b"a");
    bytes.extend(frame(true, OpCode::Binary, b"b"));
    fails_with(&bytes, 1002);
}

#[test]
fn fragmented_control_frame_is_1002() {
    fails_with(&frame(false, OpCode::Ping, b"x"), 1002);
}

#[test]
fn control_frame_over_125_bytes_is_1002() {
    fails_with(&frame(true, OpCode::Ping, &[0; 126]), 1002);
}

#[test]
fn length_with_top_bit_is_1002() {
    fails_with(&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4], 1002);
}

#[test]
fn huge_declared_length_is_1009_before_any_payload() {
    // 2^62 bytes declared; nothing of the payload is sent.
    let mut header = vec![0x82, 0xFF];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&KEY);
    let f = feed_all(&header);
    assert_eq!(f.rec.close_codes(), vec![Some(1009)]);
    assert_eq!(f.session.error(), Some(ProtocolError::FrameTooBig));
}

#[test]
fn message_over_the_limit_across_fragments_is_1009() {
    let limits = Limits {
        max_message: 10,
        max_frame: 10,
        max_fragments: 100,
    };
    let mut f = Feeder::with_limits(limits);
    f.push(&frame(false, OpCode::Binary, &[1; 6]));
    f.push(&frame(true, OpCode::Continuation, &[1; 5])[..6]);
    assert_eq!(f.rec.close_codes(), vec![Some(1009)]);
    assert_eq!(f.session.error(), Some(ProtocolError::MessageTooBig));
}

#[test]
fn too_many_fragments_is_1009() {
    let limits = Limits {
        max_message: 100,
        max_frame: 100,
        max_fragments: 3,
    };
    let mut f = Feeder::with_limits(limits);
    f.push(&frame(false, OpCode::Binary, b""));
    f.push(&frame(false, OpCode::Continuation, b""));
    f.push(&frame(false, OpCode::Continuation, b""));
    assert_eq!(f.session.state(), State::Open);
    f.push(&frame(false, OpCode::Continuation, b""));
    assert_eq!(f.rec.close_codes(), vec![Some(1009)]);
}

#[test]
fn close_is_echoed_with_its_code() {
    let f = feed_all(&frame(true, OpCode::Close, b"\x03\xe9going"));
    assert_eq!(f.rec.close_codes(), vec![Some(1001)]);
    assert_eq!(f.session.state(), State::Closed);
    assert_eq!(f.session.close_code(), Some(1001));
}

#[test]
fn empty_close_gets_an_empty_close() {
    let f = feed_all(&frame(true, OpCode::Close, b""));
    assert_eq!(f.rec.sent, vec![vec![0x88, 0x00]]);
    assert_eq!(f.session.close_code(), Some(close::NO_STATUS));
}

#[test]
fn close_code_classes() {
    for code in [1000u16, 1003, 1007, 1011, 3000, 4999] {
        let f = feed_all(&frame(true, OpCode::Close, &code.to_be_bytes()));
        assert_eq!(f.rec.close_codes(), vec![Some(code)], "{code}");
    }
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000] {
        fails_with(&frame(true, OpCode::Close, &code.to_be_bytes()), 1002);
    }
    fails_with(&frame(true, OpCode::Close, b"\x03"), 1002);
    fails_with(&frame(true, OpCode::Close, b"\x03\xe8\xff"), 1007);
}

#[test]
fn close_in_the_middle_of_a_message_abandons_it() {
    let mut bytes = frame(false, OpCode::Text, b"half a mess");
    bytes.extend(frame(true, OpCode::Close, b"\x03\xe8"));
    let f = feed_all(&bytes);
    assert_eq!(f.session.state(), State::Closed);
    assert!(!f.session.in_message());
    assert!(f.rec.messages.is_empty());
}

#[test]
fn nothing_is_processed_after_close() {
    let mut bytes = frame(true, OpCode::Close, b"\x03\xe8");
    bytes.extend(frame(true, OpCode::Text, b"late"));
    bytes.extend(frame(true, OpCode::Ping, b""));
    let mut f = feed_all(&bytes);
    f.push(&frame(true, OpCode::Text, b"later"));
    assert!(f.rec.messages.is_empty());
    assert_eq!(f.rec.sent.len(), 1);
}

#[test]
fn after_close_sent_messages_are_dropped_until_the_peer_closes() {
    let mut f = Feeder::new();
    f.session.close(close::GOING_AWAY, "bye", &mut f.rec);
    assert_eq!(f.session.state(), State::CloseSent);
    f.push(&frame(true, OpCode::Text, b"in flight"));
    f.push(&frame(true, OpCode::Ping, b""));
    assert!(f.rec.messages.is_empty());
    f.push(&frame(true, OpCode::Close, b"\x03\xe9"));
    assert_eq!(f.session.state(), State::Closed);
    // Only our own close was sent: no pong, no second close.
    assert_eq!(f.rec.close_codes(), vec![Some(1001)]);
    assert_eq!(f.rec.sent.len(), 1);
}

#[test]
fn keepalive_ping_is_sent_only_while_open() {
    let mut f = Feeder::new();
    f.session.ping(b"ka", &mut f.rec);
    assert_eq!(f.rec.sent, vec![vec![0x89, 2, b'k', b'a']]);
    f.session.close(close::GOING_AWAY, "", &mut f.rec);
    f.session.ping(b"late", &mut f.rec);
    assert_eq!(f.rec.sent.len(), 2, "no ping after our close");
}

#[test]
fn client_role_rejects_masked_frames_and_masks_its_pongs() {
    let mut rec = Recorder::default();
    let mut s = Session::new(Role::Client);
    let mut ping = vec![0x89, 0x02, b'h', b'i'];
    assert_eq!(s.feed(&mut ping, &Limits::default(), &mut rec), 0);
    let pong = &rec.sent[0];
    assert_eq!(pong[0], 0x8A);
    assert_eq!(pong[1], 0x80 | 2, "a client's pong is masked");
    let mut payload = pong[6..].to_vec();
    apply_mask(&mut payload, [pong[2], pong[3], pong[4], pong[5]], 0);
    assert_eq!(payload, b"hi");

    let mut masked = frame(true, OpCode::Text, b"x");
    s.feed(&mut masked, &Limits::default(), &mut rec);
    assert_eq!(s.error(), Some(ProtocolError::MaskedFrame));
}

/// The reference the property test compares against: decode a list of whole
/// frames the obvious way (one frame, one Vec).
fn naive_messages(frames: &[(bool, OpCode, Vec<u8>)]) -> Vec<(MessageKind, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cur: Option<(MessageKind, Vec<u8>)> = None;
    for (fin, op, payload) in frames {
        match op {
            OpCode::Text | OpCode::Binary => {
                let kind = if *op == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                cur = Some((kind, payload.clone()));
            }
            OpCode::Continuation => cur.as_mut().unwrap().1.extend_from_slice(payload),
            _ => continue,
        }
        if *fin {
            out.push(cur.take().unwrap());
        }
    }
    out
}

/// A valid stream of frames: messages split into fragments with control
/// frames sprinkled between them.
fn valid_stream() -> impl Strategy<Value = Vec<(bool, OpCode, Vec<u8>)>> {
    let message = (
        any::<bool>(),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..5),
        prop::collection::vec(any::<bool>(), 5),
    );
    prop::collection::vec(message, 0..6).prop_map(|msgs| {
        let mut frames = Vec::new();
        for (binary, parts, pings) in msgs {
            let n = parts.len();
            for (i, part) in parts.into_iter().enumerate() {
                let op = match (i, binary) {
                    (0, true) => OpCode::Binary,
                    (0, false) => OpCode::Text,
                    _ => OpCode::Continuation,
                };
                // Text payloads are made ASCII so every split stays valid.
                let part = if binary {
                    part
                } else {
                    part.iter().map(|b| b & 0x7F).collect()
                };
                frames.push((i + 1 == n, op, part));
                if pings[i] {
                    frames.push((true, OpCode::Ping, vec![i as u8; i]));
                }
            }
        }
        frames
    })
}

proptest! {
    #[test]
    fn any_stream_in_any_pieces_matches_the_naive_decoder(frames in valid_stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let bytes: Vec<u8> = frames.iter().flat_map(|(fin, op, p)| frame(*fin, *op, p)).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut f = Feeder::new();
        let mut start = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            f.push(&bytes[start..p]);
            start = p;
        }
        prop_assert_eq!(f.session.state(), State::Open);
        prop_assert_eq!(f.rec.messages, naive_messages(&frames));
        prop_assert!(f.buf.is_empty());
    }

    #[test]
    fn whole_or_byte_by_byte_the_events_are_the_same(frames in valid_stream(), flip in any::<Option<(prop::sample::Index, u8)>>()) {
        // Whole frames take the fast path and pieces the general parser:
        // both must see the same messages, replies and failure, also when
        // one byte is corrupted (a bad length, opcode, mask bit or UTF-8).
        let mut bytes: Vec<u8> = frames.iter().flat_map(|(fin, op, p)| frame(*fin, *op, p)).collect();
        if let Some((at, x)) = flip {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
        }
        let limits = || Limits { max_message: 3000, max_frame: 2000, max_fragments: 6 };
        let mut whole = Feeder::with_limits(limits());
        whole.push(&bytes);
        let mut bytewise = Feeder::with_limits(limits());
        bytewise.push_in_pieces(&bytes, 1);
        prop_assert_eq!(&whole.rec, &bytewise.rec);
        prop_assert_eq!(whole.session.state(), bytewise.session.state());
        prop_assert_eq!(whole.session.error(), bytewise.session.error());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_keep_is_bounded(bytes in prop::collection::vec(any::<u8>(), 0..400), piece in 1usize..50) {
        let mut f = Feeder::with_limits(Limits { max_message: 256, max_frame: 256, max_fragments: 8 });
        f.push_in_pieces(&bytes, piece);
        // Kept bytes: at most a message under the limit plus an incomplete
        // control frame.
        prop_assert!(f.buf.len() <= 256 + MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD);
    }
}
