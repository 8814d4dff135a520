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

/// Tokens obtained during one run. Lives in the run's cache.
#[derive(Default)]
pub struct Session {
    admin: OnceCell<Result<Token, VaultError>>,
    to_revoke: Mutex<Vec<(VaultClient, Token)>>,
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
        self.lock().push((client.clone(), login.token.clone()));
        Ok(login.token)
    }

    /// Tokens still to be revoked.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Revokes every token this run obtained; returns the failures (their messages hold no
    /// token). Safe to call more than once.
    pub async fn close(&self) -> Vec<VaultError> {
        let pending: Vec<_> = std::mem::take(&mut *self.lock());
        let mut failed = Vec::new();
        for (client, token) in pending {
            if let Err(e) = revoke_self(&client.with_budget(REVOKE_BUDGET), &token).await {
                failed.push(e);
            }
        }
        failed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(VaultClient, Token)>> {
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
                for (client, token) in pending {
                    let _ = revoke_self(&client.with_budget(REVOKE_BUDGET), &token).await;
                }
            });
        }
    }
}
