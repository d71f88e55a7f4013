//! The CA bundle handed to cargo: our CA followed by the system's roots.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

/// Where platforms keep their root bundle, in the order OpenSSL-based tools look.
pub(super) const SYSTEM_BUNDLE_CANDIDATES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

pub(super) const PEM_CERT_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
pub(super) const PEM_CERT_END: &str = "-----END CERTIFICATE-----";

/// Writes our CA followed by the system's root certificates to `path`, for
/// `CARGO_HTTP_CAINFO`, and returns how many system roots it holds. The roots are found
/// the way OpenSSL-based tools find them: `SSL_CERT_FILE`, else the platform's bundle,
/// else the `*.pem`/`*.crt` files of `SSL_CERT_DIR`.
pub(crate) fn write_ca_bundle(ca: &CertificateAuthority, path: &Path) -> Result<usize, TlsError> {
    let locations = RootLocations {
        cert_file: std::env::var_os("SSL_CERT_FILE").map(PathBuf::from),
        bundle_candidates: SYSTEM_BUNDLE_CANDIDATES.iter().map(PathBuf::from).collect(),
        cert_dirs: std::env::var_os("SSL_CERT_DIR"),
    };
    write_ca_bundle_from(ca, path, &locations)
}

/// Where system roots may be: the environment's say first, then the platform's files.
pub(super) struct RootLocations {
    /// `SSL_CERT_FILE`.
    pub(super) cert_file: Option<PathBuf>,
    /// Bundle files, the first one that can be read wins.
    pub(super) bundle_candidates: Vec<PathBuf>,
    /// `SSL_CERT_DIR`: directories separated like `PATH`.
    pub(super) cert_dirs: Option<OsString>,
}

pub(super) fn write_ca_bundle_from(
    ca: &CertificateAuthority,
    path: &Path,
    locations: &RootLocations,
) -> Result<usize, TlsError> {
    let roots = system_root_pems(locations);
    if roots.is_empty() {
        log::warn!(
            "no system root certificates found (set SSL_CERT_FILE to a PEM bundle); {} holds \
             only the overlay's CA, so cargo can reach no other HTTPS host through it",
            path.display()
        );
    }
    let mut bundle =
        String::with_capacity(ca.cert_pem.len() + roots.iter().map(String::len).sum::<usize>());
    bundle.push_str(&ca.cert_pem);
    if !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    for root in &roots {
        bundle.push_str(root);
    }
    write_run_file(path, bundle.as_bytes())?;
    Ok(roots.len())
}

/// Writes our CA alone to `path`, for `CARGO_HTTP_PROXY_CAINFO`: the proxy's own
/// certificate comes from it, so nothing else need be trusted on that connection, and
/// cargo parses one certificate there instead of the system's 150.
pub(crate) fn write_ca_only(ca: &CertificateAuthority, path: &Path) -> Result<(), TlsError> {
    write_run_file(path, ca.cert_pem.as_bytes())
}

/// A file in the run directory. Private like the directory, whatever the umask. The
/// run directory is new, so the file is too (create_new); it is removed at exit, so it
/// is not synced: an fsync here cost every start over a millisecond.
fn write_run_file(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents))
        .map_err(|e| TlsError::io(path, e))
}

/// The system's root certificates as PEM blocks, duplicates removed.
pub(super) fn system_root_pems(locations: &RootLocations) -> Vec<String> {
    let env_file = locations
        .cert_file
        .iter()
        .filter(|path| !path.as_os_str().is_empty());
    for path in env_file.chain(&locations.bundle_candidates) {
        match fs::read(path) {
            Ok(bytes) => {
                log::debug!("system root certificates from {}", path.display());
                return unique(certificate_blocks(&bytes));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::debug!("skipping {}: {e}", path.display()),
        }
    }
    let mut blocks = Vec::new();
    for dir in locations.cert_dirs.iter().flat_map(std::env::split_paths) {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == "pem" || ext == "crt")
            })
            .collect();
        files.sort();
        for file in files {
            if let Ok(bytes) = fs::read(&file) {
                blocks.extend(certificate_blocks(&bytes));
            }
        }
    }
    unique(blocks)
}

/// The `CERTIFICATE` blocks of a PEM file, each normalised to `\n` line ends. Other blocks
/// (`TRUSTED CERTIFICATE`, keys, CRLs) and text between blocks are left out, and so is any
/// block whose base64 does not decode: one broken block would make cargo's TLS library
/// reject the whole bundle.
pub(super) fn certificate_blocks(pem_text: &[u8]) -> Vec<String> {
    // A system bundle is ASCII: the standard check passes it fast, where the lossy
    // conversion walks it byte by byte; that one only for a file with other bytes.
    let text = match std::str::from_utf8(pem_text) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(pem_text),
    };
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != PEM_CERT_BEGIN {
            continue;
        }
        let mut body = Vec::new();
        let mut whole = false;
        for line in lines.by_ref() {
            if line == PEM_CERT_END {
                whole = true;
                break;
            }
            if line.starts_with("-----") {
                // A marker inside a block: the block is broken, drop it.
                break;
            }
            body.push(line);
        }
        if whole && decodes(&body.concat()) {
            let mut block =
                String::with_capacity(body.iter().map(|l| l.len() + 1).sum::<usize>() + 60);
            for line in std::iter::once(PEM_CERT_BEGIN)
                .chain(body)
                .chain([PEM_CERT_END])
            {
                block.push_str(line);
                block.push('\n');
            }
            blocks.push(block);
        }
    }
    blocks
}

/// Whether a certificate's base64 body decodes. A root's bytes are public, so this uses
/// the fast decoder, not the constant-time one `rustls` keeps for keys: that one made
/// this check most of exec mode's start-up (3 ms for a system's 150 roots).
fn decodes(body: &str) -> bool {
    !body.is_empty() && STANDARD.decode(body).is_ok()
}

/// `blocks` without repeats, the first of each kept, in order. Compared borrowed: a
/// system's 150 roots are not copied to be compared.
pub(super) fn unique(blocks: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(blocks.len());
    let first: Vec<bool> = blocks
        .iter()
        .map(|block| seen.insert(block.as_str()))
        .collect();
    blocks
        .into_iter()
        .zip(first)
        .filter_map(|(block, first)| first.then_some(block))
        .collect()
}
