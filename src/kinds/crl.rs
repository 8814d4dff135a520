//! The `crl` probe: a certificate revocation list judged on its own — read from `file` or
//! fetched from `url` (DER or PEM, at most 4 MiB, within the timeout), issued and signed by
//! the CA of `issuer_file`, and fresh.
//!
//! Assertions, in order:
//! - `crl` (implicit): read and parsed. Reasons `crl_unavailable` (cannot read or fetch, with
//!   why), `crl_malformed` (not a CRL).
//! - `signature` (implicit): issued under the name of a certificate of `issuer_file` and
//!   signed by its key. Reason `crl_bad_signature`.
//! - `next_update`: time left before `nextUpdate` against warn/crit thresholds (a duration,
//!   or a share of the window from `thisUpdate` to `nextUpdate`; default 10% / 5%, not the
//!   suite's certificate defaults: Vault rebuilds a 72 h CRL 12 h before it lapses). Reasons `crl_expiring` (warn or fail), `crl_stale`
//!   (passed: clients that check revocation refuse every certificate of that CA).

use crate::crl::{self, Crl};
use crate::expect::revocation::{load, Source};
use crate::kinds::http::exchange::Url;
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::{family, Def, Exposition};
use crate::model::{Assertion, CheckResult, Outcome, ProbeError, Status};
use crate::suite::{ExpiryThresholds, Threshold};
use serde::Deserialize;

/// Where the CRL is and which CA issues it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrlSpec {
    pub file: Option<String>,
    /// `http(s)://…`, e.g. Vault's `https://vault:8200/v1/pki/crl`.
    pub url: Option<String>,
    /// The issuing CA's certificate (PEM; the first whose subject is the CRL's issuer).
    pub issuer_file: String,
}

/// Warn below 10% of the CRL's window left, fail below 5%.
pub const DEFAULT_THRESHOLDS: ExpiryThresholds = ExpiryThresholds {
    warn: Threshold::Ratio(0.10),
    crit: Threshold::Ratio(0.05),
};

/// What a `crl` check may expect.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CrlExpect {
    pub next_update: Option<ExpiryThresholds>,
}

family!(
    NEXT_UPDATE,
    "rotcheck_crl_next_update_timestamp_seconds",
    Gauge,
    "Unix time of the CRL's nextUpdate (crl checks); absent when it could not be read or names none."
);

/// The `crl` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlKind;

impl CheckKind for CrlKind {
    const NAME: &'static str = "crl";
    const CONNECTS: bool = true;
    type Spec = CrlSpec;
    type Expect = CrlExpect;
    const FAMILIES: &'static [&'static Def] = &[&NEXT_UPDATE];

    fn validate(spec: &CrlSpec, _expect: &CrlExpect) -> Result<(), Invalid> {
        match (&spec.file, &spec.url) {
            (Some(_), None) => Ok(()),
            (None, Some(u)) => Url::parse(u)
                .map(drop)
                .map_err(|m| Invalid::new(".crl.url", m)),
            _ => Err(Invalid::new(
                ".crl",
                "set exactly one of file: PATH or url: URL (where the CRL is)",
            )),
        }
    }

    async fn probe(spec: &CrlSpec, expect: &CrlExpect, ctx: &Ctx) -> Outcome {
        probe(spec, expect, ctx).await
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        let next = r.facts.extra.get("crl_next_update");
        if let Some(t) = next.and_then(|t| t.parse::<f64>().ok()) {
            e.sample(&NEXT_UPDATE, base, t);
        }
    }
}

/// Reads the CRL, then judges its signature and freshness.
pub async fn probe(spec: &CrlSpec, expect: &CrlExpect, ctx: &Ctx) -> Outcome {
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let src = match (&spec.file, &spec.url) {
        (Some(f), _) => Source::File(ctx.path(f)),
        (None, Some(u)) => Source::Url(u.clone()),
        (None, None) => return unread("config", "set file: or url:".into()),
    };
    let crls = match load(&src, ctx, deadline).await {
        Ok(c) => c,
        Err(e) => return unread(e.class(), e.to_string()),
    };
    let crl = &crls[0];
    let mut out = Outcome::default();
    out.assertions.push(Assertion::pass("crl", describe(crl)));
    out.assertions.push(signature(crl, spec, ctx));
    let t = expect.next_update.unwrap_or(DEFAULT_THRESHOLDS);
    out.assertions
        .push(assert_next_update(crl, &t, ctx.now_unix()));
    if let Some(n) = crl.next_update {
        out.facts
            .extra
            .insert("crl_next_update".into(), n.to_string());
    }
    let count = crl.revoked.len().to_string();
    out.facts.extra.insert("crl_revoked".into(), count);
    out
}

/// The CRL could not be read: `crl` fails (or errs on a configuration problem).
fn unread(class: &str, message: String) -> Outcome {
    let status = match class {
        "config" => Status::Error,
        _ => Status::Fail,
    };
    Outcome {
        error: Some(ProbeError::local(class, message.clone())),
        assertions: vec![Assertion::not_ok("crl", status, class, message)],
        ..Default::default()
    }
}

fn describe(crl: &Crl) -> String {
    format!(
        "CRL from {} by {}: {} revoked, this update {}, {}",
        crl.source,
        crl.issuer,
        crl.revoked.len(),
        crate::certs::rfc3339(crl.this_update),
        crl::describe_next_update(crl.next_update)
    )
}

/// Issued under the name of a certificate of `issuer_file` and signed by its key.
fn signature(crl: &Crl, spec: &CrlSpec, ctx: &Ctx) -> Assertion {
    let issuers = match ctx.cache.certs(&ctx.path(&spec.issuer_file)) {
        Ok(c) => c,
        Err(e) => return Assertion::not_ok("signature", Status::Error, e.class(), e.to_string()),
    };
    let named = issuers.iter().find(|c| {
        x509_parser::parse_x509_certificate(c.as_ref())
            .is_ok_and(|(_, x)| x.subject().as_raw() == crl.issuer_raw.as_slice())
    });
    let issuer = named.unwrap_or(&issuers[0]);
    match crl.verify(issuer.as_ref()) {
        Ok(()) => Assertion::pass("signature", format!("signed by {}", crl.issuer)),
        Err(e) => Assertion::fail("signature", e.class(), e.to_string()),
    }
}

/// Time left before `nextUpdate` against the thresholds.
pub fn assert_next_update(crl: &Crl, t: &ExpiryThresholds, now: i64) -> Assertion {
    let name = "next_update";
    let Some(next) = crl.next_update else {
        return Assertion::pass(name, "the CRL names no next update");
    };
    let when = crate::certs::rfc3339(next);
    if next < now {
        let msg = format!("the CRL's next update {when} has passed: clients that check revocation refuse this CA's certificates; rebuild the CRL (Vault: write <mount>/crl/rotate, or enable auto_rebuild in <mount>/config/crl)");
        return Assertion::fail(name, "crl_stale", msg);
    }
    let left = crate::human::duration(std::time::Duration::from_secs((next - now) as u64));
    let share = window_left(crl, next, now);
    let msg = |level: &str, th: &Threshold| {
        format!("next update {when}, in {left} ({:.0}% of the window left), below the {level} threshold ({th}); is the CA rebuilding its CRL?", share * 100.0)
    };
    if below(&t.crit, next, now, share) {
        return Assertion::fail(name, "crl_expiring", msg("critical", &t.crit));
    }
    if below(&t.warn, next, now, share) {
        return Assertion::not_ok(name, Status::Warn, "crl_expiring", msg("warn", &t.warn));
    }
    Assertion::pass(name, format!("next update {when}, in {left}"))
}

/// Share of the window `thisUpdate`..`nextUpdate` still left at `now`.
fn window_left(crl: &Crl, next: i64, now: i64) -> f64 {
    let total = (next - crl.this_update).max(1) as f64;
    ((next - now) as f64 / total).clamp(0.0, 1.0)
}

fn below(t: &Threshold, next: i64, now: i64, share: f64) -> bool {
    match t {
        Threshold::Remaining(d) => next - now < d.as_secs() as i64,
        Threshold::Ratio(r) => share < *r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::parse_threshold;

    fn crl(this: i64, next: Option<i64>) -> Crl {
        Crl {
            source: "ca.crl".into(),
            der: vec![],
            issuer_raw: vec![],
            issuer: "CN=ca".into(),
            this_update: this,
            next_update: next,
            revoked: vec![],
        }
    }

    fn th(w: &str, c: &str) -> ExpiryThresholds {
        ExpiryThresholds {
            warn: parse_threshold(w).unwrap(),
            crit: parse_threshold(c).unwrap(),
        }
    }

    fn reason(a: &Assertion) -> (Status, Option<&str>) {
        (a.status, a.reason.as_deref())
    }

    #[test]
    fn freshness_by_duration_and_by_share_of_the_window() {
        let h = 3600;
        let c = crl(0, Some(72 * h));
        let d = th("1d", "1h");
        assert_eq!(
            reason(&assert_next_update(&c, &d, 10 * h)),
            (Status::Pass, None)
        );
        assert_eq!(
            reason(&assert_next_update(&c, &d, 60 * h)),
            (Status::Warn, Some("crl_expiring"))
        );
        assert_eq!(
            reason(&assert_next_update(&c, &d, 71 * h + 1)),
            (Status::Fail, Some("crl_expiring"))
        );
        assert_eq!(
            reason(&assert_next_update(&c, &d, 73 * h)),
            (Status::Fail, Some("crl_stale"))
        );
        let r = DEFAULT_THRESHOLDS;
        assert_eq!(
            reason(&assert_next_update(&c, &r, 50 * h)),
            (Status::Pass, None)
        );
        assert_eq!(
            reason(&assert_next_update(&c, &r, 66 * h)),
            (Status::Warn, Some("crl_expiring"))
        );
        assert_eq!(
            reason(&assert_next_update(&crl(0, None), &r, 50 * h)),
            (Status::Pass, None)
        );
    }

    #[test]
    fn exactly_one_source() {
        let spec = |y: &str| serde_yaml_ng::from_str::<CrlSpec>(y).unwrap();
        let v = |y: &str| CrlKind::validate(&spec(y), &CrlExpect::default());
        assert!(v("{file: a.crl, issuer_file: ca.pem}").is_ok());
        assert!(v("{url: 'http://h/crl', issuer_file: ca.pem}").is_ok());
        assert_eq!(v("{issuer_file: ca.pem}").unwrap_err().key, ".crl");
        let both = "{file: a, url: 'http://h/', issuer_file: c}";
        assert_eq!(v(both).unwrap_err().key, ".crl");
        assert_eq!(
            v("{url: 'ftp://h/', issuer_file: c}").unwrap_err().key,
            ".crl.url"
        );
    }
}
