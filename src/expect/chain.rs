//! Chain validation (DESIGN.md "chain: valid"): do the presented certificates build a path to
//! a self-signed root of the CA file? One entry point, [`validate`], shared by the tls probe,
//! the files probe and `rotcheck verify`; [`assert_chain`] turns its result into an assertion.
//!
//! Rules:
//! - Trust anchors are the self-issued certificates (subject == issuer) of the CA file. With
//!   `partial`, every certificate of the CA file is an anchor (OpenSSL `-partial_chain`).
//! - Intermediates of the CA file are never anchors; when the path builds only once they are
//!   added, the failure is `incomplete_chain`.
//! - Path building, signatures, validity at `now`, basic constraints, name constraints and the
//!   serverAuth EKU are rustls-webpki's (`EndEntityCert::verify_for_usage`); the presented
//!   certificates after the leaf are an unordered pool.
//! - On top of webpki: the anchor's own validity period is checked (OpenSSL does, webpki does
//!   not), a leaf RSA key under 2048 bits is `weak_algorithm`, and a leaf byte-identical to an
//!   anchor of the CA file (a pinned self-signed certificate) is valid on its own.
//! - `server_name`, when given, is checked on the leaf after the path (`name_mismatch`).
//! - Last, the path must follow the RFC 5280 / CA/B Forum profile rules webpki leaves out
//!   (key identifiers, basicConstraints on anchors, leaf CN among the SANs, ...): see
//!   [`profile`].

pub mod clients;
pub mod judge;
pub(crate) mod memo;
mod profile;
pub mod want;

pub use clients::{complete_chain, lint, verdict, Client, Lint, LintReason, Purpose, Verdict};

use crate::certs::{first_cn, rfc3339};
use crate::expect::names;
use crate::model::{Assertion, ChainReason, Status};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage, VerifiedPath};
use x509_parser::prelude::*;

/// A path that validated: leaf first, then the intermediates used, then the anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPath {
    pub certs: Vec<CertificateDer<'static>>,
    /// The anchor's subject CN (or whole subject when it has no CN).
    pub anchor: String,
}

/// Why a chain did not validate: the DESIGN.md reason and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ChainFailure {
    pub reason: ChainReason,
    /// What was expected, what was found, what to do.
    pub message: String,
    /// The rustls-webpki error behind it, when there is one.
    pub cause: Option<webpki::Error>,
}

impl ChainFailure {
    fn new(reason: ChainReason, message: impl Into<String>) -> Self {
        ChainFailure {
            reason,
            message: message.into(),
            cause: None,
        }
    }

    fn caused_by(mut self, e: webpki::Error) -> Self {
        self.cause = Some(e);
        self
    }
}

/// A lone certificate file judged like `openssl verify -CAfile`: the CA file's intermediates
/// may complete its path (a served chain or a fullchain file must carry its own).
pub fn with_ca_intermediates<'a>(
    certs: &[CertificateDer<'a>],
    ca: &[CertificateDer<'a>],
) -> Vec<CertificateDer<'a>> {
    let mut out = certs.to_vec();
    let intermediates = ca.iter().filter(|c| !is_self_signed(c));
    out.extend(intermediates.filter(|c| !certs.contains(c)).cloned());
    out
}

/// Which extended key usage the leaf must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// serverAuth: a TLS listener's certificate.
    Server,
    /// serverAuth or clientAuth: a certificate file that may be an mTLS client identity.
    Either,
}

/// Validates `presented` (leaf first, then any intermediates in any order) against the
/// certificates of a CA file at `now` for server use; see the module comment for the rules.
pub fn validate(
    presented: &[CertificateDer<'_>],
    ca: &[CertificateDer<'_>],
    server_name: Option<&str>,
    now: UnixTime,
    partial: bool,
) -> Result<ValidPath, ChainFailure> {
    validate_for(presented, ca, server_name, now, partial, Usage::Server)
}

/// `validate` with the leaf's required usage.
pub fn validate_for(
    presented: &[CertificateDer<'_>],
    ca: &[CertificateDer<'_>],
    server_name: Option<&str>,
    now: UnixTime,
    partial: bool,
    usage: Usage,
) -> Result<ValidPath, ChainFailure> {
    let parsed_leaf = presented.first().and_then(|d| parse(d));
    validate_parsed(
        presented,
        ca,
        server_name,
        now,
        (partial, usage),
        parsed_leaf.as_ref(),
    )
}

/// [`validate_for`] with the leaf parsed already (`None`: it does not parse), for a caller
/// that reads the leaf itself too.
pub(crate) fn validate_parsed(
    presented: &[CertificateDer<'_>],
    ca: &[CertificateDer<'_>],
    server_name: Option<&str>,
    now: UnixTime,
    (partial, usage): (bool, Usage),
    parsed_leaf: Option<&X509Certificate<'_>>,
) -> Result<ValidPath, ChainFailure> {
    let Some(leaf_der) = presented.first() else {
        return Err(ChainFailure::new(
            ChainReason::Other,
            "no certificate to validate; expected the leaf first",
        ));
    };
    let leaf = EndEntityCert::try_from(leaf_der).map_err(|e| unparsed_leaf(leaf_der, e))?;
    let pool = Pool::new(presented, ca, now, partial, usage);
    let path = match pool.pinned() {
        Some(anchor) => pool.pinned_path(anchor)?,
        None => pool.build(&leaf)?,
    };
    check_leaf_key(leaf_der, parsed_leaf)?;
    if let Some(name) = server_name {
        names::check(&leaf, leaf_der.as_ref(), name).map_err(name_failure)?;
    }
    if path.certs.len() > 1 {
        profile::check(&path.certs, parsed_leaf)?;
    }
    Ok(path)
}

/// `validate_for` as the `chain` assertion. `server_name` makes a name mismatch a chain failure.
pub fn assert_chain(
    presented: &[CertificateDer<'_>],
    ca: &[CertificateDer<'_>],
    server_name: Option<&str>,
    now: UnixTime,
    partial: bool,
    usage: Usage,
) -> Assertion {
    match validate_for(presented, ca, server_name, now, partial, usage) {
        Ok(p) => Assertion::pass("chain", describe_path(&p, server_name)),
        Err(f) => Assertion::not_ok("chain", Status::Fail, f.reason.as_str(), f.message),
    }
}

pub(crate) fn describe_path(p: &ValidPath, server_name: Option<&str>) -> String {
    let names: Vec<String> = p.certs.iter().map(|c| label(c)).collect();
    let mut s = format!("valid path {}", names.join(" <- "));
    if let Some(n) = server_name {
        s.push_str(&format!(", valid for {n:?}"));
    }
    s
}

fn unparsed_leaf(der: &CertificateDer<'_>, e: webpki::Error) -> ChainFailure {
    let size = der.as_ref().len();
    let why = if size > 0xFFFF {
        format!(
            "it is {size} bytes; rustls-webpki (and every rustls client) accepts at most 64 KiB"
        )
    } else {
        format!("{e:?}")
    };
    ChainFailure::new(
        ChainReason::Other,
        format!("the leaf certificate does not parse ({why})"),
    )
    .caused_by(e)
}

fn name_failure(e: names::NameError) -> ChainFailure {
    let reason = match e {
        names::NameError::BadLeaf { .. } => ChainReason::Other,
        _ => ChainReason::NameMismatch,
    };
    ChainFailure::new(reason, e.to_string())
}

/// A CA-file certificate, prepared once per validation.
struct CaEntry<'a> {
    der: &'a CertificateDer<'a>,
    /// Self-issued (subject == issuer): a root, hence a trust anchor.
    root: bool,
    anchor: Option<TrustAnchor<'a>>,
}

/// Everything a validation looks at.
struct Pool<'a> {
    presented: &'a [CertificateDer<'a>],
    ca: Vec<CaEntry<'a>>,
    now: UnixTime,
    partial: bool,
    usage: Usage,
}

impl<'a> Pool<'a> {
    fn new(
        presented: &'a [CertificateDer<'a>],
        ca: &'a [CertificateDer<'a>],
        now: UnixTime,
        partial: bool,
        usage: Usage,
    ) -> Self {
        let ca = ca.iter().map(prepare).collect();
        Pool {
            presented,
            ca,
            now,
            partial,
            usage,
        }
    }

    fn leaf(&self) -> &'a CertificateDer<'a> {
        &self.presented[0]
    }

    fn intermediates(&self) -> &'a [CertificateDer<'a>] {
        &self.presented[1..]
    }

    /// The anchors in force: the roots, or every CA-file certificate when partial.
    fn anchors(&self, partial: bool) -> (Vec<TrustAnchor<'a>>, Vec<&'a CertificateDer<'a>>) {
        self.ca
            .iter()
            .filter(|e| partial || e.root)
            .filter_map(|e| Some((e.anchor.clone()?, e.der)))
            .unzip()
    }

    /// A leaf that is itself one of the anchors (a pinned self-signed certificate).
    fn pinned(&self) -> Option<&'a CertificateDer<'a>> {
        let leaf = self.leaf().as_ref();
        self.ca
            .iter()
            .find(|e| (e.root || self.partial) && e.der.as_ref() == leaf)
            .map(|e| e.der)
    }

    fn pinned_path(&self, anchor: &'a CertificateDer<'a>) -> Result<ValidPath, ChainFailure> {
        check_validity(anchor, self.now, "pinned leaf (in ca_file)")?;
        Ok(ValidPath {
            certs: vec![anchor.clone().into_owned()],
            anchor: label(anchor),
        })
    }

    fn build(&self, leaf: &EndEntityCert<'_>) -> Result<ValidPath, ChainFailure> {
        let (anchors, ders) = self.anchors(self.partial);
        match verify(leaf, &anchors, self.intermediates(), self.now, self.usage) {
            Ok(vp) => {
                let anchor = anchor_der(&vp, &anchors, &ders);
                check_validity(anchor, self.now, "root (in ca_file)")?;
                Ok(path_of(self.leaf(), &vp, anchor))
            }
            Err(e) => Err(self.diagnose(leaf, e)),
        }
    }

    /// Turns a webpki error into a reason and a message that names the certificate at fault.
    fn diagnose(&self, leaf: &EndEntityCert<'_>, e: webpki::Error) -> ChainFailure {
        if is_self_signed(self.leaf()) {
            return ChainFailure::new(
                ChainReason::SelfSigned,
                format!(
                    "leaf {} is self-signed and not in ca_file; issue it from the CA, or pin it by adding this exact certificate to ca_file",
                    label(self.leaf())
                ),
            )
            .caused_by(e);
        }
        match e {
            webpki::Error::UnknownIssuer => self.unknown_issuer(leaf).caused_by(e),
            other => self.classify(other),
        }
    }

    fn classify(&self, e: webpki::Error) -> ChainFailure {
        #[allow(deprecated)]
        let f = match &e {
            webpki::Error::CertExpired { time, not_after } => self.expired(*time, *not_after),
            webpki::Error::CertNotValidYet { time, not_before } => {
                self.not_yet_valid(*time, *not_before)
            }
            webpki::Error::InvalidSignatureForPublicKey => self.bad_signature(),
            webpki::Error::SignatureAlgorithmMismatch => ChainFailure::new(
                ChainReason::BadSignature,
                "a certificate's signature algorithm differs from the one in its signed part; the certificate is malformed or tampered with",
            ),
            webpki::Error::UnsupportedSignatureAlgorithm
            | webpki::Error::UnsupportedSignatureAlgorithmContext(_)
            | webpki::Error::UnsupportedSignatureAlgorithmForPublicKey
            | webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => self.weak_signature(),
            other => usage_or_other(other),
        };
        f.caused_by(e)
    }

    fn all(&self) -> impl Iterator<Item = (String, &'a CertificateDer<'a>)> + '_ {
        let presented = self
            .presented
            .iter()
            .enumerate()
            .map(|(i, c)| (presented_position(i), c));
        let ca = self.ca.iter().map(|e| {
            let what = if e.root { "root" } else { "certificate" };
            (format!("{what} (in ca_file)"), e.der)
        });
        presented.chain(ca)
    }

    fn expired(&self, time: UnixTime, not_after: UnixTime) -> ChainFailure {
        let at = secs(not_after);
        let who = self.find(|c| c.validity().not_after.timestamp() == at);
        ChainFailure::new(
            ChainReason::Expired,
            format!(
                "{who} expired at {} (checked at {}); install a renewed certificate",
                rfc3339(at),
                rfc3339(secs(time))
            ),
        )
    }

    fn not_yet_valid(&self, time: UnixTime, not_before: UnixTime) -> ChainFailure {
        let at = secs(not_before);
        let who = self.find(|c| c.validity().not_before.timestamp() == at);
        ChainFailure::new(
            ChainReason::NotYetValid,
            format!(
                "{who} is not valid before {} (checked at {}); check the issuing host's clock, or wait",
                rfc3339(at),
                rfc3339(secs(time))
            ),
        )
    }

    /// Names the first certificate matching `pred` as `position "CN"`.
    fn find(&self, pred: impl Fn(&X509Certificate<'_>) -> bool) -> String {
        self.all()
            .find(|(_, der)| parse(der).is_some_and(|c| pred(&c)))
            .map(|(pos, der)| format!("{pos} {}", label(der)))
            .unwrap_or_else(|| "a certificate of the chain".into())
    }

    fn bad_signature(&self) -> ChainFailure {
        let weak = self
            .all()
            .skip(1)
            .find(|(_, der)| rsa_bits(der).is_some_and(|b| b < 2048));
        match weak {
            Some((pos, der)) => ChainFailure::new(
                ChainReason::WeakAlgorithm,
                format!(
                    "{pos} {} has an RSA {}-bit key; signatures by RSA keys under 2048 bits are not accepted; reissue the CA with RSA 2048+ or ECDSA",
                    label(der),
                    rsa_bits(der).unwrap_or(0)
                ),
            ),
            None => ChainFailure::new(
                ChainReason::BadSignature,
                "a certificate's signature does not verify with its issuer's key; the issuer named in it is not the CA that signed it (a re-keyed CA with the same name?)",
            ),
        }
    }

    fn weak_signature(&self) -> ChainFailure {
        // A root's self-signature is never checked, so its algorithm does not matter.
        let weak = self
            .all()
            .filter(|(_, der)| {
                parse(der).is_some_and(|c| c.subject().as_raw() != c.issuer().as_raw())
            })
            .find_map(|(pos, der)| Some((pos, der, weak_sig_alg(der)?)));
        match weak {
            Some((pos, der, alg)) => ChainFailure::new(
                ChainReason::WeakAlgorithm,
                format!("{pos} {} is signed with {alg}, which is not accepted; reissue it signed with SHA-256 or better", label(der)),
            ),
            None => ChainFailure::new(
                ChainReason::WeakAlgorithm,
                "a certificate uses a signature algorithm or key that is not accepted (weak or unsupported); reissue it with RSA 2048+/SHA-256 or ECDSA P-256/P-384",
            ),
        }
    }

    fn unknown_issuer(&self, leaf: &EndEntityCert<'_>) -> ChainFailure {
        if !self.partial {
            if let Some(f) = self.incomplete(leaf) {
                return f;
            }
            if let Some(f) = self.ends_at_intermediate(leaf) {
                return f;
            }
        }
        self.no_path()
    }

    /// The path builds once the CA file's intermediates are added: `incomplete_chain`.
    fn incomplete(&self, leaf: &EndEntityCert<'_>) -> Option<ChainFailure> {
        let extra: Vec<CertificateDer<'a>> = self
            .ca
            .iter()
            .filter(|e| !e.root)
            .map(|e| e.der.clone())
            .collect();
        if extra.is_empty() {
            return None;
        }
        let pool: Vec<CertificateDer<'a>> =
            self.intermediates().iter().cloned().chain(extra).collect();
        let (anchors, _) = self.anchors(false);
        let missing = match verify(leaf, &anchors, &pool, self.now, self.usage) {
            Ok(vp) => self.not_sent(&vp),
            Err(webpki::Error::UnknownIssuer) => return None,
            Err(e) => {
                let inner = self.classify(e);
                return Some(ChainFailure::new(
                    ChainReason::IncompleteChain,
                    format!("the chain lacks the intermediate the path needs (it is in ca_file); and even with it: {}", inner.message),
                ));
            }
        };
        let sent = if self.presented.len() == 1 {
            "the chain holds only the leaf".to_string()
        } else {
            format!(
                "the chain holds {} certificates but not {}",
                self.presented.len(),
                missing.join(", ")
            )
        };
        Some(ChainFailure::new(
            ChainReason::IncompleteChain,
            format!("{sent}; the chain validates only with intermediate {} from ca_file: put it after the leaf in fullchain.crt", missing.join(", ")),
        ))
    }

    /// Labels of the path's intermediates that the peer did not present.
    fn not_sent(&self, vp: &VerifiedPath<'_>) -> Vec<String> {
        vp.intermediate_certificates()
            .map(|c| c.der())
            .filter(|d| !self.presented.iter().any(|p| p.as_ref() == d.as_ref()))
            .map(|d| label(&d))
            .collect()
    }

    /// The path reaches a CA-file certificate that is not a root.
    fn ends_at_intermediate(&self, leaf: &EndEntityCert<'_>) -> Option<ChainFailure> {
        let (anchors, ders) = self.anchors(true);
        let vp = verify(leaf, &anchors, self.intermediates(), self.now, self.usage).ok()?;
        let at = label(anchor_der(&vp, &anchors, &ders));
        Some(ChainFailure::new(
            ChainReason::UnknownIssuer,
            format!("the path ends at {at} in ca_file, which is an intermediate, not a self-signed root; add its root to ca_file, or allow a partial chain for clients that trust it directly (suite: chain: {{valid: true, partial: true}}; verify: --partial)"),
        ))
    }

    fn no_path(&self) -> ChainFailure {
        let roots: Vec<String> = self
            .ca
            .iter()
            .filter(|e| e.root)
            .map(|e| label(e.der))
            .collect();
        let trusted = if roots.is_empty() {
            "ca_file holds no self-signed root".to_string()
        } else {
            format!("roots in ca_file: {}", roots.join(", "))
        };
        let top = self
            .presented
            .last()
            .map(|c| c.as_ref())
            .unwrap_or_default();
        let issuer = parse(top)
            .map(|c| first_cn_or_dn(c.issuer()))
            .unwrap_or_default();
        if self.presented.len() == 1 && !is_root(top) {
            return ChainFailure::new(
                ChainReason::IncompleteChain,
                format!(
                    "the chain holds only the leaf {}, and its issuer {issuer:?} is neither in the chain nor in ca_file ({trusted}): the intermediate is missing; send it after the leaf (fullchain) — or, if ca_file is not the CA that issued this leaf, fix ca_file",
                    label(top)
                ),
            );
        }
        ChainFailure::new(
            ChainReason::UnknownIssuer,
            format!(
                "no path to a trusted root: the chain ends at {} issued by {issuer:?}, which is not in ca_file ({trusted}); is ca_file the CA that issued this certificate?",
                label(top)
            ),
        )
    }
}

/// A CA-file certificate that is a root (self-issued): a trust anchor, not an intermediate.
fn is_root(der: &[u8]) -> bool {
    let compute = || parse(der).is_some_and(|c| c.subject().as_raw() == c.issuer().as_raw());
    known(der, |k| k.root, |k, v| k.root = Some(v), compute)
}

fn prepare<'a>(der: &'a CertificateDer<'a>) -> CaEntry<'a> {
    let root = is_root(der);
    CaEntry {
        der,
        root,
        anchor: webpki::anchor_from_trusted_cert(der).ok(),
    }
}

fn verify<'p>(
    leaf: &'p EndEntityCert<'p>,
    anchors: &'p [TrustAnchor<'p>],
    intermediates: &'p [CertificateDer<'p>],
    now: UnixTime,
    usage: Usage,
) -> Result<VerifiedPath<'p>, webpki::Error> {
    let server = verify_usage(leaf, anchors, intermediates, now, KeyUsage::server_auth());
    match (server, usage) {
        (Err(webpki::Error::RequiredEkuNotFoundContext(_)), Usage::Either) => {
            verify_usage(leaf, anchors, intermediates, now, KeyUsage::client_auth())
        }
        (result, _) => result,
    }
}

fn verify_usage<'p>(
    leaf: &'p EndEntityCert<'p>,
    anchors: &'p [TrustAnchor<'p>],
    intermediates: &'p [CertificateDer<'p>],
    now: UnixTime,
    eku: KeyUsage,
) -> Result<VerifiedPath<'p>, webpki::Error> {
    leaf.verify_for_usage(
        memo::algorithms(),
        anchors,
        intermediates,
        now,
        eku,
        None,
        None,
    )
}

/// The CA-file certificate behind the path's anchor.
fn anchor_der<'a>(
    vp: &VerifiedPath<'_>,
    anchors: &[TrustAnchor<'_>],
    ders: &[&'a CertificateDer<'a>],
) -> &'a CertificateDer<'a> {
    let i = anchors
        .iter()
        .position(|a| std::ptr::eq(a, vp.anchor()))
        .unwrap_or(0);
    ders[i]
}

fn path_of(
    leaf: &CertificateDer<'_>,
    vp: &VerifiedPath<'_>,
    anchor: &CertificateDer<'_>,
) -> ValidPath {
    let mut certs = vec![leaf.clone().into_owned()];
    certs.extend(vp.intermediate_certificates().map(|c| c.der().into_owned()));
    certs.push(anchor.clone().into_owned());
    ValidPath {
        certs,
        anchor: label(anchor),
    }
}

/// Checks a certificate's own validity period (webpki does not check anchors).
fn check_validity(der: &CertificateDer<'_>, now: UnixTime, what: &str) -> Result<(), ChainFailure> {
    let Some((nb, na)) = validity(der) else {
        return Ok(());
    };
    let t = secs(now);
    if t > na {
        return Err(ChainFailure::new(
            ChainReason::Expired,
            format!(
                "{what} {} expired at {} (checked at {}); put its renewed version in ca_file",
                label(der),
                rfc3339(na),
                rfc3339(t)
            ),
        ));
    }
    if t < nb {
        return Err(ChainFailure::new(
            ChainReason::NotYetValid,
            format!("{what} {} is not valid before {} (checked at {}); check the issuing host's clock, or wait", label(der), rfc3339(nb), rfc3339(t)),
        ));
    }
    Ok(())
}

/// A leaf RSA key under 2048 bits is refused by modern clients (CA/B Forum minimum).
fn check_leaf_key(
    leaf: &CertificateDer<'_>,
    parsed: Option<&X509Certificate<'_>>,
) -> Result<(), ChainFailure> {
    match parsed.and_then(key_bits) {
        Some(bits) if bits < 2048 => Err(ChainFailure::new(
            ChainReason::WeakAlgorithm,
            format!("leaf {} has an RSA {bits}-bit key; clients require at least 2048 bits; reissue it with RSA 2048+ or ECDSA P-256", label(leaf)),
        )),
        _ => Ok(()),
    }
}

fn usage_or_other(e: &webpki::Error) -> ChainFailure {
    #[allow(deprecated)]
    let usage = match e {
        webpki::Error::RequiredEkuNotFound
        | webpki::Error::RequiredEkuNotFoundContext(_)
        | webpki::Error::EmptyEkuExtension => "the leaf's extended key usage does not allow TLS server authentication (serverAuth); reissue it from a server role",
        webpki::Error::CaUsedAsEndEntity => "the leaf is a CA certificate (basicConstraints CA:TRUE); serve a leaf issued by the CA, not the CA itself",
        webpki::Error::EndEntityUsedAsCa => "a certificate in the issuer position is not a CA (basicConstraints); the chain file holds the wrong certificate",
        webpki::Error::PathLenConstraintViolated => "the path is longer than a CA's pathLenConstraint allows",
        webpki::Error::NameConstraintViolation => "a CA's name constraints do not allow the leaf's names",
        other => {
            return ChainFailure::new(
                ChainReason::Other,
                format!("the chain does not validate ({other:?})"),
            )
        }
    };
    ChainFailure::new(ChainReason::InvalidUsage, usage)
}

fn presented_position(i: usize) -> String {
    match i {
        0 => "leaf".into(),
        n => format!("certificate #{} (presented)", n + 1),
    }
}

fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    X509Certificate::from_der(der).ok().map(|(_, c)| c)
}

fn first_cn_or_dn(name: &X509Name<'_>) -> String {
    let cn = first_cn(name);
    if cn.is_empty() {
        name.to_string()
    } else {
        cn
    }
}

/// `"CN"` of a certificate (its whole subject when it has no CN).
pub fn label(der: &[u8]) -> String {
    let compute = || match parse(der) {
        Some(c) => label_text(&c),
        None => "(unparseable certificate)".into(),
    };
    known(der, |k| k.label.clone(), |k, v| k.label = Some(v), compute)
}

/// [`label`] of `der` parsed already as `c`: remembered, so that the messages naming it do
/// not parse it again.
pub(crate) fn label_of(der: &[u8], c: &X509Certificate<'_>) -> String {
    let compute = || label_text(c);
    known(der, |k| k.label.clone(), |k, v| k.label = Some(v), compute)
}

fn label_text(c: &X509Certificate<'_>) -> String {
    format!("{:?}", first_cn_or_dn(c.subject()))
}

/// notBefore and notAfter (Unix seconds); `None` when the certificate does not parse.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let compute = || {
        let c = parse(der)?;
        let v = c.validity();
        Some((v.not_before.timestamp(), v.not_after.timestamp()))
    };
    known(der, |k| k.validity, |k, v| k.validity = Some(v), compute)
}

fn is_self_signed(der: &[u8]) -> bool {
    let compute = || parse(der).is_some_and(|c| crate::certs::is_self_signed(&c));
    known(
        der,
        |k| k.self_signed,
        |k, v| k.self_signed = Some(v),
        compute,
    )
}

/// Facts of a certificate that a judgement asks for again and again (the CA file's, for
/// every file of a `files` check; the leaf's, for each message naming it), each a pure
/// function of the DER, so remembered per thread by DER instead of parsed every time.
#[derive(Default)]
struct Known {
    label: Option<String>,
    root: Option<bool>,
    self_signed: Option<bool>,
    validity: Option<Option<(i64, i64)>>,
    /// The profile rules' finding in each position of a path but the leaf's.
    profile: [Option<profile::Finding>; 3],
}

/// Certificates remembered per thread before the memo is cleared.
const KNOWN_MAX: usize = 256;

thread_local! {
    static KNOWN: std::cell::RefCell<crate::certs::ByDer<Known>> = Default::default();
}

/// The fact `get` reads of `der`'s memo entry, computed (outside the memo) and stored with
/// `set` the first time.
fn known<T: Clone>(
    der: &[u8],
    get: impl Fn(&Known) -> Option<T>,
    set: impl FnOnce(&mut Known, T),
    compute: impl FnOnce() -> T,
) -> T {
    if let Some(v) = KNOWN.with_borrow(|m| m.get(der).and_then(&get)) {
        return v;
    }
    let v = compute();
    KNOWN.with_borrow_mut(|m| {
        if m.len() >= KNOWN_MAX && !m.contains_key(der) {
            m.clear();
        }
        set(m.entry(der.into()).or_default(), v.clone());
    });
    v
}

fn rsa_bits(der: &[u8]) -> Option<usize> {
    key_bits(&parse(der)?)
}

/// The size of an RSA key; `None` for other keys.
fn key_bits(c: &X509Certificate<'_>) -> Option<usize> {
    use x509_parser::public_key::PublicKey;
    match c.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => Some(rsa.key_size()),
        _ => None,
    }
}

/// The name of a deprecated signature algorithm the certificate is signed with.
fn weak_sig_alg(der: &[u8]) -> Option<&'static str> {
    let oid = parse(der)?.signature_algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.2" => Some("md2WithRSAEncryption"),
        "1.2.840.113549.1.1.4" => Some("md5WithRSAEncryption"),
        "1.2.840.113549.1.1.5" => Some("sha1WithRSAEncryption"),
        "1.2.840.10045.4.1" => Some("ecdsa-with-SHA1"),
        "1.2.840.10040.4.3" => Some("dsa-with-sha1"),
        _ => None,
    }
}

fn secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// True when `parent` issued `child`: the names chain and `child`'s signature verifies with
/// `parent`'s key. Used for fullchain order (leaf first, then each issuer).
pub fn issued_by(child: &[u8], parent: &[u8]) -> bool {
    let (Some(c), Some(p)) = (parse(child), parse(parent)) else {
        return false;
    };
    c.issuer().as_raw() == p.subject().as_raw() && c.verify_signature(Some(p.public_key())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

    /// root -> intermediate -> leaf for `localhost`, valid 2030..2031 (pinned).
    fn pki() -> [CertificateDer<'static>; 3] {
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
            p.use_authority_key_identifier_extension = true;
            p
        };
        let (rk, ik, lk) = (
            KeyPair::generate().unwrap(),
            KeyPair::generate().unwrap(),
            KeyPair::generate().unwrap(),
        );
        let root = ca("root").self_signed(&rk).unwrap();
        let root_issuer = Issuer::new(ca("root"), rk);
        let inter = ca("inter").signed_by(&ik, &root_issuer).unwrap();
        let inter_issuer = Issuer::new(ca("inter"), ik);
        let mut lp = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        lp.distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        lp.not_before = rcgen::date_time_ymd(2030, 1, 1);
        lp.not_after = rcgen::date_time_ymd(2031, 1, 1);
        lp.use_authority_key_identifier_extension = true;
        let leaf = lp.signed_by(&lk, &inter_issuer).unwrap();
        [leaf.der().clone(), inter.der().clone(), root.der().clone()]
    }

    fn at(y: i32) -> UnixTime {
        let days = (y - 1970) as u64 * 36525 / 100;
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(days * 86_400 + 180 * 86_400))
    }

    /// The memo gives what a fresh parse gives, tells certificates apart by their bytes, and
    /// stays bounded however many certificates go through it.
    #[test]
    fn remembered_facts_match_a_fresh_parse_and_the_memo_is_bounded() {
        let [leaf, inter, root] = pki();
        for _ in 0..2 {
            assert_eq!(label(&leaf), "\"localhost\"");
            assert_eq!(label(&inter), "\"inter\"");
            assert!(is_root(&root) && !is_root(&inter) && !is_root(&leaf));
            assert!(is_self_signed(&root) && !is_self_signed(&inter));
        }
        assert_eq!(label(b"not a certificate"), "(unparseable certificate)");
        let key = KeyPair::generate().unwrap();
        for i in 0..KNOWN_MAX + 8 {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name
                .push(rcgen::DnType::CommonName, format!("c{i}"));
            let der = p.self_signed(&key).unwrap().der().clone();
            assert_eq!(label(&der), format!("\"c{i}\""));
            assert!(is_root(&der));
            assert!(KNOWN.with_borrow(|m| m.len()) <= KNOWN_MAX);
        }
        assert_eq!(label(&leaf), "\"localhost\"");
    }

    #[test]
    fn full_chain_is_valid_and_names_the_path() {
        let [leaf, inter, root] = pki();
        let p = validate(&[leaf, inter], &[root], Some("localhost"), at(2030), false).unwrap();
        assert_eq!(p.certs.len(), 3);
        assert_eq!(p.anchor, "\"root\"");
    }

    #[test]
    fn reasons_are_typed() {
        let [leaf, inter, root] = pki();
        let reason = |presented: &[CertificateDer<'static>],
                      ca: &[CertificateDer<'static>],
                      name,
                      y,
                      partial| {
            validate(presented, ca, name, at(y), partial)
                .map(|_| ())
                .map_err(|f| f.reason)
        };
        let both = [root.clone(), inter.clone()];
        let only_leaf = [leaf.clone()];
        let full = [leaf.clone(), inter.clone()];
        let (inter, root) = ([inter], [root]);
        assert_eq!(
            reason(&only_leaf, &both, None, 2030, false),
            Err(ChainReason::IncompleteChain)
        );
        assert_eq!(
            reason(&full, &inter, None, 2030, false),
            Err(ChainReason::UnknownIssuer)
        );
        assert_eq!(reason(&full, &inter, None, 2030, true), Ok(()));
        assert_eq!(
            reason(&full, &root, None, 2032, false),
            Err(ChainReason::Expired)
        );
        assert_eq!(
            reason(&full, &root, None, 2029, false),
            Err(ChainReason::NotYetValid)
        );
        assert_eq!(
            reason(&full, &root, Some("other.example"), 2030, false),
            Err(ChainReason::NameMismatch)
        );
        assert_eq!(
            reason(&[], &root, None, 2030, false),
            Err(ChainReason::Other)
        );
    }

    #[test]
    fn expired_carries_the_webpki_error() {
        let [leaf, inter, root] = pki();
        let f = validate(&[leaf, inter], &[root], None, at(2032), false).unwrap_err();
        assert!(
            matches!(f.cause, Some(webpki::Error::CertExpired { .. })),
            "{f:?}"
        );
        assert!(
            f.message
                .starts_with("leaf \"localhost\" expired at 2031-01-01T00:00:00Z"),
            "{}",
            f.message
        );
    }

    #[test]
    fn issued_by_follows_the_chain() {
        let [leaf, inter, root] = pki();
        assert!(issued_by(&leaf, &inter) && issued_by(&inter, &root));
        assert!(!issued_by(&inter, &leaf) && !issued_by(&leaf, &root));
    }
}
