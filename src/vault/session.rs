//! Per-run Vault state: the token that reads mappings, roles and mounts. A token from the
//! profile's cert login is obtained once per run (single-flight across concurrent checks) and
//! revoked by [`Session::close`] when the run ends.

use super::auth::{cert_login, revoke_self};
use super::client::VaultClient;
use super::errors::VaultError;
use super::profile::TokenSource;
use super::token::Token;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Time allowed for each revocation at the end of a run.
const REVOKE_BUDGET: Duration = Duration::from_secs(5);

/// A token obtained by the profile's cert login, to be revoked when the run ends.
struct Held {
    client: VaultClient,
    token: Token,
    /// The token's TTL in seconds, as the login answered.
    ttl: u64,
}

/// A token obtained by cert login that could not be revoked: it stays valid until its TTL
/// ends. The message holds no token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("could not revoke the token obtained by cert login: {source}; it expires in {}; if that is too long, revoke it by its accessor (vault list auth/token/accessors)", ttl_text(*.ttl))]
pub struct RevokeFailed {
    pub source: VaultError,
    /// Seconds the token stays valid.
    pub ttl: u64,
}

fn ttl_text(secs: u64) -> String {
    match secs {
        0 => "its TTL (the login gave none)".into(),
        s => crate::human::ttl(s),
    }
}

/// Tokens obtained during one run. Lives in the run's cache.
#[derive(Default)]
pub struct Session {
    admin: OnceCell<Result<Token, VaultError>>,
    to_revoke: Mutex<Vec<Held>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pending_revocations", &self.pending())
            .finish()
    }
}

impl Session {
    /// The token for reads that need one; `what` names the read in the "no token" message.
    /// `client` must carry the profile's identity (used for a cert login).
    pub async fn token(
        &self,
        client: &VaultClient,
        source: &TokenSource,
        what: &str,
    ) -> Result<Token, VaultError> {
        match source {
            TokenSource::Given { token, .. } => Ok(token.clone()),
            TokenSource::None => Err(VaultError::NoToken { what: what.into() }),
            TokenSource::CertLogin { mount, role } => {
                let login = || self.login(client, mount, role.as_deref());
                self.admin.get_or_init(login).await.clone()
            }
        }
    }

    async fn login(
        &self,
        client: &VaultClient,
        mount: &str,
        role: Option<&str>,
    ) -> Result<Token, VaultError> {
        let login =
            cert_login(client, mount, role)
                .await
                .map_err(|e| VaultError::ProfileLogin {
                    mount: mount.to_string(),
                    source: Box::new(e),
                })?;
        self.lock().push(Held {
            client: client.clone(),
            token: login.token.clone(),
            ttl: login.lease_duration,
        });
        Ok(login.token)
    }

    /// Tokens still to be revoked.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Revokes every token this run obtained; returns the failures (their messages hold no
    /// token), which callers report as warnings. Safe to call more than once.
    pub async fn close(&self) -> Vec<RevokeFailed> {
        let pending: Vec<_> = std::mem::take(&mut *self.lock());
        let mut failed = Vec::new();
        for held in pending {
            let client = held.client.with_budget(REVOKE_BUDGET);
            if let Err(source) = revoke_self(&client, &held.token).await {
                failed.push(RevokeFailed {
                    source,
                    ttl: held.ttl,
                });
            }
        }
        failed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.to_revoke.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Session {
    /// A run that ended without `close` (e.g. an on-demand probe) still revokes its tokens when
    /// a runtime is around to do it.
    fn drop(&mut self) {
        let pending = std::mem::take(&mut *self.lock());
        if pending.is_empty() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for held in pending {
                    let client = held.client.with_budget(REVOKE_BUDGET);
                    let _ = revoke_self(&client, &held.token).await;
                }
            });
        }
    }
}
