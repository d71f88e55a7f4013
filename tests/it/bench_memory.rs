//! Memory while streaming a large download. Ignored by default; run with
//!
//! ```text
//! cargo test --release --test it -- --ignored --nocapture bench_memory::
//! ```
//!
//! A 50 MB `.crate` is served from a local layer, and through a remote layer from a
//! second overlay, while the serving process's resident set size is sampled from
//! `/proc/PID/status`. Streaming means the growth stays a few MB, not 50.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crate::harness::{Overlay, local_layer, scratch};

const SIZE: usize = 50 * 1000 * 1000;

/// A layer holding `big` 1.0.0, a 50 MB file of pseudo-random bytes.
fn layer_with_a_big_crate(dir: &std::path::Path) {
    fs::create_dir_all(dir.join("index/3/b")).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let bytes: Vec<u8> = (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let cksum: String = ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(dir.join("big-1.0.0.crate"), &bytes).unwrap();
    fs::write(
        dir.join("index/3/b/big"),
        format!("{{\"name\":\"big\",\"vers\":\"1.0.0\",\"deps\":[],\"cksum\":\"{cksum}\",\"features\":{{}},\"yanked\":false}}\n"),
    )
    .unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Downloads `path` from `overlay` slowly (so the server must hold the stream open),
/// returning the bytes received and the server's RSS before and at its peak.
fn download_measuring(overlay: &Overlay, path: &str) -> (usize, u64, u64) {
    let pid = overlay.pid();
    let before = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(rss_kib(pid), Ordering::SeqCst);
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut stream = TcpStream::connect(overlay.addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 2 {
        line.clear();
    }
    let mut received = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        received += n;
        thread::sleep(Duration::from_micros(200));
    }
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    (received, before, peak.load(Ordering::SeqCst))
}

#[test]
#[ignore = "benchmark: run with --ignored --release"]
fn streaming_a_50_mb_download() {
    let work = scratch("bench-memory");
    let upstream_dir = work.join("upstream");
    layer_with_a_big_crate(&upstream_dir);

    let local = Overlay::start(&["-r", &local_layer(&upstream_dir)]);
    let (received, before, peak) = download_measuring(&local, "/api/v1/crates/big/1.0.0/download");
    assert_eq!(received, SIZE);
    println!(
        "local layer:  {SIZE} bytes streamed; server RSS {before} KiB before, {peak} KiB at peak (+{} KiB)",
        peak - before
    );

    let remote = Overlay::start(&[
        "-r",
        &local_layer(&work.join("top")),
        "-r",
        &format!("remote=http://{}/", local.addr),
    ]);
    let (received, before, peak) = download_measuring(&remote, "/api/v1/crates/big/1.0.0/download");
    assert_eq!(received, SIZE);
    println!(
        "remote layer: {SIZE} bytes streamed; server RSS {before} KiB before, {peak} KiB at peak (+{} KiB)",
        peak - before
    );
}
