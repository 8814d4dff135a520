//! What serve knows between scrapes: the suite in force, each check's latest result (compact),
//! failure counters and rendered series, the reload status and the readiness latch. Results are
//! rendered when they arrive; scrapes copy a snapshot out under a short lock and never wait
//! on a probe.

use super::events::Transition;
use super::metrics::{CheckEntry, Failures, Snapshot};
use crate::model::{CheckResult, FailureClass};
use crate::suite::Suite;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// The shared state; cheap to lock, never held across an await or a rendering.
pub struct State {
    inner: Mutex<Inner>,
    ready: AtomicBool,
}

struct Inner {
    suite: Arc<Suite>,
    /// Bumped on every reload; results from an older generation are dropped.
    generation: u64,
    /// One entry per check, in suite order; a scrape shares them, a run replaces its own.
    entries: Vec<Arc<CheckEntry>>,
    index: HashMap<Arc<str>, usize>,
    reload_ok: bool,
    reload_success_unix: f64,
}

impl Inner {
    fn all_ran(&self) -> bool {
        self.entries.iter().all(|e| e.result.is_some())
    }

    fn entry(&self, name: &str) -> Option<&Arc<CheckEntry>> {
        self.index.get(name).and_then(|&i| self.entries.get(i))
    }
}

impl State {
    /// State for the suite loaded at start-up.
    pub fn new(suite: Arc<Suite>, intervals: HashMap<String, Duration>) -> Self {
        let (entries, index) = entries(&suite, &intervals, |_| None);
        let inner = Inner {
            suite,
            generation: 0,
            entries,
            index,
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
        self.lock().entry(name).is_some_and(|e| e.result.is_some())
    }

    /// Stores and renders a finished run; ignored when the suite changed since it started.
    /// Returns the status change it brings, if any, for the log. The rendering happens
    /// outside the lock; one check's runs never overlap, so nothing else replaces its entry
    /// meanwhile (a reload bumps the generation and the run is dropped). The result itself
    /// is not kept: the entry holds its series and its compact form (stored.rs).
    pub fn record(&self, generation: u64, result: CheckResult) -> Option<Transition> {
        let (old, suite) = {
            let g = self.lock();
            if g.generation != generation {
                return None;
            }
            (g.entry(&result.name)?.clone(), g.suite.clone())
        };
        let suite_name = &suite.file.suite;
        let before = old.result.as_ref().map(|r| r.status);
        let change = Transition::between(suite_name, before, &result);
        let failures = old.failures.map(|f| counted(f, &result));
        let entry = CheckEntry::new(
            suite_name,
            old.name.clone(),
            old.interval,
            Some(&result),
            failures,
        );
        drop(result);
        let mut g = self.lock();
        if g.generation != generation {
            return None;
        }
        let i = *g.index.get(&*old.name)?;
        g.entries[i] = Arc::new(entry);
        if !self.is_ready() && g.all_ran() {
            self.ready.store(true, Ordering::Release);
        }
        change
    }

    /// Puts a reloaded suite in force. Checks `keep` accepts (still present and unchanged,
    /// so their series are too) keep their entry as it is; the other checks still present
    /// keep their counters.
    pub fn swap_suite(
        &self,
        suite: Arc<Suite>,
        intervals: HashMap<String, Duration>,
        keep: &dyn Fn(&str) -> bool,
    ) {
        let old: HashMap<Arc<str>, Arc<CheckEntry>> = {
            let g = self.lock();
            g.entries
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect()
        };
        let (entries, index) = entries(&suite, &intervals, |name| {
            let e = old.get(name)?;
            Some(if keep(name) && e.result.is_some() {
                Carried::Entry(e.clone())
            } else {
                Carried::Counters(e.failures)
            })
        });
        let mut g = self.lock();
        g.entries = entries;
        g.index = index;
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
        let done = g.entries.iter().filter(|e| e.result.is_some()).count();
        (done, g.entries.len())
    }

    /// What `/metrics` and `/status` show, in suite order: the entries are shared, not copied.
    pub fn snapshot(&self) -> Snapshot {
        let g = self.lock();
        Snapshot {
            suite: g.suite.file.suite.clone(),
            checks: g.entries.clone(),
            reload_ok: g.reload_ok,
            reload_success_unix: g.reload_success_unix,
        }
    }
}

/// The counters after `result`: its connection failure class counted.
fn counted(mut failures: Failures, result: &CheckResult) -> Failures {
    let class = result.error.as_ref().and_then(|e| e.failure_class());
    if let Some(i) = class.and_then(|c| FailureClass::ALL.iter().position(|x| *x == c)) {
        failures[i] += 1;
    }
    failures
}

/// What a check still present after a reload brings over: its whole entry, or its counters.
enum Carried {
    Entry(Arc<CheckEntry>),
    Counters(Option<Failures>),
}

/// One rendered entry per check of `suite` (in suite order) and the index by name, with what
/// `carry` brings over. Counters exist only for checks of kinds that connect.
fn entries(
    suite: &Suite,
    intervals: &HashMap<String, Duration>,
    carry: impl Fn(&str) -> Option<Carried>,
) -> (Vec<Arc<CheckEntry>>, HashMap<Arc<str>, usize>) {
    let mut index = HashMap::with_capacity(suite.file.checks.len());
    let entries = suite
        .file
        .checks
        .iter()
        .enumerate()
        .map(|(i, check)| {
            let name: Arc<str> = Arc::from(check.name.as_str());
            index.insert(name.clone(), i);
            let failures = match carry(&name) {
                Some(Carried::Entry(e)) => return e,
                Some(Carried::Counters(f)) => f,
                None => None,
            };
            let connects = crate::kinds::connects(check.kind_name());
            let failures = connects.then(|| failures.unwrap_or_default());
            let interval = intervals.get(&*name).copied().unwrap_or_default();
            Arc::new(CheckEntry::new(
                &suite.file.suite,
                name,
                interval,
                None,
                failures,
            ))
        })
        .collect();
    (entries, index)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
