//! Benchmarks, ignored by default. Run them with a release build:
//!
//! ```text
//! cargo test --release --test bench -- --ignored --nocapture
//! ```
//!
//! Each prints its figures; `docs/benchmarks.md` records the ones measured.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{Overlay, scratch};

/// Requests per second for one index file from a local layer, over keep-alive
/// connections, at several client counts.
#[test]
#[ignore = "benchmark: run with --ignored --release"]
fn local_index_get_throughput() {
    let work = scratch("bench-index");
    let reg = work.join("reg");
    fs::create_dir_all(reg.join("index/be/nc")).unwrap();
    // Fifty versions: a typical index file of a few KiB.
    let lines: String = (0..50)
        .map(|i| {
            format!(
                "{{\"name\":\"bench\",\"vers\":\"1.{i}.0\",\"deps\":[{{\"name\":\"serde\",\"req\":\"^1\",\"features\":[],\"optional\":false,\"default_features\":true,\"target\":null,\"kind\":\"normal\"}}],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}\n",
                "0".repeat(64)
            )
        })
        .collect();
    fs::write(reg.join("index/be/nc/bench"), &lines).unwrap();
    let overlay = Overlay::start(&["-r", &format!("local={}", reg.display())]);
    let addr = overlay.addr;
    let run_for = Duration::from_secs(5);
    let body_len = lines.len();

    for clients in [1, 2, 8, 32] {
        let started = Instant::now();
        let total: u64 = thread::scope(|scope| {
            let workers: Vec<_> = (0..clients)
                .map(|_| {
                    scope.spawn(move || {
                        let stream = TcpStream::connect(addr).unwrap();
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        let mut writer = stream;
                        let mut count = 0u64;
                        while started.elapsed() < run_for {
                            writer
                                .write_all(b"GET /be/nc/bench HTTP/1.1\r\nHost: bench\r\n\r\n")
                                .unwrap();
                            assert_eq!(read_response(&mut reader), body_len);
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
            "index GET, {clients:>2} keep-alive clients: {:>8.0} requests/s ({total} in {secs:.1} s, {} byte body)",
            total as f64 / secs,
            body_len
        );
    }
}

/// Reads one response and returns its body length.
fn read_response(reader: &mut BufReader<TcpStream>) -> usize {
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
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
