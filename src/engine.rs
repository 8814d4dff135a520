//! Runs a suite: selection, bounded concurrency, one timeout per check, `--wait` retries.
//! Produces a `Report` and nothing else (`--wait` hands each attempt to a callback).

mod spread;

use crate::kinds::{self, Cache, Ctx};
use crate::model::{Assertion, CheckResult, FailureClass, Outcome, ProbeError, Report, Status};
use crate::suite::{CheckSpec, Severity, Suite};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;

/// Which checks to run: a check is selected when it matches every non-empty filter.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub stages: Vec<String>,
    pub checks: Vec<String>,
    pub tags: Vec<String>,
}

/// Why a selection cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("no check named {name:?} in the suite; known checks: {known}")]
    UnknownCheck { name: String, known: String },
    #[error("no stage named {name:?} in the suite; known stages: {known}")]
    UnknownStage { name: String, known: String },
    #[error("no check has the tag {name:?}; known tags: {known}")]
    UnknownTag { name: String, known: String },
    #[error("the selection matches no check")]
    Empty,
}

impl Selection {
    fn matches(&self, c: &CheckSpec) -> bool {
        (self.stages.is_empty() || self.stages.iter().any(|s| s == c.stage_name()))
            && (self.checks.is_empty() || self.checks.contains(&c.name))
            && (self.tags.is_empty() || c.tags.iter().any(|t| self.tags.contains(t)))
    }

    /// The selected checks, in suite order; unknown names are errors.
    pub fn select<'a>(&self, suite: &'a Suite) -> Result<Vec<&'a CheckSpec>, SelectError> {
        let checks = &suite.file.checks;
        if let Some(name) = self
            .checks
            .iter()
            .find(|n| !checks.iter().any(|c| &&c.name == n))
        {
            let known = suite.check_names().join(", ");
            return Err(SelectError::UnknownCheck {
                name: name.clone(),
                known,
            });
        }
        let stages = stages(suite);
        if let Some(name) = self.stages.iter().find(|s| !stages.contains(s)) {
            return Err(SelectError::UnknownStage {
                name: name.clone(),
                known: stages.join(", "),
            });
        }
        let tags = tags(suite);
        if let Some(name) = self.tags.iter().find(|t| !tags.contains(t)) {
            let known = if tags.is_empty() {
                "none (no check in the suite has tags)".to_string()
            } else {
                tags.join(", ")
            };
            return Err(SelectError::UnknownTag {
                name: name.clone(),
                known,
            });
        }
        let picked: Vec<_> = checks.iter().filter(|c| self.matches(c)).collect();
        if picked.is_empty() {
            return Err(SelectError::Empty);
        }
        Ok(picked)
    }
}

/// Stage names in first-seen order.
pub fn stages(suite: &Suite) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in &suite.file.checks {
        if !out.iter().any(|s| s == c.stage_name()) {
            out.push(c.stage_name().to_string());
        }
    }
    out
}

/// Tag names in first-seen order.
pub fn tags(suite: &Suite) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in suite.file.checks.iter().flat_map(|c| &c.tags) {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub concurrency: usize,
    /// Evaluate time-based expectations at this instant instead of now.
    pub at: Option<SystemTime>,
    /// Runtimes to spread the checks over ([`spread`]); empty: the current runtime.
    pub spread: Vec<tokio::runtime::Handle>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 64,
            at: None,
            spread: vec![],
        }
    }
}

/// Runs the given checks concurrently (bounded) and builds a report.
pub async fn run(suite: &Arc<Suite>, checks: &[&CheckSpec], opts: &RunOptions) -> Report {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let cache = Arc::new(Cache::default());
    let results = run_checks(suite, checks, opts, &cache).await;
    let warnings = close(&cache).await;
    let mut r = report(suite, started_at, clock.elapsed(), opts, results);
    r.warnings = warnings;
    r
}

/// Revokes the tokens a run obtained; each failure becomes a warning line of the report.
async fn close(cache: &Cache) -> Vec<String> {
    let failed = cache.vault.close().await;
    failed.iter().map(ToString::to_string).collect()
}

fn report(
    suite: &Suite,
    started_at: SystemTime,
    took: Duration,
    opts: &RunOptions,
    checks: Vec<CheckResult>,
) -> Report {
    Report {
        suite: suite.file.suite.clone(),
        status: Report::overall(&checks),
        started_at,
        duration_seconds: took,
        evaluated_at: opts
            .at
            .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        evaluated_unix: unix_of(opts.at.unwrap_or(started_at)),
        checks,
        warnings: vec![],
    }
}

async fn run_checks(
    suite: &Arc<Suite>,
    checks: &[&CheckSpec],
    opts: &RunOptions,
    cache: &Arc<Cache>,
) -> Vec<CheckResult> {
    if !opts.spread.is_empty() {
        return spread::run(suite, checks, opts, cache).await;
    }
    let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, check) in checks.iter().enumerate() {
        let (check, suite, sem, cache) =
            ((*check).clone(), suite.clone(), sem.clone(), cache.clone());
        let at = opts.at;
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, run_check(&suite, &check, at, cache).await)
        });
    }
    let mut out: Vec<(usize, CheckResult)> = Vec::with_capacity(checks.len());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => out.push(r),
            Err(e) => out.push((usize::MAX, panicked(e.to_string()))),
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

pub(crate) fn panicked(detail: String) -> CheckResult {
    let mut r = result_shell("internal", "default", "none", vec![]);
    r.status = Status::Error;
    r.error = Some(ProbeError::local(
        "internal",
        format!("a probe crashed ({detail}); please report this"),
    ));
    r
}

fn result_shell(name: &str, stage: &str, kind: &str, tags: Vec<String>) -> CheckResult {
    CheckResult {
        name: name.into(),
        stage: stage.into(),
        kind: kind.into(),
        tags,
        status: Status::Pass,
        duration_seconds: Duration::ZERO,
        finished_unix: 0.0,
        error: None,
        assertions: vec![],
        certs: vec![],
        facts: Default::default(),
    }
}

/// Runs one check with its timeout; the result never takes longer than timeout + 1 s.
pub async fn run_check(
    suite: &Arc<Suite>,
    check: &CheckSpec,
    at: Option<SystemTime>,
    cache: Arc<Cache>,
) -> CheckResult {
    let timeout = check.timeout.unwrap_or(suite.file.defaults.timeout).0;
    let ctx = Ctx {
        suite: suite.clone(),
        now: at.unwrap_or_else(SystemTime::now),
        timeout,
        cache,
    };
    let clock = Instant::now();
    let outcome =
        match tokio::time::timeout(timeout + Duration::from_secs(1), kinds::run(check, &ctx)).await
        {
            Ok(o) => o,
            Err(_) => timed_out(timeout),
        };
    finish(check, outcome, clock.elapsed())
}

fn timed_out(timeout: Duration) -> Outcome {
    let msg = format!(
        "no answer within {}; expected the check to finish in time; is the target stalled?",
        crate::human::duration(timeout)
    );
    Outcome {
        error: Some(ProbeError::connect(FailureClass::Timeout, msg.clone())),
        assertions: vec![Assertion::fail("probe", "timeout", msg)],
        ..Default::default()
    }
}

fn finish(check: &CheckSpec, outcome: Outcome, took: Duration) -> CheckResult {
    let mut status = outcome.worst();
    if check.severity == Severity::Warn && status > Status::Warn {
        status = Status::Warn;
    }
    let mut r = result_shell(
        &check.name,
        check.stage_name(),
        check.kind_name(),
        check.tags.clone(),
    );
    r.status = status;
    r.duration_seconds = took;
    r.finished_unix = unix_now();
    r.error = outcome.error;
    r.assertions = outcome.assertions;
    r.certs = outcome.certs;
    r.facts = outcome.facts;
    r
}

fn unix_of(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs, then re-runs only the failing checks every `interval` until all pass or `wait` ends.
pub async fn run_with_wait(
    suite: &Arc<Suite>,
    checks: &[&CheckSpec],
    opts: &RunOptions,
    wait: Duration,
    interval: Duration,
) -> Report {
    let wait = Wait { wait, interval };
    run_with_progress(suite, checks, opts, wait, &mut |_| {}).await
}

/// How long `--wait` waits and how often it re-runs.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub wait: Duration,
    pub interval: Duration,
}

/// Where a `--wait` stands after one attempt: the caller decides whether and how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first run.
    pub number: u32,
    pub elapsed: Duration,
    pub wait: Duration,
    /// The checks still failing or erroring, in suite order, with their reason token.
    pub failing: Vec<(String, String)>,
}

/// [`run_with_wait`], handing an [`Attempt`] to `progress` after every run.
pub async fn run_with_progress(
    suite: &Arc<Suite>,
    checks: &[&CheckSpec],
    opts: &RunOptions,
    wait: Wait,
    progress: &mut (dyn FnMut(&Attempt) + Send),
) -> Report {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let cache = Arc::new(Cache::default());
    let mut results = run_checks(suite, checks, opts, &cache).await;
    let mut warnings = close(&cache).await;
    let mut number = 1;
    progress(&attempt(number, clock.elapsed(), wait.wait, &results));
    while clock.elapsed() + wait.interval < wait.wait && results.iter().any(failed) {
        tokio::time::sleep(wait.interval).await;
        warnings.extend(rerun_failing(suite, checks, opts, &mut results).await);
        number += 1;
        progress(&attempt(number, clock.elapsed(), wait.wait, &results));
    }
    let mut r = report(suite, started_at, clock.elapsed(), opts, results);
    r.warnings = warnings;
    r
}

fn failed(r: &CheckResult) -> bool {
    r.status > Status::Warn
}

/// Re-runs the failing checks in place; returns the run's warnings.
async fn rerun_failing(
    suite: &Arc<Suite>,
    checks: &[&CheckSpec],
    opts: &RunOptions,
    results: &mut [CheckResult],
) -> Vec<String> {
    let failing: Vec<&CheckSpec> = checks
        .iter()
        .zip(results.iter())
        .filter(|(_, r)| failed(r))
        .map(|(c, _)| *c)
        .collect();
    let fresh = Arc::new(Cache::default());
    let mut again = run_checks(suite, &failing, opts, &fresh).await.into_iter();
    let warnings = close(&fresh).await;
    for r in results.iter_mut().filter(|r| failed(r)) {
        if let Some(n) = again.next() {
            *r = n;
        }
    }
    warnings
}

fn attempt(number: u32, elapsed: Duration, wait: Duration, results: &[CheckResult]) -> Attempt {
    let failing = results
        .iter()
        .filter(|r| failed(r))
        .map(|r| {
            let reason = r.failure_reason().unwrap_or("fail");
            (r.name.clone(), reason.to_string())
        })
        .collect();
    Attempt {
        number,
        elapsed,
        wait,
        failing,
    }
}
