//! What cargo needs to use the overlay: the variables printed for `eval`, or set on the
//! exec-mode command.

use std::io::{self, Write};
use std::path::PathBuf;

use ureq::http::Uri;

use super::REGISTRY_NAME;
use crate::auth::url_password;

/// The user name in the proxy URL handed to cargo; the proxy checks only the password.
const PROXY_USER: &str = "overlay";
/// What cargo needs to use the overlay.
pub(crate) struct Environment {
    /// The token cargo sends: one the overlay accepts.
    pub(crate) token: String,
    pub(crate) listener_url: String,
    pub(crate) proxy: bool,
    /// Whether the proxy requires the token as the password of its URL.
    pub(crate) proxy_credentials: bool,
    /// Our CA plus the system roots, when there is a CA.
    pub(crate) bundle: Option<PathBuf>,
    /// Our CA alone, when cargo must trust the proxy's own certificate: in proxy mode
    /// with a TLS listener whose certificate our CA made (no `--tls-cert`).
    pub(crate) proxy_ca: Option<PathBuf>,
    /// `--auth-required`: cargo sends a token on reads only with a credential
    /// provider configured for the registry.
    pub(crate) auth_required: bool,
}

impl Environment {
    /// The variables, in the order printed. The index variable comes first.
    pub(crate) fn vars(&self) -> Vec<(String, String)> {
        let registry = REGISTRY_NAME.to_ascii_uppercase();
        let mut vars = vec![
            (
                format!("CARGO_REGISTRIES_{registry}_INDEX"),
                format!("sparse+{}/", self.listener_url),
            ),
            (
                format!("CARGO_REGISTRIES_{registry}_TOKEN"),
                self.token.clone(),
            ),
        ];
        if self.auth_required {
            vars.push((
                format!("CARGO_REGISTRIES_{registry}_CREDENTIAL_PROVIDER"),
                "cargo:token".into(),
            ));
        }
        if self.proxy {
            vars.push(("CARGO_HTTP_PROXY".into(), self.proxy_url()));
            vars.push(("CARGO_REGISTRY_TOKEN".into(), self.token.clone()));
            if self.auth_required {
                vars.push((
                    "CARGO_REGISTRY_CREDENTIAL_PROVIDER".into(),
                    "cargo:token".into(),
                ));
            }
        }
        if let Some(bundle) = &self.bundle {
            vars.push(("CARGO_HTTP_CAINFO".into(), bundle.display().to_string()));
        }
        if let Some(proxy_ca) = &self.proxy_ca {
            vars.push((
                "CARGO_HTTP_PROXY_CAINFO".into(),
                proxy_ca.display().to_string(),
            ));
        }
        vars
    }

    /// The listener's URL as a proxy URL, with the token as its password when the
    /// proxy requires one (cargo, git and libcurl send it as `Proxy-Authorization`).
    fn proxy_url(&self) -> String {
        let uri = self.listener_url.parse::<Uri>().ok();
        match uri.as_ref().map(|uri| (uri.scheme_str(), uri.authority())) {
            Some((Some(scheme), Some(address))) if self.proxy_credentials => format!(
                "{scheme}://{PROXY_USER}:{}@{address}",
                url_password(&self.token)
            ),
            _ => self.listener_url.clone(),
        }
    }

    /// Prints the variables as shell lines ready for `eval`, then a comment line that
    /// says the overlay is ready.
    pub(crate) fn print(&self) {
        let mut out = io::stdout().lock();
        for (name, value) in self.vars() {
            let _ = writeln!(out, "export {name}={}", shell_quote(&value));
        }
        let _ = writeln!(out, "# ready on {}/ (stop with Ctrl-C)", self.listener_url);
        let _ = out.flush();
    }
}

/// Quotes a value for a POSIX shell when it needs it.
fn shell_quote(value: &str) -> String {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/+-_.:,=@%".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_url_carries_the_token_only_where_the_proxy_needs_it() {
        let environment = |proxy_credentials| Environment {
            token: "a b@c".into(),
            listener_url: "https://127.0.0.1:8080".into(),
            proxy: true,
            proxy_credentials,
            bundle: None,
            proxy_ca: None,
            auth_required: false,
        };
        let var = |e: &Environment, name: &str| {
            e.vars()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
        };
        let open = environment(false);
        assert_eq!(
            var(&open, "CARGO_HTTP_PROXY").as_deref(),
            Some("https://127.0.0.1:8080")
        );
        let guarded = environment(true);
        assert_eq!(
            var(&guarded, "CARGO_HTTP_PROXY").as_deref(),
            Some("https://overlay:a%20b%40c@127.0.0.1:8080")
        );
        for name in ["CARGO_REGISTRY_TOKEN", "CARGO_REGISTRIES_OVERLAY_TOKEN"] {
            assert_eq!(var(&guarded, name).as_deref(), Some("a b@c"));
        }
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            shell_quote("sparse+https://127.0.0.1:1/"),
            "sparse+https://127.0.0.1:1/"
        );
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
