//! Command-line parsing into a [`Config`].
//!
//! Parsing only checks that each argument is well formed and names the bad one when it
//! is not; whether an option's feature is available is decided by `app` when it builds
//! the server, so every option parses the same way from the first release on.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) const DEFAULT_PORT: u16 = 8080;
pub(crate) const DEFAULT_HOST: &str = "127.0.0.1";
pub(crate) const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Like crates.io's CDN.
pub(crate) const DEFAULT_INDEX_TTL: Duration = Duration::from_secs(600);
pub(crate) const DEFAULT_PREFETCH_WORKERS: usize = 32;

/// One `-r` layer, as written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LayerSpec {
    /// `local`: a temporary directory, removed at exit.
    LocalTemp,
    /// `local=PATH`
    Local(PathBuf),
    /// `cargo-package`: cargo's `target/package/tmp-registry`, found from cargo's own
    /// configuration.
    CargoPackage,
    /// `crates.io`
    CratesIo,
    /// `remote=URL` (api = index) or `remote=API,INDEX`, either followed by
    /// `,token-file=FILE`: the token for reads (a registry that requires one) and for
    /// the writes a remote top layer forwards.
    Remote {
        api: String,
        index: String,
        token_file: Option<PathBuf>,
    },
}

impl LayerSpec {
    pub(crate) fn parse(text: &str) -> Result<LayerSpec, CliError> {
        let bad = |why: &str| CliError::BadValue {
            option: "--registry",
            value: text.to_string(),
            why: why.to_string(),
        };
        match text.split_once('=') {
            None if text == "local" => Ok(LayerSpec::LocalTemp),
            None if text == "crates.io" => Ok(LayerSpec::CratesIo),
            None if text == "cargo-package" => Ok(LayerSpec::CargoPackage),
            Some(("local", "")) => Err(bad("`local=` needs a directory")),
            Some(("local", path)) => Ok(LayerSpec::Local(PathBuf::from(path))),
            Some(("remote", urls)) => {
                let (urls, token_file) = match urls.split_once(",token-file=") {
                    Some((_, "")) => return Err(bad("`token-file=` needs a file")),
                    Some((urls, file)) => (urls, Some(PathBuf::from(file))),
                    None => (urls, None),
                };
                let (api, index) = match urls.split_once(',') {
                    Some((api, index)) => (api, index),
                    None => (urls, urls),
                };
                for url in [api, index] {
                    let url = url.strip_prefix("sparse+").unwrap_or(url);
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(bad("remote URLs must start with http:// or https://"));
                    }
                }
                Ok(LayerSpec::Remote {
                    api: api.to_string(),
                    index: index.to_string(),
                    token_file,
                })
            }
            _ => Err(bad(
                "expected `local`, `local=PATH`, `cargo-package`, `crates.io`, `remote=URL` or `remote=API,INDEX`",
            )),
        }
    }
}

impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerSpec::LocalTemp => f.write_str("local"),
            LayerSpec::Local(path) => write!(f, "local={}", path.display()),
            LayerSpec::CargoPackage => f.write_str("cargo-package"),
            LayerSpec::CratesIo => f.write_str("crates.io"),
            LayerSpec::Remote { api, index, .. } if api == index => write!(f, "remote={api}"),
            LayerSpec::Remote { api, index, .. } => write!(f, "remote={api},{index}"),
        }
    }
}

/// Everything the command line says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Config {
    pub(crate) port: Option<u16>,
    pub(crate) host: String,
    pub(crate) base_url: Option<String>,
    /// Top first. Empty means the default stack, `local` over `crates.io`.
    pub(crate) layers: Vec<LayerSpec>,
    pub(crate) proxy: bool,
    pub(crate) read_only: bool,
    pub(crate) ca_cert_out: Option<PathBuf>,
    /// Tokens that publishes and yanks must carry (`--token-file`); without it, a
    /// random token made for the run.
    pub(crate) token_file: Option<PathBuf>,
    /// Publishes and yanks need no token at all (`--anonymous-writes`), on loopback.
    pub(crate) anonymous_writes: bool,
    /// Every request, reads too, must carry one of the tokens (`--auth-required`).
    pub(crate) auth_required: bool,
    /// Where the CA is kept across runs; `None` keeps it in memory only.
    pub(crate) ca_dir: Option<PathBuf>,
    /// The proxy for upstream requests (`--upstream-proxy`).
    pub(crate) upstream_proxy: Option<String>,
    /// The longest one upstream request may take.
    pub(crate) upstream_timeout: Duration,
    /// Where remote layers keep what they fetch (`--cache`).
    pub(crate) cache_dir: Option<PathBuf>,
    /// How long an upstream index file is served from memory before revalidation.
    pub(crate) index_ttl: Duration,
    /// Threads fetching index files ahead of cargo; 0 turns prefetching off.
    pub(crate) prefetch_workers: usize,
    /// Ports a passthrough `CONNECT` may reach, besides 443.
    pub(crate) allow_connect_ports: Vec<u16>,
    pub(crate) permissive_publishing: bool,
    /// The largest `.crate` a publish may upload, in bytes.
    pub(crate) max_upload_size: usize,
    /// The memory each remote layer's index cache may take (`--index-cache-size`).
    pub(crate) index_cache_bytes: usize,
    /// Connections served at once; more get 503 (`--max-connections`).
    pub(crate) max_connections: usize,
    /// How long a kept-alive connection may idle between requests (`--idle-timeout`).
    pub(crate) idle_timeout: Duration,
    /// How long a stop waits for requests in progress (`--shutdown-timeout`).
    pub(crate) shutdown_timeout: Duration,
    pub(crate) tls: bool,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    /// The command after `--`, run with the overlay configured (exec mode).
    pub(crate) command: Vec<OsString>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: None,
            host: DEFAULT_HOST.to_string(),
            base_url: None,
            layers: Vec::new(),
            proxy: true,
            read_only: false,
            ca_cert_out: None,
            ca_dir: None,
            token_file: None,
            anonymous_writes: false,
            auth_required: false,
            allow_connect_ports: Vec::new(),
            upstream_proxy: None,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            cache_dir: None,
            index_ttl: DEFAULT_INDEX_TTL,
            prefetch_workers: DEFAULT_PREFETCH_WORKERS,
            permissive_publishing: false,
            max_upload_size: crate::registry::publish::DEFAULT_MAX_CRATE_LEN,
            index_cache_bytes: 256 << 20,
            max_connections: crate::http::ServerOptions::default().max_connections,
            idle_timeout: crate::http::Limits::default().idle_timeout,
            shutdown_timeout: Duration::from_secs(10),
            tls: true,
            tls_cert: None,
            tls_key: None,
            command: Vec::new(),
        }
    }
}

impl Config {
    /// The layers to build, top first: the ones given, or the default stack.
    pub(crate) fn layer_specs(&self) -> Vec<LayerSpec> {
        if self.layers.is_empty() {
            vec![LayerSpec::LocalTemp, LayerSpec::CratesIo]
        } else {
            self.layers.clone()
        }
    }
}

/// `fetch`: fill a directory from a lockfile.
#[derive(Debug, PartialEq)]
pub(crate) struct FetchConfig {
    pub(crate) lockfile: PathBuf,
    pub(crate) into: PathBuf,
    /// The layers to fetch through, and how to reach upstreams.
    pub(crate) config: Config,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    Serve(Box<Config>),
    Fetch(Box<FetchConfig>),
    Help,
    Version,
}

#[derive(Debug)]
pub(crate) enum CliError {
    /// An option's value is malformed.
    BadValue {
        option: &'static str,
        value: String,
        why: String,
    },
    /// Options that cannot be used together, or one without the other.
    Conflict(String),
    /// Anything lexopt reports: unknown options, missing values.
    Parse(lexopt::Error),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::BadValue { option, value, why } => {
                write!(f, "invalid value `{value}` for {option}: {why}")
            }
            CliError::Conflict(why) => f.write_str(why),
            CliError::Parse(e) => e.fmt(f),
        }
    }
}

/// No source: `BadValue` and `Conflict` say everything, and lexopt's errors already
/// print their cause in their `Display`, so following their `source()` too would say
/// it twice.
impl std::error::Error for CliError {}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> Self {
        CliError::Parse(e)
    }
}

pub(crate) const USAGE: &str = "\
cargo-overlay-registry: a writable layer over read-only Cargo registries

Usage: cargo-overlay-registry [OPTIONS] [[--] COMMAND [ARGS...]]
       cargo overlay-registry [OPTIONS] [[--] COMMAND [ARGS...]]

       cargo-overlay-registry fetch --into DIR [--lockfile Cargo.lock] [-r LAYER...]

With a COMMAND, runs it with the overlay configured and exits with its exit code.
Without one, serves until interrupted and prints the environment to use on stdout.
`fetch` downloads every registry package of a lockfile (through crates.io unless -r
says otherwise) into DIR, a local-registry directory for machines without a network.

Options:
  -p, --port PORT             Port for the registry and proxy [default: 8080; 0 picks a free one]
  -H, --host HOST             Address to bind [default: 127.0.0.1]
  -b, --base-url URL          Public URL written into config.json; in proxy mode its host
                              is intercepted [default: https://crates.io in proxy mode,
                              the listener's own URL with --no-proxy]
  -r, --registry LAYER        Add a layer, top first (repeatable):
                                local            a temporary directory, removed at exit
                                local=PATH       a directory in cargo's local-registry layout
                                cargo-package    cargo's target/package/tmp-registry (read-only;
                                                 only what cargo writes during this run)
                                crates.io        crates.io
                                remote=URL       a sparse registry at URL (its API is the one
                                                 its config.json names)
                                remote=API,INDEX a registry with separate API and index URLs
                                either remote form may end in ,token-file=FILE: FILE's
                                first token is sent as Authorization on every read and,
                                on top, every forwarded publish and yank (a remote top
                                layer without one refuses them)
                              [default: local, then crates.io]
      --upstream-proxy URL    Reach remote layers through this proxy [default: ALL_PROXY,
                              HTTPS_PROXY or HTTP_PROXY, and NO_PROXY, from the environment,
                              unless they name this overlay]
      --upstream-timeout SECS The longest one upstream request may take [default: 30]
      --cache DIR             Keep what remote layers fetch in DIR (a local-registry
                              directory), and serve from it when the upstream is down
      --index-ttl SECS        Serve upstream index files from memory, or from the
                              --cache DIR copy, this long after they were fetched or
                              revalidated, before revalidating them [default: 600]
      --index-cache-size MIB  Memory for each remote layer's index files [default: 256]
      --prefetch N            Threads fetching index files ahead of cargo; 0 turns
                              prefetching off, and exec mode's downloads ahead
                              [default: 32]
      --no-proxy              Serve only as a sparse registry (no CONNECT handling)
      --read-only             Refuse publishes and yanks
      --token-file FILE       Require one of FILE's tokens (one per line) for publishes
                              and yanks, and as the proxy's password where it needs one
                              [default: a random token made for the run, printed with
                              the environment and given to the COMMAND]; needed to
                              listen on an address other machines can reach
      --anonymous-writes      Take publishes and yanks without any token (loopback only):
                              any local user who finds the port can then publish
      --auth-required         Require a --token-file token for every request, reads
                              too, proxy requests included; config.json says
                              auth-required, so cargo sends it
      --ca-cert-out PATH      Write the proxy's CA certificate (never its key) to PATH
      --ca-dir DIR            Keep the CA in DIR (ca.pem, ca-key.pem) across runs, so it can
                              be trusted once [default: a new CA in memory each run]
      --allow-connect-port PORT
                              Let passthrough CONNECT reach PORT as well as 443 (repeatable)
      --permissive-publishing Skip crates.io's metadata checks (names, versions, sizes
                              and the tarball are always checked)
      --max-upload-size BYTES The largest .crate a publish may upload; bigger ones get 413
                              before their body is read; above crates.io's 10485760, a
                              publish is accepted with a warning [default: 10485760]
      --max-connections N     Connections served at once; more get 503 [default: 512]
      --idle-timeout SECS     Close a kept-alive connection idle this long [default: 60]
      --shutdown-timeout SECS On Ctrl-C or SIGTERM, wait this long for requests in
                              progress to finish [default: 10]
      --no-tls                Serve plain HTTP
      --tls-cert PATH         TLS certificate for the listener (PEM)
      --tls-key PATH          TLS private key for the listener (PEM)
  -h, --help                  Print this help
  -V, --version               Print the version

Logging: RUST_LOG (e.g. RUST_LOG=debug); one line per publish, yank and error by default.
";

/// Parses the arguments after the program name. A leading `overlay-registry` (how
/// cargo runs a subcommand) is skipped.
pub(crate) fn parse<I>(args: I) -> Result<Action, CliError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::prelude::*;

    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.first().is_some_and(|a| a == "overlay-registry") {
        args.remove(0);
    }
    let fetch_mode = args.first().is_some_and(|a| a == "fetch");
    if fetch_mode {
        args.remove(0);
    }
    let mut parser = lexopt::Parser::from_args(args);
    let mut config = Config::default();
    let (mut lockfile, mut into) = (PathBuf::from("Cargo.lock"), None);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('p') | Long("port") => {
                let value = parser.value()?.string()?;
                config.port = Some(value.parse().map_err(|_| CliError::BadValue {
                    option: "--port",
                    value: value.clone(),
                    why: "expected a port number from 0 to 65535".into(),
                })?);
            }
            Short('H') | Long("host") => config.host = parser.value()?.string()?,
            Short('b') | Long("base-url") => {
                let value = parser.value()?.string()?;
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    return Err(CliError::BadValue {
                        option: "--base-url",
                        value,
                        why: "expected a URL starting with http:// or https://".into(),
                    });
                }
                config.base_url = Some(value);
            }
            Short('r') | Long("registry") => {
                let value = parser.value()?.string()?;
                config.layers.push(LayerSpec::parse(&value)?);
            }
            Long("no-proxy") => config.proxy = false,
            Long("read-only") => config.read_only = true,
            Long("ca-cert-out") => config.ca_cert_out = Some(parser.value()?.into()),
            Long("ca-dir") => config.ca_dir = Some(parser.value()?.into()),
            Long("token-file") => config.token_file = Some(parser.value()?.into()),
            Long("anonymous-writes") => config.anonymous_writes = true,
            Long("auth-required") => config.auth_required = true,
            Long("upstream-proxy") => config.upstream_proxy = Some(parser.value()?.string()?),
            Long("upstream-timeout") => {
                let secs = number(&mut parser, "--upstream-timeout", 1)?;
                config.upstream_timeout = Duration::from_secs(secs);
            }
            Long("index-ttl") => {
                config.index_ttl = Duration::from_secs(number(&mut parser, "--index-ttl", 0)?);
            }
            Long("prefetch") => {
                let workers = number(&mut parser, "--prefetch", 0)?;
                config.prefetch_workers = usize::try_from(workers.min(256)).unwrap_or(256);
            }
            Long("cache") => config.cache_dir = Some(parser.value()?.into()),
            Long("allow-connect-port") => {
                let value = parser.value()?.string()?;
                let port = value
                    .parse()
                    .ok()
                    .filter(|&port: &u16| port != 0)
                    .ok_or_else(|| CliError::BadValue {
                        option: "--allow-connect-port",
                        value: value.clone(),
                        why: "expected a port number from 1 to 65535".into(),
                    })?;
                config.allow_connect_ports.push(port);
            }
            Long("permissive-publishing") => config.permissive_publishing = true,
            Long("max-upload-size") => {
                let bytes = number(&mut parser, "--max-upload-size", 1)?;
                config.max_upload_size =
                    usize::try_from(bytes.min(u32::MAX.into())).unwrap_or(usize::MAX);
            }
            Long("index-cache-size") => {
                let mib = number(&mut parser, "--index-cache-size", 1)?;
                config.index_cache_bytes =
                    usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
            }
            Long("max-connections") => {
                let connections = number(&mut parser, "--max-connections", 1)?;
                config.max_connections = usize::try_from(connections).unwrap_or(usize::MAX);
            }
            Long("idle-timeout") => {
                let secs = number(&mut parser, "--idle-timeout", 1)?;
                config.idle_timeout = Duration::from_secs(secs);
            }
            Long("shutdown-timeout") => {
                let secs = number(&mut parser, "--shutdown-timeout", 0)?;
                config.shutdown_timeout = Duration::from_secs(secs);
            }
            Long("no-tls") => config.tls = false,
            Long("tls-cert") => config.tls_cert = Some(parser.value()?.into()),
            Long("tls-key") => config.tls_key = Some(parser.value()?.into()),
            Long("lockfile") if fetch_mode => lockfile = parser.value()?.into(),
            Long("into") if fetch_mode => into = Some(parser.value()?.into()),
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('V') | Long("version") => return Ok(Action::Version),
            Value(value) if !fetch_mode => {
                // Everything from the first free argument on is the command; `--`
                // makes that explicit and lets the command take options of its own.
                config.command.push(value);
                config.command.extend(parser.raw_args()?);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if config.auth_required && config.token_file.is_none() {
        return Err(CliError::Conflict(
            "--auth-required needs --token-file: the tokens every request must carry".into(),
        ));
    }
    if config.anonymous_writes && config.token_file.is_some() {
        return Err(CliError::Conflict(
            "--anonymous-writes and --token-file contradict each other: writes need no token, \
             or one of the file's"
                .into(),
        ));
    }
    match (&config.tls_cert, &config.tls_key) {
        (Some(_), None) | (None, Some(_)) => {
            return Err(CliError::Conflict(
                "--tls-cert and --tls-key go together: give both or neither".into(),
            ));
        }
        (Some(_), Some(_)) if !config.tls => {
            return Err(CliError::Conflict(
                "--tls-cert and --tls-key configure TLS, which --no-tls turns off".into(),
            ));
        }
        _ => {}
    }
    if fetch_mode {
        let into = into.ok_or_else(|| {
            CliError::Conflict("fetch needs --into DIR: where to put the crates".into())
        })?;
        if config.layers.is_empty() {
            config.layers.push(LayerSpec::CratesIo);
        }
        return Ok(Action::Fetch(Box::new(FetchConfig {
            lockfile,
            into,
            config,
        })));
    }
    Ok(Action::Serve(Box::new(config)))
}

/// The next value as a whole number of at least `min`.
fn number(parser: &mut lexopt::Parser, option: &'static str, min: u64) -> Result<u64, CliError> {
    use lexopt::ValueExt;
    let value = parser.value()?.string()?;
    value
        .parse()
        .ok()
        .filter(|&n: &u64| n >= min)
        .ok_or_else(|| CliError::BadValue {
            option,
            value: value.clone(),
            why: format!("expected a whole number, at least {min}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        match parse(args.iter().copied()).unwrap() {
            Action::Serve(config) => *config,
            other => panic!("expected Serve, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_safe() {
        let c = config(&[]);
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, None);
        assert!(c.proxy && c.tls && !c.read_only);
        assert_eq!(c.layer_specs(), [LayerSpec::LocalTemp, LayerSpec::CratesIo]);
    }

    #[test]
    fn parses_every_option() {
        let c = config(&[
            "overlay-registry",
            "-p",
            "9000",
            "-H",
            "0.0.0.0",
            "-b",
            "https://reg.example",
            "-r",
            "local=/tmp/a",
            "--registry=remote=https://api.example,sparse+https://index.example/",
            "-r",
            "remote=https://private.example/,token-file=/run/token",
            "--max-connections",
            "64",
            "--index-cache-size",
            "16",
            "--idle-timeout",
            "5",
            "--shutdown-timeout",
            "0",
            "-r",
            "crates.io",
            "--no-proxy",
            "--read-only",
            "--ca-cert-out",
            "ca.pem",
            "--ca-dir",
            "ca",
            "--allow-connect-port",
            "8443",
            "-r",
            "cargo-package",
            "--permissive-publishing",
            "--anonymous-writes",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--",
            "cargo",
            "publish",
            "--workspace",
        ]);
        assert_eq!(c.port, Some(9000));
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.base_url.as_deref(), Some("https://reg.example"));
        assert_eq!(
            c.layers,
            [
                LayerSpec::Local("/tmp/a".into()),
                LayerSpec::Remote {
                    api: "https://api.example".into(),
                    index: "sparse+https://index.example/".into(),
                    token_file: None,
                },
                LayerSpec::Remote {
                    api: "https://private.example/".into(),
                    index: "https://private.example/".into(),
                    token_file: Some("/run/token".into()),
                },
                LayerSpec::CratesIo,
                LayerSpec::CargoPackage,
            ]
        );
        assert_eq!(c.ca_dir, Some("ca".into()));
        assert_eq!(c.allow_connect_ports, [8443]);
        assert!(!c.proxy && c.read_only && c.permissive_publishing && c.tls);
        assert!(c.anonymous_writes);
        assert_eq!(c.ca_cert_out, Some("ca.pem".into()));
        assert_eq!(c.tls_cert, Some("c.pem".into()));
        assert_eq!(c.tls_key, Some("k.pem".into()));
        assert_eq!(c.max_connections, 64);
        assert_eq!(c.index_cache_bytes, 16 << 20);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.shutdown_timeout, Duration::ZERO);
        assert_eq!(c.command, ["cargo", "publish", "--workspace"]);
    }

    #[test]
    fn names_the_bad_argument() {
        let err = |args: &[&str]| parse(args.iter().copied()).unwrap_err().to_string();
        assert!(err(&["--port", "http"]).contains("--port"));
        assert!(err(&["-r", "nfs=/x"]).contains("--registry"));
        assert!(err(&["-r", "remote=ftp://x"]).contains("http://"));
        assert!(err(&["-r", "remote=https://x/,token-file="]).contains("token-file"));
        assert!(err(&["--auth-required"]).contains("--token-file"));
        assert!(err(&["--anonymous-writes", "--token-file", "t"]).contains("--anonymous-writes"));
        assert!(err(&["--max-connections", "0"]).contains("--max-connections"));
        assert!(err(&["--idle-timeout", "0"]).contains("--idle-timeout"));
        assert!(err(&["--bogus"]).contains("--bogus"));
        assert!(err(&["--base-url", "example.com"]).contains("--base-url"));
        assert!(err(&["--tls-cert", "c.pem"]).contains("--tls-key"));
        assert!(err(&["--no-tls", "--tls-cert", "c", "--tls-key", "k"]).contains("--no-tls"));
    }

    #[test]
    fn parses_fetch() {
        let action = parse(["fetch", "--into", "out", "--lockfile", "x/Cargo.lock"]).unwrap();
        let Action::Fetch(fetch) = action else {
            panic!("expected Fetch");
        };
        assert_eq!(fetch.into, PathBuf::from("out"));
        assert_eq!(fetch.lockfile, PathBuf::from("x/Cargo.lock"));
        assert_eq!(fetch.config.layers, [LayerSpec::CratesIo]);
        assert!(parse(["fetch"]).unwrap_err().to_string().contains("--into"));
        assert!(parse(["--into", "x"]).is_err(), "--into belongs to fetch");
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(["--help"]).unwrap(), Action::Help);
        assert_eq!(parse(["-V"]).unwrap(), Action::Version);
    }
}
