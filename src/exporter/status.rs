//! What `/status` and `/probe?check=NAME&debug=true` answer: serve's results as a `Report`,
//! formatted by the gate's own JSON and human formats (`/status` from the stored results'
//! JSON, stored.rs).

use super::metrics::Snapshot;
use super::stored::{self, Stored};
use crate::model::{CheckResult, Report};
use std::time::{Duration, SystemTime};

/// A report of the given results, as of now. Its `duration_seconds` is the longest run's.
pub fn report(suite: &str, checks: Vec<CheckResult>) -> Report {
    let now = SystemTime::now();
    let took = checks
        .iter()
        .map(|c| c.duration_seconds)
        .max()
        .unwrap_or(Duration::ZERO);
    Report {
        suite: suite.to_string(),
        status: Report::overall(&checks),
        started_at: now,
        duration_seconds: took,
        evaluated_at: None,
        evaluated_unix: now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        checks,
        warnings: vec![],
    }
}

/// `/status` as the gate's JSON document: the latest result of every check that has run, in
/// suite order, and how many checks have not run yet (they are left out of the report).
pub fn render_json(snapshot: &Snapshot) -> (String, usize) {
    let done: Vec<&Stored> = snapshot
        .checks
        .iter()
        .filter_map(|c| c.result.as_ref())
        .collect();
    let pending = snapshot.checks.len() - done.len();
    (stored::report_json(&snapshot.suite, &done), pending)
}

/// `/probe?debug=true`: the human report of one run, every assertion listed.
pub fn render_debug(suite: &str, result: CheckResult) -> String {
    crate::report::human::render_all(&report(suite, vec![result]))
}
