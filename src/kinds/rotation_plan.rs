//! `rotation_plan` checks: the state file of a `rotcheck rotate plan` run (the suite's own
//! `plan:`, or another suite's through `state_dir`), judged and exported, so `serve` shows
//! each step's state and how long it has been in it, and `gate` can refuse to go on while a
//! rotation is stuck or failed.
//!
//! Assertions, in order:
//! - `state` (implicit): the state file read and parsed. No file is "no run yet" and passes.
//!   Reasons: the bounded reader's classes (`permission_denied`, `not_regular_file`,
//!   `too_large`, `not_text`, `read_failed`: error) and `state_malformed` (fail: not the JSON
//!   the plan runner writes).
//! - `stuck` (implicit): no step `running` or `applied` for longer than `stuck_after`
//!   (default 30m, the seeds' threshold). Reason `rotation_stuck`.
//! - `result` (implicit): the run's status against `result` (`not_failed`, the default;
//!   `completed`; `any`). Reasons `rotation_failed`, `rotation_incomplete`.
//! - `max_age` (when set): the last run finished (or, unfinished, started) at most that long
//!   ago. Reason `rotation_overdue`, also when no run is recorded.

use crate::fsread::{self, ReadError};
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::{family, Def, Exposition};
use crate::metrics::{flag, with};
use crate::model::{Assertion, CheckResult, Outcome, ProbeError, Status};
use crate::rotate::state::{RunStatus, StepStatus};
use crate::suite::Dur;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Which plan to watch: the suite's own (`{}`), or the one whose state lives in `state_dir`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// The folder holding `state.json` (relative to the suite's folder).
    pub state_dir: Option<String>,
}

/// What the run's status may be.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResultWant {
    /// Anything but `failed` (a run in progress passes).
    #[default]
    NotFailed,
    /// The last run completed every step.
    Completed,
    /// Not judged.
    Any,
}

/// What a `rotation_plan` check may expect.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PlanExpect {
    /// A step running or applied for longer is stuck (default 30m).
    pub stuck_after: Option<Dur>,
    pub result: Option<ResultWant>,
    /// The last run is at most this old.
    pub max_age: Option<Dur>,
}

/// The seeds' threshold: a step in progress for 30 minutes is stuck.
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(30 * 60);

/// Steps exported at most (the plans of the seeds have seven).
pub const MAX_STEPS: usize = 64;
/// Longest step name accepted as a label value.
pub const MAX_STEP_NAME: usize = 128;

/// Every run status as exported, `none` for no run yet.
const PLAN_STATES: [&str; 4] = ["none", "running", "failed", "completed"];
const STEP_STATES: [StepStatus; 5] = [
    StepStatus::Pending,
    StepStatus::Running,
    StepStatus::Applied,
    StepStatus::Done,
    StepStatus::Failed,
];

family!(PLAN_STATUS, "rotcheck_plan_status", Gauge,
    "1 for the rotation plan's current run status (none, running, failed, completed), 0 for the others (rotation_plan checks); absent when the state file could not be read.");
family!(
    STEP_STATUS,
    "rotcheck_plan_step_status",
    Gauge,
    "1 for the plan step's current state (pending, running, applied, done, failed), 0 for the others."
);
family!(STEP_SINCE, "rotcheck_plan_step_since_timestamp_seconds", Gauge,
    "Unix time the plan step entered its state: its start while running or applied, its end once done or failed; absent while pending.");
family!(
    LAST_TRANSITION,
    "rotcheck_plan_last_transition_timestamp_seconds",
    Gauge,
    "Unix time of the plan run's last recorded transition (the state file's updated_at)."
);
family!(STUCK_AFTER, "rotcheck_plan_stuck_after_seconds", Gauge,
    "The check's stuck_after: a step running or applied for longer is stuck (RotcheckRotationStuck compares with it).");

/// The `rotation_plan` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPlan;

impl CheckKind for RotationPlan {
    const NAME: &'static str = "rotation_plan";
    type Spec = PlanSpec;
    type Expect = PlanExpect;
    const FAMILIES: &'static [&'static Def] = &[
        &PLAN_STATUS,
        &STEP_STATUS,
        &STEP_SINCE,
        &LAST_TRANSITION,
        &STUCK_AFTER,
    ];

    fn validate(_spec: &PlanSpec, expect: &PlanExpect) -> Result<(), Invalid> {
        if expect.stuck_after.is_some_and(|d| d.0.is_zero()) {
            let msg = "stuck_after must be longer than 0s (e.g. 30m): every step in progress would be stuck";
            return Err(Invalid::new(".expect.stuck_after", msg));
        }
        Ok(())
    }

    async fn probe(spec: &PlanSpec, expect: &PlanExpect, ctx: &Ctx) -> Outcome {
        probe(spec, expect, ctx)
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        series(e, base, r);
    }
}

/// Why the state could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanStateError {
    #[error("suite {suite:?} has no plan: section; expected rotation_plan: {{}} in a suite with a plan, or rotation_plan: {{state_dir: DIR}} naming another suite's plan state folder")]
    NoPlan { suite: String },
    #[error("cannot find the plan's state folder: {0}")]
    Plan(String),
    #[error("{0}")]
    Read(ReadError),
    #[error("{path}: not a plan state file ({detail}); expected the JSON `rotcheck rotate plan` writes; move it aside (the next run starts afresh) or point state_dir at the right folder")]
    Malformed { path: String, detail: String },
}

impl PlanStateError {
    /// Stable reason token.
    pub fn class(&self) -> &'static str {
        match self {
            PlanStateError::NoPlan { .. } | PlanStateError::Plan(_) => "config",
            PlanStateError::Read(e) => e.class(),
            PlanStateError::Malformed { .. } => "state_malformed",
        }
    }

    /// A broken state file fails the check; anything else leaves it unevaluated.
    fn status(&self) -> Status {
        match self {
            PlanStateError::Malformed { .. } => Status::Fail,
            _ => Status::Error,
        }
    }
}

/// The state file as the plan runner writes it (fields it may add later are ignored).
#[derive(Deserialize)]
struct StateFile {
    suite: String,
    run_id: String,
    status: RunStatus,
    started_at: String,
    updated_at: String,
    steps: Vec<StepFile>,
}

#[derive(Deserialize)]
struct StepFile {
    name: String,
    status: StepStatus,
    started_at: Option<String>,
    finished_at: Option<String>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    message: Option<String>,
}

/// A run, read and typed: timestamps as Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub suite: String,
    pub run_id: String,
    pub status: RunStatus,
    pub started: f64,
    pub updated: f64,
    pub steps: Vec<StepSeen>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeen {
    pub name: String,
    pub status: StepStatus,
    /// When it entered its status; `None` while pending.
    pub since: Option<f64>,
    pub attempts: u32,
    pub message: Option<String>,
}

/// Reads the state file and judges it.
pub fn probe(spec: &PlanSpec, expect: &PlanExpect, ctx: &Ctx) -> Outcome {
    let judged = state_path(spec, ctx).and_then(|p| read_run(&p).map(|run| (p, run)));
    match judged {
        Ok((path, run)) => judge(&path, run.as_ref(), expect, ctx),
        Err(e) => unread(&e),
    }
}

/// `<state_dir>/state.json`: the spec's folder, else the suite's plan's.
pub fn state_path(spec: &PlanSpec, ctx: &Ctx) -> Result<PathBuf, PlanStateError> {
    if let Some(dir) = &spec.state_dir {
        return Ok(ctx.path(dir).join("state.json"));
    }
    match crate::rotate::plan::parse(&ctx.suite) {
        Ok(Some(plan)) => Ok(plan.state_dir.join("state.json")),
        Ok(None) => Err(PlanStateError::NoPlan {
            suite: ctx.suite.file.suite.clone(),
        }),
        Err(e) => Err(PlanStateError::Plan(e.to_string())),
    }
}

/// The run recorded in `path`; `None` when there is no state file (no run yet).
pub fn read_run(path: &Path) -> Result<Option<Run>, PlanStateError> {
    let cap = crate::rotate::safefs::MAX_STATE_BYTES;
    let bytes = match fsread::read(path, cap, "a plan state file") {
        Ok(b) => b,
        Err(ReadError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(PlanStateError::Read(e)),
    };
    let malformed = |detail: String| PlanStateError::Malformed {
        path: path.display().to_string(),
        detail,
    };
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    typed(file).map(Some).map_err(malformed)
}

fn typed(f: StateFile) -> Result<Run, String> {
    if f.steps.len() > MAX_STEPS {
        return Err(format!("{} steps, at most {MAX_STEPS}", f.steps.len()));
    }
    let started = unix(&f.started_at, "started_at")?;
    let updated = unix(&f.updated_at, "updated_at")?;
    let steps = f
        .steps
        .into_iter()
        .map(|s| step(s, updated))
        .collect::<Result<_, _>>()?;
    Ok(Run {
        suite: f.suite,
        run_id: f.run_id,
        status: f.status,
        started,
        updated,
        steps,
    })
}

fn step(s: StepFile, updated: f64) -> Result<StepSeen, String> {
    if s.name.is_empty() || s.name.chars().count() > MAX_STEP_NAME {
        return Err(format!(
            "a step name is empty or longer than {MAX_STEP_NAME} characters"
        ));
    }
    let at = |t: &Option<String>, key: &str| match t {
        Some(t) => unix(t, &format!("{}.{key}", s.name)).map(Some),
        None => Ok(None),
    };
    let since = match s.status {
        StepStatus::Pending => None,
        StepStatus::Running | StepStatus::Applied => at(&s.started_at, "started_at")?,
        StepStatus::Done | StepStatus::Failed => at(&s.finished_at, "finished_at")?,
    };
    // A step in progress without a start time: its state was last written at `updated`.
    let since = since.or((s.status != StepStatus::Pending).then_some(updated));
    Ok(StepSeen {
        name: s.name,
        status: s.status,
        since,
        attempts: s.attempts,
        message: s.message,
    })
}

/// RFC 3339 → Unix seconds (with fractions).
fn unix(t: &str, key: &str) -> Result<f64, String> {
    let at = humantime::parse_rfc3339_weak(t)
        .map_err(|e| format!("{key} {t:?} is not an RFC 3339 time: {e}"))?;
    Ok(secs(at))
}

fn secs(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

fn unread(e: &PlanStateError) -> Outcome {
    let msg = e.to_string();
    let mut out = Outcome::default();
    if e.status() == Status::Error {
        out.error = Some(ProbeError::local(e.class(), msg.clone()));
    }
    out.assertions
        .push(Assertion::not_ok("state", e.status(), e.class(), msg));
    out
}

/// The assertions and facts of a run (or of no run yet).
fn judge(path: &Path, run: Option<&Run>, expect: &PlanExpect, ctx: &Ctx) -> Outcome {
    let now = secs(ctx.now);
    let stuck_after = expect.stuck_after.map_or(DEFAULT_STUCK_AFTER, |d| d.0);
    let mut out = Outcome {
        facts: facts(path, run, stuck_after),
        ..Outcome::default()
    };
    let Some(run) = run else {
        let msg = format!(
            "no plan run yet: {} does not exist (`rotcheck rotate plan` writes it)",
            path.display()
        );
        out.assertions.push(Assertion::pass("state", msg));
        out.assertions
            .extend(expect.max_age.map(|d| never_ran(d.0)));
        return out;
    };
    out.assertions
        .push(Assertion::pass("state", describe(run, now)));
    out.assertions.push(stuck(run, stuck_after, now, ctx));
    out.assertions
        .push(result(run, expect.result.unwrap_or_default(), ctx));
    out.assertions
        .extend(expect.max_age.map(|d| max_age(run, d.0, now)));
    out
}

/// `run R of suite S: running, 2/7 steps done, last transition 3m ago`.
fn describe(run: &Run, now: f64) -> String {
    let done = run
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Done)
        .count();
    format!(
        "run {} of suite {:?}: {}, {done}/{} steps done, last transition {} ago",
        run.run_id,
        run.suite,
        run.status.as_str(),
        run.steps.len(),
        ago(now - run.updated)
    )
}

fn ago(secs: f64) -> String {
    crate::human::duration(Duration::from_secs_f64(secs.max(0.0)))
}

/// How to go on with the plan, for messages: this suite's file when the run is its own.
fn resume_hint(run: &Run, ctx: &Ctx) -> String {
    if run.suite == ctx.suite.file.suite {
        return format!("`rotcheck rotate plan -c {}`", ctx.suite.path.display());
    }
    format!(
        "`rotcheck rotate plan -c SUITE` (the suite file of {:?})",
        run.suite
    )
}

fn stuck(run: &Run, after: Duration, now: f64, ctx: &Ctx) -> Assertion {
    let busy = run
        .steps
        .iter()
        .filter(|s| matches!(s.status, StepStatus::Running | StepStatus::Applied));
    let Some((s, for_)) = busy
        .map(|s| (s, now - s.since.unwrap_or(run.updated)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
    else {
        return Assertion::pass("stuck", "no step in progress");
    };
    let what = match s.status {
        StepStatus::Applied => "now applied: its gate has not passed yet",
        _ => "now running its actions",
    };
    let limit = crate::human::duration(after);
    if for_ <= after.as_secs_f64() {
        let msg = format!(
            "step {:?} in progress for {} ({what}; stuck after {limit})",
            s.name,
            ago(for_)
        );
        return Assertion::pass("stuck", msg);
    }
    let msg = format!(
        "step {:?} has been in progress for {} ({what}), longer than stuck_after {limit}; expected it to finish or fail; if no `rotcheck rotate plan` process is left (it was killed), resume with {}",
        s.name,
        ago(for_),
        resume_hint(run, ctx)
    );
    Assertion::fail("stuck", "rotation_stuck", msg)
}

fn result(run: &Run, want: ResultWant, ctx: &Ctx) -> Assertion {
    let hint = resume_hint(run, ctx);
    match (run.status, want) {
        (RunStatus::Failed, ResultWant::NotFailed | ResultWant::Completed) => {
            Assertion::fail("result", "rotation_failed", failed_message(run, &hint))
        }
        (RunStatus::Running, ResultWant::Completed) => {
            let msg = format!(
                "run {} has not completed (still running or stopped midway); expected a completed run; finish it with {hint}",
                run.run_id
            );
            Assertion::fail("result", "rotation_incomplete", msg)
        }
        (status, _) => Assertion::pass("result", format!("run {} {}", run.run_id, status.as_str())),
    }
}

fn failed_message(run: &Run, hint: &str) -> String {
    let failed = run.steps.iter().find(|s| s.status == StepStatus::Failed);
    let at = match failed {
        Some(s) => {
            let why = s.message.as_deref().unwrap_or("no message recorded");
            let why = crate::redact::truncate(why, 300);
            format!(" at step {:?} (attempt {}): {why}", s.name, s.attempts)
        }
        None => String::new(),
    };
    format!(
        "run {} failed{at}; expected it not to have failed; fix the cause, then resume with {hint}",
        run.run_id
    )
}

fn max_age(run: &Run, limit: Duration, now: f64) -> Assertion {
    let (when, what) = match run.status {
        RunStatus::Completed => (run.updated, "completed"),
        _ => (run.started, "started (it has not completed)"),
    };
    let age = now - when;
    let limit_h = crate::human::duration(limit);
    if age <= limit.as_secs_f64() {
        let msg = format!("the last run {what} {} ago (max_age {limit_h})", ago(age));
        return Assertion::pass("max_age", msg);
    }
    let msg = format!(
        "the last run {what} {} ago, longer than max_age {limit_h}; expected a rotation within that time; run the plan",
        ago(age)
    );
    Assertion::fail("max_age", "rotation_overdue", msg)
}

fn never_ran(limit: Duration) -> Assertion {
    let msg = format!(
        "no plan run is recorded; expected one within max_age {}; run the plan",
        crate::human::duration(limit)
    );
    Assertion::fail("max_age", "rotation_overdue", msg)
}

/// Facts keys (also in `gate --format json`); the series are written from them.
const F_FILE: &str = "plan_state_file";
const F_STATUS: &str = "plan_status";
const F_RUN: &str = "plan_run_id";
const F_UPDATED: &str = "plan_last_transition";
const F_STUCK_AFTER: &str = "plan_stuck_after_seconds";
/// `plan_step:NAME` = `STATUS` or `STATUS since UNIX`.
const F_STEP: &str = "plan_step:";

fn facts(path: &Path, run: Option<&Run>, stuck_after: Duration) -> crate::model::Facts {
    let mut f = crate::model::Facts::default();
    let x = &mut f.extra;
    x.insert(F_FILE.into(), path.display().to_string());
    x.insert(F_STUCK_AFTER.into(), stuck_after.as_secs_f64().to_string());
    let Some(run) = run else {
        x.insert(F_STATUS.into(), "none".into());
        return f;
    };
    x.insert(F_STATUS.into(), run.status.as_str().into());
    x.insert(F_RUN.into(), run.run_id.clone());
    x.insert(F_UPDATED.into(), run.updated.to_string());
    for s in &run.steps {
        let value = match s.since {
            Some(t) => format!("{} since {t}", s.status.as_str()),
            None => s.status.as_str().to_string(),
        };
        x.insert(format!("{F_STEP}{}", s.name), value);
    }
    f
}

fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
    let x = &r.facts.extra;
    let number = |k: &str| x.get(k).and_then(|v| v.parse::<f64>().ok());
    if let Some(t) = number(F_STUCK_AFTER) {
        e.sample(&STUCK_AFTER, base, t);
    }
    let Some(status) = x.get(F_STATUS) else {
        return;
    };
    for s in PLAN_STATES {
        e.sample(
            &PLAN_STATUS,
            &with(base, &[("status", s)]),
            flag(s == status),
        );
    }
    if let Some(t) = number(F_UPDATED) {
        e.sample(&LAST_TRANSITION, base, t);
    }
    for (key, value) in x.range(F_STEP.to_string()..) {
        let Some(step) = key.strip_prefix(F_STEP) else {
            break;
        };
        step_series(e, base, step, value);
    }
}

fn step_series(e: &mut Exposition, base: &Base<'_>, step: &str, value: &str) {
    let (status, since) = match value.split_once(" since ") {
        Some((s, t)) => (s, t.parse::<f64>().ok()),
        None => (value, None),
    };
    for s in STEP_STATES {
        let labels = with(base, &[("step", step), ("status", s.as_str())]);
        e.sample(&STEP_STATUS, &labels, flag(s.as_str() == status));
    }
    if let Some(t) = since {
        e.sample(&STEP_SINCE, &with(base, &[("step", step)]), t);
    }
}

#[cfg(test)]
mod tests;
