//! `vault_db_static_role`: reads a database static role's current credential
//! (`<mount>/static-creds/<role>`) and judges its rotation — `last_vault_rotation` is younger
//! than the role's `rotation_period` plus `grace` (or the check's `max_age`) — and, when the
//! check names a PostgreSQL target, that the current password logs in. The password is held
//! only in memory and never printed.
//!
//! Reason tokens: `mount_missing`, `role_missing` (`static_role`), `static_not_rotated`,
//! `no_rotation_time`, `no_rotation_period` (`rotation`), and the `postgres` kind's `login`
//! tokens (`pg_login_failed`, `pg_login_succeeded`, `pg_sqlstate`, the connection classes).
//! Series: `rotcheck_secret_last_rotation_timestamp_seconds` (`last_vault_rotation`) and
//! `rotcheck_secret_max_age_seconds` (period + grace, or `max_age`), which drive
//! `RotcheckSecretNotRotated` as for transit keys.

use super::db_creds::target::{self, Target};
use super::transit_key::{secret_series, F_LAST_ROTATION, F_MAX_AGE};
use super::{mount_missing, outcome, prepare, settle};
use crate::human::duration;
use crate::kinds::postgres::judge::LoginExpect;
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::Exposition;
use crate::model::{Assertion, CheckResult, Outcome};
use crate::pg::Password;
use crate::suite::Dur;
use crate::vault::{encode_path, VaultError};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// `vault_db_static_role`: the database mount, the static role, the grace allowed past the
/// rotation period, and optionally the PostgreSQL server its user logs in to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticRoleSpec {
    #[serde(default = "super::db_creds::default_mount")]
    pub mount: String,
    pub role: String,
    /// How long past `rotation_period` the last rotation may be (Vault rotates on a ticker).
    #[serde(default = "default_grace")]
    pub grace: Dur,
    /// The PostgreSQL server the current password must log in to.
    pub postgres: Option<Target>,
}

fn default_grace() -> Dur {
    Dur(Duration::from_secs(300))
}

/// What a `vault_db_static_role` check may expect.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct StaticRoleExpect {
    /// The last rotation is at most this old (default: the role's period plus `grace`).
    pub max_age: Option<Dur>,
    /// Whether the current password logs in (`ok`, the default with a target) or is refused
    /// (`failed`, `{failed: SQLSTATE}`).
    pub login: Option<LoginExpect>,
}

/// The `vault_db_static_role` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultDbStaticRole;

impl CheckKind for VaultDbStaticRole {
    const NAME: &'static str = "vault_db_static_role";
    const CONNECTS: bool = true;
    // The secret-rotation families are listed once, by `vault_transit_key`.
    type Spec = StaticRoleSpec;
    type Expect = StaticRoleExpect;

    fn validate(spec: &StaticRoleSpec, expect: &StaticRoleExpect) -> Result<(), Invalid> {
        super::db_creds::validate_role(Self::NAME, &spec.role)?;
        match &spec.postgres {
            Some(t) => target::validate(t, ".vault_db_static_role.postgres"),
            None if expect.login.is_some() => Err(Invalid::new(
                ".expect.login",
                "login needs the PostgreSQL server: add postgres: {addr, server_name, ca_file} under vault_db_static_role",
            )),
            None => Ok(()),
        }
    }

    async fn probe(spec: &StaticRoleSpec, expect: &StaticRoleExpect, ctx: &Ctx) -> Outcome {
        settle(probe(spec, expect, ctx).await)
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        secret_series(e, base, r);
    }
}

/// What `static-creds/<role>` says of the rotation (the password apart).
#[derive(Debug, Clone, PartialEq, Default)]
struct Rotation {
    username: String,
    /// Unix time of `last_vault_rotation`.
    last: Option<i64>,
    /// `rotation_period` in seconds (0: none, e.g. a `rotation_schedule` role).
    period: u64,
    /// `ttl`: seconds until the next rotation, as Vault counts it.
    ttl: i64,
}

impl Rotation {
    fn from(d: &Value) -> Rotation {
        let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
        Rotation {
            username: text("username").to_string(),
            last: crate::cli::at::instant(text("last_vault_rotation"))
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok()),
            period: d
                .get("rotation_period")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            ttl: d.get("ttl").and_then(Value::as_i64).unwrap_or(0),
        }
    }
}

async fn probe(
    spec: &StaticRoleSpec,
    expect: &StaticRoleExpect,
    ctx: &Ctx,
) -> Result<Outcome, VaultError> {
    let deadline = Instant::now() + ctx.timeout;
    let m = spec.mount.trim_matches('/');
    let r = spec.role.trim_matches('/');
    let shown = format!("{m}/static-creds/{r}");
    let p = prepare(ctx)?;
    let token = p.token(ctx, &format!("reading {shown}")).await?;
    let path = format!("{}/static-creds/{}", encode_path(m), encode_path(r));
    let reply = p.client.get(&path, Some(&token)).await?;
    if reply.status == 404 || reply.status == 400 {
        let e = reply.to_error();
        if let Some(a) = missing(&e, m, r, &shown) {
            return Ok(outcome(vec![a]));
        }
        return Err(e);
    }
    let body = reply.clone().into_ok()?;
    let Some(data) = body.get("data").filter(|d| d.is_object()) else {
        return Err(reply.bad("expected a `data` object in the static credential"));
    };
    let rot = Rotation::from(data);
    let password = data
        .get("password")
        .and_then(Value::as_str)
        .and_then(Password::new);
    let max = max_age(&rot, spec, expect);
    let mut a = vec![describe(&rot, &shown, ctx.now_unix())];
    a.push(assert_rotated(&rot, &shown, max, ctx.now_unix()));
    if let Some(t) = &spec.postgres {
        let want = target::want(&expect.login);
        a.push(login(t, &rot, password, &want, ctx, deadline).await);
    }
    let mut out = outcome(a);
    if let Some(t) = rot.last {
        out.facts
            .extra
            .insert(F_LAST_ROTATION.into(), t.to_string());
    }
    if let Some(m) = max {
        out.facts
            .extra
            .insert(F_MAX_AGE.into(), m.as_secs().to_string());
    }
    Ok(out)
}

async fn login(
    t: &Target,
    rot: &Rotation,
    password: Option<Password>,
    want: &LoginExpect,
    ctx: &Ctx,
    deadline: Instant,
) -> Assertion {
    let Some(password) = password else {
        return Assertion::fail(
            "login",
            "pg_login_failed",
            format!("the static credential of {} carries no password; expected one to log in with; check the role's credential_type (password)", rot.username),
        );
    };
    let done = target::login(t, &rot.username, &password, ctx, deadline).await;
    target::assert_login(&done, t, &rot.username, want)
}

/// 404 (no mount) or 400 "unknown role".
fn missing(e: &VaultError, m: &str, r: &str, shown: &str) -> Option<Assertion> {
    if mount_missing(e) {
        return Some(Assertion::fail(
            "static_role",
            "mount_missing",
            format!("no secrets engine is mounted at {m}/; expected a database secrets engine; enable it: bao secrets enable -path={m} database"),
        ));
    }
    if e.errors().iter().any(|s| s.contains("unknown role")) || e.status() == Some(404) {
        return Some(Assertion::fail(
            "static_role",
            "role_missing",
            format!("{shown}: the database engine has no static role {r}; expected one; create it (bao write {m}/static-roles/{r} db_name=... username=... rotation_period=...) or fix the check's role"),
        ));
    }
    None
}

/// The check's `max_age`, else the role's period plus grace; None when neither is known.
fn max_age(rot: &Rotation, spec: &StaticRoleSpec, expect: &StaticRoleExpect) -> Option<Duration> {
    if let Some(m) = expect.max_age {
        return Some(m.0);
    }
    (rot.period > 0).then(|| Duration::from_secs(rot.period) + spec.grace.0)
}

fn describe(rot: &Rotation, shown: &str, now: i64) -> Assertion {
    let last = match rot.last {
        Some(t) => format!("last rotated {} ago", ago(now - t)),
        None => "no last rotation recorded".into(),
    };
    let period = match rot.period {
        0 => "no rotation_period".into(),
        p => format!("rotation_period {}", duration(Duration::from_secs(p))),
    };
    Assertion::pass(
        "static_role",
        format!(
            "{shown}: user {}, {last}, {period}, next rotation in {}",
            rot.username,
            ago(rot.ttl)
        ),
    )
}

fn ago(secs: i64) -> String {
    duration(Duration::from_secs(secs.max(0) as u64))
}

fn assert_rotated(rot: &Rotation, shown: &str, max: Option<Duration>, now: i64) -> Assertion {
    let rotate = format!(
        "bao write -f {}",
        shown.replacen("/static-creds/", "/rotate-role/", 1)
    );
    let Some(last) = rot.last else {
        return Assertion::fail(
            "rotation",
            "no_rotation_time",
            format!("{shown} records no last_vault_rotation; expected the time of its last rotation; rotate it once: {rotate}"),
        );
    };
    let Some(max) = max else {
        return Assertion::fail(
            "rotation",
            "no_rotation_period",
            format!("{shown} has no rotation_period (a rotation_schedule role?); expected one to judge its age; set expect.max_age"),
        );
    };
    let age = now - last;
    if age <= max.as_secs() as i64 {
        return Assertion::pass(
            "rotation",
            format!(
                "{shown} was rotated {} ago, within {}",
                ago(age),
                duration(max)
            ),
        );
    }
    Assertion::fail(
        "rotation",
        "static_not_rotated",
        format!(
            "{shown} was last rotated {} ago; expected at most {} (the rotation period plus grace); Vault did not rotate it: look at its log for the database's error, then rotate it: {rotate}",
            ago(age),
            duration(max)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> StaticRoleSpec {
        StaticRoleSpec {
            mount: "database".into(),
            role: "app".into(),
            grace: default_grace(),
            postgres: None,
        }
    }

    #[test]
    fn rotation_facts_parse_and_bad_ones_give_defaults() {
        let r = Rotation::from(&json!({"username": "app", "last_vault_rotation":
            "1970-01-01T00:01:00.5Z", "rotation_period": 3600, "ttl": 3500, "password": "x"}));
        assert_eq!((r.last, r.period, r.ttl), (Some(60), 3600, 3500));
        let r = Rotation::from(&json!({"last_vault_rotation": 5, "rotation_period": "1h"}));
        assert_eq!(r, Rotation::default());
    }

    #[test]
    fn age_is_judged_against_period_plus_grace_or_max_age() {
        let r = Rotation {
            username: "app".into(),
            last: Some(1000),
            period: 3600,
            ttl: 0,
        };
        let max = max_age(&r, &spec(), &StaticRoleExpect::default());
        assert_eq!(max, Some(Duration::from_secs(3900)));
        let shown = "database/static-creds/app";
        assert!(assert_rotated(&r, shown, max, 1000 + 3900).reason.is_none());
        let late = assert_rotated(&r, shown, max, 1000 + 3901);
        assert_eq!(late.reason.as_deref(), Some("static_not_rotated"));
        assert!(
            late.message
                .contains("bao write -f database/rotate-role/app"),
            "{}",
            late.message
        );
        let none = Rotation {
            period: 0,
            ..r.clone()
        };
        let a = assert_rotated(
            &none,
            shown,
            max_age(&none, &spec(), &Default::default()),
            0,
        );
        assert_eq!(a.reason.as_deref(), Some("no_rotation_period"));
        let e = StaticRoleExpect {
            max_age: Some(Dur(Duration::from_secs(60))),
            login: None,
        };
        assert_eq!(max_age(&none, &spec(), &e), Some(Duration::from_secs(60)));
        let never = Rotation { last: None, ..r };
        let a = assert_rotated(&never, shown, max, 0);
        assert_eq!(a.reason.as_deref(), Some("no_rotation_time"));
    }
}
