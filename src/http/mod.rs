//! A small, bounded HTTP/1.1 server: message types, one request loop, one listener.
//!
//! Why not a crate: the overlay must read requests from plain TCP and from TLS streams
//! it terminates itself inside a proxy `CONNECT`, with limits and timeouts on
//! everything a client controls. tiny_http can do neither (see the design notes in
//! docs/architecture.md), and an async stack is ruled out, so this module serves
//! HTTP/1.1 over any `Read + Write` with `httparse` doing the parsing. It knows nothing of
//! registries: it hands each [`Request`] to a [`Handler`] and writes back the
//! [`Response`]. The handler decides on every request head, before a body byte is read,
//! whether to take the request and how large a body it may carry; the loop only applies
//! that limit.
//!
//! Files: `conn` is the request loop of one connection (I/O, timeouts, lingering),
//! `head` the I/O-free parsing of a head and its framing, `server` the listener and its
//! connection threads, `drain` the count of requests in flight for a clean stop.

mod conn;
mod drain;
mod head;
mod server;

use std::fmt;
use std::io::Read;
use std::sync::Arc;

pub(crate) use conn::{ConnError, Connect, write_response};
pub use conn::{Limits, serve_connection};
pub(crate) use drain::{drain, resume};
pub(crate) use server::{Listening, READ_TICK, Server, ServerOptions, Service, close_gently};

/// The head of a request: everything before the body.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent: a path with query (`/a/b?q=1`) or, for proxy
    /// requests, an absolute URL.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first header named `name`, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path part of the target, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query part of the target, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// A complete request.
#[derive(Debug)]
pub struct Request {
    pub head: RequestHead,
    pub body: Vec<u8>,
}

/// A response body: bytes in memory, or a reader streamed to the client (crate
/// downloads, forwarded answers), so large bodies are never held whole.
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// Bytes shared with a cache, sent without a copy.
    Shared(Arc<[u8]>),
    Stream {
        reader: Box<dyn Read + Send>,
        len: u64,
    },
    /// A reader whose length is not known ahead: sent chunked to HTTP/1.1 clients,
    /// and to HTTP/1.0 ones until the connection closes.
    Unsized(Box<dyn Read + Send>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Body::Shared(bytes) => write!(f, "Shared({} bytes)", bytes.len()),
            Body::Stream { len, .. } => write!(f, "Stream({len} bytes)"),
            Body::Unsized(_) => f.write_str("Unsized"),
        }
    }
}

impl Body {
    /// The length, when it is known before the body is sent.
    fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(bytes) => Some(bytes.len() as u64),
            Body::Shared(bytes) => Some(bytes.len() as u64),
            Body::Stream { len, .. } => Some(*len),
            Body::Unsized(_) => None,
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, body: Body) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// The largest body a request may carry unless its handler expects an upload: room for
/// any small JSON document, and little enough that many clients sending bodies at once
/// cannot exhaust memory.
pub(crate) const SMALL_BODY_LIMIT: u64 = 64 * 1024;

/// What serves requests. The HTTP loop calls it; it never sees a socket.
pub trait Handler: Send + Sync {
    /// Decides on a request from its head alone, before any byte of its body is read.
    /// `body_len` is the announced length (`Some(0)` without a body), `None` for a
    /// chunked body. `Ok` gives the largest body accepted for this head: the loop
    /// answers 413 to a longer announced one and stops a chunked one at that length.
    /// `Err` refuses the request with its response (not allowed, too large, no such
    /// route), so the client is never asked for a body that would be thrown away.
    fn check_head(&self, head: &RequestHead, body_len: Option<u64>) -> Result<u64, Response>;

    /// Serves a complete request.
    fn handle(&self, request: Request) -> Response;

    /// The response for a request the HTTP layer itself refuses (malformed, too large),
    /// so errors reach clients in the handler's own format.
    fn protocol_error(&self, status: u16, detail: &str) -> Response;
}

/// The reason phrase for the status codes the overlay sends.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}
