//! Wiring: from a [`Config`] to a running server, and back to an exit code.
//!
//! This is where options meet features: layers are built, the CA made or loaded, the
//! listener bound, and then either the environment for cargo is printed and the server
//! runs until interrupted, or (exec mode) a command runs with that environment and its
//! exit code becomes ours. `fetch` builds the same layers and fills a directory.
//!
//! The pieces wiring needs live beside it: the variables printed for cargo
//! (`environment`), exec-mode supervision (`exec`), the run's private scratch directory
//! (`run_dir`) and the signals that stop a run ([`signals`]).

mod environment;
mod exec;
mod run_dir;
pub(crate) mod signals;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use ureq::http::Uri;

use crate::auth::{TokenError, Tokens};
use crate::cli::{self, Config, DEFAULT_PORT, FetchConfig, LayerSpec};
use crate::http::{self, Limits, Listening, Server, ServerOptions};
use crate::project::cargo_home;
use crate::project::fetch::{FetchError, fetch_into};
use crate::project::lockfile::parse_lockfile;
use crate::project::progress::Progress;
use crate::project::workspace::{Workspace, WorkspaceError};
use crate::proxy::{Frontend, ProxySettings};
use crate::registry::publish::PublishPolicy;
use crate::registry::remote::RemoteOptions;
use crate::registry::remote::disk_cache::{DiskCache, Keeping};
use crate::registry::remote::download_ahead::Project;
use crate::registry::{
    CargoPackageLayer, Layer, LayerStack, LocalLayer, RegistryError, RemoteLayer,
};
use crate::report::Report;
use crate::router::Router;
use crate::tls::{self, CertificateAuthority, InterceptTls, TlsError};
use crate::upstream::{Upstream, UpstreamError, UpstreamOptions, url_host};
use environment::Environment;
use exec::run_command;
use run_dir::RunDir;

/// The registry name used in the printed `CARGO_REGISTRIES_*` variables.
pub(crate) const REGISTRY_NAME: &str = "overlay";
/// Where the crates.io hosts are, intercepted when `--base-url` is crates.io.
const CRATES_IO_HOSTS: [&str; 3] = ["crates.io", "index.crates.io", "static.crates.io"];
/// crates.io as a layer: its sparse index, and its web API for search and publishing.
const CRATES_IO_INDEX: &str = "https://index.crates.io/";
const CRATES_IO_API: &str = "https://crates.io";

#[derive(Debug)]
pub(crate) enum AppError {
    /// `--host`/`--port` do not name an address.
    Address {
        host: String,
        source: io::Error,
    },
    Bind {
        addr: SocketAddr,
        source: io::Error,
    },
    /// A listener beyond loopback without `--token-file`, or with `--anonymous-writes`.
    Exposed {
        addr: SocketAddr,
        anonymous_writes: bool,
    },
    Layer(RegistryError),
    /// The run's scratch directory (temporary layers, the CA bundle).
    RunDir {
        path: PathBuf,
        source: io::Error,
    },
    /// `-r cargo-package` could not find cargo's target directory.
    CargoPackage(WorkspaceError),
    Tls(TlsError),
    /// The upstream client could not be set up.
    Upstream(UpstreamError),
    Tokens(TokenError),
    /// `fetch` could not read its lockfile.
    Lockfile {
        path: PathBuf,
        source: io::Error,
    },
    /// `fetch` could not complete.
    Fetch(FetchError),
    /// The command of exec mode could not be started.
    Command {
        program: OsString,
        source: io::Error,
    },
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Address { host, .. } => write!(f, "invalid value `{host}` for --host"),
            AppError::Bind { addr, .. } => write!(f, "cannot listen on {addr}"),
            AppError::Exposed {
                addr,
                anonymous_writes: true,
            } => write!(
                f,
                "refusing to listen on {addr} with --anonymous-writes: other machines can reach \
                 that address, and anyone on them could publish and yank here; bind a loopback \
                 address (-H 127.0.0.1), or drop --anonymous-writes and pass --token-file FILE"
            ),
            AppError::Exposed { addr, .. } => write!(
                f,
                "refusing to listen on {addr} without --token-file: other machines can reach \
                 that address, and without tokens anyone on them could publish and yank here \
                 and use the proxy as a way into this network; pass --token-file FILE (one \
                 token per line: writes carry one, and proxy clients give one as the password \
                 of the proxy URL), or bind a loopback address (-H 127.0.0.1)"
            ),
            AppError::Layer(_) => f.write_str("cannot open a layer"),
            AppError::RunDir { path, .. } => {
                write!(f, "cannot create the run directory {}", path.display())
            }
            AppError::CargoPackage(_) => f.write_str("-r cargo-package"),
            // These say what failed themselves.
            AppError::Tls(e) => e.fmt(f),
            AppError::Upstream(e) => e.fmt(f),
            AppError::Tokens(e) => e.fmt(f),
            AppError::Lockfile { path, .. } => write!(f, "fetch: cannot read {}", path.display()),
            AppError::Fetch(_) => f.write_str("fetch"),
            AppError::Command { program, .. } => {
                write!(f, "cannot run `{}`", program.to_string_lossy())
            }
        }
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::Address { source, .. }
            | AppError::Bind { source, .. }
            | AppError::RunDir { source, .. }
            | AppError::Lockfile { source, .. }
            | AppError::Command { source, .. } => Some(source),
            AppError::Layer(e) => Some(e),
            AppError::CargoPackage(e) => Some(e),
            AppError::Fetch(e) => Some(e),
            // Transparent: their Display is this error's, so their source is too.
            AppError::Tls(e) => e.source(),
            AppError::Upstream(e) => e.source(),
            AppError::Tokens(e) => e.source(),
            AppError::Exposed { .. } => None,
        }
    }
}

impl From<TlsError> for AppError {
    fn from(e: TlsError) -> Self {
        AppError::Tls(e)
    }
}

/// The command-line program: parse arguments, run, turn errors into one message and an
/// exit code.
pub fn main() -> ExitCode {
    let action = cli::parse(std::env::args_os().skip(1));
    // In exec mode the command's own output matters most: only warnings by default.
    let exec_mode = matches!(&action, Ok(cli::Action::Serve(c)) if !c.command.is_empty());
    let default_level = if exec_mode { "warn" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .init();
    let action = match action {
        Ok(action) => action,
        Err(e) => {
            eprintln!(
                "error: {}\n\nRun with --help to see the options.",
                Report(&e)
            );
            return ExitCode::from(2);
        }
    };
    match action {
        cli::Action::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        cli::Action::Version => {
            println!("cargo-overlay-registry {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        cli::Action::Serve(config) => exit(run(*config)),
        cli::Action::Fetch(config) => exit(fetch(*config)),
    }
}

/// The exit code of a run, or 1 with the error printed.
fn exit(result: Result<i32, AppError>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {}", Report(&e));
            ExitCode::from(1)
        }
    }
}

/// Runs the overlay until it is told to stop, or until the exec-mode command ends.
/// Returns the process exit code.
pub(crate) fn run(config: Config) -> Result<i32, AppError> {
    let exec_mode = !config.command.is_empty();
    signals::install();
    let mut started = start(&config)?;
    let code = if exec_mode {
        let project = started.project_for_prefetch.take();
        run_command(&config.command, &started.environment, || {
            if let Some((router, known)) = project {
                // Weak: the hook lives in the router's own layers.
                let weak = Arc::downgrade(&router);
                router.stack().when_prefetch_wakes(move || {
                    if let Some(router) = weak.upgrade() {
                        expect_workspace(router, known);
                    }
                });
            }
        })?
    } else {
        started.environment.print();
        let signal = signals::wait();
        log::info!("stopping on signal {signal}");
        128 + signal
    };
    started.finish(config.shutdown_timeout);
    Ok(code)
}

/// A running overlay: the listener serving in the background, what cargo needs to
/// use it, and the run directory, removed when the overlay stops.
pub(crate) struct Started {
    pub(crate) environment: Environment,
    /// In exec mode with prefetching: the router to tell, once the command runs and
    /// prefetching wakes, which project it resolves (the project itself when it was
    /// read already).
    project_for_prefetch: Option<(Arc<Router>, Option<Workspace>)>,
    pub(crate) local_addr: SocketAddr,
    listener: Listening,
    run_dir: RunDir,
}

impl Started {
    /// Stops taking connections, waits up to `timeout` for the requests in progress,
    /// ends the listener and removes the run directory. Returns how many requests were
    /// still unfinished.
    pub(crate) fn stop(self, timeout: std::time::Duration) -> usize {
        let unfinished = drain(timeout);
        self.listener.stop();
        http::resume();
        drop(self.run_dir);
        unfinished
    }

    /// [`stop`](Self::stop) for a process that exits next: the listener, its threads
    /// and the caches they hold are left to the exit, which ends them anyway. Joining
    /// the listener and freeing the caches added a millisecond or more to every
    /// exec-mode run, after cargo had finished.
    fn finish(self, timeout: std::time::Duration) {
        drain(timeout);
        drop(self.run_dir);
    }
}

/// Stops taking connections and waits up to `timeout` for the requests in progress;
/// returns how many were still unfinished.
fn drain(timeout: std::time::Duration) -> usize {
    let unfinished = http::drain(timeout);
    if unfinished > 0 {
        log::warn!(
            "stopping with {unfinished} requests unfinished after --shutdown-timeout {} s",
            timeout.as_secs()
        );
    }
    unfinished
}

/// Builds everything a [`Config`] asks for and starts serving on a listener thread.
/// Installs no signal handler and prints nothing: that is the caller's business.
pub(crate) fn start(config: &Config) -> Result<Started, AppError> {
    let run_dir = RunDir::new()?;
    let exec_mode = !config.command.is_empty();

    // Exec mode needs no fixed port: nothing outside the child has to find it.
    let default_port = if exec_mode { 0 } else { DEFAULT_PORT };
    let addr = resolve(&config.host, config.port.unwrap_or(default_port))?;
    let tokens = run_tokens(config, addr)?;
    let server_options = ServerOptions {
        max_connections: config.max_connections,
    };
    let server =
        Server::bind(addr, server_options).map_err(|source| AppError::Bind { addr, source })?;
    let local_addr = server
        .local_addr()
        .map_err(|source| AppError::Bind { addr, source })?;
    let upstream = UpstreamOptions {
        timeout: config.upstream_timeout,
        proxy: config.upstream_proxy.clone(),
        own_address: Some(local_addr),
        forwarding: false,
    };
    // Beyond loopback, or when every request needs a token, the proxy does too.
    let proxy_credentials =
        (config.auth_required || !local_addr.ip().is_loopback()).then(|| tokens.clone());
    let built = build_layers(config, &run_dir, &upstream)?;
    let stack = LayerStack::new(built.layers, config.read_only);

    let scheme = if config.tls { "https" } else { "http" };
    let listener_url = format!("{scheme}://{local_addr}");
    let base_url = match &config.base_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None if config.proxy => "https://crates.io".to_string(),
        None => listener_url.clone(),
    };
    let intercepted = intercepted_hosts(&base_url, built.remote_hosts);

    let ca = load_ca(config, &intercepted)?;
    if let (Some(ca), Some(path)) = (&ca, &config.ca_cert_out) {
        ca.write_cert(path)?;
        log::info!("wrote the CA certificate to {}", path.display());
    }
    let bundle = match &ca {
        Some(ca) => {
            let path = run_dir.path().join("ca-bundle.pem");
            let roots = tls::write_ca_bundle(ca, &path)?;
            log::debug!(
                "CA bundle {} holds our CA and {roots} system roots",
                path.display()
            );
            Some(path)
        }
        None => None,
    };
    // cargo must trust the proxy's own certificate when our CA made it.
    let own_listener_cert = config.tls && config.tls_cert.is_none();
    let proxy_ca = match &ca {
        Some(ca) if config.proxy && own_listener_cert => {
            let path = run_dir.path().join("ca.pem");
            tls::write_ca_only(ca, &path)?;
            Some(path)
        }
        _ => None,
    };
    let listener_tls = match (&config.tls_cert, &config.tls_key, &ca) {
        _ if !config.tls => None,
        (Some(cert), Some(key), _) => Some(tls::listener_config_from_pem(cert, key)?),
        (_, _, Some(ca)) => Some(tls::listener_config(ca, &config.host)?),
        (_, _, None) => unreachable!("a CA is made whenever TLS has no certificate given"),
    };
    let proxy = match (&ca, config.proxy) {
        (Some(ca), true) => Some(ProxySettings {
            // A forwarded request's redirect goes back to the client, whose next request
            // passes the port check again.
            forwarder: Arc::new(
                Upstream::new(&UpstreamOptions {
                    forwarding: true,
                    ..upstream.clone()
                })
                .map_err(AppError::Upstream)?,
            ),
            intercept: InterceptTls::new(Arc::clone(ca), &intercepted),
            intercepted_hosts: intercepted,
            allowed_ports: [443]
                .into_iter()
                .chain(config.allow_connect_ports.iter().copied())
                .collect(),
            credentials: proxy_credentials.clone(),
        }),
        _ => None,
    };
    if let Some(proxy) = &proxy {
        log::info!("intercepting {}", proxy.intercepted_hosts.join(", "));
    }

    let policy = PublishPolicy {
        permissive: config.permissive_publishing,
        max_crate_len: config.max_upload_size,
        ..PublishPolicy::default()
    };
    let child_token = tokens.first();
    let write_tokens = (!config.anonymous_writes).then_some(tokens);
    let router = Arc::new(Router::new(
        stack,
        policy,
        write_tokens,
        config.auth_required,
        &base_url,
    ));
    for layer in router.stack().layers() {
        log::info!("layer: {}", layer.label());
    }
    let project_for_prefetch =
        (exec_mode && config.prefetch_workers > 0).then(|| (Arc::clone(&router), built.workspace));
    let limits = Limits {
        idle_timeout: config.idle_timeout,
        ..Limits::default()
    };
    let frontend = Frontend::new(router, limits, listener_tls, proxy);
    log::info!("listening on {listener_url}/");
    let listener = server.spawn(Arc::new(frontend));

    let environment = Environment {
        token: child_token,
        listener_url,
        proxy: config.proxy,
        proxy_credentials: proxy_credentials.is_some(),
        bundle,
        proxy_ca,
        auth_required: config.auth_required,
    };
    Ok(Started {
        environment,
        project_for_prefetch,
        local_addr,
        listener,
        run_dir,
    })
}

/// `fetch`: every registry package of the lockfile, through the layers, into a
/// local-registry directory.
pub(crate) fn fetch(fetch: FetchConfig) -> Result<i32, AppError> {
    let text = std::fs::read_to_string(&fetch.lockfile).map_err(|source| AppError::Lockfile {
        path: fetch.lockfile.clone(),
        source,
    })?;
    let packages = parse_lockfile(&text);
    let run_dir = RunDir::new()?;
    let upstream = UpstreamOptions {
        timeout: fetch.config.upstream_timeout,
        proxy: fetch.config.upstream_proxy.clone(),
        own_address: None,
        forwarding: false,
    };
    let stack = LayerStack::new(
        build_layers(&fetch.config, &run_dir, &upstream)?.layers,
        true,
    );
    let into = DiskCache::open(fetch.into.clone(), Keeping::Persistent).map_err(AppError::Layer)?;
    let mut progress = Progress::on_stderr(packages.len());
    let summary = fetch_into(&stack, &packages, &into, &mut progress).map_err(AppError::Fetch)?;
    // Cleared before the summary, which stays the one line on stdout.
    progress.finish();
    println!(
        "fetched {} crates into {} ({} were there already)",
        summary.downloaded + summary.already_there,
        fetch.into.display(),
        summary.already_there
    );
    Ok(0)
}

/// The layers of the stack, top first, and the hosts of the remote ones.
struct BuiltLayers {
    layers: Vec<Box<dyn Layer>>,
    remote_hosts: Vec<String>,
    /// The project, when `-r cargo-package` had to read it.
    workspace: Option<Workspace>,
}

fn build_layers(
    config: &Config,
    run_dir: &RunDir,
    upstream_options: &UpstreamOptions,
) -> Result<BuiltLayers, AppError> {
    let mut layers: Vec<Box<dyn Layer>> = Vec::new();
    let mut remote_hosts = Vec::new();
    // Exec mode always keeps downloads on disk, in the run directory unless --cache
    // says where: that is where downloads fetched ahead of cargo wait for it.
    let exec_mode = !config.command.is_empty();
    let (cache_dir, cache_keeping) = match &config.cache_dir {
        Some(dir) => (Some(dir.clone()), Keeping::Persistent),
        None if exec_mode && config.prefetch_workers > 0 => {
            (Some(run_dir.path().join("cache")), Keeping::ForThisRun)
        }
        None => (None, Keeping::Persistent),
    };
    let mut workspace = None;
    let remote_options = RemoteOptions {
        fresh_for: config.index_ttl,
        index_cache_bytes: config.index_cache_bytes,
        prefetch_workers: config.prefetch_workers,
        cache_dir,
        cache_keeping,
        wait: config.upstream_timeout,
        token: None,
    };
    let specs = config.layer_specs();
    let remote_count = specs
        .iter()
        .filter(|spec| matches!(spec, LayerSpec::CratesIo | LayerSpec::Remote { .. }))
        .count();
    let mut upstream = None;
    let mut remote = |index: &str,
                      api: Option<&str>,
                      token_file: Option<&Path>|
     -> Result<Box<dyn Layer>, AppError> {
        let client = match &upstream {
            Some(client) => Arc::clone(client),
            None => {
                let client = Arc::new(Upstream::new(upstream_options).map_err(AppError::Upstream)?);
                upstream = Some(Arc::clone(&client));
                client
            }
        };
        // Two registries may both have a crate of one name: with several remote
        // layers, each keeps its own part of the cache directory.
        let cache_dir = match &remote_options.cache_dir {
            Some(dir) if remote_count > 1 => Some(dir.join(cache_subdirectory(index))),
            other => other.clone(),
        };
        let token = match token_file {
            Some(path) => Some(Tokens::load(path).map_err(AppError::Tokens)?.first()),
            None => None,
        };
        let options = RemoteOptions {
            cache_dir,
            token,
            ..remote_options.clone()
        };
        let layer = RemoteLayer::new(index, api, client, &options).map_err(AppError::Layer)?;
        remote_hosts.extend(layer.hosts());
        Ok(Box::new(layer))
    };
    for (position, spec) in specs.into_iter().enumerate() {
        let layer: Box<dyn Layer> = match spec {
            LayerSpec::LocalTemp => {
                let root = run_dir.path().join(format!("layer-{position}"));
                Box::new(LocalLayer::open_private(root).map_err(AppError::Layer)?)
            }
            LayerSpec::Local(path) if CargoPackageLayer::is_tmp_registry(&path) => {
                Box::new(CargoPackageLayer::new(path))
            }
            LayerSpec::Local(path) => Box::new(LocalLayer::open(path).map_err(AppError::Layer)?),
            LayerSpec::CargoPackage => {
                let read = Workspace::read().map_err(AppError::CargoPackage)?;
                let layer = Box::new(CargoPackageLayer::new(read.tmp_registry()));
                workspace = Some(read);
                layer
            }
            LayerSpec::CratesIo => remote(CRATES_IO_INDEX, Some(CRATES_IO_API), None)?,
            LayerSpec::Remote {
                api,
                index,
                token_file,
            } => {
                // `remote=URL`: the API is whatever the registry's config.json names.
                let api = (api != index).then_some(api.as_str());
                remote(&index, api, token_file.as_deref())?
            }
        };
        layers.push(layer);
    }
    Ok(BuiltLayers {
        workspace,
        layers,
        remote_hosts,
    })
}

/// The part of `--cache DIR` a remote layer keeps when there are several: its index
/// URL without the scheme, every character but letters, digits, `.` and `-` made `_`,
/// e.g. `index.crates.io` or `127.0.0.1_8080_registry`.
fn cache_subdirectory(index_url: &str) -> String {
    let url = index_url.strip_prefix("sparse+").unwrap_or(index_url);
    let uri = url.parse::<Uri>().ok();
    let url = match uri.as_ref().and_then(|uri| Some((uri.authority()?, uri))) {
        Some((authority, uri)) => {
            let path = uri.path_and_query().map_or("", |p| p.as_str());
            format!("{authority}{path}")
        }
        None => url.to_string(),
    };
    let name: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = name.trim_matches('_');
    // Never `.` or `..`, which would name DIR itself or its parent.
    if name.chars().all(|c| c == '.') {
        format!("_{name}")
    } else {
        name.to_string()
    }
}

/// Tells the layers, in the background, which project the command resolves, so
/// prefetching has the whole first round of cargo's questions: `known` if the project
/// was read already, else what `cargo metadata` says. Outside a cargo project there is
/// nothing to tell.
fn expect_workspace(router: Arc<Router>, known: Option<Workspace>) {
    log::debug!("reading the project for prefetching");
    let spawned = thread::Builder::new()
        .name("overlay-workspace".into())
        .spawn(move || match known.map_or_else(Workspace::read, Ok) {
            Ok(workspace) => {
                let members = workspace.members();
                log::debug!("prefetching for the project's {} members", members.len());
                router.stack().expect_members(&members);
                if let Some(cargo_home) = cargo_home() {
                    router.stack().expect_downloads(&Project {
                        lockfile: workspace.lockfile(),
                        cargo_home,
                    });
                }
            }
            Err(e) => log::debug!("no project to prefetch for: {}", Report(&e)),
        });
    if let Err(e) = spawned {
        log::debug!("cannot read the project for prefetching: {e}");
    }
}

/// A CA when anything needs one: proxy mode, our own listener certificate, or asking
/// for the CA by `--ca-cert-out` or `--ca-dir`. The in-memory CA is name-constrained
/// to what it will sign for: the `intercepted` hosts in proxy mode, and the names of
/// the listener's certificate.
fn load_ca(
    config: &Config,
    intercepted: &[String],
) -> Result<Option<Arc<CertificateAuthority>>, AppError> {
    let needed = config.proxy
        || (config.tls && config.tls_cert.is_none())
        || config.ca_cert_out.is_some()
        || config.ca_dir.is_some();
    if !needed {
        return Ok(None);
    }
    let ca = match &config.ca_dir {
        Some(dir) => CertificateAuthority::load_or_create(dir)?,
        None => {
            let mut names = tls::listener_names(&config.host);
            if config.proxy {
                names.extend_from_slice(intercepted);
            }
            CertificateAuthority::generate(&names)?
        }
    };
    Ok(Some(Arc::new(ca)))
}

/// The host of `--base-url` (for crates.io, its index and download hosts too), and
/// the hosts of the remote layers, so cargo configured for any of them sees the overlay.
fn intercepted_hosts(base_url: &str, remote_hosts: Vec<String>) -> Vec<String> {
    let host = url_host(base_url).unwrap_or_default();
    let mut hosts = if host == "crates.io" {
        CRATES_IO_HOSTS.iter().map(|h| h.to_string()).collect()
    } else {
        vec![host]
    };
    for remote in remote_hosts {
        if !hosts.contains(&remote) {
            hosts.push(remote);
        }
    }
    hosts
}

/// The tokens writes must carry: `--token-file`'s, or else a random one made for this
/// run. Refuses a listener beyond loopback without a token file, since tokens are all
/// that keeps other machines from writing and from using the proxy.
fn run_tokens(config: &Config, addr: SocketAddr) -> Result<Tokens, AppError> {
    if !addr.ip().is_loopback() && (config.token_file.is_none() || config.anonymous_writes) {
        return Err(AppError::Exposed {
            addr,
            anonymous_writes: config.anonymous_writes,
        });
    }
    match &config.token_file {
        Some(path) => Tokens::load(path),
        None => Tokens::generate(),
    }
    .map_err(AppError::Tokens)
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, AppError> {
    let address_error = |source| AppError::Address {
        host: host.to_string(),
        source,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(address_error)?
        .next()
        .ok_or_else(|| address_error(io::Error::other("it resolves to no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_io_brings_its_index_and_download_hosts() {
        let remote = |hosts: &[&str]| hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(
            intercepted_hosts("https://crates.io", remote(&["index.crates.io"])),
            ["crates.io", "index.crates.io", "static.crates.io"]
        );
        assert_eq!(
            intercepted_hosts(
                "https://Registry.Example:8443/x",
                remote(&["mirror.example"])
            ),
            ["registry.example", "mirror.example"]
        );
        // The one URL parser: user information and ports go, an IPv6 host loses its
        // brackets, as the remote layers' hosts do.
        assert_eq!(
            intercepted_hosts("http://user@[::1]:8080/", Vec::new()),
            ["::1"]
        );
    }

    #[test]
    fn each_remote_layer_has_its_own_cache_subdirectory() {
        assert_eq!(
            cache_subdirectory("https://index.crates.io/"),
            "index.crates.io"
        );
        assert_eq!(
            cache_subdirectory("sparse+http://127.0.0.1:8080/registry/"),
            "127.0.0.1_8080_registry"
        );
        assert_eq!(cache_subdirectory("http://../"), "_..");
    }
}
