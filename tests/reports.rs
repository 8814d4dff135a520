//! Output formats: human, JUnit and TAP rendered from `Report` values built here, parsed back
//! where there is a parser (quick-xml, YAML); and one `gate --format junit --output` run.

use quick_xml::events::Event;
use quick_xml::Reader;
use rotcheck::model::{Assertion, CertFacts, CheckResult, ProbeError, Report, Status};
use rotcheck::report::{human, junit, tap};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

fn result(name: &str, kind: &str, status: Status, assertions: Vec<Assertion>) -> CheckResult {
    CheckResult {
        name: name.into(),
        stage: "server-tls".into(),
        kind: kind.into(),
        tags: vec![],
        status,
        duration_seconds: Duration::from_millis(120),
        finished_unix: 0.0,
        error: None,
        assertions,
        certs: vec![],
        facts: Default::default(),
    }
}

fn cert() -> CertFacts {
    let mut c = rotcheck::certs::facts(b"", "leaf");
    c.subject = "CN=vault.prod.example".into();
    c.issuer = "CN=prod-intermediate".into();
    c.not_after = "2030-01-31T00:00:00Z".into();
    c
}

/// Four checks: pass, warn, fail (TLS, with certs and tricky characters), error.
fn report() -> Report {
    let warn = Assertion::not_ok("expiry", Status::Warn, "expires_soon", "leaf expires in 9d");
    let tricky = "expected <vault> & \"admin\"; found 'x' \u{1b}[31m";
    let mut fail = result(
        "vault-listener",
        "tls",
        Status::Fail,
        vec![
            Assertion::pass("handshake", "TLS 1.3"),
            Assertion::fail(
                "chain",
                "incomplete_chain",
                "server sent only the leaf; add the intermediate to fullchain.crt",
            ),
            Assertion::fail("names", "name_mismatch", tricky),
        ],
    );
    fail.certs = vec![cert()];
    let mut error = result("agent-files", "files", Status::Error, vec![]);
    error.error = Some(ProbeError::local(
        "permission_denied",
        "agent.key: permission denied",
    ));
    let checks = vec![
        result(
            "vault-sealed",
            "vault_health",
            Status::Pass,
            vec![Assertion::pass("sealed", "unsealed")],
        ),
        result("agent-version", "version_skew", Status::Warn, vec![warn]),
        fail,
        error,
    ];
    Report {
        suite: "prod".into(),
        status: Status::Error,
        started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000),
        duration_seconds: Duration::from_millis(840),
        evaluated_at: None,
        evaluated_unix: 1_900_000_000,
        checks,
        warnings: vec![],
    }
}

#[test]
fn human_lists_checks_details_and_summary() {
    let text = human::render(&report(), false);
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI, not even from messages: {text:?}"
    );
    assert!(
        text.contains("found 'x' \u{fffd}[31m"),
        "control characters replaced: {text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("PASS   vault-sealed"), "{text}");
    assert!(lines[0].ends_with("  120ms"), "{text}");
    assert!(
        text.contains("WARN   agent-version   server-tls  version_skew"),
        "{text}"
    );
    assert!(
        text.contains("      warn expiry (expires_soon): leaf expires in 9d"),
        "{text}"
    );
    assert!(
        text.contains("      fail chain (incomplete_chain): server sent only the leaf"),
        "{text}"
    );
    assert!(
        !text.contains("handshake"),
        "passing assertions stay quiet: {text}"
    );
    assert!(text.contains("cert leaf: subject CN=vault.prod.example; issuer CN=prod-intermediate; not after 2030-01-31T00:00:00Z"), "{text}");
    assert!(
        text.contains("      error (permission_denied): agent.key: permission denied"),
        "{text}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &"4 checks: 1 pass, 1 warn, 1 fail, 1 error in 840ms"
    );
    let colored = human::render(&report(), true);
    assert!(colored.contains("\u{1b}[32mPASS "), "{colored}");
}

/// Element counts and the attributes of the first `testsuite`.
struct Parsed {
    counts: BTreeMap<String, usize>,
    suite_attrs: BTreeMap<String, String>,
    failure_messages: Vec<String>,
}

fn parse_junit(xml: &str) -> Parsed {
    let mut reader = Reader::from_str(xml);
    let mut p = Parsed {
        counts: BTreeMap::new(),
        suite_attrs: BTreeMap::new(),
        failure_messages: vec![],
    };
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                *p.counts.entry(name.clone()).or_default() += 1;
                let attrs: BTreeMap<String, String> = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        let k = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                        (k, a.unescape_value().unwrap().into_owned())
                    })
                    .collect();
                if name == "testsuite" {
                    p.suite_attrs = attrs.clone();
                }
                if name == "failure" {
                    p.failure_messages.push(attrs["message"].clone());
                }
            }
            _ => {}
        }
    }
    p
}

#[test]
fn junit_parses_back_with_the_right_counts() {
    let xml = junit::render(&report());
    let p = parse_junit(&xml);
    assert_eq!(p.counts.get("testsuite"), Some(&1));
    assert_eq!(p.counts.get("testcase"), Some(&4));
    assert_eq!(p.counts.get("failure"), Some(&1));
    assert_eq!(p.counts.get("error"), Some(&1));
    assert_eq!(p.counts.get("system-out"), Some(&1), "the warning");
    assert_eq!(p.counts.get("skipped"), None);
    assert_eq!(p.suite_attrs["name"], "prod");
    assert_eq!(p.suite_attrs["tests"], "4");
    assert_eq!(p.suite_attrs["failures"], "1");
    assert_eq!(p.suite_attrs["errors"], "1");
    assert_eq!(
        p.failure_messages,
        ["chain: server sent only the leaf; add the intermediate to fullchain.crt"]
    );
    assert!(xml.contains("&lt;vault&gt; &amp;"), "escaped: {xml}");
}

#[test]
fn tap_has_plan_lines_and_yaml_diagnostics() {
    let text = tap::render(&report());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..3],
        ["TAP version 13", "1..4", "ok 1 - vault-sealed"]
    );
    assert!(lines.contains(&"ok 2 - agent-version # warn"), "{text}");
    assert!(lines.contains(&"not ok 3 - vault-listener"), "{text}");
    assert!(lines.contains(&"not ok 4 - agent-files"), "{text}");
    let block = yaml_after(&text, "not ok 3 - vault-listener");
    let diag: serde_yaml_ng::Value = serde_yaml_ng::from_str(&block).unwrap();
    assert_eq!(diag["status"].as_str(), Some("fail"));
    let first = &diag["assertions"][0];
    assert_eq!(first["name"].as_str(), Some("chain"));
    assert_eq!(first["reason"].as_str(), Some("incomplete_chain"));
    assert_eq!(
        diag["assertions"][1]["message"].as_str(),
        Some("expected <vault> & \"admin\"; found 'x' \u{1b}[31m")
    );
    let error = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&yaml_after(
        &text,
        "not ok 4 - agent-files",
    ))
    .unwrap();
    assert_eq!(error["error"]["class"].as_str(), Some("permission_denied"));
}

/// The dedented YAML block (between `  ---` and `  ...`) after a test line.
fn yaml_after(text: &str, line: &str) -> String {
    let rest = text.split_once(&format!("{line}\n")).unwrap().1;
    let body = rest.strip_prefix("  ---\n").unwrap();
    let body = body.split_once("  ...\n").unwrap().0;
    body.lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn gate_writes_junit_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.yaml");
    let checks = "suite: e2e\nchecks:\n  - name: ok\n    command: [\"true\"]\n  - name: missing\n    files:\n      - {path: nope.crt, kind: cert}\n";
    std::fs::write(&suite, checks).unwrap();
    let out_file = dir.path().join("junit.xml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(["gate", "--format", "junit", "--output"])
        .arg(&out_file)
        .arg("-c")
        .arg(&suite)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "the report goes to the file");
    let p = parse_junit(&std::fs::read_to_string(&out_file).unwrap());
    assert_eq!(p.counts.get("testcase"), Some(&2));
    assert_eq!(p.counts.get("failure"), Some(&1));
    assert_eq!(p.suite_attrs["name"], "e2e");
    assert!(
        p.failure_messages[0].contains("nope.crt: file not found"),
        "{:?}",
        p.failure_messages
    );
}

/// A report whose messages hold a token and a private key, with a run warning.
fn secret_report() -> Report {
    let key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBsecretkeymaterialAAAA\n-----END EC PRIVATE KEY-----";
    let token = "hvs.CAESIsecretTokenMaterialForReports0123456789";
    let mut r = report();
    r.checks[2].assertions[1].message = format!("output: \"{token}\" then {key}");
    r.checks[3].error = Some(ProbeError::local("exit", format!("{key} <&> {token}")));
    r.warnings = vec![format!(
        "could not revoke the token obtained by cert login: {token} leaked; it expires in 1h"
    )];
    r
}

#[test]
fn every_format_is_redacted_and_still_parses() {
    let r = secret_report();
    for format in [
        rotcheck::report::Format::Human,
        rotcheck::report::Format::Json,
        rotcheck::report::Format::Junit,
        rotcheck::report::Format::Tap,
        rotcheck::report::Format::Prom,
    ] {
        let text = rotcheck::report::render(&r, format, Default::default());
        for secret in ["CAESIsecret", "secretkeymaterial", "MHcCAQEEIB"] {
            assert!(!text.contains(secret), "{format:?} leaks {secret}:\n{text}");
        }
        assert!(
            text.contains("could not revoke the token obtained by cert login: hvs.[redacted]"),
            "{format:?} shows the run's warning:\n{text}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&rotcheck::report::json::render(&r)).unwrap();
    let msg = json["checks"][2]["assertions"][1]["message"]
        .as_str()
        .unwrap();
    assert_eq!(
        msg,
        "output: \"hvs.[redacted]\" then [redacted private key]"
    );
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1);
    let xml = junit::render(&r);
    let p = parse_junit(&xml);
    assert_eq!(p.counts.get("system-err"), Some(&1), "{xml}");
    assert!(
        xml.contains("[redacted private key] &lt;&amp;&gt; hvs.[redacted]"),
        "{xml}"
    );
    let text = tap::render(&r);
    let error = yaml_after(&text, "not ok 4 - agent-files");
    let diag: serde_yaml_ng::Value = serde_yaml_ng::from_str(&error).unwrap();
    assert_eq!(
        diag["error"]["message"].as_str(),
        Some("[redacted private key] <&> hvs.[redacted]")
    );
    let human = human::render(&r, false);
    assert!(human.contains("\nwarning: could not revoke"), "{human}");
}

/// Whether an external tool is on PATH; prints why a test is skipped when it is not.
fn have(tool: &str, package: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip_or_fail(&format!(
            "{tool} is not installed (Debian package {package})"
        ));
    }
    found
}

/// A missing report tool skips the test, unless `ROTCHECK_REQUIRE_TOOLS` is set (scripts/test.sh
/// sets it after installing them): then it fails, so CI cannot pass without the check.
fn skip_or_fail(why: &str) {
    if std::env::var_os("ROTCHECK_REQUIRE_TOOLS").is_some() {
        panic!("{why}; ROTCHECK_REQUIRE_TOOLS is set");
    }
    eprintln!("skipped: {why}");
}

/// Runs `prove` on a TAP stream written to a file; returns its exit code and stdout.
fn prove(tap: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.tap");
    std::fs::write(&file, tap).unwrap();
    let out = std::process::Command::new("prove")
        .args(["--exec", "cat"])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn tap_passes_perls_prove() {
    if !have("prove", "perl") {
        return;
    }
    let (code, out) = prove(&tap::render(&report()));
    assert!(!out.contains("Parse errors"), "{out}");
    assert!(out.contains("Tests: 4 Failed: 2"), "{out}");
    assert!(out.contains("Failed tests:  3-4"), "{out}");
    assert_eq!(code, Some(1), "{out}");
    let mut passing = report();
    passing
        .checks
        .retain(|c| c.status == Status::Pass || c.status == Status::Warn);
    let (code, out) = prove(&tap::render(&passing));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Result: PASS"), "{out}");
}

/// Validates a JUnit document against tests/data/junit.xsd with `xmllint --schema`.
fn xmllint(xml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", "tests/data/junit.xsd"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{xml}");
    assert!(stderr.contains("validates"), "{stderr}");
}

#[test]
fn junit_validates_against_the_junit_schema() {
    if !have("xmllint", "libxml2-utils") {
        return;
    }
    xmllint(&junit::render(&report()));
    let mut r = secret_report();
    r.evaluated_at = Some("2030-01-01T00:00:00Z".into());
    xmllint(&junit::render(&r));
    r.checks.clear();
    xmllint(&junit::render(&r));
}

/// A Python with the `jsonschema` package: the project's .venv first, else python3.
fn python_with_jsonschema() -> Option<String> {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let found = [venv, "python3"].into_iter().find(|py| {
        std::process::Command::new(py)
            .args(["-c", "import jsonschema"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        skip_or_fail("no Python with jsonschema (scripts/test.sh installs it in .venv)");
    }
    found.map(str::to_string)
}

const VALIDATE: &str = "import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
errors = [f'{list(e.absolute_path)}: {e.message}' for e in v.iter_errors(json.load(sys.stdin))]
print('\\n'.join(errors))
sys.exit(1 if errors else 0)";

/// Validates a JSON document against docs/gate.schema.json; returns the errors, if any.
fn schema_errors(py: &str, doc: &str) -> Option<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(py)
        .args(["-c", VALIDATE, "docs/gate.schema.json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn gate_json_matches_the_published_schema() {
    let Some(py) = python_with_jsonschema() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.yaml");
    let checks = "suite: schema\nchecks:\n  - name: ok\n    tags: [smoke]\n    command: [\"true\"]\n  - name: exits\n    command: [\"false\"]\n  - name: missing\n    files:\n      - {path: nope.crt, kind: cert}\n  - name: closed\n    tls: { addr: \"127.0.0.1:1\" }\n";
    std::fs::write(&suite, checks).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args([
            "gate",
            "--format",
            "json",
            "--at",
            "2030-01-01T00:00:00Z",
            "-c",
        ])
        .arg(&suite)
        .output()
        .unwrap();
    let doc = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["checks"].as_array().unwrap().len(), 4, "{doc}");
    assert_eq!(schema_errors(&py, &doc), None, "{doc}");
    for r in [report(), secret_report()] {
        let doc = rotcheck::report::json::render(&r);
        assert_eq!(schema_errors(&py, &doc), None, "{doc}");
    }
    let wrong = doc.replacen("\"status\": \"", "\"status\": \"x", 1);
    assert!(
        schema_errors(&py, &wrong).is_some(),
        "the schema refuses a bad status"
    );
}
