//! What every message wsload sends carries, and how a reply is checked.
//!
//! A payload starts with a [`Stamp`] (intended and actual send time, the
//! sender's id, a sequence number, and a checksum over them) and is padded to
//! the requested size with a fixed lowercase-letter pattern. Binary payloads
//! carry the stamp as 32 raw bytes; text payloads as 64 lowercase hex digits,
//! so they stay valid UTF-8. A reply is verified byte for byte: the stamp's
//! checksum covers the stamp, the padding is compared with the pattern, and
//! the caller checks the id and sequence number against what it expects.
//!
//! Frames are pre-encoded: [`Codec`] keeps one masked frame whose padding is
//! already masked, so sending a message is one copy plus masking the stamp.

use wsd::proto::frame::{encode_header, OpCode};
use wsd::proto::mask::apply_mask;
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
    /// The stamp's length, and so the smallest payload.
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

    const fn opcode(self) -> OpCode {
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

/// Why a reply is not what was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Text where binary was sent, or the reverse.
    Kind,
    /// A different length.
    Length,
    /// The stamp is garbled (bad hex or checksum).
    Stamp,
    /// The padding differs.
    Padding,
    /// A valid stamp, but not the one expected next (wrong id or sequence).
    Order,
}

impl Mismatch {
    /// A short description for error reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mismatch::Kind => "wrong message type",
            Mismatch::Length => "wrong length",
            Mismatch::Stamp => "corrupted stamp",
            Mismatch::Padding => "corrupted padding",
            Mismatch::Order => "unexpected sequence number or sender",
        }
    }
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

/// Pre-encoded frames of one size and encoding, masked with one key.
#[derive(Clone, Debug)]
pub struct Codec {
    enc: Encoding,
    key: [u8; 4],
    /// A whole masked frame with a zeroed stamp: copied for each message.
    frame: Vec<u8>,
    /// Where the payload starts in `frame`.
    header_len: usize,
    /// The unmasked payload with a zeroed stamp: what replies are checked against.
    plain: Vec<u8>,
}

impl Codec {
    /// Frames with `size`-byte payloads; `size` is at least the stamp length.
    pub fn new(enc: Encoding, size: usize, key: [u8; 4]) -> Codec {
        let size = size.max(enc.stamp_len());
        let plain: Vec<u8> = (0..size)
            .map(|i| {
                if i < enc.stamp_len() {
                    0
                } else {
                    padding_byte(i)
                }
            })
            .collect();
        let header = encode_header(true, 0, enc.opcode(), size as u64, Some(key));
        let mut frame = Vec::with_capacity(header.as_slice().len() + size);
        frame.extend_from_slice(header.as_slice());
        frame.extend_from_slice(&plain);
        let header_len = header.as_slice().len();
        apply_mask(&mut frame[header_len..], key, 0);
        Codec {
            enc,
            key,
            frame,
            header_len,
            plain,
        }
    }

    /// The payload size.
    #[cfg(test)]
    pub fn size(&self) -> usize {
        self.plain.len()
    }

    /// One frame's length on the wire.
    #[cfg(test)]
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// Appends a masked frame carrying `s` to `out`.
    pub fn write(&self, out: &mut Vec<u8>, s: &Stamp) {
        let start = out.len() + self.header_len;
        out.extend_from_slice(&self.frame);
        let n = self.enc.stamp_len();
        let stamp = &mut out[start..start + n];
        encode_stamp(s, self.enc, stamp);
        // The stamp sits at payload offset 0, so it takes the key unrotated.
        apply_mask(stamp, self.key, 0);
    }

    /// Checks a reply and returns its stamp.
    pub fn verify(&self, kind: MessageKind, payload: &[u8]) -> Result<Stamp, Mismatch> {
        if kind != self.enc.kind() {
            return Err(Mismatch::Kind);
        }
        if payload.len() != self.plain.len() {
            return Err(Mismatch::Length);
        }
        let n = self.enc.stamp_len();
        let stamp = decode_stamp(payload, self.enc).ok_or(Mismatch::Stamp)?;
        if payload[n..] != self.plain[n..] {
            return Err(Mismatch::Padding);
        }
        Ok(stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsd::proto::frame::{decode_header, Parsing};

    const STAMP: Stamp = Stamp {
        intended_ns: 123_456_789,
        sent_ns: 123_999_000,
        id: 42,
        seq: 7,
    };

    /// Unmasks a frame written by a codec and returns its payload.
    fn unmask(frame: &[u8]) -> (OpCode, Vec<u8>) {
        let Ok(Parsing::Done { value, offset }) = decode_header(frame) else {
            panic!("no header");
        };
        let mut payload = frame[offset..].to_vec();
        assert_eq!(payload.len() as u64, value.len);
        apply_mask(
            &mut payload,
            value.mask.expect("client frames are masked"),
            0,
        );
        (value.opcode, payload)
    }

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

    #[test]
    fn written_frames_verify_as_their_own_replies() {
        for (enc, size) in [
            (Encoding::Binary, 32),
            (Encoding::Binary, 1000),
            (Encoding::Binary, 70_000),
            (Encoding::Text, 64),
            (Encoding::Text, 200),
        ] {
            let codec = Codec::new(enc, size, [0x37, 0xfa, 0x21, 0x3d]);
            let mut out = vec![9, 9];
            codec.write(&mut out, &STAMP);
            assert_eq!(out.len(), 2 + codec.frame_len());
            let (op, payload) = unmask(&out[2..]);
            assert_eq!(op, enc.opcode());
            assert_eq!(payload.len(), size);
            assert_eq!(
                codec.verify(enc.kind(), &payload),
                Ok(STAMP),
                "{enc:?} {size}"
            );
            if enc == Encoding::Text {
                assert!(std::str::from_utf8(&payload).is_ok());
            }
        }
    }

    #[test]
    fn corrupted_replies_are_mismatches() {
        let codec = Codec::new(Encoding::Binary, 100, [1, 2, 3, 4]);
        let mut out = Vec::new();
        codec.write(&mut out, &STAMP);
        let (_, good) = unmask(&out);
        assert_eq!(codec.verify(MessageKind::Text, &good), Err(Mismatch::Kind));
        assert_eq!(
            codec.verify(MessageKind::Binary, &good[..99]),
            Err(Mismatch::Length)
        );
        let mut bad = good.clone();
        bad[3] ^= 0x10;
        assert_eq!(
            codec.verify(MessageKind::Binary, &bad),
            Err(Mismatch::Stamp)
        );
        let mut bad = good.clone();
        bad[99] = b'!';
        assert_eq!(
            codec.verify(MessageKind::Binary, &bad),
            Err(Mismatch::Padding)
        );
    }

    #[test]
    fn sizes_below_the_stamp_are_raised_to_it() {
        assert_eq!(
            Codec::new(Encoding::Text, 10, [1, 2, 3, 4]).size(),
            TEXT_STAMP
        );
    }
}
