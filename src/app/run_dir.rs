//! The run directory: a private scratch directory that lives as long as the run.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::AppError;

/// The run's scratch directory: temporary layers and the CA bundle. Private to the
/// user (0700), so no other user reads or plants anything in it. Removed when dropped.
pub(crate) struct RunDir(PathBuf);

impl RunDir {
    pub(crate) fn new() -> Result<RunDir, AppError> {
        let base = std::env::temp_dir();
        create_unique_dir(&base)
            .map(RunDir)
            .map_err(|source| AppError::RunDir { path: base, source })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            log::warn!("could not remove {}: {e}", self.0.display());
        }
    }
}

fn create_unique_dir(base: &Path) -> io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let dir = base.join(format!(
            "cargo-overlay-registry-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        // Created with no access for others, never opened up later; then set exactly,
        // whatever the umask took away.
        let created = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        match created.and_then(|()| std::fs::set_permissions(&dir, Permissions::from_mode(0o700))) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary directory name",
    ))
}
