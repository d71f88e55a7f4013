//! The one error type of the registry domain.
//!
//! Each variant says what kind of failure it is, so the HTTP edge can pick a status
//! code without knowing any registry rule, and carries the exact text a client should
//! see: for refused publishes, the text crates.io would give, so a dry run through the
//! overlay reads like the real thing. Those texts have no cause beneath them; a storage
//! or upstream failure keeps its cause as the source, which the router's log line and
//! (for upstreams) its answer add through [`crate::report::Report`].

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum RegistryError {
    /// The request is malformed or breaks a registry rule (HTTP 400).
    Invalid(String),
    /// The request is larger than a limit allows (HTTP 413).
    TooLarge(String),
    /// No layer has what was asked for (HTTP 404).
    NotFound(String),
    /// The registry requires a token for every request and none was given (HTTP
    /// 401, which makes cargo retry with its token).
    Unauthorized(String),
    /// The operation is not allowed on this overlay, e.g. a publish with
    /// `--read-only` (HTTP 403).
    Forbidden(String),
    /// The route exists but not for this HTTP method (HTTP 405).
    MethodNotAllowed(String),
    /// The route exists in cargo's protocol but the overlay does not offer it (HTTP 501).
    Unsupported(String),
    /// An upstream registry failed or answered unexpectedly; the text names it, and
    /// the client's error, when there is one, is the source (HTTP 502, which cargo
    /// retries).
    Upstream {
        detail: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A layer's storage failed; `path` says where (HTTP 500).
    Storage {
        layer: String,
        path: PathBuf,
        source: io::Error,
    },
}

impl RegistryError {
    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        RegistryError::Invalid(detail.into())
    }

    /// An upstream's answer the registry cannot use; no cause below it.
    pub(crate) fn upstream(detail: impl Into<String>) -> Self {
        RegistryError::Upstream {
            detail: detail.into(),
            source: None,
        }
    }

    /// Wraps an I/O error with the layer and path it happened on.
    pub(crate) fn storage(layer: &str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        RegistryError::Storage {
            layer: layer.to_string(),
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Invalid(detail)
            | RegistryError::TooLarge(detail)
            | RegistryError::NotFound(detail)
            | RegistryError::Unauthorized(detail)
            | RegistryError::Forbidden(detail)
            | RegistryError::MethodNotAllowed(detail)
            | RegistryError::Upstream { detail, .. }
            | RegistryError::Unsupported(detail) => f.write_str(detail),
            RegistryError::Storage { layer, path, .. } => {
                write!(f, "storage error in layer {layer} at {}", path.display())
            }
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::Storage { source, .. } => Some(source),
            RegistryError::Upstream {
                source: Some(source),
                ..
            } => Some(&**source),
            _ => None,
        }
    }
}

pub(crate) type Result<T, E = RegistryError> = std::result::Result<T, E>;
