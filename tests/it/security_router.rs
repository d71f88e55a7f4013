//! Requests are decided on their head, on the real binary: every spelling of a write
//! path is refused (or routed) before a body byte is read, so `--read-only`, tokens and
//! `--auth-required` hold for all of them; and only a publish may send a large body,
//! so clients sending bodies to other routes cannot make the server hold them.
//! Traffic stays on 127.0.0.1; every loop is bounded in count and time.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{
    HttpResponse, Overlay, assert_error, connect, local_layer, parse_response, scratch,
};

/// Spellings of the publish path that cargo never sends; each once reached publish
/// parsing with its body read, or (with a `%` escape or extra segment) read a body
/// only to answer 404.
const PUBLISH_SPELLINGS: [&str; 9] = [
    "//api/v1/crates/new",
    "///api/v1/crates/new",
    "/api/v1/crates/new/",
    "/api//v1/crates/new",
    "/./api/v1/crates/new",
    "/api/v1/crates/./new",
    "/api/v1/x/../crates/new",
    "/api/v1/crates/%6eew",
    "api/v1/crates/new",
];

/// What a client announcing a large upload gets.
const LARGE: u64 = 10_000_000;

/// The first response the server sends (an interim one too), read up to its
/// `Content-Length`, and when its first byte came; what came if the server closes or
/// goes quiet for the read timeout first.
fn read_answer(stream: &mut TcpStream) -> (Vec<u8>, Option<Instant>) {
    let (mut raw, mut first) = (Vec::new(), None);
    let mut chunk = [0u8; 16 * 1024];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        first.get_or_insert_with(Instant::now);
        raw.extend_from_slice(&chunk[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let len: usize = parse_response(&raw)
                .header("content-length")
                .map_or(0, |v| v.parse().unwrap());
            if raw.len() >= end + 4 + len {
                break;
            }
        }
    }
    (raw, first)
}

/// Sends a head announcing a large body and waiting for `100 Continue`, and returns
/// the answer, which must come instead of `100 Continue`, with no body byte sent.
fn refused_before_the_body(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &str,
) -> HttpResponse {
    let mut stream = connect(addr);
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{headers}Expect: 100-continue\r\nContent-Length: {LARGE}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (raw, _) = read_answer(&mut stream);
    let text = String::from_utf8_lossy(&raw);
    assert!(
        raw.starts_with(b"HTTP/1.1 ") && !raw.starts_with(b"HTTP/1.1 100 "),
        "{method} {target}: the server asked for the body: {text:?}"
    );
    parse_response(&raw)
}

#[test]
fn read_only_refuses_every_spelling_of_a_publish_before_its_body() {
    let work = scratch("router-read-only");
    let overlay = Overlay::start(&["--read-only", "-r", &local_layer(&work.join("reg"))]);
    let addr = overlay.addr;
    // With the run's token, so that read-only is what refuses.
    let auth = format!("Authorization: {}\r\n", overlay.token());
    let response = refused_before_the_body(addr, "PUT", "/api/v1/crates/new", &auth);
    assert_error(
        "publish",
        &response,
        403,
        "this registry is read-only (--read-only): publish is not allowed",
    );
    for target in PUBLISH_SPELLINGS {
        let response = refused_before_the_body(addr, "PUT", target, &auth);
        assert_error(target, &response, 404, "no such file or route");
    }
    for (method, target, action) in [
        ("DELETE", "/api/v1/crates/abc/1.0.0/yank", "yank"),
        ("PUT", "/api/v1/crates/abc/1.0.0/unyank", "unyank"),
    ] {
        let response = refused_before_the_body(addr, method, target, &auth);
        assert_error(target, &response, 403, &format!("{action} is not allowed"));
        let response = refused_before_the_body(addr, method, &format!("/{target}"), &auth);
        assert_error(target, &response, 404, "no such file or route");
    }
    assert!(!overlay.log().contains("panic"));
}

#[test]
fn tokens_are_checked_on_every_spelling_before_the_body() {
    let work = scratch("router-tokens");
    let token_file = work.join("tokens");
    fs::write(&token_file, "s3cret\n").unwrap();
    let tokens = ["--token-file", token_file.to_str().unwrap()];
    let layer = local_layer(&work.join("reg"));
    let overlay = Overlay::start(&[&tokens[..], &["-r", &layer]].concat());
    let addr = overlay.addr;
    for (headers, text) in [
        ("", "this action requires authentication"),
        ("Authorization: guess\r\n", "authentication failed"),
    ] {
        let response = refused_before_the_body(addr, "PUT", "/api/v1/crates/new", headers);
        assert_error("publish", &response, 403, text);
        let response =
            refused_before_the_body(addr, "DELETE", "/api/v1/crates/abc/1.0.0/yank", headers);
        assert_error("yank", &response, 403, text);
        for target in PUBLISH_SPELLINGS {
            let response = refused_before_the_body(addr, "PUT", target, headers);
            assert_error(target, &response, 404, "no such file or route");
        }
    }
    // With the token, the publish head is accepted and its body asked for.
    let mut stream = connect(addr);
    let head = format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\nHost: {addr}\r\nAuthorization: s3cret\r\nExpect: 100-continue\r\nContent-Length: {LARGE}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    drop(stream);

    // Under --auth-required, a read without a token is refused before its body too.
    let overlay = Overlay::start(&[&tokens[..], &["--auth-required", "-r", &layer]].concat());
    let response = refused_before_the_body(overlay.addr, "GET", "/config.json", "");
    assert_error("config.json", &response, 401, "requires a token");
}

/// The server's resident memory, in KiB: `field` is `VmRSS` or `VmHWM` (the peak).
/// `None` once the process is gone.
fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
}

/// How a storm client frames its 10 MB body.
#[derive(Clone, Copy, Debug)]
enum Framing {
    Length,
    Chunked,
}

/// 30 clients at once each send `GET /config.json` with a 10 MB body, without waiting
/// for an answer. Each must get 413 from the head (or, chunked, after the small limit)
/// within a few seconds, and the server's resident memory must stay near where it was.
fn body_storm(overlay: &Overlay, framing: Framing) {
    const CLIENTS: usize = 30;
    const BODY: usize = 10 * 1024 * 1024;
    const PIECE: usize = 64 * 1024;
    let addr = overlay.addr;
    let pid = overlay.pid();
    for _ in 0..3 {
        assert_eq!(overlay.get("/config.json").status, 200);
    }
    let baseline = memory_kib(pid, "VmRSS").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut peak = 0;
            while let (false, Some(rss)) = (done.load(Ordering::Relaxed), memory_kib(pid, "VmRSS"))
            {
                peak = peak.max(rss);
                thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            thread::spawn(move || {
                let mut stream = connect(addr);
                let framing_header = match framing {
                    Framing::Length => format!("Content-Length: {BODY}"),
                    Framing::Chunked => "Transfer-Encoding: chunked".to_string(),
                };
                let head = format!(
                    "GET /config.json HTTP/1.1\r\nHost: {addr}\r\n{framing_header}\r\n\r\n"
                );
                let started = Instant::now();
                stream.write_all(head.as_bytes()).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let sender = thread::spawn(move || {
                    let piece = match framing {
                        Framing::Length => vec![b'x'; PIECE],
                        Framing::Chunked => {
                            [format!("{PIECE:x}\r\n").as_bytes(), &[b'x'; PIECE], b"\r\n"].concat()
                        }
                    };
                    // The server may stop reading and close: that ends the sending.
                    for _ in 0..BODY / PIECE {
                        if writer.write_all(&piece).is_err() {
                            return;
                        }
                    }
                    if let Framing::Chunked = framing {
                        let _ = writer.write_all(b"0\r\n\r\n");
                    }
                });
                let (raw, first) = read_answer(&mut stream);
                sender.join().unwrap();
                let waited = first.map(|t| t - started);
                (raw, waited)
            })
        })
        .collect();
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let high_water = memory_kib(pid, "VmHWM").unwrap();
    // The high-water mark catches a spike between two samples.
    let grown_mib = peak.max(high_water).saturating_sub(baseline) / 1024;
    eprintln!(
        "{framing:?}: RSS {baseline} KiB before, peak {peak} KiB while {CLIENTS} clients sent 10 MB each; VmHWM {high_water} KiB"
    );
    assert!(
        grown_mib < 40,
        "{framing:?}: RSS grew by {grown_mib} MiB (from {baseline} KiB to {peak} KiB)"
    );
    for (raw, waited) in answers {
        assert_error(
            &format!("{framing:?} body on config.json"),
            &parse_response(&raw),
            413,
            "larger than the limit of 65536 bytes",
        );
        let waited = waited.unwrap();
        assert!(
            waited < Duration::from_secs(5),
            "{framing:?}: 413 after {waited:?}"
        );
    }
    assert_eq!(overlay.get("/config.json").status, 200);
}

#[test]
fn bodies_on_routes_other_than_publish_are_refused_from_the_head() {
    let work = scratch("router-body-storm");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    body_storm(&overlay, Framing::Length);
}

#[test]
fn chunked_bodies_on_routes_other_than_publish_are_bounded_the_same_way() {
    let work = scratch("router-chunked-storm");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    body_storm(&overlay, Framing::Chunked);
    // A small chunked body is still taken.
    let mut stream = connect(overlay.addr);
    let request = format!(
        "GET /config.json HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        overlay.addr
    );
    stream.write_all(request.as_bytes()).unwrap();
    let (raw, _) = read_answer(&mut stream);
    assert_eq!(parse_response(&raw).status, 200);
}

#[test]
fn forwarded_requests_take_only_small_bodies() {
    let work = scratch("router-forward");
    let far = Overlay::start(&["-r", &local_layer(&work.join("far"))]);
    let far_port = far.addr.port().to_string();
    let overlay = Overlay::start_with(&[
        "--no-tls",
        "-p",
        "0",
        "--allow-connect-port",
        &far_port,
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    let target = format!("http://127.0.0.1:{far_port}/config.json");
    let response = refused_before_the_body(overlay.addr, "POST", &target, "");
    assert_error(
        "forwarded POST",
        &response,
        413,
        "larger than the limit of 65536 bytes",
    );
    assert!(!far.log().contains("POST"), "{}", far.log());
}
