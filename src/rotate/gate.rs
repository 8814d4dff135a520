//! Gating for the plan: a step's stage through the engine (with `--wait` semantics), and the
//! trust-first gate built from synthetic `files` checks (bundle contains the issuing CA).
//! Rotate never judges health itself; it reads the engine's report.

use super::state::GateSummary;
use crate::engine::{self, RunOptions, Selection};
use crate::model::{Report, Status};
use crate::suite::{CheckSpec, Suite};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Runs the checks of `stage`, re-running failing ones until they pass or `wait` ends.
pub async fn stage(
    suite: &Arc<Suite>,
    stage: &str,
    wait: Duration,
    interval: Duration,
) -> Result<Report, String> {
    let sel = Selection {
        stages: vec![stage.to_string()],
        ..Default::default()
    };
    let checks = sel.select(suite).map_err(|e| e.to_string())?;
    Ok(engine::run_with_wait(suite, &checks, &RunOptions::default(), wait, interval).await)
}

/// True when the gate lets the plan go on (warnings allowed).
pub fn passed(r: &Report) -> bool {
    r.status <= Status::Warn
}

/// The report in a few words for state and audit.
pub fn summary(stage: &str, r: &Report) -> GateSummary {
    let failing: Vec<String> = r
        .checks
        .iter()
        .filter(|c| c.status > Status::Warn)
        .map(|c| {
            let why = c
                .assertions
                .iter()
                .find(|a| a.status > Status::Warn)
                .map(|a| format!("{}: {}", a.name, a.message))
                .or_else(|| {
                    c.error
                        .as_ref()
                        .map(|e| format!("{}: {}", e.class, e.message))
                })
                .unwrap_or_else(|| c.status.as_str().to_string());
            format!("{}: {why}", c.name)
        })
        .collect();
    GateSummary {
        stage: stage.to_string(),
        status: r.status.as_str().to_string(),
        passed: r.checks.iter().filter(|c| c.status <= Status::Warn).count(),
        failed: failing.len(),
        failing,
    }
}

/// The human report of a gate, for printing under the step.
pub fn render(r: &Report) -> String {
    crate::report::human::render(r, false)
}

/// Checks that every bundle contains the certificate(s) of `ca_file`, through the engine's
/// `files` probe, waiting up to `wait` for the bundles to catch up.
pub async fn bundles_contain(
    suite: &Arc<Suite>,
    bundles: &[String],
    ca_file: &Path,
    wait: Duration,
) -> Result<Report, String> {
    let mut s = (**suite).clone();
    s.file.checks = bundles
        .iter()
        .enumerate()
        .map(|(i, b)| contains_check(i, b, ca_file))
        .collect::<Result<_, _>>()?;
    let s = Arc::new(s);
    let checks: Vec<&CheckSpec> = s.file.checks.iter().collect();
    Ok(engine::run_with_wait(
        &s,
        &checks,
        &RunOptions::default(),
        wait,
        Duration::from_secs(2),
    )
    .await)
}

fn contains_check(i: usize, bundle: &str, ca_file: &Path) -> Result<CheckSpec, String> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let yaml = format!(
        "name: trust-first-{i}\nstage: trust-first\nfiles:\n  - {{path: {}, kind: bundle, contains: {}}}\n",
        q(bundle),
        q(&ca_file.display().to_string())
    );
    serde_yaml_ng::from_str(&yaml)
        .map_err(|e| format!("internal: cannot build the trust-first check: {e}"))
}
