//! The HTTP client the overlay uses to reach upstream registries, and where it may go.
//!
//! One ureq agent is shared by every remote layer, so connections to an upstream are
//! reused. It is set up for build machines: rustls with the ring provider only, the
//! platform's trust store (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`, as
//! TLS-intercepting corporate proxies require), connect and overall timeouts so nothing
//! waits on a dead upstream for long, and an upstream proxy only when one is configured
//! (never an `HTTPS_PROXY` that points back at the overlay itself). 4xx and 5xx answers
//! are returned as responses, not errors: the layers decide what a status means.
//!
//! Destinations are parsed once, with the `http` crate's URI parser ([`Url`],
//! [`HostPort`]), and what was checked is what is connected to. ureq follows no
//! redirects itself: [`Upstream::get`] follows them hop by hop under a [`Redirects`]
//! policy, so an index cannot send the overlay to another origin, a download is sent
//! on only over https and not to a loopback or link-local address unless the layer is
//! on one, and `Authorization` never leaves the origin it was meant for. Addresses are
//! checked where ureq gets them, in the resolver, against the [`AddressRule`] of the
//! request under way: no second lookup can answer differently.
//!
//! Host names are resolved once a minute, not per request: ureq resolves before every
//! request, pooled connection or not, and on networks whose DNS drops the odd UDP
//! query each lost answer costs the resolver's five-second retry (measured here: about
//! one request in thirty stalled five seconds). cargo's libcurl caches the same way.
//! The cache holds a bounded number of names, so clients naming ever new hosts through
//! the forward proxy cannot grow it.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::http::uri::Authority;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// How long a resolved address is reused.
const DNS_TTL: Duration = Duration::from_secs(60);
/// The most host names the resolver cache keeps.
const MAX_DNS_ENTRIES: usize = 256;
/// The most redirects one request follows.
const MAX_REDIRECTS: usize = 8;

/// How the agent reaches upstreams.
#[derive(Clone, Debug)]
pub(crate) struct UpstreamOptions {
    /// The longest any one upstream request may take, body included.
    pub(crate) timeout: Duration,
    /// An explicit proxy URL (`--upstream-proxy`).
    pub(crate) proxy: Option<String>,
    /// The overlay's own listener, so an inherited `HTTPS_PROXY` pointing at it is
    /// ignored instead of looping requests back into the overlay.
    pub(crate) own_address: Option<std::net::SocketAddr>,
    /// The client forwards requests for proxy clients: it never reaches a link-local
    /// address (cloud metadata services live there).
    pub(crate) forwarding: bool,
}

/// Why an upstream request did not get an answer.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// `--upstream-proxy` or the environment's proxy is not a proxy URL.
    InvalidProxy { url: String, source: ureq::Error },
    /// The URL is not one the overlay requests.
    InvalidUrl { url: String, detail: String },
    /// The destination's addresses are all of a kind this request may not reach.
    AddressRefused { url: String, rule: AddressRule },
    /// A redirect the request's policy does not follow.
    Redirect {
        from: String,
        to: String,
        why: &'static str,
    },
    /// More redirects than one request follows.
    TooManyRedirects { url: String },
    /// The upstream could not be reached, or its answer not read; ureq's error is
    /// the source.
    Failed {
        what: String,
        kind: Failure,
        source: ureq::Error,
    },
}

/// What kind of failure an [`UpstreamError::Failed`] is, read off ureq's error
/// variants (and the I/O or rustls error inside), never off its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A connect, read or overall timeout.
    Timeout,
    /// The host name did not resolve.
    Resolve,
    /// No connection: refused, unreachable, reset.
    Connect,
    /// The TLS handshake or session failed (an untrusted certificate, say).
    Tls,
    /// The upstream proxy could not be used.
    Proxy,
    /// The answer is not HTTP the client can read.
    Protocol,
    /// The answer's body is larger than the request allows.
    TooLarge,
    /// Any other I/O error on the connection.
    Io,
    /// Anything else ureq reports.
    Other,
}

impl Failure {
    fn of(e: &ureq::Error) -> Failure {
        use ureq::Error as E;
        match e {
            E::Timeout(_) => Failure::Timeout,
            E::HostNotFound => Failure::Resolve,
            E::ConnectionFailed => Failure::Connect,
            E::Tls(_) | E::Pem(_) | E::Rustls(_) | E::TlsRequired | E::RequireHttpsOnly(_) => {
                Failure::Tls
            }
            E::ConnectProxyFailed(_) | E::InvalidProxyUrl => Failure::Proxy,
            E::Protocol(_)
            | E::Http(_)
            | E::BadUri(_)
            | E::LargeResponseHeader(..)
            | E::StatusCode(_)
            | E::RedirectFailed
            | E::TooManyRedirects
            | E::BodyStalled => Failure::Protocol,
            E::BodyExceedsLimit(_) => Failure::TooLarge,
            E::Io(io) => Failure::of_io(io),
            _ => Failure::Other,
        }
    }

    fn of_io(e: &std::io::Error) -> Failure {
        use std::io::ErrorKind as K;
        let inner = e.get_ref();
        if inner.is_some_and(|inner| inner.is::<rustls::Error>()) {
            return Failure::Tls;
        }
        if inner.is_some_and(|inner| inner.is::<Unresolved>()) {
            return Failure::Resolve;
        }
        match e.kind() {
            K::TimedOut | K::WouldBlock => Failure::Timeout,
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::AddrNotAvailable
            | K::HostUnreachable
            | K::NetworkUnreachable => Failure::Connect,
            _ => Failure::Io,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::Timeout => "timed out",
            Failure::Resolve => "the host name does not resolve",
            Failure::Connect => "cannot connect",
            Failure::Tls => "TLS failed",
            Failure::Proxy => "the upstream proxy failed",
            Failure::Protocol => "unreadable answer",
            Failure::TooLarge => "answer too large",
            Failure::Io => "connection failed",
            Failure::Other => "failed",
        })
    }
}

impl UpstreamError {
    /// A failed request or read, its kind taken from ureq's error.
    fn failed(what: String, source: ureq::Error) -> UpstreamError {
        UpstreamError::Failed {
            what,
            kind: Failure::of(&source),
            source,
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::InvalidProxy { url, .. } => {
                write!(f, "invalid --upstream-proxy `{url}`")
            }
            UpstreamError::InvalidUrl { url, detail } => write!(f, "invalid URL `{url}`: {detail}"),
            UpstreamError::AddressRefused { url, rule } => {
                write!(f, "{url} resolves only to {} addresses", rule.refused())
            }
            UpstreamError::Redirect { from, to, why } => {
                write!(f, "{from} redirects to {to}, which is not followed: {why}")
            }
            UpstreamError::TooManyRedirects { url } => {
                write!(f, "GET {url} failed: more than {MAX_REDIRECTS} redirects")
            }
            UpstreamError::Failed { what, kind, .. } => write!(f, "{what}: {kind}"),
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::InvalidProxy { source, .. } | UpstreamError::Failed { source, .. } => {
                Some(source)
            }
            UpstreamError::InvalidUrl { .. }
            | UpstreamError::AddressRefused { .. }
            | UpstreamError::Redirect { .. }
            | UpstreamError::TooManyRedirects { .. } => None,
        }
    }
}

/// A URL's scheme: the overlay speaks only these two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A host and a port, as a `CONNECT` target or a URL's authority names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostPort {
    /// Lowercase; an IPv6 address without its brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl HostPort {
    /// A `CONNECT` target: `host:port` or `[v6]:port`, the port required, no userinfo.
    pub(crate) fn parse(authority: &str) -> Result<HostPort, String> {
        let parsed: Authority = authority
            .parse()
            .map_err(|e| format!("`{authority}` is not a host:port: {e}"))?;
        HostPort::from_authority(&parsed, None)
    }

    /// The host and port of `authority`; without a port, `default_port`, if any.
    fn from_authority(
        authority: &Authority,
        default_port: Option<u16>,
    ) -> Result<HostPort, String> {
        if authority.as_str().contains('@') {
            return Err(format!(
                "`{authority}` has user information before its host, which is refused"
            ));
        }
        let written = authority.host();
        let port = match authority.as_str()[written.len()..].strip_prefix(':') {
            Some(port) if !port.is_empty() => port.parse().ok(),
            _ => default_port,
        }
        .ok_or_else(|| format!("`{authority}` is not a host:port"))?;
        let host = unbracket(written);
        if host.is_empty() {
            return Err(format!("`{authority}` names no host"));
        }
        Ok(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The host's address, when it is an IP address rather than a name.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for HostPort {
    /// `host:port` as a URL writes it, with brackets around an IPv6 address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A host as written in a URL or CONNECT line, as it is compared: `[::1]` is the
/// address `::1`. (`http`'s `Authority::host` keeps the brackets.)
pub(crate) fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The host of any URL `http`'s `Uri` reads (user information and port dropped),
/// lowercase and without IPv6 brackets, as [`HostPort`] holds it.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    Some(unbracket(uri.host()?).to_ascii_lowercase())
}

/// An absolute `http` or `https` URL, parsed once: the request made for it goes to
/// exactly this scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) scheme: Scheme,
    pub(crate) at: HostPort,
    /// The authority as written, which is what `at` was read from: a default port
    /// stays unwritten, as signed storage URLs need.
    authority: String,
    /// Starts with `/`; the fragment is gone.
    pub(crate) path_and_query: String,
}

impl Url {
    pub(crate) fn parse(url: &str) -> Result<Url, String> {
        let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(other) => return Err(format!("the scheme `{other}` is not http or https")),
            None => return Err("not an absolute URL".to_string()),
        };
        let authority = uri.authority().ok_or("the URL names no host")?;
        let at = HostPort::from_authority(authority, Some(scheme.default_port()))?;
        let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) => format!("/{p}"),
            None => "/".to_string(),
        };
        Ok(Url {
            scheme,
            at,
            authority: authority.as_str().to_string(),
            path_and_query,
        })
    }

    /// Whether both have the same scheme, host and port.
    pub(crate) fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.at == other.at
    }

    /// Where a `Location` header points, relative to this URL.
    fn join(&self, location: &str) -> Result<Url, String> {
        let location = location.trim();
        let absolute = if location.starts_with("//") {
            format!("{}:{location}", self.scheme.as_str())
        } else if location.starts_with('/') {
            format!("{}://{}{location}", self.scheme.as_str(), self.authority)
        } else if location
            .split_once(':')
            .is_some_and(|(scheme, _)| !scheme.contains(['/', '?', '#']))
        {
            location.to_string()
        } else {
            let path = self.path_and_query.split(['?', '#']).next().unwrap_or("/");
            let dir = &path[..=path.rfind('/').unwrap_or(0)];
            format!(
                "{}://{}{dir}{location}",
                self.scheme.as_str(),
                self.authority
            )
        };
        Url::parse(&absolute)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.path_and_query
        )
    }
}

/// Which kinds of addresses a request may connect to. Other addresses are all allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AddressRule {
    /// This host: 127.0.0.0/8, ::1, and the unspecified address, which reaches it too.
    pub(crate) loopback: bool,
    /// 169.254.0.0/16 and fe80::/10, where cloud metadata services answer.
    pub(crate) link_local: bool,
}

impl AddressRule {
    pub(crate) const ANY: AddressRule = AddressRule {
        loopback: true,
        link_local: true,
    };
    /// What forwarding and passthrough tunnels may reach.
    pub(crate) const NOT_LINK_LOCAL: AddressRule = AddressRule {
        loopback: true,
        link_local: false,
    };

    pub(crate) fn allows(self, ip: IpAddr) -> bool {
        (self.loopback || !is_loopback(ip)) && (self.link_local || !is_link_local(ip))
    }

    /// The rule that allows loopback or link-local addresses only if `addrs` has some.
    fn allowing(addrs: &[IpAddr]) -> AddressRule {
        AddressRule {
            loopback: addrs.iter().any(|&ip| is_loopback(ip)),
            link_local: addrs.iter().any(|&ip| is_link_local(ip)),
        }
    }

    /// The kinds refused, for messages.
    fn refused(self) -> &'static str {
        match (self.loopback, self.link_local) {
            (false, false) => "loopback or link-local",
            (false, true) => "loopback",
            (true, false) => "link-local",
            (true, true) => "no",
        }
    }
}

/// This host: 127.0.0.0/8, ::1, and the unspecified address, which reaches it too.
fn is_loopback(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || ip.is_unspecified()
}

/// 169.254.0.0/16 and fe80::/10, also written as IPv4-mapped IPv6.
fn is_link_local(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

thread_local! {
    /// The rule of the request this thread is making. ureq's resolver has no
    /// per-request context, and ureq makes the request on the calling thread.
    static RULE: Cell<AddressRule> = const { Cell::new(AddressRule::ANY) };
}

/// Sets the thread's address rule while a request runs.
struct RuleScope(AddressRule);

impl RuleScope {
    fn enter(rule: AddressRule) -> RuleScope {
        RuleScope(RULE.replace(rule))
    }
}

impl Drop for RuleScope {
    fn drop(&mut self) {
        RULE.set(self.0);
    }
}

/// Which redirects [`Upstream::get`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Redirects {
    /// Only within the first URL's origin: `config.json`, index files, searches.
    SameOrigin,
    /// Downloads, which registries redirect to storage hosts: also to another origin
    /// over https, but not to a loopback or link-local address unless the first URL's
    /// host is one.
    Download,
}

/// An upstream's answer. The body is read by the caller, streamed or whole.
pub(crate) struct UpstreamResponse {
    pub(crate) status: u16,
    headers: ureq::http::HeaderMap,
    body: ureq::Body,
}

impl UpstreamResponse {
    /// A header's value, when it is present and readable.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)?.to_str().ok().map(str::to_string)
    }

    pub(crate) fn content_length(&self) -> Option<u64> {
        self.body.content_length()
    }

    /// The body read whole, refusing more than `limit` bytes.
    pub(crate) fn into_bytes(mut self, limit: u64) -> Result<Vec<u8>, UpstreamError> {
        self.body
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| UpstreamError::failed("reading the answer".to_string(), e))
    }

    /// The body as a stream.
    pub(crate) fn into_reader(self) -> Box<dyn Read + Send> {
        Box::new(self.body.into_reader())
    }
}

pub(crate) struct Upstream {
    agent: ureq::Agent,
    /// The proxy the agent uses, if any: passthrough tunnels go through it too.
    proxy: Option<ureq::Proxy>,
    resolver: CachingResolver,
    /// What every request of this client may reach.
    rule: AddressRule,
}

impl Upstream {
    pub(crate) fn new(options: &UpstreamOptions) -> Result<Upstream, UpstreamError> {
        let proxy = match &options.proxy {
            Some(url) => {
                Some(
                    ureq::Proxy::new(url).map_err(|source| UpstreamError::InvalidProxy {
                        url: url.clone(),
                        source,
                    })?,
                )
            }
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
            // Redirects are followed in `get`, each hop checked.
            .max_redirects(0)
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
        let resolver = CachingResolver::default();
        let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), resolver.clone());
        let rule = if options.forwarding {
            AddressRule::NOT_LINK_LOCAL
        } else {
            AddressRule::ANY
        };
        Ok(Upstream {
            agent,
            proxy,
            resolver,
            rule,
        })
    }

    /// The proxy a connection to `to` must go through, unless `NO_PROXY` exempts it.
    pub(crate) fn proxy_for(&self, to: &HostPort) -> Option<&ureq::Proxy> {
        let proxy = self.proxy.as_ref()?;
        let uri: Uri = format!("https://{to}/").parse().ok()?;
        (!proxy.is_no_proxy(&uri)).then_some(proxy)
    }

    /// What this client's requests may reach.
    pub(crate) fn rule(&self) -> AddressRule {
        self.rule
    }

    /// Sends a request with optional body and returns the answer as it is: a redirect
    /// is not followed. Any status comes back as a response.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let parsed = Url::parse(url).map_err(|detail| UpstreamError::InvalidUrl {
            url: url.to_string(),
            detail,
        })?;
        self.send_to(method, &parsed, headers, body, self.rule)
    }

    /// A GET that follows redirects as `redirects` allows, each hop checked.
    /// `Authorization` is sent only to the first URL's origin.
    pub(crate) fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        redirects: Redirects,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let first = Url::parse(url).map_err(|detail| UpstreamError::InvalidUrl {
            url: url.to_string(),
            detail,
        })?;
        let mut at = first.clone();
        let mut rule = self.rule;
        for _ in 0..=MAX_REDIRECTS {
            let hop_headers = headers_for(headers, at.same_origin(&first));
            let response = self.send_to("GET", &at, &hop_headers, None, rule)?;
            if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(response);
            }
            let Some(location) = response.header("location") else {
                return Ok(response);
            };
            let refuse = |to: String, why| UpstreamError::Redirect {
                from: at.to_string(),
                to,
                why,
            };
            let next = at.join(&location).map_err(|_| {
                refuse(
                    location.clone(),
                    "not an http(s) URL without user information",
                )
            })?;
            if !next.same_origin(&first) {
                if redirects == Redirects::SameOrigin {
                    return Err(refuse(next.to_string(), "it leaves the registry's origin"));
                }
                if next.scheme != Scheme::Https {
                    return Err(refuse(
                        next.to_string(),
                        "downloads are followed to other hosts over https only",
                    ));
                }
                // Loopback and link-local only if the registry itself is there.
                let home = self.resolver.addresses(&first.at);
                let like_home = AddressRule::allowing(&home);
                rule = AddressRule {
                    loopback: self.rule.loopback && like_home.loopback,
                    link_local: self.rule.link_local && like_home.link_local,
                };
            }
            at = next;
        }
        Err(UpstreamError::TooManyRedirects {
            url: first.to_string(),
        })
    }

    fn send_to(
        &self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        rule: AddressRule,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let started = Instant::now();
        let what = format!("{method} {url}");
        // An address given as such is checked here: through a proxy, the resolver
        // never sees it.
        if url.at.ip().is_some_and(|ip| !rule.allows(ip)) {
            return Err(UpstreamError::AddressRefused {
                url: url.to_string(),
                rule,
            });
        }
        let fail = |e: ureq::Error| match e {
            ureq::Error::Io(io) if io.get_ref().is_some_and(|e| e.is::<Refused>()) => {
                UpstreamError::AddressRefused {
                    url: url.to_string(),
                    rule,
                }
            }
            e => UpstreamError::failed(what.clone(), e),
        };
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(url.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let _scope = RuleScope::enter(rule);
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
            "upstream {what} -> {} in {} ms",
            parts.status.as_u16(),
            started.elapsed().as_millis()
        );
        Ok(UpstreamResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// The headers of a request for a hop: `Authorization` only within the first URL's
/// origin, the one it was meant for.
fn headers_for<'a>(headers: &[(&'a str, &'a str)], same_origin: bool) -> Vec<(&'a str, &'a str)> {
    headers
        .iter()
        .filter(|(name, _)| same_origin || !name.eq_ignore_ascii_case("authorization"))
        .copied()
        .collect()
}

/// A resolver answer refused by the request's [`AddressRule`].
#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the host resolves only to addresses this request may not reach")
    }
}

impl std::error::Error for Refused {}

/// The system resolver's error for a lookup, marked as such so the failure's kind
/// survives ureq; it reads as the error it wraps.
#[derive(Debug)]
struct Unresolved(std::io::Error);

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Unresolved {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// ureq's resolver with a bounded cache in front (see the module docs), answering
/// only addresses the thread's [`AddressRule`] allows.
#[derive(Clone, Debug, Default)]
struct CachingResolver {
    inner: Arc<DefaultResolver>,
    cache: Arc<Mutex<DnsCache>>,
}

/// Host names and their addresses, with when they were resolved.
#[derive(Debug, Default)]
struct DnsCache(HashMap<String, (Instant, Vec<IpAddr>)>);

impl DnsCache {
    fn get(&self, host: &str) -> Option<Vec<IpAddr>> {
        let (at, addrs) = self.0.get(host)?;
        (at.elapsed() < DNS_TTL).then(|| addrs.clone())
    }

    /// Keeps `addrs` for `host`, first dropping expired entries and then, if it is
    /// still full, the oldest.
    fn insert(&mut self, host: String, addrs: Vec<IpAddr>) {
        if self.0.len() >= MAX_DNS_ENTRIES && !self.0.contains_key(&host) {
            self.0.retain(|_, (at, _)| at.elapsed() < DNS_TTL);
            if self.0.len() >= MAX_DNS_ENTRIES
                && let Some(oldest) = self
                    .0
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(host, _)| host.clone())
            {
                self.0.remove(&oldest);
            }
        }
        self.0.insert(host, (Instant::now(), addrs));
    }
}

impl CachingResolver {
    fn cache(&self) -> std::sync::MutexGuard<'_, DnsCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The addresses `at` resolves to, from the cache or looked up; none when it
    /// does not resolve. For deciding what kind of host a registry is on.
    fn addresses(&self, at: &HostPort) -> Vec<IpAddr> {
        if let Some(ip) = at.ip() {
            return vec![ip];
        }
        if let Some(addrs) = self.cache().get(&at.host) {
            return addrs;
        }
        use std::net::ToSocketAddrs;
        let addrs: Vec<IpAddr> = (at.host.as_str(), at.port)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default();
        if !addrs.is_empty() {
            self.cache().insert(at.host.clone(), addrs.clone());
        }
        addrs
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = unbracket(uri.host().unwrap_or("")).to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        // The upstream proxy is the operator's choice, wherever it is.
        let is_proxy = config
            .proxy()
            .is_some_and(|p| p.host().eq_ignore_ascii_case(&host) && p.port() == port);
        // Addresses given as such need no lookup and take no room in the cache.
        let cached = || self.cache().get(&host);
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match cached() {
                Some(ips) => ips,
                None => {
                    let resolved =
                        self.inner
                            .resolve(uri, config, timeout)
                            .map_err(|e| match e {
                                // The lookup's own error, marked so its kind survives.
                                ureq::Error::Io(source) => ureq::Error::Io(std::io::Error::new(
                                    source.kind(),
                                    Unresolved(source),
                                )),
                                e => e,
                            })?;
                    let ips: Vec<IpAddr> = resolved.iter().map(|a| a.ip()).collect();
                    self.cache().insert(host.clone(), ips.clone());
                    ips
                }
            },
        };
        let rule = if is_proxy {
            AddressRule::ANY
        } else {
            RULE.get()
        };
        let mut answer = self.empty();
        for ip in ips.into_iter().filter(|&ip| rule.allows(ip)) {
            // ureq keeps at most 16 addresses; so does its own resolver.
            let _ = answer.try_push(SocketAddr::new(ip, port));
        }
        if answer.is_empty() {
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                Refused,
            )));
        }
        Ok(answer)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, port: u16) -> HostPort {
        HostPort {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn urls_end_their_authority_where_the_connection_does() {
        // The forms that once reached another port than the one checked.
        let url = Url::parse("http://127.0.0.1:8081?:80/").unwrap();
        assert_eq!(url.at, at("127.0.0.1", 8081));
        assert_eq!(url.to_string(), "http://127.0.0.1:8081/?:80/");
        let url = Url::parse("http://127.0.0.1:8081#:80/").unwrap();
        assert_eq!(url.at, at("127.0.0.1", 8081));
        assert_eq!(url.path_and_query, "/");
        let url = Url::parse("HTTPS://Index.Example/a/b?q=1").unwrap();
        assert_eq!(
            (url.scheme, url.at),
            (Scheme::Https, at("index.example", 443))
        );
        assert_eq!(url.path_and_query, "/a/b?q=1");
        let url = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(url.at, at("::1", 8080));
        assert_eq!(url.to_string(), "http://[::1]:8080/x");
        for bad in [
            "http://127.0.0.1:80@127.0.0.1:8081/",
            "http://user@example.com/",
            "http://:80/",
            "http:///x",
            "ftp://example.com/",
            "/relative",
            "http://example.com:99999/",
            "http://exa mple.com/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connect_targets_need_a_port_and_no_userinfo() {
        assert_eq!(
            HostPort::parse("Index.Crates.io:443"),
            Ok(at("index.crates.io", 443))
        );
        assert_eq!(HostPort::parse("[::1]:8443"), Ok(at("::1", 8443)));
        assert_eq!(at("::1", 8443).to_string(), "[::1]:8443");
        for bad in [
            "host",
            ":443",
            "host:http",
            "a:80@127.0.0.1:22",
            "h:1/x",
            "h:70000",
        ] {
            assert!(HostPort::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_locations_resolve_against_the_url() {
        let base = Url::parse("https://reg.example/dl/a/b?x=1").unwrap();
        let join = |l: &str| base.join(l).map(|u| u.to_string());
        assert_eq!(
            join("https://s3.example/k").unwrap(),
            "https://s3.example/k"
        );
        assert_eq!(join("//s3.example/k").unwrap(), "https://s3.example/k");
        assert_eq!(join("/other").unwrap(), "https://reg.example/other");
        assert_eq!(join("c?y").unwrap(), "https://reg.example/dl/a/c?y");
        assert!(join("http://u:p@x.example/").is_err());
        assert!(join("file:///etc/passwd").is_err());
    }

    #[test]
    fn address_rules_know_loopback_and_link_local() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let rule = AddressRule::NOT_LINK_LOCAL;
        for refused in [
            "169.254.169.254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "febf::1",
        ] {
            assert!(!rule.allows(ip(refused)), "{refused}");
        }
        for allowed in ["127.0.0.1", "10.0.0.1", "::1", "fec0::1", "8.8.8.8"] {
            assert!(rule.allows(ip(allowed)), "{allowed}");
        }
        let public = AddressRule::allowing(&[ip("192.0.2.1")]);
        for refused in [
            "127.0.0.2",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "169.254.1.1",
        ] {
            assert!(!public.allows(ip(refused)), "{refused}");
        }
        assert!(AddressRule::allowing(&[ip("127.0.0.1")]).allows(ip("127.0.0.9")));
    }

    #[test]
    fn the_resolver_answers_only_addresses_the_rule_allows() {
        let upstream = client(Duration::from_secs(5));
        // A name, so the refusal comes from the resolver's answer, not the literal check.
        let url = Url::parse("http://localhost:9/").unwrap();
        let no_loopback = AddressRule {
            loopback: false,
            link_local: true,
        };
        let refused = upstream.send_to("GET", &url, &[], None, no_loopback);
        assert!(
            matches!(refused, Err(UpstreamError::AddressRefused { .. })),
            "{:?}",
            refused.err()
        );
    }

    fn client(timeout: Duration) -> Upstream {
        Upstream::new(&UpstreamOptions {
            timeout,
            proxy: None,
            own_address: None,
            forwarding: false,
        })
        .unwrap()
    }

    fn failure(result: Result<UpstreamResponse, UpstreamError>) -> Failure {
        match result {
            Err(UpstreamError::Failed { kind, .. }) => kind,
            Err(e) => panic!("not a failed request: {e}"),
            Ok(response) => panic!("an answer: {}", response.status),
        }
    }

    #[test]
    fn a_refused_connection_is_a_connect_failure() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/");
        let result = client(Duration::from_secs(5)).get(&url, &[], Redirects::SameOrigin);
        assert_eq!(failure(result), Failure::Connect);
    }

    #[test]
    fn an_upstream_that_never_answers_is_a_timeout() {
        // The kernel accepts the connection; nobody ever answers on it.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let started = Instant::now();
        let result = client(Duration::from_millis(300)).get(&url, &[], Redirects::SameOrigin);
        let Err(error) = result else {
            panic!("an answer from a silent listener")
        };
        assert!(
            matches!(
                error,
                UpstreamError::Failed {
                    kind: Failure::Timeout,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // The kind is in the words, ureq's error only in the source.
        let text = error.to_string();
        assert_eq!(text, format!("GET {url}: timed out"));
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(!text.contains(&source), "{text} / {source}");
    }

    #[test]
    fn failures_are_classified_by_variant() {
        use std::io;
        let tls = |e: rustls::Error| ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, e));
        for (error, kind) in [
            (
                ureq::Error::Timeout(ureq::Timeout::Global),
                Failure::Timeout,
            ),
            (ureq::Error::HostNotFound, Failure::Resolve),
            (
                ureq::Error::Io(io::Error::other(Unresolved(io::Error::other(
                    "no such name",
                )))),
                Failure::Resolve,
            ),
            (
                ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()),
                Failure::Connect,
            ),
            (tls(rustls::Error::DecryptError), Failure::Tls),
            (
                tls(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer,
                )),
                Failure::Tls,
            ),
            (ureq::Error::BodyExceedsLimit(10), Failure::TooLarge),
            (ureq::Error::ConnectProxyFailed("no".into()), Failure::Proxy),
            (ureq::Error::TooManyRedirects, Failure::Protocol),
            // Words that read like a timeout or TLS do not make one.
            (
                ureq::Error::Io(io::Error::other("certificate timed out")),
                Failure::Io,
            ),
        ] {
            assert_eq!(Failure::of(&error), kind, "{error}");
        }
    }

    #[test]
    fn authorization_stays_with_its_origin() {
        let headers = [("Authorization", "secret"), ("If-None-Match", "\"e\"")];
        assert_eq!(headers_for(&headers, true), headers);
        assert_eq!(headers_for(&headers, false), [("If-None-Match", "\"e\"")]);
        let lower = [("authorization", "secret")];
        assert!(headers_for(&lower, false).is_empty());
    }

    #[test]
    fn the_dns_cache_is_bounded() {
        let mut cache = DnsCache::default();
        for i in 0..MAX_DNS_ENTRIES * 3 {
            cache.insert(
                format!("host{i}.example"),
                vec![IpAddr::from([10, 0, 0, 1])],
            );
            assert!(cache.0.len() <= MAX_DNS_ENTRIES);
        }
        // The newest names are kept, the oldest went first.
        let newest = format!("host{}.example", MAX_DNS_ENTRIES * 3 - 1);
        assert!(cache.get(&newest).is_some());
        assert!(cache.get("host0.example").is_none());
    }
}
