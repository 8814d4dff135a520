//! What serve knows between scrapes: the suite in force, each check's latest result and
//! failure counters, the reload status and the readiness latch. Scrapes copy a snapshot out
//! under a short lock and never wait on a probe.

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
    intervals: HashMap<String, Duration>,
    results: HashMap<String, Arc<CheckResult>>,
    failures: HashMap<String, [u64; CLASSES]>,
    reload_ok: bool,
    reload_success_unix: f64,
}

impl State {
    /// State for the suite loaded at start-up.
    pub fn new(suite: Arc<Suite>, intervals: HashMap<String, Duration>) -> Self {
        let suite_is_empty = suite.file.checks.is_empty();
        let failures = suite
            .check_names()
            .into_iter()
            .map(|n| (n.to_string(), [0; CLASSES]))
            .collect();
        State {
            inner: Mutex::new(Inner {
                suite,
                generation: 0,
                intervals,
                results: HashMap::new(),
                failures,
                reload_ok: true,
                reload_success_unix: unix_now(),
            }),
            ready: AtomicBool::new(suite_is_empty),
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
        self.lock().results.contains_key(name)
    }

    /// Stores a finished run; ignored when the suite changed since the run started.
    pub fn record(&self, generation: u64, result: CheckResult) {
        let mut g = self.lock();
        if g.generation != generation || !g.failures.contains_key(&result.name) {
            return;
        }
        let class = result.error.as_ref().and_then(|e| e.failure_class());
        if let (Some(class), Some(counts)) = (class, g.failures.get_mut(&result.name)) {
            if let Some(i) = FailureClass::ALL.iter().position(|c| *c == class) {
                counts[i] += 1;
            }
        }
        g.results.insert(result.name.clone(), Arc::new(result));
        if g.results.len() >= g.failures.len() {
            self.ready.store(true, Ordering::Release);
        }
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
        let names: Vec<String> = suite.check_names().iter().map(|s| s.to_string()).collect();
        g.results
            .retain(|name, _| names.contains(name) && keep(name));
        let old = std::mem::take(&mut g.failures);
        g.failures = names
            .into_iter()
            .map(|n| {
                let counts = old.get(&n).copied().unwrap_or([0; CLASSES]);
                (n, counts)
            })
            .collect();
        g.suite = suite;
        g.intervals = intervals;
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
        (g.results.len(), g.failures.len())
    }

    /// A copy of what `/metrics` shows, in suite order.
    pub fn snapshot(&self) -> Snapshot {
        let g = self.lock();
        let checks = g
            .suite
            .file
            .checks
            .iter()
            .map(|c| CheckEntry {
                name: c.name.clone(),
                interval: g.intervals.get(&c.name).copied().unwrap_or_default(),
                result: g.results.get(&c.name).cloned(),
                failures: g.failures.get(&c.name).copied().unwrap_or([0; CLASSES]),
            })
            .collect();
        Snapshot {
            suite: g.suite.file.suite.clone(),
            checks,
            reload_ok: g.reload_ok,
            reload_success_unix: g.reload_success_unix,
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
