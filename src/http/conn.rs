//! The request loop of one connection, generic over `Read + Write`.
//!
//! It reads a head with `httparse`, checks the framing (RFC 9112 section 6: one
//! `Content-Length`, or `Transfer-Encoding: chunked`, never both), answers
//! `Expect: 100-continue` only once the handler accepts the head, reads the body,
//! writes the handler's response and goes on while the connection is kept alive.
//! Every read is bounded in size and time: a client that sends too much or too slowly
//! is answered or dropped, never waited for forever. A `CONNECT` ends the loop and
//! hands the stream back to the caller, which decides what the tunnel becomes.
//!
//! The stream's read timeout is the loop's clock tick: a read that times out is not an
//! error by itself, only once the current deadline has passed.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::{Body, Handler, Request, RequestHead, Response, reason_phrase};

/// Limits on what one connection may send and how slowly.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest request head (request line and headers), in bytes.
    pub max_head_len: usize,
    /// The largest request body, in bytes.
    pub max_body_len: u64,
    /// How long a client has to send a whole request head.
    pub head_timeout: Duration,
    /// How long a kept-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// How long a body upload may stall without a byte arriving.
    pub body_stall_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_len: 64 * 1024,
            // A publish: a 10 MiB crate, 1 MiB of metadata and two length prefixes.
            max_body_len: 11 * 1024 * 1024 + 8,
            head_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_stall_timeout: Duration::from_secs(30),
        }
    }
}

/// Most headers a request may carry.
const MAX_HEADERS: usize = 100;
/// A refused request's body up to this size is read and thrown away so the connection
/// stays usable; a larger one closes the connection after the response.
const MAX_DISCARD: u64 = 64 * 1024;

/// Why a connection ended other than by the client closing it cleanly.
#[derive(Debug)]
pub enum ConnError {
    Io(io::Error),
    TimedOut(&'static str),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "connection error: {e}"),
            ConnError::TimedOut(what) => write!(f, "timed out waiting for {what}"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// A request the HTTP layer refuses itself, with its status and reason.
struct Refusal {
    status: u16,
    detail: String,
}

fn refuse(status: u16, detail: impl Into<String>) -> Refusal {
    Refusal {
        status,
        detail: detail.into(),
    }
}

/// How the body of a request is framed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A parsed head and what the loop needs to know about it.
struct Head {
    head: RequestHead,
    framing: Framing,
    keep_alive: bool,
    expects_continue: bool,
}

/// A `CONNECT` request, handed back to the caller with the stream, unanswered: what to
/// do with a tunnel (intercept, pass through, refuse) is the proxy's business.
pub struct Connect<S> {
    pub head: RequestHead,
    pub stream: S,
    /// Bytes the client sent after the `CONNECT` head, already read off the stream.
    pub leftover: Vec<u8>,
}

/// Serves requests on `stream` until the client closes it, an error occurs, the
/// connection idles out or the client asks to `CONNECT`.
pub fn serve_connection<S: Read + Write>(
    stream: S,
    handler: &dyn Handler,
    limits: &Limits,
) -> Result<Option<Connect<S>>, ConnError> {
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        limits,
    };
    loop {
        let head = match conn.read_head()? {
            None => return Ok(None),
            Some(Ok(head)) => head,
            Some(Err(refusal)) => {
                let response = handler.protocol_error(refusal.status, &refusal.detail);
                conn.write_response(response, false, true)?;
                return Ok(None);
            }
        };
        if head.head.method == "CONNECT" {
            return Ok(Some(Connect {
                head: head.head,
                stream: conn.stream,
                leftover: conn.buf,
            }));
        }
        if !conn.serve_one(head, handler)? {
            return Ok(None);
        }
    }
}

struct Conn<'a, S> {
    stream: S,
    /// Bytes read but not yet consumed: the start of the next request.
    buf: Vec<u8>,
    limits: &'a Limits,
}

impl<S: Read + Write> Conn<'_, S> {
    /// Serves one request whose head has been read. Returns whether to keep going.
    fn serve_one(&mut self, head: Head, handler: &dyn Handler) -> Result<bool, ConnError> {
        let is_head_method = head.head.method == "HEAD";
        let body_len = match head.framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            Framing::Chunked => None,
        };
        let early = match body_len {
            Some(n) if n > self.limits.max_body_len => Some(handler.protocol_error(
                413,
                &format!(
                    "request body of {n} bytes is larger than the limit of {} bytes",
                    self.limits.max_body_len
                ),
            )),
            _ => handler.check_head(&head.head, body_len),
        };
        if let Some(response) = early {
            // The body was never asked for (no 100 Continue was sent) or is small
            // enough to skip; otherwise the connection cannot be reused.
            let reusable = head.keep_alive
                && match head.framing {
                    Framing::None => true,
                    Framing::Length(n) if !head.expects_continue && n <= MAX_DISCARD => {
                        self.read_body(Framing::Length(n)).is_ok()
                    }
                    _ => false,
                };
            self.write_response(response, is_head_method, !reusable)?;
            return Ok(reusable);
        }
        if head.expects_continue && head.framing != Framing::None {
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            self.stream.flush()?;
        }
        let body = match self.read_body(head.framing)? {
            Ok(body) => body,
            Err(refusal) => {
                let response = handler.protocol_error(refusal.status, &refusal.detail);
                self.write_response(response, is_head_method, true)?;
                return Ok(false);
            }
        };
        let request = Request {
            head: head.head,
            body,
        };
        let response = handler.handle(request);
        self.write_response(response, is_head_method, !head.keep_alive)?;
        Ok(head.keep_alive)
    }

    /// Reads more bytes into the buffer, waiting until `deadline` at most. Returns
    /// `false` at end of stream.
    fn read_more(
        &mut self,
        deadline: Instant,
        waiting_for: &'static str,
    ) -> Result<bool, ConnError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if is_timeout(&e) => {
                    if Instant::now() >= deadline {
                        return Err(ConnError::TimedOut(waiting_for));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads the next request head. `None` when the client closed the connection
    /// between requests.
    fn read_head(&mut self) -> Result<Option<Result<Head, Refusal>>, ConnError> {
        let idle_deadline = Instant::now() + self.limits.idle_timeout;
        let mut head_deadline = None;
        loop {
            if !self.buf.is_empty() {
                head_deadline.get_or_insert_with(|| Instant::now() + self.limits.head_timeout);
                match parse_head(&self.buf, self.limits.max_head_len) {
                    Ok(Some((head, len))) => {
                        self.buf.drain(..len);
                        return Ok(Some(Ok(head)));
                    }
                    Ok(None) => {}
                    Err(refusal) => return Ok(Some(Err(refusal))),
                }
            }
            let deadline = head_deadline.unwrap_or(idle_deadline);
            let waiting_for = if head_deadline.is_some() {
                "a request head"
            } else {
                "a request"
            };
            match self.read_more(deadline, waiting_for) {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() => return Ok(None),
                Ok(false) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                // An idle keep-alive connection that times out is closed quietly.
                Err(ConnError::TimedOut(_)) if head_deadline.is_none() => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads a body as framed. The inner error is a refusal to answer with.
    fn read_body(&mut self, framing: Framing) -> Result<Result<Vec<u8>, Refusal>, ConnError> {
        match framing {
            Framing::None => Ok(Ok(Vec::new())),
            Framing::Length(n) => {
                // `n` was checked against the body limit before the body was read.
                let n = n as usize;
                while self.buf.len() < n {
                    self.read_body_bytes()?;
                }
                Ok(Ok(self.buf.drain(..n).collect()))
            }
            Framing::Chunked => self.read_chunked(),
        }
    }

    fn read_body_bytes(&mut self) -> Result<(), ConnError> {
        let deadline = Instant::now() + self.limits.body_stall_timeout;
        if self.read_more(deadline, "the request body")? {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::UnexpectedEof).into())
        }
    }

    fn read_chunked(&mut self) -> Result<Result<Vec<u8>, Refusal>, ConnError> {
        let mut body = Vec::new();
        loop {
            let (offset, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete(found)) => break found,
                    Ok(httparse::Status::Partial) if self.buf.len() > 1024 => {
                        return Ok(Err(refuse(400, "malformed chunk size line")));
                    }
                    Ok(httparse::Status::Partial) => self.read_body_bytes()?,
                    Err(_) => return Ok(Err(refuse(400, "malformed chunk size line"))),
                }
            };
            self.buf.drain(..offset);
            if size == 0 {
                return Ok(self.skip_trailers()?.map(|()| body));
            }
            if body.len() as u64 + size > self.limits.max_body_len {
                return Ok(Err(refuse(
                    413,
                    format!(
                        "request body is larger than the limit of {} bytes",
                        self.limits.max_body_len
                    ),
                )));
            }
            let size = size as usize;
            while self.buf.len() < size + 2 {
                self.read_body_bytes()?;
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Ok(Err(refuse(400, "chunk data not followed by CRLF")));
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }

    /// Skips the trailer section after the last chunk, up to the empty line.
    fn skip_trailers(&mut self) -> Result<Result<(), Refusal>, ConnError> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                self.buf.drain(..end + 2);
                if end == 0 {
                    return Ok(Ok(()));
                }
                continue;
            }
            if self.buf.len() > self.limits.max_head_len {
                return Ok(Err(refuse(431, "chunked trailers too large")));
            }
            self.read_body_bytes()?;
        }
    }

    fn write_response(
        &mut self,
        response: Response,
        is_head_method: bool,
        close: bool,
    ) -> Result<(), ConnError> {
        Ok(write_response(
            &mut self.stream,
            response,
            is_head_method,
            close,
        )?)
    }
}

/// Writes a response with its framing headers. `close` adds `Connection: close`.
pub fn write_response<W: Write>(
    stream: &mut W,
    response: Response,
    is_head_method: bool,
    close: bool,
) -> io::Result<()> {
    let status = response.status;
    // RFC 9110 section 6.4.1: 1xx, 204 and 304 responses never have a body.
    let bodiless_status = status < 200 || status == 204 || status == 304;
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !bodiless_status {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !bodiless_status && !is_head_method {
        match response.body {
            Body::Empty => {}
            Body::Bytes(bytes) => stream.write_all(&bytes)?,
            Body::Stream { mut reader, len } => {
                let copied = io::copy(&mut reader, stream)?;
                if copied != len {
                    // The length was promised in the head; the connection cannot
                    // carry on after a short body.
                    return Err(io::Error::other(format!(
                        "response body ended after {copied} of {len} bytes"
                    )));
                }
            }
        }
    }
    stream.flush()
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Parses a request head at the start of `buf`. `Ok(None)` when more bytes are needed.
fn parse_head(buf: &[u8], max_head_len: usize) -> Result<Option<(Head, usize)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > max_head_len => {
            return Err(refuse(431, "request head too large"));
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_head_len => {
            return Err(refuse(431, "request head too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(
                431,
                format!("more than {MAX_HEADERS} request headers"),
            ));
        }
        Err(e) => return Err(refuse(400, format!("malformed request: {e}"))),
    };
    let method = parsed.method.unwrap_or_default().to_string();
    let target = parsed.path.unwrap_or_default().to_string();
    let http10 = parsed.version == Some(0);
    let mut fields = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| refuse(400, format!("header {} is not UTF-8", header.name)))?;
        fields.push((header.name.to_string(), value.trim().to_string()));
    }
    let head = RequestHead {
        method,
        target,
        headers: fields,
    };
    let framing = framing(&head)?;
    let connection = head.header("connection").unwrap_or("").to_ascii_lowercase();
    let has_token = |token: &str| connection.split(',').any(|t| t.trim() == token);
    let keep_alive = if http10 {
        has_token("keep-alive")
    } else {
        !has_token("close")
    };
    let expects_continue = head
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    Ok(Some((
        Head {
            head,
            framing,
            keep_alive,
            expects_continue,
        },
        len,
    )))
}

/// Decides how the body is framed, refusing the ambiguous cases that enable request
/// smuggling (RFC 9112 section 6.3).
fn framing(head: &RequestHead) -> Result<Framing, Refusal> {
    let named = |name: &str| {
        head.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let transfer_encodings = named("transfer-encoding");
    let lengths = named("content-length");
    if !transfer_encodings.is_empty() {
        if !lengths.is_empty() {
            return Err(refuse(
                400,
                "both Content-Length and Transfer-Encoding sent",
            ));
        }
        let codings: Vec<String> = transfer_encodings
            .iter()
            .flat_map(|v| v.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if codings != ["chunked"] {
            return Err(refuse(
                501,
                format!(
                    "unsupported transfer coding `{}`: only `chunked` is accepted",
                    transfer_encodings.join(", ")
                ),
            ));
        }
        return Ok(Framing::Chunked);
    }
    match lengths.as_slice() {
        [] => Ok(Framing::None),
        [one] => one
            .parse::<u64>()
            .ok()
            .filter(|_| one.bytes().all(|b| b.is_ascii_digit()))
            .map(Framing::Length)
            .ok_or_else(|| refuse(400, format!("invalid Content-Length `{one}`"))),
        _ => Err(refuse(400, "more than one Content-Length header")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::Mutex;

    /// An in-memory connection: reads come from `input`, writes collect in `output`.
    struct Pipe {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Echoes the method, target and body; refuses heads whose target is `/refuse`.
    #[derive(Default)]
    struct Echo {
        seen: Mutex<Vec<String>>,
    }

    impl Handler for Echo {
        fn check_head(&self, head: &RequestHead, _: Option<u64>) -> Option<Response> {
            (head.target == "/refuse").then(|| self.protocol_error(403, "refused"))
        }
        fn handle(&self, request: Request) -> Response {
            let text = format!(
                "{} {} {}",
                request.head.method,
                request.head.target,
                String::from_utf8_lossy(&request.body)
            );
            self.seen.lock().unwrap().push(text.clone());
            Response::new(200, Body::Bytes(text.into_bytes()))
        }
        fn protocol_error(&self, status: u16, detail: &str) -> Response {
            Response::new(status, Body::Bytes(detail.as_bytes().to_vec()))
        }
    }

    fn run(input: &[u8]) -> (String, Vec<String>) {
        let echo = Echo::default();
        let mut pipe = Pipe {
            input: Cursor::new(input.to_vec()),
            output: Vec::new(),
        };
        let _ = serve_connection(&mut pipe, &echo, &Limits::default());
        let seen = echo.seen.into_inner().unwrap();
        (String::from_utf8_lossy(&pipe.output).into_owned(), seen)
    }

    #[test]
    fn serves_pipelined_keep_alive_requests() {
        let (out, seen) = run(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPUT /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\n\r\n");
        assert_eq!(seen, ["GET /a ", "PUT /b abc", "GET /c "]);
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3);
    }

    #[test]
    fn decodes_chunked_bodies() {
        let (_, seen) = run(b"PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n");
        assert_eq!(seen, ["PUT /u abcde"]);
    }

    #[test]
    fn answers_expect_continue_only_when_accepted() {
        let (out, seen) =
            run(b"PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok");
        assert!(
            out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"),
            "{out}"
        );
        assert_eq!(seen, ["PUT /u ok"]);
        let (out, seen) =
            run(b"PUT /refuse HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok");
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
        assert!(out.contains("Connection: close"));
        assert!(seen.is_empty());
    }

    #[test]
    fn head_requests_and_304_have_no_body() {
        let (out, _) = run(b"HEAD /x HTTP/1.1\r\n\r\n");
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        assert!(out.contains("Content-Length: 8"));
    }

    #[test]
    fn refuses_ambiguous_framing() {
        for input in [
            &b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
        ] {
            let (out, seen) = run(input);
            assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
            assert!(seen.is_empty());
        }
        let (out, _) = run(b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 501 "), "{out}");
    }

    #[test]
    fn refuses_oversized_heads_and_bodies() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(vec![b'a'; 70 * 1024]);
        let (out, _) = run(&big);
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        let (out, _) = run(b"PUT / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        let many: String = (0..150).map(|i| format!("X{i}: 1\r\n")).collect();
        let (out, _) = run(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    }

    #[test]
    fn http10_closes_by_default() {
        let (out, seen) = run(b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n");
        assert_eq!(seen, ["GET /a "]);
        assert!(out.contains("Connection: close"));
    }
}
