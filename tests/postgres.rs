//! The `postgres` kind against a real PostgreSQL (`rotcheck_lab::postgres`: initdb into a temp
//! dir, TLS on with a certificate of the test PKI, 127.0.0.1 and a free port): logins from a
//! file, an environment variable and a real OpenBao KV secret; a wrong password refused with
//! 28P01 and printed in no format; names and SNI; the drain gate with a session held open as
//! the old role, then closed; a listener serving its leaf without the intermediate; a listener
//! with TLS off; listeners that stall or answer junk; and `serve`'s answers, which carry the
//! drain gate's series and no password.
//!
//! Without PostgreSQL installed the tests print a skip line and return, unless
//! `ROTCHECK_REQUIRE_POSTGRES` is set (scripts/test.sh sets it), when they fail.

mod common;
mod exporter_support;

use common::bao::{self, DevServer, DEV_ROOT_TOKEN};
use common::*;
use rotcheck::kinds::tls::client;
use rotcheck::pg;
use rotcheck_lab::pki::{LabPki, LeafSpec};
use rotcheck_lab::postgres::{binaries_or_skip, PgConfig, PgServer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const OLD_PW: &str = "old-credential-Vq7Lx2Pd9Kw4";
const NEW_PW: &str = "new-credential-Hs3Tz8Rm1Qa6";
const WRONG_PW: &str = "wrong-credential-Yb5Nc0Ju2Ee";

/// A server on the test PKI's leaf (with its intermediate unless `leaf_only`), with roles
/// `app_v1` and `app_v2`.
fn start(pki: &Pki) -> Option<PgServer> {
    binaries_or_skip()?;
    let chain = pem_of(&[&pki.leaf, &pki.inter.cert]);
    let pg = PgServer::start(&PgConfig::tls(chain, pki.leaf.key_pem.clone())).unwrap();
    pg.create_login("app_v1", OLD_PW).unwrap();
    pg.create_login("app_v2", NEW_PW).unwrap();
    Some(pg)
}

/// A private file holding `body`.
fn secret_file(env: &Env, name: &str, body: &str) -> String {
    let path = env.write(name, body);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// One `postgres` check as YAML (list item); `spec` and `expect` are flow mapping bodies.
fn check(name: &str, spec: &str, expect: &str) -> String {
    format!("  - name: {name}\n    postgres: {{{spec}}}\n    expect: {{{expect}}}\n")
}

fn suite(head: &str, checks: &[String]) -> String {
    format!(
        "suite: pg\ndefaults:\n  timeout: 5s\n{head}checks:\n{}",
        checks.concat()
    )
}

/// `addr`, `server_name` and `ca_file` of a check against `pg`.
fn at(pg: &PgServer, env: &Env, pki: &Pki, name: &str) -> String {
    let ca = env.write("root.pem", &pki.root.cert.pem);
    format!(
        "addr: '{}', server_name: {name}, ca_file: '{ca}'",
        pg.addr()
    )
}

#[test]
fn logins_names_wrong_password_and_an_incomplete_chain() {
    let pki = Pki::new();
    let Some(pg) = start(&pki) else { return };
    let env = Env::new();
    let base = at(&pg, &env, &pki, "localhost");
    let new_pw = secret_file(&env, "new.pw", &format!("{NEW_PW}\n"));
    let wrong_pw = secret_file(&env, "wrong.pw", WRONG_PW);
    let served = env.write("server.crt", &pki.leaf.pem);
    let checks = [
        check("file", &format!("{base}, user: app_v2, password_file: '{new_pw}'"), &format!("chain: valid, login: ok, min_tls: '1.2', serves_file: '{served}'")),
        check("env", &format!("{base}, user: app_v1, password_env: ROTCHECK_TEST_PG_PW"), "chain: valid"),
        check("wrong", &format!("{base}, user: app_v2, password_file: '{wrong_pw}'"), "chain: valid"),
        check("revoked", &format!("{base}, user: app_v2, password_file: '{wrong_pw}'"), "login: {failed: 28P01}"),
        check("norole", &format!("{base}, user: nobody, password_file: '{new_pw}'"), "login: {failed: 28P01}"),
        check("nodb", &format!("{base}, user: app_v2, database: nope, password_file: '{new_pw}'"), "login: failed"),
        check("sni", &format!("addr: '{}', server_name: svc.rotcheck.test, user: app_v2, password_file: '{new_pw}'", pg.addr()), "names: [svc.rotcheck.test, localhost]"),
        check("othername", &format!("{}, user: app_v2, password_file: '{new_pw}'", at(&pg, &env, &pki, "db.elsewhere.test")), "chain: valid"),
    ];
    let text = suite("", &checks);
    let path = env.write("suite.yaml", &text);
    let g = run_gate(&path, &[("ROTCHECK_TEST_PG_PW", OLD_PW)]);
    assert_eq!(g.verdict("file", "handshake").0, "pass");
    assert_eq!(g.verdict("file", "chain").0, "pass");
    assert_eq!(g.verdict("file", "login").0, "pass");
    assert_eq!(g.verdict("file", "probe").0, "pass");
    assert_eq!(g.verdict("file", "serves_file").0, "pass");
    assert_eq!(g.status("file"), "pass");
    assert_eq!(g.check("file")["facts"]["extra"]["pg_user"], "app_v2");
    assert_eq!(g.status("env"), "pass");
    assert_eq!(
        g.verdict("wrong", "login"),
        ("fail".into(), Some("pg_login_failed".into()))
    );
    let msg = g.assertion("wrong", "login")["message"].as_str().unwrap();
    assert!(msg.contains("28P01"), "{msg}");
    assert_eq!(g.check("wrong")["facts"]["extra"]["pg_sqlstate"], "28P01");
    assert_eq!(g.status("revoked"), "pass", "{:#}", g.check("revoked"));
    // PostgreSQL answers an unknown role like a wrong password (no role enumeration).
    assert_eq!(g.status("norole"), "pass", "{:#}", g.check("norole"));
    assert_eq!(g.status("nodb"), "pass", "{:#}", g.check("nodb"));
    assert_eq!(g.check("nodb")["facts"]["extra"]["pg_sqlstate"], "3D000");
    assert_eq!(g.status("sni"), "pass", "{:#}", g.check("sni"));
    assert_eq!(
        g.verdict("othername", "chain"),
        ("fail".into(), Some("name_mismatch".into()))
    );

    // The wrong and the right passwords appear in no output format.
    for format in ["human", "json", "junit", "tap", "prom"] {
        let out = rotcheck_env(
            &["gate", "-c", &path, "--format", format, "--at", AT],
            &[("ROTCHECK_TEST_PG_PW", OLD_PW)],
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for pw in [OLD_PW, NEW_PW, WRONG_PW] {
            assert!(
                !all.contains(&pw[4..20]),
                "{format} output holds a password: {all}"
            );
        }
        if format != "prom" {
            assert!(all.contains("28P01"), "{format}: {all}");
        }
    }

    // The leaf without its intermediate: the chain assertion fails as the tls kind's does.
    pg.set_tls(&pki.leaf.pem, &pki.leaf.key_pem).unwrap();
    let only = suite("", &[checks[0].clone()]);
    let g = env.gate(&only, &[]);
    assert_eq!(
        g.verdict("file", "chain"),
        ("fail".into(), Some("incomplete_chain".into()))
    );
    assert_eq!(
        g.verdict("file", "login").0,
        "pass",
        "the login itself works"
    );
}

#[test]
fn a_listener_that_requires_a_client_certificate() {
    if binaries_or_skip().is_none() {
        return;
    }
    let pki = Pki::new();
    let chain = pem_of(&[&pki.leaf, &pki.inter.cert]);
    let cfg = PgConfig::tls(chain, pki.leaf.key_pem.clone())
        .require_client_cert(pki.root.cert.pem.clone());
    let pg = PgServer::start(&cfg).unwrap();
    pg.create_login("app_v2", NEW_PW).unwrap();
    let env = Env::new();
    let base = at(&pg, &env, &pki, "localhost");
    let pw = secret_file(&env, "pw", NEW_PW);
    let client = pki.inter.client("app_v2");
    let cert = env.write("client.crt", pem_of(&[&client, &pki.inter.cert]));
    let key = secret_file(&env, "client.key", &client.key_pem);
    let with = format!("{base}, client_cert: '{cert}', client_key: '{key}'");
    let checks = [
        check(
            "mtls",
            &format!("{with}, user: app_v2, password_file: '{pw}'"),
            "chain: valid",
        ),
        check(
            "nocert",
            &format!("{base}, user: app_v2, password_file: '{pw}'"),
            "chain: valid",
        ),
    ];
    let g = env.gate(&suite("", &checks), &[]);
    assert_eq!(g.status("mtls"), "pass", "{:#}", g.check("mtls"));
    assert_eq!(g.verdict("nocert", "chain").0, "pass");
    assert_eq!(
        g.verdict("nocert", "login"),
        ("fail".into(), Some("pg_login_failed".into()))
    );
    assert_eq!(g.check("nocert")["facts"]["extra"]["pg_sqlstate"], "28000");
    let out = g.json.to_string();
    assert!(!out.contains(&NEW_PW[4..20]) && !out.contains("PRIVATE KEY"));
}

#[test]
fn the_drain_gate_waits_for_the_old_roles_connections() {
    let pki = Pki::new();
    let Some(pg) = start(&pki) else { return };
    let env = Env::new();
    let base = at(&pg, &env, &pki, "localhost");
    let new_pw = secret_file(&env, "new.pw", NEW_PW);
    let drain = check(
        "drain",
        &format!("{base}, user: app_v2, password_file: '{new_pw}'"),
        "connections_by_user: {app_v1: 0}, max_connections_by_user: 5",
    );
    let text = suite("", &[drain]);

    // An application still on the old credential: a session held open as app_v1.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let held = rt.block_on(hold(&pg, "app_v1", OLD_PW));
    let count = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_v1'";
    wait_for(&pg, count, "1");
    let g = env.gate(&text, &[]);
    assert_eq!(
        g.verdict("drain", "connections_by_user"),
        ("fail".into(), Some("pg_connections_not_drained".into()))
    );
    let msg = g.assertion("drain", "connections_by_user")["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("app_v1 has 1"), "{msg}");
    assert_eq!(g.verdict("drain", "max_connections_by_user").0, "pass");
    let prom = rotcheck(&[
        "gate",
        "-c",
        &env.path("suite.yaml").display().to_string(),
        "--format",
        "prom",
        "--at",
        AT,
    ]);
    let prom = String::from_utf8_lossy(&prom.stdout).to_string();
    assert!(
        prom.contains(
            "rotcheck_postgres_connections{suite=\"pg\",check=\"drain\",user=\"app_v1\"} 1"
        ),
        "{prom}"
    );
    assert!(
        prom.contains(
            "rotcheck_postgres_connections_allowed{suite=\"pg\",check=\"drain\",user=\"app_v1\"} 0"
        ),
        "{prom}"
    );

    // The pool of the held role over the cap.
    let more: Vec<pg::Session> = (0..2)
        .map(|_| rt.block_on(hold(&pg, "app_v1", OLD_PW)))
        .collect();
    let capped = suite(
        "",
        &[check(
            "cap",
            &format!("{base}, user: app_v2, password_file: '{new_pw}'"),
            "max_connections_by_user: 2",
        )],
    );
    let g = env.gate(&capped, &[]);
    assert_eq!(
        g.verdict("cap", "max_connections_by_user"),
        ("fail".into(), Some("pg_too_many_connections".into()))
    );

    // The application moved to the new credential: the gate passes.
    rt.block_on(async move { drop((held, more)) });
    wait_for(
        &pg,
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_v1'",
        "0",
    );
    let g = env.gate(&text, &[]);
    assert_eq!(g.status("drain"), "pass", "{:#}", g.check("drain"));
    drop(rt);
}

/// A session as `user`, through the same client the kind uses.
async fn hold(pg: &PgServer, user: &str, pw: &str) -> pg::Session {
    let target = client::Target::parse(&pg.addr().to_string(), Some("localhost")).unwrap();
    let template = Arc::new(client::config(None, &[]).unwrap());
    let cred = pg::Credential {
        user: user.into(),
        password: pg::Password::new(pw).unwrap(),
    };
    let budget = Duration::from_secs(10);
    let deadline = tokio::time::Instant::now() + budget;
    let s = pg::login(&target, &template, "postgres", &cred, deadline, budget)
        .await
        .unwrap();
    let p = s.probe(deadline).await.unwrap();
    assert_eq!(p.user, user);
    assert!(p.read_only);
    s
}

/// Polls a superuser query until it answers `want` (10 s at most).
fn wait_for(pg: &PgServer, sql: &str, want: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let got = pg.superuser_sql(sql).unwrap();
        if got == want {
            return;
        }
        assert!(Instant::now() < until, "{sql}: {got}, expected {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_password_from_a_vault_kv_secret() {
    let pki = Pki::new();
    let Some(pg) = start(&pki) else { return };
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    dev.must(&[
        "kv",
        "put",
        "secret/app/db",
        &format!("password={NEW_PW}"),
        "user=app_v2",
    ]);
    let env = Env::new();
    let base = at(&pg, &env, &pki, "localhost");
    let head = format!(
        "vault:\n  addr: {}\n  server_name: localhost\n  ca_file: '{}'\n  token: {DEV_ROOT_TOKEN}\n",
        dev.url(),
        dev.ca().display()
    );
    let checks = [
        check(
            "kv",
            &format!("{base}, user: app_v2, password_vault: {{path: secret/data/app/db}}"),
            "chain: valid",
        ),
        check(
            "field",
            &format!(
                "{base}, user: app_v2, password_vault: {{path: secret/data/app/db, field: pw}}"
            ),
            "chain: valid",
        ),
        check(
            "missing",
            &format!("{base}, user: app_v2, password_vault: {{path: secret/data/app/none}}"),
            "",
        ),
    ];
    let text = suite(&head, &checks);
    let path = env.write("suite.yaml", &text);
    let g = run_gate(&path, &[]);
    assert_eq!(g.status("kv"), "pass", "{:#}", g.check("kv"));
    assert_eq!(
        g.verdict("field", "login"),
        ("error".into(), Some("credential_missing".into()))
    );
    assert_eq!(
        g.verdict("field", "chain").0,
        "pass",
        "TLS is judged without a credential"
    );
    assert_eq!(
        g.verdict("missing", "login"),
        ("error".into(), Some("credential_missing".into()))
    );
    assert!(!g.json.to_string().contains(&NEW_PW[4..20]));
}

#[test]
fn a_listener_with_tls_off_is_pg_refused_tls() {
    if binaries_or_skip().is_none() {
        return;
    }
    let pg = PgServer::start(&PgConfig::plain()).unwrap();
    pg.create_login("app_v2", NEW_PW).unwrap();
    let env = Env::new();
    let pw = secret_file(&env, "pw", NEW_PW);
    let c = check(
        "plain",
        &format!("addr: '{}', user: app_v2, password_file: '{pw}'", pg.addr()),
        "",
    );
    let g = env.gate(&suite("", &[c]), &[]);
    assert_eq!(
        g.verdict("plain", "handshake"),
        ("fail".into(), Some("pg_refused_tls".into()))
    );
    let msg = g.assertion("plain", "handshake")["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("ssl = on"), "{msg}");
}

#[test]
fn stalled_and_junk_listeners_are_classified_within_the_timeout() {
    let env = Env::new();
    let pw = secret_file(&env, "pw", NEW_PW);
    let stall = listener(|_| std::thread::sleep(Duration::from_secs(30)));
    let junk = listener(|mut tcp| {
        let _ = tcp.read(&mut [0u8; 64]);
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let closes = listener(|mut tcp| {
        let _ = tcp.read(&mut [0u8; 64]);
    });
    let spec = |addr: &str| {
        format!("addr: '{addr}', server_name: localhost, user: app, password_file: '{pw}'")
    };
    let checks = [
        check("stall", &spec(&stall), ""),
        check("junk", &spec(&junk), ""),
        check("closes", &spec(&closes), ""),
        check("closed", &spec(&closed_port().to_string()), ""),
    ];
    let text = suite("", &checks).replace("timeout: 5s", "timeout: 2s");
    let started = Instant::now();
    let g = env.gate(&text, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        g.verdict("stall", "handshake"),
        ("fail".into(), Some("timeout".into()))
    );
    assert_eq!(
        g.verdict("junk", "handshake"),
        ("fail".into(), Some("protocol".into()))
    );
    let msg = g.assertion("junk", "handshake")["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("'H'"), "{msg}");
    assert_eq!(
        g.verdict("closes", "handshake"),
        ("fail".into(), Some("eof".into()))
    );
    assert_eq!(
        g.verdict("closed", "handshake"),
        ("fail".into(), Some("refused".into()))
    );
    assert_eq!(g.error_class("stall").as_deref(), Some("timeout"));
}

/// A listener on 127.0.0.1 running `handle` on each connection.
fn listener(handle: fn(std::net::TcpStream)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            std::thread::spawn(move || handle(tcp));
        }
    });
    addr
}

#[test]
fn the_shipped_example_lints() {
    let out = rotcheck(&["lint", "-c", "checks/postgres.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `rotcheck gate --format json` with extra environment.
fn run_gate(path: &str, env: &[(&str, &str)]) -> Gate {
    let out = rotcheck_env(&["gate", "-c", path, "--format", "json", "--at", AT], env);
    Gate::from_output(&out)
}

fn rotcheck_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"));
    cmd.args(args).env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run rotcheck")
}

#[test]
fn serve_exports_the_drain_series_and_no_password() {
    // serve judges at the real time: a certificate valid now, from the lab PKI.
    if binaries_or_skip().is_none() {
        return;
    }
    let lab = LabPki::generate().unwrap();
    let leaf = lab
        .issue(&LeafSpec::server("localhost", &["localhost", "127.0.0.1"]))
        .unwrap();
    let cfg = PgConfig::tls(lab.fullchain_pem(&leaf), leaf.key_pem());
    let pg = PgServer::start(&cfg).unwrap();
    pg.create_login("app_v2", NEW_PW).unwrap();
    let env = Env::new();
    let ca = env.write("root.pem", lab.root().cert_pem());
    let base = format!(
        "addr: '{}', server_name: localhost, ca_file: '{ca}'",
        pg.addr()
    );
    let new_pw = secret_file(&env, "new.pw", NEW_PW);
    let wrong_pw = secret_file(&env, "wrong.pw", WRONG_PW);
    let checks = [
        check(
            "wrong",
            &format!("{base}, user: app_v2, password_file: '{wrong_pw}'"),
            "chain: valid",
        ),
        check(
            "drain",
            &format!("{base}, user: app_v2, password_file: '{new_pw}'"),
            "connections_by_user: {app_v1: 0, app_v2: 3}",
        ),
    ];
    let path = env.write("suite.yaml", suite("", &checks));
    let serve = exporter_support::serve::Serve::start(Path::new(&path), &["--interval", "1h"]);
    serve.wait_ready(Duration::from_secs(30));
    let metrics = serve.get("/metrics").body;
    for line in [
        "rotcheck_check_failure_reason{suite=\"pg\",check=\"wrong\",reason=\"pg_login_failed\"} 1",
        "rotcheck_postgres_connections{suite=\"pg\",check=\"drain\",user=\"app_v1\"} 0",
        "rotcheck_postgres_connections_allowed{suite=\"pg\",check=\"drain\",user=\"app_v2\"} 3",
        "rotcheck_connect_failures_total{suite=\"pg\",check=\"drain\",class=\"timeout\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    if !exporter_support::prom::skip_without(&["promtool"]) {
        exporter_support::prom::promtool_check_metrics(&metrics).unwrap();
    }
    let debug = serve.get("/probe?check=wrong&debug=true").body;
    assert!(debug.contains("28P01"), "{debug}");
    let status = serve.get("/status").body;
    let log = serve.log().join("\n");
    for (what, text) in [
        ("/metrics", &metrics),
        ("/probe", &debug),
        ("/status", &status),
        ("log", &log),
    ] {
        for pw in [NEW_PW, WRONG_PW] {
            assert!(
                !text.contains(&pw[4..20]),
                "{what} holds a password: {text}"
            );
        }
    }
    serve.stop();
}
