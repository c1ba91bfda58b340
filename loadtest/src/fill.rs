//! `--payload`: what fills a payload after its stamp, with a known
//! compressibility. Everything but [`Fill::Letters`] is generated from
//! `--seed`, once per run, into the codec's pre-encoded frames: sending
//! costs the same whatever the fill.

use clap::ValueEnum;

use crate::rng::SplitMix;
use crate::stamp::{padding_byte, Encoding};

/// What fills a payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Fill {
    /// `abc…z` over and over (wsload's original padding): compresses to
    /// almost nothing.
    #[default]
    Letters,
    /// Random bytes (printable ASCII in text frames): incompressible.
    Random,
    /// English-like words from a fixed vocabulary.
    Text,
    /// JSON-like objects with repeated keys.
    Json,
}

impl Fill {
    /// The name used in reports and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Fill::Letters => "letters",
            Fill::Random => "random",
            Fill::Text => "text",
            Fill::Json => "json",
        }
    }
}

/// A fixed vocabulary: common English words, so text fill has English's
/// repetition without being one repeated phrase.
const WORDS: [&str; 64] = [
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "time", "people", "water",
    "number", "way", "could", "first", "called", "long", "down", "day", "find", "made", "part",
    "over",
];

/// Phrases of the text fill.
const PHRASES: [&str; 16] = [
    "at the same time",
    "in the first place",
    "one of the most",
    "as well as the",
    "on the other hand",
    "for the first time",
    "the number of people",
    "at the end of the day",
    "there has been a",
    "it would have been",
    "in the long run",
    "more and more people",
    "they could not find",
    "part of the way down",
    "which was made by",
    "all over the world",
];

const KEYS: [&str; 8] = [
    "id", "user", "action", "status", "score", "active", "tags", "ts",
];

/// Appends `n` bytes of `fill` to `out`: variant `variant` of the run
/// seeded with `seed`, starting at payload offset `at` (for letters).
pub fn generate(
    fill: Fill,
    enc: Encoding,
    seed: u64,
    variant: u64,
    at: usize,
    n: usize,
    out: &mut Vec<u8>,
) {
    let end = out.len() + n;
    if fill == Fill::Letters {
        out.extend((at..at + n).map(padding_byte));
        return;
    }
    let mut rng = SplitMix(seed ^ variant.wrapping_mul(0xD1B5_4A32_D192_ED03));
    while out.len() < end {
        match fill {
            Fill::Letters => break,
            Fill::Random if enc == Encoding::Text => out.push(b' ' + rng.below(95) as u8),
            Fill::Random => out.extend_from_slice(&rng.next().to_le_bytes()),
            Fill::Text => {
                // Phrases that recur, with single words between them: the
                // long repeats English has and a compressor lives on.
                if rng.below(2) == 0 {
                    out.extend_from_slice(PHRASES[rng.below(PHRASES.len())].as_bytes());
                } else {
                    out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
                }
                out.extend_from_slice(if rng.below(12) == 0 { b". " } else { b" " });
            }
            Fill::Json => {
                out.push(b'{');
                for (k, key) in KEYS.iter().enumerate() {
                    out.push(b'"');
                    out.extend_from_slice(key.as_bytes());
                    out.extend_from_slice(b"\":");
                    match k {
                        0 | 4 | 7 => {
                            out.extend_from_slice((rng.next() % 1_000_000).to_string().as_bytes())
                        }
                        5 => out.extend_from_slice(if rng.below(2) == 0 {
                            b"true"
                        } else {
                            b"false"
                        }),
                        _ => {
                            out.push(b'"');
                            out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
                            out.push(b'"');
                        }
                    }
                    out.push(if k + 1 == KEYS.len() { b'}' } else { b',' });
                }
                out.push(b',');
            }
        }
    }
    out.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    const ALL: [Fill; 4] = [Fill::Letters, Fill::Random, Fill::Text, Fill::Json];

    fn make(fill: Fill, enc: Encoding, seed: u64, variant: u64) -> Vec<u8> {
        let mut v = Vec::new();
        generate(fill, enc, seed, variant, 0, 4096, &mut v);
        v
    }

    /// The compressed size over the original, as wsload compresses.
    fn ratio(data: &[u8]) -> f64 {
        let mut z = Compress::new_with_window_bits(Compression::new(1), false, 15);
        let mut out = Vec::with_capacity(data.len() * 2 + 64);
        z.compress_vec(data, &mut out, FlushCompress::Sync)
            .expect("compress");
        out.len() as f64 / data.len() as f64
    }

    #[test]
    fn fills_are_deterministic_per_seed_and_differ_across_seeds_and_variants() {
        for fill in ALL {
            for enc in [Encoding::Binary, Encoding::Text] {
                let a = make(fill, enc, 7, 0);
                assert_eq!(a.len(), 4096);
                assert_eq!(a, make(fill, enc, 7, 0), "{fill:?}");
                if fill != Fill::Letters {
                    assert_ne!(a, make(fill, enc, 8, 0), "{fill:?} seed");
                    assert_ne!(a, make(fill, enc, 7, 1), "{fill:?} variant");
                }
            }
        }
    }

    #[test]
    fn text_frames_get_printable_ascii() {
        for fill in ALL {
            let a = make(fill, Encoding::Text, 3, 5);
            assert!(a.iter().all(|b| (0x20..0x7f).contains(b)), "{fill:?}");
        }
    }

    #[test]
    fn text_and_json_compress_well_and_random_does_not() {
        for enc in [Encoding::Binary, Encoding::Text] {
            let text = ratio(&make(Fill::Text, enc, 1, 0));
            let json = ratio(&make(Fill::Json, enc, 1, 0));
            assert!(text < 0.5, "text {text}");
            assert!(json < 0.5, "json {json}");
        }
        // Random bytes grow a little; random printable ASCII shrinks only
        // by its 6.6 bits of entropy per byte.
        assert!(ratio(&make(Fill::Random, Encoding::Binary, 1, 0)) > 0.99);
        assert!(ratio(&make(Fill::Random, Encoding::Text, 1, 0)) > 0.8);
    }

    #[test]
    fn letters_continue_the_pattern_at_an_offset() {
        let mut v = Vec::new();
        generate(Fill::Letters, Encoding::Binary, 0, 0, 32, 5, &mut v);
        assert_eq!(v, (32..37).map(padding_byte).collect::<Vec<_>>());
    }
}
