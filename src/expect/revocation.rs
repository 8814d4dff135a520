//! `not_revoked`: is the leaf (and each intermediate presented) on its issuer's CRL? Shared by
//! `tls` (so `http`) and `files`.
//!
//! CRL source, per certificate: a CRL of `crl_file` issued by the certificate's issuer (for
//! the leaf, the file's first CRL when none matches: it then fails its issuer check), else
//! the certificate's CRL distribution points over HTTP(S), fetched within the check's timeout
//! and cached per run by URL. The CRL must be issued and signed by the certificate's issuer
//! (found among the certificates after it, then in `ca_file`) and its `nextUpdate` must not
//! have passed. An intermediate without a distribution point, or whose issuer is not at hand,
//! is noted as not checked; the leaf must be checked.
//!
//! Reasons: `revoked`, `crl_bad_signature` (fail), `crl_stale`, `crl_unavailable` (fail, or
//! warn with `not_revoked: {crl_stale: warn, crl_unavailable: warn}`). OCSP is not consulted.

use crate::crl::{self, fetch, Crl, CrlError};
use crate::kinds::{Crls, Ctx};
use crate::model::{Assertion, CertFacts, Status};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::time::Instant;
use x509_parser::prelude::*;

/// How a soft problem (stale or unavailable CRL) counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warn,
    #[default]
    Fail,
}

impl Level {
    fn status(self) -> Status {
        match self {
            Level::Warn => Status::Warn,
            Level::Fail => Status::Fail,
        }
    }
}

/// `not_revoked: true`, or `{crl_stale: warn|fail, crl_unavailable: warn|fail}` (both
/// `fail` by default). `false` turns the check off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotRevoked {
    pub on: bool,
    pub crl_stale: Level,
    pub crl_unavailable: Level,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Levels {
    #[serde(default)]
    crl_stale: Level,
    #[serde(default)]
    crl_unavailable: Level,
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "true, false or {crl_stale: warn|fail, crl_unavailable: warn|fail}"
)]
enum Written {
    Flag(bool),
    Levels(Levels),
}

impl<'de> Deserialize<'de> for NotRevoked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Written::deserialize(d)? {
            Written::Flag(on) => NotRevoked {
                on,
                ..Default::default()
            },
            Written::Levels(l) => NotRevoked {
                on: true,
                crl_stale: l.crl_stale,
                crl_unavailable: l.crl_unavailable,
            },
        })
    }
}

/// Where a CRL is read from; also its cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Url(String),
}

impl Source {
    fn key(&self) -> String {
        match self {
            Source::File(p) => format!("file:{}", p.display()),
            Source::Url(u) => format!("url:{u}"),
        }
    }

    fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Url(u) => u.clone(),
        }
    }
}

/// The CRLs at `src`, read or fetched once per run.
pub async fn load(src: &Source, ctx: &Ctx, deadline: Instant) -> Crls {
    let slot = ctx.cache.crl_slot(&src.key());
    slot.get_or_init(|| read(src, deadline)).await.clone()
}

async fn read(src: &Source, deadline: Instant) -> Crls {
    let name = src.name();
    let bytes = match src {
        Source::File(p) => {
            crate::fsread::read(p, crl::MAX_CRL_BYTES, "a CRL").map_err(|e| e.detail())
        }
        Source::Url(u) => fetch::fetch(u, deadline).await,
    };
    let bytes = bytes.map_err(|detail| CrlError::Unavailable {
        origin: name.clone(),
        detail,
    })?;
    crl::parse_all(&bytes, &name).map(Arc::new)
}

/// What is judged: the certificates in order (leaf first) with their facts, and the extra
/// certificates their issuers may be found among (`ca_file`).
pub struct Presented<'a> {
    pub chain: &'a [CertificateDer<'static>],
    pub facts: &'a [CertFacts],
    pub anchors: &'a [CertificateDer<'static>],
}

/// One certificate's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Good(String),
    Unchecked(String),
    Stale(String),
    Unavailable(String),
    BadSignature(String),
    Revoked(String),
}

impl Verdict {
    fn status(&self, want: &NotRevoked) -> Status {
        match self {
            Verdict::Good(_) | Verdict::Unchecked(_) => Status::Pass,
            Verdict::Stale(_) => want.crl_stale.status(),
            Verdict::Unavailable(_) => want.crl_unavailable.status(),
            Verdict::BadSignature(_) | Verdict::Revoked(_) => Status::Fail,
        }
    }

    /// Severity order among non-passing verdicts of one status.
    fn rank(&self) -> u8 {
        match self {
            Verdict::Good(_) | Verdict::Unchecked(_) => 0,
            Verdict::Stale(_) => 1,
            Verdict::Unavailable(_) => 2,
            Verdict::BadSignature(_) => 3,
            Verdict::Revoked(_) => 4,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Verdict::Good(_) | Verdict::Unchecked(_) => "",
            Verdict::Stale(_) => "crl_stale",
            Verdict::Unavailable(_) => "crl_unavailable",
            Verdict::BadSignature(_) => "crl_bad_signature",
            Verdict::Revoked(_) => "revoked",
        }
    }

    fn text(&self) -> &str {
        match self {
            Verdict::Good(s)
            | Verdict::Unchecked(s)
            | Verdict::Stale(s)
            | Verdict::Unavailable(s)
            | Verdict::BadSignature(s)
            | Verdict::Revoked(s) => s,
        }
    }

    /// The per-certificate revoked flag: known only when a valid CRL was read.
    fn revoked(&self) -> Option<bool> {
        match self {
            Verdict::Good(_) | Verdict::Stale(_) => Some(false),
            Verdict::Revoked(_) => Some(true),
            _ => None,
        }
    }
}

/// The `not_revoked` assertion over the presented certificates (self-signed roots left out)
/// and each certificate's revoked flag (`None` when not judged).
pub async fn judge(
    p: &Presented<'_>,
    crl_file: Option<PathBuf>,
    want: &NotRevoked,
    ctx: &Ctx,
    deadline: Instant,
) -> (Assertion, Vec<Option<bool>>) {
    let file = crl_file.map(Source::File);
    let mut verdicts = Vec::new();
    let mut flags = vec![None; p.chain.len()];
    for (i, flag) in flags.iter_mut().enumerate() {
        if p.facts.get(i).is_some_and(|f| f.self_signed) {
            continue;
        }
        let v = one(p, i, file.as_ref(), ctx, deadline).await;
        *flag = v.revoked();
        verdicts.push((who(p, i), v));
    }
    (summarize(&verdicts, want), flags)
}

/// `leaf "app.test" (serial 1a2b)`.
fn who(p: &Presented<'_>, i: usize) -> String {
    match p.facts.get(i) {
        Some(f) => format!("{} {:?} (serial {})", f.position, f.subject_cn, f.serial),
        None => format!("certificate #{}", i + 1),
    }
}

/// The standing of certificate `i`.
async fn one(
    p: &Presented<'_>,
    i: usize,
    file: Option<&Source>,
    ctx: &Ctx,
    deadline: Instant,
) -> Verdict {
    let der = p.chain[i].as_ref();
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Verdict::Unavailable("the certificate does not parse".into());
    };
    let leaf = i == 0;
    let Some(issuer) = find_issuer(p, i, &cert) else {
        let why = format!("its issuer {} is neither presented after it nor in ca_file, so a CRL's signature cannot be checked; add the issuer to ca_file", cert.issuer());
        return if leaf {
            Verdict::Unavailable(why)
        } else {
            Verdict::Unchecked(format!("not checked: {why}"))
        };
    };
    let chosen = match crl_for(&cert, leaf, file, ctx, deadline).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    judge_with(&chosen.all[chosen.at], issuer, &cert, ctx.now_unix())
}

/// The issuer of certificate `i`: the first later certificate, then anchor, named as its issuer.
fn find_issuer<'a>(p: &'a Presented<'_>, i: usize, cert: &X509Certificate<'_>) -> Option<&'a [u8]> {
    let want = cert.issuer().as_raw();
    p.chain[i + 1..]
        .iter()
        .chain(p.anchors)
        .map(|c| c.as_ref())
        .find(|d| X509Certificate::from_der(d).is_ok_and(|(_, c)| c.subject().as_raw() == want))
}

/// One CRL of those read from a source (shared by the run, not copied).
struct Chosen {
    all: Arc<Vec<Crl>>,
    at: usize,
}

/// The CRL to judge `cert` by: `crl_file`'s, else one from its distribution points.
async fn crl_for(
    cert: &X509Certificate<'_>,
    leaf: bool,
    file: Option<&Source>,
    ctx: &Ctx,
    deadline: Instant,
) -> Result<Chosen, Verdict> {
    let issuer = cert.issuer().as_raw();
    if let Some(src) = file {
        let all = load(src, ctx, deadline).await.map_err(unusable)?;
        // The leaf is judged by the file's CRL even when none names its issuer (it then
        // fails as crl_bad_signature); an intermediate falls back to its distribution point.
        let at = match leaf {
            true => crl::pick(&all, issuer),
            false => all.iter().position(|c| c.issuer_raw == issuer),
        };
        if let Some(at) = at {
            return Ok(Chosen { all, at });
        }
    }
    let urls = crl::distribution_points(cert);
    if urls.is_empty() {
        let why = "the certificate names no CRL distribution point (http/https)";
        return Err(match leaf {
            true => Verdict::Unavailable(format!(
                "{why} and no crl_file is set; add crl_file: PATH to the check"
            )),
            false => Verdict::Unchecked(format!("not checked: {why}")),
        });
    }
    from_urls(&urls, issuer, ctx, deadline).await
}

fn no_crl() -> Verdict {
    Verdict::Unavailable("no distribution point served a CRL".into())
}

/// The first distribution point that yields a CRL.
async fn from_urls(
    urls: &[String],
    issuer: &[u8],
    ctx: &Ctx,
    deadline: Instant,
) -> Result<Chosen, Verdict> {
    let mut last = None;
    for u in urls {
        match load(&Source::Url(u.clone()), ctx, deadline).await {
            Ok(all) => {
                if let Some(at) = crl::pick(&all, issuer) {
                    return Ok(Chosen { all, at });
                }
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(no_crl, unusable))
}

fn unusable(e: CrlError) -> Verdict {
    match e.class() {
        "crl_bad_signature" => Verdict::BadSignature(e.to_string()),
        _ => Verdict::Unavailable(e.to_string()),
    }
}

/// Signature, then the serial (revocation is final even on a stale CRL), then freshness.
fn judge_with(crl: &Crl, issuer: &[u8], cert: &X509Certificate<'_>, now: i64) -> Verdict {
    if let Err(e) = crl.verify(issuer) {
        return unusable(e);
    }
    let serial = crl::serial_hex(cert.raw_serial());
    if let Some(r) = crl.find(&serial) {
        return Verdict::Revoked(format!(
            "serial {serial} is on the CRL of {} from {}: {}; install a newly issued certificate",
            crl.issuer,
            crl.source,
            r.describe()
        ));
    }
    let next = crl::describe_next_update(crl.next_update);
    match crl.next_update {
        Some(t) if t < now => Verdict::Stale(format!(
            "the CRL from {} is stale ({next} has passed), so a recent revocation may be missing; is the CA publishing its CRL (Vault: pki/config/crl, auto_rebuild)?",
            crl.source
        )),
        _ => Verdict::Good(format!("not on the CRL from {} ({next})", crl.source)),
    }
}

/// One assertion: the worst verdict decides; every certificate is described.
fn summarize(verdicts: &[(String, Verdict)], want: &NotRevoked) -> Assertion {
    let worst = verdicts
        .iter()
        .max_by_key(|(_, v)| (v.status(want), v.rank()));
    let Some((_, worst)) = worst else {
        return Assertion::pass(
            "not_revoked",
            "no certificate to judge (only self-signed roots)",
        );
    };
    let status = worst.status(want);
    let shown: Vec<String> = verdicts
        .iter()
        .filter(|(_, v)| status == Status::Pass || v.status(want) != Status::Pass)
        .map(|(w, v)| format!("{w}: {}", v.text()))
        .collect();
    let message = shown.join("; ");
    match status {
        Status::Pass => Assertion::pass("not_revoked", message),
        s => Assertion::not_ok("not_revoked", s, worst.reason(), message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> NotRevoked {
        serde_yaml_ng::from_str(y).unwrap()
    }

    #[test]
    fn written_as_a_flag_or_levels() {
        assert_eq!(
            parse("true"),
            NotRevoked {
                on: true,
                ..Default::default()
            }
        );
        assert!(!parse("false").on);
        let l = parse("{crl_stale: warn}");
        assert_eq!(
            (l.on, l.crl_stale, l.crl_unavailable),
            (true, Level::Warn, Level::Fail)
        );
        assert!(serde_yaml_ng::from_str::<NotRevoked>("{stale: warn}").is_err());
    }

    #[test]
    fn the_worst_verdict_decides_and_levels_soften() {
        let v = vec![
            ("leaf".to_string(), Verdict::Stale("old".into())),
            ("intermediate".to_string(), Verdict::Good("fine".into())),
        ];
        let a = summarize(
            &v,
            &NotRevoked {
                on: true,
                ..Default::default()
            },
        );
        assert_eq!(
            (a.status, a.reason.as_deref()),
            (Status::Fail, Some("crl_stale"))
        );
        assert_eq!(a.message, "leaf: old");
        let soft = NotRevoked {
            on: true,
            crl_stale: Level::Warn,
            crl_unavailable: Level::Fail,
        };
        assert_eq!(summarize(&v, &soft).status, Status::Warn);
        let r = vec![("leaf".to_string(), Verdict::Revoked("gone".into()))];
        assert_eq!(summarize(&r, &soft).reason.as_deref(), Some("revoked"));
    }
}
