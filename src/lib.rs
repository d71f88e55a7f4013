//! cargo-overlay-registry: a writable registry layer over read-only Cargo registries.
//!
//! The crate is laid out the way a request flows: [`cli`] turns arguments into a
//! configuration, [`app`] wires it up, [`proxy`] decides what each connection is
//! (registry, intercepted tunnel, passthrough tunnel) with [`tls`] for certificates,
//! [`http`] reads requests off connections, [`router`] maps them onto the registry, and
//! [`registry`] holds the layers and the rules. `http` knows nothing of registries and `registry` nothing of HTTP; the router
//! is the only module that knows both.

mod app;
mod auth;
mod cli;
mod http;
mod project;
mod proxy;
mod registry;
mod router;
mod tls;
mod upstream;

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
    pub use crate::registry::publish::tarball::{check as check_tarball, parse_manifest};
    pub use crate::registry::publish::{PublishPolicy, prepare};
    pub use crate::registry::remote::prefetch::{Plan, Release};
}
