//! The stamp a payload starts with: when a message was due and sent, who
//! sent it, its sequence number, and a checksum over them, as 32 raw
//! bytes in a binary payload or 64 lowercase hex digits in a text one (so
//! it stays valid UTF-8); and the letter padding that follows it.
//!
//! Below [`crate::fill`] and [`crate::payload`], which build whole
//! payloads and frames from these.

use wsd::proto::frame::OpCode;
use wsd::proto::MessageKind;

/// Stamp length in a binary payload.
pub const BINARY_STAMP: usize = 32;
/// Stamp length in a text payload (hex).
pub const TEXT_STAMP: usize = 64;

/// How payloads are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Text frames: the stamp in hex.
    Text,
    /// Binary frames: the stamp raw.
    Binary,
}

impl Encoding {
    /// The stamp's length: the smallest payload that carries one.
    pub const fn stamp_len(self) -> usize {
        match self {
            Encoding::Text => TEXT_STAMP,
            Encoding::Binary => BINARY_STAMP,
        }
    }

    /// The message kind replies must have.
    pub const fn kind(self) -> MessageKind {
        match self {
            Encoding::Text => MessageKind::Text,
            Encoding::Binary => MessageKind::Binary,
        }
    }

    /// The name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Encoding::Text => "text",
            Encoding::Binary => "binary",
        }
    }

    /// The frame opcode that carries it.
    pub const fn opcode(self) -> OpCode {
        match self {
            Encoding::Text => OpCode::Text,
            Encoding::Binary => OpCode::Binary,
        }
    }
}

/// What a payload says about itself. Times are nanoseconds since the run's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// When the message was due (open-loop modes); the send time otherwise.
    pub intended_ns: u64,
    /// When it was actually queued for sending.
    pub sent_ns: u64,
    /// The sending connection (echo, rate) or publisher (broadcast).
    pub id: u32,
    /// The sender's sequence number, from 0.
    pub seq: u64,
}

/// A 32-bit mix of the stamp's fields, so a flipped bit anywhere is caught.
fn checksum(s: &Stamp) -> u32 {
    let mut h =
        s.intended_ns ^ s.sent_ns.rotate_left(17) ^ (u64::from(s.id) << 29) ^ s.seq.rotate_left(43);
    // The finalizer of MurmurHash3's 64-bit variant.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h ^ (h >> 32)) as u32
}

fn stamp_bytes(s: &Stamp) -> [u8; BINARY_STAMP] {
    let mut b = [0u8; BINARY_STAMP];
    b[0..8].copy_from_slice(&s.intended_ns.to_le_bytes());
    b[8..16].copy_from_slice(&s.sent_ns.to_le_bytes());
    b[16..20].copy_from_slice(&s.id.to_le_bytes());
    b[20..28].copy_from_slice(&s.seq.to_le_bytes());
    b[28..32].copy_from_slice(&checksum(s).to_le_bytes());
    b
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes the stamp into `out`, which is exactly `enc.stamp_len()` long.
pub fn encode_stamp(s: &Stamp, enc: Encoding, out: &mut [u8]) {
    let raw = stamp_bytes(s);
    match enc {
        Encoding::Binary => out.copy_from_slice(&raw),
        Encoding::Text => {
            for (pair, b) in out.chunks_exact_mut(2).zip(raw) {
                pair[0] = HEX[usize::from(b >> 4)];
                pair[1] = HEX[usize::from(b & 0xF)];
            }
        }
    }
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Reads a stamp from the start of `buf`; `None` if it is short or garbled.
pub fn decode_stamp(buf: &[u8], enc: Encoding) -> Option<Stamp> {
    let mut raw = [0u8; BINARY_STAMP];
    match enc {
        Encoding::Binary => raw.copy_from_slice(buf.get(..BINARY_STAMP)?),
        Encoding::Text => {
            let hex = buf.get(..TEXT_STAMP)?;
            for (b, pair) in raw.iter_mut().zip(hex.chunks_exact(2)) {
                *b = (unhex(pair[0])? << 4) | unhex(pair[1])?;
            }
        }
    }
    let word = |r: std::ops::Range<usize>| {
        let mut w = [0u8; 8];
        w[..r.len()].copy_from_slice(&raw[r]);
        u64::from_le_bytes(w)
    };
    let s = Stamp {
        intended_ns: word(0..8),
        sent_ns: word(8..16),
        id: word(16..20) as u32,
        seq: word(20..28),
    };
    (word(28..32) as u32 == checksum(&s)).then_some(s)
}

/// The padding byte at payload position `i`: lowercase letters, valid text.
pub fn padding_byte(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        intended_ns: 123_456_789,
        sent_ns: 123_999_000,
        id: 42,
        seq: 7,
    };

    #[test]
    fn stamps_round_trip_in_both_encodings() {
        for enc in [Encoding::Binary, Encoding::Text] {
            let mut buf = vec![0u8; enc.stamp_len()];
            encode_stamp(&STAMP, enc, &mut buf);
            assert_eq!(decode_stamp(&buf, enc), Some(STAMP), "{enc:?}");
        }
    }

    #[test]
    fn text_stamps_are_lowercase_hex() {
        let mut buf = [0u8; TEXT_STAMP];
        encode_stamp(&STAMP, Encoding::Text, &mut buf);
        assert!(buf
            .iter()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn any_flipped_bit_in_a_stamp_is_caught() {
        for enc in [Encoding::Binary, Encoding::Text] {
            let mut buf = vec![0u8; enc.stamp_len()];
            encode_stamp(&STAMP, enc, &mut buf);
            for i in 0..buf.len() {
                for bit in 0..8 {
                    let mut bad = buf.clone();
                    bad[i] ^= 1 << bit;
                    assert_eq!(decode_stamp(&bad, enc), None, "{enc:?} byte {i} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn short_stamps_are_rejected() {
        assert_eq!(decode_stamp(&[0u8; 31], Encoding::Binary), None);
        assert_eq!(decode_stamp(&[b'0'; 63], Encoding::Text), None);
    }
}
