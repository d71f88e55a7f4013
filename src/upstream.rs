//! The HTTP client the overlay uses to reach upstream registries.
//!
//! One ureq agent is shared by every remote layer, so connections to an upstream are
//! reused. It is set up for build machines: rustls with the ring provider only, the
//! platform's trust store (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`, as
//! TLS-intercepting corporate proxies require), connect and overall timeouts so nothing
//! waits on a dead upstream for long, and an upstream proxy only when one is configured
//! (never an `HTTPS_PROXY` that points back at the overlay itself). 4xx and 5xx answers
//! are returned as responses, not errors: the layers decide what a status means.
//!
//! Host names are resolved once a minute, not per request: ureq resolves before every
//! request, pooled connection or not, and on networks whose DNS drops the odd UDP
//! query each lost answer costs the resolver's five-second retry (measured here: about
//! one request in thirty stalled five seconds). cargo's libcurl caches the same way.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// How long a resolved address is reused.
const DNS_TTL: Duration = Duration::from_secs(60);

/// How the agent reaches upstreams.
#[derive(Clone, Debug)]
pub struct UpstreamOptions {
    /// The longest any one upstream request may take, body included.
    pub timeout: Duration,
    /// An explicit proxy URL (`--upstream-proxy`).
    pub proxy: Option<String>,
    /// The overlay's own listener, so an inherited `HTTPS_PROXY` pointing at it is
    /// ignored instead of looping requests back into the overlay.
    pub own_address: Option<std::net::SocketAddr>,
    /// Follow redirects (registries redirect downloads to storage hosts); off when
    /// forwarding for a client, which then sees the redirect itself.
    pub follow_redirects: bool,
}

#[derive(Debug)]
pub struct UpstreamError(String);

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UpstreamError {}

/// An upstream's answer. The body is read by the caller, streamed or whole.
pub struct UpstreamResponse {
    pub status: u16,
    headers: ureq::http::HeaderMap,
    body: ureq::Body,
}

impl UpstreamResponse {
    /// A header's value, when it is present and readable.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)?.to_str().ok().map(str::to_string)
    }

    pub fn content_length(&self) -> Option<u64> {
        self.body.content_length()
    }

    /// The body read whole, refusing more than `limit` bytes.
    pub fn into_bytes(mut self, limit: u64) -> Result<Vec<u8>, UpstreamError> {
        self.body
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| UpstreamError(format!("reading the answer failed: {e}")))
    }

    /// The body as a stream.
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        Box::new(self.body.into_reader())
    }
}

pub struct Upstream {
    agent: ureq::Agent,
    /// The proxy the agent uses, if any: passthrough tunnels go through it too.
    proxy: Option<ureq::Proxy>,
}

impl Upstream {
    pub fn new(options: &UpstreamOptions) -> Result<Upstream, UpstreamError> {
        let proxy = match &options.proxy {
            Some(url) => Some(
                ureq::Proxy::new(url)
                    .map_err(|e| UpstreamError(format!("invalid --upstream-proxy `{url}`: {e}")))?,
            ),
            None => ureq::Proxy::try_from_env().filter(|p| !points_at(p, options.own_address)),
        };
        if let Some(proxy) = &proxy {
            log::info!(
                "upstream requests go through the proxy {}:{}",
                proxy.host(),
                proxy.port()
            );
        }
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::PlatformVerifier)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(proxy.clone())
            .http_status_as_error(false)
            .max_redirects(if options.follow_redirects { 10 } else { 0 })
            .user_agent(format!(
                "cargo-overlay-registry/{}",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout_connect(Some(options.timeout.min(Duration::from_secs(10))))
            .timeout_global(Some(options.timeout))
            // Prefetch workers talk to one upstream in parallel; keep their connections.
            .max_idle_connections_per_host(64)
            .max_idle_connections(256)
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            DefaultConnector::default(),
            CachingResolver::default(),
        );
        Ok(Upstream { agent, proxy })
    }

    /// The proxy a connection to `host:port` must go through, unless `NO_PROXY`
    /// exempts the host.
    pub fn proxy_for(&self, host: &str, port: u16) -> Option<&ureq::Proxy> {
        let proxy = self.proxy.as_ref()?;
        let uri: Uri = format!("https://{host}:{port}/").parse().ok()?;
        (!proxy.is_no_proxy(&uri)).then_some(proxy)
    }

    /// Sends a request with optional body; any status comes back as a response.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let started = std::time::Instant::now();
        let fail = |e: ureq::Error| UpstreamError(format!("{method} {url} failed: {e}"));
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match body {
            Some(body) => {
                let request = request.body(body.to_vec()).map_err(|e| fail(e.into()))?;
                self.agent.run(request)
            }
            None => {
                let request = request.body(()).map_err(|e| fail(e.into()))?;
                self.agent.run(request)
            }
        }
        .map_err(fail)?;
        let (parts, body) = response.into_parts();
        log::debug!(
            "upstream {method} {url} -> {} in {} ms",
            parts.status.as_u16(),
            started.elapsed().as_millis()
        );
        Ok(UpstreamResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    pub fn get(&self, url: &str) -> Result<UpstreamResponse, UpstreamError> {
        self.send("GET", url, &[], None)
    }
}

/// ureq's resolver with a cache in front (see the module docs).
#[derive(Debug, Default)]
struct CachingResolver {
    inner: DefaultResolver,
    cache: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map_or("", |a| a.as_str())
        );
        let cache = || self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, addrs)) = cache().get(&key)
            && at.elapsed() < DNS_TTL
        {
            return Ok(addrs.clone());
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        cache().insert(key, (Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

/// Whether a proxy from the environment is the overlay itself.
fn points_at(proxy: &ureq::Proxy, own: Option<std::net::SocketAddr>) -> bool {
    let Some(own) = own else { return false };
    let local = matches!(proxy.host(), "localhost" | "127.0.0.1" | "::1" | "[::1]")
        || proxy.host() == own.ip().to_string();
    let ours = local && proxy.port() == own.port();
    if ours {
        log::warn!(
            "ignoring the environment's proxy {}:{}: it is this overlay",
            proxy.host(),
            proxy.port()
        );
    }
    ours
}
