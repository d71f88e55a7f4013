//! The one way an error becomes a line a person reads.
//!
//! Every error type in the crate says in `Display` what failed, in its own layer's
//! words and with its context, and leaves the cause to `source()`. [`Report`] walks
//! that chain and prints `what: cause: cause`, each part once. The CLI's `error: …`
//! line, the log lines for failed requests and the causes the router shows clients
//! all go through it.

use std::error::Error;
use std::fmt;

/// An error and its causes, as `what failed: cause: its cause`.
pub(crate) struct Report<'a>(pub(crate) &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// Checks the convention on `error` and every cause below it: no `Display` repeats
/// its source's text, and the report names each cause once.
#[cfg(test)]
pub(crate) fn assert_causes_once(error: &(dyn Error + 'static)) {
    let report = Report(error).to_string();
    let mut link = Some(error);
    while let Some(e) = link {
        let text = e.to_string();
        if let Some(source) = e.source() {
            let cause = source.to_string();
            assert!(
                !text.contains(&cause),
                "`{text}` repeats its source `{cause}`"
            );
            assert_eq!(
                report.matches(&cause).count(),
                1,
                "`{report}` names `{cause}` more than once"
            );
        }
        link = e.source();
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::SocketAddr;
    use std::path::PathBuf;

    use super::*;
    use crate::app::AppError;
    use crate::auth::TokenError;
    use crate::http::ConnError;
    use crate::project::fetch::FetchError;
    use crate::project::workspace::WorkspaceError;
    use crate::registry::RegistryError;
    use crate::tls::TlsError;
    use crate::upstream::{Failure, UpstreamError};

    fn disk() -> io::Error {
        io::Error::other("the disk is on fire")
    }

    fn storage() -> RegistryError {
        RegistryError::storage("top", "/srv/top/index", disk())
    }

    fn upstream() -> UpstreamError {
        UpstreamError::Failed {
            what: "GET https://index.example/config.json".into(),
            kind: Failure::Connect,
            source: ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()),
        }
    }

    #[test]
    fn every_error_type_leaves_its_cause_to_source() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let path = PathBuf::from("/srv/x");
        let errors: Vec<Box<dyn Error>> = vec![
            Box::new(AppError::Bind {
                addr,
                source: io::ErrorKind::AddrInUse.into(),
            }),
            Box::new(AppError::Address {
                host: "nowhere".into(),
                source: disk(),
            }),
            Box::new(AppError::Layer(storage())),
            Box::new(AppError::RunDir {
                path: path.clone(),
                source: disk(),
            }),
            Box::new(AppError::CargoPackage(WorkspaceError::Spawn(disk()))),
            Box::new(AppError::Tls(TlsError::Io {
                path: path.clone(),
                source: disk(),
            })),
            Box::new(AppError::Upstream(upstream())),
            Box::new(AppError::Tokens(TokenError::Read {
                path: path.clone(),
                source: disk(),
            })),
            Box::new(AppError::Lockfile {
                path: path.clone(),
                source: disk(),
            }),
            Box::new(AppError::Fetch(FetchError::Registry(storage()))),
            Box::new(AppError::Command {
                program: "cargo".into(),
                source: io::ErrorKind::NotFound.into(),
            }),
            Box::new(crate::Error::from(AppError::Layer(storage()))),
            Box::new(crate::Error::from(AppError::Tls(TlsError::Rustls(
                rustls::Error::DecryptError,
            )))),
            Box::new(storage()),
            Box::new(RegistryError::Upstream {
                detail: "upstream crates-io".into(),
                source: Some(Box::new(upstream())),
            }),
            Box::new(upstream()),
            Box::new(TlsError::Rustls(rustls::Error::DecryptError)),
            Box::new(TlsError::Pem {
                path: path.clone(),
                why: "invalid PEM".into(),
                source: Some(Box::new(disk())),
            }),
            Box::new(TokenError::Read {
                path,
                source: disk(),
            }),
            Box::new(WorkspaceError::Unreadable(
                serde_json::from_str::<u8>("x").unwrap_err(),
            )),
            Box::new(ConnError::Io(disk())),
        ];
        for error in &errors {
            assert_causes_once(error.as_ref());
            assert!(error.source().is_some(), "{error} has no source");
        }
        // What the CLI prints for a layer that cannot be opened.
        assert_eq!(
            Report(&AppError::Layer(storage())).to_string(),
            "cannot open a layer: storage error in layer top at /srv/top/index: \
             the disk is on fire"
        );
        assert_eq!(
            Report(&upstream()).to_string(),
            "GET https://index.example/config.json: cannot connect: io: connection refused"
        );
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn a_report_prints_each_cause_once() {
        let inner = Layer("C", None);
        let middle = Layer("B", Some(Box::new(inner)));
        let outer = Layer("A", Some(Box::new(middle)));
        assert_eq!(Report(&outer).to_string(), "A: B: C");
        assert_eq!(Report(&Layer("alone", None)).to_string(), "alone");
        // An io::Error wrapping an error shows it once: io::Error's Display is its
        // inner error's, and its source() that error's source.
        let io = std::io::Error::other(Layer("B", Some(Box::new(Layer("C", None)))));
        assert_eq!(Report(&io).to_string(), "B: C");
    }
}
