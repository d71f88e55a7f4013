//! What a layer of the overlay is: something that can answer index, download and
//! search questions, and may take writes.
//!
//! The stack asks every layer the same questions and merges the answers; a layer never
//! knows where it sits in the stack. Adding a layer kind means implementing [`Layer`]
//! (and [`WritableLayer`] if it takes publishes) and naming it in the CLI.

use std::io::Read;

use crate::registry::error::Result;
use crate::registry::index::{CrateName, IndexLine, canonical_name};
use crate::registry::publish::Publish;
use crate::registry::remote::RemoteLayer;
use crate::registry::rendered::SourceStamp;

/// An open `.crate` file, to be streamed to the client.
pub(crate) struct CrateFile {
    pub(crate) reader: Box<dyn Read + Send>,
    /// `None` when an upstream sent the download without a length: it is streamed as
    /// it arrives, never held whole.
    pub(crate) len: Option<u64>,
}

/// One crate found by a search, in the shape of crates.io's search answer.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub(crate) struct SearchHit {
    /// The name as published (case kept).
    pub(crate) name: String,
    /// The highest version that is not yanked.
    pub(crate) max_version: String,
    pub(crate) description: Option<String>,
}

/// Where a crate ranks in search results for `wanted`, both folded by
/// `canonical_name`: the crate of that very name first, then by name. A layer that
/// answers with a page returns the first of this order, which the stack merges by it.
/// `canonical` is borrowed to compare, or owned to be a sort key.
pub(crate) fn search_rank<S: AsRef<str>>(canonical: S, wanted: &str) -> (bool, S) {
    (canonical.as_ref() != wanted, canonical)
}

/// Sorts `hits` into [`search_rank`] order for `query`.
pub(crate) fn sort_by_search_rank(hits: &mut [SearchHit], query: &str) {
    let wanted = canonical_name(query);
    // Each key once: a common word matches thousands of crates.
    hits.sort_by_cached_key(|hit| search_rank(canonical_name(&hit.name), &wanted));
}

/// What a layer found for a search: some hits, and how many there are in all.
#[derive(Debug, Default)]
pub(crate) struct SearchPage {
    pub(crate) hits: Vec<SearchHit>,
    pub(crate) total: usize,
}

/// How a write was carried out.
#[derive(Debug)]
pub(crate) enum WriteOutcome {
    /// The layer stored it.
    Stored,
    /// The layer forwarded it upstream; the upstream's answer goes back unchanged.
    Forwarded { status: u16, body: Vec<u8> },
}

pub(crate) trait Layer: Send + Sync {
    /// How the layer is named in logs and errors, e.g. `local:/srv/registry`.
    fn label(&self) -> &str;

    /// The index lines this layer has for `name`; empty when it has none.
    fn index_lines(&self, name: &CrateName) -> Result<Vec<IndexLine>>;

    /// What [`index_lines`](Self::index_lines) would answer for `name` depends on,
    /// learned without reading it: while it stays the same, so does the answer (see
    /// [`rendered`](crate::registry::rendered)). `None` when the layer cannot vouch
    /// for its next answer, which is then read afresh; the default.
    fn index_stamp(&self, _name: &CrateName) -> Option<SourceStamp> {
        None
    }

    /// The `.crate` for `name` at `version` (build metadata ignored), if this layer has it.
    fn open_crate(&self, name: &CrateName, version: &semver::Version) -> Result<Option<CrateFile>>;

    /// Names to look up when checking whether this layer has a crate that crates.io
    /// would take for `name`: one differing only in case or `-`/`_`. The default is
    /// three spellings (as given, all `_`, all `-`), all that a registry known only by
    /// its index files allows; a layer that can list its crates finds every one.
    fn names_like(&self, name: &CrateName) -> Result<Vec<CrateName>> {
        let text = name.as_str();
        Ok([
            text.to_string(),
            text.replace('-', "_"),
            text.replace('_', "-"),
        ]
        .iter()
        .filter_map(|spelling| CrateName::new(spelling))
        .collect())
    }

    /// Crates whose name or description contains `query` (case-insensitive), at most
    /// `limit` of them when the layer pages its answers.
    fn search(&self, query: &str, limit: usize) -> Result<SearchPage>;

    /// The layer as a remote one, when it is reached over the network: what only
    /// remote layers have (an index URL, fetching ahead of cargo) is asked of that type.
    fn as_remote(&self) -> Option<&RemoteLayer> {
        None
    }

    /// The layer's write side, when it takes publishes and yanks.
    fn writable(&self) -> Option<&dyn WritableLayer> {
        None
    }
}

/// A layer's write side. Writes never carry the caller's credentials: a layer that
/// passes them on to another registry writes there with a token of its own.
pub(crate) trait WritableLayer {
    /// Refuses, before a publish's body is read, writes this layer cannot carry out at
    /// all (a remote layer without a token of its own).
    fn check_writable(&self) -> Result<()> {
        Ok(())
    }

    /// Stores (or forwards) a publish. A stored publish is durable when this returns.
    /// Refuses a version that already exists in this layer.
    fn publish(&self, publish: &Publish) -> Result<WriteOutcome>;

    /// Sets or clears the yanked flag of `name` at `version`.
    fn set_yanked(
        &self,
        name: &CrateName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<WriteOutcome>;
}
