//! A publish whose `Cargo.toml` is built to hurt the manifest check, on the real
//! binary: a manifest nested hundreds of thousands of levels deep once overflowed a
//! worker's stack and aborted the server. Every such upload must get cargo's JSON
//! error, and the server must keep serving.

use crate::harness::{
    Overlay, assert_still_serving, local_layer, refusal, scratch, upload_with_manifest,
};

#[test]
fn a_manifest_nesting_bomb_is_refused_and_the_server_keeps_serving() {
    let work = scratch("manifest-bomb");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    let deep = 200_000;
    let key = vec!["a"; 79].join(".");
    let mut product = format!("[package]\nname = \"bomb\"\nversion = \"0.1.0\"\n[{key}]\n{key} = ");
    product.push_str(&format!("{{ {key} = ").repeat(79));
    product.push_str(&format!("1{}\n", " }".repeat(79)));
    for (what, manifest) in [
        ("arrays", format!("x = {}", "[".repeat(deep))),
        ("inline tables", format!("x = {}", "{a = ".repeat(deep))),
        (
            "arrays of inline tables",
            format!("x = {}", "[{a = ".repeat(deep / 2)),
        ),
        ("dotted keys", format!("{} = 1", vec!["a"; deep].join("."))),
        ("dotted keys in inline tables", product),
    ] {
        let body = upload_with_manifest("bomb", "0.1.0", &manifest);
        assert!(body.len() < 8 * 1024, "{what}: {} bytes", body.len());
        let detail = refusal(&overlay.publish_raw(&body));
        assert!(
            detail.starts_with("failed to parse `Cargo.toml` manifest file\n\n"),
            "{what}: {detail}"
        );
        assert!(
            detail.len() < 2048,
            "{what}: {} bytes of detail",
            detail.len()
        );
        assert_still_serving(&overlay);
    }
    assert!(!work.join("reg/bomb-0.1.0.crate").exists());
}

#[test]
fn a_manifest_that_is_not_valid_toml_is_refused_as_crates_io_refuses_it() {
    let work = scratch("manifest-fidelity");
    let overlay = Overlay::start(&["-r", &local_layer(&work.join("reg"))]);
    // A second `name` once passed, the first one winning.
    let twice = "[package]\nname = \"twice\"\nname = \"other\"\nversion = \"0.1.0\"\n";
    let detail = refusal(&overlay.publish_raw(&upload_with_manifest("twice", "0.1.0", twice)));
    assert!(detail.contains("duplicate key"), "{detail}");
    // So did a `\u` escape with a sign in it.
    let escape = "[package]\nname = \"escape\\u+041\"\nversion = \"0.1.0\"\n";
    let detail = refusal(&overlay.publish_raw(&upload_with_manifest("escape", "0.1.0", escape)));
    assert!(detail.starts_with("failed to parse `Cargo.toml` manifest file\n\nTOML parse error"));
    // And valid TOML cargo could write was refused.
    let inline = "package = { name = \"inline\", version = \"0.1.0\" }\n";
    let response = overlay.publish_raw(&upload_with_manifest("inline", "0.1.0", inline));
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(work.join("reg/inline-0.1.0.crate").exists());
    assert!(!work.join("reg/twice-0.1.0.crate").exists());
}
