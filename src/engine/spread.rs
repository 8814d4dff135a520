//! Runs checks over several runtimes, one per thread: `concurrency` lanes are dealt over
//! the runtimes, and each lane runs the next check nobody has started until none is left.
//! A check stays on its lane's runtime, so its wake-ups never cross threads, and a runtime
//! whose core is busier simply starts fewer checks.

use super::{panicked, run_check};
use crate::kinds::Cache;
use crate::model::CheckResult;
use crate::suite::{CheckSpec, Suite};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::task::JoinSet;

/// What every lane shares: the checks, the next one to start, the run's cache.
struct Shared {
    suite: Arc<Suite>,
    checks: Vec<CheckSpec>,
    next: AtomicUsize,
    at: Option<SystemTime>,
    cache: Arc<Cache>,
}

/// The results in the order of `checks`.
pub async fn run(
    suite: &Arc<Suite>,
    checks: &[&CheckSpec],
    opts: &super::RunOptions,
    cache: &Arc<Cache>,
) -> Vec<CheckResult> {
    let shared = Arc::new(Shared {
        suite: suite.clone(),
        checks: checks.iter().map(|c| (*c).clone()).collect(),
        next: AtomicUsize::new(0),
        at: opts.at,
        cache: cache.clone(),
    });
    let lanes = opts.concurrency.clamp(1, checks.len().max(1));
    let mut set = JoinSet::new();
    for lane in 0..lanes {
        let runtime = &opts.spread[lane % opts.spread.len()];
        set.spawn_on(run_lane(shared.clone()), runtime);
    }
    let mut out: Vec<(usize, CheckResult)> = Vec::with_capacity(checks.len());
    while let Some(joined) = set.join_next().await {
        out.extend(joined.unwrap_or_default());
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Runs checks until none is left; a check that panics becomes an error result.
async fn run_lane(shared: Arc<Shared>) -> Vec<(usize, CheckResult)> {
    let mut done = Vec::new();
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.checks.len() {
            return done;
        }
        let one = shared.clone();
        // Boxed: a probe's future is kilobytes (the largest kind's state), and the task
        // would otherwise be copied in full on every move into and inside the runtime.
        let task = tokio::spawn(Box::pin(async move {
            let check = &one.checks[i];
            run_check(&one.suite, check, one.at, one.cache.clone()).await
        }));
        done.push((i, task.await.unwrap_or_else(|e| panicked(e.to_string()))));
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::{self, RunOptions, Selection};
    use crate::model::Status;

    /// Twelve `files` checks on real paths, every third one missing, run with two lanes over
    /// three runtimes: the results come back in suite order, judged as on one runtime.
    #[test]
    fn keeps_suite_order_and_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let mut yaml = String::from("suite: t\nchecks:\n");
        for i in 0..12 {
            let path = dir.path().join(format!("f{i}"));
            if i % 3 != 0 {
                std::fs::write(&path, "x").unwrap();
            }
            yaml.push_str(&format!(
                "  - name: c{i:02}\n    files:\n      - path: {}\n        kind: other\n",
                path.display()
            ));
        }
        let suite =
            std::sync::Arc::new(crate::suite::load_str(&yaml, &dir.path().join("s.yaml")).unwrap());
        let checks = Selection::default().select(&suite).unwrap();
        let main = crate::cli::runtime().unwrap();
        let others: Vec<_> = (0..2).map(|_| crate::cli::runtime().unwrap()).collect();
        let threads: Vec<_> = others.iter().map(|rt| rt.handle().clone()).collect();
        let drivers: Vec<_> = others
            .into_iter()
            .map(|rt| std::thread::spawn(move || rt.block_on(std::future::pending::<()>())))
            .collect();
        let spread = RunOptions {
            concurrency: 2,
            spread: [vec![main.handle().clone()], threads].concat(),
            ..Default::default()
        };
        let one = main.block_on(engine::run(&suite, &checks, &RunOptions::default()));
        let many = main.block_on(engine::run(&suite, &checks, &spread));
        let seen = |r: &crate::model::Report| -> Vec<(String, Status)> {
            r.checks
                .iter()
                .map(|c| (c.name.clone(), c.status))
                .collect()
        };
        assert_eq!(seen(&many), seen(&one));
        assert_eq!(many.checks[0].status, Status::Fail);
        assert_eq!(many.checks[1].status, Status::Pass);
        assert_eq!(many.checks[11].name, "c11");
        drop(drivers);
    }
}
