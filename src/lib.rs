//! cargo-overlay-registry: a writable registry layer over read-only Cargo registries.
//!
//! Most users run the `cargo-overlay-registry` binary. This library is its code, and
//! its one public surface is for running an overlay in-process: build a layer stack,
//! start the overlay on a listener (it serves on background threads), read the
//! environment cargo needs, and stop it.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//!
//! use cargo_overlay_registry::Overlay;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("overlay-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let overlay = Overlay::builder()
//!     .layer(&format!("local={}", dir.display()))?
//!     .start()?;
//!
//! // What cargo needs: the index URL and a token, as the binary prints them.
//! let env = overlay.env();
//! let index = &env.iter().find(|(name, _)| name == "CARGO_REGISTRIES_OVERLAY_INDEX").unwrap().1;
//! assert_eq!(index, &format!("sparse+{}/", overlay.url()));
//!
//! // The registry answers: its config.json.
//! let mut stream = TcpStream::connect(overlay.addr())?;
//! stream.write_all(b"GET /config.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200"));
//! assert!(answer.contains("\"dl\""));
//!
//! // Drains, stops the listener, removes the run directory.
//! assert_eq!(overlay.stop(), 0);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! Inside, the crate is laid out the way a request flows: `cli` turns arguments into
//! a configuration, `app` wires it up, `proxy` decides what each connection is
//! (registry, intercepted tunnel, passthrough tunnel) with `tls` for certificates,
//! `http` reads requests off connections, `router` maps them onto the registry, and
//! `registry` holds the layers (`registry::local`, `registry::remote`) and the rules
//! (`registry::publish`). `project` reads the user's cargo project, `upstream` is the
//! HTTP client. `http` knows nothing of registries and `registry` nothing of HTTP; the
//! router is the only module that knows both. docs/architecture.md has the map.

mod app;
mod auth;
mod cli;
mod digest;
mod embed;
mod http;
mod project;
mod proxy;
mod registry;
mod report;
mod router;
mod tls;
mod upstream;

pub use embed::{Error, ErrorKind, Overlay, OverlayBuilder};

/// The command-line program, for the `cargo-overlay-registry` binary only.
#[doc(hidden)]
pub use app::main as cli_main;

/// What the fuzz targets in `fuzz/` reach: I/O-free parsers and the request loop. Not
/// part of the supported surface.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::http::{
        Body, Handler, Limits, Request, RequestHead, Response, serve_connection,
    };
    pub use crate::registry::index::{IndexLine, parse_index_file};
    pub use crate::registry::publish::tarball::{
        check as check_tarball, entries as tar_entries, parse_manifest,
    };
    pub use crate::registry::publish::{PublishPolicy, prepare};
    pub use crate::registry::remote::prefetch::{Plan, Release};
}

#[cfg(test)]
mod test_support;
