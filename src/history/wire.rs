//! What a `wsd.offsets` client receives: each room message with its offset
//! in front (`1765081234567-0:` then the payload, the message's own
//! opcode), and once, right after the handshake, a text message starting
//! with `!` and then JSON saying where its stream stands:
//!
//! ```text
//! !{"status":"resumed","epoch":123,"offset":"1765081234567-3","replayed":2}
//! ```
//!
//! `status` is `live`, `rewound`, `resumed` or `reset`; on `reset`,
//! `reason` is `too-old` (the history no longer reaches back to `since`)
//! `epoch` (the history the client knew is gone) or `unavailable` (the
//! history could not be read): the client must refetch its state. `offset` is the last offset recorded when the client
//! joined: the replayed messages end there and live ones follow it.
//! Offsets are digits and one `-`, so no payload byte can be mistaken for
//! one, and a data message never starts with `!`.

use std::io::Write;

use super::{Offset, Outcome, Recovery, ResetReason};
use crate::proto::frame::{decode_header, OpCode};
use crate::proto::session::{message_header, write_message};
use crate::proto::{MessageKind, Parsing};

/// The kind of a frame broadcast encoded (whole, unmasked) and where its
/// payload starts; `None` if it is not one.
pub fn split(frame: &[u8]) -> Option<(MessageKind, usize)> {
    let Ok(Parsing::Done { value, offset }) = decode_header(frame) else {
        return None;
    };
    let kind = match value.opcode {
        OpCode::Text => MessageKind::Text,
        OpCode::Binary => MessageKind::Binary,
        _ => return None,
    };
    Some((kind, offset))
}

/// Writes a message as a `wsd.offsets` client gets it: `OFFSET:` and then
/// the payload, one frame of the message's kind. A message not recorded
/// ([`Offset::ZERO`]: the history could not take it) has an empty offset.
pub fn write_framed(out: &mut Vec<u8>, kind: MessageKind, offset: Offset, payload: &[u8]) {
    let mut prefix = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut prefix[..]);
    // 2 × 20 digits, '-' and ':' fit 48 bytes.
    let _ = if offset == Offset::ZERO {
        write!(cursor, ":")
    } else {
        write!(cursor, "{offset}:")
    };
    let n = usize::try_from(cursor.position()).unwrap_or(0);
    let prefix = prefix.get(..n).unwrap_or_default();
    out.extend_from_slice(message_header(kind, n + payload.len()).as_slice());
    out.extend_from_slice(prefix);
    out.extend_from_slice(payload);
}

/// Writes the status message a `wsd.offsets` client gets first.
pub fn write_status(out: &mut Vec<u8>, r: &Recovery) {
    let (status, n, reason) = match r.outcome {
        Outcome::Live => ("live", 0, None),
        Outcome::Rewound(n) => ("rewound", n, None),
        Outcome::Resumed(n) => ("resumed", n, None),
        Outcome::Reset(ResetReason::TooOld) => ("reset", 0, Some("too-old")),
        Outcome::Reset(ResetReason::Epoch) => ("reset", 0, Some("epoch")),
        Outcome::Reset(ResetReason::Unavailable) => ("reset", 0, Some("unavailable")),
    };
    let mut text = format!(
        "!{{\"status\":\"{status}\",\"epoch\":{},\"offset\":\"{}\",\"replayed\":{n}",
        r.epoch, r.last
    );
    if let Some(reason) = reason {
        text.push_str(",\"reason\":\"");
        text.push_str(reason);
        text.push('"');
    }
    text.push('}');
    write_message(out, MessageKind::Text, text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_of(frame: &[u8]) -> (MessageKind, &[u8]) {
        let (kind, at) = split(frame).unwrap();
        (kind, &frame[at..])
    }

    #[test]
    fn framed_messages_carry_their_offset_in_front() {
        for len in [0, 5, 120, 200, 70_000] {
            let payload = vec![b'z'; len];
            let mut out = Vec::new();
            let o = Offset {
                ms: 1765081234567,
                seq: 12,
            };
            write_framed(&mut out, MessageKind::Binary, o, &payload);
            let (kind, got) = payload_of(&out);
            assert_eq!(kind, MessageKind::Binary);
            let (head, rest) = got.split_at(got.iter().position(|&b| b == b':').unwrap());
            assert_eq!(head, b"1765081234567-12");
            assert_eq!(&rest[1..], &payload[..]);
        }
        let mut out = Vec::new();
        let max = Offset {
            ms: u64::MAX,
            seq: u64::MAX,
        };
        write_framed(&mut out, MessageKind::Text, max, b"x");
        assert!(payload_of(&out).1.ends_with(b"18446744073709551615:x"));
    }

    #[test]
    fn split_refuses_what_broadcast_never_encodes() {
        assert_eq!(split(b""), None);
        assert_eq!(split(&[0x81]), None);
        // A ping is not a message.
        assert_eq!(split(&[0x89, 0x00]), None);
        let mut f = Vec::new();
        write_message(&mut f, MessageKind::Text, b"hi");
        assert_eq!(split(&f), Some((MessageKind::Text, 2)));
    }

    #[test]
    fn the_status_is_json_behind_a_bang() {
        let mut out = Vec::new();
        let r = Recovery {
            epoch: 42,
            last: Offset { ms: 9, seq: 1 },
            outcome: Outcome::Reset(ResetReason::TooOld),
        };
        write_status(&mut out, &r);
        let (kind, text) = payload_of(&out);
        assert_eq!(kind, MessageKind::Text);
        assert_eq!(
            std::str::from_utf8(text).unwrap(),
            r#"!{"status":"reset","epoch":42,"offset":"9-1","replayed":0,"reason":"too-old"}"#
        );
    }
}
