//! A TLS connection the overlay serves, as one stream: rustls's `StreamOwned`, with the
//! vectored write that rustls gives only its borrowed `Stream`.
//!
//! The HTTP layer writes a response's head and body in one vectored write. Through
//! `StreamOwned`, which writes the first buffer only, they became two TLS records, each
//! flushed on its own: two socket writes per response, and two reads for cargo, which
//! sends its requests one after the other. Here they go into the session together and
//! leave in one record and one write. An intercepted tunnel inside the TLS proxy
//! connection nests one stream in another, and passes its records on the same way.

use std::io::{self, IoSlice, Read, Write};

use rustls::{ServerConnection, Stream};

pub(crate) struct TlsStream<S> {
    pub(crate) conn: ServerConnection,
    pub(crate) sock: S,
}

impl<S: Read + Write> TlsStream<S> {
    pub(crate) fn new(conn: ServerConnection, sock: S) -> TlsStream<S> {
        TlsStream { conn, sock }
    }

    fn stream(&mut self) -> Stream<'_, ServerConnection, S> {
        Stream::new(&mut self.conn, &mut self.sock)
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream().read(buf)
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream().write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.stream().write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{client_trusting, handshaken};
    use crate::tls::{CertificateAuthority, listener_config};

    /// A socket that keeps what each write call gave it, as `writev` would send it.
    #[derive(Default)]
    struct Socket {
        writes: Vec<Vec<u8>>,
    }

    impl Read for Socket {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.writes
                .push(bufs.iter().flat_map(|buf| buf.iter().copied()).collect());
            Ok(bufs.iter().map(|buf| buf.len()).sum())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_response_head_and_body_leave_in_one_socket_write() {
        let ca = CertificateAuthority::generate(&["127.0.0.1".to_string()]).unwrap();
        let server_config = listener_config(&ca, "127.0.0.1").unwrap();
        let (mut client, server) =
            handshaken(client_trusting(ca.cert_pem()), "127.0.0.1", server_config).unwrap();
        let mut stream = TlsStream::new(server, Socket::default());

        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
        let parts = [IoSlice::new(head), IoSlice::new(b"body")];
        assert_eq!(stream.write_vectored(&parts).unwrap(), head.len() + 4);
        stream.flush().unwrap();
        assert_eq!(
            stream.sock.writes.len(),
            1,
            "the head and body were sent apart"
        );

        client.read_tls(&mut &stream.sock.writes[0][..]).unwrap();
        client.process_new_packets().unwrap();
        let mut received = vec![0; 256];
        let n = client.reader().read(&mut received).unwrap();
        assert_eq!(&received[..n], [&head[..], b"body"].concat());
    }
}
