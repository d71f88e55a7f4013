//! Resolve benchmarks: cold and warm `cargo generate-lockfile` of large graphs through
//! the overlay, with and without prefetch, against cargo talking to crates.io
//! directly, and against the static floor: nginx serving the same index files as a
//! plain sparse registry on loopback. Ignored by default; run one at a time with a
//! release build:
//!
//! ```text
//! RUST_LOG=warn cargo test --release --test it -- --ignored --nocapture --test-threads=1 bench_resolve::
//! ```
//!
//! `delayed_local_upstream` is hermetic: a generated registry of 400 crates served by a
//! second overlay behind a relay that delays every request by 20 ms.
//! `warm_against_static_floor` takes the same graph warm: serve mode with its memory
//! cache filled, exec mode with a filled `--cache DIR` (a new process per run, the CI
//! case), and nginx (`apt-get install nginx-light`, not a CI dependency; without it the
//! test says it is skipped) as the floor; it reports the ratios to the floor.
//! `real_crates_io` needs the network and runs only with OVERLAY_TEST_CRATES_IO=1; it
//! measures the same warm variants and floor on `tests/fixtures/big-graph`. Each
//! comparison alternates its variants round by round, with a fresh `CARGO_HOME` per
//! run, and reports medians; OVERLAY_BENCH_ROUNDS sets the rounds (5, and 15 for
//! `warm_against_static_floor`).

use crate::harness;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Cargo, Overlay, local_layer, scratch};
use crate::nginx::{self, Nginx};

const CRATES: usize = 400;
const DELAY: Duration = Duration::from_millis(20);
/// Rounds of `warm_against_static_floor`: a round takes about a second, and single
/// runs move by tens of percent on a shared machine.
const FLOOR_ROUNDS: usize = 15;

/// Writes index files for `CRATES` crates named `gen-N`, three versions each, each
/// depending on up to four crates with higher numbers: a graph cargo must walk level
/// by level, like a real one.
fn generate_registry(root: &Path) {
    for n in 0..CRATES {
        let name = format!("gen-{n}");
        let deps: Vec<usize> = (1..=4)
            .map(|k| n + k * 7 + n % 5)
            .filter(|&d| d < CRATES)
            .collect();
        let lines: String = (0..3)
            .map(|minor| {
                let deps: Vec<String> = deps
                    .iter()
                    .map(|d| {
                        format!(
                            r#"{{"name":"gen-{d}","req":"^1","features":[],"optional":false,"default_features":true,"target":null,"kind":"normal"}}"#
                        )
                    })
                    .collect();
                format!(
                    "{{\"name\":\"{name}\",\"vers\":\"1.{minor}.0\",\"deps\":[{}],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}\n",
                    deps.join(","),
                    "0".repeat(64)
                )
            })
            .collect();
        let lower = name.to_ascii_lowercase();
        let path = root
            .join("index")
            .join(format!("{}/{}/{lower}", &lower[..2], &lower[2..4]));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, lines).unwrap();
    }
}

/// A project depending on the first ten generated crates, crates.io style.
fn project(dir: &Path) -> PathBuf {
    let deps: String = (0..10).map(|n| format!("gen-{n} = \"1\"\n")).collect();
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"resolve-me\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{deps}"),
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    dir.to_path_buf()
}

/// A relay to `target` that holds every chunk the client sends for `delay` before
/// passing it on: each request then costs one extra `delay`, like a distant upstream.
/// The counter counts the GETs it passed on.
fn delaying_relay(
    target: std::net::SocketAddr,
    delay: Duration,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let gets = Arc::new(AtomicUsize::new(0));
    let counter = gets.clone();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(target) else {
                continue;
            };
            let (mut client_reader, mut server_writer) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let counter = counter.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                while let Ok(n) = client_reader.read(&mut buf) {
                    let requests = buf[..n].windows(4).filter(|w| w == b"GET ").count();
                    counter.fetch_add(requests, Ordering::Relaxed);
                    if n == 0 || {
                        thread::sleep(delay);
                        server_writer.write_all(&buf[..n]).is_err()
                    } {
                        break;
                    }
                }
                let _ = server_writer.shutdown(std::net::Shutdown::Both);
            });
            thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (addr, gets)
}

/// The hermetic setup under `work`: the generated registry served by a second overlay
/// behind the delaying relay (`remote`, a `-r` value), the project, and an empty local
/// layer (`top`) in front.
struct Hermetic {
    _upstream: Overlay,
    /// The GETs the relay passed to the upstream so far.
    upstream_gets: Arc<AtomicUsize>,
    remote: String,
    top: String,
    project: PathBuf,
}

impl Hermetic {
    fn new(work: &Path) -> Hermetic {
        let registry = work.join("upstream");
        generate_registry(&registry);
        let upstream = Overlay::start(&["-r", &local_layer(&registry)]);
        let (relay, upstream_gets) = delaying_relay(upstream.addr, DELAY);
        Hermetic {
            _upstream: upstream,
            upstream_gets,
            remote: format!("remote=http://{relay}/"),
            top: local_layer(&work.join("top")),
            project: project(&work.join("project")),
        }
    }
}

/// Rounds per comparison: `OVERLAY_BENCH_ROUNDS`, or `default` (fewer while
/// developing, more on a busy machine).
fn rounds(default: usize) -> usize {
    std::env::var("OVERLAY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds `run` takes, after removing `project`'s lockfile so that it resolves anew.
fn timed(project: &Path, run: impl FnOnce()) -> f64 {
    let _ = fs::remove_file(project.join("Cargo.lock"));
    let started = Instant::now();
    run();
    started.elapsed().as_secs_f64()
}

/// Seconds `cargo generate-lockfile` takes with `cargo` (its own fresh `CARGO_HOME`).
fn resolve(project: &Path, cargo: Cargo) -> f64 {
    timed(project, || {
        cargo.ok(project, &["generate-lockfile"]);
    })
}

/// Seconds `cargo generate-lockfile` takes in exec mode with `overlay_args`, with a
/// fresh `CARGO_HOME`.
fn exec_resolve(project: &Path, overlay_args: &[&str]) -> f64 {
    exec_resolve_with(harness::BIN, project, overlay_args)
}

/// [`exec_resolve`] with the overlay binary at `program`.
fn exec_resolve_with(program: &str, project: &Path, overlay_args: &[&str]) -> f64 {
    let cargo = Cargo::plain();
    timed(project, || {
        let out = cargo.exec_program(program, project, overlay_args, &["generate-lockfile"]);
        assert!(out.0.status.success(), "{}", out.all());
    })
}

/// The packages in `project`'s lockfile.
fn locked_packages(project: &Path) -> usize {
    fs::read_to_string(project.join("Cargo.lock"))
        .unwrap()
        .matches("[[package]]")
        .count()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn report(label: &str, times: &[f64]) -> f64 {
    let m = median(times.to_vec());
    let shown: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
    println!(
        "{label:<44} median {m:>6.2} s   runs [{}]",
        shown.join(", ")
    );
    m
}

/// The three warm variants of one resolve, each run with a fresh `CARGO_HOME`:
/// - the static floor: nginx serving, as a plain sparse registry on loopback, the
///   bodies the warm serve-mode overlay serves for every index file it cached;
/// - serve mode (default configuration: proxy and TLS listener), its memory cache
///   filled by one resolve;
/// - exec mode with `--cache DIR`, a new overlay process per run, `DIR` filled by one
///   earlier run: the CI case.
struct Warm<'a> {
    project: &'a Path,
    exec_args: Vec<String>,
    /// The serve-mode overlay's `--cache` directory: every index file it fetched.
    serve_cache: PathBuf,
    serve: Overlay,
    floor: Option<(Nginx, String)>,
    /// `OVERLAY_BENCH_BASELINE`: an older build, run in exec mode too, for a before
    /// and after.
    baseline: Option<String>,
    /// Floor, serve mode, exec mode, the baseline's exec mode.
    times: [Vec<f64>; 4],
}

impl<'a> Warm<'a> {
    /// Starts the overlay, fills both caches with one resolve each and, with `nginx`,
    /// writes the static registry under `work` and starts nginx on it.
    fn new(work: &Path, project: &'a Path, layers: &[&str], nginx: Option<&str>) -> Warm<'a> {
        let serve_cache = work.join("serve-cache");
        let exec_cache = work.join("exec-cache");
        let with_cache = |dir: &Path| {
            let mut args = vec!["--cache".to_string(), dir.display().to_string()];
            args.extend(layers.iter().map(|a| a.to_string()));
            args
        };
        let mut serve_args = vec!["-p".to_string(), "0".to_string()];
        serve_args.extend(with_cache(&serve_cache));
        let serve = Overlay::start_with(&serve_args.iter().map(String::as_str).collect::<Vec<_>>());
        resolve(project, Cargo::new(&serve));
        let exec_args = with_cache(&exec_cache);
        let mut warm = Warm {
            project,
            exec_args,
            serve_cache,
            serve,
            floor: None,
            baseline: std::env::var("OVERLAY_BENCH_BASELINE").ok(),
            times: Default::default(),
        };
        exec_resolve(project, &warm.exec_args());
        warm.floor = nginx.map(|binary| {
            let root = work.join("static-registry");
            fs::create_dir_all(&root).unwrap();
            // nginx reads the files as it serves them: they may come after it starts.
            let nginx = Nginx::start(binary, &root, nginx::Mode::Counting);
            let addr = nginx.addr;
            let files = warm.write_static_registry(&root, addr);
            let config = format!(
                "[source.crates-io]\nreplace-with = \"static-floor\"\n\
                 [source.static-floor]\nregistry = \"sparse+http://{addr}/\"\n"
            );
            println!("static floor: nginx on {addr}, {files} index files");
            (nginx, config)
        });
        // nginx's first resolve, like the overlays', is not measured.
        warm.run_floor();
        warm
    }

    fn exec_args(&self) -> Vec<&str> {
        self.exec_args.iter().map(String::as_str).collect()
    }

    /// Writes into `root` the body the warm overlay serves for each index file in its
    /// `--cache` directory, in the sparse layout, and a `config.json` whose `dl` points
    /// at `addr` (a resolve downloads nothing). Returns the number of index files.
    fn write_static_registry(&self, root: &Path, addr: std::net::SocketAddr) -> usize {
        let ca_file = PathBuf::from(self.serve.var("CARGO_HTTP_CAINFO").unwrap());
        let index = self.serve_cache.join("index");
        let mut files = 0;
        let mut pending = vec![index.clone()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&index).unwrap();
                let url_path = format!("/{}", relative.display());
                let response = harness::https_get(&ca_file, self.serve.addr, &url_path);
                assert_eq!(response.status, 200, "{url_path}: {}", response.text());
                let out = root.join(relative);
                fs::create_dir_all(out.parent().unwrap()).unwrap();
                fs::write(out, &response.body).unwrap();
                files += 1;
            }
        }
        fs::write(
            root.join("config.json"),
            format!("{{\"dl\":\"http://{addr}/dl/{{crate}}/{{version}}/download\"}}\n"),
        )
        .unwrap();
        files
    }

    /// One resolve against nginx, if there is a floor: its seconds.
    fn run_floor(&self) -> Option<f64> {
        let (_, config) = self.floor.as_ref()?;
        Some(resolve(self.project, Cargo::plain().with_config(config)))
    }

    /// One round: each variant once, the order rotating from round to round.
    fn round(&mut self, round: usize) {
        let variants = if self.baseline.is_some() { 4 } else { 3 };
        for i in 0..variants {
            let variant = (round + i) % variants;
            let seconds = match (variant, &self.baseline) {
                (0, _) => self.run_floor(),
                (1, _) => Some(resolve(self.project, Cargo::new(&self.serve))),
                (2, _) => Some(exec_resolve(self.project, &self.exec_args())),
                (_, Some(baseline)) => {
                    Some(exec_resolve_with(baseline, self.project, &self.exec_args()))
                }
                (_, None) => unreachable!("three variants without a baseline"),
            };
            self.times[variant].extend(seconds);
        }
    }

    /// Prints the medians and the warm runs' ratios to the floor; returns the serve
    /// and exec medians.
    fn report(&self) -> (f64, f64) {
        let [floor, serve, exec, baseline] = &self.times;
        let floor_median = self.floor.as_ref().map(|(nginx, _)| {
            let m = report("floor: nginx, static sparse registry", floor);
            // The warm-up resolve and every measured one asked for the same files.
            let per_run = nginx.requests() / (floor.len() + 1);
            println!("  cargo's requests per resolve (nginx access log): {per_run}");
            m
        });
        let s = report("overlay warm, serve mode (memory cache)", serve);
        let e = report("overlay warm, exec mode (--cache DIR)", exec);
        let mut measured = vec![("serve mode", s, serve), ("exec mode", e, exec)];
        if !baseline.is_empty() {
            let b = report("baseline build, exec mode (--cache DIR)", baseline);
            measured.push(("baseline build's exec mode", b, baseline));
        }
        if let Some(f) = floor_median {
            for (label, m, times) in measured {
                // Each round ran every variant back to back, so a round's own ratio
                // leaves out the machine's drift from one round to the next.
                let paired = median(times.iter().zip(floor).map(|(t, f)| t / f).collect());
                println!(
                    "ratio {label} / floor: {:.2} of the medians, {paired:.2} paired by round (goal: at most 1.05)",
                    m / f
                );
            }
        }
        (s, e)
    }
}

#[test]
#[ignore = "benchmark: run with --ignored --release"]
fn delayed_local_upstream() {
    let hermetic = Hermetic::new(&scratch("bench-resolve-local"));
    let (project, top, remote) = (&hermetic.project, &hermetic.top, &hermetic.remote);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..rounds(5) {
        without.push(exec_resolve(
            project,
            &["--prefetch", "0", "-r", top, "-r", remote],
        ));
        with.push(exec_resolve(project, &["-r", top, "-r", remote]));
    }
    let packages = locked_packages(project);
    println!("cold generate-lockfile, {packages} packages, upstream with {DELAY:?} per request:");
    let a = report("overlay, prefetch off", &without);
    let b = report("overlay, prefetch on (default)", &with);
    println!("speed-up from prefetch: {:.1}x", a / b);
}

/// The warm variants against the static floor, on the generated graph behind the
/// delayed upstream. The relay counts what the warm runs still ask the upstream. With
/// `OVERLAY_BENCH_BASELINE=PATH` an older build runs in exec mode too, in the same
/// rounds, for a before and after.
#[test]
#[ignore = "benchmark: run with --ignored --release; needs nginx (not in CI)"]
fn warm_against_static_floor() {
    let Some(nginx) = nginx::binary() else {
        nginx::say_missing("warm_against_static_floor", "nginx");
        return;
    };
    let work = scratch("bench-resolve-floor");
    let hermetic = Hermetic::new(&work);
    let (project, top, remote) = (&hermetic.project, &hermetic.top, &hermetic.remote);
    let mut warm = Warm::new(&work, project, &["-r", top, "-r", remote], Some(&nginx));
    let before = hermetic.upstream_gets.load(Ordering::Relaxed);
    let rounds = rounds(FLOOR_ROUNDS);
    for round in 0..rounds {
        warm.round(round);
    }
    let asked = hermetic.upstream_gets.load(Ordering::Relaxed) - before;
    println!(
        "warm generate-lockfile, {} packages, fresh CARGO_HOME each run, {rounds} rounds:",
        locked_packages(project)
    );
    warm.report();
    println!("upstream GETs during the measured runs: {asked}");
}

#[test]
#[ignore = "benchmark: run with --ignored --release; needs OVERLAY_TEST_CRATES_IO=1"]
fn real_crates_io() {
    if !harness::reaches_crates_io("real_crates_io") {
        return;
    }
    let nginx = nginx::binary();
    if nginx.is_none() {
        nginx::say_missing(
            "real_crates_io's static floor (the other variants run)",
            "nginx",
        );
    }
    let work = scratch("bench-resolve-real");
    let project = work.join("big-graph");
    harness::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/big-graph"),
        &project,
    );
    let _ = fs::remove_file(project.join("Cargo.lock"));

    let direct = |multiplexing: bool| {
        let cargo = Cargo::plain();
        timed(&project, || {
            let out = cargo
                .command(&project, &["generate-lockfile"])
                .env("CARGO_HTTP_MULTIPLEXING", multiplexing.to_string())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
    };
    let layers = ["-r", "local", "-r", "crates.io"];
    // Warm: the serve-mode overlay's --cache directory, a local-registry of every
    // index file cargo reads, also serves the floor without HTTP at all.
    let mut warm = Warm::new(&work, &project, &layers, nginx.as_deref());
    let local_registry = format!(
        "[source.crates-io]\nreplace-with = \"files\"\n[source.files]\nlocal-registry = {:?}\n",
        warm.serve_cache.display().to_string()
    );

    let (mut h2, mut h1, mut cold, mut cold_off, mut floor_files) =
        (vec![], vec![], vec![], vec![], vec![]);
    for round in 0..rounds(5) {
        h2.push(direct(true));
        cold.push(exec_resolve(&project, &layers));
        h1.push(direct(false));
        cold_off.push(exec_resolve(
            &project,
            &["--prefetch", "0", "-r", "local", "-r", "crates.io"],
        ));
        warm.round(round);
        floor_files.push(resolve(
            &project,
            Cargo::plain().with_config(&local_registry),
        ));
    }
    println!(
        "generate-lockfile of tests/fixtures/big-graph ({} packages), fresh CARGO_HOME each run:",
        locked_packages(&project)
    );
    let direct_h2 = report("direct cargo, HTTP/2", &h2);
    report("direct cargo, HTTP/1.1 (multiplexing off)", &h1);
    report("overlay cold, prefetch off", &cold_off);
    let c = report("overlay cold, prefetch on (default)", &cold);
    let f = report("floor: local-registry directory, no HTTP", &floor_files);
    let (s, e) = warm.report();
    println!("ratio overlay cold / direct HTTP/2: {:.2}", c / direct_h2);
    println!(
        "ratio overlay warm, serve / direct HTTP/2: {:.2}",
        s / direct_h2
    );
    println!(
        "ratio overlay warm, exec / direct HTTP/2: {:.2}",
        e / direct_h2
    );
    println!(
        "ratio floor, local-registry / direct HTTP/2: {:.2}",
        f / direct_h2
    );
}

#[test]
#[ignore = "benchmark: run with --ignored --release; needs OVERLAY_TEST_CRATES_IO=1"]
fn real_crates_io_fetch() {
    if !harness::reaches_crates_io("real_crates_io_fetch") {
        return;
    }
    let work = scratch("bench-fetch-real");
    let project = work.join("big-graph");
    harness::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/big-graph"),
        &project,
    );
    // One lockfile for every variant: each run downloads and unpacks the same crates.
    Cargo::plain().ok(&project, &["generate-lockfile"]);
    // Each run writes 700 MB into its CARGO_HOME: flushed before the next run starts,
    // so one run's writeback stays out of the next one's time, and removed after.
    let timed = |run: &dyn Fn() -> Cargo| {
        std::process::Command::new("sync").status().unwrap();
        let started = Instant::now();
        let cargo = run();
        let seconds = started.elapsed().as_secs_f64();
        fs::remove_dir_all(cargo.home()).unwrap();
        seconds
    };
    let direct = || {
        let cargo = Cargo::plain();
        cargo.ok(&project, &["fetch"]);
        cargo
    };
    let exec = || {
        let cargo = Cargo::plain();
        let out = cargo.exec(&project, &["-r", "local", "-r", "crates.io"], &["fetch"]);
        assert!(out.0.status.success(), "{}", out.all());
        cargo
    };
    let serve = || {
        let overlay = Overlay::start_with(&["-p", "0", "-r", "local", "-r", "crates.io"]);
        let cargo = Cargo::new(&overlay);
        cargo.ok(&project, &["fetch"]);
        cargo
    };
    let variants: [&dyn Fn() -> Cargo; 3] = [&direct, &exec, &serve];
    let mut times: [Vec<f64>; 3] = Default::default();
    // The order rotates from round to round.
    for round in 0..rounds(5) {
        for i in 0..3 {
            let variant = (round + i) % 3;
            times[variant].push(timed(variants[variant]));
        }
    }
    let [direct, exec, serve] = times;
    println!(
        "cold cargo fetch of tests/fixtures/big-graph (504 crates), fresh CARGO_HOME each run:"
    );
    let d = report("direct cargo, HTTP/2", &direct);
    let e = report("overlay, exec mode (downloads ahead)", &exec);
    let s = report("overlay, serve mode (no project known)", &serve);
    println!("ratio exec mode / direct: {:.2}", e / d);
    println!("ratio serve mode / direct: {:.2}", s / d);
}
