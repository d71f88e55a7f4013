//! The one place that knows both HTTP and the registry: it maps cargo's sparse-registry
//! and web-API requests onto the layer stack and turns results into responses.
//!
//! Every entry point (the plain listener, proxy requests and TLS tunnels) ends here,
//! so a route behaves the same however cargo reached it. One classifier, [`Router::admit`],
//! decides from the request head alone which route a request is, whether it is
//! authorised, whether a write is allowed at all and how large a body it may carry; the
//! HTTP loop asks it before any body byte is read, and serving asks it again, so the
//! two cannot disagree. Only a publish may carry a large body. Errors leave in cargo's
//! JSON shape, `{"errors":[{"detail":"..."}]}`, which cargo prints verbatim.

use std::time::SystemTime;

use serde_json::json;

use crate::auth::Tokens;
use crate::http::{Body, Handler, Request, RequestHead, Response, SMALL_BODY_LIMIT};
use crate::registry::index::{CrateName, same_release};
use crate::registry::layer::WriteOutcome;
use crate::registry::publish::{self, PublishPolicy};
use crate::registry::{LayerStack, RegistryError};
use crate::report::Report;

/// Where downloads are served, as a `dl` template. It uses every marker cargo knows, so
/// a client that expands them wrongly (another overlay using this one as a remote
/// layer, say) fails loudly instead of by luck, and the checksum in the path is checked
/// against the index. The crates.io API path works too.
const DL_TEMPLATE: &str = "/dl/{lowerprefix}/{crate}/{version}/{sha256-checksum}";

/// Search results per page when cargo does not say, and the most it may ask for.
const DEFAULT_PER_PAGE: usize = 10;
const MAX_PER_PAGE: usize = 100;

pub(crate) struct Router {
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

impl Route<'_> {
    /// The write this route asks for, in the words of refusals; `None` for a read.
    fn write(&self) -> Option<&'static str> {
        match self {
            Route::Publish => Some("publish"),
            Route::Yank(.., true) => Some("yank"),
            Route::Yank(.., false) => Some("unyank"),
            _ => None,
        }
    }
}

impl Router {
    pub(crate) fn new(
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

    pub(crate) fn stack(&self) -> &LayerStack {
        &self.stack
    }

    /// Decides on a request from its head: its route, and the largest body it may carry
    /// (`body_len` is the announced length, `None` for a chunked body). In the order a
    /// client learns of its mistakes: the route (404, 405), under `--auth-required` a
    /// token on any request (401), then for a write the token (403), whether the stack
    /// takes writes (403) and, for a publish, its size (413), as crates.io orders them.
    fn admit<'a>(
        &self,
        head: &'a RequestHead,
        body_len: Option<u64>,
    ) -> Result<(Route<'a>, u64), RegistryError> {
        let route = self.route(head)?;
        self.authorize_read(head)?;
        if let Some(action) = route.write() {
            self.authorize(head)?;
            self.stack.check_writable(action)?;
        }
        if !matches!(route, Route::Publish) {
            return Ok((route, SMALL_BODY_LIMIT));
        }
        let max_body_len = self.policy.max_body_len();
        if body_len.is_some_and(|n| n > max_body_len) {
            return Err(RegistryError::TooLarge(format!(
                "max upload size is: {}",
                self.policy.max_crate_len
            )));
        }
        Ok((route, max_body_len))
    }

    fn route<'a>(&self, head: &'a RequestHead) -> Result<Route<'a>, RegistryError> {
        let path = head.path();
        let method = head.method.as_str();
        let Some(relative) = path.strip_prefix('/').filter(|p| is_canonical(p)) else {
            return Err(not_found(path));
        };
        let segments: Vec<&str> = relative.split('/').collect();
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
                if name.index_path() != relative {
                    return Err(not_found(path));
                }
                allow(READ).map(|()| Route::Index(name))
            }
            [] => Err(not_found(path)),
        }
    }

    fn serve(&self, request: &Request) -> Result<Response, RegistryError> {
        let head = &request.head;
        let (route, _) = self.admit(head, Some(request.body.len() as u64))?;
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
            Route::Publish => self.publish(&request.body),
            Route::Yank(name, version, yanked) => {
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
        let body = match file.len {
            Some(len) => Body::Stream {
                reader: file.reader,
                len,
            },
            None => Body::Unsized(file.reader),
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
        let index = self
            .stack
            .index_file(name)?
            .ok_or_else(|| RegistryError::NotFound(format!("no crate named `{name}`")))?;
        let etag = &*index.etag;
        let cached = head.header("if-none-match").is_some_and(|tags| {
            tags.split(',')
                .map(str::trim)
                .any(|tag| tag == etag || tag == "*")
        });
        let response = if cached {
            Response::new(304, Body::Empty)
        } else {
            Response::new(200, Body::Shared(index.body)).with_header("Content-Type", "text/plain")
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
    fn check_head(&self, head: &RequestHead, body_len: Option<u64>) -> Result<u64, Response> {
        self.admit(head, body_len)
            .map(|(_, max_body_len)| max_body_len)
            .map_err(|e| self.error_response(head, &e))
    }

    fn handle(&self, request: Request) -> Response {
        let started = std::time::Instant::now();
        let response = match self.serve(&request) {
            Ok(response) => response,
            Err(e) => self.error_response(&request.head, &e),
        };
        log::debug!(
            "{} {} -> {} in {} us",
            request.head.method,
            request.head.target,
            response.status,
            started.elapsed().as_micros()
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
            RegistryError::Upstream { .. } => 502,
        };
        // A missing index file is the normal answer to cargo's probing, and a 401 the
        // first step of cargo's token handshake: neither is worth a line.
        let report = Report(error);
        if status == 404 || status == 401 {
            log::debug!("{} {}: {report}", head.method, head.target);
        } else {
            log::warn!("{} {}: {report}", head.method, head.target);
        }
        // The full storage error, with server paths, goes to the log only; an
        // upstream's failure is shown with its causes; every other text is exactly
        // the registry's (crates.io's, for refused publishes).
        let detail = match error {
            RegistryError::Storage { layer, .. } => {
                format!("storage error in layer {layer}; the server log has the details")
            }
            RegistryError::Upstream { .. } => report.to_string(),
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

/// Whether a path (after its leading `/`) is spelled as cargo spells paths: no empty,
/// `.` or `..` segment (so no `//` and no trailing `/`) and no `%` escape. Any other
/// spelling is a 404, not normalised: cargo sends only this form, and with one
/// spelling per route there is nothing for the head check and serving to disagree on
/// (once, `//api/v1/crates/new` passed the head check as no publish and was then served
/// as one, its body read).
fn is_canonical(relative: &str) -> bool {
    !relative.contains('%')
        && relative
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
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

/// Decodes a query-string value: `+` for space, then `%XX` escapes (so `%2B` stays a
/// `+`). An invalid escape is kept as written.
fn percent_decode(value: &str) -> String {
    percent_encoding::percent_decode_str(&value.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::local::LocalLayer;

    /// A router over one local layer in a scratch directory, without tokens; the
    /// directory goes with it.
    struct Scratch {
        router: Router,
        _root: crate::test_support::Scratch,
    }

    impl std::ops::Deref for Scratch {
        type Target = Router;
        fn deref(&self) -> &Router {
            &self.router
        }
    }

    fn router(name: &str, read_only: bool) -> Scratch {
        let root = crate::test_support::Scratch::unmade(&format!("router-{name}"));
        let layer = LocalLayer::open(root.to_path_buf()).unwrap();
        let stack = LayerStack::new(vec![Box::new(layer)], read_only);
        let router = Router::new(stack, PublishPolicy::default(), None, false, "http://x");
        Scratch {
            router,
            _root: root,
        }
    }

    fn head(method: &str, target: &str) -> RequestHead {
        RequestHead {
            method: method.into(),
            target: target.into(),
            headers: vec![("Host".into(), "x".into())],
        }
    }

    /// The status and error detail of a refusal.
    fn refusal(decision: Result<u64, Response>) -> (u16, String) {
        let response = decision.expect_err("a refusal");
        let Body::Bytes(body) = response.body else {
            panic!("an error body in memory")
        };
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let detail = value["errors"][0]["detail"].as_str().unwrap().to_string();
        (response.status, detail)
    }

    /// Spellings of `/api/v1/crates/new` that cargo never sends.
    const PUBLISH_SPELLINGS: [&str; 11] = [
        "//api/v1/crates/new",
        "///api/v1/crates/new",
        "/api/v1/crates/new/",
        "/api//v1/crates/new",
        "/./api/v1/crates/new",
        "/api/v1/crates/./new",
        "/api/v1/x/../crates/new",
        "/api/v1/crates/new/.",
        "/api/v1/crates/%6eew",
        "/%61pi/v1/crates/new",
        "api/v1/crates/new",
    ];

    #[test]
    fn only_the_spelling_cargo_sends_is_canonical() {
        for path in ["config.json", "api/v1/crates/new", "se/rd/serde", "3/s/syn"] {
            assert!(is_canonical(path), "{path}");
        }
        for path in [
            "",
            "/config.json",
            "config.json/",
            "se//rd/serde",
            "./config.json",
            "se/../se/rd/serde",
            "api/v1/crates/%6eew",
        ] {
            assert!(!is_canonical(path), "{path}");
        }
    }

    #[test]
    fn every_spelling_of_a_publish_is_decided_on_its_head() {
        let writable = router("writable", false);
        let max = PublishPolicy::default().max_body_len();
        for target in ["/api/v1/crates/new", "/api/v1/crates/new?x=1"] {
            assert_eq!(
                writable
                    .check_head(&head("PUT", target), Some(max))
                    .unwrap(),
                max
            );
            assert_eq!(
                writable.check_head(&head("PUT", target), None).unwrap(),
                max
            );
        }
        let (status, detail) =
            refusal(writable.check_head(&head("PUT", "/api/v1/crates/new"), Some(max + 1)));
        assert_eq!(
            (status, detail.as_str()),
            (413, "max upload size is: 10485760")
        );
        let read_only = router("read-only", true);
        let (status, detail) =
            refusal(read_only.check_head(&head("PUT", "/api/v1/crates/new"), Some(max)));
        assert_eq!(status, 403);
        assert!(
            detail.contains("read-only (--read-only): publish"),
            "{detail}"
        );
        for router in [&*writable, &*read_only] {
            for target in PUBLISH_SPELLINGS {
                let (status, detail) = refusal(router.check_head(&head("PUT", target), Some(1)));
                assert_eq!(status, 404, "{target}: {detail}");
                assert!(
                    detail.contains("no such file or route"),
                    "{target}: {detail}"
                );
                // Serving agrees with the head check.
                let request = Request {
                    head: head("PUT", target),
                    body: b"x".to_vec(),
                };
                assert_eq!(router.handle(request).status, 404, "{target}");
            }
        }
    }

    #[test]
    fn writes_are_refused_on_their_head_and_reads_take_small_bodies() {
        let read_only = router("read-only-yank", true);
        for (method, target, action) in [
            ("DELETE", "/api/v1/crates/abc/1.0.0/yank", "yank"),
            ("PUT", "/api/v1/crates/abc/1.0.0/unyank", "unyank"),
        ] {
            let (status, detail) = refusal(read_only.check_head(&head(method, target), Some(0)));
            assert_eq!(status, 403, "{target}");
            assert!(
                detail.ends_with(&format!(": {action} is not allowed")),
                "{detail}"
            );
        }
        for (method, target) in [
            ("GET", "/config.json"),
            ("HEAD", "/ab/cd/abcd"),
            ("GET", "/api/v1/crates?q=x"),
            ("PUT", "/api/v1/crates/abc/owners"),
        ] {
            assert_eq!(
                read_only.check_head(&head(method, target), None).unwrap(),
                SMALL_BODY_LIMIT,
                "{method} {target}"
            );
        }
        let (status, _) = refusal(read_only.check_head(&head("DELETE", "/config.json"), Some(0)));
        assert_eq!(status, 405);
    }

    #[test]
    fn decodes_query_values() {
        assert_eq!(percent_decode("a+b%2Dc"), "a b-c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
