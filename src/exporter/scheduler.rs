//! Runs the suite in the background: the first round as fast as the concurrency bound allows,
//! then each check on its own interval at a fixed per-check offset (jitter, so checks do not
//! fire together), never two runs of one check at once (a
//! check is due again only after its run ended), at most `concurrency` runs at a time (a
//! semaphore shared with `/probe`). A run that overruns its interval skips the missed slots
//! instead of bursting. One task holds the whole schedule — a queue of (next slot, check) —
//! and spawns a task per run, so 10,000 checks cost a queue entry each, not a task each.
//! Reloads stop the schedule, swap the suite and start again; unchanged checks keep their
//! result and resume on their next slot.

use super::events::{self, LogFormat};
use super::state::State;
use crate::engine;
use crate::kinds::Cache;
use crate::model::CheckResult;
use crate::suite::{CheckSpec, Suite};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// A check run in flight.
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send>>;

/// Runs one check. The engine in production; tests substitute scripted results.
pub trait Runner: Send + Sync + 'static {
    /// Runs `check` of `suite` now, within the check's timeout.
    fn run(&self, suite: Arc<Suite>, check: CheckSpec) -> CheckFuture;
}

/// The real thing: `engine::run_check` with a fresh cache (CA files are re-read every run,
/// so a refreshed trust bundle is seen on the next round), revoking any token it obtained.
pub struct EngineRunner;

impl Runner for EngineRunner {
    fn run(&self, suite: Arc<Suite>, check: CheckSpec) -> CheckFuture {
        Box::pin(async move {
            let cache = Arc::new(Cache::default());
            let result = engine::run_check(&suite, &check, None, cache.clone()).await;
            // A token the run obtained (the profile's cert login) is revoked right away.
            for failed in cache.vault.close().await {
                super::log(format!("warning: check {}: {failed}", check.name));
            }
            result
        })
    }
}

/// The shortest interval accepted (a zero interval would spin).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The scheduler's time constants (tests shrink them).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub min_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            min_interval: MIN_INTERVAL,
        }
    }
}

/// A check's interval: its own, else `--interval`, else the suite's `defaults.interval`.
pub fn interval_of(suite: &Suite, check: &CheckSpec, flag: Option<Duration>) -> Duration {
    check
        .interval
        .map(|d| d.0)
        .or(flag)
        .unwrap_or(suite.file.defaults.interval.0)
}

/// Every check's interval (at least `MIN_INTERVAL`), by name, as `/metrics` shows them.
pub fn intervals(suite: &Suite, flag: Option<Duration>) -> HashMap<String, Duration> {
    suite
        .file
        .checks
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                interval_of(suite, c, flag).max(MIN_INTERVAL),
            )
        })
        .collect()
}

/// A check's place in time: it runs at `origin + offset + k × interval`.
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    origin: Instant,
    offset: Duration,
    interval: Duration,
}

impl Slots {
    /// Slots for a check; the offset is a stable hash of its name within the interval.
    pub fn new(origin: Instant, name: &str, interval: Duration, timing: Timing) -> Self {
        let interval = interval.max(timing.min_interval);
        let offset = fnv1a(name.as_bytes()) % nanos(interval);
        Slots {
            origin,
            offset: Duration::from_nanos(offset),
            interval,
        }
    }

    /// The first slot strictly after `now`.
    pub fn next_after(&self, now: Instant) -> Instant {
        let first = self.origin + self.offset;
        if now < first {
            return first;
        }
        let k = nanos(now - first) / nanos(self.interval) + 1;
        first + Duration::from_nanos(k.saturating_mul(nanos(self.interval)))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// FNV-1a: a stable hash (the standard hasher's output may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Owns the per-check loops.
pub struct Scheduler {
    state: Arc<State>,
    runner: Arc<dyn Runner>,
    permits: Arc<Semaphore>,
    flag_interval: Option<Duration>,
    timing: Timing,
    origin: Instant,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    log_format: LogFormat,
}

impl Scheduler {
    /// A scheduler over `state`'s suite; nothing runs until `start`.
    pub fn new(
        state: Arc<State>,
        runner: Arc<dyn Runner>,
        permits: Arc<Semaphore>,
        flag_interval: Option<Duration>,
    ) -> Self {
        Scheduler {
            state,
            runner,
            permits,
            flag_interval,
            timing: Timing::default(),
            origin: Instant::now(),
            log_format: LogFormat::default(),
            running: None,
        }
    }

    /// How status changes are logged (`--log-format`).
    pub fn with_log_format(mut self, format: LogFormat) -> Self {
        self.log_format = format;
        self
    }

    /// Other time constants (tests).
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Starts the schedule of the suite in force. Checks without a result (all of them at
    /// start-up, new and changed ones after a reload) are due at once, in suite order: the
    /// semaphore bounds how many run together, so the first round ends as soon as the work
    /// allows; their later runs fall on their spread slots.
    pub fn start(&mut self) {
        let (suite, generation) = self.state.suite();
        let now = Instant::now();
        let mut slots = Vec::with_capacity(suite.file.checks.len());
        let mut queue = BinaryHeap::with_capacity(suite.file.checks.len());
        for (i, check) in suite.file.checks.iter().enumerate() {
            let interval = interval_of(&suite, check, self.flag_interval);
            let s = Slots::new(self.origin, &check.name, interval, self.timing);
            let first = if self.state.has_result(&check.name) {
                s.next_after(now)
            } else {
                now
            };
            queue.push(Reverse((first, i)));
            slots.push(s);
        }
        let plan = Plan {
            suite,
            generation,
            slots,
            queue,
            log_format: self.log_format,
            state: self.state.clone(),
            runner: self.runner.clone(),
            permits: self.permits.clone(),
        };
        let (stop, stopped) = oneshot::channel();
        self.running = Some((stop, tokio::spawn(plan.run(stopped))));
    }

    /// Stops the schedule and waits until every run in flight has let go.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Puts a new suite in force: stop, swap (keeping what is unchanged), start.
    pub async fn reload(&mut self, suite: Suite) -> usize {
        self.stop().await;
        let (old, _) = self.state.suite();
        let new = Arc::new(suite);
        let keep = |name: &str| unchanged(&old, &new, name);
        let intervals = intervals(&new, self.flag_interval);
        self.state.swap_suite(new.clone(), intervals, &keep);
        self.start();
        new.file.checks.len()
    }
}

/// A check is unchanged when it and everything it inherits from the suite are equal.
fn unchanged(old: &Suite, new: &Suite, name: &str) -> bool {
    let spec = |s: &Suite| s.file.checks.iter().find(|c| c.name == name).cloned();
    let same_suite = old.file.suite == new.file.suite
        && old.file.defaults == new.file.defaults
        && old.file.vault == new.file.vault
        && old.env == new.env;
    same_suite && spec(old).is_some() && spec(old) == spec(new)
}

/// The schedule of one suite generation: each check's slots and a queue of when each check
/// is next due. A check is back in the queue only once its run has ended.
struct Plan {
    suite: Arc<Suite>,
    generation: u64,
    slots: Vec<Slots>,
    queue: BinaryHeap<Reverse<(Instant, usize)>>,
    log_format: LogFormat,
    state: Arc<State>,
    runner: Arc<dyn Runner>,
    permits: Arc<Semaphore>,
}

impl Plan {
    /// Starts each check when due (once a place under the concurrency bound is free) until
    /// `stop` fires; then ends the runs in flight.
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let (done, mut finished) = mpsc::unbounded_channel::<usize>();
        let mut runs = JoinSet::new();
        loop {
            let next = self.queue.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                _ = &mut stop => break,
                Some(i) = finished.recv() => {
                    let at = self.slots[i].next_after(Instant::now());
                    self.queue.push(Reverse((at, i)));
                }
                _ = Self::until(next) => {
                    let Some(Reverse((_, i))) = self.queue.pop() else { continue };
                    let permit = tokio::select! {
                        p = self.permits.clone().acquire_owned() => p,
                        _ = &mut stop => break,
                    };
                    let Ok(permit) = permit else { break };
                    runs.spawn(self.one(i, permit, done.clone()));
                }
                Some(_) = runs.join_next(), if !runs.is_empty() => {}
            }
        }
        runs.shutdown().await;
    }

    /// Sleeps until `at`; forever without one.
    async fn until(at: Option<Instant>) {
        match at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// One run of check `i`: the result is recorded and the check handed back to the queue.
    fn one(
        &self,
        i: usize,
        permit: OwnedSemaphorePermit,
        done: mpsc::UnboundedSender<usize>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (suite, generation, log_format) =
            (self.suite.clone(), self.generation, self.log_format);
        let (state, runner) = (self.state.clone(), self.runner.clone());
        async move {
            let check = suite.file.checks[i].clone();
            let result = runner.run(suite, check).await;
            drop(permit);
            if let Some(change) = state.record(generation, result) {
                events::log(&change, log_format);
            }
            let _ = done.send(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::metrics::render_serve;
    use crate::metrics::tests::{cert, result};
    use crate::model::{FailureClass, ProbeError, Status};
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    fn suite(yaml: &str) -> Suite {
        crate::suite::load_str(yaml, Path::new("suite.yaml")).unwrap()
    }

    // tls checks (the runner is scripted, nothing connects): a kind with failure counters.
    const TWO: &str = "suite: t\ndefaults: {interval: 100ms}\nchecks:\n  - name: a\n    tls: {addr: \"127.0.0.1:9\"}\n  - name: b\n    interval: 200ms\n    tls: {addr: \"127.0.0.1:9\"}\n";
    const ONLY_A: &str =
        "suite: t\ndefaults: {interval: 100ms}\nchecks:\n  - name: a\n    tls: {addr: \"127.0.0.1:9\"}\n";

    const FAST: Timing = Timing {
        min_interval: Duration::from_millis(10),
    };

    /// Scripted runner: each run takes `took` and returns `make(name, run_no)`; with a gate,
    /// runs after the first wait for a permit. Records the most simultaneous runs of a check.
    #[derive(Clone)]
    struct Fake(Arc<FakeInner>);

    struct FakeInner {
        took: Duration,
        make: fn(&str, usize) -> CheckResult,
        gate: Option<Semaphore>,
        runs: Mutex<HashMap<String, usize>>,
        active: Mutex<HashMap<String, usize>>,
        max_overlap: AtomicUsize,
    }

    impl Fake {
        fn new(took: Duration, make: fn(&str, usize) -> CheckResult, gated: bool) -> Self {
            Fake(Arc::new(FakeInner {
                took,
                make,
                gate: gated.then(|| Semaphore::new(0)),
                runs: Mutex::default(),
                active: Mutex::default(),
                max_overlap: AtomicUsize::new(0),
            }))
        }

        fn runs(&self, name: &str) -> usize {
            self.0.runs.lock().unwrap().get(name).copied().unwrap_or(0)
        }

        fn bump(map: &Mutex<HashMap<String, usize>>, name: &str, up: bool) -> usize {
            let mut m = map.lock().unwrap();
            let v = m.entry(name.to_string()).or_default();
            *v = if up { *v + 1 } else { *v - 1 };
            *v
        }
    }

    impl Runner for Fake {
        fn run(&self, _suite: Arc<Suite>, check: CheckSpec) -> CheckFuture {
            let me = self.0.clone();
            Box::pin(async move {
                let active = Fake::bump(&me.active, &check.name, true);
                me.max_overlap.fetch_max(active, Ordering::SeqCst);
                let seen = me
                    .runs
                    .lock()
                    .unwrap()
                    .get(&check.name)
                    .copied()
                    .unwrap_or(0);
                if let (Some(gate), true) = (&me.gate, seen >= 1) {
                    gate.acquire().await.unwrap().forget();
                }
                tokio::time::sleep(me.took).await;
                let n = Fake::bump(&me.runs, &check.name, true);
                Fake::bump(&me.active, &check.name, false);
                (me.make)(&check.name, n)
            })
        }
    }

    fn start(s: Suite, runner: Arc<dyn Runner>) -> (Arc<State>, Scheduler) {
        let s = Arc::new(s);
        let state = Arc::new(State::new(s.clone(), intervals(&s, None)));
        let permits = Arc::new(Semaphore::new(8));
        let mut sched = Scheduler::new(state.clone(), runner, permits, None).with_timing(FAST);
        sched.start();
        (state, sched)
    }

    /// Waits until `f` holds, at most 5 s.
    async fn eventually(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn pass(name: &str, _n: usize) -> CheckResult {
        result(name, Status::Pass)
    }

    /// Run 1: serial aaaa after a reset; later runs: serial bbbb, connected.
    fn rotating(name: &str, n: usize) -> CheckResult {
        let mut r = result(name, Status::Pass);
        let serial = if n < 2 { "aaaa" } else { "bbbb" };
        r.certs = vec![cert("leaf", "vault", serial, 0, i64::MAX / 2)];
        if n == 1 {
            r.status = Status::Error;
            r.error = Some(ProbeError::connect(FailureClass::Reset, "reset"));
        }
        r
    }

    #[test]
    fn slots_are_stable_and_spread() {
        let origin = Instant::now();
        let min = Duration::from_secs(60);
        let s = Slots::new(origin, "vault-listener", min, Timing::default());
        assert!(s.offset < min);
        let a = s.next_after(origin + Duration::from_secs(1000));
        assert!(a > origin + Duration::from_secs(1000));
        assert!(a <= origin + Duration::from_secs(1060));
        assert_eq!(s.next_after(a), a + min);
        let offsets: std::collections::HashSet<_> = (0..50)
            .map(|i| {
                Slots::new(origin, &format!("c{i}"), min, Timing::default())
                    .offset
                    .as_secs()
            })
            .collect();
        assert!(offsets.len() > 30, "offsets should spread: {offsets:?}");
        let zero = Slots::new(origin, "x", Duration::ZERO, Timing::default());
        assert_eq!(zero.interval, MIN_INTERVAL);
    }

    #[test]
    fn intervals_override_in_order() {
        let s = suite(TWO);
        let ms = Duration::from_millis;
        let i = intervals(&s, None);
        assert_eq!((i["a"], i["b"]), (MIN_INTERVAL, MIN_INTERVAL));
        let a = &s.file.checks[0];
        let b = &s.file.checks[1];
        assert_eq!(interval_of(&s, a, None), ms(100));
        assert_eq!(interval_of(&s, b, None), ms(200));
        assert_eq!(interval_of(&s, a, Some(ms(5000))), ms(5000));
        assert_eq!(interval_of(&s, b, Some(ms(5000))), ms(200));
    }

    #[tokio::test]
    async fn runs_each_check_on_its_interval_and_becomes_ready() {
        let f = Fake::new(Duration::from_millis(5), pass, false);
        let (state, mut sched) = start(suite(TWO), Arc::new(f.clone()));
        assert!(!state.is_ready());
        eventually("the first round", || state.is_ready()).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let (a, b) = (f.runs("a"), f.runs("b"));
        assert!((3..=12).contains(&a), "a ran {a} times in ~1 s at 100 ms");
        assert!((1..=7).contains(&b), "b ran {b} times in ~1 s at 200 ms");
        assert!(a >= b);
        sched.stop().await;
    }

    /// Records the (paused) clock at each run's start.
    struct Clocked(Mutex<Vec<(String, Instant)>>);

    impl Runner for Arc<Clocked> {
        fn run(&self, _s: Arc<Suite>, c: CheckSpec) -> CheckFuture {
            self.0
                .lock()
                .unwrap()
                .push((c.name.clone(), Instant::now()));
            Box::pin(async move { result(&c.name, Status::Pass) })
        }
    }

    /// With the default timing (60 s intervals, offsets anywhere in them) the first runs
    /// still start together; before, they were spread over 2 s.
    #[tokio::test]
    async fn the_first_round_starts_at_once() {
        let mut yaml = String::from("suite: t\ndefaults: {interval: 60s}\nchecks:\n");
        for i in 0..40 {
            yaml.push_str(&format!(
                "  - name: c{i}\n    tls: {{addr: \"127.0.0.1:9\"}}\n"
            ));
        }
        let s = Arc::new(suite(&yaml));
        let state = Arc::new(State::new(s.clone(), intervals(&s, None)));
        let clock = Arc::new(Clocked(Mutex::default()));
        let permits = Arc::new(Semaphore::new(8));
        let t0 = Instant::now();
        let mut sched = Scheduler::new(state.clone(), Arc::new(clock.clone()), permits, None);
        sched.start();
        eventually("the first round", || state.is_ready()).await;
        let starts: Vec<Duration> = clock.0.lock().unwrap().iter().map(|r| r.1 - t0).collect();
        assert_eq!(starts.len(), 40, "one run each: {starts:?}");
        let last = starts.iter().max().unwrap();
        assert!(*last < Duration::from_secs(1), "spread: {starts:?}");
        let offsets: std::collections::HashSet<u64> = (0..40)
            .map(|i| {
                Slots::new(
                    t0,
                    &format!("c{i}"),
                    Duration::from_secs(60),
                    Timing::default(),
                )
            })
            .map(|s| s.next_after(t0).duration_since(t0).as_secs())
            .collect();
        assert!(offsets.len() > 20, "later runs bunch together: {offsets:?}");
        sched.stop().await;
    }

    #[tokio::test]
    async fn never_two_runs_of_one_check_at_once() {
        let f = Fake::new(Duration::from_millis(250), pass, false);
        let (_state, mut sched) = start(suite(TWO), Arc::new(f.clone()));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(f.0.max_overlap.load(Ordering::SeqCst), 1);
        assert!(f.runs("a") >= 3, "a ran {} times", f.runs("a"));
        sched.stop().await;
    }

    #[tokio::test]
    async fn a_rotated_serial_replaces_the_old_series() {
        let f = Fake::new(Duration::from_millis(1), rotating, true);
        let (state, mut sched) = start(suite(TWO), Arc::new(f.clone()));
        eventually("the first round", || state.is_ready()).await;
        let text = render_serve(&state.snapshot(), 0);
        assert!(text.contains("serial=\"aaaa\""));
        assert!(
            text.contains("rotcheck_connect_failure{suite=\"t\",check=\"a\",class=\"reset\"} 1")
        );
        f.0.gate.as_ref().unwrap().add_permits(2);
        eventually("the second run", || f.runs("a") >= 2).await;
        let text = render_serve(&state.snapshot(), 0);
        assert!(text.contains("check=\"a\",position=\"leaf\",subject_cn=\"vault\",serial=\"bbbb\""));
        assert!(
            !text.contains("check=\"a\",position=\"leaf\",subject_cn=\"vault\",serial=\"aaaa\""),
            "old serial lingers:\n{text}"
        );
        assert!(
            text.contains(
                "rotcheck_connect_failures_total{suite=\"t\",check=\"a\",class=\"reset\"} 1\n"
            ),
            "counter persists"
        );
        assert!(
            !text.contains("rotcheck_connect_failure{suite=\"t\",check=\"a\""),
            "gauge clears"
        );
        sched.stop().await;
    }

    #[tokio::test]
    async fn reload_drops_removed_checks_and_keeps_counters_and_results() {
        let f = Fake::new(Duration::from_millis(1), rotating, true);
        let (state, mut sched) = start(suite(TWO), Arc::new(f.clone()));
        eventually("the first round", || state.is_ready()).await;
        assert_eq!(sched.reload(suite(ONLY_A)).await, 1);
        let text = render_serve(&state.snapshot(), 0);
        assert!(
            !text.contains("check=\"b\""),
            "removed check lingers:\n{text}"
        );
        assert!(
            text.contains(
                "rotcheck_connect_failures_total{suite=\"t\",check=\"a\",class=\"reset\"} 1\n"
            ),
            "counter kept"
        );
        assert!(
            text.contains("rotcheck_check_success{suite=\"t\",check=\"a\""),
            "result kept"
        );
        assert!(state.is_ready());
        let renamed = ONLY_A.replace("suite: t", "suite: u");
        sched.reload(suite(&renamed)).await;
        assert!(!state.has_result("a"), "a changed suite re-runs its checks");
        sched.stop().await;
    }

    #[tokio::test]
    async fn a_stalled_check_holds_up_nothing() {
        struct Stall;
        impl Runner for Stall {
            fn run(&self, _s: Arc<Suite>, c: CheckSpec) -> CheckFuture {
                Box::pin(async move {
                    if c.name == "b" {
                        std::future::pending::<()>().await;
                    }
                    result(&c.name, Status::Pass)
                })
            }
        }
        let (state, mut sched) = start(suite(TWO), Arc::new(Stall));
        eventually("a's result", || state.has_result("a")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let clock = std::time::Instant::now();
        let text = render_serve(&state.snapshot(), 0);
        assert!(clock.elapsed() < Duration::from_millis(50));
        assert!(text.contains("rotcheck_check_success{suite=\"t\",check=\"a\""));
        assert!(!state.is_ready());
        assert_eq!(state.progress(), (1, 2));
        sched.stop().await;
    }
}
