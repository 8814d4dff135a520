//! Conformance of the chain and name logic (`expect::chain::validate`, called directly) with
//! x509-limbo (`ROTCHECK_LIMBO`: a limbo.json-format file) and badssl scenarios
//! (`ROTCHECK_BADSSL`: a folder of `<scenario>/{roots,chain,leaf}.pem` + `expect.json`).
//! Each test prints one line and returns when its variable is unset.
//!
//! limbo: a case is supported unless it is a CLIENT case, has a feature rotcheck does not
//! implement, needs an EKU other than serverAuth, or names an RFC 822 peer. Not implemented:
//! `has-crl` (no revocation), `max-chain-depth`, `pedantic-*`, `name-constraint-dn` and
//! `has-policy-constraints` (rustls-webpki processes neither directoryName constraints nor
//! certificate policies), and `rfc5280-incompatible-with-webpki` (rotcheck follows Web PKI). limbo's `trusted_certs` are trust anchors whatever
//! they are, which is rotcheck's `partial` mode; `untrusted_intermediates` is the pool.
//!
//! badssl: validated the way `chain: valid` does (self-signed roots of roots.pem are the
//! anchors). expect.json reasons map onto rotcheck's chain reasons:
//!
//! | badssl reason                      | ChainReason       |
//! |------------------------------------|-------------------|
//! | `expired`                          | `expired`         |
//! | `hostname-mismatch ...`            | `name_mismatch`   |
//! | `untrusted-self-signed`            | `self_signed`     |
//! | `unknown-issuer ...`               | `unknown_issuer`  |
//! | `weak-signature ...`, `weak-key ...` | `weak_algorithm` |
//!
//! One deliberate difference: a lone leaf (not self-issued) whose issuer is neither presented
//! nor in the CA file is `incomplete_chain` for rotcheck, whose message names the missing
//! intermediate first and a wrong CA file second. With only the leaf nothing tells a missing
//! intermediate from a foreign issuer; in rotation the missing intermediate is the usual
//! cause, so badssl's `unknown-issuer` scenarios that present only a leaf (incomplete-chain,
//! superfish, edellroot, ...) count as agreeing when rotcheck says `incomplete_chain`. With
//! `../badssl-roots/ca-intermediate.pem` added to the CA file `incomplete-chain` must stay
//! `incomplete_chain` (the intermediate is then found in the CA file), checked too when that
//! folder exists.

mod conformance_data;

use conformance_data::{env_path, pem_file, pems, validation_time};
use rotcheck::expect::chain::{validate, ChainFailure, ValidPath};
use rotcheck::model::ChainReason;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// rustls-webpki refuses DER longer than 64 KiB (so does every rustls client).
const WEBPKI_MAX_DER: usize = 0xFFFF;

fn time(v: &Value) -> UnixTime {
    rotcheck::kinds::tls::unix_time(validation_time(v))
}

fn verdict(r: &Result<ValidPath, ChainFailure>) -> String {
    match r {
        Ok(_) => "SUCCESS".into(),
        Err(f) => format!("FAILURE {} ({})", f.reason.as_str(), f.message),
    }
}

// ---------------------------------------------------------------- limbo

/// limbo features rotcheck does not implement (see the module comment).
const UNSUPPORTED: &[&str] = &[
    "has-crl",
    "max-chain-depth",
    "name-constraint-dn",
    "has-policy-constraints",
    "rfc5280-incompatible-with-webpki",
];

/// Why a limbo case is not run, or None when it is supported.
fn limbo_skip(case: &Value) -> Option<String> {
    if case["validation_kind"] != "SERVER" {
        return Some("client".into());
    }
    let features = case["features"].as_array().cloned().unwrap_or_default();
    if let Some(f) = features
        .iter()
        .filter_map(Value::as_str)
        .find(|f| UNSUPPORTED.contains(f) || f.starts_with("pedantic-"))
    {
        return Some(f.to_string());
    }
    let ekus = case["extended_key_usage"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if ekus.iter().any(|e| e != "serverAuth") {
        return Some("eku".into());
    }
    match case["expected_peer_name"]["kind"].as_str() {
        None | Some("DNS") | Some("IP") => None,
        Some(other) => Some(format!("{other} name")),
    }
}

fn limbo_run(case: &Value) -> Result<ValidPath, ChainFailure> {
    let strings = |k: &str| -> String {
        case[k]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let mut presented = pems(case["peer_certificate"].as_str().unwrap_or_default());
    presented.extend(pems(&strings("untrusted_intermediates")));
    let trusted = pems(&strings("trusted_certs"));
    let name = case["expected_peer_name"]["value"].as_str();
    validate(
        &presented,
        &trusted,
        name,
        time(&case["validation_time"]),
        true,
    )
}

#[test]
fn limbo_agreement() {
    let Some(path) = env_path("ROTCHECK_LIMBO") else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("read the limbo file");
    let doc: Value = serde_json::from_str(&text).expect("limbo JSON");
    let cases = doc["testcases"].as_array().expect("testcases");
    let (mut agree, mut run, mut skipped) = (0usize, 0usize, 0usize);
    for case in cases {
        if limbo_skip(case).is_some() {
            skipped += 1;
            continue;
        }
        run += 1;
        let got = limbo_run(case);
        let expected_ok = case["expected_result"] == "SUCCESS";
        if got.is_ok() == expected_ok {
            agree += 1;
        } else {
            println!(
                "  disagree {}: expected {}, got {}",
                case["id"].as_str().unwrap_or("?"),
                case["expected_result"].as_str().unwrap_or("?"),
                verdict(&got)
            );
        }
    }
    let pct = 100.0 * agree as f64 / run.max(1) as f64;
    println!("limbo: {agree}/{run} supported cases agree ({pct:.1}%), {skipped} skipped");
    assert!(run > 0, "no supported limbo case in {}", path.display());
    assert!(pct >= 98.0, "agreement {pct:.1}% is below 98%");
}

// ---------------------------------------------------------------- badssl

/// The rotcheck reason a badssl expect.json reason stands for.
fn badssl_reason(reason: &str) -> Option<ChainReason> {
    let r = [
        ("expired", ChainReason::Expired),
        ("hostname-mismatch", ChainReason::NameMismatch),
        ("untrusted-self-signed", ChainReason::SelfSigned),
        ("unknown-issuer", ChainReason::UnknownIssuer),
        ("weak-signature", ChainReason::WeakAlgorithm),
        ("weak-key", ChainReason::WeakAlgorithm),
    ];
    r.iter()
        .find(|(prefix, _)| reason == *prefix || reason.starts_with(&format!("{prefix} ")))
        .map(|(_, c)| *c)
}

struct Scenario {
    dir: PathBuf,
    expect: Value,
}

impl Scenario {
    fn presented(&self) -> Vec<CertificateDer<'static>> {
        let mut p = pem_file(&self.dir.join("leaf.pem"));
        p.extend(pem_file(&self.dir.join("chain.pem")));
        p
    }

    fn run(&self, ca: &[CertificateDer<'_>]) -> Result<ValidPath, ChainFailure> {
        validate(
            &self.presented(),
            ca,
            self.expect["peer_name"].as_str(),
            time(&self.expect["validation_time"]),
            false,
        )
    }

    fn roots(&self) -> Vec<CertificateDer<'static>> {
        pem_file(&self.dir.join("roots.pem"))
    }
}

fn scenarios(root: &Path) -> Vec<Scenario> {
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("index.json")).expect("badssl index.json"),
    )
    .expect("index JSON");
    index
        .as_array()
        .expect("index array")
        .iter()
        .map(|e| {
            let dir = root.join(e["dir"].as_str().expect("dir"));
            let expect = serde_json::from_str(
                &std::fs::read_to_string(dir.join("expect.json")).expect("expect.json"),
            )
            .expect("expect JSON");
            Scenario { dir, expect }
        })
        .collect()
}

/// Ok(()) when the verdict matches expect.json (result and, for failures, reason).
fn badssl_check(s: &Scenario) -> Result<(), String> {
    let got = s.run(&s.roots());
    let want = s.expect["result"].as_str().unwrap_or_default();
    match (want, &got) {
        ("SUCCESS", Ok(_)) => Ok(()),
        ("FAILURE", Err(f)) => {
            let reason = s.expect["reason"].as_str().unwrap_or_default();
            match badssl_reason(reason) {
                Some(r) if r == f.reason => Ok(()),
                Some(ChainReason::UnknownIssuer)
                    if f.reason == ChainReason::IncompleteChain && lone_leaf(s) =>
                {
                    Ok(())
                }
                Some(r) => Err(format!("expected {}, got {}", r.as_str(), verdict(&got))),
                None => Err(format!("unmapped badssl reason {reason:?}")),
            }
        }
        _ => Err(format!("expected {want}, got {}", verdict(&got))),
    }
}

/// Only a leaf, not self-issued, was presented.
fn lone_leaf(s: &Scenario) -> bool {
    let p = s.presented();
    p.len() == 1 && !rotcheck::certs::facts(&p[0], "leaf").self_signed
}

fn oversized(s: &Scenario) -> Option<usize> {
    s.presented()
        .iter()
        .map(|c| c.as_ref().len())
        .find(|n| *n > WEBPKI_MAX_DER)
}

#[test]
fn badssl_verdicts_and_reasons() {
    let Some(root) = env_path("ROTCHECK_BADSSL") else {
        return;
    };
    let (mut agree, mut run, mut skipped, mut wrong) = (0, 0, 0, vec![]);
    for s in scenarios(&root) {
        let id = s.expect["id"].as_str().unwrap_or("?").to_string();
        if let Some(n) = oversized(&s) {
            println!("  skipped {id}: a certificate is {n} bytes, over the 64 KiB rustls-webpki (and rustls) accept");
            skipped += 1;
            continue;
        }
        run += 1;
        match badssl_check(&s) {
            Ok(()) => agree += 1,
            Err(e) => wrong.push(format!("{id}: {e}")),
        }
    }
    println!("badssl: {agree}/{run} scenarios agree (result and reason), {skipped} skipped");
    assert!(run > 0, "no badssl scenario in {}", root.display());
    assert!(wrong.is_empty(), "disagreements:\n{}", wrong.join("\n"));
}

#[test]
fn badssl_incomplete_chain_is_diagnosed_with_the_intermediate_in_the_ca_file() {
    let Some(root) = env_path("ROTCHECK_BADSSL") else {
        return;
    };
    let extra = root.join("../badssl-roots/ca-intermediate.pem");
    if !extra.exists() {
        println!("skipped: {} not found", extra.display());
        return;
    }
    let s = scenarios(&root)
        .into_iter()
        .find(|s| s.dir.ends_with("incomplete-chain"))
        .expect("incomplete-chain scenario");
    let mut ca = s.roots();
    ca.extend(pem_file(&extra));
    let got = s.run(&ca);
    assert_eq!(
        got.as_ref().err().map(|f| f.reason),
        Some(ChainReason::IncompleteChain),
        "{}",
        verdict(&got)
    );
}
