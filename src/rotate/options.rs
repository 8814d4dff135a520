//! What the plan runner and its dry run share: the run's options, its exit codes, and how
//! an action and the vault profile are prepared for a step.

use super::plan::Action;
use crate::suite::Suite;
use crate::vault::Settings;
use std::path::PathBuf;

/// Exit codes.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// How to run a plan.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config: PathBuf,
    pub from: Option<String>,
    pub only: Option<String>,
    pub dry_run: bool,
    pub state_dir: Option<PathBuf>,
    /// Re-issue every certificate even when the current one is fresh.
    pub force: bool,
}

/// The vault profile, resolved when the first action needs it.
pub fn settings(suite: &Suite) -> Result<Settings, String> {
    Settings::for_suite(suite).map_err(|e| format!("the suite's vault profile: {e}"))
}

/// The action with `force` set on an issue when the run is forced.
pub fn forced(a: &Action, force: bool) -> Action {
    match a {
        Action::Issue(i) if force => {
            let mut i = i.clone();
            i.force = true;
            Action::Issue(i)
        }
        other => other.clone(),
    }
}
