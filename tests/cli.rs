//! The command line: bad arguments are named, unbuilt features refuse to start, and
//! temporary layers are cleaned up on exit.

mod common;

use std::process::Command;

use common::{BIN, Overlay};

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_arguments_are_named_and_exit_2() {
    for (args, named) in [
        (&["--port", "eighty"][..], "--port"),
        (&["-r", "ftp=/x"], "--registry"),
        (&["--frobnicate"], "--frobnicate"),
        (&["--base-url", "crates.io"], "--base-url"),
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

#[test]
fn unbuilt_features_refuse_to_start() {
    for (args, says) in [
        (&["-p", "0"][..], "the remote layer `-r crates.io`"),
        (
            &["-p", "0", "-r", "remote=http://127.0.0.1:9"],
            "remote=http://127.0.0.1:9",
        ),
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("not implemented yet"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_temporary_layer_is_removed_on_sigterm() {
    let overlay = Overlay::start(&["-r", "local"]);
    let log = overlay.log();
    let root = log
        .lines()
        .find_map(|l| l.split("layer: local:").nth(1))
        .expect("the layer is logged")
        .trim()
        .to_string();
    assert!(std::path::Path::new(&root).join("index").is_dir(), "{root}");
    assert_eq!(overlay.stop(), Some(128 + 15));
    assert!(
        !std::path::Path::new(&root).exists(),
        "{root} was left behind"
    );
}

#[test]
fn help_and_version() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--registry"));
    let out = Command::new(BIN)
        .args(["overlay-registry", "--version"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("cargo-overlay-registry "));
}
