//! Where a `postgres` check's password comes from: a file (a regular file, size-capped,
//! not readable by every user), an environment variable, or a field of a Vault KV secret read
//! with the suite's Vault profile, or a dynamic credential of Vault's database secrets engine
//! (`vault_creds`: issued for the probe and revoked after it). The value becomes a
//! [`Password`] at once and is never printed; errors name the source, never the value.

use crate::kinds::vault::{read_data, Read};
use crate::kinds::Ctx;
use crate::model::ProbeError;
use crate::pg::{Credential, Password};
use serde::Deserialize;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;

/// Most bytes read from a password file.
const PASSWORD_CAP: u64 = 64 * 1024;

/// `password_vault`: a KV secret's field.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultPassword {
    /// The API path: `secret/data/app/db` for KV v2 (`<mount>/data/<path>`), or a KV v1 path.
    pub path: String,
    /// The field holding the password.
    #[serde(default = "password_field")]
    pub field: String,
}

fn password_field() -> String {
    "password".into()
}

/// `vault_creds`: a role of Vault's database secrets engine (`<mount>/creds/<role>`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultCreds {
    #[serde(default = "crate::kinds::vault::db_creds::default_mount")]
    pub mount: String,
    pub role: String,
}

/// One credential source, as the spec selects it.
#[derive(Debug, Clone, PartialEq)]
pub enum Source<'a> {
    File(&'a str),
    Env(&'a str),
    VaultKv(&'a VaultPassword),
    VaultCreds(&'a VaultCreds),
}

impl Source<'_> {
    /// The spec key of the source, for messages.
    pub fn key(&self) -> &'static str {
        match self {
            Source::File(_) => "password_file",
            Source::Env(_) => "password_env",
            Source::VaultKv(_) => "password_vault",
            Source::VaultCreds(_) => "vault_creds",
        }
    }
}

/// The role's credential from its source; the error's class is the reason token.
pub async fn resolve(user: &str, source: &Source<'_>, ctx: &Ctx) -> Result<Credential, ProbeError> {
    let password = match source {
        Source::File(p) => from_file(&ctx.path(p))?,
        Source::Env(name) => from_env(name)?,
        Source::VaultKv(v) => from_vault(v, ctx).await?,
        Source::VaultCreds(_) => {
            let msg = "vault_creds is issued with its lease (postgres::probe), not resolved alone";
            return Err(ProbeError::local("config", msg));
        }
    };
    Ok(Credential {
        user: user.to_string(),
        password,
    })
}

fn from_file(path: &std::path::Path) -> Result<Password, ProbeError> {
    let shown = path.display();
    let (file, meta) = crate::fsread::open_regular(path)
        .map_err(|e| ProbeError::local(e.class(), format!("password_file {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o004 != 0 {
        return Err(ProbeError::local(
            "insecure_mode",
            format!("password_file {shown} is readable by every user (mode {mode:04o}); expected 0600 or 0640; chmod 0600 it"),
        ));
    }
    if meta.len() > PASSWORD_CAP {
        let msg = format!("password_file {shown} is {} bytes; expected a password (at most {PASSWORD_CAP} bytes); is it the right file?", meta.len());
        return Err(ProbeError::local("too_large", msg));
    }
    let mut text = String::new();
    file.take(PASSWORD_CAP)
        .read_to_string(&mut text)
        .map_err(|e| {
            let msg = format!(
                "password_file {shown}: cannot read it as UTF-8 text ({})",
                e.kind()
            );
            ProbeError::local("read_failed", msg)
        })?;
    Password::new(&text).ok_or_else(|| {
        let msg =
            format!("password_file {shown} is empty; expected the role's password; write it there");
        ProbeError::local("empty", msg)
    })
}

fn from_env(name: &str) -> Result<Password, ProbeError> {
    let value = std::env::var(name).unwrap_or_default();
    Password::new(&value).ok_or_else(|| {
        let msg = format!("password_env {name} is not set or empty in rotcheck's environment; expected the role's password there; export it (or use password_file)");
        ProbeError::local("credential_missing", msg)
    })
}

async fn from_vault(v: &VaultPassword, ctx: &Ctx) -> Result<Password, ProbeError> {
    let path = v.path.trim_matches('/');
    let read = read_data(ctx, path, "KV secret").await.map_err(|e| {
        let msg = format!("password_vault: cannot read {path}: {e}");
        ProbeError::local(&e.class(), msg)
    })?;
    let data = match read {
        Read::Found(d) => d,
        Read::Missing(e) => {
            let msg = format!("password_vault: {path} does not exist ({e}); expected the KV secret holding the password (KV v2 paths read <mount>/data/<path>)");
            return Err(ProbeError::local("credential_missing", msg));
        }
    };
    // KV v2 nests the secret under data.data; KV v1 has it under data.
    let fields = data.get("data").filter(|d| d.is_object()).unwrap_or(&data);
    let value = fields.get(&v.field).and_then(serde_json::Value::as_str);
    value.and_then(Password::new).ok_or_else(|| {
        let msg = format!(
            "password_vault: {path} has no non-empty string field {:?}; expected the password there; set `field` to the field that holds it",
            v.field
        );
        ProbeError::local("credential_missing", msg)
    })
}

/// Probes with a credential issued for this run at `vault_creds`, then revokes its lease:
/// the `revoke` assertion fails with `revoke_failed` when Vault refuses (the user then stays
/// valid until the lease ends). A role Vault cannot issue from fails `login`.
pub async fn leased(
    spec: &super::PostgresSpec,
    expect: &super::PostgresExpect,
    v: &VaultCreds,
    ctx: &Ctx,
    deadline: tokio::time::Instant,
) -> crate::model::Outcome {
    use crate::kinds::vault::{db_creds::lease, failure};
    let mut lease = match lease::issue(ctx, &v.mount, &v.role, "login").await {
        Ok(Ok(l)) => l,
        Ok(Err(refused)) => return crate::kinds::vault::outcome(vec![refused]),
        Err(e) => return failure(&e),
    };
    let cred = Credential {
        user: lease.username.clone(),
        password: lease.password.clone(),
    };
    let spec = super::PostgresSpec {
        user: lease.username.clone(),
        ..spec.clone()
    };
    let mut out = super::probe_as(&spec, expect, Ok(cred), ctx, deadline).await;
    out.assertions.push(match lease.revoke().await {
        Ok(()) => crate::model::Assertion::pass(
            "revoke",
            format!(
                "the lease of {} ({}) was revoked (sys/leases/revoke)",
                lease.shown, lease.username
            ),
        ),
        Err(e) => crate::model::Assertion::fail("revoke", "revoke_failed", lease.revoke_failed(&e)),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_password_file_must_be_a_private_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(b"s3cret-password\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(from_file(&p).unwrap().expose(), "s3cret-password");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = from_file(&p).unwrap_err();
        assert_eq!(e.class, "insecure_mode");
        assert!(!e.message.contains("s3cret"), "{}", e.message);
        assert_eq!(from_file(dir.path()).unwrap_err().class, "not_regular_file");
        let missing = dir.path().join("nope");
        assert_eq!(from_file(&missing).unwrap_err().class, "not_found");
        let empty = dir.path().join("empty");
        std::fs::File::create(&empty).unwrap();
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(from_file(&empty).unwrap_err().class, "empty");
    }

    #[test]
    fn a_missing_variable_names_itself() {
        let e = from_env("ROTCHECK_TEST_SURELY_UNSET_PW").unwrap_err();
        assert_eq!(e.class, "credential_missing");
        assert!(e.message.contains("ROTCHECK_TEST_SURELY_UNSET_PW"));
    }
}
