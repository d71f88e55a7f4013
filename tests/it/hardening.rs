//! The HTTP layer against hostile and broken clients, on the real binary: every
//! refusal is answered with its status and cargo's JSON error shape, the server keeps
//! serving afterwards, and slow or idle clients cannot starve a normal one. Traffic
//! stays on 127.0.0.1; every loop is bounded in count and time.

use crate::harness;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{
    BIN, HttpResponse, Overlay, assert_error, assert_still_serving, connect, local_layer,
    parse_response, scratch,
};

/// Reads one response (an interim one too), by its `Content-Length`, without waiting
/// for the connection to close and without reading past it: the head a byte at a time,
/// then exactly the body.
fn read_response(stream: &mut TcpStream) -> HttpResponse {
    let mut raw = Vec::new();
    let mut byte = [0u8];
    let failed = |raw: &[u8], why: String| -> ! {
        panic!(
            "no whole response ({why}) after {:?}",
            String::from_utf8_lossy(raw)
        )
    };
    while !raw.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            Ok(_) => failed(&raw, "the connection closed".into()),
            Err(e) => failed(&raw, e.to_string()),
        }
        assert!(raw.len() < 64 * 1024, "response head too large");
    }
    let len: usize = parse_response(&raw)
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0u8; len];
    if let Err(e) = stream.read_exact(&mut body) {
        failed(&raw, e.to_string());
    }
    raw.extend_from_slice(&body);
    parse_response(&raw)
}

/// Sends `request` on a new connection and reads one response. Write errors are
/// ignored: the server may answer and close before it has read everything.
fn exchange(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = connect(addr);
    let _ = stream.write_all(request);
    read_response(&mut stream)
}

/// Asserts a refusal ([`assert_error`]) after which the server closes the connection.
fn assert_refused(what: &str, response: &HttpResponse, status: u16, text: &str) {
    assert_error(what, response, status, text);
    assert_eq!(
        response.header("connection"),
        Some("close"),
        "{what}: the connection should close"
    );
}

#[test]
fn a_storm_of_bad_requests_is_answered_and_the_server_keeps_serving() {
    let work = scratch("hardening-storm");
    // Writes need no token here, so bad publishes reach the framing checks.
    let overlay = Overlay::start(&["--anonymous-writes", "-r", &local_layer(&work.join("reg"))]);
    let addr = overlay.addr;
    let host = format!("Host: {addr}\r\n");

    let many: String = (0..120).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let put = |rest: &str| format!("PUT /api/v1/crates/new HTTP/1.1\r\n{host}{rest}").into_bytes();
    let malformed = "malformed request";
    for (what, request, status, text) in [
        // The head: too large, too many fields, too long a target.
        (
            "oversized head",
            format!(
                "GET /config.json HTTP/1.1\r\n{host}X-Big: {}\r\n\r\n",
                "a".repeat(70 * 1024)
            )
            .into_bytes(),
            431,
            "request head larger than the limit",
        ),
        (
            "too many headers",
            format!("GET /config.json HTTP/1.1\r\n{host}{many}\r\n").into_bytes(),
            431,
            "more than 100 request headers",
        ),
        (
            "long target",
            format!("GET /{} HTTP/1.1\r\n{host}\r\n", "a".repeat(10_000)).into_bytes(),
            414,
            "request target longer than the limit",
        ),
        // Framing.
        (
            "Content-Length with Transfer-Encoding",
            put("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            400,
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "two Content-Lengths",
            put("Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
            400,
            "more than one Content-Length",
        ),
        (
            "two Content-Lengths",
            put("Content-Length: 3\r\nContent-Length: 3\r\n\r\nabcd"),
            400,
            "more than one Content-Length",
        ),
        (
            "Transfer-Encoding: gzip",
            put("Transfer-Encoding: gzip\r\n\r\nabc"),
            501,
            "unsupported transfer coding `gzip`",
        ),
        (
            "bad chunk size line",
            put("Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"),
            400,
            "malformed chunk size line",
        ),
        // Malformed requests.
        (
            "malformed request line",
            b"GET/config.json HTTP/1.1\r\n\r\n".to_vec(),
            400,
            malformed,
        ),
        (
            "unknown version",
            b"GET /config.json HTTP/7.0\r\n\r\n".to_vec(),
            400,
            malformed,
        ),
        (
            "NUL in the path",
            format!("GET /conf\0ig.json HTTP/1.1\r\n{host}\r\n").into_bytes(),
            400,
            malformed,
        ),
        (
            "garbage bytes",
            harness::incompressible(4096),
            400,
            malformed,
        ),
        (
            "no Host",
            b"GET /config.json HTTP/1.1\r\n\r\n".to_vec(),
            400,
            "missing Host header",
        ),
    ] {
        assert_refused(what, &exchange(addr, &request), status, text);
    }

    // A body that ends early: the client closes its side mid-body.
    let mut stream = connect(addr);
    let head = format!("PUT /api/v1/crates/new HTTP/1.1\r\n{host}Content-Length: 100\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(b"only ten..").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert_refused(
        "body ends early",
        &read_response(&mut stream),
        400,
        "in the middle of the request body",
    );

    // A body too large for the server, announced by Content-Length: refused before it
    // is read, whether the client waits for 100 Continue or sends it anyway.
    let head =
        format!("PUT /api/v1/crates/new HTTP/1.1\r\n{host}Content-Length: 1000000000000\r\n\r\n");
    let mut stream = connect(addr);
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..32 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    assert_refused(
        "huge body",
        &read_response(&mut stream),
        413,
        "max upload size is: 10485760",
    );
    sender.join().unwrap();
    let head = format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\n{host}Expect: 100-continue\r\nContent-Length: 1000000000000\r\n\r\n"
    );
    let mut stream = connect(addr);
    stream.write_all(head.as_bytes()).unwrap();
    // The refusal comes instead of 100 Continue, without the client sending anything.
    assert_refused(
        "huge body with Expect: 100-continue",
        &read_response(&mut stream),
        413,
        "max upload size is: 10485760",
    );
    drop(stream);

    // A publish whose manifest nests 200,000 arrays deep: it once overflowed a worker's
    // stack and aborted the server.
    let bomb = format!("x = {}", "[".repeat(200_000));
    let body = harness::upload_with_manifest("bomb", "0.1.0", &bomb);
    let head = format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\n{host}Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert_refused(
        "manifest nesting bomb",
        &exchange(addr, &[head.as_bytes(), &body].concat()),
        400,
        "failed to parse `Cargo.toml` manifest file",
    );

    // Proxy targets that name one port and reach another (SSRF): refused, and the port
    // they aim at is never connected to.
    let victim = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    victim.set_nonblocking(true).unwrap();
    let v = victim.local_addr().unwrap().port();
    let proxy = Overlay::start_with(&["--no-tls", "-p", "0", "-r", &local_layer(&work.join("p"))]);
    for target in [
        format!("http://127.0.0.1:{v}?:80/"),
        format!("http://127.0.0.1:{v}#:80/"),
        format!("http://127.0.0.1:80@127.0.0.1:{v}/"),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let response = exchange(proxy.addr, request.as_bytes());
        assert!(
            matches!(response.status, 400 | 403),
            "{target}: {}",
            response.text()
        );
        assert!(response.json()["errors"][0]["detail"].is_string());
    }
    assert!(victim.accept().is_err(), "an SSRF form reached its port");
    assert_still_serving(&proxy);

    assert_still_serving(&overlay);
    let log = overlay.log();
    assert!(!log.contains("panic"), "{log}");
}

#[test]
fn a_refused_upload_sent_without_waiting_still_gets_its_answer() {
    let work = scratch("hardening-refused");
    let overlay = Overlay::start(&["--read-only", "-r", &local_layer(&work.join("reg"))]);
    let addr = overlay.addr;
    // 4 MiB sent at once, with and without an ignored Expect: the server refuses the
    // publish from its head, then reads the body off so the answer is not lost to a
    // reset.
    for expect in ["", "Expect: 100-continue\r\n"] {
        let body_len = 4 * 1024 * 1024;
        let head = format!(
            "PUT /api/v1/crates/new HTTP/1.1\r\nHost: {addr}\r\n{expect}Content-Length: {body_len}\r\n\r\n"
        );
        let mut stream = connect(addr);
        let mut writer = stream.try_clone().unwrap();
        let sender = thread::spawn(move || {
            writer.write_all(head.as_bytes())?;
            writer.write_all(&vec![0u8; body_len])
        });
        let response = read_response(&mut stream);
        assert!(
            response.status == 403 || response.status == 405,
            "{expect:?}: {} {}",
            response.status,
            response.text()
        );
        assert!(response.json()["errors"][0]["detail"].is_string());
        assert_eq!(response.header("connection"), Some("close"));
        sender
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{expect:?}: the body was cut off: {e}"));
    }
    // A small refused body is skipped and the connection stays usable.
    let mut stream = connect(addr);
    let request = format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 5\r\n\r\nabcde\
         GET /config.json HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let refused = read_response(&mut stream);
    assert!(
        refused.status == 403 || refused.status == 405,
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("connection"), None);
    assert_eq!(read_response(&mut stream).status, 200);
    assert_still_serving(&overlay);
}

#[test]
fn slow_and_idle_clients_do_not_starve_a_normal_one() {
    const SLOW: usize = 300;
    let work = scratch("hardening-slow");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let addr = overlay.addr;
    // Half send a head a byte at a time, half only hold the connection.
    let mut slow = Vec::new();
    let mut idle = Vec::new();
    for i in 0..SLOW {
        let mut stream = connect(addr);
        if i % 2 == 0 {
            let head = format!("GET /config.json HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
            stream.write_all(head.as_bytes()).unwrap();
            slow.push(stream);
        } else {
            idle.push(stream);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(15);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for stream in &mut slow {
                    let _ = stream.write_all(b"a");
                }
                thread::sleep(Duration::from_millis(100));
            }
            slow
        })
    };
    thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        assert_still_serving(&overlay);
    }
    stop.store(true, Ordering::Relaxed);
    let slow = trickler.join().unwrap();
    drop(slow);
    drop(idle);
    assert_still_serving(&overlay);
}

#[test]
fn connections_past_the_cap_get_a_clear_503() {
    // The server's default cap.
    const CAP: usize = 512;
    let work = scratch("hardening-cap");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let addr = overlay.addr;
    let held: Vec<TcpStream> = (0..CAP).map(|_| connect(addr)).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let mut stream = connect(addr);
        let request = format!("GET /config.json HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let _ = stream.write_all(request.as_bytes());
        let response = read_response(&mut stream);
        if response.status == 503 {
            break response;
        }
        // Not all held connections were taken on yet.
        assert!(Instant::now() < deadline, "no 503 past the cap");
        thread::sleep(Duration::from_millis(50));
    };
    assert_refused(
        "past the cap",
        &refused,
        503,
        "connections are already being served",
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while overlay.get("/config.json").status != 200 {
        assert!(Instant::now() < deadline, "the server did not recover");
        thread::sleep(Duration::from_millis(50));
    }
    assert_still_serving(&overlay);
}

#[test]
fn the_accept_loop_survives_running_out_of_file_descriptors() {
    const FD_LIMIT: u64 = 48;
    let work = scratch("hardening-fds");
    let log_path = work.join("stderr.log");
    let mut command = Command::new(BIN);
    command
        .args(["--no-proxy", "--no-tls", "-p", "0", "-r"])
        .arg(local_layer(&work.join("reg")))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap());
    // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: FD_LIMIT,
                rlim_max: FD_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = KillOnDrop(command.spawn().unwrap());
    let env =
        harness::read_environment(child.0.stdout.take().unwrap()).expect("the overlay starts");
    let addr = harness::listen_address(&env);

    // More connections than the server has descriptors for: the rest wait in the
    // listen backlog while accepting fails.
    let held: Vec<TcpStream> = (0..2 * FD_LIMIT).map(|_| connect(addr)).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log_path)
        .unwrap()
        .contains("accepting a connection failed")
    {
        assert!(Instant::now() < deadline, "accepting never failed");
        thread::sleep(Duration::from_millis(20));
    }
    let waiting = thread::spawn(move || {
        let request = format!("GET /config.json HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        exchange(addr, request.as_bytes()).status
    });
    thread::sleep(Duration::from_millis(300));
    drop(held);
    // Once descriptors are free again, the waiting request is served.
    assert_eq!(waiting.join().unwrap(), 200);
    let request = format!("GET /config.json HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    assert_eq!(exchange(addr, request.as_bytes()).status, 200);
}

/// A server process that is killed when the test ends, passing or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stop_finishes_the_request_in_progress_and_refuses_new_ones() {
    let work = scratch("drain");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    // A publish whose body is still arriving when the overlay is told to stop. Its
    // 100 Continue says the server has taken the request on.
    let mut upload = connect(overlay.addr);
    let head = format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Expect: 100-continue\r\nContent-Length: 100\r\n\r\n",
        overlay.token()
    );
    upload.write_all(head.as_bytes()).unwrap();
    assert_eq!(read_response(&mut upload).status, 100);
    upload.write_all(&[0u8; 10]).unwrap();
    let terminated = Command::new("kill")
        .args(["-TERM", &overlay.pid().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());

    // Once the stop has begun (the signal is polled), new connections are refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let late = loop {
        let late = exchange(
            overlay.addr,
            b"GET /config.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        if late.status != 200 || Instant::now() > deadline {
            break late;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_refused("during the stop", &late, 503, "shutting down");

    // The upload is finished and answered (a body of zeros is no publish: 400), and
    // the connection is closed after it.
    upload.write_all(&[0u8; 90]).unwrap();
    let answer = read_response(&mut upload);
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.json()["errors"][0]["detail"].is_string());
    let mut rest = Vec::new();
    assert_eq!(upload.read_to_end(&mut rest).unwrap_or(0), 0);
    assert_eq!(overlay.stop(), Some(128 + 15));
}
