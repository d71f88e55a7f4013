//! The overlay itself: an ordered stack of layers, top first.
//!
//! Reads merge or fall through, writes go to the top:
//! - an index file is the union of every layer's lines; when several layers have the
//!   same release (versions equal but for build metadata), the highest layer's line wins;
//! - a download comes from the first layer, top down, that has the version;
//! - a publish or yank goes to the top layer, and only if it takes writes;
//! - a search lists each crate once, from the highest layer that has it, asking only the
//!   first remote layer.
//!
//! A layer that fails (an upstream that is down) does not sink an answer the other
//! layers can give: the failure is logged and the rest is served. Only when nothing
//! could be found and some layer failed does the request fail, naming that layer.

use std::collections::HashSet;
use std::sync::Arc;

use crate::registry::error::{RegistryError, Result};
use crate::registry::index::{
    CrateName, IndexLine, canonical_name, render_index_file, same_release,
};
use crate::registry::layer::{
    CrateFile, Layer, SearchPage, WritableLayer, WriteOutcome, sort_by_search_rank,
};
use crate::registry::publish::{Publish, validate};
use crate::registry::remote::RemoteLayer;
use crate::registry::remote::download_ahead::Project;
use crate::registry::remote::prefetch::{Release, WakeHook};
use crate::registry::rendered::{RenderedCache, RenderedIndex, SourceStamp};
use crate::report::Report;

/// What a publish did.
pub(crate) struct PublishResult<'a> {
    /// The label of the layer that took it.
    pub(crate) layer: &'a str,
    pub(crate) outcome: WriteOutcome,
    /// Things the publisher should know (cargo prints them as warnings).
    pub(crate) warnings: Vec<String>,
}

/// The merged index lines of a crate.
struct Merged {
    lines: Vec<IndexLine>,
    /// Whether every layer answered; when one failed, the rest were merged.
    complete: bool,
}

pub(crate) struct LayerStack {
    layers: Vec<Box<dyn Layer>>,
    read_only: bool,
    /// Merged index files rendered before, kept while their sources are unchanged.
    rendered: RenderedCache,
}

impl LayerStack {
    /// `layers` top first. With `read_only`, publishes and yanks are refused.
    pub(crate) fn new(layers: Vec<Box<dyn Layer>>, read_only: bool) -> LayerStack {
        LayerStack {
            layers,
            read_only,
            rendered: RenderedCache::default(),
        }
    }

    /// The remote layers, top first: the ones that fetch ahead of cargo.
    fn remote_layers(&self) -> impl Iterator<Item = &RemoteLayer> {
        self.layers.iter().filter_map(|layer| layer.as_remote())
    }

    /// Runs `work` once, when the first remote layer's prefetching wakes: at once for a
    /// layer without `--cache DIR`, else when a layer first asks its upstream. Exec
    /// mode reads the project here, so a resolve that `--cache` answers whole never
    /// runs `cargo metadata`.
    pub(crate) fn when_prefetch_wakes(&self, work: impl FnOnce() + Send + 'static) {
        let hook = WakeHook::new(work);
        for layer in self.remote_layers() {
            layer.on_prefetch_wake(Arc::clone(&hook));
        }
    }

    /// Passes the hint that cargo is about to resolve a project with these members to
    /// every remote layer.
    pub(crate) fn expect_members(&self, members: &[Release]) {
        for layer in self.remote_layers() {
            layer.expect_members(members);
        }
    }

    /// Passes the hint that cargo may download what `project`'s lockfile names to
    /// every remote layer.
    pub(crate) fn expect_downloads(&self, project: &Project) {
        for layer in self.remote_layers() {
            layer.expect_downloads(project);
        }
    }

    pub(crate) fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The merged index file for `name`, or `None` when no layer has the crate: the
    /// body rendered before while every layer vouches that its source is unchanged
    /// (see [`rendered`](crate::registry::rendered)), else rendered afresh.
    pub(crate) fn index_file(&self, name: &CrateName) -> Result<Option<RenderedIndex>> {
        let key = name.lowercase();
        // Taken before the layers are read; see `rendered` for why the order matters.
        let layer_stamps: Vec<Option<SourceStamp>> = self
            .layers
            .iter()
            .map(|layer| layer.index_stamp(name))
            .collect();
        let stamps: Option<Vec<SourceStamp>> = layer_stamps.iter().cloned().collect();
        if let Some(stamps) = &stamps
            && let Some(rendered) = self.rendered.get(&key, stamps)
        {
            return Ok(Some(rendered));
        }
        let Some(merged) = self.merged_lines(name, &layer_stamps)? else {
            return Ok(None);
        };
        let rendered = RenderedIndex::new(render_index_file(&merged.lines));
        // A body some layer failed to give its lines to is served, not kept.
        if let Some(stamps) = stamps
            && merged.complete
        {
            self.rendered.insert(&key, stamps, &rendered);
        }
        Ok(Some(rendered))
    }

    /// The merged index lines for `name`, oldest version first, or `None` when no
    /// layer has the crate.
    pub(crate) fn index_lines(&self, name: &CrateName) -> Result<Option<Vec<IndexLine>>> {
        Ok(self.merged_lines(name, &[])?.map(|merged| merged.lines))
    }

    /// [`index_lines`](Self::index_lines), saying whether every layer answered. A
    /// layer whose stamp in `stamps` (one per layer, if taken) found no file is not
    /// read: it would find nothing, or a file written after the stamp, which the next
    /// request's stamps show. That spares the common case, a crate only a lower layer
    /// has, a second lookup of the missing file.
    fn merged_lines(
        &self,
        name: &CrateName,
        stamps: &[Option<SourceStamp>],
    ) -> Result<Option<Merged>> {
        let mut merged: Vec<IndexLine> = Vec::new();
        // Releases already merged, as `same_release` compares them (build metadata
        // aside): a set, since crates with thousands of versions exist.
        let mut releases: HashSet<(u64, u64, u64, String)> = HashSet::new();
        let mut failure = None;
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(Some(SourceStamp::Absent)) = stamps.get(i) {
                continue;
            }
            let lines = match layer.index_lines(name) {
                Ok(lines) => lines,
                Err(e) => {
                    failure.get_or_insert(e);
                    continue;
                }
            };
            for line in lines {
                // A line for another crate (a hand-edited or corrupt file) is not served.
                if !line.name.eq_ignore_ascii_case(name.as_str()) {
                    continue;
                }
                let v = &line.version;
                if releases.insert((v.major, v.minor, v.patch, v.pre.to_string())) {
                    merged.push(line);
                }
            }
        }
        let complete = match failure {
            Some(e) if merged.is_empty() => return Err(e),
            Some(e) => {
                log::warn!(
                    "serving `{name}` from the layers that answered: {}",
                    Report(&e)
                );
                false
            }
            None => true,
        };
        if merged.is_empty() {
            return Ok(None);
        }
        merged.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(Some(Merged {
            lines: merged,
            complete,
        }))
    }

    /// The `.crate` for `name` at `version` from the first layer that has it.
    pub(crate) fn download(
        &self,
        name: &CrateName,
        version: &semver::Version,
    ) -> Result<Option<CrateFile>> {
        let mut failure = None;
        for layer in &self.layers {
            match layer.open_crate(name, version) {
                Ok(Some(file)) => return Ok(Some(file)),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("{}", Report(&e));
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(None), Err)
    }

    /// Whether writes are passed on to an upstream registry (a remote top layer),
    /// which then applies its own rules.
    pub(crate) fn forwards_writes(&self) -> bool {
        self.layers
            .first()
            .is_some_and(|top| top.as_remote().is_some())
    }

    /// Stores or forwards a checked publish in the top layer. Returns the layer's
    /// label, how it went, and warnings for the publisher.
    pub(crate) fn publish(&self, publish: &Publish) -> Result<PublishResult<'_>> {
        let (layer, top) = self.writable_top("publish")?;
        // A forwarding top layer leaves these rules to the registry it forwards to.
        let warnings = if self.forwards_writes() {
            if let Some(over) = &publish.over_limit {
                over.check(validate::DEFAULT_MAX_FEATURES)?;
            }
            Vec::new()
        } else {
            let from_layers = self.check_against_layers(publish)?;
            // The upload's own warnings (its size) first: crates.io checks size first.
            let warnings: Vec<String> = publish
                .warnings
                .iter()
                .cloned()
                .chain(from_layers)
                .collect();
            for warning in &warnings {
                log::warn!("{warning}");
            }
            warnings
        };
        let outcome = top.publish(publish)?;
        Ok(PublishResult {
            layer,
            outcome,
            warnings,
        })
    }

    /// Checks a publish against every layer, the way crates.io checks its one registry:
    /// a name that differs from an existing one only in case or `-`/`_` is refused
    /// (they would share an index file, and cargo matches names exactly); a version a
    /// lower layer already has with other content is allowed, with a warning.
    ///
    /// The same walk gathers the evidence for crates.io's per-crate feature limit: a
    /// publish over the default is accepted up to the most any existing version of the
    /// crate in any layer needs (features and `features2` together), with a warning,
    /// and refused with crates.io's text otherwise. The upload itself is no evidence.
    fn check_against_layers(&self, publish: &Publish) -> Result<Vec<String>> {
        let name = publish.name.as_str();
        let mut warnings = Vec::new();
        // crates.io checks features before it finds an earlier name, so the feature
        // rules run first and a rename is reported after them.
        let mut renamed = None;
        let mut evidence: Option<(usize, String)> = None;
        for (depth, layer) in self.layers.iter().enumerate() {
            let candidates = layer.names_like(&publish.name).unwrap_or_else(|e| {
                log::warn!(
                    "could not list the names like `{name}` in a layer: {}",
                    Report(&e)
                );
                Vec::new()
            });
            let mut looked_up = HashSet::new();
            for candidate in candidates {
                if !looked_up.insert(candidate.lowercase()) {
                    continue;
                }
                let lines = match layer.index_lines(&candidate) {
                    Ok(lines) => lines,
                    Err(e) => {
                        log::warn!(
                            "could not check the name `{name}` against a layer: {}",
                            Report(&e)
                        );
                        continue;
                    }
                };
                for line in lines
                    .iter()
                    .filter(|l| canonical_name(&l.name) == publish.name.canonical())
                {
                    if line.name != name {
                        renamed.get_or_insert_with(|| line.name.clone());
                        continue;
                    }
                    if publish.over_limit.is_some() {
                        let has = features_needed(line);
                        if evidence.as_ref().is_none_or(|(most, _)| has > *most) {
                            let at =
                                format!("{name}@{} in the layer {}", line.version, layer.label());
                            evidence = Some((has, at));
                        }
                    }
                    let changed =
                        line.field("cksum").as_deref() != Some(publish.entry.cksum.as_str());
                    if depth > 0 && changed && same_release(&line.version, &publish.version) {
                        let warning = format!(
                            "{name}@{} already exists in the lower layer {} with other content; the new upload hides it, and a Cargo.lock that recorded the old checksum will fail to verify",
                            publish.version,
                            layer.label()
                        );
                        warnings.push(warning);
                    }
                }
            }
        }
        if let Some(over) = &publish.over_limit {
            let default = validate::DEFAULT_MAX_FEATURES;
            let raised = evidence.as_ref().filter(|(most, _)| *most > default);
            over.check(raised.map_or(default, |(most, _)| *most))?;
            if let Some((most, at)) = raised {
                let warning = format!(
                    "crate `{name}` {}, over crates.io's default limit of {default}; accepted because an earlier version, {at}, already has {}",
                    over.describe(),
                    validate::thousands(*most)
                );
                warnings.push(warning);
            }
        }
        if let Some(earlier) = renamed {
            return Err(RegistryError::invalid(format!(
                "crate was previously named `{earlier}`"
            )));
        }
        Ok(warnings)
    }

    /// Yanks or unyanks a version in the top layer. Returns the layer's label.
    pub(crate) fn set_yanked(
        &self,
        name: &CrateName,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<(&str, WriteOutcome)> {
        let action = if yanked { "yank" } else { "unyank" };
        let (label, top) = self.writable_top(action)?;
        Ok((label, top.set_yanked(name, version, yanked)?))
    }

    /// Whether a publish or yank would be accepted at all, before its body is read.
    pub(crate) fn check_writable(&self, action: &str) -> Result<()> {
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
        writable.check_writable()?;
        Ok((top.label(), writable))
    }

    /// Crates matching `query`, each from the highest layer that has it, exact name
    /// matches first, then by name. Returns at most `limit` hits and the total count.
    pub(crate) fn search(&self, query: &str, limit: usize) -> Result<SearchPage> {
        let mut seen = HashSet::new();
        let mut hits = Vec::new();
        let mut total = 0;
        let mut asked_remote = false;
        for layer in &self.layers {
            if layer.as_remote().is_some() {
                if asked_remote {
                    continue;
                }
                asked_remote = true;
            }
            let page = match layer.search(query, limit) {
                Ok(page) => page,
                Err(e) => {
                    log::warn!("search skipped a layer: {}", Report(&e));
                    continue;
                }
            };
            let mut repeated = 0;
            for hit in page.hits {
                if seen.insert(canonical_name(&hit.name)) {
                    hits.push(hit);
                } else {
                    repeated += 1;
                }
            }
            total += page.total.saturating_sub(repeated);
        }
        sort_by_search_rank(&mut hits, query);
        hits.truncate(limit);
        Ok(SearchPage { hits, total })
    }
}

/// The feature limit an index line's version needed: its number of features (`features`
/// and `features2` together), or the most values one feature enables, whichever is
/// larger. A line that does not parse shows nothing.
fn features_needed(line: &IndexLine) -> usize {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&line.raw) else {
        return 0;
    };
    let mut features: std::collections::BTreeMap<&String, usize> = Default::default();
    for key in ["features", "features2"] {
        if let Some(map) = value[key].as_object() {
            for (feature, enables) in map {
                let width = enables.as_array().map_or(0, Vec::len);
                let entry = features.entry(feature).or_default();
                *entry = (*entry).max(width);
            }
        }
    }
    validate::features_needed(features)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::index::parse_index_file;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// A read-only layer with the index lines of one crate, which a test may change,
    /// and the stamp it gives them.
    #[derive(Default)]
    struct Source {
        text: Mutex<String>,
        stamp: Mutex<Option<SourceStamp>>,
        reads: AtomicUsize,
    }

    struct Fixed {
        label: String,
        source: Arc<Source>,
    }

    impl Layer for Fixed {
        fn label(&self) -> &str {
            &self.label
        }

        fn index_lines(&self, _name: &CrateName) -> Result<Vec<IndexLine>> {
            self.source.reads.fetch_add(1, Ordering::Relaxed);
            Ok(parse_index_file(&self.source.text.lock().unwrap()))
        }

        fn index_stamp(&self, _name: &CrateName) -> Option<SourceStamp> {
            self.source.stamp.lock().unwrap().clone()
        }

        fn open_crate(&self, _: &CrateName, _: &semver::Version) -> Result<Option<CrateFile>> {
            Ok(None)
        }

        fn search(&self, _query: &str, _limit: usize) -> Result<SearchPage> {
            Ok(SearchPage::default())
        }
    }

    fn lines_of(label: &str, versions: &[&str]) -> String {
        versions
            .iter()
            .map(|v| format!(r#"{{"name":"c","vers":"{v}","cksum":"{label}"}}"#))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn watched_layer(label: &str, versions: &[&str]) -> (Box<dyn Layer>, Arc<Source>) {
        let source = Arc::new(Source::default());
        *source.text.lock().unwrap() = lines_of(label, versions);
        let layer = Fixed {
            label: label.to_string(),
            source: Arc::clone(&source),
        };
        (Box::new(layer), source)
    }

    fn layer(label: &str, versions: &[&str]) -> Box<dyn Layer> {
        watched_layer(label, versions).0
    }

    #[test]
    fn a_merged_file_is_read_again_only_when_a_layer_stamps_it_differently() {
        let (top, top_source) = watched_layer("top", &["1.0.0"]);
        let (bottom, bottom_source) = watched_layer("bottom", &["2.0.0"]);
        let stack = LayerStack::new(vec![top, bottom], true);
        let name = CrateName::new("c").unwrap();
        let versions = || {
            let body = stack.index_file(&name).unwrap().unwrap().body;
            parse_index_file(std::str::from_utf8(&body).unwrap())
                .iter()
                .map(|line| line.version.to_string())
                .collect::<Vec<_>>()
        };
        let reads = || top_source.reads.load(Ordering::Relaxed);

        // Without stamps, every answer is read afresh.
        versions();
        versions();
        assert_eq!(reads(), 2);

        *top_source.stamp.lock().unwrap() = Some(SourceStamp::Held(1));
        *bottom_source.stamp.lock().unwrap() = Some(SourceStamp::Held(2));
        assert_eq!(versions(), ["1.0.0", "2.0.0"]);
        assert_eq!(versions(), ["1.0.0", "2.0.0"]);
        assert_eq!(reads(), 3, "the second answer came from memory");

        // A change in any layer shows at once, with its new stamp.
        *bottom_source.text.lock().unwrap() = lines_of("bottom", &["2.0.0", "3.0.0"]);
        *bottom_source.stamp.lock().unwrap() = Some(SourceStamp::Held(7));
        assert_eq!(versions(), ["1.0.0", "2.0.0", "3.0.0"]);
        assert_eq!(versions(), ["1.0.0", "2.0.0", "3.0.0"]);
        assert_eq!(reads(), 4);

        // A layer that stops vouching for its answer is read every time.
        *top_source.stamp.lock().unwrap() = None;
        *top_source.text.lock().unwrap() = lines_of("top", &["1.5.0"]);
        assert_eq!(versions(), ["1.5.0", "2.0.0", "3.0.0"]);
        versions();
        assert_eq!(reads(), 6);
    }

    #[test]
    fn a_layer_that_stamps_the_file_absent_is_not_read() {
        let (top, top_source) = watched_layer("top", &[]);
        let stack = LayerStack::new(vec![top, layer("bottom", &["2.0.0"])], true);
        let name = CrateName::new("c").unwrap();
        *top_source.stamp.lock().unwrap() = Some(SourceStamp::Absent);
        let body = stack.index_file(&name).unwrap().unwrap().body;
        assert_eq!(
            parse_index_file(std::str::from_utf8(&body).unwrap()).len(),
            1
        );
        assert_eq!(top_source.reads.load(Ordering::Relaxed), 0);

        // The lines the whole stack answers with (publish checks, downloads) come
        // without stamps: every layer is read.
        assert_eq!(stack.index_lines(&name).unwrap().unwrap().len(), 1);
        assert_eq!(top_source.reads.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_index_line_needs_its_features_and_features2_together() {
        let line = IndexLine::parse(
            r#"{"name":"c","vers":"1.0.0","features":{"a":[],"b":["a"]},"features2":{"c":["dep:x","a"]},"v":2}"#,
        )
        .unwrap();
        assert_eq!(features_needed(&line), 3);
        let wide: Vec<String> = (0..7).map(|i| format!("\"v{i}\"")).collect();
        let raw = format!(
            r#"{{"name":"c","vers":"1.0.0","features":{{"a":[{}]}}}}"#,
            wide.join(",")
        );
        assert_eq!(features_needed(&IndexLine::parse(&raw).unwrap()), 7);
        let bare = IndexLine::parse(r#"{"name":"c","vers":"1.0.0"}"#).unwrap();
        assert_eq!(features_needed(&bare), 0);
    }

    #[test]
    fn the_top_layer_wins_a_release_whatever_its_build_metadata() {
        let stack = LayerStack::new(
            vec![
                layer("top", &["1.0.0+a", "2.0.0"]),
                layer("bottom", &["1.0.0+b", "1.0.0-rc.1", "3.0.0", "2.0.0"]),
            ],
            true,
        );
        let lines = stack
            .index_lines(&CrateName::new("c").unwrap())
            .unwrap()
            .unwrap();
        let merged: Vec<(String, Option<String>)> = lines
            .iter()
            .map(|l| (l.version.to_string(), l.field("cksum")))
            .collect();
        let expected = [
            ("1.0.0-rc.1", "bottom"),
            ("1.0.0+a", "top"),
            ("2.0.0", "top"),
            ("3.0.0", "bottom"),
        ];
        assert_eq!(
            merged,
            expected.map(|(v, from)| (v.to_string(), Some(from.to_string())))
        );
    }
}
