//! Benchmarks, ignored by default. Run them with a release build and without the
//! debug logs the harness turns on for tests:
//!
//! ```text
//! RUST_LOG=warn cargo test --release --test it -- --ignored --nocapture bench::
//! ```
//!
//! Each prints its figures; `docs/benchmarks.md` records the ones measured.

use crate::harness;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, StreamOwned};

use crate::harness::{BIN, Overlay, local_layer, scratch};
use crate::nginx;

/// Held by each benchmark while it runs: the test harness runs tests in parallel, and
/// benchmarks sharing two cores would measure each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The host cargo reaches the crates.io index at, and the overlay intercepts.
const INDEX_HOST: &str = "index.crates.io";

/// Requests per second for one index file from a local layer, over keep-alive
/// connections, at several client counts.
#[test]
#[ignore = "benchmark: run with --ignored --release"]
fn local_index_get_throughput() {
    let _serial = one_at_a_time();
    let (reg, body_len) = seed_index("bench-index");
    let overlay = Overlay::start(&["-r", &local_layer(&reg)]);
    let addr = overlay.addr;
    let run_for = Duration::from_secs(5);

    for clients in [1, 2, 8, 32] {
        let started = Instant::now();
        let total: u64 = thread::scope(|scope| {
            let workers: Vec<_> = (0..clients)
                .map(|_| {
                    scope.spawn(move || {
                        let mut conn = BufReader::new(tcp(addr));
                        let mut count = 0u64;
                        while started.elapsed() < run_for {
                            assert_eq!(get(&mut conn, "bench"), body_len);
                            count += 1;
                        }
                        count
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        let secs = started.elapsed().as_secs_f64();
        println!(
            "index GET, {clients:>2} keep-alive clients: {:>8.0} requests/s ({total} in {secs:.1} s, {body_len} byte body)",
            total as f64 / secs,
        );
    }
}

/// The issue's yardstick for index GETs: the same index file served by the overlay
/// and by nginx (a static file server with both cores: `worker_processes auto`),
/// loaded by `wrk -t2 -c16 -d5s`, round after round. The overlay serves it twice: left
/// alone (its rendered answer is kept in memory) and rewritten by another thread every
/// millisecond (renamed into place, so every answer is read and rendered afresh). With
/// `OVERLAY_BENCH_BASELINE=PATH` an older build at PATH serves both ways too, for a
/// before and after. Needs nginx and wrk (`apt-get install nginx-light wrk`; not CI
/// dependencies); skipped, loudly, without them.
#[test]
#[ignore = "benchmark: run with --ignored --release; needs nginx and wrk"]
fn local_index_get_against_nginx() {
    let _serial = one_at_a_time();
    const ROUNDS: usize = 5;
    let Some(nginx) = nginx::binary() else {
        return nginx::say_missing("local_index_get_against_nginx", "nginx");
    };
    if Command::new("wrk").arg("-v").output().is_err() {
        return nginx::say_missing("local_index_get_against_nginx", "wrk");
    }
    let (reg, _) = seed_index("bench-nginx");
    let file = reg.join("index/be/nc/bench");
    harness::settle(&file);
    let static_server = nginx::Nginx::start(&nginx, &reg.join("index"), nginx::Mode::Throughput);
    let layer = local_layer(&reg);
    let mut servers = vec![("overlay".to_string(), Overlay::start(&["-r", &layer]))];
    if let Ok(baseline) = std::env::var("OVERLAY_BENCH_BASELINE") {
        let args = ["--no-proxy", "--no-tls", "-p", "0", "-r", &layer];
        servers.push((
            "baseline".to_string(),
            Overlay::start_program(&baseline, &args),
        ));
    }

    let mut figures: Vec<(String, Vec<f64>)> = Vec::new();
    let mut record = |label: String, rate: f64| match figures.iter_mut().find(|(l, _)| *l == label)
    {
        Some((_, rates)) => rates.push(rate),
        None => figures.push((label, vec![rate])),
    };
    for round in 0..ROUNDS {
        record("nginx".into(), wrk_rate(static_server.addr));
        for (label, overlay) in servers.iter().cycle().skip(round).take(servers.len()) {
            record(format!("{label}, file unchanged"), wrk_rate(overlay.addr));
            let rewritten = rewriting(&file, || wrk_rate(overlay.addr));
            record(format!("{label}, file rewritten every ms"), rewritten);
            harness::settle(&file);
        }
    }
    let median = |rates: &[f64]| {
        let mut sorted = rates.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let floor = median(&figures[0].1);
    for (label, rates) in &figures {
        let shown: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{label:<36} median {:>7.0} requests/s, {:.2} of nginx ({})",
            median(rates),
            median(rates) / floor,
            shown.join(", ")
        );
    }
}

/// `wrk -t2 -c16 -d5s` against the bench index file at `addr`: requests per second.
fn wrk_rate(addr: SocketAddr) -> f64 {
    let out = Command::new("wrk")
        .args(["-t2", "-c16", "-d5s", &format!("http://{addr}/be/nc/bench")])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "{text}");
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk's output:\n{text}"))
}

/// Runs `measure` while another thread writes `file` anew every millisecond, as a
/// publish does (a temporary file renamed into place).
fn rewriting<T>(file: &Path, measure: impl FnOnce() -> T) -> T {
    let bytes = fs::read(file).unwrap();
    let temp = file.with_extension("rewrite");
    let done = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                fs::write(&temp, &bytes).unwrap();
                fs::rename(&temp, file).unwrap();
                thread::sleep(Duration::from_millis(1));
            }
        });
        let result = measure();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        result
    })
}

/// What interception costs: the same index file fetched (A) straight from a plain
/// registry listener, (B) as cargo fetches it from a plain proxy listener (`CONNECT`,
/// then TLS to `index.crates.io` with the overlay's CA) and (C) through the TLS
/// listener (TLS to the listener, `CONNECT` inside, TLS to `index.crates.io` inside
/// that). For each: the latency of sequential GETs on one keep-alive connection, and
/// the time a new connection takes up to the end of its first GET, with full TLS
/// handshakes and with resumed sessions. The routes take turns, round after round.
#[test]
#[ignore = "benchmark: run with --ignored --release"]
fn intercepted_index_get_overhead() {
    let _serial = one_at_a_time();
    const ROUNDS: usize = 5;
    let (reg, body_len) = seed_index("bench-intercept");
    let layer = local_layer(&reg);
    let work = scratch("bench-intercept-ca");
    let (plain_ca, tls_ca) = (work.join("plain-ca.pem"), work.join("tls-ca.pem"));
    let direct = Overlay::start(&["-r", &layer]);
    let proxy = Overlay::start_with(&[
        "--no-tls",
        "-p",
        "0",
        "--ca-cert-out",
        plain_ca.to_str().unwrap(),
        "-r",
        &layer,
    ]);
    let tls_proxy = Overlay::start_with(&[
        "-p",
        "0",
        "--ca-cert-out",
        tls_ca.to_str().unwrap(),
        "-r",
        &layer,
    ]);
    let routes = [
        Route::Direct(direct.addr),
        Route::Proxy(proxy.addr, ClientTls::trusting(&plain_ca)),
        Route::TlsProxy(tls_proxy.addr, ClientTls::trusting(&tls_ca)),
    ];

    // Per route, per round: GET median, GET p99, new connection (full), (resumed).
    let mut figures = vec![Vec::new(); routes.len()];
    for round in 0..ROUNDS {
        let mut gets = keep_alive_latencies(&routes, body_len);
        for turn in 0..routes.len() {
            let i = (round + turn) % routes.len();
            let route = &routes[i];
            let mut full = new_connection_times(route, false, body_len);
            let mut resumed = match route {
                Route::Direct(_) => Vec::new(),
                _ => new_connection_times(route, true, body_len),
            };
            figures[i].push([
                percentile(&mut gets[i], 50),
                percentile(&mut gets[i], 99),
                percentile(&mut full, 50),
                percentile(&mut resumed, 50),
            ]);
        }
        for (route, rounds) in routes.iter().zip(&figures) {
            let row = rounds[round];
            println!(
                "round {} {}: GET median {} p99 {}; new connection {} full, {} resumed",
                round + 1,
                route.label(),
                micros(row[0]),
                micros(row[1]),
                micros(row[2]),
                micros(row[3])
            );
        }
    }

    println!(
        "\nmedians of {ROUNDS} rounds ({KEEP_ALIVE_GETS} keep-alive GETs after {WARM_UP} warm-up, {NEW_CONNECTIONS} new connections, {body_len} byte body):"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>15} {:>18}",
        "route", "GET median", "GET p99", "GET - A", "new conn, full", "new conn, resumed"
    );
    for (route, rounds) in routes.iter().zip(&figures) {
        let column = |c: usize| {
            let mut values: Vec<_> = rounds.iter().map(|r| r[c]).collect();
            micros(percentile(&mut values, 50))
        };
        // The GET median's difference from A's in the same round.
        let mut over_a: Vec<f64> = rounds
            .iter()
            .zip(&figures[0])
            .map(|(r, a)| (r[0].as_secs_f64() - a[0].as_secs_f64()) * 1e6)
            .collect();
        over_a.sort_by(f64::total_cmp);
        println!(
            "{:<44} {:>10} {:>10} {:>10} {:>15} {:>18}",
            route.label(),
            column(0),
            column(1),
            format!("{:+.0} µs", over_a[ROUNDS / 2]),
            column(2),
            column(3)
        );
    }
}

/// The time from spawning the overlay to its `# ready` line in serve mode (default
/// proxy and TLS), and the whole run of exec mode with a command that does nothing.
#[test]
#[ignore = "benchmark: run with --ignored --release"]
fn exec_mode_start_to_ready() {
    let _serial = one_at_a_time();
    const RUNS: usize = 20;
    let mut serve = Vec::new();
    let mut exec = Vec::new();
    for _ in 0..RUNS {
        serve.push(time_to_ready(&["-p", "0", "-r", "local"]));
        exec.push(time_whole_run(&["-r", "local", "--", "true"]));
    }
    println!("binary: {BIN}");
    for (what, times) in [
        ("serve mode `-p 0 -r local`, spawn to `# ready`", &mut serve),
        ("exec mode `-r local -- true`, whole run", &mut exec),
    ] {
        let median = percentile(times, 50);
        println!(
            "{what}: median {:.1} ms, min {:.1} ms, max {:.1} ms ({RUNS} runs)",
            millis(median),
            millis(times[0]),
            millis(times[RUNS - 1])
        );
    }
}

/// Writes a local layer holding one index file, `bench`, of fifty versions: a typical
/// index file of a few KiB. Returns the layer's directory and the file's length.
fn seed_index(name: &str) -> (PathBuf, usize) {
    let reg = scratch(name).join("reg");
    fs::create_dir_all(reg.join("index/be/nc")).unwrap();
    let lines: String = (0..50)
        .map(|i| {
            format!(
                "{{\"name\":\"bench\",\"vers\":\"1.{i}.0\",\"deps\":[{{\"name\":\"serde\",\"req\":\"^1\",\"features\":[],\"optional\":false,\"default_features\":true,\"target\":null,\"kind\":\"normal\"}}],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}\n",
                "0".repeat(64)
            )
        })
        .collect();
    fs::write(reg.join("index/be/nc/bench"), &lines).unwrap();
    (reg, lines.len())
}

/// A TCP connection with Nagle's algorithm off, as curl (and so cargo) opens them.
fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// GETs the index file on a keep-alive connection; returns the body length.
fn get<S: Read + Write>(conn: &mut BufReader<S>, host: &str) -> usize {
    // One write, so one segment (and one TLS record) per request.
    let request = format!("GET /be/nc/bench HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let stream = conn.get_mut();
    stream.write_all(request.as_bytes()).unwrap();
    stream.flush().unwrap();
    read_response(conn)
}

/// Reads one 200 response and returns its body length.
fn read_response(reader: &mut impl BufRead) -> usize {
    let mut length = 0;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200 "), "{line:?}");
    loop {
        line.clear();
        assert_ne!(reader.read_line(&mut line).unwrap(), 0, "the server closed");
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    length
}

/// How a client reaches the index file.
enum Route {
    /// GETs to a plain `--no-proxy --no-tls` listener.
    Direct(SocketAddr),
    /// `CONNECT index.crates.io:443` to a plain proxy listener, then TLS.
    Proxy(SocketAddr, ClientTls),
    /// TLS to the listener, `CONNECT` inside it, then TLS inside that.
    TlsProxy(SocketAddr, ClientTls),
}

impl Route {
    fn label(&self) -> &'static str {
        match self {
            Route::Direct(_) => "A  direct, plain listener",
            Route::Proxy(..) => "B  CONNECT + TLS, plain proxy listener",
            Route::TlsProxy(..) => "C  TLS + CONNECT + TLS, TLS proxy listener",
        }
    }

    fn host(&self) -> &'static str {
        match self {
            Route::Direct(_) => "bench",
            _ => INDEX_HOST,
        }
    }

    /// A new connection, ready for GETs; TLS sessions are resumed when `resume` is
    /// set and there is one to resume. The handshakes happen on the first GET.
    fn open(&self, resume: bool) -> BufReader<Box<dyn Conn>> {
        let index_host = || ServerName::try_from(INDEX_HOST).unwrap();
        let conn: Box<dyn Conn> = match self {
            Route::Direct(addr) => Box::new(tcp(*addr)),
            Route::Proxy(addr, tls) => {
                let mut stream = tcp(*addr);
                connect_tunnel(&mut stream);
                Box::new(tls.over(resume, index_host(), stream))
            }
            Route::TlsProxy(addr, tls) => {
                let listener = ServerName::IpAddress(addr.ip().into());
                let mut outer = tls.over(resume, listener, tcp(*addr));
                connect_tunnel(&mut outer);
                Box::new(tls.over(resume, index_host(), outer))
            }
        };
        BufReader::new(conn)
    }
}

/// A client connection: plain TCP, TLS, or TLS inside TLS.
trait Conn: Read + Write {
    /// Whether every TLS session in it was resumed; `None` without TLS.
    fn resumed(&self) -> Option<bool>;
}

impl Conn for TcpStream {
    fn resumed(&self) -> Option<bool> {
        None
    }
}

impl<S: Conn> Conn for StreamOwned<ClientConnection, S> {
    fn resumed(&self) -> Option<bool> {
        let this = self.conn.handshake_kind() == Some(HandshakeKind::Resumed);
        Some(self.sock.resumed().unwrap_or(true) && this)
    }
}

/// Client TLS trusting only one overlay's CA, with ALPN `http/1.1` like cargo's.
struct ClientTls {
    /// Caches no sessions: every handshake is a full one.
    full: Arc<ClientConfig>,
    /// Caches sessions (rustls' default), as curl does within one process.
    resuming: Arc<ClientConfig>,
}

impl ClientTls {
    fn trusting(ca_file: &Path) -> ClientTls {
        let mut config = harness::client_tls_config(ca_file);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let resuming = Arc::new(config.clone());
        config.resumption = rustls::client::Resumption::disabled();
        ClientTls {
            full: Arc::new(config),
            resuming,
        }
    }

    /// A TLS session to `name` over `stream`.
    fn over<S: Conn>(
        &self,
        resume: bool,
        name: ServerName<'static>,
        stream: S,
    ) -> StreamOwned<ClientConnection, S> {
        let config = if resume { &self.resuming } else { &self.full };
        StreamOwned::new(ClientConnection::new(config.clone(), name).unwrap(), stream)
    }
}

/// Sends `CONNECT index.crates.io:443` and reads the 200 answer's head. The server
/// sends nothing more until the client's TLS hello, so no read takes more than it.
fn connect_tunnel(stream: &mut impl Conn) {
    let request = format!("CONNECT {INDEX_HOST}:443 HTTP/1.1\r\nHost: {INDEX_HOST}:443\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut head = Vec::new();
    let mut buf = [0; 256];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buf).unwrap();
        assert_ne!(n, 0, "the proxy closed the connection");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
}

const WARM_UP: usize = 100;
const KEEP_ALIVE_GETS: usize = 2_000;
const NEW_CONNECTIONS: usize = 200;

/// Per route, the latency of each of `KEEP_ALIVE_GETS` sequential GETs on one
/// connection, after `WARM_UP` untimed ones. The routes take turns request by request,
/// so that all of them see the machine in the same state.
fn keep_alive_latencies(routes: &[Route], body_len: usize) -> Vec<Vec<Duration>> {
    let mut conns: Vec<_> = routes.iter().map(|route| route.open(false)).collect();
    let mut times = vec![Vec::with_capacity(KEEP_ALIVE_GETS); routes.len()];
    for n in 0..WARM_UP + KEEP_ALIVE_GETS {
        for ((route, conn), times) in routes.iter().zip(&mut conns).zip(&mut times) {
            let started = Instant::now();
            assert_eq!(get(conn, route.host()), body_len);
            if n >= WARM_UP {
                times.push(started.elapsed());
            }
        }
    }
    times
}

/// The time each of `NEW_CONNECTIONS` new connections takes from TCP connect to the
/// end of its first GET's response, after one untimed connection (which leaves a
/// session to resume).
fn new_connection_times(route: &Route, resume: bool, body_len: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for i in 0..=NEW_CONNECTIONS {
        let started = Instant::now();
        let mut conn = route.open(resume);
        assert_eq!(get(&mut conn, route.host()), body_len);
        let elapsed = started.elapsed();
        if i > 0 {
            let resumed = conn.get_ref().resumed();
            assert!(resumed.is_none_or(|r| r == resume), "resumed: {resumed:?}");
            times.push(elapsed);
        }
    }
    times
}

/// The `p`th percentile (nearest rank), sorting `values`; zero for no values.
fn percentile(values: &mut [Duration], p: usize) -> Duration {
    values.sort();
    match values.len() {
        0 => Duration::ZERO,
        n => values[(n * p / 100).min(n - 1)],
    }
}

fn micros(d: Duration) -> String {
    if d.is_zero() {
        "-".to_string()
    } else {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The overlay with `args`, logging at its default level to nowhere.
fn overlay_command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The time from spawning the overlay to its `# ready` line; it is stopped after.
fn time_to_ready(args: &[&str]) -> Duration {
    let started = Instant::now();
    let mut child = overlay_command(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with('#') {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        assert_ne!(n, 0, "the overlay exited before it was ready");
    }
    let elapsed = started.elapsed();
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    child.wait().unwrap();
    elapsed
}

/// The time from spawning the overlay to its exit, which must be a success.
fn time_whole_run(args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = overlay_command(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(status.success(), "{status}");
    elapsed
}

/// Search over a local layer of 10,000 and of 100,000 crates: the start-up time, the
/// first query (which builds the search index) and the median and 99th percentile of
/// the next 50 queries, through the HTTP API.
///
/// ```text
/// RUST_LOG=warn cargo test --release --test it -- --ignored --nocapture search_latency
/// ```
#[test]
#[ignore = "benchmark: run with --ignored --release"]
fn search_latency() {
    let _serial = one_at_a_time();
    const WORDS: [&str; 8] = [
        "serde", "tokio", "async", "parser", "http", "json", "macro", "cli",
    ];
    for crates in [10_000usize, 100_000] {
        let reg = scratch(&format!("bench-search-{crates}")).join("reg");
        let generated = Instant::now();
        fs::create_dir_all(reg.join("meta")).unwrap();
        for i in 0..crates {
            // Up to 40,000 different first four letters, a spread like real names
            // have (crates.io's index has some tens of thousands of directories):
            // each query checks every index directory for changes.
            let spread = i * 7919 % 40_000;
            let letters: String = (0..4u32)
                .map(|k| char::from(b'a' + (spread / 26usize.pow(k) % 26) as u8))
                .collect();
            let name = format!("{letters}-{}-{i:06}", WORDS[i % WORDS.len()]);
            let index = reg.join("index").join(&name[..2]).join(&name[2..4]);
            fs::create_dir_all(&index).unwrap();
            let line = format!(
                "{{\"name\":\"{name}\",\"vers\":\"1.{}.0\",\"deps\":[],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}\n",
                i % 7,
                "0".repeat(64)
            );
            fs::write(index.join(&name), line).unwrap();
            let meta = format!(
                "{{\"name\":\"{name}\",\"vers\":\"1.{}.0\",\"description\":\"A crate about {} number {i}\"}}",
                i % 7,
                WORDS[(i / 3) % WORDS.len()]
            );
            fs::write(reg.join(format!("meta/{name}-1.{}.0.json", i % 7)), meta).unwrap();
        }
        println!(
            "{crates} crates: generated in {:.1} s",
            generated.elapsed().as_secs_f64()
        );
        // Directories changed under two seconds ago are read again by every query
        // (see `registry/local/search.rs`): measure the layer as it is once settled.
        thread::sleep(Duration::from_millis(2500));
        let layer = local_layer(&reg);
        let mut startup: Vec<Duration> = (0..5)
            .map(|_| time_to_ready(&["--no-proxy", "--no-tls", "-p", "0", "-r", &layer]))
            .collect();
        let overlay = Overlay::start(&["-r", &layer]);
        let queries = [
            "json",
            "number 4242",
            "tokio-0001",
            "nothing-matches",
            "cli",
        ];
        let started = Instant::now();
        assert_eq!(
            overlay.get("/api/v1/crates?q=serde&per_page=10").status,
            200
        );
        let first = started.elapsed();
        let mut times: Vec<Duration> = (0..50)
            .map(|i| {
                let q = queries[i % queries.len()].replace(' ', "%20");
                let started = Instant::now();
                let response = overlay.get(&format!("/api/v1/crates?q={q}&per_page=10"));
                let elapsed = started.elapsed();
                assert_eq!(response.status, 200);
                elapsed
            })
            .collect();
        println!(
            "{crates} crates: start-up median {:.1} ms; first query {:.1} ms; then median {:.2} ms, p99 {:.2} ms (50 queries)",
            millis(percentile(&mut startup, 50)),
            millis(first),
            millis(percentile(&mut times, 50)),
            millis(percentile(&mut times, 99)),
        );
        drop(overlay);
        fs::remove_dir_all(&reg).unwrap();
    }
}
