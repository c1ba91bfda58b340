//! The frame header codec (RFC 6455 §5.2): decode from a slice, encode into a
//! fixed array. Nothing here allocates, and nothing here checks rules that
//! depend on the connection (masking direction, extensions, limits): that is
//! [`crate::proto::session`]'s job.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use super::error::ProtocolError;

/// The longest possible header: 2 + 8 bytes of length + 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The RSV1 bit as it sits in [`Header::rsv`]; permessage-deflate uses it.
pub const RSV1: u8 = 0b100;

/// A frame's opcode (§5.2). Reserved opcodes are rejected at decode time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a further fragment of the message in progress.
    Continuation,
    /// 0x1: a UTF-8 text message.
    Text,
    /// 0x2: a binary message.
    Binary,
    /// 0x8: the closing handshake.
    Close,
    /// 0x9: a ping; it asks for a pong with the same payload.
    Ping,
    /// 0xA: a pong.
    Pong,
}

impl OpCode {
    /// Decodes the low nibble of the first header byte.
    pub const fn from_nibble(n: u8) -> Option<OpCode> {
        match n {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// The nibble that encodes this opcode.
    pub const fn nibble(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong are control frames (§5.5).
    pub const fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the three low bits (RSV1 highest).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the MASK bit was set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub len: u64,
}

/// The result of a parse that may need more input. Partial input is not an
/// error: it consumes nothing and says how many more bytes, at least, to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsing<T> {
    /// Parsed `value` from the first `offset` bytes of the input.
    Done {
        /// What was parsed.
        value: T,
        /// How many input bytes it took.
        offset: usize,
    },
    /// At least this many more bytes are needed.
    NeedMore(usize),
}

/// Decodes one frame header from the start of `buf`.
///
/// Returns `NeedMore` if `buf` holds only part of a header, and an error for
/// the two things that are wrong whatever the connection: a reserved opcode
/// and a 64-bit length with its top bit set. Non-minimal length encodings are
/// accepted, as most implementations do.
pub fn decode_header(buf: &[u8]) -> Result<Parsing<Header>, ProtocolError> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(Parsing::NeedMore(2 - buf.len())),
    };
    let opcode = OpCode::from_nibble(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode)?;
    let masked = b1 & 0x80 != 0;
    let (len_bytes, short) = match b1 & 0x7F {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let mask_bytes = if masked { 4 } else { 0 };
    let header_len = 2 + len_bytes + mask_bytes;
    if buf.len() < header_len {
        return Ok(Parsing::NeedMore(header_len - buf.len()));
    }
    // The whole header is in `buf` now; the patterns below cannot miss.
    let need = Ok(Parsing::NeedMore(header_len));
    let after_len = buf.get(2..).unwrap_or_default();
    let (len, after_len) = match (short, len_bytes) {
        (Some(n), _) => (n, after_len),
        (None, 2) => match after_len.split_first_chunk::<2>() {
            Some((be, rest)) => (u64::from(u16::from_be_bytes(*be)), rest),
            None => return need,
        },
        (None, _) => match after_len.split_first_chunk::<8>() {
            Some((be, rest)) => (u64::from_be_bytes(*be), rest),
            None => return need,
        },
    };
    // §5.2: "the most significant bit MUST be 0".
    if len >> 63 != 0 {
        return Err(ProtocolError::LengthTopBit);
    }
    let mask = match (masked, after_len.first_chunk::<4>()) {
        (false, _) => None,
        (true, Some(key)) => Some(*key),
        (true, None) => return need,
    };
    Ok(Parsing::Done {
        value: Header {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode,
            mask,
            len,
        },
        offset: header_len,
    })
}

/// An encoded header: up to [`MAX_HEADER_LEN`] bytes on the stack.
#[derive(Clone, Copy, Debug)]
pub struct EncodedHeader {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl EncodedHeader {
    /// The header's bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// Encodes a header with the shortest length form.
///
/// `len` above 2^63 - 1 cannot be sent and is clamped by the caller's limits
/// long before it gets here; it is encoded as given.
pub fn encode_header(
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    len: u64,
    mask: Option<[u8; 4]>,
) -> EncodedHeader {
    let mut bytes = [0u8; MAX_HEADER_LEN];
    bytes[0] = (u8::from(fin) << 7) | ((rsv & 0b111) << 4) | opcode.nibble();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut at = match len {
        0..=125 => {
            // The match arm bounds `len` to 0..=125, so the cast is exact.
            bytes[1] = mask_bit | len as u8;
            2
        }
        126..=0xFFFF => {
            bytes[1] = mask_bit | 126;
            bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            bytes[1] = mask_bit | 127;
            bytes[2..10].copy_from_slice(&len.to_be_bytes());
            10
        }
    };
    if let Some((key, dst)) = mask.zip(bytes.get_mut(at..at + 4)) {
        dst.copy_from_slice(&key);
        at += 4;
    }
    EncodedHeader {
        bytes,
        // `at` is at most 14.
        len: at as u8,
    }
}

/// Appends a whole unmasked frame (header and payload) to `out`: how a server
/// sends.
#[inline]
pub fn write_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    // A small frame's two header bytes are stored directly: most replies
    // are small, and the general encoder costs more than they do. Pushed
    // one by one after the reserve, not copied as a slice (a `memcpy` call
    // for two bytes).
    if let Ok(len @ 0..=125) = u8::try_from(payload.len()) {
        out.reserve(2 + payload.len());
        out.push(0x80 | opcode.nibble());
        out.push(len);
    } else {
        let header = encode_header(true, 0, opcode, payload.len() as u64, None);
        out.reserve(header.as_slice().len() + payload.len());
        out.extend_from_slice(header.as_slice());
    }
    out.extend_from_slice(payload);
}

/// Appends a whole masked frame to `out`: how a client sends.
pub fn write_masked_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8], key: [u8; 4]) {
    let header = encode_header(true, 0, opcode, payload.len() as u64, Some(key));
    out.reserve(header.as_slice().len() + payload.len());
    out.extend_from_slice(header.as_slice());
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(tail) = out.get_mut(start..) {
        super::mask::apply_mask(tail, key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (Header, usize) {
        match decode_header(buf) {
            Ok(Parsing::Done { value, offset }) => (value, offset),
            other => panic!("expected a header, got {other:?}"),
        }
    }

    #[test]
    fn seven_bit_length() {
        let (h, off) = done(&[0x81, 0x05]);
        assert_eq!(off, 2);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(h.len, 5);
        assert_eq!(h.mask, None);
        assert_eq!(h.rsv, 0);
    }

    #[test]
    fn sixteen_bit_length() {
        let (h, off) = done(&[0x82, 126, 0x01, 0x00]);
        assert_eq!((h.len, off), (256, 4));
    }

    #[test]
    fn sixty_four_bit_length() {
        let (h, off) = done(&[0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!((h.len, off), (1 << 32, 10));
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        assert_eq!(done(&[0x82, 126, 0, 5]).0.len, 5);
        assert_eq!(done(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5]).0.len, 5);
    }

    #[test]
    fn length_with_top_bit_is_an_error() {
        let buf = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_header(&buf), Err(ProtocolError::LengthTopBit));
    }

    #[test]
    fn mask_key_is_read_after_each_length_form() {
        let key = [1, 2, 3, 4];
        assert_eq!(
            done(&[0x81, 0x85, 1, 2, 3, 4]),
            (
                Header {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Text,
                    mask: Some(key),
                    len: 5
                },
                6
            )
        );
        assert_eq!(done(&[0x81, 0xFE, 0, 200, 1, 2, 3, 4]).0.mask, Some(key));
        assert_eq!(
            done(&[0x81, 0xFF, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3, 4]).1,
            14
        );
    }

    #[test]
    fn rsv_bits_and_fin_are_decoded() {
        let (h, _) = done(&[0x70 | 0x02, 0x00]);
        assert!(!h.fin);
        assert_eq!(h.rsv, 0b111);
        let (h, _) = done(&[0x40 | 0x01, 0x00]);
        assert_eq!(h.rsv, RSV1);
    }

    #[test]
    fn reserved_opcodes_are_errors() {
        for n in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                decode_header(&[0x80 | n, 0]),
                Err(ProtocolError::ReservedOpcode),
                "opcode {n:#x}"
            );
        }
    }

    /// Every truncation point of every header form says how much is missing
    /// and never reads past the input.
    #[test]
    fn every_truncation_needs_more() {
        let forms: [&[u8]; 6] = [
            &[0x81, 0x05],
            &[0x81, 0x85, 1, 2, 3, 4],
            &[0x82, 126, 1, 0],
            &[0x82, 0xFE, 1, 0, 9, 9, 9, 9],
            &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0],
            &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9],
        ];
        for full in forms {
            for cut in 0..full.len() {
                match decode_header(&full[..cut]) {
                    Ok(Parsing::NeedMore(n)) => assert!(
                        n >= 1 && cut + n <= full.len(),
                        "{full:?} cut at {cut}: {n}"
                    ),
                    other => panic!("{full:?} cut at {cut}: {other:?}"),
                }
            }
            assert_eq!(done(full).1, full.len());
        }
    }

    #[test]
    fn encode_uses_the_shortest_length_form() {
        for (len, header_len) in [
            (0u64, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 40, 10),
        ] {
            let h = encode_header(true, 0, OpCode::Binary, len, None);
            assert_eq!(h.as_slice().len(), header_len, "len {len}");
            assert_eq!(done(h.as_slice()).0.len, len);
            let h = encode_header(true, 0, OpCode::Binary, len, Some([9, 8, 7, 6]));
            assert_eq!(h.as_slice().len(), header_len + 4, "masked len {len}");
        }
    }

    #[test]
    fn masked_frame_round_trips() {
        let mut out = Vec::new();
        write_masked_frame(&mut out, OpCode::Text, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        // The example from RFC 6455 §5.7.
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    #[test]
    fn unmasked_frame_matches_the_rfc_example() {
        let mut out = Vec::new();
        write_frame(&mut out, OpCode::Text, b"Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn opcode() -> impl Strategy<Value = OpCode> {
            prop::sample::select(vec![
                OpCode::Continuation,
                OpCode::Text,
                OpCode::Binary,
                OpCode::Close,
                OpCode::Ping,
                OpCode::Pong,
            ])
        }

        proptest! {
            #[test]
            fn encode_then_decode_is_identity(
                fin: bool, rsv in 0u8..8, op in opcode(),
                len in prop_oneof![0u64..=125, 126u64..=65535, 65536u64..(1 << 63)],
                mask: Option<[u8; 4]>,
            ) {
                let h = encode_header(fin, rsv, op, len, mask);
                let (d, off) = done(h.as_slice());
                prop_assert_eq!(off, h.as_slice().len());
                prop_assert_eq!(d, Header { fin, rsv, opcode: op, mask, len });
            }

            #[test]
            fn decode_never_panics(buf in prop::collection::vec(any::<u8>(), 0..20)) {
                let _ = decode_header(&buf);
            }
        }
    }
}
