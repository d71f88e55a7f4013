//! Arbitrary text through the manifest check (`tarball::parse_manifest`), as a
//! `.crate`'s root `Cargo.toml` reaches it. It must never panic, nor overflow the
//! stack: run it under `ulimit -s 2048` to hold it to a worker thread's 2 MiB. A
//! refusal's detail stays short (it goes into the response and the log), and an
//! accepted manifest's name and version are strings the `toml` crate reads there too.

#![no_main]

use cargo_overlay_registry::fuzzing::parse_manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_manifest(text) {
        Ok(manifest) => {
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let table: toml::Table = toml::from_str(text).expect("accepted manifests are TOML");
            let package = table
                .get("package")
                .or_else(|| table.get("project"))
                .expect("accepted manifests have a package");
            let field = |key| package.get(key).and_then(toml::Value::as_str);
            assert_eq!(field("name"), Some(manifest.name.as_str()));
            assert_eq!(field("version"), Some(manifest.version.as_str()));
        }
        Err(detail) => assert!(detail.len() <= 1030, "{} bytes", detail.len()),
    }
});
