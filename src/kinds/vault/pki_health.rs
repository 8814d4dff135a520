//! `vault_pki_health`: evaluates a PKI mount the way `bao pki health-check <mount>` does —
//! the same fourteen health checks, the same thresholds and configuration keys — and reports
//! one assertion per health check, named after it. Each check's findings get the original's
//! levels; the worst decides the assertion: `critical` fails, `warning`,
//! `insufficient_permissions` and `invalid_version` warn, `informational`, `ok` and
//! `not_applicable` pass. The message starts with the level.
//!
//! Reason tokens: `critical`, `warning`, `insufficient_permissions`, `invalid_version` (the
//! health check's level); on the `mount` assertion `mount_missing`, `not_pki`, `no_issuers`.

mod acme;
mod config;
mod fetch;
mod rules;

pub use config::{
    Audit, AutoTidy, CaValidity, CrlValidity, NoStore, OptIn, RootIssuedLeaves, TidyLastRun,
    Toggle, TooManyCerts,
};

use super::{outcome, prepare, settle};
use crate::kinds::{CheckKind, Ctx, Invalid};
use crate::model::{Assertion, Outcome, Status};
use crate::vault::VaultError;
use fetch::{Fetcher, Got};
use serde::Deserialize;

/// The health checks, in the original's order.
pub const CHECKS: &[&str] = &[
    "ca_validity_period",
    "crl_validity_period",
    "hardware_backed_root",
    "root_issued_leaves",
    "role_allows_localhost",
    "role_allows_glob_wildcards",
    "role_no_store_false",
    "audit_visibility",
    "allow_if_modified_since",
    "enable_auto_tidy",
    "tidy_last_run",
    "too_many_certs",
    "enable_acme_issuance",
    "allow_acme_headers",
];

/// `vault_pki_health`: the PKI mount to evaluate.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultPkiHealthSpec {
    pub mount: String,
}

/// Each health check's configuration (the keys of `bao pki health-check -list`), and the
/// checks to skip.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PkiHealthExpect {
    pub ca_validity_period: CaValidity,
    pub crl_validity_period: CrlValidity,
    pub hardware_backed_root: OptIn,
    pub root_issued_leaves: RootIssuedLeaves,
    pub role_allows_localhost: Toggle,
    pub role_allows_glob_wildcards: Toggle,
    pub role_no_store_false: NoStore,
    pub audit_visibility: Audit,
    pub allow_if_modified_since: Toggle,
    pub enable_auto_tidy: AutoTidy,
    pub tidy_last_run: TidyLastRun,
    pub too_many_certs: TooManyCerts,
    pub enable_acme_issuance: Toggle,
    pub allow_acme_headers: Toggle,
    pub skip: Vec<String>,
}

impl PkiHealthExpect {
    /// Whether health check `name` runs: enabled in its configuration and not skipped.
    pub fn runs(&self, name: &str) -> bool {
        let enabled = match name {
            "ca_validity_period" => self.ca_validity_period.enabled,
            "crl_validity_period" => self.crl_validity_period.enabled,
            "hardware_backed_root" => self.hardware_backed_root.enabled,
            "root_issued_leaves" => self.root_issued_leaves.enabled,
            "role_allows_localhost" => self.role_allows_localhost.enabled,
            "role_allows_glob_wildcards" => self.role_allows_glob_wildcards.enabled,
            "role_no_store_false" => self.role_no_store_false.enabled,
            "audit_visibility" => self.audit_visibility.enabled,
            "allow_if_modified_since" => self.allow_if_modified_since.enabled,
            "enable_auto_tidy" => self.enable_auto_tidy.enabled,
            "tidy_last_run" => self.tidy_last_run.enabled,
            "too_many_certs" => self.too_many_certs.enabled,
            "enable_acme_issuance" => self.enable_acme_issuance.enabled,
            "allow_acme_headers" => self.allow_acme_headers.enabled,
            _ => false,
        };
        enabled && !self.skip.iter().any(|s| s == name)
    }
}

/// A finding's level, in the original's order (later is worse there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    NotApplicable,
    Ok,
    Informational,
    Warning,
    Critical,
    InvalidVersion,
    InsufficientPermissions,
}

impl Level {
    /// The original's status token.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::NotApplicable => "not_applicable",
            Level::Ok => "ok",
            Level::Informational => "informational",
            Level::Warning => "warning",
            Level::Critical => "critical",
            Level::InvalidVersion => "invalid_version",
            Level::InsufficientPermissions => "insufficient_permissions",
        }
    }

    /// The rotcheck status this level maps to.
    pub fn verdict(self) -> Status {
        match self {
            Level::Critical => Status::Fail,
            Level::Warning | Level::InvalidVersion | Level::InsufficientPermissions => Status::Warn,
            Level::NotApplicable | Level::Ok | Level::Informational => Status::Pass,
        }
    }
}

/// One finding of a health check.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub level: Level,
    pub message: String,
}

impl Finding {
    pub fn new(level: Level, message: impl Into<String>) -> Finding {
        Finding {
            level,
            message: message.into(),
        }
    }

    /// The token may not `cap` `path`; says which capability to grant.
    pub fn denied(path: &str, cap: &str, lost: &str) -> Finding {
        Finding::new(
            Level::InsufficientPermissions,
            format!("the token lacks `{cap}` on {path}, so {lost}; grant {cap} on {path} to the token's policy"),
        )
    }
}

/// The `vault_pki_health` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultPkiHealth;

impl CheckKind for VaultPkiHealth {
    const NAME: &'static str = "vault_pki_health";
    const CONNECTS: bool = true;
    type Spec = VaultPkiHealthSpec;
    type Expect = PkiHealthExpect;

    fn validate(spec: &VaultPkiHealthSpec, expect: &PkiHealthExpect) -> Result<(), Invalid> {
        validate(spec, expect)
    }

    async fn probe(spec: &VaultPkiHealthSpec, expect: &PkiHealthExpect, ctx: &Ctx) -> Outcome {
        settle(probe(spec, expect, ctx).await)
    }
}

fn validate(spec: &VaultPkiHealthSpec, e: &PkiHealthExpect) -> Result<(), Invalid> {
    if spec.mount.trim_matches('/').is_empty() {
        return Err(Invalid::new(
            ".vault_pki_health.mount",
            "the mount is empty; name the PKI mount (mount: pki)",
        ));
    }
    if let Some(bad) = e.skip.iter().find(|s| !CHECKS.contains(&s.as_str())) {
        let hint = crate::suite::suggest::suggest(bad, CHECKS)
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        let known = CHECKS.join(", ");
        return Err(Invalid::new(
            ".expect.skip",
            format!("`{bad}` is not a health check; {hint}known: {known}"),
        ));
    }
    ranges(e)
}

/// The ranges the original enforces on its numeric settings.
fn ranges(e: &PkiHealthExpect) -> Result<(), Invalid> {
    let crl = &e.crl_validity_period;
    let checks: [(&str, u64, u64, u64); 5] = [
        (
            "crl_validity_period.crl_expiry_pct_critical",
            crl.crl_expiry_pct_critical.into(),
            1,
            99,
        ),
        (
            "crl_validity_period.delta_crl_expiry_pct_critical",
            crl.delta_crl_expiry_pct_critical.into(),
            1,
            99,
        ),
        (
            "root_issued_leaves.certs_to_fetch",
            e.root_issued_leaves.certs_to_fetch.into(),
            1,
            100_000,
        ),
        (
            "too_many_certs.count_critical",
            e.too_many_certs.count_critical,
            1,
            15_000_000,
        ),
        (
            "too_many_certs.count_warning",
            e.too_many_certs.count_warning,
            1,
            15_000_000,
        ),
    ];
    for (key, v, lo, hi) in checks {
        if !(lo..=hi).contains(&v) {
            return Err(Invalid::new(
                format!(".expect.{key}"),
                format!("{v} is out of range; expected {lo} to {hi}"),
            ));
        }
    }
    Ok(())
}

async fn probe(
    spec: &VaultPkiHealthSpec,
    expect: &PkiHealthExpect,
    ctx: &Ctx,
) -> Result<Outcome, VaultError> {
    let p = prepare(ctx)?;
    let token = p.token(ctx, &format!("checking {}", spec.mount)).await?;
    let mut f = Fetcher::new(p, token, &spec.mount);
    let mount = mount_assertion(&mut f).await?;
    let stop = mount.status != Status::Pass;
    let mut assertions = vec![mount];
    if stop {
        return Ok(outcome(assertions));
    }
    for name in CHECKS.iter().filter(|n| expect.runs(n)) {
        let found = rules::run(name, &mut f, expect, ctx.now_unix()).await;
        assertions.push(judge(name, found));
    }
    Ok(outcome(assertions))
}

/// The mount exists, is a PKI mount and has issuers (the original refuses to run otherwise).
async fn mount_assertion(f: &mut Fetcher) -> Result<Assertion, VaultError> {
    let m = f.mount.clone();
    let kind = f.mount_info().await?;
    let ty = kind
        .data()
        .and_then(|d| d.get("type"))
        .and_then(|t| t.as_str());
    match (&kind, ty) {
        (Got::Missing, _) => {
            return Ok(mount_fail(
                "mount_missing",
                format!(
                "no secrets engine is mounted at {m}/; expected a PKI mount; check the mount name"
            ),
            ))
        }
        (_, Some(t)) if t != "pki" => {
            return Ok(mount_fail(
                "not_pki",
                format!("{m}/ is a {t} mount; expected a PKI mount; name the PKI mount"),
            ))
        }
        _ => {}
    }
    match f.issuers().await? {
        Ok(ids) if !ids.is_empty() => Ok(Assertion::pass(
            "mount",
            format!("{m}/ is a PKI mount with {} issuer(s)", ids.len()),
        )),
        _ => Ok(mount_fail(
            "no_issuers",
            format!("{m}/ has no issuers; expected at least one; generate or import a CA ({m}/root/generate/internal or {m}/issuers/import/bundle)"),
        )),
    }
}

fn mount_fail(reason: &str, message: String) -> Assertion {
    Assertion::fail("mount", reason, message)
}

/// One assertion from a health check's findings: the worst decides; an error stops only it.
fn judge(name: &str, found: Result<Vec<Finding>, VaultError>) -> Assertion {
    let findings = match found {
        Ok(f) => f,
        Err(e) => return super::cannot(name, &e.class(), e.to_string()),
    };
    let worst = findings
        .iter()
        .rev()
        .max_by_key(|f| (f.level.verdict(), f.level));
    let Some(worst) = worst else {
        return Assertion::pass(
            name,
            "not_applicable: nothing to evaluate (no matching issuers or roles)",
        );
    };
    let tail = match findings.len() {
        1 => String::new(),
        n => format!(" ({n} findings: {})", summary(&findings)),
    };
    let message = format!("{}: {}{tail}", worst.level.as_str(), worst.message);
    match worst.level.verdict() {
        Status::Pass => Assertion::pass(name, message),
        s => Assertion::not_ok(name, s, worst.level.as_str(), message),
    }
}

/// `2 informational, 1 warning`.
fn summary(findings: &[Finding]) -> String {
    let mut levels: Vec<Level> = findings.iter().map(|f| f.level).collect();
    levels.sort();
    levels.dedup();
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    let parts: Vec<String> = levels
        .iter()
        .map(|l| format!("{} {}", count(*l), l.as_str()))
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_verdict_decides_and_critical_beats_permissions() {
        let found = vec![
            Finding::new(Level::Critical, "expires soon"),
            Finding::new(Level::InsufficientPermissions, "no read"),
            Finding::new(Level::Ok, "fine"),
        ];
        let a = judge("ca_validity_period", Ok(found));
        assert_eq!(a.status, Status::Fail);
        assert_eq!(a.reason.as_deref(), Some("critical"));
        assert!(a
            .message
            .starts_with("critical: expires soon (3 findings: 1 ok, 1 critical"));
        let a = judge("x", Ok(vec![Finding::new(Level::Informational, "i")]));
        assert_eq!(
            (a.status, a.message.as_str()),
            (Status::Pass, "informational: i")
        );
        assert!(judge("x", Ok(vec![])).message.starts_with("not_applicable"));
    }

    #[test]
    fn skips_and_ranges_are_validated() {
        let spec = VaultPkiHealthSpec {
            mount: "pki".into(),
        };
        let mut e = PkiHealthExpect {
            skip: vec!["tidy_lastrun".into()],
            ..Default::default()
        };
        assert_eq!(validate(&spec, &e).unwrap_err().key, ".expect.skip");
        e.skip = vec!["tidy_last_run".into()];
        assert!(validate(&spec, &e).is_ok());
        assert!(!e.runs("tidy_last_run") && e.runs("too_many_certs"));
        assert!(!e.runs("hardware_backed_root"));
        e.crl_validity_period.crl_expiry_pct_critical = 100;
        assert!(validate(&spec, &e).unwrap_err().message.contains("1 to 99"));
    }
}
