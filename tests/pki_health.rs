//! `vault_pki_health` side by side with `bao pki health-check` on a real OpenBao dev server:
//! mounts in several states (fresh, expiring, intermediate, roles, leaves issued by the root,
//! auto-tidy, stale CRL, ACME, configured thresholds, a token with too few rights), each
//! checked by both tools with the same token and configuration; every health check must get
//! the same level and verdict from both. Prints the agreement table.

mod common;

use common::bao::{self, DevServer, DEV_ROOT_TOKEN};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
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

/// A writes below a mount: the path and its fields (none: a read, e.g. `crl/rotate`).
type Step = (&'static str, &'static [&'static str]);

/// Mounts made of a root (with its TTL) and a few writes below them.
const SIMPLE: &[(&str, &str, &[Step])] = &[
    ("fresh", "87600h", &[]),
    ("expiring", "2400h", &[]),
    (
        "roles",
        "87600h",
        &[
            (
                "roles/web",
                &["allowed_domains=example.com", "allow_localhost=true"],
            ),
            (
                "roles/globs",
                &[
                    "allowed_domains=*.example.com",
                    "allow_glob_domains=true",
                    "allow_wildcard_certificates=true",
                    "no_store=true",
                    "allow_localhost=false",
                ],
            ),
        ],
    ),
    (
        "nostore",
        "87600h",
        &[(
            "roles/quiet",
            &[
                "allowed_domains=example.com",
                "allow_localhost=false",
                "no_store=true",
            ],
        )],
    ),
    (
        "leafy",
        "87600h",
        &[
            (
                "roles/web",
                &["allowed_domains=example.com", "allow_subdomains=true"],
            ),
            ("issue/web", &["common_name=a.example.com", "ttl=1h"]),
        ],
    ),
    (
        "slowtidy",
        "87600h",
        &[(
            "config/auto-tidy",
            &[
                "enabled=true",
                "interval_duration=192h",
                "pause_duration=500ms",
                "tidy_cert_store=true",
            ],
        )],
    ),
    (
        "stalecrl",
        "87600h",
        &[("config/crl", &["expiry=1m"]), ("crl/rotate", &[])],
    ),
    (
        "acme",
        "87600h",
        // A cluster path that is not https: ACME is on but cannot work.
        &[
            ("config/cluster", &["path=http://127.0.0.1:9/v1/acme"]),
            ("config/acme", &["enabled=true"]),
        ],
    ),
    (
        "tight",
        "87600h",
        &[
            (
                "roles/web",
                &["allowed_domains=example.com", "allow_bare_domains=true"],
            ),
            ("issue/web", &["common_name=example.com", "ttl=1h"]),
        ],
    ),
    (
        "limited",
        "87600h",
        &[("roles/web", &["allowed_domains=example.com"])],
    ),
];

/// The health-check configuration of a mount (the same for both tools).
fn config(mount: &str) -> Value {
    match mount {
        // 2% of a one-minute CRL: stale after 1.2 s.
        "stalecrl" => {
            json!({"crl_validity_period": {"crl_expiry_pct_critical": 2, "delta_crl_expiry_pct_critical": 2}})
        }
        "tight" => json!({
            "too_many_certs": {"count_warning": 1, "count_critical": 3},
            "hardware_backed_root": {"enabled": true},
            "tidy_last_run": {"enabled": false},
            "ca_validity_period": {"root_expiry_informational": "3660d"},
        }),
        _ => json!({}),
    }
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

fn step(dev: &DevServer, mount: &str, (path, fields): Step) {
    let path = format!("{mount}/{path}");
    let verb = if fields.is_empty() { "read" } else { "write" };
    let mut args = vec![verb, path.as_str()];
    args.extend_from_slice(fields);
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
    for (mount, ttl, steps) in SIMPLE {
        pki(dev, mount, ttl);
        steps.iter().for_each(|s| step(dev, mount, *s));
        let mut state = State::new(mount);
        state.config = config(mount);
        out.push(state);
    }
    bao::two_tier_pki(dev, "tier-root", "tier-int", false);
    out.push(State::new("tier-int"));
    out.push(tidied(dev));
    out.push(tuned(dev));
    limit(dev, out.iter_mut().find(|s| s.mount == "limited").unwrap());
    out
}

/// Auto-tidy on, and a tidy that has finished.
fn tidied(dev: &DevServer) -> State {
    pki(dev, "tidied", "87600h");
    let settings: &[&str] = &[
        "enabled=true",
        "interval_duration=1h",
        "tidy_cert_store=true",
    ];
    step(dev, "tidied", ("config/auto-tidy", settings));
    tidy(dev, "tidied");
    State::new("tidied")
}

/// Headers tuned for If-Modified-Since and ACME, and a working ACME directory.
fn tuned(dev: &DevServer) -> State {
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
    let path = format!("path={}/v1/tuned", dev.url());
    dev.must(&["write", "tuned/config/cluster", &path]);
    dev.must(&["write", "tuned/config/acme", "enabled=true"]);
    State::new("tuned")
}

/// `limited` is checked with a token that may read issuers and certificates but nothing else.
fn limit(dev: &DevServer, s: &mut State) {
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
    s.token = token.trim().to_string();
}

/// One health check of one mount: bao's level, rotcheck's level and status.
#[derive(Debug)]
struct Row {
    mount: &'static str,
    check: String,
    bao: String,
    ours: String,
    status: String,
}

impl Row {
    /// Same level, and rotcheck's status is the level's documented mapping.
    fn agrees(&self) -> bool {
        self.bao == self.ours && (self.ours == "-" || verdict(&self.bao) == self.status)
    }
}

/// Both tools on one state, a row per health check either of them ran.
fn compare(dev: &DevServer, s: &State) -> Vec<Row> {
    let theirs = bao_verdicts(dev, s);
    let ours = rotcheck_verdicts(dev, s);
    let names: BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    let none = || ("-".to_string(), "-".to_string());
    names
        .into_iter()
        .map(|name| {
            let (level, status) = ours.get(name).cloned().unwrap_or_else(none);
            Row {
                mount: s.mount,
                check: name.clone(),
                bao: theirs.get(name).cloned().unwrap_or_else(|| "-".into()),
                ours: level,
                status,
            }
        })
        .collect()
}

fn print(rows: &[Row]) {
    let head = ("mount", "health check", "bao", "rotcheck", "status");
    println!(
        "{:<10} {:<27} {:<25} {:<25} {:<6} agree",
        head.0, head.1, head.2, head.3, head.4
    );
    for r in rows {
        let agree = if r.agrees() { "yes" } else { "NO" };
        println!(
            "{:<10} {:<27} {:<25} {:<25} {:<6} {agree}",
            r.mount, r.check, r.bao, r.ours, r.status
        );
    }
}

#[test]
fn vault_pki_health_agrees_with_bao_pki_health_check() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    let states = states(&dev);
    // Lets the one-minute CRL of `stalecrl` pass 2% of its validity.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let rows: Vec<Row> = states.iter().flat_map(|s| compare(&dev, s)).collect();
    print(&rows);
    let disagree: Vec<&Row> = rows.iter().filter(|r| !r.agrees()).collect();
    assert!(disagree.is_empty(), "disagreements: {disagree:#?}");
    // The states exercise every level the server can produce here.
    let seen: BTreeSet<&str> = rows.iter().map(|r| r.bao.as_str()).collect();
    for level in &LEVELS[..5] {
        assert!(seen.contains(level), "no state produced {level}: {seen:?}");
    }
    assert!(seen.contains("insufficient_permissions"), "{seen:?}");
}
