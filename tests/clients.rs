//! Client profiles against the real clients: for every case, each profile's verdict
//! (`rotcheck::expect::chain::verdict`) is compared with what the client itself decides —
//! Debian's `openssl verify`, Go's `x509.Certificate.Verify` (tests/oracles/goverify, built
//! with the toolchain of `ROTCHECK_GO` or PATH; `ROTCHECK_REQUIRE_GO=1` makes a missing one
//! fail) and rustls's WebPKI verifiers. Each test prints per-client agreement and every
//! disagreement.
//!
//! - the generated corpus (tests/clients/corpus.rs): agreement must be 100% for every client;
//! - limbo (`ROTCHECK_LIMBO`) and badssl (`ROTCHECK_BADSSL`), as tests/conformance.rs reads
//!   them: agreement with each real client is reported and held to a measured floor, and the
//!   verdict "every client accepts" is compared with limbo's expected result.

#[path = "conformance_data/mod.rs"]
mod conformance_data;
#[path = "clients/corpus.rs"]
mod corpus;
#[path = "clients/oracle.rs"]
mod oracle;

use conformance_data::{env_path, pem_file, pems, validation_time};
use rotcheck::expect::chain::{lint, verdict, Client, Purpose};
use rustls::pki_types::{CertificateDer, UnixTime};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One chain to judge.
#[derive(Clone)]
pub struct Case {
    pub id: String,
    pub presented: Vec<CertificateDer<'static>>,
    pub store: Vec<CertificateDer<'static>>,
    pub name: Option<String>,
    pub purpose: Purpose,
    /// Unix seconds.
    pub at: i64,
}

/// The real clients available to this run.
struct Oracles {
    goverify: Option<PathBuf>,
}

impl Oracles {
    fn new() -> Oracles {
        let goverify = oracle::go_toolchain().map(|go| oracle::goverify(&go));
        Oracles { goverify }
    }

    fn clients(&self) -> Vec<Client> {
        Client::ALL
            .into_iter()
            .filter(|c| *c != Client::Go || self.goverify.is_some())
            .collect()
    }

    fn ask(&self, client: Client, case: &Case) -> oracle::Answer {
        match client {
            Client::Openssl => oracle::openssl(case),
            Client::Go => oracle::go(self.goverify.as_deref().expect("goverify"), case),
            Client::Rustls => oracle::rustls(case),
        }
    }
}

fn model(client: Client, case: &Case) -> rotcheck::expect::chain::Verdict {
    let now = UnixTime::since_unix_epoch(Duration::from_secs(case.at.max(0) as u64));
    verdict(
        client,
        &case.presented,
        &case.store,
        case.name.as_deref(),
        case.purpose,
        now,
    )
}

/// Per-client tally of one comparison run.
#[derive(Default)]
struct Tally {
    agree: usize,
    total: usize,
    disagreements: Vec<String>,
}

impl Tally {
    fn pct(&self) -> f64 {
        100.0 * self.agree as f64 / self.total.max(1) as f64
    }
}

/// Compares every profile with its client on `cases`; prints the tallies.
fn compare(label: &str, cases: &[Case], oracles: &Oracles) -> Vec<(Client, Tally)> {
    let mut out = vec![];
    for client in oracles.clients() {
        let mut t = Tally::default();
        for case in cases {
            let real = oracles.ask(client, case);
            let ours = model(client, case);
            t.total += 1;
            if real.is_ok() == ours.accepts {
                t.agree += 1;
            } else {
                t.disagreements.push(format!(
                    "{}: real {} ({}); profile {} ({})",
                    case.id,
                    if real.is_ok() { "accepts" } else { "refuses" },
                    real.as_ref().err().map_or("ok", String::as_str),
                    if ours.accepts { "accepts" } else { "refuses" },
                    ours.message
                ));
            }
        }
        println!(
            "{label}: {}: {}/{} agree ({:.1}%)",
            client.as_str(),
            t.agree,
            t.total,
            t.pct()
        );
        for d in &t.disagreements {
            println!("  disagree [{}] {d}", client.as_str());
        }
        out.push((client, t));
    }
    out
}

#[test]
fn generated_corpus_agrees_with_every_real_client() {
    let oracles = Oracles::new();
    let cases = corpus::cases();
    println!("generated corpus: {} cases", cases.len());
    for case in &cases {
        let row: Vec<String> = oracles
            .clients()
            .iter()
            .map(|c| {
                let v = model(*c, case);
                let r = v.reason.map_or("", |r| r.as_str());
                format!(
                    "{}={}{}",
                    c.as_str(),
                    if v.accepts { "ok" } else { "no" },
                    if r.is_empty() {
                        String::new()
                    } else {
                        format!("({r})")
                    }
                )
            })
            .collect();
        println!("  {:<55} {}", case.id, row.join(" "));
    }
    let tallies = compare("generated", &cases, &oracles);
    for (client, t) in &tallies {
        assert!(
            t.disagreements.is_empty(),
            "{} profile disagrees with the real client on {} generated case(s):\n{}",
            client.as_str(),
            t.disagreements.len(),
            t.disagreements.join("\n")
        );
    }
}

/// The lint tokens rcgen cannot exercise (it signs neither SHA-1 nor with small RSA keys),
/// on the openssl-made certificates.
#[test]
fn lint_flags_weak_certificates_made_by_openssl() {
    let cases = corpus::openssl_made();
    let tokens = |id: &str| -> Vec<&'static str> {
        let c = cases.iter().find(|c| c.id == id).expect(id);
        lint(&c.presented, &c.store, None)
            .iter()
            .map(|l| l.reason.as_str())
            .collect()
    };
    assert!(tokens("SHA-1 leaf").contains(&"sha1_signature"));
    assert!(tokens("SHA-1 intermediate").contains(&"sha1_signature"));
    assert!(tokens("RSA 1024 leaf").contains(&"rsa_under_2048"));
    assert!(tokens("RSA 1024 intermediate").contains(&"rsa_under_2048"));
    assert!(
        tokens("RSA 2048 chain").is_empty(),
        "{:?}",
        tokens("RSA 2048 chain")
    );
    // A root's own SHA-1 self-signature is never checked, so it is not flagged.
    assert!(!tokens("SHA-1 self-signed root").contains(&"sha1_signature"));
}

// ---------------------------------------------------------------- limbo

fn unix(v: &Value) -> i64 {
    validation_time(v)
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// limbo features no client profile models (as tests/conformance.rs skips them).
const UNSUPPORTED: &[&str] = &[
    "has-crl",
    "max-chain-depth",
    "name-constraint-dn",
    "has-policy-constraints",
    "rfc5280-incompatible-with-webpki",
];

fn limbo_supported(case: &Value) -> bool {
    let features = case["features"].as_array().cloned().unwrap_or_default();
    let unsupported = features
        .iter()
        .filter_map(Value::as_str)
        .any(|f| UNSUPPORTED.contains(&f) || f.starts_with("pedantic-"));
    let ekus = case["extended_key_usage"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let name_ok = matches!(
        case["expected_peer_name"]["kind"].as_str(),
        None | Some("DNS") | Some("IP")
    );
    case["validation_kind"] == "SERVER"
        && !unsupported
        && ekus.iter().all(|e| e == "serverAuth")
        && name_ok
}

fn limbo_case(case: &Value) -> Case {
    let strings = |k: &str| -> String {
        case[k]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let mut presented = pems(case["peer_certificate"].as_str().unwrap_or_default());
    presented.extend(pems(&strings("untrusted_intermediates")));
    Case {
        id: case["id"].as_str().unwrap_or("?").into(),
        presented,
        store: pems(&strings("trusted_certs")),
        name: case["expected_peer_name"]["value"]
            .as_str()
            .map(str::to_string),
        purpose: Purpose::ServerAuth,
        at: unix(&case["validation_time"]),
    }
}

/// Floors under what was measured on limbo-subset.json (563 supported cases): the profiles
/// agree with the real clients on 562 (openssl), 563 (go) and 563 (rustls); "every client
/// accepts" matches limbo's expected result on 523 (92.9%): the other 40 are cases where the
/// real clients themselves differ from limbo's RFC 5280 / Web PKI reading (missing AKI/SKI,
/// CN rules, name constraints on self-issued CAs, ...).
const LIMBO_CLIENT_FLOOR: f64 = 99.5;
const LIMBO_EXPECTED_FLOOR: f64 = 92.5;

#[test]
fn limbo_agreement_per_client() {
    let Some(path) = env_path("ROTCHECK_LIMBO") else {
        return;
    };
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("limbo file"))
        .expect("limbo JSON");
    let all = doc["testcases"].as_array().expect("testcases");
    let cases: Vec<(Case, bool)> = all
        .iter()
        .filter(|c| limbo_supported(c))
        .map(|c| (limbo_case(c), c["expected_result"] == "SUCCESS"))
        .filter(|(c, _)| !c.presented.is_empty())
        .collect();
    println!("limbo: {} supported cases of {}", cases.len(), all.len());
    let only: Vec<Case> = cases.iter().map(|(c, _)| c.clone()).collect();
    let oracles = Oracles::new();
    let tallies = compare("limbo", &only, &oracles);
    let (pct, wrong) = expected_agreement("every client accepts", &cases, |c| {
        Client::ALL.iter().all(|k| model(*k, c).accepts)
    });
    for client in Client::ALL {
        let label = format!("{} profile", client.as_str());
        expected_agreement(&label, &cases, |c| model(client, c).accepts);
    }
    for w in &wrong {
        println!("  expected-result disagreement (every client accepts): {w}");
    }
    for (client, t) in &tallies {
        assert!(
            t.pct() >= LIMBO_CLIENT_FLOOR,
            "{}: {:.1}% agreement with the real client, below {LIMBO_CLIENT_FLOOR}%",
            client.as_str(),
            t.pct()
        );
    }
    assert!(
        pct >= LIMBO_EXPECTED_FLOOR,
        "'every client accepts' matches limbo on {pct:.1}%, below {LIMBO_EXPECTED_FLOOR}%"
    );
}

/// How often `accepts` matches limbo's expected result; prints it; the cases it does not.
fn expected_agreement(
    label: &str,
    cases: &[(Case, bool)],
    accepts: impl Fn(&Case) -> bool,
) -> (f64, Vec<String>) {
    let mut wrong = vec![];
    for (case, expected) in cases {
        if accepts(case) != *expected {
            let want = if *expected { "SUCCESS" } else { "FAILURE" };
            wrong.push(format!("{}: expected {want}", case.id));
        }
    }
    let agree = cases.len() - wrong.len();
    let pct = 100.0 * agree as f64 / cases.len().max(1) as f64;
    println!(
        "limbo: {label}: matches the expected result on {agree}/{} ({pct:.1}%)",
        cases.len()
    );
    (pct, wrong)
}

// ---------------------------------------------------------------- badssl

/// rustls-webpki refuses DER over 64 KiB; such scenarios are left out (as in conformance.rs).
const MAX_DER: usize = 0xFFFF;

fn badssl_cases(root: &Path) -> Vec<Case> {
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("index.json")).expect("index"))
            .expect("index JSON");
    let read = |p: PathBuf| pem_file(&p);
    index
        .as_array()
        .expect("index array")
        .iter()
        .filter_map(|e| {
            let dir = root.join(e["dir"].as_str()?);
            let expect: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).ok()?)
                    .ok()?;
            let mut presented = read(dir.join("leaf.pem"));
            presented.extend(read(dir.join("chain.pem")));
            if presented.is_empty() || presented.iter().any(|c| c.as_ref().len() > MAX_DER) {
                return None;
            }
            Some(Case {
                id: expect["id"].as_str().unwrap_or("?").into(),
                presented,
                store: read(dir.join("roots.pem")),
                name: expect["peer_name"].as_str().map(str::to_string),
                purpose: Purpose::ServerAuth,
                at: unix(&expect["validation_time"]),
            })
        })
        .collect()
}

#[test]
fn badssl_agreement_per_client() {
    let Some(root) = env_path("ROTCHECK_BADSSL") else {
        return;
    };
    let cases = badssl_cases(&root);
    println!("badssl: {} scenarios", cases.len());
    let tallies = compare("badssl", &cases, &Oracles::new());
    for (client, t) in &tallies {
        assert!(
            t.disagreements.is_empty(),
            "{}: {} badssl disagreement(s):\n{}",
            client.as_str(),
            t.disagreements.len(),
            t.disagreements.join("\n")
        );
    }
}
