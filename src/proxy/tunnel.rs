//! Passthrough tunnels: bytes copied both ways between a client and a far host.
//!
//! Hosts the overlay does not intercept (git servers for git dependencies, say) are
//! reached through a plain byte tunnel. One thread copies each direction; when either
//! side closes, both sockets are shut down so the other thread ends too. A tunnel with
//! no traffic either way for the idle timeout is closed. Where the overlay itself must
//! go through a proxy (`--upstream-proxy`, or the environment's), the far end is a
//! `CONNECT` tunnel through that proxy, as on networks whose only way out is one.
//! A far host is connected to only at addresses the proxy's [`AddressRule`] allows,
//! checked on the very addresses its name resolved to.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::halves::Halves;
use crate::http::READ_TICK;
use crate::upstream::{AddressRule, HostPort};

/// How long connecting to the far host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no tunnel to the far host could be opened.
#[derive(Debug)]
pub(crate) enum TunnelError {
    /// The host resolves only to addresses the rule refuses.
    Refused,
    /// It could not be reached: no address, refused, timed out.
    Unreachable(io::Error),
    /// The upstream proxy could not be used or would not open the tunnel.
    Proxy(String),
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::Refused => f.write_str("the host resolves only to refused addresses"),
            TunnelError::Unreachable(_) => f.write_str("cannot connect"),
            TunnelError::Proxy(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for TunnelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TunnelError::Unreachable(e) => Some(e),
            TunnelError::Refused | TunnelError::Proxy(_) => None,
        }
    }
}

/// Connects to `to`, trying each address it resolves to that `rule` allows.
pub(crate) fn connect(to: &HostPort, rule: AddressRule) -> Result<TcpStream, TunnelError> {
    let addrs = (to.host.as_str(), to.port)
        .to_socket_addrs()
        .map_err(TunnelError::Unreachable)?;
    let mut last_error = None;
    for addr in addrs {
        if !rule.allows(addr.ip()) {
            continue;
        }
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.map_or(TunnelError::Refused, TunnelError::Unreachable))
}

/// The largest answer head a proxy may give to our `CONNECT`.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// Connects to `to` through an HTTP proxy with `CONNECT`, with the proxy's
/// credentials when its URL has them. Returns the tunnel once the proxy answers 200.
/// The proxy resolves the name: only an address given as such was checked before.
pub(crate) fn connect_via(proxy: &ureq::Proxy, to: &HostPort) -> Result<TcpStream, TunnelError> {
    let named = |detail: String| {
        TunnelError::Proxy(format!(
            "the proxy {}:{}: {detail}",
            proxy.host(),
            proxy.port()
        ))
    };
    if proxy.protocol() != ureq::ProxyProtocol::Http {
        return Err(named(format!(
            "passthrough tunnels go through http:// proxies only, not {:?}",
            proxy.protocol()
        )));
    }
    // The operator's proxy is reached wherever it is.
    let at = HostPort {
        host: proxy.host().to_string(),
        port: proxy.port(),
    };
    let stream = connect(&at, AddressRule::ANY).map_err(|e| named(e.to_string()))?;
    tunnel_through(proxy, stream, to).map_err(|e| named(e.to_string()))
}

/// Asks the proxy on `stream` for a tunnel to `to`.
fn tunnel_through(
    proxy: &ureq::Proxy,
    mut stream: TcpStream,
    to: &HostPort,
) -> io::Result<TcpStream> {
    let mut head = format!("CONNECT {to} HTTP/1.1\r\nHost: {to}\r\n");
    if let Some(user) = proxy.username() {
        let credentials = format!("{user}:{}", proxy.password().unwrap_or(""));
        head.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            STANDARD.encode(credentials)
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;

    stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    read_connect_answer(&mut stream, to)?;
    stream.set_read_timeout(None)?;
    Ok(stream)
}

/// Reads the proxy's answer to `CONNECT {to}` with `httparse`, up to its blank line
/// and no further: what follows belongs to the far host, so the head is read a byte at
/// a time and nothing past it is taken from `stream`. At most [`MAX_PROXY_HEAD`] bytes;
/// only a 200 opens the tunnel.
fn read_connect_answer(stream: &mut impl Read, to: &HostPort) -> io::Result<()> {
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !(answer.ends_with(b"\n\r\n") || answer.ends_with(b"\n\n")) {
        if answer.len() >= MAX_PROXY_HEAD || stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no answer to CONNECT",
            ));
        }
        answer.push(byte[0]);
    }
    // Room for as many header lines as the size bound leaves possible (`a:\n`).
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_PROXY_HEAD / 3];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&answer) {
        Ok(httparse::Status::Complete(_)) if response.code == Some(200) => Ok(()),
        Ok(httparse::Status::Complete(_)) => Err(io::Error::other(format!(
            "refused CONNECT {to}: HTTP/1.{} {} {}",
            response.version.unwrap_or(1),
            response.code.unwrap_or_default(),
            response.reason.unwrap_or_default()
        ))),
        Ok(httparse::Status::Partial) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a malformed answer to CONNECT",
        )),
        Err(e) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a malformed answer to CONNECT: {e}"),
        )),
    }
}

/// Copies bytes both ways until either side closes or the tunnel idles out. `leftover`
/// is what the client sent after its `CONNECT` head, owed to the far host first.
pub(crate) fn pump(
    client: Halves,
    far: TcpStream,
    leftover: &[u8],
    idle_timeout: Duration,
) -> io::Result<()> {
    far.set_read_timeout(Some(READ_TICK))?;
    far.set_nodelay(true)?;
    let mut far_writer = far.try_clone()?;
    far_writer.write_all(leftover)?;
    let activity = Arc::new(Activity::new());
    let Halves {
        reader: mut client_reader,
        writer: mut client_writer,
        socket: client_socket,
    } = client;

    let upstream = {
        let activity = Arc::clone(&activity);
        let client_socket = client_socket.try_clone()?;
        let far = far.try_clone()?;
        thread::Builder::new()
            .name("overlay-tunnel".into())
            .spawn(move || {
                let result = copy(&mut client_reader, &mut far_writer, &activity, idle_timeout);
                close_both(&client_socket, &far);
                result
            })?
    };
    let mut far_reader = far.try_clone()?;
    let downstream = copy(&mut far_reader, &mut client_writer, &activity, idle_timeout);
    close_both(&client_socket, &far);
    let upstream = upstream
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("tunnel thread panicked")));
    downstream.and(upstream)
}

fn close_both(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// When either direction last moved a byte, shared by both copy threads.
struct Activity {
    start: Instant,
    last_millis: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_millis: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_millis.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_millis.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Copies until end of stream, an error, or both directions idle past the timeout.
/// Read timeouts are the clock tick, not errors.
fn copy(
    from: &mut dyn Read,
    to: &mut dyn Write,
    activity: &Activity,
    idle_timeout: Duration,
) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                to.write_all(&buf[..n])?;
                to.flush()?;
                activity.touch();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if activity.idle_for() >= idle_timeout {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(bytes: &[u8]) -> (io::Result<()>, usize) {
        let to = HostPort {
            host: "far.example".into(),
            port: 443,
        };
        let mut reader = bytes;
        let result = read_connect_answer(&mut reader, &to);
        (result, bytes.len() - reader.len())
    }

    #[test]
    fn the_head_is_read_and_nothing_past_it() {
        let head = b"HTTP/1.1 200 Connection established\r\nVia: proxy\r\n\r\n";
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(b"\x16\x03\x01 the far host's first bytes");
        let (result, consumed) = answer(&bytes);
        result.unwrap();
        assert_eq!(consumed, head.len());
        answer(b"HTTP/1.0 200 OK\r\n\r\n").0.unwrap();
    }

    #[test]
    fn anything_but_200_is_refused_with_its_status_line() {
        let (result, _) = answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            result.unwrap_err().to_string(),
            "refused CONNECT far.example:443: HTTP/1.1 403 Forbidden"
        );
        let (result, _) = answer(b"HTTP/1.1 2000 OK\r\n\r\n");
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_cut_malformed_or_endless_head_is_no_answer() {
        for bytes in [&b""[..], b"HTTP/1.1 200 OK\r\n", b"SSH-2.0-OpenSSH\r\n\r\n"] {
            assert_eq!(
                answer(bytes).0.unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
        }
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        while endless.len() <= MAX_PROXY_HEAD {
            endless.extend_from_slice(b"X-Padding: 0123456789\r\n");
        }
        endless.extend_from_slice(b"\r\n");
        let (result, consumed) = answer(&endless);
        assert_eq!(result.unwrap_err().to_string(), "no answer to CONNECT");
        assert_eq!(consumed, MAX_PROXY_HEAD);
    }
}
