//! The Go crypto/x509 profile: `Certificate.Verify` with the CA file as `Roots` and the
//! presented certificates as `Intermediates` (Go 1.27, default GODEBUG). Source:
//! src/crypto/x509/verify.go (`Verify`, `isValid`, `buildChains`, `checkChainForKeyUsage`,
//! `VerifyHostname`), x509.go (`CheckSignatureFrom`, `checkSignature`), cert_pool.go
//! (`findPotentialParents`), parser.go (negative serials).
//!
//! Every store certificate is an anchor; every candidate parent is tried (AKID/SKID matches
//! first, mismatches still); any valid path is enough; the CN is never a host name; keyUsage
//! matters only as keyCertSign on a parent; every certificate of the path that has an EKU
//! extension must allow the requested usage; SHA-1 and MD5 signatures are refused (a root's
//! self-signature is never checked); RSA signing keys under 1024 bits are refused.

use super::cert::{self, Cert};
use super::{check_time, Input, Purpose, Refusal};
use crate::model::ChainReason;

/// Signature checks one `Verify` may make (verify.go `maxChainSignatureChecks`).
const MAX_SIGNATURE_CHECKS: usize = 100;

pub(super) fn check(input: &Input<'_>) -> Result<String, Refusal> {
    let leaf = input.leaf();
    parsed(input)?;
    is_valid(leaf, "leaf", input.now)?;
    if let Some(name) = input.name {
        hostname(leaf, name)?;
    }
    let roots = input.anchors();
    let roots: Vec<&Cert<'_>> = roots.into_iter().filter(|c| !c.negative_serial()).collect();
    let chains = if roots.iter().any(|r| r.bytes() == leaf.bytes()) {
        vec![vec![leaf]]
    } else {
        let mut b = Builder {
            roots: &roots,
            pool: input.pool(),
            now: input.now,
            checks: 0,
            hint: None,
        };
        let chains = b.build(vec![leaf]);
        if chains.is_empty() {
            return Err(b.hint.unwrap_or_else(|| unknown_issuer(leaf)));
        }
        chains
    };
    let mut refusal = None;
    for chain in &chains {
        match policy(chain, input.purpose) {
            Ok(()) => return Ok(describe(chain)),
            Err(e) => refusal = refusal.or(Some(e)),
        }
    }
    Err(refusal.unwrap_or_else(|| unknown_issuer(leaf)))
}

/// parser.go: a negative serial number fails `ParseCertificate` (since Go 1.23), so the
/// presented chain does not parse at all.
fn parsed(input: &Input<'_>) -> Result<(), Refusal> {
    match input.presented.iter().find(|c| c.negative_serial()) {
        Some(c) => Err((
            ChainReason::Other,
            format!(
                "{} has a negative serial number, which Go refuses to parse (since Go 1.23); reissue it",
                c.label()
            ),
        )),
        None => Ok(()),
    }
}

/// verify.go `isValid`: unhandled critical extensions and the validity period.
fn is_valid(c: &Cert<'_>, what: &str, now: i64) -> Result<(), Refusal> {
    if let Some(oid) = c.unknown_critical.first() {
        return Err((
            ChainReason::Other,
            format!(
                "{what} {} has an unhandled critical extension {oid}",
                c.label()
            ),
        ));
    }
    check_time(c, what, now)
}

/// verify.go `VerifyHostname`: SANs only; a leaf without a SAN extension "relies on legacy
/// Common Name field".
fn hostname(leaf: &Cert<'_>, name: &str) -> Result<(), Refusal> {
    let ok = match name.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => leaf.ips.contains(&ip),
        Err(_) => leaf.dns.iter().any(|p| cert::dns_match(p, name, false, 1)),
    };
    if ok {
        return Ok(());
    }
    let why = if !leaf.san_ext && !leaf.cns.is_empty() {
        format!("leaf {} has no subjectAltName and Go ignores the CN (\"relies on legacy Common Name field\"); reissue it with {name:?} as a DNS SAN", leaf.label())
    } else {
        format!(
            "leaf {} is not valid for {name:?} (its SANs: {})",
            leaf.label(),
            sans(leaf)
        )
    };
    Err((ChainReason::NameMismatch, why))
}

fn sans(c: &Cert<'_>) -> String {
    let mut v: Vec<String> = c.dns.clone();
    v.extend(c.ips.iter().map(ToString::to_string));
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn unknown_issuer(leaf: &Cert<'_>) -> Refusal {
    if leaf.self_signed() {
        return (
            ChainReason::SelfSigned,
            format!(
                "leaf {} is self-signed and not in the trust store",
                leaf.label()
            ),
        );
    }
    (
        ChainReason::UnknownIssuer,
        format!(
            "no path from leaf {} to a certificate of the trust store (\"certificate signed by unknown authority\"); add its issuer to the CA file or send the intermediates",
            leaf.label()
        ),
    )
}

struct Builder<'r, 'a> {
    roots: &'r [&'r Cert<'a>],
    pool: Vec<&'r Cert<'a>>,
    now: i64,
    checks: usize,
    /// The first reason a candidate parent was refused (Go's `hintErr`).
    hint: Option<Refusal>,
}

impl<'r, 'a> Builder<'r, 'a> {
    /// verify.go `buildChains`: roots first, then intermediates; every chain found.
    fn build(&mut self, chain: Vec<&'r Cert<'a>>) -> Vec<Vec<&'r Cert<'a>>> {
        let mut out = vec![];
        let child = *chain.last().unwrap_or(&chain[0]);
        let roots = parents(child, self.roots);
        let pool = parents(child, &self.pool);
        for (is_root, candidates) in [(true, roots), (false, pool)] {
            for p in candidates {
                self.checks += 1;
                if self.checks > MAX_SIGNATURE_CHECKS || in_chain(p, &chain) {
                    continue;
                }
                if let Err(e) = self.candidate(child, p, is_root, &chain) {
                    self.hint.get_or_insert(e);
                    continue;
                }
                let mut next = chain.clone();
                next.push(p);
                if is_root {
                    out.push(next);
                } else {
                    out.extend(self.build(next));
                }
            }
        }
        out
    }

    fn candidate(
        &self,
        child: &Cert<'_>,
        p: &Cert<'_>,
        is_root: bool,
        chain: &[&Cert<'_>],
    ) -> Result<(), Refusal> {
        check_signature_from(child, p)?;
        let what = if is_root { "root" } else { "intermediate" };
        is_valid(p, what, self.now)?;
        if !is_root && p.bc.is_none_or(|(ca, _)| !ca) {
            return Err(usage(p, "is not a CA (basicConstraints)"));
        }
        if let Some((_, Some(max))) = p.bc {
            if chain.len() - 1 > max as usize {
                return Err(usage(p, "has a pathLenConstraint the path exceeds"));
            }
        }
        Ok(())
    }
}

/// cert_pool.go `findPotentialParents`: same subject as the child's issuer; AKID/SKID
/// matches first, then one side missing, then mismatches.
fn parents<'r, 'a>(child: &Cert<'_>, pool: &[&'r Cert<'a>]) -> Vec<&'r Cert<'a>> {
    let named: Vec<&'r Cert<'a>> = pool
        .iter()
        .copied()
        .filter(|p| p.subject == child.issuer)
        .collect();
    let rank = |p: &Cert<'_>| match (&p.ski, &child.aki) {
        (a, b) if a == b => 0,
        (None, Some(_)) | (Some(_), None) => 1,
        _ => 2,
    };
    let mut ranked = named;
    ranked.sort_by_key(|p| rank(p));
    ranked
}

/// verify.go `alreadyInChain`: same subject, key and SAN.
fn in_chain(p: &Cert<'_>, chain: &[&Cert<'_>]) -> bool {
    chain
        .iter()
        .any(|c| c.subject == p.subject && c.spki == p.spki && c.dns == p.dns && c.ips == p.ips)
}

/// x509.go `CheckSignatureFrom` and `checkSignature`.
fn check_signature_from(child: &Cert<'_>, parent: &Cert<'_>) -> Result<(), Refusal> {
    if (parent.version == 3 && parent.bc.is_none()) || parent.bc.is_some_and(|(ca, _)| !ca) {
        return Err(usage(parent, "is not a CA (basicConstraints) but issued"));
    }
    if !parent.may_sign_certs() {
        return Err(usage(parent, "has a keyUsage without keyCertSign"));
    }
    if child.weak_signature() {
        return Err((
            ChainReason::WeakAlgorithm,
            format!(
                "{} is signed with SHA-1 or MD5, which Go refuses (\"insecure algorithm\"); reissue it with SHA-256",
                child.label()
            ),
        ));
    }
    if parent.rsa_bits.is_some_and(|b| b < 1024) {
        return Err((
            ChainReason::WeakAlgorithm,
            format!(
                "{} has an RSA key under 1024 bits, which Go refuses to verify with",
                parent.label()
            ),
        ));
    }
    if !cert::signed_by(child, parent) {
        return Err((
            ChainReason::BadSignature,
            format!(
                "the signature of {} does not verify with the key of {} (same name, another key?)",
                child.label(),
                parent.label()
            ),
        ));
    }
    Ok(())
}

fn usage(c: &Cert<'_>, why: &str) -> Refusal {
    (ChainReason::InvalidUsage, format!("{} {why}", c.label()))
}

/// After path building: EKU nesting (`checkChainForKeyUsage`) and name constraints.
fn policy(chain: &[&Cert<'_>], purpose: Purpose) -> Result<(), Refusal> {
    for c in chain.iter().rev() {
        let Some(eku) = c.eku else { continue };
        let allowed = eku.any
            || match purpose {
                Purpose::ServerAuth => eku.server,
                Purpose::ClientAuth => eku.client,
            };
        if !allowed {
            return Err(usage(c, "has an extended key usage without the requested usage (Go requires every certificate of the path to allow it)"));
        }
    }
    let leaf = chain[0];
    for c in &chain[1..] {
        if c.constraints
            .as_ref()
            .is_some_and(|nc| cert::violates(leaf, nc))
        {
            return Err(usage(c, "has name constraints the leaf's names break"));
        }
    }
    Ok(())
}

fn describe(chain: &[&Cert<'_>]) -> String {
    let names: Vec<String> = chain.iter().map(|c| c.label()).collect();
    format!("path {}", names.join(" <- "))
}
