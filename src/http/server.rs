//! The listener and its bounded, elastic worker pool.
//!
//! cargo keeps connections open and proxy tunnels live for minutes, so a connection
//! holds a worker thread for as long as it lasts; a fixed small pool would let a few
//! idle clients starve everyone else. Instead the accept loop hands each connection to
//! an idle worker over a zero-capacity crossbeam channel, starts a new worker when none
//! is idle, and refuses the connection with a 503 once `max_connections` workers are
//! alive. Workers that stay idle for a while exit, so the pool shrinks again. A panic
//! while serving one connection is caught and logged; the worker goes on.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// How long an idle worker waits for a connection before it exits.
const WORKER_IDLE: Duration = Duration::from_secs(30);
/// The read timeout on sockets: the request loop's clock tick (see `conn`).
pub const READ_TICK: Duration = Duration::from_millis(500);
/// How long a write to a client may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// What serves an accepted connection. The socket comes with its timeouts set: reads
/// time out every [`READ_TICK`] (the request loop's clock), writes after a minute.
pub trait Service: Send + Sync {
    /// Serves the connection until it ends.
    fn serve(&self, stream: TcpStream);

    /// Answers a connection that cannot be served now because the pool is full.
    fn refuse(&self, stream: TcpStream);
}

#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Connections served at once; more are refused.
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 512,
        }
    }
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    options: ServerOptions,
}

impl Server {
    pub fn bind(addr: SocketAddr, options: ServerOptions) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        Ok(Server { listener, options })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts and serves connections forever. Accept errors (such as running out of
    /// file descriptors) are logged and retried after a pause, never fatal.
    pub fn run(self, service: Arc<dyn Service>) {
        let (sender, receiver) = crossbeam_channel::bounded(0);
        let pool = Pool {
            sender,
            receiver,
            alive: Arc::new(AtomicUsize::new(0)),
            service,
            max_connections: self.options.max_connections,
        };
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => pool.dispatch(stream),
                Err(e) => {
                    log::error!("accepting a connection failed: {e}");
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
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
            self.refuse(stream);
            return;
        }
        let worker = Worker {
            receiver: self.receiver.clone(),
            alive: Arc::clone(&self.alive),
            service: Arc::clone(&self.service),
        };
        let spawned = thread::Builder::new()
            .name("overlay-worker".into())
            .spawn(move || worker.run(stream));
        if let Err(e) = spawned {
            log::error!("starting a worker thread failed: {e}");
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn refuse(&self, stream: TcpStream) {
        log::warn!(
            "refusing a connection: {} connections are already being served",
            self.max_connections
        );
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        self.service.refuse(stream);
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
