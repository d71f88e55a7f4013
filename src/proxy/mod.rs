//! The overlay's front door: every accepted connection starts here.
//!
//! One listener serves both a sparse registry and an HTTP(S) forward proxy. This module
//! decides what a connection is: it terminates the listener's own TLS when there is
//! some, runs the HTTP loop with the router, and when the client asks to `CONNECT`,
//! either intercepts the tunnel (for registry hosts: answer 200, terminate TLS with a
//! leaf from the overlay's CA, and run the same HTTP loop and router inside), or passes
//! it through as raw bytes (any other host, on an allowed port). Absolute-form requests
//! (`GET http://host/path`) for intercepted hosts go to the router too; for other hosts
//! they are forwarded, on port 80 or an allowed port. The router never learns how a
//! request arrived. Where the proxy requires a credential (see `auth`), a `CONNECT` or
//! absolute-form request without one is answered 407 before anything else is done.
//!
//! The proxy relays for its clients, so it must not become their way into places only
//! the overlay's host can reach. Targets are parsed once ([`Url`], [`HostPort`]) and
//! the request goes to exactly the host and port that were checked; user information
//! in a target is refused; link-local destinations (cloud metadata) are refused for
//! forwards and tunnels, by the addresses a name resolves to. A destination that
//! cannot be reached gets one answer whatever the cause, so the proxy tells no client
//! which ports are open: the reason goes to the log. Forwarded answers stream to the
//! client whether or not they have a length.

mod halves;
mod tls_stream;
mod tunnel;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection};

use crate::auth::{self, Tokens};
use crate::http::{
    Body, ConnError, Connect, Handler, Limits, Request, RequestHead, Response, SMALL_BODY_LIMIT,
    Service, close_gently, serve_connection, write_response,
};
use crate::report::Report;
use crate::tls::InterceptTls;
use crate::upstream::{HostPort, Upstream, UpstreamError, Url};
use halves::IntoHalves;
use tls_stream::TlsStream;
use tunnel::TunnelError;

/// How long a passthrough tunnel may carry no bytes before it is closed.
const TUNNEL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Connections past `--max-connections` answered over TLS at once; more are closed.
const MAX_TLS_REFUSALS: usize = 16;
/// How long answering one of them may take, handshake included.
const TLS_REFUSAL_TIME: Duration = Duration::from_secs(5);

/// What proxy mode intercepts and allows.
pub(crate) struct ProxySettings {
    pub(crate) intercept: InterceptTls,
    /// Hosts whose tunnels the overlay terminates itself, lowercase.
    pub(crate) intercepted_hosts: Vec<String>,
    /// Ports a passthrough `CONNECT` may reach.
    pub(crate) allowed_ports: Vec<u16>,
    /// The client that forwards absolute-form requests for other hosts.
    pub(crate) forwarder: Arc<Upstream>,
    /// Tokens one of which proxy requests must carry in `Proxy-Authorization`;
    /// `None` lets any client that reaches the listener use the proxy.
    pub(crate) credentials: Option<Tokens>,
}

impl ProxySettings {
    fn intercepts(&self, host: &str) -> bool {
        self.intercepted_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }
}

pub(crate) struct Frontend {
    router: Arc<dyn Handler>,
    limits: Limits,
    /// The listener's own TLS; `None` with `--no-tls`.
    listener_tls: Option<Arc<ServerConfig>>,
    /// `None` with `--no-proxy`: `CONNECT` is refused.
    proxy: Option<ProxySettings>,
    /// TLS refusals under way (see `refuse`).
    tls_refusals: Arc<AtomicUsize>,
}

impl Frontend {
    pub(crate) fn new(
        router: Arc<dyn Handler>,
        limits: Limits,
        listener_tls: Option<Arc<ServerConfig>>,
        proxy: Option<ProxySettings>,
    ) -> Frontend {
        Frontend {
            router,
            limits,
            listener_tls,
            proxy,
            tls_refusals: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The HTTP loop on a client connection, then whatever its `CONNECT` asks for.
    fn serve_client<S: Read + Write + IntoHalves>(&self, stream: S, peer: &str) {
        let handler = ProxyRequests { frontend: self };
        match serve_connection(stream, &handler, &self.limits) {
            Ok(None) => {}
            Ok(Some(connect)) => self.connect(connect, peer),
            Err(e) => log::debug!("{peer}: {}", Report(&e)),
        }
    }

    fn connect<S: Read + Write + IntoHalves>(&self, mut connect: Connect<S>, peer: &str) {
        let authority = connect.head.target.clone();
        if let Some(response) = self.refuse_unauthenticated(&connect.head) {
            log::warn!("{peer}: CONNECT {authority}: proxy authentication failed");
            let _ = write_response(&mut connect.stream, response, false, true);
            return;
        }
        let refuse = |connect: &mut Connect<S>, status: u16, detail: &str| {
            log::warn!("{peer}: CONNECT {authority}: {detail}");
            let response = self.router.protocol_error(status, detail);
            let _ = write_response(&mut connect.stream, response, false, true);
        };
        let Some(proxy) = &self.proxy else {
            return refuse(
                &mut connect,
                405,
                "this overlay runs with --no-proxy: CONNECT is not served",
            );
        };
        let at = match HostPort::parse(&authority) {
            Ok(at) => at,
            Err(detail) => return refuse(&mut connect, 400, &detail),
        };
        if proxy.intercepts(&at.host) {
            return self.intercept(connect, proxy, &at.host, peer);
        }
        if !proxy.allowed_ports.contains(&at.port) {
            return refuse(
                &mut connect,
                403,
                &format!(
                    "CONNECT to port {} is not allowed (see --allow-connect-port)",
                    at.port
                ),
            );
        }
        let rule = proxy.forwarder.rule();
        if at.ip().is_some_and(|ip| !rule.allows(ip)) {
            return refuse(&mut connect, 403, &link_local_refusal(&at));
        }
        let far = match proxy.forwarder.proxy_for(&at) {
            Some(upstream_proxy) => tunnel::connect_via(upstream_proxy, &at),
            None => tunnel::connect(&at, rule),
        };
        let far = match far {
            Ok(far) => far,
            Err(TunnelError::Refused) => {
                return refuse(&mut connect, 403, &link_local_refusal(&at));
            }
            Err(TunnelError::Unreachable(e)) => {
                log::warn!("{peer}: CONNECT {authority}: {e}");
                return refuse(&mut connect, 502, &unreachable(&at));
            }
            Err(TunnelError::Proxy(detail)) => return refuse(&mut connect, 502, &detail),
        };
        if write_established(&mut connect.stream).is_err() {
            return;
        }
        log::debug!("{peer}: tunnel to {authority}");
        let result = connect
            .stream
            .into_halves()
            .and_then(|halves| tunnel::pump(halves, far, &connect.leftover, TUNNEL_IDLE_TIMEOUT));
        if let Err(e) = result {
            log::debug!("{peer}: tunnel to {authority} ended: {e}");
        }
    }

    /// The 407 for a proxy request (`CONNECT` or absolute-form) without an accepted
    /// `Proxy-Authorization`, when the proxy requires one; `None` lets it through.
    fn refuse_unauthenticated(&self, head: &RequestHead) -> Option<Response> {
        let credentials = self.proxy.as_ref()?.credentials.as_ref()?;
        let proxied = head.method == "CONNECT" || !head.target.starts_with('/');
        if !proxied {
            return None;
        }
        let refusal = credentials
            .check_proxy(head.header("proxy-authorization"))
            .err()?;
        Some(
            self.router
                .protocol_error(407, &refusal.to_string())
                .with_header("Proxy-Authenticate", auth::PROXY_CHALLENGE),
        )
    }

    /// Terminates the client's TLS for `host` and serves registry requests inside.
    fn intercept<S: Read + Write>(
        &self,
        mut connect: Connect<S>,
        proxy: &ProxySettings,
        host: &str,
        peer: &str,
    ) {
        if write_established(&mut connect.stream).is_err() {
            return;
        }
        let session = match ServerConnection::new(proxy.intercept.server_config(host)) {
            Ok(session) => session,
            Err(e) => return log::error!("{peer}: TLS setup for {host} failed: {e}"),
        };
        let inner = TlsStream::new(session, Prefixed::new(connect.leftover, connect.stream));
        let handler = ProxyRequests { frontend: self };
        match serve_connection(inner, &handler, &self.limits) {
            Ok(None) => {}
            Ok(Some(mut nested)) => {
                let response = self
                    .router
                    .protocol_error(405, "CONNECT inside an intercepted tunnel is not served");
                let _ = write_response(&mut nested.stream, response, false, true);
            }
            Err(e) => log_tls_failure(peer, host, &e),
        }
    }
}

impl Service for Frontend {
    fn serve(&self, stream: TcpStream) {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "unknown peer".to_string(), |a| a.to_string());
        match &self.listener_tls {
            None => self.serve_client(stream, &peer),
            Some(config) => match ServerConnection::new(Arc::clone(config)) {
                Ok(session) => self.serve_client(TlsStream::new(session, stream), &peer),
                Err(e) => log::error!("{peer}: TLS setup failed: {e}"),
            },
        }
    }

    fn refuse(&self, stream: TcpStream, why: &str) {
        let response = self
            .router
            .protocol_error(
                503,
                &format!("the server cannot take the connection: {why}; try again"),
            )
            .with_header("Retry-After", "1");
        let Some(config) = &self.listener_tls else {
            // The answer fits the socket's buffer: this does not wait for the client.
            let _ = write_response(&mut &stream, response, false, true);
            return close_gently(&stream);
        };
        // A TLS answer needs a handshake, which waits for the client: not on the accept
        // loop. Past the bound of refusals at once, closing is all a client is told.
        if self.tls_refusals.fetch_add(1, Ordering::SeqCst) >= MAX_TLS_REFUSALS {
            self.tls_refusals.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let slot = RefusalSlot(Arc::clone(&self.tls_refusals));
        let config = Arc::clone(config);
        let spawned = thread::Builder::new()
            .name("overlay-refuse".into())
            .spawn(move || {
                let _slot = slot;
                refuse_over_tls(config, stream, response);
            });
        if let Err(e) = spawned {
            log::error!("starting a thread to refuse a TLS connection failed: {e}");
        }
    }
}

/// A place among the TLS refusals under way, given back when dropped.
struct RefusalSlot(Arc<AtomicUsize>);

impl Drop for RefusalSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers a connection on the TLS listener with `response`, all within
/// [`TLS_REFUSAL_TIME`]: handshake, request head read off (so closing does not reset
/// the connection under the answer), answer, close.
fn refuse_over_tls(config: Arc<ServerConfig>, stream: TcpStream, response: Response) {
    let Ok(session) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = TlsStream::new(
        session,
        Deadline {
            stream,
            at: Instant::now() + TLS_REFUSAL_TIME,
        },
    );
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    if tls.conn.is_handshaking() {
        return;
    }
    let _ = write_response(&mut tls, response, false, true);
    tls.conn.send_close_notify();
    let _ = tls.flush();
    close_gently(&tls.sock.stream);
}

/// A socket whose reads and writes all end by one deadline.
struct Deadline {
    stream: TcpStream,
    at: Instant,
}

impl Deadline {
    fn left(&self) -> io::Result<Duration> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf)
    }
}

impl Write for Deadline {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

fn write_established<S: Write>(stream: &mut S) -> std::io::Result<()> {
    // RFC 9110 section 9.3.6: no Content-Length or body on a 2xx answer to CONNECT.
    stream.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
    stream.flush()
}

fn log_tls_failure(peer: &str, host: &str, error: &ConnError) {
    if client_refused_tls(error) {
        log::warn!(
            "{peer}: TLS with the client for {host} failed: {} (does the client trust the overlay's CA?)",
            Report(error)
        );
    } else {
        log::debug!(
            "{peer}: intercepted connection for {host} ended: {}",
            Report(error)
        );
    }
}

/// Whether an intercepted connection ended on a TLS failure about certificates: an
/// alert from the client (typically `unknown_ca` or `bad_certificate`, when it does not
/// trust the overlay's CA) or a certificate rustls refused. rustls's error arrives as
/// the inner error of the stream's `io::Error`.
fn client_refused_tls(error: &ConnError) -> bool {
    let ConnError::Io(io) = error else {
        return false;
    };
    let Some(tls) = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return false;
    };
    matches!(
        tls,
        rustls::Error::AlertReceived(_)
            | rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
    )
}

/// The one answer for a destination that cannot be reached, whatever the reason
/// (refused, timed out, unresolvable): a client learns nothing about which ports are
/// open. The reason goes to the log.
fn unreachable(at: &HostPort) -> String {
    format!("{at} cannot be reached through this proxy; the overlay's log has the reason")
}

fn link_local_refusal(at: &HostPort) -> String {
    format!(
        "{at} is or resolves to a link-local address (169.254.0.0/16, fe80::/10): the proxy does not go there"
    )
}

/// The handler for requests arriving at the proxy: absolute-form targets for
/// intercepted hosts are rewritten to origin-form and served by the router.
struct ProxyRequests<'a> {
    frontend: &'a Frontend,
}

/// What to do with a request target.
enum Target {
    /// Served by the router, with this origin-form target.
    Local(String),
    /// An absolute-form target for a host the overlay does not serve.
    Foreign(Url),
    /// An absolute-form target the proxy does not take, and why.
    Invalid(String),
}

/// Response headers a forwarded answer keeps; the rest are hop-by-hop or framing,
/// which the overlay's own response sets.
const FORWARDED_RESPONSE_HEADERS: [&str; 6] = [
    "content-type",
    "etag",
    "last-modified",
    "cache-control",
    "location",
    "www-authenticate",
];
/// Request headers not passed on: hop-by-hop ones (RFC 9110 section 7.6.1) and those
/// the forwarding client sets itself.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];
impl ProxyRequests<'_> {
    fn classify(&self, target: &str) -> Target {
        let absolute = ["http://", "https://"].iter().any(|scheme| {
            target
                .get(..scheme.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(scheme))
        });
        if !absolute {
            return Target::Local(target.to_string());
        }
        let url = match Url::parse(target) {
            Ok(url) => url,
            Err(detail) => return Target::Invalid(format!("`{target}`: {detail}")),
        };
        let intercepted = self
            .frontend
            .proxy
            .as_ref()
            .is_some_and(|p| p.intercepts(&url.at.host));
        if intercepted {
            Target::Local(url.path_and_query)
        } else {
            Target::Foreign(url)
        }
    }

    /// Why a request for another host cannot be forwarded, if it cannot.
    fn refuse_foreign(&self, url: &Url) -> Option<Response> {
        let port = url.at.port;
        let refusal = match &self.frontend.proxy {
            None => (
                405,
                "this overlay runs with --no-proxy: requests for other hosts are not forwarded"
                    .to_string(),
            ),
            Some(proxy) if port != 80 && !proxy.allowed_ports.contains(&port) => (
                403,
                format!("forwarding to port {port} is not allowed (see --allow-connect-port)"),
            ),
            Some(proxy)
                if url
                    .at
                    .ip()
                    .is_some_and(|ip| !proxy.forwarder.rule().allows(ip)) =>
            {
                (403, link_local_refusal(&url.at))
            }
            Some(_) => return None,
        };
        Some(self.frontend.router.protocol_error(refusal.0, &refusal.1))
    }

    /// Forwards a request for a host the overlay does not serve, and its answer back,
    /// streamed.
    fn forward(&self, request: &Request, url: &Url) -> Response {
        let Some(proxy) = &self.frontend.proxy else {
            unreachable!("refuse_foreign turns requests away without proxy mode")
        };
        let headers: Vec<(&str, &str)> = request
            .head
            .headers
            .iter()
            .filter(|(name, _)| !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)))
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let body = (!request.body.is_empty()).then_some(request.body.as_slice());
        let target = url.to_string();
        let answer = match proxy
            .forwarder
            .send(&request.head.method, &target, &headers, body)
        {
            Ok(answer) => answer,
            Err(UpstreamError::AddressRefused { .. }) => {
                return self
                    .frontend
                    .router
                    .protocol_error(403, &link_local_refusal(&url.at));
            }
            Err(e) => {
                log::warn!(
                    "forwarding {} {target}: {}",
                    request.head.method,
                    Report(&e)
                );
                return self
                    .frontend
                    .router
                    .protocol_error(502, &unreachable(&url.at));
            }
        };
        let kept: Vec<(&str, String)> = FORWARDED_RESPONSE_HEADERS
            .iter()
            .filter_map(|name| Some((*name, answer.header(name)?)))
            .collect();
        let status = answer.status;
        let body = match answer.content_length() {
            Some(len) => Body::Stream {
                reader: answer.into_reader(),
                len,
            },
            None => Body::Unsized(answer.into_reader()),
        };
        kept.into_iter()
            .fold(Response::new(status, body), |response, (name, value)| {
                response.with_header(name, value)
            })
    }
}

impl Handler for ProxyRequests<'_> {
    fn check_head(&self, head: &RequestHead, body_len: Option<u64>) -> Result<u64, Response> {
        if let Some(refusal) = self.frontend.refuse_unauthenticated(head) {
            return Err(refusal);
        }
        match self.classify(&head.target) {
            Target::Local(target) => {
                let head = RequestHead {
                    target,
                    ..head.clone()
                };
                self.frontend.router.check_head(&head, body_len)
            }
            // A forwarded body is held whole before it is sent on: small, as for any
            // request that is not a publish to the overlay itself.
            Target::Foreign(url) => self.refuse_foreign(&url).map_or(Ok(SMALL_BODY_LIMIT), Err),
            Target::Invalid(detail) => Err(self.frontend.router.protocol_error(400, &detail)),
        }
    }

    fn handle(&self, mut request: Request) -> Response {
        match self.classify(&request.head.target) {
            Target::Local(target) => {
                request.head.target = target;
                self.frontend.router.handle(request)
            }
            Target::Foreign(url) => self
                .refuse_foreign(&url)
                .unwrap_or_else(|| self.forward(&request, &url)),
            Target::Invalid(detail) => self.frontend.router.protocol_error(400, &detail),
        }
    }

    fn protocol_error(&self, status: u16, detail: &str) -> Response {
        self.frontend.router.protocol_error(status, detail)
    }
}

/// A stream whose first reads return bytes already taken off it.
struct Prefixed<S> {
    prefix: Vec<u8>,
    consumed: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    fn new(prefix: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed {
            prefix,
            consumed: 0,
            inner,
        }
    }
}

impl<S: Read> Read for Prefixed<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.prefix[self.consumed..];
        if rest.is_empty() {
            return self.inner.read(buf);
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.consumed += n;
        Ok(n)
    }
}

impl<S: Write> Write for Prefixed<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    /// Passed on whole: the intercepting TLS session writes its queued records in one
    /// call, and the default, which passes on the first buffer only, would send each
    /// record (a response larger than one record has several) in a socket write of its
    /// own.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_streams_pass_vectored_writes_on_whole() {
        let mut stream = Prefixed::new(Vec::new(), Vec::new());
        let parts = [io::IoSlice::new(b"head "), io::IoSlice::new(b"body")];
        assert_eq!(stream.write_vectored(&parts).unwrap(), 9);
        assert_eq!(stream.inner, b"head body");
    }

    #[test]
    fn prefixed_streams_replay_their_prefix_first() {
        let mut stream = Prefixed::new(b"ab".to_vec(), &b"cd"[..]);
        let mut all = String::new();
        stream.read_to_string(&mut all).unwrap();
        assert_eq!(all, "abcd");
    }

    #[test]
    fn tunnel_errors_leave_their_cause_to_source() {
        let unreachable = TunnelError::Unreachable(io::ErrorKind::ConnectionRefused.into());
        crate::report::assert_causes_once(&unreachable);
        assert_eq!(
            Report(&unreachable).to_string(),
            "cannot connect: connection refused"
        );
    }

    #[test]
    fn tls_failures_are_told_apart_by_rustls_variant() {
        use rustls::AlertDescription;
        let tls = |e: rustls::Error| ConnError::Io(io::Error::new(io::ErrorKind::InvalidData, e));
        for refused in [
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
            rustls::Error::AlertReceived(AlertDescription::BadCertificate),
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
            rustls::Error::NoCertificatesPresented,
        ] {
            assert!(client_refused_tls(&tls(refused.clone())), "{refused}");
        }
        for other in [
            tls(rustls::Error::DecryptError),
            tls(rustls::Error::General("certificate alert".into())),
            // Text that reads like a certificate failure is not one.
            ConnError::Io(io::Error::other("bad certificate alert")),
            ConnError::Io(io::ErrorKind::ConnectionReset.into()),
            ConnError::TimedOut("a request head"),
        ] {
            assert!(!client_refused_tls(&other), "{}", Report(&other));
        }
    }
}
