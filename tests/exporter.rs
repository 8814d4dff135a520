//! `rotcheck serve` end to end: the real binary against the lab (Vault emulator over TLS) and
//! fault listeners (reset, stall, leaf-only chain), a real Prometheus scraping it with the
//! shipped rules, and the shipped dashboard's queries. Also the promtool/amtool checks of
//! `alerts/`. Needs the Debian packages `prometheus` and `prometheus-alertmanager`; without
//! them those tests print a SKIP line.

mod exporter_support;

use exporter_support::client::{self, Conn};
use exporter_support::prom::{self, Metrics, Prometheus};
use exporter_support::serve::Serve;
use exporter_support::{deadline_loop, repo_path, serial_of, Env};
use nix::sys::signal::Signal;
use rotcheck_lab::pki::{LabPki, LeafSpec};
use serde_json::Value;
use std::time::{Duration, Instant};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Every kind of series: good TLS, an incomplete chain, refused, reset, Vault health,
/// version skew, file modes.
const SUITE: &str = r#"
suite: itest
defaults: { interval: 1s, timeout: 3s }
vault:
  addr: https://{lab}
  server_name: {sni}
  ca_file: {ca}
  client_cert: {admin_crt}
  client_key: {admin_key}
checks:
  - name: vault-listener
    stage: server-tls
    tls: { addr: "{lab}", server_name: {sni}, ca_file: {ca} }
    expect: { chain: valid, names: [{sni}] }
  - name: leaf-only
    stage: server-tls
    tls: { addr: "{leaf_only}", server_name: leaf-only.lab.rotcheck.test, ca_file: {ca} }
    expect: { chain: valid }
  - name: refused
    stage: proxy
    tls: { addr: "{refused}", server_name: proxy.lab.rotcheck.test }
  - name: resetting
    stage: proxy
    tls: { addr: "{reset}", server_name: proxy.lab.rotcheck.test }
  - name: vault-health
    stage: vault
    vault_health: {}
    expect: { sealed: false, initialized: true }
  - name: agent-version
    stage: agents
    version_skew: { agent: { version: "1.21.1" } }
    expect: { max_minor_skew: 1, agent_newer: warn }
  - name: server-files
    stage: server-tls
    files:
      - { path: "{server_key}", kind: key, mode: "0600" }
      - { path: "{fullchain}", kind: chain }
"#;

const CHECKS: [&str; 7] = [
    "vault-listener",
    "leaf-only",
    "refused",
    "resetting",
    "vault-health",
    "agent-version",
    "server-files",
];

fn check(name: &str) -> [(&'static str, &str); 2] {
    [("suite", "itest"), ("check", name)]
}

fn with<'a>(
    base: [(&'static str, &'a str); 2],
    more: &[(&'static str, &'a str)],
) -> Vec<(&'static str, &'a str)> {
    let mut v = base.to_vec();
    v.extend_from_slice(more);
    v
}

/// Every series the suite above must produce once each check has run.
fn complete(m: &Metrics, env: &Env) -> Result<(), String> {
    let need = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
    for c in CHECKS {
        need(
            m.value("rotcheck_check_success", &check(c)).is_some(),
            &format!("check_success {c}"),
        )?;
    }
    let key = env.lab.files().server_key.display().to_string();
    let v =
        |name: &str, c: &str, more: &[(&'static str, &str)]| m.value(name, &with(check(c), more));
    need(
        v("rotcheck_check_success", "vault-listener", &[]) == Some(1.0),
        "vault-listener passes",
    )?;
    need(
        v(
            "rotcheck_connect_failure",
            "refused",
            &[("class", "refused")],
        ) == Some(1.0),
        "refused class",
    )?;
    need(
        v(
            "rotcheck_connect_failure",
            "resetting",
            &[("class", "reset")],
        ) == Some(1.0),
        "reset class",
    )?;
    need(
        v(
            "rotcheck_chain_failure",
            "leaf-only",
            &[("reason", "incomplete_chain")],
        ) == Some(1.0),
        "incomplete_chain",
    )?;
    need(
        !m.find(
            "rotcheck_cert_not_after_timestamp_seconds",
            &with(
                check("leaf-only"),
                &[
                    ("position", "leaf"),
                    ("subject_cn", "leaf-only.lab.rotcheck.test"),
                ],
            ),
        )
        .is_empty(),
        "cert facts despite a failed chain",
    )?;
    need(
        !m.find(
            "rotcheck_cert_not_after_timestamp_seconds",
            &with(check("vault-listener"), &[("position", "intermediate")]),
        )
        .is_empty(),
        "intermediate not_after",
    )?;
    need(
        !m.find(
            "rotcheck_cert_not_before_timestamp_seconds",
            &with(
                check("vault-listener"),
                &[("position", "leaf"), ("subject_cn", env.lab.server_name())],
            ),
        )
        .is_empty(),
        "leaf not_before",
    )?;
    let ratio = v(
        "rotcheck_cert_lifetime_remaining_ratio",
        "vault-listener",
        &[("position", "leaf")],
    );
    need(
        ratio.is_some_and(|r| r > 0.9 && r <= 1.0),
        "leaf lifetime ratio",
    )?;
    need(
        m.find("rotcheck_tls_version_info", &check("vault-listener"))
            .len()
            == 1,
        "tls version",
    )?;
    need(
        v("rotcheck_vault_sealed", "vault-health", &[]) == Some(0.0),
        "vault sealed 0",
    )?;
    need(
        v("rotcheck_vault_initialized", "vault-health", &[]) == Some(1.0),
        "vault initialized",
    )?;
    need(
        v(
            "rotcheck_vault_version_info",
            "vault-health",
            &[("version", "1.20.4")],
        ) == Some(1.0),
        "vault version",
    )?;
    need(
        v("rotcheck_version_skew_minor", "agent-version", &[]) == Some(1.0),
        "skew",
    )?;
    need(
        v("rotcheck_file_mode", "server-files", &[("path", &key)]) == Some(600.0),
        "file mode",
    )?;
    let failing = m.find("rotcheck_assertion_success", &check("refused"));
    need(
        !failing.is_empty() && failing.iter().all(|s| s.value == 0.0),
        "the failing assertions of the refused check, at 0",
    )?;
    need(
        m.find("rotcheck_assertion_success", &check("vault-listener"))
            .is_empty(),
        "no assertion series for a passing check",
    )?;
    Ok(())
}

#[test]
fn metrics_cover_every_check_and_pass_promtool() {
    let env = Env::start(false);
    let suite = env.write_suite("itest.yaml", SUITE);
    let serve = Serve::start(&suite, &[]);
    serve.wait_ready(secs(20));
    let m = serve.wait_metrics("every series", secs(15), |m| complete(m, &env).is_ok());
    let text = serve.get("/metrics");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    if !prom::skip_without(&["promtool"]) {
        prom::promtool_check_metrics(&text.body).unwrap();
    }
    for family in rotcheck::metrics::all() {
        let seen = m.types.contains_key(family.name);
        let expected_absent = [
            "rotcheck_vault_agent_version_info",
            "rotcheck_http_status_code",
            // only with expect.not_revoked, and with a crl check
            "rotcheck_cert_revoked",
            "rotcheck_crl_next_update_timestamp_seconds",
        ]
        .contains(&family.name)
            // only with a rotation_plan check
            || family.name.starts_with("rotcheck_plan_")
            // only with a vault_transit_key check
            || family.name.starts_with("rotcheck_secret_")
            // only with a postgres check
            || family.name.starts_with("rotcheck_postgres_")
            // only with a jwks check
            || family.name.starts_with("rotcheck_jwks_");
        assert!(seen || expected_absent, "family {} missing", family.name);
        if seen {
            assert!(
                m.help.contains_key(family.name),
                "no HELP for {}",
                family.name
            );
        }
    }
    assert_eq!(m.types["rotcheck_connect_failures_total"], "counter");
    for c in CHECKS {
        // Counters only for kinds that connect: not for the files check.
        let counters = if c == "server-files" { 0 } else { 9 };
        assert_eq!(
            m.find("rotcheck_connect_failures_total", &check(c)).len(),
            counters,
            "{c}"
        );
        assert_eq!(m.find("rotcheck_check_status", &check(c)).len(), 1, "{c}");
        assert_eq!(
            m.value("rotcheck_check_interval_seconds", &check(c)),
            Some(1.0)
        );
    }
    let refused = m.value(
        "rotcheck_connect_failures_total",
        &with(check("refused"), &[("class", "refused")]),
    );
    assert!(refused.unwrap() >= 1.0);
    assert_eq!(
        m.value("rotcheck_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert!(m
        .value(
            "rotcheck_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        )
        .is_some());
    assert!(serve.get("/healthz").status == 200);
    negotiates_gzip_and_openmetrics(&serve, &m);
    assert!(
        serve.stop().success(),
        "SIGTERM must end serve with status 0"
    );
}

/// What Prometheus 2.x sends in `Accept`.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The (name, labels) of every sample, sorted: what must not differ between formats.
fn series_set(m: &Metrics) -> Vec<String> {
    let mut v: Vec<String> = m
        .samples
        .iter()
        .map(|s| format!("{} {:?}", s.name, s.labels))
        .collect();
    v.sort();
    v
}

/// gzip on `Accept-Encoding: gzip`, OpenMetrics on Prometheus' `Accept`, the same series in
/// every combination; promtool accepts the text format compressed or not.
fn negotiates_gzip_and_openmetrics(serve: &Serve, text: &Metrics) {
    let gz = serve
        .request("GET", "/metrics", &[("Accept-Encoding", "gzip")])
        .unwrap();
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let plain = gunzip(&gz.raw);
    assert_eq!(series_set(&Metrics::parse(&plain)), series_set(text));
    if !prom::skip_without(&["promtool"]) {
        prom::promtool_check_metrics(&plain).unwrap();
    }
    let headers = [("Accept", PROMETHEUS_ACCEPT), ("Accept-Encoding", "gzip")];
    let om = serve.request("GET", "/metrics", &headers).unwrap();
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = gunzip(&om.raw);
    assert!(
        om.ends_with("# EOF\n"),
        "{}",
        &om[om.len().saturating_sub(200)..]
    );
    assert_eq!(om.matches("# EOF").count(), 1);
    assert!(om.contains("# TYPE rotcheck_connect_failures counter\n"));
    assert_eq!(series_set(&Metrics::parse(&om)), series_set(text));
    let identity = serve.get("/metrics");
    assert_eq!(identity.header("content-encoding"), None);
    let probe = serve
        .request("GET", "/probe?check=vault-listener", &headers)
        .unwrap();
    assert_eq!(probe.header("content-encoding"), Some("gzip"));
    assert!(gunzip(&probe.raw).ends_with("# EOF\n"));
}

fn gunzip(raw: &[u8]) -> String {
    use std::io::Read;
    let mut out = String::new();
    flate2::read::GzDecoder::new(raw)
        .read_to_string(&mut out)
        .expect("a gzip body");
    out
}

const STALL_SUITE: &str = r#"
suite: itest
defaults: { interval: 1s, timeout: 3s }
checks:
  - name: vault-listener
    tls: { addr: "{lab}", server_name: {sni}, ca_file: {ca} }
    expect: { chain: valid }
  - name: stalled
    timeout: 20s
    tls: { addr: "{stall}", server_name: stall.lab.rotcheck.test }
"#;

#[test]
fn probe_runs_only_suite_checks_and_a_stalled_target_delays_nothing() {
    let env = Env::start(false);
    let suite = env.write_suite("stall.yaml", STALL_SUITE);
    let serve = Serve::start(&suite, &[]);
    serve.wait_metrics("vault-listener result", secs(15), |m| {
        m.value("rotcheck_check_success", &check("vault-listener"))
            .is_some()
    });
    // The stalled check is still in its first run: /ready says so, /metrics stays fast.
    assert_eq!(serve.get("/ready").status, 503);
    let mut took: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(serve.get("/metrics").status, 200);
            t.elapsed()
        })
        .collect();
    took.sort();
    assert!(took[10] < secs(2), "median /metrics {:?}", took[10]);
    // The stalled check's timeout is 20 s: anything far below it means no scrape waited.
    assert!(took[19] < secs(5), "slowest /metrics {:?}", took[19]);

    let r = serve.get("/probe?check=vault-listener");
    assert_eq!(r.status, 200, "{}", r.body);
    let m = Metrics::parse(&r.body);
    assert_eq!(
        m.label_values("rotcheck_check_success", "check"),
        vec!["vault-listener"]
    );
    assert!(
        m.find("rotcheck_connect_failures_total", &[]).is_empty(),
        "fresh registry: no counters"
    );
    assert!(!m
        .find(
            "rotcheck_cert_not_after_timestamp_seconds",
            &check("vault-listener")
        )
        .is_empty());
    assert_eq!(
        m.value("rotcheck_check_success", &check("vault-listener")),
        Some(1.0)
    );

    let start = Instant::now();
    let r = serve
        .request(
            "GET",
            "/probe?check=stalled",
            &[("X-Prometheus-Scrape-Timeout-Seconds", "2")],
        )
        .unwrap();
    assert!(
        start.elapsed() < secs(8),
        "probe took {:?}",
        start.elapsed()
    );
    let m = Metrics::parse(&r.body);
    assert_eq!(
        m.value("rotcheck_check_success", &check("stalled")),
        Some(0.0)
    );
    assert_eq!(
        m.value(
            "rotcheck_connect_failure",
            &with(check("stalled"), &[("class", "timeout")])
        ),
        Some(1.0)
    );

    for (path, status, says) in [
        (
            "/probe?check=nope",
            400,
            "unknown check \"nope\"; checks of the suite: vault-listener, stalled",
        ),
        ("/probe", 400, "missing check parameter"),
        (
            "/probe?check=vault-listener&target=169.254.169.254:80",
            400,
            "never arbitrary targets",
        ),
        ("/probe?module=tls", 400, "unknown parameter"),
        ("/nope", 404, "not found"),
    ] {
        let r = serve.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.body.contains(says), "{path}: {}", r.body);
    }
    assert_eq!(serve.post("/metrics").status, 405);
    assert!(serve.stop().success());
}

const RELOAD_V1: &str = r#"
suite: itest
defaults: { interval: 1s }
checks:
  - name: kept
    tls: { addr: "{lab}", server_name: {sni}, ca_file: {ca} }
  - name: removed
    tls: { addr: "{lab}", server_name: {sni}, ca_file: {ca} }
"#;

#[test]
fn reload_applies_good_suites_and_keeps_the_old_one_on_errors() {
    let env = Env::start(false);
    let v1 = RELOAD_V1.to_string();
    let suite = env.write_suite("reload.yaml", &v1);
    let serve = Serve::start(&suite, &[]);
    serve.wait_ready(secs(15));
    let before = serve.metrics();
    assert!(before
        .value("rotcheck_check_success", &check("removed"))
        .is_some());
    let loaded_at = before
        .value("rotcheck_config_last_reload_success_timestamp_seconds", &[])
        .unwrap();

    let v2 = v1.replace(
        "  - name: removed\n    tls: { addr: \"{lab}\", server_name: {sni}, ca_file: {ca} }\n",
        "",
    );
    env.write_suite("reload.yaml", &v2);
    let r = serve.post("/-/reload");
    assert_eq!((r.status, r.body.as_str()), (200, "reloaded: 1 checks\n"));
    let m = serve.metrics();
    assert!(
        m.samples
            .iter()
            .all(|s| s.labels.get("check").map(String::as_str) != Some("removed")),
        "removed check lingers"
    );
    assert!(m.value("rotcheck_check_success", &check("kept")).is_some());
    assert_eq!(
        m.value("rotcheck_config_last_reload_successful", &[]),
        Some(1.0)
    );

    env.write_suite(
        "reload.yaml",
        "suite: itest\nchecks:\n  - name: kept\n    bogus: 1\n",
    );
    let r = serve.post("/-/reload");
    assert_eq!(r.status, 500);
    assert!(
        r.body.contains("reload.yaml") && r.body.contains("bogus"),
        "{}",
        r.body
    );
    let m = serve.metrics();
    assert_eq!(
        m.value("rotcheck_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert!(
        m.value("rotcheck_check_success", &check("kept")).is_some(),
        "old suite stays"
    );
    let after_fail = m
        .value("rotcheck_config_last_reload_success_timestamp_seconds", &[])
        .unwrap();
    assert!(after_fail >= loaded_at);

    let v3 = v2.replace("  - name: kept\n", "  - name: added\n    tls: { addr: \"{lab}\", server_name: {sni}, ca_file: {ca} }\n  - name: kept\n");
    env.write_suite("reload.yaml", &v3);
    serve.signal(Signal::SIGHUP);
    let m = serve.wait_metrics("SIGHUP reload", secs(10), |m| {
        m.value("rotcheck_config_last_reload_successful", &[]) == Some(1.0)
            && m.value("rotcheck_check_success", &check("added")).is_some()
    });
    assert!(
        m.value("rotcheck_config_last_reload_success_timestamp_seconds", &[])
            .unwrap()
            > after_fail
    );
    assert_eq!(serve.get("/-/reload").status, 405);
    serve.wait_log("reload failed", secs(5));
    assert!(serve.stop().success());
}

#[test]
fn rotated_serial_replaces_the_old_series_on_the_next_round() {
    let env = Env::start(false);
    let suite = env.write_suite(
        "rotate.yaml",
        "suite: itest\ndefaults: { interval: 1s }\nchecks:\n  - name: vault-listener\n    tls: { addr: \"{lab}\", server_name: {sni}, ca_file: {ca} }\n",
    );
    let serve = Serve::start(&suite, &[]);
    let leaf = [
        ("suite", "itest"),
        ("check", "vault-listener"),
        ("position", "leaf"),
    ];
    let name = "rotcheck_cert_not_after_timestamp_seconds";
    let m = serve.wait_metrics("the first serial", secs(15), |m| {
        m.find(name, &leaf).len() == 1
    });
    let old = m.find(name, &leaf)[0].labels["serial"].clone();
    let new = env.rotate_lab_cert();
    assert_ne!(old, new);
    let m = serve.wait_metrics("the new serial", secs(10), |m| {
        m.find(name, &leaf)
            .iter()
            .any(|s| s.labels["serial"] == new)
    });
    for family in [name, "rotcheck_cert_not_before_timestamp_seconds"] {
        let serials: Vec<_> = m
            .find(family, &leaf)
            .iter()
            .map(|s| s.labels["serial"].clone())
            .collect();
        assert_eq!(
            serials,
            vec![new.clone()],
            "{family}: the old serial {old} must not linger"
        );
    }
    assert!(serve.stop().success());
}

#[test]
fn web_config_serves_tls_with_client_certs_and_basic_auth() {
    let env = Env::start(false);
    let suite = env.write_suite(
        "web.yaml",
        "suite: itest\nchecks:\n  - name: vault-listener\n    tls: { addr: \"{lab}\", server_name: {sni}, ca_file: {ca} }\n",
    );
    let pki = LabPki::generate().unwrap();
    let server = pki
        .issue(&LeafSpec::server(
            "rotcheck.test",
            &["localhost", "127.0.0.1"],
        ))
        .unwrap();
    let client_cert = pki.issue(&LeafSpec::client("prometheus")).unwrap();
    let dir = env.dir.path();
    std::fs::write(dir.join("server.crt"), pki.fullchain_pem(&server)).unwrap();
    std::fs::write(dir.join("server.key"), server.key_pem()).unwrap();
    std::fs::write(dir.join("client-ca.pem"), pki.root().cert_pem()).unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n  min_version: TLS12\nbasic_auth_users:\n  prometheus: '{hash}'\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        ),
    )
    .unwrap();
    let mut serve = Serve::start(&suite, &["--web-config", web.to_str().unwrap()]);
    serve.wait_log("on https://", secs(5));
    let roots = [pki.root().cert().cert_der().clone()];
    let with_cert = client::tls_config(
        &roots,
        Some((pki.fullchain_der(&client_cert), client_cert.key_der())),
    );
    serve.conn = Conn {
        tls: Some(with_cert.clone()),
        timeout: None,
    };

    let ok = serve
        .request(
            "GET",
            "/metrics",
            &[("Authorization", &client::basic("prometheus", "s3cret"))],
        )
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));
    let wrong = serve
        .request(
            "GET",
            "/metrics",
            &[("Authorization", &client::basic("prometheus", "wrong"))],
        )
        .unwrap();
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Basic realm=\"rotcheck\"")
    );
    let unknown = serve
        .request(
            "GET",
            "/metrics",
            &[("Authorization", &client::basic("mallory", "s3cret"))],
        )
        .unwrap();
    assert_eq!(unknown.status, 401);
    assert_eq!(serve.get("/metrics").status, 401, "no credentials");
    assert_eq!(serve.get("/probe?check=vault-listener").status, 401);
    assert_eq!(serve.post("/-/reload").status, 401);
    assert_eq!(
        serve.get("/healthz").status,
        200,
        "liveness needs no password"
    );

    serve.conn.tls = Some(client::tls_config(&roots, None));
    let refused = serve.request("GET", "/healthz", &[]);
    assert!(
        refused.is_err(),
        "a handshake without a client certificate must be refused: {refused:?}"
    );
    serve.conn.tls = None;
    let plain = serve.request("GET", "/healthz", &[]);
    assert!(
        plain.map(|r| r.status != 200).unwrap_or(true),
        "plain HTTP must not be served"
    );

    serve.conn.tls = Some(with_cert);
    serve.auth = Some(client::basic("prometheus", "s3cret"));
    assert_eq!(serve.get("/metrics").status, 200);
    assert!(serve.stop().success());
}

#[test]
fn bad_web_configs_and_suites_exit_2() {
    let env = Env::start(false);
    let suite = env.write_suite("ok.yaml", "suite: itest\nchecks: []\n");
    let web = env.dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  alice: not-a-hash\n").unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap()
    };
    let out = run(&[
        "-c",
        suite.to_str().unwrap(),
        "--web-config",
        web.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("basic_auth_users.alice"));
    let bad = env.write_suite(
        "bad.yaml",
        "suite: itest\nchecks:\n  - name: x\n    tls: { addr: nope }\n",
    );
    let out = run(&["-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"));
}

#[test]
fn gate_prom_format_uses_the_serve_names() {
    let env = Env::start(false);
    let suite = env.write_suite("itest.yaml", SUITE);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(["gate", "-c", suite.to_str().unwrap(), "--format", "prom"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "some checks of the suite fail");
    let text = String::from_utf8(out.stdout).unwrap();
    let m = Metrics::parse(&text);
    complete(&m, &env).unwrap();
    let names: Vec<&str> = rotcheck::metrics::all().iter().map(|d| d.name).collect();
    for family in m.types.keys() {
        assert!(
            names.contains(&family.as_str()),
            "{family} is not a serve family"
        );
    }
    assert!(
        m.find("rotcheck_connect_failures_total", &[]).is_empty(),
        "a one-shot run has no counters"
    );
    if !prom::skip_without(&["promtool"]) {
        prom::promtool_check_metrics(&text).unwrap();
    }
}

#[test]
fn shipped_rules_load_and_pass_their_unit_tests() {
    if prom::skip_without(&["promtool"]) {
        return;
    }
    let alerts = repo_path("alerts");
    let (ok, out) = prom::run_tool(
        "promtool",
        &["check", "rules", "rotcheck.rules.yml"],
        &alerts,
    );
    assert!(ok, "{out}");
    let (ok, out) = prom::run_tool(
        "promtool",
        &["test", "rules", "rotcheck.rules.test.yml"],
        &alerts,
    );
    assert!(ok, "{out}");
    // Every alert is exercised by the unit tests.
    let rules = std::fs::read_to_string(alerts.join("rotcheck.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(alerts.join("rotcheck.rules.test.yml")).unwrap();
    for name in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        let firing = format!("alertname: {name}\n        exp_alerts:\n          - ");
        let silent = format!("alertname: {name}\n        exp_alerts: []");
        assert!(tests.contains(&firing), "{name} is never tested firing");
        assert!(tests.contains(&silent), "{name} is never tested not firing");
    }
}

#[test]
fn alertmanager_example_passes_amtool() {
    if prom::skip_without(&["amtool"]) {
        return;
    }
    let (ok, out) = prom::run_tool(
        "amtool",
        &["check-config", "alerts/alertmanager.example.yml"],
        &repo_path(""),
    );
    assert!(ok, "{out}");
}

/// The dashboard JSON and every PromQL expression in it (panels, annotations, variables).
struct Dashboard {
    json: Value,
}

impl Dashboard {
    fn load() -> Dashboard {
        let text = std::fs::read_to_string(repo_path("dashboards/rotcheck.json")).unwrap();
        Dashboard {
            json: serde_json::from_str(&text).unwrap(),
        }
    }

    fn panels(&self) -> Vec<&Value> {
        self.json["panels"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] != "row")
            .collect()
    }

    /// (panel title, expression) for every target and annotation.
    fn exprs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in self.panels() {
            for t in p["targets"].as_array().unwrap() {
                out.push((
                    p["title"].as_str().unwrap().to_string(),
                    t["expr"].as_str().unwrap().to_string(),
                ));
            }
        }
        for a in self.json["annotations"]["list"].as_array().unwrap() {
            if let Some(e) = a["expr"].as_str() {
                out.push((a["name"].as_str().unwrap().to_string(), e.to_string()));
            }
        }
        out
    }

    /// (variable, metric selector, label) for every `label_values(...)` variable.
    fn variables(&self) -> Vec<(String, String, String)> {
        self.json["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["type"] == "query")
            .map(|v| {
                let q = v["query"]["query"].as_str().unwrap();
                let inner = q
                    .strip_prefix("label_values(")
                    .unwrap()
                    .strip_suffix(')')
                    .unwrap();
                let (sel, label) = inner.rsplit_once(',').unwrap();
                (
                    v["name"].as_str().unwrap().into(),
                    sel.trim().into(),
                    label.trim().into(),
                )
            })
            .collect()
    }
}

/// What Grafana substitutes, with "All" selected.
fn grafana_vars(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$suite", ".*")
        .replace("$stage", ".*")
}

#[test]
fn dashboard_is_current_grafana_json_with_the_required_variables() {
    let d = Dashboard::load();
    assert!(d.json["schemaVersion"].as_u64().unwrap() >= 39);
    let vars: Vec<_> = d.json["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        vars,
        vec![
            ("datasource", "datasource"),
            ("suite", "query"),
            ("stage", "query")
        ]
    );
    for p in d.panels() {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        assert!(
            !p["targets"].as_array().unwrap().is_empty(),
            "{}",
            p["title"]
        );
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}");
        }
    }
    for (title, e) in d.exprs() {
        assert!(e.contains("rotcheck_"), "{title}: {e}");
    }
    let titles: Vec<_> = d
        .panels()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "Status of every check",
        "Time to expiry (soonest first)",
        "Connection failures by class",
        "Vault seal state",
        "Server and agent versions",
        "Agent minor-version skew",
        "Age of the last run",
        "Suite reload",
    ] {
        assert!(titles.iter().any(|t| t == want), "missing panel {want}");
    }
}

/// Alerts that must reach pending or firing against the sealed lab suite.
const MUST_ALERT: [(&str, &str); 5] = [
    ("RotcheckCheckFailing", "refused"),
    ("RotcheckIncompleteChain", "leaf-only"),
    ("RotcheckVaultSealed", "vault-health"),
    ("RotcheckVersionSkew", "agent-version"),
    ("RotcheckConnectionResetsPersist", "resetting"),
];

/// Panels that must show data once Prometheus has scraped a few times.
const MUST_HAVE_DATA: [&str; 13] = [
    "Checks failing",
    "Exporter up",
    "Suite reload",
    "Last successful suite load",
    "Status of every check",
    "Age of the last run",
    "Time to expiry (soonest first)",
    "Lifetime remaining by position",
    "Connection failures by class",
    "Vault seal state",
    "Server and agent versions",
    "Agent minor-version skew",
    "File modes",
];

#[test]
fn real_prometheus_scrapes_loads_rules_fires_alerts_and_runs_the_dashboard() {
    if prom::skip_without(&["prometheus", "promtool"]) {
        return;
    }
    let env = Env::start(true);
    let suite = env.write_suite("itest.yaml", SUITE);
    let serve = Serve::start(&suite, &[]);
    let lab_suite = Serve::start(&env.lab.files().suite, &["--interval", "1s"]);
    serve.wait_ready(secs(20));
    lab_suite.wait_ready(secs(30));
    let rules = prom::fast_rules(env.dir.path(), "2s");
    let p = Prometheus::start(&[serve.addr, lab_suite.addr], &[rules]);

    deadline_loop("both targets scraped", secs(30), || {
        p.query("count by (suite) (rotcheck_check_success)")
            .map(|r| r.len() == 2)
            .unwrap_or(false)
    });
    let shipped = std::fs::read_to_string(repo_path("alerts/rotcheck.rules.yml")).unwrap();
    let want_rules = shipped.matches("- alert: ").count();
    deadline_loop("every rule evaluated healthy", secs(30), || {
        let groups = p.api("/api/v1/rules").unwrap()["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let rules: Vec<Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules.len() == want_rules && rules.iter().all(|r| r["health"] == "ok")
    });
    deadline_loop("the alerts of the failing checks", secs(30), || {
        let alerts = p.api("/api/v1/alerts").unwrap()["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        MUST_ALERT.iter().all(|(name, check)| {
            alerts.iter().any(|a| {
                a["labels"]["alertname"] == *name
                    && a["labels"]["check"] == *check
                    && (a["state"] == "pending" || a["state"] == "firing")
            })
        })
    });
    // RotcheckCheckFailing says why, from rotcheck_check_failure_reason.
    let why = p
        .query("rotcheck_check_failure_reason{suite=\"itest\",check=\"refused\"}")
        .unwrap();
    let reason = why[0]["metric"]["reason"].as_str().unwrap().to_string();
    let alerts = p.api("/api/v1/alerts").unwrap()["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let failing = alerts
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == "RotcheckCheckFailing" && a["labels"]["check"] == "refused"
        })
        .unwrap();
    let description = failing["annotations"]["description"].as_str().unwrap();
    assert!(
        description.ends_with(&format!("; reason: {reason}.")),
        "{description}"
    );
    let alerts = p.api("/api/v1/alerts").unwrap()["alerts"]
        .as_array()
        .cloned()
        .unwrap();
    for quiet in [
        "RotcheckExporterDown",
        "RotcheckConfigReloadFailed",
        "RotcheckCertExpired",
        "RotcheckCertNotYetValid",
    ] {
        assert!(
            alerts.iter().all(|a| a["labels"]["alertname"] != quiet),
            "{quiet} must not fire: {alerts:#?}"
        );
    }
    // The lab's own suite: every failing check drives RotcheckCheckFailing too.
    let lab_text = lab_suite.get("/metrics").body;
    prom::promtool_check_metrics(&lab_text).unwrap();
    let lab_checks = Metrics::parse(&lab_text).label_values("rotcheck_check_success", "check");
    assert!(lab_checks.len() > 5, "the lab suite runs: {lab_checks:?}");
    deadline_loop(
        "alerts for the lab suite's failing checks",
        secs(20),
        || {
            let failing = p
                .query("rotcheck_check_success{suite=\"lab\"} == 0")
                .unwrap();
            let alerts = p.api("/api/v1/alerts").unwrap()["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            failing.iter().all(|f| {
                alerts.iter().any(|a| {
                    a["labels"]["alertname"] == "RotcheckCheckFailing"
                        && a["labels"]["suite"] == "lab"
                        && a["labels"]["check"] == f["metric"]["check"]
                })
            })
        },
    );

    let d = Dashboard::load();
    for (var, selector, label) in d.variables() {
        let path = format!(
            "/api/v1/label/{label}/values?match[]={}",
            client::encode(&grafana_vars(&selector))
        );
        let values = p
            .api(&path)
            .unwrap_or_else(|e| panic!("variable {var}: {e}"));
        assert!(
            !values.as_array().unwrap().is_empty(),
            "variable {var} has no values"
        );
    }
    let mut empty = Vec::new();
    deadline_loop("dashboard panels with data", secs(20), || {
        empty.clear();
        for (title, expr) in d.exprs() {
            let result = p
                .query(&grafana_vars(&expr))
                .unwrap_or_else(|e| panic!("{title}: {expr}: {e}"));
            if result.is_empty() && MUST_HAVE_DATA.contains(&title.as_str()) {
                empty.push(title);
            }
        }
        empty.is_empty()
    });
    assert!(serve.stop().success());
    assert!(lab_suite.stop().success());
}

#[test]
fn serial_helper_matches_rotcheck_formatting() {
    let pki = LabPki::generate().unwrap();
    let leaf = pki.issue(&LeafSpec::server("x.test", &["x.test"])).unwrap();
    let s = serial_of(&leaf);
    assert!(
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn serve_revokes_the_vault_tokens_its_rounds_obtain() {
    let env = Env::start(false);
    let serve = Serve::start(&env.lab.files().suite, &["--interval", "1s"]);
    serve.wait_ready(secs(30));
    let issued_at_ready = env.lab.tokens_issued();
    std::thread::sleep(secs(4));
    let (issued, live) = (env.lab.tokens_issued(), env.lab.tokens_live());
    assert!(
        issued >= issued_at_ready + 3,
        "rounds ran: {issued_at_ready} -> {issued} tokens"
    );
    // Only the logins of checks running right now may hold a token; none may pile up.
    assert!(
        live <= 4,
        "{live} live tokens after {issued} logins: tokens are not revoked"
    );
}

/// A check that fails until a file appears (printing a token-shaped secret on stderr), one
/// that passes, and one whose first run takes 3 s.
const EXPLAIN_SUITE: &str = r#"
suite: explain
defaults: { interval: 1s, timeout: 10s }
checks:
  - name: marker
    command: [sh, -c, 'echo "login token hvs.ABCDEFGHIJKLMNOPQRSTUVWX" >&2; test -e {marker}']
  - name: steady
    command: ["true"]
  - name: slow
    interval: 1h
    command: [sleep, "3"]
"#;

fn explain_suite(dir: &std::path::Path, marker: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("explain.yaml");
    let text = EXPLAIN_SUITE.replace("{marker}", &marker.display().to_string());
    std::fs::write(&path, text).unwrap();
    path
}

fn labels<'a>(check: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("suite", "explain"), ("check", check)];
    v.extend_from_slice(more);
    v
}

/// `/status` parsed, with its `X-Rotcheck-Pending` count.
fn status(serve: &Serve) -> (Value, usize) {
    let r = serve.get("/status");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let pending = r.header("x-rotcheck-pending").unwrap().parse().unwrap();
    (serde_json::from_str(&r.body).unwrap(), pending)
}

fn status_of<'a>(report: &'a Value, check: &str) -> Option<&'a Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == check)
}

#[test]
fn serve_explains_failures_in_status_debug_probes_logs_and_a_reason_gauge() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let serve = Serve::start(&explain_suite(dir.path(), &marker), &[]);
    let reason = labels("marker", &[("reason", "exit")]);
    let m = serve.wait_metrics("marker's failure reason", secs(15), |m| {
        m.value("rotcheck_check_failure_reason", &reason) == Some(1.0)
    });
    assert_eq!(m.find("rotcheck_check_failure_reason", &[]).len(), 1);
    assert_eq!(m.types["rotcheck_check_failure_reason"], "gauge");

    // /status: the gate's JSON; the slow check has not finished its first run and is left out.
    let (report, pending) = status(&serve);
    assert_eq!(report["suite"], "explain");
    assert_eq!(report["status"], "fail");
    let failing = status_of(&report, "marker").unwrap();
    assert_eq!(failing["assertions"][0]["reason"], "exit");
    assert!(status_of(&report, "slow").is_none(), "{report:#}");
    assert_eq!(pending, 1);
    assert!(
        !report.to_string().contains("ABCDEFGH"),
        "secret in /status"
    );

    let line = "check=marker from=pending to=fail reason=exit";
    serve.wait_log(line, secs(5));
    let logged = serve.log().into_iter().find(|l| l.contains(line)).unwrap();
    assert!(logged.starts_with("ts="), "{logged}");
    assert!(logged.contains("level=warn event=status_change suite=explain"));
    assert!(logged.contains("hvs.[redacted]"), "{logged}");
    assert!(!logged.contains("ABCDEFGH"), "secret in the log: {logged}");
    assert!(
        !serve.log().iter().any(|l| l.contains("check=steady")),
        "a first pass is no change"
    );

    // /probe?debug=true: the human report of a fresh run, passing assertions too.
    let r = serve.get("/probe?check=marker&debug=true");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(r.body.starts_with("FAIL   marker"), "{}", r.body);
    assert!(r.body.contains("fail exit (exit): "), "{}", r.body);
    assert!(r.body.contains("hvs.[redacted]") && !r.body.contains("ABCDEFGH"));
    assert!(r.body.contains("1 check: 0 pass, 0 warn, 1 fail, 0 error"));
    let ok = serve.get("/probe?check=steady&debug=true").body;
    assert!(ok.contains("pass exit (-): "), "{ok}");
    let plain = serve.get("/probe?check=marker");
    assert!(plain
        .header("content-type")
        .unwrap()
        .contains("version=0.0.4"));
    let m = Metrics::parse(&plain.body);
    assert_eq!(m.value("rotcheck_check_failure_reason", &reason), Some(1.0));
    let bad = serve.get("/probe?check=marker&debug=maybe");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("expected debug=true or debug=false"));

    // The file appears: the change is logged, the gauge goes, /status shows every check.
    std::fs::write(&marker, "").unwrap();
    serve.wait_log("check=marker from=fail to=pass reason=ok", secs(10));
    serve.wait_metrics("marker passing", secs(10), |m| {
        m.find("rotcheck_check_failure_reason", &[]).is_empty()
            && m.value("rotcheck_check_success", &labels("marker", &[])) == Some(1.0)
    });
    serve.wait_ready(secs(10));
    let (report, pending) = status(&serve);
    assert_eq!((report["status"].as_str(), pending), (Some("pass"), 0));
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["marker", "steady", "slow"]);
    assert!(serve.stop().success());
}

#[test]
fn status_changes_log_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let suite = explain_suite(dir.path(), &dir.path().join("never"));
    let serve = Serve::start(&suite, &["--log-format", "json"]);
    serve.wait_log("\"event\":\"status_change\"", secs(15));
    let line = serve
        .log()
        .into_iter()
        .find(|l| l.contains("status_change"))
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["check"], "marker");
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str()),
        (Some("pending"), Some("fail"))
    );
    assert_eq!(v["reason"], "exit");
    assert_eq!(v["level"], "warn");
    assert!(v["msg"].as_str().unwrap().contains("hvs.[redacted]"), "{v}");
    assert!(!line.contains("ABCDEFGH"));
    assert!(v["ts"].as_str().unwrap().ends_with('Z'));
    assert!(serve.stop().success());
}
