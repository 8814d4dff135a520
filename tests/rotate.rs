//! `rotcheck rotate` end to end: the seven-step plan against the in-process lab Vault with a
//! real nginx frontend (leaf rotated and reloaded) and a real haproxy edge (verifies nginx with
//! the refreshed CA chain); crash safety (SIGKILL at every write point); faults (Vault 500
//! mid-plan, a failing reload); the plan lock; the subcommands' idempotency; and a scan of
//! every output, state file and audit line for key material and tokens.

use rotcheck_lab::{Lab, LabConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CTL_SECRET: &str = "rotate-test-control";
const APP_A: &str = "app-a.lab.rotcheck.test";
const APP_B: &str = "app-b.lab.rotcheck.test";

/// One finished `rotcheck` run.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    out: String,
}

/// A lab Vault, optionally nginx + haproxy, a suite file, and every output seen.
struct Env {
    _tmp: tempfile::TempDir,
    lab: Arc<Lab>,
    dir: PathBuf,
    ctl: std::net::SocketAddr,
    suite: PathBuf,
    web: Option<Web>,
    seen: Mutex<Vec<String>>,
}

/// nginx and haproxy started by a test; stopped (by their pids) when dropped.
struct Web {
    nginx_port: u16,
    edge_port: u16,
    pids: Vec<i32>,
}

impl Drop for Web {
    fn drop(&mut self) {
        for pid in &self.pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::SIGTERM);
        }
    }
}

fn free_port() -> u16 {
    rotcheck_lab::ports::free_port([127, 0, 0, 1].into())
}

impl Env {
    async fn new(web: bool) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lab");
        // drift: agent-app-a's mapping still carries debug-policy, for the plan to remove.
        let cfg = LabConfig {
            dir: Some(dir.clone()),
            drift: true,
            ..LabConfig::default()
        };
        let lab = Arc::new(Lab::start(cfg).await.unwrap());
        let (ctl, _task) = rotcheck_lab::control::serve(lab.clone(), CTL_SECRET.into())
            .await
            .unwrap();
        let dir = lab.files().dir.clone();
        let mut env = Env {
            _tmp: tmp,
            lab,
            suite: dir.join("rotate-test.yaml"),
            dir,
            ctl,
            web: None,
            seen: Mutex::new(vec![]),
        };
        if web {
            env.web = Some(env.start_web());
        }
        env
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn start_web(&self) -> Web {
        let (nginx_port, edge_port) = (free_port(), free_port());
        std::fs::create_dir_all(self.p("nginx")).unwrap();
        std::fs::create_dir_all(self.p("haproxy")).unwrap();
        // The lab writes no separate app leaf; the plan creates app-a.crt next to the chain.
        std::fs::write(
            self.p("nginx/nginx.conf"),
            nginx_conf(&self.dir, nginx_port),
        )
        .unwrap();
        std::fs::write(
            self.p("haproxy/haproxy.cfg"),
            haproxy_cfg(&self.dir, edge_port, nginx_port),
        )
        .unwrap();
        let conf = self.p("nginx/nginx.conf");
        let st = std::process::Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .status()
            .expect("nginx is installed (apt-get install nginx)");
        assert!(st.success(), "nginx did not start");
        let st = std::process::Command::new("haproxy")
            .args(["-D", "-f"])
            .arg(self.p("haproxy/haproxy.cfg"))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("haproxy is installed (apt-get install haproxy)");
        assert!(st.success(), "haproxy did not start");
        let pids = ["nginx/nginx.pid", "haproxy/haproxy.pid"]
            .iter()
            .map(|f| wait_pid(&self.p(f)))
            .collect();
        Web {
            nginx_port,
            edge_port,
            pids,
        }
    }

    /// Writes the suite with the given plan steps.
    fn write_suite(&self, steps: &[&str], extra_checks: &str) {
        let (np, ep) = self
            .web
            .as_ref()
            .map(|w| (w.nginx_port, w.edge_port))
            .unwrap_or((1, 1));
        let text = suite_yaml(self, np, ep, extra_checks) + &plan_yaml(self, steps);
        std::fs::write(&self.suite, text).unwrap();
    }

    async fn rotcheck(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("VAULT_TOKEN")
            .output()
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.seen.lock().unwrap().push(text.clone());
        Run {
            code: out.status.code(),
            signal: out.status.signal(),
            out: text,
        }
    }

    async fn plan(&self, extra: &[&str]) -> Run {
        let suite = self.suite.display().to_string();
        let mut args = vec!["rotate", "plan", "-c", suite.as_str()];
        args.extend_from_slice(extra);
        self.rotcheck(&args, &[]).await
    }

    fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.p("rotate/state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.p("rotate/audit.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
            .collect()
    }

    /// Every output, the state file and the audit log hold no key material and no token.
    fn assert_no_secrets(&self) {
        let mut texts = self.seen.lock().unwrap().clone();
        for f in ["rotate/state.json", "rotate/audit.jsonl"] {
            texts.push(std::fs::read_to_string(self.p(f)).unwrap_or_default());
        }
        let bodies = key_bodies(&self.dir);
        assert!(!bodies.is_empty(), "found the key files to compare with");
        let token_shape = regex::Regex::new(r"hv[sbr]\.[A-Za-z0-9_-]{16,}").unwrap();
        for t in &texts {
            assert!(!t.contains("PRIVATE KEY"), "key material in output:\n{t}");
            assert!(!t.contains(self.lab.root_token()), "root token in output");
            assert!(!token_shape.is_match(t), "a token in output:\n{t}");
            for b in &bodies {
                assert!(!t.contains(b.as_str()), "a private key line in output");
            }
        }
    }
}

/// Base64 lines of every private key under `dir` (current and backups).
fn key_bodies(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for path in walk(dir) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if !text.contains("PRIVATE KEY-----") {
            continue;
        }
        out.extend(
            text.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 40)
                .map(String::from),
        );
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn wait_pid(path: &Path) -> i32 {
    for _ in 0..100 {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no pid in {}", path.display());
}

fn nginx_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "daemon on;\npid {d}/nginx/nginx.pid;\nerror_log {d}/nginx/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/nginx/tmp-body;\n  proxy_temp_path {d}/nginx/tmp-proxy;\n\
           fastcgi_temp_path {d}/nginx/tmp-fastcgi;\n  uwsgi_temp_path {d}/nginx/tmp-uwsgi;\n  scgi_temp_path {d}/nginx/tmp-scgi;\n\
           server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name {APP_A};\n\
             ssl_certificate {d}/app-a/tls/app-a.fullchain.pem;\n    ssl_certificate_key {d}/app-a/tls/app-a.key;\n\
             location / {{ return 200 \"app-a ok\\n\"; }}\n  }}\n}}\n"
    )
}

fn haproxy_cfg(dir: &Path, edge: u16, upstream: u16) -> String {
    let d = dir.display();
    format!(
        "global\n  master-worker\n  pidfile {d}/haproxy/haproxy.pid\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend edge\n  bind 127.0.0.1:{edge}\n  default_backend app_a\n\
         backend app_a\n  server app-a 127.0.0.1:{upstream} ssl verify required ca-file {d}/proxy/trust/ca_chain.pem sni str({APP_A}) verifyhost {APP_A}\n"
    )
}

fn suite_yaml(env: &Env, nginx: u16, edge: u16, extra: &str) -> String {
    format!(
        r#"suite: rotate-test
vars:
  dir: "{dir}"
  vault: "{vault}"
  sni: vault.lab.rotcheck.test
  app_a: "127.0.0.1:{nginx}"
  edge: "127.0.0.1:{edge}"
  ctl: "{ctl}"
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
      - {{ path: "${{dir}}/vault/tls-admin/admin.key", kind: key, mode: "0600", owner: root, group: root, pairs_with: "${{dir}}/vault/tls-admin/admin.crt" }}
      - {{ path: "${{dir}}/vault/tls-admin/admin.crt", kind: cert, mode: "0644", owner: root }}
  - name: admin-login
    stage: admin-client
    vault_login: {{ mount: cert, role: vault-admin, client_cert: "${{dir}}/vault/tls-admin/admin.crt", client_key: "${{dir}}/vault/tls-admin/admin.key", ca_file: "${{dir}}/vault/ca_chain.pem" }}
    expect: {{ policies: {{ include: [lab-admin] }} }}
  - name: server-files
    stage: server-tls
    files:
      - {{ path: "${{dir}}/vault/tls/server.key", kind: key, mode: "0600", pairs_with: "${{dir}}/vault/tls/server.crt" }}
      - {{ path: "${{dir}}/vault/tls/fullchain.crt", kind: chain, mode: "0644", ca_file: "${{dir}}/vault/tls/ca_chain.pem" }}
  - name: vault-listener
    stage: server-tls
    tls: {{ addr: "${{vault}}", server_name: "${{sni}}", ca_file: "${{dir}}/vault/ca_chain.pem" }}
    expect: {{ chain: valid, names: ["${{sni}}"], serves_file: "${{dir}}/vault/tls/server.crt" }}
  - name: agent-a-login
    stage: agents
    vault_login: {{ mount: cert, role: agent-app-a, client_cert: "${{dir}}/app-a/vault/mtls/agent.crt", client_key: "${{dir}}/app-a/vault/mtls/agent.key", ca_file: "${{dir}}/app-a/vault/ca/ca.pem" }}
    expect: {{ policies: {{ include: [app-a-issue], exclude: [debug-policy] }} }}
  - name: agent-b-login
    stage: agents
    vault_login: {{ mount: cert, role: agent-app-b, client_cert: "${{dir}}/app-b/vault/mtls/agent.crt", client_key: "${{dir}}/app-b/vault/mtls/agent.key", ca_file: "${{dir}}/app-b/vault/ca/ca.pem" }}
    expect: {{ policies: {{ include: [app-b-issue], exclude: [debug-policy] }} }}
  - name: app-a-frontend
    stage: app-leaf
    tls: {{ addr: "${{app_a}}", server_name: {APP_A}, ca_file: "${{dir}}/vault/ca_chain.pem" }}
    expect: {{ chain: valid, names: [{APP_A}], serves_file: "${{dir}}/app-a/tls/app-a.fullchain.pem" }}
  - name: app-b-files
    stage: app-leaf
    files:
      - {{ path: "${{dir}}/app-b/tls/app-b.key", kind: key, mode: "0600", owner: daemon, group: daemon, pairs_with: "${{dir}}/app-b/tls/app-b.fullchain.pem" }}
      - {{ path: "${{dir}}/app-b/tls/app-b.fullchain.pem", kind: chain, mode: "0644", owner: daemon, group: daemon, ca_file: "${{dir}}/vault/ca_chain.pem" }}
    expect: {{ names: [{APP_B}] }}
  - name: proxy-trust-file
    stage: proxy-trust
    files:
      - {{ path: "${{dir}}/proxy/trust/ca_chain.pem", kind: bundle, mode: "0644", contains: "${{dir}}/ca/intermediate.pem" }}
  - name: edge-proxy
    stage: proxy-trust
    command: [curl, -sS, --max-time, "3", "http://${{edge}}/"]
    expect: {{ exit: 0, stdout_contains: "app-a ok" }}
  - name: vault-back
    stage: restarts
    vault_health: {{}}
    expect: {{ sealed: false, initialized: true }}
  - name: final-handshake
    stage: final
    tls: {{ addr: "${{vault}}", server_name: "${{sni}}", ca_file: "${{dir}}/vault/ca_chain.pem" }}
    expect: {{ chain: valid, names: ["${{sni}}"] }}
  - name: final-seal
    stage: final
    vault_health: {{}}
    expect: {{ sealed: false }}
{extra}"#,
        dir = env.dir.display(),
        vault = env.lab.addr(),
        ctl = env.ctl,
    )
}

/// The seven steps (as in checks/lab.yaml's plan), adapted to the test's nginx, haproxy and
/// the in-process lab (its reload goes through the lab's control endpoint).
fn step_yaml(name: &str) -> String {
    let vault_reload = format!(
        r#"[curl, -sSf, -X, POST, -H, "x-lab-control: {CTL_SECRET}", "http://${{ctl}}/ctl/reload"]"#
    );
    match name {
        "admin-client" => r#"
    - name: admin-client
      gate: admin-client
      actions:
        - issue: { mount: pki-prod, role: admin-client, cn: vault-admin-lab, ttl: 720h, owner: "root:root", key: "${dir}/vault/tls-admin/admin.key", cert: "${dir}/vault/tls-admin/admin.crt", ca: "${dir}/vault/tls-admin/issuing_ca.pem" }
"#
        .into(),
        "server-tls" => format!(
            r#"
    - name: server-tls
      gate: server-tls
      trust_first:
        bundles: ["${{dir}}/vault/ca_chain.pem", "${{dir}}/app-a/vault/ca/ca.pem", "${{dir}}/app-b/vault/ca/ca.pem", "${{dir}}/proxy/trust/ca_chain.pem"]
      actions:
        - issue: {{ mount: pki-prod, role: vault-server, cn: "${{sni}}", alt_names: [localhost], ip_sans: [127.0.0.1], ttl: 720h, key: "${{dir}}/vault/tls/server.key", cert: "${{dir}}/vault/tls/server.crt", chain: "${{dir}}/vault/tls/fullchain.crt", ca_chain: "${{dir}}/vault/tls/ca_chain.pem" }}
      reload:
        - command: {vault_reload}
"#
        ),
        "agents" => r#"
    - name: agents
      gate: agents
      actions:
        - issue: { mount: pki-prod, role: agent-app-a, cn: agent-app-a.lab.rotcheck.test, ttl: 168h, key: "${dir}/app-a/vault/mtls/agent.key", cert: "${dir}/app-a/vault/mtls/agent.crt", ca_chain: "${dir}/app-a/vault/ca/ca.pem" }
        - cert_role: { name: agent-app-a, ca_file: "${dir}/vault/tls-admin/issuing_ca.pem", allowed_cn: ["agent-app-a.*"], policies: [app-a-issue], remove_policy: [debug-policy] }
        - issue: { mount: pki-prod, role: agent-app-b, cn: agent-app-b.lab.rotcheck.test, ttl: 168h, csr: true, key: "${dir}/app-b/vault/mtls/agent.key", cert: "${dir}/app-b/vault/mtls/agent.crt", ca_chain: "${dir}/app-b/vault/ca/ca.pem" }
        - cert_role: { name: agent-app-b, ca_file: "${dir}/vault/tls-admin/issuing_ca.pem", allowed_cn: ["agent-app-b.*"], policies: [app-b-issue], remove_policy: [debug-policy] }
"#
        .into(),
        "app-leaf" => format!(
            r#"
    - name: app-leaf
      gate: app-leaf
      wait: 20s
      actions:
        - pki_role: {{ mount: pki-prod, name: nginx-app-a, allowed_domains: [{APP_A}], allow_bare_domains: true, allow_subdomains: true, server_flag: true, ttl: 720h, max_ttl: 720h }}
        - issue: {{ mount: pki-prod, role: nginx-app-a, cn: {APP_A}, alt_names: [www.{APP_A}], ttl: 720h, key: "${{dir}}/app-a/tls/app-a.key", cert: "${{dir}}/app-a/tls/app-a.crt", chain: "${{dir}}/app-a/tls/app-a.fullchain.pem" }}
        - issue: {{ mount: pki-prod, role: nginx-app-b, cn: {APP_B}, ttl: 720h, owner: "daemon:daemon", key: "${{dir}}/app-b/tls/app-b.key", cert: "${{dir}}/app-b/tls/app-b.crt", chain: "${{dir}}/app-b/tls/app-b.fullchain.pem" }}
      reload:
        - command: [nginx, -c, "${{dir}}/nginx/nginx.conf", -s, reload]
"#
        ),
        "proxy-trust" => r#"
    - name: proxy-trust
      gate: proxy-trust
      wait: 20s
      actions:
        - trust: { mount: pki-prod, out: "${dir}/proxy/trust/ca_chain.pem" }
      reload:
        - { pid_file: "${dir}/haproxy/haproxy.pid", signal: USR2 }
"#
        .into(),
        "restarts" => format!(
            r#"
    - name: restarts
      gate: restarts
      reload_when: run_changed
      reload:
        - command: {vault_reload}
"#
        ),
        "trusted" => r#"
    - name: trusted
      gate: admin-client
      trust_first: { bundles: ["${dir}/consumer/bundle.pem"] }
      actions:
        - issue: { mount: pki-prod, role: admin-client, cn: vault-admin-lab, ttl: 1h, key: "${dir}/out/t.key", cert: "${dir}/out/t.crt" }
"#
        .into(),
        "final" => "\n    - name: final\n      gate: final\n".into(),
        "hold" => "\n    - name: hold\n      gate: hold\n      wait: 60s\n".into(),
        other => panic!("unknown step {other}"),
    }
}

fn plan_yaml(env: &Env, steps: &[&str]) -> String {
    let _ = env;
    let mut s =
        "plan:\n  state_dir: ${dir}/rotate\n  wait: 15s\n  interval: 500ms\n  steps:".to_string();
    for st in steps {
        s.push_str(&step_yaml(st));
    }
    s
}

const ALL_STEPS: &[&str] = &[
    "admin-client",
    "server-tls",
    "agents",
    "app-leaf",
    "proxy-trust",
    "restarts",
    "final",
];

fn sha(path: &Path) -> String {
    let ders = rotcheck::certs::read_certs(path).unwrap();
    rotcheck::certs::sha256_hex(ders[0].as_ref())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

/// SHA-256 of every file under `dir` except rotcheck's own state.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    walk(dir)
        .into_iter()
        .filter(|p| !p.starts_with(dir.join("rotate")) && !p.starts_with(dir.join("nginx")))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, rotcheck::certs::sha256_hex(&bytes))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_rotates_everything_and_a_second_run_changes_nothing() {
    let env = Env::new(true).await;
    env.write_suite(ALL_STEPS, "");
    let certs = [
        "vault/tls-admin/admin.crt",
        "vault/tls/server.crt",
        "app-a/vault/mtls/agent.crt",
        "app-b/vault/mtls/agent.crt",
        "app-a/tls/app-a.fullchain.pem",
        "app-b/tls/app-b.fullchain.pem",
    ];
    let before: Vec<String> = certs.iter().map(|c| sha(&env.p(c))).collect();

    let dry = env.plan(&["--dry-run", "--force"]).await;
    assert_eq!(dry.code, Some(0), "{}", dry.out);
    assert!(
        !env.p("rotate/state.json").exists(),
        "a dry run writes no state"
    );
    assert!(
        dry.out.contains("would POST pki-prod/issue/admin-client"),
        "{}",
        dry.out
    );

    let run = env.plan(&["--force"]).await;
    assert_eq!(run.code, Some(0), "{}", run.out);
    for (i, step) in ALL_STEPS.iter().enumerate() {
        assert!(
            run.out.contains(&format!("[{}/7] {step}", i + 1)),
            "{}",
            run.out
        );
        assert!(
            run.out.contains(&format!("step {step} done")),
            "{}",
            run.out
        );
    }
    assert!(run.out.contains("plan complete"), "{}", run.out);
    for (c, old) in certs.iter().zip(&before) {
        assert_ne!(&sha(&env.p(c)), old, "{c} was rotated");
    }
    // Modes and owners as declared.
    assert_eq!(mode(&env.p("vault/tls-admin/admin.key")), 0o600);
    assert_eq!(mode(&env.p("vault/tls/server.key")), 0o600);
    assert_eq!(mode(&env.p("vault/tls/server.crt")), 0o644);
    let b = std::fs::metadata(env.p("app-b/tls/app-b.key")).unwrap();
    assert_eq!((b.uid(), b.gid(), b.mode() & 0o7777), (1, 1, 0o600));
    assert!(
        env.p("vault/tls/server.crt.prev").exists(),
        "the old file is kept"
    );
    // The served certificates are the new files (serves_file in the gates, and once more).
    let suite = env.suite.display().to_string();
    let gate = env.rotcheck(&["gate", "-c", &suite], &[]).await;
    assert_eq!(gate.code, Some(0), "{}", gate.out);

    // One audit line per transition: run start, 3 per step, run end.
    let audit = env.audit();
    assert_eq!(audit.len(), 2 + 3 * ALL_STEPS.len(), "{audit:#?}");
    for step in ALL_STEPS {
        let path: Vec<(String, String)> = audit
            .iter()
            .filter(|l| l["step"] == *step)
            .map(|l| {
                (
                    l["from"].as_str().unwrap().into(),
                    l["to"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want = [
            ("pending", "running"),
            ("running", "applied"),
            ("applied", "done"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(path, want, "{step}");
    }
    let applied = audit
        .iter()
        .find(|l| l["step"] == "server-tls" && l["to"] == "applied")
        .unwrap();
    assert_ne!(
        applied["serials"][0]["old_serial"],
        applied["serials"][0]["new_serial"]
    );
    assert_eq!(env.state()["status"], "completed");

    // A second run changes nothing.
    let snap = snapshot(&env.dir);
    let again = env.plan(&[]).await;
    assert_eq!(again.code, Some(0), "{}", again.out);
    assert_eq!(snapshot(&env.dir), snap, "nothing on disk changed");
    assert!(!again.out.contains("wrote "), "{}", again.out);
    assert!(!again.out.contains("POST "), "{}", again.out);
    assert!(
        again.out.contains("reload skipped: nothing changed"),
        "{}",
        again.out
    );
    env.assert_no_secrets();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_write_point_leaves_whole_files_and_the_next_run_resumes() {
    let env = Env::new(false).await;
    env.write_suite(&["admin-client"], "");
    let points = [
        "temp-created:admin.key",
        "temp-partial:admin.crt",
        "temp-written:admin.crt",
        "backup-linked:admin.key",
        "renamed:admin.crt",
        "renamed:admin.key",
        "temp-partial:state.json",
        "renamed:state.json",
        "state-saved",
        "step-applied",
    ];
    for point in points {
        let suite = env.suite.display().to_string();
        let killed = env
            .rotcheck(
                &["rotate", "plan", "-c", &suite, "--force"],
                &[("ROTCHECK_TEST_KILL_AT", point)],
            )
            .await;
        assert_eq!(killed.signal, Some(9), "{point}: {}", killed.out);
        for f in ["vault/tls-admin/admin.crt", "vault/tls-admin/admin.key"] {
            assert_whole(&env.p(f), point);
        }
        if env.p("rotate/state.json").exists() {
            let text = std::fs::read_to_string(env.p("rotate/state.json")).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{point}: state.json is whole: {e}"));
        }
        let next = env.plan(&[]).await;
        assert_eq!(
            next.code,
            Some(0),
            "{point}: the next run resumes and finishes:\n{}",
            next.out
        );
        assert_eq!(env.state()["status"], "completed", "{point}");
        let leftovers: Vec<_> = walk(&env.dir)
            .into_iter()
            .filter(|p| {
                p.to_string_lossy().contains(".rotcheck-")
                    && p.starts_with(env.p("vault/tls-admin"))
            })
            .collect();
        assert!(
            leftovers.is_empty(),
            "{point}: temp files left: {leftovers:?}"
        );
    }
    env.assert_no_secrets();
}

/// The file is a complete PEM certificate or key.
fn assert_whole(path: &Path, point: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    if text.contains("PRIVATE KEY") {
        assert!(
            rotcheck::certs::read_key(path).is_ok(),
            "{point}: {} is a whole key",
            path.display()
        );
        assert!(
            text.trim_end().ends_with("-----END PRIVATE KEY-----")
                || text.trim_end().ends_with("PRIVATE KEY-----")
        );
    } else {
        assert!(
            rotcheck::certs::read_certs(path).is_ok(),
            "{point}: {} is a whole certificate",
            path.display()
        );
        assert!(
            text.trim_end().ends_with("-----END CERTIFICATE-----"),
            "{point}: {} ends",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_500_mid_plan_stops_at_that_step_with_state_saved() {
    let env = Env::new(false).await;
    env.write_suite(&["admin-client", "server-tls", "agents", "final"], "");
    env.lab.fail_path("pki-prod/issue/agent-app-a", 500);
    let run = env.plan(&["--force"]).await;
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert!(
        run.out.contains("plan stopped at step 3/4 \"agents\""),
        "{}",
        run.out
    );
    assert!(run.out.contains("500"), "{}", run.out);
    assert!(
        run.out.contains("resume with `rotcheck rotate plan -c"),
        "{}",
        run.out
    );
    let st = env.state();
    assert_eq!(st["status"], "failed");
    let steps = st["steps"].as_array().unwrap();
    let status = |n: &str| steps.iter().find(|s| s["name"] == n).unwrap()["status"].clone();
    assert_eq!(
        (status("admin-client"), status("server-tls")),
        ("done".into(), "done".into())
    );
    assert_eq!(status("agents"), "failed");
    assert!(env
        .audit()
        .iter()
        .any(|l| l["step"] == "agents" && l["to"] == "failed"));

    env.lab.clear_faults();
    let resumed = env.plan(&[]).await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.out);
    assert!(resumed.out.contains("resuming run"), "{}", resumed.out);
    assert!(
        !resumed.out.contains("[1/4]"),
        "done steps are not re-run:\n{}",
        resumed.out
    );
    env.assert_no_secrets();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_reload_keeps_the_old_cert_served_and_the_gate_says_so() {
    let env = Env::new(true).await;
    env.write_suite(ALL_STEPS, "");
    let served_before = sha(&env.p("app-a/tls/app-a.fullchain.pem"));
    // `nginx -s reload` fails without its pid file; nginx keeps serving the old leaf.
    let pid = env.p("nginx/nginx.pid");
    let hidden = env.p("nginx/nginx.pid.hidden");
    std::fs::rename(&pid, &hidden).unwrap();
    let run = env.plan(&["--force", "--only", "app-leaf"]).await;
    std::fs::rename(&hidden, &pid).unwrap();
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert!(run.out.contains("reload command nginx"), "{}", run.out);
    assert!(
        run.out.contains("serves_file"),
        "the gate reports what is served:\n{}",
        run.out
    );
    assert_ne!(
        sha(&env.p("app-a/tls/app-a.fullchain.pem")),
        served_before,
        "new file in place"
    );
    let suite = env.suite.display().to_string();
    let gate = env
        .rotcheck(
            &[
                "gate",
                "-c",
                &suite,
                "--check",
                "app-a-frontend",
                "--format",
                "json",
            ],
            &[],
        )
        .await;
    let report: serde_json::Value = serde_json::from_str(gate.out.trim()).unwrap();
    let served = &report["checks"][0]["certs"][0]["sha256"];
    assert_eq!(
        served,
        &serde_json::json!(served_before),
        "nginx still serves the old leaf"
    );

    // With the reload fixed, the re-run owes the reload (files already new) and passes.
    let again = env.plan(&["--only", "app-leaf"]).await;
    assert_eq!(again.code, Some(0), "{}", again.out);
    assert!(again.out.contains("reload: command nginx"), "{}", again.out);
    env.assert_no_secrets();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_run_twice_at_once_is_refused() {
    let env = Env::new(false).await;
    let go = env.p("go");
    let hold = format!(
        "  - name: hold\n    stage: hold\n    command: [test, -f, \"{}\"]\n    expect: {{ exit: 0 }}\n",
        go.display()
    );
    env.write_suite(&["hold"], &hold);
    let suite = env.suite.display().to_string();
    let first = {
        let suite = suite.clone();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .args(["rotate", "plan", "-c", &suite])
            .output()
    };
    let first = tokio::spawn(first);
    // Wait until the first run holds the lock (it writes its pid into the lock file).
    for _ in 0..200 {
        let held = std::fs::read_to_string(env.p("rotate/lock")).unwrap_or_default();
        if held.starts_with("pid ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = env.plan(&[]).await;
    assert_eq!(second.code, Some(2), "{}", second.out);
    assert!(
        second
            .out
            .contains("concurrent runs of one plan are refused"),
        "{}",
        second.out
    );
    std::fs::write(&go, "").unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csr_signing_works_with_roles_that_ignore_the_csr_names() {
    let env = Env::new(false).await;
    env.write_suite(&["final"], "");
    let suite = env.suite.display().to_string();
    let out = env.p("out");
    std::fs::create_dir_all(&out).unwrap();
    let alt = format!("api.{APP_A}");
    for (role, flags) in [
        ("no-csr-cn", json!({"use_csr_common_name": false})),
        ("no-csr-sans", json!({"use_csr_sans": false})),
        (
            "neither",
            json!({"use_csr_common_name": false, "use_csr_sans": false}),
        ),
    ] {
        let mut body = json!({
            "allowed_domains": APP_A, "allow_bare_domains": true, "allow_subdomains": true,
            "max_ttl": "48h", "key_type": "ec",
        });
        body.as_object_mut()
            .unwrap()
            .extend(flags.as_object().unwrap().clone());
        env.lab
            .api("POST", &format!("pki-prod/roles/{role}"), body)
            .unwrap();
        let cert = out.join(format!("{role}.crt"));
        let issue = [
            "rotate",
            "issue",
            "-c",
            &suite,
            "--mount",
            "pki-prod",
            "--role",
            role,
            "--cn",
            APP_A,
            "--alt-names",
            &alt,
            "--ttl",
            "24h",
            "--csr",
            "--key",
            &out.join(format!("{role}.key")).display().to_string(),
            "--cert",
            &cert.display().to_string(),
        ];
        let r = env.rotcheck(&issue, &[]).await;
        assert_eq!(r.code, Some(0), "{role}: {}", r.out);
        assert_eq!(
            r.out.contains("use_csr_common_name: false"),
            role != "no-csr-sans",
            "{role}: says why it sent the CN again: {}",
            r.out
        );
        assert!(!r.out.contains("Vault warns"), "{role}: {}", r.out);
        let der = rotcheck::certs::read_certs(&cert).unwrap().remove(0);
        let facts = rotcheck::certs::facts(&der, "leaf");
        assert_eq!(facts.subject_cn, APP_A, "{role}");
        let sans = facts.sans;
        assert!(sans.iter().any(|s| s.contains(&alt)), "{role}: {sans:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subcommands_are_idempotent_and_say_so() {
    let env = Env::new(false).await;
    env.write_suite(&["final"], "");
    let suite = env.suite.display().to_string();
    let out = env.p("out");
    let key = out.join("svc.key").display().to_string();
    let cert = out.join("svc.crt").display().to_string();
    let chain = out.join("svc.fullchain.pem").display().to_string();
    // A role that signs CSRs of any key type, for the RSA key below.
    let role = [
        "rotate",
        "pki-role",
        "-c",
        &suite,
        "--mount",
        "pki-prod",
        "--name",
        "svc-any",
        "--allowed-domains",
        APP_A,
        "--allow-bare-domains",
        "--server-flag",
        "--key-type",
        "any",
        "--max-ttl",
        "48h",
    ];
    let first = env.rotcheck(&role, &[]).await;
    assert_eq!(first.code, Some(0), "{}", first.out);
    assert!(first.out.contains("new role"), "{}", first.out);
    let second = env.rotcheck(&role, &[]).await;
    assert!(second.out.contains("nothing to change"), "{}", second.out);
    for key_type in ["ec", "rsa"] {
        let issue = [
            "rotate",
            "issue",
            "-c",
            &suite,
            "--mount",
            "pki-prod",
            "--role",
            "svc-any",
            "--cn",
            APP_A,
            "--ttl",
            "24h",
            "--key",
            &key,
            "--cert",
            &cert,
            "--chain",
            &chain,
            "--csr",
            "--key-type",
            key_type,
            "--force",
        ];
        let first = env.rotcheck(&issue, &[]).await;
        assert_eq!(first.code, Some(0), "{}", first.out);
        assert!(
            first.out.contains("generated a") && first.out.contains("only the CSR goes to Vault"),
            "{}",
            first.out
        );
        assert_eq!(mode(&out.join("svc.key")), 0o600);
    }
    let again = [
        "rotate", "issue", "-c", &suite, "--mount", "pki-prod", "--role", "svc-any", "--cn", APP_A,
        "--key", &key, "--cert", &cert, "--chain", &chain,
    ];
    let second = env.rotcheck(&again, &[]).await;
    assert_eq!(second.code, Some(0), "{}", second.out);
    assert!(second.out.contains("nothing to change"), "{}", second.out);

    let ca = env
        .p("vault/tls-admin/issuing_ca.pem")
        .display()
        .to_string();
    let role = [
        "rotate",
        "cert-role",
        "-c",
        &suite,
        "--name",
        "agent-app-a",
        "--ca-file",
        &ca,
        "--allowed-cn",
        "agent-app-a.*",
        "--remove-policy",
        "debug-policy",
    ];
    let first = env.rotcheck(&role, &[]).await;
    assert_eq!(first.code, Some(0), "{}", first.out);
    assert!(
        first
            .out
            .contains("[app-a-issue, debug-policy] → [app-a-issue]"),
        "{}",
        first.out
    );
    let second = env.rotcheck(&role, &[]).await;
    assert!(second.out.contains("nothing to change"), "{}", second.out);

    let trust_out = env.p("proxy/trust/ca_chain.pem").display().to_string();
    let trust = [
        "rotate", "trust", "-c", &suite, "--mount", "pki-prod", "--out", &trust_out,
    ];
    let t = env.rotcheck(&trust, &[]).await;
    assert!(t.out.contains("nothing to change"), "{}", t.out);

    let dry = [
        "rotate",
        "reload",
        "--dry-run",
        "--",
        "nginx",
        "-s",
        "reload",
    ];
    let d = env.rotcheck(&dry, &[]).await;
    assert!(
        d.out.contains("would reload: command nginx -s reload"),
        "{}",
        d.out
    );
    let bad = env
        .rotcheck(
            &["rotate", "reload", "--", "sh", "-c", "echo nope; exit 4"],
            &[],
        )
        .await;
    assert_eq!(bad.code, Some(1), "{}", bad.out);
    assert!(bad.out.contains("exit 4: nope"), "{}", bad.out);
    env.assert_no_secrets();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_first_refuses_to_issue_from_a_ca_the_consumers_lack() {
    let env = Env::new(false).await;
    env.write_suite(&["trusted"], "");
    std::fs::create_dir_all(env.p("consumer")).unwrap();
    // The consumer trusts only the root; the mount issues from the intermediate.
    std::fs::copy(env.p("ca/root.pem"), env.p("consumer/bundle.pem")).unwrap();
    let refused = env.plan(&[]).await;
    assert_eq!(refused.code, Some(1), "{}", refused.out);
    assert!(
        refused.out.contains("refused: pki-prod issues from"),
        "{}",
        refused.out
    );
    assert!(
        refused.out.contains("failing: trust-first-0"),
        "{}",
        refused.out
    );
    assert!(!env.p("out/t.crt").exists(), "nothing was issued");

    let suite = env.suite.display().to_string();
    let bundle = env.p("consumer/bundle.pem").display().to_string();
    let trust = [
        "rotate", "trust", "-c", &suite, "--mount", "pki-prod", "--out", &bundle, "--keep",
    ];
    let t = env.rotcheck(&trust, &[]).await;
    assert_eq!(t.code, Some(0), "{}", t.out);
    let resumed = env.plan(&[]).await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.out);
    assert!(env.p("out/t.crt").exists());
    env.assert_no_secrets();
}

#[test]
fn the_prod_plan_has_the_seeds_seven_steps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite = rotcheck::suite::load(&root.join("checks/prod.yaml")).unwrap();
    let plan = rotcheck::rotate::plan::parse(&suite)
        .unwrap()
        .expect("a plan");
    let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ALL_STEPS);
    assert!(
        plan.steps[1].trust_first.is_some(),
        "server TLS checks trust first"
    );
}
