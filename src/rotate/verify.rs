//! Verification before the swap: new material must parse, the key must pair with the leaf,
//! the chain must reach the CA, the leaf must carry the requested names and be within its
//! validity. Anything else refuses the swap and leaves the old files in place.

use super::material::{split_roots, CertId};
use super::secret::Secret;
use crate::certs;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::time::{Duration, SystemTime};
use x509_parser::prelude::*;

/// Why new material was refused. Every message says expected / found / what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("{what} does not parse ({detail}); refusing to install it")]
    Parse { what: String, detail: String },
    #[error(
        "the private key does not parse as PEM (PKCS#8, SEC1 or PKCS#1); refusing to install it"
    )]
    BadKey,
    #[error("the private key does not pair with the new certificate (key: {key}, certificate: {cert}); refusing to install a mismatched pair")]
    KeyMismatch { key: String, cert: String },
    #[error("the new certificate does not chain to the CA ({detail}); expected a path from the leaf through the intermediates to {anchor}; check the mount's issuer or ca_chain")]
    Chain { detail: String, anchor: String },
    #[error(
        "the new certificate's CN is {found:?}, expected {expected:?}; check the role and --cn"
    )]
    CommonName { expected: String, found: String },
    #[error("the new certificate lacks the name {name:?} (it names {presented}); check the role's allowed domains and --alt-names")]
    MissingName { name: String, presented: String },
    #[error("the new certificate is expired (not after {not_after}); check the issuer's clock and the CA's own expiry")]
    Expired { not_after: String },
    #[error("{subject:?} in the CA chain is not a CA certificate; expected only CA certificates (issuer first, then up to the root)")]
    NotCa { subject: String },
    #[error("the CA chain is out of order or broken: {child:?} is not signed by the next certificate {parent:?}; expected issuer first, then each parent up to the root")]
    BrokenChain { child: String, parent: String },
    #[error(
        "{subject:?} in the CA chain expired at {not_after}; rotate the CA before distributing it"
    )]
    CaExpired { subject: String, not_after: String },
    #[error("the new certificate is not valid before {not_before} (now {now}); check the clocks of Vault and this machine")]
    NotYetValid { not_before: String, now: String },
}

/// What the new material is checked against.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The subject CN the leaf must carry.
    pub cn: Option<String>,
    /// Names that must be among the leaf's SANs (DNS names, IPs, emails, URIs).
    pub sans: Vec<String>,
}

/// New material to verify.
pub struct Candidate<'a> {
    pub leaf: &'a CertificateDer<'static>,
    /// Intermediates that come with the leaf (issuer first).
    pub intermediates: &'a [CertificateDer<'static>],
    /// The CA chain (issuer first, up to and usually including the root).
    pub ca_chain: &'a [CertificateDer<'static>],
    pub key: Option<&'a Secret>,
}

/// What verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub leaf: CertId,
    /// Set when the chain had no self-signed root and was anchored at its top certificate.
    pub note: Option<String>,
}

/// Tolerance for a not-before slightly ahead of this machine's clock.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Runs every check; the first failure refuses the swap.
pub fn verify(
    c: &Candidate<'_>,
    want: &Expected,
    now: SystemTime,
) -> Result<Verified, VerifyError> {
    let (_, leaf) = X509Certificate::from_der(c.leaf.as_ref()).map_err(|e| VerifyError::Parse {
        what: "the new certificate".into(),
        detail: e.to_string(),
    })?;
    if let Some(key) = c.key {
        pairs(key, &leaf)?;
    }
    validity(&leaf, now)?;
    names(&leaf, want)?;
    let note = chain(c, now)?;
    Ok(Verified {
        leaf: CertId::of(c.leaf.as_ref()),
        note,
    })
}

/// The key's public half equals the leaf's public key.
pub fn pairs(key: &Secret, leaf: &X509Certificate<'_>) -> Result<(), VerifyError> {
    let spki = public_key_of(key)?;
    let cert_spki = leaf.public_key();
    let same = match SubjectPublicKeyInfo::from_der(&spki) {
        Ok((_, k)) => {
            k.algorithm.algorithm == cert_spki.algorithm.algorithm
                && k.subject_public_key.data == cert_spki.subject_public_key.data
        }
        Err(_) => false,
    };
    if same {
        return Ok(());
    }
    Err(VerifyError::KeyMismatch {
        key: spki_type(&spki),
        cert: spki_type(cert_spki.raw),
    })
}

/// The DER SubjectPublicKeyInfo of a PEM private key.
pub fn public_key_of(key: &Secret) -> Result<Vec<u8>, VerifyError> {
    let der =
        PrivateKeyDer::from_pem_slice(key.expose().as_bytes()).map_err(|_| VerifyError::BadKey)?;
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&der).map_err(|_| VerifyError::BadKey)?;
    let spki = signer.public_key().ok_or(VerifyError::BadKey)?;
    Ok(spki.as_ref().to_vec())
}

fn spki_type(spki: &[u8]) -> String {
    use x509_parser::public_key::PublicKey;
    match SubjectPublicKeyInfo::from_der(spki) {
        Ok((_, k)) => match k.parsed() {
            Ok(PublicKey::RSA(r)) => format!("RSA {}", r.key_size()),
            Ok(PublicKey::EC(_)) => "ECDSA".into(),
            _ => k.algorithm.algorithm.to_id_string(),
        },
        Err(_) => "unknown".into(),
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn validity(leaf: &X509Certificate<'_>, now: SystemTime) -> Result<(), VerifyError> {
    let (nb, na) = (
        leaf.validity().not_before.timestamp(),
        leaf.validity().not_after.timestamp(),
    );
    let t = unix(now);
    if na <= t {
        return Err(VerifyError::Expired {
            not_after: certs::rfc3339(na),
        });
    }
    if nb > t + CLOCK_SKEW.as_secs() as i64 {
        return Err(VerifyError::NotYetValid {
            not_before: certs::rfc3339(nb),
            now: certs::rfc3339(t),
        });
    }
    Ok(())
}

fn names(leaf: &X509Certificate<'_>, want: &Expected) -> Result<(), VerifyError> {
    if let Some(cn) = &want.cn {
        let found = certs::first_cn(leaf.subject());
        if !found.eq_ignore_ascii_case(cn) {
            return Err(VerifyError::CommonName {
                expected: cn.clone(),
                found,
            });
        }
    }
    let sans = certs::sans(leaf);
    let bare: Vec<String> = sans
        .iter()
        .map(|s| {
            s.split_once(':')
                .map(|(_, v)| v)
                .unwrap_or(s)
                .to_ascii_lowercase()
        })
        .collect();
    for n in &want.sans {
        if !bare.contains(&n.to_ascii_lowercase()) {
            let presented = if sans.is_empty() {
                "no SANs".into()
            } else {
                sans.join(", ")
            };
            return Err(VerifyError::MissingName {
                name: n.clone(),
                presented,
            });
        }
    }
    Ok(())
}

/// Builds a path from the leaf to a self-signed root of the CA chain (or, when the chain
/// has no root, to its top certificate, with a note saying so).
fn chain(c: &Candidate<'_>, now: SystemTime) -> Result<Option<String>, VerifyError> {
    let (ints, roots) = split_roots(c.ca_chain);
    let (anchors_der, note) = if roots.is_empty() {
        let top = c.ca_chain.last().cloned().into_iter().collect::<Vec<_>>();
        let note = "the CA chain has no self-signed root; verified up to its top certificate";
        (top, Some(note.to_string()))
    } else {
        (roots, None)
    };
    let anchor_names = anchors_der
        .iter()
        .map(|d| format!("{:?}", CertId::of(d.as_ref()).subject_cn))
        .collect::<Vec<_>>()
        .join(", ");
    let anchor = if anchor_names.is_empty() {
        "a CA (none was given)".into()
    } else {
        anchor_names
    };
    let fail = |detail: String| VerifyError::Chain {
        detail,
        anchor: anchor.clone(),
    };
    let anchors: Vec<_> = anchors_der
        .iter()
        .map(|d| webpki::anchor_from_trusted_cert(d).map(|a| a.to_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            fail(format!(
                "a CA certificate is unusable as a trust anchor: {e:?}"
            ))
        })?;
    let mut pool: Vec<CertificateDer<'static>> = c.intermediates.to_vec();
    pool.extend(ints);
    let ee = webpki::EndEntityCert::try_from(c.leaf).map_err(|e| fail(format!("{e:?}")))?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(unix(now).max(0) as u64));
    let algs = webpki::ALL_VERIFICATION_ALGS;
    let try_usage = |u: webpki::KeyUsage| {
        ee.verify_for_usage(algs, &anchors, &pool, time, u, None, None)
            .map(|_| ())
    };
    try_usage(webpki::KeyUsage::server_auth())
        .or_else(|_| try_usage(webpki::KeyUsage::client_auth()))
        .map_err(|e| fail(format!("{e:?}")))?;
    Ok(note)
}

/// A CA chain as distributed to consumers: CA certificates only, each signed by the next,
/// none expired.
pub fn verify_ca_chain(
    chain: &[CertificateDer<'static>],
    now: SystemTime,
) -> Result<(), VerifyError> {
    let parsed = chain
        .iter()
        .map(|d| X509Certificate::from_der(d.as_ref()).map(|(_, c)| c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| VerifyError::Parse {
            what: "the CA chain".into(),
            detail: e.to_string(),
        })?;
    let t = unix(now);
    for c in &parsed {
        let subject = certs::first_cn(c.subject());
        if !c.is_ca() {
            return Err(VerifyError::NotCa { subject });
        }
        if c.validity().not_after.timestamp() <= t {
            let not_after = certs::rfc3339(c.validity().not_after.timestamp());
            return Err(VerifyError::CaExpired { subject, not_after });
        }
    }
    for pair in parsed.windows(2) {
        if pair[0]
            .verify_signature(Some(pair[1].public_key()))
            .is_err()
        {
            return Err(VerifyError::BrokenChain {
                child: certs::first_cn(pair[0].subject()),
                parent: certs::first_cn(pair[1].subject()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::material::{parse_pem, testpki};
    use super::*;

    struct Fixture {
        leaf: CertificateDer<'static>,
        key: Secret,
        chain: Vec<CertificateDer<'static>>,
    }

    fn fixture(cn: &str, sans: &[&str]) -> Fixture {
        let root = testpki::ca("root", None);
        let int = testpki::ca("int", Some(&root));
        let (cert, key) = testpki::leaf(cn, sans, &int);
        let chain = parse_pem(&format!("{}{}", int.cert_pem, root.cert_pem), "chain").unwrap();
        Fixture {
            leaf: parse_pem(&cert, "leaf").unwrap().remove(0),
            key: Secret::new(key),
            chain,
        }
    }

    fn cand(f: &Fixture) -> Candidate<'_> {
        Candidate {
            leaf: &f.leaf,
            intermediates: &[],
            ca_chain: &f.chain,
            key: Some(&f.key),
        }
    }

    #[test]
    fn ca_chain_order_is_checked() {
        let root = testpki::ca("root", None);
        let int = testpki::ca("int", Some(&root));
        let good = parse_pem(&format!("{}{}", int.cert_pem, root.cert_pem), "c").unwrap();
        verify_ca_chain(&good, SystemTime::now()).unwrap();
        let bad = parse_pem(&format!("{}{}", root.cert_pem, int.cert_pem), "c").unwrap();
        assert!(matches!(
            verify_ca_chain(&bad, SystemTime::now()),
            Err(VerifyError::BrokenChain { .. })
        ));
        let f = fixture("a.example", &[]);
        let mut with_leaf = vec![f.leaf.clone()];
        with_leaf.extend(f.chain.clone());
        assert!(matches!(
            verify_ca_chain(&with_leaf, SystemTime::now()),
            Err(VerifyError::NotCa { .. })
        ));
    }

    #[test]
    fn good_material_passes() {
        let f = fixture("a.example", &["a.example"]);
        let want = Expected {
            cn: Some("a.example".into()),
            sans: vec!["a.example".into()],
        };
        let v = verify(&cand(&f), &want, SystemTime::now()).unwrap();
        assert_eq!(v.leaf.subject_cn, "a.example");
        assert_eq!(v.note, None);
    }

    #[test]
    fn wrong_key_names_and_chain_are_refused() {
        let f = fixture("a.example", &["a.example"]);
        let other = fixture("b.example", &["b.example"]);
        let mut c = cand(&f);
        c.key = Some(&other.key);
        assert!(matches!(
            verify(&c, &Expected::default(), SystemTime::now()),
            Err(VerifyError::KeyMismatch { .. })
        ));
        let want = Expected {
            cn: None,
            sans: vec!["c.example".into()],
        };
        assert!(matches!(
            verify(&cand(&f), &want, SystemTime::now()),
            Err(VerifyError::MissingName { .. })
        ));
        let want = Expected {
            cn: Some("z".into()),
            sans: vec![],
        };
        assert!(matches!(
            verify(&cand(&f), &want, SystemTime::now()),
            Err(VerifyError::CommonName { .. })
        ));
        let mut c = cand(&f);
        c.ca_chain = &other.chain;
        assert!(matches!(
            verify(&c, &Expected::default(), SystemTime::now()),
            Err(VerifyError::Chain { .. })
        ));
        let later = SystemTime::now() + Duration::from_secs(3000 * 365 * 86_400); // rcgen: valid until 4096
        assert!(matches!(
            verify(&cand(&f), &Expected::default(), later),
            Err(VerifyError::Expired { .. })
        ));
    }
}
