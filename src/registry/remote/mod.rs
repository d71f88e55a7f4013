//! Remote layers: registries reached over HTTP, and everything that makes them fast and
//! usable offline. This folder owns the layer (here), its memory cache of index files
//! ([`index_cache`]), its disk cache ([`disk_cache`]), and the two ways it works ahead of
//! cargo: index files ([`prefetch`]) and crate downloads ([`download_ahead`]). Nothing
//! outside it needs to know an upstream exists.
//!
//! A layer backed by a sparse registry over HTTP: crates.io, a company registry, or
//! another overlay.
//!
//! It reads the upstream's `config.json` and downloads through the upstream's own `dl`
//! template, with every marker cargo knows, never a hand-made URL: on mirrored networks
//! index.crates.io is served by a mirror whose `dl` points elsewhere, and the crates.io
//! web API may not be reachable at all. `404`, `410` and `451` mean "not in this layer";
//! any other failure is an error that names the upstream. `config.json`, index files
//! and searches follow redirects only within their origin; downloads also to storage
//! hosts over https (see [`Redirects`]). On top of the stack the layer forwards
//! publishes and yanks with its own token (`token-file=`), never the caller's, which
//! was meant for the overlay, and hands back the upstream's answer unchanged; without a
//! token of its own it refuses writes. Lower down it is read-only.
//!
//! Index files are kept in an [`IndexCache`] and, with `--cache DIR`, on disk, where a
//! copy younger than the TTL counts as fresh for a new process too; each
//! index file fetched names the files cargo will want next, which the [`Prefetcher`]
//! fetches in the background.

pub(crate) mod disk_cache;
pub(crate) mod download_ahead;
pub(crate) mod index_cache;
pub(crate) mod prefetch;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::registry::error::{RegistryError, Result};
use crate::registry::index::{
    CrateName, IndexLine, parse_index_file, render_index_file, same_release,
};
use crate::registry::layer::{CrateFile, Layer, SearchPage, WritableLayer, WriteOutcome};
use crate::registry::publish::Publish;
use crate::registry::remote::disk_cache::{DiskCache, Keeping};
use crate::registry::remote::download_ahead::{DownloadAhead, Project};
use crate::registry::remote::index_cache::{CachedIndex, IndexCache, Lookup};
use crate::registry::remote::prefetch::{
    Dormancy, PrefetchJob, Prefetcher, Release, WakeHook, WorkPool,
};
use crate::registry::rendered::SourceStamp;
use crate::report::Report;
use crate::upstream::{Redirects, Upstream, UpstreamError, UpstreamResponse, Url};

/// How long a fetched `config.json` is trusted before it is fetched again.
const CONFIG_REFRESH: Duration = Duration::from_secs(300);
/// The largest index file or API answer read into memory.
const MAX_DOCUMENT_LEN: u64 = 64 * 1024 * 1024;
/// Index files kept in memory per remote layer (crates.io's whole index is ~200,000).
const MAX_CACHED_INDEX_FILES: usize = 50_000;
/// The most downloads fetched ahead of cargo at once.
const MAX_DOWNLOADS_AHEAD: usize = 16;
/// Index files waiting to be prefetched; more are dropped.
const PREFETCH_QUEUE: usize = 4096;

/// How a remote layer caches and prefetches.
#[derive(Clone, Debug)]
pub(crate) struct RemoteOptions {
    /// How long a fetched index file is served without asking the upstream again.
    pub(crate) fresh_for: Duration,
    /// The most memory the cached index files may take (`--index-cache-size`).
    pub(crate) index_cache_bytes: usize,
    /// Threads fetching index files ahead of cargo; 0 turns prefetching off.
    pub(crate) prefetch_workers: usize,
    /// Where fetched index files and crates are kept (`--cache`).
    pub(crate) cache_dir: Option<PathBuf>,
    /// Whether `cache_dir` lasts across runs (`--cache`) or only for this one.
    pub(crate) cache_keeping: Keeping,
    /// How long a request waits for another thread's fetch of the same file.
    pub(crate) wait: Duration,
    /// Sent as `Authorization` on every read from the upstream (config.json, index
    /// files, downloads, search), for registries that require it (`auth-required`),
    /// and on every write forwarded to it: the layer's `token-file=`.
    pub(crate) token: Option<String>,
}

/// The fields of `config.json` the layer uses.
#[derive(Clone, Debug, serde::Deserialize)]
struct RegistryConfig {
    dl: String,
    api: Option<String>,
}

struct CachedConfig {
    config: RegistryConfig,
    fetched: Instant,
}

/// A download fetched ahead of cargo: the crate and its version.
type DownloadJob = (CrateName, semver::Version);

pub(crate) struct RemoteLayer {
    inner: Arc<Remote>,
    /// Own the prefetch pools; `Remote` holds them weakly, as the pools' workers hold
    /// `Remote` weakly, so neither keeps the other alive.
    _prefetcher: Option<Arc<Prefetcher>>,
    _downloader: Option<Arc<WorkPool<DownloadJob>>>,
}

/// The layer's state, shared with its prefetch workers.
struct Remote {
    label: String,
    /// The index URL with a trailing `/` and without `sparse+`.
    index_url: String,
    /// The web API given on the command line (`remote=API,INDEX`); otherwise the
    /// `api` of `config.json` is used.
    api_url: Option<String>,
    upstream: Arc<Upstream>,
    config: Mutex<Option<CachedConfig>>,
    index_cache: IndexCache,
    disk: Option<DiskCache>,
    wait: Duration,
    /// `Authorization` for every read and write (`remote=URL,token-file=FILE`).
    token: Option<String>,
    /// Where newly fetched index files announce what to fetch next.
    prefetcher: Weak<Prefetcher>,
    /// Whether prefetching works yet: with `--cache DIR`, from the first upstream read.
    dormancy: Dormancy,
    /// What cargo is about to download, and the downloads under way.
    ahead: DownloadAhead,
    /// Where those downloads are queued; only with a disk cache to keep them in.
    downloader: Weak<WorkPool<DownloadJob>>,
}

impl RemoteLayer {
    pub(crate) fn new(
        index_url: &str,
        api_url: Option<&str>,
        upstream: Arc<Upstream>,
        options: &RemoteOptions,
    ) -> Result<RemoteLayer> {
        let index_url = index_url.strip_prefix("sparse+").unwrap_or(index_url);
        let index_url = format!("{}/", index_url.trim_end_matches('/'));
        let disk = options
            .cache_dir
            .clone()
            .map(|dir| DiskCache::open(dir, options.cache_keeping))
            .transpose()?;
        let mut prefetcher = None;
        let mut downloader = None;
        let inner = Arc::new_cyclic(|weak: &Weak<Remote>| {
            if options.prefetch_workers > 0 && disk.is_some() {
                let weak = weak.clone();
                let download = move |(name, version): DownloadJob| {
                    if let Some(remote) = weak.upgrade() {
                        remote.download_ahead(&name, &version);
                    }
                };
                downloader = Some(Arc::new(WorkPool::start(
                    "overlay-download",
                    options.prefetch_workers.min(MAX_DOWNLOADS_AHEAD),
                    PREFETCH_QUEUE,
                    download,
                )));
            }
            if options.prefetch_workers > 0 {
                let weak = weak.clone();
                let work = move |job: PrefetchJob| {
                    let Some(remote) = weak.upgrade() else {
                        return;
                    };
                    match job {
                        PrefetchJob::Learn(name, lines) => remote.prefetch_after_now(&name, lines),
                        // A failed prefetch costs nothing: cargo's own request retries.
                        PrefetchJob::Fetch(name) => drop(remote.index_lines(&name)),
                    }
                };
                prefetcher = Some(Arc::new(Prefetcher::start(
                    options.prefetch_workers,
                    PREFETCH_QUEUE,
                    MAX_CACHED_INDEX_FILES,
                    work,
                )));
            }
            Remote {
                label: format!("remote:{index_url}"),
                index_url: index_url.clone(),
                api_url: api_url.map(|api| api.trim_end_matches('/').to_string()),
                upstream,
                config: Mutex::new(None),
                index_cache: IndexCache::new(
                    MAX_CACHED_INDEX_FILES,
                    options.index_cache_bytes,
                    options.fresh_for,
                ),
                disk,
                wait: options.wait,
                token: options.token.clone(),
                prefetcher: prefetcher.as_ref().map_or_else(Weak::new, Arc::downgrade),
                dormancy: Dormancy::new(options.cache_keeping != Keeping::Persistent),
                ahead: DownloadAhead::default(),
                downloader: downloader.as_ref().map_or_else(Weak::new, Arc::downgrade),
            }
        });
        Ok(RemoteLayer {
            inner,
            _prefetcher: prefetcher,
            _downloader: downloader,
        })
    }

    /// The host of the index and API URLs, for proxy interception.
    pub(crate) fn hosts(&self) -> Vec<String> {
        [Some(&self.inner.index_url), self.inner.api_url.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|url| Some(Url::parse(url).ok()?.at.host))
            .collect()
    }
}

impl Remote {
    /// An answer of the upstream's that the layer cannot use.
    fn upstream_error(&self, what: impl std::fmt::Display) -> RegistryError {
        RegistryError::upstream(format!("upstream {}: {what}", self.label))
    }

    /// A request to the upstream that failed: the client's error is the source.
    fn upstream_failure(&self, e: UpstreamError) -> RegistryError {
        RegistryError::Upstream {
            detail: format!("upstream {}", self.label),
            source: Some(Box::new(e)),
        }
    }

    /// A read from the upstream, with the layer's token when it has one (never sent
    /// on to another origin).
    fn get(
        &self,
        url: &str,
        extra: &[(&str, &str)],
        redirects: Redirects,
    ) -> Result<UpstreamResponse> {
        self.dormancy.wake();
        let mut headers = extra.to_vec();
        if let Some(token) = &self.token {
            headers.push(("Authorization", token));
        }
        self.upstream
            .get(url, &headers, redirects)
            .map_err(|e| self.upstream_failure(e))
    }

    /// `config.json`, from the cache while it is fresh. A failed refresh keeps the old
    /// one, so a short upstream outage does not break downloads that would work.
    fn registry_config(&self) -> Result<RegistryConfig> {
        let mut cached = self.config.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cached
            .as_ref()
            .filter(|c| c.fetched.elapsed() < CONFIG_REFRESH)
        {
            return Ok(c.config.clone());
        }
        let url = format!("{}config.json", self.index_url);
        let fetched = self
            .get(&url, &[], Redirects::SameOrigin)
            .and_then(|response| {
                if response.status != 200 {
                    return Err(
                        self.upstream_error(format!("GET {url} answered {}", response.status))
                    );
                }
                let bytes = response
                    .into_bytes(MAX_DOCUMENT_LEN)
                    .map_err(|e| self.upstream_failure(e))?;
                serde_json::from_slice::<RegistryConfig>(&bytes).map_err(|e| {
                    self.upstream_error(format!("{url} is not a registry config: {e}"))
                })
            });
        match (fetched, cached.as_mut()) {
            (Ok(config), _) => {
                *cached = Some(CachedConfig {
                    config: config.clone(),
                    fetched: Instant::now(),
                });
                Ok(config)
            }
            (Err(e), Some(stale)) => {
                log::warn!("{}; using the config.json fetched before", Report(&e));
                Ok(stale.config.clone())
            }
            (Err(e), None) => Err(e),
        }
    }

    fn api(&self) -> Result<Option<String>> {
        match &self.api_url {
            Some(api) => Ok(Some(api.clone())),
            None => Ok(self
                .registry_config()?
                .api
                .map(|api| api.trim_end_matches('/').to_string())),
        }
    }

    /// The token writes are forwarded with: the layer's own, never the caller's.
    fn write_token(&self) -> Result<&str> {
        self.token.as_deref().ok_or_else(|| {
            RegistryError::Forbidden(format!(
                "the top layer {} has no token to write to it with: add `,token-file=FILE` \
                 to its `-r remote=...` layer, FILE holding a token that registry accepts \
                 (the overlay never passes on the token a client sent it)",
                self.label
            ))
        })
    }

    /// Sends a write to the upstream API with the layer's own token.
    fn forward(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<WriteOutcome> {
        let token = self.write_token()?;
        let api = self.api()?.ok_or_else(|| {
            RegistryError::Forbidden(format!(
                "the top layer {} has no web API to write to",
                self.label
            ))
        })?;
        let url = format!("{api}/api/v1{path}");
        let headers = [("Accept", "application/json"), ("Authorization", token)];
        let response = self
            .upstream
            .send(method, &url, &headers, body)
            .map_err(|e| self.upstream_failure(e))?;
        let status = response.status;
        let body = response
            .into_bytes(MAX_DOCUMENT_LEN)
            .map_err(|e| self.upstream_failure(e))?;
        Ok(WriteOutcome::Forwarded { status, body })
    }
}

impl Remote {
    /// The upstream's index file for `name`: from memory while fresh, then from the
    /// disk cache while its copy is fresh (stored or revalidated less than the TTL
    /// ago), revalidated with its `ETag` after, from the disk cache when the upstream
    /// cannot be reached. Shared with the cache, not copied: prefetches and downloads
    /// only read it.
    fn index_lines(&self, name: &CrateName) -> Result<Arc<Vec<IndexLine>>> {
        let key = name.lowercase();
        let stale = match self.index_cache.lookup(&key, self.wait) {
            Lookup::Fresh(cached) => return Ok(cached.lines),
            Lookup::Fetch { stale } => stale,
        };
        if stale.is_none()
            && let Some(lines) = self.fresh_from_disk(&key, name)
        {
            return Ok(lines);
        }
        match self.fetch_index(name, stale.as_ref()) {
            Ok(Fetched::NotModified) => {
                let cached = stale.expect("a 304 answers a revalidation");
                if let Some(disk) = &self.disk {
                    disk.touch_index(name);
                }
                let refreshed = CachedIndex {
                    checked: Instant::now(),
                    ..cached
                };
                let lines = Arc::clone(&refreshed.lines);
                self.prefetch_after(name, Arc::clone(&lines));
                self.index_cache.finish(&key, Some(refreshed));
                Ok(lines)
            }
            Ok(Fetched::Found { lines, etag }) => {
                if let Some(disk) = &self.disk
                    && let Err(e) = disk.store_index(name, &render_index_file(&lines))
                {
                    log::warn!("{}", Report(&e));
                }
                let lines = Arc::new(lines);
                self.prefetch_after(name, Arc::clone(&lines));
                self.index_cache.finish(
                    &key,
                    Some(CachedIndex::new(Arc::clone(&lines), etag, Instant::now())),
                );
                Ok(lines)
            }
            Ok(Fetched::NotFound) => {
                let lines = Arc::new(Vec::new());
                self.index_cache.finish(
                    &key,
                    Some(CachedIndex::new(Arc::clone(&lines), None, Instant::now())),
                );
                Ok(lines)
            }
            Err(e) => {
                // Keep an expired copy for next time; forget nothing else.
                self.index_cache.finish(&key, stale.clone());
                if let Some(stale) = stale {
                    log::warn!("{}; serving the copy fetched before", Report(&e));
                    return Ok(stale.lines);
                }
                if let Some(lines) = self.disk.as_ref().and_then(|d| d.load_index(name)) {
                    log::warn!("{}; serving the copy in the cache directory", Report(&e));
                    return Ok(Arc::new(lines));
                }
                Err(e)
            }
        }
    }

    /// A fresh copy in the disk cache, taken into memory with the time it has left;
    /// when there is one, it ends the fetch the caller's lookup claimed.
    ///
    /// The disk cache keeps no `ETag`: once the disk copy is stale it is fetched whole
    /// again (as the first fetch of a process always was), which keeps the cache
    /// directory a plain local registry with nothing beside its index files.
    fn fresh_from_disk(&self, key: &str, name: &CrateName) -> Option<Arc<Vec<IndexLine>>> {
        let disk = self.disk.as_ref()?;
        let (lines, age) = disk.load_fresh_index(name, self.index_cache.fresh_for())?;
        let checked = Instant::now().checked_sub(age)?;
        let lines = Arc::new(lines);
        self.index_cache.finish(
            key,
            Some(CachedIndex::new(Arc::clone(&lines), None, checked)),
        );
        self.prefetch_after(name, Arc::clone(&lines));
        Some(lines)
    }

    fn fetch_index(&self, name: &CrateName, stale: Option<&CachedIndex>) -> Result<Fetched> {
        let url = format!("{}{}", self.index_url, name.index_path());
        let etag = stale.and_then(|s| s.etag.as_deref());
        let headers: Vec<(&str, &str)> = etag.map(|e| ("If-None-Match", e)).into_iter().collect();
        let response = self.get(&url, &headers, Redirects::SameOrigin)?;
        match response.status {
            200 => {
                let etag = response.header("etag");
                let bytes = response
                    .into_bytes(MAX_DOCUMENT_LEN)
                    .map_err(|e| self.upstream_failure(e))?;
                let mut lines = parse_index_file(&String::from_utf8_lossy(&bytes));
                // A line naming another crate is not this crate's, and its name must
                // never reach a file path (the disk cache) unchecked.
                lines.retain(|line| line.name.eq_ignore_ascii_case(name.as_str()));
                Ok(Fetched::Found { lines, etag })
            }
            304 if stale.is_some() => Ok(Fetched::NotModified),
            404 | 410 | 451 => Ok(Fetched::NotFound),
            status => Err(self.upstream_error(format!("GET {url} answered {status}"))),
        }
    }

    /// Has a prefetch thread queue the index files cargo is likely to want after
    /// reading `name`'s `lines`; the answer being served does not wait for it.
    fn prefetch_after(&self, name: &CrateName, lines: Arc<Vec<IndexLine>>) {
        if !self.dormancy.is_awake() {
            return;
        }
        if let Some(prefetcher) = self.prefetcher.upgrade() {
            prefetcher.learn_later(name, lines);
        }
    }

    /// [`prefetch_after`](Self::prefetch_after)'s work, on a prefetch thread.
    fn prefetch_after_now(&self, name: &CrateName, lines: Arc<Vec<IndexLine>>) {
        if let Some(prefetcher) = self.prefetcher.upgrade() {
            self.prefetch(&prefetcher, prefetcher.learn(name.as_str(), lines));
        }
    }

    /// Queues the files of `names` that are neither fresh in the cache nor on their way.
    fn prefetch(&self, prefetcher: &Prefetcher, names: BTreeSet<String>) {
        let wanted = names
            .into_iter()
            .filter(|name| self.index_cache.needs_fetch(name))
            .filter_map(|name| CrateName::new(&name));
        prefetcher.request(wanted);
    }

    fn open_crate(&self, name: &CrateName, version: &semver::Version) -> Result<Option<CrateFile>> {
        let lines = self.index_lines(name)?;
        let Some(line) = lines.iter().find(|l| same_release(&l.version, version)) else {
            return Ok(None);
        };
        if let Some(file) = self.cached_crate(line) {
            return Ok(Some(file));
        }
        // Claimed before the rest is queued, so no job ahead fetches this one too.
        let key = download_key(line);
        let claimed = self.ahead.claim(&key);
        self.start_downloads_ahead();
        if !claimed {
            // Fetched ahead right now: wait for it rather than fetch it twice.
            self.ahead.wait_for(&key, self.wait);
            if let Some(file) = self.cached_crate(line) {
                return Ok(Some(file));
            }
        }
        // A cache for this run only exists for downloads ahead: cargo's own request
        // streams, so a large crate's first bytes reach cargo at once.
        let store = self
            .disk
            .as_ref()
            .is_some_and(|disk| disk.keeping() == Keeping::Persistent);
        let result = self.download(line, store);
        if !store {
            self.ahead.streamed(&key);
        }
        if claimed {
            self.ahead.release(&key);
        }
        result
    }

    /// The `.crate` for `line` from the disk cache, if it is there and whole.
    fn cached_crate(&self, line: &IndexLine) -> Option<CrateFile> {
        let (file, len) = self.disk.as_ref()?.open_verified(line)?;
        Some(CrateFile {
            reader: Box::new(file),
            len: Some(len),
        })
    }

    /// At cargo's first download (exec mode): queues the rest of what it will need.
    fn start_downloads_ahead(&self) {
        let Some(downloader) = self.downloader.upgrade() else {
            return;
        };
        let jobs = self
            .ahead
            .take_plan(&self.index_url)
            .into_iter()
            .filter_map(|package| {
                let name = CrateName::new(&package.name)?;
                let version = semver::Version::parse(&package.version).ok()?;
                Some((name, version))
            });
        downloader.request(jobs);
    }

    /// A download-ahead job: the `.crate` into the disk cache, unless it is there or
    /// someone is fetching it. Failures are left for cargo's own request to meet.
    fn download_ahead(&self, name: &CrateName, version: &semver::Version) {
        let Ok(lines) = self.index_lines(name) else {
            return;
        };
        let Some(line) = lines.iter().find(|l| same_release(&l.version, version)) else {
            return;
        };
        let key = download_key(line);
        if self.cached_crate(line).is_some() || !self.ahead.claim_ahead(&key) {
            return;
        }
        if let Err(e) = self.download(line, true) {
            log::debug!("fetching {key} ahead failed: {}", Report(&e));
        }
        self.ahead.release(&key);
    }

    /// The `.crate` for `line` from the upstream: with `store` and a disk cache, kept
    /// there (verified) and served from it, else streamed as it arrives.
    fn download(&self, line: &IndexLine, store: bool) -> Result<Option<CrateFile>> {
        let url = download_url(&self.registry_config()?.dl, line);
        let response = self.get(&url, &[], Redirects::Download)?;
        match response.status {
            200 => {}
            404 | 410 | 451 => return Ok(None),
            status => return Err(self.upstream_error(format!("GET {url} answered {status}"))),
        }
        if let Some(disk) = self.disk.as_ref().filter(|_| store) {
            let (file, len) = disk.store_crate(line, &mut response.into_reader())?;
            return Ok(Some(CrateFile {
                reader: Box::new(file),
                len: Some(len),
            }));
        }
        Ok(Some(CrateFile {
            len: response.content_length(),
            reader: response.into_reader(),
        }))
    }

    fn search(&self, query: &str, limit: usize) -> Result<SearchPage> {
        let Some(api) = self.api()? else {
            return Ok(SearchPage::default());
        };
        let url = format!(
            "{api}/api/v1/crates?q={}&per_page={limit}",
            percent_encode(query)
        );
        let response = self.get(&url, &[], Redirects::SameOrigin)?;
        if response.status != 200 {
            return Err(self.upstream_error(format!("GET {url} answered {}", response.status)));
        }
        let bytes = response
            .into_bytes(MAX_DOCUMENT_LEN)
            .map_err(|e| self.upstream_failure(e))?;
        #[derive(serde::Deserialize)]
        struct Answer {
            crates: Vec<crate::registry::layer::SearchHit>,
            meta: Meta,
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            total: usize,
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
            self.upstream_error(format!("unreadable search answer from {url}: {e}"))
        })?;
        Ok(SearchPage {
            hits: answer.crates,
            total: answer.meta.total,
        })
    }
}

/// What fetching an index file found.
enum Fetched {
    Found {
        lines: Vec<IndexLine>,
        etag: Option<String>,
    },
    NotModified,
    NotFound,
}

impl RemoteLayer {
    /// The sparse index URL this layer reads.
    pub(crate) fn index_url(&self) -> &str {
        &self.inner.index_url
    }

    /// A hint: cargo is working on `project` and may download what its lockfile
    /// names; the layer fetches those ahead at cargo's first download.
    pub(crate) fn expect_downloads(&self, project: &Project) {
        if self.inner.downloader.upgrade().is_some() {
            self.inner.ahead.expect(project.clone());
        }
    }

    /// Runs `hook` when the layer's prefetching wakes (see [`Dormancy`]), or now if it
    /// is awake.
    pub(crate) fn on_prefetch_wake(&self, hook: Arc<WakeHook>) {
        self.inner.dormancy.on_wake(hook);
    }

    /// A hint: cargo is about to resolve a project with these members; the layer
    /// starts prefetching their dependencies.
    pub(crate) fn expect_members(&self, members: &[Release]) {
        if let Some(prefetcher) = self.inner.prefetcher.upgrade() {
            self.inner
                .prefetch(&prefetcher, prefetcher.expect_members(members));
        }
    }
}

impl Layer for RemoteLayer {
    fn label(&self) -> &str {
        &self.inner.label
    }

    fn index_lines(&self, name: &CrateName) -> Result<Vec<IndexLine>> {
        Ok(self.inner.index_lines(name)?.to_vec())
    }

    /// The copy in memory while it is fresh: a lookup answers with it until then.
    fn index_stamp(&self, name: &CrateName) -> Option<SourceStamp> {
        let generation = self.inner.index_cache.fresh_generation(&name.lowercase())?;
        Some(SourceStamp::Held(generation))
    }

    fn open_crate(&self, name: &CrateName, version: &semver::Version) -> Result<Option<CrateFile>> {
        self.inner.open_crate(name, version)
    }

    fn search(&self, query: &str, limit: usize) -> Result<SearchPage> {
        self.inner.search(query, limit)
    }

    fn as_remote(&self) -> Option<&RemoteLayer> {
        Some(self)
    }

    fn writable(&self) -> Option<&dyn WritableLayer> {
        Some(self)
    }
}

impl WritableLayer for RemoteLayer {
    fn check_writable(&self) -> Result<()> {
        self.inner.write_token().map(|_| ())
    }

    fn publish(&self, publish: &Publish) -> Result<WriteOutcome> {
        // The body cargo sent, rebuilt byte for byte from its two parts.
        let mut body = Vec::with_capacity(8 + publish.metadata.len() + publish.crate_bytes.len());
        body.extend((publish.metadata.len() as u32).to_le_bytes());
        body.extend(&publish.metadata);
        body.extend((publish.crate_bytes.len() as u32).to_le_bytes());
        body.extend(&publish.crate_bytes);
        let outcome = self.inner.forward("PUT", "/crates/new", Some(&body));
        // cargo polls for the new version next; it must not see the cached file.
        self.inner.index_cache.forget(&publish.name.lowercase());
        if let Some(disk) = &self.inner.disk {
            disk.expire_index(&publish.name);
        }
        outcome
    }

    fn set_yanked(
        &self,
        name: &CrateName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<WriteOutcome> {
        let (method, action) = if yanked {
            ("DELETE", "yank")
        } else {
            ("PUT", "unyank")
        };
        let path = format!("/crates/{name}/{version}/{action}");
        let outcome = self.inner.forward(method, &path, None);
        self.inner.index_cache.forget(&name.lowercase());
        if let Some(disk) = &self.inner.disk {
            disk.expire_index(name);
        }
        outcome
    }
}

/// Expands a `dl` template for an index line, as cargo does: `{crate}`, `{version}`,
/// `{prefix}`, `{lowerprefix}` and `{sha256-checksum}`; a template without markers gets
/// `/{crate}/{version}/download` appended.
/// Names a download while it is under way: `name-version`, lowercase.
fn download_key(line: &IndexLine) -> String {
    format!("{}-{}", line.name, line.version).to_ascii_lowercase()
}

fn download_url(template: &str, line: &IndexLine) -> String {
    const MARKERS: [&str; 5] = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    let version = line.version.to_string();
    if !MARKERS.iter().any(|m| template.contains(m)) {
        return format!(
            "{}/{}/{version}/download",
            template.trim_end_matches('/'),
            line.name
        );
    }
    let prefix = crate_prefix(&line.name);
    let cksum = line.field("cksum").unwrap_or_default();
    template
        .replace("{crate}", &line.name)
        .replace("{version}", &version)
        .replace("{lowerprefix}", &prefix.to_ascii_lowercase())
        .replace("{prefix}", &prefix)
        .replace("{sha256-checksum}", &cksum)
}

/// cargo's `{prefix}`: the index directory of a name, in the name's own case.
fn crate_prefix(name: &str) -> String {
    match name.len() {
        1 => "1".to_string(),
        2 => "2".to_string(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    }
}

/// What a query value keeps escaped: everything but RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query value.
fn percent_encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, vers: &str) -> IndexLine {
        IndexLine::parse(&format!(
            r#"{{"name":"{name}","vers":"{vers}","cksum":"abc123"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn expands_every_dl_marker() {
        let l = line("Serde_Json", "1.0.0+build.5");
        assert_eq!(
            download_url(
                "https://dl.example/{prefix}/{lowerprefix}/{crate}/{version}/{sha256-checksum}",
                &l
            ),
            "https://dl.example/Se/rd/se/rd/Serde_Json/1.0.0+build.5/abc123"
        );
        assert_eq!(
            download_url("https://static.crates.io/crates", &l),
            "https://static.crates.io/crates/Serde_Json/1.0.0+build.5/download"
        );
        assert_eq!(
            download_url("https://x/{lowerprefix}", &line("Abc", "1.0.0")),
            "https://x/3/a"
        );
        assert_eq!(crate_prefix("a"), "1");
        assert_eq!(crate_prefix("ab"), "2");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(percent_encode("a b&c=d-e"), "a%20b%26c%3Dd-e");
    }
}
