//! What a local layer's search needs, kept in memory: for each crate in the index, its
//! name, its highest version that is not yanked and that version's description.
//!
//! Built on the first search (not at start-up), by the same walk the search once made
//! on every query. Kept current without that walk: a check compares the modification
//! time of every index directory (looked up relative to its parent) and of `meta/` with
//! the one it last saw, and re-reads only the directories that changed. Every write
//! into a layer, by this process, by another one sharing the directory or by cargo in
//! its tmp-registry, creates or renames a file into its directory, which changes that
//! directory's modification time. `meta/` holds one file per publish, so a change there
//! is narrowed down by the inode of each of its files (read with the directory listing,
//! without a `stat` each): only the descriptions whose file was replaced are read
//! again. A directory whose time is under two seconds old is read again at the next
//! check all the same, as a coarse filesystem clock may not move for a write just after
//! the read.
//!
//! A check costs a system call per index directory, tens of thousands on a large
//! layer, so queries do not wait for it: at most once a second ([`CHECK_EVERY`]) a
//! query starts one on a thread of its own and answers from memory. The check looks
//! for changes under the read lock that queries share, and takes the write lock only
//! to read what changed. Another process's write therefore shows in search a moment
//! after the next query; after a quiet spell ([`CHECK_FIRST_AFTER`]) the query checks
//! first, and sees it at once. This process's own publishes and yanks update their
//! crate's entry at once, under its lock.
//!
//! Memory: per crate its names and version twice over (as published and folded for
//! matching), its description twice, and its metadata file's name and inode: about
//! 200 bytes plus twice the description, a few hundred bytes in all (tens of MB for
//! 100,000 crates).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirEntryExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::LocalLayer;
use crate::registry::atomic::modified_at;
use crate::registry::error::{RegistryError, Result};
use crate::registry::index::{CrateName, canonical_name};
use crate::registry::layer::{SearchHit, SearchPage, search_rank};

/// One crate as search sees it.
struct Entry {
    hit: SearchHit,
    /// The name folded as crates.io compares names, for matching.
    canonical: String,
    canonical_description: Option<String>,
    /// The file name in `meta/` of the description's version.
    meta_file: String,
}

/// One directory of the index (`index/` itself, `index/se`, `index/se/rd`), as last
/// read.
#[derive(Default)]
struct DirState {
    /// Its modification time when it was read; `None` to read it again at the next
    /// query (new, or changed too recently to trust, see [`settled`]).
    modified: Option<SystemTime>,
    /// Its subdirectories, by name.
    subdirs: BTreeMap<String, DirState>,
    /// The crates whose index files it holds.
    entries: Vec<Entry>,
}

/// The search index of one layer.
#[derive(Default)]
struct SearchIndex {
    index: DirState,
    meta_modified: Option<SystemTime>,
    /// Inode of each file in `meta/`, by name.
    meta_inodes: HashMap<String, u64>,
}

/// A layer's search: its index, and the checks that keep it current.
pub(super) struct Search {
    /// Read by queries; written by a check only when it found a change, and by this
    /// process's own writes.
    index: RwLock<SearchIndex>,
    /// When the last check ended; `None` before the index is built.
    checked: Mutex<Option<Instant>>,
    /// Whether a check runs beside the queries, so that they start no other.
    checking_beside: AtomicBool,
    /// A check starts, beside the queries, at the first query this long after the
    /// last one ended.
    check_every: Duration,
    /// After this long without a check (an idle layer), the query checks first and
    /// then answers.
    check_first_after: Duration,
}

/// How often, at most, the directories are checked for outside writes: a check
/// looks up the time of every index directory, about 130 ms for 40,000 directories
/// here. It runs beside the queries, which answer from memory meanwhile.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// After this long without a check, a query checks before it answers, so that the
/// first query after a quiet spell sees what was written during it.
const CHECK_FIRST_AFTER: Duration = Duration::from_secs(10);

impl Default for Search {
    fn default() -> Search {
        Search::checking(CHECK_EVERY, CHECK_FIRST_AFTER)
    }
}

impl Search {
    pub(super) fn checking(check_every: Duration, check_first_after: Duration) -> Search {
        Search {
            index: RwLock::new(SearchIndex::default()),
            checked: Mutex::new(None),
            checking_beside: AtomicBool::new(false),
            check_every,
            check_first_after,
        }
    }

    /// The first `limit` crates whose name or description contains `query` (see
    /// [`SearchIndex::search`]). The first query builds the index; later ones answer
    /// from memory, starting a check beside them at most once every [`CHECK_EVERY`].
    pub(super) fn query(
        self: &Arc<Self>,
        layer: &LocalLayer,
        query: &str,
        limit: usize,
    ) -> Result<SearchPage> {
        let since_checked = self
            .checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|started| started.elapsed());
        match since_checked {
            Some(since) if since < self.check_every => {}
            Some(since) if since < self.check_first_after => self.check_beside(layer),
            // Never built, or quiet for long: check, then answer.
            _ => self.check(layer)?,
        }
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        Ok(index.search(query, limit))
    }

    /// Looks for changes under the read lock, which queries share; only when there
    /// are some (rarely: another process wrote) does it take the write lock to read
    /// them, as [`SearchIndex::check`].
    fn check(&self, layer: &LocalLayer) -> Result<()> {
        let started = Instant::now();
        let changed = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .changed(layer);
        if changed {
            let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
            index.check(layer)?;
        }
        log::debug!(
            "{}: search index checked in {:?}{}",
            layer.label,
            started.elapsed(),
            if changed { ", changes read" } else { "" }
        );
        // When it ended, so that a long first build is not taken for a quiet spell. A
        // write while it ran shows at the next check all the same: each directory's
        // time was taken before it was read.
        *self.checked.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        Ok(())
    }

    /// Starts a check on a thread of its own, reading the layer's directory afresh.
    fn check_beside(self: &Arc<Self>, layer: &LocalLayer) {
        if self.checking_beside.swap(true, Ordering::AcqRel) {
            return;
        }
        let search = Arc::clone(self);
        let root = layer.root.clone();
        let spawned = std::thread::Builder::new()
            .name("overlay-search".into())
            .spawn(move || {
                lower_this_threads_priority();
                let layer = LocalLayer::view(root);
                if let Err(e) = search.check(&layer) {
                    log::warn!("{}: search index: {e}", layer.label);
                }
                search.checking_beside.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            self.checking_beside.store(false, Ordering::Release);
            log::warn!("{}: cannot check the search index: {e}", layer.label);
        }
    }

    /// After this process wrote `name`'s index file: its entry again, at once.
    pub(super) fn update(&self, layer: &LocalLayer, name: &CrateName) -> Result<()> {
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        index.update(layer, name)
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A directory's time as a mark to compare the next query's with: `None` (read again
/// next time) while it is recent, as a filesystem's clock may be coarse enough that a
/// write just after this read leaves the time as it is.
fn settled(modified: Option<SystemTime>) -> Option<SystemTime> {
    let now = SystemTime::now();
    modified.filter(|m| now.duration_since(*m).is_ok_and(|age| age >= SETTLED))
}

/// How old a directory's time must be to be trusted (see [`settled`]); generous, for
/// the clocks of network filesystems.
const SETTLED: Duration = Duration::from_secs(2);

/// Whether a directory read at the settled time `known` must be read again now that
/// its time is `now`: it was never read with a trusted time, or it changed since.
fn stale(known: Option<SystemTime>, now: Option<SystemTime>) -> bool {
    known.is_none() || known != now
}

/// Lets the queries, and every other request, have the CPU before a check: on Linux
/// a thread's nice value is its own (`setpriority` on thread 0 is the caller). Best
/// effort; a check at normal priority is only slower for the others.
fn lower_this_threads_priority() {
    // SAFETY: setpriority reads its plain integer arguments only.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
}

impl SearchIndex {
    /// Whether anything changed since the last check, without reading any of it:
    /// `meta/`'s time and each index directory's.
    fn changed(&self, layer: &LocalLayer) -> bool {
        let meta_modified = settled(modified(&layer.root.join("meta")));
        if self.meta_changed(meta_modified) {
            return true;
        }
        let index = layer.root.join("index");
        self.index.changed(&index, settled(modified(&index)))
    }

    /// Whether `meta/`, whose time is now `meta_modified`, must be listed again.
    fn meta_changed(&self, meta_modified: Option<SystemTime>) -> bool {
        stale(self.meta_modified, meta_modified)
    }

    /// Brings the index up to date with the directory.
    fn check(&mut self, layer: &LocalLayer) -> Result<()> {
        let meta = layer.root.join("meta");
        let meta_modified = settled(modified(&meta));
        let mut replaced = Vec::new();
        if self.meta_changed(meta_modified) {
            let mut inodes = HashMap::with_capacity(self.meta_inodes.len());
            for entry in layer.entries(&meta)? {
                let name = entry.file_name().to_string_lossy().into_owned();
                if self.meta_inodes.get(&name) != Some(&entry.ino()) {
                    replaced.push(name.clone());
                }
                inodes.insert(name, entry.ino());
            }
            replaced.extend(
                self.meta_inodes
                    .keys()
                    .filter(|k| !inodes.contains_key(*k))
                    .cloned(),
            );
            self.meta_inodes = inodes;
        }
        // Directories first, whose re-read entries have fresh descriptions; then the
        // descriptions whose file changed.
        let index = layer.root.join("index");
        self.index
            .refresh(layer, &index, settled(modified(&index)))?;
        if !replaced.is_empty() {
            let replaced: std::collections::HashSet<String> = replaced.into_iter().collect();
            self.index.for_each_entry_mut(&mut |entry| {
                if replaced.contains(&entry.meta_file) {
                    entry.set_description(layer.description_file(&entry.meta_file));
                }
            });
        }
        self.meta_modified = meta_modified;
        Ok(())
    }

    /// After this process wrote `name`'s index file: its directory's entries again.
    fn update(&mut self, layer: &LocalLayer, name: &CrateName) -> Result<()> {
        let index_file = LocalLayer::index_file(name);
        let dir = index_file.parent().expect("index paths have a directory");
        let mut state = &mut self.index;
        for component in dir.iter().skip(1) {
            match state.subdirs.get_mut(&*component.to_string_lossy()) {
                Some(sub) => state = sub,
                // A new directory: the next query finds it through its parent's change.
                None => return Ok(()),
            }
        }
        let fresh = Entry::read(layer, name)?;
        let lower = name.lowercase();
        state
            .entries
            .retain(|e| e.hit.name.to_ascii_lowercase() != lower);
        if let Some(fresh) = fresh {
            state.entries.push(fresh);
            state.entries.sort_by(|a, b| {
                a.hit
                    .name
                    .to_ascii_lowercase()
                    .cmp(&b.hit.name.to_ascii_lowercase())
            });
        }
        Ok(())
    }

    /// The first `limit` crates, in [`search_rank`] order, whose name or description
    /// contains `query` (folded as crates.io compares names), and how many there are.
    /// Only the page is copied: a common word matches thousands of crates.
    fn search(&self, query: &str, limit: usize) -> SearchPage {
        let query = canonical_name(query);
        // Built once for the query, not once a crate: tens of thousands are tried.
        let finder = memchr::memmem::Finder::new(query.as_bytes());
        let found = |text: &str| finder.find(text.as_bytes()).is_some();
        let mut matches: Vec<&Entry> = Vec::new();
        self.index.for_each_entry(&mut |e| {
            if found(&e.canonical) || e.canonical_description.as_deref().is_some_and(found) {
                matches.push(e);
            }
        });
        let total = matches.len();
        let by_rank = |a: &&Entry, b: &&Entry| {
            search_rank(a.canonical.as_str(), &query)
                .cmp(&search_rank(b.canonical.as_str(), &query))
        };
        if matches.len() > limit && limit > 0 {
            matches.select_nth_unstable_by(limit - 1, by_rank);
        }
        matches.truncate(limit);
        matches.sort_by(by_rank);
        SearchPage {
            total,
            hits: matches.into_iter().map(|e| e.hit.clone()).collect(),
        }
    }
}

impl DirState {
    /// Whether this directory, at `path` with the time `now`, or one below it changed
    /// since it was read (see [`refresh`](Self::refresh) for the lookups).
    fn changed(&self, path: &Path, now: Option<SystemTime>) -> bool {
        if stale(self.modified, now) {
            return true;
        }
        if self.subdirs.is_empty() {
            return false;
        }
        let Ok(dir) = File::open(path) else {
            return true;
        };
        self.subdirs.iter().any(|(name, sub)| {
            let now = settled(modified_at(&dir, OsStr::new(name)).ok());
            // A leaf needs no path of its own: its time says it all.
            stale(sub.modified, now)
                || (!sub.subdirs.is_empty() && sub.changed(&path.join(name), now))
        })
    }

    /// Brings this directory, at `path`, whose modification time is now `now`, up to
    /// date, and then its subdirectories. A directory whose time did not change is
    /// not listed again; only its subdirectories' times are looked up, each relative
    /// to it (`modified_at`): one system call a directory, tens of thousands a query
    /// on a large layer.
    fn refresh(&mut self, layer: &LocalLayer, path: &Path, now: Option<SystemTime>) -> Result<()> {
        if stale(self.modified, now) {
            self.read(layer, path, now)?;
        }
        if self.subdirs.is_empty() {
            return Ok(());
        }
        let dir = match File::open(path) {
            Ok(dir) => dir,
            // Gone since it was listed: its parent's next listing drops it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RegistryError::storage(&layer.label, path, e)),
        };
        for (name, sub) in &mut self.subdirs {
            let now = settled(modified_at(&dir, OsStr::new(name)).ok());
            if !stale(sub.modified, now) && sub.subdirs.is_empty() {
                continue;
            }
            sub.refresh(layer, &path.join(name), now)?;
        }
        Ok(())
    }

    /// Lists the directory again (its time `now` was taken first, so a change while
    /// reading shows at the next query), keeping what is known of the subdirectories
    /// still there.
    fn read(&mut self, layer: &LocalLayer, path: &Path, now: Option<SystemTime>) -> Result<()> {
        let mut subdirs = BTreeMap::new();
        let mut entries = Vec::new();
        let mut listing = layer.entries(path)?;
        listing.sort_by_key(|e| e.file_name());
        for item in listing {
            let file_name = item.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') {
                continue;
            }
            match item.file_type() {
                Ok(t) if t.is_dir() => {
                    let known = self.subdirs.remove(&file_name).unwrap_or_default();
                    subdirs.insert(file_name, known);
                }
                Ok(t) if t.is_file() => {
                    if let Some(name) = CrateName::new(&file_name)
                        && let Some(entry) = Entry::read(layer, &name)?
                    {
                        entries.push(entry);
                    }
                }
                _ => {}
            }
        }
        *self = DirState {
            modified: now,
            subdirs,
            entries,
        };
        Ok(())
    }

    fn for_each_entry<'a>(&'a self, visit: &mut impl FnMut(&'a Entry)) {
        self.entries.iter().for_each(&mut *visit);
        for sub in self.subdirs.values() {
            sub.for_each_entry(visit);
        }
    }

    fn for_each_entry_mut(&mut self, visit: &mut impl FnMut(&mut Entry)) {
        self.entries.iter_mut().for_each(&mut *visit);
        for sub in self.subdirs.values_mut() {
            sub.for_each_entry_mut(visit);
        }
    }
}

impl Entry {
    /// The entry of the index file of `name`; `None` when every version is yanked.
    fn read(layer: &LocalLayer, name: &CrateName) -> Result<Option<Entry>> {
        use crate::registry::layer::Layer;
        let lines = layer.index_lines(name)?;
        let Some(best) = lines
            .iter()
            .filter(|l| !l.yanked)
            .max_by(|a, b| a.version.cmp(&b.version))
        else {
            return Ok(None);
        };
        let meta_file = LocalLayer::metadata_file(&best.name, &best.version)
            .file_name()
            .expect("metadata files have a name")
            .to_string_lossy()
            .into_owned();
        let mut entry = Entry {
            hit: SearchHit {
                name: best.name.clone(),
                max_version: best.version.to_string(),
                description: None,
            },
            canonical: name.canonical(),
            canonical_description: None,
            meta_file,
        };
        entry.set_description(layer.description(best));
        Ok(Some(entry))
    }

    fn set_description(&mut self, description: Option<String>) {
        self.canonical_description = description.as_deref().map(canonical_name);
        self.hit.description = description;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::layer::{Layer, WritableLayer, sort_by_search_rank};
    use crate::test_support::Scratch;
    use std::io::Write;

    /// Writes `name`'s index file and metadata directly, atomically (as another
    /// process or cargo would).
    fn put(root: &Path, name: &str, versions: &[(&str, bool)], description: Option<&str>) {
        let lower = name.to_ascii_lowercase();
        let index = root
            .join("index")
            .join(CrateName::new(name).unwrap().index_path());
        fs::create_dir_all(index.parent().unwrap()).unwrap();
        let mut text = String::new();
        for (version, yanked) in versions {
            text.push_str(&format!(
                "{{\"name\":\"{name}\",\"vers\":\"{version}\",\"deps\":[],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":{yanked}}}\n",
                "0".repeat(64)
            ));
            fs::create_dir_all(root.join("meta")).unwrap();
            let meta = root.join(format!("meta/{lower}-{version}.json"));
            let value = match description {
                Some(d) => {
                    serde_json::json!({ "name": name, "vers": version, "description": format!("{d} {version}") })
                }
                None => serde_json::json!({ "name": name, "vers": version }),
            };
            atomic_put(&meta, value.to_string().as_bytes());
        }
        atomic_put(&index, text.as_bytes());
    }

    fn atomic_put(path: &Path, bytes: &[u8]) {
        let tmp = path.with_file_name(".tmp-test");
        fs::File::create(&tmp).unwrap().write_all(bytes).unwrap();
        fs::rename(&tmp, path).unwrap();
    }

    fn sorted(page: SearchPage) -> (usize, Vec<SearchHit>) {
        let mut hits = page.hits;
        hits.sort_by(|a, b| a.name.cmp(&b.name));
        (page.total, hits)
    }

    /// Opens the layer at `root` with its directories checked at every query, as if
    /// each came over a second after the one before.
    fn checked_at_every_query(root: &Path) -> LocalLayer {
        let mut layer = LocalLayer::open(root.to_path_buf()).unwrap();
        layer.search = Arc::new(Search::checking(Duration::ZERO, Duration::ZERO));
        layer
    }

    /// The index answers as the scan does: every hit, and the first page in rank order.
    fn same(layer: &LocalLayer, queries: &[&str]) {
        for q in queries {
            let scanned = layer.scan_search(q).unwrap();
            let mut ranked = scanned.hits.clone();
            sort_by_search_rank(&mut ranked, q);
            ranked.truncate(3);
            let page = layer.search(q, 3).unwrap();
            assert_eq!(
                (page.total, page.hits),
                (scanned.total, ranked),
                "query {q:?}"
            );
            let indexed = sorted(layer.search(q, usize::MAX).unwrap());
            assert_eq!(indexed, sorted(scanned), "query {q:?}");
        }
    }

    const QUERIES: &[&str] = &[
        "",
        "a",
        "serde",
        "Serde-JSON",
        "x_y",
        "word7",
        "3.1",
        "zzz",
        "nothing-here",
        "b",
    ];

    #[test]
    fn indexed_search_answers_as_the_scan_did() {
        let root = Scratch::new("search-index");
        let words = ["serde", "json", "tokio", "x", "y", "abc", "Word", "io", "b"];
        for i in 0..300 {
            let name = format!(
                "{}{}{}",
                words[i % words.len()],
                ["-", "_", ""][i % 3],
                if i % 5 == 0 {
                    String::new()
                } else {
                    format!("{}{i}", words[(i / 7) % words.len()])
                }
            );
            let name = if i % 11 == 0 {
                name[..name.len().min(2 + i % 3)].to_string()
            } else {
                name
            };
            let versions: Vec<(String, bool)> = (0..(1 + i % 4))
                .map(|v| (format!("{}.{v}.{}", i % 3, i % 2), (i + v) % 6 == 0))
                .collect();
            let versions: Vec<(&str, bool)> =
                versions.iter().map(|(v, y)| (v.as_str(), *y)).collect();
            let description =
                (i % 4 != 0).then(|| format!("about word{} and {}", i % 13, words[i % 9]));
            put(&root, &name, &versions, description.as_deref());
        }
        let layer = checked_at_every_query(&root);
        same(&layer, QUERIES);
        // Outside writers: a new crate, a new version with a new description, a crate
        // now all yanked, a description rewritten in place.
        put(&root, "brand-new", &[("1.0.0", false)], Some("fresh zzz"));
        put(
            &root,
            "serde",
            &[("0.0.0", false), ("9.0.0", false)],
            Some("Serde-JSON again"),
        );
        put(&root, "tokio", &[("1.0.0", true)], Some("gone"));
        put(&root, "abc", &[("0.1.0", false)], Some("nothing-here now"));
        same(&layer, QUERIES);
        assert_eq!(layer.search("zzz", 10).unwrap().total, 1);
        // This process's own writes.
        let line = layer
            .index_lines(&CrateName::new("serde").unwrap())
            .unwrap();
        assert_eq!(line.len(), 2);
        layer
            .set_yanked(
                &CrateName::new("serde").unwrap(),
                &"9.0.0".parse().unwrap(),
                true,
            )
            .unwrap();
        same(&layer, QUERIES);
        let hit = sorted(layer.search("serde", 10).unwrap()).1;
        assert!(
            hit.iter()
                .any(|h| h.name == "serde" && h.max_version == "0.0.0")
        );
        // A directory removed by hand.
        fs::remove_dir_all(root.join("index/se")).unwrap();
        same(&layer, QUERIES);
    }

    /// Sets the time of every directory below `dir` (and its own) an hour back.
    fn age_dirs(dir: &Path) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                age_dirs(&entry.path());
            }
        }
        let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::open(dir).unwrap().set_modified(hour_ago).unwrap();
    }

    #[test]
    fn queries_read_only_the_directories_that_changed() {
        let root = Scratch::new("search-unchanged");
        put(&root, "kept", &[("1.0.0", false)], Some("kept"));
        put(&root, "other", &[("1.0.0", false)], Some("other"));
        let layer = checked_at_every_query(&root);
        age_dirs(&root);
        assert_eq!(layer.search("kept", 10).unwrap().total, 1);
        // Rewritten in place, which no writer of a layer does: the directory's time
        // stays, so the index does not look again, where the scan did.
        let kept = root.join("index/ke/pt/kept");
        let text = fs::read_to_string(&kept).unwrap().replace("1.0.0", "2.0.0");
        fs::OpenOptions::new()
            .write(true)
            .open(&kept)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let hits = layer.search("kept", 10).unwrap().hits;
        assert_eq!(hits[0].max_version, "1.0.0");
        assert_eq!(
            layer.scan_search("kept").unwrap().hits[0].max_version,
            "2.0.0"
        );
        // A file renamed into its directory, as every write of a layer does, is seen.
        put(&root, "other", &[("3.0.0", false)], Some("other"));
        let hits = layer.search("other", 10).unwrap().hits;
        assert_eq!(hits[0].max_version, "3.0.0");
        assert_eq!(hits[0].description.as_deref(), Some("other 3.0.0"));
    }

    #[test]
    fn outside_writes_show_once_a_check_beside_the_queries_ran() {
        let root = Scratch::new("search-interval");
        put(&root, "early", &[("1.0.0", false)], Some("x"));
        let mut layer = LocalLayer::open(root.to_path_buf()).unwrap();
        let every = Duration::from_millis(300);
        layer.search = Arc::new(Search::checking(every, Duration::from_secs(3600)));
        assert_eq!(layer.search("early", 10).unwrap().total, 1);
        put(&root, "late", &[("1.0.0", false)], Some("x"));
        // Within the interval, from memory.
        let asked = Instant::now();
        let within = layer.search("late", 10).unwrap().total;
        if asked.elapsed() < every / 2 {
            assert_eq!(within, 0);
        }
        // After it, a query answers at once and starts a check beside it; a later
        // query sees what the check found.
        std::thread::sleep(every);
        let deadline = Instant::now() + Duration::from_secs(10);
        while layer.search("late", 10).unwrap().total == 0 {
            assert!(Instant::now() < deadline, "the check never landed");
            std::thread::sleep(Duration::from_millis(10));
        }
        // This process's own writes show at once, whatever the interval.
        let name = CrateName::new("early").unwrap();
        layer
            .set_yanked(&name, &"1.0.0".parse().unwrap(), true)
            .unwrap();
        assert_eq!(layer.search("early", 10).unwrap().total, 0);
    }
}
