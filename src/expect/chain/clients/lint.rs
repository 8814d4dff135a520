//! Private-PKI lint: profile smells that today's clients may accept but that break a
//! rotation, an upgrade or another client family (docs/verify.md "Client profiles").

use super::cert::Cert;
use rustls_pki_types::CertificateDer;
use std::time::Duration;

/// A lint finding's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LintReason {
    /// A CA certificate without subjectKeyIdentifier: issuers cannot be told apart by key.
    CaWithoutSki,
    /// A leaf without authorityKeyIdentifier: a re-keyed CA with the same name is tried blindly.
    LeafWithoutAki,
    /// A leaf whose only host name is its CN: Go and rustls refuse it.
    CnOnlyLeaf,
    /// An RSA key under 2048 bits: OpenSSL at security level 2 refuses it.
    RsaUnder2048,
    /// A SHA-1 (or MD5) signature below the root: OpenSSL 3 and Go refuse it.
    Sha1Signature,
    /// A leaf valid for longer than the configured maximum.
    ValidityTooLong,
    /// A CA whose keyUsage lacks keyCertSign: every client refuses what it issued.
    CaWithoutKeycertsign,
    /// The same CA certificate twice in one bundle.
    DuplicateCa,
    /// Two CA certificates with the same subject and different keys in the trust store.
    SameDnCa,
}

impl LintReason {
    /// The snake_case token.
    pub fn as_str(self) -> &'static str {
        match self {
            LintReason::CaWithoutSki => "ca_without_ski",
            LintReason::LeafWithoutAki => "leaf_without_aki",
            LintReason::CnOnlyLeaf => "cn_only_leaf",
            LintReason::RsaUnder2048 => "rsa_under_2048",
            LintReason::Sha1Signature => "sha1_signature",
            LintReason::ValidityTooLong => "validity_too_long",
            LintReason::CaWithoutKeycertsign => "ca_without_keycertsign",
            LintReason::DuplicateCa => "duplicate_ca",
            LintReason::SameDnCa => "same_dn_ca",
        }
    }
}

/// One finding: the token, the certificate it is about, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    pub reason: LintReason,
    /// `"CN"` of the certificate concerned.
    pub subject: String,
    pub message: String,
}

/// Lints `presented` (leaf first) and `store` (the CA file). `max_validity` bounds the leaf's
/// lifetime (notAfter - notBefore) when given.
pub fn lint(
    presented: &[CertificateDer<'_>],
    store: &[CertificateDer<'_>],
    max_validity: Option<Duration>,
) -> Vec<Lint> {
    lint_parsed(&super::Parsed::new(presented, store), max_validity)
}

/// [`lint`] on certificates parsed already.
pub fn lint_parsed(parsed: &super::Parsed<'_>, max_validity: Option<Duration>) -> Vec<Lint> {
    let presented = parsed.presented();
    let store: Vec<&Cert<'_>> = parsed.store.iter().collect();
    let mut out = vec![];
    if let Some(leaf) = presented.first() {
        leaf_lints(leaf, max_validity, &mut out);
    }
    let mut all: Vec<&Cert<'_>> = presented.clone();
    all.extend(
        store
            .iter()
            .filter(|s| !presented.iter().any(|p| p.bytes() == s.bytes())),
    );
    for c in &all {
        cert_lints(c, &mut out);
    }
    for bundle in [&presented, &store] {
        duplicates(bundle, &mut out);
    }
    same_dn(&store, &mut out);
    out
}

fn push(out: &mut Vec<Lint>, reason: LintReason, c: &Cert<'_>, message: String) {
    out.push(Lint {
        reason,
        subject: c.label(),
        message,
    });
}

fn is_ca(c: &Cert<'_>) -> bool {
    c.bc.is_some_and(|(ca, _)| ca)
}

fn leaf_lints(leaf: &Cert<'_>, max: Option<Duration>, out: &mut Vec<Lint>) {
    if leaf.aki.is_none() && !leaf.self_issued() {
        let m = format!("leaf {} has no authorityKeyIdentifier; when its CA is re-keyed under the same name, OpenSSL picks an issuer by name alone; issue leaves with AKI", leaf.label());
        push(out, LintReason::LeafWithoutAki, leaf, m);
    }
    if leaf.dns.is_empty() && leaf.ips.is_empty() && !leaf.cns.is_empty() {
        let m = format!("leaf {} names its host only in the CN; Go (since 1.15) and rustls ignore the CN, only OpenSSL falls back to it; add the name as a DNS SAN", leaf.label());
        push(out, LintReason::CnOnlyLeaf, leaf, m);
    }
    let lifetime = leaf.not_after.saturating_sub(leaf.not_before);
    if let Some(max) = max.filter(|m| lifetime > i64::try_from(m.as_secs()).unwrap_or(i64::MAX)) {
        let m = format!(
            "leaf {} is valid for {} days, more than the {} allowed; issue shorter-lived leaves",
            leaf.label(),
            lifetime / 86_400,
            max.as_secs() / 86_400
        );
        push(out, LintReason::ValidityTooLong, leaf, m);
    }
}

fn cert_lints(c: &Cert<'_>, out: &mut Vec<Lint>) {
    if is_ca(c) && c.ski.is_none() {
        let m = format!("CA {} has no subjectKeyIdentifier (RFC 5280 4.2.1.2); clients cannot tell it from a re-keyed CA of the same name; reissue it with SKI", c.label());
        push(out, LintReason::CaWithoutSki, c, m);
    }
    if let Some(bits) = c.rsa_bits.filter(|b| *b < 2048) {
        let m = format!("{} has an RSA {bits}-bit key; OpenSSL at security level 2 (Debian's default) refuses it; use RSA 2048+ or ECDSA", c.label());
        push(out, LintReason::RsaUnder2048, c, m);
    }
    if c.weak_signature() && !c.self_issued() {
        let m = format!(
            "{} is signed with SHA-1 or MD5; OpenSSL 3 and Go refuse it; reissue it with SHA-256",
            c.label()
        );
        push(out, LintReason::Sha1Signature, c, m);
    }
    if is_ca(c) && !c.may_sign_certs() {
        let m = format!("CA {} has a keyUsage without keyCertSign; every client refuses the certificates it issued; reissue it with keyCertSign", c.label());
        push(out, LintReason::CaWithoutKeycertsign, c, m);
    }
}

fn duplicates(bundle: &[&Cert<'_>], out: &mut Vec<Lint>) {
    for (i, c) in bundle.iter().enumerate() {
        let first = bundle.iter().position(|o| o.bytes() == c.bytes()) == Some(i);
        if is_ca(c) && !first && !out_has(out, LintReason::DuplicateCa, c) {
            let m = format!(
                "CA {} appears more than once in the same bundle; remove the copy",
                c.label()
            );
            push(out, LintReason::DuplicateCa, c, m);
        }
    }
}

fn out_has(out: &[Lint], reason: LintReason, c: &Cert<'_>) -> bool {
    out.iter()
        .any(|l| l.reason == reason && l.subject == c.label())
}

fn same_dn(store: &[&Cert<'_>], out: &mut Vec<Lint>) {
    for (i, a) in store.iter().enumerate() {
        let clash = store[..i]
            .iter()
            .any(|b| is_ca(b) && b.subject == a.subject && b.spki != a.spki);
        if is_ca(a) && clash && !out_has(out, LintReason::SameDnCa, a) {
            let m = format!("the CA file holds two CAs named {} with different keys; OpenSSL picks one by file order and key identifiers, Go tries both; keep both only during a rotation overlap, and make sure leaves carry AKI", a.label());
            push(out, LintReason::SameDnCa, a, m);
        }
    }
}
