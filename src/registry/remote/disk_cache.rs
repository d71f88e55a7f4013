//! A remote layer's copy on disk (`--cache DIR`), for second runs and offline ones.
//!
//! Every index file and `.crate` a remote layer fetches is kept in DIR in cargo's
//! local-registry layout, so DIR is also a valid `local-registry` source and a valid
//! `-r local=DIR` layer. A `.crate` is kept only once its SHA-256 matches the index
//! checksum, and is checked again each time it is served: a corrupt copy is deleted and
//! fetched anew, never served. An index file stored or revalidated less than
//! `--index-ttl` ago (its modification time) is fresh, and a new process serves it
//! without asking the upstream. When the upstream cannot be reached, the index files in
//! DIR answer instead (stale, with a warning), so a build that worked once works again
//! on a machine without network. No `ETag` is kept: a stale copy is fetched whole.
//!
//! Exec mode without `--cache` keeps a cache for the run only, in the run directory,
//! where downloads fetched ahead of cargo wait for it: that one holds `.crate` files
//! only (the memory cache has the index files for as long as the process lives) and
//! syncs nothing, since it is deleted at exit.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::{Sha256, sha256_hex_of};
use crate::registry::atomic::{Access, sync_dir, temp_path, write_atomic};
use crate::registry::error::{RegistryError, Result};
use crate::registry::index::{CrateName, IndexLine, parse_index_file};

/// How long what a cache holds must last.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Keeping {
    /// `--cache DIR` and `fetch --into DIR`: across runs; index files too, every
    /// write durable.
    Persistent,
    /// Exec mode's run directory: `.crate` files for this run only, nothing synced.
    ForThisRun,
}

pub(crate) struct DiskCache {
    root: PathBuf,
    keeping: Keeping,
}

impl DiskCache {
    pub(crate) fn open(root: PathBuf, keeping: Keeping) -> Result<DiskCache> {
        let cache = DiskCache { root, keeping };
        cache
            .access()
            .create_dir_all(&cache.root.join("index"))
            .map_err(|e| RegistryError::storage("cache", &cache.root, e))?;
        Ok(cache)
    }

    /// A cache for this run lives in the run directory, which is the owner's alone.
    fn access(&self) -> Access {
        match self.keeping {
            Keeping::Persistent => Access::Umask,
            Keeping::ForThisRun => Access::OwnerOnly,
        }
    }

    pub(crate) fn keeping(&self) -> Keeping {
        self.keeping
    }

    fn storage_error(&self, path: &Path, e: io::Error) -> RegistryError {
        RegistryError::storage(&format!("cache:{}", self.root.display()), path, e)
    }

    fn index_file(&self, name: &CrateName) -> PathBuf {
        self.root.join("index").join(name.index_path())
    }

    fn crate_file(&self, line: &IndexLine) -> PathBuf {
        self.root
            .join(format!("{}-{}.crate", line.name, line.version))
    }

    /// Keeps an index file as the upstream sent it; a cache for this run only keeps
    /// none.
    pub(crate) fn store_index(&self, name: &CrateName, text: &str) -> Result<()> {
        if self.keeping == Keeping::ForThisRun {
            return Ok(());
        }
        let path = self.index_file(name);
        write_atomic(&path, text.as_bytes(), self.access())
            .map_err(|e| self.storage_error(&path, e))
    }

    /// The kept index file, if there is one.
    pub(crate) fn load_index(&self, name: &CrateName) -> Option<Vec<IndexLine>> {
        let text = fs::read_to_string(self.index_file(name)).ok()?;
        Some(parse_index_file(&text))
    }

    /// The kept index file with its age, if it was stored or revalidated less than
    /// `fresh_for` ago: its modification time says when. A file dated in the future
    /// (a clock set back) counts as stale.
    pub(crate) fn load_fresh_index(
        &self,
        name: &CrateName,
        fresh_for: Duration,
    ) -> Option<(Vec<IndexLine>, Duration)> {
        if self.keeping == Keeping::ForThisRun {
            return None;
        }
        // One open and one stat for the time and the text: every system call here is
        // one cargo waits for on each request of a warm resolve.
        let file = File::open(self.index_file(name)).ok()?;
        let meta = file.metadata().ok()?;
        let age = SystemTime::now()
            .duration_since(meta.modified().ok()?)
            .ok()?;
        if age >= fresh_for {
            return None;
        }
        // Sized by the stat above, read through `Take`: `File::read_to_string` would
        // ask for the size again, a `statx` and an `lseek` more. Kept files are
        // replaced by rename, never written in place, so the size holds.
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).ok()?.saturating_add(1));
        file.take(u64::MAX).read_to_end(&mut bytes).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        Some((parse_index_file(&text), age))
    }

    /// Restarts the kept index file's age: the upstream confirmed it is current. Only
    /// its modification time changes, not a byte of it, so a reader never sees it half
    /// written; a failure only costs the next process a revalidation.
    pub(crate) fn touch_index(&self, name: &CrateName) {
        self.set_index_time(name, SystemTime::now());
    }

    /// Makes the kept index file stale, so the next process revalidates it: a write
    /// forwarded to the upstream has changed it there.
    pub(crate) fn expire_index(&self, name: &CrateName) {
        self.set_index_time(name, SystemTime::UNIX_EPOCH);
    }

    fn set_index_time(&self, name: &CrateName, time: SystemTime) {
        if self.keeping == Keeping::ForThisRun {
            return;
        }
        let path = self.index_file(name);
        let result = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(time));
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::debug!("cannot set the time of {}: {e}", path.display()),
        }
    }

    /// The kept `.crate` for `line`, if it is there and matches the index checksum. A
    /// copy that does not match is removed.
    pub(crate) fn open_verified(&self, line: &IndexLine) -> Option<(File, u64)> {
        let path = self.crate_file(line);
        let expected = line.field("cksum")?;
        let mut file = File::open(&path).ok()?;
        let actual = sha256_hex_of(&mut file).ok()?;
        if actual != expected {
            log::warn!(
                "cached {} does not match its checksum; removing it and fetching it again",
                path.display()
            );
            let _ = fs::remove_file(&path);
            return None;
        }
        let len = file.metadata().ok()?.len();
        let file = File::open(&path).ok()?;
        Some((file, len))
    }

    /// Copies a download into the cache, hashing as it goes, and keeps it only if it
    /// matches the index checksum. Returns the kept file, ready to serve.
    pub(crate) fn store_crate(
        &self,
        line: &IndexLine,
        download: &mut dyn Read,
    ) -> Result<(File, u64)> {
        let path = self.crate_file(line);
        let temp = temp_path(&path);
        let result = (|| -> io::Result<Option<u64>> {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(self.access().file_mode())
                .open(&temp)?;
            let mut hasher = Sha256::new();
            let mut buf = [0u8; 64 * 1024];
            let mut len = 0u64;
            loop {
                let n = download.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n])?;
                len += n as u64;
            }
            if Some(hasher.finish_hex()) != line.field("cksum") {
                return Ok(None);
            }
            let durable = self.keeping == Keeping::Persistent;
            if durable {
                file.sync_all()?;
            }
            fs::rename(&temp, &path)?;
            if durable {
                sync_dir(&path)?;
            }
            Ok(Some(len))
        })();
        let len = match result {
            Ok(Some(len)) => len,
            Ok(None) => {
                let _ = fs::remove_file(&temp);
                return Err(RegistryError::upstream(format!(
                    "the download of {}@{} does not match the index checksum",
                    line.name, line.version
                )));
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(self.storage_error(&path, e));
            }
        };
        let file = File::open(&path).map_err(|e| self.storage_error(&path, e))?;
        Ok((file, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_hex;
    use crate::test_support::Scratch;

    fn line(cksum: &str) -> IndexLine {
        IndexLine::parse(&format!(
            r#"{{"name":"kept","vers":"1.0.0","cksum":"{cksum}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn keeps_only_verified_crates_and_drops_corrupt_ones() {
        let root = Scratch::unmade("disk-cache");
        let cache = DiskCache::open(root.to_path_buf(), Keeping::Persistent).unwrap();
        let good = line(&sha256_hex(b"crate"));

        assert!(cache.store_crate(&line("00"), &mut &b"crate"[..]).is_err());
        assert!(
            !root.join("kept-1.0.0.crate").exists(),
            "a mismatch is not kept"
        );
        let (_, len) = cache.store_crate(&good, &mut &b"crate"[..]).unwrap();
        assert_eq!(len, 5);
        assert!(cache.open_verified(&good).is_some());

        fs::write(root.join("kept-1.0.0.crate"), b"corrupt").unwrap();
        assert!(cache.open_verified(&good).is_none());
        assert!(
            !root.join("kept-1.0.0.crate").exists(),
            "a corrupt copy is removed"
        );

        let name = CrateName::new("kept").unwrap();
        cache
            .store_index(&name, &format!("{}\n", good.raw))
            .unwrap();
        assert_eq!(cache.load_index(&name).unwrap().len(), 1);

        // Fresh while younger than the TTL; expired by a forwarded write; a
        // revalidation restarts its age.
        let minute = Duration::from_secs(60);
        assert_eq!(cache.load_fresh_index(&name, minute).unwrap().0.len(), 1);
        assert!(cache.load_fresh_index(&name, Duration::ZERO).is_none());
        cache.expire_index(&name);
        assert!(cache.load_fresh_index(&name, minute).is_none());
        assert_eq!(cache.load_index(&name).unwrap().len(), 1, "kept for errors");
        cache.touch_index(&name);
        assert!(cache.load_fresh_index(&name, minute).is_some());
    }

    #[test]
    fn a_cache_for_this_run_keeps_crates_and_no_index_files() {
        let root = Scratch::unmade("run-cache");
        let cache = DiskCache::open(root.to_path_buf(), Keeping::ForThisRun).unwrap();
        let good = line(&sha256_hex(b"crate"));
        cache.store_crate(&good, &mut &b"crate"[..]).unwrap();
        assert!(cache.open_verified(&good).is_some());
        let name = CrateName::new("kept").unwrap();
        cache
            .store_index(&name, &format!("{}\n", good.raw))
            .unwrap();
        assert!(cache.load_index(&name).is_none());
    }
}
