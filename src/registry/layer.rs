//! What a layer of the overlay is: something that can answer index, download and
//! search questions, and may take writes.
//!
//! The stack asks every layer the same questions and merges the answers; a layer never
//! knows where it sits in the stack. Adding a layer kind means implementing [`Layer`]
//! (and [`WritableLayer`] if it takes publishes) and naming it in the CLI.

use std::io::Read;

use super::error::Result;
use super::index::{CrateName, IndexLine};
use super::publish::Publish;

/// An open `.crate` file, to be streamed to the client.
pub struct CrateFile {
    pub reader: Box<dyn Read + Send>,
    pub len: u64,
}

/// One crate found by a search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    /// The name as published (case kept).
    pub name: String,
    /// The highest version that is not yanked.
    pub max_version: String,
    pub description: Option<String>,
}

pub trait Layer: Send + Sync {
    /// How the layer is named in logs and errors, e.g. `local:/srv/registry`.
    fn label(&self) -> &str;

    /// The index lines this layer has for `name`; empty when it has none.
    fn index_lines(&self, name: &CrateName) -> Result<Vec<IndexLine>>;

    /// The `.crate` for `name` at `version` (build metadata ignored), if this layer has it.
    fn open_crate(&self, name: &CrateName, version: &semver::Version) -> Result<Option<CrateFile>>;

    /// Crates whose name or description contains `query` (case-insensitive).
    fn search(&self, query: &str) -> Result<Vec<SearchHit>>;

    /// The layer's write side, when it takes publishes and yanks.
    fn writable(&self) -> Option<&dyn WritableLayer> {
        None
    }
}

pub trait WritableLayer {
    /// Stores a publish. Returns only once the `.crate` and its index line are durable.
    /// Refuses a version that already exists in this layer.
    fn publish(&self, publish: &Publish) -> Result<()>;

    /// Sets or clears the yanked flag of `name` at `version`.
    fn set_yanked(&self, name: &CrateName, version: &semver::Version, yanked: bool) -> Result<()>;
}
