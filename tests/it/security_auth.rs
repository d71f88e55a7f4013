//! Who may write and who may use the proxy (issue 10, findings 3, 4 and 6): the real
//! binary, real cargo, and raw requests for what cargo cannot express.

use crate::harness;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{
    Cargo, Fixture, Overlay, PUBLISH, detail, echo_server, http, local_layer, parse_response,
    scratch,
};

/// `Proxy-Authorization` for `user:password`, as curl and git send it.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let credentials = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// A token file holding `tokens`, one per line.
fn token_file(dir: &Path, name: &str, tokens: &[&str]) -> String {
    let path = dir.join(name);
    fs::write(&path, tokens.join("\n") + "\n").unwrap();
    path.to_str().unwrap().to_string()
}

// Finding 4: writes need a secret even on loopback.

#[test]
fn writes_need_the_token_made_for_the_run() {
    let work = scratch("run-token");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let token = overlay.token().to_string();
    // At least 128 bits, base64url: 22 characters or more, none the old constant.
    assert!(token.len() >= 22 && token != "overlay", "{token}");
    let other = Overlay::start(&["-r", "local"]);
    assert_ne!(other.token(), token, "each run makes its own token");

    // No token, or the constant every client used to get: refused, saying where the
    // token is, and before the body is looked at.
    for authorization in [None, Some("overlay"), Some(other.token())] {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        let refused = http(overlay.addr, "PUT", "/api/v1/crates/new", &headers, b"junk");
        assert_eq!(refused.status, 403, "{authorization:?}: {}", refused.text());
        assert!(
            detail(&refused).contains("printed at start as CARGO_REGISTRIES_OVERLAY_TOKEN"),
            "{}",
            refused.text()
        );
        let yank = http(
            overlay.addr,
            "DELETE",
            "/api/v1/crates/x/1.0.0/yank",
            &headers,
            b"",
        );
        assert_eq!(yank.status, 403, "{}", yank.text());
    }

    // cargo with the old constant is refused with crates.io's words and the hint.
    let krate = Fixture::library(&work, "guarded-run", "0.1.0", "x");
    let out = Cargo::new(&overlay)
        .command(&krate.dir, PUBLISH)
        .env("CARGO_REGISTRIES_OVERLAY_TOKEN", "overlay")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(!work.join("reg/guarded-run-0.1.0.crate").exists());

    // cargo with the printed environment publishes; reads need no token.
    Cargo::new(&overlay).publish(&krate.dir);
    assert!(work.join("reg/guarded-run-0.1.0.crate").exists());
    assert_eq!(overlay.get("/gu/ar/guarded-run").status, 200);
}

#[test]
fn exec_mode_hands_the_command_the_run_token_and_never_the_users_own() {
    let work = scratch("exec-token");
    // A user with tokens of their own in the environment, meant for other registries.
    let print = Cargo::plain()
        .isolated(harness::BIN, &work)
        .env("CARGO_REGISTRY_TOKEN", "users-crates-io-token")
        .env("CARGO_REGISTRIES_OVERLAY_TOKEN", "users-own-token")
        .args(["-r", "local", "--", "sh", "-c"])
        .arg("echo \"$CARGO_REGISTRY_TOKEN $CARGO_REGISTRIES_OVERLAY_TOKEN\"")
        .output()
        .unwrap();
    assert!(print.status.success());
    let stdout = String::from_utf8_lossy(&print.stdout);
    let tokens: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(tokens.len(), 2, "{stdout}");
    assert_eq!(tokens[0], tokens[1], "both variables carry the run's token");
    assert!(tokens[0].len() >= 22, "{stdout}");
    assert!(!stdout.contains("users-"), "{stdout}");

    // And cargo publish in exec mode works with it, in proxy mode and without.
    for mode in [&[][..], &["--no-proxy", "--no-tls"][..]] {
        let reg = work.join(format!("reg-{}", mode.len()));
        let layer = local_layer(&reg);
        let mut args = mode.to_vec();
        args.extend(["-r", layer.as_str()]);
        let krate = Fixture::library(&work.join(mode.len().to_string()), "exec-pub", "0.1.0", "x");
        let mut publish = vec!["publish", "--no-verify", "--allow-dirty"];
        if !mode.is_empty() {
            publish.extend(["--registry", "overlay"]);
        }
        let out = Cargo::plain().exec(&krate.dir, &args, &publish);
        assert!(out.0.status.success(), "{mode:?}: {}", out.all());
        assert!(reg.join("exec-pub-0.1.0.crate").exists(), "{mode:?}");
    }
}

#[test]
fn anonymous_writes_are_an_explicit_choice_on_loopback_only() {
    let work = scratch("anonymous-writes");
    let overlay = Overlay::start(&["--anonymous-writes", "-r", &local_layer(&work.join("reg"))]);
    // No token: the publish gets past authentication to the upload checks.
    let junk = http(overlay.addr, "PUT", "/api/v1/crates/new", &[], b"junk");
    assert_ne!(junk.status, 403, "{}", junk.text());
    assert!(junk.text().contains("JSON metadata"), "{}", junk.text());
    let out = Overlay::try_start(&[
        "--no-proxy",
        "--no-tls",
        "-p",
        "0",
        "-H",
        "0.0.0.0",
        "--anonymous-writes",
        "-r",
        "local",
    ])
    .err()
    .expect("--anonymous-writes beyond loopback is refused");
    assert!(
        out.contains("refusing to listen on 0.0.0.0") && out.contains("--anonymous-writes"),
        "{out}"
    );
}

#[test]
fn the_run_directory_and_its_files_are_private_whatever_the_umask() {
    // A umask that takes nothing away: what the overlay creates must restrict itself.
    let mut child = Command::new("sh")
        .args(["-c", "umask 000 && exec \"$0\" \"$@\"", harness::BIN])
        .args(["-p", "0", "--no-tls", "-r", "local"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let env = harness::read_environment(child.stdout.take().unwrap()).expect("it starts");
    let bundle = env
        .iter()
        .find(|(name, _)| name == "CARGO_HTTP_CAINFO")
        .map(|(_, value)| Path::new(value).to_path_buf())
        .expect("proxy mode prints its CA bundle");
    let run_dir = bundle.parent().unwrap().to_path_buf();
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let result = std::panic::catch_unwind(|| {
        assert_eq!(mode(&run_dir), 0o700, "{}", run_dir.display());
        assert_eq!(mode(&bundle), 0o600, "{}", bundle.display());
        // A publish fills the temporary layer: its files and directories too.
        let token = env
            .iter()
            .find(|(name, _)| name == "CARGO_REGISTRIES_OVERLAY_TOKEN")
            .map(|(_, value)| value.clone())
            .unwrap();
        let crate_bytes = harness::crate_file(&[(
            "private-0.1.0/Cargo.toml",
            b'0',
            &harness::manifest("private", "0.1.0"),
            "",
        )]);
        let body = harness::upload("private", "0.1.0", &crate_bytes);
        let addr = harness::listen_address(&env);
        let published = http(
            addr,
            "PUT",
            "/api/v1/crates/new",
            &[("Authorization", &token)],
            &body,
        );
        assert_eq!(published.status, 200, "{}", published.text());
        let mut walked = 0;
        let mut dirs = vec![run_dir.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    assert_eq!(mode(&path), 0o700, "{}", path.display());
                    dirs.push(path);
                } else {
                    assert_eq!(mode(&path), 0o600, "{}", path.display());
                }
                walked += 1;
            }
        }
        assert!(
            walked >= 6,
            "the layer's files were walked ({walked} entries)"
        );
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert!(!run_dir.exists(), "removed at exit");
}

// Finding 3: the proxy is no open relay.

/// Sends `CONNECT authority` with `headers` and reads the answer's head and body.
fn connect(
    addr: SocketAddr,
    authority: &str,
    headers: &[(&str, &str)],
) -> (TcpStream, u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8];
    while !raw.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        raw.push(byte[0]);
    }
    let response = parse_response(&raw);
    let len = response
        .header("content-length")
        .map_or(0, |n| n.parse().unwrap());
    let mut body = vec![0; len];
    stream.read_exact(&mut body).unwrap();
    if response.status == 407 {
        assert_eq!(
            response.header("proxy-authenticate"),
            Some("Basic realm=\"cargo-overlay-registry\"")
        );
    }
    (
        stream,
        response.status,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[test]
fn proxy_requests_need_a_token_as_the_proxy_password_with_auth_required() {
    let work = scratch("proxy-auth");
    let tokens = token_file(&work, "tokens", &["# team", "first-token", "second-token"]);
    let echo = echo_server().to_string();
    let far = Overlay::start(&["-r", &local_layer(&work.join("far"))]);
    let far_port = far.addr.port().to_string();
    let overlay = Overlay::start_with(&[
        "--no-tls",
        "-p",
        "0",
        "--auth-required",
        "--token-file",
        &tokens,
        "--allow-connect-port",
        &echo,
        "--allow-connect-port",
        &far_port,
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    assert_eq!(
        overlay.var("CARGO_HTTP_PROXY"),
        Some(format!("http://overlay:first-token@{}", overlay.addr).as_str())
    );
    let echo_target = format!("127.0.0.1:{echo}");

    // CONNECT, to a passthrough port and to an intercepted host alike.
    for target in [echo_target.as_str(), "index.crates.io:443"] {
        for refused in [
            None,
            Some(basic("overlay", "wrong-token")),
            Some("Bearer first-token".to_string()),
        ] {
            let headers: Vec<(&str, &str)> = refused
                .as_deref()
                .map(|v| vec![("Proxy-Authorization", v)])
                .unwrap_or_default();
            let (_, status, body) = connect(overlay.addr, target, &headers);
            assert_eq!(status, 407, "{target} {refused:?}: {body}");
            assert!(body.contains("overlay:TOKEN@"), "{body}");
        }
    }
    // Any user name, any of the tokens.
    let credentials = basic("anyone", "second-token");
    let (mut tunnel, status, _) = connect(
        overlay.addr,
        &echo_target,
        &[("Proxy-Authorization", &credentials)],
    );
    assert_eq!(status, 200);
    tunnel.write_all(b"through").unwrap();
    let mut back = [0u8; 7];
    tunnel.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"through");

    // Absolute-form requests: forwarded or intercepted, only with the credential.
    for target in [
        format!("http://127.0.0.1:{far_port}/config.json"),
        "http://index.crates.io/config.json".to_string(),
    ] {
        let refused = http(overlay.addr, "GET", &target, &[], b"");
        assert_eq!(refused.status, 407, "{target}: {}", refused.text());
        assert!(refused.header("proxy-authenticate").is_some());
        let passed = http(
            overlay.addr,
            "GET",
            &target,
            &[
                ("Proxy-Authorization", &basic("overlay", "first-token")),
                ("Authorization", "first-token"),
            ],
            b"",
        );
        assert_eq!(passed.status, 200, "{target}: {}", passed.text());
    }
    // The registry's own origin-form routes answer as before: 401 asks for the token.
    assert_eq!(overlay.get("/config.json").status, 401);
}

#[test]
fn cargo_builds_through_a_proxy_that_requires_credentials() {
    let work = scratch("proxy-auth-cargo");
    let tokens = token_file(&work, "tokens", &["cargo-proxy-token"]);
    let layer = local_layer(&work.join("reg"));
    let args = [
        "-p",
        "0",
        "--auth-required",
        "--token-file",
        tokens.as_str(),
        "-r",
        layer.as_str(),
    ];
    let overlay = Overlay::start_with(&args);
    assert_eq!(
        overlay.var("CARGO_HTTP_PROXY"),
        Some(format!("https://overlay:cargo-proxy-token@{}", overlay.addr).as_str())
    );
    let cargo = Cargo::new(&overlay);
    // Proxy mode: cargo publishes to "crates.io" and builds with a crates.io-style
    // dependency, all through the overlay's proxy with the credential in its URL.
    let lib = Fixture::library(
        &work,
        "behind-proxy",
        "0.1.0",
        "through an authenticated proxy",
    );
    cargo.ok(&lib.dir, &["publish", "--no-verify", "--allow-dirty"]);
    let app = Fixture::binary(
        &work,
        "proxy-auth-app",
        "behind-proxy = \"0.1\"\n",
        "fn main() { println!(\"{}\", behind_proxy::value()); }\n",
    );
    let run = cargo.ok(&app.dir, &["run", "-q"]);
    assert_eq!(run.stdout().trim(), "through an authenticated proxy");

    // The same proxy without the credential in its URL: cargo is refused.
    let bare_proxy = format!("https://{}", overlay.addr);
    fs::remove_file(app.dir.join("Cargo.lock")).unwrap();
    let fresh = Cargo::new(&overlay);
    let out = fresh
        .command(&app.dir, &["generate-lockfile"])
        .env("CARGO_HTTP_PROXY", &bare_proxy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("407"), "{stderr}");
    drop(overlay);

    // Exec mode hands the command a proxy URL with the credential.
    let out = Cargo::plain().exec(&app.dir, &args, &["run", "-q"]);
    assert!(out.0.status.success(), "{}", out.all());
    assert_eq!(out.stdout().trim(), "through an authenticated proxy");
}

#[test]
fn a_listener_beyond_loopback_needs_a_token_file_and_then_proxy_credentials() {
    let work = scratch("non-loopback");
    let refused = Overlay::try_start(&["--no-tls", "-p", "0", "-H", "0.0.0.0", "-r", "local"])
        .err()
        .expect("a listener on every interface without --token-file is refused");
    assert!(
        refused.contains("refusing to listen on 0.0.0.0")
            && refused.contains("pass --token-file FILE"),
        "{refused}"
    );
    // The machine's own address on its default route, when it has one.
    if let Some(own) = interface_address() {
        let refused = Overlay::try_start(&["--no-tls", "-p", "0", "-H", &own, "-r", "local"])
            .err()
            .expect("a listener on an interface address without --token-file is refused");
        assert!(refused.contains("--token-file"), "{refused}");
    }

    // With tokens it starts, and its proxy wants them even without --auth-required.
    let tokens = token_file(&work, "tokens", &["team-token"]);
    let overlay = Overlay::start_with(&[
        "--no-tls",
        "-p",
        "0",
        "-H",
        "0.0.0.0",
        "--token-file",
        &tokens,
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    let addr: SocketAddr = format!("127.0.0.1:{}", overlay.addr.port())
        .parse()
        .unwrap();
    let (_, status, _) = connect(addr, "index.crates.io:443", &[]);
    assert_eq!(status, 407);
    let credentials = basic("x", "team-token");
    let (_, status, _) = connect(
        addr,
        "index.crates.io:443",
        &[("Proxy-Authorization", &credentials)],
    );
    assert_eq!(status, 200);
    assert!(
        overlay
            .var("CARGO_HTTP_PROXY")
            .unwrap()
            .starts_with("http://overlay:team-token@")
    );
    // Reads stay open, as on crates.io; writes need a token.
    assert_eq!(http(addr, "GET", "/config.json", &[], b"").status, 200);
    let write = http(addr, "PUT", "/api/v1/crates/new", &[], b"junk");
    assert_eq!(write.status, 403);
}

/// The address of the interface on the default route, found without sending anything
/// (connecting a UDP socket only picks a route).
fn interface_address() -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

// Finding 6: tokens go only where they were meant to.

/// An upstream overlay on a local layer in `work/upstream` whose writes take `token`
/// only: the overlay, its layer's directory and its token file.
fn upstream_taking(work: &Path, token: &str) -> (Overlay, PathBuf, String) {
    let tokens = token_file(work, "upstream-tokens", &[token]);
    let dir = work.join("upstream");
    let upstream = Overlay::start(&["--token-file", &tokens, "-r", &local_layer(&dir)]);
    (upstream, dir, tokens)
}

#[test]
fn a_remote_top_layer_writes_with_its_own_token_and_never_the_callers() {
    let work = scratch("remote-write-token");
    let (upstream, upstream_dir, upstream_tokens) = upstream_taking(&work, "upstream-secret");
    let remote = format!("remote=http://{}/", upstream.addr);

    // The layer's token-file= token is what the upstream gets, and accepts.
    let overlay = Overlay::start(&["-r", &format!("{remote},token-file={upstream_tokens}")]);
    let cargo = Cargo::new(&overlay);
    let krate = Fixture::library(&work.join("a"), "sent-with-layer-token", "0.1.0", "x");
    cargo.publish(&krate.dir);
    assert!(
        upstream_dir
            .join("sent-with-layer-token-0.1.0.crate")
            .exists()
    );
    cargo.ok(
        &krate.dir,
        &["yank", "--registry", "overlay", "--version", "0.1.0"],
    );
    drop(overlay);

    // A caller whose token the upstream would take, through a layer whose token it
    // does not: the caller's never travels, so the upstream refuses.
    let wrong = token_file(&work, "wrong", &["not-the-upstreams"]);
    let overlay = Overlay::start(&[
        "--token-file",
        &upstream_tokens,
        "-r",
        &format!("{remote},token-file={wrong}"),
    ]);
    let out = Cargo::new(&overlay)
        .publish_fails(&Fixture::library(&work.join("b"), "callers-token", "0.1.0", "x").dir);
    out.assert_stderr_has("authentication failed");
    assert!(!upstream_dir.join("callers-token-0.1.0.crate").exists());
    drop(overlay);

    // Without token-file=, writes are refused from the head, saying what to add, and
    // nothing reaches the upstream.
    let writes = || upstream.log().matches(" /api/v1/crates/").count();
    let writes_before = writes();
    let overlay = Overlay::start(&["-r", &remote]);
    let out = Cargo::new(&overlay)
        .publish_fails(&Fixture::library(&work.join("c"), "no-layer-token", "0.1.0", "x").dir);
    out.assert_stderr_has("add `,token-file=FILE` to its `-r remote=...` layer");
    let yank = http(
        overlay.addr,
        "DELETE",
        "/api/v1/crates/sent-with-layer-token/0.1.0/yank",
        &[("Authorization", overlay.token())],
        b"",
    );
    assert_eq!(yank.status, 403);
    assert!(detail(&yank).contains("token-file="), "{}", yank.text());
    assert_eq!(writes(), writes_before, "{}", upstream.log());
}

#[test]
fn exec_mode_never_forwards_the_users_crates_io_token_to_a_remote_top_layer() {
    let work = scratch("remote-exec-token");
    let (upstream, upstream_dir, _) = upstream_taking(&work, "upstream-only");
    let krate = Fixture::library(&work, "proxied-forward", "0.1.0", "x");
    // The user's crates.io token is the one the upstream takes: were it forwarded,
    // the publish would land; it must not be.
    let out = Cargo::plain()
        .isolated(harness::BIN, &krate.dir)
        .env("CARGO_REGISTRY_TOKEN", "upstream-only")
        .args(["-r", &format!("remote=http://{}/", upstream.addr)])
        .args(["--", "cargo", "publish", "--no-verify", "--allow-dirty"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("token-file="), "{stderr}");
    assert!(!upstream_dir.join("proxied-forward-0.1.0.crate").exists());
}

/// A git server over plain HTTP: `git http-backend` behind a small WSGI server. It
/// prints its port, then serves the bare repositories under its first argument.
const GIT_SERVER: &str = r#"
import os, subprocess, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass
def app(environ, start_response):
    env = {k: v for k, v in environ.items() if isinstance(v, str) and (k.startswith('HTTP_')
           or k in ('REQUEST_METHOD', 'PATH_INFO', 'QUERY_STRING', 'CONTENT_TYPE'))}
    length = int(environ.get('CONTENT_LENGTH') or 0)
    body = environ['wsgi.input'].read(length) if length else b''
    env.update(GIT_PROJECT_ROOT=sys.argv[1], GIT_HTTP_EXPORT_ALL='1', PATH=os.environ['PATH'],
               REMOTE_ADDR='127.0.0.1', CONTENT_LENGTH=str(len(body)),
               GIT_PROTOCOL=environ.get('HTTP_GIT_PROTOCOL', ''))
    out = subprocess.run(['git', 'http-backend'], input=body, env=env, capture_output=True).stdout
    head, _, rest = out.partition(b'\r\n\r\n' if b'\r\n\r\n' in out else b'\n\n')
    status, headers = '200 OK', []
    for line in head.decode().splitlines():
        name, _, value = line.partition(':')
        if name.lower() == 'status':
            status = value.strip()
        elif name:
            headers.append((name, value.strip()))
    start_response(status, headers)
    return [rest]
server = make_server('127.0.0.1', 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// The git server, killed when dropped.
struct GitServer {
    child: std::process::Child,
    port: u16,
}

impl GitServer {
    /// Serves `root`; `None` when python3 is not there to run it.
    fn start(root: &Path) -> Option<GitServer> {
        let script = root.with_extension("py");
        fs::write(&script, GIT_SERVER).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().ok()?;
        Some(GitServer { child, port })
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs git in `dir`, panicking unless it succeeds.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn cargo_git_fetches_pass_the_proxy_with_its_credentials() {
    let work = scratch("proxy-auth-git");
    // A crate in a bare repository, served over plain HTTP on loopback.
    let source = Fixture::library(&work, "gitdep", "0.1.0", "from git");
    git(&source.dir, &["init", "-q"]);
    git(&source.dir, &["add", "-A"]);
    git(&source.dir, &["commit", "-q", "-m", "gitdep"]);
    let repos = work.join("repos");
    fs::create_dir_all(&repos).unwrap();
    git(
        &work,
        &[
            "clone",
            "-q",
            "--bare",
            source.dir.to_str().unwrap(),
            "repos/gitdep.git",
        ],
    );
    let Some(server) = GitServer::start(&repos) else {
        eprintln!("SKIPPED cargo_git_fetches_pass_the_proxy_with_its_credentials: no python3");
        return;
    };
    let git_port = server.port.to_string();

    let tokens = token_file(&work, "tokens", &["git-token"]);
    let overlay = Overlay::start_with(&[
        "--no-tls",
        "-p",
        "0",
        "--auth-required",
        "--token-file",
        &tokens,
        "--allow-connect-port",
        &git_port,
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    let proxy = overlay.var("CARGO_HTTP_PROXY").unwrap().to_string();
    assert!(proxy.starts_with("http://overlay:git-token@"), "{proxy}");
    let app = Fixture::binary(
        &work,
        "git-app",
        &format!("gitdep = {{ git = \"http://127.0.0.1:{git_port}/gitdep.git\" }}\n"),
        "fn main() { println!(\"{}\", gitdep::value()); }\n",
    );
    let forwarded = |log: &str| {
        log.matches(&format!(
            "upstream POST http://127.0.0.1:{git_port}/gitdep.git/git-upload-pack -> 200"
        ))
        .count()
    };

    // libgit2 (through libcurl) takes the proxy and its credential from cargo.
    let run = Cargo::new(&overlay).ok(&app.dir, &["run", "-q"]);
    assert_eq!(run.stdout().trim(), "from git");
    let by_libgit2 = forwarded(&overlay.log());
    assert!(by_libgit2 > 0, "{}", overlay.log());

    // The git command line does not read cargo's proxy setting but its own: given the
    // same URL, it goes through the overlay with the credential as well.
    fs::remove_file(app.dir.join("Cargo.lock")).unwrap();
    let out = Cargo::new(&overlay)
        .command(&app.dir, &["generate-lockfile"])
        .env("CARGO_NET_GIT_FETCH_WITH_CLI", "true")
        .env("http_proxy", &proxy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(forwarded(&overlay.log()) > by_libgit2, "{}", overlay.log());

    // Without the credential, both are refused with 407.
    let bare = proxy.replace("overlay:git-token@", "");
    fs::remove_file(app.dir.join("Cargo.lock")).unwrap();
    let out = Cargo::new(&overlay)
        .command(&app.dir, &["generate-lockfile"])
        .env("CARGO_HTTP_PROXY", &bare)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("407"), "{stderr}");
    let out = Cargo::new(&overlay)
        .command(&app.dir, &["generate-lockfile"])
        .env("CARGO_NET_GIT_FETCH_WITH_CLI", "true")
        .env("http_proxy", &bare)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    drop(server);
}
