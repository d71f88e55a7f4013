//! An in-memory cache of upstream index files, shared by requests and prefetches.
//!
//! cargo asks for index files one at a time per connection, so every upstream round
//! trip it waits for is latency in series. The cache answers from memory inside a
//! freshness window (like crates.io's CDN, ten minutes by default), revalidates with
//! the upstream's `ETag` after it, and makes concurrent askers of one file share one
//! fetch: the first claims it, the rest wait for its result. Its size is bounded, in
//! files and in bytes (the index text plus about 100 bytes a line for what the overlay
//! parses out of it); the least recently checked entries go first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::registry::index::IndexLine;

/// An index file as the upstream last gave it.
#[derive(Clone, Debug)]
pub(crate) struct CachedIndex {
    /// Empty when the upstream does not have the crate.
    pub(crate) lines: Arc<Vec<IndexLine>>,
    pub(crate) etag: Option<String>,
    /// When the upstream last confirmed it.
    pub(crate) checked: Instant,
    /// Names these lines: a new copy gets a new one, a revalidation keeps it. It lets a
    /// body rendered from them be kept while they are (see
    /// [`rendered`](crate::registry::rendered)).
    pub(crate) generation: u64,
}

enum Slot {
    Ready(CachedIndex),
    /// Someone is fetching it; `stale` is what there was before. `outdated` says the
    /// upstream changed since the fetch began, so its result must not count as fresh.
    Fetching {
        stale: Option<CachedIndex>,
        outdated: bool,
    },
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// Fresh: use it.
    Fresh(CachedIndex),
    /// The caller now owns fetching it and must call [`IndexCache::finish`]; `stale`
    /// is the expired copy, to revalidate or fall back on.
    Fetch { stale: Option<CachedIndex> },
}

impl CachedIndex {
    /// A copy of the upstream's file, confirmed at `checked`.
    pub(crate) fn new(
        lines: Arc<Vec<IndexLine>>,
        etag: Option<String>,
        checked: Instant,
    ) -> CachedIndex {
        static GENERATIONS: AtomicU64 = AtomicU64::new(0);
        CachedIndex {
            lines,
            etag,
            checked,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// About how much memory the entry holds.
    pub(crate) fn bytes(&self) -> usize {
        self.lines
            .iter()
            .map(|line| line.raw.len() + line.name.len() + LINE_OVERHEAD)
            .sum()
    }
}

/// What an index line costs beyond its text: the parsed version, the struct, the
/// allocations' headers.
const LINE_OVERHEAD: usize = 100;

impl Slot {
    fn bytes(&self) -> usize {
        match self {
            Slot::Ready(cached)
            | Slot::Fetching {
                stale: Some(cached),
                ..
            } => cached.bytes(),
            Slot::Fetching { stale: None, .. } => 0,
        }
    }
}

/// The slots and the bytes they hold, kept in step.
#[derive(Default)]
struct Slots {
    map: HashMap<String, Slot>,
    bytes: usize,
}

impl Slots {
    fn get(&self, key: &str) -> Option<&Slot> {
        self.map.get(key)
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn insert(&mut self, key: String, slot: Slot) {
        self.bytes += slot.bytes();
        if let Some(old) = self.map.insert(key, slot) {
            self.bytes -= old.bytes();
        }
    }

    fn remove(&mut self, key: &str) -> Option<Slot> {
        let old = self.map.remove(key)?;
        self.bytes -= old.bytes();
        Some(old)
    }

    /// Marks a fetch under way as outdated; its bytes do not change.
    fn mark_outdated(&mut self, key: &str) {
        if let Some(Slot::Fetching { outdated, .. }) = self.map.get_mut(key) {
            *outdated = true;
        }
    }
}

pub(crate) struct IndexCache {
    slots: Mutex<Slots>,
    finished: Condvar,
    max_entries: usize,
    max_bytes: usize,
    fresh_for: Duration,
}

impl IndexCache {
    pub(crate) fn new(max_entries: usize, max_bytes: usize, fresh_for: Duration) -> IndexCache {
        IndexCache {
            slots: Mutex::new(Slots::default()),
            finished: Condvar::new(),
            max_entries,
            max_bytes,
            fresh_for,
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long a file counts as fresh after the upstream confirmed it.
    pub(crate) fn fresh_for(&self) -> Duration {
        self.fresh_for
    }

    /// The generation of `key`'s copy while it is fresh: until then a lookup answers
    /// with these very lines.
    pub(crate) fn fresh_generation(&self, key: &str) -> Option<u64> {
        match self.slots().get(key) {
            Some(Slot::Ready(cached)) if cached.checked.elapsed() < self.fresh_for => {
                Some(cached.generation)
            }
            _ => None,
        }
    }

    /// Whether `key` is neither fresh nor being fetched: a prefetch would help.
    pub(crate) fn needs_fetch(&self, key: &str) -> bool {
        match self.slots().get(key) {
            Some(Slot::Ready(cached)) => cached.checked.elapsed() >= self.fresh_for,
            Some(Slot::Fetching { .. }) => false,
            None => true,
        }
    }

    /// Looks `key` up, waiting (at most `wait`) while another thread fetches it. After
    /// the wait the caller fetches itself rather than hang on a stuck fetch.
    pub(crate) fn lookup(&self, key: &str, wait: Duration) -> Lookup {
        let deadline = Instant::now() + wait;
        let mut slots = self.slots();
        loop {
            match slots.get(key) {
                Some(Slot::Ready(cached)) if cached.checked.elapsed() < self.fresh_for => {
                    return Lookup::Fresh(cached.clone());
                }
                Some(Slot::Fetching { .. }) if Instant::now() < deadline => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    slots = self
                        .finished
                        .wait_timeout(slots, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    continue;
                }
                _ => {}
            }
            let stale = match slots.remove(key) {
                Some(Slot::Ready(cached)) => Some(cached),
                Some(Slot::Fetching { stale, .. }) => stale,
                None => None,
            };
            slots.insert(
                key.to_string(),
                Slot::Fetching {
                    stale: stale.clone(),
                    outdated: false,
                },
            );
            return Lookup::Fetch { stale };
        }
    }

    /// Drops what is cached for `key`, so the next lookup asks the upstream: after a
    /// write forwarded to it, the cached file is known to be out of date.
    pub(crate) fn forget(&self, key: &str) {
        let mut slots = self.slots();
        match slots.get(key) {
            Some(Slot::Ready(_)) => {
                slots.remove(key);
            }
            // A fetch under way may have read the file before the write: what it
            // stores must count as stale at once.
            Some(Slot::Fetching { .. }) => slots.mark_outdated(key),
            None => {}
        }
    }

    /// Ends a fetch claimed by [`lookup`](Self::lookup): stores the result, or with
    /// `None` forgets the key, and wakes the waiters.
    pub(crate) fn finish(&self, key: &str, result: Option<CachedIndex>) {
        let mut slots = self.slots();
        let outdated = matches!(slots.get(key), Some(Slot::Fetching { outdated: true, .. }));
        match result {
            Some(cached) if outdated => {
                // Keep it for revalidation, but stale from the start.
                let checked = Instant::now()
                    .checked_sub(self.fresh_for)
                    .unwrap_or(cached.checked);
                slots.insert(
                    key.to_string(),
                    Slot::Ready(CachedIndex { checked, ..cached }),
                );
            }
            Some(cached) => {
                slots.insert(key.to_string(), Slot::Ready(cached));
                while (slots.len() > self.max_entries || slots.bytes > self.max_bytes)
                    && evict_oldest(&mut slots) > 0
                {}
            }
            None => {
                slots.remove(key);
            }
        }
        drop(slots);
        self.finished.notify_all();
    }
}

/// Drops the tenth of the ready entries checked longest ago (at least one), so a full
/// cache does not pay a scan on every insert. Returns how many it dropped.
fn evict_oldest(slots: &mut Slots) -> usize {
    let mut ready: Vec<(Instant, String)> = slots
        .map
        .iter()
        .filter_map(|(key, slot)| match slot {
            Slot::Ready(cached) => Some((cached.checked, key.clone())),
            Slot::Fetching { .. } => None,
        })
        .collect();
    ready.sort();
    let count = (ready.len() / 10).max(1).min(ready.len());
    for (_, key) in ready.into_iter().take(count) {
        slots.remove(&key);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn cached(etag: &str) -> CachedIndex {
        CachedIndex::new(Arc::new(Vec::new()), Some(etag.to_string()), Instant::now())
    }

    #[test]
    fn fresh_entries_are_served_and_stale_ones_revalidated() {
        let cache = IndexCache::new(10, usize::MAX, Duration::from_millis(50));
        assert!(cache.needs_fetch("a"));
        assert!(matches!(
            cache.lookup("a", Duration::ZERO),
            Lookup::Fetch { stale: None }
        ));
        assert!(!cache.needs_fetch("a"), "a fetch is under way");
        cache.finish("a", Some(cached("1")));
        assert!(!cache.needs_fetch("a"));
        assert!(
            matches!(cache.lookup("a", Duration::ZERO), Lookup::Fresh(c) if c.etag.as_deref() == Some("1"))
        );
        thread::sleep(Duration::from_millis(60));
        assert!(
            cache.needs_fetch("a"),
            "an expired entry wants revalidating"
        );
        match cache.lookup("a", Duration::ZERO) {
            Lookup::Fetch { stale: Some(c) } => assert_eq!(c.etag.as_deref(), Some("1")),
            _ => panic!("expected a revalidation with the stale copy"),
        }
    }

    #[test]
    fn concurrent_askers_share_one_fetch() {
        let cache = Arc::new(IndexCache::new(10, usize::MAX, Duration::from_secs(60)));
        assert!(matches!(
            cache.lookup("a", Duration::ZERO),
            Lookup::Fetch { .. }
        ));
        let waiter = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                matches!(cache.lookup("a", Duration::from_secs(5)), Lookup::Fresh(_))
            })
        };
        thread::sleep(Duration::from_millis(50));
        cache.finish("a", Some(cached("1")));
        assert!(waiter.join().unwrap(), "the waiter got the fetched entry");
    }

    #[test]
    fn a_fetch_under_way_when_forgotten_stores_a_stale_result() {
        let cache = IndexCache::new(10, usize::MAX, Duration::from_secs(60));
        assert!(matches!(
            cache.lookup("a", Duration::ZERO),
            Lookup::Fetch { .. }
        ));
        cache.forget("a");
        cache.finish("a", Some(cached("old")));
        assert!(matches!(
            cache.lookup("a", Duration::ZERO),
            Lookup::Fetch { stale: Some(_) }
        ));
    }

    #[test]
    fn size_is_bounded() {
        let cache = IndexCache::new(20, usize::MAX, Duration::from_secs(60));
        for i in 0..100 {
            let key = format!("k{i}");
            let _ = cache.lookup(&key, Duration::ZERO);
            cache.finish(&key, Some(cached("x")));
        }
        assert!(cache.slots().len() <= 20);
        assert!(!cache.needs_fetch("k99"));
    }

    #[test]
    fn memory_is_bounded_and_accounted_for() {
        let line = |i: usize| {
            crate::registry::index::IndexLine::parse(&format!(
                r#"{{"name":"k","vers":"1.0.{i}","cksum":"{}"}}"#,
                "0".repeat(900)
            ))
            .unwrap()
        };
        let file =
            |n: usize| CachedIndex::new(Arc::new((0..n).map(line).collect()), None, Instant::now());
        let one_kib_lines = file(10).bytes();
        assert!((10_000..12_000).contains(&one_kib_lines), "{one_kib_lines}");

        // Room for about five files of ten lines.
        let cache = IndexCache::new(1000, 5 * one_kib_lines + 100, Duration::from_secs(60));
        for i in 0..40 {
            let key = format!("k{i}");
            let _ = cache.lookup(&key, Duration::ZERO);
            cache.finish(&key, Some(file(10)));
            let slots = cache.slots();
            assert!(slots.bytes <= 5 * one_kib_lines + 100, "{}", slots.bytes);
            let counted: usize = slots.map.values().map(Slot::bytes).sum();
            assert_eq!(counted, slots.bytes, "the running total matches");
        }
        assert!(!cache.needs_fetch("k39"), "the newest stays");
        assert!(cache.needs_fetch("k0"), "the oldest went");
        cache.forget("k39");
        let slots = cache.slots();
        assert_eq!(
            slots.map.values().map(Slot::bytes).sum::<usize>(),
            slots.bytes
        );
    }
}
