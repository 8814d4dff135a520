//! The tls probe against real TLS stacks an operator runs: `openssl s_server` (full chain,
//! leaf only, a required client certificate) and nginx (full chain vs leaf only, verifying
//! client certificates). Each test prints "skipped: <bin> not installed" and returns when
//! the binary is missing.

mod common;

use common::peers::{find_bin, local, start, Running};
use common::*;
use rotcheck::kinds::tls::settle::Waited;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn openssl() -> Option<String> {
    let bin = find_bin("openssl");
    if bin.is_none() {
        println!("skipped: openssl not installed");
    }
    bin
}

/// `openssl s_server` presenting the leaf, plus `chain` when given; extra args appended.
fn s_server(
    bin: &str,
    env: &Env,
    pki: &Pki,
    chain: Option<&str>,
    extra: &[&str],
) -> (Running, SocketAddr) {
    let addr = local(free_port());
    let (cert, key) = (
        env.write("leaf.pem", &pki.leaf.pem),
        env.write("leaf.key", &pki.leaf.key_pem),
    );
    let mut cmd = Command::new(bin);
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
    if let Some(c) = chain {
        cmd.args(["-cert_chain", c]);
    }
    cmd.args(extra);
    (start(cmd, addr, "openssl s_server"), addr)
}

/// A suite with one chain check per (name, addr), all trusting root + intermediate.
fn chain_suite(env: &Env, pki: &Pki, targets: &[(&str, SocketAddr)]) -> String {
    let ca = env.write("ca.pem", pem_of(&[&pki.root.cert, &pki.inter.cert]));
    let mut s = String::from("suite: peers\ndefaults:\n  timeout: 5s\nchecks:\n");
    for (name, addr) in targets {
        s.push_str(&format!(
            "  - name: {name}\n    tls: {{addr: \"{addr}\", server_name: localhost, ca_file: \"{ca}\"}}\n    expect: {{chain: valid, issuer_cn: rotcheck test intermediate}}\n"
        ));
    }
    s
}

#[test]
fn openssl_full_chain_passes_and_leaf_only_is_incomplete() {
    let Some(bin) = openssl() else { return };
    let (env, pki) = (Env::new(), Pki::new());
    let inter = env.write("inter.pem", &pki.inter.cert.pem);
    let (_full, full) = s_server(&bin, &env, &pki, Some(&inter), &[]);
    let (_bare, bare) = s_server(&bin, &env, &pki, None, &[]);
    let g = env.gate(
        &chain_suite(&env, &pki, &[("full", full), ("bare", bare)]),
        &[],
    );
    assert_eq!(g.status("full"), "pass", "{:#}", g.json);
    assert_eq!(g.check("full")["certs"].as_array().unwrap().len(), 2);
    // Clients trusting root + intermediate accept the bare leaf; it is not portable.
    assert_eq!(g.verdict("bare", "chain"), ("pass".into(), None));
    assert_eq!(
        g.verdict("bare", "complete_chain"),
        ("warn".into(), Some("incomplete_chain".into()))
    );
    assert_eq!(g.code, 0);
}

#[test]
fn openssl_requiring_a_client_certificate() {
    let Some(bin) = openssl() else { return };
    let (env, pki) = (Env::new(), Pki::new());
    let clients = Authority::root("rotcheck test client ca");
    let me = clients.client("rotcheck-agent");
    let inter = env.write("inter.pem", &pki.inter.cert.pem);
    let client_ca = env.write("clients.pem", &clients.cert.pem);
    let (_srv, addr) = s_server(
        &bin,
        &env,
        &pki,
        Some(&inter),
        &["-Verify", "1", "-CAfile", &client_ca],
    );
    let (cert, key) = (
        env.write("me.crt", &me.pem),
        env.write("me.key", &me.key_pem),
    );
    let suite = format!(
        "suite: peers\ndefaults:\n  timeout: 5s\nchecks:\n  - name: anonymous\n    tls: {{addr: \"{addr}\", server_name: localhost}}\n  - name: with-cert\n    tls: {{addr: \"{addr}\", server_name: localhost, client_cert: \"{cert}\", client_key: \"{key}\"}}\n"
    );
    let g = env.gate(&suite, &[]);
    let class = g.error_class("anonymous").unwrap_or_default();
    println!(
        "openssl -Verify 1 without a client cert: {}",
        g.check("anonymous")["error"]
    );
    assert!(
        class == "tls_alert" || class == "reset",
        "class {class}: {:#}",
        g.json
    );
    if class == "tls_alert" {
        let alert = g.check("anonymous")["error"]["alert"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            [
                "certificate_required",
                "handshake_failure",
                "bad_certificate"
            ]
            .contains(&alert.as_str()),
            "alert {alert}"
        );
    }
    assert_eq!(g.status("with-cert"), "pass", "{:#}", g.json);
    // OpenSSL sends its session tickets once it accepted our certificate and Finished: the
    // wait for a late rejection ends there.
    let s = handshake(addr, Some(&me)).expect("handshake");
    assert!(s.asked_for_client_cert);
    assert_eq!(s.waited, Waited::Ticket);
}

fn nginx() -> Option<String> {
    let bin = find_bin("nginx");
    if bin.is_none() {
        println!("skipped: nginx not installed");
    }
    bin
}

/// A throwaway nginx config: one TLS server per (port, certificate file), each with the
/// `extra` directives.
fn nginx_conf(dir: &Path, servers: &[(u16, &str, &str)], extra: &str) -> String {
    let d = dir.display();
    let mut s = format!(
        "worker_processes 1;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n"
    );
    for (port, cert, key) in servers {
        s.push_str(&format!(
            "  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n{extra}    return 200 \"ok\\n\";\n  }}\n"
        ));
    }
    s.push_str("}\n");
    s
}

/// nginx in the foreground with `conf`, once `port` listens.
fn start_nginx(bin: &str, env: &Env, conf: &str, port: u16) -> Running {
    let prefix = env.dir.path().display().to_string();
    let globals = format!("daemon off; pid {prefix}/nginx.pid;");
    let mut cmd = Command::new(bin);
    cmd.args([
        "-p",
        &prefix,
        "-e",
        &format!("{prefix}/error.log"),
        "-c",
        conf,
        "-g",
        &globals,
    ]);
    start(cmd, local(port), "nginx")
}

#[test]
fn nginx_verifying_client_certificates() {
    let Some(bin) = nginx() else { return };
    let (env, pki) = (Env::new(), Pki::new());
    let clients = Authority::root("rotcheck test client ca");
    let me = clients.client("rotcheck-agent");
    let full = env.write("fullchain.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let key = env.write("server.key", &pki.leaf.key_pem);
    let client_ca = env.write("clients.pem", &clients.cert.pem);
    let extra = format!(
        "    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_verify_client on;\n    ssl_client_certificate {client_ca};\n"
    );
    let port = free_port();
    let conf = env.write(
        "nginx.conf",
        nginx_conf(env.dir.path(), &[(port, &full, &key)], &extra),
    );
    let _nginx = start_nginx(&bin, &env, &conf, port);
    let (cert, key) = (
        env.write("me.crt", &me.pem),
        env.write("me.key", &me.key_pem),
    );
    let suite = format!(
        "suite: peers\ndefaults:\n  timeout: 5s\nchecks:\n  - name: with-cert\n    tls: {{addr: \"{}\", server_name: localhost, client_cert: \"{cert}\", client_key: \"{key}\"}}\n",
        local(port)
    );
    let g = env.gate(&suite, &[]);
    assert_eq!(g.status("with-cert"), "pass", "{:#}", g.json);
    // nginx asks for a certificate (TLS 1.3), accepts ours, and its session tickets end the
    // wait for a late rejection.
    let s = handshake(local(port), Some(&me)).expect("handshake");
    assert_eq!(s.version.as_deref(), Some("1.3"));
    assert!(s.asked_for_client_cert);
    assert_eq!(s.waited, Waited::Ticket);
}

#[test]
fn nginx_full_chain_passes_and_leaf_only_is_incomplete() {
    let Some(bin) = nginx() else { return };
    let (env, pki) = (Env::new(), Pki::new());
    let full = env.write("fullchain.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let bare = env.write("server.crt", &pki.leaf.pem);
    let key = env.write("server.key", &pki.leaf.key_pem);
    let (p1, p2) = (free_port(), free_port());
    let conf = env.write(
        "nginx.conf",
        nginx_conf(env.dir.path(), &[(p1, &full, &key), (p2, &bare, &key)], ""),
    );
    let _nginx = start_nginx(&bin, &env, &conf, p1);
    assert!(wait_listening(local(p2), Duration::from_secs(5)));
    let g = env.gate(
        &chain_suite(&env, &pki, &[("full", local(p1)), ("bare", local(p2))]),
        &[],
    );
    assert_eq!(g.status("full"), "pass", "{:#}", g.json);
    assert_eq!(g.verdict("bare", "chain"), ("pass".into(), None));
    assert_eq!(
        g.verdict("bare", "complete_chain"),
        ("warn".into(), Some("incomplete_chain".into()))
    );
    let msg = g.assertion("bare", "complete_chain")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("only the leaf"), "{msg}");
}
