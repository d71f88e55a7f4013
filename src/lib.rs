//! cargo-overlay-registry: a writable registry layer over read-only Cargo registries.
//!
//! The crate is laid out the way a request flows: [`cli`] turns arguments into a
//! configuration, [`app`] wires it up, [`proxy`] decides what each connection is
//! (registry, intercepted tunnel, passthrough tunnel) with [`tls`] for certificates,
//! [`http`] reads requests off connections, [`router`] maps them onto the registry, and
//! [`registry`] holds the layers and the rules. `http` knows nothing of registries and `registry` nothing of HTTP; the router
//! is the only module that knows both.

pub mod app;
pub mod auth;
pub mod cli;
pub mod fetch;
pub mod http;
pub mod proxy;
pub mod registry;
pub mod router;
pub mod signals;
pub mod tls;
pub mod upstream;
pub mod workspace;

#[cfg(test)]
mod test_support;
