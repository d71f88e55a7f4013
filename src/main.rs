//! The `cargo-overlay-registry` binary: parse arguments, run, turn errors into one
//! message and an exit code.

use std::process::ExitCode;

use cargo_overlay_registry::{app, cli};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let action = match cli::parse(std::env::args_os().skip(1)) {
        Ok(action) => action,
        Err(e) => {
            eprintln!("error: {e}\n\nRun with --help to see the options.");
            return ExitCode::from(2);
        }
    };
    match action {
        cli::Action::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        cli::Action::Version => {
            println!("cargo-overlay-registry {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        cli::Action::Serve(config) => match app::run(config) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
    }
}
