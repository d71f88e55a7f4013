//! cargo's own `target/package/tmp-registry` as a layer.
//!
//! `cargo publish --workspace` packages every crate into this directory before it
//! verifies them. A build script that runs cargo during verification resolves
//! dependencies from the real registry, where unpublished workspace crates are missing;
//! with this layer in the stack the overlay serves them from cargo's own directory.
//!
//! The directory outlives the run that wrote it, and stale entries are a trap: cargo
//! checks `name@version` against the index before it packages, so an entry left by an
//! earlier run makes the next `cargo publish --workspace` fail with "already exists".
//! This layer therefore serves only what cargo wrote while the overlay runs: when the
//! layer opens it notes each `.crate` file's modification time, and an entry counts only
//! once its `.crate` is new or rewritten since. Comparing with a snapshot rather than
//! with the clock keeps it right however close together two runs are. The layer is
//! read-only; cargo owns the directory.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::registry::error::Result;
use crate::registry::index::{CrateName, IndexLine, same_release};
use crate::registry::layer::{CrateFile, Layer, SearchPage};
use crate::registry::local::LocalLayer;
use crate::registry::rendered::SourceStamp;

pub(crate) struct CargoPackageLayer {
    files: LocalLayer,
    label: String,
    /// The `.crate` files there when the layer opened, with their modification times.
    stale: HashMap<OsString, SystemTime>,
}

impl CargoPackageLayer {
    /// The tmp-registry at `root`, which need not exist yet.
    pub(crate) fn new(root: PathBuf) -> CargoPackageLayer {
        let label = format!("cargo-package:{}", root.display());
        let stale = crate_files(&root);
        if !stale.is_empty() {
            log::info!(
                "{label}: ignoring {} crate files left by an earlier run until cargo rewrites them",
                stale.len()
            );
        }
        CargoPackageLayer {
            files: LocalLayer::view(root),
            label,
            stale,
        }
    }

    /// Whether a path names cargo's tmp-registry (`.../package/tmp-registry`), so that
    /// `-r local=target/package/tmp-registry` gets this layer's treatment too.
    pub(crate) fn is_tmp_registry(path: &std::path::Path) -> bool {
        let mut components = path.components().rev().map(|c| c.as_os_str());
        components.next() == Some("tmp-registry".as_ref())
            && components.next() == Some("package".as_ref())
    }

    fn is_fresh(&self, line: &IndexLine) -> bool {
        let path = self.files.crate_file(line);
        let Ok(modified) = fs::metadata(&path).and_then(|m| m.modified()) else {
            return false;
        };
        let at_start = path.file_name().and_then(|name| self.stale.get(name));
        at_start != Some(&modified)
    }
}

/// The `.crate` files directly in `root` and their modification times.
fn crate_files(root: &Path) -> HashMap<OsString, SystemTime> {
    let Ok(entries) = fs::read_dir(root) else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "crate"))
        .filter_map(|entry| Some((entry.file_name(), entry.metadata().ok()?.modified().ok()?)))
        .collect()
}

impl Layer for CargoPackageLayer {
    fn label(&self) -> &str {
        &self.label
    }

    fn index_lines(&self, name: &CrateName) -> Result<Vec<IndexLine>> {
        let mut lines = self.files.index_lines(name)?;
        lines.retain(|line| self.is_fresh(line));
        Ok(lines)
    }

    /// Never vouched for: an answer depends on the `.crate` files' times as much as on
    /// the index file (cargo packages a version again without changing its line), so
    /// it is read afresh every time. The directory is small and matters only while
    /// cargo publishes.
    fn index_stamp(&self, _name: &CrateName) -> Option<SourceStamp> {
        None
    }

    fn open_crate(&self, name: &CrateName, version: &semver::Version) -> Result<Option<CrateFile>> {
        let fresh = self
            .index_lines(name)?
            .iter()
            .any(|line| same_release(&line.version, version));
        if fresh {
            self.files.open_crate(name, version)
        } else {
            Ok(None)
        }
    }

    /// cargo's packaging scratch space is not something to search.
    fn search(&self, _query: &str, _limit: usize) -> Result<SearchPage> {
        Ok(SearchPage::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn recognises_cargo_tmp_registry_paths() {
        assert!(CargoPackageLayer::is_tmp_registry(Path::new(
            "target/package/tmp-registry"
        )));
        assert!(CargoPackageLayer::is_tmp_registry(Path::new(
            "/w/bd/package/tmp-registry/"
        )));
        assert!(!CargoPackageLayer::is_tmp_registry(Path::new(
            "tmp-registry"
        )));
        assert!(!CargoPackageLayer::is_tmp_registry(Path::new(
            "/srv/registry"
        )));
    }

    #[test]
    fn serves_only_entries_written_after_it_opened() {
        let root = crate::test_support::Scratch::new("package-test");
        fs::create_dir_all(root.join("index/3/o")).unwrap();
        let line = |v: &str| {
            format!("{{\"name\":\"old\",\"vers\":\"{v}\",\"deps\":[],\"cksum\":\"00\"}}\n")
        };
        fs::write(root.join("index/3/o/old"), line("1.0.0") + &line("2.0.0")).unwrap();
        fs::write(root.join("old-1.0.0.crate"), b"stale").unwrap();
        fs::write(root.join("old-2.0.0.crate"), b"stale").unwrap();
        let layer = CargoPackageLayer::new(root.to_path_buf());
        // cargo rewrites 2.0.0 during the run; 1.0.0 is left from before.
        let rewritten = fs::File::create(root.join("old-2.0.0.crate")).unwrap();
        std::io::Write::write_all(&mut &rewritten, b"fresh").unwrap();
        rewritten
            .set_modified(SystemTime::now() + std::time::Duration::from_secs(1))
            .unwrap();

        let name = CrateName::new("old").unwrap();
        let versions: Vec<String> = layer
            .index_lines(&name)
            .unwrap()
            .iter()
            .map(|l| l.version.to_string())
            .collect();
        assert_eq!(versions, ["2.0.0"]);
        let v1 = semver::Version::new(1, 0, 0);
        assert!(layer.open_crate(&name, &v1).unwrap().is_none());
        let v2 = semver::Version::new(2, 0, 0);
        assert_eq!(layer.open_crate(&name, &v2).unwrap().unwrap().len, Some(5));
    }

    #[test]
    fn a_missing_directory_has_no_crates() {
        let layer = CargoPackageLayer::new("/nonexistent/package/tmp-registry".into());
        assert!(
            layer
                .index_lines(&CrateName::new("any").unwrap())
                .unwrap()
                .is_empty()
        );
    }
}
