//! What serve knows between scrapes: the suite in force, each check's latest result, failure
//! counters and rendered series, the reload status and the readiness latch. Results are
//! rendered when they arrive; scrapes copy a snapshot out under a short lock and never wait
//! on a probe.

use super::events::Transition;
use super::metrics::{CheckEntry, Snapshot};
use crate::model::{CheckResult, FailureClass};
use crate::suite::Suite;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

const CLASSES: usize = FailureClass::ALL.len();

/// The shared state; cheap to lock, never held across an await.
pub struct State {
    inner: Mutex<Inner>,
    ready: AtomicBool,
}

struct Inner {
    suite: Arc<Suite>,
    /// Bumped on every reload; results from an older generation are dropped.
    generation: u64,
    entries: HashMap<String, CheckEntry>,
    reload_ok: bool,
    reload_success_unix: f64,
}

impl Inner {
    fn all_ran(&self) -> bool {
        self.entries.values().all(|e| e.result.is_some())
    }
}

impl State {
    /// State for the suite loaded at start-up.
    pub fn new(suite: Arc<Suite>, intervals: HashMap<String, Duration>) -> Self {
        let entries = entries(&suite, &intervals, |_| (None, [0; CLASSES]));
        let inner = Inner {
            suite,
            generation: 0,
            entries,
            reload_ok: true,
            reload_success_unix: unix_now(),
        };
        let ready = AtomicBool::new(inner.all_ran());
        State {
            inner: Mutex::new(inner),
            ready,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The suite in force and its generation.
    pub fn suite(&self) -> (Arc<Suite>, u64) {
        let g = self.lock();
        (g.suite.clone(), g.generation)
    }

    /// Whether a check currently has a result (used to resume its schedule after a reload).
    pub fn has_result(&self, name: &str) -> bool {
        self.lock()
            .entries
            .get(name)
            .is_some_and(|e| e.result.is_some())
    }

    /// Stores and renders a finished run; ignored when the suite changed since it started.
    /// Returns the status change it brings, if any, for the log.
    pub fn record(&self, generation: u64, result: CheckResult) -> Option<Transition> {
        let mut g = self.lock();
        if g.generation != generation {
            return None;
        }
        let suite = g.suite.file.suite.clone();
        let entry = g.entries.get_mut(&result.name)?;
        let change = Transition::between(&suite, entry.result.as_deref(), &result);
        let class = result.error.as_ref().and_then(|e| e.failure_class());
        if let Some(i) = class.and_then(|c| FailureClass::ALL.iter().position(|x| *x == c)) {
            entry.failures[i] += 1;
        }
        entry.result = Some(Arc::new(result));
        entry.render(&suite);
        if !self.is_ready() && g.all_ran() {
            self.ready.store(true, Ordering::Release);
        }
        change
    }

    /// Puts a reloaded suite in force. Results survive only for checks `keep` accepts (still
    /// present and unchanged); counters survive for every check still present.
    pub fn swap_suite(
        &self,
        suite: Arc<Suite>,
        intervals: HashMap<String, Duration>,
        keep: &dyn Fn(&str) -> bool,
    ) {
        let mut g = self.lock();
        let old = std::mem::take(&mut g.entries);
        g.entries = entries(&suite, &intervals, |name| match old.get(name) {
            Some(e) => (e.result.clone().filter(|_| keep(name)), e.failures),
            None => (None, [0; CLASSES]),
        });
        g.suite = suite;
        g.generation += 1;
        g.reload_ok = true;
        g.reload_success_unix = unix_now();
    }

    /// Records a reload that failed (the previous suite stays in force).
    pub fn reload_failed(&self) {
        self.lock().reload_ok = false;
    }

    /// True once every check of the start-up suite has run (a latch: reloads keep it).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// (checks with a result, checks in the suite).
    pub fn progress(&self) -> (usize, usize) {
        let g = self.lock();
        let done = g.entries.values().filter(|e| e.result.is_some()).count();
        (done, g.entries.len())
    }

    /// A copy of what `/metrics` shows, in suite order.
    pub fn snapshot(&self) -> Snapshot {
        let g = self.lock();
        let checks = g
            .suite
            .file
            .checks
            .iter()
            .filter_map(|c| g.entries.get(&c.name).cloned())
            .collect();
        Snapshot {
            suite: g.suite.file.suite.clone(),
            checks,
            reload_ok: g.reload_ok,
            reload_success_unix: g.reload_success_unix,
        }
    }
}

type Carried = (Option<Arc<CheckResult>>, [u64; CLASSES]);

/// One rendered entry per check of `suite`, with what `carry` brings over.
fn entries(
    suite: &Suite,
    intervals: &HashMap<String, Duration>,
    carry: impl Fn(&str) -> Carried,
) -> HashMap<String, CheckEntry> {
    suite
        .check_names()
        .into_iter()
        .map(|name| {
            let (result, failures) = carry(name);
            let interval = intervals.get(name).copied().unwrap_or_default();
            let entry = CheckEntry::new(&suite.file.suite, name, interval, result, failures);
            (name.to_string(), entry)
        })
        .collect()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
