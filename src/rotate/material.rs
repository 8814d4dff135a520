//! Certificate material in memory: PEM in and out, identities (serial, fingerprint) for the
//! state file and audit log, and the split of a Vault chain into intermediates and roots.

use crate::certs;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use x509_parser::prelude::*;

/// What identifies one certificate in state and audit records. Never key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertId {
    /// Lowercase hex, no colons (as in reports).
    pub serial: String,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    pub subject_cn: String,
    /// RFC 3339.
    pub not_after: String,
}

impl CertId {
    /// The identity of a DER certificate.
    pub fn of(der: &[u8]) -> CertId {
        let f = certs::facts(der, "leaf");
        CertId {
            serial: f.serial,
            sha256: f.sha256,
            subject_cn: f.subject_cn,
            not_after: f.not_after,
        }
    }

    /// `serial 1f0a… sha256 ab12…` for human output.
    pub fn short(&self) -> String {
        format!(
            "serial {} sha256 {}",
            self.serial,
            &self.sha256[..12.min(self.sha256.len())]
        )
    }
}

/// Parses PEM certificates from text that came from Vault (`what` names it in errors).
pub fn parse_pem(text: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    certs::parse_certs(text.as_bytes(), what).map_err(|e| e.to_string())
}

/// PEM text of certificates, each block ending with a newline.
pub fn to_pem(ders: &[CertificateDer<'_>]) -> String {
    use base64::Engine;
    let mut out = String::new();
    for d in ders {
        let b64 = base64::engine::general_purpose::STANDARD.encode(d.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// True when the certificate is self-signed (a root).
pub fn is_root(der: &[u8]) -> bool {
    match X509Certificate::from_der(der) {
        Ok((_, c)) => certs::is_self_signed(&c),
        Err(_) => false,
    }
}

/// Splits a CA chain into (intermediates, roots), keeping order.
pub fn split_roots(
    chain: &[CertificateDer<'static>],
) -> (Vec<CertificateDer<'static>>, Vec<CertificateDer<'static>>) {
    chain.iter().cloned().partition(|d| !is_root(d.as_ref()))
}

/// Removes exact duplicates, keeping the first occurrence.
pub fn dedup(ders: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    let mut seen = std::collections::HashSet::new();
    ders.into_iter()
        .filter(|d| seen.insert(certs::sha256_hex(d.as_ref())))
        .collect()
}

/// True when `bundle` holds a certificate with the same DER as `ca`.
pub fn bundle_contains(bundle: &[CertificateDer<'_>], ca: &CertificateDer<'_>) -> bool {
    bundle.iter().any(|d| d.as_ref() == ca.as_ref())
}

#[cfg(test)]
pub(crate) mod testpki {
    //! A tiny PKI for unit tests: root → intermediate → leaves.
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    pub struct Ca {
        pub cert_pem: String,
        pub issuer: Issuer<'static, KeyPair>,
    }

    pub fn ca(cn: &str, parent: Option<&Ca>) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = match parent {
            Some(par) => p.signed_by(&key, &par.issuer).unwrap(),
            None => p.self_signed(&key).unwrap(),
        };
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// (cert PEM, key PEM) for a leaf with a CN and DNS SANs.
    pub fn leaf(cn: &str, sans: &[&str], by: &Ca) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = p.signed_by(&key, &by.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_split() {
        let root = testpki::ca("root", None);
        let int = testpki::ca("int", Some(&root));
        let text = format!("{}{}", int.cert_pem, root.cert_pem);
        let ders = parse_pem(&text, "chain").unwrap();
        assert_eq!(parse_pem(&to_pem(&ders), "again").unwrap(), ders);
        let (ints, roots) = split_roots(&ders);
        assert_eq!((ints.len(), roots.len()), (1, 1));
        assert_eq!(CertId::of(ints[0].as_ref()).subject_cn, "int");
        assert!(bundle_contains(&ders, &roots[0]));
    }
}
