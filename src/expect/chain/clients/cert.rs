//! The facts of one certificate that the client profiles decide on, parsed once (x509-parser),
//! and the issuer test they share: names chain and the signature verifies with the parent's
//! key (ring, with the legacy RSA 1024+ and SHA-1 algorithms the profiles then judge;
//! remembered, as each profile checks the same signatures).

use crate::certs::ByDer;
use crate::expect::chain::memo;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rustls_pki_types::CertificateDer;
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use x509_parser::der_parser::asn1_rs::{Any, FromDer as _};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// Extended key usage of a certificate that carries the extension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Eku {
    pub any: bool,
    pub server: bool,
    pub client: bool,
    /// The extension lists no purpose at all.
    pub empty: bool,
}

/// Name constraints of a CA (DNS and IP subtrees; other kinds are counted, not judged).
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    pub permitted_dns: Vec<String>,
    pub excluded_dns: Vec<String>,
    pub permitted_ip: Vec<(IpAddr, IpAddr)>,
    pub excluded_ip: Vec<(IpAddr, IpAddr)>,
    /// Every subtree, of any kind.
    pub count: usize,
    /// An IP subtree that is not address + mask (8 or 32 octets).
    pub bad_ip: bool,
    /// A subtree of a kind neither Go nor OpenSSL checks (otherName, x400, ediParty, rid).
    pub other_kind: bool,
    /// A directoryName subtree.
    pub dir_name: bool,
}

/// One parsed certificate: its DER and the facts read from it, shared (a CA file's
/// certificates and the intermediates many listeners send are parsed once per thread, see
/// [`Cert::shared`]).
#[derive(Debug, Clone)]
pub struct Cert<'a> {
    pub der: &'a CertificateDer<'a>,
    fields: Arc<Fields>,
}

impl std::ops::Deref for Cert<'_> {
    type Target = Fields;

    fn deref(&self) -> &Fields {
        &self.fields
    }
}

/// The facts of a certificate the profiles decide on, a pure function of its DER.
#[derive(Debug)]
pub struct Fields {
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
    /// OIDs of every critical extension.
    pub critical: Vec<String>,
    /// keyUsage is present with no bit set (Go reads that as no keyUsage).
    pub ku_zero: bool,
    /// AKI authorityCertIssuer (its directoryName, raw) and authorityCertSerialNumber.
    pub aki_issuer: Option<Vec<u8>>,
    pub aki_serial: Option<Vec<u8>>,
    /// A SAN entry Go cannot parse (an IP of neither 4 nor 16 octets).
    pub bad_ip_san: bool,
    pub san_other_name: bool,
    /// SAN entries of any kind.
    pub san_count: usize,
    /// Attributes of the subject name.
    pub dn_entries: usize,
    /// An extension that appears twice, or does not parse (OpenSSL: an invalid certificate).
    pub malformed: Option<String>,
    /// Why Go's `ParseCertificate` refuses it, when it does.
    pub go_parse: Option<String>,
    /// An EC key with explicit curve parameters.
    pub explicit_curve: bool,
    tbs: Vec<u8>,
    sig_alg_der: Vec<u8>,
    signature: Vec<u8>,
    /// The signatureAlgorithm and the SPKI algorithm as rustls-webpki names algorithms (DER
    /// contents of the AlgorithmIdentifier), to share its verifications.
    sig_alg_id: Option<Vec<u8>>,
    pk_alg_id: Option<Vec<u8>>,
    /// Self-issued and signed with its own key, once asked.
    self_signed: OnceLock<bool>,
}

/// Extensions OpenSSL decodes when it first looks at a certificate: basicConstraints,
/// keyUsage, extKeyUsage, subjectKeyIdentifier, authorityKeyIdentifier, subjectAltName,
/// nameConstraints.
const CACHED: &[&str] = &[
    "2.5.29.19",
    "2.5.29.15",
    "2.5.29.37",
    "2.5.29.14",
    "2.5.29.35",
    "2.5.29.17",
    "2.5.29.30",
];

/// Certificates remembered per thread by [`Cert::shared`] before the memo is cleared.
const SHARED_MAX: usize = 64;

thread_local! {
    static SHARED: RefCell<ByDer<Arc<Fields>>> = Default::default();
}

impl<'a> Cert<'a> {
    /// None when x509-parser cannot read it.
    pub fn parse(der: &'a CertificateDer<'a>) -> Option<Cert<'a>> {
        let fields = Arc::new(Fields::parse(der)?);
        Some(Cert { der, fields })
    }

    /// [`Cert::parse`] of `der` parsed already as `c` (x509-parser).
    pub fn of(der: &'a CertificateDer<'a>, c: &X509Certificate<'_>) -> Cert<'a> {
        let fields = Arc::new(Fields::of(der, c));
        Cert { der, fields }
    }

    /// [`Cert::parse`] remembered per thread by DER: for certificates that many judgements
    /// of a run share (a CA file's, the intermediates of listeners served by one CA), not
    /// for leaves, which each listener has its own of.
    pub fn shared(der: &'a CertificateDer<'a>) -> Option<Cert<'a>> {
        if let Some(fields) = SHARED.with_borrow(|m| m.get(der.as_ref()).cloned()) {
            return Some(Cert { der, fields });
        }
        let cert = Cert::parse(der)?;
        SHARED.with_borrow_mut(|m| {
            if m.len() >= SHARED_MAX {
                m.clear();
            }
            m.insert(der.as_ref().into(), cert.fields.clone());
        });
        Some(cert)
    }

    /// Self-issued and its signature verifies with its own key.
    pub fn self_signed(&self) -> bool {
        *self
            .fields
            .self_signed
            .get_or_init(|| self.self_issued() && signed_by(self, self))
    }

    /// The DER of the certificate.
    pub fn bytes(&self) -> &[u8] {
        self.der.as_ref()
    }

    /// `"CN"` for messages.
    pub fn label(&self) -> String {
        super::super::label(self.bytes())
    }
}

impl Fields {
    fn parse(der: &CertificateDer<'_>) -> Option<Fields> {
        let (_, c) = X509Certificate::from_der(der).ok()?;
        Some(Fields::of(der, &c))
    }

    /// The facts of `der`, parsed already as `c`.
    fn of(der: &[u8], c: &X509Certificate<'_>) -> Fields {
        let mut out = Fields {
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
            rsa_bits: rsa_bits(c),
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
            critical: vec![],
            ku_zero: false,
            aki_issuer: None,
            aki_serial: None,
            bad_ip_san: false,
            san_other_name: false,
            san_count: 0,
            dn_entries: c.subject().iter_attributes().count(),
            malformed: None,
            go_parse: None,
            explicit_curve: false,
            tbs: c.tbs_certificate.as_ref().to_vec(),
            sig_alg_der: alg_params(c),
            signature: c.signature_value.data.to_vec(),
            sig_alg_id: sig_alg_id(der),
            pk_alg_id: pk_alg_id(c.public_key().raw),
            self_signed: OnceLock::new(),
        };
        let mut seen = std::collections::HashSet::new();
        for e in c.extensions() {
            if !seen.insert(e.oid.to_id_string()) {
                out.malformed = Some(format!("extension {} appears twice", e.oid));
                out.go_parse
                    .get_or_insert(format!("extension {} appears twice", e.oid));
            }
            out.extension(e);
        }
        out.parse_rules(c);
        crate::expect::chain::label_of(der, c);
        out
    }

    fn extension(&mut self, e: &X509Extension<'_>) {
        if e.critical {
            self.critical.push(e.oid.to_id_string());
        }
        match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => {
                self.ski = Some(k.0.to_vec());
                if e.critical {
                    self.go_parse =
                        Some("subject key identifier incorrectly marked critical".into());
                }
            }
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                self.aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                self.aki_serial = a.authority_cert_serial.map(<[u8]>::to_vec);
                self.aki_issuer = a
                    .authority_cert_issuer
                    .iter()
                    .flatten()
                    .find_map(|n| match n {
                        GeneralName::DirectoryName(d) => Some(d.as_raw().to_vec()),
                        _ => None,
                    });
                if e.critical {
                    self.go_parse =
                        Some("authority key identifier incorrectly marked critical".into());
                }
            }
            ParsedExtension::BasicConstraints(b) => self.bc = Some((b.ca, b.path_len_constraint)),
            ParsedExtension::KeyUsage(k) => {
                let tls = k.digital_signature() || k.key_encipherment() || k.key_agreement();
                self.ku = Some((k.key_cert_sign(), tls));
                self.ku_zero = k.flags == 0;
            }
            ParsedExtension::ExtendedKeyUsage(x) => {
                let empty = !(x.any || x.server_auth || x.client_auth || x.code_signing)
                    && !(x.email_protection || x.time_stamping || x.ocsp_signing)
                    && x.other.is_empty();
                self.eku = Some(Eku {
                    any: x.any,
                    server: x.server_auth,
                    client: x.client_auth,
                    empty,
                })
            }
            ParsedExtension::SubjectAlternativeName(s) => self.san(&s.general_names),
            ParsedExtension::NameConstraints(nc) => {
                let c = constraints(nc);
                if c.count == 0 {
                    self.go_parse = Some("empty name constraints extension".into());
                }
                if c.bad_ip {
                    self.go_parse = Some("IP constraint of a wrong length".into());
                }
                self.constraints = Some(c)
            }
            ParsedExtension::ParseError { error } => {
                // OpenSSL marks a certificate invalid when one of the extensions it caches
                // does not decode (v3_purp.c `ossl_x509v3_cache_extensions`).
                if CACHED.contains(&e.oid.to_id_string().as_str()) {
                    self.malformed = Some(format!("extension {} does not parse ({error})", e.oid));
                }
                self.go_parse
                    .get_or_insert(format!("invalid extension {}", e.oid));
            }
            _ if e.critical && e.oid.to_id_string() == "1.3.6.1.5.5.7.1.1" => {
                self.go_parse = Some("authority info access incorrectly marked critical".into());
            }
            _ => {}
        }
    }

    fn san(&mut self, names: &[GeneralName<'_>]) {
        self.san_ext = true;
        self.san_count = names.len();
        for n in names {
            match n {
                GeneralName::DNSName(d) => self.dns.push(d.to_string()),
                GeneralName::IPAddress(b) => match ip_of(b) {
                    Some(ip) => self.ips.push(ip),
                    None => self.bad_ip_san = true,
                },
                GeneralName::OtherName(..) => self.san_other_name = true,
                _ => {}
            }
        }
        if self.bad_ip_san {
            self.go_parse = Some("cannot parse an IP address SAN".into());
        }
    }

    /// Go's parser rules beyond the extensions: negative serials (since Go 1.23) and EC keys
    /// with explicit curve parameters.
    fn parse_rules(&mut self, c: &X509Certificate<'_>) {
        if self.negative_serial() {
            self.go_parse = Some("negative serial number".into());
        }
        let alg = &c.public_key().algorithm;
        let explicit = alg.algorithm.to_id_string() == "1.2.840.10045.2.1"
            && alg
                .parameters
                .as_ref()
                .is_none_or(|p| p.tag() != x509_parser::der_parser::asn1_rs::Tag::Oid);
        if explicit {
            self.explicit_curve = true;
            self.go_parse = Some("invalid ECDSA parameters (explicit curve)".into());
        }
    }

    /// Subject == issuer.
    pub fn self_issued(&self) -> bool {
        self.subject == self.issuer
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
    if b.len() != 8 && b.len() != 32 {
        return None;
    }
    let half = b.len() / 2;
    Some((ip_of(&b[..half])?, ip_of(&b[half..])?))
}

fn constraints(nc: &x509_parser::extensions::NameConstraints<'_>) -> Constraints {
    let mut out = Constraints::default();
    let mut split = |trees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
        let mut dns = vec![];
        let mut ips = vec![];
        for t in trees.iter().flatten() {
            out.count += 1;
            match t.base {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => match ip_range(b) {
                    Some(r) if b.len() == 8 || b.len() == 32 => ips.push(r),
                    _ => out.bad_ip = true,
                },
                GeneralName::DirectoryName(_) => out.dir_name = true,
                GeneralName::RFC822Name(_) | GeneralName::URI(_) => {}
                _ => out.other_kind = true,
            }
        }
        (dns, ips)
    };
    let permitted = split(&nc.permitted_subtrees);
    let excluded = split(&nc.excluded_subtrees);
    (out.permitted_dns, out.permitted_ip) = permitted;
    (out.excluded_dns, out.excluded_ip) = excluded;
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
    if shared_verification(child, parent, key) {
        return true;
    }
    let verify = || {
        algorithms(&child.sig_oid, &child.sig_alg_der)
            .into_iter()
            .any(|alg| {
                UnparsedPublicKey::new(alg, key)
                    .verify(&child.tbs, &child.signature)
                    .is_ok()
            })
    };
    let scope = [
        b"profiles".as_slice(),
        child.sig_oid.as_bytes(),
        &child.sig_alg_der,
    ];
    memo::remembered(&scope, key, &child.tbs, &child.signature, verify)
}

/// The verification rustls-webpki does for the same signature, through the memo the strict
/// path fills: a signature already verified there costs nothing here. Only a success counts;
/// a failure (e.g. an RSA-1024 key webpki refuses) falls through to the legacy algorithms.
fn shared_verification(child: &Cert<'_>, parent: &Cert<'_>, key: &[u8]) -> bool {
    let (Some(sig), Some(pk)) = (&child.sig_alg_id, &parent.pk_alg_id) else {
        return false;
    };
    memo::algorithms()
        .iter()
        .filter(|a| a.signature_alg_id().as_ref() == sig && a.public_key_alg_id().as_ref() == pk)
        .any(|a| {
            a.verify_signature(key, &child.tbs, &child.signature)
                .is_ok()
        })
}

/// DER contents of a certificate's outer signatureAlgorithm.
fn sig_alg_id(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = Any::from_der(der).ok()?;
    let (rest, _tbs) = Any::from_der(cert.data).ok()?;
    let (_, alg) = Any::from_der(rest).ok()?;
    Some(alg.data.to_vec())
}

/// DER contents of a SubjectPublicKeyInfo's algorithm.
fn pk_alg_id(spki: &[u8]) -> Option<Vec<u8>> {
    let (_, seq) = Any::from_der(spki).ok()?;
    let (_, alg) = Any::from_der(seq.data).ok()?;
    Some(alg.data.to_vec())
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

/// A DNS name breaks a CA's DNS constraints. `wildcards`: a `*.` name is also broken by an
/// excluded subtree it could match (Go).
pub fn dns_violates(name: &str, c: &Constraints, wildcards: bool) -> bool {
    let excluded = c.excluded_dns.iter().any(|b| {
        dns_within(name, b)
            || (wildcards
                && name
                    .strip_prefix("*.")
                    .is_some_and(|rest| dns_within(b.trim_start_matches('.'), rest)))
    });
    let permitted =
        c.permitted_dns.is_empty() || c.permitted_dns.iter().any(|b| dns_within(name, b));
    excluded || !permitted
}

/// An IP address breaks a CA's IP constraints.
pub fn ip_violates(ip: &IpAddr, c: &Constraints) -> bool {
    c.excluded_ip.iter().any(|r| ip_within(ip, r))
        || (!c.permitted_ip.is_empty() && !c.permitted_ip.iter().any(|r| ip_within(ip, r)))
}

/// The certificate's SAN names break a CA's DNS or IP name constraints.
pub fn violates(cert: &Cert<'_>, c: &Constraints, wildcards: bool) -> bool {
    cert.dns.iter().any(|d| dns_violates(d, c, wildcards))
        || cert.ips.iter().any(|ip| ip_violates(ip, c))
}
