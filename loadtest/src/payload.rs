//! What every message wsload sends carries, and how a reply is checked.
//!
//! A payload of at least the stamp's length (32 bytes binary, 64 text)
//! starts with a [`Stamp`] (intended and actual send time, the sender's id,
//! a sequence number, and a checksum over them; see [`crate::stamp`]) and
//! is padded to the requested size with a fixed lowercase-letter pattern.
//! A reply is verified byte for byte: the
//! stamp's checksum covers the stamp, the padding is compared with the
//! pattern, and the caller checks the id and sequence number against what
//! it expects.
//!
//! A smaller payload, down to 0 bytes, has no room for a stamp. It is
//! lowercase letters that start at a letter given by the sequence number
//! modulo [`CYCLE`], so a reply is still checked for type, length and
//! content, and an echo for which message it answers (modulo 26); the send
//! times stay with the sender (see `modes::InFlight`).
//!
//! Frames are pre-encoded: [`Codec`] keeps masked frames whose padding is
//! already masked, so sending a message is one copy plus masking the stamp.
//!
//! `--payload` swaps the letter padding for another fill (see
//! [`crate::fill`]). Those fills come in several variants, picked by the
//! sequence number, adding up to at least 96 KiB: a compressor that keeps
//! its context finds no earlier copy of a message's padding in its 32 KiB
//! window, so random stays incompressible. Payloads too small for a stamp
//! keep the letters.

use wsd::proto::frame::encode_header;
use wsd::proto::mask::apply_mask;
use wsd::proto::MessageKind;

use crate::fill::{generate, Fill};
use crate::stamp::{decode_stamp, encode_stamp, padding_byte, Encoding, Stamp};

/// The least a fill's variants add up to (see the module doc).
const VARIANT_BYTES: usize = 96 << 10;

/// The most variants a fill has (small payloads).
const MAX_VARIANTS: usize = 1024;

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
    /// A payload too small for a stamp is none of the ones wsload sends.
    Content,
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
            Mismatch::Content => "corrupted content",
            Mismatch::Order => "unexpected sequence number or sender",
        }
    }
}

/// How many contents payloads too small for a stamp cycle through.
pub const CYCLE: u64 = 26;

/// Pre-encoded frames of one size and encoding, masked with one key.
#[derive(Clone, Debug)]
pub struct Codec {
    enc: Encoding,
    key: [u8; 4],
    size: usize,
    /// Whether payloads are large enough to carry a stamp.
    stamped: bool,
    /// How many payloads `frames` holds (chosen by sequence number).
    variants: usize,
    /// Whole masked frames, back to back, copied for each message: one with
    /// a zeroed stamp, or without a stamp one per content of the cycle.
    frames: Vec<u8>,
    /// One frame's length.
    frame_len: usize,
    /// Where the payload starts in a frame.
    header_len: usize,
    /// The unmasked payloads of `frames`: what replies are checked against.
    plain: Vec<u8>,
}

impl Codec {
    /// Frames with `size`-byte payloads padded with letters.
    #[cfg(test)]
    pub fn new(enc: Encoding, size: usize, key: [u8; 4]) -> Codec {
        Codec::with_fill(enc, size, key, Fill::Letters, 0)
    }

    /// Frames with `size`-byte payloads padded with `fill` from `seed`.
    pub fn with_fill(enc: Encoding, size: usize, key: [u8; 4], fill: Fill, seed: u64) -> Codec {
        let stamped = size >= enc.stamp_len();
        let variants = match fill {
            _ if !stamped => CYCLE as usize,
            Fill::Letters => 1,
            _ => VARIANT_BYTES.div_ceil(size).clamp(1, MAX_VARIANTS),
        };
        let header = encode_header(true, 0, enc.opcode(), size as u64, Some(key));
        let header = header.as_slice();
        let mut plain = Vec::with_capacity(variants * size);
        let mut frames = Vec::with_capacity(variants * (header.len() + size));
        for k in 0..variants {
            let from = plain.len();
            if stamped {
                let n = enc.stamp_len();
                plain.resize(from + n, 0);
                generate(fill, enc, seed, k as u64, n, size - n, &mut plain);
            } else {
                plain.extend((0..size).map(|i| padding_byte(i + k)));
            }
            frames.extend_from_slice(header);
            let at = frames.len();
            frames.extend_from_slice(&plain[from..]);
            apply_mask(&mut frames[at..], key, 0);
        }
        Codec {
            enc,
            key,
            size,
            stamped,
            variants,
            frames,
            frame_len: header.len() + size,
            header_len: header.len(),
            plain,
        }
    }

    /// Whether payloads carry a stamp; if not, replies are checked with
    /// [`Codec::verify_content`] and send times kept by the sender.
    pub fn carries_stamp(&self) -> bool {
        self.stamped
    }

    /// One frame's length on the wire.
    #[cfg(test)]
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Appends a masked frame carrying `s` to `out`; without a stamp, only
    /// the sequence number shows, as the content's place in the cycle.
    pub fn write(&self, out: &mut Vec<u8>, s: &Stamp) {
        if !self.stamped {
            let at = (s.seq % CYCLE) as usize * self.frame_len;
            out.extend_from_slice(&self.frames[at..at + self.frame_len]);
            return;
        }
        let at = (s.seq % self.variants as u64) as usize * self.frame_len;
        let start = out.len() + self.header_len;
        out.extend_from_slice(&self.frames[at..at + self.frame_len]);
        let n = self.enc.stamp_len();
        let stamp = &mut out[start..start + n];
        encode_stamp(s, self.enc, stamp);
        // The stamp sits at payload offset 0, so it takes the key unrotated.
        apply_mask(stamp, self.key, 0);
    }

    /// Appends the payload [`Codec::write`] would frame, unframed and
    /// unmasked: a publish API request's body.
    pub fn write_plain(&self, out: &mut Vec<u8>, s: &Stamp) {
        let variant = if self.stamped {
            s.seq % self.variants as u64
        } else {
            s.seq % CYCLE
        };
        let at = variant as usize * self.size;
        let start = out.len();
        out.extend_from_slice(&self.plain[at..at + self.size]);
        if self.stamped {
            let n = self.enc.stamp_len();
            encode_stamp(s, self.enc, &mut out[start..start + n]);
        }
    }

    fn check_shape(&self, kind: MessageKind, payload: &[u8]) -> Result<(), Mismatch> {
        if kind != self.enc.kind() {
            return Err(Mismatch::Kind);
        }
        if payload.len() != self.size {
            return Err(Mismatch::Length);
        }
        Ok(())
    }

    /// Checks a stamped reply and returns its stamp.
    pub fn verify(&self, kind: MessageKind, payload: &[u8]) -> Result<Stamp, Mismatch> {
        self.check_shape(kind, payload)?;
        let n = self.enc.stamp_len();
        let stamp = decode_stamp(payload, self.enc).ok_or(Mismatch::Stamp)?;
        let at = (stamp.seq % self.variants as u64) as usize * self.size;
        if payload.get(n..) != self.plain.get(at + n..at + self.size) {
            return Err(Mismatch::Padding);
        }
        Ok(stamp)
    }

    /// Checks a reply too small for a stamp: type, length, and content,
    /// which must be that of sequence number `seq` if given, or of any.
    /// Another message's content is [`Mismatch::Order`].
    pub fn verify_content(
        &self,
        kind: MessageKind,
        payload: &[u8],
        seq: Option<u64>,
    ) -> Result<(), Mismatch> {
        self.check_shape(kind, payload)?;
        let Some(&first) = payload.first() else {
            return Ok(());
        };
        // The content's place in the cycle, read off its first letter.
        let found = first.wrapping_sub(b'a');
        if u64::from(found) >= CYCLE {
            return Err(Mismatch::Content);
        }
        let at = usize::from(found) * self.size;
        if payload != &self.plain[at..at + self.size] {
            return Err(Mismatch::Content);
        }
        match seq {
            Some(s) if s % CYCLE != u64::from(found) => Err(Mismatch::Order),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsd::proto::frame::{decode_header, OpCode, Parsing};

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
    fn plain_payloads_are_the_framed_ones_unmasked() {
        for (enc, size) in [
            (Encoding::Binary, 32),
            (Encoding::Text, 100),
            (Encoding::Text, 5),
        ] {
            let codec = Codec::with_fill(enc, size, [9, 8, 7, 6], Fill::Random, 3);
            for seq in [0, 1, 27] {
                let s = Stamp { seq, ..STAMP };
                let mut framed = Vec::new();
                codec.write(&mut framed, &s);
                let mut plain = vec![1];
                codec.write_plain(&mut plain, &s);
                assert_eq!(plain[1..], unmask(&framed).1, "{enc:?} {size} {seq}");
            }
        }
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

    fn short_stamp(seq: u64) -> Stamp {
        Stamp { seq, ..STAMP }
    }

    #[test]
    fn payloads_below_the_stamp_keep_their_size_and_cycle_with_the_sequence() {
        for (enc, size) in [
            (Encoding::Binary, 0),
            (Encoding::Binary, 1),
            (Encoding::Binary, 16),
            (Encoding::Binary, 31),
            (Encoding::Text, 0),
            (Encoding::Text, 5),
            (Encoding::Text, 63),
        ] {
            let codec = Codec::new(enc, size, [0x37, 0xfa, 0x21, 0x3d]);
            assert!(!codec.carries_stamp());
            for seq in [0, 1, 25, 26, 27, 1000] {
                let mut out = Vec::new();
                codec.write(&mut out, &short_stamp(seq));
                assert_eq!(out.len(), codec.frame_len());
                let (op, payload) = unmask(&out);
                assert_eq!((op, payload.len()), (enc.opcode(), size));
                let want: Vec<u8> = (0..size).map(|i| padding_byte(i + seq as usize)).collect();
                assert_eq!(payload, want, "{enc:?} {size} seq {seq}");
                let kind = enc.kind();
                assert_eq!(codec.verify_content(kind, &payload, Some(seq)), Ok(()));
                assert_eq!(codec.verify_content(kind, &payload, None), Ok(()));
                let other = Some(seq + 1);
                let expect = if size == 0 {
                    Ok(())
                } else {
                    Err(Mismatch::Order)
                };
                assert_eq!(codec.verify_content(kind, &payload, other), expect);
            }
        }
    }

    #[test]
    fn corrupted_short_replies_are_mismatches() {
        let codec = Codec::new(Encoding::Binary, 8, [1, 2, 3, 4]);
        let mut out = Vec::new();
        codec.write(&mut out, &short_stamp(3));
        let (_, good) = unmask(&out);
        let k = MessageKind::Binary;
        assert_eq!(
            codec.verify_content(MessageKind::Text, &good, Some(3)),
            Err(Mismatch::Kind)
        );
        assert_eq!(
            codec.verify_content(k, &good[..7], Some(3)),
            Err(Mismatch::Length)
        );
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                codec.verify_content(k, &bad, Some(3)),
                Err(Mismatch::Content),
                "{i}"
            );
            assert_eq!(
                codec.verify_content(k, &bad, None),
                Err(Mismatch::Content),
                "{i}"
            );
        }
        let empty = Codec::new(Encoding::Text, 0, [1, 2, 3, 4]);
        assert_eq!(
            empty.verify_content(MessageKind::Text, b"", Some(9)),
            Ok(())
        );
        assert_eq!(
            empty.verify_content(MessageKind::Binary, b"", Some(9)),
            Err(Mismatch::Kind)
        );
    }

    #[test]
    fn fills_come_in_variants_picked_by_sequence_and_verify() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for fill in [Fill::Random, Fill::Text, Fill::Json] {
            for enc in [Encoding::Binary, Encoding::Text] {
                let codec = Codec::with_fill(enc, 1024, key, fill, 5);
                assert_eq!(codec.variants, VARIANT_BYTES / 1024);
                let mut seen = Vec::new();
                for seq in [0, 1, 95, 96, 1000] {
                    let stamp = Stamp { seq, ..STAMP };
                    let mut out = Vec::new();
                    codec.write(&mut out, &stamp);
                    let (_, payload) = unmask(&out);
                    assert_eq!(codec.verify(enc.kind(), &payload), Ok(stamp), "{fill:?}");
                    if enc == Encoding::Text {
                        assert!(std::str::from_utf8(&payload).is_ok());
                    }
                    seen.push(payload[enc.stamp_len()..].to_vec());
                    // Another variant's padding under this stamp is wrong.
                    let other = Stamp {
                        seq: seq + 1,
                        ..STAMP
                    };
                    let mut wrong = Vec::new();
                    codec.write(&mut wrong, &other);
                    let (_, mut wrong) = unmask(&wrong);
                    encode_stamp(&stamp, enc, &mut wrong[..enc.stamp_len()]);
                    assert_eq!(
                        codec.verify(enc.kind(), &wrong),
                        Err(Mismatch::Padding),
                        "{fill:?} {seq}"
                    );
                }
                // seq 0 and 96 share a variant; 0, 1 and 95 do not.
                assert_eq!(seen[0], seen[3]);
                assert_ne!(seen[0], seen[1]);
                assert_ne!(seen[0], seen[2]);
                // The same seed makes the same payloads in another thread's
                // codec, whatever its key.
                let twin = Codec::with_fill(enc, 1024, [1, 2, 3, 4], fill, 5);
                assert_eq!(twin.plain, codec.plain);
            }
        }
    }
}
