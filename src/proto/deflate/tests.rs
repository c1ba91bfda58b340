use super::*;

/// A naive raw DEFLATE decoder (RFC 1951), the oracle for the backend: it
/// decodes a whole stream (no BFINAL needed) and reports the farthest match
/// distance used. Slow and simple on purpose.
mod naive {
    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
    }

    impl Bits<'_> {
        fn bit(&mut self) -> Option<u32> {
            let byte = *self.data.get(self.pos / 8)?;
            let b = (byte >> (self.pos % 8)) & 1;
            self.pos += 1;
            Some(u32::from(b))
        }
        fn bits(&mut self, n: u32) -> Option<u32> {
            (0..n).try_fold(0, |acc, i| Some(acc | (self.bit()? << i)))
        }
    }

    /// Canonical Huffman decoding by counting (RFC 1951 §3.2.2).
    struct Huffman {
        counts: [u16; 16],
        symbols: Vec<u16>,
    }

    impl Huffman {
        fn new(lengths: &[u8]) -> Huffman {
            let mut counts = [0u16; 16];
            for &l in lengths {
                counts[l as usize] += 1;
            }
            counts[0] = 0;
            let mut symbols = Vec::new();
            for len in 1..16 {
                for (s, &l) in lengths.iter().enumerate() {
                    if l as usize == len {
                        symbols.push(s as u16);
                    }
                }
            }
            Huffman { counts, symbols }
        }
        fn decode(&self, b: &mut Bits<'_>) -> Option<u16> {
            let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
            for len in 1..16 {
                code |= b.bit()? as i32;
                let count = self.counts[len] as i32;
                if code - count < first {
                    return self.symbols.get((index + code - first) as usize).copied();
                }
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            None
        }
    }

    const LEN_BASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LEN_EXTRA: [u8; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DIST_BASE: [u16; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DIST_EXTRA: [u8; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];

    /// Decodes `data` (ending at a block boundary or a final block), with
    /// `history` as the output of earlier messages. Returns the output and
    /// the farthest distance, or `None` if the stream is invalid.
    pub fn inflate(data: &[u8], history: &[u8]) -> Option<(Vec<u8>, usize)> {
        let mut b = Bits { data, pos: 0 };
        let mut out = history.to_vec();
        let mut far = 0;
        loop {
            if b.pos / 8 >= data.len() {
                break;
            }
            let last = b.bit()?;
            match b.bits(2)? {
                0 => {
                    b.pos = b.pos.next_multiple_of(8);
                    let len = b.bits(16)? as usize;
                    let nlen = b.bits(16)? as usize;
                    if len != !nlen & 0xFFFF {
                        return None;
                    }
                    let start = b.pos / 8;
                    out.extend_from_slice(data.get(start..start + len)?);
                    b.pos += 8 * len;
                }
                kind @ (1 | 2) => {
                    let (lit, dist) = if kind == 1 {
                        let mut l = [8u8; 288];
                        l[144..256].fill(9);
                        l[256..280].fill(7);
                        (Huffman::new(&l), Huffman::new(&[5; 30]))
                    } else {
                        dynamic_tables(&mut b)?
                    };
                    loop {
                        let sym = lit.decode(&mut b)? as usize;
                        if sym < 256 {
                            out.push(sym as u8);
                        } else if sym == 256 {
                            break;
                        } else {
                            let i = sym - 257;
                            let len = *LEN_BASE.get(i)? as usize
                                + b.bits(u32::from(*LEN_EXTRA.get(i)?))? as usize;
                            let d = dist.decode(&mut b)? as usize;
                            let distance = *DIST_BASE.get(d)? as usize
                                + b.bits(u32::from(*DIST_EXTRA.get(d)?))? as usize;
                            if distance > out.len() {
                                return None;
                            }
                            far = far.max(distance);
                            for _ in 0..len {
                                out.push(out[out.len() - distance]);
                            }
                        }
                    }
                }
                _ => return None,
            }
            if last == 1 {
                break;
            }
        }
        Some((out.split_off(history.len()), far))
    }

    fn dynamic_tables(b: &mut Bits<'_>) -> Option<(Huffman, Huffman)> {
        let hlit = b.bits(5)? as usize + 257;
        let hdist = b.bits(5)? as usize + 1;
        let hclen = b.bits(4)? as usize + 4;
        const ORDER: [usize; 19] = [
            16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
        ];
        let mut cl = [0u8; 19];
        for &i in ORDER.iter().take(hclen) {
            cl[i] = b.bits(3)? as u8;
        }
        let code = Huffman::new(&cl);
        let mut lengths = Vec::new();
        while lengths.len() < hlit + hdist {
            match code.decode(b)? {
                s @ 0..=15 => lengths.push(s as u8),
                16 => {
                    let prev = *lengths.last()?;
                    let n = 3 + b.bits(2)?;
                    lengths.extend((0..n).map(|_| prev));
                }
                17 => lengths.extend((0..3 + b.bits(3)?).map(|_| 0)),
                _ => lengths.extend((0..11 + b.bits(7)?).map(|_| 0)),
            }
        }
        Some((
            Huffman::new(lengths.get(..hlit)?),
            Huffman::new(lengths.get(hlit..hlit + hdist)?),
        ))
    }
}

fn no_check() -> impl FnMut(&[u8]) -> Result<(), ProtocolError> {
    |_| Ok(())
}

fn inflate_one(
    z: &mut Inflater,
    payload: &[u8],
    max: usize,
    reset: bool,
) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    z.inflate(payload, &mut out, max, reset, &mut no_check())?;
    Ok(out)
}

/// Text-like data with repeats near and far, varied by `seed`.
fn sample(len: usize, seed: u32) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"{\"id\":",
        b"\"name\":\"",
        b"price",
        b"\", ",
        b"quantity",
        b"}\n",
        b"0123",
        b"xyz",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if x.is_multiple_of(5) {
            out.push((x >> 8) as u8);
        } else {
            out.extend_from_slice(words[(x >> 4) as usize % words.len()]);
        }
    }
    out.truncate(len);
    out
}

#[test]
fn rfc_7692_examples_inflate() {
    let mut z = Inflater::new(15);
    // §7.2.3.1: "Hello", one compressed frame.
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(inflate_one(&mut z, &hello, 100, true).unwrap(), b"Hello");
    // §7.2.3.2: the same again, sharing the window of the first.
    assert_eq!(
        inflate_one(&mut z, &[0xf2, 0x00, 0x11, 0x00, 0x00], 100, false).unwrap(),
        b"Hello"
    );
    // §7.2.3.3: a block with no compression.
    let stored = [
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    assert_eq!(inflate_one(&mut z, &stored, 100, true).unwrap(), b"Hello");
    // §7.2.3.4: a block with BFINAL set; the next message starts afresh.
    let last = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    assert_eq!(inflate_one(&mut z, &last, 100, false).unwrap(), b"Hello");
    assert_eq!(inflate_one(&mut z, &hello, 100, false).unwrap(), b"Hello");
    // §7.2.3.5: two blocks in one message.
    let two = [
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(inflate_one(&mut z, &two, 100, true).unwrap(), b"Hello");
    // §7.2.3.6: an empty message is one 0x00 byte.
    assert_eq!(inflate_one(&mut z, &[0x00], 100, true).unwrap(), b"");
}

#[test]
fn an_empty_message_compresses_to_one_zero_byte() {
    let mut out = Vec::new();
    assert!(Deflater::new(15).compress(b"", &mut out, true));
    assert_eq!(out, [0x00]);
}

#[test]
fn empty_messages_in_a_kept_context_are_one_zero_byte_each() {
    // Found by the deflate fuzzer: a second sync flush with no input
    // writes nothing, and an empty payload cut the peer's stream.
    let mut d = Deflater::new(15);
    let mut i = Inflater::new(15);
    for msg in [&b""[..], b"", b"hello", b"", b"", b"hello again"] {
        let mut c = Vec::new();
        assert!(d.compress(msg, &mut c, false));
        if msg.is_empty() {
            assert_eq!(c, [0x00]);
        }
        assert_eq!(inflate_one(&mut i, &c, 100, false).unwrap(), msg);
    }
}

#[test]
fn round_trip_at_every_size_class_with_and_without_context() {
    for bits in [8, 9, 12, 15] {
        for takeover in [false, true] {
            let mut d = Deflater::new(bits);
            let mut i = Inflater::new(bits);
            for (n, len) in [0, 1, 31, 32, 127, 1000, 4096, 65_535, 65_536, 200_000]
                .into_iter()
                .enumerate()
            {
                let msg = sample(len, n as u32 + 7);
                let mut c = Vec::new();
                assert!(d.compress(&msg, &mut c, !takeover));
                let back = inflate_one(&mut i, &c, 1 << 20, !takeover)
                    .unwrap_or_else(|e| panic!("bits {bits} takeover {takeover} len {len}: {e}"));
                assert!(back == msg, "bits {bits} takeover {takeover} len {len}");
            }
        }
    }
}

#[test]
fn the_backend_agrees_with_the_naive_decoder() {
    for len in [0, 5, 100, 3000, 70_000] {
        let msg = sample(len, len as u32);
        let mut c = Vec::new();
        Deflater::new(15).compress(&msg, &mut c, true);
        c.extend_from_slice(&TAIL);
        let (naive, _) = naive::inflate(&c, &[]).unwrap();
        assert!(naive == msg, "len {len}");
    }
}

#[test]
fn a_compressed_frame_has_rsv1_and_the_real_length() {
    let mut z = Deflater::new(15);
    for (len, reset) in [(0usize, false), (10, false), (5000, true), (300_000, true)] {
        let msg = sample(len, 1);
        let mut out = b"before".to_vec();
        let n = write_compressed_message(&mut out, MessageKind::Text, &msg, &mut z, reset).unwrap();
        let frame = &out[6..];
        let (h, offset) = match crate::proto::frame::decode_header(frame) {
            Ok(crate::proto::Parsing::Done { value, offset }) => (value, offset),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (h.rsv, h.opcode, h.fin, h.mask),
            (RSV1, OpCode::Text, true, None)
        );
        assert_eq!((h.len as usize, frame.len() - offset), (n, n), "len {len}");
        let back = inflate_one(&mut Inflater::new(15), &frame[offset..], 1 << 20, true).unwrap();
        assert!(back == msg);
    }
}

#[test]
fn a_message_compression_does_not_shorten_goes_plain_unless_context_is_kept() {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut z = Deflater::new(15);
    for msg in [noise.as_slice(), b"", b"tiny"] {
        let mut out = Vec::new();
        let n = write_compressed_message(&mut out, MessageKind::Binary, msg, &mut z, true);
        assert_eq!(n, None, "{} B went compressed", msg.len());
        let mut plain = Vec::new();
        crate::proto::frame::write_frame(&mut plain, OpCode::Binary, msg);
        assert!(out == plain, "{} B: not the plain frame", msg.len());
    }
    // With context kept, the peer's window needs every message.
    let mut out = Vec::new();
    let n = write_compressed_message(&mut out, MessageKind::Binary, &noise, &mut z, false);
    assert!(n.is_some_and(|n| n >= noise.len()), "{n:?}");
    match crate::proto::frame::decode_header(&out) {
        Ok(crate::proto::Parsing::Done { value, .. }) => assert_eq!(value.rsv, RSV1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_9_bit_compressor_never_reaches_past_256_bytes() {
    // The window-8 agreement relies on this (see the module doc).
    let mut d = Deflater::new(8);
    assert_eq!(d.window_bits(), 9);
    let mut history = Vec::new();
    for seed in 0..20u32 {
        let msg = sample(5000 + seed as usize * 997, seed);
        let mut c = Vec::new();
        d.compress(&msg, &mut c, false);
        c.extend_from_slice(&TAIL);
        let (out, far) = naive::inflate(&c, &history).unwrap();
        assert!(out == msg);
        assert!(far <= 256, "a match {far} bytes back");
        assert!(far > 128, "the sample should use most of the window: {far}");
        history.extend_from_slice(&out);
    }
}

#[test]
fn output_past_the_limit_stops_inflating_at_the_limit() {
    let msg = vec![b'a'; 1 << 20];
    let mut c = Vec::new();
    Deflater::new(15).compress(&msg, &mut c, true);
    assert!(c.len() < 20_000, "{}", c.len());
    let mut z = Inflater::new(15);
    let mut out = Vec::new();
    let r = z.inflate(&c, &mut out, 100_000, true, &mut no_check());
    assert_eq!(r, Err(ProtocolError::MessageTooBig));
    assert!(out.capacity() <= 100_001, "grew to {}", out.capacity());
    // Exactly at the limit is fine; and the inflater works on afterwards.
    assert_eq!(
        inflate_one(&mut z, &c, 1 << 20, false).unwrap().len(),
        1 << 20
    );
}

#[test]
fn invalid_data_is_invalid_compressed_and_the_inflater_recovers() {
    let mut z = Inflater::new(15);
    // BTYPE 11 is reserved.
    assert_eq!(
        inflate_one(&mut z, &[0xff, 0xff], 100, false),
        Err(ProtocolError::InvalidCompressed)
    );
    // A stored block whose length check fails.
    assert_eq!(
        inflate_one(&mut z, &[0x00, 0x05, 0x00, 0x00, 0x00], 100, false),
        Err(ProtocolError::InvalidCompressed)
    );
    // Bytes after a final block are not looked at.
    assert_eq!(
        inflate_one(
            &mut z,
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff, 0x41],
            100,
            false
        )
        .unwrap(),
        b"Hello"
    );
    assert_eq!(
        inflate_one(
            &mut z,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            100,
            false
        )
        .unwrap(),
        b"Hello"
    );
}

#[test]
fn a_reference_to_context_that_was_reset_is_invalid() {
    let mut d = Deflater::new(15);
    let mut z = Inflater::new(15);
    let msg = sample(2000, 3);
    let mut first = Vec::new();
    d.compress(&msg, &mut first, true);
    let mut second = Vec::new();
    d.compress(&msg, &mut second, false);
    assert_eq!(inflate_one(&mut z, &first, 1 << 20, true).unwrap(), msg);
    // The second refers back into the first: without the context it fails.
    assert_eq!(
        inflate_one(&mut z, &second, 1 << 20, true),
        Err(ProtocolError::InvalidCompressed)
    );
}

#[test]
fn the_check_sees_growing_output_and_can_stop_it() {
    let msg = sample(300_000, 9);
    let mut c = Vec::new();
    Deflater::new(15).compress(&msg, &mut c, true);
    let mut z = Inflater::new(15);
    let mut seen = Vec::new();
    let r = z.inflate(&c, &mut Vec::new(), 1 << 20, true, &mut |so_far| {
        seen.push(so_far.len());
        if so_far.len() > 100_000 {
            Err(ProtocolError::InvalidUtf8)
        } else {
            Ok(())
        }
    });
    assert_eq!(r, Err(ProtocolError::InvalidUtf8));
    assert!(
        seen.len() > 2 && seen.windows(2).all(|w| w[0] < w[1]),
        "{seen:?}"
    );
    assert!(*seen.last().unwrap() < 300_000);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes as a compressed payload: the backend and the
        /// naive decoder agree on what they decode to, when both accept it.
        #[test]
        fn arbitrary_payloads_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut z = Inflater::new(15);
            let backend = inflate_one(&mut z, &data, 1 << 16, true);
            if let Ok(out) = backend {
                let mut with_tail = data.clone();
                with_tail.extend_from_slice(&TAIL);
                if let Some((naive, _)) = naive::inflate(&with_tail, &[]) {
                    prop_assert_eq!(out, naive);
                }
            }
        }

        #[test]
        fn compress_then_inflate_is_identity(data in prop::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000), bits in 8u8..=15) {
            let mut c = Vec::new();
            prop_assert!(Deflater::new(bits).compress(&data, &mut c, true));
            let out = inflate_one(&mut Inflater::new(bits), &c, 1 << 16, true).unwrap();
            prop_assert_eq!(out, data);
        }
    }
}
