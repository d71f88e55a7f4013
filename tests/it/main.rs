//! The integration tests: one test binary, one module per topic, sharing the harness
//! in `harness.rs`. The benchmarks (`bench`, `bench_memory`, `bench_resolve`) are
//! ignored tests here; run one with, for example,
//!
//! ```text
//! RUST_LOG=warn cargo test --release --test it -- --ignored --nocapture local_index_get_throughput
//! ```

mod harness;

mod bench;
mod bench_memory;
mod bench_resolve;
mod cache;
mod cli;
mod crash;
mod hardening;
mod nginx;
mod prefetch;
mod proxy;
mod publish_checks;
mod real_limits;
mod registry;
mod remote;
mod security_auth;
mod security_files;
mod security_manifest;
mod security_proxy;
mod security_router;
mod shared_layer;
