//! Guessing which index files cargo will ask for next, and fetching them early.
//!
//! When cargo resolves a graph it asks for a crate's index file, picks a version, then
//! asks for that version's dependencies, one file at a time per connection. Each answer
//! already names the next questions, so the overlay fetches those files from upstream
//! in parallel, on a small pool, before cargo asks; cargo's requests then find them in
//! the cache. The guess: for the newest version of each of the three most recent
//! semver-compatible lines (cargo almost always picks one of those), the normal and
//! build dependencies, plus the optional ones the default features enable. Never
//! dev-dependencies: cargo does not resolve them for dependencies.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::thread;

use crossbeam_channel::{Sender, TrySendError};
use serde::Deserialize;

use super::index::{CrateName, IndexLine};

/// How many compatibility lines of a crate to follow.
const LINES_FOLLOWED: usize = 3;

/// A bounded pool fetching index files in the background.
pub struct Prefetcher {
    queue: Sender<CrateName>,
}

impl Prefetcher {
    /// Starts `workers` threads that call `fetch` for each queued name. At most
    /// `queue_len` names wait; more are dropped (cargo will ask for them itself).
    pub fn start<F>(workers: usize, queue_len: usize, fetch: F) -> Prefetcher
    where
        F: Fn(&CrateName) + Send + Sync + Clone + 'static,
    {
        let (queue, receiver) = crossbeam_channel::bounded::<CrateName>(queue_len);
        for _ in 0..workers {
            let receiver = receiver.clone();
            let fetch = fetch.clone();
            let spawned = thread::Builder::new()
                .name("overlay-prefetch".into())
                .spawn(move || {
                    for name in receiver {
                        fetch(&name);
                    }
                });
            if let Err(e) = spawned {
                log::warn!("starting a prefetch worker failed: {e}");
            }
        }
        Prefetcher { queue }
    }

    /// Queues names, dropping what does not fit.
    pub fn request(&self, names: impl IntoIterator<Item = CrateName>) {
        for name in names {
            match self.queue.try_send(name) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    log::debug!("prefetch queue full; dropping the rest");
                    return;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

/// The fields of an index line the guess reads.
#[derive(Deserialize)]
struct Release {
    #[serde(default)]
    deps: Vec<Dep>,
    #[serde(default)]
    features: HashMap<String, Vec<String>>,
    #[serde(default)]
    features2: Option<HashMap<String, Vec<String>>>,
}

#[derive(Deserialize)]
struct Dep {
    name: String,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    kind: Option<String>,
}

/// The crates cargo is likely to ask about after reading `lines`, lowercase.
pub fn likely_dependencies(lines: &[IndexLine]) -> BTreeSet<String> {
    let mut newest_per_line: HashMap<(u64, u64, u64), &IndexLine> = HashMap::new();
    for line in lines.iter().filter(|l| !l.yanked) {
        let newest = newest_per_line
            .entry(compatibility(&line.version))
            .or_insert(line);
        if line.version > newest.version {
            *newest = line;
        }
    }
    let mut chosen: Vec<&IndexLine> = newest_per_line.into_values().collect();
    chosen.sort_by(|a, b| b.version.cmp(&a.version));
    chosen.truncate(LINES_FOLLOWED);

    let mut names = BTreeSet::new();
    for line in chosen {
        let Ok(release) = serde_json::from_str::<Release>(&line.raw) else {
            continue;
        };
        let enabled = default_optional_deps(&release);
        for dep in &release.deps {
            if dep.kind.as_deref() == Some("dev") || (dep.optional && !enabled.contains(&dep.name))
            {
                continue;
            }
            let real = dep.package.as_deref().unwrap_or(&dep.name);
            names.insert(real.to_ascii_lowercase());
        }
    }
    names
}

/// Versions cargo treats as compatible share this key: the major version, or for 0.x
/// the minor, or for 0.0.x the patch.
fn compatibility(version: &semver::Version) -> (u64, u64, u64) {
    match (version.major, version.minor) {
        (0, 0) => (0, 0, version.patch),
        (0, minor) => (0, minor, 0),
        (major, _) => (major, 0, 0),
    }
}

/// The optional dependencies (by the name used in the manifest) that the `default`
/// feature turns on, following features that enable other features.
fn default_optional_deps(release: &Release) -> HashSet<String> {
    let features = |name: &str| {
        release
            .features
            .get(name)
            .or_else(|| release.features2.as_ref()?.get(name))
    };
    let mut enabled = HashSet::new();
    let mut seen = HashSet::new();
    let mut pending = vec!["default".to_string()];
    while let Some(feature) = pending.pop() {
        if !seen.insert(feature.clone()) {
            continue;
        }
        let Some(values) = features(&feature) else {
            // A feature name that is no feature is an optional dependency's implicit one.
            enabled.insert(feature);
            continue;
        };
        for value in values {
            if let Some(dep) = value.strip_prefix("dep:") {
                enabled.insert(dep.to_string());
            } else if let Some((dep, _)) = value.split_once('/') {
                // `dep?/feature` only applies if something else enables `dep`.
                if !dep.ends_with('?') {
                    enabled.insert(dep.to_string());
                }
            } else {
                pending.push(value.clone());
            }
        }
    }
    enabled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::index::parse_index_file;

    #[test]
    fn follows_recent_lines_and_skips_dev_and_disabled_optional_deps() {
        let text = [
            r#"{"name":"a","vers":"0.9.0","deps":[{"name":"ancient","req":"1","kind":"normal"}]}"#,
            r#"{"name":"a","vers":"1.0.0","deps":[{"name":"old","req":"1","kind":"normal"}]}"#,
            r#"{"name":"a","vers":"1.2.0","deps":[{"name":"serde","req":"1","kind":"normal"},{"name":"tester","req":"1","kind":"dev"},{"name":"Build-Helper","req":"1","kind":"build"}]}"#,
            r#"{"name":"a","vers":"2.0.0","deps":[{"name":"alias","package":"real","req":"1"},{"name":"opt","req":"1","optional":true},{"name":"on","req":"1","optional":true},{"name":"weak","req":"1","optional":true}],"features":{"default":["std"],"std":["on/std","weak?/std"]}}"#,
            r#"{"name":"a","vers":"3.0.0","yanked":true,"deps":[{"name":"yanked-dep","req":"1"}]}"#,
            r#"{"name":"a","vers":"0.8.0","deps":[{"name":"older-line","req":"1"}]}"#,
        ]
        .join("\n");
        let names = likely_dependencies(&parse_index_file(&text));
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(names, ["ancient", "build-helper", "on", "real", "serde"]);
    }

    #[test]
    fn default_features_enable_optional_deps_through_other_features() {
        let release: Release = serde_json::from_str(
            r#"{"deps":[],"features":{"default":["a"],"a":["b","dep:x"],"b":["y"]},"features2":{"c":["dep:z"]}}"#,
        )
        .unwrap();
        let enabled = default_optional_deps(&release);
        assert!(enabled.contains("x") && enabled.contains("y"));
        assert!(!enabled.contains("z"));
    }
}
