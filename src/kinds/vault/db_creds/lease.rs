//! A dynamic database credential read from `<mount>/creds/<role>`: the user, the password and
//! the lease, and its revocation (`sys/leases/revoke`). The password is a [`Password`] and the
//! lease id a [`Token`]: they never print, and redaction removes them from any text while they live.
//! A lease dropped before it was revoked (a cancelled check) is revoked on a task of its own.

use crate::kinds::vault::{mount_missing, prepare};
use crate::kinds::Ctx;
use crate::model::Assertion;
use crate::pg::Password;
use crate::vault::{encode_path, Token, VaultClient, VaultError};
use serde_json::{json, Value};
use std::time::Duration;

/// Time allowed for a revocation, apart from the check's budget (it must happen even when the
/// probe used it all).
const REVOKE_BUDGET: Duration = Duration::from_secs(5);

/// A credential Vault issued under a lease, to be revoked by [`Lease::revoke`].
pub struct Lease {
    /// The database user Vault created.
    pub username: String,
    /// Its password.
    pub password: Password,
    /// Seconds the lease runs (`lease_duration`).
    pub duration: u64,
    /// `<mount>/creds/<role>`, for messages.
    pub shown: String,
    held: Option<Held>,
}

/// What a revocation needs: the lease id, and the client and token that read it.
struct Held {
    lease_id: Token,
    client: VaultClient,
    token: Token,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("username", &self.username)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

/// `<mount>/creds/<role>` as written in messages, and as a request path.
fn paths(mount: &str, role: &str) -> (String, String) {
    let (m, r) = (mount.trim_matches('/'), role.trim_matches('/'));
    let shown = format!("{m}/creds/{r}");
    (
        shown,
        format!("{}/creds/{}", encode_path(m), encode_path(r)),
    )
}

/// Reads a new credential. `Ok(Err(a))`: Vault refused in a way the check reports as the
/// failing assertion `a` (named `name`): no such mount, no such role, no lease.
pub async fn issue(
    ctx: &Ctx,
    mount: &str,
    role: &str,
    name: &str,
) -> Result<Result<Lease, Assertion>, VaultError> {
    let (shown, path) = paths(mount, role);
    let p = prepare(ctx)?;
    let token = p.token(ctx, &format!("reading {shown}")).await?;
    let reply = p.client.get(&path, Some(&token)).await?;
    if let Some(a) = refused(&reply.to_error(), reply.status, mount, role, &shown, name) {
        return Ok(Err(a));
    }
    let body = reply.clone().into_ok()?;
    let lease_id = body.get("lease_id").and_then(Value::as_str).unwrap_or("");
    let held = Token::new(lease_id).map(|lease_id| Held {
        lease_id,
        client: p.client.clone(),
        token,
    });
    let data = body.get("data");
    let field = |k: &str| data.and_then(|d| d.get(k)).and_then(Value::as_str);
    let (Some(user), Some(password)) =
        (field("username"), field("password").and_then(Password::new))
    else {
        if let Some(h) = held {
            let _ = h.revoke().await;
        }
        return Err(reply.bad(
            "expected data.username and data.password in the credential (its lease was revoked)",
        ));
    };
    let lease = Lease {
        username: user.to_string(),
        password,
        duration: body
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        shown: shown.clone(),
        held,
    };
    if lease.held.is_none() {
        return Ok(Err(no_lease(&shown, name)));
    }
    Ok(Ok(lease))
}

/// The assertion for a read Vault refused with a status the check can explain.
fn refused(
    e: &VaultError,
    status: u16,
    mount: &str,
    role: &str,
    shown: &str,
    name: &str,
) -> Option<Assertion> {
    let m = mount.trim_matches('/');
    if status == 404 && mount_missing(e) {
        return Some(Assertion::fail(
            name,
            "mount_missing",
            format!("no secrets engine is mounted at {m}/; expected a database secrets engine; enable it: bao secrets enable -path={m} database"),
        ));
    }
    let unknown = e.errors().iter().any(|s| s.contains("unknown role"));
    if (status == 400 && unknown) || status == 404 {
        return Some(Assertion::fail(
            name,
            "role_missing",
            format!("{shown}: the database engine has no role {role}; expected one; create it (bao write {m}/roles/{role} db_name=... creation_statements=...) or fix the check's role"),
        ));
    }
    None
}

fn no_lease(shown: &str, name: &str) -> Assertion {
    Assertion::fail(
        name,
        "no_lease",
        format!("{shown} answered a credential without a lease_id; expected a dynamic credential under a lease; point the check at a dynamic role (static roles: vault_db_static_role)"),
    )
}

impl Lease {
    /// Revokes the lease (`sys/leases/revoke`, synchronously: the user is dropped when it
    /// answers), on a task of its own so that a cancelled check still revokes.
    pub async fn revoke(&mut self) -> Result<(), VaultError> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let task = tokio::spawn(async move { held.revoke().await });
        task.await.unwrap_or_else(|e| {
            Err(VaultError::Setup(format!(
                "the revocation task failed: {e}"
            )))
        })
    }

    /// What to run when [`Lease::revoke`] failed: the lease stays valid until its TTL.
    pub fn revoke_failed(&self, e: &VaultError) -> String {
        format!(
            "the lease of {} ({}) could not be revoked ({e}); the user stays valid until the lease ends in {}; revoke it: bao lease revoke -prefix {}",
            self.shown,
            self.username,
            crate::human::ttl(self.duration),
            self.shown
        )
    }
}

impl Held {
    async fn revoke(self) -> Result<(), VaultError> {
        let client = self.client.with_budget(REVOKE_BUDGET);
        let body = json!({ "lease_id": self.lease_id.expose() });
        let reply = client
            .post("sys/leases/revoke", &body, Some(&self.token))
            .await?;
        reply.into_ok().map(drop)
    }
}

impl Drop for Lease {
    /// A lease not revoked by [`Lease::revoke`] (the check was cancelled) is revoked when a
    /// runtime is around to do it.
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = held.revoke().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, said: &str) -> VaultError {
        VaultError::Http {
            method: "GET",
            path: "x".into(),
            status,
            errors: vec![said.into()],
        }
    }

    #[test]
    fn refusals_are_classified() {
        let no_route = http(
            404,
            "no handler for route \"db/creds/app\". route entry not found.",
        );
        let a = refused(&no_route, 404, "db", "app", "db/creds/app", "creds").unwrap();
        assert_eq!(a.reason.as_deref(), Some("mount_missing"));
        let unknown = http(400, "unknown role: app");
        let a = refused(&unknown, 400, "db/", "app", "db/creds/app", "creds").unwrap();
        assert_eq!(a.reason.as_deref(), Some("role_missing"));
        assert!(
            a.message.contains("bao write db/roles/app"),
            "{}",
            a.message
        );
        assert!(refused(
            &http(500, "connection refused"),
            500,
            "db",
            "a",
            "db/creds/a",
            "c"
        )
        .is_none());
        assert!(refused(
            &http(403, "permission denied"),
            403,
            "db",
            "a",
            "db/creds/a",
            "c"
        )
        .is_none());
    }

    #[test]
    fn paths_are_trimmed_and_encoded() {
        assert_eq!(
            paths("/database/", "app ro"),
            (
                "database/creds/app ro".into(),
                "database/creds/app%20ro".into()
            )
        );
    }
}
