//! The `cargo-overlay-registry` binary: parse arguments, run, turn errors into one
//! message and an exit code.

use std::process::ExitCode;

use cargo_overlay_registry::{app, cli};

fn main() -> ExitCode {
    let action = cli::parse(std::env::args_os().skip(1));
    // In exec mode the command's own output matters most: only warnings by default.
    let exec_mode = matches!(&action, Ok(cli::Action::Serve(c)) if !c.command.is_empty());
    let default_level = if exec_mode { "warn" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .init();
    let action = match action {
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
        cli::Action::Serve(config) => exit(app::run(*config)),
        cli::Action::Fetch(fetch) => exit(app::fetch(*fetch)),
    }
}

/// The exit code of a run, or 1 with the error printed.
fn exit(result: Result<i32, app::AppError>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
