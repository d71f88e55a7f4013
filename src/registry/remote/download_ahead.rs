//! Fetching the `.crate` files cargo is about to download, in parallel, before it asks.
//!
//! Through the overlay cargo downloads over at most two HTTP/1.1 connections per host,
//! so a cold build of a few hundred crates pays one upstream round trip per crate in
//! series, where cargo talking HTTP/2 to crates.io overlaps them all. In exec mode the
//! overlay knows the project, so it knows exactly what cargo will download: the
//! lockfile's registry packages that cargo's own download cache does not hold. At
//! cargo's first download those are queued on a pool that stores them, verified, in
//! the layer's disk cache; cargo's requests are then answered from there, or wait for
//! the fetch already under way instead of starting a second one.
//!
//! The lockfile is read at the first download, not before: cargo writes it when it
//! has resolved, which is before it downloads. Looking into cargo's cache
//! (`$CARGO_HOME/registry/cache/*/NAME-VERSION.crate`, a layout cargo has kept since
//! its first release) keeps a build that needs two new crates from fetching two
//! hundred.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::project::lockfile::{LockedPackage, parse_lockfile};

/// Where cargo keeps what it will build: its lockfile, and its own download cache.
#[derive(Clone, Debug)]
pub(crate) struct Project {
    pub(crate) lockfile: PathBuf,
    pub(crate) cargo_home: PathBuf,
}

#[derive(Default)]
struct State {
    /// Set by [`DownloadAhead::expect`], taken by the first download.
    project: Option<Project>,
    /// `name-version` (lowercase) of the downloads under way.
    in_flight: HashSet<String>,
    /// Those cargo's own requests fetched (streamed, not kept): jobs ahead skip them.
    streamed: HashSet<String>,
}

#[derive(Default)]
pub(crate) struct DownloadAhead {
    state: Mutex<State>,
    finished: Condvar,
}

impl DownloadAhead {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the project cargo is working on, for its first download.
    pub(crate) fn expect(&self, project: Project) {
        self.state().project = Some(project);
    }

    /// At cargo's first download, once: the lockfile's packages from `index_url`'s
    /// registry (or from crates.io, which every remote layer may stand in for in proxy
    /// mode) that cargo's cache does not have. Later calls, and calls without a
    /// project, return nothing.
    pub(crate) fn take_plan(&self, index_url: &str) -> Vec<LockedPackage> {
        let Some(project) = self.state().project.take() else {
            return Vec::new();
        };
        let text = match fs::read_to_string(&project.lockfile) {
            Ok(text) => text,
            Err(e) => {
                log::debug!(
                    "no downloads to fetch ahead: {}: {e}",
                    project.lockfile.display()
                );
                return Vec::new();
            }
        };
        let cached = cargo_cache_dirs(&project.cargo_home);
        let ours = |p: &LockedPackage| {
            p.is_from_crates_io()
                || p.index_url().trim_end_matches('/') == index_url.trim_end_matches('/')
        };
        let plan: Vec<LockedPackage> = parse_lockfile(&text)
            .into_iter()
            .filter(ours)
            .filter(|p| {
                let file = format!("{}-{}.crate", p.name, p.version);
                !cached.iter().any(|dir| dir.join(&file).is_file())
            })
            .collect();
        log::debug!(
            "fetching {} downloads ahead of cargo, from {}",
            plan.len(),
            project.lockfile.display()
        );
        plan
    }

    /// Marks `key` as being downloaded. False if someone already is.
    pub(crate) fn claim(&self, key: &str) -> bool {
        self.state().in_flight.insert(key.to_string())
    }

    /// Like [`claim`](Self::claim), for a job ahead: false also when cargo has
    /// fetched `key` itself already.
    pub(crate) fn claim_ahead(&self, key: &str) -> bool {
        let mut state = self.state();
        !state.streamed.contains(key) && state.in_flight.insert(key.to_string())
    }

    /// Records that cargo's own request fetched `key` without keeping it.
    pub(crate) fn streamed(&self, key: &str) {
        self.state().streamed.insert(key.to_string());
    }

    /// Ends a claim, and wakes whoever waits for it.
    pub(crate) fn release(&self, key: &str) {
        self.state().in_flight.remove(key);
        self.finished.notify_all();
    }

    /// Waits, at most `wait`, while someone downloads `key`.
    pub(crate) fn wait_for(&self, key: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut state = self.state();
        while state.in_flight.contains(key) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self
                .finished
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// cargo's download cache directories, one per registry.
fn cargo_cache_dirs(cargo_home: &Path) -> Vec<PathBuf> {
    fs::read_dir(cargo_home.join("registry").join("cache"))
        .map(|entries| {
            entries
                .filter_map(|entry| Some(entry.ok()?.path()))
                .filter(|path| path.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    const LOCKFILE: &str = r#"
[[package]]
name = "have"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "need"
version = "2.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "private"
version = "1.0.0"
source = "sparse+https://registry.example/index/"
"#;

    #[test]
    fn the_plan_skips_what_cargo_has_and_is_taken_once() {
        let dir = crate::test_support::Scratch::new("download-ahead");
        let cache = dir.join("home/registry/cache/index.crates.io-1949cf8c6b5b557f");
        fs::create_dir_all(&cache).unwrap();
        fs::write(cache.join("have-1.0.0.crate"), b"x").unwrap();
        fs::write(dir.join("Cargo.lock"), LOCKFILE).unwrap();

        let ahead = DownloadAhead::default();
        let crates_io = "https://index.crates.io/";
        assert!(ahead.take_plan(crates_io).is_empty(), "no project, no plan");
        let project = Project {
            lockfile: dir.join("Cargo.lock"),
            cargo_home: dir.join("home"),
        };
        ahead.expect(project.clone());
        let names = |plan: Vec<LockedPackage>| -> Vec<String> {
            plan.into_iter().map(|p| p.name).collect()
        };
        let plan = names(ahead.take_plan(crates_io));
        assert_eq!(plan, ["need"], "crates.io's, not the private registry's");
        assert!(
            ahead.take_plan(crates_io).is_empty(),
            "only the first download plans"
        );

        // The private registry's layer plans its own package, and crates.io's.
        ahead.expect(project);
        let plan = names(ahead.take_plan("https://registry.example/index"));
        assert_eq!(plan, ["need", "private"]);
    }

    #[test]
    fn a_second_downloader_waits_for_the_first() {
        let ahead = Arc::new(DownloadAhead::default());
        assert!(ahead.claim("need-2.0.0"));
        assert!(!ahead.claim("need-2.0.0"));
        let releaser = {
            let ahead = Arc::clone(&ahead);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                ahead.release("need-2.0.0");
            })
        };
        let started = Instant::now();
        ahead.wait_for("need-2.0.0", Duration::from_secs(5));
        assert!(started.elapsed() < Duration::from_secs(4));
        releaser.join().unwrap();
        assert!(ahead.claim("need-2.0.0"), "free again after the release");
        ahead.streamed("need-2.0.0");
        ahead.release("need-2.0.0");
        assert!(!ahead.claim_ahead("need-2.0.0"), "cargo fetched it itself");
    }
}
