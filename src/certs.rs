//! Reading PEM files and describing certificates. Every failure is classified, never a panic.

use crate::model::CertFacts;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use x509_parser::prelude::*;

/// Largest certificate, key or bundle file read.
pub const MAX_FILE_BYTES: u64 = crate::fsread::PEM_CAP;

/// Why a local PEM file could not be used. `class()` is the stable reason token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("{path}: file not found; expected it to exist (check the path, or that the rotation wrote it)")]
    NotFound { path: String },
    #[error("{path}: permission denied reading it; run as a user that may read it, or fix its owner/mode")]
    PermissionDenied { path: String },
    #[error("{path}: cannot read: {detail}")]
    Unreadable { path: String, detail: String },
    #[error("{path}: file is empty; expected PEM {expected}")]
    Empty {
        path: String,
        expected: &'static str,
    },
    #[error(
        "{path}: larger than the 4 MiB limit; expected a PEM {expected} (is it the right file?)"
    )]
    TooLarge {
        path: String,
        expected: &'static str,
    },
    #[error("{path}: is {kind}; expected a regular file holding a PEM {expected}")]
    NotRegular {
        path: String,
        kind: &'static str,
        expected: &'static str,
    },
    #[error("{path}: file is DER (binary), expected PEM; convert it: openssl x509 -inform der -in {path} -out {path}.pem")]
    DerNotPem { path: String },
    #[error("{path}: bad PEM ({detail}); expected -----BEGIN {expected}----- ... -----END ...----- blocks (truncated or corrupted?)")]
    BadPem {
        path: String,
        detail: String,
        expected: &'static str,
    },
    #[error("{path}: no {expected} found in the file; found {found}")]
    NoneFound {
        path: String,
        expected: &'static str,
        found: String,
    },
    #[error("{path}: certificate #{index} does not parse as X.509 ({detail})")]
    BadDer {
        path: String,
        index: usize,
        detail: String,
    },
}

impl FileError {
    /// Stable reason token (x509-certificate-exporter's vocabulary where it exists).
    pub fn class(&self) -> &'static str {
        match self {
            FileError::NotFound { .. } => "not_found",
            FileError::PermissionDenied { .. } => "permission_denied",
            FileError::Unreadable { .. } => "read_failed",
            FileError::Empty { .. } => "empty",
            FileError::TooLarge { .. } => "too_large",
            FileError::NotRegular { .. } => "not_regular_file",
            FileError::DerNotPem { .. } => "der_not_pem",
            FileError::BadPem { .. } => "bad_pem",
            FileError::NoneFound { .. } => "no_certificate_found",
            FileError::BadDer { .. } => "bad_der",
        }
    }
}

/// Reads a regular file of at most `MAX_FILE_BYTES`, classifying I/O errors.
pub fn read_limited(path: &Path, expected: &'static str) -> Result<Vec<u8>, FileError> {
    let bytes = crate::fsread::read(path, MAX_FILE_BYTES, "a PEM file")
        .map_err(|e| file_error(e, expected))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(FileError::Empty {
            path: path.display().to_string(),
            expected,
        });
    }
    Ok(bytes)
}

fn file_error(e: crate::fsread::ReadError, expected: &'static str) -> FileError {
    use crate::fsread::ReadError as R;
    match e {
        R::NotFound { path } => FileError::NotFound { path },
        R::PermissionDenied { path } => FileError::PermissionDenied { path },
        R::NotRegular { path, kind } => FileError::NotRegular {
            path,
            kind,
            expected,
        },
        R::TooLarge { path, .. } => FileError::TooLarge { path, expected },
        R::Io { path, detail } => FileError::Unreadable { path, detail },
        R::NotText { path, .. } => FileError::Unreadable {
            path,
            detail: "not UTF-8 text".into(),
        },
    }
}

/// Reads every certificate of a PEM file (a cert, a fullchain, a bundle), in file order.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let bytes = read_limited(path, "CERTIFICATE")?;
    parse_certs(&bytes, &path.display().to_string())
}

/// Reads the certificates of a PEM file, or the one certificate of a DER file (`inspect`).
pub fn read_certs_pem_or_der(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let bytes = read_limited(path, "CERTIFICATE")?;
    let source = path.display().to_string();
    if bytes.first() != Some(&0x30) {
        return parse_certs(&bytes, &source);
    }
    match X509Certificate::from_der(&bytes) {
        Ok(([], _)) => Ok(vec![CertificateDer::from(bytes)]),
        Ok(_) => Err(FileError::BadDer {
            path: source,
            index: 1,
            detail: "bytes follow the certificate; a DER file holds exactly one".into(),
        }),
        Err(e) => Err(FileError::BadDer {
            path: source,
            index: 1,
            detail: e.to_string(),
        }),
    }
}

/// Parses PEM certificates from bytes; `source` names them in errors.
pub fn parse_certs(bytes: &[u8], source: &str) -> Result<Vec<CertificateDer<'static>>, FileError> {
    if bytes.first() == Some(&0x30) {
        return Err(FileError::DerNotPem {
            path: source.into(),
        });
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| FileError::BadPem {
            path: source.into(),
            detail: e.to_string(),
            expected: "CERTIFICATE",
        })?;
    if certs.is_empty() {
        return Err(FileError::NoneFound {
            path: source.into(),
            expected: "CERTIFICATE",
            found: describe_pem(bytes),
        });
    }
    for (i, c) in certs.iter().enumerate() {
        if let Err(e) = X509Certificate::from_der(c.as_ref()) {
            return Err(FileError::BadDer {
                path: source.into(),
                index: i + 1,
                detail: e.to_string(),
            });
        }
    }
    Ok(certs)
}

/// Reads a private key (PKCS#8, SEC1 or PKCS#1 PEM). The key never appears in errors.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, FileError> {
    let bytes = read_limited(path, "PRIVATE KEY")?;
    let source = path.display().to_string();
    if bytes.first() == Some(&0x30) {
        return Err(FileError::DerNotPem { path: source });
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => FileError::NoneFound {
            path: source,
            expected: "PRIVATE KEY",
            found: describe_pem(&bytes),
        },
        other => FileError::BadPem {
            path: source,
            detail: other.to_string(),
            expected: "PRIVATE KEY",
        },
    })
}

/// Names the PEM block labels in a file (`2 CERTIFICATE blocks`), for "found" messages.
fn describe_pem(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let labels: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .collect();
    if labels.is_empty() {
        "no PEM blocks".into()
    } else {
        labels.join(", ")
    }
}

/// Lowercase hex SHA-256 of DER bytes.
pub fn sha256_hex(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// A map keyed by certificate DER, for the per-thread memos of facts that are a pure
/// function of the DER.
pub(crate) type ByDer<V> = std::collections::HashMap<Box<[u8]>, V, DerHash>;

/// Hashes a DER by its length and last 32 bytes (part of the signature, all but unique per
/// certificate) instead of all of it; keys are still compared in full. The memos it serves
/// are small and bounded, so colliding certificates cost at most a longer probe.
#[derive(Default, Clone, Copy)]
pub(crate) struct DerHash;

impl std::hash::BuildHasher for DerHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(0xcbf2_9ce4_8422_2325)
    }
}

/// FNV-1a over the last 32 bytes of each write (see [`DerHash`]).
pub(crate) struct TailHasher(u64);

impl std::hash::Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(32)..];
        for b in tail {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Certificates remembered per thread by [`facts_shared`] before the memo is cleared.
const SHARED_MAX: usize = 64;

thread_local! {
    static SHARED: std::cell::RefCell<ByDer<CertFacts>> = Default::default();
}

/// [`facts`], remembered per thread by DER: for certificates many checks of a run see alike
/// (the intermediates of listeners served by one CA), not for leaves.
pub fn facts_shared(der: &[u8], position: &str) -> CertFacts {
    let hit = SHARED.with_borrow(|m| m.get(der).cloned());
    let mut f = hit.unwrap_or_else(|| {
        let f = facts(der, "");
        SHARED.with_borrow_mut(|m| {
            if m.len() >= SHARED_MAX {
                m.clear();
            }
            m.insert(der.into(), f.clone());
        });
        f
    });
    f.position = position.into();
    f
}

/// Facts about one certificate at a chain position. Unparseable DER gives placeholder facts.
pub fn facts(der: &[u8], position: &str) -> CertFacts {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => facts_of(&cert, der, position),
        Err(e) => unparsed(der, position, &e.to_string()),
    }
}

fn unparsed(der: &[u8], position: &str, detail: &str) -> CertFacts {
    CertFacts {
        position: position.into(),
        subject: format!("(unparseable certificate: {detail})"),
        subject_cn: String::new(),
        issuer: String::new(),
        issuer_cn: String::new(),
        serial: String::new(),
        sans: vec![],
        not_before: String::new(),
        not_after: String::new(),
        not_before_unix: 0,
        not_after_unix: 0,
        sha256: sha256_hex(der),
        key_type: String::new(),
        is_ca: false,
        self_signed: false,
        revoked: None,
    }
}

/// [`facts`] of `der`, parsed already as `cert`.
pub fn facts_parsed(cert: &X509Certificate<'_>, der: &[u8], position: &str) -> CertFacts {
    facts_of(cert, der, position)
}

fn facts_of(cert: &X509Certificate<'_>, der: &[u8], position: &str) -> CertFacts {
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    CertFacts {
        position: position.into(),
        subject: cert.subject().to_string(),
        subject_cn: first_cn(cert.subject()),
        issuer: cert.issuer().to_string(),
        issuer_cn: first_cn(cert.issuer()),
        serial: hex(cert.raw_serial())
            .trim_start_matches("00")
            .to_string()
            .max_or_zero(),
        sans: sans(cert),
        not_before: rfc3339(nb),
        not_after: rfc3339(na),
        not_before_unix: nb,
        not_after_unix: na,
        sha256: sha256_hex(der),
        key_type: key_type(cert),
        is_ca: cert.is_ca(),
        self_signed: is_self_signed(cert),
        revoked: None,
    }
}

trait OrZero {
    fn max_or_zero(self) -> String;
}

impl OrZero for String {
    fn max_or_zero(self) -> String {
        if self.is_empty() {
            "0".into()
        } else {
            self
        }
    }
}

/// The first CN of a name, or "" when there is none.
pub fn first_cn(name: &X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Subject alternative names as `DNS:x`, `IP:x`, `email:x`, `URI:x`.
pub fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return vec![];
    };
    ext.value
        .general_names
        .iter()
        .filter_map(general_name)
        .collect()
}

/// Why a certificate's subjectAltName extension cannot be read; `None` when it reads or is
/// absent. A malformed extension otherwise looks like "no SANs".
pub fn san_problem(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let err = cert.subject_alternative_name().err()?;
    let detail = cert
        .extensions()
        .iter()
        .filter(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_SUBJECT_ALT_NAME)
        .find_map(|e| e.parsed_extension().error().map(|x| x.to_string()))
        .unwrap_or_else(|| err.to_string());
    Some(detail)
}

/// Extensions WebPKI (rustls) understands when marked critical: key usage, SAN, basic and
/// name constraints, CRL distribution points, extended key usage, and SCT lists.
const UNDERSTOOD_CRITICAL: [&str; 7] = [
    "2.5.29.15",
    "2.5.29.17",
    "2.5.29.19",
    "2.5.29.30",
    "2.5.29.31",
    "2.5.29.37",
    "1.3.6.1.4.1.11129.2.4.2",
];

/// OIDs of the critical extensions rustls refuses a certificate for (unknown to WebPKI).
pub fn unsupported_critical(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return vec![];
    };
    cert.extensions()
        .iter()
        .filter(|e| e.critical)
        .map(|e| e.oid.to_id_string())
        .filter(|oid| !UNDERSTOOD_CRITICAL.contains(&oid.as_str()))
        .collect()
}

fn general_name(n: &GeneralName<'_>) -> Option<String> {
    match n {
        GeneralName::DNSName(d) => Some(format!("DNS:{d}")),
        GeneralName::RFC822Name(e) => Some(format!("email:{e}")),
        GeneralName::URI(u) => Some(format!("URI:{u}")),
        GeneralName::IPAddress(b) => ip_text(b).map(|ip| format!("IP:{ip}")),
        _ => None,
    }
}

fn ip_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?).to_string()),
        _ => None,
    }
}

/// True when subject equals issuer and the signature verifies with the cert's own key
/// (remembered: a CA file's root is asked again for every certificate judged against it).
pub fn is_self_signed(cert: &X509Certificate<'_>) -> bool {
    if cert.subject().as_raw() != cert.issuer().as_raw() {
        return false;
    }
    let alg = &cert.signature_algorithm;
    let params = alg.parameters.as_ref().map_or(&[][..], |p| p.as_bytes());
    let scope = [b"x509-parser".as_slice(), alg.algorithm.as_bytes(), params];
    let (key, tbs) = (cert.public_key().raw, cert.tbs_certificate.as_ref());
    let signature = cert.signature_value.data.as_ref();
    let verify = || cert.verify_signature(None).is_ok();
    crate::expect::chain::memo::remembered(&scope, key, tbs, signature, verify)
}

/// `RSA 2048`, `ECDSA P-256`, `Ed25519`, or the algorithm OID.
pub fn key_type(cert: &X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => format!("ECDSA {}", ec_curve(cert)),
        Ok(PublicKey::Unknown(_)) | Err(_) => {
            let oid = cert.public_key().algorithm.algorithm.to_id_string();
            if oid == "1.3.101.112" {
                "Ed25519".into()
            } else {
                oid
            }
        }
        Ok(other) => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or("unknown")
            .to_string(),
    }
}

fn ec_curve(cert: &X509Certificate<'_>) -> String {
    let params = cert.public_key().algorithm.parameters.as_ref();
    let oid = params
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
        .unwrap_or_default();
    match oid.as_str() {
        "1.2.840.10045.3.1.7" => "P-256".into(),
        "1.3.132.0.34" => "P-384".into(),
        "1.3.132.0.35" => "P-521".into(),
        other => other.into(),
    }
}

/// Unix seconds as RFC 3339 (UTC); out-of-range values are printed as numbers.
pub fn rfc3339(unix: i64) -> String {
    if (0..253_402_300_800).contains(&unix) {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix as u64);
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        format!("@{unix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys with the same length and tail hash alike but stay apart: the map compares them
    /// in full.
    #[test]
    fn der_keys_with_one_tail_stay_apart() {
        let mut m: ByDer<u8> = Default::default();
        let tail = [7u8; 40];
        let (a, b) = (
            [[1u8].as_slice(), &tail].concat(),
            [[2u8].as_slice(), &tail].concat(),
        );
        m.insert(a.clone().into(), 1);
        m.insert(b.clone().into(), 2);
        assert_eq!(
            (m.get(a.as_slice()), m.get(b.as_slice())),
            (Some(&1), Some(&2))
        );
        assert_eq!(m.get(&tail[..]), None);
    }
}
