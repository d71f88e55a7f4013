//! The library's public surface: an overlay run in-process, for toolchains that vendor
//! this crate rather than start the binary.
//!
//! [`Overlay::builder`] takes layers in the syntax of the command line's `-r` and a
//! few options; [`OverlayBuilder::start`] builds the stack, binds the listener and
//! serves on background threads; [`Overlay::env`] gives the variables cargo needs
//! (the ones the binary prints); [`Overlay::stop`] drains the requests in progress,
//! ends the listener and removes the run directory. It is the same start-up as the
//! binary's (`app::start`), without signal handlers, printing or exec mode.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::app::{self, AppError};
use crate::cli::{Config, LayerSpec};

/// Builds an [`Overlay`]. The defaults suit an embedder: plain HTTP on an ephemeral
/// loopback port, no proxy, and no layers but the ones given (none means the binary's
/// default, a temporary local layer over crates.io).
#[derive(Debug)]
pub struct OverlayBuilder {
    config: Config,
}

impl OverlayBuilder {
    /// Adds a layer below those added so far (the first is the top, where publishes
    /// go), in the syntax of `-r`: `local`, `local=DIR`, `crates.io`, `cargo-package`,
    /// `remote=URL[,INDEX_URL][,token-file=FILE]`.
    pub fn layer(mut self, spec: &str) -> Result<Self, Error> {
        let spec = LayerSpec::parse(spec).map_err(|e| Error::new(ErrorKind::InvalidLayer, e))?;
        self.config.layers.push(spec);
        Ok(self)
    }

    /// The address to listen on (default `127.0.0.1`). Beyond loopback a token file
    /// is required, as on the command line.
    pub fn host(mut self, host: &str) -> Self {
        self.config.host = host.to_string();
        self
    }

    /// The port to listen on (default 0: any free port; see [`Overlay::addr`]).
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = Some(port);
        self
    }

    /// Refuse publishes and yanks (`--read-only`).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.config.read_only = read_only;
        self
    }

    /// Also serve as cargo's HTTPS proxy (the binary's default; off here). Implies TLS.
    pub fn proxy(mut self, proxy: bool) -> Self {
        self.config.proxy = proxy;
        self.config.tls |= proxy;
        self
    }

    /// Where remote layers keep what they fetch (`--cache DIR`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.cache_dir = Some(dir.into());
        self
    }

    /// The tokens writes must carry (`--token-file`); without one, a random token is
    /// made for the run and handed to cargo in [`Overlay::env`].
    pub fn token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.token_file = Some(path.into());
        self
    }

    /// How long [`Overlay::stop`] waits for requests in progress (default 10 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Builds the layers, binds the listener and starts serving in the background.
    pub fn start(self) -> Result<Overlay, Error> {
        let started = app::start(&self.config).map_err(Error::from)?;
        Ok(Overlay {
            started: Some(started),
            shutdown_timeout: self.config.shutdown_timeout,
        })
    }
}

/// A running overlay. Dropping it stops it as [`Overlay::stop`] does.
///
/// The shutdown state of the HTTP layer is process-wide: run one overlay at a time
/// in a process.
pub struct Overlay {
    started: Option<app::Started>,
    shutdown_timeout: Duration,
}

impl fmt::Debug for Overlay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overlay")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Overlay {
    /// A builder with the embedding defaults.
    pub fn builder() -> OverlayBuilder {
        OverlayBuilder {
            config: Config {
                port: Some(0),
                proxy: false,
                tls: false,
                ..Config::default()
            },
        }
    }

    fn started(&self) -> &app::Started {
        self.started.as_ref().expect("a running overlay")
    }

    /// The address the listener is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.started().local_addr
    }

    /// The listener's URL, e.g. `http://127.0.0.1:41234`; the sparse index is at
    /// `sparse+{url}/`.
    pub fn url(&self) -> &str {
        &self.started().environment.listener_url
    }

    /// The environment variables cargo needs to use the overlay, in the order the
    /// binary prints them: `CARGO_REGISTRIES_OVERLAY_INDEX` and `_TOKEN`, and with the
    /// proxy on `CARGO_HTTP_PROXY`, `CARGO_REGISTRY_TOKEN` and the CA bundle.
    pub fn env(&self) -> Vec<(String, String)> {
        self.started().environment.vars()
    }

    /// Stops taking connections, waits for the requests in progress (up to the
    /// shutdown timeout), ends the listener and removes the run directory with any
    /// temporary layer. Returns how many requests were still unfinished.
    pub fn stop(mut self) -> usize {
        self.stop_now()
    }

    fn stop_now(&mut self) -> usize {
        self.started
            .take()
            .map_or(0, |started| started.stop(self.shutdown_timeout))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A layer spec is malformed.
    InvalidLayer,
    /// The host does not name an address.
    Address,
    /// The listener could not be bound.
    Bind,
    /// A listener beyond loopback without a token file.
    Exposed,
    /// A layer could not be opened.
    Layer,
    /// The run directory could not be created.
    RunDir,
    /// The CA or a TLS configuration could not be made.
    Tls,
    /// The upstream client could not be set up.
    Upstream,
    /// The token file could not be read.
    Tokens,
    /// Anything else.
    Other,
}

/// Why an overlay could not be built or started.
///
/// Its `Display` says what failed (`cannot listen on 127.0.0.1:8080`); the cause, such
/// as the I/O error, is its [`source`](std::error::Error::source), not repeated in the
/// text. Print the whole chain to show a person everything.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    inner: Box<dyn std::error::Error + Send + Sync>,
}

impl Error {
    fn new(kind: ErrorKind, inner: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error {
            kind,
            inner: Box::new(inner),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl From<AppError> for Error {
    fn from(e: AppError) -> Error {
        let kind = match &e {
            AppError::Address { .. } => ErrorKind::Address,
            AppError::Bind { .. } => ErrorKind::Bind,
            AppError::Exposed { .. } => ErrorKind::Exposed,
            AppError::Layer(_) | AppError::CargoPackage(_) => ErrorKind::Layer,
            AppError::RunDir { .. } => ErrorKind::RunDir,
            AppError::Tls(_) => ErrorKind::Tls,
            AppError::Upstream(_) => ErrorKind::Upstream,
            AppError::Tokens(_) => ErrorKind::Tokens,
            AppError::Lockfile { .. } | AppError::Fetch(_) | AppError::Command { .. } => {
                ErrorKind::Other
            }
        };
        Error::new(kind, e)
    }
}
