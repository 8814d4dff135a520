//! Runs one rotate action with a fresh Vault client from the suite's profile (so files rotated
//! by earlier actions — CA chain, admin client cert — are re-read), revoking any login token
//! afterwards.

use super::ctx::{Ctx, Done, Out, RotateError, VaultIo};
use super::plan::Action;
use super::safefs;
use crate::vault::Settings;
use std::time::SystemTime;

/// Runs an action; `settings` is the resolved vault profile.
pub async fn run(
    action: &Action,
    settings: &Settings,
    dry_run: bool,
    out: &mut Out,
) -> Result<Done, RotateError> {
    let _locks = if dry_run {
        vec![]
    } else {
        lock_set(action, out)?
    };
    let mut recovered = false;
    if let (Action::Issue(spec), false) = (action, dry_run) {
        for f in super::issue::recover(spec)? {
            out.line(format!("finished an interrupted write: {}", f.display()));
            recovered = true;
        }
    }
    let vault = VaultIo::new(settings)?;
    let result = {
        let mut cx = Ctx {
            vault: &vault,
            dry_run,
            now: SystemTime::now(),
            out,
        };
        dispatch(action, &mut cx).await
    };
    for e in vault.close().await {
        out.line(format!("warning: {e}"));
    }
    result.map(|mut done| {
        done.changed |= recovered;
        done
    })
}

/// How long a write waits for another rotcheck run writing into the same directory.
pub const SET_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Locks the directories of the files an issue or trust writes, so two runs on one file set
/// (a plan step and a standalone `rotate issue`, or two of those) take turns: the second
/// waits, then finds the first one's certificate fresh.
fn lock_set(action: &Action, out: &mut Out) -> Result<Vec<safefs::DirLock>, RotateError> {
    let files = match action {
        Action::Issue(s) => super::issue::targets(s),
        Action::Trust(s) => vec![s.out.as_path()],
        _ => return Ok(vec![]),
    };
    let mut say = |d: &std::path::Path| {
        out.line(format!(
            "waiting for another rotcheck run writing into {}",
            d.display()
        ))
    };
    safefs::lock_dirs(&files, SET_LOCK_WAIT, &mut say).map_err(|e| RotateError::File(e.into()))
}

async fn dispatch(action: &Action, cx: &mut Ctx<'_>) -> Result<Done, RotateError> {
    match action {
        Action::Issue(s) => super::issue::run(s, cx).await,
        Action::CertRole(s) => super::cert_role::run(s, cx).await,
        Action::PkiRole(s) => super::pki_role::run(s, cx).await,
        Action::Trust(s) => super::trust::run(s, cx).await,
    }
}

/// One line naming the action, for step output.
pub fn title(action: &Action) -> String {
    match action {
        Action::Issue(s) => format!(
            "issue {}/{} cn={} → {}",
            s.mount,
            s.role,
            s.cn,
            s.cert.display()
        ),
        Action::CertRole(s) => format!("cert-role auth/{}/certs/{}", s.mount, s.name),
        Action::PkiRole(s) => format!("pki-role {}/roles/{}", s.mount, s.name),
        Action::Trust(s) => format!("trust {}/ca_chain → {}", s.mount, s.out.display()),
    }
}
