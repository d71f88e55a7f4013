//! Shared by the unit tests: a scratch-directory helper, and TLS clients that
//! handshake in memory.

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection,
};

/// A directory under the system temp dir, unique per call (`overlay-LABEL-PID-N`),
/// removed with everything in it when dropped, so a failed test leaves nothing behind.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A fresh, empty directory.
    pub(crate) fn new(label: &str) -> Scratch {
        let scratch = Scratch::unmade(label);
        fs::create_dir_all(&scratch.0).unwrap();
        scratch
    }

    /// The path only, for a test that makes the directory itself (its mode matters).
    pub(crate) fn unmade(label: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "overlay-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        Scratch(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A client trusting only the CA in `ca_pem`, offering h2 and http/1.1.
pub(crate) fn client_trusting(ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Moves every pending TLS record from one side to the other.
fn transfer(from: &mut Connection, to: &mut Connection) {
    let mut records = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut records).unwrap();
    }
    let mut unread = &records[..];
    while !unread.is_empty() {
        to.read_tls(&mut unread).unwrap();
    }
}

/// A client and a server after a full handshake in memory, with nothing left for
/// either to send (the server's session tickets taken by the client).
pub(crate) fn handshaken(
    client_config: Arc<ClientConfig>,
    server_name: &str,
    server_config: Arc<ServerConfig>,
) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let mut client = Connection::from(ClientConnection::new(client_config, name).unwrap());
    let mut server = Connection::from(ServerConnection::new(server_config).unwrap());
    for _ in 0..20 {
        if !client.is_handshaking()
            && !server.is_handshaking()
            && !client.wants_write()
            && !server.wants_write()
        {
            let (Connection::Client(client), Connection::Server(server)) = (client, server) else {
                unreachable!("made as a client and a server");
            };
            return Ok((client, server));
        }
        transfer(&mut client, &mut server);
        server.process_new_packets()?;
        transfer(&mut server, &mut client);
        client.process_new_packets()?;
    }
    panic!("handshake did not finish");
}
