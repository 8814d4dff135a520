//! "It really rotated": `tls.resolve` (every address of a name, or a list of backends, must
//! serve the same leaf) against in-process rustls listeners on 127.0.0.1, 127.0.0.2, 127.0.0.3
//! (Linux routes all of 127/8 to lo) and ::1; and `expect.rotated_after`, an instant against
//! the leaf's notBefore and a plan step against the state file a real `rotcheck rotate plan`
//! run recorded (against the in-process lab Vault), with listeners that reload the files the
//! plan writes on every handshake.

mod common;

use common::{Pki, TlsOpts, VALID};
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------- listeners

/// Binds `ips` on one common port (retrying when a port is taken on one of them).
fn bind_all(ips: &[&str]) -> (u16, Vec<TcpListener>) {
    for _ in 0..50 {
        let first = TcpListener::bind((ips[0], 0)).expect("bind");
        let port = first.local_addr().unwrap().port();
        let mut all = vec![first];
        for ip in &ips[1..] {
            match TcpListener::bind((*ip, port)) {
                Ok(l) => all.push(l),
                Err(_) => break,
            }
        }
        if all.len() == ips.len() {
            return (port, all);
        }
    }
    panic!("no common free port on {ips:?}");
}

/// Serves TLS with `cfg` on `listener`, one thread per connection, for the test's life.
fn serve(listener: TcpListener, cfg: Arc<ServerConfig>) -> SocketAddr {
    common::serve_tls_on(listener, cfg)
}

/// A server config presenting `leaf` after `pki`'s intermediate.
fn static_cfg(pki: &Pki, leaf: &common::Issued) -> Arc<ServerConfig> {
    let chain = vec![leaf.der.clone(), pki.inter.cert.der.clone()];
    common::server_config(TlsOpts::new(chain, leaf))
}

/// Reads the chain and key from disk at every handshake: a server that has reloaded
/// whatever was last written there.
#[derive(Debug)]
struct FromFiles {
    chain: PathBuf,
    key: PathBuf,
}

impl ResolvesServerCert for FromFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chain: Vec<CertificateDer<'static>> = rotcheck::certs::read_certs(&self.chain).ok()?;
        let key = rotcheck::certs::read_key(&self.key).ok()?;
        let provider = rustls::crypto::ring::default_provider();
        let signer = provider.key_provider.load_private_key(key).ok()?;
        Some(Arc::new(CertifiedKey::new(chain, signer)))
    }
}

fn files_cfg(chain: &Path, key: &Path) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FromFiles {
            chain: chain.to_path_buf(),
            key: key.to_path_buf(),
        }));
    Arc::new(cfg)
}

// ---------------------------------------------------------------- report helpers

/// Every assertion of `check` called `name`.
fn all<'a>(g: &'a common::Gate, check: &str, name: &str) -> Vec<&'a Value> {
    g.check(check)["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == name)
        .collect()
}

/// The assertion `name` of `check` whose message starts with `addr`.
fn at<'a>(g: &'a common::Gate, check: &str, name: &str, addr: &str) -> &'a Value {
    let prefix = format!("{addr}: ");
    all(g, check, name)
        .into_iter()
        .find(|a| a["message"].as_str().unwrap().starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} for {addr} in {:#}", g.check(check)))
}

fn msg(a: &Value) -> &str {
    a["message"].as_str().unwrap()
}

fn suite(tls: &str, expect: &str, ca: &str) -> String {
    common::tls_suite(
        "backends",
        &format!("{{ {tls}, ca_file: \"{ca}\" }}"),
        expect,
    )
}

// ---------------------------------------------------------------- resolve

#[test]
fn every_listed_backend_serving_the_same_leaf_passes() {
    let pki = Pki::new();
    let (port, ls) = bind_all(&["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    for l in ls {
        serve(l, static_cfg(&pki, &pki.leaf));
    }
    let env = common::Env::new();
    let ca = env.write("ca.pem", common::pem_of(&[&pki.root.cert]));
    let tls = format!(
        "addr: \"localhost:{port}\", resolve: [127.0.0.1, 127.0.0.2, \"127.0.0.3:{port}\"]"
    );
    let g = env.gate(
        &suite(&tls, "{ chain: valid, names: [localhost] }", &ca),
        &[],
    );
    assert_eq!(g.code, 0, "{:#}", g.json);
    for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        let addr = format!("{ip}:{port}");
        assert_eq!(at(&g, "backends", "handshake", &addr)["status"], "pass");
        assert_eq!(at(&g, "backends", "chain", &addr)["status"], "pass");
        assert_eq!(at(&g, "backends", "names", &addr)["status"], "pass");
    }
    assert_eq!(all(&g, "backends", "handshake").len(), 3);
    let same = g.assertion("backends", "same_leaf");
    assert_eq!(same["status"], "pass");
    assert!(
        msg(same).starts_with("3 address(es) serve the same leaf"),
        "{same}"
    );
    // The leaf, reported once, not once per address.
    let leaves = g.check("backends")["certs"].as_array().unwrap();
    assert_eq!(leaves.iter().filter(|c| c["position"] == "leaf").count(), 1);
}

#[test]
fn one_backend_with_the_old_leaf_fails_and_is_named() {
    let pki = Pki::new();
    let old = pki.inter.leaf(common::NAMES, common::EXPIRED);
    let (port, mut ls) = bind_all(&["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    serve(ls.pop().unwrap(), static_cfg(&pki, &old));
    for l in ls {
        serve(l, static_cfg(&pki, &pki.leaf));
    }
    let env = common::Env::new();
    let ca = env.write("ca.pem", common::pem_of(&[&pki.root.cert]));
    let tls = format!("addr: \"localhost:{port}\", resolve: [127.0.0.1, 127.0.0.2, 127.0.0.3]");
    // The new leaf is valid from 2030-01-01, the old one from 2029-01-01.
    let expect = "{ chain: valid, rotated_after: 2029-12-01T00:00:00Z }";
    let g = env.gate(&suite(&tls, expect, &ca), &[]);
    assert_eq!(g.code, 1);
    let stale = format!("127.0.0.3:{port}");
    let same = g.assertion("backends", "same_leaf");
    assert_eq!(same["reason"], "leaf_mismatch", "{same}");
    let m = msg(same);
    assert!(m.contains("found 2 different leaves"), "{m}");
    let old_serial = g.check("backends")["certs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["position"] == "leaf" && c["not_before"] == "2029-01-01T00:00:00Z")
        .expect("the old leaf is among the certificates seen")["serial"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(m.contains(&format!("{old_serial} (sha256")), "{m}");
    assert!(
        m.contains(&format!(" at {stale}")),
        "old leaf at {stale}: {m}"
    );
    assert!(
        m.contains(&format!("at 127.0.0.1:{port}, 127.0.0.2:{port}")),
        "{m}"
    );
    // Each expectation is judged per address, and the failure names the address.
    let r = at(&g, "backends", "rotated_after", &stale);
    assert_eq!(r["reason"], "not_rotated", "{r}");
    assert!(msg(r).contains(&old_serial), "{r}");
    assert_eq!(at(&g, "backends", "chain", &stale)["reason"], "expired");
    for ok in ["127.0.0.1", "127.0.0.2"] {
        let a = format!("{ok}:{port}");
        assert_eq!(at(&g, "backends", "rotated_after", &a)["status"], "pass");
        assert_eq!(at(&g, "backends", "chain", &a)["status"], "pass");
    }
    // The headline reason is the mismatch.
    let (code, prom) = prom_of(&env);
    assert_eq!(code, 1);
    assert!(
        prom.contains(r#"rotcheck_check_failure_reason{suite="test",check="backends",reason="leaf_mismatch"} 1"#),
        "{prom}"
    );
    assert!(prom.contains(
        r#"rotcheck_assertion_success{suite="test",check="backends",assertion="same_leaf"} 0"#
    ));
    assert!(prom.contains(
        r#"rotcheck_assertion_success{suite="test",check="backends",assertion="rotated_after"} 0"#
    ));
}

/// `gate --format prom` of the suite last written to `env`.
fn prom_of(env: &common::Env) -> (i32, String) {
    let path = env.path("suite.yaml").display().to_string();
    let args = ["gate", "-c", &path, "--format", "prom", "--at", common::AT];
    let out = common::rotcheck(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_backend_that_is_down_fails_its_own_handshake_only() {
    let pki = Pki::new();
    let (port, mut ls) = bind_all(&["127.0.0.1", "127.0.0.2"]);
    drop(ls.pop());
    serve(ls.pop().unwrap(), static_cfg(&pki, &pki.leaf));
    let env = common::Env::new();
    let ca = env.write("ca.pem", common::pem_of(&[&pki.root.cert]));
    let tls = format!("addr: \"localhost:{port}\", resolve: [127.0.0.1, 127.0.0.2]");
    let g = env.gate(&suite(&tls, "{ chain: valid }", &ca), &[]);
    assert_eq!(g.code, 1);
    let down = at(&g, "backends", "handshake", &format!("127.0.0.2:{port}"));
    assert_eq!(down["reason"], "refused", "{down}");
    let up = at(&g, "backends", "handshake", &format!("127.0.0.1:{port}"));
    assert_eq!(up["status"], "pass");
    let same = g.assertion("backends", "same_leaf");
    assert_eq!(same["status"], "pass");
    assert!(msg(same).contains(&format!("no certificate from 127.0.0.2:{port}")));
    assert_eq!(g.error_class("backends").as_deref(), Some("refused"));
}

/// `resolve: all` probes what the resolver answers for the name. `localhost` gives 127.0.0.1
/// and ::1 on some machines and only one of them on others, so the expectation is computed
/// from the same resolver: every address it gives is probed, and a different leaf on ::1
/// fails exactly when ::1 is among them.
#[test]
fn resolve_all_probes_every_address_the_name_resolves_to() {
    let pki = Pki::new();
    let other = pki.inter.leaf(common::NAMES, VALID);
    let (port, mut ls) = bind_all(&["127.0.0.1", "::1"]);
    serve(ls.pop().unwrap(), static_cfg(&pki, &other));
    serve(ls.pop().unwrap(), static_cfg(&pki, &pki.leaf));
    let mut want: Vec<SocketAddr> = Vec::new();
    for a in ("localhost", port).to_socket_addrs().unwrap() {
        if !want.contains(&a) {
            want.push(a);
        }
    }
    let env = common::Env::new();
    let ca = env.write("ca.pem", common::pem_of(&[&pki.root.cert]));
    let tls = format!("addr: \"localhost:{port}\", resolve: all");
    let g = env.gate(&suite(&tls, "{ chain: valid }", &ca), &[]);
    assert_eq!(all(&g, "backends", "handshake").len(), want.len());
    for a in &want {
        assert_eq!(
            at(&g, "backends", "handshake", &a.to_string())["status"],
            "pass"
        );
    }
    let both = want.iter().any(|a| a.is_ipv6()) && want.iter().any(|a| a.is_ipv4());
    let same = g.assertion("backends", "same_leaf");
    match both {
        true => assert_eq!(same["reason"], "leaf_mismatch", "{same}"),
        false => assert_eq!(same["status"], "pass", "{same}"),
    }
    // An address literal resolves to itself: one address.
    let tls = format!("addr: \"127.0.0.1:{port}\", server_name: localhost, resolve: all");
    let g = env.gate(&suite(&tls, "{ chain: valid }", &ca), &[]);
    assert_eq!(g.code, 0, "{:#}", g.json);
    assert_eq!(all(&g, "backends", "handshake").len(), 1);
    let m = msg(g.assertion("backends", "same_leaf"));
    assert!(m.starts_with("1 address(es)"), "{m}");
}

#[test]
fn bad_resolve_settings_are_refused_at_load_time() {
    let env = common::Env::new();
    let cases = [
        ("resolve: every", "write first (the default), all"),
        (
            "resolve: [backend.example]",
            "host names are resolved with resolve: all",
        ),
        ("resolve: []", "list at least one IP address"),
    ];
    for (setting, says) in cases {
        let text = suite(&format!("addr: \"h:443\", {setting}"), "{}", "ca.pem");
        let path = env.write("suite.yaml", text);
        let out = common::rotcheck(&["lint", "-c", &path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{setting}: {err}");
        assert!(err.contains(says), "{setting}: {err}");
        assert!(err.contains("resolve"), "{setting}: {err}");
    }
}

/// A listener that accepts and never answers.
fn stall(listener: TcpListener) {
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().flatten().take(16).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
}

/// The addresses are probed at once, each within the check's one timeout: a backend that
/// stalls times out on its own and the others are judged (probed one after the other, the
/// stall would have eaten the budget of those after it).
#[test]
fn a_stalled_backend_times_out_alone() {
    let pki = Pki::new();
    let (port, mut ls) = bind_all(&["127.0.0.1", "127.0.0.2"]);
    serve(ls.pop().unwrap(), static_cfg(&pki, &pki.leaf));
    stall(ls.pop().unwrap());
    let env = common::Env::new();
    let ca = env.write("ca.pem", common::pem_of(&[&pki.root.cert]));
    let tls = format!("addr: \"localhost:{port}\", resolve: [127.0.0.1, 127.0.0.2]");
    let text = suite(&tls, "{ chain: valid }", &ca).replace("timeout: 3s", "timeout: 1s");
    let g = env.gate(&text, &[]);
    assert_eq!(g.code, 1);
    let stalled = at(&g, "backends", "handshake", &format!("127.0.0.1:{port}"));
    assert_eq!(stalled["reason"], "timeout", "{stalled}");
    let ok = format!("127.0.0.2:{port}");
    assert_eq!(at(&g, "backends", "handshake", &ok)["status"], "pass");
    assert_eq!(at(&g, "backends", "chain", &ok)["status"], "pass");
}

/// `openssl s_server -www` on `ip`, presenting `leaf` and the intermediate.
fn s_server(
    env: &common::Env,
    ip: &str,
    port: u16,
    pki: &Pki,
    leaf: &common::Issued,
    tag: &str,
) -> common::peers::Running {
    let bin = match common::peers::find_bin("openssl") {
        Some(b) => b,
        None => panic!("openssl is needed (apt-get install openssl)"),
    };
    let cert = env.write(
        &format!("{tag}.pem"),
        common::pem_of(&[leaf, &pki.inter.cert]),
    );
    let key = env.write(&format!("{tag}.key"), &leaf.key_pem);
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let mut cmd = std::process::Command::new(bin);
    cmd.args([
        "s_server",
        "-accept",
        &addr.to_string(),
        "-cert",
        &cert,
        "-key",
        &key,
        "-www",
    ]);
    common::peers::start(cmd, addr, "openssl s_server")
}

/// Real peers: two `openssl s_server`s behind one name, one still on the old leaf; and the
/// `http` kind's `rotated_after` on the same connection as its request.
#[test]
fn openssl_backends_and_the_http_kind() {
    if common::peers::find_bin("openssl").is_none() {
        assert!(
            std::env::var_os("ROTCHECK_REQUIRE_TOOLS").is_none(),
            "openssl not installed; ROTCHECK_REQUIRE_TOOLS is set"
        );
        return;
    }
    let pki = Pki::new();
    let old = pki.inter.leaf(common::NAMES, common::EXPIRED);
    let (port, ls) = bind_all(&["127.0.0.2", "127.0.0.3"]);
    drop(ls);
    let env = common::Env::new();
    let _new = s_server(&env, "127.0.0.2", port, &pki, &pki.leaf, "new");
    let _old = s_server(&env, "127.0.0.3", port, &pki, &old, "old");
    let ca = env.write("ca.pem", common::pem_of(&[&pki.root.cert]));
    let since = "2029-12-01T00:00:00Z";
    let text = format!(
        r#"suite: test
defaults:
  timeout: 3s
checks:
  - name: backends
    tls: {{ addr: "localhost:{port}", resolve: [127.0.0.2, 127.0.0.3], ca_file: "{ca}" }}
    expect: {{ chain: valid, rotated_after: {since} }}
  - name: page
    http: {{ url: "https://127.0.0.2:{port}/", server_name: localhost, ca_file: "{ca}" }}
    expect: {{ status: 200, rotated_after: {since} }}
  - name: old-page
    http: {{ url: "https://127.0.0.3:{port}/", server_name: localhost, ca_file: "{ca}" }}
    expect: {{ status: 200, rotated_after: {since} }}
"#
    );
    let g = env.gate(&text, &[]);
    assert_eq!(g.code, 1);
    let same = g.assertion("backends", "same_leaf");
    assert_eq!(same["reason"], "leaf_mismatch", "{same}");
    assert!(
        msg(same).contains(&format!("127.0.0.3:{port} serve(s) a leaf older")),
        "{same}"
    );
    let stale = at(
        &g,
        "backends",
        "rotated_after",
        &format!("127.0.0.3:{port}"),
    );
    assert_eq!(stale["reason"], "not_rotated", "{stale}");
    assert_eq!(g.status("page"), "pass", "{:#}", g.check("page"));
    assert_eq!(g.verdict("page", "rotated_after"), ("pass".into(), None));
    assert_eq!(
        g.verdict("old-page", "rotated_after").1.as_deref(),
        Some("not_rotated")
    );
    assert_eq!(g.verdict("old-page", "status"), ("pass".into(), None));
}

// ---------------------------------------------------------------- rotated_after: instant

#[test]
fn rotated_after_an_instant_compares_with_the_leafs_not_before() {
    let pki = Pki::new();
    let (_, mut ls) = bind_all(&["127.0.0.1"]);
    let addr = serve(ls.pop().unwrap(), static_cfg(&pki, &pki.leaf));
    let env = common::Env::new();
    let ca = env.write("ca.pem", common::pem_of(&[&pki.root.cert]));
    let tls = format!("addr: \"{addr}\", server_name: localhost");
    // The leaf is valid from 2030-01-01T00:00:00Z.
    let before = "{ rotated_after: \"2029-12-31T23:00:00-01:00\" }";
    let g = env.gate(&suite(&tls, before, &ca), &[]);
    assert_eq!(
        g.verdict("backends", "rotated_after"),
        ("pass".into(), None)
    );
    let after = "{ rotated_after: 2030-01-01T00:00:01Z }";
    let g = env.gate(&suite(&tls, after, &ca), &[]);
    assert_eq!(g.code, 1);
    let a = g.assertion("backends", "rotated_after");
    assert_eq!(a["reason"], "not_rotated");
    let m = msg(a);
    assert!(m.contains("2030-01-01T00:00:01Z"), "{m}");
    assert!(m.contains("not before 2030-01-01T00:00:00Z"), "{m}");
    assert!(m.contains("backdate"), "1 s earlier: the hint: {m}");
    // A misspelt instant or a bare step name is a load error that says what to write.
    let bad = "{ rotated_after: server-tls }";
    let path = env.write("suite.yaml", suite(&tls, bad, &ca));
    let out = common::rotcheck(&["lint", "-c", &path]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("{step: server-tls}"), "{err}");
}

// ---------------------------------------------------------------- rotated_after: plan step

/// The lab's Vault, a suite whose plan re-issues `app/` from pki-prod, a listener on
/// 127.0.0.2 that serves whatever `app/` holds, one on 127.0.0.3 still serving the lab's
/// original Vault certificate (what `app/` held before the plan), and one on 127.0.0.4
/// serving a certificate of another PKI.
struct PlanEnv {
    _tmp: tempfile::TempDir,
    _lab: rotcheck_lab::Lab,
    dir: PathBuf,
    suite: PathBuf,
}

impl PlanEnv {
    async fn new() -> (PlanEnv, u16) {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = rotcheck_lab::LabConfig {
            dir: Some(tmp.path().join("lab")),
            ..Default::default()
        };
        let lab = rotcheck_lab::Lab::start(cfg).await.unwrap();
        let dir = lab.files().dir.clone();
        let p = |r: &str| dir.join(r);
        std::fs::create_dir_all(p("app")).unwrap();
        for (from, to) in [
            ("vault/tls/server.crt", "app/server.crt"),
            ("vault/tls/server.key", "app/server.key"),
            ("vault/tls/fullchain.crt", "app/fullchain.crt"),
        ] {
            std::fs::copy(p(from), p(to)).unwrap();
        }
        let (port, mut ls) = bind_all(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
        let other = Pki::new();
        serve(ls.pop().unwrap(), static_cfg(&other, &other.leaf));
        let stale = files_cfg(&p("vault/tls/fullchain.crt"), &p("vault/tls/server.key"));
        serve(ls.pop().unwrap(), stale);
        serve(
            ls.pop().unwrap(),
            files_cfg(&p("app/fullchain.crt"), &p("app/server.key")),
        );
        let suite = p("rotated.yaml");
        std::fs::write(&suite, plan_suite(&dir, &lab.addr().to_string(), port)).unwrap();
        let env = PlanEnv {
            _tmp: tmp,
            _lab: lab,
            dir,
            suite,
        };
        (env, port)
    }

    /// Runs the binary: exit code, stdout, stderr.
    async fn rotcheck(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .args(args)
            .env_remove("VAULT_TOKEN")
            .env("NO_COLOR", "1")
            .output()
            .await
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let code = out.status.code().unwrap_or(-1);
        (code, text(&out.stdout), text(&out.stderr))
    }

    async fn plan(&self, extra: &[&str]) -> (i32, String) {
        let suite = self.suite.display().to_string();
        let mut args = vec!["rotate", "plan", "-c", suite.as_str()];
        args.extend_from_slice(extra);
        let (code, out, err) = self.rotcheck(&args).await;
        (code, out + &err)
    }

    async fn gate(&self, check: &str) -> common::Gate {
        let suite = self.suite.display().to_string();
        let args = ["gate", "-c", &suite, "--check", check, "--format", "json"];
        let (code, out, err) = self.rotcheck(&args).await;
        let json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        common::Gate { code, json }
    }

    fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.join("rotate/state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

fn plan_suite(dir: &Path, vault: &str, port: u16) -> String {
    format!(
        r#"suite: rotated-test
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
  - name: live
    stage: app
    tls: {{ addr: "127.0.0.2:{port}", server_name: "${{sni}}", ca_file: "${{dir}}/vault/ca_chain.pem" }}
    expect: {{ chain: valid, rotated_after: {{ step: app }} }}
  - name: backends
    stage: after
    tls: {{ addr: "${{sni}}:{port}", ca_file: "${{dir}}/vault/ca_chain.pem", resolve: [127.0.0.2, 127.0.0.3, 127.0.0.4] }}
    expect: {{ rotated_after: {{ step: app }} }}
  - name: wrong-step
    stage: after
    tls: {{ addr: "127.0.0.2:{port}", server_name: "${{sni}}" }}
    expect: {{ rotated_after: {{ step: nope }} }}
plan:
  state_dir: ${{dir}}/rotate
  wait: 10s
  interval: 500ms
  steps:
    - name: app
      gate: app
      actions:
        - issue: {{ mount: pki-prod, role: vault-server, cn: "${{sni}}", ttl: 720h, key: "${{dir}}/app/server.key", cert: "${{dir}}/app/server.crt", chain: "${{dir}}/app/fullchain.crt" }}
"#,
        dir = dir.display()
    )
}

fn serial_of(pem: &Path) -> String {
    let der = rotcheck::certs::read_certs(pem).unwrap();
    rotcheck::certs::facts(&der[0], "leaf").serial
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_after_a_plan_step_judges_against_the_state_a_real_plan_run_recorded() {
    let (env, port) = PlanEnv::new().await;
    let old = serial_of(&env.dir.join("app/server.crt"));

    // Before any run: no state file.
    let g = env.gate("live").await;
    assert_eq!(g.code, 1, "{:#}", g.json);
    let a = g.assertion("live", "rotated_after");
    assert_eq!(a["reason"], "plan_not_run", "{a}");
    assert!(msg(a).contains("rotcheck rotate plan -c"), "{a}");

    // The plan re-issues app/ (forced: the lab's certificate is fresh) and gates on `live`,
    // which serves what was just written: the state records old and new.
    let (code, out) = env.plan(&["--force"]).await;
    assert_eq!(code, 0, "{out}");
    let new = serial_of(&env.dir.join("app/server.crt"));
    assert_ne!(new, old);
    let step = &env.state()["steps"][0];
    assert_eq!(step["certs"][0]["old"]["serial"], old.as_str(), "{step}");
    assert_eq!(step["certs"][0]["new"]["serial"], new.as_str(), "{step}");

    let g = env.gate("live").await;
    assert_eq!(g.code, 0, "{:#}", g.json);
    let a = g.assertion("live", "rotated_after");
    assert!(msg(a).contains(&format!("serves serial {new}")), "{a}");
    assert!(msg(a).contains(&format!("replacing serial {old}")), "{a}");

    // Behind one name: the rotated backend passes, the one still serving the certificate
    // the step replaced is not_rotated, one serving another certificate unexpected_leaf.
    let g = env.gate("backends").await;
    assert_eq!(g.code, 1);
    let live = at(
        &g,
        "backends",
        "rotated_after",
        &format!("127.0.0.2:{port}"),
    );
    assert_eq!(live["status"], "pass", "{live}");
    let stale = at(
        &g,
        "backends",
        "rotated_after",
        &format!("127.0.0.3:{port}"),
    );
    assert_eq!(stale["reason"], "not_rotated", "{stale}");
    assert!(
        msg(stale).contains(&format!("other than serial {old}")),
        "{stale}"
    );
    let foreign = at(
        &g,
        "backends",
        "rotated_after",
        &format!("127.0.0.4:{port}"),
    );
    assert_eq!(foreign["reason"], "unexpected_leaf", "{foreign}");
    let same = g.assertion("backends", "same_leaf");
    assert_eq!(same["reason"], "leaf_mismatch");
    assert!(msg(same).contains("found 3 different leaves"), "{same}");

    // A step the plan does not have is a configuration error.
    let g = env.gate("wrong-step").await;
    let a = g.assertion("wrong-step", "rotated_after");
    assert_eq!(
        (a["status"].as_str(), a["reason"].as_str()),
        (Some("error"), Some("config"))
    );
    assert!(msg(a).contains("its steps: app"), "{a}");

    // A second run finds the certificate current and replaces nothing: the state has no
    // serial to compare with, which warns (and the plan's gate still passes).
    let (code, out) = env.plan(&[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(serial_of(&env.dir.join("app/server.crt")), new);
    let g = env.gate("live").await;
    assert_eq!(g.code, 0, "{:#}", g.json);
    let a = g.assertion("live", "rotated_after");
    assert_eq!(
        (a["status"].as_str(), a["reason"].as_str()),
        (Some("warn"), Some("no_rotation_recorded"))
    );
}

/// The same judgement against a real OpenBao: `rotate plan` issues from its `pki-prod`
/// (a two-tier PKI set up with the `bao` CLI), first into an empty folder, then again with
/// `--force`; a listener still serving the first certificate is `not_rotated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_after_a_plan_step_against_a_real_openbao() {
    let Some(bin) = common::bao::server_binary() else {
        return;
    };
    let dev = common::bao::DevServer::start(&bin);
    common::bao::two_tier_pki(&dev, "pki", "pki-prod", true);
    dev.must(&[
        "write",
        "pki-prod/roles/app",
        "allowed_domains=localhost",
        "allow_bare_domains=true",
        "server_flag=true",
        "client_flag=false",
        "key_type=ec",
        "ttl=720h",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let p = |r: &str| dir.join(r);
    std::fs::create_dir_all(p("app")).unwrap();
    std::fs::create_dir_all(p("first")).unwrap();
    std::fs::write(
        p("ca.pem"),
        std::fs::read(dev.dir.path().join("root.pem")).unwrap(),
    )
    .unwrap();
    let (port, mut ls) = bind_all(&["127.0.0.2", "127.0.0.3"]);
    serve(
        ls.pop().unwrap(),
        files_cfg(&p("first/fullchain.crt"), &p("first/server.key")),
    );
    serve(
        ls.pop().unwrap(),
        files_cfg(&p("app/fullchain.crt"), &p("app/server.key")),
    );
    let suite = p("bao.yaml");
    std::fs::write(&suite, bao_suite(&dir, &dev.url(), &dev.ca(), port)).unwrap();
    let run = |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("BAO_TOKEN", common::bao::DEV_ROOT_TOKEN)
            .env_remove("VAULT_TOKEN")
            .output()
            .unwrap()
    };
    let s = suite.display().to_string();
    let plan = |extra: &[&str]| {
        let mut a: Vec<String> = ["rotate", "plan", "-c", &s].map(String::from).to_vec();
        a.extend(extra.iter().map(|x| x.to_string()));
        let out = run(a);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(
            !text.contains(common::bao::DEV_ROOT_TOKEN),
            "the token in output"
        );
    };
    plan(&[]);
    let first = serial_of(&p("app/server.crt"));
    for f in ["server.key", "fullchain.crt"] {
        std::fs::copy(p(&format!("app/{f}")), p(&format!("first/{f}"))).unwrap();
    }
    plan(&["--force"]);
    let second = serial_of(&p("app/server.crt"));
    assert_ne!(first, second);
    let args = ["gate", "-c", &s, "--check", "backends", "--format", "json"].map(String::from);
    let out = run(args.to_vec());
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let g = common::Gate {
        code: out.status.code().unwrap_or(-1),
        json,
    };
    assert_eq!(g.code, 1);
    let live = at(
        &g,
        "backends",
        "rotated_after",
        &format!("127.0.0.2:{port}"),
    );
    assert!(
        msg(live).contains(&format!("serves serial {second}")),
        "{live}"
    );
    assert!(
        msg(live).contains(&format!("replacing serial {first}")),
        "{live}"
    );
    let stale = at(
        &g,
        "backends",
        "rotated_after",
        &format!("127.0.0.3:{port}"),
    );
    assert_eq!(stale["reason"], "not_rotated", "{stale}");
    assert!(
        msg(stale).contains(&format!("other than serial {first}")),
        "{stale}"
    );
    for addr in ["127.0.0.2", "127.0.0.3"] {
        let chain = at(&g, "backends", "chain", &format!("{addr}:{port}"));
        assert_eq!(
            chain["status"], "pass",
            "both chain to OpenBao's root: {chain}"
        );
    }
    assert_eq!(
        g.assertion("backends", "same_leaf")["reason"],
        "leaf_mismatch"
    );
}

fn bao_suite(dir: &Path, url: &str, ca: &Path, port: u16) -> String {
    format!(
        r#"suite: bao-rotated
vars:
  dir: "{dir}"
defaults:
  timeout: 5s
vault:
  addr: {url}
  server_name: localhost
  ca_file: "{ca}"
checks:
  - name: live
    stage: app
    tls: {{ addr: "127.0.0.2:{port}", server_name: localhost, ca_file: "${{dir}}/ca.pem" }}
    expect: {{ chain: valid, rotated_after: {{ step: app }} }}
  - name: backends
    stage: after
    tls: {{ addr: "localhost:{port}", ca_file: "${{dir}}/ca.pem", resolve: [127.0.0.2, 127.0.0.3] }}
    expect: {{ chain: valid, rotated_after: {{ step: app }} }}
plan:
  state_dir: ${{dir}}/rotate
  wait: 10s
  interval: 500ms
  steps:
    - name: app
      gate: app
      actions:
        - issue: {{ mount: pki-prod, role: app, cn: localhost, ttl: 720h, key: "${{dir}}/app/server.key", cert: "${{dir}}/app/server.crt", chain: "${{dir}}/app/fullchain.crt" }}
"#,
        dir = dir.display(),
        ca = ca.display()
    )
}
