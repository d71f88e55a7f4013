//! TLS for intercepted hosts: one leaf per allowed host name, issued on first use and
//! cached.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::*;
use crate::report::Report;

/// Upper bound on cached leaves and configurations. The SNI a client sends picks the leaf,
/// so without a bound a client could grow the cache without end; real use needs a handful.
pub(super) const MAX_CACHED_HOSTS: usize = 1024;

/// TLS for intercepted hosts: one leaf per host name, issued on first use and cached,
/// and only for the hosts given: the CA signs for no name a client merely asks for.
#[derive(Debug)]
pub(crate) struct InterceptTls {
    pub(super) leaves: Arc<LeafCache>,
    /// One configuration per CONNECT host, so TLS sessions resume across connections.
    configs: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl InterceptTls {
    /// Leaves from `ca` for `hosts` (any case; `[::1]` or `::1` for an address).
    pub(crate) fn new(ca: Arc<CertificateAuthority>, hosts: &[String]) -> Self {
        InterceptTls {
            leaves: Arc::new(LeafCache {
                ca,
                hosts: hosts.iter().map(|h| host_key(h)).collect(),
                by_name: Mutex::new(HashMap::new()),
            }),
            configs: Mutex::new(HashMap::new()),
        }
    }

    /// A server configuration for a connection that CONNECTed to `connect_host`. The leaf
    /// is picked by the ClientHello's SNI when there is one, else by `connect_host`
    /// (clients send no SNI for IP addresses). A name that is not an intercepted host
    /// gets no leaf, and the handshake fails.
    pub(crate) fn server_config(&self, connect_host: &str) -> Arc<ServerConfig> {
        let connect_host = host_key(connect_host);
        let mut configs = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = configs.get(&connect_host) {
            return config.clone();
        }
        let resolver = Arc::new(InterceptResolver {
            leaves: self.leaves.clone(),
            connect_host: connect_host.clone(),
        });
        let config = server_config(resolver)
            .expect("the ring provider supports rustls' default protocol versions");
        if configs.len() < MAX_CACHED_HOSTS {
            configs.insert(connect_host, config.clone());
        }
        config
    }
}

/// Leaves by lower-case host name, shared by every intercepting configuration.
#[derive(Debug)]
pub(super) struct LeafCache {
    pub(super) ca: Arc<CertificateAuthority>,
    /// The names leaves are issued for, as [`host_key`] spells them.
    pub(super) hosts: HashSet<String>,
    pub(super) by_name: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl LeafCache {
    /// The leaf for `name`, or `None` when it is not an intercepted host.
    pub(super) fn leaf_for(&self, name: &str) -> Result<Option<Arc<CertifiedKey>>, TlsError> {
        let name = host_key(name);
        if !self.hosts.contains(&name) {
            return Ok(None);
        }
        // Issuing under the lock makes concurrent first connections to a host share one
        // leaf; it takes about a millisecond.
        let mut by_name = self.by_name.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(leaf) = by_name.get(&name) {
            return Ok(Some(leaf.clone()));
        }
        let leaf = self.ca.issue(&[&name])?;
        if by_name.len() < MAX_CACHED_HOSTS {
            by_name.insert(name, leaf.clone());
        }
        Ok(Some(leaf))
    }
}

/// How a host is compared and cached: lowercase, an IPv6 address without brackets.
pub(super) fn host_key(host: &str) -> String {
    unbracket(host).to_ascii_lowercase()
}

#[derive(Debug)]
pub(super) struct InterceptResolver {
    leaves: Arc<LeafCache>,
    connect_host: String,
}

impl ResolvesServerCert for InterceptResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello.server_name().unwrap_or(&self.connect_host);
        match self.leaves.leaf_for(name) {
            Ok(Some(leaf)) => Some(leaf),
            Ok(None) => {
                log::warn!(
                    "refusing TLS for {name} inside a tunnel to {}: not an intercepted host",
                    self.connect_host
                );
                None
            }
            Err(e) => {
                // `None` aborts the handshake; the client sees a handshake failure.
                log::warn!("cannot issue a certificate for {name}: {}", Report(&e));
                None
            }
        }
    }
}
