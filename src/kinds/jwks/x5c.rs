//! `x5c`: for every key that carries a certificate chain, the first certificate's public key
//! must be the key itself, and the chain must be accepted (the chain judgement of `tls` and
//! `files`, against `ca_file`); `x5c_expiry` judges every certificate but a self-signed root
//! against the expiry thresholds. `required: true` fails a key without `x5c`.
//!
//! Reasons: `jwks_x5c_mismatch`, `jwks_x5c_missing` and the chain reasons (`unknown_issuer`,
//! `expired`, ...) on `x5c`; the expiry reasons on `x5c_expiry`.

use super::jwk::{Jwk, KeySet, Material};
use crate::expect::chain::judge::judge_expected;
use crate::expect::chain::want::ChainExpect;
use crate::expect::chain::Usage;
use crate::expect::expiry;
use crate::kinds::Ctx;
use crate::model::{Assertion, CertFacts, Status};
use crate::suite::ExpiryThresholds;
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use x509_parser::public_key::PublicKey;

/// `x5c:` how keys' certificate chains are judged.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct X5cExpect {
    /// The trust anchors of the chains (default: the check's `ca_file`).
    pub ca_file: Option<String>,
    /// Thresholds for the chains' certificates (default: the suite's).
    pub expiry: Option<ExpiryThresholds>,
    /// Every key must carry `x5c`.
    #[serde(default)]
    pub required: bool,
}

/// The `x5c` and `x5c_expiry` assertions, and the facts of every certificate seen.
pub fn judge(
    set: &KeySet,
    want: &X5cExpect,
    ca_file: Option<&str>,
    ctx: &Ctx,
) -> (Vec<Assertion>, Vec<CertFacts>) {
    let with: Vec<&Jwk> = set.keys.iter().filter(|k| !k.x5c.is_empty()).collect();
    let facts: Vec<CertFacts> = with.iter().flat_map(|k| facts(k)).collect();
    let mut out = vec![chains(set, &with, want, ca_file, ctx)];
    if !facts.is_empty() {
        let judged: Vec<CertFacts> = facts.iter().filter(|f| !f.self_signed).cloned().collect();
        let t = want.expiry.unwrap_or_else(|| ctx.default_expiry());
        let mut a = expiry::assert_expiry(&judged, &t, ctx.now_unix());
        a.name = "x5c_expiry".into();
        out.push(a);
    }
    (out, facts)
}

/// Each certificate's facts, positioned `x5c`.
fn facts(k: &Jwk) -> Vec<CertFacts> {
    k.x5c
        .iter()
        .map(|der| {
            let mut f = crate::certs::facts(der, "x5c");
            f.position = "x5c".into();
            f
        })
        .collect()
}

/// `x5c`: the first failing key decides; passes naming how many chains were judged.
fn chains(
    set: &KeySet,
    with: &[&Jwk],
    want: &X5cExpect,
    ca_file: Option<&str>,
    ctx: &Ctx,
) -> Assertion {
    if want.required {
        if let Some(k) = set.keys.iter().find(|k| k.x5c.is_empty()) {
            let msg = format!(
                "key {} ({}) carries no x5c; expected every key with its certificate chain",
                k.label(),
                k.describe()
            );
            return Assertion::fail("x5c", "jwks_x5c_missing", msg);
        }
    }
    if with.is_empty() {
        return Assertion::pass("x5c", "no key carries x5c");
    }
    let ca = match ca_file.map(|f| ctx.cache.certs(&ctx.path(f))) {
        Some(Ok(ca)) => ca,
        Some(Err(e)) => return Assertion::not_ok("x5c", Status::Error, e.class(), e.to_string()),
        None => {
            let msg = "x5c chains need trust anchors; set x5c.ca_file or the check's ca_file";
            return Assertion::not_ok("x5c", Status::Error, "config", msg);
        }
    };
    for k in with {
        if let Some(a) = one(k, &ca, ctx) {
            return a;
        }
    }
    let msg = format!("{} x5c chains carry their key and are accepted", with.len());
    Assertion::pass("x5c", msg)
}

/// The failing assertion of one key's chain, if any.
fn one(k: &Jwk, ca: &[CertificateDer<'static>], ctx: &Ctx) -> Option<Assertion> {
    if !same_key(&k.x5c[0], &k.material) {
        let msg = format!("key {} ({}): the first x5c certificate holds another public key; expected the key's own certificate first: re-publish the key with its certificate", k.label(), k.describe());
        return Some(Assertion::fail("x5c", "jwks_x5c_mismatch", msg));
    }
    let presented: Vec<CertificateDer<'_>> = k
        .x5c
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let want = ChainExpect::default();
    let now = crate::kinds::tls::unix_time(ctx.now);
    let j = judge_expected(&want, &presented, ca, None, now, (Usage::Either, false));
    let mut a = j.chain("x5c");
    if a.status == Status::Pass {
        return None;
    }
    a.message = format!("key {} x5c: {}", k.label(), a.message);
    Some(a)
}

/// Whether the certificate's public key is the JWK's.
fn same_key(der: &[u8], m: &Material) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let spki = cert.public_key();
    let raw = spki.subject_public_key.data.as_ref();
    match m {
        Material::Rsa { n, e } => match spki.parsed() {
            Ok(PublicKey::RSA(r)) => {
                trim(r.modulus) == n.as_slice() && trim(r.exponent) == e.as_slice()
            }
            _ => false,
        },
        Material::Ec { x, y, .. } => {
            raw.len() == 1 + x.len() + y.len()
                && raw[0] == 4
                && raw[1..=x.len()] == x[..]
                && raw[1 + x.len()..] == y[..]
        }
        Material::Okp { x, .. } => raw == x.as_slice(),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let lead = b.iter().take_while(|x| **x == 0).count();
    &b[lead..]
}
