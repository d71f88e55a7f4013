//! Resolve benchmarks: cold and warm `cargo generate-lockfile` of large graphs through
//! the overlay, with and without prefetch, and against cargo talking to crates.io
//! directly. Ignored by default; run with a release build:
//!
//! ```text
//! cargo test --release --test it -- --ignored --nocapture bench_resolve::
//! ```
//!
//! `delayed_local_upstream` is hermetic: a generated registry of 400 crates served by a
//! second overlay behind a relay that delays every request by 20 ms. `real_crates_io`
//! needs the network and runs only with OVERLAY_TEST_CRATES_IO=1. Each comparison
//! alternates its variants round by round and reports medians.

use crate::harness;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Cargo, Overlay, local_layer, scratch};

const ROUNDS: usize = 5;
const CRATES: usize = 400;
const DELAY: Duration = Duration::from_millis(20);

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
fn delaying_relay(target: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(target) else {
                continue;
            };
            let (mut client_reader, mut server_writer) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                while let Ok(n) = client_reader.read(&mut buf) {
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
    addr
}

/// Seconds a cold `cargo generate-lockfile` takes in exec mode with `overlay_args`.
fn exec_resolve(project: &Path, overlay_args: &[&str]) -> f64 {
    let _ = fs::remove_file(project.join("Cargo.lock"));
    let started = Instant::now();
    let out = Cargo::plain().exec(project, overlay_args, &["generate-lockfile"]);
    assert!(out.0.status.success(), "{}", out.all());
    started.elapsed().as_secs_f64()
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

#[test]
#[ignore = "benchmark: run with --ignored --release"]
fn delayed_local_upstream() {
    let work = scratch("bench-resolve-local");
    let registry = work.join("upstream");
    generate_registry(&registry);
    let upstream = Overlay::start(&["-r", &local_layer(&registry)]);
    let relay = delaying_relay(upstream.addr, DELAY);
    let remote = format!("remote=http://{relay}/");
    let project = project(&work.join("project"));
    let top = local_layer(&work.join("top"));

    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        without.push(exec_resolve(
            &project,
            &["--prefetch", "0", "-r", &top, "-r", &remote],
        ));
        with.push(exec_resolve(&project, &["-r", &top, "-r", &remote]));
    }
    let packages = fs::read_to_string(project.join("Cargo.lock"))
        .unwrap()
        .matches("[[package]]")
        .count();
    println!("cold generate-lockfile, {packages} packages, upstream with {DELAY:?} per request:");
    let a = report("overlay, prefetch off", &without);
    let b = report("overlay, prefetch on (default)", &with);
    println!("speed-up from prefetch: {:.1}x", a / b);
}

#[test]
#[ignore = "benchmark: run with --ignored --release; needs OVERLAY_TEST_CRATES_IO=1"]
fn real_crates_io() {
    if std::env::var_os("OVERLAY_TEST_CRATES_IO").is_none() {
        eprintln!(
            "SKIPPED real_crates_io: set OVERLAY_TEST_CRATES_IO=1 to run it (needs crates.io)"
        );
        return;
    }
    let work = scratch("bench-resolve-real");
    let project = work.join("big-graph");
    harness::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/big-graph"),
        &project,
    );
    let _ = fs::remove_file(project.join("Cargo.lock"));

    let direct = |multiplexing: bool| {
        let _ = fs::remove_file(project.join("Cargo.lock"));
        let cargo = Cargo::plain();
        let started = Instant::now();
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
        started.elapsed().as_secs_f64()
    };
    // Warm: one long-running overlay whose memory cache the first resolve filled;
    // every measured run still uses a fresh CARGO_HOME. Its --cache directory, a
    // local-registry of every index file cargo reads, then serves the two floors.
    let cache = work.join("cache");
    let warm_overlay = Overlay::start_with(&[
        "-p",
        "0",
        "--cache",
        cache.to_str().unwrap(),
        "-r",
        "local",
        "-r",
        "crates.io",
    ]);
    let timed = |cargo: Cargo| {
        let _ = fs::remove_file(project.join("Cargo.lock"));
        let started = Instant::now();
        cargo.ok(&project, &["generate-lockfile"]);
        started.elapsed().as_secs_f64()
    };
    timed(Cargo::new(&warm_overlay));

    // The floors: cargo reading the same index files with no network. From a
    // local-registry directory (no HTTP at all), and from a sparse registry on
    // loopback (plain HTTP, no proxy, no TLS).
    let local_registry = format!(
        "[source.crates-io]\nreplace-with = \"files\"\n[source.files]\nlocal-registry = {:?}\n",
        cache.display().to_string()
    );
    let files_server = Overlay::start(&["--read-only", "-r", &local_layer(&cache)]);
    let sparse_loopback = format!(
        "[source.crates-io]\nreplace-with = \"files\"\n[source.files]\nregistry = \"sparse+http://{}/\"\n",
        files_server.addr
    );

    let (mut h2, mut h1, mut cold, mut cold_off, mut warm_runs) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut floor_files, mut floor_sparse) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        h2.push(direct(true));
        cold.push(exec_resolve(&project, &["-r", "local", "-r", "crates.io"]));
        h1.push(direct(false));
        cold_off.push(exec_resolve(
            &project,
            &["--prefetch", "0", "-r", "local", "-r", "crates.io"],
        ));
        warm_runs.push(timed(Cargo::new(&warm_overlay)));
        floor_files.push(timed(Cargo::plain().with_config(&local_registry)));
        floor_sparse.push(timed(Cargo::plain().with_config(&sparse_loopback)));
    }
    let packages = fs::read_to_string(project.join("Cargo.lock"))
        .unwrap()
        .matches("[[package]]")
        .count();
    println!(
        "generate-lockfile of tests/fixtures/big-graph ({packages} packages), fresh CARGO_HOME each run:"
    );
    let direct_h2 = report("direct cargo, HTTP/2", &h2);
    report("direct cargo, HTTP/1.1 (multiplexing off)", &h1);
    report("overlay cold, prefetch off", &cold_off);
    let c = report("overlay cold, prefetch on (default)", &cold);
    let w = report("overlay warm (memory cache)", &warm_runs);
    let f = report("floor: local-registry directory, no HTTP", &floor_files);
    let s = report("floor: sparse registry on loopback", &floor_sparse);
    println!("ratio overlay cold / direct HTTP/2: {:.2}", c / direct_h2);
    println!("ratio overlay warm / direct HTTP/2: {:.2}", w / direct_h2);
    println!(
        "ratio floor, local-registry / direct HTTP/2: {:.2}",
        f / direct_h2
    );
    println!(
        "ratio floor, sparse on loopback / direct HTTP/2: {:.2}",
        s / direct_h2
    );
}

#[test]
#[ignore = "benchmark: run with --ignored --release; needs OVERLAY_TEST_CRATES_IO=1"]
fn real_crates_io_fetch() {
    if std::env::var_os("OVERLAY_TEST_CRATES_IO").is_none() {
        eprintln!(
            "SKIPPED real_crates_io_fetch: set OVERLAY_TEST_CRATES_IO=1 to run it (needs crates.io)"
        );
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
    for round in 0..5 {
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
