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

/// parser.go: `ParseCertificate` refuses negative serials (since Go 1.23), critical key
/// identifiers, duplicate extensions, empty name constraints, IP SANs and IP constraints of
/// the wrong length, explicit EC curves. A presented chain or a CA file holding such a
/// certificate does not load at all.
fn parsed(input: &Input<'_>) -> Result<(), Refusal> {
    let all = input.presented.iter().copied().chain(input.store.iter());
    match all.filter_map(|c| Some((c, c.go_parse.as_ref()?))).next() {
        Some((c, why)) => Err((
            ChainReason::Other,
            format!("Go cannot parse {} ({why}); reissue it", c.label()),
        )),
        None => Ok(()),
    }
}

/// Critical extensions Go's parser handles (x509.go, parser.go `processExtensions`).
const HANDLED: &[&str] = &[
    "2.5.29.14",
    "2.5.29.15",
    "2.5.29.17",
    "2.5.29.19",
    "2.5.29.30",
    "2.5.29.31",
    "2.5.29.32",
    "2.5.29.33",
    "2.5.29.35",
    "2.5.29.36",
    "2.5.29.37",
    "2.5.29.54",
    "1.3.6.1.5.5.7.1.1",
];

/// A critical extension Go leaves in `UnhandledCriticalExtensions`.
fn unhandled(c: &Cert<'_>) -> Option<String> {
    c.critical
        .iter()
        .find(|oid| {
            let nc = c.constraints.as_ref();
            !HANDLED.contains(&oid.as_str())
                || (oid.as_str() == "2.5.29.30" && nc.is_some_and(|n| n.other_kind || n.dir_name))
                || (oid.as_str() == "2.5.29.17" && c.dns.is_empty() && c.ips.is_empty())
        })
        .cloned()
}

/// verify.go `isValid`: unhandled critical extensions and the validity period.
fn is_valid(c: &Cert<'_>, what: &str, now: i64) -> Result<(), Refusal> {
    if let Some(oid) = unhandled(c) {
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
        let child = chain[chain.len() - 1];
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
    if !parent.ku_zero && !parent.may_sign_certs() {
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
        let Some(eku) = c.eku.filter(|e| !e.empty) else {
            continue;
        };
        let allowed = eku.any
            || match purpose {
                Purpose::ServerAuth => eku.server,
                Purpose::ClientAuth => eku.client,
            };
        if !allowed {
            return Err(usage(c, "has an extended key usage without the requested usage (Go requires every certificate of the path to allow it)"));
        }
    }
    for (k, ca) in chain.iter().enumerate().skip(1) {
        let Some(nc) = &ca.constraints else { continue };
        for below in &chain[..k] {
            let bad_dns = !nc.permitted_dns.is_empty() || !nc.excluded_dns.is_empty();
            let unparsable =
                bad_dns && below.dns.iter().any(|d| d.is_empty() || d.starts_with('.'));
            if unparsable || cert::violates(below, nc, true) {
                return Err(usage(
                    ca,
                    &format!("has name constraints that {} breaks (\"not authorized to sign for this name\")", below.label()),
                ));
            }
        }
    }
    Ok(())
}

fn describe(chain: &[&Cert<'_>]) -> String {
    let names: Vec<String> = chain.iter().map(|c| c.label()).collect();
    format!("path {}", names.join(" <- "))
}
