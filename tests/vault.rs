//! The Vault checks against the lab's Vault emulator over real mTLS: every `vault_*` kind and
//! `version_skew`, passing and failing the way a real rotation goes wrong (sealed,
//! uninitialized, unmapped or expired client certs, untrusted CAs, forbidden policies, drifted
//! mappings, broad PKI roles, KV v1, missing paths, version skew), token revocation counted by
//! the lab, no secret in any output format, resets while Vault restarts, and `gate --wait`.

mod common;

use common::bao::{self, DevServer, DEV_ROOT_TOKEN};
use rotcheck::engine::{self, RunOptions};
use rotcheck::model::{CheckResult, Report, Status};
use rotcheck::vault::{Addr, Endpoint, VaultClient, VaultError};
use rotcheck_lab::pki::{LabPki, LeafSpec, Validity};
use rotcheck_lab::{FaultKind, FaultListener, Lab, LabConfig};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FORMATS: &[&str] = &["human", "json", "junit", "tap", "prom"];

async fn lab() -> Lab {
    lab_with(LabConfig {
        drift: true,
        ..LabConfig::default()
    })
    .await
}

async fn lab_with(cfg: LabConfig) -> Lab {
    Lab::start(cfg).await.expect("the lab starts")
}

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// The suite's `vault:` block for the lab's admin identity, logging in as `vault-admin`.
fn profile(lab: &Lab) -> String {
    let f = lab.files();
    format!(
        "vault:\n  addr: {}\n  server_name: {}\n  ca_file: {}\n  client_cert: {}\n  client_key: {}\n  auth: {{ cert: {{ mount: cert, role: vault-admin }} }}\n",
        lab.url(),
        lab.server_name(),
        q(&f.ca_chain),
        q(&f.admin.cert),
        q(&f.admin.key)
    )
}

/// A `vault_login` block for one of the lab's agents.
fn login(lab: &Lab, app: &str) -> String {
    let id = lab.files().agent(app).expect("agent identity");
    login_with(&id.cert, &id.key, &id.ca, &format!("agent-{app}"))
}

fn login_with(cert: &Path, key: &Path, ca: &Path, role: &str) -> String {
    format!(
        "vault_login: {{ mount: cert, role: {role}, client_cert: {}, client_key: {}, ca_file: {} }}",
        q(cert),
        q(key),
        q(ca)
    )
}

/// Writes a suite (`profile` + checks) into a fresh directory.
fn write_suite(profile: &str, checks: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("suite.yaml");
    let text =
        format!("suite: vault-test\ndefaults: {{ timeout: 5s }}\n{profile}checks:\n{checks}");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Loads and runs every check of a suite in-process.
async fn run_suite(path: &Path) -> Report {
    let suite = Arc::new(rotcheck::suite::load(path).expect("suite loads"));
    let checks: Vec<_> = suite.file.checks.iter().collect();
    engine::run(&suite, &checks, &RunOptions::default()).await
}

async fn run(profile: &str, checks: &str) -> Report {
    let (_dir, path) = write_suite(profile, checks);
    run_suite(&path).await
}

fn check<'a>(r: &'a Report, name: &str) -> &'a CheckResult {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .expect("check in report")
}

fn reasons(c: &CheckResult) -> Vec<String> {
    c.assertions
        .iter()
        .filter_map(|a| a.reason.clone())
        .collect()
}

fn messages(c: &CheckResult) -> String {
    let mut m: Vec<String> = c.assertions.iter().map(|a| a.message.clone()).collect();
    m.extend(c.error.iter().map(|e| e.message.clone()));
    m.join("\n")
}

#[track_caller]
fn assert_status(c: &CheckResult, want: Status) {
    assert_eq!(c.status, want, "{}: {:#?}", c.name, c.assertions);
}

#[track_caller]
fn assert_reason(c: &CheckResult, reason: &str) {
    assert!(
        reasons(c).iter().any(|r| r == reason),
        "{}: expected reason {reason}, got {:?}\n{}",
        c.name,
        reasons(c),
        messages(c)
    );
}

/// Runs the real binary (async, so the in-process lab keeps serving).
async fn rotcheck(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"));
    cmd.args(args)
        .env_remove("VAULT_TOKEN")
        .env_remove("VAULT_ADDR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("rotcheck runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------- vault_health

#[tokio::test]
async fn health_passes_and_reports_version_and_cluster() {
    let lab = lab().await;
    let r = run(&profile(&lab), "  - name: h\n    vault_health: {}\n    expect: { sealed: false, initialized: true, version: \"1.20\" }\n").await;
    let c = check(&r, "h");
    assert_status(c, Status::Pass);
    let v = c.facts.vault.as_ref().expect("vault facts");
    assert_eq!(v.version.as_deref(), Some("1.20.4"));
    assert_eq!(v.cluster_name.as_deref(), Some("vault-cluster-lab"));
    assert_eq!((v.sealed, v.initialized), (Some(false), Some(true)));
}

#[tokio::test]
async fn health_with_mtls_required_listener_uses_the_admin_cert() {
    let lab = lab_with(LabConfig {
        require_client_cert: true,
        ..Default::default()
    })
    .await;
    let r = run(&profile(&lab), "  - name: h\n    vault_health: {}\n").await;
    assert_status(check(&r, "h"), Status::Pass);

    // The same listener without a client identity: the handshake is refused with an alert.
    let f = lab.files();
    let bare = format!(
        "vault:\n  addr: {}\n  server_name: {}\n  ca_file: {}\n",
        lab.url(),
        lab.server_name(),
        q(&f.ca_chain)
    );
    let r = run(&bare, "  - name: h\n    vault_health: {}\n").await;
    let c = check(&r, "h");
    assert_status(c, Status::Fail);
    let e = c.error.as_ref().expect("connect error");
    assert_eq!(e.class, "tls_alert", "{}", e.message);
    assert_eq!(e.alert.as_deref(), Some("certificate_required"));
    assert_reason(c, "tls_alert");
}

#[tokio::test]
async fn health_sealed_uninitialized_and_standby_fail() {
    let lab = lab().await;
    let checks = "  - name: h\n    vault_health: {}\n  - name: standby-ok\n    vault_health: { standbyok: true }\n";
    lab.set_sealed(true);
    let r = run(&profile(&lab), checks).await;
    let c = check(&r, "h");
    assert_status(c, Status::Fail);
    assert_reason(c, "sealed");
    assert!(messages(c).contains("unseal progress"), "{}", messages(c));
    assert_eq!(c.facts.vault.as_ref().unwrap().sealed, Some(true));

    lab.set_sealed(false);
    lab.set_initialized(false);
    let r = run(&profile(&lab), checks).await;
    assert_reason(check(&r, "h"), "uninitialized");

    lab.set_initialized(true);
    lab.set_standby(true);
    let r = run(&profile(&lab), checks).await;
    assert_reason(check(&r, "h"), "standby");
    assert_status(check(&r, "standby-ok"), Status::Pass);
}

#[tokio::test]
async fn untrusted_server_ca_is_a_chain_failure() {
    let lab = lab().await;
    let foreign = LabPki::with_names("foreign root", "foreign intermediate").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("foreign-ca.pem");
    std::fs::write(&ca, foreign.ca_chain_pem()).unwrap();
    let p = profile(&lab).replace(&q(&lab.files().ca_chain), &q(&ca));
    let r = run(&p, "  - name: h\n    vault_health: {}\n").await;
    let c = check(&r, "h");
    assert_status(c, Status::Fail);
    assert_reason(c, "unknown_issuer");
    assert_eq!(c.error.as_ref().unwrap().class, "server_cert");
    assert!(messages(c).contains("VAULT_CACERT"), "{}", messages(c));
}

#[tokio::test]
async fn missing_address_is_an_error() {
    let r = run("", "  - name: h\n    vault_health: {}\n").await;
    let c = check(&r, "h");
    assert_status(c, Status::Error);
    assert!(messages(c).contains("VAULT_ADDR"), "{}", messages(c));
}

// ---------------------------------------------------------------- vault_login

#[tokio::test]
async fn login_passes_and_the_token_is_revoked() {
    let lab = lab().await;
    let checks = format!(
        "  - name: b\n    {}\n    expect: {{ policies: {{ include: [app-b-issue], exclude: [debug-policy] }}, token_ttl_min: 30m }}\n",
        login(&lab, "app-b")
    );
    let r = run(&profile(&lab), &checks).await;
    let c = check(&r, "b");
    assert_status(c, Status::Pass);
    assert!(messages(c).contains("agent-app-b"), "{}", messages(c));
    assert_eq!(c.certs.first().map(|x| x.position.as_str()), Some("client"));
    assert_eq!(lab.tokens_issued(), 1);
    assert_eq!(lab.tokens_revoked(), 1);
    assert_eq!(lab.tokens_live(), 0);
}

#[tokio::test]
async fn login_with_forbidden_policy_fails_and_still_revokes() {
    let lab = lab().await;
    let checks = format!(
        "  - name: a\n    {}\n    expect: {{ policies: {{ include: [app-a-issue], exclude: [debug-policy] }} }}\n",
        login(&lab, "app-a")
    );
    let r = run(&profile(&lab), &checks).await;
    let c = check(&r, "a");
    assert_status(c, Status::Fail);
    assert_reason(c, "policy_forbidden");
    assert!(messages(c).contains("debug-policy"));
    assert_eq!((lab.tokens_issued(), lab.tokens_live()), (1, 0));
}

#[tokio::test]
async fn login_rejections_surface_vault_messages() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, ck: &rotcheck_lab::pki::CertKey| {
        let (c, k) = (
            dir.path().join(format!("{name}.crt")),
            dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&c, ck.cert_pem()).unwrap();
        std::fs::write(&k, ck.key_pem()).unwrap();
        (c, k)
    };
    let ca = lab.files().ca_chain.clone();
    // A cert from the right CA whose CN the mapping does not allow (unmapped identity).
    let stranger = lab
        .pki()
        .issue(&LeafSpec::client("stranger.other.test"))
        .unwrap();
    let (sc, sk) = write("stranger", &stranger);
    // An expired agent cert.
    let spec = LeafSpec::client("agent-app-b.lab.rotcheck.test").validity(Validity::expired());
    let (ec, ek) = write("expired", &lab.pki().issue(&spec).unwrap());
    // A cert from a CA Vault does not trust.
    let foreign = LabPki::with_names("foreign root", "foreign intermediate").unwrap();
    let (fc, fk) = write(
        "foreign",
        &foreign
            .issue(&LeafSpec::client("agent-app-b.lab.rotcheck.test"))
            .unwrap(),
    );
    let checks = format!(
        "  - name: unmapped\n    {}\n  - name: expired\n    {}\n  - name: untrusted\n    {}\n",
        login_with(&sc, &sk, &ca, "agent-app-b"),
        login_with(&ec, &ek, &ca, "agent-app-b"),
        login_with(&fc, &fk, &ca, "agent-app-b"),
    );
    let r = run(&profile(&lab), &checks).await;
    for name in ["unmapped", "expired", "untrusted"] {
        let c = check(&r, name);
        assert_status(c, Status::Fail);
        assert_reason(c, "login_failed");
        assert!(messages(c).contains("Vault said:"), "{}", messages(c));
    }
    let unmapped = messages(check(&r, "unmapped"));
    assert!(
        unmapped.contains("failed to match all constraints"),
        "{unmapped}"
    );
    let expired = messages(check(&r, "expired"));
    assert!(
        expired.contains("HTTP 500") && expired.contains("expired"),
        "{expired}"
    );
    assert_eq!(lab.tokens_issued(), 0);
}

#[tokio::test]
async fn login_messages_of_older_servers_are_surfaced() {
    let lab = lab_with(LabConfig {
        version: "1.15.6".into(),
        drift: true,
        ..Default::default()
    })
    .await;
    let id = lab.files().agent("app-a").unwrap().clone();
    let checks = format!(
        "  - name: wrong-role\n    {}\n",
        login_with(&id.cert, &id.key, &id.ca, "agent-app-b")
    );
    let r = run(&profile(&lab), &checks).await;
    let c = check(&r, "wrong-role");
    assert_reason(c, "login_failed");
    assert!(
        messages(c).contains("no chain matching all constraints")
            || messages(c).contains("invalid certificate"),
        "{}",
        messages(c)
    );
}

// ---------------------------------------------------------------- vault_cert_role

#[tokio::test]
async fn cert_role_detects_drift_and_revokes_the_admin_token() {
    let lab = lab().await;
    let f = lab.files();
    let checks = format!(
        "  - name: b
    vault_cert_role: {{ mount: cert, name: agent-app-b }}
    expect:
      ca_matches: {issuing}
      policies: {{ include: [app-b-issue], exclude: [debug-policy] }}
      allowed_common_names: {{ include: [\"agent-app-b.*\"] }}
  - name: a-policy
    vault_cert_role: {{ mount: cert, name: agent-app-a }}
    expect: {{ policies: {{ include: [app-a-issue], exclude: [debug-policy] }} }}
  - name: a-ca
    vault_cert_role: {{ mount: cert, name: agent-app-a }}
    expect: {{ ca_matches: {root} }}
  - name: a-cn
    vault_cert_role: {{ mount: cert, name: agent-app-a }}
    expect: {{ allowed_common_names: {{ include: [\"agent-app-a.*\"], exclude: [\"*\"] }} }}
  - name: gone
    vault_cert_role: {{ mount: cert, name: agent-app-c }}
",
        issuing = q(&f.admin.ca),
        root = q(&f.root_ca),
    );
    let r = run(&profile(&lab), &checks).await;
    assert_status(check(&r, "b"), Status::Pass);
    assert_reason(check(&r, "a-policy"), "policy_forbidden");
    assert_reason(check(&r, "a-ca"), "ca_mismatch");
    assert_status(check(&r, "a-cn"), Status::Pass);
    assert_reason(check(&r, "gone"), "mapping_missing");
    assert!(
        !check(&r, "b").certs.is_empty(),
        "the mapping's CA is reported"
    );
    // One cert login for the whole run, revoked when the run ended.
    assert_eq!(lab.tokens_issued(), 1);
    assert_eq!(lab.tokens_live(), 0);

    // Drift: the mapping's CNs change under the agent.
    let body = serde_json::json!({"certificate": std::fs::read_to_string(&f.admin.ca).unwrap(),
        "allowed_common_names": "someone-else.*", "token_policies": "app-b-issue"});
    lab.api("POST", "auth/cert/certs/agent-app-b", body)
        .unwrap();
    let r = run(&profile(&lab), &checks).await;
    assert_reason(check(&r, "b"), "cn_missing");
}

#[tokio::test]
async fn a_run_without_the_close_hook_still_revokes_its_token() {
    // The exporter runs single checks with a cache of their own (engine::run_check).
    let lab = lab().await;
    let (_dir, path) = write_suite(
        &profile(&lab),
        "  - name: m\n    vault_cert_role: { mount: cert, name: agent-app-b }\n",
    );
    let suite = Arc::new(rotcheck::suite::load(&path).unwrap());
    let cache = Arc::new(rotcheck::kinds::Cache::default());
    let r = engine::run_check(&suite, &suite.file.checks[0], None, cache.clone()).await;
    assert_status(&r, Status::Pass);
    assert_eq!((lab.tokens_issued(), lab.tokens_live()), (1, 1));
    drop(cache);
    for _ in 0..50 {
        if lab.tokens_live() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lab.tokens_live(), 0);
}

#[tokio::test]
async fn reads_without_a_token_are_errors_and_env_tokens_work() {
    let lab = lab().await;
    let no_auth =
        profile(&lab).replace("  auth: { cert: { mount: cert, role: vault-admin } }\n", "");
    let checks = "  - name: m\n    vault_cert_role: { mount: cert, name: agent-app-b }\n";
    let r = run(&no_auth, checks).await;
    let c = check(&r, "m");
    assert_status(c, Status::Error);
    assert!(messages(c).contains("VAULT_TOKEN"), "{}", messages(c));

    // A token from the env file (VAULT_TOKEN) reads the mapping.
    let (dir, path) = write_suite(&no_auth, checks);
    let env = dir.path().join("vault.env");
    std::fs::write(&env, format!("VAULT_TOKEN={}\n", lab.root_token())).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("env_file: {}\n{text}", q(&env))).unwrap();
    let r = run_suite(&path).await;
    assert_status(check(&r, "m"), Status::Pass);
}

#[tokio::test]
async fn injected_server_errors_are_reported_with_vaults_text() {
    let lab = lab().await;
    lab.fail_path("auth/cert/certs/agent-app-b", 500);
    let r = run(
        &profile(&lab),
        "  - name: m\n    vault_cert_role: { mount: cert, name: agent-app-b }\n",
    )
    .await;
    let c = check(&r, "m");
    assert_status(c, Status::Error);
    assert!(
        messages(c).contains("Vault said: lab fault"),
        "{}",
        messages(c)
    );
    assert_eq!(lab.tokens_live(), 0);

    // A health endpoint that answers an error instead of its status document never passes.
    lab.fail_path("sys/health", 500);
    let checks = "  - name: h\n    vault_health: {}\n  - name: s\n    version_skew: { agent: { version: \"1.20.4\" } }\n";
    let r = run(&profile(&lab), checks).await;
    for name in ["h", "s"] {
        let c = check(&r, name);
        assert_status(c, Status::Error);
        assert!(messages(c).contains("answered 500"), "{}", messages(c));
    }
}

#[tokio::test]
async fn env_fallbacks_like_the_vault_cli() {
    let lab = lab().await;
    let f = lab.files();
    let (_dir, path) = write_suite("", "  - name: h\n    vault_health: {}\n");
    let env = [
        ("VAULT_ADDR", lab.url()),
        ("VAULT_CACERT", f.ca_chain.display().to_string()),
        ("VAULT_CLIENT_CERT", f.admin.cert.display().to_string()),
        ("VAULT_CLIENT_KEY", f.admin.key.display().to_string()),
        ("VAULT_TLS_SERVER_NAME", lab.server_name().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = rotcheck(&["gate", "-c", path.to_str().unwrap()], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Without the SNI override the certificate is checked against the address's IP.
    let lab_ip_only = lab_with(LabConfig {
        extra_sans: vec![],
        ..Default::default()
    })
    .await;
    let mut env2 = env[..4].to_vec();
    let url = lab_ip_only.url();
    let ca = lab_ip_only.files().ca_chain.display().to_string();
    env2[0] = ("VAULT_ADDR", url.as_str());
    env2[1] = ("VAULT_CACERT", ca.as_str());
    let out = rotcheck(
        &["gate", "-c", path.to_str().unwrap(), "--format", "json"],
        &env2,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("name_mismatch"), "{}", text(&out));
}

// ---------------------------------------------------------------- vault_pki_role

#[tokio::test]
async fn pki_role_too_broad_and_ttl_too_long() {
    let lab = lab().await;
    let checks = "  - name: narrow
    vault_pki_role: { mount: pki-prod, name: nginx-app-a }
    expect: { allowed_domains: [app-a.lab.rotcheck.test], client_flag: false, server_flag: true, max_ttl: 720h }
  - name: subdomains
    vault_pki_role: { mount: pki-prod, name: nginx-app-a }
    expect: { allow_subdomains: false }
  - name: ttl
    vault_pki_role: { mount: pki-prod, name: nginx-app-a }
    expect: { max_ttl: 72h }
  - name: missing
    vault_pki_role: { mount: pki-prod, name: nginx-app-z }
";
    let r = run(&profile(&lab), checks).await;
    assert_status(check(&r, "narrow"), Status::Pass);
    assert_reason(check(&r, "subdomains"), "role_too_broad");
    assert_reason(check(&r, "ttl"), "ttl_too_long");
    assert_reason(check(&r, "missing"), "role_missing");

    let wide = serde_json::json!({"allowed_domains": ["app-a.lab.rotcheck.test", "lab.rotcheck.test"],
        "allow_subdomains": true, "server_flag": true, "client_flag": true, "max_ttl": "720h"});
    lab.api("POST", "pki-prod/roles/nginx-app-a", wide).unwrap();
    let r = run(&profile(&lab), checks).await;
    let c = check(&r, "narrow");
    assert_reason(c, "role_too_broad");
    assert!(messages(c).contains("lab.rotcheck.test"), "{}", messages(c));
}

// ---------------------------------------------------------------- vault_kv

#[tokio::test]
async fn kv_version_and_paths() {
    let lab = lab().await;
    lab.api("POST", "sys/mounts/kv1", serde_json::json!({"type": "kv"}))
        .unwrap();
    let checks = "  - name: a
    vault_kv: { mount: secret, path: app-a/config }
  - name: b
    vault_kv: { mount: secret, path: app-b/config }
  - name: v1
    vault_kv: { mount: kv1 }
  - name: none
    vault_kv: { mount: nothing-here }
";
    let r = run(&profile(&lab), checks).await;
    let a = check(&r, "a");
    assert_status(a, Status::Pass);
    assert!(messages(a).contains("KV v2 detected"), "{}", messages(a));
    assert_reason(check(&r, "b"), "path_missing");
    assert_reason(check(&r, "v1"), "kv_version");
    assert_reason(check(&r, "none"), "mount_missing");
    // The secret's value is never read into a result.
    assert!(!format!("{r:?}").contains("hello from the lab"));
}

#[tokio::test]
async fn kv_falls_back_to_the_ui_mounts_endpoint_without_sys_mounts() {
    let lab = lab().await;
    let ca = std::fs::read_to_string(&lab.files().ca_chain).unwrap();
    // A login that may read secret/ metadata but not list the mount table.
    lab.put_policy(
        "kv-reader",
        "path \"secret/metadata/*\" { capabilities = [\"read\", \"list\"] }",
    )
    .unwrap();
    lab.put_cert_role("kv-reader", &ca, &["kv-reader"]).unwrap();
    let profile = profile(&lab).replace("role: vault-admin", "role: kv-reader");
    let checks = "  - name: v2
    vault_kv: { mount: secret, path: app-a/config }
  - name: missing
    vault_kv: { mount: secret, path: app-b/config }
  - name: forbidden
    vault_kv: { mount: pki }
  - name: unknown
    vault_kv: { mount: nothing-here }
";
    let r = run(&profile, checks).await;
    let v2 = check(&r, "v2");
    assert_status(v2, Status::Pass);
    assert!(messages(v2).contains("KV v2 detected"), "{}", messages(v2));
    assert_reason(check(&r, "missing"), "path_missing");
    // Vault answers a forbidden and an unknown mount alike; both are errors naming why.
    for name in ["forbidden", "unknown"] {
        let c = check(&r, name);
        assert_status(c, Status::Error);
        assert!(
            messages(c).contains("preflight capability check returned 403"),
            "{name}: {}",
            messages(c)
        );
    }
    assert_eq!(lab.tokens_live(), 0, "the kv-reader token is revoked");
}

// ---------------------------------------------------------------- version_skew

#[tokio::test]
async fn version_skew_from_value_command_and_log() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vault");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'Vault v1.21.1 (8b2f2ac1c6d9b7c3), built 2025-11-18T13:04:32Z'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("agent.log");
    std::fs::write(&log, "==> Note: Vault Agent version does not match Vault server version. Vault Agent version: 1.17.0, Vault server version: 1.20.4\n==> Vault Agent started! Log data will stream in below:\n").unwrap();
    let checks = format!(
        "  - name: seed
    version_skew: {{ agent: {{ version: \"1.21.1\" }} }}
    expect: {{ max_minor_skew: 1, agent_newer: warn }}
  - name: newer-fails
    version_skew: {{ agent: {{ version: \"1.21.1\" }} }}
    expect: {{ max_minor_skew: 1, agent_newer: fail }}
  - name: command
    version_skew: {{ agent: {{ command: [{}, version] }} }}
    expect: {{ max_minor_skew: 1, agent_newer: ok }}
  - name: too-old
    version_skew: {{ agent: {{ log: {} }} }}
    expect: {{ max_minor_skew: 1 }}
  - name: too-new
    version_skew: {{ agent: {{ version: \"1.23.0\" }} }}
    expect: {{ max_minor_skew: 2, agent_newer: ok }}
",
        q(&script),
        q(&log)
    );
    let r = run(&profile(&lab), &checks).await;
    let seed = check(&r, "seed");
    assert_status(seed, Status::Warn);
    assert_reason(seed, "agent_newer");
    let v = seed.facts.vault.as_ref().unwrap();
    assert_eq!(
        (
            v.minor_skew,
            v.agent_version.as_deref(),
            v.version.as_deref()
        ),
        (Some(1), Some("1.21.1"), Some("1.20.4"))
    );
    assert_status(check(&r, "newer-fails"), Status::Fail);
    assert_status(check(&r, "command"), Status::Pass);
    let old = check(&r, "too-old");
    assert_reason(old, "skew");
    assert!(
        messages(old).contains("3 minor versions behind"),
        "{}",
        messages(old)
    );
    assert_reason(check(&r, "too-new"), "skew");
}

// ---------------------------------------------------------------- connections

#[tokio::test]
async fn resets_while_vault_restarts_read_reset() {
    let lab = lab().await;
    lab.reset_for(Duration::from_secs(30));
    let r = run(&profile(&lab), "  - name: h\n    vault_health: {}\n").await;
    let c = check(&r, "h");
    assert_status(c, Status::Fail);
    assert_eq!(c.error.as_ref().unwrap().class, "reset", "{}", messages(c));
    assert_reason(c, "reset");
    assert!(messages(c).contains("reset by peer"), "{}", messages(c));
}

#[tokio::test]
async fn gate_wait_passes_once_the_lab_comes_back() {
    let lab = lab().await;
    let (_dir, path) = write_suite(&profile(&lab), "  - name: h\n    vault_health: {}\n  - name: m\n    vault_cert_role: { mount: cert, name: agent-app-b }\n");
    let suite = path.to_str().unwrap();
    lab.reset_for(Duration::from_secs(60));
    let out = rotcheck(&["gate", "-c", suite, "--format", "json"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["checks"][0]["error"]["class"], "reset", "{doc}");

    lab.reset_for(Duration::from_secs(3));
    let started = Instant::now();
    let out = rotcheck(
        &["gate", "-c", suite, "--wait", "30s", "--interval", "1s"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        lab.tokens_live(),
        0,
        "the admin token of every round is revoked"
    );
}

async fn client_for(addr: &str, lab: &Lab) -> VaultClient {
    let ep = Endpoint {
        addr: Addr::parse(addr).unwrap(),
        server_name: Some(lab.server_name().into()),
        ca_file: Some(lab.files().ca_chain.clone()),
        client_cert: None,
        client_key: None,
        namespace: None,
    };
    VaultClient::new(&ep, Duration::from_secs(3)).unwrap()
}

#[tokio::test]
async fn connection_failures_are_classified() {
    let lab = lab().await;
    let reset = FaultListener::start(FaultKind::ResetOnAccept)
        .await
        .unwrap();
    let plain = FaultListener::start(FaultKind::PlainHttp).await.unwrap();
    let stall = FaultListener::start(FaultKind::Stall).await.unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = closed.local_addr().unwrap();
    drop(closed);
    for (addr, class) in [
        (reset.addr().to_string(), "reset"),
        (plain.addr().to_string(), "protocol"),
        (stall.addr().to_string(), "timeout"),
        (refused.to_string(), "refused"),
        ("no-such-host.invalid:8200".to_string(), "dns"),
    ] {
        let c = client_for(&format!("https://{addr}"), &lab).await;
        let e = c.get("sys/health", None).await.unwrap_err();
        assert_eq!(e.class(), class, "{addr}: {e}");
    }
}

/// A TLS server (lab-issued certificate) that answers every request with `response` bytes.
async fn hostile(lab: &Lab, response: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    let ck = lab
        .pki()
        .issue(&LeafSpec::server(
            lab.server_name(),
            &[lab.server_name(), "127.0.0.1"],
        ))
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(lab.pki().fullchain_der(&ck), ck.key_der())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("https://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, response) = (acceptor.clone(), response.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(&response).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn hostile_answers_do_not_panic() {
    let lab = lab().await;
    let huge = {
        let body = vec![b'a'; 3 * 1024 * 1024];
        let mut r =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend(body);
        r
    };
    let garbage = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{\"sealed\"".to_vec();
    let html = b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 27\r\n\r\n<html>bad gateway</html>\x00\x01\x02".to_vec();
    let not_http = b"\x00\x01\x02 nonsense\r\n\r\n".to_vec();
    for (resp, want) in [
        (huge, "bad_response"),
        (garbage, "bad_response"),
        (html, "http_502"),
        (not_http, "protocol"),
    ] {
        let (addr, _task) = hostile(&lab, resp).await;
        let c = client_for(&addr, &lab).await;
        let e: VaultError = match c.get("sys/health", None).await {
            Ok(r) => r.into_ok().expect_err("a hostile answer is an error"),
            Err(e) => e,
        };
        assert_eq!(e.class(), want, "{e}");
        if want == "http_502" {
            assert!(
                e.to_string()
                    .contains("(not JSON) <html>bad gateway</html>"),
                "{e}"
            );
        }
    }
    // Through a check: a garbage health answer is an error, not a panic.
    let (addr, _task) = hostile(
        &lab,
        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnope".to_vec(),
    )
    .await;
    let p = profile(&lab).replace(&lab.url(), &addr);
    let r = run(&p, "  - name: h\n    vault_health: {}\n").await;
    assert_status(check(&r, "h"), Status::Error);
}

// ---------------------------------------------------------------- secrets

/// Every distinctive line of a PEM key file's base64 body.
fn key_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn no_token_or_key_material_in_any_output_format() {
    let lab = lab().await;
    let f = lab.files();
    let checks = format!(
        "  - name: h\n    vault_health: {{}}\n  - name: a\n    {}\n    expect: {{ policies: {{ exclude: [debug-policy] }} }}\n  - name: b\n    {}\n  - name: bad-login\n    {}\n  - name: m\n    vault_cert_role: {{ mount: cert, name: agent-app-a }}\n    expect: {{ policies: {{ exclude: [debug-policy] }} }}\n  - name: kv\n    vault_kv: {{ mount: secret, path: app-a/config }}\n",
        login(&lab, "app-a"),
        login(&lab, "app-b"),
        login_with(&f.admin.cert, &f.admin.key, &f.ca_chain, "agent-app-b"),
    );
    let mut secrets: Vec<String> = vec![
        lab.root_token().to_string(),
        "hvs.".into(),
        "PRIVATE KEY".into(),
        "hello from the lab".into(),
    ];
    for id in std::iter::once(&f.admin).chain(&f.agents) {
        secrets.extend(key_lines(&id.key));
    }
    let with_login = profile(&lab);
    let with_env_token =
        with_login.replace("  auth: { cert: { mount: cert, role: vault-admin } }\n", "");
    for (p, env) in [
        (with_login, vec![]),
        (with_env_token, vec![("VAULT_TOKEN", lab.root_token())]),
    ] {
        let (_dir, path) = write_suite(&p, &checks);
        for format in FORMATS {
            let out = rotcheck(
                &["gate", "-c", path.to_str().unwrap(), "--format", format],
                &env,
            )
            .await;
            let all = text(&out);
            assert_eq!(out.status.code(), Some(1), "{format}: {all}");
            let reported = match *format {
                "prom" => "assertion=\"policies\"",
                _ => "debug-policy",
            };
            assert!(
                all.contains(reported),
                "{format}: the failure is reported\n{all}"
            );
            for s in &secrets {
                assert!(
                    !all.contains(s.as_str()),
                    "{format} output holds a secret ({}…)",
                    &s[..s.len().min(6)]
                );
            }
        }
    }
    assert_eq!(
        lab.tokens_live(),
        0,
        "every login and admin token was revoked"
    );
}

// ---------------------------------------------------------------- suites

#[tokio::test]
async fn lab_suite_vault_checks_pass_on_a_fresh_lab_once_the_drift_is_fixed() {
    let lab = lab().await;
    let suite = lab.files().suite.clone();
    let vault_kinds = [
        "vault_health",
        "vault_login",
        "vault_cert_role",
        "vault_pki_role",
        "vault_kv",
        "version_skew",
    ];
    let r = run_suite(&suite).await;
    let vault: Vec<&CheckResult> = r
        .checks
        .iter()
        .filter(|c| vault_kinds.contains(&c.kind.as_str()))
        .collect();
    assert!(
        vault.len() >= 8,
        "{:?}",
        vault.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
    for c in &vault {
        match c.name.as_str() {
            // The lab's deliberate drift: app-a's mapping still carries debug-policy.
            "agent-app-a-login" | "agent-app-a-mapping" => assert_reason(c, "policy_forbidden"),
            _ => assert!(
                c.status <= Status::Warn,
                "{}: {:?}\n{}",
                c.name,
                c.status,
                messages(c)
            ),
        }
    }
    let issuing = std::fs::read_to_string(&lab.files().admin.ca).unwrap();
    let fixed = serde_json::json!({"certificate": issuing, "allowed_common_names": "agent-app-a.*",
        "token_policies": "app-a-issue", "token_ttl": "1h"});
    lab.api("POST", "auth/cert/certs/agent-app-a", fixed)
        .unwrap();
    let r = run_suite(&suite).await;
    for c in r
        .checks
        .iter()
        .filter(|c| vault_kinds.contains(&c.kind.as_str()))
    {
        assert!(
            c.status <= Status::Warn,
            "{}: {:?}\n{}",
            c.name,
            c.status,
            messages(c)
        );
    }
    assert_eq!(lab.tokens_live(), 0);
}

#[tokio::test]
async fn prod_suite_lints() {
    let out = rotcheck(&["lint", "-c", "checks/prod.yaml"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test]
async fn whole_lab_suite_passes_on_a_fresh_lab() {
    let lab = lab_with(LabConfig::default()).await;
    let r = run_suite(&lab.files().suite.clone()).await;
    assert!(r.checks.len() >= 15, "{} checks", r.checks.len());
    for c in &r.checks {
        assert!(
            c.status <= Status::Warn,
            "{}: {:?}\n{}",
            c.name,
            c.status,
            messages(c)
        );
    }
    let skew = r.checks.iter().find(|c| c.kind == "version_skew").unwrap();
    assert_eq!(
        skew.status,
        Status::Warn,
        "agent 1.21.1 vs server 1.20.4 warns"
    );
}

#[tokio::test]
async fn real_vault_dev_server_when_installed() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    let d = dev.dir.path();
    let pki = LabPki::generate().unwrap();
    let agent = pki
        .issue(&LeafSpec::client("agent-app-a.lab.rotcheck.test"))
        .unwrap();
    let (ca, cert, key, policy) = (
        d.join("ca.pem"),
        d.join("agent.crt"),
        d.join("agent.key"),
        d.join("p.hcl"),
    );
    std::fs::write(&ca, pki.intermediate().cert_pem()).unwrap();
    std::fs::write(&cert, agent.cert_pem()).unwrap();
    std::fs::write(&key, agent.key_pem()).unwrap();
    std::fs::write(
        &policy,
        "path \"secret/data/app-a/*\" { capabilities = [\"read\"] }\n",
    )
    .unwrap();
    dev.must(&["auth", "enable", "cert"]);
    dev.must(&["policy", "write", "app-a-issue", policy.to_str().unwrap()]);
    let ca_arg = format!("certificate=@{}", ca.display());
    dev.must(&[
        "write",
        "auth/cert/certs/agent-app-a",
        &ca_arg,
        "token_policies=app-a-issue",
        "allowed_common_names=agent-app-a.*",
    ]);
    let profile = format!(
        "vault:\n  addr: https://{}\n  server_name: localhost\n  ca_file: {}\n  token: {DEV_ROOT_TOKEN}\n",
        dev.addr,
        q(&dev.ca())
    );
    let checks = format!(
        "  - name: health\n    vault_health: {{}}\n    expect: {{ sealed: false, initialized: true }}\n  - name: login\n    {}\n    expect: {{ policies: {{ include: [app-a-issue], exclude: [debug-policy] }} }}\n  - name: mapping\n    vault_cert_role: {{ mount: cert, name: agent-app-a }}\n    expect: {{ ca_matches: {}, policies: {{ include: [app-a-issue] }} }}\n  - name: kv\n    vault_kv: {{ mount: secret }}\n    expect: {{ kv_version: 2 }}\n  - name: skew\n    version_skew: {{ agent: {{ command: [{bin}, version] }} }}\n    expect: {{ max_minor_skew: 0 }}\n",
        login_with(&cert, &key, &dev.ca(), "agent-app-a"),
        q(&ca)
    );
    let (_dir, path) = write_suite(&profile, &checks);
    let r = run_suite(&path).await;
    for c in &r.checks {
        assert_eq!(
            c.status,
            Status::Pass,
            "{} against {bin}: {}",
            c.name,
            messages(c)
        );
    }
    let accessors: serde_json::Value =
        serde_json::from_str(&dev.must(&["list", "-format=json", "auth/token/accessors"])).unwrap();
    assert_eq!(
        accessors.as_array().map(Vec::len),
        Some(1),
        "only the root token is left: {accessors}"
    );
}
