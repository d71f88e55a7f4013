//! crates.io's rules for the publish metadata, with crates.io's exact error texts.
//!
//! A publish through the overlay should fail exactly where, and with exactly the words,
//! a publish to crates.io would, so a dry run against the overlay is a faithful rehearsal.
//! The rules are split in two: [`check_identity`] covers the name and version, which
//! become file names and index paths and so are always checked; [`check_metadata`] covers
//! everything else and is skipped with `--permissive-publishing`. The checks run in
//! crates.io's order, so the first error reported is the one crates.io would report.

use std::collections::BTreeMap;

use super::error::{RegistryError, Result};
use super::index::{CrateName, MAX_NAME_LEN};
use super::publish::{NewCrate, NewCrateDep};

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
pub fn check_identity(krate: &NewCrate) -> Result<(CrateName, semver::Version)> {
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
pub fn check_metadata(krate: &NewCrate) -> Result<()> {
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
    check_features(&krate.features)?;
    check_dependencies(&krate.deps)
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

fn check_url(field: &str, url: Option<&str>) -> Result<()> {
    match url {
        Some(url) if !url.starts_with("http://") && !url.starts_with("https://") => {
            Err(RegistryError::invalid(format!(
                "URL for field `{field}` must begin with http:// or https:// (url: {url})"
            )))
        }
        _ => Ok(()),
    }
}

/// A bare version like `1.70` or `1.70.0`: what `VersionReq` parses, without
/// operators or pre-release tags (crates.io's own test).
fn check_rust_version(value: &str) -> Result<()> {
    let bare = value.chars().all(|c| c.is_ascii_digit() || c == '.');
    if bare && semver::VersionReq::parse(value).is_ok() {
        Ok(())
    } else {
        Err(RegistryError::invalid("invalid `rust-version` value"))
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

fn check_features(features: &BTreeMap<String, Vec<String>>) -> Result<()> {
    if features.len() > MAX_FEATURES {
        return Err(RegistryError::invalid(format!(
            "crates.io only allows a maximum number of {MAX_FEATURES} features, but your \
             crate is declaring {} features.\n\n{LIMIT_REASON}\n\n{LIMIT_CONTACT}",
            features.len()
        )));
    }
    for (feature, enables) in features {
        check_feature_name(feature)?;
        if enables.len() > MAX_FEATURES {
            return Err(RegistryError::invalid(format!(
                "crates.io only allows a maximum number of {MAX_FEATURES} features or \
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

    fn metadata_err(krate: NewCrate) -> String {
        match check_metadata(&krate) {
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
            assert_eq!(metadata_err(krate), "invalid `rust-version` value", "{bad}");
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
