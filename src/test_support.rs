//! Shared by the unit tests: one scratch-directory helper.

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under the system temp dir, unique per call (`overlay-LABEL-PID-N`),
/// removed with everything in it when dropped, so a failed test leaves nothing behind.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A fresh, empty directory.
    pub(crate) fn new(label: &str) -> Scratch {
        let scratch = Scratch::unmade(label);
        fs::create_dir_all(&scratch.0).unwrap();
        scratch
    }

    /// The path only, for a test that makes the directory itself (its mode matters).
    pub(crate) fn unmade(label: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "overlay-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        Scratch(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
