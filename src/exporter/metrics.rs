//! What `serve`'s `/metrics` adds to the shared families: each check's schedule and failure
//! counters, cached per run, and the exporter's own state.

use crate::metrics::text::{write_family, Exposition};
use crate::metrics::{
    all, build_info, flag, ratio_series, static_series, CHECK_INTERVAL, CONNECT_FAILURES,
    RELOAD_OK, RELOAD_TIME,
};
use crate::model::{CheckResult, FailureClass};
use std::sync::Arc;
use std::time::Duration;

/// One check as serve knows it: its schedule, latest result (none before the first run),
/// failure counters (indexed like `FailureClass::ALL`), and those rendered as text.
#[derive(Debug, Clone)]
pub struct CheckEntry {
    pub name: String,
    pub interval: Duration,
    pub result: Option<Arc<CheckResult>>,
    pub failures: [u64; FailureClass::ALL.len()],
    /// The series that only change when the check runs or the suite reloads.
    pub rendered: Arc<Rendered>,
}

impl CheckEntry {
    /// An entry, rendered for `suite`.
    pub fn new(
        suite: &str,
        name: &str,
        interval: Duration,
        result: Option<Arc<CheckResult>>,
        failures: [u64; FailureClass::ALL.len()],
    ) -> Self {
        let mut entry = CheckEntry {
            name: name.to_string(),
            interval,
            result,
            failures,
            rendered: Arc::default(),
        };
        entry.render(suite);
        entry
    }

    /// Re-renders the cached series after the result or counters changed.
    pub fn render(&mut self, suite: &str) {
        let mut e = Exposition::new(all());
        let base = [("suite", suite), ("check", self.name.as_str())];
        if let Some(r) = &self.result {
            static_series(&mut e, suite, r);
        }
        e.sample(&CHECK_INTERVAL, &base, self.interval.as_secs_f64());
        counter_series(&mut e, &base, &self.failures);
        self.rendered = Arc::new(Rendered::from_bodies(e.into_bodies()));
    }
}

/// A check's series rendered once per run, so a scrape only concatenates (and computes the
/// time-dependent lifetime ratios): one exact-size text holding a fragment per family of
/// `ALL`, and where each fragment ends.
#[derive(Debug, Default)]
pub struct Rendered {
    text: String,
    ends: Vec<usize>,
}

impl Rendered {
    fn from_bodies(bodies: Vec<String>) -> Self {
        let mut text = String::with_capacity(bodies.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(bodies.len());
        for b in &bodies {
            text.push_str(b);
            ends.push(text.len());
        }
        Rendered { text, ends }
    }

    fn part(&self, family: usize) -> &str {
        let start = family
            .checked_sub(1)
            .and_then(|i| self.ends.get(i))
            .copied()
            .unwrap_or(0);
        let end = self.ends.get(family).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or("")
    }

    fn len(&self) -> usize {
        self.text.len()
    }
}

/// Everything `/metrics` shows, copied out of the exporter's state.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub suite: String,
    pub checks: Vec<CheckEntry>,
    pub reload_ok: bool,
    pub reload_success_unix: f64,
}

/// `/metrics`: every check's latest results, counters, schedule, and the exporter's own state.
pub fn render_serve(s: &Snapshot, now_unix: i64) -> String {
    let mut live = Exposition::new(all());
    for r in s.checks.iter().filter_map(|c| c.result.as_ref()) {
        ratio_series(
            &mut live,
            &[("suite", &s.suite), ("check", &r.name)],
            r,
            now_unix,
        );
    }
    live.sample(&RELOAD_OK, &[], flag(s.reload_ok));
    live.sample(&RELOAD_TIME, &[], s.reload_success_unix);
    build_info(&mut live);
    let live = live.into_bodies();
    let cached: usize = s.checks.iter().map(|c| c.rendered.len()).sum();
    let mut out =
        String::with_capacity(cached + live.iter().map(String::len).sum::<usize>() + 8192);
    for (i, def) in all().iter().enumerate() {
        let parts = s.checks.iter().map(|c| c.rendered.part(i));
        write_family(&mut out, def, parts.chain(live.get(i).map(String::as_str)));
    }
    out
}

fn counter_series(e: &mut Exposition, base: &[(&str, &str); 2], failures: &[u64]) {
    for (class, n) in FailureClass::ALL.iter().zip(failures) {
        let labels = [base[0], base[1], ("class", class.as_str())];
        e.sample(&CONNECT_FAILURES, &labels, *n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{cert, result};
    use crate::model::*;

    #[test]
    fn serve_adds_schedule_counters_and_exporter_state() {
        let mut failures = [0; FailureClass::ALL.len()];
        failures[1] = 4;
        let s = Snapshot {
            suite: "prod".into(),
            checks: vec![CheckEntry::new(
                "prod",
                "a",
                Duration::from_secs(60),
                None,
                failures,
            )],
            reload_ok: false,
            reload_success_unix: 1_700_000_000.0,
        };
        let text = render_serve(&s, 0);
        assert!(text.contains("# TYPE rotcheck_connect_failures_total counter\n"));
        assert!(text.contains(
            "rotcheck_connect_failures_total{suite=\"prod\",check=\"a\",class=\"reset\"} 4\n"
        ));
        assert_eq!(text.matches("rotcheck_connect_failures_total{").count(), 9);
        assert!(text.contains("rotcheck_check_interval_seconds{suite=\"prod\",check=\"a\"} 60\n"));
        assert!(text.contains("rotcheck_config_last_reload_successful 0\n"));
        assert!(text.contains("rotcheck_config_last_reload_success_timestamp_seconds 1700000000\n"));
        assert!(text.contains("rotcheck_build_info{version=\""));
        assert!(!text.contains("rotcheck_check_success{"));
    }

    #[test]
    fn serve_groups_cached_and_live_series_by_family() {
        let entry = |name: &str| {
            let mut r = result(name, Status::Pass);
            r.certs = vec![cert("leaf", "l", "01", 0, 100)];
            CheckEntry::new(
                "prod",
                name,
                Duration::from_secs(60),
                Some(Arc::new(r)),
                [0; 9],
            )
        };
        let s = Snapshot {
            suite: "prod".into(),
            checks: vec![entry("a"), entry("b")],
            reload_ok: true,
            reload_success_unix: 0.0,
        };
        let early = render_serve(&s, 25);
        let late = render_serve(&s, 75);
        for text in [&early, &late] {
            let mut families: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .collect();
            let n = families.len();
            families.dedup();
            assert_eq!(families.len(), n, "a family is split:\n{text}");
            let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            let names: Vec<&str> = samples
                .iter()
                .map(|l| l.split(['{', ' ']).next().unwrap())
                .collect();
            let mut grouped = names.clone();
            grouped.dedup();
            assert_eq!(grouped.len(), n, "samples of a family are not together");
        }
        assert!(early.contains("check=\"b\",position=\"leaf\"} 0.75\n"));
        assert!(late.contains("check=\"b\",position=\"leaf\"} 0.25\n"));
        let strip = |t: &str| {
            t.lines()
                .filter(|l| !l.contains("ratio"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(&early), strip(&late));
    }
}

#[cfg(test)]
mod perf {
    use super::*;
    use crate::metrics::tests::{cert, result};
    use crate::model::*;

    /// `cargo test --release --lib render_1000 -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn render_1000() {
        let checks: Vec<CheckEntry> = (0..1000)
            .map(|i| {
                let mut r = result(&format!("tls-{i:04}"), Status::Pass);
                r.certs = vec![
                    cert(
                        "leaf",
                        "vault.lab.rotcheck.test",
                        "3d01fb1d9baab5b85342d0608002827aeb1a7f2e",
                        1795384883,
                        1797976943,
                    ),
                    cert(
                        "intermediate",
                        "rotcheck lab pki-prod intermediate CA",
                        "743780bf9cd4e4f03f8d8b9640e63e6930e864a0",
                        1795384883,
                        1953064943,
                    ),
                ];
                r.assertions = vec![
                    Assertion::pass("handshake", ""),
                    Assertion::pass("chain", ""),
                    Assertion::pass("expiry", ""),
                ];
                r.facts.tls = Some(TlsFacts {
                    version: Some("1.3".into()),
                    ..Default::default()
                });
                CheckEntry::new(
                    "bench",
                    &r.name.clone(),
                    Duration::from_secs(30),
                    Some(Arc::new(r)),
                    [0; 9],
                )
            })
            .collect();
        let s = Snapshot {
            suite: "bench".into(),
            checks,
            reload_ok: true,
            reload_success_unix: 1.0,
        };
        let t = std::time::Instant::now();
        let mut len = 0;
        for _ in 0..20 {
            len = render_serve(&s, 1795384900).len();
        }
        println!(
            "render: {:.2} ms for {len} bytes",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
        let body = render_serve(&s, 1795384900);
        let t = std::time::Instant::now();
        for _ in 0..20 {
            len = crate::redact::redact(&body).len();
        }
        println!(
            "redact: {:.2} ms for {len} bytes",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
    }
}
