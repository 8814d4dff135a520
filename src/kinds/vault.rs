//! Vault check kinds (`vault_health`, `vault_login`, `vault_cert_role`, `vault_pki_role`,
//! `vault_pki_health`, `vault_kv`, `vault_transit_key`, `vault_db_creds`, `vault_db_static_role`,
//! `version_skew`): one file per kind under `vault/`, and the helpers they share —
//! resolving the profile, the run's token, and turning a `VaultError` into an outcome.

pub mod cert_role;
pub mod db_creds;
pub mod db_static_role;
pub mod health;
pub mod kv;
pub mod login;
pub mod pki_health;
pub mod pki_role;
pub mod skew;
pub mod transit_key;

use crate::kinds::{Base, Ctx};
use crate::metrics::text::{family, Exposition};
use crate::metrics::{flag, with};
use crate::model::{Assertion, CheckResult, Outcome, Status};
use crate::vault::{Settings, Token, VaultClient, VaultError};
use serde::Deserialize;

/// `policies: {include, exclude}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyExpect {
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

family!(
    VAULT_SEALED,
    "rotcheck_vault_sealed",
    Gauge,
    "1 if Vault reported itself sealed, 0 if unsealed."
);
family!(
    VAULT_INITIALIZED,
    "rotcheck_vault_initialized",
    Gauge,
    "1 if Vault reported itself initialized, 0 if not."
);
family!(
    VAULT_VERSION,
    "rotcheck_vault_version_info",
    Gauge,
    "The Vault server version reported by sys/health; always 1."
);
family!(
    VAULT_AGENT_VERSION,
    "rotcheck_vault_agent_version_info",
    Gauge,
    "The Vault Agent version seen by a version_skew check; always 1."
);
family!(
    VERSION_SKEW,
    "rotcheck_version_skew_minor",
    Gauge,
    "Minor-version difference agent minus server (negative: the agent lags the server)."
);

/// The series of the Vault facts a check reported (`vault_health`: seal, initialization,
/// version; `version_skew`: server and agent versions, minor skew).
pub fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
    let Some(v) = &r.facts.vault else { return };
    if let Some(sealed) = v.sealed {
        e.sample(&VAULT_SEALED, base, flag(sealed));
    }
    if let Some(init) = v.initialized {
        e.sample(&VAULT_INITIALIZED, base, flag(init));
    }
    if let Some(version) = &v.version {
        e.sample(&VAULT_VERSION, &with(base, &[("version", version)]), 1.0);
    }
    if let Some(version) = &v.agent_version {
        e.sample(
            &VAULT_AGENT_VERSION,
            &with(base, &[("version", version)]),
            1.0,
        );
    }
    if let Some(skew) = v.minor_skew {
        e.sample(&VERSION_SKEW, base, skew as f64);
    }
}

/// The suite's profile and a client carrying its identity, within the check's budget.
pub(crate) struct Prepared {
    pub settings: Settings,
    pub client: VaultClient,
}

/// Resolves the profile and builds its client.
pub(crate) fn prepare(ctx: &Ctx) -> Result<Prepared, VaultError> {
    let settings = Settings::for_suite(&ctx.suite)?;
    let client = VaultClient::new(&settings.endpoint, ctx.timeout)?;
    Ok(Prepared { settings, client })
}

impl Prepared {
    /// The run's token for a read (`what` names it in the "no token" message).
    pub async fn token(&self, ctx: &Ctx, what: &str) -> Result<Token, VaultError> {
        ctx.cache
            .vault
            .token(&self.client, &self.settings.token, what)
            .await
    }
}

/// What an authenticated read of a Vault object found.
pub(crate) enum Read {
    /// The object's `data` map.
    Found(serde_json::Value),
    /// 404: the error Vault gave (an empty list, or "no handler" when the mount is missing).
    Missing(VaultError),
}

/// Reads `path` with the run's token; `what` names the object in messages.
pub(crate) async fn read_data(ctx: &Ctx, path: &str, what: &str) -> Result<Read, VaultError> {
    let p = prepare(ctx)?;
    let token = p.token(ctx, &format!("reading {path}")).await?;
    let reply = p.client.get(path, Some(&token)).await?;
    if reply.status == 404 {
        return Ok(Read::Missing(reply.to_error()));
    }
    let data = reply.clone().into_ok()?.get("data").cloned();
    let data = data.filter(serde_json::Value::is_object);
    data.map(Read::Found)
        .ok_or_else(|| reply.bad(format!("expected a `data` object in the {what}")))
}

/// The outcome of a probe body, or of the error that stopped it.
pub(crate) fn settle(r: Result<Outcome, VaultError>) -> Outcome {
    r.unwrap_or_else(|e| failure(&e))
}

/// The outcome for a failed call: connection failures keep their class (as the assertion's
/// reason too), a sealed Vault fails, anything that prevents evaluating is an `error`.
pub(crate) fn failure(e: &VaultError) -> Outcome {
    let (name, status, reason) = match e {
        VaultError::Connect { class, .. } => ("connect", Status::Fail, class.as_str().to_string()),
        VaultError::ServerCert { reason, .. } => ("chain", Status::Fail, reason.as_str().into()),
        VaultError::ProfileLogin { source, .. }
            if source.is_connection() || source.status() == Some(503) =>
        {
            return failure(source)
        }
        VaultError::ProfileLogin { .. } => ("token", Status::Error, "login_failed".into()),
        VaultError::Http { status: 503, .. } => ("vault", Status::Fail, "sealed".into()),
        VaultError::Http { .. } => ("vault", Status::Error, e.class()),
        _ => ("config", Status::Error, e.class()),
    };
    let message = e.to_string();
    Outcome {
        error: Some(e.to_probe_error()),
        assertions: vec![Assertion::not_ok(name, status, &reason, message)],
        ..Default::default()
    }
}

/// An outcome from assertions alone.
pub(crate) fn outcome(assertions: Vec<Assertion>) -> Outcome {
    Outcome {
        assertions,
        ..Default::default()
    }
}

/// A "could not evaluate" assertion (e.g. an unreadable expectation file).
pub(crate) fn cannot(name: &str, reason: &str, message: impl Into<String>) -> Assertion {
    Assertion::not_ok(name, Status::Error, reason, message)
}

/// `policies: {include, exclude}` against the policies found; forbidden ones fail first.
pub(crate) fn assert_policies(found: &[String], want: &PolicyExpect, fix: &str) -> Assertion {
    let has = |p: &String| found.iter().any(|f| f == p);
    let forbidden: Vec<&String> = want.exclude.iter().filter(|p| has(p)).collect();
    let missing: Vec<&String> = want.include.iter().filter(|p| !has(p)).collect();
    let found_txt = list(found.iter());
    if !forbidden.is_empty() {
        return Assertion::fail(
            "policies",
            "policy_forbidden",
            format!(
                "forbidden {} attached; found [{found_txt}]; expected none of [{}]; remove {} from {fix}",
                plural(&forbidden, "policy", "policies"),
                list(want.exclude.iter()),
                list(forbidden.iter().copied())
            ),
        );
    }
    if !missing.is_empty() {
        return Assertion::fail(
            "policies",
            "policy_missing",
            format!(
                "expected policies to include [{}]; found [{found_txt}]; missing {}: attach to {fix}",
                list(want.include.iter()),
                list(missing.iter().copied())
            ),
        );
    }
    Assertion::pass(
        "policies",
        format!("policies [{found_txt}] include every required one and none forbidden"),
    )
}

/// `a, b, c`.
pub(crate) fn list<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(String::as_str).collect::<Vec<_>>().join(", ")
}

fn plural<T>(items: &[T], one: &str, many: &str) -> String {
    if items.len() == 1 {
        one.to_string()
    } else {
        many.to_string()
    }
}

/// The 404 of a read: a missing mount says `no handler for route`; a missing item says nothing.
pub(crate) fn mount_missing(e: &VaultError) -> bool {
    e.errors()
        .iter()
        .any(|m| m.contains("no handler for route"))
}

/// Integer seconds, or a duration string (`72h`), as Vault may return either.
pub(crate) fn seconds(v: Option<&serde_json::Value>) -> u64 {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s
            .parse()
            .ok()
            .or_else(|| humantime::parse_duration(s).ok().map(|d| d.as_secs()))
            .unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_include_and_exclude() {
        let found = vec![
            "default".to_string(),
            "app-a-issue".into(),
            "debug-policy".into(),
        ];
        let want = PolicyExpect {
            include: vec!["app-a-issue".into()],
            exclude: vec!["debug-policy".into()],
        };
        let a = assert_policies(&found, &want, "the mapping");
        assert_eq!(a.reason.as_deref(), Some("policy_forbidden"));
        let want = PolicyExpect {
            include: vec!["kv-read".into()],
            exclude: vec![],
        };
        let a = assert_policies(&found, &want, "the mapping");
        assert_eq!(a.reason.as_deref(), Some("policy_missing"));
        assert!(a.message.contains("missing kv-read"));
    }
}
