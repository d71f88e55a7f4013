//! Prefetch: which index files the overlay fetches from a remote layer before cargo
//! asks, with a second overlay on loopback as the upstream.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{BIN, Cargo, Fixture, Overlay, dep, local_layer, scratch};

/// An upstream holding `mid` 1.0.0 (needs `leaf-a`; `leaf-b` behind the feature
/// `more`, `leaf-c` behind `unused`), `mid` 2.0.0 (needs `leaf-new`), and `user`
/// 1.0.0, which asks for `mid` 1 with `more`.
fn upstream(work: &Path) -> Overlay {
    let upstream = Overlay::start(&["-r", &local_layer(&work.join("upstream"))]);
    let cargo = Cargo::new(&upstream);
    for leaf in ["leaf-a", "leaf-b", "leaf-c", "leaf-new"] {
        cargo.publish(&Fixture::library(&work.join("src"), leaf, "1.0.0", leaf).dir);
    }
    let optional = |name: &str| {
        format!("{name} = {{ version = \"1\", registry = \"overlay\", optional = true }}\n")
    };
    let mid_1 = format!(
        "{}{}{}\n[features]\nmore = [\"dep:leaf-b\"]\nunused = [\"dep:leaf-c\"]\n",
        dep("leaf-a", "1"),
        optional("leaf-b"),
        optional("leaf-c"),
    );
    for (version, deps) in [("1.0.0", mid_1), ("2.0.0", dep("leaf-new", "1"))] {
        cargo.publish(&Fixture::crate_with(&work.join("src"), "mid", version, &deps, "").dir);
    }
    let user = "mid = { version = \"1\", registry = \"overlay\", features = [\"more\"] }\n";
    cargo.publish(&Fixture::crate_with(&work.join("src"), "user", "1.0.0", user, "").dir);
    upstream
}

/// `cargo-overlay-registry OPTIONS -r remote=UPSTREAM -- cargo ARGS` in `dir`, with
/// debug logs; panics unless it succeeds, returns its stderr.
fn exec_with_logs(
    cargo: &Cargo,
    dir: &Path,
    upstream: &Overlay,
    options: &[&str],
    args: &[&str],
) -> String {
    let remote = format!("remote=http://{}/", upstream.addr);
    let overlay_args: Vec<&str> = options.iter().copied().chain(["-r", &remote]).collect();
    let out = cargo
        .exec_command(BIN, dir, &overlay_args, args)
        .env("RUST_LOG", "cargo_overlay_registry=debug")
        .output()
        .expect("the overlay runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// Whether the overlay's log shows it fetched `name`'s index file from upstream.
fn fetched(log: &str, name: &str) -> bool {
    log.lines()
        .any(|line| line.contains("upstream GET") && line.contains(&format!("/{name} -> ")))
}

#[test]
fn prefetch_follows_the_requirement_and_the_features_dependents_ask_for() {
    let work = scratch("prefetch-guess");
    let upstream = upstream(&work);
    let overlay = Overlay::start(&["-r", &format!("remote=http://{}/", upstream.addr)]);

    // Only `user` is asked for; everything else the overlay fetches on its own.
    assert_eq!(overlay.get("/us/er/user").status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !["mid", "leaf-a", "leaf-b"]
        .iter()
        .all(|name| fetched(&overlay.log(), name))
    {
        assert!(
            Instant::now() < deadline,
            "mid, leaf-a and leaf-b were not prefetched:\n{}",
            overlay.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
    // They were fetched in one batch with anything else learning `mid` would
    // bring; give a wrong guess a moment to show.
    thread::sleep(Duration::from_millis(300));
    let log = overlay.log();
    assert!(
        !fetched(&log, "leaf-new"),
        "mid 2.0.0 does not meet `user`'s requirement, yet its dependency was fetched:\n{log}"
    );
    assert!(
        !fetched(&log, "leaf-c"),
        "nothing asked for mid's feature `unused`, yet leaf-c was fetched:\n{log}"
    );
}

/// A binary project needing `mid` 1 with the feature `more`.
fn app_needing_mid(work: &Path, name: &str) -> Fixture {
    let deps = "mid = { version = \"1\", features = [\"more\"] }\n";
    Fixture::binary(work, name, deps, "fn main() {}\n")
}

/// `app_needing_mid`'s lockfile: `mid` 1.0.0, `leaf-a` and `leaf-b`, nothing of `mid` 2.
fn assert_locks_mid_1_and_its_leaves(lock: &str) {
    for name in ["mid", "leaf-a", "leaf-b"] {
        assert!(lock.contains(&format!("name = \"{name}\"")), "{lock}");
    }
    assert!(lock.contains("version = \"1.0.0\"") && !lock.contains("leaf-new"));
}

#[test]
fn exec_mode_prefetches_the_project_members_dependencies() {
    let work = scratch("prefetch-exec");
    let upstream = upstream(&work);
    let app = app_needing_mid(&work, "prefetch-app");
    let stderr = exec_with_logs(
        &Cargo::plain(),
        &app.dir,
        &upstream,
        &[],
        &["generate-lockfile"],
    );
    assert!(
        stderr.contains("prefetching for the project's 1 members"),
        "{stderr}"
    );
    let lock = std::fs::read_to_string(app.dir.join("Cargo.lock")).unwrap();
    assert_locks_mid_1_and_its_leaves(&lock);
}

#[test]
fn with_a_fresh_cache_exec_mode_prefetches_only_once_it_asks_the_upstream() {
    let work = scratch("prefetch-dormant");
    let upstream = upstream(&work);
    let app = app_needing_mid(&work, "dormant-app");
    let cache = work.join("cache");
    let resolve = || {
        let _ = std::fs::remove_file(app.dir.join("Cargo.lock"));
        let cache = cache.to_str().unwrap();
        let stderr = exec_with_logs(
            &Cargo::plain(),
            &app.dir,
            &upstream,
            &["--cache", cache],
            &["generate-lockfile"],
        );
        let lock = std::fs::read_to_string(app.dir.join("Cargo.lock")).unwrap();
        (stderr, lock)
    };
    // Logged as the project starts to be read: `cargo metadata` may still run when
    // cargo is done with these few crates.
    let read_the_project = "reading the project for prefetching";
    let woke = "prefetching starts: the layer asks its upstream";

    // An empty cache: the first request goes upstream and wakes prefetching.
    let (cold, _) = resolve();
    assert!(
        cold.contains(woke) && cold.contains(read_the_project),
        "{cold}"
    );

    // Everything fresh in the cache: no upstream request, so no `cargo metadata` and
    // no guessing, and the same answer.
    let (warm, lock) = resolve();
    assert!(!warm.contains("upstream GET"), "{warm}");
    // Every prefetch line says "prefetching", the reading of the project too.
    assert!(!warm.contains("prefetching"), "{warm}");
    assert_locks_mid_1_and_its_leaves(&lock);

    // A dependency the cache lacks sends the layer upstream, which wakes it.
    let late = Fixture::library(&work.join("src"), "leaf-late", "1.0.0", "leaf-late");
    Cargo::new(&upstream).publish(&late.dir);
    app.write(
        "Cargo.toml",
        &std::fs::read_to_string(app.dir.join("Cargo.toml"))
            .unwrap()
            .replace("[dependencies]\n", "[dependencies]\nleaf-late = \"1\"\n"),
    );
    let (woken, lock) = resolve();
    assert!(
        woken.contains(woke) && woken.contains(read_the_project),
        "{woken}"
    );
    assert!(lock.contains("name = \"leaf-late\""), "{lock}");
}

/// How many times the upstream served a download of `name`.
fn downloads_of(upstream: &Overlay, name: &str) -> usize {
    upstream
        .log()
        .lines()
        .filter(|line| line.contains(&format!("/{name}/1.0.0/")) && line.contains("-> 200"))
        .count()
}

#[test]
fn exec_mode_fetches_downloads_ahead_once_and_only_what_cargo_lacks() {
    let work = scratch("prefetch-downloads");
    let upstream = upstream(&work);
    let app = Fixture::binary(
        &work,
        "download-app",
        "leaf-a = \"1\"\nleaf-b = \"1\"\nleaf-c = \"1\"\n",
        "fn main() {}\n",
    );
    let cargo = Cargo::plain();
    let fetch = || exec_with_logs(&cargo, &app.dir, &upstream, &[], &["fetch"]);
    let stderr = fetch();
    assert!(
        stderr.contains("fetching 3 downloads ahead of cargo"),
        "{stderr}"
    );
    for leaf in ["leaf-a", "leaf-b", "leaf-c"] {
        assert_eq!(downloads_of(&upstream, leaf), 1, "{}", upstream.log());
    }

    // Later, with the three in cargo's cache, a new dependency is all it fetches.
    app.write(
        "Cargo.toml",
        &std::fs::read_to_string(app.dir.join("Cargo.toml"))
            .unwrap()
            .replace("leaf-c = \"1\"\n", "leaf-c = \"1\"\nleaf-new = \"1\"\n"),
    );
    let stderr = fetch();
    assert!(
        stderr.contains("fetching 1 downloads ahead of cargo"),
        "{stderr}"
    );
    assert_eq!(downloads_of(&upstream, "leaf-new"), 1);
    assert_eq!(downloads_of(&upstream, "leaf-a"), 1);
}
