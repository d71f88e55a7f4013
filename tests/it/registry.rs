//! The overlay as a plain sparse registry, driven by real cargo.

use crate::harness;

use std::fs;
use std::thread;

use crate::harness::{
    Cargo, Fixture, Overlay, PUBLISH, dep, http, index_lines, local_layer, scratch, sha256_file,
};

#[test]
fn publish_depend_build_and_run() {
    let work = scratch("publish-chain");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let cargo = Cargo::new(&overlay);

    let a = Fixture::library(&work, "chain-a", "0.1.0", "from a");
    // The verify build resolves chain-a through the registry, so keep it here.
    cargo.ok(
        &a.dir,
        &["publish", "--registry", "overlay", "--allow-dirty"],
    );
    let b = Fixture::crate_with(
        &work,
        "chain-b",
        "0.2.0",
        &dep("chain-a", "0.1"),
        "pub fn value() -> String { format!(\"b+{}\", chain_a::value()) }\n",
    );
    cargo.ok(
        &b.dir,
        &["publish", "--registry", "overlay", "--allow-dirty"],
    );
    let app = Fixture::binary(
        &work,
        "chain-app",
        &dep("chain-b", "0.2"),
        "fn main() { println!(\"{}\", chain_b::value()); }\n",
    );
    let run = cargo.ok(&app.dir, &["run", "-q"]);
    assert_eq!(run.stdout().trim(), "b+from a");

    // The index line is written the way crates.io writes it.
    let index = overlay.get("/ch/ai/chain-b");
    assert_eq!(index.status, 200);
    let line = &index_lines(&index.text())[0];
    assert_eq!(line["name"], "chain-b");
    assert_eq!(line["vers"], "0.2.0");
    assert_eq!(line["deps"][0]["name"], "chain-a");
    assert_eq!(line["deps"][0]["req"], "^0.1");
    assert_eq!(line["deps"][0]["kind"], "normal");
    assert_eq!(line["yanked"], false);
    let pubtime = line["pubtime"].as_str().unwrap();
    assert_eq!(pubtime.len(), "2026-01-01T00:00:00Z".len(), "{pubtime}");
    let crate_file = work.join("reg/chain-b-0.2.0.crate");
    assert_eq!(line["cksum"], sha256_file(&crate_file));
    assert!(overlay.log().contains("published chain-b@0.2.0"));
}

#[test]
fn lower_layers_resolve_and_the_top_layer_wins() {
    let work = scratch("layers");
    let (top, bottom) = (work.join("top"), work.join("bottom"));

    // Fill each layer through its own overlay.
    let only_bottom = Overlay::start(&["-r", &local_layer(&bottom)]);
    let cargo = Cargo::new(&only_bottom);
    cargo.publish(&Fixture::library(&work.join("b"), "shared", "1.0.0", "bottom").dir);
    cargo.publish(&Fixture::library(&work.join("b"), "deep", "1.0.0", "deep").dir);
    drop(only_bottom);
    let only_top = Overlay::start(&["-r", &local_layer(&top)]);
    Cargo::new(&only_top).publish(&Fixture::library(&work.join("t"), "shared", "1.0.0", "top").dir);
    drop(only_top);

    let overlay = Overlay::start(&["-r", &local_layer(&top), "-r", &local_layer(&bottom)]);
    let cargo = Cargo::new(&overlay);
    let app = Fixture::binary(
        &work,
        "layered-app",
        &(dep("shared", "1") + &dep("deep", "1")),
        "fn main() { println!(\"{} {}\", shared::value(), deep::value()); }\n",
    );
    assert_eq!(
        cargo.ok(&app.dir, &["run", "-q"]).stdout().trim(),
        "top deep"
    );

    // One line for the shared version, the top layer's.
    let lines = index_lines(&overlay.get("/sh/ar/shared").text());
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["cksum"],
        sha256_file(&top.join("shared-1.0.0.crate"))
    );
    let download = overlay.get("/api/v1/crates/shared/1.0.0/download");
    assert_eq!(
        download.body,
        fs::read(top.join("shared-1.0.0.crate")).unwrap()
    );
    // Publishes land in the top layer only.
    cargo.publish(&Fixture::library(&work.join("n"), "fresh", "0.1.0", "new").dir);
    assert!(top.join("fresh-0.1.0.crate").exists());
    assert!(!bottom.join("fresh-0.1.0.crate").exists());
}

#[test]
fn yank_and_unyank() {
    let work = scratch("yank");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let cargo = Cargo::new(&overlay);
    let krate = Fixture::library(&work, "yankee", "0.1.0", "y");
    cargo.publish(&krate.dir);
    let yanked =
        |overlay: &Overlay| index_lines(&overlay.get("/ya/nk/yankee").text())[0]["yanked"].clone();

    cargo.ok(
        &krate.dir,
        &["yank", "--registry", "overlay", "--version", "0.1.0"],
    );
    assert_eq!(yanked(&overlay), true);
    assert!(overlay.log().contains("yanked yankee@0.1.0"));
    let app = Fixture::binary(&work, "yank-app", &dep("yankee", "0.1"), "fn main() {}\n");
    let out = cargo.fails(&app.dir, &["generate-lockfile"]);
    assert!(out.stderr().contains("yankee"), "{}", out.all());

    cargo.ok(
        &krate.dir,
        &[
            "yank",
            "--registry",
            "overlay",
            "--version",
            "0.1.0",
            "--undo",
        ],
    );
    assert_eq!(yanked(&overlay), false);
    cargo.ok(&app.dir, &["generate-lockfile"]);

    let out = cargo.fails(
        &krate.dir,
        &["yank", "--registry", "overlay", "--version", "9.9.9"],
    );
    assert!(
        out.stderr()
            .contains("crate `yankee` does not have a version `9.9.9`"),
        "{}",
        out.all()
    );
}

#[test]
fn search_lists_local_crates() {
    let work = scratch("search");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let cargo = Cargo::new(&overlay);
    for (name, version) in [
        ("needle", "0.1.0"),
        ("needle", "0.3.0"),
        ("needle-extra", "1.0.0"),
        ("hay", "1.0.0"),
    ] {
        cargo.publish(&Fixture::library(&work.join(version), name, version, "x").dir);
    }
    let out = cargo.ok(&work, &["search", "--registry", "overlay", "needle"]);
    let stdout = out.stdout();
    let needle = stdout
        .lines()
        .find(|l| l.starts_with("needle = "))
        .unwrap_or_default();
    assert!(needle.starts_with("needle = \"0.3.0\" "), "{stdout}");
    assert!(needle.ends_with("# The needle fixture crate"), "{stdout}");
    assert!(stdout.contains("needle-extra = \"1.0.0\""), "{stdout}");
    assert!(!stdout.contains("hay"), "{stdout}");
    // Exact matches come first; per_page limits the list but not the total.
    let page = overlay.get("/api/v1/crates?q=needle&per_page=1").json();
    assert_eq!(page["crates"].as_array().unwrap().len(), 1);
    assert_eq!(page["crates"][0]["name"], "needle");
    assert_eq!(page["meta"]["total"], 2);
    assert_eq!(overlay.get("/api/v1/crates?q=x&per_page=0").status, 400);
}

/// Search keeps what it needs in memory after its first query; a crate published a
/// moment ago is found by the next query all the same, and one another process writes
/// straight into the layer directory within a second or so.
#[test]
fn search_sees_new_crates_at_once_and_outside_writes_within_a_second() {
    let work = scratch("search-fresh");
    let reg = work.join("reg");
    let overlay = Overlay::start(&["-r", &local_layer(&reg)]);
    let cargo = Cargo::new(&overlay);
    cargo.publish(&Fixture::library(&work.join("a"), "fresh-one", "0.1.0", "x").dir);
    let names = |q: &str| -> Vec<String> {
        let page = overlay
            .get(&format!("/api/v1/crates?q={q}&per_page=100"))
            .json();
        page["crates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["name"].as_str().unwrap(),
                    c["max_version"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(names("fresh"), ["fresh-one 0.1.0"]);
    // Published through the server a moment after the index was built.
    cargo.publish(&Fixture::library(&work.join("b"), "fresh-two", "0.2.0", "x").dir);
    assert_eq!(names("fresh"), ["fresh-one 0.1.0", "fresh-two 0.2.0"]);
    // Written by another process: index file and metadata, each renamed into place.
    let put = |relative: &str, text: &str| {
        let path = reg.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = path.with_file_name(".tmp-elsewhere");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &path).unwrap();
    };
    put(
        "meta/outsider-3.0.0.json",
        r#"{"name":"outsider","vers":"3.0.0","description":"a fresh face"}"#,
    );
    put(
        "index/ou/ts/outsider",
        &format!(
            "{{\"name\":\"outsider\",\"vers\":\"3.0.0\",\"deps\":[],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}\n",
            "0".repeat(64)
        ),
    );
    // Found once the directories are checked again, at the first query a second.
    let outside_written = std::time::Instant::now();
    harness::wait_until("the outside write to show in search", || {
        names("fresh") == ["fresh-one 0.1.0", "fresh-two 0.2.0", "outsider 3.0.0"]
    });
    assert!(outside_written.elapsed() < std::time::Duration::from_secs(3));
    // A yank through the server: a crate with no version left is no longer found.
    cargo.ok(&work, &["yank", "--registry", "overlay", "fresh-two@0.2.0"]);
    assert_eq!(names("fresh"), ["fresh-one 0.1.0", "outsider 3.0.0"]);
}

#[test]
fn index_etags_answer_304_until_a_publish_changes_them() {
    let work = scratch("etag");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let cargo = Cargo::new(&overlay);
    cargo.publish(&Fixture::library(&work, "tagged", "0.1.0", "1").dir);

    let first = overlay.get("/ta/gg/tagged");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    let etag = first.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    let again = http(
        overlay.addr,
        "GET",
        "/ta/gg/tagged",
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    cargo.publish(&Fixture::library(&work, "tagged", "0.2.0", "2").dir);
    let after = http(
        overlay.addr,
        "GET",
        "/ta/gg/tagged",
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(after.status, 200);
    assert_ne!(after.header("etag").unwrap(), etag);
    assert_eq!(index_lines(&after.text()).len(), 2);
}

#[test]
fn refused_publishes_show_crates_io_texts_through_cargo() {
    let work = scratch("refusals");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let cargo = Cargo::new(&overlay);

    // Metadata crates.io requires.
    let out = cargo.publish_fails(&Fixture::bare(&work, "bare").dir);
    out.assert_stderr_has(
        "the remote server responded with an error (status 400 Bad Request): missing or empty metadata fields: description, license. Please see https://doc.rust-lang.org/cargo/reference/manifest.html for more information on configuring these fields",
    );
    // A wildcard dependency requirement.
    cargo.publish(&Fixture::library(&work, "base", "1.0.0", "b").dir);
    let wild = Fixture::crate_with(&work, "wild", "0.1.0", &dep("base", "*"), "");
    cargo.publish_fails(&wild.dir).assert_stderr_has(
        "wildcard (`*`) dependency constraints are not allowed on crates.io. Crate with this problem: `base`",
    );

    // cargo refuses a version it sees in the index before uploading; a yanked one it
    // does not see, so the server's own check answers.
    let dup = Fixture::library(&work.join("dup"), "dupe", "0.1.0", "1");
    cargo.publish(&dup.dir);
    cargo.ok(
        &dup.dir,
        &["yank", "--registry", "overlay", "--version", "0.1.0"],
    );
    cargo
        .publish_fails(&dup.dir)
        .assert_stderr_has("crate version `0.1.0` is already uploaded");
    // Nothing of the refused publishes reached the layer.
    assert!(!work.join("reg/bare-0.1.0.crate").exists());
    assert!(!work.join("reg/index/ba/re/bare").exists());
    assert!(!work.join("reg/wild-0.1.0.crate").exists());
    assert_eq!(index_lines(&overlay.get("/du/pe/dupe").text()).len(), 1);
}

#[test]
fn permissive_publishing_skips_metadata_but_not_names() {
    let work = scratch("permissive");
    let overlay = Overlay::start(&[
        "--permissive-publishing",
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    let cargo = Cargo::new(&overlay);
    cargo.publish(&Fixture::bare(&work, "bare").dir);
    assert!(work.join("reg/bare-0.1.0.crate").exists());

    let reserved = Fixture::library(&work, "rustc", "0.1.0", "x");
    cargo
        .publish_fails(&reserved.dir)
        .assert_stderr_has("cannot upload a crate with a reserved name");
}

#[test]
fn read_only_refuses_writes_with_a_clear_error() {
    let work = scratch("read-only");
    let overlay = Overlay::start(&["--read-only", "-r", &local_layer(&work.join("reg"))]);
    let cargo = Cargo::new(&overlay);
    let out = cargo.publish_fails(&Fixture::library(&work, "frozen", "0.1.0", "x").dir);
    out.assert_stderr_has("this registry is read-only (--read-only): publish is not allowed");
    out.assert_stderr_has("403");
}

#[test]
fn a_layer_directory_is_a_cargo_local_registry() {
    let work = scratch("local-registry");
    let reg = work.join("reg");
    let overlay = Overlay::start(&["-r", &local_layer(&reg)]);
    let cargo = Cargo::new(&overlay);
    cargo.publish(&Fixture::library(&work, "lr-a", "0.1.0", "from lr-a").dir);
    let b = Fixture::crate_with(
        &work,
        "lr-b",
        "0.1.0",
        &dep("lr-a", "0.1"),
        "pub fn value() -> String { lr_a::value() }\n",
    );
    cargo.publish(&b.dir);
    drop(overlay);

    // No server: cargo reads the directory as a local-registry replacing crates.io,
    // and the app depends with plain crates.io syntax.
    let app = Fixture::binary(
        &work,
        "lr-app",
        "lr-b = \"0.1\"\n",
        "fn main() { println!(\"{}\", lr_b::value()); }\n",
    );
    app.write(
        ".cargo/config.toml",
        &format!(
            "[source.crates-io]\nreplace-with = \"layer\"\n\n[source.layer]\nlocal-registry = {:?}\n",
            reg.display().to_string()
        ),
    );
    let offline = Cargo::for_index("sparse+http://127.0.0.1:9/");
    let run = offline.ok(&app.dir, &["run", "-q", "--offline"]);
    assert_eq!(run.stdout().trim(), "from lr-a");
}

#[test]
fn cargo_tmp_registry_lines_are_served() {
    // cargo's own tmp-registry writes null fields and no final newline.
    let work = scratch("tmp-registry");
    let reg = work.join("reg");
    fs::create_dir_all(reg.join("index/3/t")).unwrap();
    let krate = Fixture::library(&work, "tmp", "0.3.1", "tmp");
    let packaged = Cargo::for_index("sparse+http://127.0.0.1:9/")
        .ok(&krate.dir, &["package", "--no-verify", "--allow-dirty"]);
    drop(packaged);
    let crate_path = krate.dir.join("target/package/tmp-0.3.1.crate");
    fs::copy(&crate_path, reg.join("tmp-0.3.1.crate")).unwrap();
    fs::write(
        reg.join("index/3/t/tmp"),
        format!(
            r#"{{"name":"tmp","vers":"0.3.1","deps":[],"features":{{}},"features2":null,"cksum":"{}","yanked":null,"links":null,"rust_version":null,"pubtime":null,"v":2}}"#,
            sha256_file(&crate_path)
        ),
    )
    .unwrap();
    let overlay = Overlay::start(&["-r", &local_layer(&reg)]);
    let cargo = Cargo::new(&overlay);
    let app = Fixture::binary(
        &work,
        "tmp-app",
        &dep("tmp", "0.3"),
        "fn main() { println!(\"{}\", tmp::value()); }\n",
    );
    assert_eq!(cargo.ok(&app.dir, &["run", "-q"]).stdout().trim(), "tmp");
    // A publish appends after the unterminated line without gluing the two together.
    cargo.publish(&Fixture::library(&work.join("next"), "tmp", "0.4.0", "next").dir);
    let text = fs::read_to_string(reg.join("index/3/t/tmp")).unwrap();
    assert_eq!(index_lines(&text).len(), 2);
}

#[test]
fn concurrent_publishes_of_one_crate_from_two_processes_all_land() {
    const VERSIONS: usize = 32;
    let work = scratch("concurrent");
    let reg = work.join("reg");
    let layer = local_layer(&reg);
    // Two servers share the directory: the lock must hold across processes too.
    let overlays = [
        Overlay::start(&["-r", &layer]),
        Overlay::start(&["-r", &layer]),
    ];
    let fixtures: Vec<Fixture> = (0..VERSIONS)
        .map(|i| {
            Fixture::library(
                &work.join(format!("v{i}")),
                "contended",
                &format!("0.1.{i}"),
                "x",
            )
        })
        .collect();
    let cargos: Vec<Cargo> = (0..VERSIONS)
        .map(|i| Cargo::new(&overlays[i % 2]))
        .collect();
    thread::scope(|scope| {
        for (fixture, cargo) in fixtures.iter().zip(&cargos) {
            scope.spawn(move || cargo.publish(&fixture.dir));
        }
    });
    let text = fs::read_to_string(reg.join("index/co/nt/contended")).unwrap();
    let lines = index_lines(&text);
    assert_eq!(lines.len(), VERSIONS, "{text}");
    for line in &lines {
        let version = line["vers"].as_str().unwrap();
        let crate_file = reg.join(format!("contended-{version}.crate"));
        assert_eq!(line["cksum"], sha256_file(&crate_file), "{version}");
    }
    let mut versions: Vec<_> = lines
        .iter()
        .map(|l| l["vers"].as_str().unwrap().to_string())
        .collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), VERSIONS);
}

#[test]
fn hostile_paths_are_refused_without_touching_the_disk() {
    let work = scratch("hostile");
    let reg = work.join("reg");
    fs::create_dir_all(&reg).unwrap();
    fs::write(work.join("secret"), "do not serve").unwrap();
    let overlay = Overlay::start(&["-r", &local_layer(&reg)]);
    for path in [
        "/../secret",
        "/se/cr/../../../secret",
        "/%2e%2e/secret",
        "/api/v1/crates/..%2F..%2Fsecret/1.0.0/download",
        "/api/v1/crates/a/..%2f..%2fsecret/download",
        "/api/v1/crates/a\\b/1.0.0/download",
        "/api/v1/crates/abcd/1.0.0%00/download",
        "/ab/cd/ABCD",
        "/xx/yy/abcd",
    ] {
        let response = overlay.get(path);
        assert_eq!(response.status, 404, "{path}: {}", response.text());
        assert!(response.json()["errors"][0]["detail"].is_string(), "{path}");
    }
    let response = http(overlay.addr, "DELETE", "/config.json", &[], b"");
    assert_eq!(response.status, 405);
    assert!(response.text().contains("method DELETE is not allowed"));
    // Nothing was created outside the index directory.
    let mut entries: Vec<_> = fs::read_dir(&reg)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(entries, ["index"]);
}

#[test]
fn a_token_file_guards_publish_and_yank() {
    let work = scratch("tokens");
    let token_file = work.join("tokens");
    fs::write(&token_file, "# CI\ns3cret-token\n").unwrap();
    let overlay = Overlay::start(&[
        "--token-file",
        token_file.to_str().unwrap(),
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    assert_eq!(
        overlay.var("CARGO_REGISTRIES_OVERLAY_TOKEN"),
        Some("s3cret-token")
    );
    let cargo = Cargo::new(&overlay);
    let krate = Fixture::library(&work, "guarded", "0.1.0", "x");
    cargo.publish(&krate.dir);

    let next = Fixture::library(&work.join("next"), "guarded", "0.2.0", "x");
    let out = cargo
        .command(&next.dir, PUBLISH)
        .env("CARGO_REGISTRIES_OVERLAY_TOKEN", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("authentication failed"));
    let out = cargo
        .command(
            &krate.dir,
            &["yank", "--registry", "overlay", "--version", "0.1.0"],
        )
        .env("CARGO_REGISTRIES_OVERLAY_TOKEN", "Bearer wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let refused = http(overlay.addr, "PUT", "/api/v1/crates/new", &[], b"junk");
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .text()
            .contains("this action requires authentication")
    );
    // Only the authenticated publish landed; nothing was yanked.
    let lines = index_lines(&overlay.get("/gu/ar/guarded").text());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["yanked"], false);
}

#[test]
fn names_collide_across_layers_and_hidden_versions_are_warned_about() {
    let work = scratch("collisions");
    let (top, bottom) = (work.join("top"), work.join("bottom"));
    let only_bottom = Overlay::start(&["-r", &local_layer(&bottom)]);
    let cargo = Cargo::new(&only_bottom);
    let original = Fixture::library(&work.join("b"), "dash-name", "1.0.0", "original");
    cargo.publish(&original.dir);
    // Yanked, so cargo does not refuse the same version itself before uploading.
    cargo.ok(
        &original.dir,
        &["yank", "--registry", "overlay", "--version", "1.0.0"],
    );
    drop(only_bottom);

    let overlay = Overlay::start(&["-r", &local_layer(&top), "-r", &local_layer(&bottom)]);
    let cargo = Cargo::new(&overlay);
    cargo
        .publish_fails(&Fixture::library(&work.join("u"), "dash_name", "0.1.0", "x").dir)
        .assert_stderr_has("crate was previously named `dash-name`");
    // Mixed spellings too, in the first four characters (another index directory)
    // and after them.
    cargo.publish(&Fixture::library(&work.join("m"), "a-b_mixed-up", "0.1.0", "x").dir);
    cargo
        .publish_fails(&Fixture::library(&work.join("n"), "a_b-mixed_Up", "0.1.0", "x").dir)
        .assert_stderr_has("crate was previously named `a-b_mixed-up`");
    let out =
        cargo.publish(&Fixture::library(&work.join("t"), "dash-name", "1.0.0", "rewritten").dir);
    out.assert_stderr_has("warning: dash-name@1.0.0 already exists in the lower layer");
    assert!(top.join("dash-name-1.0.0.crate").exists());
}

#[test]
fn the_upload_limit_is_configurable_and_refused_before_the_body() {
    let work = scratch("upload-limit");
    let overlay = Overlay::start(&[
        "--max-upload-size",
        "100",
        "-r",
        &local_layer(&work.join("reg")),
    ]);
    let out =
        Cargo::new(&overlay).publish_fails(&Fixture::library(&work, "bulky", "0.1.0", "x").dir);
    out.assert_stderr_has("max upload size is: 100");
    // Refused on the head alone: a client announcing a large body gets its 413 at once.
    let mut stream = std::net::TcpStream::connect(overlay.addr).unwrap();
    let head = format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Expect: 100-continue\r\nContent-Length: 50000000\r\n\r\n",
        overlay.token()
    );
    std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut answer).unwrap();
    let answer = harness::parse_response(&answer);
    assert_eq!(answer.status, 413);
    assert!(
        answer.text().contains("max upload size is: 100"),
        "{}",
        answer.text()
    );
}
