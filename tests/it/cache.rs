//! The upstream cache (`--cache DIR`), offline replay and `fetch` for air-gapped
//! machines, with a second overlay on loopback as the upstream.

use std::fs;
use std::path::Path;

use crate::harness::{
    BIN, Cargo, Fixture, Overlay, dep, index_lines, local_layer, scratch, sha256_file,
};

/// An upstream overlay holding `cached-dep` 0.1.0.
fn upstream_with_a_crate(work: &Path) -> Overlay {
    let remote = Overlay::start(&["-r", &local_layer(&work.join("remote"))]);
    Cargo::new(&remote)
        .publish(&Fixture::library(&work.join("r"), "cached-dep", "0.1.0", "cached").dir);
    remote
}

fn app(work: &Path, deps: &str) -> Fixture {
    Fixture::binary(
        work,
        "cache-app",
        deps,
        "fn main() { println!(\"{}\", cached_dep::value()); }\n",
    )
}

#[test]
fn the_cache_serves_a_build_after_the_upstream_is_gone() {
    let work = scratch("cache-offline");
    let remote = upstream_with_a_crate(&work);
    let cache = work.join("cache");
    let args = |remote_url: &str| {
        vec![
            "--cache".to_string(),
            cache.display().to_string(),
            "-r".into(),
            local_layer(&work.join("top")),
            "-r".into(),
            format!("remote={remote_url}"),
        ]
    };
    let remote_url = format!("http://{}/", remote.addr);
    let app = app(&work, &dep("cached-dep", "0.1"));
    {
        let args = args(&remote_url);
        let overlay = Overlay::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            Cargo::new(&overlay)
                .ok(&app.dir, &["run", "-q"])
                .stdout()
                .trim(),
            "cached"
        );
    }
    assert_eq!(
        sha256_file(&cache.join("cached-dep-0.1.0.crate")),
        sha256_file(&work.join("remote/cached-dep-0.1.0.crate"))
    );
    drop(remote);

    // No upstream now, and a fresh CARGO_HOME: everything comes from the cache. With
    // `--index-ttl 0` the kept index file is stale, so its revalidation fails first.
    fs::remove_file(app.dir.join("Cargo.lock")).unwrap();
    let mut args = args(&remote_url);
    args.extend(["--index-ttl".to_string(), "0".into()]);
    let overlay = Overlay::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let run = Cargo::new(&overlay).ok(&app.dir, &["run", "-q"]);
    assert_eq!(run.stdout().trim(), "cached");
    assert!(
        overlay
            .log()
            .contains("serving the copy in the cache directory"),
        "{}",
        overlay.log()
    );
}

/// How many times the upstream overlay was asked for `cached-dep`'s index file.
fn index_requests(upstream: &Overlay) -> usize {
    upstream.log().matches("GET /ca/ch/cached-dep -> ").count()
}

#[test]
fn a_fresh_index_file_in_the_cache_is_served_without_asking_the_upstream() {
    let work = scratch("cache-fresh");
    let remote = upstream_with_a_crate(&work);
    let cache = work.join("cache");
    let remote_arg = format!("remote=http://{}/", remote.addr);
    let run = |extra: &[&str]| {
        let mut args = vec!["--cache", cache.to_str().unwrap(), "-r", &remote_arg];
        args.extend(extra);
        let overlay = Overlay::start(&args);
        let response = overlay.get("/ca/ch/cached-dep");
        assert_eq!(response.status, 200);
        assert_eq!(index_lines(&response.text()).len(), 1);
        overlay.log()
    };
    let settle = |upstream: &Overlay, at_least: usize| {
        for _ in 0..50 {
            if index_requests(upstream) >= at_least {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        index_requests(upstream)
    };

    // A first process fetches the file and keeps it. (The publish asked for it too.)
    let before = index_requests(&remote);
    run(&[]);
    let fetched = settle(&remote, before + 1);
    assert_eq!(fetched, before + 1, "{}", remote.log());

    // A second process on the same directory: the kept copy is fresh, no request.
    let log = run(&[]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(index_requests(&remote), fetched, "{}", remote.log());
    assert!(!log.contains("serving the copy"), "{log}");

    // With `--index-ttl 0` the kept copy is stale at once: the upstream is asked.
    run(&["--index-ttl", "0"]);
    assert_eq!(
        settle(&remote, fetched + 1),
        fetched + 1,
        "{}",
        remote.log()
    );
    drop(remote);

    // The upstream gone: the fresh copy answers with no warning (the revalidation
    // above restarted its age) ...
    let log = run(&[]);
    assert!(!log.contains("serving the copy"), "{log}");
    // ... and a stale one answers only after the upstream failed, with a warning.
    let log = run(&["--index-ttl", "0"]);
    assert!(
        log.contains("serving the copy in the cache directory"),
        "{log}"
    );
}

#[test]
fn a_corrupt_cached_crate_is_fetched_again_never_served() {
    let work = scratch("cache-corrupt");
    let remote = upstream_with_a_crate(&work);
    let cache = work.join("cache");
    let args = [
        "--cache",
        cache.to_str().unwrap(),
        "-r",
        &format!("remote=http://{}/", remote.addr),
    ];
    let app = app(&work, &dep("cached-dep", "0.1"));
    {
        let overlay = Overlay::start(&args);
        Cargo::new(&overlay).ok(&app.dir, &["run", "-q"]);
    }
    let cached = cache.join("cached-dep-0.1.0.crate");
    fs::write(&cached, b"not a crate").unwrap();

    let overlay = Overlay::start(&args);
    fs::remove_file(app.dir.join("Cargo.lock")).unwrap();
    assert_eq!(
        Cargo::new(&overlay)
            .ok(&app.dir, &["run", "-q"])
            .stdout()
            .trim(),
        "cached"
    );
    assert!(
        overlay.log().contains("does not match its checksum"),
        "{}",
        overlay.log()
    );
    assert_eq!(
        sha256_file(&cached),
        sha256_file(&work.join("remote/cached-dep-0.1.0.crate"))
    );
}

#[test]
fn a_fresh_publish_is_visible_through_a_warm_cache() {
    let work = scratch("cache-warm");
    let remote = upstream_with_a_crate(&work);
    let overlay = Overlay::start(&[
        "-r",
        &local_layer(&work.join("top")),
        "-r",
        &format!("remote=http://{}/", remote.addr),
    ]);
    assert_eq!(
        index_lines(&overlay.get("/ca/ch/cached-dep").text()).len(),
        1
    );
    Cargo::new(&overlay)
        .publish(&Fixture::library(&work.join("n"), "cached-dep", "0.2.0", "newer").dir);
    let versions: Vec<String> = index_lines(&overlay.get("/ca/ch/cached-dep").text())
        .iter()
        .map(|l| l["vers"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(versions, ["0.1.0", "0.2.0"]);
}

#[test]
fn several_remote_layers_keep_their_own_part_of_the_cache() {
    let work = scratch("cache-two-remotes");
    let first = upstream_with_a_crate(&work.join("first"));
    let second = upstream_with_a_crate(&work.join("second"));
    let cache = work.join("cache");
    let overlay = Overlay::start(&[
        "--cache",
        cache.to_str().unwrap(),
        "-r",
        &format!("remote=http://{}/", first.addr),
        "-r",
        &format!("remote=http://{}/", second.addr),
    ]);
    assert_eq!(overlay.get("/ca/ch/cached-dep").status, 200);
    for upstream in [&first, &second] {
        let part = format!("127.0.0.1_{}", upstream.addr.port());
        let index = cache.join(part).join("index/ca/ch/cached-dep");
        assert!(index.is_file(), "{} is missing", index.display());
    }
    assert!(!cache.join("index").exists());
}

#[test]
fn fetch_fills_a_directory_cargo_uses_with_no_server() {
    let work = scratch("fetch");
    let remote = upstream_with_a_crate(&work);
    // A lockfile made against the upstream, as on a machine with a network.
    let app = app(&work, &dep("cached-dep", "0.1"));
    Cargo::new(&remote).ok(&app.dir, &["generate-lockfile"]);
    let into = work.join("carried");
    let fetch = |lockfile: &Path| {
        let out = std::process::Command::new(BIN)
            .args(["fetch", "--lockfile"])
            .arg(lockfile)
            .arg("--into")
            .arg(&into)
            .args(["-r", &format!("remote=http://{}/", remote.addr)])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // stderr is a pipe, not a terminal: no progress line on it.
        assert!(
            !stderr.contains('\r') && !stderr.contains("Fetching"),
            "{stderr:?}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The one summary line, alone on stdout.
    assert_eq!(
        fetch(&app.dir.join("Cargo.lock")),
        format!(
            "fetched 1 crates into {} (0 were there already)\n",
            into.display()
        )
    );

    // A second project's lockfile, with a newer release, adds to the directory.
    Cargo::new(&remote)
        .publish(&Fixture::library(&work.join("r2"), "cached-dep", "0.2.0", "newer").dir);
    let newer = Fixture::binary(
        &work.join("newer"),
        "newer-app",
        &dep("cached-dep", "0.2"),
        "fn main() {}\n",
    );
    Cargo::new(&remote).ok(&newer.dir, &["generate-lockfile"]);
    fetch(&newer.dir.join("Cargo.lock"));
    let versions: Vec<String> =
        index_lines(&fs::read_to_string(into.join("index/ca/ch/cached-dep")).unwrap())
            .iter()
            .map(|l| l["vers"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(versions, ["0.1.0", "0.2.0"]);

    // The lockfile names the upstream's registry: a stack without a layer reading it
    // cannot supply its packages, and says which layer to add.
    let out = std::process::Command::new(BIN)
        .args(["fetch", "--lockfile"])
        .arg(app.dir.join("Cargo.lock"))
        .arg("--into")
        .arg(work.join("elsewhere"))
        .args(["-r", &local_layer(&work.join("unrelated"))])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "which no layer reads (add -r remote=http://{}/)",
            remote.addr
        )),
        "{stderr}"
    );
    drop(remote);

    // The air-gapped side: no server, the directory as a local-registry source, and the
    // dependency written the plain crates.io way.
    let offline = Fixture::binary(
        &work.join("offline"),
        "cache-app",
        "cached-dep = \"0.1\"\n",
        "fn main() { println!(\"{}\", cached_dep::value()); }\n",
    );
    offline.write(
        ".cargo/config.toml",
        &format!(
            "[source.crates-io]\nreplace-with = \"carried\"\n\n[source.carried]\nlocal-registry = {:?}\n",
            into.display().to_string()
        ),
    );
    let run = Cargo::for_index("sparse+http://127.0.0.1:9/")
        .ok(&offline.dir, &["run", "-q", "--offline"]);
    assert_eq!(run.stdout().trim(), "cached");
}

/// On a terminal, `fetch` draws a progress line on stderr and clears it before its
/// summary. `script` (util-linux) gives the command a pseudo-terminal; where it is
/// missing the test says so and passes.
#[test]
fn fetch_shows_progress_on_a_terminal_and_clears_it_before_the_summary() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` command to give fetch a terminal");
        return;
    }
    let work = scratch("fetch-progress");
    let remote = upstream_with_a_crate(&work);
    let app = app(&work, &dep("cached-dep", "0.1"));
    Cargo::new(&remote).ok(&app.dir, &["generate-lockfile"]);
    let into = work.join("carried");
    let command = format!(
        "'{BIN}' fetch --lockfile '{}' --into '{}' -r remote=http://{}/",
        app.dir.join("Cargo.lock").display(),
        into.display(),
        remote.addr
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("COLUMNS", "100")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty:?}");
    // Drawn in place: carriage return, the line, clear to the end of line.
    assert!(tty.contains("\r    Fetching ["), "{tty:?}");
    assert!(tty.contains("/1 crates, "), "{tty:?}");
    assert!(tty.contains("\x1b[K"), "{tty:?}");
    // Cleared, then the summary as on a pipe (the terminal turns \n into \r\n).
    assert!(
        tty.ends_with(&format!(
            "\r\x1b[Kfetched 1 crates into {} (0 were there already)\r\n",
            into.display()
        )),
        "{tty:?}"
    );
}
