//! What one message looks like on the bus.
//!
//! A message published to a room's channel is one bulk string:
//!
//! ```text
//! byte 0        format version, 1
//! byte 1        kind: 1 text, 2 binary (the WebSocket opcodes)
//! byte 2        n, the length of the node id, 1..=64
//! bytes 3..3+n  the publishing node's id (ASCII: letters, digits, . _ : -)
//! the rest      the message payload, as the client sent it
//! ```
//!
//! Three bytes and the node id (16 by default) on top of the payload; the
//! room is the channel's name, not repeated here. A receiver drops what it
//! cannot decode (another version, an unknown kind, a truncated header,
//! text that is not UTF-8, which a browser would fail the connection on)
//! and counts it; it never trusts a publisher on the channel to be a wsd.

use crate::proto::MessageKind;

/// The format version this build writes and reads.
pub const VERSION: u8 = 1;

/// The longest node id.
pub const MAX_NODE_ID: usize = 64;

/// The longest envelope header: what the envelope adds to a payload.
pub const MAX_HEADER: usize = 3 + MAX_NODE_ID;

const TEXT: u8 = 1;
const BINARY: u8 = 2;

/// A decoded envelope, borrowed from the bytes it came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The id of the node that published it.
    pub node: &'a [u8],
    /// Text or binary.
    pub kind: MessageKind,
    /// The message.
    pub payload: &'a [u8],
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
    3 + node_len
}

/// Writes the header of an envelope from `node`; the payload follows it.
/// `node` must have passed [`check_node_id`].
pub fn write_header(out: &mut Vec<u8>, node: &[u8], kind: MessageKind) {
    let kind = match kind {
        MessageKind::Text => TEXT,
        MessageKind::Binary => BINARY,
    };
    // A checked id is at most 64 bytes; the clamp only keeps the length
    // byte honest for one that is not.
    let len = node.len().min(MAX_NODE_ID);
    out.extend_from_slice(&[VERSION, kind, len as u8]);
    out.extend_from_slice(node.get(..len).unwrap_or_default());
}

/// Decodes an envelope without copying: the node id and payload are
/// slices of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    let [version, kind, len, rest @ ..] = bytes else {
        return Err(EnvelopeError::Truncated);
    };
    if *version != VERSION {
        return Err(EnvelopeError::Version(*version));
    }
    let kind = match *kind {
        TEXT => MessageKind::Text,
        BINARY => MessageKind::Binary,
        other => return Err(EnvelopeError::Kind(other)),
    };
    let len = usize::from(*len);
    if len == 0 || len > MAX_NODE_ID {
        return Err(EnvelopeError::NodeId);
    }
    let (Some(node), Some(payload)) = (rest.get(..len), rest.get(len..)) else {
        return Err(EnvelopeError::Truncated);
    };
    if kind == MessageKind::Text && std::str::from_utf8(payload).is_err() {
        return Err(EnvelopeError::Utf8);
    }
    Ok(Envelope {
        node,
        kind,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encode(node: &[u8], kind: MessageKind, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, node, kind);
        assert_eq!(out.len(), header_len(node.len()));
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn the_format_is_three_bytes_and_the_node_id() {
        assert_eq!(
            encode(b"n1", MessageKind::Text, b"hi"),
            [1, 1, 2, b'n', b'1', b'h', b'i']
        );
        assert_eq!(encode(b"x", MessageKind::Binary, b""), [1, 2, 1, b'x']);
    }

    #[test]
    fn garbage_is_rejected() {
        let cases: [(&[u8], EnvelopeError); 8] = [
            (b"", EnvelopeError::Truncated),
            (&[1, 1], EnvelopeError::Truncated),
            (&[2, 1, 1, b'a'], EnvelopeError::Version(2)),
            (&[1, 0, 1, b'a'], EnvelopeError::Kind(0)),
            (&[1, 9, 1, b'a'], EnvelopeError::Kind(9)),
            (&[1, 1, 0], EnvelopeError::NodeId),
            (&[1, 1, 65], EnvelopeError::NodeId),
            (&[1, 2, 3, b'a', b'b'], EnvelopeError::Truncated),
        ];
        for (bytes, err) in cases {
            assert_eq!(decode(bytes), Err(err), "{bytes:?}");
        }
        assert_eq!(decode(&[1, 1, 1, b'a', 0xff]), Err(EnvelopeError::Utf8));
        assert!(
            decode(&[1, 2, 1, b'a', 0xff]).is_ok(),
            "binary is any bytes"
        );
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
        fn envelopes_round_trip(node in "[a-z0-9]{1,64}", binary: bool, payload in prop::collection::vec(any::<u8>(), 0..300), text in ".{0,50}") {
            let (kind, payload) = if binary {
                (MessageKind::Binary, payload)
            } else {
                (MessageKind::Text, text.into_bytes())
            };
            let bytes = encode(node.as_bytes(), kind, &payload);
            let env = decode(&bytes).unwrap();
            prop_assert_eq!(env, Envelope { node: node.as_bytes(), kind, payload: &payload });
        }

        #[test]
        fn arbitrary_bytes_decode_to_a_consistent_envelope_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(env) = decode(&bytes) {
                prop_assert_eq!(encode(env.node, env.kind, env.payload), bytes);
            }
        }
    }
}
