//! `vault_transit_key` against a real OpenBao dev server: a fresh key passes; rotated between
//! runs, its version and `rotcheck_secret_last_rotation_timestamp_seconds` move to the new
//! version's creation time; judged later than `max_age` it is stale; a raised
//! `min_decryption_version` cuts off a version still in use; auto-rotation, type,
//! exportability, a missing key and a missing mount each fail with their reason; the token
//! never appears in any output format.

mod common;

use common::bao::{self, DevServer, DEV_ROOT_TOKEN};
use common::report::{fails, passes};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// Runs `rotcheck gate` on `checks` against the dev server, evaluated at `at`.
fn gate(dev: &DevServer, checks: &str, at: SystemTime, format: &str) -> Output {
    let suite = format!("suite: transit\nchecks:\n{checks}");
    let path = dev.dir.path().join("transit.yaml");
    std::fs::write(&path, suite).unwrap();
    let at = humantime::format_rfc3339_seconds(at).to_string();
    Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(["gate", "--format", format, "--at", &at, "-c"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .env("BAO_ADDR", dev.url())
        .env("BAO_CACERT", dev.ca())
        .env("BAO_TLS_SERVER_NAME", "localhost")
        .env("BAO_TOKEN", DEV_ROOT_TOKEN)
        .output()
        .expect("run rotcheck")
}

fn json(dev: &DevServer, checks: &str, at: SystemTime) -> Value {
    let out = gate(dev, checks, at, "json");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "gate output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The creation time of the key's latest version, as OpenBao reports it (Unix seconds).
fn latest_created(dev: &DevServer, key: &str) -> i64 {
    let d = dev.read_json(&format!("transit/keys/{key}"));
    let latest = d["latest_version"].as_u64().unwrap().to_string();
    d["keys"][&latest]
        .as_i64()
        .expect("a symmetric key's version time")
}

/// The value of the sample `family{...check="CHECK"...}` in a prom report.
fn sample(prom: &str, family: &str, check: &str) -> Option<f64> {
    let label = format!("check=\"{check}\"");
    prom.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(&label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn start() -> Option<DevServer> {
    let bin = bao::server_binary()?;
    let dev = DevServer::start(&bin);
    dev.must(&["secrets", "enable", "transit"]);
    Some(dev)
}

const APP: &str = "  - name: app\n    vault_transit_key: { name: app }\n    expect: { max_age: 1h, decrypts_from: 1, type: aes256-gcm96, exportable: false }\n";

#[test]
fn a_key_rotated_between_runs_moves_its_version_and_last_rotation() {
    let Some(dev) = start() else { return };
    dev.must(&["write", "-f", "transit/keys/app"]);
    let now = SystemTime::now();
    let r = json(&dev, APP, now);
    assert_eq!(r["checks"][0]["status"], "pass", "{r:#}");
    for a in ["key", "max_age", "decrypts_from", "type", "exportable"] {
        passes(&r, a);
    }
    let first = latest_created(&dev, "app");
    let prom = String::from_utf8(gate(&dev, APP, now, "prom").stdout).unwrap();
    let family = "rotcheck_secret_last_rotation_timestamp_seconds";
    assert_eq!(sample(&prom, family, "app"), Some(first as f64), "{prom}");
    assert_eq!(
        sample(&prom, "rotcheck_secret_max_age_seconds", "app"),
        Some(3600.0)
    );

    // The next run, an hour and a half later: stale, with the real creation time.
    let later = now + Duration::from_secs(5400);
    let r = json(&dev, APP, later);
    fails(&r, "max_age", "key_stale");
    let msg = r["checks"][0]["assertions"][1]["message"].as_str().unwrap();
    assert!(
        msg.contains("bao write -f transit/keys/app/rotate"),
        "{msg}"
    );

    // Rotated twice: version 3 is fresh and the series moved to its creation time.
    std::thread::sleep(Duration::from_millis(1100));
    dev.must(&["write", "-f", "transit/keys/app/rotate"]);
    dev.must(&["write", "-f", "transit/keys/app/rotate"]);
    let second = latest_created(&dev, "app");
    assert!(second > first, "{second} > {first}");
    let r = json(&dev, APP, SystemTime::now());
    passes(&r, "max_age");
    let key = r["checks"][0]["assertions"][0]["message"].as_str().unwrap();
    assert!(key.contains("version 3"), "{key}");
    let prom = String::from_utf8(gate(&dev, APP, SystemTime::now(), "prom").stdout).unwrap();
    assert_eq!(sample(&prom, family, "app"), Some(second as f64), "{prom}");

    // Versions 1 and 2 are cut off while version 2's ciphertexts are still in use.
    dev.must(&[
        "write",
        "transit/keys/app/config",
        "min_decryption_version=3",
    ]);
    let floor = APP.replace("decrypts_from: 1", "decrypts_from: 2");
    let r = json(&dev, &floor, SystemTime::now());
    fails(&r, "decrypts_from", "decryption_cut_off");
    assert_eq!(r["checks"][0]["status"], "fail");
    let r = json(
        &dev,
        &APP.replace("decrypts_from: 1", "decrypts_from: 3"),
        SystemTime::now(),
    );
    passes(&r, "decrypts_from");
}

#[test]
fn auto_rotation_type_exportability_and_missing_keys() {
    let Some(dev) = start() else { return };
    dev.must(&["write", "-f", "transit/keys/manual"]);
    dev.must(&[
        "write",
        "transit/keys/signer",
        "type=ed25519",
        "exportable=true",
        "auto_rotate_period=24h",
    ]);
    let checks = "  - name: signer\n    vault_transit_key: { mount: transit, name: signer }\n    expect: { max_age: 1h, auto_rotate_at_most: 48h, type: ed25519, exportable: true }\n";
    let r = json(&dev, checks, SystemTime::now());
    for a in ["max_age", "auto_rotate", "type", "exportable"] {
        passes(&r, a);
    }
    let r = json(&dev, &checks.replace("48h", "12h"), SystemTime::now());
    fails(&r, "auto_rotate", "auto_rotate_too_long");
    let strict = checks.replace(
        "type: ed25519, exportable: true",
        "type: rsa-4096, exportable: false",
    );
    let r = json(&dev, &strict, SystemTime::now());
    fails(&r, "type", "key_type");
    fails(&r, "exportable", "exportable");

    let manual = "  - name: manual\n    vault_transit_key: { name: manual }\n    expect: { auto_rotate_at_most: 30d }\n";
    fails(
        &json(&dev, manual, SystemTime::now()),
        "auto_rotate",
        "auto_rotate_off",
    );
    let gone = manual.replace("name: manual }", "name: retired }");
    fails(&json(&dev, &gone, SystemTime::now()), "key", "key_missing");
    let no_mount = manual.replace("name: manual }", "mount: transit2, name: manual }");
    fails(
        &json(&dev, &no_mount, SystemTime::now()),
        "key",
        "mount_missing",
    );
}

#[test]
fn no_output_format_shows_the_token() {
    let Some(dev) = start() else { return };
    dev.must(&["write", "-f", "transit/keys/app"]);
    let checks = format!("{APP}  - name: gone\n    vault_transit_key: {{ name: gone }}\n");
    for format in ["human", "json", "junit", "tap", "prom"] {
        let out = gate(&dev, &checks, SystemTime::now(), format);
        assert_eq!(out.status.code(), Some(1), "{format}: a missing key fails");
        for text in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(!text.contains(DEV_ROOT_TOKEN), "{format}: {text}");
        }
    }
}
