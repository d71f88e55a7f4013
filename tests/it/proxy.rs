//! Proxy mode: cargo with no registry configuration reaches the overlay as crates.io,
//! through exec mode or the printed environment, over a TLS or a plain listener.

use crate::harness;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use crate::harness::{
    Cargo, Fixture, Overlay, echo_server, example_workspace, http, local_layer, parse_response,
    scratch,
};

const GREETING: &str = "overlay-demo-tool says: hello from overlay-demo-core";

#[test]
fn workspace_publish_works_with_the_tmp_registry_layer_and_only_with_it() {
    let work = scratch("workspace-publish");
    let workspace = example_workspace(&work);
    let cargo = Cargo::plain();
    let publish = ["publish", "--workspace", "--allow-dirty"];

    // Without cargo's tmp-registry in the stack, the build script's inner cargo cannot
    // find the workspace crate that is not published yet.
    let without = work.join("without");
    let out = cargo.exec(&workspace, &["-r", &local_layer(&without)], &publish);
    assert!(!out.0.status.success(), "{}", out.all());
    out.assert_stderr_has("no matching package named `overlay-demo-core` found");

    // With it, the whole workspace lands in the local layer.
    let first = work.join("first");
    let out = cargo.exec(
        &workspace,
        &["-r", &local_layer(&first), "-r", "cargo-package"],
        &publish,
    );
    assert!(out.0.status.success(), "{}", out.all());
    for name in ["overlay-demo-core", "overlay-demo-tool"] {
        assert!(first.join(format!("{name}-0.1.0.crate")).exists(), "{name}");
    }

    // Again, same target dir, fresh layer, named the seed's way: the tmp-registry left by
    // the first run must not make cargo think the crates already exist.
    let second = work.join("second");
    let out = cargo.exec(
        &workspace,
        &[
            "-r",
            &local_layer(&second),
            "-r",
            "local=target/package/tmp-registry",
        ],
        &publish,
    );
    assert!(out.0.status.success(), "{}", out.all());
    assert!(second.join("overlay-demo-tool-0.1.0.crate").exists());

    // A project that depends on them by version only, crates.io style, builds and runs.
    let app = Fixture::binary(
        &work,
        "demo-app",
        "overlay-demo-tool = \"0.1\"\n",
        "fn main() { println!(\"{}\", overlay_demo_tool::greeting()); }\n",
    );
    let out = Cargo::plain().exec(&app.dir, &["-r", &local_layer(&first)], &["run", "-q"]);
    assert!(out.0.status.success(), "{}", out.all());
    assert_eq!(out.stdout().trim(), GREETING);
}

#[test]
fn tls_and_plain_listeners_both_serve_cargo_as_its_proxy() {
    for mode in [&[][..], &["--no-tls"][..]] {
        let work = scratch("listener-modes");
        let layer = local_layer(&work.join("reg"));
        let mut args = mode.to_vec();
        args.extend(["-r", layer.as_str()]);
        let cargo = Cargo::plain();

        let lib = Fixture::library(&work, "proxied", "0.1.0", "through the proxy");
        let out = cargo.exec(
            &lib.dir,
            &args,
            &["publish", "--allow-dirty", "--no-verify"],
        );
        assert!(out.0.status.success(), "{mode:?}: {}", out.all());

        // crates.io's own texts reach cargo through the proxy.
        let bare = Fixture::bare(&work, "unlabelled");
        let out = cargo.exec(
            &bare.dir,
            &args,
            &["publish", "--allow-dirty", "--no-verify"],
        );
        assert!(!out.0.status.success(), "{mode:?}: {}", out.all());
        out.assert_stderr_has("missing or empty metadata fields: description, license.");

        let app = Fixture::binary(
            &work,
            "proxied-app",
            "proxied = \"0.1\"\n",
            "fn main() { println!(\"{}\", proxied::value()); }\n",
        );
        let out = Cargo::plain().exec(&app.dir, &args, &["run", "-q"]);
        assert!(out.0.status.success(), "{mode:?}: {}", out.all());
        assert_eq!(out.stdout().trim(), "through the proxy");
    }
}

#[test]
fn exec_mode_passes_on_the_exit_code() {
    let work = scratch("exit-code");
    let out = Cargo::plain()
        .isolated(harness::BIN, &work)
        .args([
            "-r",
            "local",
            "--",
            "sh",
            "-c",
            "test -n \"$CARGO_HTTP_PROXY\" && exit 7",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
}

/// Sends `CONNECT authority` and returns the response head's status.
fn send_connect(stream: &mut impl ReadWrite, authority: &str) -> (u16, String) {
    write!(
        stream,
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    )
    .unwrap();
    stream.flush().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let response = parse_response(&head);
    let mut body = vec![
        0;
        response
            .header("content-length")
            .map_or(0, |n| n.parse().unwrap())
    ];
    stream.read_exact(&mut body).unwrap();
    (response.status, String::from_utf8_lossy(&body).into_owned())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Pushes 256 KiB through a tunnel and checks every byte comes back.
fn assert_echoes(stream: &mut impl ReadWrite) {
    let sent: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let mut received = vec![0; sent.len()];
    for (chunk, back) in sent.chunks(16 * 1024).zip(received.chunks_mut(16 * 1024)) {
        stream.write_all(chunk).unwrap();
        stream.flush().unwrap();
        stream.read_exact(back).unwrap();
    }
    assert!(sent == received, "the tunnel changed the bytes");
}

#[test]
fn connect_to_other_hosts_is_a_byte_tunnel_on_allowed_ports_only() {
    let work = scratch("tunnel");
    let port = echo_server().to_string();
    // A plain registry on loopback, the far end of forwarded absolute-form requests.
    let far = Overlay::start(&["-r", &local_layer(&work.join("far"))]);
    let far_port = far.addr.port().to_string();
    let overlay = Overlay::start_with(&[
        "--no-tls",
        "-p",
        "0",
        "--allow-connect-port",
        &port,
        "--allow-connect-port",
        &far_port,
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    let mut stream = TcpStream::connect(overlay.addr).unwrap();
    let (status, _) = send_connect(&mut stream, &format!("127.0.0.1:{port}"));
    assert_eq!(status, 200);
    assert_echoes(&mut stream);

    let mut stream = TcpStream::connect(overlay.addr).unwrap();
    let (status, body) = send_connect(&mut stream, "127.0.0.1:9");
    assert_eq!(status, 403);
    assert!(body.contains("CONNECT to port 9 is not allowed"), "{body}");

    // Absolute-form requests: registry hosts are served, others forwarded on allowed ports.
    let config = http(
        overlay.addr,
        "GET",
        "http://index.crates.io/config.json",
        &[],
        b"",
    );
    assert_eq!(config.status, 200);
    assert_eq!(config.json()["api"], "https://crates.io");
    let forwarded = http(
        overlay.addr,
        "GET",
        &format!("http://127.0.0.1:{far_port}/config.json"),
        &[],
        b"",
    );
    assert_eq!(forwarded.status, 200);
    assert_eq!(
        forwarded.json()["api"],
        format!("http://127.0.0.1:{far_port}")
    );
    assert!(
        far.log().contains("GET /config.json -> 200"),
        "{}",
        far.log()
    );
    let refused = http(overlay.addr, "GET", "http://127.0.0.1:9/", &[], b"");
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .text()
            .contains("forwarding to port 9 is not allowed")
    );
}

#[test]
fn tunnels_go_through_the_upstream_proxy() {
    let work = scratch("tunnel-upstream-proxy");
    let echo = echo_server().to_string();
    let unreachable = echo_server().to_string();
    // The network's proxy: another overlay, allowing the echo port only.
    let network_proxy = Overlay::start_with(&[
        "--no-tls",
        "-p",
        "0",
        "--allow-connect-port",
        &echo,
        "-r",
        &local_layer(&work.join("proxy")),
    ]);
    let overlay = Overlay::start_with(&[
        "--no-tls",
        "-p",
        "0",
        "--upstream-proxy",
        &format!("http://{}", network_proxy.addr),
        "--allow-connect-port",
        &echo,
        "--allow-connect-port",
        &unreachable,
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    let mut stream = TcpStream::connect(overlay.addr).unwrap();
    let (status, _) = send_connect(&mut stream, &format!("127.0.0.1:{echo}"));
    assert_eq!(status, 200);
    assert_echoes(&mut stream);
    let log = network_proxy.log();
    assert!(
        log.contains(&format!("tunnel to 127.0.0.1:{echo}")),
        "the tunnel did not go through the network's proxy:\n{log}"
    );

    // What the network's proxy refuses, the overlay reports, naming it.
    let mut stream = TcpStream::connect(overlay.addr).unwrap();
    let (status, body) = send_connect(&mut stream, &format!("127.0.0.1:{unreachable}"));
    assert_eq!(status, 502);
    assert!(
        body.contains("refused CONNECT") && body.contains("403"),
        "{body}"
    );
}

#[test]
fn tunnels_work_inside_the_tls_listener() {
    let work = scratch("tls-tunnel");
    let ca_file = work.join("ca.pem");
    let port = echo_server().to_string();
    let overlay = Overlay::start_with(&[
        "-p",
        "0",
        "--allow-connect-port",
        &port,
        "--ca-cert-out",
        ca_file.to_str().unwrap(),
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    let mut stream = harness::tls_stream(&ca_file, overlay.addr).unwrap();
    let (status, _) = send_connect(&mut stream, &format!("localhost:{port}"));
    assert_eq!(status, 200);
    assert_echoes(&mut stream);
}

#[test]
fn the_ca_bundle_holds_our_ca_and_the_system_roots_and_no_key() {
    let work = scratch("ca-bundle");
    let ca_file = work.join("exported-ca.pem");
    let overlay = Overlay::start_with(&[
        "-p",
        "0",
        "--ca-cert-out",
        ca_file.to_str().unwrap(),
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    let bundle_path = Path::new(overlay.var("CARGO_HTTP_CAINFO").unwrap()).to_path_buf();
    // The proxy's own certificate comes from our CA: that connection trusts it alone.
    let proxy_ca = fs::read_to_string(overlay.var("CARGO_HTTP_PROXY_CAINFO").unwrap()).unwrap();
    assert_eq!(proxy_ca, fs::read_to_string(&ca_file).unwrap());
    assert_eq!(proxy_ca.matches("BEGIN CERTIFICATE").count(), 1);
    assert!(
        overlay
            .var("CARGO_HTTP_PROXY")
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    let bundle = fs::read_to_string(&bundle_path).unwrap();
    let exported = fs::read_to_string(&ca_file).unwrap();
    assert!(
        bundle.starts_with(exported.trim_end()),
        "our CA comes first"
    );
    assert!(!exported.contains("PRIVATE KEY"));
    let system = fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let system_roots = system.matches("BEGIN CERTIFICATE").count();
    if system_roots > 0 {
        assert_eq!(
            bundle.matches("BEGIN CERTIFICATE").count(),
            1 + system_roots
        );
    }
    // No key anywhere in the run's files: it stays in memory unless --ca-dir asks.
    let run_dir = bundle_path.parent().unwrap();
    for entry in fs::read_dir(run_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert!(
                !fs::read_to_string(&path)
                    .unwrap_or_default()
                    .contains("PRIVATE KEY"),
                "{}",
                path.display()
            );
        }
    }
    drop(overlay);
    assert!(!run_dir.exists(), "the run directory is removed at exit");
}

#[test]
fn a_persistent_ca_is_kept_across_runs() {
    use std::os::unix::fs::PermissionsExt;
    let work = scratch("ca-dir");
    let ca_dir = work.join("ca");
    let args = [
        "-p",
        "0",
        "--ca-dir",
        ca_dir.to_str().unwrap(),
        "-r",
        "local",
    ];
    let first = Overlay::start_with(&args);
    let cert = fs::read_to_string(ca_dir.join("ca.pem")).unwrap();
    let bundle = fs::read_to_string(first.var("CARGO_HTTP_CAINFO").unwrap()).unwrap();
    assert!(bundle.starts_with(cert.trim_end()));
    drop(first);
    let mode = fs::metadata(ca_dir.join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let second = Overlay::start_with(&args);
    assert_eq!(fs::read_to_string(ca_dir.join("ca.pem")).unwrap(), cert);
    // The reloaded CA still signs what clients trust.
    let mut stream = harness::tls_stream(&ca_dir.join("ca.pem"), second.addr).unwrap();
    let (status, _) = send_connect(&mut stream, "127.0.0.1:9");
    assert_eq!(status, 403);
}

#[test]
fn connect_is_refused_without_proxy_mode() {
    let overlay = Overlay::start(&["-r", "local"]);
    let mut stream = TcpStream::connect(overlay.addr).unwrap();
    let (status, body) = send_connect(&mut stream, "index.crates.io:443");
    assert_eq!(status, 405);
    assert!(body.contains("--no-proxy"), "{body}");
}
