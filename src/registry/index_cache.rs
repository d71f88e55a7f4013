//! An in-memory cache of upstream index files, shared by requests and prefetches.
//!
//! cargo asks for index files one at a time per connection, so every upstream round
//! trip it waits for is latency in series. The cache answers from memory inside a
//! freshness window (like crates.io's CDN, ten minutes by default), revalidates with
//! the upstream's `ETag` after it, and makes concurrent askers of one file share one
//! fetch: the first claims it, the rest wait for its result. Its size is bounded; the
//! least recently checked entries go first.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::index::IndexLine;

/// An index file as the upstream last gave it.
#[derive(Clone, Debug)]
pub struct CachedIndex {
    /// Empty when the upstream does not have the crate.
    pub lines: Arc<Vec<IndexLine>>,
    pub etag: Option<String>,
    /// When the upstream last confirmed it.
    pub checked: Instant,
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
pub enum Lookup {
    /// Fresh: use it.
    Fresh(CachedIndex),
    /// The caller now owns fetching it and must call [`IndexCache::finish`]; `stale`
    /// is the expired copy, to revalidate or fall back on.
    Fetch { stale: Option<CachedIndex> },
}

pub struct IndexCache {
    slots: Mutex<HashMap<String, Slot>>,
    finished: Condvar,
    max_entries: usize,
    fresh_for: Duration,
}

impl IndexCache {
    pub fn new(max_entries: usize, fresh_for: Duration) -> IndexCache {
        IndexCache {
            slots: Mutex::new(HashMap::new()),
            finished: Condvar::new(),
            max_entries,
            fresh_for,
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` is neither fresh nor being fetched: a prefetch would help.
    pub fn needs_fetch(&self, key: &str) -> bool {
        match self.slots().get(key) {
            Some(Slot::Ready(cached)) => cached.checked.elapsed() >= self.fresh_for,
            Some(Slot::Fetching { .. }) => false,
            None => true,
        }
    }

    /// Looks `key` up, waiting (at most `wait`) while another thread fetches it. After
    /// the wait the caller fetches itself rather than hang on a stuck fetch.
    pub fn lookup(&self, key: &str, wait: Duration) -> Lookup {
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
    pub fn forget(&self, key: &str) {
        let mut slots = self.slots();
        match slots.get_mut(key) {
            Some(Slot::Ready(_)) => {
                slots.remove(key);
            }
            // A fetch under way may have read the file before the write: what it
            // stores must count as stale at once.
            Some(Slot::Fetching { outdated, .. }) => *outdated = true,
            None => {}
        }
    }

    /// Ends a fetch claimed by [`lookup`](Self::lookup): stores the result, or with
    /// `None` forgets the key, and wakes the waiters.
    pub fn finish(&self, key: &str, result: Option<CachedIndex>) {
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
                if slots.len() > self.max_entries {
                    evict_oldest(&mut slots);
                }
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
/// cache does not pay a scan on every insert.
fn evict_oldest(slots: &mut HashMap<String, Slot>) {
    let mut ready: Vec<(Instant, String)> = slots
        .iter()
        .filter_map(|(key, slot)| match slot {
            Slot::Ready(cached) => Some((cached.checked, key.clone())),
            Slot::Fetching { .. } => None,
        })
        .collect();
    ready.sort();
    let count = (ready.len() / 10).max(1);
    for (_, key) in ready.into_iter().take(count) {
        slots.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn cached(etag: &str) -> CachedIndex {
        CachedIndex {
            lines: Arc::new(Vec::new()),
            etag: Some(etag.to_string()),
            checked: Instant::now(),
        }
    }

    #[test]
    fn fresh_entries_are_served_and_stale_ones_revalidated() {
        let cache = IndexCache::new(10, Duration::from_millis(50));
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
        let cache = Arc::new(IndexCache::new(10, Duration::from_secs(60)));
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
        let cache = IndexCache::new(10, Duration::from_secs(60));
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
        let cache = IndexCache::new(20, Duration::from_secs(60));
        for i in 0..100 {
            let key = format!("k{i}");
            let _ = cache.lookup(&key, Duration::ZERO);
            cache.finish(&key, Some(cached("x")));
        }
        assert!(cache.slots().len() <= 20);
        assert!(!cache.needs_fetch("k99"));
    }
}
