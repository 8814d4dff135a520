//! RFC 5280 and CA/B Forum profile rules that rustls-webpki does not enforce, checked on a
//! path that webpki accepted (leaf, intermediates, anchor). Each rule names the section it
//! comes from; the first violation is returned.
//!
//! Left out on purpose, because clients accept such certificates and flagging them would
//! raise false alarms on working internal PKIs: a missing authorityKeyIdentifier on leaves and
//! intermediates (rcgen and older OpenSSL setups omit it) and `_` in DNS names.
//!
//! Structural rules give `other`, basicConstraints / keyUsage / nameConstraints rules give
//! `invalid_usage`, odd RSA moduli give `weak_algorithm`. The leaf-CN rule only flags a CN
//! that names one of the SAN identities in another spelling (`192.168.001.001`, upper case,
//! Unicode); a CN naming something else ("Vault Server") is left alone, as clients ignore it.

use super::{label, ChainFailure};
use crate::model::ChainReason;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

type Rule = fn(&X509Certificate<'_>, Role) -> Result<(), String>;

/// What the rules found on one certificate in one position.
pub(super) type Finding = Result<(), (ChainReason, String)>;

/// Where a certificate sits in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Leaf,
    Intermediate,
    Anchor,
}

/// Checks every certificate of a validated path (leaf first, anchor last); `leaf` is the leaf
/// parsed already, when it parses.
pub(super) fn check(
    path: &[CertificateDer<'_>],
    leaf: Option<&X509Certificate<'_>>,
) -> Result<(), ChainFailure> {
    let last = path.len().saturating_sub(1);
    for (i, der) in path.iter().enumerate() {
        let role = match i {
            0 => Role::Leaf,
            i if i == last => Role::Anchor,
            _ => Role::Intermediate,
        };
        let found = match (role, leaf) {
            (Role::Leaf, Some(cert)) => check_one(cert, role),
            _ => findings(der, role),
        };
        found.map_err(|(reason, why)| {
            let who = match role {
                Role::Leaf => "leaf",
                Role::Intermediate => "intermediate",
                Role::Anchor => "trust anchor (in ca_file)",
            };
            ChainFailure::new(
                reason,
                format!(
                    "{who} {} {why}; reissue it with a conforming profile",
                    label(der)
                ),
            )
        })?;
    }
    Ok(())
}

/// The rules on one certificate; an intermediate's or an anchor's finding is remembered (the
/// same CA certificates close the path of every certificate they issued).
fn findings(der: &[u8], role: Role) -> Finding {
    let fresh = || match X509Certificate::from_der(der) {
        Ok((_, cert)) => check_one(&cert, role),
        Err(_) => Ok(()),
    };
    if role == Role::Leaf {
        return fresh();
    }
    let i = role as usize;
    let get = |k: &super::Known| k.profile[i].clone();
    super::known(der, get, |k, v| k.profile[i] = Some(v), fresh)
}

fn check_one(cert: &X509Certificate<'_>, role: Role) -> Finding {
    let groups: [(ChainReason, &[Rule]); 3] = [
        (
            ChainReason::Other,
            &[
                key_ids_not_critical,
                aki_of_root,
                ski_on_ca,
                subject_on_ca,
                san_criticality,
                aia_not_empty,
                anchor_critical_extensions,
                cn_in_sans,
            ],
        ),
        (
            ChainReason::InvalidUsage,
            &[
                ca_basic_constraints,
                key_cert_sign_consistent,
                name_constraints,
            ],
        ),
        (ChainReason::WeakAlgorithm, &[rsa_modulus_whole_bytes]),
    ];
    for (reason, rules) in groups {
        for rule in rules {
            rule(cert, role).map_err(|why| (reason, why))?;
        }
    }
    Ok(())
}

fn is_ca_role(role: Role) -> bool {
    role != Role::Leaf
}

fn self_issued(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

fn find<'c, 'a>(
    cert: &'c X509Certificate<'a>,
    pick: fn(&ParsedExtension<'a>) -> bool,
) -> Option<&'c X509Extension<'a>> {
    cert.extensions()
        .iter()
        .find(|e| pick(e.parsed_extension()))
}

/// RFC 5280 4.2.1.1 / 4.2.1.2: key identifiers MUST NOT be critical.
fn key_ids_not_critical(cert: &X509Certificate<'_>, _: Role) -> Result<(), String> {
    let critical = cert.extensions().iter().any(|e| {
        e.critical
            && matches!(
                e.parsed_extension(),
                ParsedExtension::AuthorityKeyIdentifier(_)
                    | ParsedExtension::SubjectKeyIdentifier(_)
            )
    });
    ok_unless(
        critical,
        "marks a key identifier extension critical (RFC 5280 4.2.1.1/4.2.1.2)",
    )
}

/// CA/B Forum 7.1.2.1: a root's AKI, if any, holds only its own key identifier.
fn aki_of_root(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    if role != Role::Anchor || !self_issued(cert) {
        return Ok(());
    }
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => Some(a),
            _ => None,
        });
    let Some(aki) = aki else { return Ok(()) };
    let ski = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        });
    let own = aki.key_identifier.as_ref().map(|k| k.0);
    let fine = aki.authority_cert_issuer.is_none()
        && aki.authority_cert_serial.is_none()
        && own.is_some()
        && (ski.is_none() || own == ski);
    ok_unless(!fine, "is a root whose authorityKeyIdentifier is not just its own key identifier (CA/B Forum 7.1.2.1)")
}

/// RFC 5280 4.2.1.2: CA certificates MUST carry a subjectKeyIdentifier.
fn ski_on_ca(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    let has = find(cert, |p| {
        matches!(p, ParsedExtension::SubjectKeyIdentifier(_))
    })
    .is_some();
    ok_unless(
        is_ca_role(role) && !has,
        "is a CA without subjectKeyIdentifier (RFC 5280 4.2.1.2)",
    )
}

/// RFC 5280 4.1.2.6: a CA's subject is a non-empty name.
fn subject_on_ca(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    let empty = cert.subject().iter().next().is_none();
    ok_unless(
        is_ca_role(role) && empty,
        "is a CA with an empty subject (RFC 5280 4.1.2.6)",
    )
}

/// RFC 5280 4.2.1.6: SAN critical exactly when the subject is empty.
fn san_criticality(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    if role != Role::Leaf {
        return Ok(());
    }
    let empty_subject = cert.subject().iter().next().is_none();
    let san = find(cert, |p| {
        matches!(p, ParsedExtension::SubjectAlternativeName(_))
    });
    match (empty_subject, san.map(|e| e.critical)) {
        (true, Some(false)) | (true, None) => Err("has an empty subject but no critical subjectAltName (RFC 5280 4.2.1.6)".into()),
        (false, Some(true)) => Err("marks subjectAltName critical although its subject is not empty (CA/B Forum 7.1.2.7.12)".into()),
        _ => Ok(()),
    }
}

/// RFC 5280 4.2.2.1: authorityInfoAccess holds at least one access description.
fn aia_not_empty(cert: &X509Certificate<'_>, _: Role) -> Result<(), String> {
    let bad = cert.extensions().iter().any(|e| {
        e.oid == x509_parser::oid_registry::OID_PKIX_AUTHORITY_INFO_ACCESS
            && !matches!(e.parsed_extension(), ParsedExtension::AuthorityInfoAccess(a) if !a.accessdescs.is_empty())
    });
    ok_unless(
        bad,
        "has a malformed or empty authorityInfoAccess (RFC 5280 4.2.2.1)",
    )
}

/// RFC 5280 4.2: an unknown critical extension makes a certificate unusable; webpki checks
/// this for the certificates it parses, not for the trust anchor.
fn anchor_critical_extensions(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    let bad = role == Role::Anchor
        && cert.extensions().iter().any(|e| {
            e.critical
                && matches!(
                    e.parsed_extension(),
                    ParsedExtension::UnsupportedExtension { .. }
                        | ParsedExtension::ParseError { .. }
                )
        });
    ok_unless(
        bad,
        "has a critical extension rotcheck does not understand (RFC 5280 4.2)",
    )
}

/// CA/B Forum 7.1.4.3: a leaf CN that names one of the SAN identities must be written
/// exactly like it (an IP in canonical form, a DNS name in the same case, A-labels only).
/// A CN naming something else entirely is left alone: clients ignore the CN.
fn cn_in_sans(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    if role != Role::Leaf {
        return Ok(());
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Ok(());
    };
    let sans = &san.value.general_names;
    for cn in cert.subject().iter_common_name() {
        if let Ok(text) = cn.as_str() {
            cn_rule(text, sans)?;
        }
    }
    Ok(())
}

fn cn_rule(cn: &str, sans: &[GeneralName<'_>]) -> Result<(), String> {
    let verbatim = sans.iter().any(|n| match n {
        GeneralName::DNSName(d) => *d == cn,
        GeneralName::IPAddress(b) => ip_text(b).as_deref() == Some(cn),
        _ => false,
    });
    if verbatim {
        return Ok(());
    }
    if let Some(ip) = lenient_ip(cn) {
        let named = sans
            .iter()
            .any(|n| matches!(n, GeneralName::IPAddress(b) if ip_of(b) == Some(ip)));
        return ok_unless(named, &format!("has CN {cn:?}, the IP address of a subjectAltName written non-canonically (write {ip}) (CA/B Forum 7.1.4.3)"));
    }
    if !cn.is_ascii() && cn.contains('.') {
        return Err(format!("has CN {cn:?}, a host name in Unicode; certificates carry IDNA A-labels (xn--) (CA/B Forum 7.1.4.3)"));
    }
    let case_only = sans
        .iter()
        .any(|n| matches!(n, GeneralName::DNSName(d) if d.eq_ignore_ascii_case(cn)));
    ok_unless(case_only, &format!("has CN {cn:?}, which differs from its subjectAltName only in case (CA/B Forum 7.1.4.3)"))
}

fn ip_of(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?).into()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?).into()),
        _ => None,
    }
}

/// An IP address in any form a legacy parser accepts: IPv6 text, or IPv4 the way
/// inet_aton reads it (1 to 4 parts, each decimal, 0x-hex or 0-octal).
fn lenient_ip(text: &str) -> Option<std::net::IpAddr> {
    if text.contains(':') {
        return text.parse::<std::net::Ipv6Addr>().ok().map(Into::into);
    }
    let parts: Vec<u64> = text.split('.').map(inet_part).collect::<Option<_>>()?;
    let (last, head) = parts.split_last()?;
    if head.len() > 3 || head.iter().any(|p| *p > 255) {
        return None;
    }
    let shift = 8 * (4 - head.len() as u32);
    if *last >= 1u64 << shift {
        return None;
    }
    let value = head.iter().fold(0u64, |acc, p| (acc << 8) | p) << shift | last;
    Some(std::net::Ipv4Addr::from(u32::try_from(value).ok()?).into())
}

fn inet_part(p: &str) -> Option<u64> {
    let (digits, radix) = match p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None if p.len() > 1 && p.starts_with('0') => (&p[1..], 8),
        None => (p, 10),
    };
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn ip_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?).to_string()),
        _ => None,
    }
}

/// RFC 5280 4.2.1.9: a CA's basicConstraints is present, critical, and says CA.
fn ca_basic_constraints(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    if !is_ca_role(role) {
        return Ok(());
    }
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.critical && bc.value.ca => Ok(()),
        Ok(Some(bc)) if bc.value.ca => {
            Err("is a CA whose basicConstraints is not critical (RFC 5280 4.2.1.9)".into())
        }
        _ => Err("is used as a CA but has no basicConstraints CA:TRUE (RFC 5280 4.2.1.9)".into()),
    }
}

/// RFC 5280 4.2.1.3 / 4.2.1.9: keyCertSign exactly on CA certificates.
fn key_cert_sign_consistent(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    let ku = match cert.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        _ => return Ok(()),
    };
    let ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    if ku && !ca {
        return Err(
            "asserts keyCertSign without basicConstraints CA:TRUE (RFC 5280 4.2.1.3)".into(),
        );
    }
    ok_unless(
        is_ca_role(role) && !ku,
        "is a CA whose keyUsage lacks keyCertSign (RFC 5280 4.2.1.3)",
    )
}

/// RFC 5280 4.2.1.10: name constraints only on CAs, not empty, DNS bases without a leading dot.
fn name_constraints(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    let Some(ext) = cert
        .extensions()
        .iter()
        .find(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_NAME_CONSTRAINTS)
    else {
        return Ok(());
    };
    if role == Role::Leaf {
        return Err(
            "carries nameConstraints, which only CA certificates may (RFC 5280 4.2.1.10)".into(),
        );
    }
    let ParsedExtension::NameConstraints(nc) = ext.parsed_extension() else {
        return Err("has malformed nameConstraints (RFC 5280 4.2.1.10)".into());
    };
    let subtrees: Vec<_> = nc
        .permitted_subtrees
        .iter()
        .chain(nc.excluded_subtrees.iter())
        .flatten()
        .collect();
    if subtrees.is_empty() {
        return Err(
            "has nameConstraints with neither permitted nor excluded subtrees (RFC 5280 4.2.1.10)"
                .into(),
        );
    }
    let leading_dot = subtrees
        .iter()
        .any(|s| matches!(s.base, GeneralName::DNSName(d) if d.starts_with('.')));
    ok_unless(
        leading_dot,
        "has a nameConstraints DNS name with a leading '.' (RFC 5280 4.2.1.10)",
    )
}

/// CA/B Forum 6.1.5: an RSA modulus is a whole number of bytes (2048, 3072, ... bits).
fn rsa_modulus_whole_bytes(cert: &X509Certificate<'_>, _: Role) -> Result<(), String> {
    use x509_parser::public_key::PublicKey;
    let Ok(PublicKey::RSA(rsa)) = cert.public_key().parsed() else {
        return Ok(());
    };
    let m: &[u8] = rsa.modulus;
    let m = &m[m.iter().take_while(|b| **b == 0).count()..];
    let bits = m
        .first()
        .map_or(0, |b| m.len() * 8 - b.leading_zeros() as usize);
    ok_unless(
        bits % 8 != 0,
        &format!("has an RSA key of {bits} bits, not a multiple of 8 (CA/B Forum 6.1.5)"),
    )
}

fn ok_unless(bad: bool, why: &str) -> Result<(), String> {
    if bad {
        Err(why.into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn lenient_ip_reads_legacy_forms() {
        let v4 = |s: &str| lenient_ip(s).map(|ip| ip.to_string());
        assert_eq!(v4("192.168.001.001").as_deref(), Some("192.168.1.1"));
        assert_eq!(v4("0xC0A80101").as_deref(), Some("192.168.1.1"));
        assert_eq!(v4("2001:DB8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(v4("example.com"), None);
        assert_eq!(v4("1.2.3.4.5"), None);
        assert_eq!(v4("256.1.1.1"), None);
    }

    #[test]
    fn cn_rule_flags_other_spellings_only() {
        let ip: IpAddr = "192.168.1.1".parse().unwrap();
        let octets = match ip {
            IpAddr::V4(a) => a.octets(),
            IpAddr::V6(_) => unreachable!(),
        };
        let sans = [
            GeneralName::DNSName("example.com"),
            GeneralName::IPAddress(&octets),
        ];
        assert!(cn_rule("example.com", &sans).is_ok());
        assert!(cn_rule("192.168.1.1", &sans).is_ok());
        assert!(cn_rule("Vault Server", &sans).is_ok());
        assert!(cn_rule("other.example", &sans).is_ok());
        assert!(cn_rule("Example.COM", &sans).is_err());
        assert!(cn_rule("192.168.001.001", &sans).is_err());
        assert!(cn_rule("exämple.com", &sans).is_err());
    }
}
