//! Remote layers: a second overlay on loopback plays the upstream registry.

use crate::harness;

use std::fs;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::harness::{
    Cargo, Fixture, Overlay, dep, index_lines, local_layer, scratch, sha256_file,
};

/// The `-r` value for a remote layer served by `upstream`.
fn remote_layer(upstream: &Overlay) -> String {
    format!("remote=http://{}/", upstream.addr)
}

/// An upstream overlay with its own local layer in `dir`.
fn upstream(dir: &std::path::Path) -> Overlay {
    Overlay::start(&["-r", &local_layer(dir)])
}

#[test]
fn a_crate_only_in_the_remote_builds_in_sparse_and_proxy_mode() {
    let work = scratch("remote-only");
    let remote = upstream(&work.join("remote"));
    Cargo::new(&remote).publish(&Fixture::library(&work, "faraway", "0.1.0", "from afar").dir);

    let top = local_layer(&work.join("top"));
    let overlay = Overlay::start(&["-r", &top, "-r", &remote_layer(&remote)]);
    let app = Fixture::binary(
        &work,
        "far-app",
        &dep("faraway", "0.1"),
        "fn main() { println!(\"{}\", faraway::value()); }\n",
    );
    let run = Cargo::new(&overlay).ok(&app.dir, &["run", "-q"]);
    assert_eq!(run.stdout().trim(), "from afar");
    // The download went through the upstream's own dl template, every marker expanded.
    let cksum = sha256_file(&work.join("remote/faraway-0.1.0.crate"));
    let log = remote.log();
    assert!(
        log.contains(&format!("GET /dl/fa/ra/faraway/0.1.0/{cksum} -> 200")),
        "{log}"
    );

    // Proxy mode: the same crate as a plain crates.io dependency.
    let proxied = Fixture::binary(
        &work.join("proxied"),
        "far-app",
        "faraway = \"0.1\"\n",
        "fn main() { println!(\"{}\", faraway::value()); }\n",
    );
    let out = Cargo::plain().exec(
        &proxied.dir,
        &["-r", &top, "-r", &remote_layer(&remote)],
        &["run", "-q"],
    );
    assert!(out.0.status.success(), "{}", out.all());
    assert_eq!(out.stdout().trim(), "from afar");
}

#[test]
fn a_crate_in_both_comes_from_the_top_layer() {
    let work = scratch("remote-both");
    let remote = upstream(&work.join("remote"));
    Cargo::new(&remote)
        .publish(&Fixture::library(&work.join("r"), "twofold", "1.0.0", "remote").dir);
    let top_dir = work.join("top");
    let only_top = Overlay::start(&["-r", &local_layer(&top_dir)]);
    Cargo::new(&only_top)
        .publish(&Fixture::library(&work.join("t"), "twofold", "1.0.0", "top").dir);
    drop(only_top);

    let overlay = Overlay::start(&["-r", &local_layer(&top_dir), "-r", &remote_layer(&remote)]);
    let lines = index_lines(&overlay.get("/tw/of/twofold").text());
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["cksum"],
        sha256_file(&top_dir.join("twofold-1.0.0.crate"))
    );
    let app = Fixture::binary(
        &work,
        "both-app",
        &dep("twofold", "1"),
        "fn main() { println!(\"{}\", twofold::value()); }\n",
    );
    assert_eq!(
        Cargo::new(&overlay)
            .ok(&app.dir, &["run", "-q"])
            .stdout()
            .trim(),
        "top"
    );
}

#[test]
fn publishes_land_on_top_or_are_forwarded_to_a_remote_top() {
    let work = scratch("remote-publish");
    let remote_dir = work.join("remote");
    let remote = upstream(&remote_dir);

    // Local over remote: the publish stays local.
    let top_dir = work.join("top");
    let overlay = Overlay::start(&["-r", &local_layer(&top_dir), "-r", &remote_layer(&remote)]);
    Cargo::new(&overlay)
        .publish(&Fixture::library(&work.join("a"), "kept-local", "0.1.0", "x").dir);
    assert!(top_dir.join("kept-local-0.1.0.crate").exists());
    assert!(!remote_dir.join("kept-local-0.1.0.crate").exists());
    drop(overlay);

    // Remote on top: publishes and yanks are forwarded with the layer's own token,
    // answers come back unchanged.
    let token_file = work.join("upstream-token");
    fs::write(&token_file, remote.token()).unwrap();
    let layer = format!(
        "{},token-file={}",
        remote_layer(&remote),
        token_file.display()
    );
    let overlay = Overlay::start(&["-r", &layer]);
    let cargo = Cargo::new(&overlay);
    let krate = Fixture::library(&work.join("b"), "sent-upstream", "0.1.0", "x");
    cargo.publish(&krate.dir);
    assert!(remote_dir.join("sent-upstream-0.1.0.crate").exists());
    cargo.ok(
        &krate.dir,
        &["yank", "--registry", "overlay", "--version", "0.1.0"],
    );
    assert_eq!(
        index_lines(&remote.get("/se/nt/sent-upstream").text())[0]["yanked"],
        true
    );
    let out = cargo.publish_fails(&Fixture::bare(&work, "refused-upstream").dir);
    out.assert_stderr_has(
        "the remote server responded with an error (status 400 Bad Request): missing or empty metadata fields: description, license.",
    );
    assert!(
        remote.log().contains("PUT /api/v1/crates/new -> 400"),
        "{}",
        remote.log()
    );
}

#[test]
fn a_stopped_upstream_leaves_local_crates_working_and_says_what_failed() {
    let work = scratch("remote-down");
    let remote = upstream(&work.join("remote"));
    Cargo::new(&remote)
        .publish(&Fixture::library(&work.join("r"), "remote-only", "0.1.0", "x").dir);
    let remote_addr = remote.addr;
    // No freshness window: every lookup asks the upstream, so its failure shows.
    let overlay = Overlay::start(&[
        "--index-ttl",
        "0",
        "-r",
        &local_layer(&work.join("top")),
        "-r",
        &remote_layer(&remote),
    ]);
    let cargo = Cargo::new(&overlay);
    cargo.publish(&Fixture::library(&work.join("t"), "local-only", "0.1.0", "x").dir);
    drop(remote);

    let local = overlay.get("/lo/ca/local-only");
    assert_eq!(local.status, 200);
    let missing = overlay.get("/re/mo/remote-only");
    assert_eq!(missing.status, 502);
    let detail = harness::detail(&missing);
    assert!(
        detail.contains(&format!("upstream remote:http://{remote_addr}/")),
        "{detail}"
    );
    let app = Fixture::binary(
        &work,
        "down-app",
        &dep("local-only", "0.1"),
        "fn main() {}\n",
    );
    cargo.ok(&app.dir, &["generate-lockfile"]);
    // What the upstream said before it went away is still served, with a warning.
    let log = overlay.log();
    assert!(log.contains("serving the copy fetched before"), "{log}");
}

#[test]
fn an_upstream_that_never_answers_times_out() {
    let work = scratch("remote-hang");
    // Accepts connections (the backlog does) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let overlay = Overlay::start(&[
        "--upstream-timeout",
        "2",
        "-r",
        &local_layer(&work.join("top")),
        "-r",
        &format!("remote=http://{}/", silent.local_addr().unwrap()),
    ]);
    let started = Instant::now();
    let response = overlay.get("/an/yt/anything");
    assert_eq!(response.status, 502);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        response.text().contains("timeout") || response.text().contains("timed out"),
        "{}",
        response.text()
    );
}

#[test]
fn search_shows_local_and_remote_crates() {
    let work = scratch("remote-search");
    let remote = upstream(&work.join("remote"));
    Cargo::new(&remote)
        .publish(&Fixture::library(&work.join("r"), "findme-remote", "2.0.0", "x").dir);
    let overlay = Overlay::start(&[
        "-r",
        &local_layer(&work.join("top")),
        "-r",
        &remote_layer(&remote),
    ]);
    let cargo = Cargo::new(&overlay);
    cargo.publish(&Fixture::library(&work.join("t"), "findme-local", "1.0.0", "x").dir);
    let stdout = cargo
        .ok(&work, &["search", "--registry", "overlay", "findme"])
        .stdout();
    assert!(stdout.contains("findme-local = \"1.0.0\""), "{stdout}");
    assert!(stdout.contains("findme-remote = \"2.0.0\""), "{stdout}");
}

/// Opt-in: the default stack (local over the real crates.io) builds a project with a
/// crates.io dependency. Needs the network; enable with OVERLAY_TEST_CRATES_IO=1.
#[test]
fn the_default_stack_builds_against_the_real_crates_io() {
    if !harness::reaches_crates_io("the_default_stack_builds_against_the_real_crates_io") {
        return;
    }
    let work = scratch("crates-io");
    let app = Fixture::binary(
        &work,
        "real-app",
        "itoa = \"1\"\n",
        "fn main() { println!(\"{}\", itoa::Buffer::new().format(42)); }\n",
    );
    let out = Cargo::plain().exec(&app.dir, &[], &["run", "-q"]);
    assert!(out.0.status.success(), "{}", out.all());
    assert_eq!(out.stdout().trim(), "42");
    fs::remove_dir_all(&work).unwrap();
}

#[test]
fn a_registry_that_requires_a_token_to_read_works_as_a_lower_layer() {
    let work = scratch("remote-auth-required");
    let token_file = work.join("token");
    fs::write(&token_file, "read-and-write-token\n").unwrap();
    let private = Overlay::start(&[
        "--auth-required",
        "--token-file",
        token_file.to_str().unwrap(),
        "-r",
        &local_layer(&work.join("private")),
    ]);
    // cargo reads config.json, gets 401, and from then on sends its token everywhere.
    let cargo = Cargo::new(&private);
    cargo.publish(&Fixture::library(&work, "secret-dep", "0.1.0", "kept private").dir);
    let app = Fixture::binary(
        &work,
        "secret-app",
        &dep("secret-dep", "0.1"),
        "fn main() { println!(\"{}\", secret_dep::value()); }\n",
    );
    assert_eq!(
        cargo.ok(&app.dir, &["run", "-q"]).stdout().trim(),
        "kept private"
    );
    let config = private.get("/config.json");
    harness::assert_error("config.json", &config, 401, "auth-required");
    let wrong = harness::http(
        private.addr,
        "GET",
        "/se/cr/secret-dep",
        &[("Authorization", "guess")],
        b"",
    );
    assert_eq!(wrong.status, 403);

    // As a lower layer: with the token file, reads carry the token.
    let with_token = Overlay::start(&[
        "-r",
        &format!(
            "{},token-file={}",
            remote_layer(&private),
            token_file.display()
        ),
    ]);
    fs::remove_file(app.dir.join("Cargo.lock")).unwrap();
    let run = Cargo::new(&with_token).ok(&app.dir, &["run", "-q"]);
    assert_eq!(run.stdout().trim(), "kept private");

    // Without it, the upstream's refusal is reported, naming the upstream.
    let without = Overlay::start(&["-r", &remote_layer(&private)]);
    let refused = without.get("/se/cr/secret-dep");
    assert_eq!(refused.status, 502);
    assert!(
        refused.text().contains("answered 401"),
        "{}",
        refused.text()
    );
}
