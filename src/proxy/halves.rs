//! Splitting a client connection into a read half and a write half, for tunnels.
//!
//! A passthrough tunnel copies bytes both ways at once, one thread per direction. A
//! plain TCP client splits with `try_clone`. A client that reached us over the TLS
//! listener cannot: one rustls session serves both directions. Its halves share the
//! session behind a mutex and each owns a clone of the socket, so the blocking socket
//! reads happen outside the lock and neither direction waits for the other.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::ServerConnection;

use super::TlsStream;

/// The two directions of a client connection, and its socket for shutting it down.
pub(crate) struct Halves {
    pub(crate) reader: Box<dyn Read + Send>,
    pub(crate) writer: Box<dyn Write + Send>,
    pub(crate) socket: TcpStream,
}

/// A client stream that can become a tunnel's client side.
pub(crate) trait IntoHalves {
    fn into_halves(self) -> io::Result<Halves>;
}

impl IntoHalves for TcpStream {
    fn into_halves(self) -> io::Result<Halves> {
        Ok(Halves {
            reader: Box::new(self.try_clone()?),
            writer: Box::new(self.try_clone()?),
            socket: self,
        })
    }
}

impl IntoHalves for TlsStream<TcpStream> {
    fn into_halves(self) -> io::Result<Halves> {
        let session = Arc::new(Mutex::new(self.conn));
        Ok(Halves {
            reader: Box::new(TlsReadHalf {
                session: Arc::clone(&session),
                socket: self.sock.try_clone()?,
                records: Vec::new(),
            }),
            writer: Box::new(TlsWriteHalf {
                session,
                socket: self.sock.try_clone()?,
            }),
            socket: self.sock,
        })
    }
}

fn lock(session: &Mutex<ServerConnection>) -> MutexGuard<'_, ServerConnection> {
    // A panic while holding the lock leaves the session unusable anyway; the tunnel ends.
    session
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends whatever TLS records the session has queued.
fn flush_records(session: &mut ServerConnection, mut socket: &TcpStream) -> io::Result<()> {
    while session.wants_write() {
        session.write_tls(&mut socket)?;
    }
    Ok(())
}

struct TlsReadHalf {
    session: Arc<Mutex<ServerConnection>>,
    socket: TcpStream,
    /// Records read off the socket that the session has not taken yet.
    records: Vec<u8>,
}

impl Read for TlsReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut session = lock(&self.session);
            match session.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            // The session's plaintext is drained: it may take more records now. One
            // `read_tls` per drain keeps it under rustls's plaintext buffer limit.
            if !self.records.is_empty() {
                let taken = session.read_tls(&mut self.records.as_slice())?;
                self.records.drain(..taken);
                session
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                flush_records(&mut session, &self.socket)?;
                continue;
            }
            drop(session);
            // Nothing buffered anywhere: wait for the socket without holding the lock.
            let mut chunk = [0u8; 16 * 1024];
            let n = self.socket.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.records.extend_from_slice(&chunk[..n]);
        }
    }
}

struct TlsWriteHalf {
    session: Arc<Mutex<ServerConnection>>,
    socket: TcpStream,
}

impl Write for TlsWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut session = lock(&self.session);
        let n = session.writer().write(buf)?;
        flush_records(&mut session, &self.socket)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        flush_records(&mut lock(&self.session), &self.socket)
    }
}
