//! `not_revoked`: is the leaf (and each intermediate presented) revoked by its issuer? Shared
//! by `tls` (so `http`) and `files`.
//!
//! Sources, per certificate, in the order of `via` (default `[stapled, crl, ocsp]`); a source
//! the certificate does not offer is skipped, one that is unavailable hands over to the next,
//! and the first that answers decides:
//! - `stapled`: the OCSP response the server stapled in the handshake (the leaf of `tls` and
//!   `http` checks; no fetch). See [`crate::ocsp`].
//! - `crl`: a CRL of `crl_file` issued by the certificate's issuer (for the leaf, the file's
//!   first CRL when none matches: it then fails its issuer check), else the certificate's CRL
//!   distribution points over HTTP(S), fetched within the check's timeout and cached per run
//!   by URL. The CRL must be issued and signed by the certificate's issuer and its
//!   `nextUpdate` must not have passed.
//! - `ocsp`: the responder of the certificate's authority information access, asked with one
//!   POST within the check's timeout. See [`crate::ocsp`].
//!
//! The issuer is found among the certificates after it, then in `ca_file`. An intermediate
//! that offers no source, or whose issuer is not at hand, is noted as not checked; the leaf
//! must be checked.
//!
//! Reasons: `revoked`, `crl_bad_signature`, `ocsp_bad_signature` (fail); `crl_stale`,
//! `crl_unavailable`, `ocsp_stale`, `ocsp_unavailable`, `ocsp_unknown` (fail, or warn when
//! `not_revoked:` sets that key to `warn`).

mod ocsp;
mod want;

pub use want::{Level, Method, NotRevoked, Order};

use crate::crl::{self, fetch, Crl, CrlError};
use crate::kinds::{Crls, Ctx};
use crate::model::{Assertion, CertFacts, Status};
use rustls_pki_types::CertificateDer;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::time::Instant;
use x509_parser::prelude::*;

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

/// Which family of sources a soft verdict came from (its reason token's prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Crl,
    Ocsp,
}

/// One certificate's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Good(String),
    Unchecked(String),
    Stale(Family, String),
    Unavailable(Family, String),
    Unknown(String),
    BadSignature(Family, String),
    Revoked(String),
}

impl Verdict {
    fn status(&self, want: &NotRevoked) -> Status {
        match self {
            Verdict::Good(_) | Verdict::Unchecked(_) => Status::Pass,
            Verdict::Stale(Family::Crl, _) => want.crl_stale.status(),
            Verdict::Stale(Family::Ocsp, _) => want.ocsp_stale.status(),
            Verdict::Unavailable(Family::Crl, _) => want.crl_unavailable.status(),
            Verdict::Unavailable(Family::Ocsp, _) => want.ocsp_unavailable.status(),
            Verdict::Unknown(_) => want.ocsp_unknown.status(),
            Verdict::BadSignature(..) | Verdict::Revoked(_) => Status::Fail,
        }
    }

    /// Severity order among non-passing verdicts of one status.
    fn rank(&self) -> u8 {
        match self {
            Verdict::Good(_) | Verdict::Unchecked(_) => 0,
            Verdict::Stale(..) => 1,
            Verdict::Unavailable(..) => 2,
            Verdict::Unknown(_) => 3,
            Verdict::BadSignature(..) => 4,
            Verdict::Revoked(_) => 5,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Verdict::Good(_) | Verdict::Unchecked(_) => "",
            Verdict::Stale(Family::Crl, _) => "crl_stale",
            Verdict::Stale(Family::Ocsp, _) => "ocsp_stale",
            Verdict::Unavailable(Family::Crl, _) => "crl_unavailable",
            Verdict::Unavailable(Family::Ocsp, _) => "ocsp_unavailable",
            Verdict::Unknown(_) => "ocsp_unknown",
            Verdict::BadSignature(Family::Crl, _) => "crl_bad_signature",
            Verdict::BadSignature(Family::Ocsp, _) => "ocsp_bad_signature",
            Verdict::Revoked(_) => "revoked",
        }
    }

    fn text(&self) -> &str {
        match self {
            Verdict::Good(s)
            | Verdict::Unchecked(s)
            | Verdict::Stale(_, s)
            | Verdict::Unavailable(_, s)
            | Verdict::Unknown(s)
            | Verdict::BadSignature(_, s)
            | Verdict::Revoked(s) => s,
        }
    }

    /// The same verdict with `note` added to its text.
    fn noted(self, note: &str) -> Verdict {
        let add = |s: String| format!("{s} ({note})");
        match self {
            Verdict::Good(s) => Verdict::Good(add(s)),
            Verdict::Unchecked(s) => Verdict::Unchecked(add(s)),
            Verdict::Stale(f, s) => Verdict::Stale(f, add(s)),
            Verdict::Unavailable(f, s) => Verdict::Unavailable(f, add(s)),
            Verdict::Unknown(s) => Verdict::Unknown(add(s)),
            Verdict::BadSignature(f, s) => Verdict::BadSignature(f, add(s)),
            Verdict::Revoked(s) => Verdict::Revoked(add(s)),
        }
    }

    /// The per-certificate revoked flag: known only when a valid CRL or OCSP answer was read.
    fn revoked(&self) -> Option<bool> {
        match self {
            Verdict::Good(_) | Verdict::Stale(..) => Some(false),
            Verdict::Revoked(_) => Some(true),
            _ => None,
        }
    }
}

/// The `not_revoked` assertion over the presented certificates (self-signed roots left out)
/// and each certificate's revoked flag (`None` when not judged). No stapled response. Fetches
/// end by four fifths of the check's timeout from now, so that a stalled distribution point
/// or responder is reported as such before the probe's own timeout (`files`) strikes.
pub async fn judge(
    p: &Presented<'_>,
    crl_file: Option<PathBuf>,
    want: &NotRevoked,
    ctx: &Ctx,
    deadline: Instant,
) -> (Assertion, Vec<Option<bool>>) {
    let deadline = deadline.min(Instant::now() + ctx.timeout * 4 / 5);
    judge_stapled(p, None, crl_file, want, ctx, deadline).await
}

/// As [`judge`], for a chain seen in a handshake: `stapled` is the OCSP response the server
/// stapled for the leaf (`Some(&[])`: none).
pub async fn judge_stapled(
    p: &Presented<'_>,
    stapled: Option<&[u8]>,
    crl_file: Option<PathBuf>,
    want: &NotRevoked,
    ctx: &Ctx,
    deadline: Instant,
) -> (Assertion, Vec<Option<bool>>) {
    let at = At {
        file: crl_file.map(Source::File),
        stapled: stapled.map(|s| (!s.is_empty()).then_some(s)),
        ctx,
        deadline,
    };
    let mut verdicts = Vec::new();
    let mut flags = vec![None; p.chain.len()];
    for (i, flag) in flags.iter_mut().enumerate() {
        if p.facts.get(i).is_some_and(|f| f.self_signed) {
            continue;
        }
        let v = one(p, i, want, &at).await;
        *flag = v.revoked();
        verdicts.push((who(p, i), v));
    }
    (summarize(&verdicts, want), flags)
}

/// What every certificate of one judgement shares.
struct At<'a> {
    file: Option<Source>,
    /// Seen in a handshake (`Some`), with the stapled response when there was one.
    stapled: Option<Option<&'a [u8]>>,
    ctx: &'a Ctx,
    deadline: Instant,
}

/// `leaf "app.test" (serial 1a2b)`.
fn who(p: &Presented<'_>, i: usize) -> String {
    match p.facts.get(i) {
        Some(f) => format!("{} {:?} (serial {})", f.position, f.subject_cn, f.serial),
        None => format!("certificate #{}", i + 1),
    }
}

/// The family a problem before any source answers is reported under: the first fetched
/// source of `via` (`crl` or `ocsp`; a stapled response is OCSP).
fn first_family(want: &NotRevoked) -> Family {
    match want.via.iter().find(|m| *m != Method::Stapled) {
        Some(Method::Crl) => Family::Crl,
        _ => Family::Ocsp,
    }
}

/// The standing of certificate `i`: the first source of `via` that answers.
async fn one(p: &Presented<'_>, i: usize, want: &NotRevoked, at: &At<'_>) -> Verdict {
    let Ok((_, cert)) = X509Certificate::from_der(p.chain[i].as_ref()) else {
        let why = "the certificate does not parse".into();
        return Verdict::Unavailable(first_family(want), why);
    };
    let leaf = i == 0;
    let Some(issuer_der) = find_issuer(p, i, &cert) else {
        let why = format!("its issuer {} is neither presented after it nor in ca_file, so no CRL or OCSP signature can be checked; add the issuer to ca_file", cert.issuer());
        return match leaf {
            true => Verdict::Unavailable(first_family(want), why),
            false => Verdict::Unchecked(format!("not checked: {why}")),
        };
    };
    let Ok((_, issuer)) = X509Certificate::from_der(issuer_der) else {
        let why = "its issuer certificate does not parse".into();
        return Verdict::Unavailable(first_family(want), why);
    };
    let pair = crate::ocsp::Pair {
        cert: &cert,
        issuer: &issuer,
    };
    let mut skipped = Vec::new();
    let mut failed: Vec<Verdict> = Vec::new();
    for m in want.via.iter() {
        match from_source(m, &pair, issuer_der, leaf, at).await {
            Verdict::Unchecked(why) if why.is_empty() => {}
            Verdict::Unchecked(why) => skipped.push(why),
            v @ Verdict::Unavailable(..) => failed.push(v),
            v => return with_failures(v, &failed),
        }
    }
    undecided(failed, skipped, leaf, want)
}

/// One source's verdict; `Unchecked` when the certificate does not offer it.
async fn from_source(
    m: Method,
    pair: &crate::ocsp::Pair<'_, '_>,
    issuer_der: &[u8],
    leaf: bool,
    at: &At<'_>,
) -> Verdict {
    let now = at.ctx.now_unix();
    match m {
        Method::Stapled => match (leaf, at.stapled) {
            (true, Some(Some(resp))) => ocsp::stapled(resp, pair, now),
            (true, Some(None)) => Verdict::Unchecked("the server stapled no OCSP response".into()),
            // Not a leaf seen in a handshake: the source does not apply.
            _ => Verdict::Unchecked(String::new()),
        },
        Method::Crl => {
            match crl_for(pair.cert, leaf, at.file.as_ref(), at.ctx, at.deadline).await {
                Ok(chosen) => judge_with(&chosen.all[chosen.at], issuer_der, pair.cert, now),
                Err(v) => v,
            }
        }
        Method::Ocsp => ocsp::responders(pair, now, at.deadline).await,
    }
}

/// A decisive verdict, noting the sources that were unavailable before it.
fn with_failures(v: Verdict, failed: &[Verdict]) -> Verdict {
    match failed.is_empty() {
        true => v,
        false => {
            let before: Vec<&str> = failed.iter().map(Verdict::text).collect();
            v.noted(&format!("tried first: {}", before.join("; ")))
        }
    }
}

/// No source answered: the first unavailable one (noting the others), else none applied.
fn undecided(failed: Vec<Verdict>, skipped: Vec<String>, leaf: bool, want: &NotRevoked) -> Verdict {
    let mut failed = failed.into_iter();
    if let Some(first) = failed.next() {
        let rest: Vec<Verdict> = failed.collect();
        return with_failures(first, &rest);
    }
    let why = skipped.join(", ");
    match leaf {
        true => Verdict::Unavailable(
            first_family(want),
            format!("no revocation source: {why}; add crl_file: PATH to the check, or name a CRL distribution point or OCSP responder in the CA's issuing URLs"),
        ),
        false => Verdict::Unchecked(format!("not checked: {why}")),
    }
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
        let why = match file {
            Some(_) => "no CRL of crl_file is its issuer's and it names no CRL distribution point (http/https)",
            None => "it names no CRL distribution point (http/https) and no crl_file is set",
        };
        return Err(Verdict::Unchecked(why.into()));
    }
    from_urls(&urls, issuer, ctx, deadline).await
}

fn no_crl() -> Verdict {
    Verdict::Unavailable(Family::Crl, "no distribution point served a CRL".into())
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
        "crl_bad_signature" => Verdict::BadSignature(Family::Crl, e.to_string()),
        _ => Verdict::Unavailable(Family::Crl, e.to_string()),
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
        Some(t) if t < now => Verdict::Stale(Family::Crl, format!(
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

    #[test]
    fn the_worst_verdict_decides_and_levels_soften() {
        let v = vec![
            (
                "leaf".to_string(),
                Verdict::Stale(Family::Crl, "old".into()),
            ),
            ("intermediate".to_string(), Verdict::Good("fine".into())),
        ];
        let strict = NotRevoked {
            on: true,
            ..Default::default()
        };
        let a = summarize(&v, &strict);
        assert_eq!(
            (a.status, a.reason.as_deref()),
            (Status::Fail, Some("crl_stale"))
        );
        assert_eq!(a.message, "leaf: old");
        let soft = NotRevoked {
            crl_stale: Level::Warn,
            ..strict
        };
        assert_eq!(summarize(&v, &soft).status, Status::Warn);
        let r = vec![("leaf".to_string(), Verdict::Revoked("gone".into()))];
        assert_eq!(summarize(&r, &soft).reason.as_deref(), Some("revoked"));
    }

    #[test]
    fn ocsp_verdicts_have_their_own_tokens_and_levels() {
        let u = vec![("leaf".to_string(), Verdict::Unknown("who?".into()))];
        let strict = NotRevoked {
            on: true,
            ..Default::default()
        };
        let a = summarize(&u, &strict);
        assert_eq!(
            (a.status, a.reason.as_deref()),
            (Status::Fail, Some("ocsp_unknown"))
        );
        let soft = NotRevoked {
            ocsp_unknown: Level::Warn,
            ..strict
        };
        assert_eq!(summarize(&u, &soft).status, Status::Warn);
        let gone = Verdict::Unavailable(Family::Ocsp, "down".into());
        assert_eq!(gone.reason(), "ocsp_unavailable");
        assert_eq!(gone.revoked(), None);
    }

    #[test]
    fn an_answer_after_an_unavailable_source_notes_it() {
        let down = Verdict::Unavailable(Family::Crl, "CRL down".into());
        let v = with_failures(Verdict::Good("good per OCSP".into()), &[down]);
        assert_eq!(v.text(), "good per OCSP (tried first: CRL down)");
        let none = undecided(
            vec![],
            vec!["no staple".into()],
            false,
            &NotRevoked::default(),
        );
        assert!(matches!(none, Verdict::Unchecked(_)));
    }
}
