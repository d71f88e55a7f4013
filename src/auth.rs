//! Who may write, and who may use the proxy: the overlay's own tokens.
//!
//! Publishes and yanks must carry a token in `Authorization`, as cargo sends it (the raw
//! token) or as `Bearer <token>`: one of `--token-file`'s, or else a random one made
//! for the run, which only the user who started the overlay sees (it is printed with
//! the environment and handed to exec mode's command). Without that, any local user
//! who finds the port could publish into someone else's overlay. `--anonymous-writes`
//! is the explicit way back to trusting whoever reaches a loopback listener.
//!
//! Where the proxy needs a credential too (a listener beyond loopback, or
//! `--auth-required`), `CONNECT` and absolute-form requests must carry
//! `Proxy-Authorization: Basic` with a token as the password, which is what cargo, git
//! and libcurl send for a proxy URL `http://user:TOKEN@host:port`; the user name is
//! ignored. Reads need no token unless `--auth-required`, as on crates.io.
//!
//! Tokens are compared in constant time, so timing reveals nothing of them, and they
//! never leave the overlay: a remote top layer writes with its own `token-file=`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};

use crate::registry::RegistryError;

/// Random bytes in a per-run token: 192 bits, 32 base64url characters.
const RUN_TOKEN_BYTES: usize = 24;

/// What a proxy answers with its 407, so clients know to send Basic credentials.
pub(crate) const PROXY_CHALLENGE: &str = "Basic realm=\"cargo-overlay-registry\"";

#[derive(Clone)]
pub(crate) struct Tokens {
    tokens: Vec<Vec<u8>>,
    origin: Origin,
}

/// Where the tokens come from, which is what a refused client needs to know.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Origin {
    File,
    Run,
}

/// Says how many tokens there are, never what they are.
impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokens({} hidden, {:?})", self.tokens.len(), self.origin)
    }
}

#[derive(Debug)]
pub(crate) enum TokenError {
    Read {
        path: PathBuf,
        source: io::Error,
    },
    Empty {
        path: PathBuf,
    },
    /// The system's random number generator failed.
    Random,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Read { path, .. } => {
                write!(f, "cannot read the token file {}", path.display())
            }
            TokenError::Empty { path } => write!(
                f,
                "the token file {} holds no token (one per line; # starts a comment)",
                path.display()
            ),
            TokenError::Random => f.write_str(
                "cannot make this run's write token: the system's random number generator failed",
            ),
        }
    }
}

impl std::error::Error for TokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TokenError::Read { source, .. } => Some(source),
            TokenError::Empty { .. } | TokenError::Random => None,
        }
    }
}

/// Why a proxy request was refused with 407.
#[derive(Debug, PartialEq)]
pub(crate) enum ProxyAuthError {
    Missing,
    /// Not `Basic` credentials with a `user:password` inside.
    Malformed,
    Wrong,
}

impl fmt::Display for ProxyAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyAuthError::Missing => "proxy authentication required",
            ProxyAuthError::Malformed => {
                "proxy authentication failed: Proxy-Authorization must be Basic credentials"
            }
            ProxyAuthError::Wrong => "proxy authentication failed",
        })?;
        f.write_str(
            ": this proxy takes one of the overlay's --token-file tokens as the password of \
             its URL, as in http://overlay:TOKEN@HOST:PORT (CARGO_HTTP_PROXY as it prints it)",
        )
    }
}

impl std::error::Error for ProxyAuthError {}

impl Tokens {
    /// One token per line; blank lines and lines starting with `#` are skipped.
    pub(crate) fn load(path: &Path) -> Result<Tokens, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
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
            return Err(TokenError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Tokens {
            tokens,
            origin: Origin::File,
        })
    }

    /// A fresh random token for this run, from the system's CSPRNG.
    pub(crate) fn generate() -> Result<Tokens, TokenError> {
        let mut bytes = [0u8; RUN_TOKEN_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TokenError::Random)?;
        Ok(Tokens {
            tokens: vec![URL_SAFE_NO_PAD.encode(bytes).into_bytes()],
            origin: Origin::Run,
        })
    }

    /// The first token: what cargo is given, in exec mode and the printed environment.
    pub(crate) fn first(&self) -> String {
        String::from_utf8_lossy(&self.tokens[0]).into_owned()
    }

    /// Accepts a write carrying one of the tokens. Refusals start with crates.io's texts
    /// and say where the token is.
    pub(crate) fn check(&self, authorization: Option<&str>) -> Result<(), RegistryError> {
        let where_it_is = match self.origin {
            Origin::File => "use one of the tokens in the overlay's --token-file",
            Origin::Run => {
                "use the token this overlay made for its run: it is printed at start as \
                 CARGO_REGISTRIES_OVERLAY_TOKEN, and exec mode hands it to the command"
            }
        };
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return Err(RegistryError::Forbidden(format!(
                "this action requires authentication: {where_it_is}"
            )));
        };
        let presented = header.strip_prefix("Bearer ").unwrap_or(header).as_bytes();
        if self.matches(presented) {
            Ok(())
        } else {
            Err(RegistryError::Forbidden(format!(
                "authentication failed: {where_it_is}"
            )))
        }
    }

    /// Accepts a proxy request whose `Proxy-Authorization` is Basic credentials with
    /// one of the tokens as the password; the user name is ignored.
    pub(crate) fn check_proxy(
        &self,
        proxy_authorization: Option<&str>,
    ) -> Result<(), ProxyAuthError> {
        let header = proxy_authorization
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(ProxyAuthError::Missing)?;
        let (scheme, credentials) = header.split_once(' ').ok_or(ProxyAuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(ProxyAuthError::Malformed);
        }
        let decoded = STANDARD
            .decode(credentials.trim())
            .map_err(|_| ProxyAuthError::Malformed)?;
        let colon = decoded
            .iter()
            .position(|&b| b == b':')
            .ok_or(ProxyAuthError::Malformed)?;
        if self.matches(&decoded[colon + 1..]) {
            Ok(())
        } else {
            Err(ProxyAuthError::Wrong)
        }
    }

    /// Every token is compared, so the time taken does not say which one matched.
    fn matches(&self, presented: &[u8]) -> bool {
        self.tokens.iter().fold(false, |found, token| {
            found | constant_time_eq(token, presented)
        })
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// `token` made safe as the password of a URL (`user:PASSWORD@host`): everything but
/// RFC 3986's unreserved characters is percent-encoded. Clients decode it again.
pub(crate) fn url_password(token: &str) -> String {
    token
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens {
            tokens: vec![b"alpha".to_vec(), b"beta".to_vec()],
            origin: Origin::File,
        }
    }

    #[test]
    fn accepts_raw_and_bearer_tokens() {
        assert!(tokens().check(Some("beta")).is_ok());
        assert!(tokens().check(Some("Bearer alpha")).is_ok());
    }

    #[test]
    fn refuses_missing_and_wrong_tokens_with_crates_io_texts() {
        let text = |auth| tokens().check(auth).unwrap_err().to_string();
        assert!(text(None).starts_with("this action requires authentication: "));
        assert!(text(Some("  ")).starts_with("this action requires authentication: "));
        assert!(text(Some("alph")).starts_with("authentication failed: "));
        assert!(text(Some("Bearer gamma")).contains("--token-file"));
    }

    #[test]
    fn run_tokens_are_random_url_safe_and_say_where_they_are() {
        let (a, b) = (Tokens::generate().unwrap(), Tokens::generate().unwrap());
        assert_ne!(a.first(), b.first());
        assert_eq!(a.first().len(), 32);
        assert_eq!(url_password(&a.first()), a.first());
        assert!(a.check(Some(&a.first())).is_ok());
        let refused = a.check(Some(&b.first())).unwrap_err().to_string();
        assert!(
            refused.contains("CARGO_REGISTRIES_OVERLAY_TOKEN"),
            "{refused}"
        );
        // The old constant handed to every client is not a token any more.
        assert!(a.check(Some("overlay")).is_err());
    }

    #[test]
    fn proxy_credentials_are_basic_with_a_token_as_password() {
        let basic = |credentials: &str| format!("Basic {}", STANDARD.encode(credentials));
        let check = |header: &str| tokens().check_proxy(Some(header));
        assert_eq!(check(&basic("overlay:beta")), Ok(()));
        assert_eq!(check(&basic(":alpha")), Ok(()));
        assert_eq!(check(&basic("user:al:pha")), Err(ProxyAuthError::Wrong));
        assert_eq!(
            check(&basic("overlay:beta").replacen("Basic", "basic", 1)),
            Ok(())
        );
        assert_eq!(check(&basic("alpha:beta2")), Err(ProxyAuthError::Wrong));
        assert_eq!(check(&basic("alpha")), Err(ProxyAuthError::Malformed));
        assert_eq!(check("Bearer alpha"), Err(ProxyAuthError::Malformed));
        assert_eq!(check("Basic !!!"), Err(ProxyAuthError::Malformed));
        assert_eq!(tokens().check_proxy(None), Err(ProxyAuthError::Missing));
        assert!(
            ProxyAuthError::Missing
                .to_string()
                .contains("overlay:TOKEN@")
        );
    }

    #[test]
    fn passwords_in_urls_are_percent_encoded() {
        assert_eq!(url_password("a b:c@d/é"), "a%20b%3Ac%40d%2F%C3%A9");
        assert_eq!(url_password("Az09-._~"), "Az09-._~");
    }

    #[test]
    fn loads_tokens_skipping_comments() {
        let dir = crate::test_support::Scratch::new("tokens");
        let path = dir.join("tokens");
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
    }
}
