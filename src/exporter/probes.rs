//! `/probe` runs under their own bounds, so a flood of probes cannot starve probes of other
//! checks or the scheduled rounds: at most `running` probe runs at once and `waiting` more
//! queued (a full queue answers 503), one run per check at a time (concurrent requests for
//! the same check wait for that run's result, at most `followers` of them in all), and each
//! run also takes a place of the scheduler's `--concurrency` bound. A run goes on in its own
//! task when the requests that wanted it give up, and ends within the check's timeout.

use super::admission::{Admission, Full};
use super::scheduler::Runner;
use super::state::unix_now;
use crate::model::{Assertion, CheckResult, FailureClass, ProbeError, Status};
use crate::suite::{CheckSpec, Dur, Suite};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

/// Most requests waiting for another request's run of the same check.
pub const FOLLOWERS: usize = 64;

type Outcome = watch::Receiver<Option<CheckResult>>;

/// The `/probe` bounds and the runs in flight.
pub struct ProbeGate {
    admission: Admission,
    followers: Semaphore,
    most_followers: usize,
    inflight: Mutex<HashMap<(u64, String), Outcome>>,
    runner: Arc<dyn Runner>,
    permits: Arc<Semaphore>,
}

/// Why a probe was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProbeBusy {
    #[error("too many /probe requests: {0}; retry later or spread the probes out")]
    Queue(Full),
    #[error("{0} requests already wait for runs of checks; retry later")]
    Followers(usize),
}

/// What to probe.
pub struct ProbeJob {
    pub suite: Arc<Suite>,
    pub generation: u64,
    pub check: CheckSpec,
    /// Time left for the answer (the scrape timeout, or the check's timeout plus 2 s).
    pub budget: Option<Duration>,
}

impl ProbeGate {
    /// Bounds derived from `--concurrency`: a quarter of it (1 to 16) for probe runs, four
    /// times that waiting.
    pub fn new(concurrency: usize, runner: Arc<dyn Runner>, permits: Arc<Semaphore>) -> Self {
        let running = (concurrency / 4).clamp(1, 16);
        Self::with_sizes(running, running * 4, FOLLOWERS, runner, permits)
    }

    /// Explicit bounds (tests).
    pub fn with_sizes(
        running: usize,
        waiting: usize,
        followers: usize,
        runner: Arc<dyn Runner>,
        permits: Arc<Semaphore>,
    ) -> Self {
        ProbeGate {
            admission: Admission::new(running, waiting),
            followers: Semaphore::new(followers),
            most_followers: followers,
            inflight: Mutex::default(),
            runner,
            permits,
        }
    }

    /// Runs the check (or joins its run in flight) and waits for the result within the budget.
    pub async fn probe(self: &Arc<Self>, job: ProbeJob) -> Result<CheckResult, ProbeBusy> {
        let own = job
            .check
            .timeout
            .unwrap_or(job.suite.file.defaults.timeout)
            .0;
        let budget = job.budget.unwrap_or(own + Duration::from_secs(2));
        let check = job.check.clone();
        let clock = Instant::now();
        let (mut outcome, _follower) = self.join_or_start(job, budget)?;
        let got = tokio::time::timeout(budget, outcome.wait_for(|r| r.is_some())).await;
        let result = match got {
            Ok(Ok(r)) => r.clone(),
            _ => None,
        };
        Ok(result.unwrap_or_else(|| timed_out(&check, clock.elapsed())))
    }

    /// The run of this check in flight, or a new one; `Busy` when the bounds are reached.
    fn join_or_start(
        self: &Arc<Self>,
        job: ProbeJob,
        budget: Duration,
    ) -> Result<(Outcome, Option<tokio::sync::SemaphorePermit<'_>>), ProbeBusy> {
        let key = (job.generation, job.check.name.clone());
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(outcome) = inflight.get(&key) {
            let permit = self
                .followers
                .try_acquire()
                .map_err(|_| ProbeBusy::Followers(self.most_followers))?;
            return Ok((outcome.clone(), Some(permit)));
        }
        let queued = self.admission.enter().map_err(ProbeBusy::Queue)?;
        let (tx, rx) = watch::channel(None);
        inflight.insert(key.clone(), rx.clone());
        drop(inflight);
        let gate = self.clone();
        tokio::spawn(async move {
            let running = queued.start().await;
            let result = gate.run(job, budget).await;
            drop(running);
            let _ = tx.send(Some(result));
            gate.finished(&key, &tx);
        });
        Ok((rx, None))
    }

    /// One run, within the budget: the engine allows a run its timeout plus one second.
    async fn run(&self, job: ProbeJob, budget: Duration) -> CheckResult {
        let mut check = job.check;
        let own = check.timeout.unwrap_or(job.suite.file.defaults.timeout).0;
        let inner = own
            .min(budget.saturating_sub(Duration::from_secs(1)))
            .max(Duration::from_millis(100));
        check.timeout = Some(Dur(inner));
        let _permit = self.permits.acquire().await;
        let clock = Instant::now();
        let run = self.runner.run(job.suite, check.clone());
        match tokio::time::timeout(inner + Duration::from_secs(2), run).await {
            Ok(r) => r,
            Err(_) => timed_out(&check, clock.elapsed()),
        }
    }

    fn finished(&self, key: &(u64, String), tx: &watch::Sender<Option<CheckResult>>) {
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if inflight
            .get(key)
            .is_some_and(|rx| rx.same_channel(&tx.subscribe()))
        {
            inflight.remove(key);
        }
    }
}

/// The result of a probe that did not finish within the scrape's budget.
pub fn timed_out(check: &CheckSpec, took: Duration) -> CheckResult {
    let msg = format!(
        "no result within the scrape timeout ({}); raise scrape_timeout or the exporter is saturated",
        crate::human::duration(took)
    );
    CheckResult {
        name: check.name.clone(),
        stage: check.stage_name().to_string(),
        kind: check.kind_name().to_string(),
        tags: check.tags.clone(),
        status: Status::Error,
        duration_seconds: took,
        finished_unix: unix_now(),
        error: Some(ProbeError::connect(FailureClass::Timeout, msg.clone())),
        assertions: vec![Assertion::fail("probe", "timeout", msg)],
        certs: vec![],
        facts: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::scheduler::CheckFuture;
    use crate::metrics::tests::result;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Check `stalled` never finishes (within its timeout); every other check passes at once.
    struct Fake {
        runs: AtomicUsize,
    }

    impl Runner for Fake {
        fn run(&self, _suite: Arc<Suite>, check: CheckSpec) -> CheckFuture {
            self.runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if check.name == "stalled" {
                    std::future::pending::<()>().await;
                }
                result(&check.name, Status::Pass)
            })
        }
    }

    const SUITE: &str = "suite: t\nchecks:\n  - name: stalled\n    timeout: 1s\n    command: [\"true\"]\n  - name: ok\n    command: [\"true\"]\n";

    fn job(suite: &Arc<Suite>, name: &str) -> ProbeJob {
        let check = suite.file.checks.iter().find(|c| c.name == name).unwrap();
        ProbeJob {
            suite: suite.clone(),
            generation: 0,
            check: check.clone(),
            budget: Some(Duration::from_secs(5)),
        }
    }

    #[tokio::test]
    async fn a_stalled_check_holds_one_run_and_other_checks_still_probe() {
        let suite = Arc::new(crate::suite::load_str(SUITE, Path::new("s.yaml")).unwrap());
        let fake = Arc::new(Fake {
            runs: AtomicUsize::new(0),
        });
        let permits = Arc::new(Semaphore::new(8));
        let gate = Arc::new(ProbeGate::with_sizes(1, 0, 3, fake.clone(), permits));
        let mut stalled = Vec::new();
        for _ in 0..4 {
            let (gate, job) = (gate.clone(), job(&suite, "stalled"));
            stalled.push(tokio::spawn(async move { gate.probe(job).await }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(fake.runs.load(Ordering::SeqCst), 1, "one run per check");
        let extra = gate.probe(job(&suite, "stalled")).await;
        assert_eq!(extra.unwrap_err(), ProbeBusy::Followers(3));
        // The only running place is taken by the stalled run: a second check is refused, not
        // queued behind it.
        let other = gate.probe(job(&suite, "ok")).await;
        assert!(matches!(other, Err(ProbeBusy::Queue(_))), "{other:?}");
        for t in stalled {
            let r = t.await.unwrap().unwrap();
            assert_eq!(r.status, Status::Error, "the run timed out");
            assert_eq!(r.name, "stalled");
        }
        // The stalled run ended within its own timeout (before the budget) and freed its place.
        let ok = gate.probe(job(&suite, "ok")).await.unwrap();
        assert_eq!(ok.status, Status::Pass);
    }
}
