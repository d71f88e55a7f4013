//! A layer stored in a directory, in cargo's local-registry layout.
//!
//! `{root}/{name}-{version}.crate` holds each crate and `{root}/index/{path}` its index
//! lines (`path` as in the sparse index: `se/rd/serde`). This is the format cargo reads
//! as a `local-registry` source and writes as `target/package/tmp-registry`, so a layer
//! directory works without the server, and cargo's own directories work as layers.
//! The overlay adds two things cargo ignores: `{root}/meta/` with each publish's
//! metadata (for search), and `.{name}.lock` files beside index files.
//!
//! Writes are atomic and durable: each file is written to a temporary name, synced and
//! renamed into place, and the directory is synced. Publishes and yanks of one crate
//! hold an exclusive `flock` on its lock file, which serializes threads and processes
//! that share the directory alike.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{RegistryError, Result};
use super::index::{CrateName, IndexLine, canonical_name, parse_index_file, same_release};
use super::layer::{CrateFile, Layer, SearchHit, SearchPage, WritableLayer, WriteOutcome};
use super::publish::Publish;

pub struct LocalLayer {
    root: PathBuf,
    label: String,
}

impl LocalLayer {
    /// A layer in `root`, which is created if it does not exist.
    pub fn open(root: PathBuf) -> Result<LocalLayer> {
        let layer = LocalLayer::view(root);
        fs::create_dir_all(layer.root.join("index"))
            .map_err(|e| layer.storage_error(&layer.root, e))?;
        Ok(layer)
    }

    /// A layer in `root` as it is, which may not exist (yet): it then has no crates.
    /// For directories another program owns, such as cargo's tmp-registry.
    pub fn view(root: PathBuf) -> LocalLayer {
        let label = format!("local:{}", root.display());
        LocalLayer { root, label }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_file(&self, name: &CrateName) -> PathBuf {
        self.root.join("index").join(name.index_path())
    }

    /// Where the `.crate` of an index line is stored.
    pub fn crate_file(&self, line: &IndexLine) -> PathBuf {
        self.root
            .join(format!("{}-{}.crate", line.name, line.version))
    }

    fn metadata_file(&self, name: &str, version: &semver::Version) -> PathBuf {
        self.root
            .join("meta")
            .join(format!("{}-{version}.json", name.to_ascii_lowercase()))
    }

    fn storage_error(&self, path: &Path, e: io::Error) -> RegistryError {
        RegistryError::storage(&self.label, path, e)
    }

    /// The index file's text, empty when there is none.
    fn read_index_text(&self, name: &CrateName) -> Result<String> {
        let path = self.index_file(name);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(self.storage_error(&path, e)),
        }
    }

    /// Takes the crate's exclusive lock; it is released when the file is dropped.
    fn lock(&self, name: &CrateName) -> Result<File> {
        let index_file = self.index_file(name);
        let dir = index_file.parent().expect("index paths have a directory");
        fs::create_dir_all(dir).map_err(|e| self.storage_error(dir, e))?;
        let path = dir.join(format!(".{}.lock", name.lowercase()));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.storage_error(&path, e))?;
        file.lock().map_err(|e| self.storage_error(&path, e))?;
        Ok(file)
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        write_atomic(path, bytes).map_err(|e| self.storage_error(path, e))
    }

    /// The metadata's description, for search results.
    fn description(&self, line: &IndexLine) -> Option<String> {
        let bytes = fs::read(self.metadata_file(&line.name, &line.version)).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        value["description"].as_str().map(str::to_string)
    }

    /// The lowercase names of every crate in the index.
    fn all_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut dirs = vec![self.root.join("index")];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.storage_error(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.storage_error(&dir, e))?;
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

impl Layer for LocalLayer {
    fn label(&self) -> &str {
        &self.label
    }

    fn index_lines(&self, name: &CrateName) -> Result<Vec<IndexLine>> {
        Ok(parse_index_file(&self.read_index_text(name)?))
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
        let path = self.crate_file(line);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::warn!(
                    "{}: index lists {}@{} but {} is missing",
                    self.label,
                    line.name,
                    line.version,
                    path.display()
                );
                return Ok(None);
            }
            Err(e) => return Err(self.storage_error(&path, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| self.storage_error(&path, e))?
            .len();
        Ok(Some(CrateFile {
            reader: Box::new(file),
            len,
        }))
    }

    fn search(&self, query: &str, _limit: usize) -> Result<SearchPage> {
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
                hits.push(SearchHit {
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

    fn writable(&self) -> Option<&dyn WritableLayer> {
        Some(self)
    }
}

impl WritableLayer for LocalLayer {
    fn publish(&self, publish: &Publish, _auth: Option<&str>) -> Result<WriteOutcome> {
        let _lock = self.lock(&publish.name)?;
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
        self.write(&self.crate_file(&line), &publish.crate_bytes)?;
        let metadata_file = self.metadata_file(&line.name, &line.version);
        let meta_dir = metadata_file
            .parent()
            .expect("metadata files have a directory");
        fs::create_dir_all(meta_dir).map_err(|e| self.storage_error(meta_dir, e))?;
        self.write(&metadata_file, &publish.metadata)?;
        // Existing lines are kept byte for byte, even those the overlay cannot read.
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line.raw);
        text.push('\n');
        self.write(&self.index_file(&publish.name), text.as_bytes())?;
        Ok(WriteOutcome::Stored)
    }

    fn set_yanked(
        &self,
        name: &CrateName,
        version: &semver::Version,
        yanked: bool,
        _auth: Option<&str>,
    ) -> Result<WriteOutcome> {
        let _lock = self.lock(name)?;
        let text = self.read_index_text(name)?;
        let mut found = false;
        let mut rewritten = String::with_capacity(text.len() + 16);
        for raw in text.lines() {
            match IndexLine::parse(raw) {
                Some(line) if same_release(&line.version, version) => {
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
        self.write(&self.index_file(name), rewritten.as_bytes())?;
        Ok(WriteOutcome::Stored)
    }
}

/// Makes temporary names unique among the threads of this process; the process id
/// makes them unique among processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a
/// part, and the new one survives a crash once this returns.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().expect("layer files have a directory");
    fs::create_dir_all(dir)?;
    let file_name = path.file_name().expect("layer files have a name");
    let temp = dir.join(format!(
        ".tmp-{}-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
        file_name.to_string_lossy()
    ));
    let result = (|| {
        let mut file = File::create_new(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
