//! Test harness: the real binary on a loopback port, real cargo with a fresh
//! `CARGO_HOME`, fixture crates written on the fly, and a raw HTTP client for checks
//! cargo cannot express. Nothing here needs the network.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cargo-overlay-registry");

/// Whether a test that needs the real crates.io may run: only with
/// `OVERLAY_TEST_CRATES_IO=1`. Otherwise it says, loudly, that `test` is skipped.
pub fn reaches_crates_io(test: &str) -> bool {
    let allowed = std::env::var_os("OVERLAY_TEST_CRATES_IO").is_some();
    if !allowed {
        eprintln!("SKIPPED {test}: set OVERLAY_TEST_CRATES_IO=1 to run it (needs crates.io)");
    }
    allowed
}

/// Puts `path`'s modification time a minute back: past the second in which the
/// overlay does not trust a file's identity (`registry/rendered.rs`), so that what it
/// renders from the file is kept in memory.
pub fn settle(path: &Path) {
    let file = fs::File::options().append(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
}

/// A scratch directory under cargo's target dir, unique per test, emptied at start.
pub fn scratch(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the overlay logs when it has swept a local layer for temporary files that
/// crashed writers left: at info level when it removed some, else at debug level.
const SWEPT: &str = "temporary files left by an interrupted write";

/// Waits until the overlay logging to `log` has swept its local layer for temporary
/// files that crashed writers left, which it does in the background after start-up.
pub fn wait_for_sweep_logged_in(log: &Path) {
    wait_until("the sweep of temporary files to end", || {
        fs::read_to_string(log).is_ok_and(|log| log.contains(SWEPT))
    });
}

/// Checks `done` every few milliseconds until it holds; panics after 10 s, saying what
/// it was waiting for.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A running overlay. Stopped (SIGTERM, then waited for) when dropped.
pub struct Overlay {
    child: Child,
    pub addr: SocketAddr,
    /// The environment it printed for cargo, in order.
    pub env: Vec<(String, String)>,
    stderr_log: PathBuf,
}

impl Overlay {
    /// Starts a plain sparse registry (`--no-proxy --no-tls -p 0`) with `args` added.
    pub fn start(args: &[&str]) -> Overlay {
        let mut all = vec!["--no-proxy", "--no-tls", "-p", "0"];
        all.extend_from_slice(args);
        Overlay::start_with(&all)
    }

    /// Starts the overlay with exactly `args` (add `-p 0`).
    pub fn start_with(args: &[&str]) -> Overlay {
        Overlay::try_start(args).unwrap_or_else(|log| panic!("overlay did not start:\n{log}"))
    }

    /// Like `start_with`, but returns the server's stderr when it exits instead of
    /// serving.
    pub fn try_start(args: &[&str]) -> Result<Overlay, String> {
        Overlay::try_start_env(args, &[])
    }

    /// Like `start`, with `env` added to the server's environment.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Overlay {
        let mut all = vec!["--no-proxy", "--no-tls", "-p", "0"];
        all.extend_from_slice(args);
        Overlay::try_start_env(&all, env)
            .unwrap_or_else(|log| panic!("overlay did not start:\n{log}"))
    }

    /// Like `try_start`, with `env` added to the server's environment.
    pub fn try_start_env(args: &[&str], env: &[(&str, &str)]) -> Result<Overlay, String> {
        Overlay::try_start_program(BIN, args, env)
    }

    /// Starts another build of the overlay, at `program`, with exactly `args`: a
    /// benchmark's baseline.
    pub fn start_program(program: &str, args: &[&str]) -> Overlay {
        Overlay::try_start_program(program, args, &[])
            .unwrap_or_else(|log| panic!("{program} did not start:\n{log}"))
    }

    fn try_start_program(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Overlay, String> {
        let stderr_log = scratch("overlay-log").join("stderr.log");
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            // Debug logs let tests see each request; benchmarks set RUST_LOG=warn.
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "debug".into()),
            )
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("the overlay binary starts");
        let Some(env) = read_environment(child.stdout.take().unwrap()) else {
            let _ = child.wait();
            return Err(fs::read_to_string(&stderr_log).unwrap_or_default());
        };
        let addr = listen_address(&env);
        Ok(Overlay {
            child,
            addr,
            env,
            stderr_log,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A variable the overlay printed.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The token it accepts for writes, as it printed it for cargo: `--token-file`'s
    /// first, or the random one it made for the run.
    pub fn token(&self) -> &str {
        self.var("CARGO_REGISTRIES_OVERLAY_TOKEN")
            .expect("the overlay prints its token")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// See [`wait_for_sweep_logged_in`].
    pub fn wait_for_sweep(&self) {
        wait_for_sweep_logged_in(&self.stderr_log);
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        self.terminate()
    }

    /// Sends `signal` (a name `kill` takes, e.g. `HUP`) and waits; returns the exit code.
    pub fn stop_with(mut self, signal: &str) -> Option<i32> {
        self.signal_and_wait(signal)
    }

    fn terminate(&mut self) -> Option<i32> {
        self.signal_and_wait("TERM")
    }

    fn signal_and_wait(&mut self, signal: &str) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http(self.addr, "GET", path, &[], b"")
    }

    /// A publish of an upload body built by hand, with the run's write token.
    pub fn publish_raw(&self, body: &[u8]) -> HttpResponse {
        http(
            self.addr,
            "PUT",
            "/api/v1/crates/new",
            &[
                ("Authorization", self.token()),
                ("Accept", "application/json"),
            ],
            body,
        )
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// The one error detail of a refused upload (400), in cargo's JSON error shape.
pub fn refusal(response: &HttpResponse) -> String {
    assert_eq!(response.status, 400, "{}", response.text());
    let json = response.json();
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{json}");
    errors[0]["detail"].as_str().unwrap().to_string()
}

/// The detail of a refusal in cargo's `{"errors":[{"detail":...}]}` shape.
pub fn detail(response: &HttpResponse) -> String {
    response.json()["errors"][0]["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no errors[0].detail in {}", response.text()))
        .to_string()
}

/// Asserts a refusal: its status, and cargo's error shape with a detail containing
/// `text`. `what` names the case in a failure.
pub fn assert_error(what: &str, response: &HttpResponse, status: u16, text: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    let detail = detail(response);
    assert!(
        detail.contains(text),
        "{what}: expected {text:?} in {detail:?}"
    );
}

/// Asserts the overlay still answers `config.json`, within a second.
pub fn assert_still_serving(overlay: &Overlay) {
    let start = Instant::now();
    let response = overlay.get("/config.json");
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.json()["dl"].is_string());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

/// A server on loopback that echoes every byte back until the client closes; its port.
pub fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let _ = std::io::copy(&mut reader, &mut stream);
            });
        }
    });
    port
}

/// A client connection with read and write timeouts, for raw requests.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// One request on a fresh connection, read until the server closes it.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    exchange(stream, &addr.to_string(), method, path, headers, body)
}

/// A GET of `path` on a fresh TLS connection to the listener at `addr`, trusting the
/// CA certificates in `ca_file`.
pub fn https_get(ca_file: &Path, addr: SocketAddr, path: &str) -> HttpResponse {
    let tls = tls_stream(ca_file, addr).unwrap();
    exchange(tls, &addr.to_string(), "GET", path, &[], b"")
}

/// A TLS connection to the listener at `addr`, trusting only `ca_file`, with a read
/// timeout of 30 s; the handshake happens on its first read or write.
pub fn tls_stream(
    ca_file: &Path,
    addr: SocketAddr,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let session =
        rustls::ClientConnection::new(std::sync::Arc::new(client_tls_config(ca_file)), name)
            .unwrap();
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(rustls::StreamOwned::new(session, stream))
}

/// Sends one request with `Connection: close` and reads the answer until the server
/// closes the connection (a TLS peer may close without `close_notify`).
fn exchange(
    mut stream: impl Read + Write,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        assert!(
            e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty(),
            "{e}"
        );
    }
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Real cargo with its own `CARGO_HOME` and the environment an overlay printed, so
/// it reaches the overlay as registry `overlay` and, in proxy mode, as crates.io.
pub struct Cargo {
    home: PathBuf,
    env: Vec<(String, String)>,
}

impl Cargo {
    pub fn new(overlay: &Overlay) -> Cargo {
        Cargo {
            home: scratch("cargo-home"),
            env: overlay.env.clone(),
        }
    }

    /// Cargo for a registry at `index_url` that need not be running.
    pub fn for_index(index_url: &str) -> Cargo {
        Cargo {
            home: scratch("cargo-home"),
            env: vec![
                ("CARGO_REGISTRIES_OVERLAY_INDEX".into(), index_url.into()),
                ("CARGO_REGISTRIES_OVERLAY_TOKEN".into(), "test-token".into()),
            ],
        }
    }

    /// Cargo with no overlay configured: for exec mode, where the overlay sets it up.
    pub fn plain() -> Cargo {
        Cargo {
            home: scratch("cargo-home"),
            env: Vec::new(),
        }
    }

    /// Its `CARGO_HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// This cargo with `toml` as its `$CARGO_HOME/config.toml`.
    pub fn with_config(self, toml: &str) -> Cargo {
        fs::write(self.home.join("config.toml"), toml).unwrap();
        self
    }

    /// `program` run in `dir` with this cargo's environment, isolated from the cargo
    /// running the tests.
    pub fn isolated(&self, program: &str, dir: &Path) -> Command {
        let mut command = Command::new(program);
        // What the tests' own environment says goes first; the overlay's settings
        // (a proxy among them) then apply on top.
        command
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_MAKEFLAGS")
            .env_remove("CARGO_HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .envs(self.env.iter().map(|(n, v)| (n, v)))
            .env("CARGO_HOME", &self.home)
            .env("CARGO_TERM_COLOR", "never")
            .env("CARGO_NET_RETRY", "0");
        if !self.env.iter().any(|(n, _)| n == "CARGO_REGISTRY_TOKEN") {
            command.env_remove("CARGO_REGISTRY_TOKEN");
        }
        command
    }

    /// A cargo command run in `dir`.
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = self.isolated("cargo", dir);
        command.args(args);
        command
    }

    /// `cargo-overlay-registry OVERLAY_ARGS -- cargo CARGO_ARGS` (exec mode) in `dir`.
    pub fn exec(&self, dir: &Path, overlay_args: &[&str], cargo_args: &[&str]) -> CargoOutput {
        self.exec_program(BIN, dir, overlay_args, cargo_args)
    }

    /// [`exec`](Self::exec) with the overlay binary at `program` (a benchmark's older
    /// build).
    pub fn exec_program(
        &self,
        program: &str,
        dir: &Path,
        overlay_args: &[&str],
        cargo_args: &[&str],
    ) -> CargoOutput {
        let mut command = self.exec_command(program, dir, overlay_args, cargo_args);
        CargoOutput(command.output().expect("the overlay runs"))
    }

    /// The command [`exec_program`](Self::exec_program) runs, for a test that adds to
    /// it.
    pub fn exec_command(
        &self,
        program: &str,
        dir: &Path,
        overlay_args: &[&str],
        cargo_args: &[&str],
    ) -> Command {
        let mut command = self.isolated(program, dir);
        command
            .args(overlay_args)
            .arg("--")
            .arg("cargo")
            .args(cargo_args);
        command
    }

    pub fn run(&self, dir: &Path, args: &[&str]) -> CargoOutput {
        CargoOutput(self.command(dir, args).output().expect("cargo runs"))
    }

    /// Runs cargo and panics with its output unless it succeeds.
    pub fn ok(&self, dir: &Path, args: &[&str]) -> CargoOutput {
        let out = self.run(dir, args);
        assert!(
            out.0.status.success(),
            "cargo {args:?} failed:\n{}",
            out.all()
        );
        out
    }

    /// Runs cargo and panics unless it fails.
    pub fn fails(&self, dir: &Path, args: &[&str]) -> CargoOutput {
        let out = self.run(dir, args);
        assert!(
            !out.0.status.success(),
            "cargo {args:?} succeeded:\n{}",
            out.all()
        );
        out
    }

    /// `cargo publish --registry overlay` of the crate in `dir`, without the verify
    /// build (the tests check the registry, not the fixture's compilation).
    pub fn publish(&self, dir: &Path) -> CargoOutput {
        self.ok(dir, PUBLISH)
    }

    /// Like `publish`, but panics unless the publish fails.
    pub fn publish_fails(&self, dir: &Path) -> CargoOutput {
        self.fails(dir, PUBLISH)
    }
}

/// The arguments of a publish to the overlay, as `Cargo::publish` runs it.
pub const PUBLISH: &[&str] = &[
    "publish",
    "--registry",
    "overlay",
    "--no-verify",
    "--allow-dirty",
];

/// The `-r` value for a local layer in `dir`.
pub fn local_layer(dir: &Path) -> String {
    format!("local={}", dir.display())
}

pub struct CargoOutput(pub Output);

impl CargoOutput {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    pub fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout(), self.stderr())
    }

    /// Panics unless stderr contains `text`.
    pub fn assert_stderr_has(&self, text: &str) {
        assert!(
            self.stderr().contains(text),
            "expected {text:?} in:\n{}",
            self.all()
        );
    }
}

/// A fixture crate on disk.
pub struct Fixture {
    pub dir: PathBuf,
}

impl Fixture {
    /// A library crate `name`@`version` with valid crates.io metadata whose `value()`
    /// returns `value`.
    pub fn library(parent: &Path, name: &str, version: &str, value: &str) -> Fixture {
        Fixture::crate_with(
            parent,
            name,
            version,
            "",
            &format!("pub fn value() -> String {{ {value:?}.to_string() }}\n"),
        )
    }

    /// A library crate with `deps` as the body of `[dependencies]`.
    pub fn crate_with(
        parent: &Path,
        name: &str,
        version: &str,
        deps: &str,
        lib_rs: &str,
    ) -> Fixture {
        let dir = parent.join(format!("{name}-{version}"));
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
                 description = \"The {name} fixture crate\"\nlicense = \"MIT\"\n\n\
                 [dependencies]\n{deps}\n"
            ),
        )
        .unwrap();
        fs::write(dir.join("src/lib.rs"), lib_rs).unwrap();
        Fixture { dir }
    }

    /// A binary crate whose `main` is `main_rs`, with `deps` as `[dependencies]`.
    pub fn binary(parent: &Path, name: &str, deps: &str, main_rs: &str) -> Fixture {
        let dir = parent.join(name);
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
                 [dependencies]\n{deps}\n"
            ),
        )
        .unwrap();
        fs::write(dir.join("src/main.rs"), main_rs).unwrap();
        Fixture { dir }
    }

    /// A library crate whose manifest has no description and no license.
    pub fn bare(parent: &Path, name: &str) -> Fixture {
        let fixture = Fixture::library(parent, name, "0.1.0", "bare");
        fixture.write(
            "Cargo.toml",
            &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        );
        fixture
    }

    pub fn write(&self, path: &str, text: &str) {
        let path = self.dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

/// The SHA-256 of a file, as `sha256sum` prints it.
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The lines of an index file as JSON values.
pub fn index_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Copies the directory tree `from` into `to`, leaving out `target` directories.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&source, &dest);
            }
        } else {
            fs::copy(&source, &dest).unwrap();
        }
    }
}

/// The example workspace of the README, copied to a scratch directory.
pub fn example_workspace(parent: &Path) -> PathBuf {
    let dir = parent.join("workspace");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workspace"),
        &dir,
    );
    dir
}

/// A `[dependencies]` line on a crate in the registry named `overlay`.
pub fn dep(name: &str, req: &str) -> String {
    format!("{name} = {{ version = \"{req}\", registry = \"overlay\" }}\n")
}

/// The `export NAME=VALUE` lines an overlay prints on start, read up to its `# ready`
/// line; `None` if it exits first.
pub fn read_environment(stdout: std::process::ChildStdout) -> Option<Vec<(String, String)>> {
    let mut stdout = BufReader::new(stdout);
    let mut env = Vec::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            return None;
        }
        if line.starts_with('#') {
            return Some(env);
        }
        let (name, value) = line
            .trim()
            .strip_prefix("export ")
            .and_then(|l| l.split_once('='))
            .unwrap_or_else(|| panic!("unexpected output line {line:?}"));
        env.push((name.to_string(), value.trim_matches('\'').to_string()));
    }
}

/// The listener's address, from the index URL the overlay prints first.
pub fn listen_address(env: &[(String, String)]) -> SocketAddr {
    env[0]
        .1
        .split("://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// A TLS client configuration trusting only the CA certificates in `ca_file` (as
/// written by `--ca-cert-out` or `--ca-dir`), with the ring provider.
pub fn client_tls_config(ca_file: &Path) -> rustls::ClientConfig {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth()
}

/// A gzipped tar of `(path, type, data, link target)` entries, written by the `tar`
/// crate.
pub fn crate_file(entries: &[(&str, u8, &str, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, kind, data, link) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_entry_type(tar::EntryType::new(*kind));
        if link.is_empty() {
            tar.append_data(&mut header, path, data.as_bytes()).unwrap();
        } else {
            tar.append_link(&mut header, path, link).unwrap();
        }
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

pub fn manifest(name: &str, version: &str) -> String {
    format!(
        "[package]\nedition = \"2021\"\nname = \"{name}\"\nversion = \"{version}\"\n\
         description = \"raw\"\nlicense = \"MIT\"\n"
    )
}

/// The upload body cargo sends: `u32` LE JSON length, JSON, `u32` LE crate length, crate.
pub fn upload(name: &str, version: &str, crate_bytes: &[u8]) -> Vec<u8> {
    upload_with(&upload_metadata(name, version), crate_bytes)
}

/// The publish metadata `upload` sends for `name`@`version`, for tests to change.
pub fn upload_metadata(name: &str, version: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "vers": version, "deps": [], "features": {}, "authors": [],
        "description": "raw", "license": "MIT", "keywords": [], "categories": [],
        "badges": {}, "links": null, "rust_version": null,
    })
}

/// An upload body of `metadata` and `crate_bytes`, framed as cargo frames it.
pub fn upload_with(metadata: &serde_json::Value, crate_bytes: &[u8]) -> Vec<u8> {
    let json = metadata.to_string();
    let mut body = Vec::new();
    body.extend((json.len() as u32).to_le_bytes());
    body.extend(json.as_bytes());
    body.extend((crate_bytes.len() as u32).to_le_bytes());
    body.extend(crate_bytes);
    body
}

/// A publish body for `name`@`vers` whose `.crate` holds only `{name}-{vers}/Cargo.toml`
/// with the text `manifest`: for manifests cargo would never send.
pub fn upload_with_manifest(name: &str, vers: &str, manifest: &str) -> Vec<u8> {
    let path = format!("{name}-{vers}/Cargo.toml");
    upload(name, vers, &crate_file(&[(&path, b'0', manifest, "")]))
}

/// `len` bytes that look like nothing and do not compress (a fixed xorshift
/// sequence), so a `.crate` holding them is about as large.
pub fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}
