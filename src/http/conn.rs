//! The request loop of one connection, generic over `Read + Write`.
//!
//! It reads a head with `httparse`, checks the framing (RFC 9112 section 6: one
//! `Content-Length`, or `Transfer-Encoding: chunked`, never both), answers
//! `Expect: 100-continue` only once the handler accepts the head, reads the body up to
//! the length the handler accepts for that head, writes the handler's response and goes
//! on while the connection is kept alive. Every read is bounded in size and time: a
//! client that sends too much or too slowly is answered or dropped, never waited for
//! forever. A `CONNECT` ends the loop and
//! hands the stream back to the caller, which decides what the tunnel becomes.
//!
//! Whatever the loop refuses is answered before the connection closes: a request that
//! is too large, malformed, incomplete or too slow gets its status (413, 431, 414, 400,
//! 501, 408) in the handler's error format, and what the client may still be sending is
//! read and thrown away, up to a bound, so that closing does not reset the connection
//! under an answer the client has not read yet (RFC 9112 section 9.6). A panic in the
//! handler becomes a 500 and closes only this connection.
//!
//! The stream's read timeout is the loop's clock tick: a read that times out is not an
//! error by itself, only once the current deadline has passed.
//!
//! A response body of unknown length is streamed: chunked to an HTTP/1.1 client, and to
//! an HTTP/1.0 one (which knows no chunked coding) delimited by closing the connection
//! (RFC 9112 section 6.3).

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use super::drain::{self, InFlight};
use super::head::{Framing, Head, Refusal, parse_head, refuse};
use super::{Body, Handler, Request, RequestHead, Response, reason_phrase};

/// Limits on what one connection may send and how slowly.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest request head (request line and headers), in bytes.
    pub max_head_len: usize,
    /// The longest request target (path and query, or an absolute URL), in bytes.
    pub max_target_len: usize,
    /// How long a client has to send a whole request head.
    pub head_timeout: Duration,
    /// How long a kept-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// How long a body upload may stall without a byte arriving.
    pub body_stall_timeout: Duration,
    /// How long a whole body upload may take.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_len: 64 * 1024,
            max_target_len: 8 * 1024,
            head_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_stall_timeout: Duration::from_secs(30),
            // A publish of 11 MiB in 10 minutes is about 19 KiB/s.
            body_timeout: Duration::from_secs(600),
        }
    }
}

/// A refused request's body up to this size is read and thrown away so the connection
/// stays usable; a larger one closes the connection after the response.
const MAX_DISCARD: u64 = 64 * 1024;
/// Before a connection closes after a refusal, at most this much of what the client
/// still sends is read and thrown away ...
const LINGER_MAX_BYTES: u64 = 32 * 1024 * 1024;
/// ... for at most this long ...
const LINGER_MAX_TIME: Duration = Duration::from_secs(5);
/// ... and only while bytes keep coming. Not shorter: a sender on a loaded machine can
/// pause for over a second, and a close while its bytes still arrive resets the
/// connection under the answer (the suspected cause of a rare test failure on two
/// loaded cores, at 1 s). nginx waits 5 s (`lingering_timeout`); the 5 s bound above
/// holds either way.
const LINGER_QUIET: Duration = Duration::from_secs(2);

/// Why a connection ended other than by the client closing it cleanly.
#[derive(Debug)]
pub enum ConnError {
    Io(io::Error),
    TimedOut(&'static str),
    /// The client closed its side in the middle of a request.
    Incomplete(&'static str),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Io(_) => f.write_str("connection error"),
            ConnError::TimedOut(what) => write!(f, "timed out waiting for {what}"),
            ConnError::Incomplete(what) => {
                write!(
                    f,
                    "the client closed the connection in the middle of {what}"
                )
            }
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnError::Io(e) => Some(e),
            ConnError::TimedOut(_) | ConnError::Incomplete(_) => None,
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// What the client may still send when the server closes the connection early.
#[derive(Clone, Copy, Debug)]
enum Pending {
    /// Nothing: the request was read whole, or the client stopped sending.
    Nothing,
    /// The rest of a body of this many bytes (counted from the end of the head).
    Bytes(u64),
    /// An unknown amount: a chunked body, or the rest of a refused head.
    Unknown,
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
        body_deadline: Instant::now(),
        http10: false,
    };
    loop {
        let head = match conn.read_head() {
            Ok(None) => return Ok(None),
            Ok(Some(Ok(head))) => head,
            Ok(Some(Err(refusal))) => {
                conn.refuse(handler, refusal, false, Pending::Unknown)?;
                return Ok(None);
            }
            Err(e) => {
                conn.answer_failure(handler, &e, false);
                return Err(e);
            }
        };
        if head.head.method == "CONNECT" {
            return Ok(Some(Connect {
                head: head.head,
                stream: conn.stream,
                leftover: conn.buf,
            }));
        }
        let _in_flight = InFlight::enter();
        // During a shutdown, the request under way is the connection's last.
        if !conn.serve_one(head, handler)? || drain::draining() {
            return Ok(None);
        }
    }
}

/// Runs handler code; a panic is logged and becomes `None`, so one request's bug
/// costs only its own connection.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!("a panic while {what}: {message}; answering 500");
            None
        }
    }
}

fn internal_error(handler: &dyn Handler) -> Response {
    handler.protocol_error(
        500,
        "internal error while serving the request; the server log has the details",
    )
}

struct Conn<'a, S> {
    stream: S,
    /// Bytes read but not yet consumed: the start of the next request.
    buf: Vec<u8>,
    limits: &'a Limits,
    /// When the body being read must be complete.
    body_deadline: Instant,
    /// The request being answered is HTTP/1.0.
    http10: bool,
}

impl<S: Read + Write> Conn<'_, S> {
    /// Serves one request whose head has been read. Returns whether to keep going.
    fn serve_one(&mut self, head: Head, handler: &dyn Handler) -> Result<bool, ConnError> {
        let is_head_method = head.head.method == "HEAD";
        self.http10 = head.http10;
        let body_len = match head.framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            Framing::Chunked => None,
        };
        // The handler decides on the head alone; the body limit is its to give, so a
        // request that is refused, or too large for what it is, costs no body read.
        let decision = guarded("checking a request head", || {
            handler.check_head(&head.head, body_len)
        })
        .unwrap_or_else(|| Err(internal_error(handler)))
        .and_then(|max_body_len| match body_len {
            Some(n) if n > max_body_len => Err(handler.protocol_error(
                413,
                &format!(
                    "request body of {n} bytes is larger than the limit of {max_body_len} bytes"
                ),
            )),
            _ => Ok(max_body_len),
        });
        let max_body_len = match decision {
            Ok(max_body_len) => max_body_len,
            Err(response) => return self.refuse_early(head, response, is_head_method),
        };
        if head.expects_continue && head.framing != Framing::None {
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            self.stream.flush()?;
        }
        let body = match self.read_body(head.framing, max_body_len) {
            Ok(Ok(body)) => body,
            Ok(Err(refusal)) => {
                self.refuse(handler, refusal, is_head_method, Pending::Unknown)?;
                return Ok(false);
            }
            Err(e) => {
                self.answer_failure(handler, &e, is_head_method);
                return Err(e);
            }
        };
        let keep_alive = head.keep_alive;
        let request = Request {
            head: head.head,
            body,
        };
        match guarded("serving a request", || handler.handle(request)) {
            Some(response) => self.write_response(response, is_head_method, !keep_alive),
            None => {
                self.write_response(internal_error(handler), is_head_method, true)?;
                Ok(false)
            }
        }
    }

    /// Answers a request refused before its body was read. A small body the client is
    /// sending anyway is skipped and the connection kept; otherwise it closes.
    fn refuse_early(
        &mut self,
        head: Head,
        response: Response,
        is_head_method: bool,
    ) -> Result<bool, ConnError> {
        let skippable = match head.framing {
            Framing::None => true,
            // The body was never asked for when the client waits for 100 Continue.
            Framing::Length(n) => !head.expects_continue && n <= MAX_DISCARD,
            Framing::Chunked => false,
        };
        if head.keep_alive && skippable {
            if let Err(e) = self.read_body(head.framing, MAX_DISCARD) {
                let _ = self.write_response(response, is_head_method, true);
                return Err(e);
            }
            self.write_response(response, is_head_method, false)?;
            return Ok(true);
        }
        let pending = match head.framing {
            Framing::None => Pending::Nothing,
            Framing::Length(n) => Pending::Bytes(n),
            Framing::Chunked => Pending::Unknown,
        };
        self.close_with(response, is_head_method, pending)?;
        Ok(false)
    }

    /// Answers a refusal and closes the connection.
    fn refuse(
        &mut self,
        handler: &dyn Handler,
        refusal: Refusal,
        is_head_method: bool,
        pending: Pending,
    ) -> Result<(), ConnError> {
        log::debug!("refusing a request: {} {}", refusal.status, refusal.detail);
        let response = handler.protocol_error(refusal.status, &refusal.detail);
        self.close_with(response, is_head_method, pending)
    }

    /// Writes a last response, then reads off what the client may still be sending.
    fn close_with(
        &mut self,
        response: Response,
        is_head_method: bool,
        pending: Pending,
    ) -> Result<(), ConnError> {
        self.write_response(response, is_head_method, true)?;
        self.linger(pending);
        Ok(())
    }

    /// Tells a client whose request could not be read whole why, when it can still
    /// listen: 408 for a timeout, 400 for a request cut short. Best effort.
    fn answer_failure(&mut self, handler: &dyn Handler, error: &ConnError, is_head_method: bool) {
        let status = match error {
            ConnError::TimedOut(_) => 408,
            ConnError::Incomplete(_) => 400,
            ConnError::Io(_) => return,
        };
        log::debug!("refusing a request: {status} {error}");
        let response = handler.protocol_error(status, &error.to_string());
        let _ = self.write_response(response, is_head_method, true);
    }

    /// Reads and throws away what the client may still send before the connection is
    /// closed: closing a socket with unread bytes resets it, and a reset can destroy
    /// the answer before the client reads it. Stops at the end of the stream, once the
    /// pending body is consumed, when the client goes quiet, or at the byte and time
    /// bounds.
    fn linger(&mut self, pending: Pending) {
        let mut remaining = match pending {
            Pending::Nothing => return,
            Pending::Bytes(n) => n,
            Pending::Unknown => u64::MAX,
        };
        remaining = remaining.saturating_sub(self.buf.len() as u64);
        self.buf.clear();
        let start = Instant::now();
        let mut last_byte = start;
        let mut discarded = 0u64;
        let mut chunk = [0u8; 16 * 1024];
        while remaining > 0 && discarded < LINGER_MAX_BYTES && start.elapsed() < LINGER_MAX_TIME {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    remaining = remaining.saturating_sub(n as u64);
                    discarded += n as u64;
                    last_byte = Instant::now();
                }
                Err(e) if is_timeout(&e) => {
                    if last_byte.elapsed() >= LINGER_QUIET {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
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
    /// between requests, or left it idle too long.
    fn read_head(&mut self) -> Result<Option<Result<Head, Refusal>>, ConnError> {
        let idle_deadline = Instant::now() + self.limits.idle_timeout;
        let mut head_deadline = None;
        // Parsing starts over on every attempt, so it is tried only when the new bytes
        // can change the outcome: a line ended, or a limit was crossed. A client that
        // trickles its head byte by byte then costs one parse per line, not per byte.
        let mut parse_now = !self.buf.is_empty();
        loop {
            if parse_now {
                match parse_head(&self.buf, self.limits) {
                    Ok(Some((head, len))) => {
                        self.buf.drain(..len);
                        return Ok(Some(Ok(head)));
                    }
                    Ok(None) => {}
                    Err(refusal) => return Ok(Some(Err(refusal))),
                }
            }
            if !self.buf.is_empty() {
                let deadline =
                    *head_deadline.get_or_insert_with(|| Instant::now() + self.limits.head_timeout);
                // A client that keeps sending must still finish in time.
                if Instant::now() >= deadline {
                    return Err(ConnError::TimedOut("a request head"));
                }
            }
            let deadline = head_deadline.unwrap_or(idle_deadline);
            let waiting_for = if head_deadline.is_some() {
                "a request head"
            } else {
                "a request"
            };
            let before = self.buf.len();
            match self.read_more(deadline, waiting_for) {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() => return Ok(None),
                Ok(false) => return Err(ConnError::Incomplete("a request head")),
                // An idle keep-alive connection that times out is closed quietly.
                Err(ConnError::TimedOut(_)) if head_deadline.is_none() => return Ok(None),
                Err(e) => return Err(e),
            }
            let crossed = |limit: usize| before <= limit && self.buf.len() > limit;
            parse_now = before == 0
                || self.buf[before..].contains(&b'\n')
                || crossed(self.limits.max_target_len)
                || crossed(self.limits.max_head_len);
        }
    }

    /// Reads a body as framed, of at most `max_len` bytes. The inner error is a refusal
    /// to answer with.
    fn read_body(
        &mut self,
        framing: Framing,
        max_len: u64,
    ) -> Result<Result<Vec<u8>, Refusal>, ConnError> {
        self.body_deadline = Instant::now() + self.limits.body_timeout;
        match framing {
            Framing::None => Ok(Ok(Vec::new())),
            Framing::Length(n) => {
                // `n` was checked against `max_len` before the body was read.
                let n = n as usize;
                while self.buf.len() < n {
                    self.read_body_bytes()?;
                }
                Ok(Ok(self.buf.drain(..n).collect()))
            }
            Framing::Chunked => self.read_chunked(max_len),
        }
    }

    fn read_body_bytes(&mut self) -> Result<(), ConnError> {
        const WHAT: &str = "the request body";
        let stall_deadline = Instant::now() + self.limits.body_stall_timeout;
        if !self.read_more(stall_deadline.min(self.body_deadline), WHAT)? {
            return Err(ConnError::Incomplete(WHAT));
        }
        if Instant::now() >= self.body_deadline {
            return Err(ConnError::TimedOut(WHAT));
        }
        Ok(())
    }

    fn read_chunked(&mut self, max_len: u64) -> Result<Result<Vec<u8>, Refusal>, ConnError> {
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
            if (body.len() as u64).saturating_add(size) > max_len {
                return Ok(Err(refuse(
                    413,
                    format!("request body is larger than the limit of {max_len} bytes"),
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

    /// Skips the trailer section after the last chunk, up to the empty line. The
    /// section as a whole is bounded like a head.
    fn skip_trailers(&mut self) -> Result<Result<(), Refusal>, ConnError> {
        let mut skipped = 0;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                self.buf.drain(..end + 2);
                if end == 0 {
                    return Ok(Ok(()));
                }
                skipped += end + 2;
            } else {
                if skipped + self.buf.len() > self.limits.max_head_len {
                    return Ok(Err(refuse(431, "chunked trailers too large")));
                }
                self.read_body_bytes()?;
            }
            if skipped > self.limits.max_head_len {
                return Ok(Err(refuse(431, "chunked trailers too large")));
            }
        }
    }

    /// Writes a response; returns whether the connection stays open after it.
    fn write_response(
        &mut self,
        response: Response,
        is_head_method: bool,
        close: bool,
    ) -> Result<bool, ConnError> {
        Ok(write_framed(
            &mut self.stream,
            response,
            is_head_method,
            self.http10,
            close,
        )?)
    }
}

/// Writes a response with its framing headers, to an HTTP/1.1 client. `close` adds
/// `Connection: close`.
pub(crate) fn write_response<W: Write>(
    stream: &mut W,
    response: Response,
    is_head_method: bool,
    close: bool,
) -> io::Result<()> {
    write_framed(stream, response, is_head_method, false, close).map(|_| ())
}

/// Writes a response with its framing headers. `close` adds `Connection: close`, and
/// so does a body of unknown length for an HTTP/1.0 client, which is delimited by the
/// close. Returns whether the connection stays open.
fn write_framed<W: Write>(
    stream: &mut W,
    response: Response,
    is_head_method: bool,
    http10: bool,
    close: bool,
) -> io::Result<bool> {
    let status = response.status;
    // RFC 9110 section 6.4.1: 1xx, 204 and 304 responses never have a body.
    let bodiless_status = status < 200 || status == 204 || status == 304;
    let has_body = !bodiless_status && !is_head_method;
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut close = close;
    if !bodiless_status {
        match response.body.len() {
            Some(len) => head.push_str(&format!("Content-Length: {len}\r\n")),
            // A HEAD answer's headers are those a GET would get (RFC 9110 section 9.3.2).
            None if !http10 => head.push_str("Transfer-Encoding: chunked\r\n"),
            None => close |= has_body,
        }
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let in_memory: &[u8] = match &response.body {
        Body::Bytes(bytes) => bytes,
        Body::Shared(bytes) => bytes,
        _ => &[],
    };
    if has_body && !in_memory.is_empty() {
        // Head and body in one system call, and one segment where they fit.
        let mut parts = [IoSlice::new(head.as_bytes()), IoSlice::new(in_memory)];
        write_all_vectored(stream, &mut parts)?;
    } else {
        stream.write_all(head.as_bytes())?;
    }
    if has_body {
        match response.body {
            Body::Empty | Body::Bytes(_) | Body::Shared(_) => {}
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
            Body::Unsized(mut reader) if http10 => {
                io::copy(&mut reader, stream)?;
            }
            Body::Unsized(mut reader) => write_chunked(&mut reader, stream)?,
        }
    }
    stream.flush()?;
    Ok(!close)
}

/// `Write::write_all` for several buffers (the standard library's is not stable yet).
fn write_all_vectored<W: Write>(stream: &mut W, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !parts.is_empty() {
        match stream.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends `reader` in the chunked coding (RFC 9112 section 7.1), one chunk per read.
/// A read error ends the connection without the last chunk, so the client sees the
/// body is incomplete.
fn write_chunked<W: Write>(reader: &mut dyn Read, stream: &mut W) -> io::Result<()> {
    const CHUNK: usize = 16 * 1024;
    let mut frame = Vec::with_capacity(CHUNK + 16);
    let mut data = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut data) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return stream.write_all(b"0\r\n\r\n");
        }
        frame.clear();
        frame.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        frame.extend_from_slice(&data[..n]);
        frame.extend_from_slice(b"\r\n");
        stream.write_all(&frame)?;
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
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

    /// Echoes the method, target and body; refuses heads whose target is `/refuse`,
    /// and panics on `/panic` (while serving) and `/panic-head` (while checking). Like
    /// the router, it takes a large body on one target only, `/upload`.
    #[derive(Default)]
    struct Echo {
        seen: Mutex<Vec<String>>,
    }

    const UPLOAD_LIMIT: u64 = 1024 * 1024;

    impl Handler for Echo {
        fn check_head(&self, head: &RequestHead, _: Option<u64>) -> Result<u64, Response> {
            assert!(head.target != "/panic-head", "a bug in check_head");
            match head.target.as_str() {
                "/refuse" => Err(self.protocol_error(403, "refused")),
                "/upload" => Ok(UPLOAD_LIMIT),
                _ => Ok(crate::http::SMALL_BODY_LIMIT),
            }
        }
        fn handle(&self, request: Request) -> Response {
            assert!(request.head.target != "/panic", "a bug in handle");
            if request.head.target == "/unsized" {
                let body = Cursor::new(b"hello world".to_vec());
                return Response::new(200, Body::Unsized(Box::new(body)));
            }
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

    fn run_with(input: &[u8], limits: &Limits) -> (String, Vec<String>, u64) {
        let echo = Echo::default();
        let mut pipe = Pipe {
            input: Cursor::new(input.to_vec()),
            output: Vec::new(),
        };
        let _ = serve_connection(&mut pipe, &echo, limits);
        let seen = echo.seen.into_inner().unwrap();
        let consumed = pipe.input.position();
        (
            String::from_utf8_lossy(&pipe.output).into_owned(),
            seen,
            consumed,
        )
    }

    fn run(input: &[u8]) -> (String, Vec<String>) {
        let (out, seen, _) = run_with(input, &Limits::default());
        (out, seen)
    }

    #[test]
    fn serves_pipelined_keep_alive_requests() {
        let (out, seen) = run(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(seen, ["GET /a ", "PUT /b abc", "GET /c "]);
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3);
    }

    #[test]
    fn decodes_chunked_bodies() {
        let (_, seen) = run(b"PUT /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n");
        assert_eq!(seen, ["PUT /u abcde"]);
    }

    #[test]
    fn answers_expect_continue_only_when_accepted() {
        let (out, seen) = run(
            b"PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        );
        assert!(
            out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"),
            "{out}"
        );
        assert_eq!(seen, ["PUT /u ok"]);
        let (out, seen) = run(
            b"PUT /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        );
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
        assert!(out.contains("Connection: close"));
        assert!(seen.is_empty());
        // HTTP/1.0 has no 100-continue (RFC 9110 section 10.1.1).
        let (out, _) =
            run(b"PUT /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok");
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    }

    #[test]
    fn a_refused_request_is_answered_and_its_body_read_off() {
        // Sent without waiting for 100 Continue: the body is read off (up to a bound)
        // so closing does not reset the connection under the answer.
        let mut input = b"PUT /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 200000\r\n\r\n".to_vec();
        input.extend(vec![b'x'; 200_000]);
        let (out, seen, consumed) = run_with(&input, &Limits::default());
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
        assert!(seen.is_empty());
        assert_eq!(consumed, input.len() as u64);
        // A small refused body is skipped and the connection goes on.
        let (out, seen) = run(b"PUT /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
        assert_eq!(seen, ["GET /next "]);
        // An oversized body is refused before it is read, and read off after.
        let mut input =
            b"PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n".to_vec();
        input.extend(vec![b'x'; 100_000]);
        let (out, _, consumed) = run_with(&input, &Limits::default());
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert_eq!(consumed, input.len() as u64);
    }

    #[test]
    fn bodies_of_unknown_length_are_chunked_or_end_the_connection() {
        let (out, seen) =
            run(b"GET /unsized HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
        assert!(!out.contains("Content-Length: 11"), "{out}");
        assert!(
            out.contains("\r\n\r\nb\r\nhello world\r\n0\r\n\r\nHTTP/1.1 200 OK"),
            "{out}"
        );
        assert_eq!(seen, ["GET /next "]);
        // HTTP/1.0 knows no chunks: the body ends with the connection.
        let (out, seen) = run(
            b"GET /unsized HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /next HTTP/1.0\r\n\r\n",
        );
        assert!(out.contains("Connection: close\r\n"), "{out}");
        assert!(!out.contains("Transfer-Encoding"), "{out}");
        assert!(out.ends_with("\r\n\r\nhello world"), "{out}");
        assert!(seen.is_empty());
        // A HEAD answer has the GET's headers and no body; the connection goes on.
        let (out, seen) =
            run(b"HEAD /unsized HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            out.contains("Transfer-Encoding: chunked\r\n\r\nHTTP/1.1 200"),
            "{out}"
        );
        assert_eq!(seen, ["GET /next "]);
    }

    #[test]
    fn head_requests_and_304_have_no_body() {
        let (out, _) = run(b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        assert!(out.contains("Content-Length: 8"));
    }

    #[test]
    fn refuses_ambiguous_framing() {
        for input in [
            &b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
            b"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            let (out, seen) = run(input);
            assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
            assert!(seen.is_empty());
        }
        for te in ["gzip, chunked", "gzip", "chunked, chunked", "identity"] {
            let input = format!("PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n");
            let (out, _) = run(input.as_bytes());
            assert!(out.starts_with("HTTP/1.1 501 "), "{te}: {out}");
        }
    }

    #[test]
    fn refuses_oversized_heads_targets_and_bodies() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(vec![b'a'; 70 * 1024]);
        let (out, _) = run(&big);
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        let (out, _) = run(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        // Too large for a u64 is still too large, not malformed.
        let (out, _) =
            run(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        let many: String = (0..150).map(|i| format!("X{i}: 1\r\n")).collect();
        let (out, _) = run(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        // A long target is a 414, whether its line is complete or still arriving.
        let long = "a".repeat(9000);
        let (out, _) = run(format!("GET /{long} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        assert!(out.starts_with("HTTP/1.1 414 "), "{out}");
        let (out, _) = run(format!("GET /{long}").as_bytes());
        assert!(out.starts_with("HTTP/1.1 414 "), "{out}");
        let (out, _) =
            run(format!("GET /{} HTTP/1.1\r\nHost: x\r\n", "a".repeat(70_000)).as_bytes());
        assert!(out.starts_with("HTTP/1.1 414 "), "{out}");
    }

    #[test]
    fn chunked_bodies_are_bounded() {
        // A chunk size near u64::MAX once overflowed the running total.
        let (out, seen) = run(
            b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nffffffffffffffff\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(seen.is_empty());
        let (out, _) =
            run(b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        // Endless trailer lines are cut off like an oversized head.
        let mut input =
            b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        for _ in 0..20_000 {
            input.extend_from_slice(b"T: x\r\n");
        }
        let (out, _) = run(&input);
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    }

    #[test]
    fn the_handler_sets_each_request_body_limit_from_its_head() {
        let small = crate::http::SMALL_BODY_LIMIT as usize;
        let body = "x".repeat(small + 1);
        // Over the small limit: refused from the head, the body never handed over.
        let request = format!(
            "PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (out, seen) = run(request.as_bytes());
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(!out.contains("100 Continue"), "{out}");
        assert!(
            out.contains(&format!("larger than the limit of {small} bytes")),
            "{out}"
        );
        assert!(seen.is_empty());
        // The same body is taken where the handler expects an upload.
        let request = format!(
            "PUT /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (out, seen) = run(request.as_bytes());
        assert!(
            out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "),
            "{out:.100}"
        );
        assert_eq!(seen.len(), 1);
        // Up to the limit is fine.
        let request = format!(
            "PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: {small}\r\n\r\n{}",
            &body[1..]
        );
        let (out, _) = run(request.as_bytes());
        assert!(out.starts_with("HTTP/1.1 200 "), "{out:.100}");
    }

    #[test]
    fn chunked_bodies_stop_at_the_handlers_limit() {
        let small = crate::http::SMALL_BODY_LIMIT;
        // Chunks of 4 KiB, twice the small limit in all: refused once the next chunk
        // would cross the limit, before its data is taken into the body.
        let chunk = format!("1000\r\n{}\r\n", "y".repeat(4096));
        let chunks = chunk.repeat((2 * small / 4096) as usize);
        let request = format!(
            "PUT /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}0\r\n\r\n"
        );
        let (out, seen, _) = run_with(request.as_bytes(), &Limits::default());
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(
            out.contains(&format!("larger than the limit of {small} bytes")),
            "{out}"
        );
        assert!(seen.is_empty());
        // The same chunks make an upload.
        let request = request.replacen("PUT /u ", "PUT /upload ", 1);
        let (out, seen) = run(request.as_bytes());
        assert!(out.starts_with("HTTP/1.1 200 "), "{out:.100}");
        assert_eq!(seen.len(), 1);
        // Exactly at the limit is fine.
        let chunks = chunk.repeat((small / 4096) as usize);
        let request = format!(
            "PUT /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}0\r\n\r\n"
        );
        let (out, _) = run(request.as_bytes());
        assert!(out.starts_with("HTTP/1.1 200 "), "{out:.100}");
    }

    #[test]
    fn a_request_cut_short_is_answered() {
        let (out, seen) = run(b"PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(out.contains("in the middle of the request body"), "{out}");
        assert!(seen.is_empty());
        let (out, _) = run(b"GET /u HTTP/1.1\r\nHost: x\r\n");
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(out.contains("in the middle of a request head"), "{out}");
        // A connection closed between requests is no error and gets no answer.
        let (out, _) = run(b"");
        assert!(out.is_empty());
    }

    #[test]
    fn handler_panics_become_500s() {
        let (out, _) =
            run(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 500 "), "{out}");
        assert!(out.contains("Connection: close"));
        let (out, _) = run(b"PUT /panic-head HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx");
        assert!(out.starts_with("HTTP/1.1 500 "), "{out}");
    }

    /// A client that sends its bytes one at a time, a little apart.
    struct Trickle {
        bytes: std::vec::IntoIter<u8>,
        output: Vec<u8>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_millis(2));
            match self.bytes.next() {
                Some(b) => {
                    buf[0] = b;
                    Ok(1)
                }
                None => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_trickled_head_still_times_out() {
        let limits = Limits {
            head_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        head.extend(std::iter::repeat_n(b"X: 1\r\n".iter().copied(), 90).flatten());
        let mut client = Trickle {
            bytes: head.into_iter(),
            output: Vec::new(),
        };
        let start = Instant::now();
        let result = serve_connection(&mut client, &Echo::default(), &limits);
        assert!(matches!(result, Err(ConnError::TimedOut(_))));
        assert!(start.elapsed() < Duration::from_secs(2));
        let out = String::from_utf8_lossy(&client.output);
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    }

    #[test]
    fn a_stalled_body_times_out() {
        let limits = Limits {
            body_stall_timeout: Duration::from_millis(100),
            ..Limits::default()
        };
        let mut client = Trickle {
            bytes: b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab"
                .to_vec()
                .into_iter(),
            output: Vec::new(),
        };
        let result = serve_connection(&mut client, &Echo::default(), &limits);
        assert!(matches!(result, Err(ConnError::TimedOut(_))));
        let out = String::from_utf8_lossy(&client.output);
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    }

    #[test]
    fn a_trickled_body_still_times_out() {
        let limits = Limits {
            body_timeout: Duration::from_millis(100),
            ..Limits::default()
        };
        let mut input = b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".to_vec();
        input.extend(vec![b'x'; 1000]);
        let mut client = Trickle {
            bytes: input.into_iter(),
            output: Vec::new(),
        };
        let result = serve_connection(&mut client, &Echo::default(), &limits);
        assert!(matches!(result, Err(ConnError::TimedOut(_))));
        let out = String::from_utf8_lossy(&client.output);
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    }

    #[test]
    fn an_idle_connection_is_closed_quietly() {
        let limits = Limits {
            idle_timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let mut client = Trickle {
            bytes: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec().into_iter(),
            output: Vec::new(),
        };
        let result = serve_connection(&mut client, &Echo::default(), &limits);
        assert!(matches!(result, Ok(None)));
        let out = String::from_utf8_lossy(&client.output);
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
        assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    }

    #[test]
    fn http10_closes_by_default() {
        let (out, seen) = run(b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n");
        assert_eq!(seen, ["GET /a "]);
        assert!(out.contains("Connection: close"));
    }

    #[test]
    fn malformed_heads_are_400s() {
        for input in [
            &b"GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        ] {
            let (out, seen) = run(input);
            assert!(out.starts_with("HTTP/1.1 400 "), "{input:?}: {out}");
            assert!(seen.is_empty());
        }
    }
}
