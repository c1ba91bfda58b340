//! What one message looks like on the bus.
//!
//! A message published to a room's channel (`--redis-prefix` and the
//! room, `wsd:/chat`) is one bulk string:
//!
//! ```text
//! byte 0          format version, 2
//! byte 1          kind: 1 text, 2 binary (the WebSocket opcodes)
//! bytes 2..10     the publishing process's instance token: 8 random bytes
//!                 chosen at start
//! byte 10         n, the length of the node id, 1..=64
//! bytes 11..11+n  the publishing node's id (ASCII: letters, digits, . _ : -)
//! the rest        the message payload, as the client sent it
//! ```
//!
//! With `--history` over Redis, a node publishes through a script that
//! appends the message to its room's stream and publishes version 3, the
//! same header with two more fields between the node id and the payload
//! (see [`super::streams`]):
//!
//! ```text
//! 8 bytes         the sending connection on the publishing node (its own
//!                 business: it skips the sender with --exclude-sender)
//! 1 byte m        the length of the offset, 1..=41
//! m bytes         the offset: the stream entry's ID, `ms-seq`
//! ```
//!
//! Eleven bytes and the node id (16 by default) on top of the payload; the
//! room is the channel's name, not repeated here. A receiver drops what it
//! cannot decode (another version, an unknown kind, a truncated header,
//! text that is not UTF-8, which a browser would fail the connection on)
//! and counts it; it never trusts a publisher on the channel to be a wsd.
//! Nodes of different format versions do not exchange messages: each
//! drops the other's as `bad_envelope`.
//!
//! A node skips its own messages when Redis sends them back: same node id
//! *and* same instance token. The token tells two processes apart that
//! were given one `--node-id` by mistake: a message with our id and
//! another token is a clash, delivered (it is another node's) and counted,
//! where version 1, which had no token, silently dropped it as an echo.
//!
//! # Raw messages
//!
//! A backend that is not a wsd publishes plain bytes to the room's raw
//! channel, `--redis-prefix` + `raw:` + the room (`PUBLISH wsd:raw:/chat
//! hello`): no envelope, the whole message is the payload, sent as text
//! when it is valid UTF-8 and as binary otherwise ([`raw_kind`]). Every
//! node with members in the room delivers it; wsd never publishes there.

use crate::history::Offset;
use crate::proto::MessageKind;

/// The format version this build writes and reads.
pub const VERSION: u8 = 2;

/// The version of a recorded message: one with its offset (see the module
/// doc).
pub const RECORDED: u8 = 3;

/// The length of the sender field of a recorded message.
pub const SENDER_LEN: usize = 8;

/// The longest offset: two 20-digit numbers and a `-`.
const MAX_OFFSET: usize = 41;

/// The longest node id.
pub const MAX_NODE_ID: usize = 64;

/// The length of the instance token.
pub const INSTANCE_LEN: usize = 8;

/// The header's length before the node id: version, kind, instance token,
/// node id length.
const FIXED: usize = 3 + INSTANCE_LEN;

/// The longest envelope header: what the envelope adds to a payload.
pub const MAX_HEADER: usize = FIXED + MAX_NODE_ID;

/// What comes between `--redis-prefix` and the room in a raw channel's
/// name (see the module doc).
pub const RAW: &[u8] = b"raw:";

const TEXT: u8 = 1;
const BINARY: u8 = 2;

/// The token that tells this process's envelopes from those of another
/// process with the same node id: random, chosen once at start.
pub type Instance = [u8; INSTANCE_LEN];

/// A decoded envelope, borrowed from the bytes it came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The id of the node that published it.
    pub node: &'a [u8],
    /// The publishing process's instance token.
    pub instance: Instance,
    /// Text or binary.
    pub kind: MessageKind,
    /// The message.
    pub payload: &'a [u8],
    /// Its offset in its room's history, if it was recorded (version 3).
    pub offset: Option<Offset>,
    /// The connection that sent it on the publishing node (version 3).
    pub sender: Option<u64>,
}

/// Why bytes on a channel are not an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Shorter than its header says.
    Truncated,
    /// A version this build does not read.
    Version(u8),
    /// A kind other than text (1) or binary (2).
    Kind(u8),
    /// A node id of length 0 or over [`MAX_NODE_ID`].
    NodeId,
    /// A text message that is not UTF-8.
    Utf8,
    /// A recorded message whose offset is not `ms-seq`.
    Offset,
}

/// Checks a node id: 1 to 64 ASCII letters, digits, `.`, `_`, `:` or `-`
/// (also what Redis accepts in a client name, where it appears too).
pub fn check_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_NODE_ID {
        return Err(format!(
            "node id '{id}' must be 1 to {MAX_NODE_ID} characters"
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "node id '{id}' has '{c}': use letters, digits, '.', '_', ':', '-'"
        ));
    }
    Ok(())
}

/// The header's length for a node id of `node_len` bytes.
pub fn header_len(node_len: usize) -> usize {
    FIXED + node_len
}

/// Writes the header of an envelope from `node`, process `instance`; the
/// payload follows it. `node` must have passed [`check_node_id`].
pub fn write_header(out: &mut Vec<u8>, node: &[u8], instance: &Instance, kind: MessageKind) {
    let kind = match kind {
        MessageKind::Text => TEXT,
        MessageKind::Binary => BINARY,
    };
    // A checked id is at most 64 bytes; the clamp only keeps the length
    // byte honest for one that is not.
    let len = node.len().min(MAX_NODE_ID);
    out.extend_from_slice(&[VERSION, kind]);
    out.extend_from_slice(instance);
    out.push(len as u8);
    out.extend_from_slice(node.get(..len).unwrap_or_default());
}

/// Writes the header of a recorded message (version 3) up to and with its
/// sender: the script that records it appends the offset and the payload.
pub fn write_recorded_header(
    out: &mut Vec<u8>,
    node: &[u8],
    instance: &Instance,
    kind: MessageKind,
    sender: u64,
) {
    let at = out.len();
    write_header(out, node, instance, kind);
    if let Some(version) = out.get_mut(at) {
        *version = RECORDED;
    }
    out.extend_from_slice(&sender.to_le_bytes());
}

/// Decodes an envelope without copying: the node id and payload are
/// slices of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    let [version, kind, rest @ ..] = bytes else {
        return Err(EnvelopeError::Truncated);
    };
    if *version != VERSION && *version != RECORDED {
        return Err(EnvelopeError::Version(*version));
    }
    let kind = match *kind {
        TEXT => MessageKind::Text,
        BINARY => MessageKind::Binary,
        other => return Err(EnvelopeError::Kind(other)),
    };
    let Some(([i0, i1, i2, i3, i4, i5, i6, i7, len], rest)) = rest.split_first_chunk() else {
        return Err(EnvelopeError::Truncated);
    };
    let instance = [*i0, *i1, *i2, *i3, *i4, *i5, *i6, *i7];
    let len = usize::from(*len);
    if len == 0 || len > MAX_NODE_ID {
        return Err(EnvelopeError::NodeId);
    }
    let (Some(node), Some(mut payload)) = (rest.get(..len), rest.get(len..)) else {
        return Err(EnvelopeError::Truncated);
    };
    let (mut offset, mut sender) = (None, None);
    if *version == RECORDED {
        let Some((id, [m, rest @ ..])) = payload.split_first_chunk::<SENDER_LEN>() else {
            return Err(EnvelopeError::Truncated);
        };
        let m = usize::from(*m);
        let (Some(text), Some(rest)) = (rest.get(..m), rest.get(m..)) else {
            return Err(EnvelopeError::Truncated);
        };
        let parsed = std::str::from_utf8(text)
            .ok()
            .filter(|t| canonical(t))
            .and_then(Offset::parse);
        if m > MAX_OFFSET || parsed.is_none() {
            return Err(EnvelopeError::Offset);
        }
        (offset, sender, payload) = (parsed, Some(u64::from_le_bytes(*id)), rest);
    }
    if kind == MessageKind::Text && std::str::from_utf8(payload).is_err() {
        return Err(EnvelopeError::Utf8);
    }
    Ok(Envelope {
        node,
        instance,
        kind,
        payload,
        offset,
        sender,
    })
}

/// Whether `text` is an offset as Redis writes one: `ms-seq`, each a
/// decimal without leading zeros (so that it reads back to the same bytes).
fn canonical(text: &str) -> bool {
    let plain = |n: &str| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
    };
    text.split_once('-')
        .is_some_and(|(ms, seq)| plain(ms) && plain(seq))
}

/// How a raw message (see the module doc) is delivered: text if `payload`
/// is valid UTF-8, else binary.
pub fn raw_kind(payload: &[u8]) -> MessageKind {
    if std::str::from_utf8(payload).is_ok() {
        MessageKind::Text
    } else {
        MessageKind::Binary
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ME: Instance = *b"instance";

    fn encode(node: &[u8], instance: &Instance, kind: MessageKind, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, node, instance, kind);
        assert_eq!(out.len(), header_len(node.len()));
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn the_format_is_eleven_bytes_and_the_node_id() {
        assert_eq!(
            encode(b"n1", &[1, 2, 3, 4, 5, 6, 7, 8], MessageKind::Text, b"hi"),
            [2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 2, b'n', b'1', b'h', b'i']
        );
        assert_eq!(
            encode(b"x", &[0; 8], MessageKind::Binary, b""),
            [2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'x']
        );
    }

    #[test]
    fn garbage_is_rejected() {
        let head = |kind: u8, len: u8| {
            let mut v = vec![2, kind];
            v.extend_from_slice(&ME);
            v.push(len);
            v
        };
        let cases: [(Vec<u8>, EnvelopeError); 10] = [
            (vec![], EnvelopeError::Truncated),
            (vec![2, 1], EnvelopeError::Truncated),
            (head(1, 1)[..10].to_vec(), EnvelopeError::Truncated),
            // Version 1 had no instance token: a node of the old format.
            (vec![1, 1, 1, b'a'], EnvelopeError::Version(1)),
            (vec![4, 1, 1, b'a'], EnvelopeError::Version(4)),
            (vec![2, 0, 1, b'a'], EnvelopeError::Kind(0)),
            (vec![2, 9, 1, b'a'], EnvelopeError::Kind(9)),
            (head(1, 0), EnvelopeError::NodeId),
            (head(1, 65), EnvelopeError::NodeId),
            (
                [head(2, 3), b"ab".to_vec()].concat(),
                EnvelopeError::Truncated,
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(decode(&bytes), Err(err), "{bytes:?}");
        }
        let bad_text = [head(1, 1), b"a\xff".to_vec()].concat();
        assert_eq!(decode(&bad_text), Err(EnvelopeError::Utf8));
        let binary = [head(2, 1), b"a\xff".to_vec()].concat();
        assert!(decode(&binary).is_ok(), "binary is any bytes");
    }

    /// A recorded message as the stream script publishes it.
    fn recorded(sender: u64, id: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_recorded_header(&mut out, b"n1", &ME, MessageKind::Text, sender);
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn recorded_messages_carry_their_sender_and_offset() {
        let bytes = recorded(0x0102_0304_0506_0708, b"1765081234567-12", b"hi");
        assert_eq!(bytes[0], RECORDED);
        let env = decode(&bytes).unwrap();
        assert_eq!(
            (env.node, env.kind, env.payload, env.sender),
            (
                &b"n1"[..],
                MessageKind::Text,
                &b"hi"[..],
                Some(0x0102_0304_0506_0708)
            )
        );
        assert_eq!(
            env.offset,
            Some(Offset {
                ms: 1765081234567,
                seq: 12
            })
        );
        for (bytes, err) in [
            (recorded(1, b"", b"x"), EnvelopeError::Offset),
            (recorded(1, b"12-x", b"x"), EnvelopeError::Offset),
            (recorded(1, b"-1", b"x"), EnvelopeError::Offset),
            (recorded(1, b"01-1", b"x"), EnvelopeError::Offset),
            (recorded(1, b"1-01", b"x"), EnvelopeError::Offset),
            (recorded(1, b"12", b"x"), EnvelopeError::Offset),
            (recorded(1, &[b'1'; 42], b"x"), EnvelopeError::Offset),
            (recorded(1, b"1-1", b"\xff"), EnvelopeError::Utf8),
        ] {
            assert_eq!(decode(&bytes), Err(err), "{bytes:?}");
        }
        // Cut anywhere in the sender or the offset: truncated.
        let whole = recorded(7, b"99-1", b"");
        for cut in 13..whole.len() - 1 {
            assert_eq!(
                decode(&whole[..cut]),
                Err(EnvelopeError::Truncated),
                "{cut}"
            );
        }
        assert!(decode(&whole).is_ok());
    }

    #[test]
    fn raw_payloads_are_text_when_utf8() {
        assert_eq!(raw_kind(b"hello"), MessageKind::Text);
        assert_eq!(raw_kind(b""), MessageKind::Text);
        assert_eq!(raw_kind("γειά".as_bytes()), MessageKind::Text);
        assert_eq!(raw_kind(b"\xff\x00"), MessageKind::Binary);
        // A code point cut in half is not text.
        assert_eq!(raw_kind(&"γ".as_bytes()[..1]), MessageKind::Binary);
    }

    #[test]
    fn node_ids_are_short_and_plain() {
        assert!(check_node_id("node-1.eu_west:3").is_ok());
        assert!(check_node_id(&"a".repeat(64)).is_ok());
        assert!(check_node_id("").is_err());
        assert!(check_node_id(&"a".repeat(65)).is_err());
        for bad in ["a b", "a\nb", "né", "a/b"] {
            assert!(check_node_id(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn envelopes_round_trip(node in "[a-z0-9]{1,64}", instance: Instance, binary: bool, payload in prop::collection::vec(any::<u8>(), 0..300), text in ".{0,50}") {
            let (kind, payload) = if binary {
                (MessageKind::Binary, payload)
            } else {
                (MessageKind::Text, text.into_bytes())
            };
            let bytes = encode(node.as_bytes(), &instance, kind, &payload);
            let env = decode(&bytes).unwrap();
            prop_assert_eq!(env, Envelope { node: node.as_bytes(), instance, kind, payload: &payload, offset: None, sender: None });
        }

        #[test]
        fn arbitrary_bytes_decode_to_a_consistent_envelope_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..90)) {
            if let Ok(env) = decode(&bytes) {
                prop_assert_eq!(encode(env.node, &env.instance, env.kind, env.payload), bytes);
            }
        }
    }
}
