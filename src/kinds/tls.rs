//! The `tls` probe: connect, handshake while recording the presented chain, classify any
//! failure, then judge the expectations on what the server presented.
//!
//! Assertions, in order:
//! - `handshake` (implicit): fails with the failure class as its reason.
//! - On the recorded chain, also when the handshake failed after the server sent it (a
//!   client-cert rejection still shows the server's chain): `chain`, `server_name`, `names`,
//!   `expiry`, `issuer_cn`, `issuer_dn`, `serves_file`. `min_tls` needs a finished handshake.
//! - `not_revoked` last, on the same chain: see [`crate::expect::revocation`] (the stapled
//!   OCSP response, `crl_file` or CRL distribution points, OCSP responders; `ca_file` helps
//!   find issuers).
//!
//! Server name: the leaf must be valid for `server_name` (default: the host of `addr`; an IP
//! address sends no SNI and must match an IP SAN). With `expect.chain` this is part of the
//! `chain` assertion (reason `name_mismatch`), as in every TLS client, so it also shows in
//! `rotcheck_chain_failure`; without `chain`, an implicit `server_name` assertion checks it.
//! `chain: {valid: false}` turns the chain judgement off (the name is then checked alone).
//!
//! `rotated_after` (an instant or a plan step, [`crate::expect::rotated`]) on the leaf.
//!
//! Addresses: `resolve: all` or a list of addresses probes each and adds `same_leaf`
//! ([`resolve`]); the default is the first address that accepts a connection.
//!
//! Expiry: judged on the leaf and on every intermediate the server sends (an expiring
//! intermediate breaks clients just the same). A self-signed root the server sends is left
//! out: clients use their own copy from the trust store.

pub mod client;
pub mod progress;
pub mod resolve;
pub mod settle;

use crate::certs::{self, FileError};
use crate::expect::chain::judge;
use crate::expect::chain::want::ChainExpect;
use crate::expect::revocation::{self, NotRevoked, Presented};
use crate::expect::rotated::{self, RotatedAfter};
use crate::expect::{chain, expiry, issuer, names};
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::{family, Def, Exposition};
use crate::model::{Assertion, CertFacts, CheckResult, Outcome, ProbeError, Status, TlsFacts};
use crate::suite::{split_host_port, ExpiryThresholds, TlsVersion};
use client::{Failed, Session, Target};
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Deserialize;
use std::sync::Arc;
use std::time::SystemTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// A TLS listener to handshake with.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// `host:port`.
    pub addr: String,
    /// SNI sent and the name verified; defaults to the host part of `addr`.
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    #[serde(default)]
    pub alpn: Vec<String>,
    /// CRLs for `expect.not_revoked` (PEM or DER); else the distribution points.
    pub crl_file: Option<String>,
    /// `first` (default), `all`, or a list of addresses: see [`resolve`].
    #[serde(default)]
    pub resolve: resolve::Resolve,
}

/// What a `tls` check may expect of the listener.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsExpect {
    pub chain: Option<ChainExpect>,
    pub names: Option<Vec<String>>,
    pub expiry: Option<ExpiryThresholds>,
    pub issuer_cn: Option<String>,
    pub issuer_dn: Option<String>,
    pub min_tls: Option<TlsVersion>,
    pub serves_file: Option<String>,
    pub not_revoked: Option<NotRevoked>,
    pub rotated_after: Option<RotatedAfter>,
}

impl TlsExpect {
    /// The expectation keys that are set, in the order the table documents them.
    pub fn keys_set(&self) -> Vec<&'static str> {
        let set = [
            ("chain", self.chain.is_some()),
            ("names", self.names.is_some()),
            ("expiry", self.expiry.is_some()),
            ("issuer_cn", self.issuer_cn.is_some()),
            ("issuer_dn", self.issuer_dn.is_some()),
            ("min_tls", self.min_tls.is_some()),
            ("serves_file", self.serves_file.is_some()),
            ("not_revoked", self.not_revoked.is_some()),
            ("rotated_after", self.rotated_after.is_some()),
        ];
        set.into_iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| k)
            .collect()
    }
}

/// `tls()` for the expectations of a kind that judges a TLS connection with every `tls`
/// expectation beside its own keys (`http`, `jwks`, `postgres`): the struct repeats the `tls`
/// fields because serde's `flatten` does not work with `deny_unknown_fields`.
macro_rules! tls_expect_of {
    ($t:ty) => {
        impl $t {
            /// The expectations judged on the TLS connection.
            pub fn tls(&self) -> $crate::kinds::tls::TlsExpect {
                $crate::kinds::tls::TlsExpect {
                    chain: self.chain,
                    names: self.names.clone(),
                    expiry: self.expiry,
                    issuer_cn: self.issuer_cn.clone(),
                    issuer_dn: self.issuer_dn.clone(),
                    min_tls: self.min_tls,
                    serves_file: self.serves_file.clone(),
                    not_revoked: self.not_revoked,
                    rotated_after: self.rotated_after.clone(),
                }
            }
        }
    };
}
pub(crate) use tls_expect_of;

family!(
    TLS_VERSION,
    "rotcheck_tls_version_info",
    Gauge,
    "The TLS version negotiated by the check's last handshake; always 1."
);

/// The `tls` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls;

impl CheckKind for Tls {
    const NAME: &'static str = "tls";
    const CONNECTS: bool = true;
    type Spec = TlsSpec;
    type Expect = TlsExpect;
    const FAMILIES: &'static [&'static Def] = &[&TLS_VERSION];

    fn validate(spec: &TlsSpec, _expect: &TlsExpect) -> Result<(), Invalid> {
        if split_host_port(&spec.addr).is_none() {
            return Err(Invalid::new(
                ".tls.addr",
                format!(
                    "bad address {:?}; write host:port, e.g. 127.0.0.1:8443 or [::1]:443",
                    spec.addr
                ),
            ));
        }
        if spec.client_cert.is_some() != spec.client_key.is_some() {
            return Err(Invalid::new(
                ".tls",
                "client_cert and client_key go together; set both or neither",
            ));
        }
        validate_resolve(spec)
    }

    async fn probe(spec: &TlsSpec, expect: &TlsExpect, ctx: &Ctx) -> Outcome {
        probe(spec, expect, ctx).await
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        if let Some(v) = r.facts.tls.as_ref().and_then(|t| t.version.as_deref()) {
            e.sample(
                &TLS_VERSION,
                &crate::metrics::with(base, &[("version", v)]),
                1.0,
            );
        }
    }
}

/// A list of addresses must parse (with the port of `addr`).
fn validate_resolve(spec: &TlsSpec) -> Result<(), Invalid> {
    let (resolve::Resolve::List(list), Some((_, port))) =
        (&spec.resolve, split_host_port(&spec.addr))
    else {
        return Ok(());
    };
    resolve::listed(list, port)
        .map(drop)
        .map_err(|m| Invalid::new(".tls.resolve", m))
}

/// Handshakes with the listener (each of its addresses with `resolve`) and evaluates the
/// expectations.
pub async fn probe(spec: &TlsSpec, expect: &TlsExpect, ctx: &Ctx) -> Outcome {
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let target = match Target::parse(&spec.addr, spec.server_name.as_deref()) {
        Ok(t) => t,
        Err(msg) => return not_probed("config", msg),
    };
    let template = match cached_config(spec, ctx) {
        Ok(c) => c,
        Err(e) => return not_probed(&e.class, e.message),
    };
    match spec.resolve.is_each() {
        true => resolve::probe_each(spec, expect, ctx, target, template, deadline).await,
        false => probe_at(spec, expect, ctx, &target, &template, deadline).await,
    }
}

/// Handshakes with one target and evaluates the expectations on what it presented.
pub async fn probe_at(
    spec: &TlsSpec,
    expect: &TlsExpect,
    ctx: &Ctx,
    target: &Target,
    template: &Arc<rustls::ClientConfig>,
    deadline: tokio::time::Instant,
) -> Outcome {
    let result = client::handshake(target, template, deadline, ctx.timeout).await;
    let (presented, stapled) = match &result {
        Ok(s) => (s.chain.clone(), s.stapled.clone()),
        Err(f) => (f.chain.clone(), f.stapled.clone()),
    };
    let mut out = judge(spec, expect, ctx, target, result);
    revocation(spec, expect, ctx, &presented, &stapled, deadline, &mut out).await;
    out
}

/// `not_revoked` on the presented certificates (when expected and any were presented); the
/// revoked flag is set on each certificate's facts. `stapled`: the OCSP response stapled for
/// the leaf (empty: none).
pub async fn revocation(
    spec: &TlsSpec,
    expect: &TlsExpect,
    ctx: &Ctx,
    presented: &[CertificateDer<'static>],
    stapled: &[u8],
    deadline: tokio::time::Instant,
    out: &mut Outcome,
) {
    let Some(want) = expect.not_revoked.filter(|w| w.on) else {
        return;
    };
    if presented.is_empty() {
        return;
    }
    let anchors = match &spec.ca_file {
        Some(f) => ctx
            .cache
            .certs(&ctx.path(f))
            .map(|c| c.to_vec())
            .unwrap_or_default(),
        None => vec![],
    };
    let p = Presented {
        chain: presented,
        facts: &out.certs,
        anchors: &anchors,
    };
    let crl_file = spec.crl_file.as_deref().map(|f| ctx.path(f));
    let (a, flags) =
        revocation::judge_stapled(&p, Some(stapled), crl_file, &want, ctx, deadline).await;
    out.assertions.push(a);
    for (f, r) in out.certs.iter_mut().zip(flags) {
        f.revoked = r;
    }
}

/// An outcome for a check that could not even start (bad config, unreadable client cert).
pub fn not_probed(class: &str, message: String) -> Outcome {
    Outcome {
        error: Some(ProbeError::local(class, message.clone())),
        assertions: vec![Assertion::not_ok(
            "handshake",
            Status::Error,
            class,
            message,
        )],
        ..Default::default()
    }
}

/// The template client config for this check's identity and ALPN, built once per run.
pub fn cached_config(spec: &TlsSpec, ctx: &Ctx) -> Result<Arc<rustls::ClientConfig>, ProbeError> {
    let cert = spec.client_cert.as_deref().map(|p| ctx.path(p));
    let key = spec.client_key.as_deref().map(|p| ctx.path(p));
    let cache_key = format!("{cert:?}\0{key:?}\0{}", spec.alpn.join(","));
    let configs = &ctx.cache.tls_configs;
    if let Some(hit) = configs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&cache_key)
    {
        return Ok(hit.clone());
    }
    let identity = match (cert, key) {
        (Some(c), Some(k)) => Some(read_identity(ctx, &c, &k).map_err(file_error)?),
        _ => None,
    };
    let cfg = client::config(identity, &spec.alpn).map_err(|e| {
        ProbeError::local(
            "client_identity",
            format!("cannot use client_cert/client_key ({e}); expected a certificate and the private key that pairs with it"),
        )
    })?;
    let cfg = Arc::new(cfg);
    configs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(cache_key, cfg.clone());
    Ok(cfg)
}

fn read_identity(
    ctx: &Ctx,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<client::Identity, FileError> {
    let chain = ctx.cache.certs(cert)?.as_ref().clone();
    let key = certs::read_key(key)?;
    Ok(client::Identity { chain, key })
}

fn file_error(e: FileError) -> ProbeError {
    ProbeError::local(e.class(), e.to_string())
}

pub fn judge(
    spec: &TlsSpec,
    expect: &TlsExpect,
    ctx: &Ctx,
    target: &Target,
    result: Result<Session, Failed>,
) -> Outcome {
    let mut out = Outcome::default();
    let (presented, session) = match result {
        Ok(s) => {
            out.assertions.push(handshake_passed(&s));
            out.facts.tls = Some(TlsFacts {
                version: s.version.clone(),
                cipher: s.cipher.clone(),
                alpn: s.alpn.clone(),
            });
            (s.chain.clone(), Some(s))
        }
        Err(f) => {
            let reason = f.failure.class.as_str();
            out.assertions
                .push(Assertion::fail("handshake", reason, &f.failure.message));
            out.error = Some(f.failure.to_probe_error());
            (f.chain, None)
        }
    };
    // The leaf, parsed once for its facts and the chain judgement.
    let leaf = presented
        .first()
        .and_then(|d| X509Certificate::from_der(d).ok());
    let leaf = leaf.as_ref().map(|(_, c)| c);
    out.certs = facts_with_leaf(&presented, leaf);
    if !presented.is_empty() {
        let seen = (&presented[..], &out.certs[..], leaf);
        out.assertions
            .extend(judge_certs(spec, expect, ctx, target, seen));
    }
    if let (Some(min), Some(s)) = (expect.min_tls, &session) {
        out.assertions.push(assert_min_tls(min, s));
    }
    out
}

fn handshake_passed(s: &Session) -> Assertion {
    let mut msg = format!(
        "TLS {} {}, {} certificate(s) presented",
        s.version.as_deref().unwrap_or("?"),
        s.cipher.as_deref().unwrap_or("?"),
        s.chain.len()
    );
    if let Some(a) = &s.alpn {
        msg.push_str(&format!(", ALPN {a}"));
    }
    Assertion::pass("handshake", msg)
}

/// Facts of every presented certificate, positioned leaf / intermediate / root.
pub fn cert_facts(presented: &[CertificateDer<'_>]) -> Vec<CertFacts> {
    facts_with_leaf(presented, None)
}

/// [`cert_facts`] with the leaf parsed already (`None`: parse it here).
fn facts_with_leaf(
    presented: &[CertificateDer<'_>],
    leaf: Option<&X509Certificate<'_>>,
) -> Vec<CertFacts> {
    presented
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let mut f = match (i, leaf) {
                (0, Some(c)) => certs::facts_parsed(c, der, ""),
                (0, None) => certs::facts(der, ""),
                _ => certs::facts_shared(der, ""),
            };
            f.position = match (i, f.self_signed) {
                (0, _) => "leaf",
                (_, true) => "root",
                _ => "intermediate",
            }
            .into();
            f
        })
        .collect()
}

/// What the server presented: the chain, its facts, and the leaf parsed (when it parses).
type Seen<'s> = (
    &'s [CertificateDer<'static>],
    &'s [CertFacts],
    Option<&'s X509Certificate<'s>>,
);

fn judge_certs(
    spec: &TlsSpec,
    expect: &TlsExpect,
    ctx: &Ctx,
    target: &Target,
    seen: Seen<'_>,
) -> Vec<Assertion> {
    let (presented, facts, _) = seen;
    let leaf = &facts[0];
    let mut out = Vec::new();
    match expect.chain {
        Some(c) if c.valid => out.extend(judge_chain(spec, ctx, target, seen, c)),
        _ => out.push(names::assert_server_name(&presented[0], &target.name)),
    }
    if let Some(n) = &expect.names {
        out.push(names::assert_names(&presented[0], n));
    }
    let thresholds = expect.expiry.unwrap_or_else(|| ctx.default_expiry());
    let judged: Vec<CertFacts> = facts
        .iter()
        .filter(|f| f.position != "root")
        .cloned()
        .collect();
    out.push(expiry::assert_expiry(&judged, &thresholds, ctx.now_unix()));
    if let Some(cn) = &expect.issuer_cn {
        out.push(issuer::assert_issuer_cn(leaf, cn));
    }
    if let Some(dn) = &expect.issuer_dn {
        out.push(issuer::assert_issuer_dn(leaf, dn));
    }
    if let Some(file) = &expect.serves_file {
        out.push(assert_serves_file(leaf, file, ctx));
    }
    if let Some(r) = &expect.rotated_after {
        out.push(rotated::assert_rotated(leaf, r, ctx));
    }
    out
}

/// `chain` (every selected client accepts), `accepted_by_<client>`, `complete_chain` and
/// `lint`, judged once per presented chain, CA file, name, expectation and instant.
fn judge_chain(
    spec: &TlsSpec,
    ctx: &Ctx,
    target: &Target,
    (presented, facts, leaf): Seen<'_>,
    want: ChainExpect,
) -> Vec<Assertion> {
    let Some(ca_file) = &spec.ca_file else {
        return vec![Assertion::not_ok(
            "chain",
            Status::Error,
            "config",
            "chain: valid needs tls.ca_file (the CA chain clients trust); add it to the check",
        )];
    };
    let path = ctx.path(ca_file);
    let ca = match ctx.cache.certs(&path) {
        Ok(ca) => ca,
        Err(e) => {
            return vec![Assertion::not_ok(
                "chain",
                Status::Error,
                e.class(),
                e.to_string(),
            )]
        }
    };
    let fingerprints: Vec<&str> = facts.iter().map(|f| f.sha256.as_str()).collect();
    let key = format!(
        "{}|{}|{}|{want:?}|{}",
        fingerprints.join(","),
        path.display(),
        target.name,
        ctx.now_unix()
    );
    let memo = &ctx.cache.chains;
    if let Some(hit) = memo.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return hit.clone();
    }
    let now = unix_time(ctx.now);
    let seen = (chain::Usage::Server, true);
    let name = Some(target.name.as_str());
    let j = judge::judge_expected_leaf(&want, presented, &ca, leaf, name, now, seen);
    let verdict = j.assertions(&want, "");
    memo.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, verdict.clone());
    verdict
}

/// The served leaf must be the first certificate of the file (the reload happened).
fn assert_serves_file(leaf: &CertFacts, file: &str, ctx: &Ctx) -> Assertion {
    let path = ctx.path(file);
    let on_disk = match ctx.cache.certs(&path) {
        Ok(c) => certs::facts(&c[0], "file"),
        Err(e) => return Assertion::not_ok("serves_file", Status::Error, e.class(), e.to_string()),
    };
    if on_disk.sha256 == leaf.sha256 {
        return Assertion::pass(
            "serves_file",
            format!(
                "serves the certificate in {} (serial {})",
                path.display(),
                leaf.serial
            ),
        );
    }
    Assertion::fail(
        "serves_file",
        "stale_leaf",
        format!(
            "expected the served leaf to be the one in {} (serial {}, not after {}); found serial {}, not after {}: the process probably did not reload the new certificate; reload or restart it",
            path.display(),
            on_disk.serial,
            on_disk.not_after,
            leaf.serial,
            leaf.not_after
        ),
    )
}

fn assert_min_tls(min: TlsVersion, s: &Session) -> Assertion {
    let got = s.version.as_deref().and_then(TlsVersion::parse);
    match got {
        Some(v) if v >= min => Assertion::pass(
            "min_tls",
            format!("negotiated TLS {} (at least {})", v.as_str(), min.as_str()),
        ),
        _ => Assertion::fail(
            "min_tls",
            "tls_version",
            format!(
                "expected TLS {} or newer, negotiated {} (rotcheck offers 1.2 and 1.3); enable TLS {} on the server",
                min.as_str(),
                s.version.as_deref().unwrap_or("an unknown version"),
                min.as_str()
            ),
        ),
    }
}

/// `SystemTime` as webpki's time (instants before 1970 clamp to the epoch).
pub fn unix_time(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
}
