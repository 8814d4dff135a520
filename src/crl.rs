//! Certificate revocation lists: read from PEM or DER bytes, checked against their issuer
//! (name and signature), searched for a serial, and located through a certificate's CRL
//! distribution points. Fetching over HTTP(S) is in [`fetch`].

pub mod fetch;

use crate::certs::{hex, rfc3339};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

/// Largest CRL read from a file or over HTTP.
pub const MAX_CRL_BYTES: u64 = 4 * 1024 * 1024;

/// Why a CRL could not be used. `class()` is the stable reason token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    #[error("CRL from {origin} is unavailable: {detail}")]
    Unavailable { origin: String, detail: String },
    #[error("CRL from {origin} does not parse ({detail}); expected a DER or PEM (-----BEGIN X509 CRL-----) certificate revocation list")]
    Malformed { origin: String, detail: String },
    #[error("CRL from {origin} is issued by {crl_issuer:?}, not by {expected:?}; point the check at the CRL of the certificate's issuer")]
    WrongIssuer {
        origin: String,
        crl_issuer: String,
        expected: String,
    },
    #[error("CRL from {origin} is not signed by the key of {issuer:?} ({detail}); was it replaced, or is the issuer certificate from another CA?")]
    BadSignature {
        origin: String,
        issuer: String,
        detail: String,
    },
}

impl CrlError {
    /// Stable reason token.
    pub fn class(&self) -> &'static str {
        match self {
            CrlError::Unavailable { .. } => "crl_unavailable",
            CrlError::Malformed { .. } => "crl_malformed",
            CrlError::WrongIssuer { .. } | CrlError::BadSignature { .. } => "crl_bad_signature",
        }
    }
}

/// One revoked certificate of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Hex, lowercase, no leading zero bytes (as [`crate::model::CertFacts::serial`]).
    pub serial: String,
    pub time: i64,
    /// RFC 5280 reason code, when the entry has one.
    pub reason: Option<u8>,
}

impl Revoked {
    /// `revoked at 2026-…Z (reason 1, KeyCompromise)`.
    pub fn describe(&self) -> String {
        let reason = match self.reason {
            Some(r) => format!("reason code {r} ({})", ReasonCode(r)),
            None => "no reason code".into(),
        };
        format!("revoked at {}, {reason}", rfc3339(self.time))
    }
}

/// A parsed CRL: what the checks judge, and the DER for its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    /// Where it came from (a path or a URL), for messages.
    pub source: String,
    pub der: Vec<u8>,
    /// The issuer name as DER and as text.
    pub issuer_raw: Vec<u8>,
    pub issuer: String,
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub revoked: Vec<Revoked>,
}

impl Crl {
    /// Parses one DER CRL.
    pub fn from_der(der: &[u8], source: &str) -> Result<Crl, CrlError> {
        let malformed = |detail: String| CrlError::Malformed {
            origin: source.into(),
            detail,
        };
        let (rest, crl) =
            CertificateRevocationList::from_der(der).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed(format!("{} bytes after the CRL", rest.len())));
        }
        Ok(Crl {
            source: source.into(),
            der: der.to_vec(),
            issuer_raw: crl.issuer().as_raw().to_vec(),
            issuer: crl.issuer().to_string(),
            this_update: crl.last_update().timestamp(),
            next_update: crl.next_update().map(|t| t.timestamp()),
            revoked: crl.iter_revoked_certificates().map(revoked).collect(),
        })
    }

    /// The entry for a serial (hex as in [`Revoked::serial`]), when it is revoked.
    pub fn find(&self, serial: &str) -> Option<&Revoked> {
        self.revoked.iter().find(|r| r.serial == serial)
    }

    /// Checks that `issuer` (a DER certificate) issued and signed this CRL.
    pub fn verify(&self, issuer: &[u8]) -> Result<(), CrlError> {
        let (_, cert) = X509Certificate::from_der(issuer).map_err(|e| CrlError::Unavailable {
            origin: self.source.clone(),
            detail: format!("the issuer certificate does not parse ({e})"),
        })?;
        if cert.subject().as_raw() != self.issuer_raw.as_slice() {
            return Err(CrlError::WrongIssuer {
                origin: self.source.clone(),
                crl_issuer: self.issuer.clone(),
                expected: cert.subject().to_string(),
            });
        }
        self.verify_signature(&cert)
    }

    fn verify_signature(&self, issuer: &X509Certificate<'_>) -> Result<(), CrlError> {
        let bad = |detail: String| CrlError::BadSignature {
            origin: self.source.clone(),
            issuer: issuer.subject().to_string(),
            detail,
        };
        let (_, crl) =
            CertificateRevocationList::from_der(&self.der).map_err(|e| bad(e.to_string()))?;
        crl.verify_signature(issuer.public_key())
            .map_err(|e| bad(e.to_string()))
    }
}

fn revoked(r: &x509_parser::revocation_list::RevokedCertificate<'_>) -> Revoked {
    Revoked {
        serial: serial_hex(r.raw_serial()),
        time: r.revocation_date.timestamp(),
        reason: r.reason_code().map(|(_, code)| code.0),
    }
}

/// A raw serial as lowercase hex without leading zero bytes (`0` for zero).
pub fn serial_hex(raw: &[u8]) -> String {
    let text = hex(raw);
    let trimmed = text.trim_start_matches("00");
    match trimmed.is_empty() {
        true => "0".into(),
        false => trimmed.into(),
    }
}

/// Every CRL in `bytes`: one DER CRL, or PEM `X509 CRL` blocks in order.
pub fn parse_all(bytes: &[u8], source: &str) -> Result<Vec<Crl>, CrlError> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![Crl::from_der(bytes, source)?]);
    }
    let ders: Vec<CertificateRevocationListDer<'static>> =
        CertificateRevocationListDer::pem_slice_iter(bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| CrlError::Malformed {
                origin: source.into(),
                detail: format!("bad PEM: {e}"),
            })?;
    if ders.is_empty() {
        return Err(CrlError::Malformed {
            origin: source.into(),
            detail: "neither DER nor a PEM X509 CRL block".into(),
        });
    }
    ders.iter().map(|d| Crl::from_der(d, source)).collect()
}

/// Which CRL of `crls` is issued under `issuer_raw` (the certificate's issuer name), else
/// the first: a source holding one CRL is always tried (and fails its issuer check if wrong).
pub fn pick(crls: &[Crl], issuer_raw: &[u8]) -> Option<usize> {
    let named = crls.iter().position(|c| c.issuer_raw == issuer_raw);
    named.or((!crls.is_empty()).then_some(0))
}

/// The http(s) URLs of a certificate's CRL distribution points, in order.
pub fn distribution_points(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() else {
            continue;
        };
        for p in points.iter() {
            if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                urls.extend(names.iter().filter_map(http_uri));
            }
        }
    }
    urls
}

fn http_uri(n: &GeneralName<'_>) -> Option<String> {
    match n {
        GeneralName::URI(u) if u.starts_with("http://") || u.starts_with("https://") => {
            Some(u.to_string())
        }
        _ => None,
    }
}

/// `next update 2026-…Z`, or that the CRL names none.
pub fn describe_next_update(next: Option<i64>) -> String {
    match next {
        Some(t) => format!("next update {}", rfc3339(t)),
        None => "no next update".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_drop_leading_zero_bytes() {
        assert_eq!(serial_hex(&[0, 0x8a, 0x01]), "8a01");
        assert_eq!(serial_hex(&[0]), "0");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let e = parse_all(b"hello", "x.crl").unwrap_err();
        assert_eq!(e.class(), "crl_malformed");
        let e = parse_all(&[0x30, 0x03, 0x02, 0x01], "x.crl").unwrap_err();
        assert_eq!(e.class(), "crl_malformed");
    }
}
