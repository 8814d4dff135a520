//! `vault_db_creds`: reads a dynamic credential (`<mount>/creds/<role>`), logs in to PostgreSQL
//! with the user Vault created and runs the probe query, revokes the lease
//! (`sys/leases/revoke`, always, also when the login failed) and proves the user can no longer
//! log in. The password and the lease id stay in memory and are never printed.
//!
//! Reason tokens: `mount_missing`, `role_missing`, `no_lease` (`creds`), `lease_too_long`
//! (`lease_ttl_max`), the `postgres` kind's `pg_login_failed`, `pg_login_succeeded`,
//! `pg_sqlstate` and connection classes (`login`), `revoke_failed` (`revoke`), `still_valid`,
//! `revocation_unproven` (`revoked`).

pub mod lease;
pub mod target;

use super::{outcome, settle};
use crate::human::ttl;
use crate::kinds::postgres::judge::LoginExpect;
use crate::kinds::{CheckKind, Ctx, Invalid};
use crate::model::{Assertion, Outcome};
use crate::suite::Dur;
use crate::vault::VaultError;
use lease::Lease;
use serde::Deserialize;
use target::Target;
use tokio::time::Instant;

/// `vault_db_creds`: the database mount and dynamic role, and the PostgreSQL server its users
/// log in to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DbCredsSpec {
    #[serde(default = "default_mount")]
    pub mount: String,
    pub role: String,
    /// The PostgreSQL server the issued user logs in to.
    pub postgres: Target,
}

/// The database secrets engine's usual mount.
pub fn default_mount() -> String {
    "database".into()
}

/// What a `vault_db_creds` check may expect.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DbCredsExpect {
    /// The lease runs at most this long.
    pub lease_ttl_max: Option<Dur>,
    /// Whether the issued user logs in (`ok`, the default) or is refused (`failed`,
    /// `{failed: SQLSTATE}`).
    pub login: Option<LoginExpect>,
    /// After the revocation the user can no longer log in (`true`, the default); `false`
    /// skips that proof (the lease is revoked all the same).
    pub revoked: Option<bool>,
}

/// The `vault_db_creds` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultDbCreds;

impl CheckKind for VaultDbCreds {
    const NAME: &'static str = "vault_db_creds";
    const CONNECTS: bool = true;
    type Spec = DbCredsSpec;
    type Expect = DbCredsExpect;

    fn validate(spec: &DbCredsSpec, _expect: &DbCredsExpect) -> Result<(), Invalid> {
        validate_role(Self::NAME, &spec.role)?;
        target::validate(&spec.postgres, ".vault_db_creds.postgres")
    }

    async fn probe(spec: &DbCredsSpec, expect: &DbCredsExpect, ctx: &Ctx) -> Outcome {
        settle(probe(spec, expect, ctx).await)
    }
}

/// A role name is required (`role: NAME`).
pub fn validate_role(kind: &str, role: &str) -> Result<(), Invalid> {
    if role.trim_matches('/').is_empty() {
        return Err(Invalid::new(
            format!(".{kind}.role"),
            "name the database role (role: NAME)",
        ));
    }
    Ok(())
}

async fn probe(
    spec: &DbCredsSpec,
    expect: &DbCredsExpect,
    ctx: &Ctx,
) -> Result<Outcome, VaultError> {
    let deadline = Instant::now() + ctx.timeout;
    let lease = match lease::issue(ctx, &spec.mount, &spec.role, "creds").await? {
        Ok(lease) => lease,
        Err(refused) => return Ok(outcome(vec![refused])),
    };
    let mut a = vec![issued(&lease)];
    if let Some(max) = expect.lease_ttl_max {
        a.push(assert_ttl(&lease, max));
    }
    let t = &spec.postgres;
    let first = target::login(t, &lease.username, &lease.password, ctx, deadline).await;
    a.push(target::assert_login(
        &first,
        t,
        &lease.username,
        &target::want(&expect.login),
    ));
    a.extend(revoke_and_prove(spec, expect, lease, ctx, deadline).await);
    Ok(outcome(a))
}

/// Revokes the lease; then, unless `revoked: false`, logs in again and expects a refusal.
async fn revoke_and_prove(
    spec: &DbCredsSpec,
    expect: &DbCredsExpect,
    mut lease: Lease,
    ctx: &Ctx,
    deadline: Instant,
) -> Vec<Assertion> {
    if let Err(e) = lease.revoke().await {
        return vec![Assertion::fail(
            "revoke",
            "revoke_failed",
            lease.revoke_failed(&e),
        )];
    }
    let (shown, user) = (&lease.shown, &lease.username);
    let done = Assertion::pass(
        "revoke",
        format!("the lease of {shown} ({user}) was revoked (sys/leases/revoke)"),
    );
    if expect.revoked == Some(false) {
        return vec![done];
    }
    let again = target::login(&spec.postgres, user, &lease.password, ctx, deadline).await;
    vec![done, target::assert_refused(&again, &spec.postgres, user)]
}

fn issued(lease: &Lease) -> Assertion {
    Assertion::pass(
        "creds",
        format!(
            "{} issued user {} under a lease of {}",
            lease.shown,
            lease.username,
            ttl(lease.duration)
        ),
    )
}

fn assert_ttl(lease: &Lease, max: Dur) -> Assertion {
    let most = max.0.as_secs();
    if lease.duration <= most {
        return Assertion::pass(
            "lease_ttl_max",
            format!("lease of {} ≤ {}", ttl(lease.duration), ttl(most)),
        );
    }
    let role = lease.shown.replacen("/creds/", "/roles/", 1);
    Assertion::fail(
        "lease_ttl_max",
        "lease_too_long",
        format!(
            "{} issues leases of {}; expected at most {}; lower the role's default_ttl: bao write {role} default_ttl={} (or the mount's default lease TTL)",
            lease.shown,
            ttl(lease.duration),
            ttl(most),
            ttl(most)
        ),
    )
}
