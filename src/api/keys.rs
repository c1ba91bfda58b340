//! The API keys (`--api-key FILE`, repeatable): who may publish.
//!
//! Keys are loaded off the reactor (at start, and again on SIGHUP) and
//! kept only as SHA-1 digests, which is all a comparison needs (a digest
//! of a key is not the key: a heap dump does not leak it). A presented key is hashed and compared with every digest in
//! constant time, so neither the time taken nor an early exit tells how
//! much of a guess was right, or which key it nearly matched.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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

/// The keys the reactors share, and the files they come from
/// (`--api-key`): reread on SIGHUP off the reactors ([`ApiKeySlot::reload`]),
/// picked up by each reactor at its next request ([`ApiKeySlot::current`]).
#[derive(Clone)]
pub struct ApiKeySlot(Arc<SlotInner>);

struct SlotInner {
    paths: Vec<PathBuf>,
    current: Mutex<Arc<ApiKeys>>,
    /// Bumped by each good reload, so a reactor's copy is checked with
    /// one atomic load.
    generation: AtomicU64,
}

impl fmt::Debug for ApiKeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeySlot")
            .field("paths", &self.0.paths)
            .finish_non_exhaustive()
    }
}

impl ApiKeySlot {
    /// Loads the keys of `paths` ([`ApiKeys::load`]) into a slot that
    /// knows where to reload them from.
    pub fn open(paths: &[PathBuf]) -> Result<ApiKeySlot, String> {
        let keys = ApiKeys::load(paths)?;
        Ok(ApiKeySlot(Arc::new(SlotInner {
            paths: paths.to_vec(),
            current: Mutex::new(Arc::new(keys)),
            generation: AtomicU64::new(0),
        })))
    }

    /// Reads the files again: good keys replace the current ones for every
    /// reactor's next request; on an error (it names the file, never a
    /// key) the old keys stay. Returns how many keys there are now. Does
    /// file I/O: call it off the reactors.
    pub fn reload(&self) -> Result<usize, String> {
        let keys = ApiKeys::load(&self.0.paths)?;
        let n = keys.len();
        *self
            .0
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        Ok(n)
    }

    /// Refreshes `cached` (a reactor's copy, and the generation it is of)
    /// if a reload happened since: one atomic load otherwise.
    pub fn current(&self, cached: &mut (u64, Arc<ApiKeys>)) {
        let generation = self.0.generation.load(Ordering::Acquire);
        if generation != cached.0 {
            let keys = self
                .0
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *cached = (generation, keys.clone());
        }
    }

    /// The keys now, with their generation: a reactor's first copy.
    pub fn snapshot(&self) -> (u64, Arc<ApiKeys>) {
        let keys = self
            .0
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (self.0.generation.load(Ordering::Acquire), keys.clone())
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

    #[test]
    fn a_slot_reloads_good_keys_and_keeps_the_old_on_error() {
        let dir = std::env::temp_dir().join(format!("wsd-api-slot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        std::fs::write(&file, "first-key-0123456789\n").unwrap();
        let slot = ApiKeySlot::open(std::slice::from_ref(&file)).unwrap();
        let mut cached = slot.snapshot();
        assert!(cached.1.matches(b"first-key-0123456789"));
        std::fs::write(&file, "second-key-0123456789").unwrap();
        assert_eq!(slot.reload(), Ok(1));
        slot.current(&mut cached);
        assert!(cached.1.matches(b"second-key-0123456789"));
        assert!(!cached.1.matches(b"first-key-0123456789"));
        std::fs::write(&file, "short").unwrap();
        assert!(slot.reload().is_err());
        slot.current(&mut cached);
        assert!(cached.1.matches(b"second-key-0123456789"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
