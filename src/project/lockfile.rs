//! Reading `Cargo.lock`: which registry packages, at which versions, with which
//! checksums. `fetch` fills a directory from it, and in exec mode the remote layers
//! fetch ahead what cargo is about to download.

use std::collections::BTreeMap;

/// One registry package of a lockfile.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LockedPackage {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) checksum: Option<String>,
    /// The registry, as cargo writes it: `registry+URL` or `sparse+URL`.
    pub(crate) source: String,
}

/// crates.io's two spellings in lockfiles: the git index and the sparse one.
const CRATES_IO_SOURCES: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

impl LockedPackage {
    pub(crate) fn is_from_crates_io(&self) -> bool {
        CRATES_IO_SOURCES.contains(&self.source.as_str())
    }

    /// The registry's index URL, without `registry+` or `sparse+`.
    pub(crate) fn index_url(&self) -> &str {
        self.source
            .strip_prefix("sparse+")
            .or_else(|| self.source.strip_prefix("registry+"))
            .unwrap_or(&self.source)
    }
}

/// The registry packages of a `Cargo.lock` (path and git packages are skipped: they
/// have no registry to come from). Reads the `[[package]]` tables line by line, which
/// is all the lockfile format, as cargo writes it, needs.
pub(crate) fn parse_lockfile(text: &str) -> Vec<LockedPackage> {
    let mut packages = Vec::new();
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    let mut flush = |fields: &mut BTreeMap<&str, String>| {
        let source = fields
            .get("source")
            .filter(|s| s.starts_with("registry+") || s.starts_with("sparse+"));
        if let (Some(source), Some(name), Some(version)) =
            (source, fields.get("name"), fields.get("version"))
        {
            packages.push(LockedPackage {
                name: name.clone(),
                version: version.clone(),
                checksum: fields.get("checksum").cloned(),
                source: source.clone(),
            });
        }
        fields.clear();
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(&mut fields);
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            if matches!(key, "name" | "version" | "source" | "checksum") {
                fields.insert(key, value.trim().trim_matches('"').to_string());
            }
        }
    }
    flush(&mut fields);
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_registry_packages_from_a_lockfile() {
        let lockfile = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["serde"]

[[package]]
name = "serde"
version = "1.0.200"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "abc"

[[package]]
name = "private"
version = "2.0.0"
source = "sparse+https://registry.example/index/"

[[package]]
name = "from-git"
version = "0.3.0"
source = "git+https://example.com/repo#deadbeef"
"#;
        assert_eq!(
            parse_lockfile(lockfile),
            [
                LockedPackage {
                    name: "serde".into(),
                    version: "1.0.200".into(),
                    checksum: Some("abc".into()),
                    source: "registry+https://github.com/rust-lang/crates.io-index".into(),
                },
                LockedPackage {
                    name: "private".into(),
                    version: "2.0.0".into(),
                    checksum: None,
                    source: "sparse+https://registry.example/index/".into(),
                },
            ]
        );
        let packages = parse_lockfile(lockfile);
        assert!(packages[0].is_from_crates_io());
        assert!(!packages[1].is_from_crates_io());
        assert_eq!(packages[1].index_url(), "https://registry.example/index/");
    }
}
