//! The `postgres` kind's judgement after the handshake: `login`, `probe`,
//! `connections_by_user` and `max_connections_by_user` (see the kind's module doc).

use super::{PostgresExpect, PostgresSpec, ALLOWED_FACT, COUNT_FACT};
use crate::kinds::Ctx;
use crate::model::{Assertion, Outcome, ProbeError, Status};
use crate::pg::{Connected, Credential, PgError, Session};
use serde::Deserialize;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// `login: ok`, `login: failed` or `login: {failed: SQLSTATE}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "LoginRepr")]
pub struct LoginExpect {
    /// The login must succeed (else it must be refused).
    pub ok: bool,
    /// The SQLSTATE a refusal must carry.
    pub sqlstate: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LoginRepr {
    Word(String),
    Map(BTreeMap<String, serde_yaml_ng::Value>),
}

/// A SQLSTATE as written: YAML reads `28000` as a number (`08006` too, as 8006: the
/// length check then asks for quotes).
fn sqlstate_text(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl TryFrom<LoginRepr> for LoginExpect {
    type Error = String;

    fn try_from(r: LoginRepr) -> Result<Self, String> {
        let bad = |found: String| {
            format!("expected ok, failed or {{failed: SQLSTATE}} (e.g. {{failed: 28P01}}); found {found}")
        };
        match r {
            LoginRepr::Word(w) if w == "ok" => Ok(LoginExpect {
                ok: true,
                sqlstate: None,
            }),
            LoginRepr::Word(w) if w == "failed" => Ok(LoginExpect {
                ok: false,
                sqlstate: None,
            }),
            LoginRepr::Word(w) => Err(bad(format!("{w:?}"))),
            LoginRepr::Map(m) => {
                let code = m.get("failed").filter(|_| m.len() == 1);
                let code = code.map(|v| sqlstate_text(v).unwrap_or_default());
                let code = code.ok_or_else(|| {
                    bad(format!(
                        "a map with keys {:?}",
                        m.keys().collect::<Vec<_>>()
                    ))
                })?;
                if code.len() != 5 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!(
                        "bad SQLSTATE {code:?}; write five characters in quotes, e.g. '28P01' or '08006'"
                    ));
                }
                Ok(LoginExpect {
                    ok: false,
                    sqlstate: Some(code.to_ascii_uppercase()),
                })
            }
        }
    }
}

/// Logs in (when the credential could be read) and adds `login`, `probe` and the
/// connection assertions.
pub async fn after_handshake(
    spec: &PostgresSpec,
    expect: &PostgresExpect,
    cred: Result<Credential, ProbeError>,
    connected: Connected,
    ctx: &Ctx,
    deadline: Instant,
    out: &mut Outcome,
) {
    let cred = match cred {
        Ok(c) => c,
        Err(e) => {
            let a = Assertion::not_ok("login", Status::Error, &e.class, &e.message);
            out.assertions.push(a);
            out.error = Some(e);
            return;
        }
    };
    let want = expect.login.clone().unwrap_or(LoginExpect {
        ok: true,
        sqlstate: None,
    });
    let login = connected
        .login(&spec.database, &cred, deadline, ctx.timeout)
        .await;
    if let Err(e) = &login {
        if let Some(code) = e.sqlstate() {
            out.facts.extra.insert("pg_sqlstate".into(), code.into());
        }
    }
    let session = match (want.ok, login) {
        (true, Ok(s)) => s,
        (true, Err(e)) => return login_failed(spec, &e, out),
        (false, Ok(_)) => return out.assertions.push(unexpected_login(spec)),
        (false, Err(e)) => return refused_as_expected(spec, &want, &e, out),
    };
    probe(&session, spec, deadline, out).await;
    if expect.connections_by_user.is_some() || expect.max_connections_by_user.is_some() {
        connections(&session, expect, deadline, out).await;
    }
}

fn who(spec: &PostgresSpec) -> String {
    format!(
        "{} to database {} at {}",
        spec.user, spec.database, spec.addr
    )
}

/// What to do about a refusal, by SQLSTATE.
fn hint(code: Option<&str>) -> &'static str {
    match code {
        Some("28P01") => "the password does not match the role's: check the credential source (rotated in the database but not in the source, or the reverse?)",
        Some("28000") => "the role does not exist or pg_hba.conf refuses this host, user or database: create the role or fix pg_hba.conf",
        Some("3D000") => "the database does not exist: check postgres.database",
        Some("53300") => "the server has no free connection slots: raise max_connections or close idle sessions",
        Some("57P03") => "the server is starting up or shutting down: retry",
        _ => "see the server log",
    }
}

fn login_failed(spec: &PostgresSpec, e: &PgError, out: &mut Outcome) {
    let (reason, msg) = match e.sqlstate() {
        Some(code) => (
            "pg_login_failed",
            format!(
                "expected to log in as {}; refused: {e}; {}",
                who(spec),
                hint(Some(code))
            ),
        ),
        None => (
            e.reason(),
            format!("expected to log in as {}; {e}", who(spec)),
        ),
    };
    out.error = Some(match e.class() {
        Some(class) => ProbeError::connect(class, msg.clone()),
        None => ProbeError::local(reason, msg.clone()),
    });
    out.assertions.push(Assertion::fail("login", reason, msg));
}

fn unexpected_login(spec: &PostgresSpec) -> Assertion {
    let msg = format!("expected the login as {} to be refused; it was accepted: the credential still works; revoke it (or drop the role) before passing this gate", who(spec));
    Assertion::fail("login", "pg_login_succeeded", msg)
}

fn refused_as_expected(spec: &PostgresSpec, want: &LoginExpect, e: &PgError, out: &mut Outcome) {
    let Some(code) = e.sqlstate() else {
        return login_failed(spec, e, out);
    };
    let a = match &want.sqlstate {
        Some(w) if w != code => Assertion::fail(
            "login",
            "pg_sqlstate",
            format!("expected the login as {} to be refused with SQLSTATE {w}; refused with {code} instead: {e}", who(spec)),
        ),
        _ => Assertion::pass("login", format!("the login as {} was refused (SQLSTATE {code}), as expected", who(spec))),
    };
    out.assertions.push(a);
}

async fn probe(session: &Session, spec: &PostgresSpec, deadline: Instant, out: &mut Outcome) {
    let login = format!("logged in as {}", who(spec));
    out.assertions.push(Assertion::pass("login", login));
    let a = match session.probe(deadline).await {
        Ok(p) => {
            out.facts
                .extra
                .insert("pg_server_version".into(), p.server_version.clone());
            out.facts.extra.insert("pg_user".into(), p.user.clone());
            let ro = if p.read_only { "read-only " } else { "" };
            Assertion::pass(
                "probe",
                format!(
                    "the {ro}probe query ran as {} on PostgreSQL {}",
                    p.user, p.server_version
                ),
            )
        }
        Err(e) => query_failed("probe", "the probe query", &e, out),
    };
    out.assertions.push(a);
}

fn query_failed(name: &str, what: &str, e: &PgError, out: &mut Outcome) -> Assertion {
    let msg = format!("expected {what} to run; {e}");
    if let Some(class) = e.class() {
        out.error = Some(ProbeError::connect(class, msg.clone()));
        return Assertion::fail(name, class.as_str(), msg);
    }
    Assertion::not_ok(name, Status::Error, "pg_query_failed", msg)
}

async fn connections(
    session: &Session,
    expect: &PostgresExpect,
    deadline: Instant,
    out: &mut Outcome,
) {
    let counts = match session.connections_by_user(deadline).await {
        Ok(c) => c,
        Err(e) => {
            let name = match expect.connections_by_user.is_some() {
                true => "connections_by_user",
                false => "max_connections_by_user",
            };
            let a = query_failed(name, "reading pg_stat_activity", &e, out);
            return out.assertions.push(a);
        }
    };
    if let Some(want) = &expect.connections_by_user {
        for (user, max) in want {
            let n = counts.get(user).copied().unwrap_or(0);
            out.facts
                .extra
                .insert(format!("{COUNT_FACT}{user}"), n.to_string());
            out.facts
                .extra
                .insert(format!("{ALLOWED_FACT}{user}"), max.to_string());
        }
        out.assertions.push(drained(want, &counts));
    }
    if let Some(cap) = expect.max_connections_by_user {
        out.assertions.push(capped(cap, &counts));
    }
}

/// `connections_by_user`: every named role at or under its number.
pub fn drained(want: &BTreeMap<String, u64>, counts: &BTreeMap<String, u64>) -> Assertion {
    let over: Vec<String> = want
        .iter()
        .filter_map(|(user, max)| {
            let n = counts.get(user).copied().unwrap_or(0);
            (n > *max).then(|| format!("{user} has {n} (at most {max} expected)"))
        })
        .collect();
    let name = "connections_by_user";
    if over.is_empty() {
        let each: Vec<String> = want
            .keys()
            .map(|u| format!("{u}: {}", counts.get(u).copied().unwrap_or(0)))
            .collect();
        return Assertion::pass(name, format!("client connections {}", each.join(", ")));
    }
    let roles: Vec<String> = want
        .iter()
        .filter(|(user, max)| counts.get(*user).copied().unwrap_or(0) > **max)
        .map(|(user, _)| format!("'{}'", user.replace('\'', "''")))
        .collect();
    let msg = format!(
        "expected the roles' connections to have drained; {}: applications still use the old credential; move them to the new one before revoking it (SELECT client_addr, application_name FROM pg_stat_activity WHERE usename IN ({}) names them)",
        over.join(", "),
        roles.join(", ")
    );
    Assertion::fail(name, "pg_connections_not_drained", msg)
}

/// `max_connections_by_user`: no role over the cap.
pub fn capped(cap: u64, counts: &BTreeMap<String, u64>) -> Assertion {
    let name = "max_connections_by_user";
    let over: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > cap)
        .map(|(u, n)| format!("{u} has {n}"))
        .collect();
    if over.is_empty() {
        let most = counts.values().max().copied().unwrap_or(0);
        return Assertion::pass(
            name,
            format!("no role has more than {cap} client connections (most: {most})"),
        );
    }
    let msg = format!("expected at most {cap} client connections per role; {}; find the leak (a pool without a limit?) or raise the cap", over.join(", "));
    Assertion::fail(name, "pg_too_many_connections", msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(yaml: &str) -> Result<LoginExpect, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn login_expectations_parse() {
        assert!(login("ok").unwrap().ok);
        assert!(!login("failed").unwrap().ok);
        assert_eq!(
            login("{failed: 28p01}").unwrap().sqlstate.as_deref(),
            Some("28P01")
        );
        assert!(login("maybe").unwrap_err().contains("expected ok, failed"));
        assert_eq!(
            login("{failed: 28000}").unwrap().sqlstate.as_deref(),
            Some("28000")
        );
        assert!(login("{failed: 28}")
            .unwrap_err()
            .contains("five characters"));
        assert!(login("{ok: x}")
            .unwrap_err()
            .contains("expected ok, failed"));
    }

    #[test]
    fn drain_and_cap_judgements() {
        let counts: BTreeMap<String, u64> =
            [("app_v1".to_string(), 2), ("app_v2".to_string(), 5)].into();
        let want: BTreeMap<String, u64> = [("app_v1".to_string(), 0)].into();
        let a = drained(&want, &counts);
        assert_eq!(a.reason.as_deref(), Some("pg_connections_not_drained"));
        assert!(a.message.contains("app_v1 has 2"), "{}", a.message);
        assert!(a.message.contains("usename IN ('app_v1')"), "{}", a.message);
        let gone: BTreeMap<String, u64> = [("app_v3".to_string(), 0)].into();
        assert_eq!(drained(&gone, &counts).status, Status::Pass);
        assert_eq!(capped(5, &counts).status, Status::Pass);
        let a = capped(4, &counts);
        assert_eq!(a.reason.as_deref(), Some("pg_too_many_connections"));
        assert!(a.message.contains("app_v2 has 5"));
    }
}
