//! Guessing which index files cargo will ask for next, and fetching them early.
//!
//! When cargo resolves a graph it asks for a crate's index file, picks a version, then
//! asks for that version's dependencies, one file at a time per connection. Each answer
//! already names the next questions, so the overlay fetches those files from upstream
//! in parallel, on a small pool, before cargo asks; cargo's requests then find them in
//! the cache.
//!
//! The guess ([`Plan`]) follows what cargo would pick: for each version requirement
//! dependents state, the newest release that meets it, and like cargo's feature
//! resolver, the features: a dependency's optional dependencies count only
//! when a feature some dependent asks for turns them on. Dependents are seen before
//! their dependencies, and when a later dependent asks a crate for more features, the
//! crate is looked at again. A crate no dependent has asked anything of is one of the
//! project's own dependencies, whose requirement and features only its manifest
//! knows: the newest release of each of its three most recent semver-compatible lines
//! is followed, with all of its features. Dev-dependencies never count: cargo does not
//! resolve them for
//! dependencies. Following features rather than only `default` is what catches
//! `tokio`'s `mio` or `serde`'s `serde_derive`, which dependents turn on.
//!
//! When the overlay knows the project (exec mode reads its members with `cargo
//! metadata --no-deps` once the command runs), [`Plan::expect_members`] starts from
//! the members' own dependencies, with the features they ask for. With `--cache DIR`
//! none of this starts before the layer first needs its upstream ([`Dormancy`]).
//!
//! The answer cargo waits for never waits for the guess: an index file served queues a
//! [`PrefetchJob::Learn`], and a prefetch thread works out what it says.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::Deserialize;

use crate::registry::index::{CrateName, IndexLine};

/// How many compatibility lines of a crate to follow when no requirement is known.
const LINES_FOLLOWED: usize = 3;

/// Threads working through a bounded queue in the background. What does not fit in
/// the queue is dropped: everything queued here is only ahead of a request cargo
/// makes anyway. The threads end when the pool is dropped.
///
/// Threads start as work arrives, one whenever an item is queued and none is idle, up
/// to the most asked for. Starting them all at once put 48 thread starts before every
/// exec-mode command, and as many teardowns after it; a warm resolve, whose
/// prefetches read from disk, needs one or two.
pub(crate) struct WorkPool<T> {
    queue: Sender<T>,
    receiver: Receiver<T>,
    work: Arc<dyn Fn(T) + Send + Sync>,
    name: String,
    max_workers: usize,
    started: AtomicUsize,
    /// Threads waiting for an item.
    idle: Arc<AtomicUsize>,
}

impl<T: Send + 'static> WorkPool<T> {
    /// A pool of at most `workers` threads named `name` that call `work` for each
    /// queued item; none runs until there is work.
    pub(crate) fn start<F>(name: &str, workers: usize, queue_len: usize, work: F) -> WorkPool<T>
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        let (queue, receiver) = crossbeam_channel::bounded::<T>(queue_len);
        WorkPool {
            queue,
            receiver,
            work: Arc::new(work),
            name: name.to_string(),
            max_workers: workers,
            started: AtomicUsize::new(0),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Queues items, dropping what does not fit, and starts threads for them.
    pub(crate) fn request(&self, items: impl IntoIterator<Item = T>) {
        for item in items {
            match self.queue.try_send(item) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    log::debug!("work queue full; dropping the rest");
                    break;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        // Racy by design: a thread too many or too few only shifts work in time.
        while self.queue.len() > self.idle.load(Ordering::SeqCst)
            && self.started.load(Ordering::SeqCst) < self.max_workers
        {
            if !self.start_worker() {
                return;
            }
        }
    }

    fn start_worker(&self) -> bool {
        let receiver = self.receiver.clone();
        let work = Arc::clone(&self.work);
        let idle = Arc::clone(&self.idle);
        self.started.fetch_add(1, Ordering::SeqCst);
        // Counted idle from the start, so the loop above sees it as room for an item.
        idle.fetch_add(1, Ordering::SeqCst);
        let spawned = thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || {
                while let Ok(item) = receiver.recv() {
                    idle.fetch_sub(1, Ordering::SeqCst);
                    work(item);
                    idle.fetch_add(1, Ordering::SeqCst);
                }
            });
        if let Err(e) = spawned {
            self.started.fetch_sub(1, Ordering::SeqCst);
            self.idle.fetch_sub(1, Ordering::SeqCst);
            log::warn!("starting a {} thread failed: {e}", self.name);
            return false;
        }
        true
    }
}

/// When a layer's prefetching starts. A layer whose disk cache outlives the process
/// (`--cache DIR`) starts dormant: while every answer comes fresh from that cache,
/// guessing ahead of cargo only competes with it for the two cores of a CI runner,
/// and reading the project with `cargo metadata` most of all: about 43 ms of CPU
/// beside a warm resolve of about 0.4 s. The layer wakes when it first asks its
/// upstream for anything, and prefetches as any other layer from then on.
pub(crate) struct Dormancy {
    awake: AtomicBool,
    /// Run when the layer wakes, unless another layer ran it first.
    on_wake: Mutex<Option<Arc<WakeHook>>>,
}

impl Dormancy {
    pub(crate) fn new(awake: bool) -> Dormancy {
        Dormancy {
            awake: AtomicBool::new(awake),
            on_wake: Mutex::new(None),
        }
    }

    pub(crate) fn is_awake(&self) -> bool {
        self.awake.load(Ordering::SeqCst)
    }

    /// Wakes the layer; the first time, runs the hook given so far.
    pub(crate) fn wake(&self) {
        if self.awake.swap(true, Ordering::SeqCst) {
            return;
        }
        log::debug!("prefetching starts: the layer asks its upstream");
        let hook = self.hook().take();
        if let Some(hook) = hook {
            hook.run();
        }
    }

    /// Runs `hook` when the layer wakes, or now if it is awake.
    pub(crate) fn on_wake(&self, hook: Arc<WakeHook>) {
        let mut slot = self.hook();
        // Checked under the lock `wake` takes after setting the flag, so the hook
        // runs whichever of the two comes first.
        if self.is_awake() {
            drop(slot);
            hook.run();
        } else {
            *slot = Some(hook);
        }
    }

    fn hook(&self) -> std::sync::MutexGuard<'_, Option<Arc<WakeHook>>> {
        self.on_wake.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Work shared by the layers of a stack that runs once, when the first of them wakes.
pub(crate) struct WakeHook(Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl WakeHook {
    pub(crate) fn new(work: impl FnOnce() + Send + 'static) -> Arc<WakeHook> {
        Arc::new(WakeHook(Mutex::new(Some(Box::new(work)))))
    }

    fn run(&self) {
        let work = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(work) = work {
            work();
        }
    }
}

/// A bounded pool fetching index files in the background, and the plan saying which.
pub(crate) struct Prefetcher {
    pool: WorkPool<PrefetchJob>,
    plan: Mutex<Plan>,
}

/// Work for the prefetch threads.
pub(crate) enum PrefetchJob {
    /// Read what an index file just served says cargo will ask next, and queue those
    /// files. Done here, not before the answer: cargo sends its requests one after the
    /// other on one connection, so every microsecond an answer waits is cargo's.
    Learn(CrateName, Arc<Vec<IndexLine>>),
    /// Bring one index file into the cache.
    Fetch(CrateName),
}

impl Prefetcher {
    /// A pool of at most `workers` threads that call `work` for each queued job. At most
    /// `queue_len` jobs wait; more are dropped (cargo will ask for the files itself).
    /// The plan remembers at most `max_crates` crates.
    pub(crate) fn start<F>(
        workers: usize,
        queue_len: usize,
        max_crates: usize,
        work: F,
    ) -> Prefetcher
    where
        F: Fn(PrefetchJob) + Send + Sync + 'static,
    {
        Prefetcher {
            pool: WorkPool::start("overlay-prefetch", workers, queue_len, work),
            plan: Mutex::new(Plan::new(max_crates)),
        }
    }

    /// Records `name`'s index file and returns, lowercase, the crates cargo is likely
    /// to ask about because of what it says.
    pub fn learn(&self, name: &str, lines: Arc<Vec<IndexLine>>) -> BTreeSet<String> {
        self.plan().learn(name, lines)
    }

    /// Queues [`learn`](Self::learn)ing `name`'s index file on a prefetch thread.
    pub(crate) fn learn_later(&self, name: &CrateName, lines: Arc<Vec<IndexLine>>) {
        self.pool.request([PrefetchJob::Learn(name.clone(), lines)]);
    }

    /// Records the project's members and returns, lowercase, the crates cargo will ask
    /// about first.
    pub fn expect_members(&self, members: &[Release]) -> BTreeSet<String> {
        self.plan().expect_members(members)
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues fetching `names`, dropping what does not fit.
    pub(crate) fn request(&self, names: impl IntoIterator<Item = CrateName>) {
        self.pool.request(names.into_iter().map(PrefetchJob::Fetch));
    }
}

/// What the guess knows of the crates seen so far, keyed by lowercase name.
pub struct Plan {
    crates: HashMap<String, Known>,
    max_crates: usize,
}

#[derive(Default)]
struct Known {
    /// The union of what dependents asked for; `None` while no dependent has.
    asked: Option<Asked>,
    /// The index file, once seen: the index cache's copy, held weakly so that what
    /// the cache evicts is freed (the plan then forgets the crate's releases).
    lines: Option<Weak<Vec<IndexLine>>>,
    /// Looked at with every feature on (no dependent had asked when the file came):
    /// whatever dependents ask later adds nothing.
    saw_everything: bool,
}

/// The version requirements and features dependents ask of a crate.
#[derive(Clone, Default, Debug, PartialEq)]
struct Asked {
    requirements: BTreeSet<String>,
    default: bool,
    features: BTreeSet<String>,
}

impl Asked {
    /// Adds `other`; says whether anything was new.
    fn merge(&mut self, other: Asked) -> bool {
        let size = |a: &Asked| (a.requirements.len(), a.default, a.features.len());
        let before = size(self);
        self.requirements.extend(other.requirements);
        self.default |= other.default;
        self.features.extend(other.features);
        before != size(self)
    }
}

impl Plan {
    pub fn new(max_crates: usize) -> Plan {
        Plan {
            crates: HashMap::new(),
            max_crates,
        }
    }

    /// Records `name`'s index file; returns the crates its followed releases, and
    /// those of crates it asks for more features, depend on.
    pub fn learn(&mut self, name: &str, lines: Arc<Vec<IndexLine>>) -> BTreeSet<String> {
        self.make_room();
        let name = name.to_ascii_lowercase();
        let known = self.crates.entry(name.clone()).or_default();
        known.lines = Some(Arc::downgrade(&lines));
        known.saw_everything = known.asked.is_none();
        let asks = self.asks_of(&name);
        self.spread(asks)
    }

    /// Records the project's members: cargo resolves their dependencies of every kind
    /// with every feature on. Returns the crates they depend on.
    pub fn expect_members(&mut self, members: &[Release]) -> BTreeSet<String> {
        self.make_room();
        let asks = members
            .iter()
            .flat_map(|member| member.dependencies_asked(None))
            .collect();
        self.spread(asks)
    }

    fn make_room(&mut self) {
        if self.crates.len() >= self.max_crates {
            // Forgetting costs only guesses; a long-running overlay must not grow.
            self.crates.clear();
        }
    }

    /// What the followed releases of a crate seen already ask of their dependencies.
    fn asks_of(&self, name: &str) -> Vec<(String, Asked)> {
        let known = &self.crates[name];
        let Some(lines) = known.lines.as_ref().and_then(Weak::upgrade) else {
            return Vec::new();
        };
        let asked = if known.saw_everything {
            None
        } else {
            known.asked.as_ref()
        };
        followed_releases(&lines, asked)
            .iter()
            .flat_map(|release| release.dependencies_asked(asked))
            .collect()
    }

    /// Records what is asked of each dependency, looks again at the crates asked for
    /// something new, and returns every dependency met on the way.
    fn spread(&mut self, mut asks: Vec<(String, Asked)>) -> BTreeSet<String> {
        let mut wanted = BTreeSet::new();
        loop {
            let mut grown = Vec::new();
            for (dependency, ask) in asks {
                wanted.insert(dependency.clone());
                let known = self.crates.entry(dependency.clone()).or_default();
                let grew = match &mut known.asked {
                    Some(asked) => asked.merge(ask),
                    None => {
                        known.asked = Some(ask);
                        true
                    }
                };
                if grew && known.lines.is_some() && !known.saw_everything {
                    grown.push(dependency);
                }
            }
            if grown.is_empty() {
                return wanted;
            }
            asks = grown.iter().flat_map(|name| self.asks_of(name)).collect();
        }
    }
}

/// The releases cargo would pick: the newest one meeting each requirement asked;
/// without any, the newest of each of the most recent compatibility lines. Never
/// yanked ones.
fn followed_releases(lines: &[IndexLine], asked: Option<&Asked>) -> Vec<Release> {
    let candidates = lines.iter().filter(|l| !l.yanked);
    let requirements: Vec<semver::VersionReq> = asked
        .iter()
        .flat_map(|asked| &asked.requirements)
        .filter_map(|req| semver::VersionReq::parse(req).ok())
        .collect();
    let mut chosen: Vec<&IndexLine> = if requirements.is_empty() {
        let mut newest_per_line: HashMap<(u64, u64, u64), &IndexLine> = HashMap::new();
        for line in candidates {
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
        chosen
    } else {
        let candidates: Vec<&IndexLine> = candidates.collect();
        requirements
            .iter()
            .filter_map(|req| {
                candidates
                    .iter()
                    .filter(|line| req.matches(&line.version))
                    .max_by(|a, b| a.version.cmp(&b.version))
                    .copied()
            })
            .collect()
    };
    chosen.sort_by(|a, b| a.version.cmp(&b.version));
    chosen.dedup_by(|a, b| a.version == b.version);
    chosen
        .into_iter()
        .filter_map(|line| serde_json::from_str::<Release>(&line.raw).ok())
        .collect()
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

/// A package's dependencies and features: the fields of an index line the guess
/// reads, or a project member's manifest.
#[derive(Debug, Default, Deserialize)]
pub struct Release {
    #[serde(default)]
    pub(crate) deps: Vec<Dependency>,
    #[serde(default)]
    pub(crate) features: HashMap<String, Vec<String>>,
    #[serde(default)]
    pub(crate) features2: Option<HashMap<String, Vec<String>>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Dependency {
    /// The name the manifest and the feature table use.
    pub(crate) name: String,
    /// The crate's real name when the manifest renames it.
    #[serde(default)]
    pub(crate) package: Option<String>,
    /// The version requirement, e.g. `^1.2`.
    #[serde(default)]
    pub(crate) req: String,
    #[serde(default)]
    pub(crate) optional: bool,
    /// `dev`, `build`, or normal (absent).
    #[serde(default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) features: Vec<String>,
    #[serde(default = "yes")]
    pub(crate) default_features: bool,
}

fn yes() -> bool {
    true
}

impl Release {
    fn feature(&self, name: &str) -> Option<&Vec<String>> {
        self.features
            .get(name)
            .or_else(|| self.features2.as_ref()?.get(name))
    }

    /// The dependencies (real names, lowercase) this release turns on when asked for
    /// `asked` (every feature when `None`), with what it asks of each.
    fn dependencies_asked(&self, asked: Option<&Asked>) -> Vec<(String, Asked)> {
        let all_features: Vec<String> = self
            .features
            .keys()
            .chain(self.features2.iter().flat_map(|f| f.keys()))
            .cloned()
            .collect();
        let mut pending: Vec<String> = match asked {
            None => all_features,
            Some(asked) => {
                let default = asked.default.then(|| "default".to_string());
                asked.features.iter().cloned().chain(default).collect()
            }
        };
        // Optional dependencies turned on, and features asked of dependencies, both
        // by the name the manifest uses.
        let mut enabled: HashSet<String> = HashSet::new();
        let mut forwarded: Vec<(String, String)> = Vec::new();
        let mut seen = HashSet::new();
        while let Some(feature) = pending.pop() {
            if !seen.insert(feature.clone()) {
                continue;
            }
            let Some(values) = self.feature(&feature) else {
                // A feature name that is no feature is an optional dependency's
                // implicit one.
                enabled.insert(feature);
                continue;
            };
            for value in values {
                if let Some(dep) = value.strip_prefix("dep:") {
                    enabled.insert(dep.to_string());
                } else if let Some((dep, dep_feature)) = value.split_once('/') {
                    // A weak `dep?/feature` leaves `dep` out of the build unless
                    // something else turns it on, but cargo's version resolver counts
                    // it in all the same (its lockfile lists it), so it is asked for.
                    let dep = dep.trim_end_matches('?');
                    enabled.insert(dep.to_string());
                    forwarded.push((dep.to_string(), dep_feature.to_string()));
                } else {
                    pending.push(value.clone());
                }
            }
        }

        let mut asks: HashMap<String, Asked> = HashMap::new();
        for dep in &self.deps {
            if dep.kind.as_deref() == Some("dev") {
                continue;
            }
            if dep.optional && asked.is_some() && !enabled.contains(&dep.name) {
                continue;
            }
            let real = dep.package.as_deref().unwrap_or(&dep.name);
            let mut ask = Asked {
                requirements: BTreeSet::from([dep.req.clone()]),
                default: dep.default_features,
                features: dep.features.iter().cloned().collect(),
            };
            for (name, feature) in &forwarded {
                if *name == dep.name {
                    ask.features.insert(feature.clone());
                }
            }
            asks.entry(real.to_ascii_lowercase())
                .or_default()
                .merge(ask);
        }
        asks.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::index::parse_index_file;

    #[test]
    fn a_wake_hook_runs_once_when_the_first_layer_wakes_or_at_once_for_an_awake_one() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counting = || {
            let runs = Arc::clone(&runs);
            WakeHook::new(move || {
                runs.fetch_add(1, Ordering::SeqCst);
            })
        };
        let (first, second) = (Dormancy::new(false), Dormancy::new(false));
        let hook = counting();
        first.on_wake(Arc::clone(&hook));
        second.on_wake(hook);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert!(!first.is_awake());

        second.wake();
        assert!(second.is_awake() && !first.is_awake());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        first.wake();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the hook ran twice");

        Dormancy::new(true).on_wake(counting());
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "an awake layer runs it at once"
        );
    }

    #[test]
    fn a_pool_starts_threads_only_for_work_and_no_more_than_its_most() {
        let (release, released) = crossbeam_channel::unbounded::<()>();
        let (finished, done) = crossbeam_channel::unbounded::<u32>();
        let pool = WorkPool::start("test-pool", 3, 16, move |item: u32| {
            released.recv().unwrap();
            finished.send(item).unwrap();
        });
        let started = || pool.started.load(Ordering::SeqCst);
        assert_eq!(started(), 0, "no work, no thread");
        pool.request([0]);
        assert_eq!(started(), 1);
        pool.request(1..5);
        assert_eq!(started(), 3, "one per item waiting, up to the most");
        for _ in 0..5 {
            release.send(()).unwrap();
        }
        let mut items: Vec<u32> = (0..5)
            .map(|_| {
                done.recv_timeout(std::time::Duration::from_secs(5))
                    .unwrap()
            })
            .collect();
        items.sort();
        assert_eq!(items, [0, 1, 2, 3, 4], "every item was worked on");
        assert_eq!(started(), 3);
    }

    fn learn(plan: &mut Plan, name: &str, lines: &[&str]) -> Vec<String> {
        let lines = Arc::new(parse_index_file(&lines.join("\n")));
        // In the overlay the index cache keeps the lines alive; here the test does.
        std::mem::forget(Arc::clone(&lines));
        plan.learn(name, lines).into_iter().collect()
    }

    #[test]
    fn follows_recent_lines_and_skips_dev_dependencies() {
        let mut plan = Plan::new(100);
        let wanted = learn(
            &mut plan,
            "a",
            &[
                r#"{"name":"a","vers":"0.9.0","deps":[{"name":"ancient","req":"1","kind":"normal"}]}"#,
                r#"{"name":"a","vers":"1.0.0","deps":[{"name":"old","req":"1","kind":"normal"}]}"#,
                r#"{"name":"a","vers":"1.2.0","deps":[{"name":"serde","req":"1","kind":"normal"},{"name":"tester","req":"1","kind":"dev"},{"name":"Build-Helper","req":"1","kind":"build"}]}"#,
                r#"{"name":"a","vers":"2.0.0","deps":[{"name":"alias","package":"real","req":"1"}]}"#,
                r#"{"name":"a","vers":"3.0.0","yanked":true,"deps":[{"name":"yanked-dep","req":"1"}]}"#,
                r#"{"name":"a","vers":"0.8.0","deps":[{"name":"older-line","req":"1"}]}"#,
            ],
        );
        assert_eq!(wanted, ["ancient", "build-helper", "real", "serde"]);
    }

    /// `b` as a dependency of `a`: `opt` is optional, on by `default` through
    /// another feature; `extra` only by the feature `more`; `weak-only` by `default`'s
    /// weak `weak-only?/std`, which cargo's resolver counts.
    const B: &str = r#"{"name":"b","vers":"1.0.0","deps":[{"name":"plain","req":"1"},{"name":"opt","req":"1","optional":true},{"name":"extra","req":"1","optional":true},{"name":"weak-only","req":"1","optional":true}],"features":{"default":["std"],"std":["dep:opt","weak-only?/std"]},"features2":{"more":["extra/fast"]}}"#;

    #[test]
    fn a_project_dependency_counts_every_feature() {
        // Nothing asked anything of `b`: the project's manifest may turn on anything.
        let mut plan = Plan::new(100);
        let wanted = learn(&mut plan, "b", &[B]);
        assert_eq!(wanted, ["extra", "opt", "plain", "weak-only"]);
    }

    #[test]
    fn a_dependency_counts_only_the_features_dependents_ask_for() {
        let mut plan = Plan::new(100);
        let a = r#"{"name":"a","vers":"1.0.0","deps":[{"name":"b","req":"1"}]}"#;
        assert_eq!(learn(&mut plan, "a", &[a]), ["b"]);
        // `a` wants b's defaults only.
        assert_eq!(learn(&mut plan, "b", &[B]), ["opt", "plain", "weak-only"]);

        // A later dependent asks `b` for `more`: `b` is looked at again with the
        // union of both asks, and its `extra` is wanted now, with the feature `more`
        // forwards to it.
        let c = r#"{"name":"c","vers":"1.0.0","deps":[{"name":"b","req":"1","features":["more"],"default_features":false}]}"#;
        let wanted = learn(&mut plan, "c", &[c]);
        assert_eq!(wanted, ["b", "extra", "opt", "plain", "weak-only"]);
        assert_eq!(
            plan.crates["extra"].asked,
            Some(Asked {
                requirements: ["1".to_string()].into(),
                default: true,
                features: ["fast".to_string()].into()
            })
        );
    }

    #[test]
    fn renamed_and_weak_dependencies() {
        let mut plan = Plan::new(100);
        let root = r#"{"name":"root","vers":"1.0.0","deps":[{"name":"x","req":"1","default_features":false,"features":["f"]}]}"#;
        learn(&mut plan, "root", &[root]);
        let x = r#"{"name":"x","vers":"1.0.0","deps":[{"name":"alias","package":"Real-Name","req":"1","optional":true},{"name":"w","req":"1","optional":true}],"features":{"f":["alias/g","w?/h"]}}"#;
        // `f` turns on the renamed `alias` (crate `real-name`) with `g`, and the weak
        // `w?/h` counts `w` in, as cargo's resolver does.
        assert_eq!(learn(&mut plan, "x", &[x]), ["real-name", "w"]);
        assert!(
            plan.crates["w"]
                .asked
                .as_ref()
                .is_some_and(|a| a.features.contains("h"))
        );
        assert!(
            plan.crates["real-name"]
                .asked
                .as_ref()
                .is_some_and(|a| a.features.contains("g"))
        );
    }

    #[test]
    fn project_members_start_the_plan_with_what_they_ask_for() {
        let mut plan = Plan::new(100);
        let member: Release = serde_json::from_str(
            r#"{"deps":[{"name":"b","req":"1","default_features":false},{"name":"tool","req":"1","kind":"build"}],"features":{"x":["b/more"]}}"#,
        )
        .unwrap();
        let wanted: Vec<String> = plan.expect_members(&[member]).into_iter().collect();
        assert_eq!(wanted, ["b", "tool"]);
        // `b` is a dependency now, not one whose features nobody knows: the member's
        // features (all on, as cargo resolves a lockfile) ask for `more` only.
        assert_eq!(learn(&mut plan, "b", &[B]), ["extra", "plain"]);
    }

    #[test]
    fn a_requirement_picks_the_release_followed() {
        let mut plan = Plan::new(100);
        let a = r#"{"name":"a","vers":"1.0.0","deps":[{"name":"b","req":"^1.1"}]}"#;
        learn(&mut plan, "a", &[a]);
        let b = [
            r#"{"name":"b","vers":"1.1.0","deps":[{"name":"one-one","req":"1"}]}"#,
            r#"{"name":"b","vers":"1.2.0","deps":[{"name":"one-two","req":"1"}]}"#,
            r#"{"name":"b","vers":"1.3.0","yanked":true,"deps":[{"name":"yanked","req":"1"}]}"#,
            r#"{"name":"b","vers":"2.0.0","deps":[{"name":"two","req":"1"}]}"#,
        ];
        assert_eq!(learn(&mut plan, "b", &b), ["one-two"]);
        // Another dependent wants b 2: that release is followed too.
        let c = r#"{"name":"c","vers":"1.0.0","deps":[{"name":"b","req":"2"}]}"#;
        assert_eq!(learn(&mut plan, "c", &[c]), ["b", "one-two", "two"]);
    }

    #[test]
    fn the_plan_forgets_everything_when_full() {
        let mut plan = Plan::new(3);
        let a =
            r#"{"name":"a","vers":"1.0.0","deps":[{"name":"b","req":"1"},{"name":"c","req":"1"}]}"#;
        learn(&mut plan, "a", &[a]);
        assert_eq!(plan.crates.len(), 3);
        learn(&mut plan, "d", &[r#"{"name":"d","vers":"1.0.0"}"#]);
        assert_eq!(plan.crates.len(), 1);
    }
}
