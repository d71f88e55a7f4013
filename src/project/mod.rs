//! The user's cargo project, as the overlay reads it: its members ([`workspace`], from
//! `cargo metadata`), its lockfile ([`lockfile`]) and cargo's home directory, and
//! `fetch` ([`fetch`]), which fills a directory with the lockfile's packages, showing
//! its progress on a terminal ([`progress`]).
//!
//! `fetch` lives here rather than in `app`: it is a feature about a project (its input
//! is a `Cargo.lock`, its output what that project needs offline), built on the layer
//! stack; `app` only wires options to it, as it does for serving.

pub(crate) mod fetch;
pub(crate) mod lockfile;
pub(crate) mod progress;
pub(crate) mod workspace;

use std::path::PathBuf;

/// The `CARGO_HOME` the command's cargo uses: the variable, else `~/.cargo`.
pub(crate) fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(std::env::var_os("HOME")?).join(".cargo")))
}
