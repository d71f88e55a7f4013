//! Wiring: from a [`Config`] to a running server, and back to an exit code.
//!
//! This is where options meet features: layers are built, the listener bound, the
//! environment for cargo printed, and options whose feature is not built yet are
//! refused by name rather than ignored.

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use crate::cli::{Config, DEFAULT_PORT, LayerSpec};
use crate::http::{Server, ServerOptions};
use crate::registry::publish::PublishPolicy;
use crate::registry::{Layer, LayerStack, LocalLayer, RegistryError};
use crate::router::Router;
use crate::signals;

/// The registry name used in the printed `CARGO_REGISTRIES_*` variables.
pub const REGISTRY_NAME: &str = "overlay";

#[derive(Debug)]
pub enum AppError {
    /// An option whose feature has not been built yet.
    NotImplemented(String),
    /// `--host`/`--port` do not name an address.
    Address {
        host: String,
        source: io::Error,
    },
    Bind {
        addr: SocketAddr,
        source: io::Error,
    },
    Layer(RegistryError),
    TempDir {
        base: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::NotImplemented(what) => write!(f, "{what} is not implemented yet"),
            AppError::Address { host, source } => {
                write!(f, "invalid value `{host}` for --host: {source}")
            }
            AppError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            AppError::Layer(e) => write!(f, "cannot open a layer: {e}"),
            AppError::TempDir { base, source } => write!(
                f,
                "cannot create a temporary layer directory in {}: {source}",
                base.display()
            ),
        }
    }
}

impl std::error::Error for AppError {}

/// Runs the overlay until it is told to stop. Returns the process exit code.
pub fn run(config: Config) -> Result<i32, AppError> {
    refuse_unbuilt_features(&config)?;
    let mut temp_dirs = Vec::new();
    let mut layers: Vec<Box<dyn Layer>> = Vec::new();
    for spec in config.layer_specs() {
        let root = match spec {
            LayerSpec::LocalTemp => {
                let dir = TempDir::new()?;
                let root = dir.0.clone();
                temp_dirs.push(dir);
                root
            }
            LayerSpec::Local(path) => path,
            LayerSpec::CratesIo | LayerSpec::Remote { .. } => unreachable!("refused above"),
        };
        layers.push(Box::new(LocalLayer::open(root).map_err(AppError::Layer)?));
    }
    let stack = LayerStack::new(layers, config.read_only);

    let addr = resolve(&config.host, config.port.unwrap_or(DEFAULT_PORT))?;
    let server = Server::bind(addr, ServerOptions::default())
        .map_err(|source| AppError::Bind { addr, source })?;
    let local_addr = server
        .local_addr()
        .map_err(|source| AppError::Bind { addr, source })?;
    let base_url = match &config.base_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{local_addr}"),
    };
    let policy = PublishPolicy {
        permissive: config.permissive_publishing,
        ..PublishPolicy::default()
    };
    let router = Router::new(stack, policy, &base_url);
    for layer in router.stack().layers() {
        log::info!("layer: {}", layer.label());
    }
    log::info!("serving a sparse registry on http://{local_addr}/");

    signals::install();
    thread::Builder::new()
        .name("overlay-listener".into())
        .spawn(move || server.run(Arc::new(router)))
        .expect("the listener thread starts");
    print_environment(&base_url);

    let signal = signals::wait();
    log::info!("stopping on signal {signal}");
    drop(temp_dirs);
    Ok(128 + signal)
}

fn refuse_unbuilt_features(config: &Config) -> Result<(), AppError> {
    let unbuilt = |what: &str| Err(AppError::NotImplemented(what.to_string()));
    if config.proxy {
        return unbuilt("proxy mode (pass --no-proxy to serve a plain sparse registry)");
    }
    if config.tls || config.tls_cert.is_some() || config.tls_key.is_some() {
        return unbuilt("TLS on the listener (pass --no-tls to serve plain HTTP)");
    }
    if config.ca_cert_out.is_some() {
        return unbuilt("--ca-cert-out (it belongs to proxy mode)");
    }
    if !config.command.is_empty() {
        return unbuilt("exec mode (running a command after `--`)");
    }
    if let Some(remote) = config
        .layer_specs()
        .iter()
        .find(|s| matches!(s, LayerSpec::CratesIo | LayerSpec::Remote { .. }))
    {
        let hint = if config.layers.is_empty() {
            " (the default stack includes crates.io; pass -r local or -r local=PATH)"
        } else {
            ""
        };
        return unbuilt(&format!("the remote layer `-r {remote}`{hint}"));
    }
    Ok(())
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

/// Prints what cargo needs, as shell lines ready for `eval`. The token is required by
/// cargo to publish; the overlay does not check it.
fn print_environment(base_url: &str) {
    let var = REGISTRY_NAME.to_ascii_uppercase();
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "export CARGO_REGISTRIES_{var}_INDEX=sparse+{base_url}/"
    );
    let _ = writeln!(out, "export CARGO_REGISTRIES_{var}_TOKEN=overlay");
    let _ = writeln!(
        out,
        "# then: cargo publish --registry {REGISTRY_NAME}, and depend with registry = \"{REGISTRY_NAME}\""
    );
    let _ = out.flush();
}

/// A temporary layer directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, AppError> {
        let base = std::env::temp_dir();
        create_unique_dir(&base)
            .map(TempDir)
            .map_err(|source| AppError::TempDir { base, source })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            log::warn!("could not remove {}: {e}", self.0.display());
        }
    }
}

fn create_unique_dir(base: &Path) -> io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let dir = base.join(format!(
            "cargo-overlay-registry-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary directory name",
    ))
}
