//! Local layers: registries kept in a directory on this machine. This folder owns the
//! writable directory layer (here) and cargo's own packaging directory as a read-only
//! layer ([`package`]), which reuses it; both read cargo's local-registry layout.
//!
//! A layer stored in a directory, in cargo's local-registry layout.
//!
//! `{root}/{name}-{version}.crate` holds each crate and `{root}/index/{path}` its index
//! lines (`path` as in the sparse index: `se/rd/serde`). This is the format cargo reads
//! as a `local-registry` source and writes as `target/package/tmp-registry`, so a layer
//! directory works without the server, and cargo's own directories work as layers.
//! The overlay adds two things cargo ignores: `{root}/meta/` with each publish's
//! metadata (for search), and `.{name}.lock` files in the index, one per crate name as
//! crates.io compares names (lowercase, `-` read as `_`), in that spelling's index
//! directory.
//!
//! Writes are atomic and durable: each file is written to a temporary name, synced and
//! renamed into place, and the directory is synced. Publishes and yanks of one crate
//! hold an exclusive `flock` on its lock file, which serializes threads and processes
//! that share the directory alike; since `race-crate` and `Race_Crate` share the lock,
//! a publish checks under it that no other spelling of its name exists, and the check
//! and the write are one step.
//!
//! Files are read and written only inside the layer's directory: a symlink below the
//! root (a `.crate`, an index file, an index directory) is never followed (see
//! [`atomic`](crate::registry::atomic)), so a layer directory someone else can write into cannot
//! make the overlay serve, or write, a file elsewhere.
//!
//! A temporary file is named `.tmp-{host}.{pid}-{n}-{name}` after its writer's host and
//! process id. A crash leaves it behind; opening the layer removes those whose writer
//! is gone (or that are over an hour old, in case the pid was reused), never one that a
//! live process sharing the directory may still be writing. A pid is only checked when
//! the host is this one's ([`host_id`]): on a network filesystem the file may be
//! another machine's write in progress, which only the age rule removes. A name
//! without a host (`.tmp-{pid}-{n}-{name}`, written before hosts were named) is
//! judged by its pid, as it always was. That sweep, a walk of every index directory,
//! runs on a thread of its own (`overlay-sweep`), so start-up does not grow with the
//! layer; nothing waits for it, and what a process that ends first leaves is for the
//! next open.

pub(crate) mod package;
mod search;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, SystemTime};

use crate::registry::atomic::{
    Access, TEMP_PREFIX, host_id, open_beneath, open_lock_beneath, temp_writer, write_beneath,
};
use crate::registry::error::{RegistryError, Result};
use crate::registry::index::{
    CrateName, IndexLine, canonical_name, parse_index_file, same_release,
};
use crate::registry::layer::{CrateFile, Layer, SearchPage, WritableLayer, WriteOutcome};
use crate::registry::publish::Publish;
use crate::registry::rendered::SourceStamp;

pub(crate) struct LocalLayer {
    root: PathBuf,
    label: String,
    /// Who may read what the layer writes.
    access: Access,
    /// What search needs, built on the first search (see [`search`]).
    search: Arc<search::Search>,
}

impl LocalLayer {
    /// A layer in `root`, which is created if it does not exist. Temporary files that
    /// crashed writers left are removed in the background (see the module docs).
    pub(crate) fn open(root: PathBuf) -> Result<LocalLayer> {
        let layer = LocalLayer::open_with(root, Access::Umask)?;
        layer.start_sweep();
        Ok(layer)
    }

    /// Like [`open`](Self::open), for a layer of this run alone (`-r local`, in the run
    /// directory): what it creates is the owner's only, whatever the umask. The
    /// directory is new, so no crash left anything in it to remove.
    pub(crate) fn open_private(root: PathBuf) -> Result<LocalLayer> {
        LocalLayer::open_with(root, Access::OwnerOnly)
    }

    fn open_with(root: PathBuf, access: Access) -> Result<LocalLayer> {
        first_write_time();
        let layer = LocalLayer {
            access,
            ..LocalLayer::view(root)
        };
        access
            .create_dir_all(&layer.root.join("index"))
            .map_err(|e| layer.storage_error(&layer.root, e))?;
        Ok(layer)
    }

    /// Runs [`sweep`](Self::sweep) on a thread of its own, which nothing waits for;
    /// here, if no thread can be started.
    fn start_sweep(&self) {
        let (root, label) = (self.root.clone(), self.label.clone());
        let sweep = move || LocalLayer::sweep(&root, &label);
        let spawned = thread::Builder::new()
            .name("overlay-sweep".into())
            .spawn(sweep.clone());
        if let Err(e) = spawned {
            log::warn!(
                "{}: cannot start a thread to remove stale temporary files ({e}); removing them now",
                self.label
            );
            sweep();
        }
    }

    /// A layer in `root` as it is, which may not exist (yet): it then has no crates.
    /// For directories another program owns, such as cargo's tmp-registry.
    pub(crate) fn view(root: PathBuf) -> LocalLayer {
        let label = format!("local:{}", root.display());
        LocalLayer {
            root,
            label,
            access: Access::Umask,
            search: Arc::default(),
        }
    }

    /// The index file of `name`, relative to the root.
    fn index_file(name: &CrateName) -> PathBuf {
        Path::new("index").join(name.index_path())
    }

    /// The `.crate` file of an index line, relative to the root.
    fn crate_file_name(line: &IndexLine) -> PathBuf {
        PathBuf::from(format!("{}-{}.crate", line.name, line.version))
    }

    /// Where the `.crate` of an index line is stored.
    pub(crate) fn crate_file(&self, line: &IndexLine) -> PathBuf {
        self.root.join(Self::crate_file_name(line))
    }

    /// The metadata file of a publish, relative to the root.
    fn metadata_file(name: &str, version: &semver::Version) -> PathBuf {
        Path::new("meta").join(format!("{}-{version}.json", name.to_ascii_lowercase()))
    }

    /// An I/O error on `relative`, below the root.
    fn storage_error(&self, relative: &Path, e: io::Error) -> RegistryError {
        RegistryError::storage(&self.label, self.root.join(relative), e)
    }

    /// The whole of a file below the root, `None` when there is none.
    fn read_file(&self, relative: &Path) -> Result<Option<Vec<u8>>> {
        let mut bytes = Vec::new();
        match open_beneath(&self.root, relative).and_then(|(mut f, _)| f.read_to_end(&mut bytes)) {
            Ok(_) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.storage_error(relative, e)),
        }
    }

    /// The index file's text, empty when there is none.
    fn read_index_text(&self, name: &CrateName) -> Result<String> {
        let relative = Self::index_file(name);
        let bytes = self.read_file(&relative)?.unwrap_or_default();
        String::from_utf8(bytes).map_err(|_| {
            let e = io::Error::new(io::ErrorKind::InvalidData, "not UTF-8");
            self.storage_error(&relative, e)
        })
    }

    /// Takes the exclusive lock of every spelling of `name` (see the module docs); it
    /// is released when the file is dropped.
    fn lock(&self, name: &CrateName) -> Result<File> {
        let canonical = CrateName::new(&name.canonical())
            .expect("a crate name with `-` read as `_` is a crate name");
        let index_file = Self::index_file(&canonical);
        let dir = index_file.parent().expect("index paths have a directory");
        let relative = dir.join(format!(".{}.lock", canonical.as_str()));
        let file = open_lock_beneath(&self.root, &relative, self.access)
            .map_err(|e| self.storage_error(&relative, e))?;
        file.lock().map_err(|e| self.storage_error(&relative, e))?;
        Ok(file)
    }

    /// Writes a file below the root atomically and durably (see `atomic`).
    fn write(&self, relative: &Path, bytes: &[u8]) -> Result<()> {
        first_write_time();
        write_beneath(&self.root, relative, bytes, self.access)
            .map_err(|e| self.storage_error(relative, e))
    }

    /// The metadata's description, for search results.
    fn description(&self, line: &IndexLine) -> Option<String> {
        let bytes = self
            .read_file(&Self::metadata_file(&line.name, &line.version))
            .ok()??;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        value["description"].as_str().map(str::to_string)
    }

    /// The description in `meta/{file_name}`.
    fn description_file(&self, file_name: &str) -> Option<String> {
        let bytes = self.read_file(&Path::new("meta").join(file_name)).ok()??;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        value["description"].as_str().map(str::to_string)
    }

    /// Refuses a publish of `name` when this layer has the crate under another spelling
    /// (case, `-`/`_`). Run under the crate's lock, so that two spellings published at
    /// once cannot both pass.
    fn check_spelling(&self, name: &CrateName) -> Result<()> {
        for candidate in self.names_like(name)? {
            for line in self.index_lines(&candidate)? {
                if canonical_name(&line.name) == name.canonical() && line.name != name.as_str() {
                    return Err(RegistryError::invalid(format!(
                        "crate was previously named `{}`",
                        line.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Removes the temporary files of writers that are gone (see
    /// [`remove_stale_temp_files`](Self::remove_stale_temp_files)) and logs how many.
    fn sweep(root: &Path, label: &str) {
        let removed = LocalLayer::remove_stale_temp_files(root, label);
        if removed > 0 {
            log::info!("{label}: removed {removed} temporary files left by an interrupted write");
        } else {
            log::debug!("{label}: no temporary files left by an interrupted write");
        }
    }

    /// Removes the temporary files of writers that are gone, in `root`, `meta/` and
    /// every index directory. Returns how many were removed. Best effort: a file that
    /// cannot be removed stays, and is tried again at the next open.
    fn remove_stale_temp_files(root: &Path, label: &str) -> usize {
        let now = SystemTime::now();
        let mut removed = 0;
        let mut dirs = vec![root.to_path_buf(), root.join("meta")];
        let mut index_dirs = vec![root.join("index")];
        while let Some(dir) = index_dirs.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    index_dirs.push(entry.path());
                }
            }
            dirs.push(dir);
        }
        for dir in dirs {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with(TEMP_PREFIX) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let modified = entry.metadata().and_then(|m| m.modified()).ok();
                if !is_stale_temp(&name, modified, now) {
                    continue;
                }
                match fs::remove_file(entry.path()) {
                    Ok(()) => {
                        log::debug!("{label}: removed {}", entry.path().display());
                        removed += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => log::warn!(
                        "{label}: cannot remove the stale temporary file {}: {e}",
                        entry.path().display()
                    ),
                }
            }
        }
        removed
    }

    /// The entries of `dir`; none when it does not exist.
    fn entries(&self, dir: &Path) -> Result<Vec<fs::DirEntry>> {
        match fs::read_dir(dir) {
            Ok(entries) => entries
                .collect::<io::Result<_>>()
                .map_err(|e| RegistryError::storage(&self.label, dir, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(RegistryError::storage(&self.label, dir, e)),
        }
    }

    /// Search as it was before the index: a walk over every index file. The index's
    /// tests compare with it.
    #[cfg(test)]
    fn scan_search(&self, query: &str) -> Result<SearchPage> {
        let query = canonical_name(query);
        let mut hits = Vec::new();
        for lower_name in self.all_names()? {
            let Some(name) = CrateName::new(&lower_name) else {
                continue;
            };
            let lines = self.index_lines(&name)?;
            let Some(best) = lines
                .iter()
                .filter(|l| !l.yanked)
                .max_by(|a, b| a.version.cmp(&b.version))
            else {
                continue;
            };
            let description = self.description(best);
            let matches = name.canonical().contains(&query)
                || description
                    .as_deref()
                    .is_some_and(|d| canonical_name(d).contains(&query));
            if matches {
                hits.push(crate::registry::layer::SearchHit {
                    name: best.name.clone(),
                    max_version: best.version.to_string(),
                    description,
                });
            }
        }
        Ok(SearchPage {
            total: hits.len(),
            hits,
        })
    }

    /// After a write of `name`'s index file, under its lock: its search entry again.
    fn update_search(&self, name: &CrateName) {
        if let Err(e) = self.search.update(self, name) {
            log::warn!("{}: search index: {e}", self.label);
        }
    }

    /// The lowercase names of every crate in the index.
    #[cfg(test)]
    fn all_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut dirs = vec![self.root.join("index")];
        while let Some(dir) = dirs.pop() {
            for entry in self.entries(&dir)? {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if file_name.starts_with('.') {
                    continue;
                }
                match entry.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(entry.path()),
                    Ok(t) if t.is_file() => names.push(file_name),
                    _ => {}
                }
            }
        }
        Ok(names)
    }
}

/// `text` with each `-` or `_` in it spelled both ways: 2^n strings for n of them.
fn separator_spellings(text: &str) -> Vec<String> {
    let mut spellings = vec![String::new()];
    for c in text.chars() {
        let choices: &[char] = match c {
            '-' | '_' => &['-', '_'],
            _ => &[c],
        };
        spellings = spellings
            .iter()
            .flat_map(|s| choices.iter().map(move |c| format!("{s}{c}")))
            .collect();
    }
    spellings
}

impl Layer for LocalLayer {
    fn label(&self) -> &str {
        &self.label
    }

    fn index_lines(&self, name: &CrateName) -> Result<Vec<IndexLine>> {
        Ok(parse_index_file(&self.read_index_text(name)?))
    }

    /// The index file's identity. It is opened rather than only looked up: on a
    /// network filesystem an open fetches fresh attributes (close-to-open
    /// consistency), where a lookup may answer from its attribute cache. An error
    /// other than a missing file vouches for nothing: the read that follows reports it.
    fn index_stamp(&self, name: &CrateName) -> Option<SourceStamp> {
        match open_beneath(&self.root, &Self::index_file(name)) {
            Ok((_, metadata)) => SourceStamp::of_file(&metadata),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Some(SourceStamp::Absent),
            Err(_) => None,
        }
    }

    fn names_like(&self, name: &CrateName) -> Result<Vec<CrateName>> {
        // An index file's directory depends on the name's first four characters
        // only: the spellings of their `-` and `_` name every directory to list.
        let lower = name.lowercase();
        let head = &lower[..lower.len().min(4)];
        let mut dirs = BTreeSet::new();
        for spelled_head in separator_spellings(head) {
            if let Some(spelled) =
                CrateName::new(&format!("{spelled_head}{}", &lower[head.len()..]))
                && let Some(dir) = Self::index_file(&spelled).parent()
            {
                dirs.insert(self.root.join(dir));
            }
        }
        let canonical = name.canonical();
        let mut names = Vec::new();
        for dir in dirs {
            for entry in self.entries(&dir)? {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if canonical_name(&file_name) == canonical
                    && let Some(found) = CrateName::new(&file_name)
                {
                    names.push(found);
                }
            }
        }
        Ok(names)
    }

    fn open_crate(&self, name: &CrateName, version: &semver::Version) -> Result<Option<CrateFile>> {
        let lines = self.index_lines(name)?;
        let Some(line) = lines.iter().find(|l| {
            same_release(&l.version, version) && l.name.eq_ignore_ascii_case(name.as_str())
        }) else {
            return Ok(None);
        };
        // The name comes from this layer's own index file: check it before it becomes
        // part of a path, as directories may come from elsewhere.
        if CrateName::new(&line.name).is_none() {
            return Ok(None);
        }
        let relative = Self::crate_file_name(line);
        let (file, metadata) = match open_beneath(&self.root, &relative) {
            Ok(opened) => opened,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::warn!(
                    "{}: index lists {}@{} but {} is missing",
                    self.label,
                    line.name,
                    line.version,
                    self.root.join(&relative).display()
                );
                return Ok(None);
            }
            Err(e) => return Err(self.storage_error(&relative, e)),
        };
        Ok(Some(CrateFile {
            reader: Box::new(file),
            len: Some(metadata.len()),
        }))
    }

    fn search(&self, query: &str, limit: usize) -> Result<SearchPage> {
        self.search.query(self, query, limit)
    }

    fn writable(&self) -> Option<&dyn WritableLayer> {
        Some(self)
    }
}

impl WritableLayer for LocalLayer {
    fn publish(&self, publish: &Publish) -> Result<WriteOutcome> {
        let _lock = self.lock(&publish.name)?;
        self.check_spelling(&publish.name)?;
        let mut text = self.read_index_text(&publish.name)?;
        let existing = parse_index_file(&text);
        if existing
            .iter()
            .any(|l| same_release(&l.version, &publish.version))
        {
            return Err(RegistryError::invalid(format!(
                "crate version `{}` is already uploaded",
                publish.version
            )));
        }
        let line = serde_json::to_string(&publish.entry).expect("index entries serialize");
        let line = IndexLine::parse(&line).expect("a built index entry parses");
        // The crate and its metadata first: an index line must never point at a
        // `.crate` that is not there.
        self.write(&Self::crate_file_name(&line), &publish.crate_bytes)?;
        self.write(
            &Self::metadata_file(&line.name, &line.version),
            &publish.metadata,
        )?;
        // Existing lines are kept byte for byte, even those the overlay cannot read.
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line.raw);
        text.push('\n');
        self.write(&Self::index_file(&publish.name), text.as_bytes())?;
        self.update_search(&publish.name);
        Ok(WriteOutcome::Stored)
    }

    fn set_yanked(
        &self,
        name: &CrateName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<WriteOutcome> {
        let _lock = self.lock(name)?;
        let text = self.read_index_text(name)?;
        let mut found = false;
        let mut rewritten = String::with_capacity(text.len() + 16);
        for raw in text.lines() {
            match IndexLine::parse(raw) {
                // `with_yanked` needs a JSON object, but a JSON array parses as an
                // index line too: such a line is kept as it is (see the `index_line`
                // fuzz target).
                Some(line)
                    if same_release(&line.version, version)
                        && raw.trim_start().starts_with('{') =>
                {
                    found = true;
                    rewritten.push_str(&line.with_yanked(yanked).raw);
                }
                _ => rewritten.push_str(raw),
            }
            rewritten.push('\n');
        }
        if !found {
            return Err(RegistryError::NotFound(format!(
                "crate `{name}` does not have a version `{version}` in layer {}",
                self.label
            )));
        }
        self.write(&Self::index_file(name), rewritten.as_bytes())?;
        self.update_search(name);
        Ok(WriteOutcome::Stored)
    }
}

/// A temporary file this old is stale whoever wrote it: no write takes that long, and
/// its writer's pid may have been reused since.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// When this process first opened a layer or wrote a file: a temporary file with this
/// process's pid from before then was left by an earlier process with the same pid (a
/// restarted container, say).
fn first_write_time() -> SystemTime {
    static FIRST: OnceLock<SystemTime> = OnceLock::new();
    *FIRST.get_or_init(SystemTime::now)
}

/// Whether a process with this pid exists (as far as this process can tell: one owned
/// by another user counts as alive).
fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether a temporary file can be removed: it is old, or its writer ran on this host
/// (or wrote before hosts were named) and is gone.
fn is_stale_temp(file_name: &str, modified: Option<SystemTime>, now: SystemTime) -> bool {
    is_stale_temp_on(host_id(), file_name, modified, now)
}

/// [`is_stale_temp`] as seen from the host `this_host`.
fn is_stale_temp_on(
    this_host: &str,
    file_name: &str,
    modified: Option<SystemTime>,
    now: SystemTime,
) -> bool {
    let age = modified.and_then(|m| now.duration_since(m).ok());
    if age.is_some_and(|age| age > STALE_TEMP_AGE) {
        return true;
    }
    let Some(writer) = temp_writer(file_name) else {
        // Not a name this code writes: only age removes it.
        return false;
    };
    if writer.host.is_some_and(|host| host != this_host) {
        // Another machine's pid means nothing here: only age removes it.
        return false;
    }
    if writer.pid.unsigned_abs() == std::process::id() {
        // Ours if written after this process started writing; a coarse file clock
        // gets a second of slack.
        modified.is_some_and(|m| m + Duration::from_secs(1) < first_write_time())
    } else {
        !process_alive(writer.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Scratch;
    use std::process::Command;
    use std::time::Instant;

    /// The pid of a process that has exited.
    fn dead_pid() -> u32 {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn touch(path: &Path, age: Duration) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = File::create(path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn opening_removes_only_the_temp_files_of_writers_that_are_gone() {
        let root = Scratch::new("temp-cleanup");
        let dead = dead_pid();
        let me = std::process::id();
        let fresh = Duration::ZERO;
        let stale = [
            root.join(format!(".tmp-{dead}-0-a-0.1.0.crate")),
            root.join(format!("meta/.tmp-{dead}-1-a-0.1.0.json")),
            root.join(format!("index/1/.tmp-{dead}-2-a")),
            root.join(format!("index/ab/cd/.tmp-{dead}-3-abcd")),
            root.join(format!("index/ab/cd/.tmp-{}.{dead}-11-abcd", host_id())),
        ];
        for path in &stale {
            touch(path, fresh);
        }
        // Pid 1 is alive, but nothing writes for an hour.
        let old = root.join("index/ab/cd/.tmp-1-4-abcd");
        touch(&old, Duration::from_secs(2 * 3600));
        // An earlier process with this process's pid.
        let reused = root.join(format!(".tmp-{me}-5-b-0.1.0.crate"));
        touch(&reused, Duration::from_secs(30 * 60));
        let kept = [
            // Live writers: another process, and this one.
            root.join(".tmp-1-6-c-0.1.0.crate"),
            root.join(format!("index/ab/cd/.tmp-{me}-7-abcd")),
            // Not our names, and not old.
            root.join(".tmp-x-8-d"),
            root.join(".tmp-0-9-d"),
            root.join(".tmp--1-10-d"),
            // Another host's writer, whose pid means nothing here.
            root.join(format!(".tmp-0another0host.{dead}-12-e-0.1.0.crate")),
            // Not temporary files at all.
            root.join("a-0.1.0.crate"),
            root.join("index/ab/cd/abcd"),
            root.join("index/ab/cd/.abcd.lock"),
        ];
        first_write_time();
        for path in &kept {
            touch(path, fresh);
        }
        let layer = LocalLayer::open(root.to_path_buf()).unwrap();
        // The sweep runs in the background.
        let deadline = Instant::now() + Duration::from_secs(10);
        for path in stale.iter().chain([&old, &reused]) {
            while path.exists() {
                assert!(Instant::now() < deadline, "{} was kept", path.display());
                thread::sleep(Duration::from_millis(5));
            }
        }
        // A second sweep, by the same rules and waited for, finds nothing more to remove
        // and leaves what must stay.
        assert_eq!(
            LocalLayer::remove_stale_temp_files(&layer.root, &layer.label),
            0
        );
        for path in &kept {
            assert!(path.exists(), "{} was removed", path.display());
        }
    }

    #[test]
    fn processes_alive_and_gone() {
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(dead_pid() as i32));
    }

    #[test]
    fn only_this_hosts_pids_are_checked() {
        let (here, there) = ("aaaaaaaaaaaa", "bbbbbbbbbbbb");
        let dead = dead_pid();
        let now = SystemTime::now();
        let fresh = Some(now);
        let old = Some(now - Duration::from_secs(2 * 3600));
        let stale = |name: &str, modified| is_stale_temp_on(here, name, modified, now);
        // This host: the pid decides.
        assert!(stale(&format!(".tmp-{here}.{dead}-0-x"), fresh));
        assert!(!stale(&format!(".tmp-{here}.1-0-x"), fresh));
        // Another host: a pid that is gone here may be writing there; only age counts.
        assert!(!stale(&format!(".tmp-{there}.{dead}-0-x"), fresh));
        assert!(!stale(&format!(".tmp-{there}.{dead}-0-x"), None));
        assert!(stale(&format!(".tmp-{there}.{dead}-0-x"), old));
        // No host: the pid decides, as before.
        assert!(stale(&format!(".tmp-{dead}-0-x"), fresh));
        assert!(!stale(".tmp-1-0-x", fresh));
        // Not a temporary name of ours: only age.
        assert!(!stale(".tmp-x_y.5-0-x", fresh));
        assert!(stale(".tmp-x_y.5-0-x", old));
    }

    #[test]
    fn a_write_leaves_no_temp_file() {
        let root = Scratch::new("write");
        let path = root.join("index/ab/cd/abcd");
        let layer = LocalLayer::open(root.to_path_buf()).unwrap();
        layer
            .write(Path::new("index/ab/cd/abcd"), b"one\n")
            .unwrap();
        layer
            .write(Path::new("index/ab/cd/abcd"), b"two\n")
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abcd"]);
    }

    /// A line that is a JSON array parses as an index line, and yanking it panicked in
    /// `with_yanked` (the `index_line` fuzz target reproduces it).
    #[test]
    fn yanking_next_to_an_array_line_does_not_panic() {
        let root = Scratch::new("array-line");
        let layer = LocalLayer::open(root.to_path_buf()).unwrap();
        let name = CrateName::new("abcd").unwrap();
        let text = "[\"abcd\",\"0.1.0\"]\n{\"name\":\"abcd\",\"vers\":\"0.2.0\",\"deps\":[],\"cksum\":\"00\",\"features\":{},\"yanked\":false}\n";
        layer
            .write(&LocalLayer::index_file(&name), text.as_bytes())
            .unwrap();
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert!(layer.set_yanked(&name, &v("0.1.0"), true).is_err());
        layer.set_yanked(&name, &v("0.2.0"), true).unwrap();
        let after = layer.read_index_text(&name).unwrap();
        assert!(after.starts_with("[\"abcd\",\"0.1.0\"]\n"), "{after}");
        assert!(after.contains("\"yanked\":true"), "{after}");
    }
}
