//! Private keys: the file holds a usable PKCS#8, SEC1 or PKCS#1 PEM key (RSA, ECDSA P-256 or
//! P-384, Ed25519), and `pairs_with: CERT` — its public key is the certificate leaf's.
//! Key material never leaves this file: messages name only the key's type and format.

use super::content::{cn, unusable};
use super::{file_name, Entry};
use crate::certs;
use crate::kinds::Ctx;
use crate::model::{Assertion, Outcome, Status};
use rustls::crypto::ring::sign::any_supported_type;
use rustls_pki_types::PrivateKeyDer;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// The public half of a private key, and how the key was written.
struct KeyInfo {
    spki: Vec<u8>,
    kind: String,
    format: &'static str,
}

/// Checks one key entry: it parses, and it pairs with its certificate when asked.
pub fn check(e: &Entry, ctx: &Ctx, out: &mut Outcome) {
    let key = match load(e) {
        Ok(k) => k,
        Err(a) => return out.assertions.push(a),
    };
    let msg = format!("{}: {} private key ({})", e.label, key.kind, key.format);
    out.assertions.push(Assertion::pass(&e.name("parse"), msg));
    if let Some(cert) = &e.spec.pairs_with {
        out.assertions.push(pairs(e, &key, cert, ctx));
    }
}

fn load(e: &Entry) -> Result<KeyInfo, Assertion> {
    let name = e.name("parse");
    let der = certs::read_key(&e.path).map_err(|err| unusable(&name, &err))?;
    let format = format_of(&der);
    let signer = any_supported_type(&der).map_err(|_| bad_key(e, format))?;
    let spki = signer.public_key().ok_or_else(|| bad_key(e, format))?;
    let spki = spki.as_ref().to_vec();
    let kind = match SubjectPublicKeyInfo::from_der(&spki) {
        Ok((_, k)) => spki_type(&k),
        Err(_) => "unknown".into(),
    };
    Ok(KeyInfo { spki, kind, format })
}

fn format_of(der: &PrivateKeyDer<'_>) -> &'static str {
    match der {
        PrivateKeyDer::Pkcs1(_) => "PKCS#1",
        PrivateKeyDer::Sec1(_) => "SEC1",
        PrivateKeyDer::Pkcs8(_) => "PKCS#8",
        _ => "unknown format",
    }
}

fn bad_key(e: &Entry, format: &str) -> Assertion {
    let msg = format!(
        "{}: the {format} PEM key is corrupt or of an unsupported type; expected an RSA, \
         ECDSA P-256/P-384 or Ed25519 private key; restore the key that was issued with the cert",
        e.label
    );
    Assertion::not_ok(&e.name("parse"), Status::Error, "bad_key", msg)
}

/// `RSA 2048`, `ECDSA P-256`, `Ed25519`, or the algorithm OID.
fn spki_type(k: &SubjectPublicKeyInfo<'_>) -> String {
    let curve = || {
        let oid = k
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match oid.map(|o| o.to_id_string()).as_deref() {
            Some("1.2.840.10045.3.1.7") => "P-256".to_string(),
            Some("1.3.132.0.34") => "P-384".to_string(),
            Some(other) => other.to_string(),
            None => "unknown curve".to_string(),
        }
    };
    match k.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => format!("ECDSA {}", curve()),
        _ => match k.algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.112" => "Ed25519".into(),
            oid => oid.into(),
        },
    }
}

/// Same algorithm and same public key bits.
fn same_key(spki: &[u8], cert: &SubjectPublicKeyInfo<'_>) -> bool {
    match SubjectPublicKeyInfo::from_der(spki) {
        Ok((_, k)) => {
            k.algorithm.algorithm == cert.algorithm.algorithm
                && k.subject_public_key.data == cert.subject_public_key.data
        }
        Err(_) => false,
    }
}

fn pairs(e: &Entry, key: &KeyInfo, cert: &str, ctx: &Ctx) -> Assertion {
    let name = e.name("pairs_with");
    let ders = match ctx.cache.certs(&ctx.path(cert)) {
        Ok(d) => d,
        Err(err) => return unusable(&name, &err),
    };
    let cert_label = file_name(cert);
    let leaf_facts = certs::facts(&ders[0], &cert_label);
    let Ok((_, leaf)) = X509Certificate::from_der(&ders[0]) else {
        let msg = format!("{cert_label}: the first certificate does not parse as X.509");
        return Assertion::not_ok(&name, Status::Error, "bad_der", msg);
    };
    if same_key(&key.spki, leaf.public_key()) {
        let msg = format!("{} pairs with {cert_label} ({})", e.label, cn(&leaf_facts));
        return Assertion::pass(&name, msg);
    }
    let msg = format!(
        "{} does not pair with {cert_label} (key: {}, certificate's key: {}); the cert was \
         issued for another key — re-issue or restore the matching key",
        e.label,
        key.kind,
        spki_type(leaf.public_key())
    );
    Assertion::fail(&name, "key_mismatch", msg)
}
