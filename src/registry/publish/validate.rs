//! crates.io's rules for the publish metadata, with crates.io's exact error texts.
//!
//! A publish through the overlay should fail exactly where, and with exactly the words,
//! a publish to crates.io would, so a dry run against the overlay is a faithful rehearsal.
//! The rules are split in two: [`check_identity`] covers the name and version, which
//! become file names and index paths and so are always checked; [`check_metadata`] covers
//! everything else and is skipped with `--permissive-publishing`. The checks run in
//! crates.io's order, so the first error reported is the one crates.io would report.

use std::collections::BTreeMap;

use crate::registry::error::{RegistryError, Result};
use crate::registry::index::{CrateName, MAX_NAME_LEN};
use crate::registry::publish::{NewCrate, NewCrateDep};

const MAX_VERSION_LEN: usize = 150;
const MAX_DESCRIPTION_LEN: usize = 1000;
const MAX_KEYWORDS: usize = 5;
const MAX_KEYWORD_LEN: usize = 20;
const MAX_CATEGORIES: usize = 5;
/// crates.io's default cap on the number of features, and on the number of values
/// one feature may enable.
const MAX_FEATURES: usize = 300;
const MAX_DEPENDENCIES: usize = 500;

/// Names crates.io refuses, compared after [`CrateName::canonical`]-style normalization.
/// The Windows device names are checked separately by [`is_windows_device_name`].
const RESERVED_NAMES: &[&str] = &[
    "alloc",
    "arena",
    "ast",
    "builtins",
    "collections",
    "compiler-builtins",
    "compiler-rt",
    "compiletest",
    "core",
    "coretest",
    "debug",
    "driver",
    "flate",
    "fmt_macros",
    "grammar",
    "graphviz",
    "macro",
    "macros",
    "proc_macro",
    "rbml",
    "rust-installer",
    "rustbook",
    "rustc",
    "rustc_back",
    "rustc_borrowck",
    "rustc_driver",
    "rustc_llvm",
    "rustc_resolve",
    "rustc_trans",
    "rustc_typeck",
    "rustdoc",
    "rustllvm",
    "rustuv",
    "serialize",
    "std",
    "syntax",
    "test",
    "unicode",
];

/// The `registry` values cargo sends for a crates.io dependency when the crate is
/// published to another registry. We are not crates.io, so those are not foreign.
const CRATES_IO_INDEXES: &[&str] = &[
    "https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

const LIMIT_REASON: &str = "Take a look at \
    https://blog.rust-lang.org/2023/10/26/broken-badges-and-23k-keywords.html \
    to understand why this restriction was introduced.";
const LIMIT_CONTACT: &str = "If you have a use case that requires an increase of this limit, \
    please send us an email to help@crates.io to discuss the details.";

/// Name and version rules. Always applied, even with --permissive-publishing, because
/// the name and version become file names and index paths.
pub(crate) fn check_identity(krate: &NewCrate) -> Result<(CrateName, semver::Version)> {
    check_name("crate", &krate.name, FirstChar::Letter)?;
    let version = parse_version(&krate.vers)?;
    // crates.io's name rules are stricter than `CrateName`'s, so this cannot fail.
    let name = CrateName::new(&krate.name)
        .ok_or_else(|| RegistryError::invalid(format!("invalid crate name: `{}`", krate.name)))?;
    // crates.io checks reserved names last, after the version; so do we.
    let canonical = name.canonical();
    if is_windows_device_name(&canonical)
        || RESERVED_NAMES
            .iter()
            .any(|reserved| reserved.replace('-', "_") == canonical)
    {
        return Err(RegistryError::invalid(
            "cannot upload a crate with a reserved name",
        ));
    }
    Ok((name, version))
}

/// crates.io's metadata rules; skipped with --permissive-publishing.
///
/// Features over crates.io's default limit are not refused here: crates.io raises that
/// limit for some crates (its per-crate `max_features`), and only the layers can tell
/// whether this crate is one of them. Such a publish comes back as an [`OverLimit`],
/// whose [`OverLimit::check`] runs the remaining rules, in crates.io's order, once the
/// layers have been asked.
pub(crate) fn check_metadata(krate: &NewCrate) -> Result<Option<OverLimit>> {
    check_required_fields(krate)?;
    if let Some(description) = &krate.description {
        // crates.io measures bytes, whatever the text says.
        if description.len() > MAX_DESCRIPTION_LEN {
            return Err(RegistryError::invalid(format!(
                "The `description` is too long. A maximum of {MAX_DESCRIPTION_LEN} characters \
                 are currently allowed."
            )));
        }
    }
    if let Some(license) = &krate.license {
        check_license(license)?;
    }
    check_url("homepage", krate.homepage.as_deref())?;
    check_url("documentation", krate.documentation.as_deref())?;
    check_url("repository", krate.repository.as_deref())?;
    if let Some(rust_version) = &krate.rust_version {
        check_rust_version(rust_version)?;
    }
    check_keywords(&krate.keywords)?;
    if krate.categories.len() > MAX_CATEGORIES {
        return Err(RegistryError::invalid(format!(
            "expected at most {MAX_CATEGORIES} categories per crate"
        )));
    }
    let needed = features_needed(krate.features.iter().map(|(k, v)| (k, v.len())));
    if needed > MAX_FEATURES {
        return Ok(Some(OverLimit {
            krate: krate.clone(),
            needed,
        }));
    }
    check_features(&krate.features, MAX_FEATURES)?;
    check_dependencies(&krate.deps)?;
    Ok(None)
}

/// A publish whose features exceed crates.io's default limit, with the rules still to
/// run (features, then dependencies) once the limit for this crate is known.
#[derive(Clone, Debug)]
pub struct OverLimit {
    krate: NewCrate,
    /// The limit this publish needs: its number of features, or the most values one
    /// feature enables, whichever is larger (crates.io caps both with one number).
    pub(crate) needed: usize,
}

impl OverLimit {
    /// Runs the remaining rules with `max_features` as the crate's limit: crates.io's
    /// default, or one raised by evidence in a layer.
    pub(crate) fn check(&self, max_features: usize) -> Result<()> {
        check_features(&self.krate.features, max_features.max(MAX_FEATURES))?;
        check_dependencies(&self.krate.deps)
    }

    /// What exceeds the default, for the publisher's warning, e.g. "has 1,727 features".
    pub(crate) fn describe(&self) -> String {
        let count = self.krate.features.len();
        if count > MAX_FEATURES {
            format!("has {} features", thousands(count))
        } else {
            format!(
                "has a feature enabling {} features or dependencies",
                thousands(self.needed)
            )
        }
    }
}

/// crates.io's default limit on features, as the warnings print it.
pub(crate) const DEFAULT_MAX_FEATURES: usize = MAX_FEATURES;

/// The feature limit a crate's features need: their number, or the most values one
/// feature enables, whichever is larger.
pub(crate) fn features_needed<'a>(
    features: impl IntoIterator<Item = (&'a String, usize)>,
) -> usize {
    let mut count = 0;
    let mut widest = 0;
    for (_, enables) in features {
        count += 1;
        widest = widest.max(enables);
    }
    count.max(widest)
}

/// `1727` as `1,727`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Which first characters a name may have: a dependency's name in `Cargo.toml` may
/// start with `_`, a package name may not.
#[derive(Clone, Copy, PartialEq)]
enum FirstChar {
    Letter,
    LetterOrUnderscore,
}

/// crates.io's name rules; `what` ("crate" or "dependency") goes into the texts.
fn check_name(what: &str, name: &str, first: FirstChar) -> Result<()> {
    if name.chars().count() > MAX_NAME_LEN {
        return Err(RegistryError::invalid(format!(
            "the {what} name `{name}` is too long (max {MAX_NAME_LEN} characters)"
        )));
    }
    let mut chars = name.chars();
    let Some(head) = chars.next() else {
        return Err(RegistryError::invalid(format!(
            "{what} name cannot be empty"
        )));
    };
    if head.is_ascii_digit() {
        return Err(RegistryError::invalid(format!(
            "the name `{name}` cannot be used as a {what} name, \
             the name cannot start with a digit"
        )));
    }
    let head_allowed = match first {
        FirstChar::Letter => head.is_ascii_alphabetic(),
        FirstChar::LetterOrUnderscore => head.is_ascii_alphabetic() || head == '_',
    };
    if !head_allowed {
        let rule = match first {
            FirstChar::Letter => "an ASCII character",
            FirstChar::LetterOrUnderscore => "an ASCII character, or `_`",
        };
        return Err(RegistryError::invalid(format!(
            "invalid character `{head}` in {what} name: `{name}`, \
             the first character must be {rule}"
        )));
    }
    if let Some(bad) = chars.find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        return Err(RegistryError::invalid(format!(
            "invalid character `{bad}` in {what} name: `{name}`, \
             characters must be an ASCII alphanumeric characters, `-`, or `_`"
        )));
    }
    Ok(())
}

/// `nul`, `con`, `prn`, `aux`, `com0`-`com9` and `lpt0`-`lpt9`: names Windows will not
/// create files under.
fn is_windows_device_name(canonical: &str) -> bool {
    let numbered_port = |prefix: &str| {
        canonical
            .strip_prefix(prefix)
            .is_some_and(|n| n.len() == 1 && n.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(canonical, "nul" | "con" | "prn" | "aux")
        || numbered_port("com")
        || numbered_port("lpt")
}

fn parse_version(vers: &str) -> Result<semver::Version> {
    // Checked before parsing so an absurd version is not echoed back in the error.
    if vers.chars().count() > MAX_VERSION_LEN {
        return Err(RegistryError::invalid(format!(
            "the version number is too long (max {MAX_VERSION_LEN} characters)"
        )));
    }
    semver::Version::parse(vers)
        .map_err(|_| RegistryError::invalid(format!("\"{vers}\" is an invalid semver version")))
}

/// A description, and a license or license file. Whitespace alone does not count.
fn check_required_fields(krate: &NewCrate) -> Result<()> {
    let empty = |field: &Option<String>| field.as_deref().is_none_or(|s| s.trim().is_empty());
    let mut missing = Vec::new();
    if empty(&krate.description) {
        missing.push("description");
    }
    if empty(&krate.license) && empty(&krate.license_file) {
        missing.push("license");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(RegistryError::invalid(format!(
        "missing or empty metadata fields: {}. Please see \
         https://doc.rust-lang.org/cargo/reference/manifest.html for more information on \
         configuring these fields",
        missing.join(", ")
    )))
}

/// crates.io's text for a license that is not an SPDX expression; the parser's own
/// report (the expression, a caret line and a reason) follows it on the next line.
const LICENSE_TEXT: &str = "unknown or invalid license expression; see \
    http://opensource.org/licenses for options, and http://spdx.org/licenses/ for their \
    identifiers\nNote: If you have a non-standard license that is not listed by SPDX, use \
    the license-file field to specify the path to a file containing the text of the \
    license.\nSee https://doc.rust-lang.org/cargo/reference/manifest.html#the-license-and-license-file-fields \
    for more information.";

/// crates.io's lenient SPDX mode (its `licenses.rs`): `/` is accepted as `OR` (cargo wrote
/// `MIT/Apache-2.0` before SPDX expressions), `+` is accepted on GPL ids, imprecise names
/// like `Apache 2.0` are not. That mode was written for spdx 0.10, whose list kept
/// deprecated ids (`GPL-3.0`, `LGPL-2.1`) without flagging them, hence `allow_deprecated`.
/// The `spdx` crate is used rather than an embedded list because its parser and license
/// list are crates.io's own, and it adds one small crate (smallvec) to the build.
const LICENSE_MODE: spdx::ParseMode = spdx::ParseMode {
    allow_slash_as_or_operator: true,
    allow_imprecise_license_names: false,
    allow_postfix_plus_on_gpl: true,
    allow_deprecated: true,
    allow_unknown: false,
};

fn check_license(expression: &str) -> Result<()> {
    let error = spdx::Expression::parse_mode(expression, LICENSE_MODE).err();
    // crates.io's mode also refuses lower-case operators, which spdx 0.13 always
    // accepts: spdx 0.10 read a lower-case `and` as an unknown term. The parser works left
    // to right, so whichever problem comes first is the one crates.io reports; only an
    // unclosed parenthesis is reported at the end, whatever its span says.
    let detail = match (error, lowercase_operator(expression)) {
        (Some(error), Some(span))
            if error.span.start < span.start
                && error.reason != spdx::error::Reason::UnclosedParens =>
        {
            error.to_string()
        }
        (_, Some(span)) => format!(
            "{expression}\n{}{} unknown term",
            " ".repeat(span.start),
            "^".repeat(span.len())
        ),
        (Some(error), None) => error.to_string(),
        (None, None) => return Ok(()),
    };
    Err(RegistryError::invalid(format!("{LICENSE_TEXT}\n{detail}")))
}

/// Where the first lower-case `and`, `or` or `with` is, tokenizing as the `spdx` lexer
/// does (whitespace, `(`, `)`, `+`, `/`, and runs of `[-A-Za-z0-9.:]`).
fn lowercase_operator(expression: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    let mut rest = expression;
    loop {
        let trimmed = rest.trim_start();
        offset += rest.len() - trimmed.len();
        rest = trimmed;
        let first = rest.chars().next()?;
        let len = if matches!(first, '(' | ')' | '+' | '/') {
            1
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':')))
                .unwrap_or(rest.len());
            if len == 0 {
                return None; // an invalid character: the parser stops here
            }
            if matches!(&rest[..len], "and" | "or" | "with") {
                return Some(offset..offset + len);
            }
            len
        };
        offset += len;
        rest = &rest[len..];
    }
}

fn check_url(field: &str, url: Option<&str>) -> Result<()> {
    let Some(url) = url else {
        return Ok(());
    };
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(RegistryError::invalid(format!(
            "URL for field `{field}` must begin with http:// or https:// (url: {url})"
        )));
    }
    if !http_url_parses(url) {
        return Err(RegistryError::invalid(format!(
            "`{field}` is not a valid url: `{url}`"
        )));
    }
    Ok(())
}

/// Whether an `http://` or `https://` URL parses under the WHATWG URL standard, which is
/// what crates.io's `Url::parse` implements. For these schemes everything but the
/// authority is percent-encoded rather than refused, so only the authority is checked:
/// a missing host, a host with a forbidden character, a bad port, a bad IPv6 literal, or
/// a host ending in a number that is not an IPv4 address. (IDNA mapping of non-ASCII
/// hosts is not reproduced; such hosts are accepted.)
fn http_url_parses(url: &str) -> bool {
    // The parser drops surrounding controls and spaces, and tabs and newlines anywhere.
    let url: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let Some((_, after_scheme)) = url.split_once(':') else {
        return false;
    };
    let after_slashes = after_scheme.trim_start_matches(['/', '\\']);
    let end = after_slashes
        .find(['/', '\\', '?', '#'])
        .unwrap_or(after_slashes.len());
    let authority = &after_slashes[..end];
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut in_brackets = false;
    let colon = host_and_port.char_indices().find_map(|(i, c)| {
        match c {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            ':' if !in_brackets => return Some(i),
            _ => {}
        }
        None
    });
    let (host, port) = match colon {
        Some(i) => (&host_and_port[..i], &host_and_port[i + 1..]),
        None => (host_and_port, ""),
    };
    let port_ok = port.is_empty()
        || (port.bytes().all(|b| b.is_ascii_digit())
            && port.trim_start_matches('0').len() <= 5
            && port.parse::<u32>().is_ok_and(|p| p <= 65_535));
    port_ok && host_parses(host)
}

fn host_parses(host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[') {
        return inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let decoded = percent_encoding::percent_decode_str(host).decode_utf8_lossy();
    let forbidden = |c: char| {
        c <= ' '
            || c == '\u{7f}'
            || matches!(
                c,
                '#' | '%' | '/' | ':' | '<' | '>' | '?' | '@' | '[' | '\\' | ']' | '^' | '|'
            )
    };
    if decoded.is_empty() || decoded.chars().any(forbidden) {
        return false;
    }
    !ends_in_a_number(&decoded) || ipv4_parses(&decoded)
}

/// The standard's "ends in a number": the last label (ignoring one trailing dot) is all
/// digits or a `0x` hex number, so the host must be an IPv4 address.
fn ends_in_a_number(host: &str) -> bool {
    let mut labels: Vec<&str> = host.split('.').collect();
    if labels.len() > 1 && labels.last() == Some(&"") {
        labels.pop();
    }
    let last = labels.last().copied().unwrap_or("");
    (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
        || last
            .strip_prefix("0x")
            .or_else(|| last.strip_prefix("0X"))
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The standard's IPv4 parser: up to four dot-separated decimal, octal (`0` prefix) or
/// hex (`0x` prefix) numbers, the last filling the remaining bytes.
fn ipv4_parses(host: &str) -> bool {
    let mut parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() > 4 {
        return false;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            Some(hex) => (hex, 16),
            None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
            None => (*part, 10),
        };
        let number = if digits.is_empty() && radix != 10 {
            Some(0)
        } else if digits.is_empty() {
            None
        } else {
            u64::from_str_radix(digits, radix).ok()
        };
        match number {
            Some(n) => numbers.push(n),
            None => return false,
        }
    }
    let (last, init) = numbers
        .split_last()
        .expect("split yields at least one part");
    init.iter().all(|&n| n <= 255) && *last < 256u64.pow(5 - numbers.len() as u32)
}

/// A bare version like `1.70` or `1.70.0`: what `VersionReq` parses, without
/// operators or pre-release tags (crates.io's own test).
fn check_rust_version(value: &str) -> Result<()> {
    let bare = value.chars().all(|c| c.is_ascii_digit() || c == '.');
    if bare && semver::VersionReq::parse(value).is_ok() {
        Ok(())
    } else {
        // crates.io reads `rust-version` from the packaged manifest, hence the prefix.
        Err(RegistryError::invalid(
            "failed to parse `Cargo.toml` manifest file\n\ninvalid `rust-version` value",
        ))
    }
}

fn check_keywords(keywords: &[String]) -> Result<()> {
    if keywords.len() > MAX_KEYWORDS {
        return Err(RegistryError::invalid(format!(
            "expected at most {MAX_KEYWORDS} keywords per crate"
        )));
    }
    for keyword in keywords {
        // crates.io counts bytes and lets exactly 20 through, despite "less than 20".
        if keyword.len() > MAX_KEYWORD_LEN {
            return Err(RegistryError::invalid(format!(
                "\"{keyword}\" is an invalid keyword \
                 (keywords must have less than {MAX_KEYWORD_LEN} characters)"
            )));
        }
        if !is_valid_keyword(keyword) {
            return Err(RegistryError::invalid(format!(
                "\"{keyword}\" is an invalid keyword"
            )));
        }
    }
    Ok(())
}

fn is_valid_keyword(keyword: &str) -> bool {
    let mut chars = keyword.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
}

fn check_features(features: &BTreeMap<String, Vec<String>>, max_features: usize) -> Result<()> {
    if features.len() > max_features {
        return Err(RegistryError::invalid(format!(
            "crates.io only allows a maximum number of {max_features} features, but your \
             crate is declaring {} features.\n\n{LIMIT_REASON}\n\n{LIMIT_CONTACT}",
            features.len()
        )));
    }
    for (feature, enables) in features {
        check_feature_name(feature)?;
        if enables.len() > max_features {
            return Err(RegistryError::invalid(format!(
                "crates.io only allows a maximum number of {max_features} features or \
                 dependencies that another feature can enable, but the \"{feature}\" feature \
                 of your crate is enabling {} features or dependencies.\n\n\
                 {LIMIT_REASON}\n\n{LIMIT_CONTACT}",
                enables.len()
            )));
        }
        enables
            .iter()
            .try_for_each(|value| check_feature_value(value))?;
    }
    Ok(())
}

/// One entry of a feature list or a dependency's `features`: `feat`, `dep/feat`,
/// `dep?/feat` or `dep:dep`. Mirrors crates.io, including its `split_once("dep:")`.
fn check_feature_value(value: &str) -> Result<()> {
    if let Some((dep, dep_feature)) = value.split_once('/') {
        let dep = dep.strip_suffix('?').unwrap_or(dep);
        check_name("dependency", dep, FirstChar::LetterOrUnderscore)?;
        check_feature_name(dep_feature)
    } else if let Some((_, dep)) = value.split_once("dep:") {
        check_name("dependency", dep, FirstChar::LetterOrUnderscore)
    } else {
        check_feature_name(value)
    }
}

/// crates.io's feature-name rule: a Unicode XID start character, `_` or a digit, then
/// XID continue characters, `+`, `-` or `.`.
fn check_feature_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let Some(head) = chars.next() else {
        return Err(RegistryError::invalid("feature cannot be empty"));
    };
    if !(is_xid_start(head) || head == '_' || head.is_ascii_digit()) {
        return Err(RegistryError::invalid(format!(
            "invalid character `{head}` in feature `{name}`, the first character must be \
             a Unicode XID start character or digit (most letters or `_` or `0` to `9`)"
        )));
    }
    if let Some(bad) = chars.find(|&c| !(is_xid_continue(c) || matches!(c, '+' | '-' | '.'))) {
        return Err(RegistryError::invalid(format!(
            "invalid character `{bad}` in feature `{name}`, characters must be Unicode XID \
             characters, `+`, `-`, or `.` (numbers, `+`, `-`, `_`, `.`, or most letters)"
        )));
    }
    Ok(())
}

/// Unicode XID_Start. Exact for ASCII; beyond ASCII, std's Alphabetic property stands
/// in for the XID tables std lacks (cargo refuses non-XID feature names before upload).
fn is_xid_start(c: char) -> bool {
    c.is_alphabetic()
}

/// Unicode XID_Continue, approximated like [`is_xid_start`].
fn is_xid_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn check_dependencies(deps: &[NewCrateDep]) -> Result<()> {
    if deps.len() > MAX_DEPENDENCIES {
        return Err(RegistryError::invalid(format!(
            "crates.io only allows a maximum number of {MAX_DEPENDENCIES} dependencies.\n\n\
             {LIMIT_CONTACT}"
        )));
    }
    deps.iter().try_for_each(check_dependency)
}

fn check_dependency(dep: &NewCrateDep) -> Result<()> {
    check_name("dependency", &dep.name, FirstChar::Letter)?;
    dep.features
        .iter()
        .try_for_each(|feature| check_feature_value(feature))?;
    if dep.registry.as_deref().is_some_and(is_foreign_registry) {
        return Err(RegistryError::invalid(format!(
            "Dependency `{}` is hosted on another registry. \
             Cross-registry dependencies are not permitted on crates.io.",
            dep.name
        )));
    }
    let req = semver::VersionReq::parse(&dep.version_req).map_err(|_| {
        RegistryError::invalid(format!(
            "\"{}\" is an invalid version requirement",
            dep.version_req
        ))
    })?;
    if req == semver::VersionReq::STAR {
        return Err(RegistryError::invalid(format!(
            "wildcard (`*`) dependency constraints are not allowed on crates.io. \
             Crate with this problem: `{}` See \
             https://doc.rust-lang.org/cargo/faq.html#can-libraries-use--as-a-version-for-their-dependencies \
             for more information",
            dep.name
        )));
    }
    if let Some(rename) = &dep.explicit_name_in_toml {
        check_name("dependency", rename, FirstChar::LetterOrUnderscore)?;
    }
    Ok(())
}

/// crates.io takes an empty `registry` as its own; cargo names crates.io by one of its
/// index URLs when the crate goes to another registry.
fn is_foreign_registry(registry: &str) -> bool {
    !registry.is_empty() && !CRATES_IO_INDEXES.contains(&registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> NewCrate {
        NewCrate {
            name: name.into(),
            vers: "1.0.0".into(),
            ..NewCrate::default()
        }
    }

    fn versioned(vers: &str) -> NewCrate {
        NewCrate {
            vers: vers.into(),
            ..named("demo")
        }
    }

    /// A crate that passes every metadata rule; tests break one rule at a time.
    fn complete() -> NewCrate {
        NewCrate {
            description: Some("a demo".into()),
            license: Some("MIT".into()),
            ..named("demo")
        }
    }

    fn dep(name: &str, req: &str) -> NewCrateDep {
        NewCrateDep {
            name: name.into(),
            version_req: req.into(),
            ..NewCrateDep::default()
        }
    }

    fn with_dep(dep: NewCrateDep) -> NewCrate {
        NewCrate {
            deps: vec![dep],
            ..complete()
        }
    }

    fn with_feature(name: &str, enables: &[&str]) -> NewCrate {
        let enables = enables.iter().map(|s| s.to_string()).collect();
        NewCrate {
            features: BTreeMap::from([(name.to_string(), enables)]),
            ..complete()
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn identity_err(krate: NewCrate) -> String {
        match check_identity(&krate) {
            Err(RegistryError::Invalid(detail)) => detail,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    /// The refusal without evidence from any layer: crates.io's default limits.
    fn metadata_err(krate: NewCrate) -> String {
        let result = check_metadata(&krate).and_then(|over| match over {
            Some(over) => over.check(MAX_FEATURES),
            None => Ok(()),
        });
        match result {
            Err(RegistryError::Invalid(detail)) => detail,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn identity_returns_the_name_and_version() {
        let (name, version) = check_identity(&versioned("1.2.3-beta.1+build")).unwrap();
        assert_eq!(name.as_str(), "demo");
        assert_eq!(
            version,
            semver::Version::parse("1.2.3-beta.1+build").unwrap()
        );
        assert!(check_identity(&named("Foo_bar-2")).is_ok());
    }

    #[test]
    fn crate_name_length() {
        assert_eq!(identity_err(named("")), "crate name cannot be empty");
        assert!(check_identity(&named(&"a".repeat(64))).is_ok());
        let long = "a".repeat(65);
        assert_eq!(
            identity_err(named(&long)),
            format!("the crate name `{long}` is too long (max 64 characters)")
        );
    }

    #[test]
    fn crate_name_first_character() {
        assert_eq!(
            identity_err(named("1foo")),
            "the name `1foo` cannot be used as a crate name, the name cannot start with a digit"
        );
        assert_eq!(
            identity_err(named("_foo")),
            "invalid character `_` in crate name: `_foo`, \
             the first character must be an ASCII character"
        );
        assert_eq!(
            identity_err(named("京")),
            "invalid character `京` in crate name: `京`, \
             the first character must be an ASCII character"
        );
    }

    #[test]
    fn crate_name_other_characters() {
        assert_eq!(
            identity_err(named("foo+plus")),
            "invalid character `+` in crate name: `foo+plus`, \
             characters must be an ASCII alphanumeric characters, `-`, or `_`"
        );
        assert_eq!(
            identity_err(named("foo/../bar")),
            "invalid character `/` in crate name: `foo/../bar`, \
             characters must be an ASCII alphanumeric characters, `-`, or `_`"
        );
    }

    #[test]
    fn reserved_names_are_refused_in_any_spelling() {
        let reserved = "cannot upload a crate with a reserved name";
        for name in [
            "std",
            "STD",
            "compiler_builtins",
            "Compiler-Builtins",
            "proc-macro",
            "rust_installer",
            "nul",
            "CON",
            "prn",
            "aux",
            "com0",
            "com9",
            "LPT1",
            "lpt9",
        ] {
            assert_eq!(identity_err(named(name)), reserved, "{name}");
        }
        for name in [
            "stdx",
            "com",
            "com10",
            "lpt",
            "console",
            "auxiliary",
            "rustc-ap",
        ] {
            assert!(check_identity(&named(name)).is_ok(), "{name}");
        }
    }

    #[test]
    fn reserved_names_are_checked_after_the_version() {
        assert_eq!(
            identity_err(NewCrate {
                vers: "x".into(),
                ..named("std")
            }),
            "\"x\" is an invalid semver version"
        );
    }

    #[test]
    fn version_rules() {
        assert_eq!(
            identity_err(versioned("1.0")),
            "\"1.0\" is an invalid semver version"
        );
        assert_eq!(
            identity_err(versioned("")),
            "\"\" is an invalid semver version"
        );
        let longest = format!("1.0.0-{}", "a".repeat(144));
        assert!(check_identity(&versioned(&longest)).is_ok());
        assert_eq!(
            identity_err(versioned(&format!("{longest}a"))),
            "the version number is too long (max 150 characters)"
        );
    }

    #[test]
    fn a_complete_crate_passes_metadata() {
        let krate = NewCrate {
            homepage: Some("https://example.com".into()),
            documentation: Some("http://docs.example.com".into()),
            repository: Some("https://github.com/x/y".into()),
            rust_version: Some("1.70".into()),
            keywords: strings(&["cargo", "c++", "no_std", "web-dev", "x"]),
            categories: strings(&["a", "b", "c", "d", "e"]),
            deps: vec![dep("serde", "^1.0")],
            ..with_feature(
                "default",
                &["std", "serde/derive", "dep:serde", "serde?/std"],
            )
        };
        check_metadata(&krate).unwrap();
    }

    #[test]
    fn required_fields() {
        let text = |fields: &str| {
            format!(
                "missing or empty metadata fields: {fields}. Please see \
                 https://doc.rust-lang.org/cargo/reference/manifest.html for more information \
                 on configuring these fields"
            )
        };
        assert_eq!(metadata_err(named("demo")), text("description, license"));
        let blank_description = NewCrate {
            description: Some(" \n\t".into()),
            ..complete()
        };
        assert_eq!(metadata_err(blank_description), text("description"));
        let no_license = NewCrate {
            license: Some(String::new()),
            license_file: None,
            ..complete()
        };
        assert_eq!(metadata_err(no_license), text("license"));
        let license_file_only = NewCrate {
            license: None,
            license_file: Some("LICENSE.txt".into()),
            ..complete()
        };
        assert!(check_metadata(&license_file_only).is_ok());
    }

    #[test]
    fn description_length() {
        let at_limit = NewCrate {
            description: Some("d".repeat(1000)),
            ..complete()
        };
        assert!(check_metadata(&at_limit).is_ok());
        let too_long = NewCrate {
            description: Some("d".repeat(1001)),
            ..complete()
        };
        assert_eq!(
            metadata_err(too_long),
            "The `description` is too long. A maximum of 1000 characters are currently allowed."
        );
    }

    #[test]
    fn urls_must_be_http() {
        let homepage = NewCrate {
            homepage: Some("example.com".into()),
            ..complete()
        };
        assert_eq!(
            metadata_err(homepage),
            "URL for field `homepage` must begin with http:// or https:// (url: example.com)"
        );
        let documentation = NewCrate {
            documentation: Some("ftp://docs.example.com".into()),
            ..complete()
        };
        assert_eq!(
            metadata_err(documentation),
            "URL for field `documentation` must begin with http:// or https:// \
             (url: ftp://docs.example.com)"
        );
        let repository = NewCrate {
            repository: Some("git@github.com:x/y".into()),
            ..complete()
        };
        assert_eq!(
            metadata_err(repository),
            "URL for field `repository` must begin with http:// or https:// \
             (url: git@github.com:x/y)"
        );
    }

    #[test]
    fn licenses_must_be_spdx_expressions() {
        for ok in [
            "MIT",
            "MIT OR Apache-2.0",
            "MIT/Apache-2.0",
            "MIT / Apache-2.0",
            "Apache-2.0 WITH LLVM-exception",
            "MIT OR (Apache-2.0 AND MIT)",
            "GPL-3.0+",
            "GPL-3.0",
            "LicenseRef-Proprietary",
        ] {
            let krate = NewCrate {
                license: Some(ok.into()),
                ..complete()
            };
            assert!(check_metadata(&krate).is_ok(), "{ok}");
        }
        let refused = |license: &str| {
            metadata_err(NewCrate {
                license: Some(license.into()),
                ..complete()
            })
        };
        assert_eq!(
            refused("Foo-1.0"),
            "unknown or invalid license expression; see http://opensource.org/licenses for \
             options, and http://spdx.org/licenses/ for their identifiers\n\
             Note: If you have a non-standard license that is not listed by SPDX, use the \
             license-file field to specify the path to a file containing the text of the \
             license.\n\
             See https://doc.rust-lang.org/cargo/reference/manifest.html#the-license-and-license-file-fields \
             for more information.\n\
             Foo-1.0\n\
             ^^^^^^^ unknown term"
        );
        let text = |detail: &str| format!("{LICENSE_TEXT}\n{detail}");
        assert_eq!(
            refused("MIT AND"),
            text("MIT AND\n        expected one of `<license>`, `(` here")
        );
        // crates.io's own example.
        assert_eq!(
            refused("MIT AND foobar"),
            text("MIT AND foobar\n        ^^^^^^ unknown term")
        );
        // Imprecise names and lower-case operators are not accepted.
        assert_eq!(
            refused("apache 2.0"),
            text("apache 2.0\n^^^^^^ unknown term")
        );
        assert_eq!(
            refused("MIT and Apache-2.0"),
            text("MIT and Apache-2.0\n    ^^^ unknown term")
        );
        assert_eq!(
            refused("(MIT or Apache-2.0"),
            text("(MIT or Apache-2.0\n     ^^ unknown term")
        );
        assert_eq!(refused("Foo or MIT"), text("Foo or MIT\n^^^ unknown term"));
        // An empty license next to a license file is still parsed, as on crates.io.
        let empty = NewCrate {
            license: Some(String::new()),
            license_file: Some("LICENSE".into()),
            ..complete()
        };
        assert_eq!(metadata_err(empty), text("\n empty expression"));
    }

    #[test]
    fn license_is_checked_after_description_and_before_urls() {
        let krate = NewCrate {
            license: Some("Nope".into()),
            homepage: Some("example.com".into()),
            ..complete()
        };
        assert!(metadata_err(krate).starts_with("unknown or invalid license expression"));
        let krate = NewCrate {
            license: Some("Nope".into()),
            description: Some("d".repeat(1001)),
            ..complete()
        };
        assert!(metadata_err(krate).starts_with("The `description` is too long"));
    }

    #[test]
    fn urls_must_parse() {
        for ok in [
            "https://example.com",
            "http://example.com:8080/a path?q=1#f",
            "https://user:pw@example.com/",
            "https://@example.com",
            "https://[::1]:443/",
            "http://1.2.3.4/",
            "http://0x7f.1/",
            "https://exa%41mple.com",
            "https://example.com:",
            "http:///example.com",
            "https://例え.jp/",
            "https://example.com./",
        ] {
            assert!(http_url_parses(ok), "{ok}");
            let krate = NewCrate {
                homepage: Some(ok.into()),
                ..complete()
            };
            assert!(check_metadata(&krate).is_ok(), "{ok}");
        }
        for bad in [
            "https://",
            "http://:80",
            "https://user@/path",
            "https://exa mple.com",
            "https://exa%20mple.com",
            "http://a:99999",
            "http://a:8x",
            "https://[::1/",
            "https://[nope]/",
            "http://1.2.3.256",
            "http://example.com.123",
            "http://a<b/",
        ] {
            assert!(!http_url_parses(bad), "{bad}");
        }
        let repository = NewCrate {
            repository: Some("https://git hub.com/x".into()),
            ..complete()
        };
        assert_eq!(
            metadata_err(repository),
            "`repository` is not a valid url: `https://git hub.com/x`"
        );
    }

    #[test]
    fn rust_version_must_be_bare() {
        for ok in ["1", "1.70", "1.70.0"] {
            let krate = NewCrate {
                rust_version: Some(ok.into()),
                ..complete()
            };
            assert!(check_metadata(&krate).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "^1.70",
            ">=1.70",
            "1.70.0-beta.2",
            "1.70.0.1",
            "latest",
            "1..70",
        ] {
            let krate = NewCrate {
                rust_version: Some(bad.into()),
                ..complete()
            };
            assert_eq!(
                metadata_err(krate),
                "failed to parse `Cargo.toml` manifest file\n\ninvalid `rust-version` value",
                "{bad}"
            );
        }
    }

    #[test]
    fn keyword_count() {
        let too_many = NewCrate {
            keywords: strings(&["a", "b", "c", "d", "e", "f"]),
            ..complete()
        };
        assert_eq!(
            metadata_err(too_many),
            "expected at most 5 keywords per crate"
        );
    }

    #[test]
    fn keyword_length() {
        let at_limit = NewCrate {
            keywords: vec!["k".repeat(20)],
            ..complete()
        };
        assert!(check_metadata(&at_limit).is_ok());
        let too_long = NewCrate {
            keywords: strings(&["super-long-keyword-name-oh-no"]),
            ..complete()
        };
        assert_eq!(
            metadata_err(too_long),
            "\"super-long-keyword-name-oh-no\" is an invalid keyword \
             (keywords must have less than 20 characters)"
        );
    }

    #[test]
    fn keyword_characters() {
        for bad in ["?@?%", "", "-start", "_start", "café", "a b"] {
            let krate = NewCrate {
                keywords: strings(&[bad]),
                ..complete()
            };
            assert_eq!(
                metadata_err(krate),
                format!("\"{bad}\" is an invalid keyword")
            );
        }
    }

    #[test]
    fn category_count() {
        let too_many = NewCrate {
            categories: strings(&["a", "b", "c", "d", "e", "f"]),
            ..complete()
        };
        assert_eq!(
            metadata_err(too_many),
            "expected at most 5 categories per crate"
        );
    }

    #[test]
    fn feature_count() {
        let features = |n: usize| -> BTreeMap<String, Vec<String>> {
            (0..n).map(|i| (format!("f{i}"), Vec::new())).collect()
        };
        let at_limit = NewCrate {
            features: features(300),
            ..complete()
        };
        assert!(check_metadata(&at_limit).is_ok());
        let too_many = NewCrate {
            features: features(301),
            ..complete()
        };
        assert_eq!(
            metadata_err(too_many),
            "crates.io only allows a maximum number of 300 features, but your crate is \
             declaring 301 features.\n\n\
             Take a look at https://blog.rust-lang.org/2023/10/26/broken-badges-and-23k-keywords.html \
             to understand why this restriction was introduced.\n\n\
             If you have a use case that requires an increase of this limit, please send us an \
             email to help@crates.io to discuss the details."
        );
    }

    #[test]
    fn values_per_feature() {
        let values = |n: usize| -> Vec<String> { (0..n).map(|i| format!("f{i}")).collect() };
        let at_limit = NewCrate {
            features: BTreeMap::from([("big".to_string(), values(300))]),
            ..complete()
        };
        assert!(check_metadata(&at_limit).is_ok());
        let too_many = NewCrate {
            features: BTreeMap::from([("big".to_string(), values(301))]),
            ..complete()
        };
        assert_eq!(
            metadata_err(too_many),
            "crates.io only allows a maximum number of 300 features or dependencies that \
             another feature can enable, but the \"big\" feature of your crate is enabling \
             301 features or dependencies.\n\n\
             Take a look at https://blog.rust-lang.org/2023/10/26/broken-badges-and-23k-keywords.html \
             to understand why this restriction was introduced.\n\n\
             If you have a use case that requires an increase of this limit, please send us an \
             email to help@crates.io to discuss the details."
        );
    }

    fn over_limit(krate: &NewCrate) -> OverLimit {
        check_metadata(krate)
            .unwrap()
            .expect("features over the default limit wait for the layers")
    }

    fn limit_err(over: &OverLimit, max_features: usize) -> String {
        match over.check(max_features) {
            Err(RegistryError::Invalid(detail)) => detail,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn a_raised_feature_limit_accepts_up_to_itself() {
        let features = |n: usize| -> BTreeMap<String, Vec<String>> {
            (0..n).map(|i| (format!("f{i}"), Vec::new())).collect()
        };
        let at_limit = NewCrate {
            features: features(300),
            ..complete()
        };
        assert!(check_metadata(&at_limit).unwrap().is_none());
        let wide = over_limit(&NewCrate {
            features: features(1727),
            ..complete()
        });
        assert_eq!(wide.needed, 1727);
        assert_eq!(wide.describe(), "has 1,727 features");
        assert!(wide.check(1727).is_ok());
        assert!(wide.check(2000).is_ok());
        assert!(limit_err(&wide, 1726).starts_with(
            "crates.io only allows a maximum number of 1726 features, but your crate is \
                 declaring 1727 features.\n\n"
        ));
        // No evidence, or evidence below the default, is the default.
        assert!(limit_err(&wide, 0).starts_with(
            "crates.io only allows a maximum number of 300 features, but your crate is \
             declaring 1727 features."
        ));

        // One feature enabling more values than the default: the same limit.
        let values: Vec<String> = (0..400).map(|i| format!("v{i}")).collect();
        let broad = over_limit(&NewCrate {
            features: BTreeMap::from([("big".to_string(), values)]),
            ..complete()
        });
        assert_eq!(broad.needed, 400);
        assert_eq!(
            broad.describe(),
            "has a feature enabling 400 features or dependencies"
        );
        assert!(broad.check(400).is_ok());
        assert!(
            limit_err(&broad, 399)
                .contains("but the \"big\" feature of your crate is enabling 400")
        );
    }

    #[test]
    fn rules_after_a_raised_feature_limit_keep_their_order() {
        let mut features: BTreeMap<String, Vec<String>> =
            (0..400).map(|i| (format!("f{i}"), Vec::new())).collect();
        let deps = (0..501).map(|i| dep(&format!("d{i}"), "^1")).collect();
        let krate = NewCrate {
            features: features.clone(),
            deps,
            ..complete()
        };
        let over = over_limit(&krate);
        // Without evidence the features come first, as on crates.io; with it, the
        // dependency count.
        assert!(limit_err(&over, 300).contains("maximum number of 300 features"));
        assert!(limit_err(&over, 400).contains("maximum number of 500 dependencies"));
        // Feature names are still checked under a raised limit.
        features.insert("-bad".into(), Vec::new());
        let over = over_limit(&NewCrate {
            features,
            ..complete()
        });
        assert!(limit_err(&over, 500).contains("invalid character `-` in feature `-bad`"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(300), "300");
        assert_eq!(thousands(1727), "1,727");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn feature_names() {
        for ok in [
            "foo",
            "1foo",
            "_foo",
            "_foo-_+.1",
            "32-column-tables",
            "c++20",
            "bar.web",
            "café",
        ] {
            assert!(check_metadata(&with_feature(ok, &[])).is_ok(), "{ok}");
        }
        assert_eq!(
            metadata_err(with_feature("", &[])),
            "feature cannot be empty"
        );
        assert_eq!(
            metadata_err(with_feature("+foo", &[])),
            "invalid character `+` in feature `+foo`, the first character must be a Unicode \
             XID start character or digit (most letters or `_` or `0` to `9`)"
        );
        assert_eq!(
            metadata_err(with_feature("foo?bar", &[])),
            "invalid character `?` in feature `foo?bar`, characters must be Unicode XID \
             characters, `+`, `-`, or `.` (numbers, `+`, `-`, `_`, `.`, or most letters)"
        );
    }

    #[test]
    fn feature_values() {
        for ok in [
            "a/a",
            "krate/c++20",
            "foo?/bar",
            "dep:foo",
            "dep:_foo",
            "foo/bar.web",
        ] {
            assert!(check_metadata(&with_feature("f", &[ok])).is_ok(), "{ok}");
        }
        let cases = [
            ("", "feature cannot be empty"),
            ("/", "dependency name cannot be empty"),
            (
                "%/%",
                "invalid character `%` in dependency name: `%`, \
                 the first character must be an ASCII character, or `_`",
            ),
            (
                "c++20/wow",
                "invalid character `+` in dependency name: `c++20`, \
                 characters must be an ASCII alphanumeric characters, `-`, or `_`",
            ),
            (
                "dep:foo?/bar",
                "invalid character `:` in dependency name: `dep:foo`, \
                 characters must be an ASCII alphanumeric characters, `-`, or `_`",
            ),
            (
                "foo/?bar",
                "invalid character `?` in feature `?bar`, the first character must be a \
                 Unicode XID start character or digit (most letters or `_` or `0` to `9`)",
            ),
            (
                "dep:0foo",
                "the name `0foo` cannot be used as a dependency name, \
                 the name cannot start with a digit",
            ),
        ];
        for (value, text) in cases {
            assert_eq!(metadata_err(with_feature("f", &[value])), text, "{value}");
        }
    }

    #[test]
    fn dependency_count() {
        let deps = |n: usize| (0..n).map(|i| dep(&format!("d{i}"), "^1")).collect();
        let at_limit = NewCrate {
            deps: deps(500),
            ..complete()
        };
        assert!(check_metadata(&at_limit).is_ok());
        let too_many = NewCrate {
            deps: deps(501),
            ..complete()
        };
        assert_eq!(
            metadata_err(too_many),
            "crates.io only allows a maximum number of 500 dependencies.\n\n\
             If you have a use case that requires an increase of this limit, please send us an \
             email to help@crates.io to discuss the details."
        );
    }

    #[test]
    fn dependency_names() {
        assert_eq!(
            metadata_err(with_dep(dep("", "^1"))),
            "dependency name cannot be empty"
        );
        assert_eq!(
            metadata_err(with_dep(dep("_foo", "^1"))),
            "invalid character `_` in dependency name: `_foo`, \
             the first character must be an ASCII character"
        );
        let long = "d".repeat(65);
        assert_eq!(
            metadata_err(with_dep(dep(&long, "^1"))),
            format!("the dependency name `{long}` is too long (max 64 characters)")
        );
    }

    #[test]
    fn dependency_renames() {
        let renamed = |rename: &str| NewCrateDep {
            explicit_name_in_toml: Some(rename.into()),
            ..dep("serde", "^1")
        };
        assert!(check_metadata(&with_dep(renamed("_serde"))).is_ok());
        assert_eq!(
            metadata_err(with_dep(renamed("-serde"))),
            "invalid character `-` in dependency name: `-serde`, \
             the first character must be an ASCII character, or `_`"
        );
    }

    #[test]
    fn dependency_features() {
        let with_features = NewCrateDep {
            features: strings(&["derive", "std?/x"]),
            ..dep("serde", "^1")
        };
        assert!(check_metadata(&with_dep(with_features)).is_ok());
        let bad = NewCrateDep {
            features: strings(&["de rive"]),
            ..dep("serde", "^1")
        };
        assert_eq!(
            metadata_err(with_dep(bad)),
            "invalid character ` ` in feature `de rive`, characters must be Unicode XID \
             characters, `+`, `-`, or `.` (numbers, `+`, `-`, `_`, `.`, or most letters)"
        );
    }

    #[test]
    fn cross_registry_dependencies() {
        let from = |registry: &str| NewCrateDep {
            registry: Some(registry.into()),
            ..dep("dep", "^1")
        };
        for crates_io in [
            "",
            "https://github.com/rust-lang/crates.io-index",
            "sparse+https://index.crates.io/",
        ] {
            assert!(
                check_metadata(&with_dep(from(crates_io))).is_ok(),
                "{crates_io}"
            );
        }
        assert_eq!(
            metadata_err(with_dep(from("https://server.example/path/to/registry"))),
            "Dependency `dep` is hosted on another registry. \
             Cross-registry dependencies are not permitted on crates.io."
        );
    }

    #[test]
    fn version_requirements() {
        for ok in ["1", "^1.2", "~1.2.3", ">=1, <2", "=1.0.0-beta.1", "1.*"] {
            assert!(check_metadata(&with_dep(dep("serde", ok))).is_ok(), "{ok}");
        }
        assert_eq!(
            metadata_err(with_dep(dep("serde", "one"))),
            "\"one\" is an invalid version requirement"
        );
    }

    #[test]
    fn wildcard_requirements() {
        let text = "wildcard (`*`) dependency constraints are not allowed on crates.io. \
                    Crate with this problem: `foo_wild` See \
                    https://doc.rust-lang.org/cargo/faq.html#can-libraries-use--as-a-version-for-their-dependencies \
                    for more information";
        for wildcard in ["*", " * "] {
            let krate = with_dep(dep("foo_wild", wildcard));
            assert_eq!(metadata_err(krate), text, "{wildcard:?}");
        }
        let renamed = NewCrateDep {
            explicit_name_in_toml: Some("alias".into()),
            ..dep("foo_wild", "*")
        };
        assert_eq!(metadata_err(with_dep(renamed)), text);
    }
}
