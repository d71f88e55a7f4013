//! TLS: the overlay's certificate authority, the leaves it issues for intercepted
//! hosts, the CA bundle handed to cargo, and the server configurations of the listener
//! and of intercepted tunnels. It knows nothing of HTTP or registries. `ca` is the
//! authority and its private files, `intercept` the leaves for intercepted hosts,
//! `bundle` the CA bundle; the listener's configurations and the errors live here.
//!
//! The overlay's certificate authority and every TLS server configuration it serves.
//!
//! Cargo reaches crates.io through us as an HTTPS forward proxy: for `CONNECT
//! index.crates.io:443` and the other intercepted hosts we answer 200 and then terminate
//! TLS ourselves, so we can serve the overlay's index and crates where cargo expects
//! crates.io's. That only works if cargo trusts a certificate for `index.crates.io` that
//! we made, so this module owns a small certificate authority: it issues (and caches) one
//! leaf per intercepted host, and one for the listener itself, which speaks TLS too.
//!
//! Cargo is told to trust the CA through `CARGO_HTTP_CAINFO`. That variable *replaces*
//! libcurl's whole trust store, so the file handed over is a bundle of our CA followed by
//! the system's roots ([`write_ca_bundle`]); a file with only our CA would break every
//! git dependency fetched through a passthrough tunnel. The proxy connection itself is
//! verified with `CARGO_HTTP_PROXY_CAINFO`, which names our CA alone
//! ([`write_ca_only`]): the listener's certificate comes from it.
//!
//! The CA key is a licence to impersonate any site to whoever trusts the CA, so its reach
//! is cut down every way cargo's TLS stack (libcurl with OpenSSL) honours:
//! - the CA is `CA:TRUE, pathlen:0` with the one key usage it needs (`keyCertSign`): it
//!   can sign leaves, never another CA;
//! - by default it exists only in this process's memory and dies with it, and is
//!   name-constrained ([`CertificateAuthority::generate`]) to the hosts this run
//!   intercepts and the names of the listener's certificate: even a stolen key signs
//!   nothing else a client would accept;
//! - leaves are issued only for intercepted hosts ([`InterceptTls`]): a client that
//!   sends another name in its SNI fails the handshake.
//!
//! The key is written to disk (mode 0600) only when the user asks for a CA directory, so
//! that the CA can be trusted once and reused ([`CertificateAuthority::load_or_create`]);
//! such a CA serves runs with different hosts, so it carries no name constraints, and a
//! directory or key that other users could read or replace is refused, as ssh refuses
//! such keys.
//!
//! Every configuration uses the ring provider passed in explicitly (one crypto provider
//! in the build, never the process-default lookup) and offers ALPN `http/1.1` only,
//! because the HTTP loop behind the TLS speaks nothing else.

mod bundle;
mod ca;
mod intercept;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ResolvesServerCert;
use rustls::sign::{CertifiedKey, SingleCertAndKey};

use crate::upstream::unbracket;
pub(crate) use bundle::{write_ca_bundle, write_ca_only};
pub(crate) use ca::CertificateAuthority;
pub(crate) use intercept::InterceptTls;
use intercept::host_key;
#[cfg(test)]
use {bundle::*, ca::*};

/// The only application protocol the HTTP loop behind our TLS speaks.
const HTTP_1_1: &[u8] = b"http/1.1";

#[derive(Debug)]
pub(crate) enum TlsError {
    /// Reading or writing a file failed.
    Io { path: PathBuf, source: io::Error },
    /// A file is not the PEM it should be: unreadable, invalid, missing a key, mismatched.
    /// The parser's or rustls's error, when there is one, is the source.
    Pem {
        path: PathBuf,
        why: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// rcgen could not make a key or a certificate.
    Certificate(rcgen::Error),
    /// rustls refused the configuration or the key.
    Rustls(rustls::Error),
    /// A CA directory or key that another user owns or may read or write.
    Unprotected { path: PathBuf, why: String },
}

impl TlsError {
    fn io(path: &Path, source: io::Error) -> Self {
        TlsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn pem(path: &Path, why: impl Into<String>) -> Self {
        TlsError::Pem {
            path: path.to_path_buf(),
            why: why.into(),
            source: None,
        }
    }

    /// A file that is not the PEM it should be, for the reason `source` gives.
    fn pem_because(
        path: &Path,
        why: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TlsError::Pem {
            path: path.to_path_buf(),
            why: why.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io { path, .. } => write!(f, "I/O error on {}", path.display()),
            TlsError::Pem { path, why, .. } => write!(f, "{}: {why}", path.display()),
            TlsError::Certificate(_) => f.write_str("cannot create a certificate"),
            TlsError::Rustls(_) => f.write_str("cannot set up TLS"),
            TlsError::Unprotected { path, why } => write!(
                f,
                "{}: {why}; whoever can read or replace the CA key can impersonate any HTTPS \
                 site to clients that trust this CA, so it is not used",
                path.display()
            ),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Io { source, .. } => Some(source),
            TlsError::Certificate(e) => Some(e),
            TlsError::Rustls(e) => Some(e),
            TlsError::Pem {
                source: Some(e), ..
            } => Some(&**e),
            TlsError::Pem { .. } | TlsError::Unprotected { .. } => None,
        }
    }
}

impl From<rcgen::Error> for TlsError {
    fn from(e: rcgen::Error) -> Self {
        TlsError::Certificate(e)
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Rustls(e)
    }
}

/// One rustls provider for the whole process: ring, passed in explicitly everywhere.
fn ring_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

/// The listener's own TLS: a leaf from the CA for [`listener_names`].
pub(crate) fn listener_config(
    ca: &CertificateAuthority,
    listen_host: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let names = listener_names(listen_host);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let leaf = ca.issue(&names)?;
    server_config(Arc::new(SingleCertAndKey::from(leaf)))
}

/// The names of the listener's own certificate: the listen host, `localhost` and
/// `127.0.0.1`, lowercase and without duplicates.
pub(crate) fn listener_names(listen_host: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in [listen_host, "localhost", "127.0.0.1"] {
        let name = host_key(name);
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The listener's TLS from the user's PEM files: `cert` holds the chain, leaf first; `key`
/// its private key in PKCS#8, PKCS#1 or SEC1 form. Errors name the file at fault.
pub(crate) fn listener_config_from_pem(
    cert: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_bytes = fs::read(cert).map_err(|e| TlsError::io(cert, e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::pem_because(cert, "invalid PEM", e))?;
    if chain.is_empty() {
        return Err(TlsError::pem(cert, "no CERTIFICATE block found"));
    }
    let key_bytes = fs::read(key).map_err(|e| TlsError::io(key, e))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::pem(
            key,
            "no private key found (expected a PKCS#8, PKCS#1 or SEC1 PEM block)",
        ),
        e => TlsError::pem_because(key, "invalid PEM", e),
    })?;
    let certified = CertifiedKey::from_der(chain, key_der, &ring_provider()).map_err(|e| {
        TlsError::pem_because(
            key,
            format!("not usable with the certificate in {}", cert.display()),
            e,
        )
    })?;
    server_config(Arc::new(SingleCertAndKey::from(certified)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Scratch, client_trusting, handshaken};
    use rcgen::{BasicConstraints, CidrSubnet, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose};
    use rustls::ClientConfig;
    use std::io::Write;
    use std::net::IpAddr;
    use std::process::Command;

    /// Runs a full in-memory handshake; returns the negotiated ALPN protocol.
    fn handshake(
        client_config: Arc<ClientConfig>,
        server_name: &str,
        server_config: Arc<ServerConfig>,
    ) -> Result<Option<Vec<u8>>, rustls::Error> {
        let (client, _) = handshaken(client_config, server_name, server_config)?;
        Ok(client.alpn_protocol().map(<[u8]>::to_vec))
    }

    /// What the test CAs are constrained to, and what their interceptors serve.
    fn test_hosts() -> Vec<String> {
        [
            "crates.io",
            "index.crates.io",
            "static.crates.io",
            "127.0.0.1",
            "[::1]",
            "localhost",
            "overlay.test",
        ]
        .map(String::from)
        .to_vec()
    }

    fn test_ca() -> Arc<CertificateAuthority> {
        Arc::new(CertificateAuthority::generate(&test_hosts()).unwrap())
    }

    #[test]
    fn intercepted_host_handshakes_by_sni_with_http_1_1() {
        let ca = test_ca();
        let intercept = InterceptTls::new(ca.clone(), &test_hosts());
        let alpn = handshake(
            client_trusting(ca.cert_pem()),
            "index.crates.io",
            intercept.server_config("index.crates.io"),
        )
        .unwrap();
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    }

    #[test]
    fn sni_picks_the_leaf_over_the_connect_host() {
        let ca = test_ca();
        let intercept = InterceptTls::new(ca.clone(), &test_hosts());
        handshake(
            client_trusting(ca.cert_pem()),
            "static.crates.io",
            intercept.server_config("index.crates.io"),
        )
        .unwrap();
    }

    #[test]
    fn ip_connect_host_without_sni_gets_an_ip_leaf() {
        let ca = test_ca();
        let intercept = InterceptTls::new(ca.clone(), &test_hosts());
        for ip in ["127.0.0.1", "::1"] {
            let alpn = handshake(
                client_trusting(ca.cert_pem()),
                ip,
                intercept.server_config(&format!("[{ip}]")),
            )
            .unwrap();
            assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        }
    }

    #[test]
    fn a_client_trusting_another_ca_refuses() {
        let ca = test_ca();
        let other = test_ca();
        let intercept = InterceptTls::new(ca, &test_hosts());
        let err = handshake(
            client_trusting(other.cert_pem()),
            "index.crates.io",
            intercept.server_config("index.crates.io"),
        )
        .unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "unexpected error: {err:?}"
        );
    }

    #[test]
    fn leaves_are_cached_per_name() {
        let intercept = InterceptTls::new(test_ca(), &test_hosts());
        let first = intercept
            .leaves
            .leaf_for("index.crates.io")
            .unwrap()
            .unwrap();
        let again = intercept
            .leaves
            .leaf_for("INDEX.crates.io")
            .unwrap()
            .unwrap();
        let other = intercept.leaves.leaf_for("crates.io").unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(!Arc::ptr_eq(&first, &other));
        // The configuration's resolver shares the same cache.
        handshake(
            client_trusting(intercept.leaves.ca.cert_pem()),
            "index.crates.io",
            intercept.server_config("index.crates.io"),
        )
        .unwrap();
        assert_eq!(intercept.leaves.by_name.lock().unwrap().len(), 2);
        assert!(Arc::ptr_eq(
            &intercept.server_config("index.crates.io"),
            &intercept.server_config("index.crates.io")
        ));
    }

    #[test]
    fn persisted_ca_is_reused_and_its_leaves_verify_against_the_stored_cert() {
        let dir = Scratch::unmade("persist");
        let ca_dir = dir.path().join("nested").join("ca");
        let created = CertificateAuthority::load_or_create(&ca_dir).unwrap();
        let stored_cert = fs::read_to_string(ca_dir.join(CA_CERT_FILE)).unwrap();
        assert_eq!(stored_cert, created.cert_pem());
        drop(created);

        let loaded = Arc::new(CertificateAuthority::load_or_create(&ca_dir).unwrap());
        assert_eq!(loaded.cert_pem(), stored_cert);
        let intercept = InterceptTls::new(loaded, &test_hosts());
        handshake(
            client_trusting(&stored_cert),
            "index.crates.io",
            intercept.server_config("index.crates.io"),
        )
        .unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn ca_key_is_private_and_write_cert_holds_no_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::unmade("mode");
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let key_mode = fs::metadata(dir.path().join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o077, 0);

        let out = dir.path().join("exported.pem");
        ca.write_cert(&out).unwrap();
        let exported = fs::read_to_string(&out).unwrap();
        assert!(exported.contains(PEM_CERT_BEGIN));
        assert!(!exported.contains("PRIVATE KEY"));
    }

    /// `CA:TRUE, pathlen:0`, critical: the basicConstraints extension as DER.
    const LEAVES_ONLY: &[u8] = &[
        0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x08, 0x30, 0x06, 0x01, 0x01, 0xff,
        0x02, 0x01, 0x00,
    ];
    /// keyUsage `keyCertSign` alone, critical.
    const KEY_CERT_SIGN_ONLY: &[u8] = &[
        0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x02, 0x04,
    ];
    /// The nameConstraints extension's OID, then its critical flag.
    const NAME_CONSTRAINTS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x1e, 0x01, 0x01, 0xff];

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn the_ca_signs_leaves_only_and_the_in_memory_one_is_name_constrained() {
        let in_memory = test_ca();
        let dir = Scratch::unmade("extensions");
        let persisted = CertificateAuthority::load_or_create(dir.path()).unwrap();
        for ca in [&*in_memory, &persisted] {
            assert!(contains(&ca.cert_der, LEAVES_ONLY));
            assert!(contains(&ca.cert_der, KEY_CERT_SIGN_ONLY));
        }
        assert!(contains(&in_memory.cert_der, NAME_CONSTRAINTS));
        // A persisted CA serves runs with other hosts.
        assert!(!contains(&persisted.cert_der, NAME_CONSTRAINTS));
        // The names are in the certificate: DNS names as text, addresses with their mask.
        assert!(contains(&in_memory.cert_der, b"\x82\x0findex.crates.io"));
        assert!(contains(
            &in_memory.cert_der,
            &[0x87, 0x08, 127, 0, 0, 1, 255, 255, 255, 255]
        ));
    }

    #[test]
    fn permitted_subtrees_are_the_names_once_each() {
        let names = [
            "Index.Crates.io",
            "index.crates.io.",
            "",
            "[::1]",
            "10.1.2.3",
        ]
        .map(String::from);
        assert_eq!(
            permitted_subtrees(&names),
            [
                GeneralSubtree::DnsName("index.crates.io".into()),
                GeneralSubtree::IpAddress(CidrSubnet::V6(
                    std::net::Ipv6Addr::LOCALHOST.octets(),
                    [0xff; 16]
                )),
                GeneralSubtree::IpAddress(CidrSubnet::V4([10, 1, 2, 3], [0xff; 4])),
            ]
        );
        assert!(permitted_subtrees(&[String::new()]).is_empty());
    }

    #[test]
    fn a_name_constrained_ca_signs_nothing_a_client_accepts_for_other_names() {
        let ca = test_ca();
        for name in ["index.crates.io", "127.0.0.1", "localhost", "overlay.test"] {
            let (leaf, _) = ca.sign_leaf(&[name]).unwrap();
            verify_leaf(&ca.cert_der, leaf.der(), name).unwrap();
        }
        // Even when the key signs one, as a stolen key would.
        for name in ["github.com", "crates.io.evil.example", "10.0.0.1", "::2"] {
            let (leaf, _) = ca.sign_leaf(&[name]).unwrap();
            let err = verify_leaf(&ca.cert_der, leaf.der(), name).unwrap_err();
            assert!(err.contains("NameConstraint"), "{name}: {err}");
        }
    }

    /// What cargo's TLS stack does: OpenSSL, through libcurl. Skipped where the
    /// `openssl` command is missing.
    #[test]
    fn openssl_accepts_permitted_leaves_and_refuses_others() {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("skipped: no openssl command");
            return;
        }
        let dir = Scratch::new("openssl");
        let ca = test_ca();
        let ca_file = dir.path().join("ca.pem");
        fs::write(&ca_file, ca.cert_pem()).unwrap();
        let verify = |name: &str| {
            let (leaf, _) = ca.sign_leaf(&[name]).unwrap();
            let leaf_file = dir.path().join("leaf.pem");
            fs::write(&leaf_file, leaf.pem()).unwrap();
            let flag = if name.parse::<IpAddr>().is_ok() {
                "-verify_ip"
            } else {
                "-verify_hostname"
            };
            let out = Command::new("openssl")
                .args(["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile"])
                .arg(&ca_file)
                .args([flag, name])
                .arg(&leaf_file)
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        for name in [
            "index.crates.io",
            "static.crates.io",
            "127.0.0.1",
            "::1",
            "localhost",
        ] {
            let (ok, text) = verify(name);
            assert!(ok, "{name}: {text}");
        }
        for name in ["github.com", "10.0.0.1"] {
            let (ok, text) = verify(name);
            assert!(!ok && text.contains("subtree violation"), "{name}: {text}");
        }
    }

    #[test]
    fn an_sni_that_is_not_intercepted_gets_no_certificate() {
        let ca = test_ca();
        let intercept = InterceptTls::new(ca.clone(), &["index.crates.io".to_string()]);
        for sni in ["github.com", "static.crates.io"] {
            let err = handshake(
                client_trusting(ca.cert_pem()),
                sni,
                intercept.server_config("index.crates.io"),
            )
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    rustls::Error::General(_) | rustls::Error::PeerIncompatible(_)
                ),
                "{sni}: {err:?}"
            );
            assert!(intercept.leaves.leaf_for(sni).unwrap().is_none());
        }
        assert!(intercept.leaves.by_name.lock().unwrap().is_empty());
        handshake(
            client_trusting(ca.cert_pem()),
            "index.crates.io",
            intercept.server_config("INDEX.crates.io"),
        )
        .unwrap();
    }

    /// A CA made by an earlier version: no path length, `cRLSign` too.
    #[test]
    fn a_ca_persisted_by_an_earlier_version_still_loads_and_its_leaves_verify() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = Scratch::unmade("earlier");
        create_private_dir(dir.path()).unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = ca_params();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, CA_LIFETIME);
        let cert = params.self_signed(&key).unwrap();
        fs::write(dir.path().join(CA_CERT_FILE), cert.pem()).unwrap();
        let mut key_file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.path().join(CA_KEY_FILE))
            .unwrap();
        key_file.write_all(key.serialize_pem().as_bytes()).unwrap();

        let loaded = Arc::new(CertificateAuthority::load_or_create(dir.path()).unwrap());
        assert_eq!(loaded.cert_pem(), cert.pem());
        handshake(
            client_trusting(&cert.pem()),
            "index.crates.io",
            InterceptTls::new(loaded, &test_hosts()).server_config("index.crates.io"),
        )
        .unwrap();
    }

    #[test]
    fn a_ca_directory_or_key_open_to_others_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::unmade("open");
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        let key = dir.path().join(CA_KEY_FILE);
        let set_mode = |path: &Path, mode| {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap()
        };
        let refusal = || match CertificateAuthority::load_or_create(dir.path()) {
            Err(err @ TlsError::Unprotected { .. }) => err.to_string(),
            other => panic!("unexpected result: {other:?}"),
        };

        set_mode(dir.path(), 0o755);
        let text = refusal();
        assert!(
            text.starts_with(&format!("{}: ", dir.path().display())),
            "{text}"
        );
        assert!(text.contains("mode 0755"), "{text}");
        assert!(
            text.contains(&format!("chmod 700 {}", dir.path().display())),
            "{text}"
        );
        set_mode(dir.path(), 0o700);

        set_mode(&key, 0o640);
        let text = refusal();
        assert!(text.starts_with(&format!("{}: ", key.display())), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", key.display())),
            "{text}"
        );
        set_mode(&key, 0o600);

        // A key that is a link to one elsewhere.
        let elsewhere = dir.path().join("elsewhere.pem");
        fs::rename(&key, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
        assert!(refusal().contains("symbolic link"));
        fs::remove_file(&key).unwrap();
        fs::rename(&elsewhere, &key).unwrap();

        // An empty directory that others can enter is refused before a key goes in.
        let empty = Scratch::new("open-empty");
        set_mode(empty.path(), 0o777);
        assert!(matches!(
            CertificateAuthority::load_or_create(empty.path()),
            Err(TlsError::Unprotected { .. })
        ));
        assert!(!empty.path().join(CA_KEY_FILE).exists());

        CertificateAuthority::load_or_create(dir.path()).unwrap();

        // Another user's key, mode 0600 or not. Only root can hand a file to another user.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&key, Some(65534), None).unwrap();
            let text = refusal();
            assert!(text.contains("owned by user id 65534"), "{text}");
        }
    }

    #[test]
    fn write_cert_replaces_a_symlink_and_leaves_its_target_alone() {
        let dir = Scratch::new("cert-out");
        let target = dir.path().join("victim");
        fs::write(&target, "precious\n").unwrap();
        let out = dir.path().join("ca.pem");
        std::os::unix::fs::symlink(&target, &out).unwrap();
        let ca = test_ca();
        ca.write_cert(&out).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");
        assert!(!fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&out).unwrap(), ca.cert_pem());
    }

    #[test]
    fn half_a_ca_directory_is_an_error_naming_the_missing_file() {
        let dir = Scratch::unmade("half");
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        match CertificateAuthority::load_or_create(dir.path()) {
            Err(TlsError::Pem { path, .. }) => assert_eq!(path, dir.path().join(CA_KEY_FILE)),
            other => panic!("unexpected result: {other:?}"),
        }
    }

    #[test]
    fn a_ca_directory_with_a_foreign_certificate_is_refused() {
        let dir = Scratch::unmade("foreign");
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        fs::write(dir.path().join(CA_CERT_FILE), test_ca().cert_pem()).unwrap();
        match CertificateAuthority::load_or_create(dir.path()) {
            Err(TlsError::Pem { path, why, .. }) => {
                assert_eq!(path, dir.path().join(CA_CERT_FILE));
                assert!(why.contains("do not verify"), "{why}");
            }
            other => panic!("unexpected result: {other:?}"),
        }
    }

    #[test]
    fn bundle_has_our_ca_first_then_the_system_certificates() {
        let dir = Scratch::new("bundle");
        let root_a = test_ca().cert_pem().to_string();
        let root_b = test_ca().cert_pem().replace('\n', "\r\n");
        let system = dir.path().join("system.crt");
        fs::write(
            &system,
            format!(
                "# Root A\n{root_a}\n# a key is never copied\n-----BEGIN PRIVATE KEY-----\n\
                 MAA=\n-----END PRIVATE KEY-----\n{root_b}{root_a}"
            ),
        )
        .unwrap();
        let locations = RootLocations {
            cert_file: None,
            bundle_candidates: vec![dir.path().join("absent.crt"), system],
            cert_dirs: None,
        };
        let ca = test_ca();
        let out = dir.path().join("bundle.pem");
        assert_eq!(write_ca_bundle_from(&ca, &out, &locations).unwrap(), 2);

        let bundle = fs::read_to_string(&out).unwrap();
        assert!(bundle.starts_with(ca.cert_pem()));
        assert_eq!(bundle.matches(PEM_CERT_BEGIN).count(), 3);
        assert!(bundle.contains(&root_a));
        assert!(bundle.contains(&root_b.replace("\r\n", "\n")));
        assert!(!bundle.contains("PRIVATE KEY"));
        assert!(!bundle.contains('\r'));
    }

    #[test]
    fn bundle_sources_follow_the_platform_order() {
        let dir = Scratch::unmade("sources");
        let certs = dir.path().join("certs");
        fs::create_dir_all(&certs).unwrap();
        let from_env = test_ca().cert_pem().to_string();
        let from_candidate = test_ca().cert_pem().to_string();
        let from_dir = test_ca().cert_pem().to_string();
        fs::write(dir.path().join("env.pem"), &from_env).unwrap();
        fs::write(dir.path().join("candidate.pem"), &from_candidate).unwrap();
        fs::write(certs.join("one.crt"), &from_dir).unwrap();
        fs::write(certs.join("ignored.txt"), test_ca().cert_pem()).unwrap();

        let mut locations = RootLocations {
            cert_file: Some(dir.path().join("env.pem")),
            bundle_candidates: vec![dir.path().join("candidate.pem")],
            cert_dirs: Some(certs.clone().into_os_string()),
        };
        assert_eq!(system_root_pems(&locations), [from_env]);
        // An unreadable SSL_CERT_FILE falls back to the platform's bundle.
        locations.cert_file = Some(dir.path().join("absent.pem"));
        assert_eq!(system_root_pems(&locations), [from_candidate]);
        // SSL_CERT_DIR only when no bundle file exists.
        locations.bundle_candidates = vec![dir.path().join("absent.crt")];
        assert_eq!(system_root_pems(&locations), [from_dir]);
        locations.cert_dirs = None;
        assert!(system_root_pems(&locations).is_empty());

        let out = dir.path().join("bundle.pem");
        assert_eq!(
            write_ca_bundle_from(&test_ca(), &out, &locations).unwrap(),
            0
        );
    }

    #[test]
    fn listener_config_serves_localhost_loopback_and_the_listen_host() {
        let ca = test_ca();
        let config = listener_config(&ca, "overlay.test").unwrap();
        for name in ["overlay.test", "localhost", "127.0.0.1"] {
            let alpn = handshake(client_trusting(ca.cert_pem()), name, config.clone()).unwrap();
            assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        }
        // The listen host being one of the defaults is no duplicate SAN problem.
        listener_config(&ca, "localhost").unwrap();
    }

    #[test]
    fn listener_config_from_pem_files() {
        let dir = Scratch::new("pem");
        let ca = test_ca();
        let (leaf, key) = ca.sign_leaf(&["overlay.test"]).unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        fs::write(&cert_path, format!("{}{}", leaf.pem(), ca.cert_pem())).unwrap();
        fs::write(&key_path, key.serialize_pem()).unwrap();

        let config = listener_config_from_pem(&cert_path, &key_path).unwrap();
        handshake(client_trusting(ca.cert_pem()), "overlay.test", config).unwrap();

        let missing = dir.path().join("missing.pem");
        match listener_config_from_pem(&missing, &key_path) {
            Err(TlsError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("unexpected result: {other:?}"),
        }
        let garbage = dir.path().join("garbage.pem");
        fs::write(&garbage, "not pem at all\n").unwrap();
        for (cert, key, at_fault) in [
            (&garbage, &key_path, &garbage),
            (&cert_path, &garbage, &garbage),
            (&cert_path, &cert_path, &cert_path),
        ] {
            let err = listener_config_from_pem(cert, key).unwrap_err();
            assert!(
                err.to_string().contains(&at_fault.display().to_string()),
                "{err}"
            );
            assert!(matches!(err, TlsError::Pem { ref path, .. } if path == at_fault));
        }
        // A key that does not belong to the certificate.
        let other_key = dir.path().join("other-key.pem");
        fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        match listener_config_from_pem(&cert_path, &other_key) {
            Err(TlsError::Pem { path, .. }) => assert_eq!(path, other_key),
            other => panic!("unexpected result: {other:?}"),
        }
    }
}
