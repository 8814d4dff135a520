//! `rotate plan --dry-run`: what each step would do — Vault reads happen, nothing is written,
//! no reload runs, no state or audit record is made.

use super::actions;
use super::ctx::Out;
use super::options::{forced, settings, Options, EXIT_FAILED, EXIT_OK};
use super::plan::Plan;
use super::state::{Paths, PlanState, StepStatus};
use crate::suite::Suite;
use std::sync::Arc;

/// Prints the plan's effects; exit 1 when an action could not be evaluated.
pub async fn run(suite: &Arc<Suite>, plan: &Plan, opts: &Options, out: &mut Out) -> u8 {
    let paths = Paths::in_dir(&plan.state_dir);
    describe_state(&paths, out);
    let mut failures = 0;
    let n = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        if !selected(opts, plan, i) {
            continue;
        }
        out.line(format!("[{}/{n}] {} (dry run)", i + 1, step.name));
        out.indent = 2;
        if let Some(tf) = &step.trust_first {
            out.line(format!(
                "[dry-run] would refuse unless every bundle contains the issuing CA: {}",
                tf.bundles.join(", ")
            ));
        }
        failures += step_actions(suite, step, opts.force, out).await;
        describe_revocations(plan, step, out);
        for r in &step.reload {
            out.line(format!(
                "[dry-run] would reload ({:?}): {}",
                step.reload_when,
                super::reload::describe(r)
            ));
        }
        let checks = suite
            .file
            .checks
            .iter()
            .filter(|c| c.stage_name() == step.gate)
            .count();
        out.line(format!(
            "[dry-run] would gate on stage {} ({checks} check(s)), waiting up to {}",
            step.gate,
            crate::human::duration(step.wait)
        ));
        out.indent = 0;
    }
    out.line(format!(
        "dry run: nothing was written; state would be kept in {}, audit in {}",
        paths.state.display(),
        plan.audit_log.display()
    ));
    if failures > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// The revocations a step's issue actions would owe.
fn describe_revocations(plan: &Plan, step: &super::plan::Step, out: &mut Out) {
    for a in &step.actions {
        let (super::plan::Action::Issue(i), Some(w)) = (a, plan.revoke_window(a)) else {
            continue;
        };
        out.line(format!(
            "[dry-run] would revoke the certificate {} replaces once a check of stage {} serves the new one and {} passed",
            i.cert.display(),
            step.gate,
            crate::human::duration(w)
        ));
    }
}

fn selected(opts: &Options, plan: &Plan, i: usize) -> bool {
    match (&opts.only, &opts.from) {
        (Some(o), _) => plan.index_of(o) == Some(i),
        (None, Some(f)) => plan.index_of(f).is_some_and(|k| i >= k),
        _ => true,
    }
}

fn describe_state(paths: &Paths, out: &mut Out) {
    match PlanState::load(&paths.state) {
        Ok(Some(s)) => {
            let next = s
                .steps
                .iter()
                .find(|st| st.status != StepStatus::Done)
                .map(|st| st.name.as_str())
                .unwrap_or("(none)");
            out.line(format!(
                "state: run {} is {}; a real run would {}",
                s.run_id,
                s.status.as_str(),
                if s.status == super::state::RunStatus::Completed {
                    "start a new run".to_string()
                } else {
                    format!("resume at {next}")
                }
            ));
            let owed = s.owed_revocations();
            if owed > 0 {
                out.line(format!(
                    "state: {owed} superseded certificate(s) still owe a revocation; a real run settles them"
                ));
            }
        }
        Ok(None) => out.line("state: no previous run"),
        Err(e) => out.line(format!("state: {e}")),
    }
}

async fn step_actions(
    suite: &Suite,
    step: &super::plan::Step,
    force: bool,
    out: &mut Out,
) -> usize {
    if step.actions.is_empty() {
        return 0;
    }
    let settings = match settings(suite) {
        Ok(s) => s,
        Err(e) => {
            out.error(format!("error: {e}"));
            return 1;
        }
    };
    let mut failures = 0;
    for a in &step.actions {
        let a = &forced(a, force);
        out.line(actions::title(a));
        out.indent = 4;
        if let Err(e) = actions::run(a, &settings, true, out).await {
            out.error(format!("error: {e}"));
            failures += 1;
        }
        out.indent = 2;
    }
    failures
}
