//! Vault check kinds (placeholder until the Vault work lands).
use crate::model::Outcome;
use crate::probe::Ctx;
use crate::suite::CheckSpec;

/// Runs a vault_* or version_skew check; None when the check is not of those kinds.
pub async fn probe(_check: &CheckSpec, _ctx: &Ctx) -> Option<Outcome> {
    None
}
