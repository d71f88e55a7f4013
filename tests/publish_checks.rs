//! crates.io's checks on the `.crate` tarball and on the license, through real cargo
//! and through hand-built uploads cargo would never send.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{Cargo, Fixture, HttpResponse, Overlay, http, index_lines, local_layer, scratch};
use flate2::Compression;
use flate2::write::GzEncoder;

/// Every file under `dir`, relative, sorted (empty when `dir` does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A ustar header block for `path`, checksummed.
fn tar_header(path: &str, kind: u8, size: usize, link: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..265].copy_from_slice(b"ustar\x0000");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A gzipped tar of `(path, type, data, link target)` entries.
fn crate_file(entries: &[(&str, u8, &str, &str)]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (path, kind, data, link) in entries {
        tar.extend_from_slice(&tar_header(path, *kind, data.len(), link));
        tar.extend_from_slice(data.as_bytes());
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.extend_from_slice(&[0; 1024]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn manifest(name: &str, version: &str) -> String {
    format!(
        "[package]\nedition = \"2021\"\nname = \"{name}\"\nversion = \"{version}\"\n\
         description = \"raw\"\nlicense = \"MIT\"\n"
    )
}

/// The upload body cargo sends: `u32` LE JSON length, JSON, `u32` LE crate length, crate.
fn upload(name: &str, version: &str, crate_bytes: &[u8]) -> Vec<u8> {
    let json = serde_json::json!({
        "name": name, "vers": version, "deps": [], "features": {}, "authors": [],
        "description": "raw", "license": "MIT", "keywords": [], "categories": [],
        "badges": {}, "links": null, "rust_version": null,
    })
    .to_string();
    let mut body = Vec::new();
    body.extend((json.len() as u32).to_le_bytes());
    body.extend(json.as_bytes());
    body.extend((crate_bytes.len() as u32).to_le_bytes());
    body.extend(crate_bytes);
    body
}

fn put(overlay: &Overlay, body: &[u8]) -> HttpResponse {
    http(
        overlay.addr,
        "PUT",
        "/api/v1/crates/new",
        &[
            ("Authorization", overlay.token()),
            ("Accept", "application/json"),
        ],
        body,
    )
}

/// The one error detail of a refused upload.
fn refusal(response: &HttpResponse) -> String {
    assert_eq!(response.status, 400, "{}", response.text());
    let json = response.json();
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{json}");
    errors[0]["detail"].as_str().unwrap().to_string()
}

#[test]
fn a_non_spdx_license_is_refused_through_cargo() {
    let work = scratch("license");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let cargo = Cargo::new(&overlay);
    let krate = Fixture::library(&work, "odd-license", "0.1.0", "x");
    krate.write(
        "Cargo.toml",
        "[package]\nname = \"odd-license\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         description = \"A crate with a made-up license\"\nlicense = \"Nonsense-License\"\n",
    );
    let out = cargo.publish_fails(&krate.dir);
    out.assert_stderr_has(
        "the remote server responded with an error (status 400 Bad Request): unknown or \
         invalid license expression; see http://opensource.org/licenses for options, and \
         http://spdx.org/licenses/ for their identifiers",
    );
    // cargo indents the lines of a multi-line detail.
    out.assert_stderr_has("\n  Nonsense-License\n  ^^^^^^^^^^^^^^^^ unknown term");
    assert!(!work.join("reg/odd-license-0.1.0.crate").exists());

    // The legacy `/` form still goes through.
    krate.write(
        "Cargo.toml",
        "[package]\nname = \"odd-license\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         description = \"A crate with a made-up license\"\nlicense = \"MIT/Apache-2.0\"\n",
    );
    cargo.publish(&krate.dir);
    assert!(work.join("reg/odd-license-0.1.0.crate").exists());
}

#[test]
fn a_tarball_with_a_symlink_is_refused_and_nothing_is_stored() {
    let work = scratch("symlink");
    let layer = work.join("reg");
    // The check is a safety check: permissive publishing does not skip it.
    for args in [vec![], vec!["--permissive-publishing"]] {
        let mut all = vec!["-r".to_string(), local_layer(&layer)];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let overlay = Overlay::start(&all);
        let before = files_under(&layer);
        let tarball = crate_file(&[
            (
                "raw-link-0.1.0/Cargo.toml",
                b'0',
                &manifest("raw-link", "0.1.0"),
                "",
            ),
            ("raw-link-0.1.0/src/lib.rs", b'0', "", ""),
            ("raw-link-0.1.0/src/evil.rs", b'2', "", "/etc/passwd"),
        ]);
        let response = put(&overlay, &upload("raw-link", "0.1.0", &tarball));
        assert_eq!(
            refusal(&response),
            "unexpected tar entry type Symlink found: raw-link-0.1.0/src/evil.rs",
            "{args:?}"
        );
        assert_eq!(files_under(&layer), before, "{args:?}");
        assert_eq!(overlay.get("/ra/w-/raw-link").status, 404);
    }
}

#[test]
fn a_manifest_naming_another_crate_is_refused_and_nothing_is_stored() {
    let work = scratch("mismatch");
    let layer = work.join("reg");
    let overlay = Overlay::start(&["-r", &local_layer(&layer)]);
    let before = files_under(&layer);

    let tarball = crate_file(&[
        (
            "raw-name-0.1.0/Cargo.toml",
            b'0',
            &manifest("serde", "0.1.0"),
            "",
        ),
        ("raw-name-0.1.0/src/lib.rs", b'0', "", ""),
    ]);
    let response = put(&overlay, &upload("raw-name", "0.1.0", &tarball));
    assert_eq!(
        refusal(&response),
        "metadata name `raw-name` does not match manifest name `serde`"
    );

    let tarball = crate_file(&[
        (
            "raw-name-0.1.0/Cargo.toml",
            b'0',
            &manifest("raw-name", "9.9.9"),
            "",
        ),
        ("raw-name-0.1.0/src/lib.rs", b'0', "", ""),
    ]);
    let response = put(&overlay, &upload("raw-name", "0.1.0", &tarball));
    assert_eq!(
        refusal(&response),
        "metadata version `0.1.0` does not match manifest version `9.9.9`"
    );

    // Files outside the crate's own directory.
    let tarball = crate_file(&[
        (
            "raw-name-0.1.0/Cargo.toml",
            b'0',
            &manifest("raw-name", "0.1.0"),
            "",
        ),
        ("serde-1.0.0/src/lib.rs", b'0', "", ""),
    ]);
    let response = put(&overlay, &upload("raw-name", "0.1.0", &tarball));
    assert_eq!(
        refusal(&response),
        "invalid path found: serde-1.0.0/src/lib.rs"
    );

    // Not a gzip stream at all.
    let response = put(&overlay, &upload("raw-name", "0.1.0", b"plain bytes"));
    assert_eq!(
        refusal(&response),
        "uploaded tarball is malformed or too large when decompressed"
    );

    assert_eq!(files_under(&layer), before);
    assert_eq!(overlay.get("/ra/w-/raw-name").status, 404);

    // The same upload with a matching manifest is accepted.
    let tarball = crate_file(&[
        (
            "raw-name-0.1.0/Cargo.toml",
            b'0',
            &manifest("raw-name", "0.1.0"),
            "",
        ),
        ("raw-name-0.1.0/src/lib.rs", b'0', "", ""),
    ]);
    let response = put(&overlay, &upload("raw-name", "0.1.0", &tarball));
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(layer.join("raw-name-0.1.0.crate").exists());
}

#[test]
fn real_cargo_tarballs_pass() {
    let work = scratch("real-tarballs");
    let layer = work.join("reg");
    let overlay = Overlay::start(&["-r", &local_layer(&layer)]);
    let cargo = Cargo::new(&overlay);

    let krate = Fixture::library(&work, "built-thing", "0.3.1", "built");
    krate.write(
        "Cargo.toml",
        "[package]\nname = \"built-thing\"\nversion = \"0.3.1\"\nedition = \"2021\"\n\
         description = \"\"\"\nA crate with a build script.\nname = \"not-this\"\n\"\"\"\n\
         license = \"MIT OR Apache-2.0\"\nbuild = \"build.rs\"\nreadme = \"README.md\"\n\
         keywords = [\"build\", \"test\"]\nrust-version = \"1.70\"\n\n\
         [features]\ndefault = [\"extra\"]\nextra = []\n",
    );
    krate.write(
        "build.rs",
        "fn main() { println!(\"cargo:rerun-if-changed=build.rs\"); }\n",
    );
    krate.write("README.md", "# built-thing\n");
    krate.write("src/extra.rs", "pub fn extra() {}\n");
    krate.write("examples/demo.rs", "fn main() {}\n");
    krate.write("tests/smoke.rs", "#[test]\nfn smoke() {}\n");
    // A path longer than a tar header holds, so cargo writes a GNU long-name entry.
    let deep = format!(
        "assets/{}/{}.txt",
        "nested-directory-name".repeat(3),
        "a-rather-long-file-name".repeat(3)
    );
    krate.write(&deep, "data\n");
    cargo.publish(&krate.dir);
    assert!(layer.join("built-thing-0.3.1.crate").exists());
    let index = overlay.get("/bu/il/built-thing");
    assert_eq!(index.status, 200);
    assert_eq!(index_lines(&index.text())[0]["vers"], "0.3.1");

    // A second version, and a crate published with its verify build.
    let next = Fixture::library(&work.join("next"), "built-thing", "0.3.2", "next");
    cargo.publish(&next.dir);
    let verified = Fixture::library(&work, "verified-thing", "1.0.0", "v");
    cargo.ok(
        &verified.dir,
        &["publish", "--registry", "overlay", "--allow-dirty"],
    );
    assert!(layer.join("verified-thing-1.0.0.crate").exists());
}
