//! The lab's error type: every variant says what was being done.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors from building the lab PKI, writing its files or running its listeners.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// rcgen refused to build or sign a certificate.
    #[error("certificate generation failed ({what}): {source}")]
    Cert {
        /// What was being generated.
        what: String,
        /// The rcgen error.
        source: rcgen::Error,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// rustls rejected a configuration (bad key, bad chain).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// PEM input held nothing usable.
    #[error("{what}: no usable PEM data")]
    Pem {
        /// Which input.
        what: String,
    },
    /// An in-process API call to the emulator failed.
    #[error("lab API {method} {path}: HTTP {status}: {message}")]
    Api {
        /// HTTP method.
        method: String,
        /// API path below `/v1/`.
        path: String,
        /// Status the emulator answered.
        status: u16,
        /// The `errors` texts, joined.
        message: String,
    },
    /// A value given to the lab was not acceptable.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The setting or argument.
        what: String,
        /// Why.
        detail: String,
    },
}

impl LabError {
    /// Wraps an rcgen error with what was being built.
    pub(crate) fn cert(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> LabError {
        let what = what.into();
        move |source| LabError::Cert { what, source }
    }

    /// Wraps an I/O error with the path involved (for `map_err`).
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
        let path = path.into();
        move |source| LabError::Io { path, source }
    }

    /// An invalid setting or argument.
    pub fn invalid(what: &str, detail: impl Into<String>) -> LabError {
        LabError::Invalid {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
