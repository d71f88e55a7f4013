//! The `cargo-overlay-registry` binary: everything it does lives in the library's
//! `app` module.

fn main() -> std::process::ExitCode {
    cargo_overlay_registry::cli_main()
}
