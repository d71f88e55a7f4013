//! The overlay itself: an ordered stack of layers, top first.
//!
//! Reads merge or fall through, writes go to the top:
//! - an index file is the union of every layer's lines; when several layers have the
//!   same release (versions equal but for build metadata), the highest layer's line wins;
//! - a download comes from the first layer, top down, that has the version;
//! - a publish or yank goes to the top layer, and only if it takes writes;
//! - a search lists each crate once, from the highest layer that has it.

use std::collections::HashSet;

use super::error::{RegistryError, Result};
use super::index::{CrateName, IndexLine, canonical_name, render_index_file, same_release};
use super::layer::{CrateFile, Layer, SearchHit, WritableLayer};
use super::publish::Publish;

pub struct LayerStack {
    layers: Vec<Box<dyn Layer>>,
    read_only: bool,
}

impl LayerStack {
    /// `layers` top first. With `read_only`, publishes and yanks are refused.
    pub fn new(layers: Vec<Box<dyn Layer>>, read_only: bool) -> LayerStack {
        LayerStack { layers, read_only }
    }

    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The merged index file for `name`, or `None` when no layer has the crate.
    pub fn index_file(&self, name: &CrateName) -> Result<Option<String>> {
        let mut merged: Vec<IndexLine> = Vec::new();
        for layer in &self.layers {
            for line in layer.index_lines(name)? {
                // A line for another crate (a hand-edited or corrupt file) is not served.
                if !line.name.eq_ignore_ascii_case(name.as_str()) {
                    continue;
                }
                if !merged
                    .iter()
                    .any(|m| same_release(&m.version, &line.version))
                {
                    merged.push(line);
                }
            }
        }
        if merged.is_empty() {
            return Ok(None);
        }
        merged.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(Some(render_index_file(&merged)))
    }

    /// The `.crate` for `name` at `version` from the first layer that has it.
    pub fn download(
        &self,
        name: &CrateName,
        version: &semver::Version,
    ) -> Result<Option<CrateFile>> {
        for layer in &self.layers {
            if let Some(file) = layer.open_crate(name, version)? {
                return Ok(Some(file));
            }
        }
        Ok(None)
    }

    /// Stores a checked publish in the top layer. Returns the layer's label.
    pub fn publish(&self, publish: &Publish) -> Result<&str> {
        let (label, top) = self.writable_top("publish")?;
        top.publish(publish)?;
        Ok(label)
    }

    /// Yanks or unyanks a version in the top layer. Returns the layer's label.
    pub fn set_yanked(
        &self,
        name: &CrateName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<&str> {
        let action = if yanked { "yank" } else { "unyank" };
        let (label, top) = self.writable_top(action)?;
        top.set_yanked(name, version, yanked)?;
        Ok(label)
    }

    /// Whether a publish or yank would be accepted at all, before its body is read.
    pub fn check_writable(&self, action: &str) -> Result<()> {
        self.writable_top(action).map(|_| ())
    }

    fn writable_top(&self, action: &str) -> Result<(&str, &dyn WritableLayer)> {
        if self.read_only {
            return Err(RegistryError::Forbidden(format!(
                "this registry is read-only (--read-only): {action} is not allowed"
            )));
        }
        let top = self
            .layers
            .first()
            .ok_or_else(|| RegistryError::Forbidden(format!("no layer takes a {action}")))?;
        let writable = top.writable().ok_or_else(|| {
            RegistryError::Forbidden(format!(
                "the top layer {} is read-only: {action} is not allowed",
                top.label()
            ))
        })?;
        Ok((top.label(), writable))
    }

    /// Crates matching `query`, each from the highest layer that has it, exact name
    /// matches first, then by name. Returns at most `limit` hits and the total count.
    pub fn search(&self, query: &str, limit: usize) -> Result<(Vec<SearchHit>, usize)> {
        let mut seen = HashSet::new();
        let mut hits = Vec::new();
        for layer in &self.layers {
            for hit in layer.search(query)? {
                if seen.insert(canonical_name(&hit.name)) {
                    hits.push(hit);
                }
            }
        }
        let wanted = canonical_name(query);
        hits.sort_by_key(|h| {
            let canonical = canonical_name(&h.name);
            (canonical != wanted, canonical)
        });
        let total = hits.len();
        hits.truncate(limit);
        Ok((hits, total))
    }
}
