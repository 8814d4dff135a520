//! `vault_health`: `sys/health` (status code per node state) and `sys/seal-status` (unseal
//! progress), with the profile's client certificate — the seeds' "vault status works".

use super::{prepare, settle};
use crate::kinds::{Base, CheckKind, Ctx};
use crate::metrics::text::{Def, Exposition};
use crate::model::{Assertion, CheckResult, Facts, Outcome, VaultFacts};
use crate::vault::{Reply, VaultError, Version};
use serde::Deserialize;
use serde_json::Value;

/// What a node says it is, from the health status code and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Active,
    Standby,
    PerfStandby,
    DrSecondary,
    HaUnhealthy,
    Removed,
    /// Sealed or uninitialized: the sealed/initialized assertions speak for it.
    Down,
}

/// `vault_health`: sys/health + sys/seal-status.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct VaultHealthSpec {
    #[serde(default)]
    pub standbyok: bool,
    #[serde(default)]
    pub perfstandbyok: bool,
}

/// What a `vault_health` check may expect of the server.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HealthExpect {
    pub sealed: Option<bool>,
    pub initialized: Option<bool>,
    pub standby_ok: Option<bool>,
    pub version: Option<String>,
}

/// The `vault_health` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultHealth;

impl CheckKind for VaultHealth {
    const NAME: &'static str = "vault_health";
    const CONNECTS: bool = true;
    type Spec = VaultHealthSpec;
    type Expect = HealthExpect;
    const FAMILIES: &'static [&'static Def] = &[
        &super::VAULT_SEALED,
        &super::VAULT_INITIALIZED,
        &super::VAULT_VERSION,
    ];

    async fn probe(spec: &VaultHealthSpec, expect: &HealthExpect, ctx: &Ctx) -> Outcome {
        run(spec, expect, ctx).await
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        super::series(e, base, r);
    }
}

pub async fn run(spec: &VaultHealthSpec, expect: &HealthExpect, ctx: &Ctx) -> Outcome {
    settle(probe(spec, expect, ctx).await)
}

async fn probe(
    spec: &VaultHealthSpec,
    expect: &HealthExpect,
    ctx: &Ctx,
) -> Result<Outcome, VaultError> {
    let p = prepare(ctx)?;
    let health = p.client.get(&health_path(spec), None).await?;
    let is_status = |b: &Value| b.get("initialized").is_some_and(Value::is_boolean);
    let Some(body) = health.json.clone().filter(is_status) else {
        return Err(bad_health(&health));
    };
    let seal = match p.client.get("sys/seal-status", None).await {
        Ok(r) if r.is_success() => r.json,
        _ => None,
    };
    let addr = p.client.addr().to_string();
    Ok(evaluate(
        spec,
        expect,
        health.status,
        &body,
        seal.as_ref(),
        &addr,
    ))
}

fn health_path(spec: &VaultHealthSpec) -> String {
    let mut q = Vec::new();
    if spec.standbyok {
        q.push("standbyok=true");
    }
    if spec.perfstandbyok {
        q.push("perfstandbyok=true");
    }
    if q.is_empty() {
        "sys/health".into()
    } else {
        format!("sys/health?{}", q.join("&"))
    }
}

/// No status document: Vault's error when it answered with one, else "not Vault".
fn bad_health(r: &Reply) -> VaultError {
    if !r.is_success() {
        return r.to_error();
    }
    r.bad(format!(
        "expected sys/health's JSON status document, got HTTP {} without one; is this Vault?",
        r.status
    ))
}

fn evaluate(
    spec: &VaultHealthSpec,
    expect: &HealthExpect,
    status: u16,
    body: &Value,
    seal: Option<&Value>,
    addr: &str,
) -> Outcome {
    let flag = |k: &str| body.get(k).and_then(Value::as_bool);
    let initialized = flag("initialized").unwrap_or(status != 501);
    let sealed = flag("sealed").unwrap_or(status == 503 || !initialized);
    let facts = VaultFacts {
        sealed: Some(sealed),
        initialized: Some(initialized),
        standby: flag("standby"),
        version: text(body, "version"),
        cluster_name: text(body, "cluster_name")
            .or_else(|| seal.and_then(|s| text(s, "cluster_name"))),
        ..Default::default()
    };
    let mut a = vec![
        assert_initialized(expect.initialized.unwrap_or(true), initialized),
        assert_sealed(expect.sealed.unwrap_or(false), sealed, initialized, seal),
    ];
    let role = role(status, body, initialized, sealed);
    if role != Role::Down {
        a.push(assert_role(role, spec, expect, status, &facts, addr));
    }
    if let Some(want) = &expect.version {
        a.push(assert_version(want, facts.version.as_deref()));
    }
    Outcome {
        assertions: a,
        facts: Facts {
            vault: Some(facts),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn role(status: u16, body: &Value, initialized: bool, sealed: bool) -> Role {
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    match status {
        _ if !initialized || sealed => Role::Down,
        530 => Role::Removed,
        _ if flag("removed_from_cluster") => Role::Removed,
        474 => Role::HaUnhealthy,
        472 => Role::DrSecondary,
        473 => Role::PerfStandby,
        429 => Role::Standby,
        _ if flag("performance_standby") => Role::PerfStandby,
        _ if flag("standby") => Role::Standby,
        _ => Role::Active,
    }
}

fn assert_initialized(want: bool, found: bool) -> Assertion {
    if want == found {
        let what = if found {
            "initialized"
        } else {
            "not initialized, as expected"
        };
        return Assertion::pass("initialized", format!("Vault is {what}"));
    }
    if want {
        Assertion::fail(
            "initialized",
            "uninitialized",
            "Vault is not initialized (sys/health 501); expected an initialized server; initialize it (vault operator init) or point vault.addr at the right server",
        )
    } else {
        Assertion::fail(
            "initialized",
            "initialized",
            "Vault is initialized; expected it not to be",
        )
    }
}

fn assert_sealed(want: bool, found: bool, initialized: bool, seal: Option<&Value>) -> Assertion {
    if want == found {
        let what = if found {
            "sealed, as expected"
        } else {
            "unsealed"
        };
        return Assertion::pass("sealed", format!("Vault is {what}"));
    }
    if !found {
        return Assertion::fail(
            "sealed",
            "unsealed",
            "Vault is unsealed; expected it sealed",
        );
    }
    if !initialized {
        return Assertion::fail(
            "sealed",
            "sealed",
            "Vault is sealed because it is not initialized; expected unsealed; initialize and unseal it",
        );
    }
    Assertion::fail(
        "sealed",
        "sealed",
        format!(
            "Vault is sealed{}; expected unsealed; unseal it (vault operator unseal) — every client, agent and login fails until then",
            progress(seal)
        ),
    )
}

/// ` (shamir, unseal progress 1/3)` from sys/seal-status, when it answered.
fn progress(seal: Option<&Value>) -> String {
    let Some(s) = seal else { return String::new() };
    let n = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
    let kind = s
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown seal");
    format!(" ({kind}, unseal progress {}/{})", n("progress"), n("t"))
}

fn assert_role(
    role: Role,
    spec: &VaultHealthSpec,
    expect: &HealthExpect,
    status: u16,
    facts: &VaultFacts,
    addr: &str,
) -> Assertion {
    let who = describe(facts, addr);
    let standby_ok = expect.standby_ok.unwrap_or(spec.standbyok);
    let perf_ok = expect
        .standby_ok
        .unwrap_or(spec.perfstandbyok || spec.standbyok);
    let fail = |reason: &str, what: &str, fix: &str| {
        Assertion::fail(
            "standby",
            reason,
            format!("{who} is {what} (sys/health {status}); {fix}"),
        )
    };
    let to_active = "expected the active node; a node unsealed a moment ago answers as a standby until it has elected itself (about a second on a single node: `gate --wait` retries), otherwise point vault.addr at the active node or set `standby_ok: true`";
    match role {
        Role::Active => Assertion::pass("standby", format!("{who} is the active node")),
        Role::Standby if standby_ok => {
            Assertion::pass("standby", format!("{who} is a standby (accepted)"))
        }
        Role::PerfStandby if perf_ok => Assertion::pass(
            "standby",
            format!("{who} is a performance standby (accepted)"),
        ),
        Role::Standby => fail("standby", "a standby", to_active),
        Role::PerfStandby => fail("standby", "a performance standby", to_active),
        Role::DrSecondary => fail(
            "dr_secondary",
            "a DR secondary",
            "a DR secondary serves no client requests; point vault.addr at the primary cluster",
        ),
        Role::HaUnhealthy => fail(
            "ha_unhealthy",
            "a standby that cannot reach the active node",
            "check the cluster's network and the active node",
        ),
        Role::Removed => fail(
            "removed",
            "removed from the cluster",
            "re-join it (raft) or point vault.addr at a cluster member",
        ),
        Role::Down => Assertion::pass("standby", format!("{who} is down")),
    }
}

fn describe(facts: &VaultFacts, addr: &str) -> String {
    let version = facts.version.as_deref().unwrap_or("(version redacted)");
    match &facts.cluster_name {
        Some(c) => format!("Vault {version} at {addr} (cluster {c})"),
        None => format!("Vault {version} at {addr}"),
    }
}

/// `version: "1.20.4"` (exact), `"1.20"` (any 1.20.x) or `">=1.19"` (at least).
fn assert_version(want: &str, found: Option<&str>) -> Assertion {
    let Some(found) = found else {
        return Assertion::fail(
            "version",
            "version",
            format!("expected Vault {want}; the server does not report its version (redact_version on the listener?)"),
        );
    };
    if version_matches(want, found) {
        return Assertion::pass("version", format!("Vault {found} matches {want}"));
    }
    Assertion::fail(
        "version",
        "version",
        format!("expected Vault {want}; found {found}; upgrade the server or update the suite"),
    )
}

fn version_matches(want: &str, found: &str) -> bool {
    if let Some(min) = want.trim().strip_prefix(">=") {
        return match (Version::parse(min), Version::parse(found)) {
            (Some(m), Some(f)) => f >= m,
            _ => false,
        };
    }
    let want = want.trim().trim_start_matches('v');
    let found = found.trim().trim_start_matches('v');
    found == want
        || found.starts_with(&format!("{want}."))
        || found.starts_with(&format!("{want}+"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> VaultHealthSpec {
        VaultHealthSpec::default()
    }

    #[test]
    fn sealed_node_fails_with_progress() {
        let body =
            json!({"initialized": true, "sealed": true, "standby": true, "version": "1.20.4"});
        let seal = json!({"type": "shamir", "t": 3, "progress": 1});
        let o = evaluate(
            &spec(),
            &HealthExpect::default(),
            503,
            &body,
            Some(&seal),
            "https://v:1",
        );
        let sealed = &o.assertions[1];
        assert_eq!(sealed.reason.as_deref(), Some("sealed"));
        assert!(
            sealed.message.contains("unseal progress 1/3"),
            "{}",
            sealed.message
        );
        assert_eq!(o.assertions.len(), 2);
    }

    #[test]
    fn standby_needs_permission() {
        let body =
            json!({"initialized": true, "sealed": false, "standby": true, "version": "1.20.4"});
        let o = evaluate(
            &spec(),
            &HealthExpect::default(),
            429,
            &body,
            None,
            "https://v:1",
        );
        assert_eq!(o.assertions[2].reason.as_deref(), Some("standby"));
        let ok = VaultHealthSpec {
            standbyok: true,
            perfstandbyok: false,
        };
        let o = evaluate(
            &ok,
            &HealthExpect::default(),
            200,
            &body,
            None,
            "https://v:1",
        );
        assert_eq!(o.worst(), crate::model::Status::Pass);
    }

    #[test]
    fn versions_match_loosely() {
        assert!(version_matches("1.20", "1.20.4"));
        assert!(version_matches("1.20.4", "1.20.4+ent"));
        assert!(!version_matches("1.2", "1.20.4"));
        assert!(version_matches(">=1.19", "1.20.4") && !version_matches(">=1.21", "1.20.4"));
    }
}
