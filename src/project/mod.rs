pub mod fetch;
pub mod lockfile;
pub mod workspace;

use std::path::PathBuf;

/// The `CARGO_HOME` the command's cargo uses: the variable, else `~/.cargo`.
pub fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(std::env::var_os("HOME")?).join(".cargo")))
}
