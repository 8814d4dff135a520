//! Replays the seed corpora through the fuzz targets as ordinary tests, and checks that the
//! seeds reach the deep paths (a target whose seeds all fail early fuzzes little).

use rotcheck::expect::chain;
use rotcheck::exporter::webconfig::WebConfig;
use rotcheck_fuzz::seeds::{self, Seed};
use rotcheck_fuzz::targets::{self, suite, webconfig};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::path::Path;
use std::time::Duration;

fn all_seeds() -> Vec<Seed> {
    seeds::all(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn seed<'a>(all: &'a [Seed], target: &str, name: &str) -> &'a [u8] {
    let found = all.iter().find(|(t, n, _)| *t == target && n == name);
    &found.unwrap_or_else(|| panic!("no seed {target}/{name}")).2
}

#[test]
fn every_target_has_seeds() {
    let all = all_seeds();
    for (name, _) in targets::ALL {
        let n = all.iter().filter(|(t, _, _)| t == name).count();
        assert!(n >= 3, "target {name} has {n} seeds; expected at least 3");
    }
    let suites = all.iter().filter(|(t, _, _)| *t == "suite").count();
    assert!(
        suites >= 20,
        "expected the repository's suites as seeds, found {suites}"
    );
}

#[test]
fn every_seed_runs_through_every_target() {
    for (_, _, bytes) in all_seeds() {
        for (_, run) in targets::ALL {
            run(&bytes);
        }
    }
}

#[test]
fn the_repository_suites_load() {
    let all = all_seeds();
    for name in ["checks-lab.yaml", "checks-prod.yaml"] {
        let text = std::str::from_utf8(seed(&all, "suite", name)).unwrap();
        assert!(!suite::reads_outside(text), "{name} would be skipped");
        let loaded = rotcheck::suite::load_str(text, Path::new(suite::SUITE_PATH));
        assert!(loaded.is_ok(), "{name}: {:?}", loaded.err());
    }
}

#[test]
fn the_test_pki_verifies() {
    let all = all_seeds();
    let bytes = seed(&all, "certs", "chain");
    let (presented, ca) = rotcheck_fuzz::split_nul(bytes);
    let presented = rotcheck::certs::parse_certs(presented, "presented").unwrap();
    let ca: Vec<CertificateDer<'static>> = rotcheck::certs::parse_certs(ca, "ca").unwrap();
    let now = UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000));
    let path = chain::validate(&presented, &ca, Some("app.example.test"), now, false);
    assert!(path.is_ok(), "{:?}", path.err().map(|e| e.message));
}

#[test]
fn the_tls_web_configs_load() {
    let all = all_seeds();
    for name in ["01", "02", "05"] {
        let text = std::str::from_utf8(seed(&all, "webconfig", name)).unwrap();
        let w = WebConfig::from_text(text, rotcheck_fuzz::scratch::web_config_path());
        let w = w.unwrap_or_else(|e| panic!("web config seed {name}: {e}"));
        assert!(w.tls().is_some(), "seed {name} should serve TLS");
    }
}

#[test]
fn the_state_files_load() {
    for (target, name, bytes) in all_seeds() {
        if target == "state_file" {
            let s = serde_json::from_slice::<rotcheck::rotate::state::PlanState>(&bytes);
            assert!(s.is_ok(), "state seed {name}: {:?}", s.err());
        }
    }
}

#[test]
fn the_suite_target_never_loads_an_env_file_outside_its_missing_folder() {
    assert!(suite::reads_outside(
        "suite: s\nenv_file: /dev/zero\nchecks: []\n"
    ));
    assert!(suite::reads_outside(
        "vars: { d: /dev }\nenv_file: \"${d}/zero\"\nchecks: []\n"
    ));
    assert!(suite::reads_outside("env_file: \"\\x2fdev/zero\"\n"));
    assert!(!suite::reads_outside(
        "suite: s\nenv_file: app.env\nchecks: []\n"
    ));
    assert!(!suite::reads_outside("suite: s\nchecks: []\n"));
}

#[test]
fn the_web_config_target_never_names_a_file_outside_its_folder() {
    let tls = |cert: &str| format!("tls_server_config:\n  cert_file: {cert}\n  key_file: k\n");
    assert!(webconfig::names_outside(&tls("/dev/zero")));
    assert!(webconfig::names_outside(&tls("../../../dev/zero")));
    assert!(webconfig::names_outside(&tls("\"\\x2fdev/zero\"")));
    assert!(webconfig::names_outside(&tls("!!str /dev/zero")));
    // A repeated key makes the generic parse fail; the raw text decides.
    assert!(webconfig::names_outside(
        "basic_auth_users: {a: b, a: c}\ntls_server_config: {cert_file: /dev/zero}\n"
    ));
    assert!(!webconfig::names_outside(&tls("server.crt")));
}

#[test]
fn the_vault_seeds_include_errors_and_a_token() {
    let all = all_seeds();
    let body = seed(&all, "vault_body", "00");
    assert_eq!(u16::from_be_bytes([body[0], body[1]]), 403);
    let r = rotcheck::vault::client::reply("GET", "p", 403, &body[2..], None);
    assert_eq!(r.errors(), vec!["permission denied".to_string()]);
    let token = rotcheck_fuzz::targets::vault_body::TOKEN;
    assert!(all.iter().any(
        |(t, _, b)| *t == "vault_body" && b.windows(token.len()).any(|w| w == token.as_bytes())
    ));
}

/// The signed OCSP seeds pass the signature check and reach the answer, so mutations of them
/// fuzz everything behind it.
#[test]
fn the_ocsp_seeds_reach_the_answer() {
    use rotcheck::ocsp::{read, CertState, OcspError, Pair};
    use rotcheck_fuzz::targets::ocsp_response::{NONCE, NOW};
    use x509_parser::prelude::{FromDer, X509Certificate};
    let all = all_seeds();
    let judge = |name: &str, nonce: Option<&[u8]>| {
        let framed = seed(&all, "ocsp_response", name);
        let len = |at: usize| usize::from(u16::from_be_bytes([framed[at], framed[at + 1]]));
        let (i_len, rest) = (len(0), 2);
        let c_at = rest + i_len;
        let c_len = len(c_at);
        let issuer = X509Certificate::from_der(&framed[2..c_at]).unwrap().1;
        let cert = X509Certificate::from_der(&framed[c_at + 2..c_at + 2 + c_len])
            .unwrap()
            .1;
        let pair = Pair {
            cert: &cert,
            issuer: &issuer,
        };
        read(&framed[c_at + 2 + c_len..], &pair, nonce, NOW, "seed")
    };
    assert_eq!(judge("good", None).unwrap().state, CertState::Good);
    assert_eq!(judge("unknown", None).unwrap().state, CertState::Unknown);
    let revoked = judge("revoked", None).unwrap().state;
    assert!(matches!(revoked, CertState::Revoked(r) if r.reason == Some(1)));
    assert_eq!(
        judge("good-nonce", Some(NONCE)).unwrap().signer,
        "the issuer"
    );
    let other: &[u8] = b"another-nonce-sent-here";
    assert!(matches!(
        judge("good-nonce", Some(other)),
        Err(OcspError::NotOurs { .. })
    ));
    assert!(matches!(
        judge("other-serial", None),
        Err(OcspError::Missing { .. })
    ));
    assert!(matches!(
        judge("try-later", None),
        Err(OcspError::Refused { .. })
    ));
}

#[test]
fn the_jwks_seeds_reach_the_verdicts() {
    use rotcheck::kinds::jwks::{jwk, jwt};
    use rotcheck_fuzz::targets::jwks::NOW;
    let all = all_seeds();
    let split = |name: &str| {
        let framed = seed(&all, "jwks", name);
        let n = usize::from(u16::from_be_bytes([framed[0], framed[1]]));
        let (set, rest) = framed[2..].split_at(n);
        let set = jwk::parse_set(set).unwrap_or_else(|e| panic!("{name}: {e}"));
        (set, String::from_utf8(rest.to_vec()).unwrap())
    };
    let verdict = |name: &str| {
        let (set, token) = split(name);
        assert_eq!(set.keys.len(), 3, "{name}: {set:?}");
        let a = jwt::assert_token(Ok(token), &set, NOW);
        (a.reason, a.message)
    };
    assert_eq!(
        verdict("ed25519_valid").0,
        None,
        "{:?}",
        verdict("ed25519_valid")
    );
    assert_eq!(
        verdict("es256_valid").0,
        None,
        "{:?}",
        verdict("es256_valid")
    );
    assert_eq!(verdict("ed25519_expired").0.as_deref(), Some("jwt_expired"));
    assert_eq!(verdict("unknown_kid").0.as_deref(), Some("jwt_kid_unknown"));
    let (unusable, _) = split("unusable_members");
    assert!(unusable.bad.len() >= 2, "{unusable:?}");
}
