//! `vault_pki_health` side by side with `bao pki health-check` on a real OpenBao dev server:
//! mounts in several states (fresh, expiring, intermediate, roles, leaves issued by the root,
//! auto-tidy, stale CRL, ACME, configured thresholds, a token with too few rights), each
//! checked by both tools with the same token and configuration; every health check must get
//! the same level and verdict from both. Prints the agreement table.

mod common;

use common::bao::{self, DevServer, DEV_ROOT_TOKEN};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;

/// The original's levels, in its order (later is worse).
const LEVELS: &[&str] = &[
    "not_applicable",
    "ok",
    "informational",
    "warning",
    "critical",
    "invalid_version",
    "insufficient_permissions",
];

/// The documented mapping of a level onto rotcheck's statuses.
fn verdict(level: &str) -> &'static str {
    match level {
        "critical" => "fail",
        "warning" | "invalid_version" | "insufficient_permissions" => "warn",
        _ => "pass",
    }
}

fn rank(status: &str) -> usize {
    ["pass", "warn", "fail"]
        .iter()
        .position(|s| *s == status)
        .unwrap()
}

/// The worst of one health check's findings (by verdict, then the original's order).
fn worst(findings: &[Value]) -> String {
    let levels = findings.iter().map(|f| f["status"].as_str().unwrap());
    let key = |l: &&str| (rank(verdict(l)), LEVELS.iter().position(|x| x == l));
    levels
        .max_by_key(key)
        .unwrap_or("not_applicable")
        .to_string()
}

/// One mount state: the mount, a health-check configuration (as in `-health-config`), the token.
struct State {
    mount: &'static str,
    config: Value,
    token: String,
}

impl State {
    fn new(mount: &'static str) -> State {
        State {
            mount,
            config: json!({}),
            token: DEV_ROOT_TOKEN.into(),
        }
    }
}

/// `bao pki health-check -format=json [-config] <mount>`: health check → worst level.
fn bao_verdicts(dev: &DevServer, s: &State) -> BTreeMap<String, String> {
    let config = dev.dir.path().join(format!("{}.json", s.mount));
    std::fs::write(&config, s.config.to_string()).unwrap();
    let out = Command::new(&dev.bin)
        .args(["pki", "health-check", "-format=json"])
        .arg(format!("-health-config={}", config.display()))
        .arg(s.mount)
        .env("BAO_ADDR", dev.url())
        .env("BAO_CACERT", dev.ca())
        .env("BAO_TOKEN", &s.token)
        .output()
        .expect("run bao pki health-check");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: bao's output is not JSON ({e}): {}",
            s.mount,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let map = v.as_object().expect("an object of health checks");
    map.iter()
        .map(|(k, f)| (k.clone(), worst(f.as_array().unwrap())))
        .collect()
}

/// rotcheck's `vault_pki_health` with the same configuration as `expect:`: health check →
/// (level from the message, status).
fn rotcheck_verdicts(dev: &DevServer, s: &State) -> BTreeMap<String, (String, String)> {
    let suite = format!(
        "suite: parity\nchecks:\n  - name: health\n    vault_pki_health: {{ mount: {} }}\n    expect: {}\n",
        s.mount, s.config
    );
    let path = dev.dir.path().join(format!("{}.yaml", s.mount));
    std::fs::write(&path, suite).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(["gate", "--format", "json", "-c"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .env("BAO_ADDR", dev.url())
        .env("BAO_CACERT", dev.ca())
        .env("BAO_TLS_SERVER_NAME", "localhost")
        .env("BAO_TOKEN", &s.token)
        .output()
        .expect("run rotcheck");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "gate output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let check = &v["checks"][0];
    let assertions = check["assertions"].as_array().expect("assertions");
    let mount = assertions.iter().find(|a| a["name"] == "mount");
    assert_eq!(mount.unwrap()["status"], "pass", "{}: {check:#}", s.mount);
    assertions
        .iter()
        .filter(|a| a["name"] != "mount")
        .map(|a| {
            let msg = a["message"].as_str().unwrap();
            let level = msg.split(':').next().unwrap().to_string();
            let status = a["status"].as_str().unwrap().to_string();
            (a["name"].as_str().unwrap().to_string(), (level, status))
        })
        .collect()
}

fn pki(dev: &DevServer, mount: &str, ttl: &str) {
    dev.must(&["secrets", "enable", &format!("-path={mount}"), "pki"]);
    dev.must(&["secrets", "tune", "-max-lease-ttl=87600h", mount]);
    let generate = format!("{mount}/root/generate/internal");
    dev.must(&[
        "write",
        &generate,
        "common_name=Root",
        &format!("ttl={ttl}"),
    ]);
}

fn role(dev: &DevServer, mount: &str, name: &str, fields: &[&str]) {
    let mut args = vec!["write".to_string(), format!("{mount}/roles/{name}")];
    args.extend(fields.iter().map(|f| f.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dev.must(&args);
}

/// Runs tidy and waits until it has finished.
fn tidy(dev: &DevServer, mount: &str) {
    dev.must(&["write", &format!("{mount}/tidy"), "tidy_cert_store=true"]);
    for _ in 0..100 {
        let status = dev.read_json(&format!("{mount}/tidy-status"));
        if status["state"] == "Finished" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("tidy on {mount} did not finish");
}

fn states(dev: &DevServer) -> Vec<State> {
    let mut out = vec![];
    pki(dev, "fresh", "87600h");
    out.push(State::new("fresh"));

    pki(dev, "expiring", "2400h");
    out.push(State::new("expiring"));

    bao::two_tier_pki(dev, "tier-root", "tier-int", false);
    out.push(State::new("tier-int"));

    pki(dev, "roles", "87600h");
    role(
        dev,
        "roles",
        "web",
        &["allowed_domains=example.com", "allow_localhost=true"],
    );
    role(
        dev,
        "roles",
        "globs",
        &[
            "allowed_domains=*.example.com",
            "allow_glob_domains=true",
            "allow_wildcard_certificates=true",
            "no_store=true",
            "allow_localhost=false",
        ],
    );
    out.push(State::new("roles"));

    pki(dev, "nostore", "87600h");
    role(
        dev,
        "nostore",
        "quiet",
        &[
            "allowed_domains=example.com",
            "allow_localhost=false",
            "no_store=true",
        ],
    );
    out.push(State::new("nostore"));

    pki(dev, "leafy", "87600h");
    role(
        dev,
        "leafy",
        "web",
        &["allowed_domains=example.com", "allow_subdomains=true"],
    );
    dev.must(&[
        "write",
        "leafy/issue/web",
        "common_name=a.example.com",
        "ttl=1h",
    ]);
    out.push(State::new("leafy"));

    pki(dev, "tidied", "87600h");
    dev.must(&[
        "write",
        "tidied/config/auto-tidy",
        "enabled=true",
        "interval_duration=1h",
        "tidy_cert_store=true",
    ]);
    tidy(dev, "tidied");
    out.push(State::new("tidied"));

    pki(dev, "slowtidy", "87600h");
    dev.must(&[
        "write",
        "slowtidy/config/auto-tidy",
        "enabled=true",
        "interval_duration=192h",
        "pause_duration=500ms",
        "tidy_cert_store=true",
    ]);
    out.push(State::new("slowtidy"));

    pki(dev, "stalecrl", "87600h");
    dev.must(&["write", "stalecrl/config/crl", "expiry=1m"]);
    dev.must(&["read", "stalecrl/crl/rotate"]);
    let mut stale = State::new("stalecrl");
    stale.config = json!({"crl_validity_period": {"crl_expiry_pct_critical": 2, "delta_crl_expiry_pct_critical": 2}});
    out.push(stale);

    pki(dev, "acme", "87600h");
    // A cluster path that is not https: ACME is on but cannot work.
    dev.must(&[
        "write",
        "acme/config/cluster",
        "path=http://127.0.0.1:9/v1/acme",
    ]);
    dev.must(&["write", "acme/config/acme", "enabled=true"]);
    out.push(State::new("acme"));

    pki(dev, "tuned", "87600h");
    dev.must(&[
        "secrets",
        "tune",
        "-passthrough-request-headers=If-Modified-Since",
        "-allowed-response-headers=Last-Modified",
        "-allowed-response-headers=Replay-Nonce",
        "-allowed-response-headers=Link",
        "-allowed-response-headers=Location",
        "tuned",
    ]);
    dev.must(&[
        "write",
        "tuned/config/cluster",
        &format!("path={}/v1/tuned", dev.url()),
    ]);
    dev.must(&["write", "tuned/config/acme", "enabled=true"]);
    out.push(State::new("tuned"));

    pki(dev, "tight", "87600h");
    role(
        dev,
        "tight",
        "web",
        &["allowed_domains=example.com", "allow_bare_domains=true"],
    );
    dev.must(&[
        "write",
        "tight/issue/web",
        "common_name=example.com",
        "ttl=1h",
    ]);
    let mut tight = State::new("tight");
    tight.config = json!({
        "too_many_certs": {"count_warning": 1, "count_critical": 3},
        "hardware_backed_root": {"enabled": true},
        "tidy_last_run": {"enabled": false},
        "ca_validity_period": {"root_expiry_informational": "3660d"},
    });
    out.push(tight);

    pki(dev, "limited", "87600h");
    role(dev, "limited", "web", &["allowed_domains=example.com"]);
    out.push(limited(dev));
    out
}

/// A state checked with a token that may read issuers and certificates but nothing else.
fn limited(dev: &DevServer) -> State {
    let policy = "path \"limited/issuer*\" { capabilities = [\"read\", \"list\"] }\npath \"limited/cert*\" { capabilities = [\"read\"] }\n";
    let file = dev.dir.path().join("limited.hcl");
    std::fs::write(&file, policy).unwrap();
    dev.must(&[
        "policy",
        "write",
        "limited-read",
        &file.display().to_string(),
    ]);
    let token = dev.must(&["token", "create", "-field=token", "-policy=limited-read"]);
    let mut s = State::new("limited");
    s.token = token.trim().to_string();
    s
}

#[test]
fn vault_pki_health_agrees_with_bao_pki_health_check() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    let states = states(&dev);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut rows = vec![];
    for s in &states {
        let theirs = bao_verdicts(&dev, s);
        let ours = rotcheck_verdicts(&dev, s);
        let names: Vec<&String> = theirs.keys().chain(ours.keys()).collect();
        for name in names.into_iter().collect::<std::collections::BTreeSet<_>>() {
            let bao_level = theirs.get(name).cloned().unwrap_or_else(|| "-".into());
            let (level, status) = ours.get(name).cloned().unwrap_or(("-".into(), "-".into()));
            let agree = bao_level == level && (level == "-" || verdict(&bao_level) == status);
            rows.push((s.mount, name.clone(), bao_level, level, status, agree));
        }
    }
    println!(
        "{:<10} {:<27} {:<25} {:<25} {:<6} agree",
        "mount", "health check", "bao", "rotcheck", "status"
    );
    for (m, n, b, l, st, ok) in &rows {
        println!(
            "{m:<10} {n:<27} {b:<25} {l:<25} {st:<6} {}",
            if *ok { "yes" } else { "NO" }
        );
    }
    let disagree: Vec<_> = rows.iter().filter(|r| !r.5).collect();
    assert!(disagree.is_empty(), "disagreements: {disagree:#?}");
    let seen: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    for level in [
        "not_applicable",
        "ok",
        "informational",
        "warning",
        "critical",
        "insufficient_permissions",
    ] {
        assert!(seen.contains(level), "no state produced {level}: {seen:?}");
    }
}
