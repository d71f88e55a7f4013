//! The overlay's files and its CA against a local attacker (issue 10, finding 7), and
//! SIGHUP (finding 8): what a layer directory someone else can write into can make the
//! overlay serve, whether two spellings of a name published at once both get in, what a
//! CA directory must look like before its key is used, where `--ca-cert-out` writes,
//! what the CA may sign, and that a hang-up cleans up like a SIGTERM.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{
    BIN, Overlay, client_tls_config, crate_file, http, local_layer, manifest, scratch, upload,
};

const SECRET: &str = "SECRET-OUTSIDE-THE-LAYER";

fn index_line(name: &str, version: &str) -> String {
    format!(
        "{{\"name\":\"{name}\",\"vers\":\"{version}\",\"deps\":[],\"cksum\":\"{}\",\
         \"features\":{{}},\"yanked\":false}}\n",
        "0".repeat(64)
    )
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Polls `done` every 20 ms for up to `limit`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn symlinks_in_a_local_layer_are_not_followed() {
    let work = scratch("layer-links");
    let outside = work.join("outside");
    write(&outside.join("secret.crate"), SECRET);
    // Valid index files, outside the layer: one linked as a file, one through a
    // linked index directory.
    write(&outside.join("sec"), &index_line("sec", "1.0.0"));
    write(&outside.join("dir/ts/outs"), &index_line("outs", "1.0.0"));

    let layer = work.join("reg");
    write(
        &layer.join("index/le/ak/leak"),
        &index_line("leak", "1.0.0"),
    );
    symlink(outside.join("secret.crate"), layer.join("leak-1.0.0.crate")).unwrap();
    fs::create_dir_all(layer.join("index/3/s")).unwrap();
    symlink(outside.join("sec"), layer.join("index/3/s/sec")).unwrap();
    symlink(outside.join("dir"), layer.join("index/ou")).unwrap();

    let overlay = Overlay::start(&["-r", &local_layer(&layer)]);
    for path in [
        "/api/v1/crates/leak/1.0.0/download",
        "/3/s/sec",
        "/ou/ts/outs",
    ] {
        let response = overlay.get(path);
        let text = response.text();
        assert_ne!(response.status, 200, "{path}: {text}");
        assert!(!text.contains(SECRET), "{path}: {text}");
        assert!(!text.contains("\"vers\""), "{path}: {text}");
        // A storage error: its details, naming the link, go to the server's log only.
        assert_eq!(response.status, 500, "{path}: {text}");
    }
    let log = overlay.log();
    for link in ["leak-1.0.0.crate", "sec", "ou"] {
        assert!(
            log.contains(&format!(
                "{link} is a symbolic link, which a layer does not follow"
            )),
            "{link}: {log}"
        );
    }
    // The regular files of the layer are still served.
    assert_eq!(overlay.get("/le/ak/leak").status, 200);
    // A publish does not write through a linked index directory either.
    let tarball = crate_file(&[
        (
            "outsider-0.1.0/Cargo.toml",
            b'0',
            &manifest("outsider", "0.1.0"),
            "",
        ),
        ("outsider-0.1.0/src/lib.rs", b'0', "", ""),
    ]);
    let response = publish(&overlay, &upload("outsider", "0.1.0", &tarball));
    assert_ne!(response.0, 200, "{}", response.1);
    assert!(!outside.join("dir/ts/outsider").exists());
}

/// One raw publish through the server: the status and the body.
fn publish(overlay: &Overlay, body: &[u8]) -> (u16, String) {
    let token = overlay
        .var("CARGO_REGISTRIES_OVERLAY_TOKEN")
        .unwrap_or("overlay");
    let response = http(
        overlay.addr,
        "PUT",
        "/api/v1/crates/new",
        &[("Authorization", token), ("Accept", "application/json")],
        body,
    );
    (response.status, response.text())
}

#[test]
fn two_spellings_of_a_name_published_at_once_are_not_both_accepted() {
    const PAIRS: usize = 30;
    let work = scratch("spelling-race");
    let layer = work.join("reg");
    let overlay = Arc::new(Overlay::start(&["-r", &local_layer(&layer)]));
    let bodies: Vec<(String, Vec<u8>)> = (0..PAIRS)
        .flat_map(|n| [format!("race-crate{n}"), format!("race_crate{n}")])
        .map(|name| {
            let tarball = crate_file(&[
                (
                    &format!("{name}-0.1.0/Cargo.toml"),
                    b'0',
                    &manifest(&name, "0.1.0"),
                    "",
                ),
                (&format!("{name}-0.1.0/src/lib.rs"), b'0', "", ""),
            ]);
            let body = upload(&name, "0.1.0", &tarball);
            (name, body)
        })
        .collect();
    let start = Arc::new(Barrier::new(bodies.len()));
    let results: Vec<(String, u16, String)> = thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|(name, body)| {
                let (overlay, start) = (Arc::clone(&overlay), Arc::clone(&start));
                scope.spawn(move || {
                    start.wait();
                    let (status, text) = publish(&overlay, body);
                    (name.clone(), status, text)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for pair in results.chunks(2) {
        let accepted: Vec<_> = pair
            .iter()
            .filter(|(_, status, _)| *status == 200)
            .collect();
        assert_eq!(accepted.len(), 1, "{pair:?}");
        let (_, status, text) = pair.iter().find(|(_, s, _)| *s != 200).unwrap();
        assert_eq!(*status, 400, "{text}");
        assert!(text.contains("crate was previously named"), "{text}");
        // Only the accepted spelling has an index file.
        let stored: Vec<_> = pair
            .iter()
            .filter(|(name, _, _)| layer.join("index/ra/ce").join(name).exists())
            .collect();
        assert_eq!(stored.len(), 1, "{pair:?}");
    }
}

/// The overlay's stderr when it refuses to start with `args`.
fn refusal(args: &[&str]) -> String {
    match Overlay::try_start(args) {
        Ok(overlay) => panic!("started although it should not:\n{}", overlay.log()),
        Err(log) => log,
    }
}

#[test]
fn a_ca_directory_or_key_open_to_others_is_refused() {
    let work = scratch("ca-dir-modes");
    let dir = work.join("ca");
    fs::create_dir_all(&dir).unwrap();
    set_mode(&dir, 0o755);
    let args = ["-p", "0", "--no-proxy", "--ca-dir", dir.to_str().unwrap()];
    let log = refusal(&args);
    assert!(log.contains(&format!("{}: ", dir.display())), "{log}");
    assert!(log.contains("mode 0755"), "{log}");
    assert!(
        log.contains(&format!("chmod 700 {}", dir.display())),
        "{log}"
    );
    assert!(
        !dir.join("ca-key.pem").exists(),
        "no key goes into an open directory"
    );

    set_mode(&dir, 0o700);
    Overlay::start_with(&args).stop();
    let key = dir.join("ca-key.pem");
    set_mode(&key, 0o644);
    let log = refusal(&args);
    assert!(log.contains("mode 0644"), "{log}");
    assert!(
        log.contains(&format!("chmod 600 {}", key.display())),
        "{log}"
    );

    set_mode(&key, 0o600);
    Overlay::start_with(&args).stop();
}

#[test]
fn ca_cert_out_replaces_a_symlink_instead_of_writing_through_it() {
    let work = scratch("cert-out-link");
    let victim = work.join("victim");
    write(&victim, "precious\n");
    let out = work.join("ca.pem");
    symlink(&victim, &out).unwrap();
    let overlay = Overlay::start_with(&["-p", "0", "--ca-cert-out", out.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
    assert!(
        fs::read_to_string(&out)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    overlay.stop();
}

/// A TLS handshake inside a `CONNECT host:443` tunnel through a plain listener, with
/// `sni` as the name the client asks for.
fn handshake_in_tunnel(
    overlay: &Overlay,
    ca_file: &Path,
    host: &str,
    sni: &str,
) -> Result<(), String> {
    let mut stream = TcpStream::connect(overlay.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut client =
        rustls::ClientConnection::new(Arc::new(client_tls_config(ca_file)), name).unwrap();
    while client.is_handshaking() {
        client.complete_io(&mut stream).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[test]
fn the_ca_signs_leaves_only_for_the_intercepted_hosts() {
    let work = scratch("ca-constraints");
    let ca_file = work.join("ca.pem");
    let overlay = Overlay::start_with(&[
        "-p",
        "0",
        "--no-tls",
        "-r",
        "local",
        "--ca-cert-out",
        ca_file.to_str().unwrap(),
    ]);

    // The certificate, as OpenSSL reads it (where the command exists).
    match Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&ca_file)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            for expected in [
                "CA:TRUE, pathlen:0",
                "X509v3 Key Usage: critical\n                Certificate Sign\n",
                "X509v3 Name Constraints: critical",
                "DNS:crates.io",
                "DNS:index.crates.io",
                "DNS:static.crates.io",
                "DNS:localhost",
                "IP:127.0.0.1/255.255.255.255",
            ] {
                assert!(text.contains(expected), "{expected:?} missing in\n{text}");
            }
        }
        Err(e) => eprintln!("openssl not run ({e}); checking the handshakes only"),
    }

    // Inside an intercepted tunnel, only intercepted names get a certificate.
    handshake_in_tunnel(&overlay, &ca_file, "index.crates.io", "index.crates.io").unwrap();
    handshake_in_tunnel(&overlay, &ca_file, "index.crates.io", "static.crates.io").unwrap();
    for sni in ["github.com", "localhost", "evil.crates.io.example"] {
        let err = handshake_in_tunnel(&overlay, &ca_file, "index.crates.io", sni).unwrap_err();
        assert!(!err.is_empty());
        assert!(
            overlay.log().contains(&format!("refusing TLS for {sni}")),
            "{sni}: {err}"
        );
    }
    overlay.stop();
}

/// The run directory, found through the CA bundle it holds.
fn run_dir(cainfo: &str) -> PathBuf {
    let dir = Path::new(cainfo).parent().unwrap().to_path_buf();
    assert!(dir.is_dir(), "{}", dir.display());
    dir
}

#[test]
fn sighup_ends_the_exec_mode_child_and_removes_the_run_directory() {
    let work = scratch("hup-exec");
    let pid_file = work.join("child.pid");
    let cainfo_file = work.join("cainfo");
    // The pid file appears whole, and after the CA bundle's path is written.
    let script = format!(
        "echo \"$CARGO_HTTP_CAINFO\" > {cainfo}; echo $$ > {pid}.tmp; mv {pid}.tmp {pid}; \
         exec sleep 30",
        cainfo = cainfo_file.display(),
        pid = pid_file.display()
    );
    let mut overlay = Command::new(BIN)
        .args(["-r", "local", "--", "sh", "-c", &script])
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(work.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || pid_file.exists()),
        "the command did not start: {}",
        fs::read_to_string(work.join("stderr.log")).unwrap_or_default()
    );
    let child_pid = fs::read_to_string(&pid_file).unwrap().trim().to_string();
    let run_dir = run_dir(fs::read_to_string(&cainfo_file).unwrap().trim());

    Command::new("kill")
        .args(["-HUP", &overlay.id().to_string()])
        .status()
        .unwrap();
    let exited = wait_for(Duration::from_secs(10), || {
        overlay.try_wait().unwrap().is_some()
    });
    let child_alive = Path::new(&format!("/proc/{child_pid}")).exists();
    if child_alive {
        let _ = Command::new("kill").args(["-KILL", &child_pid]).status();
    }
    if !exited {
        let _ = overlay.kill();
    }
    let status = overlay.wait().unwrap();
    assert!(exited, "the overlay did not stop on SIGHUP");
    assert_eq!(status.code(), Some(128 + 1), "{status:?}");
    assert!(!child_alive, "the child runs on");
    assert!(!run_dir.exists(), "{} is left behind", run_dir.display());
}

#[test]
fn sighup_stops_serve_mode_cleanly() {
    let overlay = Overlay::start_with(&["-p", "0", "--no-tls", "-r", "local"]);
    let run_dir = run_dir(overlay.var("CARGO_HTTP_CAINFO").unwrap());
    assert_eq!(overlay.get("/config.json").status, 200);
    assert_eq!(overlay.stop_with("HUP"), Some(128 + 1));
    assert!(!run_dir.exists(), "{} is left behind", run_dir.display());
}
