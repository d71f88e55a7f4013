//! crates.io's checks on the `.crate` tarball, on the license, on the per-crate feature
//! limit and on its default upload size, through real cargo and through hand-built
//! uploads cargo would never send.

use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{
    self, Cargo, Fixture, Overlay, crate_file, index_lines, local_layer, manifest, refusal,
    scratch, upload,
};

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
        let response = overlay.publish_raw(&upload("raw-link", "0.1.0", &tarball));
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

    // A `.crate` of `raw-name` 0.1.0 holding a `Cargo.toml` and one other file.
    let tarball = |manifest: &str, other: &str| {
        crate_file(&[
            ("raw-name-0.1.0/Cargo.toml", b'0', manifest, ""),
            (other, b'0', "", ""),
        ])
    };
    let lib = "raw-name-0.1.0/src/lib.rs";
    for (manifest, other, expected) in [
        (
            manifest("serde", "0.1.0"),
            lib,
            "metadata name `raw-name` does not match manifest name `serde`",
        ),
        (
            manifest("raw-name", "9.9.9"),
            lib,
            "metadata version `0.1.0` does not match manifest version `9.9.9`",
        ),
        // Files outside the crate's own directory.
        (
            manifest("raw-name", "0.1.0"),
            "serde-1.0.0/src/lib.rs",
            "invalid path found: serde-1.0.0/src/lib.rs",
        ),
    ] {
        let response =
            overlay.publish_raw(&upload("raw-name", "0.1.0", &tarball(&manifest, other)));
        assert_eq!(refusal(&response), expected);
    }

    // Not a gzip stream at all.
    let response = overlay.publish_raw(&upload("raw-name", "0.1.0", b"plain bytes"));
    assert_eq!(
        refusal(&response),
        "uploaded tarball is malformed or too large when decompressed"
    );

    assert_eq!(files_under(&layer), before);
    assert_eq!(overlay.get("/ra/w-/raw-name").status, 404);

    // The same upload with a matching manifest is accepted.
    let tarball = tarball(&manifest("raw-name", "0.1.0"), lib);
    let response = overlay.publish_raw(&upload("raw-name", "0.1.0", &tarball));
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

/// An upload of `name`@`vers` declaring `features` features, each enabling nothing.
fn upload_with_features(name: &str, vers: &str, features: usize) -> Vec<u8> {
    let path = format!("{name}-{vers}/Cargo.toml");
    let tarball = crate_file(&[(&path, b'0', &manifest(name, vers), "")]);
    let mut metadata = crate::harness::upload_metadata(name, vers);
    metadata["features"] = (0..features)
        .map(|i| (format!("f{i}"), serde_json::json!([])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    crate::harness::upload_with(&metadata, &tarball)
}

/// crates.io's refusal for `declared` features against a limit of `limit`.
fn too_many_features(limit: usize, declared: usize) -> String {
    format!(
        "crates.io only allows a maximum number of {limit} features, but your crate is \
         declaring {declared} features.\n\nTake a look at \
         https://blog.rust-lang.org/2023/10/26/broken-badges-and-23k-keywords.html to \
         understand why this restriction was introduced.\n\nIf you have a use case that \
         requires an increase of this limit, please send us an email to help@crates.io to \
         discuss the details."
    )
}

#[test]
fn a_lower_layer_raises_the_feature_limit_of_its_crate() {
    let work = scratch("per-crate-limits");
    let lower = work.join("lower");
    // The evidence: a version with 400 features in what becomes the lower layer,
    // written the way a crates.io mirror would hold it.
    {
        let seed = Overlay::start(&["-r", &local_layer(&lower), "--permissive-publishing"]);
        let response = seed.publish_raw(&upload_with_features("wide", "1.0.0", 400));
        assert_eq!(response.status, 200, "{}", response.text());
        seed.stop();
    }
    let stored = fs::read_to_string(lower.join("index/wi/de/wide")).unwrap();
    let line = &index_lines(&stored)[0];
    assert_eq!(line["features"].as_object().unwrap().len(), 400);

    // Without that layer, the upload itself is no evidence: crates.io's refusal.
    let alone = Overlay::start(&["-r", &local_layer(&work.join("alone"))]);
    let response = alone.publish_raw(&upload_with_features("wide", "1.1.0", 400));
    assert_eq!(refusal(&response), too_many_features(300, 400));
    alone.stop();

    // With it underneath: accepted up to what the crate already has, with a warning.
    let top = work.join("top");
    let overlay = Overlay::start(&["-r", &local_layer(&top), "-r", &local_layer(&lower)]);
    let response = overlay.publish_raw(&upload_with_features("wide", "1.1.0", 400));
    assert_eq!(response.status, 200, "{}", response.text());
    let warnings = response.json()["warnings"]["other"].clone();
    let warnings = warnings.as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.starts_with(
            "crate `wide` has 400 features, over crates.io's default limit of 300; \
             accepted because an earlier version, wide@1.0.0 in the layer "
        ) && warning.ends_with(", already has 400"),
        "{warning}"
    );
    assert!(top.join("wide-1.1.0.crate").exists());

    // Above the evidence: refused, with the crate's raised limit in crates.io's text.
    let response = overlay.publish_raw(&upload_with_features("wide", "1.2.0", 450));
    assert_eq!(refusal(&response), too_many_features(400, 450));
    assert!(!top.join("wide-1.2.0.crate").exists());

    // Another crate gains nothing from `wide`'s evidence.
    let response = overlay.publish_raw(&upload_with_features("narrow", "1.0.0", 301));
    assert_eq!(refusal(&response), too_many_features(300, 301));
}

/// crates.io raises its 10 MiB upload limit for some crates, and the overlay cannot
/// tell which (the limit is decided from the request head, and index lines carry no
/// size): the operator raises `--max-upload-size` for every crate. A publish over
/// crates.io's default is then accepted with a warning cargo prints, so a rehearsal
/// does not pass silently where crates.io may refuse.
#[test]
fn a_crate_over_crates_io_default_size_passes_a_raised_limit_with_a_warning() {
    let work = scratch("upload-size");
    let layer = work.join("reg");
    let krate = Fixture::library(&work, "bulky", "1.0.0", "bulky");
    fs::write(
        krate.dir.join("data.bin"),
        harness::incompressible(10 * 1024 * 1024 + 1),
    )
    .unwrap();

    // The default limit is crates.io's: refused from the head, nothing stored.
    let overlay = Overlay::start(&["-r", &local_layer(&layer)]);
    let out = Cargo::new(&overlay).publish_fails(&krate.dir);
    out.assert_stderr_has("(status 413 Payload Too Large): max upload size is: 10485760");
    assert_eq!(files_under(&layer), Vec::<PathBuf>::new());
    overlay.stop();

    let overlay = Overlay::start(&["-r", &local_layer(&layer), "--max-upload-size", "16777216"]);
    let out = Cargo::new(&overlay).publish(&krate.dir);
    let size = fs::metadata(layer.join("bulky-1.0.0.crate")).unwrap().len();
    assert!(size > 10 * 1024 * 1024, "{size} bytes");
    // Its size, `10,4..,...` bytes, stands between the two parts.
    out.assert_stderr_has("warning: the .crate of `bulky`@1.0.0 is 10,");
    out.assert_stderr_has(
        " bytes, over crates.io's default upload limit of 10,485,760; accepted because \
         --max-upload-size is 16,777,216, but crates.io takes it only if it has raised the \
         limit for this crate",
    );

    // A crate within crates.io's default gets no such warning.
    let small = Fixture::library(&work, "small", "1.0.0", "small");
    let out = Cargo::new(&overlay).publish(&small.dir);
    assert!(!out.stderr().contains("upload limit"), "{}", out.all());
}
