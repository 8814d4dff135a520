//! Unit tests of the `rotation_plan` kind: state files missing, malformed, stuck, failed and
//! done, judged at a pinned instant, and the series written from them.

use super::*;
use crate::kinds::Cache;
use crate::model::CheckResult;
use serde_json::{json, Value};
use std::sync::Arc;

/// The pinned evaluation instant.
const AT: &str = "2026-01-01T12:00:00Z";

fn at() -> SystemTime {
    humantime::parse_rfc3339(AT).unwrap()
}

/// `AT` minus `mins` minutes, as the plan runner writes times.
fn before(mins: u64) -> String {
    let t = at() - Duration::from_secs(mins * 60);
    humantime::format_rfc3339_millis(t).to_string()
}

/// A suite in `dir` with one `rotation_plan` check (`spec`, `expect` as YAML flow maps).
fn suite(dir: &Path, spec: &str, expect: &str) -> Arc<crate::suite::Suite> {
    let text = format!(
        "suite: t\nchecks:\n  - name: rotation\n    rotation_plan: {spec}\n    expect: {expect}\n"
    );
    Arc::new(crate::suite::load_str(&text, &dir.join("suite.yaml")).unwrap())
}

fn run(dir: &Path, spec: &str, expect: &str) -> CheckResult {
    let s = suite(dir, spec, expect);
    let check = s.file.checks[0].clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = Arc::new(Cache::default());
    rt.block_on(crate::engine::run_check(&s, &check, Some(at()), cache))
}

/// A state file with the given run status and steps `(name, status, started, finished)`.
fn state(status: &str, steps: &[(&str, &str, Option<String>, Option<String>)]) -> Value {
    let steps: Vec<Value> = steps
        .iter()
        .map(|(name, st, started, finished)| {
            json!({"name": name, "status": st, "started_at": started, "finished_at": finished,
                   "attempts": 1, "changed": false, "certs": [], "gate": null,
                   "message": if *st == "failed" { Some("gate server-tls failed: vault-listener: chain: unknown_issuer") } else { None }})
        })
        .collect();
    json!({"version": 1, "suite": "t", "run_id": "r1", "status": status,
           "started_at": before(50), "updated_at": before(5), "changed": true,
           "steps": steps, "a_field_added_later": {"x": 1}})
}

fn write(dir: &Path, v: &Value) {
    std::fs::create_dir_all(dir.join("st")).unwrap();
    std::fs::write(dir.join("st/state.json"), v.to_string()).unwrap();
}

fn assertion<'a>(r: &'a CheckResult, name: &str) -> &'a crate::model::Assertion {
    r.assertions
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no {name} in {:#?}", r.assertions))
}

/// Samples of one family as (labels after suite/check, value).
fn samples(r: &CheckResult, family: &str) -> Vec<(String, f64)> {
    let text = crate::metrics::render_probe("t", r, 0);
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} ")))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let labels = series
                .trim_start_matches(family)
                .replace("suite=\"t\",check=\"rotation\"", "");
            (labels, value.parse().unwrap())
        })
        .collect()
}

const SPEC: &str = "{state_dir: st}";

#[test]
fn a_missing_state_file_is_no_run_yet_and_says_so_in_the_series() {
    let d = tempfile::tempdir().unwrap();
    let r = run(d.path(), SPEC, "{}");
    assert_eq!(r.status, Status::Pass, "{:#?}", r.assertions);
    assert!(assertion(&r, "state")
        .message
        .starts_with("no plan run yet: "));
    assert_eq!(r.assertions.len(), 1);
    assert_eq!(
        samples(&r, "rotcheck_plan_status"),
        [
            ("{,status=\"none\"}".to_string(), 1.0),
            ("{,status=\"running\"}".to_string(), 0.0),
            ("{,status=\"failed\"}".to_string(), 0.0),
            ("{,status=\"completed\"}".to_string(), 0.0),
        ]
    );
    assert!(samples(&r, "rotcheck_plan_step_status").is_empty());
    assert_eq!(
        samples(&r, "rotcheck_plan_stuck_after_seconds"),
        [("{}".to_string(), 1800.0)]
    );
    // With max_age, no run on record is overdue.
    let r = run(d.path(), SPEC, "{max_age: 30d}");
    assert_eq!(r.status, Status::Fail);
    assert_eq!(
        assertion(&r, "max_age").reason.as_deref(),
        Some("rotation_overdue")
    );
}

#[test]
fn malformed_state_files_fail_with_one_line_and_no_series() {
    let d = tempfile::tempdir().unwrap();
    let bad_time = {
        let mut v = state("running", &[]);
        v["updated_at"] = json!("yesterday");
        v
    };
    let bad_status = state("running", &[("a", "stalled", None, None)]);
    let many: Vec<_> = (0..65)
        .map(|i| (format!("s{i}"), "pending", None, None))
        .collect();
    let many: Vec<_> = many
        .iter()
        .map(|(n, s, a, b)| (n.as_str(), *s, a.clone(), b.clone()))
        .collect();
    let cases = [
        (json!("not an object"), "invalid type"),
        (bad_time, "updated_at \"yesterday\" is not an RFC 3339 time"),
        (bad_status, "unknown variant `stalled`"),
        (state("running", &many), "65 steps, at most 64"),
    ];
    for (v, want) in cases {
        write(d.path(), &v);
        let r = run(d.path(), SPEC, "{}");
        assert_eq!(r.status, Status::Fail, "{want}");
        let a = assertion(&r, "state");
        assert_eq!(a.reason.as_deref(), Some("state_malformed"));
        assert!(a.message.contains(want), "{want}: {}", a.message);
        assert!(a.message.contains("move it aside"), "{}", a.message);
        assert!(!a.message.contains('\n'));
        assert!(samples(&r, "rotcheck_plan_status").is_empty());
    }
    std::fs::write(d.path().join("st/state.json"), b"{\"version\": 1, ").unwrap();
    let r = run(d.path(), SPEC, "{}");
    assert_eq!(
        assertion(&r, "state").reason.as_deref(),
        Some("state_malformed")
    );
}

#[test]
fn an_unreadable_state_file_is_an_error_of_the_readers_class() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("st")).unwrap();
    let fifo = d.path().join("st/state.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let r = run(d.path(), SPEC, "{}");
    assert_eq!(r.status, Status::Error);
    assert_eq!(
        assertion(&r, "state").reason.as_deref(),
        Some("not_regular_file")
    );
    assert_eq!(r.error.as_ref().unwrap().class, "not_regular_file");
}

#[test]
fn a_step_in_progress_past_stuck_after_fails_rotation_stuck() {
    let d = tempfile::tempdir().unwrap();
    let steps = [
        ("admin-client", "done", Some(before(50)), Some(before(48))),
        ("server-tls", "applied", Some(before(45)), None),
        ("agents", "pending", None, None),
    ];
    write(d.path(), &state("running", &steps));
    let r = run(d.path(), SPEC, "{}");
    assert_eq!(r.status, Status::Fail);
    let a = assertion(&r, "stuck");
    assert_eq!(a.reason.as_deref(), Some("rotation_stuck"));
    assert!(
        a.message.starts_with("step \"server-tls\" has been in progress for 45m (now applied: its gate has not passed yet), longer than stuck_after 30m"),
        "{}",
        a.message
    );
    assert!(a.message.contains("resume with `rotcheck rotate plan -c "));
    assert_eq!(assertion(&r, "result").status, Status::Pass);
    // A longer stuck_after: in progress, not stuck.
    let r = run(d.path(), SPEC, "{stuck_after: 1h}");
    assert_eq!(r.status, Status::Pass, "{:#?}", r.assertions);
    assert_eq!(
        assertion(&r, "stuck").message,
        "step \"server-tls\" in progress for 45m (now applied: its gate has not passed yet; stuck after 1h)"
    );
    assert_eq!(
        samples(&r, "rotcheck_plan_stuck_after_seconds"),
        [("{}".to_string(), 3600.0)]
    );
    // The series: one-hot per step, since-timestamps for all but pending.
    let states = samples(&r, "rotcheck_plan_step_status");
    assert_eq!(states.len(), 15);
    let on: Vec<&str> = states
        .iter()
        .filter(|(_, v)| *v == 1.0)
        .map(|(l, _)| l.as_str())
        .collect();
    assert_eq!(
        on,
        [
            "{,step=\"admin-client\",status=\"done\"}",
            "{,step=\"agents\",status=\"pending\"}",
            "{,step=\"server-tls\",status=\"applied\"}",
        ]
    );
    let t = |m: u64| secs(at()) - (m * 60) as f64;
    assert_eq!(
        samples(&r, "rotcheck_plan_step_since_timestamp_seconds"),
        [
            ("{,step=\"admin-client\"}".to_string(), t(48)),
            ("{,step=\"server-tls\"}".to_string(), t(45)),
        ]
    );
    assert_eq!(
        samples(&r, "rotcheck_plan_last_transition_timestamp_seconds"),
        [("{}".to_string(), t(5))]
    );
}

#[test]
fn a_failed_run_fails_rotation_failed_naming_the_step_and_why() {
    let d = tempfile::tempdir().unwrap();
    let steps = [
        ("admin-client", "done", Some(before(50)), Some(before(48))),
        ("server-tls", "failed", Some(before(45)), Some(before(40))),
    ];
    write(d.path(), &state("failed", &steps));
    let r = run(d.path(), SPEC, "{}");
    assert_eq!(r.status, Status::Fail);
    assert_eq!(assertion(&r, "stuck").status, Status::Pass);
    let a = assertion(&r, "result");
    assert_eq!(a.reason.as_deref(), Some("rotation_failed"));
    assert!(
        a.message.starts_with("run r1 failed at step \"server-tls\" (attempt 1): gate server-tls failed: vault-listener: chain: unknown_issuer; "),
        "{}",
        a.message
    );
    assert_eq!(
        samples(&r, "rotcheck_plan_status")
            .iter()
            .find(|(_, v)| *v == 1.0)
            .unwrap()
            .0,
        "{,status=\"failed\"}"
    );
    assert!(a.message.ends_with("suite.yaml`"), "{}", a.message);
    let r = run(d.path(), SPEC, "{result: any}");
    assert_eq!(r.status, Status::Pass, "{:#?}", r.assertions);
    // Another suite's plan: the hint names that suite, not this file.
    let mut other = state("failed", &steps);
    other["suite"] = json!("prod");
    // A message that quotes a token (it should never): the token is not repeated.
    let token = format!("hvs.CAESI{}", "Q".repeat(90));
    other["steps"][1]["message"] = json!(format!("login answered 403 for {token}"));
    write(d.path(), &other);
    let r = run(d.path(), SPEC, "{}");
    assert!(
        assertion(&r, "result")
            .message
            .ends_with("resume with `rotcheck rotate plan -c SUITE` (the suite file of \"prod\")"),
        "{:#?}",
        r.assertions
    );
    let text = serde_json::to_string(&r).unwrap() + &crate::metrics::render_probe("t", &r, 0);
    assert!(!text.contains("CAESI"), "{text}");
    assert!(
        text.contains("login answered 403 for hvs.[redacted]"),
        "{text}"
    );
}

#[test]
fn a_completed_run_passes_until_max_age() {
    let d = tempfile::tempdir().unwrap();
    let steps = [
        ("admin-client", "done", Some(before(50)), Some(before(48))),
        ("final", "done", Some(before(6)), Some(before(5))),
    ];
    write(d.path(), &state("completed", &steps));
    let r = run(d.path(), SPEC, "{result: completed, max_age: 1h}");
    assert_eq!(r.status, Status::Pass, "{:#?}", r.assertions);
    assert_eq!(
        assertion(&r, "state").message,
        "run r1 of suite \"t\": completed, 2/2 steps done, last transition 5m ago"
    );
    let r = run(d.path(), SPEC, "{max_age: 2m}");
    let a = assertion(&r, "max_age");
    assert_eq!(a.reason.as_deref(), Some("rotation_overdue"));
    assert!(
        a.message
            .starts_with("the last run completed 5m ago, longer than max_age 2m"),
        "{}",
        a.message
    );
    // A run in progress is not completed.
    write(d.path(), &state("running", &steps));
    let r = run(d.path(), SPEC, "{result: completed}");
    assert_eq!(
        assertion(&r, "result").reason.as_deref(),
        Some("rotation_incomplete")
    );
}

#[test]
fn the_suites_own_plan_is_found_and_a_suite_without_one_is_a_config_error() {
    let d = tempfile::tempdir().unwrap();
    let r = run(d.path(), "{}", "{}");
    assert_eq!(r.status, Status::Error);
    assert_eq!(r.error.as_ref().unwrap().class, "config");
    assert!(
        assertion(&r, "state")
            .message
            .contains("has no plan: section"),
        "{:#?}",
        r.assertions
    );
    let text = [
        "suite: own",
        "checks:",
        "  - name: rotation",
        "    stage: watch",
        "    rotation_plan: {}",
        "  - name: c",
        "    stage: s",
        "    command: [\"true\"]",
        "plan:",
        "  steps:",
        "    - name: one",
        "      gate: s",
        "",
    ]
    .join("\n");
    let path = d.path().join("own.yaml");
    std::fs::write(&path, text).unwrap();
    let s = Arc::new(crate::suite::load(&path).unwrap());
    let want = crate::rotate::plan::default_state_dir(&s).join("state.json");
    let ctx = Ctx {
        suite: s,
        now: at(),
        timeout: Duration::from_secs(5),
        cache: Arc::new(Cache::default()),
    };
    assert_eq!(state_path(&PlanSpec::default(), &ctx).unwrap(), want);
}

#[test]
fn stuck_after_zero_is_refused_at_load_time() {
    let d = tempfile::tempdir().unwrap();
    let text = "suite: t\nchecks:\n  - name: rotation\n    rotation_plan: {}\n    expect: {stuck_after: 0s}\n";
    let e = crate::suite::load_str(text, &d.path().join("s.yaml")).unwrap_err();
    assert!(
        e.to_string().contains("stuck_after must be longer than 0s"),
        "{e}"
    );
}
