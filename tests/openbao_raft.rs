//! Every Vault check kind and the rotate subcommands against a production-like OpenBao: raft
//! storage, a listener for `vault.prod.privsec.ch` that requires client certificates, a PKI root
//! and an intermediate mount, cert auth with per-agent mappings, KV v2 and v1. One server for
//! the whole story (initializing raft takes seconds): pass, drift, repair by `rotate`, token
//! accounting, then seal and restart.

mod common;

use common::bao::{self, RaftPki, RaftServer, SNI};
use common::{Authority, Issued, FOREVER};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const APP: &str = "app-a.prod.privsec.ch";

/// The client certificates the story uses.
struct Clients {
    agent: Issued,
    unmapped: Issued,
    foreign: Issued,
}

fn start(bin: &str) -> (RaftServer, Clients) {
    let listener_ca = Authority::root("Listener CA");
    let server = listener_ca.leaf(&[SNI, "127.0.0.1"], FOREVER);
    let clients_ca = Authority::root("Clients CA");
    let admin = clients_ca.client("vault-admin-prod");
    let pki = RaftPki {
        ca_pem: &listener_ca.cert.pem,
        server_cert_pem: &server.pem,
        server_key_pem: &server.key_pem,
        client_ca_pem: &clients_ca.cert.pem,
        admin_cert_pem: &admin.pem,
        admin_key_pem: &admin.key_pem,
    };
    let s = RaftServer::start(bin, &pki);
    let clients = Clients {
        agent: clients_ca.client("agent-app-a.prod.privsec.ch"),
        unmapped: clients_ca.client("agent-app-z.prod.privsec.ch"),
        foreign: Authority::root("Foreign CA").client("agent-app-a.prod.privsec.ch"),
    };
    for (name, c) in [
        ("agent", &clients.agent),
        ("unmapped", &clients.unmapped),
        ("foreign", &clients.foreign),
    ] {
        std::fs::write(s.path(&format!("{name}.crt")), &c.pem).unwrap();
        std::fs::write(s.path(&format!("{name}.key")), &c.key_pem).unwrap();
    }
    world(&s);
    (s, clients)
}

/// Mounts, roles, policies, mappings and secrets, as the seeds describe them.
fn world(s: &RaftServer) {
    pki(s);
    let policies = [
        ("app-a-issue", "path \"pki-prod/issue/nginx-app-a\" { capabilities = [\"update\"] }\n"),
        ("admin", "path \"*\" { capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\", \"sudo\"] }\n"),
        ("debug-policy", "path \"sys/*\" { capabilities = [\"read\"] }\n"),
    ];
    for (name, text) in policies {
        let file = s.path(&format!("{name}.hcl"));
        std::fs::write(&file, text).unwrap();
        s.must(&["policy", "write", name, file.to_str().unwrap()]);
    }
    s.must(&["auth", "enable", "cert"]);
    let ca = format!("certificate=@{}", s.path("client-ca.pem").display());
    s.must(&[
        "write",
        "auth/cert/certs/agent-app-a",
        &ca,
        "token_policies=app-a-issue",
        "allowed_common_names=agent-app-a.*",
    ]);
    s.must(&[
        "write",
        "auth/cert/certs/admin",
        &ca,
        "token_policies=admin",
        "allowed_common_names=vault-admin-prod",
    ]);
    s.must(&["secrets", "enable", "-path=secret", "kv-v2"]);
    s.must(&[
        "kv",
        "put",
        "secret/app-a/config",
        "greeting=hello from openbao",
    ]);
    s.must(&["secrets", "enable", "-path=kv1", "kv"]);
}

/// `pki` (root) and `pki-prod` (intermediate, signed by the root, chain imported whole).
fn pki(s: &RaftServer) {
    bao::two_tier_pki(s, "pki", "pki-prod", true);
    s.must(&[
        "write",
        "pki-prod/roles/nginx-app-a",
        &format!("allowed_domains={APP}"),
        "allow_bare_domains=true",
        "server_flag=true",
        "client_flag=false",
        "key_type=ec",
        "key_bits=256",
        "max_ttl=720h",
        "ttl=24h",
    ]);
}

/// The suite: the admin identity, a token by cert login (revoked at the end of each run).
fn suite(s: &RaftServer, bin: &str) -> PathBuf {
    let login = |name: &str, who: &str| {
        format!("  - name: {name}\n    vault_login: {{ mount: cert, role: agent-app-a, client_cert: {who}.crt, client_key: {who}.key }}\n    expect: {{ policies: {{ include: [app-a-issue], exclude: [debug-policy] }} }}\n")
    };
    let text = format!(
        "suite: bao\nvault:\n  addr: {url}\n  server_name: {SNI}\n  ca_file: ca.pem\n  client_cert: admin.crt\n  client_key: admin.key\n  auth: {{ cert: {{ mount: cert, role: admin }} }}\nchecks:\n  - name: health\n    vault_health: {{}}\n    expect: {{ sealed: false, initialized: true }}\n{}{}{}  - name: mapping\n    vault_cert_role: {{ mount: cert, name: agent-app-a }}\n    expect: {{ ca_matches: client-ca.pem, policies: {{ include: [app-a-issue], exclude: [debug-policy] }}, allowed_common_names: {{ include: [\"agent-app-a.*\"] }} }}\n  - name: role\n    vault_pki_role: {{ mount: pki-prod, name: nginx-app-a }}\n    expect: {{ allowed_domains_at_most: [{APP}], max_ttl: 720h, server_flag: true, client_flag: false }}\n  - name: kv\n    vault_kv: {{ mount: secret, path: app-a/config }}\n  - name: kv-missing-path\n    vault_kv: {{ mount: secret, path: app-b/config }}\n  - name: kv-missing-mount\n    vault_kv: {{ mount: nothing-here }}\n  - name: kv1\n    vault_kv: {{ mount: kv1 }}\n    expect: {{ kv_version: 1, path_exists: false }}\n  - name: skew\n    version_skew: {{ agent: {{ command: [{bin}, version] }} }}\n    expect: {{ max_minor_skew: 0 }}\n",
        login("login", "agent"),
        login("login-unmapped", "unmapped"),
        login("login-foreign", "foreign"),
        url = s.url(),
    );
    let path = s.path("suite.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_TOKEN")
        .output()
        .expect("run rotcheck")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `gate --format json`: check name → (status, reasons, error class).
fn gate(suite: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["gate", "-c", suite.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    let checks = report["checks"].as_array().unwrap();
    checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report}"))
}

fn status(report: &Value, name: &str) -> String {
    check(report, name)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn reasons(report: &Value, name: &str) -> Vec<String> {
    let c = check(report, name);
    let mut out: Vec<String> = c["assertions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["reason"].as_str().map(String::from))
        .collect();
    out.extend(c["error"]["class"].as_str().map(String::from));
    out
}

fn assert_verdicts(report: &Value, want: &[(&str, &str, Option<&str>)]) {
    for (name, st, reason) in want {
        assert_eq!(status(report, name), *st, "{name}: {}", check(report, name));
        if let Some(r) = reason {
            assert!(
                reasons(report, name).iter().any(|x| x == r),
                "{name} wants {r}: {}",
                check(report, name)
            );
        }
    }
}

fn rotate(suite: &Path, args: &[&str]) -> String {
    let mut all = vec!["rotate", args[0], "-c", suite.to_str().unwrap()];
    all.extend_from_slice(&args[1..]);
    let out = run(&all);
    assert!(out.status.success(), "rotate {args:?}: {}", text(&out));
    text(&out)
}

#[test]
fn every_vault_check_kind_and_rotate_step_against_openbao() {
    let Some(bin) = bao::server_binary().filter(|b| b == "bao") else {
        return;
    };
    let (mut s, _clients) = start(&bin);
    let suite = suite(&s, &bin);
    let tokens = s.token_count();

    let r = gate(&suite, &[]);
    assert_verdicts(
        &r,
        &[
            ("health", "pass", None),
            ("login", "pass", None),
            ("login-unmapped", "fail", Some("login_failed")),
            ("mapping", "pass", None),
            ("role", "pass", None),
            ("kv", "pass", None),
            ("kv-missing-path", "fail", Some("path_missing")),
            ("kv-missing-mount", "fail", Some("mount_missing")),
            ("kv1", "pass", None),
            ("skew", "pass", None),
        ],
    );
    assert_ne!(
        status(&r, "login-foreign"),
        "pass",
        "{}",
        check(&r, "login-foreign")
    );
    assert!(
        !r.to_string().contains("hello from openbao"),
        "a secret's value is never read"
    );

    drift_and_repair(&s, &suite);
    issue_and_trust(&s, &suite);
    assert_eq!(
        s.token_count(),
        tokens,
        "every token rotcheck obtained was revoked"
    );

    s.must(&["operator", "seal"]);
    let r = gate(&suite, &["--check", "health"]);
    assert_verdicts(&r, &[("health", "fail", Some("sealed"))]);
    restart_during_wait(&mut s, &suite);
}

/// A debug policy on the mapping and a broadened role: the gate names both; `rotate` repairs
/// both, and a second run changes nothing.
fn drift_and_repair(s: &RaftServer, suite: &Path) {
    s.must(&[
        "write",
        "auth/cert/certs/agent-app-a",
        "token_policies=app-a-issue,debug-policy",
    ]);
    s.must(&[
        "patch",
        "pki-prod/roles/nginx-app-a",
        &format!("allowed_domains={APP},evil.example"),
    ]);
    let r = gate(suite, &[]);
    assert_verdicts(
        &r,
        &[
            ("mapping", "fail", Some("policy_forbidden")),
            ("login", "fail", Some("policy_forbidden")),
        ],
    );
    assert_eq!(status(&r, "role"), "fail", "{}", check(&r, "role"));

    let ca = s.path("client-ca.pem");
    let cert_role = [
        "cert-role",
        "--name",
        "agent-app-a",
        "--ca-file",
        ca.to_str().unwrap(),
        "--remove-policy",
        "debug-policy",
    ];
    rotate(suite, &cert_role);
    let pki_role = [
        "pki-role",
        "--mount",
        "pki-prod",
        "--name",
        "nginx-app-a",
        "--allowed-domains",
        APP,
    ];
    rotate(suite, &pki_role);
    let r = gate(suite, &[]);
    assert_verdicts(
        &r,
        &[
            ("mapping", "pass", None),
            ("login", "pass", None),
            ("role", "pass", None),
        ],
    );
    let role = s.must(&["read", "-format=json", "pki-prod/roles/nginx-app-a"]);
    let role: Value = serde_json::from_str(&role).unwrap();
    assert_eq!(
        role["data"]["key_type"], "ec",
        "untouched by pki-role: {role}"
    );
    assert!(
        rotate(suite, &cert_role).contains("nothing to change")
            || rotate(suite, &cert_role).contains("unchanged")
    );
    assert!(rotate(suite, &pki_role).contains("unchanged"));
}

/// `rotate issue` writes a key, certificate, fullchain and CA chain that OpenSSL accepts; a
/// second run keeps the fresh certificate; `rotate trust` writes the same CA chain.
fn issue_and_trust(s: &RaftServer, suite: &Path) {
    let p = |n: &str| s.path(n).to_str().unwrap().to_string();
    let issue = [
        "issue",
        "--mount",
        "pki-prod",
        "--role",
        "nginx-app-a",
        "--cn",
        APP,
        "--ttl",
        "24h",
        "--key",
        &p("app.key"),
        "--cert",
        &p("app.crt"),
        "--chain",
        &p("app.fullchain.pem"),
        "--ca-chain",
        &p("ca_chain.pem"),
    ];
    rotate(suite, &issue);
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", &p("ca_chain.pem"), &p("app.crt")])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    let again = rotate(suite, &issue);
    assert!(
        again.contains("unchanged") || again.contains("nothing to change"),
        "{again}"
    );
    let trust = ["trust", "--mount", "pki-prod", "--out", &p("trust.pem")];
    rotate(suite, &trust);
    assert_eq!(
        std::fs::read(p("trust.pem")).unwrap(),
        std::fs::read(p("ca_chain.pem")).unwrap()
    );
    assert!(
        rotate(suite, &trust).contains("unchanged")
            || rotate(suite, &trust).contains("nothing to change")
    );
}

/// The server goes down and comes back sealed; `gate --wait` started meanwhile passes once it
/// is unsealed.
fn restart_during_wait(s: &mut RaftServer, suite: &Path) {
    s.kill();
    let path = suite.to_str().unwrap().to_string();
    let waiter = std::thread::spawn(move || {
        run(&[
            "gate",
            "-c",
            &path,
            "--check",
            "health",
            "--wait",
            "90s",
            "--interval",
            "1s",
        ])
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    s.launch();
    s.unseal();
    let out = waiter.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
