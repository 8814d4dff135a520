//! The OpenSSL 3 profile: `X509_verify_cert` as nginx, haproxy and curl run it on Debian
//! (security level 2, trusted-first, purpose sslserver or sslclient, host name checked with
//! `X509_check_host`). Source: crypto/x509/x509_vfy.c (`build_chain`, `find_issuer`,
//! `check_chain`, `check_auth_level`, `check_trust`, `internal_verify`), x509_lu.c
//! (`X509_STORE_CTX_get1_issuer`), v3_purp.c (`ossl_x509_likely_issued`, `check_ca`,
//! `check_purpose_ssl_server`), v3_utl.c (`do_x509_check`, wildcards).
//!
//! One path is built, greedily: at each step the first trust-store certificate that "likely
//! issued" the top (same name, AKID not contradicting the SKID, keyUsage allowing
//! keyCertSign), preferring one valid now; only when the store has none, the same among the
//! presented certificates. Signatures are checked only after the path is built, so a re-keyed
//! CA with the same name and no AKID to tell them apart is a bad signature, not a detour. The
//! path must end at a self-signed certificate of the store.

use super::cert::{self, Cert};
use super::{Input, Purpose, Refusal};
use crate::model::ChainReason;

/// OpenSSL's default verify depth.
const MAX_DEPTH: usize = 100;

/// Security level 2: 112 bits, RSA 2048.
const MIN_RSA_BITS: usize = 2048;

pub(super) fn check(input: &Input<'_>) -> Result<String, Refusal> {
    let leaf = input.leaf();
    if let Some(why) = &leaf.malformed {
        return Err((
            ChainReason::Other,
            format!(
                "leaf {} is an invalid certificate to OpenSSL ({why})",
                leaf.label()
            ),
        ));
    }
    if leaf.rsa_bits.is_some_and(|b| b < MIN_RSA_BITS) {
        return Err(weak_key(leaf, "leaf"));
    }
    let chain = build(input)?;
    extensions(&chain, input.purpose)?;
    constraints(&chain)?;
    auth_level(&chain)?;
    if let Some(name) = input.name {
        hostname(leaf, name)?;
    }
    signatures_and_times(&chain, input.now)?;
    let names: Vec<String> = chain.iter().map(|c| c.label()).collect();
    Ok(format!("path {}", names.join(" <- ")))
}

/// OpenSSL's "self-signed" (EXFLAG_SS): self-issued with an AKID that does not contradict its
/// SKID; the signature itself is not checked.
fn ss(c: &Cert<'_>) -> bool {
    c.self_issued() && akid_ok(c, c)
}

/// `X509_check_akid`: the AKID's key identifier, issuer name and serial number, where present
/// on both sides, match the issuer.
fn akid_ok(issuer: &Cert<'_>, child: &Cert<'_>) -> bool {
    let keyid = match (&child.aki, &issuer.ski) {
        (Some(a), Some(s)) => a == s,
        _ => true,
    };
    let serial = child
        .aki_serial
        .as_ref()
        .is_none_or(|s| *s == issuer.serial);
    let name = child
        .aki_issuer
        .as_ref()
        .is_none_or(|n| *n == issuer.issuer);
    keyid && serial && name
}

/// `X509_check_issued`: name, key identifiers, keyUsage keyCertSign.
fn likely_issued(issuer: &Cert<'_>, child: &Cert<'_>) -> bool {
    issuer.malformed.is_none()
        && issuer.subject == child.issuer
        && akid_ok(issuer, child)
        && issuer.may_sign_certs()
}

/// `X509_STORE_CTX_get1_issuer` / `find_issuer`: the first candidate valid now, else the one
/// with the latest notAfter.
fn pick<'c, 'a>(
    child: &Cert<'_>,
    candidates: &[&'c Cert<'a>],
    chain: &[&Cert<'_>],
    now: i64,
) -> Option<&'c Cert<'a>> {
    let mut fallback: Option<&'c Cert<'a>> = None;
    for c in candidates {
        if !likely_issued(c, child) {
            continue;
        }
        let self_issued_leaf = chain.len() == 1 && child.self_issued();
        if !self_issued_leaf && chain.iter().any(|x| x.bytes() == c.bytes()) {
            continue;
        }
        if c.valid_at(now) {
            return Some(c);
        }
        if fallback.is_none_or(|f| c.not_after > f.not_after) {
            fallback = Some(c);
        }
    }
    fallback
}

/// x509_vfy.c `build_chain`, trusted-first.
fn build<'i, 'a>(input: &'i Input<'a>) -> Result<Vec<&'i Cert<'a>>, Refusal> {
    let leaf = input.leaf();
    let store = input.anchors();
    let pool = input.pool();
    let mut chain = vec![leaf];
    let mut trusted = false;
    if ss(leaf) {
        return match store.iter().find(|c| c.bytes() == leaf.bytes()) {
            Some(_) => Ok(chain),
            None => Err((
                ChainReason::SelfSigned,
                format!(
                    "leaf {} is self-signed and not in the CA file (\"self-signed certificate\")",
                    leaf.label()
                ),
            )),
        };
    }
    while chain.len() <= MAX_DEPTH {
        let top = *chain.last().unwrap_or(&leaf);
        if chain.len() > 1 && ss(top) {
            if trusted {
                return Ok(chain);
            }
            return Err((
                ChainReason::UnknownIssuer,
                format!(
                    "the chain ends at the self-signed {}, which is not in the CA file (\"self-signed certificate in certificate chain\")",
                    top.label()
                ),
            ));
        }
        if let Some(c) = pick(top, &store, &chain, input.now) {
            chain.push(c);
            trusted = true;
            continue;
        }
        match (trusted, pick(top, &pool, &chain, input.now)) {
            (false, Some(c)) => chain.push(c),
            _ => return Err(no_issuer(top, trusted)),
        }
    }
    Err((
        ChainReason::Other,
        "the path is longer than OpenSSL's verify depth".into(),
    ))
}

fn no_issuer(top: &Cert<'_>, trusted: bool) -> Refusal {
    let why = if trusted {
        format!("the path reaches {} in the CA file, but not a self-signed root (\"unable to get issuer certificate\"); add the root to the CA file", top.label())
    } else {
        format!("no issuer of {} in the chain or the CA file (\"unable to get local issuer certificate\"); send the intermediates, or add the issuer to the CA file", top.label())
    };
    (ChainReason::UnknownIssuer, why)
}

/// v3_purp.c `check_ca` as `check_chain` applies it in OpenSSL 3: a CA needs keyCertSign (if
/// it has a keyUsage) and basicConstraints cA; only a self-signed trust anchor may go without
/// (an intermediate with keyUsage keyCertSign alone is "invalid CA certificate").
fn check_ca(c: &Cert<'_>, anchor: bool) -> bool {
    if !c.may_sign_certs() {
        return false;
    }
    match c.bc {
        Some((ca, _)) => ca,
        None => anchor && ss(c),
    }
}

/// Critical extensions OpenSSL supports (v3_purp.c `X509_supported_extension`).
const SUPPORTED: &[&str] = &[
    "2.16.840.1.113730.1.1",
    "2.5.29.15",
    "2.5.29.17",
    "2.5.29.19",
    "2.5.29.32",
    "2.5.29.37",
    "1.3.6.1.5.5.7.1.14",
    "1.3.6.1.5.5.7.1.7",
    "1.3.6.1.5.5.7.1.8",
    "2.5.29.33",
    "2.5.29.36",
    "2.5.29.30",
    "2.5.29.54",
];

/// x509_vfy.c `check_chain` (extensions, CA flags, purpose, path length).
fn extensions(chain: &[&Cert<'_>], purpose: Purpose) -> Result<(), Refusal> {
    let last = chain.len() - 1;
    for (i, c) in chain.iter().enumerate() {
        if c.explicit_curve {
            return Err((
                ChainReason::Other,
                format!("{} has an EC key with explicit curve parameters", c.label()),
            ));
        }
        if let Some(oid) = c.critical.iter().find(|o| !SUPPORTED.contains(&o.as_str())) {
            return Err((
                ChainReason::Other,
                format!("{} has an unhandled critical extension {oid}", c.label()),
            ));
        }
        if i > 0 && !check_ca(c, i == last) {
            return Err(usage(c, "is not a CA (\"invalid CA certificate\")"));
        }
        let eku_ok = c.eku.is_none_or(|e| match purpose {
            Purpose::ServerAuth => e.server,
            Purpose::ClientAuth => e.client,
        });
        let ku_ok = i > 0 || c.ku.is_none_or(|(_, tls)| tls);
        if !eku_ok || !ku_ok {
            return Err(usage(c, "does not allow the requested purpose (\"unsupported certificate purpose\"): OpenSSL requires serverAuth/clientAuth in every extendedKeyUsage of the path"));
        }
    }
    path_length(chain)
}

fn path_length(chain: &[&Cert<'_>]) -> Result<(), Refusal> {
    let mut below = 0usize;
    for (i, c) in chain.iter().enumerate() {
        if i > 1 {
            if let Some((_, Some(max))) = c.bc {
                if below > max as usize {
                    return Err(usage(c, "has a pathLenConstraint the path exceeds"));
                }
            }
        }
        if i > 0 && !c.self_issued() {
            below += 1;
        }
    }
    Ok(())
}

/// x509_vfy.c `check_name_constraints`: each CA's constraints over every certificate below it
/// (self-issued intermediates aside), the leaf's CN as a DNS name when it has no DNS SAN.
fn constraints(chain: &[&Cert<'_>]) -> Result<(), Refusal> {
    for (k, ca) in chain.iter().enumerate().skip(1) {
        let Some(nc) = &ca.constraints else { continue };
        for (j, below) in chain[..k].iter().enumerate() {
            if j > 0 && below.self_issued() {
                continue;
            }
            if let Some(why) = nc_error(below, nc, j == 0) {
                return Err(usage(
                    ca,
                    &format!("has name constraints and {}: {why}", below.label()),
                ));
            }
        }
    }
    Ok(())
}

/// OpenSSL's cap on names x constraints (v3_ncons.c `NAME_CHECK_MAX`).
const NAME_CHECK_MAX: usize = 1 << 20;

fn nc_error(c: &Cert<'_>, nc: &cert::Constraints, leaf: bool) -> Option<&'static str> {
    let names = c.dn_entries + c.san_count;
    if names > 0 && nc.count > NAME_CHECK_MAX / names {
        return Some("too many names to check (\"unspecified certificate verification error\")");
    }
    if nc.bad_ip || c.bad_ip_san {
        return Some("an IP of invalid length (\"unsupported or invalid name syntax\")");
    }
    if nc.other_kind && c.san_other_name {
        return Some("an otherName (\"unsupported name constraint type\")");
    }
    if cert::violates(c, nc, false) {
        return Some("a SAN outside the permitted or inside the excluded subtrees");
    }
    let cn_as_dns = leaf && c.dns.is_empty();
    let cn_bad = cn_as_dns
        && c.cns
            .iter()
            .filter(|cn| looks_like_host(cn))
            .any(|cn| cert::dns_violates(cn, nc, false));
    cn_bad.then_some("a CN host name outside the permitted or inside the excluded subtrees")
}

/// v3_ncons.c `cn2dnsid`: a CN with a dot and only host-name characters is checked as a DNS name.
fn looks_like_host(cn: &str) -> bool {
    cn.contains('.')
        && !cn.starts_with('.')
        && !cn.ends_with('.')
        && cn
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.' || ch == '*')
}

/// x509_vfy.c `check_auth_level` at level 2: CA keys of 112 bits (RSA 2048) and signatures of
/// 80 bits (no SHA-1, no MD5), the trust anchor's own signature aside.
fn auth_level(chain: &[&Cert<'_>]) -> Result<(), Refusal> {
    let last = chain.len() - 1;
    for (i, c) in chain.iter().enumerate() {
        if i > 0 && c.rsa_bits.is_some_and(|b| b < MIN_RSA_BITS) {
            return Err(weak_key(c, "CA"));
        }
        if i < last && c.weak_signature() {
            return Err((
                ChainReason::WeakAlgorithm,
                format!("{} is signed with SHA-1 or MD5, which OpenSSL refuses at security level 2 (\"CA signature digest algorithm too weak\"); reissue it with SHA-256", c.label()),
            ));
        }
    }
    Ok(())
}

fn weak_key(c: &Cert<'_>, what: &str) -> Refusal {
    (
        ChainReason::WeakAlgorithm,
        format!(
            "{what} {} has an RSA {}-bit key; OpenSSL at security level 2 requires 2048 bits",
            c.label(),
            c.rsa_bits.unwrap_or(0)
        ),
    )
}

/// v3_utl.c `X509_check_host` / `X509_check_ip`: DNS SANs, or the CN when there is no DNS
/// SAN; partial wildcards allowed; IP addresses against IP SANs only.
fn hostname(leaf: &Cert<'_>, name: &str) -> Result<(), Refusal> {
    let ok = match name.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => leaf.ips.contains(&ip),
        Err(_) if leaf.dns.is_empty() => {
            leaf.cns.iter().any(|cn| cert::dns_match(cn, name, true, 2))
        }
        Err(_) => leaf.dns.iter().any(|p| cert::dns_match(p, name, true, 2)),
    };
    if ok {
        return Ok(());
    }
    Err((
        ChainReason::NameMismatch,
        format!(
            "leaf {} is not valid for {name:?} (\"hostname mismatch\")",
            leaf.label()
        ),
    ))
}

/// x509_vfy.c `internal_verify`: from the anchor down, each validity period and each
/// signature (the anchor's self-signature is not checked).
fn signatures_and_times(chain: &[&Cert<'_>], now: i64) -> Result<(), Refusal> {
    for i in (0..chain.len()).rev() {
        let c = chain[i];
        if let Some(parent) = chain.get(i + 1) {
            if !cert::signed_by(c, parent) {
                return Err((
                    ChainReason::BadSignature,
                    format!("the signature of {} does not verify with the key of {} (\"certificate signature failure\"): a CA with the same name but another key?", c.label(), parent.label()),
                ));
            }
        }
        let what = if i == 0 { "leaf" } else { "CA" };
        check_time(c, what, now)?;
    }
    Ok(())
}

/// x509_vfy.c `check_cert_time`: `X509_cmp_time` counts notAfter itself as past.
fn check_time(c: &Cert<'_>, what: &str, now: i64) -> Result<(), Refusal> {
    super::check_time(c, what, now)?;
    if now == c.not_after {
        return Err((
            ChainReason::Expired,
            format!(
                "{what} {} expired at {} (its notAfter)",
                c.label(),
                crate::certs::rfc3339(now)
            ),
        ));
    }
    Ok(())
}

fn usage(c: &Cert<'_>, why: &str) -> Refusal {
    (ChainReason::InvalidUsage, format!("{} {why}", c.label()))
}
