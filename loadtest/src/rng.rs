//! SplitMix64: a small, fast, seeded generator, good enough for picking
//! how connections end and for payload fills. Not for anything secret.

/// The generator's state.
#[derive(Clone, Copy, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` for small `n` (0 for `n` of 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prng_is_seeded_and_spreads() {
        let (mut a, mut b) = (SplitMix(7), SplitMix(7));
        assert_eq!(a.next(), b.next());
        let hits = (0..10_000).filter(|_| a.below(100) < 30).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert_eq!(a.below(0), 0);
    }
}
