//! Publish checks: everything between cargo's upload and what a layer stores. This
//! folder owns the upload format (here), crates.io's metadata rules ([`validate`]) and
//! its checks on the `.crate` archive ([`tarball`]), so a publish through the overlay
//! fails where and as crates.io's would; storing the result is the layers' business.
//!
//! Turning cargo's publish upload into what a layer stores.
//!
//! cargo sends `PUT /api/v1/crates/new` with a binary body: a little-endian `u32`
//! length, the publish metadata as JSON, another `u32` length and the `.crate` bytes.
//! This module parses that body with crates.io's limits and error texts, and builds the
//! index line the way crates.io writes it (renamed dependencies, the
//! `features`/`features2` split, `pubtime`, the SHA-256 `cksum`). Rule checks live in
//! `validate` (metadata) and `tarball` (the `.crate` itself); storage lives in the layers.

pub(crate) mod tarball;
pub(crate) mod validate;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::digest::sha256_hex;
use crate::registry::error::{RegistryError, Result};
use crate::registry::index::{CrateName, IndexDep, IndexEntry};

/// crates.io's limit on the JSON part of an upload.
pub(crate) const MAX_METADATA_LEN: usize = 1024 * 1024;
/// crates.io's default limit on the `.crate` part of an upload.
pub(crate) const DEFAULT_MAX_CRATE_LEN: usize = 10 * 1024 * 1024;

/// The publish metadata cargo sends (the `crates-io` crate's `NewCrate`). Every field
/// has a default so older and newer cargos both parse.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NewCrate {
    pub(crate) name: String,
    pub(crate) vers: String,
    pub(crate) deps: Vec<NewCrateDep>,
    pub(crate) features: BTreeMap<String, Vec<String>>,
    pub(crate) authors: Vec<String>,
    pub(crate) description: Option<String>,
    pub(crate) documentation: Option<String>,
    pub(crate) homepage: Option<String>,
    pub(crate) readme: Option<String>,
    pub(crate) readme_file: Option<String>,
    pub(crate) keywords: Vec<String>,
    pub(crate) categories: Vec<String>,
    pub(crate) license: Option<String>,
    pub(crate) license_file: Option<String>,
    pub(crate) repository: Option<String>,
    pub(crate) links: Option<String>,
    pub(crate) rust_version: Option<String>,
}

/// One dependency in the publish metadata. `name` is the real package name;
/// `explicit_name_in_toml` is the rename, when there is one.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct NewCrateDep {
    pub(crate) name: String,
    pub(crate) version_req: String,
    pub(crate) features: Vec<String>,
    pub(crate) optional: bool,
    pub(crate) default_features: bool,
    pub(crate) target: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) registry: Option<String>,
    pub(crate) explicit_name_in_toml: Option<String>,
}

impl Default for NewCrateDep {
    fn default() -> Self {
        NewCrateDep {
            name: String::new(),
            version_req: String::new(),
            features: Vec::new(),
            optional: false,
            default_features: true,
            target: None,
            kind: None,
            registry: None,
            explicit_name_in_toml: None,
        }
    }
}

/// What publish rules to apply.
#[derive(Clone, Copy, Debug)]
pub struct PublishPolicy {
    /// Skip crates.io's metadata checks (description, license, keywords, ...). The
    /// safety checks on names, versions and sizes always run.
    pub permissive: bool,
    /// The largest `.crate` accepted, in bytes.
    pub max_crate_len: usize,
    /// The largest a `.crate` may be once decompressed, in bytes. As on crates.io, the
    /// limit applied is never below `max_crate_len`.
    pub max_unpacked_len: u64,
}

impl PublishPolicy {
    /// The largest upload body accepted: both parts at their limits, plus the two
    /// length prefixes.
    pub(crate) fn max_body_len(&self) -> u64 {
        (MAX_METADATA_LEN + self.max_crate_len + 8) as u64
    }
}

impl Default for PublishPolicy {
    fn default() -> Self {
        PublishPolicy {
            permissive: false,
            max_crate_len: DEFAULT_MAX_CRATE_LEN,
            max_unpacked_len: tarball::DEFAULT_MAX_UNPACKED_LEN,
        }
    }
}

/// A checked publish, ready for a layer to store.
#[derive(Debug)]
pub struct Publish {
    pub name: CrateName,
    pub version: semver::Version,
    pub entry: IndexEntry,
    /// The publish metadata as cargo sent it, kept for search and later API use.
    pub metadata: Vec<u8>,
    pub crate_bytes: Vec<u8>,
    /// Features over crates.io's default limit: refused unless a layer shows this
    /// crate already has that many (crates.io raises the limit per crate). The stack
    /// decides, in its walk over the layers for a publish.
    pub(crate) over_limit: Option<validate::OverLimit>,
    /// Things the publisher should know that the upload alone shows: a `.crate` over
    /// crates.io's default size, let through by a raised `--max-upload-size`.
    pub(crate) warnings: Vec<String>,
}

/// Parses and checks an upload body, and builds its index entry.
///
/// The order is crates.io's: body, JSON, name and version, then the tarball (which
/// crates.io reads before any other metadata, since it takes the metadata from the
/// tarball's manifest), then the metadata rules. Features over crates.io's default
/// limit are left in `Publish::over_limit` for the stack, which knows whether a layer
/// already holds a version of the crate with as many.
pub fn prepare(body: &[u8], policy: &PublishPolicy, pubtime: &str) -> Result<Publish> {
    let (metadata, crate_bytes) = split_body(body, policy.max_crate_len)?;
    let krate: NewCrate = serde_json::from_slice(metadata)
        .map_err(|e| RegistryError::invalid(format!("invalid upload request: {e}")))?;
    let (name, version) = validate::check_identity(&krate)?;
    // Safety checks: they run with --permissive-publishing too. crates.io never caps the
    // unpacked size below the upload size (its `Maximums`).
    let max_unpacked_len = policy.max_unpacked_len.max(policy.max_crate_len as u64);
    tarball::check(crate_bytes, &krate.name, &krate.vers, max_unpacked_len)?;
    let over_limit = if policy.permissive {
        None
    } else {
        validate::check_metadata(&krate)?
    };
    let entry = index_entry(&krate, crate_bytes, pubtime);
    let warnings = if policy.permissive {
        Vec::new()
    } else {
        size_warning(&krate, crate_bytes.len(), policy.max_crate_len)
            .into_iter()
            .collect()
    };
    Ok(Publish {
        name,
        version,
        entry,
        metadata: metadata.to_vec(),
        crate_bytes: crate_bytes.to_vec(),
        over_limit,
        warnings,
    })
}

/// A `.crate` over crates.io's default upload limit gets through only where the
/// operator raised `--max-upload-size`. crates.io raises that limit per crate, and the
/// overlay cannot tell which crates (the limit is applied to the request's head, before
/// the body names the crate, and index lines carry no sizes), so it says what crates.io
/// would need: a rehearsal through the overlay should not pass silently where crates.io
/// may refuse.
fn size_warning(krate: &NewCrate, crate_len: usize, max_crate_len: usize) -> Option<String> {
    (crate_len > DEFAULT_MAX_CRATE_LEN).then(|| {
        format!(
            "the .crate of `{}`@{} is {} bytes, over crates.io's default upload limit of {}; \
             accepted because --max-upload-size is {}, but crates.io takes it only if it has \
             raised the limit for this crate",
            krate.name,
            krate.vers,
            validate::thousands(crate_len),
            validate::thousands(DEFAULT_MAX_CRATE_LEN),
            validate::thousands(max_crate_len),
        )
    })
}

/// Splits the upload body into its JSON and `.crate` parts, with crates.io's texts.
fn split_body(body: &[u8], max_crate_len: usize) -> Result<(&[u8], &[u8])> {
    let (json_len, rest) =
        read_u32_le(body).ok_or_else(|| RegistryError::invalid("invalid metadata length"))?;
    if json_len > MAX_METADATA_LEN {
        return Err(RegistryError::TooLarge(
            "JSON metadata blob too large".into(),
        ));
    }
    if json_len > rest.len() {
        return Err(RegistryError::invalid(format!(
            "invalid metadata length for remaining payload: {json_len}"
        )));
    }
    let (metadata, rest) = rest.split_at(json_len);
    let (crate_len, rest) =
        read_u32_le(rest).ok_or_else(|| RegistryError::invalid("invalid tarball length"))?;
    if crate_len > max_crate_len {
        return Err(RegistryError::TooLarge(format!(
            "max upload size is: {max_crate_len}"
        )));
    }
    if crate_len > rest.len() {
        return Err(RegistryError::invalid(format!(
            "invalid tarball length for remaining payload: {crate_len}"
        )));
    }
    Ok((metadata, &rest[..crate_len]))
}

fn read_u32_le(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head) as usize, rest))
}

/// Builds the index line crates.io would write for this publish.
fn index_entry(krate: &NewCrate, crate_bytes: &[u8], pubtime: &str) -> IndexEntry {
    let mut deps: Vec<IndexDep> = krate.deps.iter().map(index_dep).collect();
    deps.sort();
    let (features, features2) = split_features(krate.features.clone());
    let has_features2 = !features2.is_empty();
    IndexEntry {
        name: krate.name.clone(),
        vers: krate.vers.clone(),
        deps,
        cksum: sha256_hex(crate_bytes),
        features,
        yanked: false,
        links: krate.links.clone(),
        rust_version: krate.rust_version.clone(),
        pubtime: Some(pubtime.to_string()),
        features2: has_features2.then_some(features2),
        v: has_features2.then_some(2),
    }
}

/// In the index a renamed dependency is listed under its rename, with `package` naming
/// the real crate; `kind` is always written.
fn index_dep(dep: &NewCrateDep) -> IndexDep {
    let (name, package) = match &dep.explicit_name_in_toml {
        Some(rename) => (rename.clone(), Some(dep.name.clone())),
        None => (dep.name.clone(), None),
    };
    IndexDep {
        name,
        req: dep.version_req.clone(),
        features: dep.features.clone(),
        optional: dep.optional,
        default_features: dep.default_features,
        target: dep.target.clone(),
        kind: dep.kind.clone().unwrap_or_else(|| "normal".into()),
        registry: dep.registry.clone(),
        package,
    }
}

type FeatureMap = BTreeMap<String, Vec<String>>;

/// crates.io's split: features using the newer syntax (`dep:x`, `x?/f`) go to
/// `features2`, which older cargos ignore, and so does any feature that enables one of
/// those, transitively.
fn split_features(all: FeatureMap) -> (FeatureMap, FeatureMap) {
    let uses_new_syntax = |values: &Vec<String>| {
        values
            .iter()
            .any(|v| v.starts_with("dep:") || v.contains("?/"))
    };
    let (mut features, mut features2): (FeatureMap, FeatureMap) = all
        .into_iter()
        .partition(|(_, values)| !uses_new_syntax(values));
    loop {
        let (keep, moved): (FeatureMap, FeatureMap) = features
            .into_iter()
            .partition(|(_, values)| !values.iter().any(|v| features2.contains_key(v)));
        features = keep;
        if moved.is_empty() {
            return (features, features2);
        }
        features2.extend(moved);
    }
}

/// A time as crates.io writes `pubtime`: `YYYY-MM-DDThh:mm:ssZ`, UTC, whole seconds
/// (cargo rejects any other form).
pub(crate) fn pubtime(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), so no date crate is needed for one timestamp.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::publish::tarball::tests::{crate_with_symlink, demo_crate};
    use std::time::Duration;

    fn body(json: &str, krate: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((json.len() as u32).to_le_bytes());
        out.extend(json.as_bytes());
        out.extend((krate.len() as u32).to_le_bytes());
        out.extend(krate);
        out
    }

    const GOOD: &str = r#"{"name":"demo","vers":"0.1.0","deps":[],"features":{},"authors":[],
        "description":"a demo","license":"MIT","keywords":[],"categories":[],"badges":{}}"#;

    fn err_text(result: Result<Publish>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn parses_a_well_formed_upload() {
        let tarball = demo_crate("demo", "0.1.0");
        let publish = prepare(
            &body(GOOD, &tarball),
            &PublishPolicy::default(),
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(publish.name.as_str(), "demo");
        assert_eq!(publish.crate_bytes, tarball);
        assert_eq!(publish.entry.cksum, sha256_hex(&tarball));
        assert_eq!(
            publish.entry.pubtime.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn truncated_bodies_get_crates_io_texts() {
        let policy = PublishPolicy::default();
        let t = "2026-01-01T00:00:00Z";
        assert_eq!(
            err_text(prepare(b"ab", &policy, t)),
            "invalid metadata length"
        );
        let mut short = 100u32.to_le_bytes().to_vec();
        short.extend(b"{}");
        assert_eq!(
            err_text(prepare(&short, &policy, t)),
            "invalid metadata length for remaining payload: 100"
        );
        let full = body(GOOD, b"tarball");
        let cut = &full[..4 + GOOD.len() + 2];
        assert_eq!(err_text(prepare(cut, &policy, t)), "invalid tarball length");
        let cut = &full[..full.len() - 1];
        assert_eq!(
            err_text(prepare(cut, &policy, t)),
            "invalid tarball length for remaining payload: 7"
        );
        assert!(
            err_text(prepare(&body("{", b""), &policy, t)).starts_with("invalid upload request: ")
        );
    }

    #[test]
    fn oversized_parts_are_too_large() {
        let policy = PublishPolicy {
            max_crate_len: 4,
            ..PublishPolicy::default()
        };
        let result = prepare(&body(GOOD, b"tarball"), &policy, "2026-01-01T00:00:00Z");
        assert!(
            matches!(result, Err(RegistryError::TooLarge(ref d)) if d == "max upload size is: 4")
        );
        let huge = (MAX_METADATA_LEN as u32 + 1).to_le_bytes();
        let result = prepare(&huge, &policy, "2026-01-01T00:00:00Z");
        assert!(matches!(result, Err(RegistryError::TooLarge(_))));
    }

    #[test]
    fn only_a_crate_over_crates_io_default_size_is_warned_about() {
        let krate: NewCrate = serde_json::from_str(GOOD).unwrap();
        let raised = 16 * 1024 * 1024;
        assert_eq!(size_warning(&krate, DEFAULT_MAX_CRATE_LEN, raised), None);
        assert_eq!(
            size_warning(&krate, DEFAULT_MAX_CRATE_LEN + 1, raised).as_deref(),
            Some(
                "the .crate of `demo`@0.1.0 is 10,485,761 bytes, over crates.io's default \
                 upload limit of 10,485,760; accepted because --max-upload-size is \
                 16,777,216, but crates.io takes it only if it has raised the limit for this \
                 crate"
            )
        );
    }

    #[test]
    fn tarball_checks_run_even_when_permissive() {
        let t = "2026-01-01T00:00:00Z";
        let symlink = body(GOOD, &crate_with_symlink("demo", "0.1.0"));
        let text = "unexpected tar entry type Symlink found: demo-0.1.0/link";
        for permissive in [false, true] {
            let policy = PublishPolicy {
                permissive,
                ..PublishPolicy::default()
            };
            assert_eq!(err_text(prepare(&symlink, &policy, t)), text);
        }
        let not_gzip = body(GOOD, b"tarball");
        assert_eq!(
            err_text(prepare(&not_gzip, &PublishPolicy::default(), t)),
            tarball::MALFORMED
        );
    }

    #[test]
    fn tarball_checks_come_after_identity_and_before_metadata() {
        let t = "2026-01-01T00:00:00Z";
        let policy = PublishPolicy::default();
        let bare = r#"{"name":"demo","vers":"0.1.0"}"#;
        // Metadata rules would refuse this crate, but the tarball is looked at first.
        assert_eq!(
            err_text(prepare(&body(bare, b"junk"), &policy, t)),
            tarball::MALFORMED
        );
        assert!(
            err_text(prepare(
                &body(bare, &demo_crate("demo", "0.1.0")),
                &policy,
                t
            ))
            .starts_with("missing or empty metadata fields")
        );
        // The identity rules come before it.
        let bad_name = r#"{"name":"1demo","vers":"0.1.0"}"#;
        assert!(err_text(prepare(&body(bad_name, b"junk"), &policy, t)).contains("digit"));
        // And the tarball must be the metadata's crate.
        let other = r#"{"name":"other","vers":"0.1.0","description":"d","license":"MIT"}"#;
        assert_eq!(
            err_text(prepare(
                &body(other, &demo_crate("demo", "0.1.0")),
                &policy,
                t
            )),
            "invalid path found: demo-0.1.0/Cargo.toml"
        );
    }

    #[test]
    fn the_unpacked_limit_never_falls_below_the_upload_limit() {
        let t = "2026-01-01T00:00:00Z";
        let tarball = demo_crate("demo", "0.1.0");
        let tiny = PublishPolicy {
            max_unpacked_len: 16,
            ..PublishPolicy::default()
        };
        prepare(&body(GOOD, &tarball), &tiny, t).unwrap();
        let both_tiny = PublishPolicy {
            max_crate_len: tarball.len(),
            ..tiny
        };
        assert_eq!(
            err_text(prepare(&body(GOOD, &tarball), &both_tiny, t)),
            tarball::MALFORMED
        );
    }

    #[test]
    fn pubtime_is_whole_seconds_utc() {
        let at = |secs: u64| pubtime(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_615_935), "2026-11-25T14:12:15Z");
    }

    #[test]
    fn renamed_dependencies_are_indexed_under_the_rename() {
        let dep = NewCrateDep {
            name: "real".into(),
            version_req: "^1".into(),
            explicit_name_in_toml: Some("alias".into()),
            kind: Some("build".into()),
            ..NewCrateDep::default()
        };
        let indexed = index_dep(&dep);
        assert_eq!(indexed.name, "alias");
        assert_eq!(indexed.package.as_deref(), Some("real"));
        assert_eq!(indexed.kind, "build");
        assert!(indexed.default_features);
    }

    #[test]
    fn features_split_like_crates_io() {
        let map = |pairs: &[(&str, &[&str])]| -> FeatureMap {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect()
        };
        let all = map(&[
            ("plain", &["other"]),
            ("other", &[]),
            ("new", &["dep:serde"]),
            ("weak", &["serde?/std"]),
            ("uses_new", &["new"]),
            ("uses_uses_new", &["uses_new"]),
        ]);
        let (features, features2) = split_features(all);
        assert_eq!(features.keys().collect::<Vec<_>>(), ["other", "plain"]);
        assert_eq!(
            features2.keys().collect::<Vec<_>>(),
            ["new", "uses_new", "uses_uses_new", "weak"]
        );
    }

    #[test]
    fn entries_with_features2_are_version_2() {
        let mut krate: NewCrate = serde_json::from_str(GOOD).unwrap();
        let entry = index_entry(&krate, b"x", "2026-01-01T00:00:00Z");
        assert_eq!(entry.v, None);
        assert_eq!(entry.features2, None);
        krate.features.insert("f".into(), vec!["dep:serde".into()]);
        let entry = index_entry(&krate, b"x", "2026-01-01T00:00:00Z");
        assert_eq!(entry.v, Some(2));
        let line = serde_json::to_string(&entry).unwrap();
        assert!(
            line.contains(r#""features2":{"f":["dep:serde"]}"#),
            "{line}"
        );
    }
}
