//! The sparse-index data model: crate names, index paths and index lines.
//!
//! Everything that turns untrusted input (a URL path, a publish request) into a file
//! name goes through [`CrateName`] and [`semver::Version`] first, so a layer is never
//! asked for a path built from unvalidated text. Index lines are kept as raw JSON text
//! next to the few fields the overlay needs (name, version, yanked): cargo ignores
//! fields it does not know, and so must we, so lines pass through unchanged.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest crate name crates.io accepts.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// A crate name that is safe to use in a file or URL path.
///
/// It holds only ASCII letters, digits, `-` and `_`, starts with a letter and is at
/// most [`MAX_NAME_LEN`] long. crates.io's finer rules (and their exact error texts)
/// live in `validate`; this type is the safety net every route relies on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CrateName(String);

impl CrateName {
    /// Accepts `name` if it is a syntactically valid crate name.
    pub(crate) fn new(name: &str) -> Option<CrateName> {
        let mut chars = name.chars();
        let first = chars.next()?;
        let ok = first.is_ascii_alphabetic()
            && name.len() <= MAX_NAME_LEN
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        ok.then(|| CrateName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name cargo uses for index paths and lookups: ASCII lowercase.
    pub(crate) fn lowercase(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The name crates.io uses to decide that two names collide: lowercase, with `-`
    /// and `_` treated as the same character.
    pub(crate) fn canonical(&self) -> String {
        canonical_name(&self.0)
    }

    /// The index file's path relative to the index root, e.g. `se/rd/serde`.
    pub(crate) fn index_path(&self) -> String {
        index_path(&self.lowercase())
    }
}

impl fmt::Display for CrateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name folded the way crates.io compares names: lowercase, `-` read as `_`.
pub(crate) fn canonical_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// cargo's index path for an (already lowercased) name: `1/a`, `2/ab`, `3/a/abc`,
/// `ab/cd/abcd...`. Callers pass validated ASCII names, so byte slicing is safe.
fn index_path(lower: &str) -> String {
    match lower.len() {
        1 => format!("1/{lower}"),
        2 => format!("2/{lower}"),
        3 => format!("3/{}/{lower}", &lower[..1]),
        _ => format!("{}/{}/{lower}", &lower[..2], &lower[2..4]),
    }
}

/// Two versions are the same release when they differ only in build metadata, which is
/// how crates.io decides that a version "is already uploaded".
pub(crate) fn same_release(a: &semver::Version, b: &semver::Version) -> bool {
    a.major == b.major && a.minor == b.minor && a.patch == b.patch && a.pre == b.pre
}

/// One line of an index file: the raw text, plus the fields the overlay acts on.
#[derive(Clone, Debug)]
pub struct IndexLine {
    pub raw: String,
    pub name: String,
    pub version: semver::Version,
    pub yanked: bool,
}

/// The fields of an index line the overlay reads. `yanked` may be `null` (cargo's own
/// tmp-registry writes that), which means not yanked.
#[derive(Deserialize)]
struct LineFields {
    name: String,
    vers: String,
    #[serde(default)]
    yanked: Option<bool>,
}

impl IndexLine {
    /// Parses one line. `None` for a line cargo would also skip (bad JSON, bad version).
    pub fn parse(raw: &str) -> Option<IndexLine> {
        // serde reads a struct from a JSON array too; an index line is an object.
        if !raw.trim_start().starts_with('{') {
            return None;
        }
        let fields: LineFields = serde_json::from_str(raw).ok()?;
        let version = semver::Version::parse(&fields.vers).ok()?;
        Some(IndexLine {
            raw: raw.to_string(),
            name: fields.name,
            version,
            yanked: fields.yanked.unwrap_or(false),
        })
    }

    /// A string field of the line, such as `cksum`.
    pub(crate) fn field(&self, key: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(&self.raw).ok()?;
        value[key].as_str().map(str::to_string)
    }

    /// The same line with its `yanked` flag set, every other field kept.
    pub fn with_yanked(&self, yanked: bool) -> IndexLine {
        let mut value: serde_json::Value =
            serde_json::from_str(&self.raw).expect("a parsed index line is valid JSON");
        value["yanked"] = serde_json::Value::Bool(yanked);
        IndexLine {
            raw: value.to_string(),
            yanked,
            ..self.clone()
        }
    }
}

/// Parses the lines of an index file, skipping blank lines and lines cargo would skip.
/// Accepts a missing final newline (cargo's tmp-registry writes none).
pub fn parse_index_file(text: &str) -> Vec<IndexLine> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let parsed = IndexLine::parse(line);
            if parsed.is_none() {
                log::warn!("skipping an unreadable index line: {line}");
            }
            parsed
        })
        .collect()
}

/// Renders lines as an index file: one line each, each ending in `\n`.
pub(crate) fn render_index_file<'a>(lines: impl IntoIterator<Item = &'a IndexLine>) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.raw);
        out.push('\n');
    }
    out
}

/// An index line as the overlay writes it, in the shape and field order crates.io uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub(crate) name: String,
    pub(crate) vers: String,
    pub(crate) deps: Vec<IndexDep>,
    pub(crate) cksum: String,
    pub(crate) features: BTreeMap<String, Vec<String>>,
    pub(crate) yanked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) links: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rust_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pubtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) features2: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) v: Option<u32>,
}

/// A dependency in an index line. `name` is the name used in the dependent's code (the
/// rename), `package` the real crate name when they differ.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct IndexDep {
    pub(crate) name: String,
    pub(crate) req: String,
    pub(crate) features: Vec<String>,
    pub(crate) optional: bool,
    pub(crate) default_features: bool,
    pub(crate) target: Option<String>,
    pub(crate) kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) registry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) package: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_follow_cargo() {
        let path = |n: &str| CrateName::new(n).unwrap().index_path();
        assert_eq!(path("a"), "1/a");
        assert_eq!(path("Ab"), "2/ab");
        assert_eq!(path("abc"), "3/a/abc");
        assert_eq!(path("Serde_JSON"), "se/rd/serde_json");
        assert_eq!(path("abcd"), "ab/cd/abcd");
    }

    #[test]
    fn crate_names_reject_path_tricks() {
        for bad in [
            "", "..", "a/b", "a\\b", "/etc", "a\0", "9lives", "-a", "é", "a.b", "a b",
        ] {
            assert!(CrateName::new(bad).is_none(), "{bad:?} accepted");
        }
        assert!(CrateName::new(&"a".repeat(65)).is_none());
        assert!(CrateName::new(&"a".repeat(64)).is_some());
        assert!(CrateName::new("My_crate-2").is_some());
    }

    #[test]
    fn canonical_names_fold_case_and_dashes() {
        let a = CrateName::new("Foo-Bar").unwrap();
        let b = CrateName::new("foo_bar").unwrap();
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn same_release_ignores_build_metadata() {
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert!(same_release(&v("1.0.0+a"), &v("1.0.0")));
        assert!(!same_release(&v("1.0.0-rc.1"), &v("1.0.0")));
    }

    #[test]
    fn reads_cargo_tmp_registry_lines() {
        let text = r#"{"name":"x","vers":"0.3.1","deps":[],"features":{},"features2":null,"cksum":"ab","yanked":null,"links":null,"rust_version":null,"pubtime":null,"v":2}"#;
        let lines = parse_index_file(text);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].name, "x");
        assert!(!lines[0].yanked);
        assert_eq!(render_index_file(&lines), format!("{text}\n"));
    }

    #[test]
    fn skips_unreadable_lines_and_keeps_the_rest() {
        let text = "not json\n{\"name\":\"x\",\"vers\":\"bad\"}\n{\"name\":\"x\",\"vers\":\"1.0.0\",\"yanked\":true}\n";
        let lines = parse_index_file(text);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].yanked);
    }

    #[test]
    fn only_json_objects_are_index_lines() {
        assert!(IndexLine::parse(r#"["a","1.0.0"]"#).is_none());
        assert!(IndexLine::parse(r#"{"name":"a","vers":"1.0.0"}"#).is_some());
    }

    #[test]
    fn yanking_keeps_other_fields() {
        let line =
            IndexLine::parse(r#"{"name":"x","vers":"1.0.0","cksum":"ab","yanked":false}"#).unwrap();
        let yanked = line.with_yanked(true);
        let value: serde_json::Value = serde_json::from_str(&yanked.raw).unwrap();
        assert_eq!(value["yanked"], true);
        assert_eq!(value["cksum"], "ab");
    }
}
