//! Why a Vault call failed: typed errors with context, and the classification of connection
//! failures (reset, refused, timeout, dns, tls_alert, protocol, ...) shared with the TLS probe's
//! vocabulary. Messages say what was expected, what was found and what to do; they never hold a
//! token or key material.

use crate::certs::FileError;
use crate::model::{ChainReason, FailureClass, ProbeError};
use std::error::Error as StdError;
use std::io;

/// A failed Vault call or a Vault client that could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VaultError {
    /// Neither the suite's `vault.addr` nor `VAULT_ADDR` is set.
    #[error("no Vault address configured; set vault.addr in the suite (or VAULT_ADDR), e.g. https://127.0.0.1:8200")]
    NoAddress,
    /// The address does not parse.
    #[error(
        "bad Vault address {addr:?}: {why}; write https://host:port, e.g. https://127.0.0.1:8200"
    )]
    BadAddress { addr: String, why: String },
    /// A CA, client certificate or key file could not be used.
    #[error("{what}: {source}")]
    File {
        what: &'static str,
        #[source]
        source: FileError,
    },
    /// The client could not be set up (e.g. the key does not pair with the certificate).
    #[error("{0}")]
    Setup(String),
    /// The connection failed before Vault answered.
    #[error("{message}")]
    Connect {
        class: FailureClass,
        alert: Option<String>,
        message: String,
    },
    /// Vault's certificate did not verify against the configured CA.
    #[error("{message}")]
    ServerCert {
        reason: ChainReason,
        message: String,
    },
    /// Vault answered with a status the caller did not accept.
    #[error("Vault answered {status} to {method} {path}{}", said(.errors))]
    Http {
        method: &'static str,
        path: String,
        status: u16,
        errors: Vec<String>,
    },
    /// Vault's answer could not be read (garbage, not JSON, too large, missing fields).
    #[error("{method} {path}: {detail}")]
    BadResponse {
        method: &'static str,
        path: String,
        detail: String,
    },
    /// A call needs a token and none is configured.
    #[error("{what} needs a Vault token and none is configured; set vault.token (e.g. ${{env:VAULT_TOKEN}}), VAULT_TOKEN, or a cert login: vault.auth: {{cert: {{mount: cert, role: admin}}}}")]
    NoToken { what: String },
    /// The profile's cert login (for an admin token) failed.
    #[error("the vault profile's cert login at auth/{mount}/login failed: {source}")]
    ProfileLogin {
        mount: String,
        #[source]
        source: Box<VaultError>,
    },
}

/// ` — Vault said: a; b` or nothing when Vault gave no message.
fn said(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!("; Vault said: {}", errors.join("; "))
    }
}

impl VaultError {
    /// The stable class token: a connection class, `server_cert`, `http_<status>`, `config`...
    pub fn class(&self) -> String {
        match self {
            VaultError::NoAddress | VaultError::BadAddress { .. } | VaultError::NoToken { .. } => {
                "config".into()
            }
            VaultError::File { source, .. } => source.class().into(),
            VaultError::Setup(_) => "setup".into(),
            VaultError::Connect { class, .. } => class.as_str().into(),
            VaultError::ServerCert { .. } => "server_cert".into(),
            VaultError::Http { status, .. } if is_invalid_token(*status, self.errors()) => {
                "invalid_token".into()
            }
            VaultError::Http { status: 403, .. } => "permission_denied".into(),
            VaultError::Http { status: 503, .. } => "sealed".into(),
            VaultError::Http { status, .. } => format!("http_{status}"),
            VaultError::BadResponse { .. } => "bad_response".into(),
            VaultError::ProfileLogin { source, .. } => source.class(),
        }
    }

    /// Vault's error messages, when this is an HTTP error (possibly through a profile login).
    pub fn errors(&self) -> &[String] {
        match self {
            VaultError::Http { errors, .. } => errors,
            VaultError::ProfileLogin { source, .. } => source.errors(),
            _ => &[],
        }
    }

    /// The HTTP status, when Vault answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Http { status, .. } => Some(*status),
            VaultError::ProfileLogin { source, .. } => source.status(),
            _ => None,
        }
    }

    /// True when nothing reached Vault or Vault could not be trusted (no HTTP answer).
    pub fn is_connection(&self) -> bool {
        match self {
            VaultError::Connect { .. } | VaultError::ServerCert { .. } => true,
            VaultError::ProfileLogin { source, .. } => source.is_connection(),
            _ => false,
        }
    }

    /// The connection failure class, if this is a connection failure.
    pub fn failure_class(&self) -> Option<FailureClass> {
        match self {
            VaultError::Connect { class, .. } => Some(*class),
            VaultError::ProfileLogin { source, .. } => source.failure_class(),
            _ => None,
        }
    }

    /// The error for a report: connection failures keep their class and alert name.
    pub fn to_probe_error(&self) -> ProbeError {
        let mut e = match self.failure_class() {
            Some(class) => ProbeError::connect(class, self.to_string()),
            None => ProbeError::local(&self.class(), self.to_string()),
        };
        e.alert = self.alert().map(str::to_string);
        e
    }

    /// The TLS alert name, when the peer sent one.
    pub fn alert(&self) -> Option<&str> {
        match self {
            VaultError::Connect { alert, .. } => alert.as_deref(),
            VaultError::ProfileLogin { source, .. } => source.alert(),
            _ => None,
        }
    }
}

/// A 403 whose message says the token itself is bad (≥ 1.17 adds `invalid token`).
fn is_invalid_token(status: u16, errors: &[String]) -> bool {
    status == 403 && errors.iter().any(|e| e.contains("invalid token"))
}

/// What went wrong below HTTP, found by walking an error's source chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A connection failure class, with the TLS alert name for `tls_alert`.
    Class(FailureClass, Option<String>),
    /// The server certificate was rejected by our verifier.
    ServerCert(ChainReason),
}

/// Classifies an error chain (hyper, tokio-rustls, io). Unknown errors are `io`.
pub fn classify(err: &(dyn StdError + 'static)) -> Cause {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(c) = io.get_ref().and_then(|i| classify_inner(i)) {
                return c;
            }
            if let Some(c) = classify_io(io) {
                return Cause::Class(c, None);
            }
        }
        if let Some(c) = classify_inner(e) {
            return c;
        }
        cur = e.source();
    }
    hyper_fallback(err)
}

/// A rustls error, possibly wrapped in an io::Error's payload.
fn classify_inner(e: &(dyn StdError + 'static)) -> Option<Cause> {
    e.downcast_ref::<rustls::Error>().map(classify_rustls)
}

/// io error kinds and errnos to classes; None for kinds that say nothing (`Other`).
pub fn classify_io(e: &io::Error) -> Option<FailureClass> {
    use io::ErrorKind as K;
    if let Some(c) = e.raw_os_error().and_then(classify_errno) {
        return Some(c);
    }
    Some(match e.kind() {
        K::ConnectionRefused => FailureClass::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => FailureClass::Reset,
        K::TimedOut => FailureClass::Timeout,
        K::UnexpectedEof => FailureClass::Eof,
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
            FailureClass::Unreachable
        }
        K::InvalidData => FailureClass::Protocol,
        _ => return None,
    })
}

/// Linux errnos: ECONNREFUSED 111, ECONNRESET 104, ECONNABORTED 103, EPIPE 32, ETIMEDOUT 110,
/// EHOSTUNREACH 113, ENETUNREACH 101.
fn classify_errno(n: i32) -> Option<FailureClass> {
    Some(match n {
        111 => FailureClass::Refused,
        104 | 103 | 32 => FailureClass::Reset,
        110 => FailureClass::Timeout,
        113 | 101 => FailureClass::Unreachable,
        _ => return None,
    })
}

fn classify_rustls(e: &rustls::Error) -> Cause {
    use rustls::Error as R;
    match e {
        R::AlertReceived(a) => Cause::Class(FailureClass::TlsAlert, Some(alert_name(*a))),
        R::InvalidCertificate(c) => Cause::ServerCert(chain_reason(c)),
        R::InvalidMessage(_)
        | R::InappropriateMessage { .. }
        | R::InappropriateHandshakeMessage { .. }
        | R::PeerMisbehaved(_)
        | R::PeerIncompatible(_)
        | R::PeerSentOversizedRecord
        | R::DecryptError
        | R::NoCertificatesPresented => Cause::Class(FailureClass::Protocol, None),
        _ => Cause::Class(FailureClass::Io, None),
    }
}

/// The chain reason for a rejected server certificate.
pub fn chain_reason(c: &rustls::CertificateError) -> ChainReason {
    use rustls::CertificateError as C;
    match c {
        C::Expired | C::ExpiredContext { .. } => ChainReason::Expired,
        C::NotValidYet | C::NotValidYetContext { .. } => ChainReason::NotYetValid,
        C::UnknownIssuer => ChainReason::UnknownIssuer,
        C::BadSignature
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => ChainReason::BadSignature,
        C::NotValidForName | C::NotValidForNameContext { .. } => ChainReason::NameMismatch,
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => ChainReason::InvalidUsage,
        _ => ChainReason::Other,
    }
}

/// hyper errors without an io cause: a closed connection is `eof`, an HTTP parse error means
/// the peer does not speak HTTP (`protocol`).
fn hyper_fallback(err: &(dyn StdError + 'static)) -> Cause {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            let class = if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                FailureClass::Eof
            } else if h.is_parse() || h.is_parse_status() {
                FailureClass::Protocol
            } else if h.is_timeout() {
                FailureClass::Timeout
            } else {
                FailureClass::Io
            };
            return Cause::Class(class, None);
        }
        cur = e.source();
    }
    Cause::Class(FailureClass::Io, None)
}

/// The RFC name of a TLS alert (`certificate_required`, `unrecognized_name`, `unknown_ca`),
/// named exactly as the TLS probe names it.
pub fn alert_name(a: rustls::AlertDescription) -> String {
    crate::kinds::classify::alert_name(u8::from(a))
}

/// Turns go-multierror text (`1 error occurred:\n\t* permission denied\n\n`) into one line,
/// redacted before it is cut to 300 characters (so no part of a secret survives the cut).
pub fn clean_message(msg: &str) -> String {
    let msg = &crate::redact::redact(msg);
    let items: Vec<&str> = msg
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("* "))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = if msg.contains("error occurred:") || msg.contains("errors occurred:") {
        items.join("; ")
    } else {
        msg.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    crate::redact::truncate(&line, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multierror_text_becomes_one_line() {
        let two = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n";
        assert_eq!(clean_message(two), "permission denied; invalid token");
        assert_eq!(clean_message("Vault is sealed"), "Vault is sealed");
        assert_eq!(clean_message("a\n  b"), "a b");
    }

    #[test]
    fn messages_are_redacted_before_the_cut() {
        let token = format!("hvs.CAESI{}", "x".repeat(90));
        for pad in 280..300 {
            let msg = format!("{} {token}", "a".repeat(pad));
            let out = clean_message(&msg);
            assert!(!out.contains("CAESI"), "{pad}: {out}");
        }
        let multi = format!("1 error occurred:\n\t* bad token {token}\n\n");
        assert_eq!(clean_message(&multi), "bad token hvs.[redacted]");
    }

    #[test]
    fn alert_names_follow_the_rfc() {
        use rustls::AlertDescription as A;
        assert_eq!(alert_name(A::CertificateRequired), "certificate_required");
        assert_eq!(alert_name(A::UnrecognisedName), "unrecognized_name");
        assert_eq!(alert_name(A::BadCertificate), "bad_certificate");
        assert_eq!(alert_name(A::UnknownCA), "unknown_ca");
    }

    #[test]
    fn io_errors_are_classified() {
        let reset = io::Error::from_raw_os_error(104);
        assert_eq!(classify(&reset), Cause::Class(FailureClass::Reset, None));
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "x");
        assert_eq!(
            classify(&refused),
            Cause::Class(FailureClass::Refused, None)
        );
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        let want = Cause::Class(FailureClass::TlsAlert, Some("certificate_required".into()));
        assert_eq!(classify(&alert), want);
        let cert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(
            classify(&cert),
            Cause::ServerCert(ChainReason::UnknownIssuer)
        );
    }

    #[test]
    fn http_classes() {
        let e = VaultError::Http {
            method: "GET",
            path: "auth/cert/certs/x".into(),
            status: 403,
            errors: vec!["permission denied; invalid token".into()],
        };
        assert_eq!(e.class(), "invalid_token");
        assert!(e.to_string().contains("Vault said: permission denied"));
    }
}
