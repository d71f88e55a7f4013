//! The listener and its bounded, elastic worker pool.
//!
//! cargo keeps connections open and proxy tunnels live for minutes, so a connection
//! holds a worker thread for as long as it lasts; a fixed small pool would let a few
//! idle clients starve everyone else. Instead the accept loop hands each connection to
//! an idle worker over a zero-capacity crossbeam channel, starts a new worker when none
//! is idle, and refuses the connection with a 503 once `max_connections` workers are
//! alive. Workers that stay idle for a while exit, so the pool shrinks again. A panic
//! while serving one connection is caught and logged; the worker goes on. Accept
//! errors (running out of file descriptors, say) are logged and retried after a pause.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::drain;

/// How long an idle worker waits for a connection before it exits.
const WORKER_IDLE: Duration = Duration::from_secs(30);
/// The read timeout on sockets: the request loop's clock tick (see `conn`).
pub(crate) const READ_TICK: Duration = Duration::from_millis(500);
/// How long a write to a client may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// What serves an accepted connection. The socket comes with its timeouts set: reads
/// time out every [`READ_TICK`] (the request loop's clock), writes after a minute.
pub(crate) trait Service: Send + Sync {
    /// Serves the connection until it ends.
    fn serve(&self, stream: TcpStream);

    /// Answers a connection that cannot be served now, saying `why` (the pool is
    /// full, the server is shutting down), and ends it (see [`close_gently`]). This
    /// runs on the accept loop and must not block: writes time out after a second,
    /// and anything that waits for the client belongs on another thread.
    fn refuse(&self, stream: TcpStream, why: &str);
}

#[derive(Clone, Debug)]
pub(crate) struct ServerOptions {
    /// Connections served at once; more are refused.
    pub(crate) max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 512,
        }
    }
}

/// A bound listener, ready to serve.
pub(crate) struct Server {
    listener: TcpListener,
    options: ServerOptions,
}

impl Server {
    pub(crate) fn bind(addr: SocketAddr, options: ServerOptions) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        Ok(Server { listener, options })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves on a thread of its own until [`Listening::stop`].
    pub(crate) fn spawn(self, service: Arc<dyn Service>) -> Listening {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = self.listener.local_addr().ok();
        let thread = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("overlay-listener".into())
                .spawn(move || self.run(service, &stop))
                .expect("the listener thread starts")
        };
        Listening { stop, addr, thread }
    }

    /// Accepts and serves connections until `stop` is set. Accept errors (such as
    /// running out of file descriptors) are logged and retried after a pause, never
    /// fatal.
    fn run(self, service: Arc<dyn Service>, stop: &AtomicBool) {
        let (sender, receiver) = crossbeam_channel::bounded(0);
        let pool = Pool {
            sender,
            receiver,
            alive: Arc::new(AtomicUsize::new(0)),
            service,
            max_connections: self.options.max_connections,
        };
        loop {
            let accepted = self.listener.accept();
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match accepted {
                Ok((stream, _)) if drain::draining() => pool.refuse(stream, "shutting down"),
                Ok((stream, _)) => pool.dispatch(stream),
                Err(e) => {
                    log::error!("accepting a connection failed: {e}");
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// A server running on its own thread.
pub(crate) struct Listening {
    stop: Arc<AtomicBool>,
    addr: Option<SocketAddr>,
    thread: thread::JoinHandle<()>,
}

impl Listening {
    /// Ends the accept loop and waits for it. Connections already accepted are
    /// served on; see [`drain`](super::drain) for waiting on them first.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop blocks in `accept`: one connection wakes it.
        if let Some(mut addr) = self.addr {
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        let _ = self.thread.join();
    }
}

struct Pool {
    sender: Sender<TcpStream>,
    receiver: Receiver<TcpStream>,
    /// Workers alive, idle or busy.
    alive: Arc<AtomicUsize>,
    service: Arc<dyn Service>,
    max_connections: usize,
}

impl Pool {
    fn dispatch(&self, stream: TcpStream) {
        let stream = match self.sender.try_send(stream) {
            Ok(()) => return,
            Err(TrySendError::Full(stream) | TrySendError::Disconnected(stream)) => stream,
        };
        if self.alive.fetch_add(1, Ordering::SeqCst) >= self.max_connections {
            self.alive.fetch_sub(1, Ordering::SeqCst);
            let why = format!(
                "{} connections are already being served",
                self.max_connections
            );
            self.refuse(stream, &why);
            return;
        }
        let worker = Worker {
            receiver: self.receiver.clone(),
            alive: Arc::clone(&self.alive),
            service: Arc::clone(&self.service),
        };
        // A failed spawn drops the stream with the closure; a second handle on the
        // socket lets the client be told.
        let spare = stream.try_clone();
        let spawned = thread::Builder::new()
            .name("overlay-worker".into())
            .spawn(move || worker.run(stream));
        if let Err(e) = spawned {
            log::error!("starting a worker thread failed: {e}");
            self.alive.fetch_sub(1, Ordering::SeqCst);
            if let Ok(stream) = spare {
                self.refuse(stream, "no thread could be started to serve it");
            }
        }
    }

    fn refuse(&self, stream: TcpStream, why: &str) {
        log::warn!("refusing a connection: {why}");
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        self.service.refuse(stream, why);
    }
}

/// Ends a connection the server has answered without reading its request: sends a
/// FIN after the answer, and reads off what the client has sent so far, so that
/// closing does not reset the connection and destroy the answer. Never blocks: it
/// may run on the accept loop.
pub(crate) fn close_gently(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut reader = stream;
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match reader.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

struct Worker {
    receiver: Receiver<TcpStream>,
    alive: Arc<AtomicUsize>,
    service: Arc<dyn Service>,
}

impl Worker {
    fn run(self, first: TcpStream) {
        self.serve(first);
        while let Ok(stream) = self.receiver.recv_timeout(WORKER_IDLE) {
            self.serve(stream);
        }
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }

    fn serve(&self, stream: TcpStream) {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "unknown peer".to_string(), |a| a.to_string());
        let served = catch_unwind(AssertUnwindSafe(|| -> io::Result<()> {
            stream.set_read_timeout(Some(READ_TICK))?;
            stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
            stream.set_nodelay(true)?;
            self.service.serve(stream);
            Ok(())
        }));
        match served {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::debug!("{peer}: setting up the connection failed: {e}"),
            Err(_) => log::error!("{peer}: a panic while serving the connection; it was closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    /// Answers `ok` to each byte it reads, panics on `P`, and says `busy` when refusing.
    struct Byte;

    impl Service for Byte {
        fn serve(&self, mut stream: TcpStream) {
            let mut byte = [0u8];
            loop {
                match stream.read(&mut byte) {
                    Ok(0) => return,
                    Ok(_) if byte[0] == b'P' => panic!("a bug while serving"),
                    Ok(_) => {
                        let _ = stream.write_all(b"ok");
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        }

        fn refuse(&self, mut stream: TcpStream, _why: &str) {
            let _ = stream.write_all(b"busy");
            close_gently(&stream);
        }
    }

    fn start(max_connections: usize) -> SocketAddr {
        let server = Server::bind(
            "127.0.0.1:0".parse().unwrap(),
            ServerOptions { max_connections },
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        thread::spawn(move || server.run(Arc::new(Byte), &AtomicBool::new(false)));
        addr
    }

    /// Connects and sends `byte`; returns the stream and the first answer.
    fn send(addr: SocketAddr, byte: u8) -> (TcpStream, String) {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(&[byte]).unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 16];
        while answer != b"ok" && answer != b"busy" {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        (stream, String::from_utf8_lossy(&answer).into_owned())
    }

    #[test]
    fn connections_past_the_cap_are_refused_and_the_pool_recovers() {
        let addr = start(2);
        let (first, answer) = send(addr, b'a');
        assert_eq!(answer, "ok");
        let (_second, answer) = send(addr, b'b');
        assert_eq!(answer, "ok");
        let (_, answer) = send(addr, b'c');
        assert_eq!(answer, "busy");
        // Once a connection ends, its worker takes the next one.
        drop(first);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (_, answer) = send(addr, b'd');
            if answer == "ok" {
                break;
            }
            assert!(Instant::now() < deadline, "the pool did not recover");
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_panic_costs_only_its_connection() {
        let addr = start(1);
        let (_, answer) = send(addr, b'P');
        assert_eq!(answer, "");
        // The single worker survived the panic and serves the next connection.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (_, answer) = send(addr, b'a');
            if answer == "ok" {
                break;
            }
            assert!(Instant::now() < deadline, "the worker did not survive");
            thread::sleep(Duration::from_millis(20));
        }
    }
}
