//! The one place that knows both HTTP and the registry: it maps cargo's sparse-registry
//! and web-API requests onto the layer stack and turns results into responses.
//!
//! Every entry point (the plain listener now; proxy requests and TLS tunnels later)
//! ends here, so a route behaves the same however cargo reached it. Errors leave in
//! cargo's JSON shape, `{"errors":[{"detail":"..."}]}`, which cargo prints verbatim.

use std::time::SystemTime;

use serde_json::json;

use crate::auth::Tokens;
use crate::http::{Body, Handler, Request, RequestHead, Response};
use crate::registry::index::{CrateName, same_release};
use crate::registry::layer::WriteOutcome;
use crate::registry::publish::{self, PublishPolicy, sha256_hex};
use crate::registry::{LayerStack, RegistryError};

/// Where downloads are served, as a `dl` template. It uses every marker cargo knows, so
/// a client that expands them wrongly (another overlay using this one as a remote
/// layer, say) fails loudly instead of by luck, and the checksum in the path is checked
/// against the index. The crates.io API path works too.
const DL_TEMPLATE: &str = "/dl/{lowerprefix}/{crate}/{version}/{sha256-checksum}";

/// Search results per page when cargo does not say, and the most it may ask for.
const DEFAULT_PER_PAGE: usize = 10;
const MAX_PER_PAGE: usize = 100;

pub struct Router {
    stack: LayerStack,
    policy: PublishPolicy,
    /// Tokens publishes and yanks must carry; `None` trusts every client.
    tokens: Option<Tokens>,
    /// Whether every request, reads too, must carry one of `tokens`
    /// (`--auth-required`; `config.json` then says `auth-required`).
    auth_required: bool,
    /// The registry's public URL without a trailing `/`, for `config.json`.
    base_url: String,
}

/// A request, classified.
enum Route<'a> {
    Config,
    Index(CrateName),
    Download(CrateName, semver::Version),
    /// A download by the `dl` template, which names the expected checksum.
    CheckedDownload(CrateName, semver::Version, &'a str),
    Publish,
    Yank(CrateName, semver::Version, bool),
    Search(Option<&'a str>),
    Owners,
}

impl Router {
    pub fn new(
        stack: LayerStack,
        policy: PublishPolicy,
        tokens: Option<Tokens>,
        auth_required: bool,
        base_url: &str,
    ) -> Router {
        Router {
            stack,
            policy,
            tokens,
            auth_required,
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    /// Refuses a write without an accepted token, when tokens are required.
    fn authorize(&self, head: &RequestHead) -> Result<(), RegistryError> {
        match &self.tokens {
            Some(tokens) => tokens.check(head.header("authorization")),
            None => Ok(()),
        }
    }

    /// Under `--auth-required`, refuses any request without an accepted token: 401
    /// when it carries none, which is how cargo learns to send its token.
    fn authorize_read(&self, head: &RequestHead) -> Result<(), RegistryError> {
        if !self.auth_required {
            return Ok(());
        }
        if head
            .header("authorization")
            .is_none_or(|h| h.trim().is_empty())
        {
            return Err(RegistryError::Unauthorized(
                "this registry requires a token for every request (auth-required)".into(),
            ));
        }
        self.authorize(head)
    }

    pub fn stack(&self) -> &LayerStack {
        &self.stack
    }

    fn route<'a>(&self, head: &'a RequestHead) -> Result<Route<'a>, RegistryError> {
        let path = head.path();
        let method = head.method.as_str();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let allow = |allowed: &[&str]| -> Result<(), RegistryError> {
            if allowed.contains(&method) {
                Ok(())
            } else {
                Err(RegistryError::MethodNotAllowed(format!(
                    "method {method} is not allowed on {path}; use {}",
                    allowed.join(" or ")
                )))
            }
        };
        const READ: &[&str] = &["GET", "HEAD"];
        match segments.as_slice() {
            ["config.json"] => allow(READ).map(|()| Route::Config),
            ["api", "v1", "crates"] => allow(READ).map(|()| Route::Search(head.query())),
            ["api", "v1", "crates", "new"] => allow(&["PUT"]).map(|()| Route::Publish),
            ["api", "v1", "crates", name, "owners"] => {
                crate_name(name)?;
                Ok(Route::Owners)
            }
            ["api", "v1", "crates", name, version, action] => {
                let (name, version) = (crate_name(name)?, version_of(version)?);
                match *action {
                    "download" => allow(READ).map(|()| Route::Download(name, version)),
                    "yank" => allow(&["DELETE"]).map(|()| Route::Yank(name, version, true)),
                    "unyank" => allow(&["PUT"]).map(|()| Route::Yank(name, version, false)),
                    _ => Err(not_found(path)),
                }
            }
            ["api", ..] => Err(not_found(path)),
            ["dl", prefix @ .., name, version, checksum] => {
                let (name, version) = (crate_name(name)?, version_of(version)?);
                // The prefix must be the name's own, as the index path is.
                let expected = name.index_path();
                let given = format!("{}/{}", prefix.join("/"), name.lowercase());
                if given != expected {
                    return Err(not_found(path));
                }
                allow(READ).map(|()| Route::CheckedDownload(name, version, checksum))
            }
            [.., last] => {
                let name = CrateName::new(last).ok_or_else(|| not_found(path))?;
                // Only the one path cargo computes for a name is an index file.
                if name.index_path() != path.trim_start_matches('/') {
                    return Err(not_found(path));
                }
                allow(READ).map(|()| Route::Index(name))
            }
            [] => Err(not_found(path)),
        }
    }

    fn serve(&self, request: &Request) -> Result<Response, RegistryError> {
        let head = &request.head;
        let route = self.route(head)?;
        self.authorize_read(head)?;
        match route {
            Route::Config => Ok(json_response(
                200,
                &json!({
                    "dl": format!("{}{DL_TEMPLATE}", self.base_url),
                    "api": self.base_url,
                    "auth-required": self.auth_required,
                }),
            )),
            Route::Index(name) => self.index(head, &name),
            Route::Download(name, version) => self.download(&name, &version),
            Route::CheckedDownload(name, version, checksum) => {
                if self.checksum(&name, &version)?.as_deref() != Some(checksum) {
                    return Err(RegistryError::NotFound(format!(
                        "crate `{name}` has no version `{version}` with checksum {checksum}"
                    )));
                }
                self.download(&name, &version)
            }
            Route::Publish => {
                self.authorize(head)?;
                self.publish(&request.body)
            }
            Route::Yank(name, version, yanked) => {
                self.authorize(head)?;
                let (layer, outcome) = self.stack.set_yanked(&name, &version, yanked)?;
                let action = if yanked { "yanked" } else { "unyanked" };
                log::info!("{action} {name}@{version} in {layer}");
                Ok(written(outcome, json!({ "ok": true })))
            }
            Route::Search(query) => self.search(query),
            Route::Owners => Err(RegistryError::Unsupported(
                "cargo-overlay-registry does not manage crate owners".into(),
            )),
        }
    }

    fn download(
        &self,
        name: &CrateName,
        version: &semver::Version,
    ) -> Result<Response, RegistryError> {
        let file = self.stack.download(name, version)?.ok_or_else(|| {
            RegistryError::NotFound(format!("crate `{name}` has no version `{version}`"))
        })?;
        let body = Body::Stream {
            reader: file.reader,
            len: file.len,
        };
        Ok(Response::new(200, body).with_header("Content-Type", "application/gzip"))
    }

    /// The checksum the merged index gives for `name` at `version`.
    fn checksum(
        &self,
        name: &CrateName,
        version: &semver::Version,
    ) -> Result<Option<String>, RegistryError> {
        let Some(lines) = self.stack.index_lines(name)? else {
            return Ok(None);
        };
        Ok(lines
            .iter()
            .find(|line| same_release(&line.version, version))
            .and_then(|line| line.field("cksum")))
    }

    fn index(&self, head: &RequestHead, name: &CrateName) -> Result<Response, RegistryError> {
        let body = self
            .stack
            .index_file(name)?
            .ok_or_else(|| RegistryError::NotFound(format!("no crate named `{name}`")))?;
        let etag = format!("\"{}\"", sha256_hex(body.as_bytes()));
        let cached = head.header("if-none-match").is_some_and(|tags| {
            tags.split(',')
                .map(str::trim)
                .any(|tag| tag == etag || tag == "*")
        });
        let response = if cached {
            Response::new(304, Body::Empty)
        } else {
            Response::new(200, Body::Bytes(body.into_bytes()))
                .with_header("Content-Type", "text/plain")
        };
        // no-cache: clients must revalidate, so a publish is visible at once.
        Ok(response
            .with_header("ETag", etag)
            .with_header("Cache-Control", "no-cache"))
    }

    fn publish(&self, body: &[u8]) -> Result<Response, RegistryError> {
        // An upstream that takes the publish applies its own rules; ours would only
        // hide its answer behind a different one.
        let policy = PublishPolicy {
            permissive: self.policy.permissive || self.stack.forwards_writes(),
            ..self.policy
        };
        let publish = publish::prepare(body, &policy, &publish::pubtime(SystemTime::now()))?;
        let result = self.stack.publish(&publish)?;
        match &result.outcome {
            WriteOutcome::Stored => log::info!(
                "published {}@{} to {}",
                publish.name,
                publish.version,
                result.layer
            ),
            WriteOutcome::Forwarded { status, .. } => log::info!(
                "forwarded the publish of {}@{} to {}, which answered {status}",
                publish.name,
                publish.version,
                result.layer
            ),
        }
        let accepted = json!({ "warnings": {
            "invalid_categories": [], "invalid_badges": [], "other": result.warnings,
        } });
        Ok(written(result.outcome, accepted))
    }

    fn search(&self, query: Option<&str>) -> Result<Response, RegistryError> {
        let mut text = String::new();
        let mut per_page = DEFAULT_PER_PAGE;
        for (key, value) in query
            .unwrap_or("")
            .split('&')
            .filter_map(|p| p.split_once('='))
        {
            match key {
                "q" => text = percent_decode(value),
                "per_page" => {
                    per_page = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PER_PAGE).contains(n))
                        .ok_or_else(|| {
                            RegistryError::invalid(format!(
                                "per_page must be a number from 1 to {MAX_PER_PAGE}, not `{value}`"
                            ))
                        })?;
                }
                _ => {}
            }
        }
        let page = self.stack.search(&text, per_page)?;
        let crates: Vec<_> = page
            .hits
            .iter()
            .map(|h| {
                json!({ "name": h.name, "max_version": h.max_version, "description": h.description })
            })
            .collect();
        Ok(json_response(
            200,
            &json!({ "crates": crates, "meta": { "total": page.total } }),
        ))
    }
}

/// The answer to a write: ours when a layer stored it, the upstream's own when a layer
/// forwarded it.
fn written(outcome: WriteOutcome, stored: serde_json::Value) -> Response {
    match outcome {
        WriteOutcome::Stored => json_response(200, &stored),
        WriteOutcome::Forwarded { status, body } => {
            Response::new(status, Body::Bytes(body)).with_header("Content-Type", "application/json")
        }
    }
}

impl Handler for Router {
    fn check_head(&self, head: &RequestHead, body_len: Option<u64>) -> Option<Response> {
        if head.method != "PUT" || head.path() != "/api/v1/crates/new" {
            return None;
        }
        let refusal = if let Err(e) = self.authorize(head) {
            e
        } else if let Err(e) = self.stack.check_writable("publish") {
            e
        } else if body_len.is_some_and(|n| n > self.policy.max_body_len()) {
            RegistryError::TooLarge(format!("max upload size is: {}", self.policy.max_crate_len))
        } else {
            return None;
        };
        Some(self.error_response(head, &refusal))
    }

    fn handle(&self, request: Request) -> Response {
        let started = std::time::Instant::now();
        let response = match self.serve(&request) {
            Ok(response) => response,
            Err(e) => self.error_response(&request.head, &e),
        };
        log::debug!(
            "{} {} -> {} in {} ms",
            request.head.method,
            request.head.target,
            response.status,
            started.elapsed().as_millis()
        );
        response
    }

    fn protocol_error(&self, status: u16, detail: &str) -> Response {
        error_body(status, detail)
    }
}

impl Router {
    fn error_response(&self, head: &RequestHead, error: &RegistryError) -> Response {
        let status = match error {
            RegistryError::Invalid(_) => 400,
            RegistryError::Unauthorized(_) => 401,
            RegistryError::Forbidden(_) => 403,
            RegistryError::NotFound(_) => 404,
            RegistryError::MethodNotAllowed(_) => 405,
            RegistryError::TooLarge(_) => 413,
            RegistryError::Storage { .. } => 500,
            RegistryError::Unsupported(_) => 501,
            RegistryError::Upstream(_) => 502,
        };
        // A missing index file is the normal answer to cargo's probing, and a 401 the
        // first step of cargo's token handshake: neither is worth a line.
        if status == 404 || status == 401 {
            log::debug!("{} {}: {error}", head.method, head.target);
        } else {
            log::warn!("{} {}: {error}", head.method, head.target);
        }
        // The full storage error, with server paths, goes to the log only.
        let detail = match error {
            RegistryError::Storage { layer, .. } => {
                format!("storage error in layer {layer}; the server log has the details")
            }
            _ => error.to_string(),
        };
        error_body(status, &detail)
    }
}

fn error_body(status: u16, detail: &str) -> Response {
    json_response(status, &json!({ "errors": [{ "detail": detail }] }))
}

fn json_response(status: u16, value: &serde_json::Value) -> Response {
    Response::new(status, Body::Bytes(value.to_string().into_bytes()))
        .with_header("Content-Type", "application/json")
}

fn not_found(path: &str) -> RegistryError {
    RegistryError::NotFound(format!("no such file or route: {path}"))
}

fn crate_name(segment: &str) -> Result<CrateName, RegistryError> {
    CrateName::new(segment)
        .ok_or_else(|| RegistryError::NotFound(format!("`{segment}` is not a valid crate name")))
}

fn version_of(segment: &str) -> Result<semver::Version, RegistryError> {
    semver::Version::parse(segment)
        .map_err(|_| RegistryError::NotFound(format!("`{segment}` is not a valid version")))
}

/// Decodes a query-string value: `%XX` escapes and `+` for space. An invalid escape
/// is kept as written.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_values() {
        assert_eq!(percent_decode("a+b%2Dc"), "a b-c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
