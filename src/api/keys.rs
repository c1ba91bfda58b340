//! The API keys (`--api-key FILE`, repeatable): who may publish.
//!
//! Keys are loaded off the reactor (at start, and again on SIGHUP) and
//! kept only as SHA-1 digests, which is all a comparison needs (a digest
//! of a key is not the key: a heap dump does not leak it). A presented key is hashed and compared with every digest in
//! constant time, so neither the time taken nor an early exit tells how
//! much of a guess was right, or which key it nearly matched.

use std::fmt;
use std::path::Path;

use sha1::{Digest, Sha1};

/// The shortest key accepted: a guessable key is refused at start.
pub const MIN_KEY_LEN: usize = 16;

/// The keys that may publish. `Debug` shows how many, never a key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys {
    digests: Vec<[u8; 20]>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

impl ApiKeys {
    /// Reads one key from each file: its bytes with surrounding whitespace
    /// (a trailing newline) trimmed. Blocking: call off the reactor. An
    /// error names the file and what is wrong, never the key.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<ApiKeys, String> {
        let mut keys = ApiKeys::default();
        for path in paths {
            let path = path.as_ref();
            let bytes = std::fs::read(path)
                .map_err(|e| format!("--api-key {}: cannot read: {e}", path.display()))?;
            keys.add(&bytes)
                .map_err(|why| format!("--api-key {}: {why}", path.display()))?;
        }
        Ok(keys)
    }

    /// Adds a key (trimmed as [`ApiKeys::load`] does). It must be at least
    /// [`MIN_KEY_LEN`] bytes of the characters a Bearer token may hold
    /// (RFC 6750 §2.1: letters, digits, `-._~+/`, trailing `=`).
    pub fn add(&mut self, key: &[u8]) -> Result<(), &'static str> {
        let key = key.trim_ascii();
        if key.len() < MIN_KEY_LEN {
            return Err("the key must be at least 16 characters");
        }
        let body = key.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
        let token68 = |b: &u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(b);
        if !key.get(..body).unwrap_or_default().iter().all(token68) {
            return Err(
                "the key may hold only letters, digits and -._~+/ (it is sent as a Bearer token)",
            );
        }
        self.digests.push(Sha1::digest(key).into());
        Ok(())
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether `presented` is one of the keys. Every key is compared, each
    /// in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 20] = Sha1::digest(presented).into();
        let mut found = 0u8;
        for key in &self.digests {
            let diff = key
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            // black_box: the compiler may not turn the fold into an early
            // exit.
            found |= u8::from(std::hint::black_box(diff) == 0);
        }
        found != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_and_matched_exactly() {
        let mut keys = ApiKeys::default();
        keys.add(b"  0123456789abcdef\n").unwrap();
        keys.add(b"second-key/with+sym==").unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.matches(b"0123456789abcdef"));
        assert!(keys.matches(b"second-key/with+sym=="));
        for wrong in [
            &b"0123456789abcde"[..],
            b"0123456789abcdeF",
            b"",
            b"0123456789abcdef ",
        ] {
            assert!(!keys.matches(wrong), "{wrong:?}");
        }
        assert!(!format!("{keys:?}").contains("0123"), "{keys:?}");
    }

    #[test]
    fn weak_or_unsendable_keys_are_refused() {
        let mut keys = ApiKeys::default();
        assert!(keys.add(b"short").is_err());
        assert!(keys.add(b"\n\n").is_err());
        assert!(keys.add(b"0123456789 abcdef").is_err());
        assert!(keys.add(b"0123456789abcdef\x01").is_err());
        assert!(keys.add(b"0123456789=abcdef").is_err());
        assert!(keys.is_empty());
    }

    #[test]
    fn loading_names_the_file_never_the_key() {
        let dir = std::env::temp_dir().join(format!("wsd-api-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        let bad = dir.join("bad");
        std::fs::write(&good, "0123456789abcdef\n").unwrap();
        std::fs::write(&bad, "secret but short").unwrap();
        assert!(ApiKeys::load(&[&good])
            .unwrap()
            .matches(b"0123456789abcdef"));
        let err = ApiKeys::load(&[&good, &bad]).unwrap_err();
        assert!(err.contains("bad") && !err.contains("secret"), "{err}");
        let err = ApiKeys::load(&[dir.join("absent")]).unwrap_err();
        assert!(
            err.contains("absent") && err.contains("cannot read"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
