//! The facts of one certificate that the client profiles decide on, parsed once (x509-parser),
//! and the issuer test they share: names chain and the signature verifies with the parent's
//! key (ring, with the legacy RSA 1024+ and SHA-1 algorithms the profiles then judge).

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rustls_pki_types::CertificateDer;
use std::net::IpAddr;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// Extended key usage of a certificate that carries the extension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Eku {
    pub any: bool,
    pub server: bool,
    pub client: bool,
}

/// Name constraints of a CA (DNS and IP subtrees; other kinds are counted, not judged).
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    pub permitted_dns: Vec<String>,
    pub excluded_dns: Vec<String>,
    pub permitted_ip: Vec<(IpAddr, IpAddr)>,
    pub excluded_ip: Vec<(IpAddr, IpAddr)>,
}

/// One parsed certificate.
#[derive(Debug, Clone)]
pub struct Cert<'a> {
    pub der: &'a CertificateDer<'a>,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub spki: Vec<u8>,
    pub version: u32,
    pub ski: Option<Vec<u8>>,
    pub aki: Option<Vec<u8>>,
    /// basicConstraints: (cA, pathLenConstraint).
    pub bc: Option<(bool, Option<u32>)>,
    /// keyUsage: (keyCertSign, digitalSignature|keyEncipherment|keyAgreement).
    pub ku: Option<(bool, bool)>,
    pub eku: Option<Eku>,
    pub not_before: i64,
    pub not_after: i64,
    pub sig_oid: String,
    pub rsa_bits: Option<usize>,
    pub san_ext: bool,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub cns: Vec<String>,
    pub serial: Vec<u8>,
    pub constraints: Option<Constraints>,
    /// OIDs of critical extensions neither Go nor OpenSSL handle.
    pub unknown_critical: Vec<String>,
    tbs: Vec<u8>,
    sig_alg_der: Vec<u8>,
    signature: Vec<u8>,
}

/// Critical extensions both Go and OpenSSL process (RFC 5280 4.2).
const HANDLED: &[&str] = &[
    "2.5.29.15", // keyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.19", // basicConstraints
    "2.5.29.30", // nameConstraints
    "2.5.29.32", // certificatePolicies
    "2.5.29.36", // policyConstraints
    "2.5.29.37", // extKeyUsage
    "2.5.29.54", // inhibitAnyPolicy
];

impl<'a> Cert<'a> {
    /// None when x509-parser cannot read it.
    pub fn parse(der: &'a CertificateDer<'a>) -> Option<Cert<'a>> {
        let (_, c) = X509Certificate::from_der(der).ok()?;
        let mut out = Cert {
            der,
            subject: c.subject().as_raw().to_vec(),
            issuer: c.issuer().as_raw().to_vec(),
            spki: c.public_key().raw.to_vec(),
            version: c.version().0 + 1,
            ski: None,
            aki: None,
            bc: None,
            ku: None,
            eku: None,
            not_before: c.validity().not_before.timestamp(),
            not_after: c.validity().not_after.timestamp(),
            sig_oid: c.signature_algorithm.algorithm.to_id_string(),
            rsa_bits: rsa_bits(&c),
            san_ext: false,
            dns: vec![],
            ips: vec![],
            cns: c
                .subject()
                .iter_common_name()
                .filter_map(|a| a.as_str().ok().map(str::to_string))
                .collect(),
            serial: c.raw_serial().to_vec(),
            constraints: None,
            unknown_critical: vec![],
            tbs: c.tbs_certificate.as_ref().to_vec(),
            sig_alg_der: alg_params(&c),
            signature: c.signature_value.data.to_vec(),
        };
        for e in c.extensions() {
            out.extension(e);
        }
        Some(out)
    }

    fn extension(&mut self, e: &X509Extension<'_>) {
        match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => self.ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                self.aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            ParsedExtension::BasicConstraints(b) => self.bc = Some((b.ca, b.path_len_constraint)),
            ParsedExtension::KeyUsage(k) => {
                let tls = k.digital_signature() || k.key_encipherment() || k.key_agreement();
                self.ku = Some((k.key_cert_sign(), tls))
            }
            ParsedExtension::ExtendedKeyUsage(x) => {
                self.eku = Some(Eku {
                    any: x.any,
                    server: x.server_auth,
                    client: x.client_auth,
                })
            }
            ParsedExtension::SubjectAlternativeName(s) => {
                self.san_ext = true;
                for n in &s.general_names {
                    match n {
                        GeneralName::DNSName(d) => self.dns.push(d.to_string()),
                        GeneralName::IPAddress(b) => self.ips.extend(ip_of(b)),
                        _ => {}
                    }
                }
            }
            ParsedExtension::NameConstraints(nc) => self.constraints = Some(constraints(nc)),
            _ if e.critical && !HANDLED.contains(&e.oid.to_id_string().as_str()) => {
                self.unknown_critical.push(e.oid.to_id_string())
            }
            _ => {}
        }
    }

    /// Subject == issuer.
    pub fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    /// Self-issued and its signature verifies with its own key.
    pub fn self_signed(&self) -> bool {
        self.self_issued() && signed_by(self, self)
    }

    /// Valid at `now` (unix seconds), bounds included.
    pub fn valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Signed with SHA-1 or MD5 (RSA, ECDSA or DSA).
    pub fn weak_signature(&self) -> bool {
        matches!(
            self.sig_oid.as_str(),
            "1.2.840.113549.1.1.4"
                | "1.2.840.113549.1.1.5"
                | "1.2.840.10045.4.1"
                | "1.2.840.10040.4.3"
                | "1.3.14.3.2.29"
        )
    }

    /// The serial number is negative (its first content octet has the high bit set).
    pub fn negative_serial(&self) -> bool {
        self.serial.first().is_some_and(|b| b & 0x80 != 0)
    }

    /// The DER of the certificate.
    pub fn bytes(&self) -> &[u8] {
        self.der.as_ref()
    }

    /// `"CN"` for messages.
    pub fn label(&self) -> String {
        super::super::label(self.bytes())
    }

    /// The CA's keyUsage allows certificate signing (or there is no keyUsage).
    pub fn may_sign_certs(&self) -> bool {
        self.ku.is_none_or(|(sign, _)| sign)
    }
}

fn rsa_bits(c: &X509Certificate<'_>) -> Option<usize> {
    match c.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => Some(rsa.key_size()),
        _ => None,
    }
}

fn alg_params(c: &X509Certificate<'_>) -> Vec<u8> {
    c.signature_algorithm
        .parameters
        .as_ref()
        .map(|p| p.as_bytes().to_vec())
        .unwrap_or_default()
}

fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?).into()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?).into()),
        _ => None,
    }
}

fn ip_range(b: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let half = b.len() / 2;
    Some((ip_of(&b[..half])?, ip_of(&b[half..])?))
}

fn constraints(nc: &x509_parser::extensions::NameConstraints<'_>) -> Constraints {
    let mut out = Constraints::default();
    let split = |trees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
        let mut dns = vec![];
        let mut ips = vec![];
        for t in trees.iter().flatten() {
            match t.base {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => ips.extend(ip_range(b)),
                _ => {}
            }
        }
        (dns, ips)
    };
    (out.permitted_dns, out.permitted_ip) = split(&nc.permitted_subtrees);
    (out.excluded_dns, out.excluded_ip) = split(&nc.excluded_subtrees);
    out
}

/// The names chain (`child`'s issuer is `parent`'s subject) and `child`'s signature verifies
/// with `parent`'s key. RSA keys of 1024 bits and more, SHA-1 included: the profiles decide
/// whether such signatures are acceptable.
pub fn signed_by(child: &Cert<'_>, parent: &Cert<'_>) -> bool {
    if child.issuer != parent.subject {
        return false;
    }
    let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(&parent.spki) else {
        return false;
    };
    let key = spki.subject_public_key.data.as_ref();
    algorithms(&child.sig_oid, &child.sig_alg_der)
        .into_iter()
        .any(|alg| {
            UnparsedPublicKey::new(alg, key)
                .verify(&child.tbs, &child.signature)
                .is_ok()
        })
}

/// The ring algorithms that may have made a signature with this OID (ECDSA names the hash,
/// not the curve, so both curves are tried).
fn algorithms(oid: &str, params: &[u8]) -> Vec<&'static dyn VerificationAlgorithm> {
    match oid {
        "1.2.840.113549.1.1.5" => vec![&signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY],
        "1.2.840.113549.1.1.11" => vec![&signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY],
        "1.2.840.113549.1.1.12" => vec![&signature::RSA_PKCS1_2048_8192_SHA384],
        "1.2.840.113549.1.1.13" => vec![&signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY],
        "1.2.840.113549.1.1.10" => vec![pss(params)],
        "1.2.840.10045.4.3.2" => vec![
            &signature::ECDSA_P256_SHA256_ASN1,
            &signature::ECDSA_P384_SHA256_ASN1,
        ],
        "1.2.840.10045.4.3.3" => vec![
            &signature::ECDSA_P384_SHA384_ASN1,
            &signature::ECDSA_P256_SHA384_ASN1,
        ],
        "1.3.101.112" => vec![&signature::ED25519],
        _ => vec![],
    }
}

/// RSA-PSS with the hash its parameters name (SHA-256 when they are absent or unreadable).
fn pss(params: &[u8]) -> &'static dyn VerificationAlgorithm {
    const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    let has = |needle: &[u8]| params.windows(needle.len()).any(|w| w == needle);
    if has(SHA512) {
        &signature::RSA_PSS_2048_8192_SHA512
    } else if has(SHA384) {
        &signature::RSA_PSS_2048_8192_SHA384
    } else {
        &signature::RSA_PSS_2048_8192_SHA256
    }
}

/// DNS name `name` matches SAN pattern `pattern`: case-insensitive, trailing dot ignored, a
/// `*` as the whole leftmost label matching one label, when at least `min_rest` labels follow
/// it (else the pattern is compared literally). `partial` also allows `f*.example.com`
/// (OpenSSL's default).
pub fn dns_match(pattern: &str, name: &str, partial: bool, min_rest: usize) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if p.is_empty() || n.is_empty() {
        return false;
    }
    let (Some((p1, prest)), Some((n1, nrest))) = (p.split_once('.'), n.split_once('.')) else {
        return p == n;
    };
    if !p1.contains('*') || prest.split('.').count() < min_rest {
        return p == n;
    }
    if prest != nrest || n1.is_empty() {
        return false;
    }
    if p1 == "*" {
        return true;
    }
    if !partial || p1.matches('*').count() > 1 || p1.starts_with("xn--") {
        return false;
    }
    let (pre, post) = p1.split_once('*').unwrap_or((p1, ""));
    n1.len() >= pre.len() + post.len() && n1.starts_with(pre) && n1.ends_with(post)
}

/// `name` is within the DNS subtree `base` (RFC 5280 4.2.1.10).
pub fn dns_within(name: &str, base: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let base = base.to_ascii_lowercase();
    if base.is_empty() {
        return true;
    }
    if let Some(b) = base.strip_prefix('.') {
        return name.ends_with(&format!(".{b}"));
    }
    name == base || name.ends_with(&format!(".{base}"))
}

/// `ip` is within the network `(address, mask)`.
pub fn ip_within(ip: &IpAddr, (net, mask): &(IpAddr, IpAddr)) -> bool {
    let bytes = |a: &IpAddr| match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    let (i, n, m) = (bytes(ip), bytes(net), bytes(mask));
    i.len() == n.len() && i.iter().zip(&n).zip(&m).all(|((i, n), m)| i & m == n & m)
}

/// The leaf's names break a CA's DNS or IP name constraints.
pub fn violates(leaf: &Cert<'_>, c: &Constraints) -> bool {
    let dns_bad = leaf.dns.iter().any(|d| {
        c.excluded_dns.iter().any(|b| dns_within(d, b))
            || (!c.permitted_dns.is_empty() && !c.permitted_dns.iter().any(|b| dns_within(d, b)))
    });
    let ip_bad = leaf.ips.iter().any(|ip| {
        c.excluded_ip.iter().any(|r| ip_within(ip, r))
            || (!c.permitted_ip.is_empty() && !c.permitted_ip.iter().any(|r| ip_within(ip, r)))
    });
    dns_bad || ip_bad
}
