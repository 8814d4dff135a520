//! Plan state in the exporter, end to end: a real `rotcheck rotate plan` against the lab Vault,
//! SIGKILLed mid-step, then failed, then resumed to completion, while `rotcheck serve` exports
//! its `rotation_plan` check and a real Prometheus scrapes it with the shipped rules (`for`
//! shortened to 5s): `RotcheckRotationStuck` and `RotcheckRotationFailed` go pending and firing and
//! resolve again, and the dashboard's "Rotation plan" row has data.

mod exporter_support;

use exporter_support::prom::{self, Metrics, Prometheus};
use exporter_support::serve::Serve;
use exporter_support::{deadline_loop, repo_path};
use rotcheck_lab::{Lab, LabConfig};
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// The check's `stuck_after` in this test (the shipped default is 30m).
const STUCK_AFTER: u64 = 3;

/// The lab, its files and the suite; the lab runs on the test's own runtime.
struct Env {
    _rt: tokio::runtime::Runtime,
    lab: Lab,
    dir: PathBuf,
    suite: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Env {
    fn start() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let cfg = LabConfig {
            dir: Some(tmp.path().join("lab")),
            ..LabConfig::default()
        };
        let lab = rt.block_on(Lab::start(cfg)).unwrap();
        let dir = lab.files().dir.clone();
        let suite = dir.join("plan-state.yaml");
        std::fs::write(&suite, suite_yaml(&dir, &lab)).unwrap();
        Env {
            _rt: rt,
            lab,
            dir,
            suite,
            _tmp: tmp,
        }
    }

    /// `rotcheck rotate plan -c SUITE --force` with extra environment.
    fn plan(&self, envs: &[(&str, &str)]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .args(["rotate", "plan", "-c"])
            .arg(&self.suite)
            .arg("--force")
            .envs(envs.iter().copied())
            .env_remove("VAULT_TOKEN")
            .output()
            .unwrap()
    }

    fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.join("rotate/state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

fn suite_yaml(dir: &Path, lab: &Lab) -> String {
    format!(
        r#"suite: plan-state
vars:
  dir: "{dir}"
  vault: "{vault}"
  sni: vault.lab.rotcheck.test
defaults:
  timeout: 5s
vault:
  addr: https://${{vault}}
  server_name: ${{sni}}
  ca_file: ${{dir}}/vault/ca_chain.pem
  client_cert: ${{dir}}/vault/tls-admin/admin.crt
  client_key: ${{dir}}/vault/tls-admin/admin.key
  auth: {{ cert: {{ mount: cert, role: vault-admin }} }}
checks:
  - name: admin-files
    stage: admin-client
    files:
      - {{ path: "${{dir}}/vault/tls-admin/admin.key", kind: key, pairs_with: "${{dir}}/vault/tls-admin/admin.crt" }}
  - name: final-seal
    stage: final
    vault_health: {{}}
    expect: {{ sealed: false }}
  - name: rotation
    stage: watch
    rotation_plan: {{}}
    expect: {{ stuck_after: {STUCK_AFTER}s }}
plan:
  state_dir: ${{dir}}/rotate
  wait: 5s
  interval: 500ms
  steps:
    - name: admin-client
      gate: admin-client
      actions:
        - issue: {{ mount: pki-prod, role: admin-client, cn: vault-admin-lab, ttl: 720h, key: "${{dir}}/vault/tls-admin/admin.key", cert: "${{dir}}/vault/tls-admin/admin.crt", ca: "${{dir}}/vault/tls-admin/issuing_ca.pem" }}
    - name: final
      gate: final
"#,
        dir = dir.display(),
        vault = lab.addr(),
    )
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Prometheus and promtool are needed; missing, the test skips, unless
/// `ROTCHECK_REQUIRE_TOOLS` is set (scripts/test.sh sets it), when it fails.
fn tools_missing() -> bool {
    let missing = prom::skip_without(&["prometheus", "promtool"]);
    if missing && std::env::var_os("ROTCHECK_REQUIRE_TOOLS").is_some() {
        panic!("prometheus and promtool are needed; ROTCHECK_REQUIRE_TOOLS is set");
    }
    missing
}

/// The Unix time of an RFC 3339 time of the state file.
fn unix(t: &Value) -> f64 {
    let t = humantime::parse_rfc3339_weak(t.as_str().unwrap()).unwrap();
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The rotation check's series, from a fresh scrape.
struct Plan(Metrics);

impl Plan {
    fn of(serve: &Serve) -> Plan {
        Plan(serve.metrics())
    }

    fn value(&self, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut all = vec![("suite", "plan-state"), ("check", "rotation")];
        all.extend_from_slice(labels);
        self.0.value(family, &all)
    }

    /// The one status of `rotcheck_plan_status` that is 1.
    fn run_status(&self) -> Vec<String> {
        self.on("rotcheck_plan_status", &[])
    }

    /// The one state of a step that is 1.
    fn step(&self, step: &str) -> Vec<String> {
        self.on("rotcheck_plan_step_status", &[("step", step)])
    }

    fn on(&self, family: &str, labels: &[(&str, &str)]) -> Vec<String> {
        let mut all = vec![("check", "rotation")];
        all.extend_from_slice(labels);
        self.0
            .find(family, &all)
            .into_iter()
            .filter(|s| s.value == 1.0)
            .map(|s| s.labels["status"].clone())
            .collect()
    }

    fn failure_reason(&self) -> Vec<String> {
        self.0
            .find("rotcheck_check_failure_reason", &[("check", "rotation")])
            .into_iter()
            .map(|s| s.labels["reason"].clone())
            .collect()
    }
}

/// The state (`pending` or `firing`) of each alert named `name`, with its labels.
fn alerts(p: &Prometheus, name: &str) -> Vec<Value> {
    let all = p.api("/api/v1/alerts").unwrap()["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    all.into_iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .collect()
}

fn wait_alert(p: &Prometheus, name: &str, state: &str, within: Duration) -> Value {
    let mut found = None;
    deadline_loop(&format!("{name} {state}"), within, || {
        found = alerts(p, name).into_iter().find(|a| a["state"] == state);
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn a_killed_then_failed_then_resumed_plan_drives_the_metrics_the_alerts_and_the_dashboard() {
    if tools_missing() {
        return;
    }
    let env = Env::start();

    // 1. Killed mid-step: the step's actions are applied, its gate never ran.
    let killed = env.plan(&[("ROTCHECK_TEST_KILL_AT", "step-applied")]);
    assert_eq!(
        killed.status.signal(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    let st = env.state();
    assert_eq!(st["status"], "running");
    assert_eq!(st["steps"][0]["status"], "applied");
    let started = unix(&st["steps"][0]["started_at"]);
    let updated = unix(&st["updated_at"]);

    let serve = Serve::start(&env.suite, &["--interval", "1s"]);
    serve.wait_ready(secs(30));
    let rules = prom::fast_rules(env.dir.as_path(), "5s");
    let p = Prometheus::start(&[serve.addr], &[rules]);

    let m = Plan::of(&serve);
    assert_eq!(m.run_status(), ["running"]);
    assert_eq!(m.step("admin-client"), ["applied"]);
    assert_eq!(m.step("final"), ["pending"]);
    let since = m.value(
        "rotcheck_plan_step_since_timestamp_seconds",
        &[("step", "admin-client")],
    );
    assert_eq!(since, Some(started), "the step's started_at");
    assert_eq!(
        m.value(
            "rotcheck_plan_step_since_timestamp_seconds",
            &[("step", "final")]
        ),
        None,
        "a pending step has no since-timestamp"
    );
    assert_eq!(
        m.value("rotcheck_plan_last_transition_timestamp_seconds", &[]),
        Some(updated)
    );
    assert_eq!(
        m.value("rotcheck_plan_stuck_after_seconds", &[]),
        Some(STUCK_AFTER as f64)
    );
    prom::promtool_check_metrics(&serve.get("/metrics").body).unwrap();

    // Past stuck_after the check fails and the alert goes pending, then firing.
    deadline_loop("the check says rotation_stuck", secs(20), || {
        Plan::of(&serve).failure_reason() == ["rotation_stuck"]
    });
    let pending = wait_alert(&p, "RotcheckRotationStuck", "pending", secs(30));
    assert_eq!(pending["labels"]["step"], "admin-client");
    assert_eq!(pending["labels"]["suite"], "plan-state");
    let firing = wait_alert(&p, "RotcheckRotationStuck", "firing", secs(30));
    let description = firing["annotations"]["description"].as_str().unwrap();
    assert!(
        description.starts_with(
            "Step admin-client of the rotation plan watched by check rotation (suite plan-state, "
        ),
        "{description}"
    );
    assert!(alerts(&p, "RotcheckRotationFailed").is_empty());
    // `gate` judges the same check the same way.
    let gate = std::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(["gate", "--check", "rotation", "--format", "json", "-c"])
        .arg(&env.suite)
        .output()
        .unwrap();
    assert_eq!(gate.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&gate.stdout).unwrap();
    let stuck = &report["checks"][0]["assertions"][1];
    assert_eq!(stuck["reason"], "rotation_stuck", "{report:#}");
    assert!(
        stuck["message"]
            .as_str()
            .unwrap()
            .starts_with("step \"admin-client\" has been in progress for "),
        "{stuck}"
    );
    assert!(
        stuck["message"]
            .as_str()
            .unwrap()
            .contains("(now applied: its gate has not passed yet), longer than stuck_after 3s;"),
        "{stuck}"
    );
    dashboard_row_has_data(
        &p,
        &[
            "Rotation plan result",
            "Plan steps",
            "Steps in progress for",
            "Last plan transition",
        ],
    );

    // 2. The resumed run fails: Vault answers 500 to the issue.
    env.lab.fail_path("pki-prod/issue/admin-client", 500);
    let failed = env.plan(&[]);
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stdout)
    );
    assert_eq!(env.state()["status"], "failed");
    deadline_loop("the check says rotation_failed", secs(20), || {
        let m = Plan::of(&serve);
        m.run_status() == ["failed"] && m.failure_reason() == ["rotation_failed"]
    });
    let m = Plan::of(&serve);
    assert_eq!(m.step("admin-client"), ["failed"]);
    let finished = unix(&env.state()["steps"][0]["finished_at"]);
    assert_eq!(
        m.value(
            "rotcheck_plan_step_since_timestamp_seconds",
            &[("step", "admin-client")]
        ),
        Some(finished),
        "a failed step's since is its end"
    );
    wait_alert(&p, "RotcheckRotationFailed", "pending", secs(30));
    let firing = wait_alert(&p, "RotcheckRotationFailed", "firing", secs(30));
    let description = firing["annotations"]["description"].as_str().unwrap();
    assert!(
        description.contains("stopped at a failed step (admin-client);"),
        "{description}"
    );
    deadline_loop("RotcheckRotationStuck resolves", secs(30), || {
        alerts(&p, "RotcheckRotationStuck").is_empty()
    });

    // 3. Resumed with Vault healthy: completed, both alerts resolve.
    env.lab.clear_faults();
    let done = env.plan(&[]);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stdout)
    );
    deadline_loop("the plan is completed in the metrics", secs(20), || {
        let m = Plan::of(&serve);
        m.run_status() == ["completed"]
            && m.step("admin-client") == ["done"]
            && m.step("final") == ["done"]
            && m.failure_reason().is_empty()
    });
    deadline_loop("both plan alerts resolve", secs(30), || {
        alerts(&p, "RotcheckRotationFailed").is_empty()
            && alerts(&p, "RotcheckRotationStuck").is_empty()
    });
    assert!(serve.stop().success());
}

/// Every query of the dashboard's "Rotation plan" row is valid PromQL, and the named panels
/// return data (the in-progress panel only while a step is in progress).
fn dashboard_row_has_data(p: &Prometheus, must: &[&str]) {
    let text = std::fs::read_to_string(repo_path("dashboards/rotcheck.json")).unwrap();
    let d: Value = serde_json::from_str(&text).unwrap();
    let panels = d["panels"].as_array().unwrap();
    let row = panels
        .iter()
        .position(|x| x["type"] == "row" && x["title"] == "Rotation plan")
        .expect("a Rotation plan row");
    let exprs: Vec<(String, String)> = panels[row + 1..]
        .iter()
        .take_while(|x| x["type"] != "row")
        .flat_map(|x| {
            let title = x["title"].as_str().unwrap().to_string();
            x["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
        })
        .collect();
    assert_eq!(exprs.len(), must.len(), "{exprs:?}");
    deadline_loop("the Rotation plan row has data", secs(20), || {
        exprs.iter().all(|(title, e)| {
            let q = e.replace("$suite", ".*").replace("$stage", ".*");
            let r = p
                .query(&q)
                .unwrap_or_else(|err| panic!("{title}: {q}: {err}"));
            !must.contains(&title.as_str()) || !r.is_empty()
        })
    });
}
