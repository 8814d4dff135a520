//! `vault_login`: a cert login at `auth/<mount>/login` over mTLS with an agent's own
//! certificate, key and CA — "Vault Agent looks healthy but fails to auth" caught before the
//! agent does. The token is revoked with `auth/token/revoke-self` right after.

use super::PolicyExpect;
use super::{assert_policies, failure, list, outcome};
use crate::certs;
use crate::human::ttl;
use crate::kinds::{CheckKind, Ctx};
use crate::model::{Assertion, CertFacts, Outcome, Status};
use crate::suite::{default_cert_mount, Dur, VaultProfile};
use crate::vault::{cert_login, revoke_self, Login, Settings, Token, VaultClient, VaultError};
use serde::Deserialize;

/// `vault_login`: cert login with an agent identity.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultLoginSpec {
    #[serde(default = "default_cert_mount")]
    pub mount: String,
    pub role: Option<String>,
    pub client_cert: String,
    pub client_key: String,
    pub ca_file: Option<String>,
    pub addr: Option<String>,
    pub server_name: Option<String>,
}

/// What a `vault_login` check may expect of the login.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct LoginExpect {
    pub policies: Option<PolicyExpect>,
    pub token_ttl_min: Option<Dur>,
}

/// The `vault_login` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultLogin;

impl CheckKind for VaultLogin {
    const NAME: &'static str = "vault_login";
    const CONNECTS: bool = true;
    type Spec = VaultLoginSpec;
    type Expect = LoginExpect;

    async fn probe(spec: &VaultLoginSpec, expect: &LoginExpect, ctx: &Ctx) -> Outcome {
        run(spec, expect, ctx).await
    }
}

pub async fn run(spec: &VaultLoginSpec, expect: &LoginExpect, ctx: &Ctx) -> Outcome {
    let client = match client(spec, ctx) {
        Ok(c) => c,
        Err(e) => return failure(&e),
    };
    let cert = client_cert_facts(spec, ctx);
    let mut out = match cert_login(&client, &spec.mount, spec.role.as_deref()).await {
        Ok(login) => logged_in(spec, expect, &client, login, ctx).await,
        Err(e) if e.is_connection() || e.status().is_none() => failure(&e),
        Err(e) => {
            let uninit = e.status() == Some(503) && !initialized(&client).await;
            let now = ctx.now_unix();
            outcome(vec![rejected(spec, &e, cert.as_ref(), now, uninit)])
        }
    };
    out.certs.extend(cert);
    out
}

/// False only when `sys/seal-status` says the server was never initialized (a login answers
/// "Vault is sealed" either way).
async fn initialized(client: &VaultClient) -> bool {
    let reply = client.get("sys/seal-status", None).await;
    let said = reply
        .ok()
        .and_then(|r| r.json)
        .and_then(|j| j.get("initialized").cloned());
    said.and_then(|v| v.as_bool()).unwrap_or(true)
}

/// The profile, with this check's addr, server name, CA and agent identity on top.
fn client(spec: &VaultLoginSpec, ctx: &Ctx) -> Result<VaultClient, VaultError> {
    let mut profile: VaultProfile = ctx.suite.file.vault.clone().unwrap_or_default();
    let over = |v: &Option<String>, base: &mut Option<String>| {
        if v.is_some() {
            base.clone_from(v);
        }
    };
    over(&spec.addr, &mut profile.addr);
    over(&spec.server_name, &mut profile.server_name);
    over(&spec.ca_file, &mut profile.ca_file);
    profile.client_cert = Some(spec.client_cert.clone());
    profile.client_key = Some(spec.client_key.clone());
    let env = |k: &str| crate::vault::profile::suite_env(&ctx.suite, k);
    let path = |p: &str| ctx.path(p);
    let settings = Settings::resolve(Some(&profile), &env, &path)?;
    VaultClient::new(&settings.endpoint, ctx.timeout)
}

/// The agent certificate's facts, for the report (expiry shows up next to a failed login).
fn client_cert_facts(spec: &VaultLoginSpec, ctx: &Ctx) -> Option<CertFacts> {
    let chain = certs::read_certs(&ctx.path(&spec.client_cert)).ok()?;
    Some(certs::facts(chain.first()?, "client"))
}

fn mount_path(spec: &VaultLoginSpec) -> String {
    format!("auth/{}/login", spec.mount.trim_matches('/'))
}

fn as_role(spec: &VaultLoginSpec) -> String {
    match &spec.role {
        Some(r) => format!(" as {r}"),
        None => String::new(),
    }
}

async fn logged_in(
    spec: &VaultLoginSpec,
    expect: &LoginExpect,
    client: &VaultClient,
    login: Login,
    ctx: &Ctx,
) -> Outcome {
    let revoked = revoke(client.with_budget(ctx.timeout), login.token.clone()).await;
    let mut a = vec![
        Assertion::pass("login", login_summary(spec, &login)),
        assert_revoked(revoked, &login),
    ];
    if let Some(want) = &expect.policies {
        let role = spec.role.as_deref().unwrap_or("<name>");
        let mount = spec.mount.trim_matches('/');
        let fix = format!("the mapping auth/{mount}/certs/{role} (token_policies)");
        a.push(assert_policies(&login.policies, want, &fix));
    }
    if let Some(min) = expect.token_ttl_min {
        a.push(assert_ttl(login.lease_duration, min.0.as_secs()));
    }
    outcome(a)
}

/// Revokes on a task of its own, so the token is revoked even if the check is cancelled
/// (e.g. by the engine's hard timeout) while waiting.
async fn revoke(client: VaultClient, token: Token) -> Result<(), VaultError> {
    let task = tokio::spawn(async move { revoke_self(&client, &token).await });
    task.await.unwrap_or_else(|e| {
        Err(VaultError::Setup(format!(
            "the revocation task failed: {e}"
        )))
    })
}

fn login_summary(spec: &VaultLoginSpec, l: &Login) -> String {
    let meta = |k: &str| l.metadata.get(k).map(String::as_str).unwrap_or("?");
    format!(
        "logged in at {}{} (mapping {}, CN {}); token TTL {}, policies [{}]",
        mount_path(spec),
        as_role(spec),
        meta("cert_name"),
        meta("common_name"),
        ttl(l.lease_duration),
        list(l.policies.iter())
    )
}

fn assert_revoked(r: Result<(), VaultError>, l: &Login) -> Assertion {
    match r {
        Ok(()) => Assertion::pass("revoke", "the login token was revoked (auth/token/revoke-self)"),
        Err(e) => Assertion::not_ok(
            "revoke",
            Status::Warn,
            "revoke_failed",
            format!(
                "the login token could not be revoked ({e}); it stays valid until its TTL ({}) ends",
                ttl(l.lease_duration)
            ),
        ),
    }
}

fn assert_ttl(found: u64, min: u64) -> Assertion {
    if found >= min || found == 0 {
        let what = if found == 0 {
            "no TTL (never expires)".into()
        } else {
            ttl(found)
        };
        return Assertion::pass("token_ttl_min", format!("token TTL {what} ≥ {}", ttl(min)));
    }
    Assertion::fail(
        "token_ttl_min",
        "ttl_too_short",
        format!(
            "token TTL {}; expected at least {}; raise token_ttl on the mapping (or the mount's default lease TTL)",
            ttl(found),
            ttl(min)
        ),
    )
}

/// Vault refused the login: say what it said and what usually causes it.
fn rejected(
    spec: &VaultLoginSpec,
    e: &VaultError,
    cert: Option<&CertFacts>,
    now: i64,
    uninitialized: bool,
) -> Assertion {
    let said = e.errors().join("; ");
    let status = e.status().unwrap_or(0);
    let reason = if status == 503 {
        "sealed"
    } else {
        "login_failed"
    };
    let hint = if uninitialized {
        "the server is not initialized (sys/seal-status initialized=false); initialize it (bao operator init / vault operator init), unseal it, enable cert auth, then log in again".into()
    } else {
        hint(spec, &said, status, cert, now)
    };
    let said = if said.is_empty() {
        "nothing".into()
    } else {
        said
    };
    Assertion::fail(
        "login",
        reason,
        format!(
            "cert login at {}{} was rejected (HTTP {status}); Vault said: {said}; {hint}",
            mount_path(spec),
            as_role(spec)
        ),
    )
}

fn hint(
    spec: &VaultLoginSpec,
    said: &str,
    status: u16,
    cert: Option<&CertFacts>,
    now: i64,
) -> String {
    let role = spec.role.as_deref().unwrap_or("<name>");
    let mapping = format!("auth/{}/certs/{role}", spec.mount.trim_matches('/'));
    let expired = cert.filter(|c| c.not_after_unix < now);
    if let Some(c) = expired {
        return format!(
            "the client certificate {} expired at {}; rotate the agent certificate",
            spec.client_cert, c.not_after
        );
    }
    if said.contains("certificate has expired or is not yet valid") {
        return "the client certificate is expired or not yet valid; rotate the agent certificate"
            .into();
    }
    if said.contains("client certificate must be supplied") {
        return "no client certificate reached Vault; check client_cert/client_key".into();
    }
    if status == 503 {
        return "unseal Vault, then log in again".into();
    }
    if status == 403 {
        return format!("the login was denied (token_bound_cidrs on {mapping}?)");
    }
    let issuer = cert.map(|c| c.issuer_cn.as_str()).unwrap_or("?");
    let cn = cert.map(|c| c.subject_cn.as_str()).unwrap_or("?");
    format!(
        "expected {mapping} to trust this certificate (issuer {issuer:?}, CN {cn:?}); check the mapping's certificate and allowed_common_names (vault_cert_role), or that the agent certificate comes from the right CA"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VaultLoginSpec {
        VaultLoginSpec {
            mount: "cert".into(),
            role: Some("agent-app-a".into()),
            client_cert: "agent.crt".into(),
            client_key: "agent.key".into(),
            ca_file: None,
            addr: None,
            server_name: None,
        }
    }

    #[test]
    fn rejections_surface_both_message_generations() {
        for said in [
            "failed to match all constraints for this login certificate",
            "invalid certificate or no client certificate supplied; additionally got errors during verification: <nil>",
        ] {
            let e = VaultError::Http {
                method: "POST",
                path: "auth/cert/login".into(),
                status: 400,
                errors: vec![said.into()],
            };
            let a = rejected(&spec(), &e, None, 0, false);
            assert_eq!(a.reason.as_deref(), Some("login_failed"));
            assert!(a.message.contains(said) && a.message.contains("auth/cert/certs/agent-app-a"));
        }
    }

    #[test]
    fn ttl_minimum() {
        assert_eq!(assert_ttl(3600, 1800).status, Status::Pass);
        assert_eq!(
            assert_ttl(600, 1800).reason.as_deref(),
            Some("ttl_too_short")
        );
    }
}
