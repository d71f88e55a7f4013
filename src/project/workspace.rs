//! The cargo project the overlay runs in, as `cargo metadata --no-deps` describes it.
//!
//! Two things need it. `-r cargo-package` serves cargo's `package/tmp-registry`, which
//! lives in the build directory cargo computes (honouring `CARGO_TARGET_DIR` and
//! `build.build-dir`), so cargo is asked rather than guessed. And in exec mode the
//! prefetcher starts on the members' dependencies before cargo's first request: those
//! are the one wave of requests no earlier answer predicts. `--no-deps` reads the
//! manifests only; it neither resolves nor touches the network.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::registry::remote::prefetch::{Dependency, Release};

/// What went wrong asking cargo about the project.
#[derive(Debug)]
pub(crate) enum WorkspaceError {
    /// cargo could not be started.
    Spawn(io::Error),
    /// cargo ran and failed, typically outside a cargo project; its message.
    Failed(String),
    /// cargo's answer did not parse.
    Unreadable(serde_json::Error),
}

impl fmt::Display for WorkspaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkspaceError::Spawn(_) => f.write_str("cannot run `cargo metadata`"),
            WorkspaceError::Failed(message) => write!(
                f,
                "`cargo metadata` failed (run from inside a cargo project): {message}"
            ),
            WorkspaceError::Unreadable(_) => f.write_str("unreadable `cargo metadata` output"),
        }
    }
}

impl std::error::Error for WorkspaceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WorkspaceError::Spawn(e) => Some(e),
            WorkspaceError::Unreadable(e) => Some(e),
            // cargo's own message, quoted.
            WorkspaceError::Failed(_) => None,
        }
    }
}

/// The parts of `cargo metadata --format-version 1 --no-deps` the overlay reads.
#[derive(Debug, Deserialize)]
pub(crate) struct Workspace {
    packages: Vec<Member>,
    workspace_root: PathBuf,
    target_directory: PathBuf,
    #[serde(default)]
    build_directory: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct Member {
    dependencies: Vec<MemberDependency>,
    #[serde(default)]
    features: HashMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct MemberDependency {
    /// The crate's real name.
    name: String,
    /// The name the manifest uses, when it renames the crate.
    rename: Option<String>,
    req: String,
    kind: Option<String>,
    optional: bool,
    uses_default_features: bool,
    features: Vec<String>,
    /// Set for a dependency on another registry than crates.io.
    registry: Option<String>,
    /// The source: `registry+…` or `sparse+…` for a registry dependency; absent for
    /// a path dependency.
    source: Option<String>,
}

impl Workspace {
    /// Asks cargo (`$CARGO` when cargo started us, else `cargo` on the `PATH`) about
    /// the project in the current directory.
    pub(crate) fn read() -> Result<Workspace, WorkspaceError> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .map_err(WorkspaceError::Spawn)?;
        if !output.status.success() {
            return Err(WorkspaceError::Failed(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ));
        }
        Workspace::parse(&output.stdout)
    }

    fn parse(json: &[u8]) -> Result<Workspace, WorkspaceError> {
        serde_json::from_slice(json).map_err(WorkspaceError::Unreadable)
    }

    /// `<build dir>/package/tmp-registry`, where `cargo package` and `cargo publish`
    /// put the workspace's crates for each other's verification builds.
    pub(crate) fn tmp_registry(&self) -> PathBuf {
        self.build_directory
            .as_deref()
            .unwrap_or(&self.target_directory)
            .join(Path::new("package").join("tmp-registry"))
    }

    /// The workspace's `Cargo.lock`, which cargo writes once it has resolved.
    pub(crate) fn lockfile(&self) -> PathBuf {
        self.workspace_root.join("Cargo.lock")
    }

    /// The members as the prefetcher reads packages: their crates.io dependencies
    /// and features. Dev-dependencies count as normal ones, because cargo resolves a
    /// member's dev-dependencies; path, git and other registries' dependencies are
    /// left out.
    pub(crate) fn members(&self) -> Vec<Release> {
        self.packages
            .iter()
            .map(|member| Release {
                deps: member
                    .dependencies
                    .iter()
                    .filter(|dep| dep.registry.is_none())
                    .filter(|dep| {
                        dep.source
                            .as_deref()
                            .is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+"))
                    })
                    .map(|dep| Dependency {
                        name: dep.rename.clone().unwrap_or_else(|| dep.name.clone()),
                        package: Some(dep.name.clone()),
                        req: dep.req.clone(),
                        optional: dep.optional,
                        kind: dep.kind.clone().filter(|kind| kind != "dev"),
                        features: dep.features.clone(),
                        default_features: dep.uses_default_features,
                    })
                    .collect(),
                features: member.features.clone(),
                features2: None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from real `cargo metadata --no-deps` output of a two-member workspace.
    const METADATA: &str = r#"{
      "packages": [
        {"name": "app", "features": {"fast": ["dep:simd", "serde/rc"]},
         "dependencies": [
           {"name": "serde", "source": "registry+https://github.com/rust-lang/crates.io-index",
            "req": "^1", "kind": null, "rename": null, "optional": false,
            "uses_default_features": false, "features": ["derive"], "target": null, "registry": null},
           {"name": "simd-json", "source": "registry+https://github.com/rust-lang/crates.io-index",
            "req": "^0.13", "kind": null, "rename": "simd", "optional": true,
            "uses_default_features": true, "features": [], "target": null, "registry": null},
           {"name": "insta", "source": "registry+https://github.com/rust-lang/crates.io-index",
            "req": "^1", "kind": "dev", "rename": null, "optional": false,
            "uses_default_features": true, "features": [], "target": null, "registry": null},
           {"name": "lib", "source": null, "req": "*", "kind": null, "rename": null,
            "optional": false, "uses_default_features": true, "features": [],
            "target": null, "registry": null, "path": "/ws/lib"},
           {"name": "private", "source": "registry+https://example.com/index",
            "req": "^1", "kind": null, "rename": null, "optional": false,
            "uses_default_features": true, "features": [], "target": null,
            "registry": "https://example.com/index"},
           {"name": "gitdep", "source": "git+https://example.com/repo", "req": "*",
            "kind": null, "rename": null, "optional": false, "uses_default_features": true,
            "features": [], "target": null, "registry": null}
         ]},
        {"name": "lib", "features": {}, "dependencies": []}
      ],
      "target_directory": "/ws/target",
      "build_directory": "/ws/build",
      "workspace_root": "/ws"
    }"#;

    #[test]
    fn members_keep_crates_io_dependencies_with_their_features() {
        let workspace = Workspace::parse(METADATA.as_bytes()).unwrap();
        let members = workspace.members();
        assert_eq!(members.len(), 2);
        let deps: Vec<(&str, Option<&str>, bool)> = members[0]
            .deps
            .iter()
            .map(|d| (d.name.as_str(), d.package.as_deref(), d.kind.is_none()))
            .collect();
        assert_eq!(
            deps,
            [
                ("serde", Some("serde"), true),
                ("simd", Some("simd-json"), true),
                ("insta", Some("insta"), true),
            ]
        );
        assert!(!members[0].deps[0].default_features);
        assert_eq!(members[0].features["fast"], ["dep:simd", "serde/rc"]);
    }

    #[test]
    fn the_tmp_registry_and_the_lockfile() {
        let workspace = Workspace::parse(METADATA.as_bytes()).unwrap();
        assert_eq!(
            workspace.tmp_registry(),
            Path::new("/ws/build/package/tmp-registry")
        );
        assert_eq!(workspace.lockfile(), Path::new("/ws/Cargo.lock"));
        let no_build_dir = METADATA.replace(r#""build_directory": "/ws/build","#, "");
        let workspace = Workspace::parse(no_build_dir.as_bytes()).unwrap();
        assert_eq!(
            workspace.tmp_registry(),
            Path::new("/ws/target/package/tmp-registry")
        );
    }

    #[test]
    fn a_failure_names_cargo_metadata() {
        let e = Workspace::parse(b"not json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unreadable `cargo metadata` output")
        );
    }
}
