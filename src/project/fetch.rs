//! `fetch`: filling a directory from a lockfile, for machines without a network.
//!
//! Every registry package in a `Cargo.lock` is looked up where its `source` says:
//! crates.io's through the whole layer stack, another registry's in the remote layer
//! that reads that registry's index (none is an error that says which `-r` to add). It
//! is downloaded, checked against the lockfile's checksum and the index's, and written to
//! a directory in cargo's local-registry layout with index lines for the locked
//! versions only (a local registry must not offer versions it has no file for); a
//! second fetch into the same directory adds to what is there. The directory is then
//! carried to the air-gapped machine and used as `-r local=DIR`, or
//! directly as a cargo `local-registry` source.

use std::collections::BTreeMap;
use std::fmt;

use crate::project::lockfile::LockedPackage;
use crate::project::progress::Progress;
use crate::registry::index::{CrateName, IndexLine, render_index_file, same_release};
use crate::registry::layer::CrateFile;
use crate::registry::remote::disk_cache::DiskCache;
use crate::registry::{Layer, LayerStack, RegistryError};

#[derive(Debug)]
pub(crate) enum FetchError {
    /// The lockfile names something the layers cannot supply, or supply differently.
    Package {
        package: String,
        why: String,
    },
    Registry(RegistryError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Package { package, why } => write!(f, "{package}: {why}"),
            FetchError::Registry(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Package { .. } => None,
            // Transparent: its Display is this error's, so its source is too.
            FetchError::Registry(e) => e.source(),
        }
    }
}

impl From<RegistryError> for FetchError {
    fn from(e: RegistryError) -> Self {
        FetchError::Registry(e)
    }
}

/// What a fetch did.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct FetchSummary {
    pub(crate) downloaded: usize,
    pub(crate) already_there: usize,
}

/// Where a package is looked up: crates.io's in the whole stack, another registry's in
/// the remote layer that reads that registry's index.
enum Source<'a> {
    Stack(&'a LayerStack),
    Layer(&'a dyn Layer),
}

impl Source<'_> {
    fn of<'s>(stack: &'s LayerStack, package: &LockedPackage) -> Option<Source<'s>> {
        if package.is_from_crates_io() {
            return Some(Source::Stack(stack));
        }
        let wanted = package.index_url().trim_end_matches('/');
        stack
            .layers()
            .iter()
            .find(|layer| {
                layer
                    .as_remote()
                    .is_some_and(|remote| remote.index_url().trim_end_matches('/') == wanted)
            })
            .map(|layer| Source::Layer(layer.as_ref()))
    }

    fn index_lines(&self, name: &CrateName) -> Result<Option<Vec<IndexLine>>, RegistryError> {
        match self {
            Source::Stack(stack) => stack.index_lines(name),
            Source::Layer(layer) => Ok(Some(layer.index_lines(name)?).filter(|l| !l.is_empty())),
        }
    }

    fn download(
        &self,
        name: &CrateName,
        version: &semver::Version,
    ) -> Result<Option<CrateFile>, RegistryError> {
        match self {
            Source::Stack(stack) => stack.download(name, version),
            Source::Layer(layer) => layer.open_crate(name, version),
        }
    }
}

/// Fetches `packages` through `stack` into `into`, reporting crates done and bytes
/// downloaded to `progress` (which only displays them).
pub(crate) fn fetch_into(
    stack: &LayerStack,
    packages: &[LockedPackage],
    into: &DiskCache,
    progress: &mut Progress,
) -> Result<FetchSummary, FetchError> {
    let mut by_crate: BTreeMap<(&str, String), Vec<&LockedPackage>> = BTreeMap::new();
    for package in packages {
        by_crate
            .entry((&package.source, package.name.to_ascii_lowercase()))
            .or_default()
            .push(package);
    }
    let mut summary = FetchSummary::default();
    for locked in by_crate.values() {
        let first = locked[0];
        let problem = |package: &LockedPackage, why: String| FetchError::Package {
            package: format!("{}@{}", package.name, package.version),
            why,
        };
        let name = CrateName::new(&first.name)
            .ok_or_else(|| problem(first, "not a valid crate name".into()))?;
        let source = Source::of(stack, first).ok_or_else(|| {
            problem(
                first,
                format!(
                    "it comes from the registry {}, which no layer reads (add -r remote={})",
                    first.source,
                    first.index_url()
                ),
            )
        })?;
        let lines = source
            .index_lines(&name)?
            .ok_or_else(|| problem(first, "no layer has this crate".into()))?;
        let mut kept: Vec<IndexLine> = Vec::new();
        for package in locked {
            let line = lines
                .iter()
                .find(|l| l.version.to_string() == package.version)
                .ok_or_else(|| problem(package, "no layer has this version".into()))?;
            let cksum = line.field("cksum");
            if package.checksum.is_some() && package.checksum != cksum {
                return Err(problem(
                    package,
                    "the checksum in Cargo.lock differs from the registry's".into(),
                ));
            }
            if into.open_verified(line).is_some() {
                summary.already_there += 1;
            } else {
                let mut file = source
                    .download(&name, &line.version)?
                    .ok_or_else(|| problem(package, "no layer has the .crate file".into()))?;
                into.store_crate(line, &mut progress.counting(&mut file.reader))?;
                summary.downloaded += 1;
            }
            progress.crate_done();
            kept.push(line.clone());
        }
        // Lines an earlier fetch kept stay, as long as their files are still whole:
        // filling DIR from a second lockfile adds to it.
        for earlier in into.load_index(&name).unwrap_or_default() {
            let known = kept
                .iter()
                .any(|l| same_release(&l.version, &earlier.version));
            if !known && into.open_verified(&earlier).is_some() {
                kept.push(earlier);
            }
        }
        kept.sort_by(|a, b| a.version.cmp(&b.version));
        into.store_index(&name, &render_index_file(&kept))?;
    }
    Ok(summary)
}
