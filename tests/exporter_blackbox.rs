//! `serve --compat blackbox` against the real prometheus-blackbox-exporter: both probe the same
//! TLS listener (the lab's, and a refused port) and their blackbox series must agree; then a
//! real Prometheus scrapes rotcheck's `/probe` the blackbox way and fires blackbox-style alert
//! rules from those series. Needs the Debian packages `prometheus-blackbox-exporter` and
//! `prometheus` (the test fails without them under `ROTCHECK_REQUIRE_TOOLS`).

mod exporter_support;

use exporter_support::client::{self, Conn};
use exporter_support::prom::{self, Metrics, Prometheus};
use exporter_support::serve::Serve;
use exporter_support::{deadline_loop, free_port, Env};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SUITE: &str = r#"
suite: compat
defaults: { interval: 60s, timeout: 3s }
checks:
  - name: vault-listener
    tls: { addr: "{lab}", server_name: {sni}, ca_file: {ca} }
    expect: { chain: valid, names: [{sni}] }
  - name: refused
    tls: { addr: "{refused}", server_name: {sni}, ca_file: {ca} }
    expect: { chain: valid }
"#;

/// The series `--compat blackbox` promises, compared with the real exporter's.
const COMPARED: [&str; 4] = [
    "probe_success",
    "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "probe_tls_version_info",
];

/// prometheus-blackbox-exporter with a `tls` module (tcp prober, TLS, the lab's CA and name).
struct Blackbox {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Blackbox {
    fn start(env: &Env) -> Blackbox {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("blackbox.yml");
        let text = format!(
            "modules:\n  tls:\n    prober: tcp\n    timeout: 3s\n    tcp:\n      tls: true\n      tls_config:\n        ca_file: {}\n        server_name: {}\n",
            env.ca(),
            env.lab.server_name()
        );
        std::fs::write(&config, text).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new("prometheus-blackbox-exporter")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bb = Blackbox {
            child,
            addr,
            _dir: dir,
        };
        deadline_loop("blackbox_exporter up", Duration::from_secs(20), || {
            client::request(addr, &Conn::default(), "GET", "/-/healthy", &[]).is_ok()
        });
        bb
    }

    fn probe(&self, target: &str) -> Metrics {
        let path = format!("/probe?module=tls&target={}", client::encode(target));
        let r = client::request(self.addr, &Conn::default(), "GET", &path, &[]).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        Metrics::parse(&r.body)
    }
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Each compared family as (labels, value) pairs, sorted.
fn compared(m: &Metrics) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = m
        .samples
        .iter()
        .filter(|s| COMPARED.contains(&s.name.as_str()))
        .map(|s| {
            (
                s.name.clone(),
                format!("{:?}", s.labels),
                s.value.to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn blackbox_series_match_the_real_blackbox_exporter() {
    if prom::skip_without(&["prometheus-blackbox-exporter"]) {
        return;
    }
    let env = Env::start(false);
    let suite = env.write_suite("compat.yaml", SUITE);
    let serve = Serve::start(&suite, &["--compat", "blackbox"]);
    let bb = Blackbox::start(&env);
    let ours = Metrics::parse(&serve.get("/probe?check=vault-listener").body);
    let theirs = bb.probe(&env.lab.addr().to_string());
    assert_eq!(theirs.value("probe_success", &[]), Some(1.0), "{theirs:?}");
    assert_eq!(compared(&ours), compared(&theirs));
    assert!(ours.value("probe_duration_seconds", &[]).unwrap() > 0.0);
    let ours = Metrics::parse(&serve.get("/probe?check=refused").body);
    let theirs = bb.probe(&env.refused.to_string());
    assert_eq!(theirs.value("probe_success", &[]), Some(0.0));
    assert_eq!(compared(&ours), compared(&theirs));
    // Without the flag, /probe writes rotcheck's series only.
    let plain = Serve::start(&suite, &[]);
    let body = plain.get("/probe?check=vault-listener").body;
    assert!(!body.contains("probe_success"), "{body}");
    assert!(body.contains("rotcheck_check_success{"));
}

/// Rules people run against blackbox_exporter (the usual expiry and failure alerts).
const BLACKBOX_RULES: &str = r#"
groups:
  - name: blackbox
    rules:
      - alert: BlackboxProbeFailed
        expr: probe_success == 0
      - alert: BlackboxSslCertificateWillExpireSoon
        expr: round((last_over_time(probe_ssl_earliest_cert_expiry[10m]) - time()) / 86400, 0.1) < 3650
      - alert: BlackboxSslChainExpiresSoon
        expr: probe_ssl_last_chain_expiry_timestamp_seconds - time() < 86400 * 3650
      - alert: BlackboxTlsOutdated
        expr: probe_tls_version_info{version=~"TLS 1\\.[01]"} == 1
"#;

fn prometheus_config(serve: SocketAddr, rules: &std::path::Path) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files: ['{}']\n\
         scrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n\
         \x20   static_configs:\n      - targets: [vault-listener, refused]\n\
         \x20   relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_check\n\
         \x20     - source_labels: [__param_check]\n        target_label: instance\n\
         \x20     - target_label: __address__\n        replacement: '{serve}'\n",
        rules.display()
    )
}

/// The instances an alert fires for.
fn firing(p: &Prometheus, alert: &str) -> Vec<String> {
    let data = p.api("/api/v1/alerts").unwrap_or_default();
    let alerts = data["alerts"].as_array().cloned().unwrap_or_default();
    let mut v: Vec<String> = alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == alert && a["state"] == "firing")
        .filter_map(|a| a["labels"]["instance"].as_str().map(String::from))
        .collect();
    v.sort();
    v
}

#[test]
fn blackbox_style_rules_fire_in_a_real_prometheus() {
    if prom::skip_without(&["prometheus", "promtool"]) {
        return;
    }
    let env = Env::start(false);
    let suite = env.write_suite("compat.yaml", SUITE);
    let serve = Serve::start(&suite, &["--compat", "blackbox"]);
    let rules = env.dir.path().join("blackbox.rules.yml");
    std::fs::write(&rules, BLACKBOX_RULES).unwrap();
    let (ok, said) = prom::run_tool(
        "promtool",
        &["check", "rules", &rules.display().to_string()],
        env.dir.path(),
    );
    assert!(ok, "{said}");
    let p = Prometheus::start_with(&prometheus_config(serve.addr, &rules));
    deadline_loop("blackbox-style alerts", Duration::from_secs(40), || {
        firing(&p, "BlackboxProbeFailed") == ["refused"]
            && firing(&p, "BlackboxSslCertificateWillExpireSoon") == ["vault-listener"]
            && firing(&p, "BlackboxSslChainExpiresSoon") == ["vault-listener"]
    });
    assert!(firing(&p, "BlackboxTlsOutdated").is_empty());
    let up = p.query("up{job=\"blackbox\"} == 1").unwrap();
    assert_eq!(up.len(), 2, "both probes scraped: {up:?}");
}
