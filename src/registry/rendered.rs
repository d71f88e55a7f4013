//! Merged index files kept rendered in memory while none of their sources changed.
//!
//! Answering an index GET from the layers means reading the file of every layer,
//! parsing each line, merging, rendering the body and hashing it for its `ETag`: nearly
//! all the time the request takes. The body changes only when a source does, and each
//! layer can say cheaply what its answer depends on: a local file by its identity
//! (device, inode, size, modification time), a remote layer by the copy it holds in
//! memory. So the stack keeps each body it rendered with the [`SourceStamp`]s its
//! layers gave just before it read them, and serves it again while every layer still
//! gives the same stamps. A layer that cannot vouch for its answer (an upstream copy
//! due for revalidation, cargo's tmp-registry, a file written a moment ago) gives no
//! stamp, and the stack renders afresh, as it would without this cache.
//!
//! Stamps are taken before the read, so a change that lands between the two leaves a
//! stamp older than the body: the next request sees a different stamp and renders
//! again. Never the other way round, which could pin an old body.
//!
//! Memory is bounded: at most [`MAX_BYTES`] of bodies, none over [`MAX_ENTRY_BYTES`];
//! past the bound the least recently served bodies go first.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::digest::sha256_hex;

/// The most memory the bodies may take together.
pub(crate) const MAX_BYTES: usize = 64 * 1024 * 1024;
/// A larger body is rendered for every request rather than crowd out the rest.
pub(crate) const MAX_ENTRY_BYTES: usize = MAX_BYTES / 8;
/// A file modified less than this long ago is not vouched for by its stamp: clocks
/// that stamp files tick coarsely (a few milliseconds locally, whatever the server's
/// clock says on a network filesystem), so two writes in place within one tick could
/// leave the same size and time. Git calls such files "racily clean".
const RACY_WINDOW: Duration = Duration::from_secs(1);
/// What an entry costs beyond its body: the key, the stamps, the map's slot.
const ENTRY_OVERHEAD: usize = 256;

/// What one layer's answer for one crate depended on, learned without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SourceStamp {
    /// The layer has no file for the crate.
    Absent,
    /// A file, by identity: a rename into place changes the inode, a write in place
    /// the size or the modification time.
    File {
        dev: u64,
        ino: u64,
        size: u64,
        mtime_ns: i128,
    },
    /// A copy the layer holds in memory, by the generation it was stored under.
    Held(u64),
}

impl SourceStamp {
    /// The stamp of a regular file; `None` when it changed too recently to be vouched
    /// for (see [`RACY_WINDOW`]) or is not a regular file.
    pub(crate) fn of_file(meta: &Metadata) -> Option<SourceStamp> {
        let modified = meta.modified().ok()?;
        let settled = SystemTime::now()
            .checked_sub(RACY_WINDOW)
            .is_some_and(|settled| modified < settled);
        (meta.is_file() && settled).then(|| SourceStamp::File {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }
}

/// A merged index file as served: its body and the `ETag` that names it. Cloning is
/// cheap; the body is shared.
#[derive(Clone, Debug)]
pub(crate) struct RenderedIndex {
    pub(crate) body: Arc<[u8]>,
    /// The body's SHA-256, quoted as an `ETag` header wants it.
    pub(crate) etag: Arc<str>,
}

impl RenderedIndex {
    pub(crate) fn new(text: String) -> RenderedIndex {
        let etag = format!("\"{}\"", sha256_hex(text.as_bytes()));
        RenderedIndex {
            body: Arc::from(text.into_bytes()),
            etag: Arc::from(etag),
        }
    }
}

struct Entry {
    stamps: Vec<SourceStamp>,
    rendered: RenderedIndex,
    /// When it was last served, on the cache's own clock.
    last_used: u64,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.rendered.body.len() + ENTRY_OVERHEAD
    }
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    bytes: usize,
    /// Counts lookups: the clock `last_used` is read on.
    clock: u64,
}

/// The rendered bodies, by lowercase crate name.
#[derive(Default)]
pub(crate) struct RenderedCache {
    entries: Mutex<Entries>,
}

impl RenderedCache {
    /// The body rendered for `key` from sources that gave `stamps`, if there is one.
    pub(crate) fn get(&self, key: &str, stamps: &[SourceStamp]) -> Option<RenderedIndex> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.map.get_mut(key)?;
        if entry.stamps != stamps {
            return None;
        }
        entry.last_used = now;
        Some(entry.rendered.clone())
    }

    /// Keeps `rendered`, made from sources that gave `stamps` before they were read.
    pub(crate) fn insert(&self, key: &str, stamps: Vec<SourceStamp>, rendered: &RenderedIndex) {
        if rendered.body.len() > MAX_ENTRY_BYTES {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = Entry {
            stamps,
            rendered: rendered.clone(),
            last_used: entries.clock,
        };
        entries.bytes += entry.bytes();
        if let Some(old) = entries.map.insert(key.to_string(), entry) {
            entries.bytes -= old.bytes();
        }
        if entries.bytes > MAX_BYTES {
            entries.evict_to(MAX_BYTES / 4 * 3);
        }
    }
}

impl Entries {
    /// Drops the least recently served entries until at most `target` bytes are left.
    /// Evicting a quarter at once keeps the sort this takes rare.
    fn evict_to(&mut self, target: usize) {
        let mut by_use: Vec<(u64, String)> = self
            .map
            .iter()
            .map(|(key, entry)| (entry.last_used, key.clone()))
            .collect();
        by_use.sort_unstable();
        for (_, key) in by_use {
            if self.bytes <= target {
                break;
            }
            if let Some(old) = self.map.remove(&key) {
                self.bytes -= old.bytes();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(len: usize) -> RenderedIndex {
        RenderedIndex::new("x".repeat(len))
    }

    #[test]
    fn a_body_is_served_only_while_its_stamps_hold() {
        let cache = RenderedCache::default();
        let stamps = vec![SourceStamp::Held(1), SourceStamp::Absent];
        cache.insert("serde", stamps.clone(), &rendered(10));
        assert_eq!(cache.get("serde", &stamps).unwrap().body.len(), 10);
        let changed = vec![SourceStamp::Held(2), SourceStamp::Absent];
        assert!(cache.get("serde", &changed).is_none());
        assert!(cache.get("serde", &stamps[..1]).is_none());
        assert!(cache.get("other", &stamps).is_none());
    }

    #[test]
    fn memory_stays_bounded_and_the_least_recently_served_go_first() {
        let cache = RenderedCache::default();
        let stamps = vec![SourceStamp::Absent];
        let each = MAX_ENTRY_BYTES / 2;
        cache.insert("first", stamps.clone(), &rendered(each));
        cache.insert("second", stamps.clone(), &rendered(each));
        // `first` is served again, so `second` is now the least recently served.
        assert!(cache.get("first", &stamps).is_some());
        for n in 0..16 {
            cache.insert(&format!("filler-{n}"), stamps.clone(), &rendered(each));
            assert!(cache.entries.lock().unwrap().bytes <= MAX_BYTES);
            assert!(cache.get("first", &stamps).is_some());
        }
        assert!(cache.get("second", &stamps).is_none());

        cache.insert("huge", stamps.clone(), &rendered(MAX_ENTRY_BYTES + 1));
        assert!(cache.get("huge", &stamps).is_none());
    }

    #[test]
    fn a_file_written_a_moment_ago_has_no_stamp() {
        let dir = crate::test_support::Scratch::new("stamp");
        let path = dir.join("file");
        std::fs::write(&path, b"x").unwrap();
        assert_eq!(
            SourceStamp::of_file(&std::fs::metadata(&path).unwrap()),
            None
        );
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(5))
            .unwrap();
        let stamp = SourceStamp::of_file(&std::fs::metadata(&path).unwrap());
        assert!(matches!(stamp, Some(SourceStamp::File { size: 1, .. })));
        assert_eq!(
            SourceStamp::of_file(&std::fs::metadata(&*dir).unwrap()),
            None
        );
    }
}
