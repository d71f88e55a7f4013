//! The certificate authority: made in memory (name-constrained) or kept in a private
//! directory, and the leaves it issues.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;

use super::*;

/// The CA's common name. It is also how a persisted CA is recognised: leaves name their
/// issuer by this subject, so changing it orphans every CA users already trust.
pub(super) const CA_COMMON_NAME: &str = "cargo-overlay-registry CA";
/// File names inside a CA directory.
pub(super) const CA_CERT_FILE: &str = "ca.pem";
pub(super) const CA_KEY_FILE: &str = "ca-key.pem";

pub(super) const DAY: Duration = Duration::from_secs(24 * 60 * 60);
pub(super) const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// Under the 398 days browsers and Apple's TLS stack accept for a leaf.
pub(super) const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Certificates start a day in the past so a peer whose clock lags ours still accepts them.
pub(super) const BACKDATE: Duration = DAY;

/// The overlay's own certificate authority: its certificate, and the key that signs leaves.
pub(crate) struct CertificateAuthority {
    pub(super) cert_pem: String,
    pub(super) cert_der: CertificateDer<'static>,
    pub(super) issuer: rcgen::Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    /// Never shows the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &CA_COMMON_NAME)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A fresh CA that lives only in memory (ECDSA P-256, valid for about ten years) and
    /// that clients accept only for `names` and their subdomains (DNS names, or IP
    /// addresses written as text, `[::1]` too): the hosts the run will issue leaves for.
    pub(crate) fn generate(names: &[String]) -> Result<Self, TlsError> {
        let permitted = permitted_subtrees(names);
        // An empty list would mean no constraint at all.
        assert!(
            !permitted.is_empty(),
            "a name-constrained CA permits some name"
        );
        Self::generate_with(Some(NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: Vec::new(),
        }))
    }

    fn generate_with(name_constraints: Option<NameConstraints>) -> Result<Self, TlsError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = ca_params();
        params.name_constraints = name_constraints;
        set_validity(&mut params, CA_LIFETIME);
        let cert = params.self_signed(&key)?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA kept in `dir` as `ca.pem` and `ca-key.pem`: reused when both exist, so users
    /// trust it once; created (with `dir`) when neither does. The key file is created with
    /// mode 0600 and is never readable by others, not even while it is being written. An
    /// existing `dir` must be the user's own and closed to others (see [`check_private`]).
    /// It carries no name constraints: it serves runs that intercept different hosts.
    pub(crate) fn load_or_create(dir: &Path) -> Result<Self, TlsError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if exists(dir)? {
            let metadata = fs::metadata(dir).map_err(|e| TlsError::io(dir, e))?;
            check_private(dir, &metadata, PrivateKind::Directory)?;
        }
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => Self::load(&cert_path, &key_path),
            (false, false) => {
                let ca = Self::generate_with(None)?;
                create_private_dir(dir)?;
                // The key first: a CA directory is complete once its certificate appears.
                write_file_atomically(&key_path, ca.issuer.key().serialize_pem().as_bytes(), true)?;
                write_file_atomically(&cert_path, ca.cert_pem.as_bytes(), false)?;
                log::info!("created a new CA in {}", dir.display());
                Ok(ca)
            }
            (true, false) => Err(half_a_ca(&key_path, &cert_path)),
            (false, true) => Err(half_a_ca(&cert_path, &key_path)),
        }
    }

    /// Reuses a persisted CA without parsing its certificate: the issuer is rebuilt from
    /// [`ca_params`] and the stored key. Leaves signed that way name the stored
    /// certificate's subject and key identifier, so they verify against it, whatever basic
    /// constraints and key usages the run that made it wrote; a probe leaf proves that
    /// before any client sees one.
    fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let cert_pem = fs::read_to_string(cert_path).map_err(|e| TlsError::io(cert_path, e))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| TlsError::pem_because(cert_path, "no usable CERTIFICATE block", e))?;
        let key_pem = read_private_file(key_path)?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| TlsError::pem_because(key_path, "not a usable private key", e))?;
        let ca = CertificateAuthority {
            cert_pem,
            cert_der,
            issuer: rcgen::Issuer::new(ca_params(), key),
        };
        ca.check_leaves_verify().map_err(|why| {
            TlsError::pem(
                cert_path,
                format!(
                    "certificates signed with {CA_KEY_FILE} do not verify against it ({why}); \
                     remove both files to create a new CA"
                ),
            )
        })?;
        Ok(ca)
    }

    /// Issues a throwaway leaf and verifies it against our certificate the way a client
    /// would, so a mismatched or foreign CA directory fails at startup, not in cargo.
    fn check_leaves_verify(&self) -> Result<(), String> {
        const PROBE_NAME: &str = "localhost";
        let (leaf, _key) = self.sign_leaf(&[PROBE_NAME]).map_err(|e| e.to_string())?;
        verify_leaf(&self.cert_der, leaf.der(), PROBE_NAME)
    }

    /// The CA certificate, PEM-encoded.
    #[cfg(test)]
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes the certificate, never the key, to `path` (for `--ca-cert-out`). The file
    /// is replaced, never written through: a symlink at `path` is replaced by the file,
    /// and its target is left alone.
    pub(crate) fn write_cert(&self, path: &Path) -> Result<(), TlsError> {
        write_file_atomically(path, self.cert_pem.as_bytes(), false)
    }

    /// A leaf for `names` (DNS names, or IP addresses written as text, each becoming the
    /// matching subjectAltName type): ECDSA P-256, signed by this CA, valid for about a
    /// year, served with the CA certificate after it in the chain.
    pub(crate) fn issue(&self, names: &[&str]) -> Result<Arc<CertifiedKey>, TlsError> {
        let (leaf, key) = self.sign_leaf(names)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key = ring_provider().key_provider.load_private_key(key_der)?;
        let chain = vec![leaf.der().clone(), self.cert_der.clone()];
        Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
    }

    /// The rcgen side of [`issue`](Self::issue): the signed leaf and its key.
    pub(super) fn sign_leaf(
        &self,
        names: &[&str],
    ) -> Result<(rcgen::Certificate, KeyPair), TlsError> {
        let names: Vec<String> = names
            .iter()
            .map(|name| unbracket(name).to_string())
            .collect();
        let mut params = CertificateParams::new(names.clone())?;
        // The common name only for a DNS name: OpenSSL checks a leaf's common name against
        // the CA's DNS name constraints when the leaf has no DNS subjectAltName, and an
        // address there would be refused. Clients match names by subjectAltName alone.
        if let Some(first) = names.first().filter(|name| name.parse::<IpAddr>().is_err()) {
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_LIFETIME);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let leaf = params.signed_by(&key, &self.issuer)?;
        Ok((leaf, key))
    }
}

/// Our CA's parameters. `load` rebuilds the issuer of a persisted CA from these, and
/// what leaves take from their issuer is its subject (their issuer name) and its
/// key-identifier method (their authority key identifier, derived from the key): those
/// two must never vary, or CAs that users already trust stop verifying our leaves.
/// The rest only shapes the CA certificate itself, made once per CA: CAs persisted by
/// earlier versions carry `CA:TRUE` without a path length and `cRLSign` too.
pub(super) fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.key_identifier_method = KeyIdMethod::Sha256;
    // Leaves only: no intermediate CA below this one.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params
}

/// The name-constraint subtrees that permit exactly `names` (and, for DNS names, their
/// subdomains: a DNS subtree always includes them): a single-address subtree for each
/// IP address, a DNS subtree for each other name. Empty names are left out, as an empty
/// DNS subtree would permit every name.
pub(super) fn permitted_subtrees(names: &[String]) -> Vec<GeneralSubtree> {
    let mut subtrees = Vec::new();
    for name in names {
        let name = unbracket(name).trim_end_matches('.').to_ascii_lowercase();
        let subtree = match name.parse::<IpAddr>() {
            Ok(ip) => {
                let prefix = if ip.is_ipv4() { 32 } else { 128 };
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(ip, prefix))
            }
            Err(_) if name.is_empty() => continue,
            Err(_) => GeneralSubtree::DnsName(name),
        };
        if !subtrees.contains(&subtree) {
            subtrees.push(subtree);
        }
    }
    subtrees
}

/// Verifies `leaf` for `name` against `ca` alone, as a client trusting only `ca` would.
pub(super) fn verify_leaf(
    ca: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    name: &str,
) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone().into_owned())
        .map_err(|e| e.to_string())?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), ring_provider())
        .build()
        .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name).map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(leaf, &[], &server_name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Valid from a day ago until `lifetime` from now.
pub(super) fn set_validity(params: &mut CertificateParams, lifetime: Duration) {
    // rcgen's dates are `time` types, which this crate does not depend on; reaching "now"
    // from the epoch through rcgen's own constructor avoids naming them.
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
}

pub(super) fn half_a_ca(missing: &Path, present: &Path) -> TlsError {
    TlsError::pem(
        missing,
        format!(
            "missing, but {} exists; restore it, or remove both to create a new CA",
            present.display()
        ),
    )
}

pub(super) fn exists(path: &Path) -> Result<bool, TlsError> {
    path.try_exists().map_err(|e| TlsError::io(path, e))
}

/// Creates `dir` (and missing parents) readable by its owner only, since it will hold
/// the CA key. An existing directory is left as it is.
pub(super) fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| TlsError::io(dir, e))
}

/// Writes `contents` to a temporary file next to `path` and renames it into place, so
/// `path` never holds half a file. With `private`, the file is created with mode 0600:
/// it is never readable by others, not even for the moment between create and chmod.
pub(super) fn write_file_atomically(
    path: &Path,
    contents: &[u8],
    private: bool,
) -> Result<(), TlsError> {
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    // A leftover from a crashed run may carry any mode; start from nothing.
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(TlsError::io(&temp, e)),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&temp, path)) {
        let _ = fs::remove_file(&temp);
        return Err(TlsError::io(path, e));
    }
    Ok(())
}

/// What [`check_private`] checks, for its messages.
#[derive(Clone, Copy)]
pub(super) enum PrivateKind {
    Directory,
    Key,
}

/// Refuses, as ssh does for keys, a CA directory or key that is not this user's own or
/// that group or others may use: whoever can read the key, or swap it (or the
/// directory's entries) for their own, can impersonate any HTTPS site to clients that
/// trust the CA. The error names the path, what is wrong, and the fix.
pub(super) fn check_private(
    path: &Path,
    metadata: &fs::Metadata,
    kind: PrivateKind,
) -> Result<(), TlsError> {
    use std::os::unix::fs::MetadataExt;
    let (what, private_mode) = match kind {
        PrivateKind::Directory => ("the CA directory", "700"),
        PrivateKind::Key => ("the CA key", "600"),
    };
    let unprotected = |why: String| TlsError::Unprotected {
        path: path.to_path_buf(),
        why,
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me {
        return Err(unprotected(format!(
            "{what} is owned by user id {}, not by this user (id {me}); use one of your own, \
             or `chown` it to yourself and `chmod {private_mode}` it",
            metadata.uid()
        )));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(unprotected(format!(
            "{what} is open to other users (mode {mode:04o}); run `chmod {private_mode} {}`",
            path.display()
        )));
    }
    Ok(())
}

/// Reads the CA key, refusing a symlink (the directory check covers the directory, not
/// where a link points) or a key [`check_private`] refuses. The checks look at the file
/// that was opened, so a file swapped in between cannot pass them.
pub(super) fn read_private_file(path: &Path) -> Result<String, TlsError> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let mut file = options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            TlsError::Unprotected {
                path: path.to_path_buf(),
                why: "the CA key is a symbolic link; put the key file itself there".into(),
            }
        } else {
            TlsError::io(path, e)
        }
    })?;
    let metadata = file.metadata().map_err(|e| TlsError::io(path, e))?;
    check_private(path, &metadata, PrivateKind::Key)?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| TlsError::io(path, e))?;
    Ok(text)
}
