//! The lab on a real OpenBao passes its own suite: the server `rotcheck-lab up` starts (raft,
//! client certificates required, the seeds' SNI and world) and the `lab.yaml` it renders give
//! `rotcheck gate` nothing to complain about; with the seeded drift, exactly the drift fails.
//!
//! Skips without `bao` on PATH unless ROTCHECK_REQUIRE_BAO is set (scripts/test.sh sets it).

mod common;

use common::bao::server_binary;
use rotcheck_lab::real::{RealConfig, RealLab};
use std::path::PathBuf;
use std::process::{Command, Output};

fn gate(suite: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(["gate", "-c"])
        .arg(suite)
        .args(extra)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_real_openbao_lab_passes_its_suite_and_shows_the_seeded_drift() {
    let Some(bin) = server_binary().filter(|b| b == "bao").map(PathBuf::from) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = RealConfig {
        bin,
        dir: tmp.path().join("lab"),
        listen: "127.0.0.1:0".parse().unwrap(),
        drift: true,
    };
    let lab = RealLab::start(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let suite = lab.files().suite.clone();

    // The seeded drift: app-a's mapping still carries debug-policy; everything else passes.
    let out = gate(&suite, &[]);
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    let failing: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("FAIL"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        failing,
        ["agent-app-a-login", "agent-app-a-mapping"],
        "{report}"
    );

    // The drift repaired with the server's own CLI: the whole suite passes.
    let fixed = Command::new(&cfg.bin)
        .args([
            "write",
            "auth/cert/certs/agent-app-a",
            "token_policies=app-a-issue",
        ])
        .env("BAO_ADDR", lab.url())
        .env("BAO_CACERT", &lab.files().ca_chain)
        .env("BAO_CLIENT_CERT", &lab.files().admin.cert)
        .env("BAO_CLIENT_KEY", &lab.files().admin.key)
        .env("BAO_TLS_SERVER_NAME", rotcheck_lab::world::REAL_SERVER_NAME)
        .env(
            "BAO_TOKEN",
            std::fs::read_to_string(&lab.files().root_token)
                .unwrap()
                .trim(),
        )
        .output()
        .unwrap();
    assert!(fixed.status.success(), "{}", text(&fixed));
    let out = gate(&suite, &[]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("0 fail, 0 error"), "{report}");
}
