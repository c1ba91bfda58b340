//! A scratch directory for the key files of the unit tests: one of its own
//! per call, removed when dropped, so also when a test panics and unwinds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A scratch directory for key files, removed on drop.
pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    /// A fresh, empty directory; `name` says whose it is.
    pub(crate) fn new(name: &str) -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wsd-auth-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    /// Writes `bytes` to `name` in the directory; its path.
    pub(crate) fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
