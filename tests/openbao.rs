//! Against a real OpenBao dev server: `rotate pki-role` changes only the fields it is given
//! (read back from the server), the `BAO_*` variables configure the client and win over
//! `VAULT_*`, and `version_skew` never compares an agent with a server of another product.

mod common;

use common::bao::{self, DevServer, DEV_ROOT_TOKEN};
use serde_json::{json, Value};
use std::process::{Command, Output};

/// `rotcheck ARGS` with the dev server named only by `BAO_*` variables; the `VAULT_*` ones
/// point at a closed port, so a client that read them would fail.
fn rotcheck_bao(dev: &DevServer, args: &[&str]) -> Output {
    let dead = format!("https://{}", common::closed_port());
    Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("BAO_ADDR", dev.url())
        .env("BAO_CACERT", dev.ca())
        .env("BAO_TLS_SERVER_NAME", "localhost")
        .env("BAO_TOKEN", DEV_ROOT_TOKEN)
        .env("VAULT_ADDR", dead)
        .env("VAULT_TOKEN", "hvs.notthetokenthatworksatall")
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

/// A role as operators create it by hand, with fields `rotate pki-role` is never told about.
fn hand_made_role(dev: &DevServer, mount: &str) {
    dev.must(&["secrets", "enable", &format!("-path={mount}"), "pki"]);
    dev.must(&[
        "write",
        &format!("{mount}/roles/nginx-app-a"),
        "key_type=rsa",
        "key_bits=3072",
        "organization=Acme",
        "ou=Ops",
        "no_store=true",
        "ttl=720h",
        "allowed_domains=app-a.example",
        "allow_bare_domains=true",
        "server_flag=true",
        "client_flag=false",
    ]);
}

fn pki_role(dev: &DevServer, mount: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "rotate",
        "pki-role",
        "--mount",
        mount,
        "--name",
        "nginx-app-a",
    ];
    args.extend_from_slice(extra);
    rotcheck_bao(dev, &args)
}

/// Every field the user did not name is as it was.
fn assert_untouched(role: &Value, before: &Value) {
    for k in [
        "key_type",
        "key_bits",
        "organization",
        "ou",
        "no_store",
        "ttl",
        "key_usage",
        "client_flag",
        "allow_localhost",
    ] {
        assert_eq!(role[k], before[k], "{k} changed: {role}");
    }
}

#[test]
fn pki_role_changes_only_the_fields_given() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    hand_made_role(&dev, "pki-rmw");
    let before = dev.read_json("pki-rmw/roles/nginx-app-a");
    let same = [
        "--allowed-domains",
        "app-a.example",
        "--allow-bare-domains",
        "--server-flag",
    ];
    let out = pki_role(&dev, "pki-rmw", &same);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("unchanged pki-rmw/roles/nginx-app-a"),
        "{}",
        text(&out)
    );
    assert_eq!(dev.read_json("pki-rmw/roles/nginx-app-a"), before);

    let wider = [
        "--allowed-domains",
        "app-a.example,www.app-a.example",
        "--allow-localhost=false",
    ];
    let out = pki_role(&dev, "pki-rmw", &wider);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("PATCH pki-rmw/roles/nginx-app-a"),
        "{}",
        text(&out)
    );
    let after = dev.read_json("pki-rmw/roles/nginx-app-a");
    assert_eq!(
        after["allowed_domains"],
        json!(["app-a.example", "www.app-a.example"])
    );
    assert_eq!(after["allow_localhost"], json!(false));
    let mut expected_before = before.clone();
    expected_before["allow_localhost"] = json!(false);
    assert_untouched(&after, &expected_before);

    let again = pki_role(&dev, "pki-rmw", &wider);
    assert!(
        text(&again).contains("unchanged"),
        "second run changes nothing: {}",
        text(&again)
    );
}

#[test]
fn a_new_role_gets_the_servers_key_type_and_no_localhost() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    dev.must(&["secrets", "enable", "-path=pki-new", "pki"]);
    let out = pki_role(
        &dev,
        "pki-new",
        &["--allowed-domains", "app-b.example", "--allow-subdomains"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let role = dev.read_json("pki-new/roles/nginx-app-a");
    assert_eq!(
        role["key_type"],
        json!("rsa"),
        "the server's default, not ours: {role}"
    );
    assert_eq!(role["allow_localhost"], json!(false));
    assert_eq!(role["allow_ip_sans"], json!(false));
    assert_eq!(role["allow_subdomains"], json!(true));
    assert_eq!(role["allowed_domains"], json!(["app-b.example"]));
}

fn skew_suite(dir: &std::path::Path, agent: &str) -> std::path::PathBuf {
    let suite = format!(
        "suite: bao\nchecks:\n  - name: skew\n    version_skew: {{ agent: {agent} }}\n    expect: {{ max_minor_skew: 1 }}\n"
    );
    let path = dir.join("suite.yaml");
    std::fs::write(&path, suite).unwrap();
    path
}

fn skew_verdict(dev: &DevServer, agent: &str) -> (i32, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let path = skew_suite(tmp.path(), agent);
    let out = rotcheck_bao(
        dev,
        &["gate", "-c", path.to_str().unwrap(), "--format", "json"],
    );
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code().unwrap_or(-1), v["checks"][0].clone())
}

#[test]
fn version_skew_never_compares_across_products() {
    let Some(bin) = bao::server_binary().filter(|b| b == "bao") else {
        return;
    };
    let dev = DevServer::start(&bin);
    let (code, check) = skew_verdict(&dev, r#"{ version: "1.21.1" }"#);
    assert_eq!(code, 1, "{check}");
    let a = &check["assertions"][0];
    assert_eq!(a["reason"], json!("product_mismatch"), "{check}");
    let msg = a["message"].as_str().unwrap();
    assert!(
        msg.contains("HashiCorp Vault 1.21.1") && msg.contains("OpenBao"),
        "{msg}"
    );

    let cmd = format!("{{ command: [{bin}, version] }}");
    let (code, check) = skew_verdict(&dev, &cmd);
    assert_eq!(code, 0, "the server's own agent binary: {check}");
}

/// A root mount `pki-root` and an intermediate mount `pki-int` whose issuer was set with the
/// intermediate alone (the root not imported): `pki-int/cert/ca_chain` is one certificate.
/// Returns the root's PEM.
fn intermediate_only_mount(dev: &DevServer) -> String {
    let root = bao::two_tier_pki(dev, "pki-root", "pki-int", false);
    dev.must(&[
        "write",
        "pki-int/roles/app",
        "allowed_domains=app.example",
        "allow_bare_domains=true",
        "key_type=ec",
        "key_bits=256",
        "ttl=24h",
    ]);
    root
}

fn pem_count(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches("BEGIN CERTIFICATE")
        .count()
}

#[test]
fn a_trust_bundle_never_loses_its_root() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    let root = intermediate_only_mount(&dev);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ca_chain.pem");
    let out_s = out.to_str().unwrap();

    let refused = rotcheck_bao(
        &dev,
        &["rotate", "trust", "--mount", "pki-int", "--out", out_s],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("--root FILE"), "{}", text(&refused));
    assert!(!out.exists(), "nothing was written");

    std::fs::write(&out, &root).unwrap();
    let done = rotcheck_bao(
        &dev,
        &["rotate", "trust", "--mount", "pki-int", "--out", out_s],
    );
    assert!(done.status.success(), "{}", text(&done));
    assert!(
        text(&done).contains("completed it with the root"),
        "{}",
        text(&done)
    );
    assert_eq!(pem_count(&out), 2, "intermediate + the root it had");

    let verify = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            out_s,
            dev.dir.path().join("int.pem").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "openssl accepts the bundle: {}",
        text(&verify)
    );
}

#[test]
fn issue_with_a_ca_chain_takes_the_root_from_root_or_refuses() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    let root = intermediate_only_mount(&dev);
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let base = |chain: &str| {
        vec![
            "rotate".to_string(),
            "issue".into(),
            "--mount".into(),
            "pki-int".into(),
            "--role".into(),
            "app".into(),
            "--cn".into(),
            "app.example".into(),
            "--key".into(),
            p("app.key"),
            "--cert".into(),
            p("app.crt"),
            "--ca-chain".into(),
            p(chain),
        ]
    };
    let args = base("chain-a.pem");
    let refused = rotcheck_bao(&dev, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(!dir.path().join("app.crt").exists() && !dir.path().join("chain-a.pem").exists());

    std::fs::write(dir.path().join("root.pem"), &root).unwrap();
    let mut args = base("chain-b.pem");
    args.extend(["--root".to_string(), p("root.pem")]);
    let done = rotcheck_bao(&dev, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(pem_count(&dir.path().join("chain-b.pem")), 2);
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", &p("chain-b.pem"), &p("app.crt")])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
}

fn login_check(addr: &str, ca: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
    let ca_auth = common::Authority::root("Agent CA");
    let agent = ca_auth.client("agent-app-a.example");
    std::fs::write(dir.join("agent.crt"), &agent.pem).unwrap();
    std::fs::write(dir.join("agent.key"), &agent.key_pem).unwrap();
    let suite = format!(
        "suite: bao\nchecks:\n  - name: login\n    vault_login: {{ addr: \"{addr}\", ca_file: \"{}\", mount: cert, role: agent-app-a, client_cert: agent.crt, client_key: agent.key }}\n",
        ca.display()
    );
    let path = dir.join("suite.yaml");
    std::fs::write(&path, suite).unwrap();
    path
}

fn gate_json(path: &std::path::Path) -> Value {
    let out = common::rotcheck(&["gate", "-c", path.to_str().unwrap(), "--format", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[test]
fn a_login_to_an_uninitialized_server_says_initialize_and_http_cannot_carry_a_cert() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let ca = common::Authority::root("Listener CA");
    let tls = ca.leaf(&["localhost", "127.0.0.1"], common::FOREVER);
    let server = bao::Uninitialized::start(&bin, &ca.cert.pem, &tls.pem, &tls.key_pem);
    let dir = tempfile::tempdir().unwrap();

    let suite = login_check(&format!("https://{}", server.tls), &server.ca, dir.path());
    let check = gate_json(&suite)["checks"][0].clone();
    let a = &check["assertions"][0];
    assert_eq!(a["reason"], json!("sealed"), "{check}");
    let msg = a["message"].as_str().unwrap();
    assert!(
        msg.contains("not initialized") && msg.contains("operator init"),
        "{msg}"
    );

    let suite = login_check(&format!("http://{}", server.http), &server.ca, dir.path());
    let check = gate_json(&suite)["checks"][0].clone();
    let err = check["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("plain http://") && err.contains("client certificate"),
        "{check}"
    );
}
