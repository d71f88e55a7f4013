//! Passthrough tunnels: bytes copied both ways between a client and a far host.
//!
//! Hosts the overlay does not intercept (git servers for git dependencies, say) are
//! reached through a plain byte tunnel. One thread copies each direction; when either
//! side closes, both sockets are shut down so the other thread ends too. A tunnel with
//! no traffic either way for the idle timeout is closed.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::halves::Halves;
use crate::http::READ_TICK;

/// How long connecting to the far host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `host:port`, trying each address it resolves to.
pub fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// Copies bytes both ways until either side closes or the tunnel idles out. `leftover`
/// is what the client sent after its `CONNECT` head, owed to the far host first.
pub fn pump(
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
