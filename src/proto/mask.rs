//! In-place masking (RFC 6455 §5.3), a wide word at a time.
//!
//! Masking is its own inverse, so the same routine masks (client) and unmasks
//! (server). `offset` is the position of `buf[0]` within the frame's payload,
//! which lets a payload that arrives in pieces be unmasked piece by piece.

/// XORs `buf` with the masking key, as if `buf[0]` were byte `offset` of the
/// payload: `buf[i] ^= key[(offset + i) % 4]`.
///
/// The main loop works on 32-byte blocks with no alignment requirement (x86
/// and aarch64 load unaligned words at full speed), which the compiler turns
/// into SIMD; what is left goes a u64 word at a time, then under 8 bytes one
/// at a time. Blocks and words are multiples of 4 bytes long, so each part
/// starts in phase with the key.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let k = rotate(key, offset);
    // The key twice over, as the bytes of one word (either byte order).
    let half = u64::from(u32::from_ne_bytes(k));
    let word = half | (half << 32);
    let (blocks, rest) = buf.as_chunks_mut::<32>();
    for block in blocks {
        let (words, _) = block.as_chunks_mut::<8>();
        for w in words {
            *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
        }
    }
    let (words, tail) = rest.as_chunks_mut::<8>();
    for w in words {
        *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
    }
    for (b, m) in tail.iter_mut().zip(k.iter().cycle()) {
        *b ^= m;
    }
}

/// The key as seen from payload byte `offset`.
///
/// A rotation of the key read as a little-endian word (byte 0 lowest), so
/// `k[i] == key[(offset + i) % 4]`. `<[u8; 4]>::rotate_left` computes the same
/// but does not inline to one instruction, and cost more than masking a
/// small payload itself.
#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let bits = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(bits).to_le_bytes()
}

/// The byte-at-a-time definition, the oracle for [`apply_mask`].
#[cfg(test)]
pub(crate) fn apply_mask_naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_example_unmasks_to_hello() {
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn matches_naive_at_every_alignment_length_and_offset() {
        let key = [0xA1, 0x5B, 0x3C, 0xE7];
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..16 {
            for len in 0..(data.len() - start) {
                for offset in 0..4 {
                    let mut fast = data[start..start + len].to_vec();
                    let mut slow = fast.clone();
                    apply_mask(&mut fast, key, offset);
                    apply_mask_naive(&mut slow, key, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn works_in_place_on_unaligned_subslices() {
        // The same buffer, unmasked through subslices that start at every
        // alignment, equals one unmask of the whole.
        let key = [1, 2, 3, 4];
        let orig: Vec<u8> = (0..200u8).collect();
        for split in 0..orig.len() {
            let mut pieces = orig.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            let mut whole = orig.clone();
            apply_mask_naive(&mut whole, key, 0);
            assert_eq!(pieces, whole, "split at {split}");
        }
    }

    proptest! {
        #[test]
        fn split_anywhere_equals_whole(data in prop::collection::vec(any::<u8>(), 0..2000), key: [u8; 4], cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6)) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = data.clone();
            let mut start = 0;
            for p in points.into_iter().chain([data.len()]) {
                apply_mask(&mut pieces[start..p], key, start);
                start = p;
            }
            let mut whole = data.clone();
            apply_mask_naive(&mut whole, key, 0);
            prop_assert_eq!(pieces, whole);
        }
    }
}
