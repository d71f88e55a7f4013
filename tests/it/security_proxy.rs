//! The proxy and the upstream client against clients and upstreams that try to use
//! the overlay as a way in: request targets that name one port and reach another,
//! link-local destinations, names that fill the resolver's cache, endless answers
//! without a length, more TLS connections than `--max-connections`, and redirects out
//! of a remote layer's origin. Each test runs the real binary; every far end is a tiny
//! server on loopback in a test thread that records whether it was reached.

use crate::harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Overlay, assert_error, detail, http, local_layer, parse_response, scratch};

/// A server on `ip`:0 that counts connections and answers each request with
/// `answer(path)`, then closes. Answers say `Connection: close`, or a client that
/// pools connections may send its next request into the closed one.
struct Far {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Far {
    fn start(ip: &str, answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Far {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let answer = Arc::new(answer);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                let answer = Arc::clone(&answer);
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    // The rest of the head.
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let _ = stream.write_all(&answer(&path));
                });
            }
        });
        Far { addr, hits }
    }

    /// A server that must never be reached.
    fn victim() -> Far {
        Far::start("127.0.0.1", |_| {
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 6\r\n\r\nvictim".to_vec()
        })
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// An overlay in proxy mode on plain HTTP, with `args` added.
fn proxy(work: &Path, args: &[&str]) -> Overlay {
    let layer = local_layer(&work.join("reg"));
    let mut all = vec!["--no-tls", "-p", "0", "-r", &layer];
    all.extend_from_slice(args);
    Overlay::start_with(&all)
}

/// Sends `CONNECT authority` and returns the status and body of the answer.
fn connect(proxy: SocketAddr, authority: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(proxy).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let response = parse_response(&raw);
    (response.status, response.text())
}

/// A field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn targets_that_name_one_port_and_reach_another_are_refused() {
    let work = scratch("ssrf-forms");
    let victim = Far::victim();
    let v = victim.port();
    let overlay = proxy(&work, &[]);
    // Port 80 is allowed for forwards; each form below once reached port `v`.
    for (target, status, text) in [
        (
            format!("http://127.0.0.1:{v}?:80/"),
            403,
            "forwarding to port",
        ),
        (
            format!("http://127.0.0.1:{v}#:80/"),
            403,
            "forwarding to port",
        ),
        (
            format!("http://127.0.0.1:{v}/?:80"),
            403,
            "forwarding to port",
        ),
        (
            format!("http://127.0.0.1:80@127.0.0.1:{v}/"),
            400,
            "user information",
        ),
        (format!("http://x@127.0.0.1:{v}/"), 400, "user information"),
    ] {
        let response = http(overlay.addr, "GET", &target, &[], b"");
        assert_eq!(response.status, status, "{target}: {}", response.text());
        assert!(
            detail(&response).contains(text),
            "{target}: {}",
            response.text()
        );
    }
    let (status, body) = connect(overlay.addr, &format!("127.0.0.1:443@127.0.0.1:{v}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("user information"), "{body}");
    assert_eq!(victim.hits(), 0, "the victim port was reached");
}

#[test]
fn a_destination_that_cannot_be_reached_gets_one_answer_whatever_the_cause() {
    let work = scratch("ssrf-uniform");
    // A port that was listening and is now closed: connecting is refused.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let overlay = proxy(&work, &["--allow-connect-port", &port]);
    let forwarded = http(
        overlay.addr,
        "GET",
        &format!("http://127.0.0.1:{port}/"),
        &[],
        b"",
    );
    assert_eq!(forwarded.status, 502);
    let (status, tunnel) = connect(overlay.addr, &format!("127.0.0.1:{port}"));
    assert_eq!(status, 502);
    let expected = format!(
        "127.0.0.1:{port} cannot be reached through this proxy; the overlay's log has the reason"
    );
    assert_eq!(detail(&forwarded), expected);
    assert!(tunnel.contains(&expected), "{tunnel}");
    // The reason is in the log only.
    assert!(overlay.log().to_lowercase().contains("refused"));
}

#[test]
fn link_local_destinations_are_refused_for_forwards_and_tunnels() {
    let work = scratch("ssrf-link-local");
    let overlay = proxy(&work, &[]);
    for target in [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254:80/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
    ] {
        let response = http(overlay.addr, "GET", target, &[], b"");
        assert_eq!(response.status, 403, "{target}: {}", response.text());
        assert!(detail(&response).contains("link-local"), "{target}");
    }
    for authority in ["169.254.169.254:443", "[fe80::1]:443"] {
        let (status, body) = connect(overlay.addr, authority);
        assert_eq!(status, 403, "{authority}: {body}");
        assert!(body.contains("link-local"), "{authority}: {body}");
    }
}

#[test]
fn many_distinct_destinations_do_not_grow_the_server() {
    let work = scratch("dns-cache");
    let overlay = proxy(&work, &[]);
    let pid = overlay.pid();
    let mut stream = TcpStream::connect(overlay.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    // Each a destination of its own, on loopback where nothing listens on port 80.
    let mut forward = |i: u32| {
        let [_, a, b, c] = (i + 1).to_be_bytes();
        let request =
            format!("GET http://127.{a}.{b}.{c}:80/ HTTP/1.1\r\nHost: 127.{a}.{b}.{c}\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut len = 0;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
    };
    for i in 0..200 {
        forward(i);
    }
    let baseline = status_kib(pid, "VmRSS");
    let hwm_before = status_kib(pid, "VmHWM");
    let start = Instant::now();
    let mut sent = 200;
    while sent < 20_200 && start.elapsed() < Duration::from_secs(60) {
        forward(sent);
        sent += 1;
    }
    let peak = status_kib(pid, "VmHWM").max(hwm_before);
    let grown = peak.saturating_sub(baseline);
    eprintln!("{sent} destinations: RSS {baseline} KiB at start, peak {peak} KiB");
    assert!(sent > 5_000, "only {sent} requests in a minute");
    assert!(
        grown < 8 * 1024,
        "{sent} destinations grew the server by {grown} KiB"
    );
}

/// Reads a response head from `reader`, up to its blank line.
fn read_head(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            return head;
        }
    }
}

/// Reads a chunked body from `reader`, counting its bytes.
fn chunked_len(reader: &mut impl BufRead) -> u64 {
    let mut total = 0;
    let mut line = String::new();
    let mut sink = vec![0; 64 * 1024];
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let size = u64::from_str_radix(line.trim(), 16).unwrap();
        if size == 0 {
            return total;
        }
        let mut left = size;
        while left > 0 {
            let n = left.min(sink.len() as u64) as usize;
            reader.read_exact(&mut sink[..n]).unwrap();
            left -= n as u64;
        }
        total += size;
        reader.read_line(&mut line).unwrap();
    }
}

/// The size of the answers without a length that the streaming tests send.
const UNSIZED_LEN: usize = 100 * 1024 * 1024;

/// A far answer of `UNSIZED_LEN` bytes without a length, delimited by closing.
fn unsized_answer() -> Vec<u8> {
    let mut answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    answer.resize(answer.len() + UNSIZED_LEN, b'x');
    answer
}

/// Sends `request` to `overlay`, reads the whole chunked answer, and asserts it held
/// `UNSIZED_LEN` bytes and grew the server's peak memory by under 16 MiB.
fn assert_streams_through(overlay: &Overlay, request: &str) {
    let pid = overlay.pid();
    let baseline = status_kib(pid, "VmRSS");
    let mut stream = TcpStream::connect(overlay.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let head = read_head(&mut reader);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    assert_eq!(chunked_len(&mut reader), UNSIZED_LEN as u64);
    let grown = status_kib(pid, "VmHWM").saturating_sub(baseline);
    assert!(
        grown < 16 * 1024,
        "100 MB streamed grew the server by {grown} KiB"
    );
}

#[test]
fn an_answer_without_a_length_streams_through() {
    let work = scratch("unsized-forward");
    let far = Far::start("127.0.0.1", |_| unsized_answer());
    let port = far.port();
    let overlay = proxy(&work, &["--allow-connect-port", &port]);
    assert_streams_through(
        &overlay,
        &format!("GET http://127.0.0.1:{port}/big HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    );
}

#[test]
fn a_remote_layers_download_without_a_length_streams_through() {
    let upstream = registry("127.0.0.1", |_, path| {
        (path == "/dl/foo/0.1.0").then(unsized_answer)
    });
    // No --cache: the download is streamed to the client as it arrives.
    let overlay = Overlay::start(&["-r", &format!("remote={}/", upstream_url(&upstream))]);
    assert_streams_through(
        &overlay,
        "GET /api/v1/crates/foo/0.1.0/download HTTP/1.1\r\nHost: overlay\r\n\r\n",
    );
}

#[test]
fn the_tls_listener_answers_503_past_max_connections() {
    let work = scratch("tls-503");
    let ca_file = work.join("ca.pem");
    let overlay = Overlay::start_with(&[
        "--no-proxy",
        "-p",
        "0",
        "--max-connections",
        "1",
        "--ca-cert-out",
        ca_file.to_str().unwrap(),
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    // A client that says nothing holds the only worker.
    let _held = TcpStream::connect(overlay.addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let response = loop {
        match tls_get(&ca_file, overlay.addr) {
            Ok(raw) => break parse_response(&raw),
            Err(e) => assert!(
                Instant::now() < deadline,
                "no answer inside TLS: {e}\n{}",
                overlay.log()
            ),
        }
        // The held connection may not have reached its worker yet.
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(detail(&response).contains("connections are already being served"));

    // Clients that never finish a handshake take up the refusals that run at once
    // (16), each for at most 5 s; past them, a connection is closed without a word,
    // and the accept loop goes on.
    let silent: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(overlay.addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    assert!(
        tls_get(&ca_file, overlay.addr).is_err(),
        "answered past the bound"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    drop(silent);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tls_get(&ca_file, overlay.addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the refusals were not given back"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// `GET /config.json` over TLS on a new connection; the raw answer.
fn tls_get(ca_file: &Path, addr: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut tls = harness::tls_stream(ca_file, addr)?;
    let request = format!("GET /config.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw)?;
    if raw.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(raw)
}

/// A sparse registry in a test thread on `ip`, with crate `foo 0.1.0`, whose
/// `config.json`, index file and download answer as `route` says for their path.
fn registry(
    ip: &str,
    route: impl Fn(&str, &str) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> Far {
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let own = Arc::clone(&base);
    let far = Far::start(ip, move |path| {
        let base = own.get().unwrap();
        if let Some(answer) = route(base, path) {
            return answer;
        }
        match path {
            "/config.json" => ok(&format!(r#"{{"dl":"{base}/dl/{{crate}}/{{version}}"}}"#)),
            "/3/f/foo" => ok(&index_line("foo")),
            _ => {
                b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
        }
    });
    base.set(format!("http://{}", far.addr)).unwrap();
    far
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn index_line(name: &str) -> String {
    format!(
        r#"{{"name":"{name}","vers":"0.1.0","deps":[],"cksum":"00","features":{{}},"yanked":false}}"#
    )
}

fn redirect(to: &str) -> Option<Vec<u8>> {
    Some(
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes(),
    )
}

#[test]
fn an_index_does_not_redirect_the_overlay_to_another_origin() {
    let victim = Far::victim();
    let to = format!("http://{}/3/f/foo", victim.addr);
    let upstream = registry("127.0.0.1", move |_, path| match path {
        "/3/f/foo" => redirect(&to),
        // Within the origin, a redirect is followed.
        "/3/b/baz" => redirect("/moved/baz"),
        "/moved/baz" => Some(ok(&index_line("baz"))),
        _ => None,
    });
    // Named, so the layer's requests go through the resolver and its cache too.
    let layer = format!("remote=http://localhost:{}/", upstream.port());
    let overlay = Overlay::start(&["-r", &layer]);
    let response = overlay.get("/3/f/foo");
    assert_error("/3/f/foo", &response, 502, "leaves the registry's origin");
    assert_eq!(victim.hits(), 0, "the redirect was followed");
    let moved = overlay.get("/3/b/baz");
    assert_eq!(moved.status, 200, "{}", moved.text());
    assert!(moved.text().contains(r#""name":"baz""#), "{}", moved.text());
}

fn upstream_url(far: &Far) -> String {
    format!("http://{}", far.addr)
}

#[test]
fn downloads_are_redirected_to_https_only_and_never_to_link_local() {
    let victim = Far::victim();
    let plain = format!("http://{}/foo.crate", victim.addr);
    let upstream = registry("127.0.0.1", move |_, path| match path {
        "/dl/foo/0.1.0" => redirect(&plain),
        "/dl/bar/0.1.0" => redirect("https://169.254.169.254/bar.crate"),
        "/3/b/bar" => Some(ok(&index_line("bar"))),
        _ => None,
    });
    let overlay = Overlay::start(&["-r", &format!("remote={}/", upstream_url(&upstream))]);
    let response = overlay.get("/api/v1/crates/foo/0.1.0/download");
    assert_error(
        "/api/v1/crates/foo/0.1.0/download",
        &response,
        502,
        "over https only",
    );
    assert_eq!(victim.hits(), 0, "the redirect to http was followed");
    let start = Instant::now();
    let response = overlay.get("/api/v1/crates/bar/0.1.0/download");
    assert_error(
        "/api/v1/crates/bar/0.1.0/download",
        &response,
        502,
        "link-local",
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "it tried to connect"
    );
}

/// This machine's address on its way out, if it has one other than loopback. UDP
/// `connect` sends nothing: it only picks the route.
fn outward_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn a_download_is_not_redirected_to_loopback_from_a_registry_elsewhere() {
    let Some(ip) = outward_address() else {
        eprintln!("skipped: this machine has no address but loopback");
        return;
    };
    let victim = Far::victim();
    // A name: the refusal is of the address it resolves to.
    let to = format!("https://localhost:{}/foo.crate", victim.port());
    let upstream = registry(&ip.to_string(), move |_, path| {
        (path == "/dl/foo/0.1.0").then(|| redirect(&to)).flatten()
    });
    let overlay = Overlay::start(&["-r", &format!("remote={}/", upstream_url(&upstream))]);
    let response = overlay.get("/api/v1/crates/foo/0.1.0/download");
    assert_error(
        "/api/v1/crates/foo/0.1.0/download",
        &response,
        502,
        "loopback",
    );
    assert_eq!(victim.hits(), 0, "the redirect to loopback was followed");
}
