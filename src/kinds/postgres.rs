//! The `postgres` probe: connect to a PostgreSQL listener, upgrade it with an SSLRequest and
//! handshake through the `tls` kind's client ([`crate::pg`]), log in with a credential from a
//! file, an environment variable, a Vault KV secret or a Vault database lease (`vault_creds`,
//! revoked after the probe), run a fixed read-only probe query, and read `pg_stat_activity`:
//! the drain gate of a dual-credential rotation ("revoke `app_v1` only when its connections
//! are 0").
//!
//! Every `tls` expectation applies to the database listener exactly as for `tls`
//! ([`super::tls::judge`]): `handshake` (implicit), `chain`, `server_name`, `names`,
//! `expiry`, `issuer_cn`, `issuer_dn`, `min_tls`, `serves_file`, `not_revoked`,
//! `rotated_after`. Then, in order, once the handshake succeeded:
//! - `login` (implicit `ok`): `ok` fails with reason `pg_login_failed` and PostgreSQL's
//!   SQLSTATE (`28P01` wrong password, `28000` no such role or refused by pg_hba.conf,
//!   `3D000` no such database, `53300` too many connections) in the message and in the fact
//!   `pg_sqlstate`; a connection that breaks during the login fails with its class.
//!   `failed` (or `{failed: SQLSTATE}`) expects the login to be refused (a revoked
//!   credential): reason `pg_login_succeeded` when it was accepted, `pg_sqlstate` when it was
//!   refused with another code. A credential that cannot be read is an error with the
//!   source's reason (`not_found`, `permission_denied`, `insecure_mode`, `empty`,
//!   `credential_missing`, a Vault error class).
//! - `probe` (implicit after a login): `SELECT current_user, server_version` on the
//!   read-only session; reason `pg_query_failed`.
//! - `connections_by_user: {app_v1: 0}`: each named role has at most that many client
//!   connections (our own left out); reason `pg_connections_not_drained`.
//! - `max_connections_by_user: N`: no role has more than N; reason `pg_too_many_connections`.
//!
//! A listener with TLS off fails `handshake` with reason `pg_refused_tls`; one that answers
//! the SSLRequest with anything but `S`/`N` fails with `protocol`; a silent one with
//! `timeout`. No password is ever printed: it is a [`crate::pg::Password`].

pub mod credential;
pub mod judge;

use crate::expect::chain::want::ChainExpect;
use crate::expect::revocation::NotRevoked;
use crate::expect::rotated::RotatedAfter;
use crate::kinds::tls::{self, client, TlsExpect, TlsSpec};
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::{family, Def, Exposition};
use crate::metrics::with;
use crate::model::{Assertion, CheckResult, Outcome, ProbeError};
use crate::pg::{self, PgError};
use crate::suite::{split_host_port, ExpiryThresholds, TlsVersion};
use credential::{Source, VaultCreds, VaultPassword};
use judge::LoginExpect;
use serde::Deserialize;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// A PostgreSQL listener to log in to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// `host:port`.
    pub addr: String,
    /// SNI sent and the name verified; defaults to the host part of `addr`.
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    /// CRLs for `expect.not_revoked`, as for `tls`.
    pub crl_file: Option<String>,
    /// The database to log in to.
    #[serde(default = "postgres")]
    pub database: String,
    /// The role to log in as (none with `vault_creds`: Vault issues the user).
    #[serde(default)]
    pub user: String,
    /// A file holding the password (its first line).
    pub password_file: Option<String>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// A Vault KV secret's field holding the password.
    pub password_vault: Option<VaultPassword>,
    /// A dynamic credential of Vault's database secrets engine, revoked after the probe.
    pub vault_creds: Option<VaultCreds>,
}

fn postgres() -> String {
    "postgres".into()
}

impl PostgresSpec {
    /// The `tls` spec of the connection.
    pub fn tls(&self) -> TlsSpec {
        TlsSpec {
            addr: self.addr.clone(),
            server_name: self.server_name.clone(),
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            alpn: vec![],
            crl_file: self.crl_file.clone(),
            resolve: Default::default(),
        }
    }

    /// The credential sources that are set.
    pub fn sources(&self) -> Vec<Source<'_>> {
        let file = self.password_file.as_deref().map(Source::File);
        let env = self.password_env.as_deref().map(Source::Env);
        let vault = self.password_vault.as_ref().map(Source::VaultKv);
        let leased = self.vault_creds.as_ref().map(Source::VaultCreds);
        [file, env, vault, leased].into_iter().flatten().collect()
    }
}

/// What a `postgres` check may expect: the login, the drain gate, and the `tls` expectations.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PostgresExpect {
    pub login: Option<LoginExpect>,
    pub connections_by_user: Option<BTreeMap<String, u64>>,
    pub max_connections_by_user: Option<u64>,
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

tls::tls_expect_of!(PostgresExpect);

family!(
    PG_CONNECTIONS,
    "rotcheck_postgres_connections",
    Gauge,
    "Client connections of a role named in the check's connections_by_user, from pg_stat_activity (the check's own left out)."
);
family!(
    PG_CONNECTIONS_ALLOWED,
    "rotcheck_postgres_connections_allowed",
    Gauge,
    "The most connections the check's connections_by_user allows the role (0: drained before its credential is revoked)."
);

/// The fact prefix of a role's connection count (`pg_connections:app_v1`).
const COUNT_FACT: &str = "pg_connections:";
/// The fact prefix of a role's allowed count.
const ALLOWED_FACT: &str = "pg_connections_allowed:";

/// The `postgres` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postgres;

impl CheckKind for Postgres {
    const NAME: &'static str = "postgres";
    const CONNECTS: bool = true;
    type Spec = PostgresSpec;
    type Expect = PostgresExpect;
    const FAMILIES: &'static [&'static Def] = &[&PG_CONNECTIONS, &PG_CONNECTIONS_ALLOWED];

    fn validate(spec: &PostgresSpec, expect: &PostgresExpect) -> Result<(), Invalid> {
        validate_spec(spec)?;
        validate_expect(spec, expect)
    }

    async fn probe(spec: &PostgresSpec, expect: &PostgresExpect, ctx: &Ctx) -> Outcome {
        probe(spec, expect, ctx).await
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        <tls::Tls as CheckKind>::series(e, base, r);
        let facts = &r.facts.extra;
        for (prefix, def) in [
            (COUNT_FACT, &PG_CONNECTIONS),
            (ALLOWED_FACT, &PG_CONNECTIONS_ALLOWED),
        ] {
            for (key, value) in facts.range(prefix.to_string()..) {
                let Some(user) = key.strip_prefix(prefix) else {
                    break;
                };
                if let Ok(v) = value.parse::<f64>() {
                    e.sample(def, &with(base, &[("user", user)]), v);
                }
            }
        }
    }
}

fn validate_spec(spec: &PostgresSpec) -> Result<(), Invalid> {
    if split_host_port(&spec.addr).is_none() {
        let msg = format!(
            "bad address {:?}; write host:port, e.g. 127.0.0.1:5432 or [::1]:5432",
            spec.addr
        );
        return Err(Invalid::new(".postgres.addr", msg));
    }
    if spec.client_cert.is_some() != spec.client_key.is_some() {
        let msg = "client_cert and client_key go together; set both or neither";
        return Err(Invalid::new(".postgres", msg));
    }
    if spec.vault_creds.is_some() && !spec.user.is_empty() {
        let msg = "vault_creds issues the user; remove user (or use another credential source)";
        return Err(Invalid::new(".postgres.user", msg));
    }
    if (spec.user.is_empty() && spec.vault_creds.is_none()) || spec.database.is_empty() {
        let msg = "user and database must not be empty; write the role and database to log in to";
        return Err(Invalid::new(".postgres", msg));
    }
    match spec.sources().len() {
        1 => Ok(()),
        0 => Err(Invalid::new(
            ".postgres",
            "no credential source; set one of password_file, password_env, password_vault or vault_creds",
        )),
        _ => {
            let keys: Vec<&str> = spec.sources().iter().map(Source::key).collect();
            let msg = format!(
                "{} are all set; set exactly one credential source",
                keys.join(", ")
            );
            Err(Invalid::new(".postgres", msg))
        }
    }
}

fn validate_expect(spec: &PostgresSpec, expect: &PostgresExpect) -> Result<(), Invalid> {
    if matches!(expect.chain, Some(c) if c.valid) && spec.ca_file.is_none() {
        let msg =
            "chain: valid needs postgres.ca_file (the CA chain clients trust); add it to the check";
        return Err(Invalid::new(".expect.chain", msg));
    }
    let refused = expect.login.as_ref().is_some_and(|l| !l.ok);
    let drains = expect.connections_by_user.is_some() || expect.max_connections_by_user.is_some();
    if refused && drains {
        let msg = "connections are read after a login, but login: failed expects none; check the connections in a separate check that logs in";
        return Err(Invalid::new(".expect.login", msg));
    }
    Ok(())
}

/// Connects, logs in and evaluates the expectations.
pub async fn probe(spec: &PostgresSpec, expect: &PostgresExpect, ctx: &Ctx) -> Outcome {
    let deadline = Instant::now() + ctx.timeout;
    let source = spec.sources().into_iter().next();
    if let Some(Source::VaultCreds(v)) = source {
        return credential::leased(spec, expect, v, ctx, deadline).await;
    }
    let cred = credential_by(spec, source, ctx, deadline).await;
    probe_as(spec, expect, cred, ctx, deadline).await
}

/// [`probe`] with the credential at hand.
pub async fn probe_as(
    spec: &PostgresSpec,
    expect: &PostgresExpect,
    cred: Result<pg::Credential, ProbeError>,
    ctx: &Ctx,
    deadline: Instant,
) -> Outcome {
    let tls_spec = spec.tls();
    let target = match client::Target::parse(&spec.addr, spec.server_name.as_deref()) {
        Ok(t) => t,
        Err(msg) => return tls::not_probed("config", msg),
    };
    let template = match tls::cached_config(&tls_spec, ctx) {
        Ok(c) => c,
        Err(e) => return tls::not_probed(&e.class, e.message),
    };
    let connected = pg::connect(&target, &template, deadline, ctx.timeout).await;
    let tls_expect = expect.tls();
    let connected = match connected {
        Ok(c) => c,
        Err(e) => return not_connected(&tls_spec, &tls_expect, ctx, &target, e, deadline).await,
    };
    let session = connected.tls().clone();
    let (presented, stapled) = (session.chain.clone(), session.stapled.clone());
    let mut out = tls::judge(&tls_spec, &tls_expect, ctx, &target, Ok(session));
    judge::after_handshake(spec, expect, cred, connected, ctx, deadline, &mut out).await;
    let (s, w) = (&tls_spec, &tls_expect);
    tls::revocation(s, w, ctx, &presented, &stapled, deadline, &mut out).await;
    out
}

/// The credential from its source, within the check's deadline.
async fn credential_by(
    spec: &PostgresSpec,
    source: Option<Source<'_>>,
    ctx: &Ctx,
    deadline: Instant,
) -> Result<pg::Credential, ProbeError> {
    let Some(source) = source else {
        let msg = "no credential source; set one of password_file, password_env or password_vault";
        return Err(ProbeError::local("config", msg));
    };
    let resolving = credential::resolve(&spec.user, &source, ctx);
    tokio::time::timeout_at(deadline, resolving)
        .await
        .unwrap_or_else(|_| {
            let msg = format!(
                "reading the password from {} did not finish within {}; is Vault reachable?",
                source.key(),
                crate::human::duration(ctx.timeout)
            );
            Err(ProbeError::local("timeout", msg))
        })
}

/// No TLS session: the handshake assertion says why (the `tls` kind's judgement when the
/// connection or the handshake failed, with whatever chain was presented).
async fn not_connected(
    spec: &TlsSpec,
    expect: &TlsExpect,
    ctx: &Ctx,
    target: &client::Target,
    e: PgError,
    deadline: Instant,
) -> Outcome {
    let failed = match e {
        PgError::Tls(f) => *f,
        PgError::Connect(failure) | PgError::Broken(failure) => client::Failed {
            failure,
            chain: vec![],
            stapled: vec![],
        },
        other => return refused_upgrade(&other),
    };
    let (presented, stapled) = (failed.chain.clone(), failed.stapled.clone());
    let mut out = tls::judge(spec, expect, ctx, target, Err(failed));
    tls::revocation(spec, expect, ctx, &presented, &stapled, deadline, &mut out).await;
    out
}

/// The listener answered the SSLRequest with `N`, with something else, or not at all.
fn refused_upgrade(e: &PgError) -> Outcome {
    let reason = e.reason();
    let error = match e.class() {
        Some(class) => ProbeError::connect(class, e.to_string()),
        None => ProbeError::local(reason, e.to_string()),
    };
    Outcome {
        error: Some(error),
        assertions: vec![Assertion::fail("handshake", reason, e.to_string())],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expect: &str) -> Result<(), Invalid> {
        let spec: PostgresSpec = serde_yaml_ng::from_str(spec).unwrap();
        let expect: PostgresExpect = serde_yaml_ng::from_str(expect).unwrap();
        Postgres::validate(&spec, &expect)
    }

    fn key(spec: &str, expect: &str) -> String {
        check(spec, expect).unwrap_err().key
    }

    const OK: &str = "{addr: 'db:5432', user: app, password_env: PW}";

    #[test]
    fn exactly_one_credential_source() {
        assert_eq!(check(OK, "{}"), Ok(()));
        let none = "{addr: 'db:5432', user: app}";
        assert_eq!(key(none, "{}"), ".postgres");
        let two = "{addr: 'db:5432', user: app, password_env: PW, password_file: f}";
        let e = check(two, "{}").unwrap_err();
        assert!(
            e.message.contains("password_file, password_env"),
            "{}",
            e.message
        );
        let vault = "{addr: 'db:5432', user: app, password_vault: {path: secret/data/db}}";
        assert_eq!(check(vault, "{}"), Ok(()));
    }

    #[test]
    fn settings_are_checked_at_load_time() {
        assert_eq!(
            key("{addr: db, user: app, password_env: PW}", "{}"),
            ".postgres.addr"
        );
        let half = "{addr: 'db:5432', user: app, password_env: PW, client_cert: c.pem}";
        assert_eq!(key(half, "{}"), ".postgres");
        assert_eq!(key(OK, "{chain: valid}"), ".expect.chain");
        let both = "{login: failed, connections_by_user: {app_v1: 0}}";
        assert_eq!(key(OK, both), ".expect.login");
    }

    #[test]
    fn the_tls_part_of_the_expectations_is_the_tls_kinds() {
        let e: PostgresExpect =
            serde_yaml_ng::from_str("{chain: partial, issuer_cn: x, login: ok}").unwrap();
        let t = e.tls();
        assert_eq!(t.chain.map(|c| c.partial), Some(true));
        assert_eq!(t.issuer_cn.as_deref(), Some("x"));
        let s: PostgresSpec = serde_yaml_ng::from_str(OK).unwrap();
        assert_eq!(s.database, "postgres");
        assert_eq!(s.tls().addr, "db:5432");
    }
}
