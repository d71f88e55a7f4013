//! The command line: bad arguments are named, start-up failures say what failed, and
//! temporary layers are cleaned up on exit.

use std::process::Command;

use crate::harness::{BIN, Overlay};

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
fn start_up_failures_name_what_failed_and_exit_1() {
    // Outside the repository, so `cargo metadata` finds no project.
    let outside_any_project =
        std::env::temp_dir().join(format!("overlay-no-project-{}", std::process::id()));
    std::fs::create_dir_all(&outside_any_project).unwrap();
    for (args, says) in [
        (
            &["-p", "0", "-r", "local=/proc/no-such-layer"][..],
            "cannot open a layer",
        ),
        (
            &[
                "-p",
                "0",
                "-r",
                "local",
                "--tls-cert",
                "/no/cert.pem",
                "--tls-key",
                "/no/key.pem",
            ],
            "/no/cert.pem",
        ),
        (
            &["-p", "0", "-r", "cargo-package"],
            "-r cargo-package: `cargo metadata` failed",
        ),
        (
            &["-p", "0", "-r", "crates.io", "--upstream-proxy", "::"],
            "--upstream-proxy",
        ),
    ] {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(&outside_any_project)
            .env_remove("CARGO")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&outside_any_project).unwrap();
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
