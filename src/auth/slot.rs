//! The `--auth-key` files, shared by every reactor and replaceable on
//! reload (SIGHUP), like the certificate's [`crate::tls::TlsSlot`].
//!
//! The files are read on the thread that asks (at start, main; on SIGHUP,
//! the signal thread), never on a reactor. A good set becomes the new
//! `Arc<KeySet>`; a reactor takes the current one at each upgrade (a lock
//! and a reference count, never on the per-message path), so new upgrades
//! are checked with the new keys while open connections keep the rights
//! they were admitted with. A bad file leaves the slot as it was.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::keys::{KeyError, KeySet};

#[derive(Debug)]
struct Inner {
    paths: Vec<PathBuf>,
    current: Mutex<Arc<KeySet>>,
    reloads_ok: AtomicU64,
    reloads_error: AtomicU64,
}

/// The verification keys every reactor shares. Cloning shares them.
#[derive(Clone)]
pub struct KeySlot(Arc<Inner>);

impl fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The file names only, never a key.
        f.debug_struct("KeySlot")
            .field("paths", &self.0.paths)
            .finish_non_exhaustive()
    }
}

impl KeySlot {
    /// Loads every file ([`KeySet::load`]) into a new slot that knows where
    /// to reload them from. The error names the first bad file.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<KeySlot, KeyError> {
        let keys = KeySet::load(paths)?;
        Ok(KeySlot::with_keys(
            paths.iter().map(|p| p.as_ref().to_path_buf()).collect(),
            keys,
        ))
    }

    /// A slot holding `keys`, to be reloaded from `paths`.
    pub fn with_keys(paths: Vec<PathBuf>, keys: KeySet) -> KeySlot {
        KeySlot(Arc::new(Inner {
            paths,
            current: Mutex::new(Arc::new(keys)),
            reloads_ok: AtomicU64::new(0),
            reloads_error: AtomicU64::new(0),
        }))
    }

    /// The keys new upgrades are checked with: a lock and a reference
    /// count, once per upgrade.
    pub fn keys(&self) -> Arc<KeySet> {
        self.0
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again; a good set replaces the current one for new
    /// upgrades and is returned, a bad file is the error (naming it, never
    /// its contents) and the old keys stay. Either way it is counted. Does
    /// file I/O: call it from any thread but a reactor's.
    pub fn reload(&self) -> Result<Arc<KeySet>, KeyError> {
        match KeySet::load(&self.0.paths) {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *self
                    .0
                    .current
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = keys.clone();
                self.0.reloads_ok.fetch_add(1, Ordering::Relaxed);
                Ok(keys)
            }
            Err(e) => {
                self.0.reloads_error.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Reloads so far: `[ok, error]`.
    pub fn reloads(&self) -> [u64; 2] {
        [
            self.0.reloads_ok.load(Ordering::Relaxed),
            self.0.reloads_error.load(Ordering::Relaxed),
        ]
    }

    /// The key files, in order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.0.paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::KeyProblem;
    use crate::auth::scratch::Dir;

    #[test]
    fn a_bad_reload_keeps_the_old_keys_and_a_good_one_replaces_them() {
        let dir = Dir::new("slot");
        let path = dir.file("a", &[b'a'; 32]);
        let slot = KeySlot::open(&[&path]).unwrap();
        assert_eq!(slot.keys().len(), 1);
        std::fs::write(&path, b"short").unwrap();
        let err = slot.reload().unwrap_err();
        assert_eq!(err.problem, KeyProblem::ShortSecret(5));
        assert!(!err.to_string().contains("short"), "{err}");
        assert_eq!(slot.keys().len(), 1);
        assert_eq!(slot.reloads(), [0, 1]);
        std::fs::write(&path, [b'b'; 40]).unwrap();
        let before = slot.keys();
        let after = slot.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, &after));
        assert!(Arc::ptr_eq(&after, &slot.keys()));
        assert_eq!(slot.reloads(), [1, 1]);
        assert!(!format!("{slot:?}").contains("bbbb"));
    }
}
