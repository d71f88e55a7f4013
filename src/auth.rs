//! Who may write: the tokens that publish and yank require on a shared machine.
//!
//! Without `--token-file` the overlay trusts whoever reaches it, which is right for a
//! loopback listener serving one user. With it, publishes and yanks must carry one of
//! the file's tokens in `Authorization`, as cargo sends it (the raw token) or as
//! `Bearer <token>`. Tokens are compared in constant time, so timing reveals nothing
//! of them. Reads need no token, as on crates.io.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::registry::RegistryError;

pub struct Tokens(Vec<Vec<u8>>);

/// Says how many tokens there are, never what they are.
impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokens({} hidden)", self.0.len())
    }
}

#[derive(Debug)]
pub enum TokenFileError {
    Read { path: PathBuf, source: io::Error },
    Empty { path: PathBuf },
}

impl fmt::Display for TokenFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenFileError::Read { path, source } => {
                write!(f, "cannot read the token file {}: {source}", path.display())
            }
            TokenFileError::Empty { path } => write!(
                f,
                "the token file {} holds no token (one per line; # starts a comment)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for TokenFileError {}

impl Tokens {
    /// One token per line; blank lines and lines starting with `#` are skipped.
    pub fn load(path: &Path) -> Result<Tokens, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let tokens: Vec<Vec<u8>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.as_bytes().to_vec())
            .collect();
        if tokens.is_empty() {
            return Err(TokenFileError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Tokens(tokens))
    }

    /// The first token, for a child process run in exec mode.
    pub fn first(&self) -> String {
        String::from_utf8_lossy(&self.0[0]).into_owned()
    }

    /// Accepts a write carrying one of the tokens, with crates.io's texts otherwise.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), RegistryError> {
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return Err(RegistryError::Forbidden(
                "this action requires authentication".into(),
            ));
        };
        let presented = header.strip_prefix("Bearer ").unwrap_or(header).as_bytes();
        // Every token is compared, so the time taken does not say which one matched.
        let matched = self.0.iter().fold(false, |found, token| {
            found | constant_time_eq(token, presented)
        });
        if matched {
            Ok(())
        } else {
            Err(RegistryError::Forbidden("authentication failed".into()))
        }
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens(vec![b"alpha".to_vec(), b"beta".to_vec()])
    }

    #[test]
    fn accepts_raw_and_bearer_tokens() {
        assert!(tokens().check(Some("beta")).is_ok());
        assert!(tokens().check(Some("Bearer alpha")).is_ok());
    }

    #[test]
    fn refuses_missing_and_wrong_tokens_with_crates_io_texts() {
        let text = |auth| tokens().check(auth).unwrap_err().to_string();
        assert_eq!(text(None), "this action requires authentication");
        assert_eq!(text(Some("  ")), "this action requires authentication");
        assert_eq!(text(Some("alph")), "authentication failed");
        assert_eq!(text(Some("Bearer gamma")), "authentication failed");
    }

    #[test]
    fn loads_tokens_skipping_comments() {
        let path = std::env::temp_dir().join(format!("overlay-tokens-{}", std::process::id()));
        std::fs::write(&path, "# ci\nalpha\n\n  beta  \n").unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert!(tokens.check(Some("beta")).is_ok());
        assert_eq!(tokens.first(), "alpha");
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(
            Tokens::load(&path)
                .unwrap_err()
                .to_string()
                .contains("holds no token")
        );
        std::fs::remove_file(&path).unwrap();
    }
}
