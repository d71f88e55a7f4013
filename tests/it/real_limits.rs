//! crates.io's per-crate limits, checked against real releases: crates whose limits
//! crates.io raised are downloaded from crates.io, unpacked and re-published with real
//! cargo through an overlay stacked over the real crates.io (`-r local=DIR -r
//! crates.io`, exec mode, so cargo's crates.io is the stack and the dependencies resolve
//! through it). Each release gets a pre-release version (`X.Y.Z-overlay.1`) that no
//! layer has, so the only evidence for a raised limit is the crate's other versions in
//! the lower layer, never the upload itself.
//!
//! Needs the network; runs only with OVERLAY_TEST_CRATES_IO=1, like the other tests
//! that reach crates.io.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{self, Cargo, CargoOutput, local_layer, scratch};

/// What a re-publish asks of cargo: no verify build (the crates need other targets'
/// toolchains), and the unpacked tree is no git checkout.
const PUBLISH: &[&str] = &["publish", "--no-verify", "--allow-dirty"];

/// Downloads `name`@`version` from crates.io into `work` and unpacks it, ready for
/// `cargo publish`: the files cargo writes into a package itself are removed (cargo
/// refuses to package them), and the package's version becomes `new_version`.
fn unpacked_release(work: &Path, name: &str, version: &str, new_version: &str) -> PathBuf {
    let file = work.join(format!("{name}-{version}.crate"));
    let url = format!("https://static.crates.io/crates/{name}/{name}-{version}.crate");
    let status = Command::new("curl")
        .args(["--fail", "--silent", "--show-error", "--location", "-o"])
        .arg(&file)
        .arg(&url)
        .status()
        .expect("curl runs");
    assert!(status.success(), "downloading {url} failed");
    let gz = flate2::read::GzDecoder::new(fs::File::open(&file).unwrap());
    tar::Archive::new(gz).unpack(work).unwrap();
    let dir = work.join(format!("{name}-{version}"));
    for generated in [".cargo_vcs_info.json", "Cargo.toml.orig"] {
        let _ = fs::remove_file(dir.join(generated));
    }
    set_manifest_field(&dir, "version", version, new_version);
    dir
}

/// Rewrites the package's `field = "from"` line to `field = "to"`. In a packaged
/// manifest `[package]` comes first, so the first such line is the package's own (a
/// dependency's `version` lines come later).
fn set_manifest_field(dir: &Path, field: &str, from: &str, to: &str) {
    let path = dir.join("Cargo.toml");
    let manifest = fs::read_to_string(&path).unwrap();
    let old = format!("\n{field} = \"{from}\"\n");
    assert!(manifest.contains(&old), "no `{field} = \"{from}\"` line");
    let new = format!("\n{field} = \"{to}\"\n");
    fs::write(&path, manifest.replacen(&old, &new, 1)).unwrap();
}

/// `cargo publish` of `dir` through an overlay over `-r local=LAYER -r crates.io`, with
/// `extra` overlay options.
fn publish_over_crates_io(dir: &Path, layer: &Path, extra: &[&str]) -> CargoOutput {
    let layer = local_layer(layer);
    let mut args = extra.to_vec();
    args.extend(["-r", layer.as_str(), "-r", "crates.io"]);
    Cargo::plain().exec(dir, &args, PUBLISH)
}

/// The features (`features` and `features2` together) of `name`@`version` in a local
/// layer's index file.
fn indexed_features(layer: &Path, prefix: &str, name: &str, version: &str) -> usize {
    let text = fs::read_to_string(layer.join("index").join(prefix).join(name)).unwrap();
    let line = crate::harness::index_lines(&text)
        .into_iter()
        .find(|line| line["vers"] == version)
        .unwrap_or_else(|| panic!("no line for {name}@{version}:\n{text}"));
    ["features", "features2"]
        .iter()
        .filter_map(|key| line[key].as_object())
        .map(|features| features.len())
        .sum()
}

/// `web-sys` declares 1,727 features, where crates.io's default limit is 300: crates.io
/// raised the limit for that crate. Re-published through the overlay, it is accepted
/// because crates.io's own `web-sys` versions, in the lower layer, already have that
/// many, and cargo prints the overlay's warning saying so. The same release under a
/// name no layer has is refused with crates.io's text: only the crate's own versions
/// count as evidence.
#[test]
fn a_real_web_sys_release_is_accepted_on_the_evidence_of_crates_io() {
    if !harness::reaches_crates_io(
        "a_real_web_sys_release_is_accepted_on_the_evidence_of_crates_io",
    ) {
        return;
    }
    let work = scratch("real-limits-web-sys");
    let dir = unpacked_release(&work, "web-sys", "0.3.107", "0.3.107-overlay.1");
    let layer = work.join("layer");

    let out = publish_over_crates_io(&dir, &layer, &[]);
    println!("{}", out.stderr());
    assert!(out.0.status.success(), "{}", out.all());
    out.assert_stderr_has(
        "warning: crate `web-sys` has 1,727 features, over crates.io's default limit of \
         300; accepted because an earlier version, web-sys@",
    );
    out.assert_stderr_has("in the layer remote:https://index.crates.io/, already has 1,");
    out.assert_stderr_has("Published web-sys v0.3.107-overlay.1");
    // Stored with every feature; its dependencies resolved through the same stack,
    // which is cargo's crates.io here, so they name no other registry.
    assert_eq!(
        indexed_features(&layer, "we/b-", "web-sys", "0.3.107-overlay.1"),
        1727
    );
    let text = fs::read_to_string(layer.join("index/we/b-/web-sys")).unwrap();
    let line = &crate::harness::index_lines(&text)[0];
    let deps: Vec<(&str, &str)> = line["deps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|dep| dep["kind"] == "normal")
        .map(|dep| (dep["name"].as_str().unwrap(), dep["req"].as_str().unwrap()))
        .collect();
    assert!(deps.contains(&("js-sys", "=0.3.107")), "{deps:?}");
    assert!(
        deps.iter().any(|(name, _)| *name == "wasm-bindgen"),
        "{deps:?}"
    );
    assert!(
        line["deps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|dep| dep["registry"].is_null())
    );

    // No evidence: the same features under a name that no layer has.
    set_manifest_field(&dir, "name", "web-sys", "web-sys-unproven");
    let out = publish_over_crates_io(&dir, &layer, &[]);
    assert!(!out.0.status.success(), "{}", out.all());
    out.assert_stderr_has(
        "crates.io only allows a maximum number of 300 features, but your crate is \
         declaring 1727 features.",
    );
    fs::remove_dir_all(&work).unwrap();
}

/// `windows` 0.48.0 is 11,864,177 bytes, over crates.io's default upload limit of
/// 10 MiB, and declares 667 features: crates.io raised both limits for that crate. The
/// overlay raises the feature limit on the evidence of crates.io's `windows` versions,
/// but not the upload limit: that is decided from the request's head, before the body
/// names the crate, and an index line does not carry a `.crate`'s size. So the
/// re-publish gets crates.io's 413 by default and passes once the operator raises
/// `--max-upload-size`, with a warning for each limit.
#[test]
fn a_real_windows_release_needs_the_operator_to_raise_the_upload_limit() {
    if !harness::reaches_crates_io(
        "a_real_windows_release_needs_the_operator_to_raise_the_upload_limit",
    ) {
        return;
    }
    let work = scratch("real-limits-windows");
    let dir = unpacked_release(&work, "windows", "0.48.0", "0.48.0-overlay.1");
    let layer = work.join("layer");

    let out = publish_over_crates_io(&dir, &layer, &[]);
    println!("{}", out.stderr());
    assert!(!out.0.status.success(), "{}", out.all());
    out.assert_stderr_has("(status 413 Payload Too Large): max upload size is: 10485760");
    assert!(!layer.join("index/wi/nd/windows").exists());

    let out = publish_over_crates_io(&dir, &layer, &["--max-upload-size", "16777216"]);
    println!("{}", out.stderr());
    assert!(out.0.status.success(), "{}", out.all());
    // The size passes on the operator's word, and the warning says what crates.io
    // needs; the features pass on crates.io's evidence.
    out.assert_stderr_has("warning: the .crate of `windows`@0.48.0-overlay.1 is 11,");
    out.assert_stderr_has(
        " bytes, over crates.io's default upload limit of 10,485,760; accepted because \
         --max-upload-size is 16,777,216, but crates.io takes it only if it has raised the \
         limit for this crate",
    );
    out.assert_stderr_has(
        "warning: crate `windows` has 667 features, over crates.io's default limit of \
         300; accepted because an earlier version, windows@",
    );
    out.assert_stderr_has("Published windows v0.48.0-overlay.1");
    assert_eq!(
        indexed_features(&layer, "wi/nd", "windows", "0.48.0-overlay.1"),
        667
    );
    let stored = fs::metadata(layer.join("windows-0.48.0-overlay.1.crate")).unwrap();
    assert!(stored.len() > 10 * 1024 * 1024, "{} bytes", stored.len());
    fs::remove_dir_all(&work).unwrap();
}
