//! Secrets never reach an output: a `command` check that prints a Vault token and a PEM private
//! key, an env_file whose bad line holds a token, a Vault error body (from the lab) that echoes
//! tokens, a token cut at a truncation boundary, and a failed revoke of the suite's cert-login
//! token (reported, not silent) — through every format (human, json, junit, tap, prom), stderr,
//! `serve`'s `/metrics`, `/probe` (with `debug=true` too), `/status`, `POST /-/reload` answers
//! and log (status changes included), and `rotate` output.

mod exporter_support;

use exporter_support::serve::Serve;
use exporter_support::Env;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const FORMATS: &[&str] = &["human", "json", "junit", "tap", "prom"];

/// A service token in Vault's `hvs.` shape, as a command or a misbehaving proxy might print it.
const TOKEN: &str = "hvs.CAESIRedactionFixtureQm9ndXNWYWx1ZUZvclRlc3RpbmdPbmx5X3Rva2VuX3Rlc3Q";

/// A legacy/OpenBao `s.` token.
const LEGACY: &str = "s.Q7vNd2kLr9XcT4bWm8pZa3Hy";

/// A freshly generated PKCS#8 private key.
fn key_pem() -> String {
    rcgen::KeyPair::generate().unwrap().serialize_pem()
}

/// Fragments whose presence anywhere means a leak: every 10-character window of the tokens'
/// secret parts, and the first 16 characters of every base64 line of the key.
fn fragments(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for secret in [&TOKEN[4..], &LEGACY[2..]] {
        let chars: Vec<char> = secret.chars().collect();
        for w in chars.windows(10).step_by(3) {
            out.push(w.iter().collect());
        }
    }
    out.extend(
        key.lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(|l| l[..16].to_string()),
    );
    out
}

#[track_caller]
fn assert_clean(what: &str, text: &str, key: &str) {
    let found: Vec<String> = fragments(key)
        .into_iter()
        .filter(|f| text.contains(f.as_str()))
        .collect();
    assert!(found.is_empty(), "{what} leaks {found:?}:\n{text}");
    assert!(!text.contains("PRIVATE KEY-----\n"), "{what}:\n{text}");
}

/// Runs the binary without any Vault environment.
fn rotcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(args)
        .env_remove("VAULT_TOKEN")
        .env_remove("VAULT_ADDR")
        .output()
        .unwrap()
}

fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `gate` on `suite` in every format; returns (format, stdout, stderr) per format.
fn gate_all(suite: &Path, key: &str) -> Vec<(&'static str, String, String)> {
    let suite = suite.display().to_string();
    FORMATS
        .iter()
        .map(|f| {
            let o = rotcheck(&["gate", "-c", &suite, "--format", f]);
            assert!(o.status.code().is_some_and(|c| c < 2), "{f}: {}", both(&o));
            assert_clean(&format!("gate --format {f}"), &both(&o), key);
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            (*f, out, String::from_utf8_lossy(&o.stderr).into_owned())
        })
        .collect()
}

fn json_of(runs: &[(&str, String, String)]) -> Value {
    let json = &runs.iter().find(|(f, _, _)| *f == "json").unwrap().1;
    serde_json::from_str(json).unwrap()
}

/// Every message of a JSON report, joined.
fn messages(report: &Value) -> String {
    let mut out = Vec::new();
    for c in report["checks"].as_array().unwrap() {
        for a in c["assertions"].as_array().unwrap() {
            out.push(a["message"].as_str().unwrap_or("").to_string());
        }
        if let Some(m) = c["error"]["message"].as_str() {
            out.push(m.to_string());
        }
    }
    out.join("\n")
}

/// A secrets file a careless script left behind, and the commands that print it.
fn leaky_suite(dir: &Path, key: &str) -> PathBuf {
    let secrets = dir.join("secrets.txt");
    std::fs::write(
        &secrets,
        format!("token: {TOKEN}\nlegacy: {LEGACY}\n{key}\n"),
    )
    .unwrap();
    let s = secrets.display();
    let mut checks = format!(
        "  - name: prints-secrets\n    command: [sh, -c, \"cat {s}; cat {s} >&2; exit 3\"]\n    expect: {{ stdout_contains: never-there }}\n  - name: matches-secrets\n    command: [cat, \"{s}\"]\n    expect: {{ stdout_matches: \"^nothing$\" }}\n"
    );
    // The token starts just before, at, and just after the 200-character quote limit.
    for pad in [190, 195, 199, 200, 203] {
        let padded = dir.join(format!("pad-{pad}.txt"));
        std::fs::write(&padded, format!("{}{TOKEN} tail", "x".repeat(pad))).unwrap();
        checks.push_str(&format!(
            "  - name: cut-{pad}\n    command: [cat, \"{}\"]\n    expect: {{ stdout_contains: never-there }}\n",
            padded.display()
        ));
    }
    let suite = dir.join("suite.yaml");
    std::fs::write(&suite, format!("suite: redaction\nchecks:\n{checks}")).unwrap();
    suite
}

#[test]
fn command_output_is_redacted_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_pem();
    let suite = leaky_suite(dir.path(), &key);
    let runs = gate_all(&suite, &key);
    let report = json_of(&runs);
    let said = messages(&report);
    // The output is quoted (it is what tells the user why), with the secrets marked.
    assert!(said.contains("hvs.[redacted]"), "{said}");
    assert!(said.contains("s.[redacted]"), "{said}");
    assert!(said.contains("[redacted private key]"), "{said}");
    assert!(said.contains("stderr: \"token: hvs.[redacted]"), "{said}");
    // Every format that carries messages shows the marker (prom carries none).
    for (format, out, _) in runs.iter().filter(|(f, _, _)| *f != "prom") {
        assert!(
            out.contains("[redacted"),
            "{format} shows no marker:\n{out}"
        );
    }
}

#[test]
fn env_file_errors_name_the_line_not_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_pem();
    let env = dir.path().join("prod.env");
    let suite = dir.path().join("suite.yaml");
    let text = format!(
        "suite: envtest\nenv_file: {}\nchecks:\n  - name: t\n    command: [\"true\"]\n",
        env.display()
    );
    std::fs::write(&suite, text).unwrap();
    let s = suite.display().to_string();
    for bad in [
        format!("A=1\n# comment\n{TOKEN}\n"),
        format!("A=1\nB=2\nexport Bearer {LEGACY}=x\n"),
        format!("A=1\n\n  {LEGACY}  \n"),
    ] {
        std::fs::write(&env, bad).unwrap();
        for args in [vec!["gate", "-c", &s], vec!["lint", "-c", &s]] {
            let o = rotcheck(&args);
            assert_eq!(o.status.code(), Some(2), "{}", both(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("line 3: expected NAME=VALUE"), "{err}");
            assert_clean(&format!("{args:?}"), &both(&o), &key);
            assert!(!err.contains("Bearer"), "{err}");
        }
    }
}

#[test]
fn serve_redacts_metrics_probe_status_reload_answers_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_pem();
    let suite = leaky_suite(dir.path(), &key);
    // A certificate whose file name is a token (a script wrote it so): it becomes a label.
    let named = dir.path().join(format!("{TOKEN}.pem"));
    let cert = rcgen::generate_simple_self_signed(vec!["leaky.test".into()]).unwrap();
    std::fs::write(&named, cert.cert.pem()).unwrap();
    let env = dir.path().join("serve.env");
    std::fs::write(&env, "A=1\n").unwrap();
    let text = std::fs::read_to_string(&suite).unwrap().replace(
        "checks:\n",
        &format!(
            "env_file: {}\nchecks:\n  - name: token-named-file\n    files:\n      - {{ path: \"{}\", kind: cert }}\n",
            env.display(),
            named.display()
        ),
    );
    std::fs::write(&suite, text).unwrap();

    let serve = Serve::start(&suite, &[]);
    serve.wait_ready(Duration::from_secs(30));
    let metrics = serve.get("/metrics").body;
    assert_clean("/metrics", &metrics, &key);
    assert!(metrics.contains("hvs.[redacted].pem"), "{metrics}");
    for check in ["prints-secrets", "token-named-file", "cut-199"] {
        let r = serve.get(&format!("/probe?check={check}"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_clean(&format!("/probe?check={check}"), &r.body, &key);
        let debug = format!("/probe?check={check}&debug=true");
        let r = serve.get(&debug);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_clean(&debug, &r.body, &key);
    }
    let status = serve.get("/status").body;
    assert_clean("/status", &status, &key);
    assert!(status.contains("\"name\": \"prints-secrets\""), "{status}");
    // The status changes are logged with their messages, which quote the secrets file.
    serve.wait_log(
        "check=prints-secrets from=pending to=fail",
        Duration::from_secs(10),
    );

    // A reload that fails on the env file answers (and logs) the line number only.
    std::fs::write(&env, format!("A=1\nB=2\nAuthorization: Bearer {TOKEN}\n")).unwrap();
    let r = serve.post("/-/reload");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("line 3: expected NAME=VALUE"), "{}", r.body);
    assert_clean("POST /-/reload", &r.body, &key);
    serve.wait_log("reload failed", Duration::from_secs(10));
    let log = serve.log().join("\n");
    assert_clean("serve log", &log, &key);
    assert!(!log.contains("Bearer"), "{log}");
    serve.stop();
}

/// The suite's vault profile for the lab's admin identity, logging in by cert.
fn profile(env: &Env) -> String {
    let f = env.lab.files();
    format!(
        "vault:\n  addr: {}\n  server_name: {}\n  ca_file: \"{}\"\n  client_cert: \"{}\"\n  client_key: \"{}\"\n  auth: {{ cert: {{ mount: cert, role: vault-admin }} }}\n",
        env.lab.url(),
        env.lab.server_name(),
        f.ca_chain.display(),
        f.admin.cert.display(),
        f.admin.key.display()
    )
}

fn vault_suite(env: &Env, name: &str, checks: &str) -> PathBuf {
    let text = format!(
        "suite: redaction-vault\ndefaults: {{ timeout: 5s }}\n{}checks:\n{checks}",
        profile(env)
    );
    let path = env.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const CERT_ROLE: &str =
    "  - name: mapping\n    vault_cert_role: { mount: cert, name: agent-app-b }\n";

#[test]
fn vault_error_bodies_are_redacted_before_they_are_cut() {
    let env = Env::start(false);
    let key = key_pem();
    // Vault's messages are cut at 300 characters. Here 15 characters of the token's secret
    // part sit before the cut (cutting first would show them) ...
    let cut = format!("{} {TOKEN} end", "y".repeat(280));
    env.lab
        .fail_path_saying("auth/cert/certs/agent-app-a", 500, &cut);
    // ... and here a header value, a key and a token whose marker straddles the cut.
    let mixed = format!(
        "proxy echo: X-Vault-Token: {LEGACY} {key} {}{TOKEN} end",
        "y".repeat(229)
    );
    env.lab
        .fail_path_saying("auth/cert/certs/agent-app-b", 500, &mixed);
    let checks = format!(
        "{CERT_ROLE}  - name: mapping-a\n    vault_cert_role: {{ mount: cert, name: agent-app-a }}\n"
    );
    let suite = vault_suite(&env, "errors.yaml", &checks);
    let runs = gate_all(&suite, &key);
    let msgs = messages(&json_of(&runs));
    assert!(
        msgs.contains(
            "Vault said: proxy echo: X-Vault-Token: [redacted] [redacted private key] yyy"
        ),
        "{msgs}"
    );
    assert!(msgs.contains("yyy…"), "the messages are cut: {msgs}");
    assert_eq!(env.lab.tokens_live(), 0, "the cert-login token is revoked");
}

#[test]
fn the_configured_token_is_removed_whatever_its_shape() {
    let env = Env::start(false);
    let key = key_pem();
    // A site-specific token with no recognisable shape, echoed by a command and by Vault.
    let opaque = "site-opaque-credential-7f3a9c";
    env.lab.fail_path_saying(
        "auth/cert/certs/agent-app-b",
        403,
        &format!("permission denied for {opaque}"),
    );
    let checks = format!(
        "{CERT_ROLE}  - name: echo\n    command: [echo, \"said {opaque} once\"]\n    expect: {{ stdout_contains: never-there }}\n"
    );
    let text = vault_suite(&env, "opaque.yaml", &checks)
        .display()
        .to_string();
    let profile = profile(&env).replace(
        "  auth: { cert: { mount: cert, role: vault-admin } }\n",
        &format!("  token: {opaque}\n"),
    );
    let body = std::fs::read_to_string(&text)
        .unwrap()
        .replace(&self::profile(&env), &profile);
    std::fs::write(&text, body).unwrap();
    for (format, out, err) in gate_all(Path::new(&text), &key) {
        assert!(!out.contains("opaque-credential"), "{format}:\n{out}");
        assert!(!err.contains("opaque-credential"), "{format}:\n{err}");
        if format == "json" {
            assert!(out.contains("said [redacted] once"), "{out}");
        }
    }
}

#[test]
fn a_failed_revoke_of_the_cert_login_token_is_reported() {
    let env = Env::start(false);
    let key = key_pem();
    env.lab.fail_path("auth/token/revoke-self", 500);
    let suite = vault_suite(&env, "revoke.yaml", CERT_ROLE);
    let want = "could not revoke the token obtained by cert login";
    let runs = gate_all(&suite, &key);
    for (format, out, err) in &runs {
        assert!(out.contains(want), "{format} report:\n{out}");
        assert!(out.contains("it expires in"), "{format}:\n{out}");
        if *format != "human" {
            assert!(
                err.contains(&format!("rotcheck: warning: {want}")),
                "{format}: {err}"
            );
        }
    }
    let report = json_of(&runs);
    assert_eq!(report["checks"][0]["status"], "pass", "{report}");
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report}");

    let serve = Serve::start(&suite, &["--interval", "1h"]);
    serve.wait_log(want, Duration::from_secs(30));
    assert_clean("serve log", &serve.log().join("\n"), &key);
    serve.stop();
}

#[test]
fn rotate_redacts_vault_warnings_and_reports_a_failed_revoke() {
    let env = Env::start(false);
    let key = key_pem();
    let suite = vault_suite(&env, "rotate.yaml", CERT_ROLE);
    let warning = format!("mapping saved; debug: client_token={TOKEN} and {LEGACY} {key}");
    env.lab.warn_path("auth/cert/certs/agent-app-a", &warning);
    env.lab.fail_path("auth/token/revoke-self", 500);
    let ca = env
        .lab
        .files()
        .agent("app-a")
        .unwrap()
        .ca
        .display()
        .to_string();
    let s = suite.display().to_string();
    let args = [
        "rotate",
        "cert-role",
        "-c",
        &s,
        "--name",
        "agent-app-a",
        "--ca-file",
        &ca,
        "--allowed-cn",
        "agent-app-a.*",
        "--add-policy",
        "redaction-extra",
    ];
    let o = rotcheck(&args);
    let text = both(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Vault warns: mapping saved; debug: client_token=[redacted]"),
        "{text}"
    );
    assert!(
        text.contains("warning: could not revoke the token obtained by cert login"),
        "{text}"
    );
    assert_clean("rotate cert-role", &text, &key);
}

#[test]
fn usage_errors_do_not_echo_a_token() {
    let key = key_pem();
    let o = rotcheck(&["gate", "-c", "x.yaml", "--format", TOKEN]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert_clean("usage error", &both(&o), &key);
    let o = rotcheck(&["gate", "-c", &format!("/nonexistent/{TOKEN}.yaml")]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert_clean("missing suite", &both(&o), &key);
}

#[test]
fn the_rotate_audit_log_is_redacted() {
    use rotcheck::rotate::audit::{AuditLog, Event};
    use rotcheck::rotate::state::GateSummary;
    let dir = tempfile::tempdir().unwrap();
    let key = key_pem();
    let log = AuditLog::new(&dir.path().join("audit.jsonl"));
    let gate = GateSummary {
        stage: "admin-client".into(),
        status: "fail".into(),
        passed: 0,
        failed: 1,
        failing: vec![format!("cmd: exit: printed {TOKEN}")],
    };
    let message = format!("step failed: Vault said: {LEGACY} {}", key.trim_end());
    let e = Event {
        time: "2026-11-29T00:00:00Z".into(),
        suite: "s",
        run_id: "r",
        step: Some("admin-client"),
        from: "running",
        to: "failed",
        actor: "root",
        host: "h",
        serials: vec![],
        gate: Some(&gate),
        message: Some(&message),
    };
    log.append(&e).unwrap();
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_clean("audit log", &text, &key);
    let line: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        line["message"],
        "step failed: Vault said: s.[redacted] [redacted private key]"
    );
}

#[test]
fn vault_transit_key_errors_are_redacted() {
    let env = Env::start(false);
    let key = key_pem();
    env.lab.fail_path_saying(
        "transit/keys/payments",
        500,
        &format!("plugin echo: X-Vault-Token: {TOKEN} {LEGACY} {key}"),
    );
    env.lab
        .fail_path_saying("transit/keys/signer", 403, &format!("denied for {TOKEN}"));
    let checks = "  - name: payments\n    vault_transit_key: { name: payments }\n    expect: { max_age: 30d }\n  - name: signer\n    vault_transit_key: { name: signer }\n";
    let suite = vault_suite(&env, "transit.yaml", checks);
    let runs = gate_all(&suite, &key);
    let report = json_of(&runs);
    let msgs = messages(&report);
    assert!(
        msgs.contains("plugin echo: X-Vault-Token: [redacted]"),
        "{msgs}"
    );
    assert!(msgs.contains("denied for hvs.[redacted]"), "{msgs}");
    for c in report["checks"].as_array().unwrap() {
        assert_ne!(c["status"], "pass", "{c:#}");
    }
    assert_eq!(env.lab.tokens_live(), 0, "the cert-login token is revoked");
}
