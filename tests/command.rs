//! `command` checks end to end through the real binary: exit codes, stdout expectations, env
//! and cwd, the output cap, timeouts (grandchildren included) and missing programs.

use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `gate --format json` on a suite with these checks; returns (exit code, report).
fn gate(dir: &std::path::Path, checks: &str) -> (i32, Value) {
    let suite = dir.join("suite.yaml");
    std::fs::write(&suite, format!("suite: cmd\nchecks:\n{checks}")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(["gate", "--format", "json", "-c"])
        .arg(&suite)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    (code, serde_json::from_slice(&out.stdout).unwrap())
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    let checks = report["checks"].as_array().unwrap();
    checks.iter().find(|c| c["name"] == name).unwrap()
}

/// Asserts one assertion's status and reason; returns its message.
fn expect(
    report: &Value,
    check_name: &str,
    name: &str,
    status: &str,
    reason: Option<&str>,
) -> String {
    let c = check(report, check_name);
    let all = c["assertions"].as_array().unwrap();
    let a = all
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{check_name}: no assertion {name} in {all:?}"));
    let got = (a["status"].as_str(), a["reason"].as_str());
    assert_eq!(got, (Some(status), reason), "{check_name} {name}: {a}");
    a["message"].as_str().unwrap().to_string()
}

const SUITE: &str = r#"  - name: true-passes
    command: ["true"]
  - name: false-fails
    command: ["false"]
  - name: exit-3-expected
    command: [sh, -c, "exit 3"]
    expect: {exit: 3}
  - name: exit-3-unexpected
    command: [sh, -c, "echo broken pipe to vault >&2; exit 3"]
  - name: stdout-good
    command: [echo, "state: active"]
    expect: {stdout_contains: "active", stdout_matches: "^state: (active|running)\\s*$"}
  - name: stdout-bad
    command: [echo, "state: failed"]
    expect: {stdout_contains: "state: active", stdout_matches: "^state: active"}
  - name: env-and-cwd
    command:
      argv: [sh, -c, 'echo "$ROTCHECK_TEST_VAR"; pwd']
      env: {ROTCHECK_TEST_VAR: hello-env}
      cwd: cwd-here
    expect: {stdout_contains: hello-env, stdout_matches: "/cwd-here\\s*$"}
  - name: big-output
    command: [sh, -c, "yes a-long-line-of-output | head -n 100000"]
    expect: {stdout_contains: "never printed"}
  - name: sleeps
    timeout: 1s
    command: [sleep, "30"]
  - name: sleeps-in-grandchild
    timeout: 1s
    command: [sh, -c, "sleep 30; echo done"]
  - name: not-found
    command: [rotcheck-no-such-program-xyz, --version]
  - name: bad-cwd
    command: {argv: ["true"], cwd: nowhere}
"#;

#[test]
fn commands_are_run_and_judged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cwd-here")).unwrap();
    let clock = Instant::now();
    let (code, r) = gate(dir.path(), SUITE);
    assert!(
        clock.elapsed() < Duration::from_secs(10),
        "took {:?}",
        clock.elapsed()
    );
    assert_eq!(code, 1);

    expect(&r, "true-passes", "exit", "pass", None);
    assert_eq!(check(&r, "true-passes")["status"], "pass");
    assert_eq!(check(&r, "true-passes")["facts"]["extra"]["exit_code"], "0");
    let msg = expect(&r, "false-fails", "exit", "fail", Some("exit"));
    assert!(msg.contains("false exited 1, expected exit 0"), "{msg}");
    expect(&r, "exit-3-expected", "exit", "pass", None);
    assert_eq!(
        check(&r, "exit-3-expected")["facts"]["extra"]["exit_code"],
        "3"
    );
    let msg = expect(&r, "exit-3-unexpected", "exit", "fail", Some("exit"));
    assert!(msg.contains("stderr: \"broken pipe to vault\""), "{msg}");

    expect(&r, "stdout-good", "stdout_contains", "pass", None);
    expect(&r, "stdout-good", "stdout_matches", "pass", None);
    let msg = expect(&r, "stdout-bad", "stdout_contains", "fail", Some("stdout"));
    assert!(msg.contains("found \"state: failed\""), "{msg}");
    expect(&r, "stdout-bad", "stdout_matches", "fail", Some("stdout"));

    expect(&r, "env-and-cwd", "stdout_contains", "pass", None);
    expect(&r, "env-and-cwd", "stdout_matches", "pass", None);

    let msg = expect(&r, "big-output", "stdout_contains", "fail", Some("stdout"));
    assert!(msg.contains("only the first 64 KiB were kept"), "{msg}");
    assert!(
        msg.chars().count() < 400,
        "messages quote at most ~200 chars: {msg}"
    );
}

#[test]
fn timeouts_and_missing_programs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cwd-here")).unwrap();
    let (_, r) = gate(dir.path(), SUITE);
    for name in ["sleeps", "sleeps-in-grandchild"] {
        let msg = expect(&r, name, "run", "fail", Some("timeout"));
        assert!(msg.contains("did not finish within 1s; killed it"), "{msg}");
        let took = check(&r, name)["duration_seconds"].as_f64().unwrap();
        assert!(took < 3.0, "{name} took {took}s");
    }
    let msg = expect(&r, "not-found", "run", "error", Some("not_found"));
    assert!(
        msg.starts_with("rotcheck-no-such-program-xyz: program not found"),
        "{msg}"
    );
    assert_eq!(check(&r, "not-found")["status"], "error");
    assert_eq!(check(&r, "not-found")["error"]["class"], "not_found");
    expect(&r, "bad-cwd", "run", "error", Some("bad_cwd"));
}

/// `gate --wait` on a check that passes once a file appears (written 2.5 s in).
#[test]
fn gate_wait_shows_each_attempt_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ready");
    let suite = dir.path().join("suite.yaml");
    let body = format!(
        "suite: wait\nchecks:\n  - name: appears\n    command: [test, -e, {}]\n  - name: fine\n    command: [\"true\"]\n",
        marker.display()
    );
    std::fs::write(&suite, body).unwrap();
    let gate = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .args(["gate", "--format", "json", "-c"])
            .arg(&suite)
            .args(extra)
            .output()
            .unwrap()
    };
    let plain = gate(&[]);
    assert_eq!(plain.status.code(), Some(1));
    assert!(plain.stderr.is_empty(), "no progress without --wait");

    let writer = {
        let marker = marker.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2500));
            std::fs::write(marker, "").unwrap();
        })
    };
    let out = gate(&["--wait", "30s", "--interval", "1s"]);
    writer.join().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 3, "{stderr}");
    assert!(
        lines[0].starts_with("rotcheck: wait: attempt 1 after "),
        "{stderr}"
    );
    assert!(
        lines[0].ends_with(" of 30s: 1 check still failing: appears (exit)"),
        "{stderr}"
    );
    let last = lines.last().unwrap();
    let n = lines.len().to_string();
    assert!(last.contains(&format!("attempt {n} after ")), "{stderr}");
    assert!(last.ends_with(": every check passes"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "pass", "stdout is the report alone");
}
