//! Atomic, durable file writes: what every layer that writes to disk relies on.
//!
//! A file is written to a temporary name beside its final one, synced, renamed into
//! place, and its directory synced, so readers see the old file or the new one, never a
//! part, and the new one survives a crash once the write returns. Temporary names
//! start with `.tmp-` and carry the writer's process id, so a later start can tell a
//! crashed writer's leftovers from a live writer's work.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Makes temporary names unique among the threads of this process; the process id
/// makes them unique among processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The prefix of every temporary file name.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A fresh temporary path beside `path`: `.tmp-{pid}-{n}-{file name}`.
pub fn temp_path(path: &Path) -> PathBuf {
    let dir = path.parent().expect("layer files have a directory");
    let file_name = path.file_name().expect("layer files have a name");
    dir.join(format!(
        "{TEMP_PREFIX}{}-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
        file_name.to_string_lossy()
    ))
}

/// Writes `bytes` to `path` atomically and durably (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().expect("layer files have a directory");
    fs::create_dir_all(dir)?;
    let temp = temp_path(path);
    let result = (|| {
        let mut file = File::create_new(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        sync_dir(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Syncs the directory holding `path`, making a rename into it durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().expect("layer files have a directory");
    File::open(dir)?.sync_all()
}
