//! Suite loading through the real binary: every bad suite under tests/data/bad gives exactly
//! its recorded error and exit code 2; good suites lint, list and select as documented.

use std::path::Path;
use std::process::{Command, Output};

fn rotcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(args)
        .output()
        .expect("run rotcheck")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_bad_suite_gives_its_recorded_error() {
    let dir = Path::new("tests/data/bad");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let want = std::fs::read_to_string(path.with_extension("err")).unwrap();
        let out = rotcheck(&["lint", "-c", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        assert_eq!(stderr(&out), want, "{}", path.display());
        assert!(
            out.stdout.is_empty(),
            "nothing on stdout for {}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 20, "expected the bad-suite corpus, found {seen}");
}

#[test]
fn a_bad_suite_probes_nothing_in_gate() {
    let out = rotcheck(&[
        "gate",
        "-c",
        "tests/data/bad/duplicate_name.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("duplicate check name"));
}

#[test]
fn missing_suite_file_is_usage_error() {
    let out = rotcheck(&["gate", "-c", "tests/data/nope.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read the suite file"),
        "{}",
        stderr(&out)
    );
}

fn write_suite(dir: &Path, body: &str) -> String {
    let p = dir.join("suite.yaml");
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

const GOOD: &str = r#"
suite: sel
vars:
  ok: "true"
env_file: wrapper.env
checks:
  - name: one
    stage: first
    tags: [a]
    command: ["${ok}"]
  - name: two
    stage: second
    tags: [b]
    command: ["${env:FROM_ENV_FILE}"]
  - name: three
    stage: second
    severity: warn
    command: ["false"]
"#;

fn good_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrapper.env"),
        "export FROM_ENV_FILE='true'\n",
    )
    .unwrap();
    write_suite(dir.path(), GOOD);
    dir
}

fn run_json(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = rotcheck(args);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("json: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v)
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lint_and_list_accept_a_good_suite() {
    let dir = good_dir();
    let suite = dir.path().join("suite.yaml");
    let out = rotcheck(&["lint", "-c", suite.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = rotcheck(&["list", "-c", suite.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stage first") && text.contains("stage second"),
        "{text}"
    );
    assert!(text.contains("three"), "{text}");
}

#[test]
fn selection_by_stage_check_and_tag() {
    let dir = good_dir();
    let s = dir.path().join("suite.yaml");
    let s = s.to_str().unwrap();
    let (code, v) = run_json(&["gate", "-c", s, "--format", "json", "--stage", "first"]);
    assert_eq!((code, names(&v)), (Some(0), vec!["one".to_string()]));
    let (_, v) = run_json(&["gate", "-c", s, "--format", "json", "--tag", "b"]);
    assert_eq!(names(&v), vec!["two".to_string()]);
    let (_, v) = run_json(&[
        "gate", "-c", s, "--format", "json", "--check", "three", "--check", "one",
    ]);
    assert_eq!(names(&v), vec!["one".to_string(), "three".to_string()]);
    let out = rotcheck(&["gate", "-c", s, "--check", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no check named \"nope\""),
        "{}",
        stderr(&out)
    );
    let out = rotcheck(&["gate", "-c", s, "--stage", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn warn_severity_passes_unless_strict() {
    let dir = good_dir();
    let s = dir.path().join("suite.yaml");
    let s = s.to_str().unwrap();
    let (code, v) = run_json(&["gate", "-c", s, "--format", "json"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["status"], "warn");
    let three = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "three")
        .unwrap();
    assert_eq!(three["status"], "warn");
    let (code, _) = run_json(&["gate", "-c", s, "--format", "json", "--strict"]);
    assert_eq!(code, Some(1));
}

#[test]
fn json_document_has_the_contract_fields() {
    let dir = good_dir();
    let s = dir.path().join("suite.yaml");
    let (_, v) = run_json(&[
        "gate",
        "-c",
        s.to_str().unwrap(),
        "--format",
        "json",
        "--check",
        "one",
    ]);
    for k in [
        "suite",
        "status",
        "started_at",
        "duration_seconds",
        "checks",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    let c = &v["checks"][0];
    for k in [
        "name",
        "stage",
        "kind",
        "status",
        "duration_seconds",
        "error",
        "assertions",
        "certs",
    ] {
        assert!(c.get(k).is_some(), "missing checks[].{k} in {c}");
    }
    assert_eq!(v["suite"], "sel");
    assert_eq!(c["kind"], "command");
}

#[test]
fn bad_flags_are_usage_errors() {
    let dir = good_dir();
    let s = dir.path().join("suite.yaml");
    let s = s.to_str().unwrap();
    for args in [
        vec!["gate", "-c", s, "--at", "yesterday"],
        vec!["gate", "-c", s, "--wait", "soon"],
        vec!["gate", "-c", s, "--format", "xml"],
        vec!["gate"],
    ] {
        let out = rotcheck(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn wait_retries_until_the_check_passes() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("ready");
    let body = format!(
        "suite: w\nchecks:\n  - name: ready\n    command: [test, -e, \"{}\"]\n",
        flag.display()
    );
    let s = write_suite(dir.path(), &body);
    let flag2 = flag.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1200));
        std::fs::write(flag2, "").unwrap();
    });
    let (code, v) = run_json(&[
        "gate",
        "-c",
        &s,
        "--format",
        "json",
        "--wait",
        "20s",
        "--interval",
        "200ms",
    ]);
    t.join().unwrap();
    assert_eq!(code, Some(0), "{v}");
    std::fs::remove_file(&flag).unwrap();
    let (code, _) = run_json(&[
        "gate",
        "-c",
        &s,
        "--format",
        "json",
        "--wait",
        "1s",
        "--interval",
        "200ms",
    ]);
    assert_eq!(code, Some(1), "still failing after the deadline");
}

#[test]
fn shipped_suites_lint() {
    let mut suites: Vec<_> = std::fs::read_dir("checks")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    suites.sort();
    assert!(
        suites.len() >= 2,
        "checks/ holds the shipped suites: {suites:?}"
    );
    for suite in &suites {
        let suite = suite.to_str().unwrap();
        let out = rotcheck(&["lint", "-c", suite]);
        assert_eq!(out.status.code(), Some(0), "{suite}: {}", stderr(&out));
    }
}

/// The README's "Check kinds" table describes every kind of the registry, with every
/// expectation key that kind accepts: the registry is the one list, the docs follow it.
#[test]
fn readme_documents_every_kind_and_its_expectations() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let table = readme
        .split("### Check kinds")
        .nth(1)
        .and_then(|t| t.split("\n### ").next())
        .expect("README has a Check kinds section");
    for kind in rotcheck::kinds::NAMES {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| `{kind}` |")))
            .unwrap_or_else(|| panic!("README's Check kinds table has no row for `{kind}`"));
        for key in rotcheck::kinds::expect_keys(kind) {
            assert!(
                row.contains(&format!("`{key}")),
                "README's row for `{kind}` does not name its expectation `{key}`"
            );
        }
    }
}

#[test]
fn a_typo_gets_the_kinds_own_keys_and_a_suggestion() {
    let out = rotcheck(&["lint", "-c", "tests/data/bad/expect_typo.yaml"]);
    let err = stderr(&out);
    assert!(err.contains(":6:7: checks[0].expect:"), "{err}");
    assert!(err.contains("did you mean `chain`?"), "{err}");
    assert!(
        !err.contains("sealed"),
        "only the tls keys are listed: {err}"
    );
}

#[test]
fn an_output_in_a_missing_folder_is_named_before_anything_runs() {
    let dir = good_dir();
    let suite = dir.path().join("suite.yaml");
    let out = rotcheck(&[
        "gate",
        "-c",
        suite.to_str().unwrap(),
        "--output",
        "/nodir/x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "rotcheck: error: cannot write the output to /nodir/x: the folder /nodir does not \
         exist; create it or pass another --output\n"
    );
}

#[test]
fn an_unknown_tag_lists_the_known_ones() {
    let dir = good_dir();
    let suite = dir.path().join("suite.yaml");
    let out = rotcheck(&["gate", "-c", suite.to_str().unwrap(), "--tag", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "rotcheck: error: no check has the tag \"nope\"; known tags: a, b\n"
    );
}

#[test]
fn at_takes_only_rfc3339_and_says_so() {
    let dir = good_dir();
    let suite = dir.path().join("suite.yaml");
    let suite = suite.to_str().unwrap();
    for bad in ["2026-12-01", "2026-12-01 00:00:00", "7d"] {
        let out = rotcheck(&["gate", "-c", suite, "--at", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("--at takes only an RFC 3339 instant"),
            "{}",
            stderr(&out)
        );
    }
    let (code, v) = run_json(&[
        "gate",
        "-c",
        suite,
        "--format",
        "json",
        "--at",
        "2026-12-01T09:00:00+01:00",
    ]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        v["evaluated_at"], "2026-12-01T08:00:00Z",
        "the offset is applied"
    );
}
