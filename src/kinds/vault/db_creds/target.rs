//! The PostgreSQL server a Vault database credential logs in to (`postgres: {addr,
//! server_name, database, ca_file, client_cert, client_key}`: the `postgres` kind's
//! connection settings), the login with the probe query through [`crate::pg`], and its
//! judgement with the `postgres` kind's vocabulary (`login: ok|failed|{failed: SQLSTATE}`;
//! reasons `pg_login_failed`, `pg_login_succeeded`, `pg_sqlstate`, the connection classes).

use crate::kinds::postgres::judge::LoginExpect;
use crate::kinds::tls::{self, client, TlsSpec};
use crate::kinds::{Ctx, Invalid};
use crate::model::{Assertion, Status};
use crate::pg::{self, Credential, Password, PgError, Probe};
use crate::suite::split_host_port;
use serde::Deserialize;
use tokio::time::Instant;

/// Where the credential logs in.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `host:port`.
    pub addr: String,
    /// SNI sent and the name verified; defaults to the host part of `addr`.
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    /// The database to log in to.
    #[serde(default = "postgres")]
    pub database: String,
}

fn postgres() -> String {
    "postgres".into()
}

/// Why a login was not tried (the TLS settings) or did not succeed.
#[derive(Debug)]
pub enum LoginError {
    /// The connection could not be set up: a CA or client identity file, a bad address.
    Setup { class: String, message: String },
    /// Connecting, the handshake, the login or the probe query failed.
    Pg(PgError),
}

/// `login: ok` unless the check says otherwise.
pub fn want(login: &Option<LoginExpect>) -> LoginExpect {
    login.clone().unwrap_or(LoginExpect {
        ok: true,
        sqlstate: None,
    })
}

/// Load-time rules of the target, `key` being where it is written (`.vault_db_creds.postgres`).
pub fn validate(t: &Target, key: &str) -> Result<(), Invalid> {
    if split_host_port(&t.addr).is_none() {
        let msg = format!(
            "bad address {:?}; write host:port, e.g. 127.0.0.1:5432 or [::1]:5432",
            t.addr
        );
        return Err(Invalid::new(format!("{key}.addr"), msg));
    }
    if t.client_cert.is_some() != t.client_key.is_some() {
        let msg = "client_cert and client_key go together; set both or neither";
        return Err(Invalid::new(key, msg));
    }
    if t.database.is_empty() {
        return Err(Invalid::new(
            format!("{key}.database"),
            "name the database to log in to",
        ));
    }
    Ok(())
}

fn tls_spec(t: &Target) -> TlsSpec {
    TlsSpec {
        addr: t.addr.clone(),
        server_name: t.server_name.clone(),
        ca_file: t.ca_file.clone(),
        client_cert: t.client_cert.clone(),
        client_key: t.client_key.clone(),
        alpn: vec![],
        crl_file: None,
        resolve: Default::default(),
    }
}

/// Connects over TLS (verified as the `tls` kind verifies), logs in as `user`, runs the probe
/// query and closes the session, before `deadline` (the check's, shared by all its steps).
pub async fn login(
    t: &Target,
    user: &str,
    password: &Password,
    ctx: &Ctx,
    deadline: Instant,
) -> Result<Probe, LoginError> {
    let setup = |class: &str, message: String| LoginError::Setup {
        class: class.into(),
        message,
    };
    let target =
        client::Target::parse(&t.addr, t.server_name.as_deref()).map_err(|m| setup("config", m))?;
    let template = tls::cached_config(&tls_spec(t), ctx).map_err(|e| setup(&e.class, e.message))?;
    let cred = Credential {
        user: user.to_string(),
        password: password.clone(),
    };
    let session = pg::login(
        &target,
        &template,
        &t.database,
        &cred,
        deadline,
        ctx.timeout,
    )
    .await
    .map_err(LoginError::Pg)?;
    session.probe(deadline).await.map_err(LoginError::Pg)
}

fn who(t: &Target, user: &str) -> String {
    format!("{user} to database {} at {}", t.database, t.addr)
}

/// What to do about a refusal, by SQLSTATE.
fn hint(code: &str) -> &'static str {
    match code {
        "28P01" => "the password Vault holds is not the role's: was it changed in the database behind Vault's back? rotate it in Vault",
        "28000" => "the role does not exist, may not log in, or pg_hba.conf refuses it: check the role's creation statements and pg_hba.conf",
        "3D000" => "the database does not exist: check postgres.database",
        "53300" => "the server has no free connection slots: raise max_connections or close idle sessions",
        _ => "see the server log",
    }
}

/// The `login` assertion.
pub fn assert_login(
    r: &Result<Probe, LoginError>,
    t: &Target,
    user: &str,
    want: &LoginExpect,
) -> Assertion {
    let who = who(t, user);
    match (r, want.ok) {
        (Ok(p), true) => Assertion::pass(
            "login",
            format!("logged in as {who} and ran the probe query (current_user {}, server {})", p.user, p.server_version),
        ),
        (Ok(_), false) => Assertion::fail(
            "login",
            "pg_login_succeeded",
            format!("expected the login as {who} to be refused; it was accepted; fix the role's creation statements or the expectation"),
        ),
        (Err(LoginError::Setup { class, message }), _) => {
            Assertion::not_ok("login", Status::Error, class, message.clone())
        }
        (Err(LoginError::Pg(e)), _) => match (e.sqlstate(), want.ok, &want.sqlstate) {
            (Some(code), false, Some(w)) if w != code => Assertion::fail(
                "login",
                "pg_sqlstate",
                format!("expected the login as {who} to be refused with SQLSTATE {w}; refused with {code} instead: {e}"),
            ),
            (Some(code), false, _) => Assertion::pass(
                "login",
                format!("the login as {who} was refused (SQLSTATE {code}), as expected"),
            ),
            (Some(code), true, _) => Assertion::fail(
                "login",
                "pg_login_failed",
                format!("expected to log in as {who}; refused with SQLSTATE {code}: {e}; {}", hint(code)),
            ),
            (None, _, _) => Assertion::fail(
                "login",
                e.reason(),
                format!("expected to {} as {who}; {e}", if want.ok { "log in" } else { "be refused" }),
            ),
        },
    }
}

/// The `revoked` assertion: after the revocation the login must be refused (`28P01` or
/// `28000`: the password no longer matches, or the role is gone).
pub fn assert_refused(r: &Result<Probe, LoginError>, t: &Target, user: &str) -> Assertion {
    let who = who(t, user);
    match r {
        Err(LoginError::Pg(e)) if matches!(e.sqlstate(), Some("28P01" | "28000")) => Assertion::pass(
            "revoked",
            format!("after the revocation the login as {who} is refused (SQLSTATE {})", e.sqlstate().unwrap_or("")),
        ),
        Ok(_) => Assertion::fail(
            "revoked",
            "still_valid",
            format!("the lease was revoked yet {who} still logs in; expected the user dropped or its password invalidated; fix the role's revocation_statements (default: drop the role)"),
        ),
        Err(LoginError::Setup { message, .. }) => Assertion::fail(
            "revoked",
            "revocation_unproven",
            format!("could not try the login as {who} after the revocation: {message}"),
        ),
        Err(LoginError::Pg(e)) => Assertion::fail(
            "revoked",
            "revocation_unproven",
            format!("after the revocation the login as {who} failed, but not as a refused login (SQLSTATE 28P01 or 28000): {e}; expected a refusal to prove the user is gone"),
        ),
    }
}
