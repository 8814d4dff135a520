//! Certificates and keys: PEM and DER parsing (`certs::parse_certs`, `certs::facts`), the
//! private-key parser, and the verification logic of `rotcheck verify` and `rotate` (chain
//! building, names, pairing, CA chain order). Input: the presented PEM (certificates and
//! maybe a key), then after a NUL the CA file's PEM; without a NUL the CA file is the same
//! text. An input starting with a DER SEQUENCE byte is read as raw DER certificates instead.

use rotcheck::certs;
use rotcheck::expect::chain::{self, Usage};
use rotcheck::rotate::material;
use rotcheck::rotate::secret::Secret;
use rotcheck::rotate::verify::{self, Candidate, Expected};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::time::{Duration, SystemTime};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The instant every verification is pinned to (2027-01-15), so runs repeat.
const AT_SECS: u64 = 1_800_000_000;

/// The name the leaf is checked against.
const HOST: &str = "app.example.test";

/// Fuzz entry point.
pub fn run(data: &[u8]) {
    if data.first() == Some(&0x30) {
        der(data);
        return;
    }
    let (presented, ca) = crate::split_nul(data);
    let ca = if ca.is_empty() { presented } else { ca };
    key(presented);
    let Ok(certs) = certs::parse_certs(presented, "presented.pem") else {
        return;
    };
    let anchors = certs::parse_certs(ca, "ca.pem").unwrap_or_default();
    describe(&certs);
    round_trip(&certs);
    validate(&certs, &anchors, data.len().is_multiple_of(2));
    rotate_verify(&certs, &anchors, presented);
}

/// Raw DER: one certificate as `facts` sees it, then the certificates that parse one after
/// another (leaf first) through the same checks as PEM, each list also its own CA file.
fn der(data: &[u8]) {
    let f = certs::facts(data, "leaf");
    let _ = serde_json::to_string(&f);
    let _ = material::is_root(data);
    let ders = der_list(data);
    if ders.is_empty() {
        return;
    }
    describe(&ders);
    round_trip(&ders);
    validate(&ders, &ders, data.len().is_multiple_of(2));
    rotate_verify(&ders, &ders, b"");
}

/// The DER certificates at the start of `data`, back to back.
fn der_list(mut data: &[u8]) -> Vec<CertificateDer<'static>> {
    let mut out = Vec::new();
    while let Ok((rest, _)) = X509Certificate::from_der(data) {
        let used = data.len() - rest.len();
        out.push(CertificateDer::from(data[..used].to_vec()));
        data = rest;
    }
    out
}

/// The private-key parser and the public half it derives.
fn key(presented: &[u8]) {
    if let Some(text) = crate::text(presented) {
        let _ = verify::public_key_of(&Secret::new(text));
    }
}

/// Everything `inspect` shows about each certificate.
fn describe(ders: &[CertificateDer<'static>]) {
    let _ = serde_json::to_string(&rotcheck::kinds::tls::cert_facts(ders));
    for d in ders {
        if let Ok((_, c)) = X509Certificate::from_der(d.as_ref()) {
            let _ = (
                certs::sans(&c),
                certs::key_type(&c),
                certs::is_self_signed(&c),
            );
            let _ = (certs::first_cn(c.subject()), certs::first_cn(c.issuer()));
        }
    }
}

/// What rotate writes as PEM reads back as the same certificates.
fn round_trip(ders: &[CertificateDer<'static>]) {
    let pem = material::to_pem(ders);
    let again = material::parse_pem(&pem, "written").expect("written PEM reads back");
    assert_eq!(
        again, ders,
        "PEM written by rotate did not read back the same"
    );
    let (inter, roots) = material::split_roots(ders);
    assert_eq!(inter.len() + roots.len(), ders.len());
    assert!(material::dedup(ders.to_vec()).len() <= ders.len());
}

/// Chain building as `verify` and the tls probe do it.
fn validate(certs: &[CertificateDer<'static>], ca: &[CertificateDer<'static>], partial: bool) {
    let now = UnixTime::since_unix_epoch(Duration::from_secs(AT_SECS));
    let lone = chain::with_ca_intermediates(certs, ca);
    for usage in [Usage::Server, Usage::Either] {
        if let Err(e) = chain::validate_for(&lone, ca, Some(HOST), now, partial, usage) {
            let _ = (e.reason, e.message);
        }
    }
    let _ = chain::validate(certs, ca, Some("10.0.0.1"), now, !partial);
}

/// The checks `rotate` runs before it swaps new material in.
fn rotate_verify(certs: &[CertificateDer<'static>], ca: &[CertificateDer<'static>], text: &[u8]) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(AT_SECS);
    let key = Secret::new(String::from_utf8_lossy(text));
    let candidate = Candidate {
        leaf: &certs[0],
        intermediates: &certs[1..],
        ca_chain: ca,
        key: Some(&key),
    };
    let want = Expected {
        cn: Some("app".into()),
        sans: vec![HOST.into()],
    };
    if let Err(e) = verify::verify(&candidate, &want, now) {
        let _ = e.to_string();
    }
    let _ = verify::verify_ca_chain(ca, now).map_err(|e| e.to_string());
}
