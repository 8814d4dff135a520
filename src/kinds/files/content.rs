//! What a cert, chain or bundle file holds: it parses, a chain's order (leaf, then each
//! issuer), and `contains: FILE`. Records one `CertFacts` per certificate.

use super::FileKind;
use super::{file_name, Entry};
use crate::certs::{self, FileError};
use crate::kinds::Ctx;
use crate::model::{Assertion, CertFacts, Outcome, Status};
use rustls_pki_types::CertificateDer;
use std::collections::HashSet;
use std::sync::Arc;
use x509_parser::prelude::*;

/// The certificates of one entry, as DER and as facts.
pub struct Loaded {
    pub ders: Arc<Vec<CertificateDer<'static>>>,
    pub facts: Vec<CertFacts>,
}

/// Reads and checks one cert/chain/bundle entry; `None` when it could not be read. The facts
/// go to the outcome once the expectations are judged (`Entry::inspect`).
pub fn check(e: &Entry, ctx: &Ctx, out: &mut Outcome) -> Option<Loaded> {
    let ders = match ctx.cache.certs(&e.path) {
        Ok(d) => d,
        Err(err) => {
            out.assertions.push(unusable(&e.name("parse"), &err));
            return None;
        }
    };
    let facts = facts(e, &ders);
    out.assertions.push(parsed(e, &facts));
    if e.spec.kind == FileKind::Chain {
        out.assertions.push(order(e, &ders, &facts));
    }
    if let Some(other) = &e.spec.contains {
        out.assertions.push(contains(e, &ders, other, ctx));
    }
    Some(Loaded { ders, facts })
}

/// A file that could not be used: an error assertion classified by `FileError::class()`.
pub fn unusable(name: &str, err: &FileError) -> Assertion {
    Assertion::not_ok(name, Status::Error, err.class(), err.to_string())
}

/// Facts per certificate; positions are `label`, `label#2`, `label#3`, ...
fn facts(e: &Entry, ders: &[CertificateDer<'static>]) -> Vec<CertFacts> {
    ders.iter()
        .enumerate()
        .map(|(i, d)| certs::facts(d, &position(&e.label, i)))
        .collect()
}

fn position(label: &str, i: usize) -> String {
    match i {
        0 => label.to_string(),
        _ => format!("{label}#{}", i + 1),
    }
}

/// `CN=name`, or the whole subject when it has no CN.
pub fn cn(f: &CertFacts) -> String {
    match f.subject_cn.as_str() {
        "" => f.subject.clone(),
        n => format!("CN={n}"),
    }
}

fn parsed(e: &Entry, facts: &[CertFacts]) -> Assertion {
    let mut names: Vec<String> = facts.iter().take(3).map(cn).collect();
    if facts.len() > 3 {
        names.push(format!("and {} more", facts.len() - 3));
    }
    let n = facts.len();
    let s = if n == 1 { "" } else { "s" };
    let msg = format!("{}: {n} certificate{s}: {}", e.label, names.join(", "));
    Assertion::pass(&e.name("parse"), msg)
}

/// Fullchain order: each certificate after the first issued (signed) the one before it.
fn order(e: &Entry, ders: &[CertificateDer<'static>], facts: &[CertFacts]) -> Assertion {
    let parsed: Vec<X509Certificate<'_>> = ders
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .collect();
    if parsed.len() == 1 {
        return single(e, &parsed[0], &facts[0]);
    }
    match (1..parsed.len()).find(|&i| !issued(&parsed[i], &parsed[i - 1])) {
        None => in_order(e, facts),
        Some(i) => broken(e, &parsed, facts, i),
    }
}

/// Whether `parent` signed `child`; names decide when the algorithm cannot be verified.
fn issued(parent: &X509Certificate<'_>, child: &X509Certificate<'_>) -> bool {
    match child.verify_signature(Some(parent.public_key())) {
        Ok(()) => true,
        Err(X509Error::SignatureUnsupportedAlgorithm) => {
            child.issuer().as_raw() == parent.subject().as_raw()
        }
        Err(_) => false,
    }
}

fn in_order(e: &Entry, facts: &[CertFacts]) -> Assertion {
    let names: Vec<String> = facts.iter().map(cn).collect();
    let msg = format!("{}: in order: {}", e.label, names.join(" <- "));
    Assertion::pass(&e.name("chain_order"), msg)
}

/// A chain file holding one certificate: fine when self-signed, else the issuer is missing.
fn single(e: &Entry, cert: &X509Certificate<'_>, f: &CertFacts) -> Assertion {
    let name = e.name("chain_order");
    if certs::is_self_signed(cert) {
        return Assertion::pass(&name, format!("{}: one self-signed certificate", e.label));
    }
    let msg = format!(
        "{} holds only the leaf ({}, issued by {}); expected the leaf followed by its \
         issuer(s); append the intermediate: cat intermediate.pem >> {}",
        e.label,
        cn(f),
        f.issuer,
        e.path.display()
    );
    Assertion::fail(&name, "incomplete_chain", msg)
}

/// Certificate `i + 1` (1-based) did not issue certificate `i`.
fn broken(e: &Entry, parsed: &[X509Certificate<'_>], facts: &[CertFacts], i: usize) -> Assertion {
    let hint = if issued(&parsed[i - 1], &parsed[i]) {
        format!(" (the order looks reversed: certificate {i} issued certificate {}; put the leaf first)", i + 1)
    } else {
        format!(
            " (certificate {i} names {} as its issuer; is that certificate missing?)",
            facts[i - 1].issuer
        )
    };
    let msg = format!(
        "{}: certificate {} ({}) did not issue certificate {i} ({}); expected leaf then each \
         issuer in order{hint}",
        e.label,
        i + 1,
        cn(&facts[i]),
        cn(&facts[i - 1])
    );
    Assertion::fail(&e.name("chain_order"), "chain_order", msg)
}

/// Every certificate of `other` (by SHA-256 of the DER) is in this entry's file.
fn contains(e: &Entry, ders: &[CertificateDer<'static>], other: &str, ctx: &Ctx) -> Assertion {
    let name = e.name("contains");
    let wanted = match ctx.cache.certs(&ctx.path(other)) {
        Ok(w) => w,
        Err(err) => return unusable(&name, &err),
    };
    let missing = missing(ders, &wanted);
    let (n, other_label) = (wanted.len(), file_name(other));
    if missing.is_empty() {
        let msg = format!(
            "{} contains all {n} of {other_label}'s certificates",
            e.label
        );
        return Assertion::pass(&name, msg);
    }
    let msg = format!(
        "{} lacks {} of {n} certificates of {other_label}: {}; append the missing ones to {} \
         or refresh the bundle from the CA",
        e.label,
        missing.len(),
        missing.join(", "),
        e.path.display()
    );
    Assertion::fail(&name, "missing_ca", msg)
}

/// The certificates of `wanted` that `have` lacks, described.
fn missing(have: &[CertificateDer<'static>], wanted: &[CertificateDer<'static>]) -> Vec<String> {
    let have: HashSet<String> = have.iter().map(|d| certs::sha256_hex(d)).collect();
    wanted
        .iter()
        .filter(|d| !have.contains(&certs::sha256_hex(d)))
        .map(|d| short(d))
        .collect()
}

/// `CN=name (sha256 0123456789abcdef…)`.
fn short(der: &CertificateDer<'_>) -> String {
    let f = certs::facts(der, "");
    format!("{} (sha256 {}…)", cn(&f), &f.sha256[..16])
}
