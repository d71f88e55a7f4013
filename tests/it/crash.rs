//! Crash safety of a local layer: publishes storm a server that is killed with
//! SIGKILL in the middle, several times over, and after each restart on the same
//! directory every acknowledged publish is there whole, nothing half-written is
//! visible, and the temporary files the dead servers left are gone.

use crate::harness;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{BIN, Cargo, Fixture, local_layer, parse_response, scratch, sha256_file};

const NAME: &str = "crashy";
const VERSIONS: usize = 24;
const ROUNDS: usize = 3;

/// The overlay binary, started by hand so the test can SIGKILL it.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn start(reg: &Path) -> Server {
        let log = scratch("crash-log").join("stderr.log");
        let mut child = Command::new(BIN)
            .args(["--no-proxy", "--no-tls", "-p", "0", "--anonymous-writes"])
            .args(["-r", &local_layer(reg)])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("the overlay starts");
        let env =
            harness::read_environment(child.stdout.take().unwrap()).expect("the overlay starts");
        Server {
            child,
            addr: harness::listen_address(&env),
            log,
        }
    }

    fn kill(mut self) {
        // SIGKILL: no destructor, no flush, no cleanup.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cargo package` output for `VERSIONS` versions of one crate, made in parallel.
fn package_versions(work: &Path) -> Vec<(String, Vec<u8>)> {
    let cargo = Cargo::plain();
    let versions: Vec<String> = (0..VERSIONS).map(|i| format!("0.1.{i}")).collect();
    let next = AtomicUsize::new(0);
    let made = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(version) = versions.get(i) else {
                        return;
                    };
                    let fixture = Fixture::library(&work.join("src"), NAME, version, "x");
                    cargo.ok(&fixture.dir, &["package", "--no-verify", "--allow-dirty"]);
                    let file = fixture
                        .dir
                        .join(format!("target/package/{NAME}-{version}.crate"));
                    let bytes = fs::read(&file).unwrap();
                    made.lock().unwrap().push((version.clone(), bytes));
                }
            });
        }
    });
    let mut made = made.into_inner().unwrap();
    made.sort();
    made
}

/// cargo's upload body: `u32` LE length, metadata JSON, `u32` LE length, `.crate`.
fn upload_body(version: &str, crate_bytes: &[u8]) -> Vec<u8> {
    let metadata = serde_json::json!({
        "name": NAME,
        "vers": version,
        "deps": [],
        "features": {},
        "authors": [],
        "description": format!("The {NAME} fixture crate"),
        "documentation": null,
        "homepage": null,
        "readme": null,
        "readme_file": null,
        "keywords": [],
        "categories": [],
        "license": "MIT",
        "license_file": null,
        "repository": null,
        "badges": {},
        "links": null,
        "rust_version": null,
    })
    .to_string();
    let mut body = Vec::new();
    body.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
    body.extend_from_slice(metadata.as_bytes());
    body.extend_from_slice(&(crate_bytes.len() as u32).to_le_bytes());
    body.extend_from_slice(crate_bytes);
    body
}

/// One raw publish; the status, or `None` when the connection failed (the server
/// died under it).
fn publish(addr: SocketAddr, body: &[u8]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\nHost: {addr}\r\nAuthorization: t\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let response = parse_response(&raw);
    Some((response.status, response.text()))
}

/// Publishes `uploads` all at once and SIGKILLs the server once `kill_after` of them
/// are acknowledged. Returns the versions acknowledged with 200.
fn storm(server: Server, uploads: &[(String, Vec<u8>)], kill_after: usize) -> Vec<String> {
    let acked = Mutex::new(Vec::new());
    let answered = AtomicUsize::new(0);
    let barrier = Barrier::new(uploads.len() + 1);
    let addr = server.addr;
    thread::scope(|scope| {
        for (version, body) in uploads {
            let (acked, answered, barrier) = (&acked, &answered, &barrier);
            scope.spawn(move || {
                barrier.wait();
                let outcome = publish(addr, body);
                if let Some((status, text)) = &outcome {
                    assert!(
                        *status == 200,
                        "{version}: a publish was refused: {status} {text}"
                    );
                    acked.lock().unwrap().push(version.clone());
                }
                answered.fetch_add(1, Ordering::SeqCst);
            });
        }
        barrier.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while acked.lock().unwrap().len() < kill_after
            && answered.load(Ordering::SeqCst) < uploads.len()
        {
            assert!(Instant::now() < deadline, "the storm did not get going");
            thread::sleep(Duration::from_millis(1));
        }
        server.kill();
    });
    acked.into_inner().unwrap()
}

/// Every `.tmp-*` file under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Checks the layer on disk: every index line parses and has its `.crate` with the
/// line's checksum, every acknowledged version is there, and no version twice.
/// Returns the versions in the index.
fn check_layer(reg: &Path, acked: &BTreeSet<String>) -> BTreeSet<String> {
    let index = reg.join("index/cr/as").join(NAME);
    let text = fs::read_to_string(&index).unwrap_or_default();
    let mut versions = BTreeSet::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("an index line does not parse ({e}): {line}"));
        assert_eq!(value["name"], NAME, "{line}");
        let version = value["vers"].as_str().unwrap().to_string();
        semver::Version::parse(&version).unwrap();
        let crate_file = reg.join(format!("{NAME}-{version}.crate"));
        assert!(
            crate_file.is_file(),
            "{version} is indexed without its .crate"
        );
        assert_eq!(
            value["cksum"].as_str().unwrap(),
            sha256_file(&crate_file),
            "{version}: the .crate does not match the index checksum"
        );
        assert!(
            versions.insert(version.clone()),
            "{version} is indexed twice"
        );
    }
    assert!(text.is_empty() || text.ends_with('\n'), "a torn last line");
    let missing: Vec<_> = acked.difference(&versions).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    versions
}

#[test]
fn acknowledged_publishes_survive_sigkill_and_restarts_clean_up() {
    let work = scratch("crash");
    let reg = work.join("reg");
    let uploads: Vec<(String, Vec<u8>)> = package_versions(&work)
        .into_iter()
        .map(|(version, bytes)| {
            let body = upload_body(&version, &bytes);
            (version, body)
        })
        .collect();
    let per_round = VERSIONS / ROUNDS;
    let mut acked = BTreeSet::new();
    for round in 0..ROUNDS {
        let server = Server::start(&reg);
        // A restart cleans up after the previous kill, in the background, and still
        // serves the layer.
        harness::wait_until("the temporary files to be removed", || {
            temp_files(&reg).is_empty()
        });
        check_layer(&reg, &acked);
        let slice = &uploads[round * per_round..(round + 1) * per_round];
        let round_acked = storm(server, slice, per_round / 3);
        let indexed = check_layer(&reg, &acked);
        eprintln!(
            "round {round}: {} of {per_round} acknowledged, {} indexed in all, {} temporary files left",
            round_acked.len(),
            indexed.len(),
            temp_files(&reg).len()
        );
        acked.extend(round_acked);
    }
    assert!(!acked.is_empty());

    // Temporary files as a crash leaves them: one whose writer is gone, and one a live
    // process (this test) may still be writing, which must be left alone.
    let dead = {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let dead_temp = reg.join(format!("index/cr/as/.tmp-{dead}-0-{NAME}"));
    let live_temp = reg.join(format!(".tmp-{}-0-{NAME}-9.9.9.crate", std::process::id()));
    fs::write(&dead_temp, "half a line").unwrap();
    fs::write(&live_temp, "half a crate").unwrap();

    let server = Server::start(&reg);
    // At info level the sweep says something only when it removed a file: the dead
    // writer's is there to be removed.
    harness::wait_for_sweep_logged_in(&server.log);
    assert_eq!(temp_files(&reg), std::slice::from_ref(&live_temp));
    fs::remove_file(&live_temp).unwrap();
    let indexed = check_layer(&reg, &acked);
    // The server sees what the disk has.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    write!(
        stream,
        "GET /cr/as/{NAME} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let response = parse_response(&raw);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text().lines().count(), indexed.len());

    // What was never acknowledged can be published again: it either landed before the
    // kill or is stored now.
    for (version, body) in &uploads {
        if acked.contains(version) {
            continue;
        }
        let (status, text) = publish(server.addr, body).expect("the server answers");
        assert!(
            status == 200 || (status == 400 && text.contains("already uploaded")),
            "{version}: {status} {text}"
        );
        assert_eq!(
            status == 400,
            indexed.contains(version),
            "{version}: {text}"
        );
    }
    let all: BTreeSet<String> = uploads.iter().map(|(v, _)| v.clone()).collect();
    assert_eq!(check_layer(&reg, &all), all);
    drop(server);
    assert!(temp_files(&reg).is_empty());
}
