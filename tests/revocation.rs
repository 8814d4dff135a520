//! Revocation against a real OpenBao dev server: a PKI mount issues a leaf that an in-process
//! rustls listener serves; `not_revoked` passes, `pki/revoke` makes the next check fail
//! `revoked` with the serial; the mount's CRL passes the `crl` kind (file and URL); a CRL past
//! its nextUpdate is `crl_stale`, one signed by another CA `crl_bad_signature`, and an
//! unreachable distribution point `crl_unavailable`. And, with an rcgen PKI, an intermediate
//! revoked by its root, found in a `crl_file` holding both CAs' CRLs; a distribution point
//! fetched once per run however many checks need it, and one too large refused.

mod common;

use common::bao::{self, DevServer};
use common::{Env, Gate, TlsOpts};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// An RFC 3339 instant `ahead` from now, for `--at`.
fn at(ahead: Duration) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + ahead).to_string()
}

fn now() -> String {
    at(Duration::ZERO)
}

/// A root PKI mount whose certificates name `crl_url` as their CRL distribution point, with
/// a role for `localhost` / 127.0.0.1. Returns the CA's PEM.
fn mount(dev: &DevServer, name: &str, cn: &str, crl_url: &str) -> String {
    let urls = format!("crl_distribution_points={crl_url}");
    bao::web_root_mount(dev, name, cn, &urls)
}

/// A leaf for 127.0.0.1 from `mount`: certificate PEM, private key PEM, serial as hex.
struct Leaf {
    cert: String,
    key: String,
    serial: String,
    bao_serial: String,
}

fn issue(dev: &DevServer, mount: &str) -> Leaf {
    let out = dev.must(&[
        "write",
        "-format=json",
        &format!("{mount}/issue/web"),
        "common_name=localhost",
        "ip_sans=127.0.0.1",
        "ttl=24h",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let d = &v["data"];
    let bao_serial = d["serial_number"].as_str().unwrap().to_string();
    let hex = bao_serial.replace(':', "").to_lowercase();
    Leaf {
        cert: d["certificate"].as_str().unwrap().to_string(),
        key: d["private_key"].as_str().unwrap().to_string(),
        serial: hex.trim_start_matches("00").to_string(),
        bao_serial,
    }
}

/// Serves the leaf alone over TLS on 127.0.0.1.
fn serve(leaf: &Leaf) -> std::net::SocketAddr {
    let chain = vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
    common::tls_server(TlsOpts {
        chain,
        key,
        client_ca: None,
        versions: rustls::ALL_VERSIONS,
        tickets: 2,
    })
}

fn suite(checks: &str) -> String {
    format!("suite: revocation\ndefaults:\n  timeout: 5s\nchecks:\n{checks}")
}

fn verdict(g: &Gate, check: &str, assertion: &str) -> (String, Option<String>) {
    g.verdict(check, assertion)
}

fn message(g: &Gate, check: &str, assertion: &str) -> String {
    g.assertion(check, assertion)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn pass() -> (String, Option<String>) {
    ("pass".into(), None)
}

fn fail(reason: &str) -> (String, Option<String>) {
    ("fail".into(), Some(reason.into()))
}

#[test]
fn a_revoked_leaf_and_the_crls_of_a_real_openbao() {
    let Some(bin) = bao::server_binary() else {
        return;
    };
    let dev = DevServer::start(&bin);
    let env = Env::new();
    let crl_url = format!("{}/v1/pki/crl", dev.url());
    let ca = env.write("ca.pem", mount(&dev, "pki", "Revocation Root", &crl_url));
    let served = issue(&dev, "pki");
    let addr = serve(&served);
    let tls = format!(
        "  - name: served\n    tls: {{ addr: '{addr}', ca_file: '{ca}' }}\n    expect: {{ not_revoked: true }}\n"
    );
    let g = env.gate(&suite(&tls), &["--at", &now()]);
    assert_eq!(verdict(&g, "served", "not_revoked"), pass(), "{:#}", g.json);
    let msg = message(&g, "served", "not_revoked");
    assert!(
        msg.contains(&crl_url),
        "the distribution point was used: {msg}"
    );
    assert_eq!(g.check("served")["certs"][0]["revoked"], false);

    dev.must(&[
        "write",
        "pki/revoke",
        &format!("serial_number={}", served.bao_serial),
    ]);
    let g = env.gate(&suite(&tls), &["--at", &now()]);
    assert_eq!(verdict(&g, "served", "not_revoked"), fail("revoked"));
    let msg = message(&g, "served", "not_revoked");
    assert!(msg.contains(&served.serial), "{msg}");
    assert!(msg.contains("revoked at"), "{msg}");
    assert_eq!(g.code, 1);
    revoked_metric(&env, &now());

    crl_kind(&dev, &env, &ca);
    stale(&dev, &env, &ca);
    other_ca(&dev, &env, &ca);
    unreachable(&dev, &env);
}

/// `gate --format prom` exports the served leaf as revoked.
fn revoked_metric(env: &Env, at: &str) {
    let path = env.path("suite.yaml").display().to_string();
    let out = common::rotcheck(&["gate", "-c", &path, "--format", "prom", "--at", at]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("rotcheck_cert_revoked{"))
        .unwrap_or_else(|| panic!("no rotcheck_cert_revoked in {text}"));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(line.contains("position=\"leaf\""), "{line}");
}

/// The mount's CRL, as a PEM file and from its URL (DER over HTTPS), passes the `crl` kind.
fn crl_kind(dev: &DevServer, env: &Env, ca: &str) {
    let pem = dev.must(&["read", "-field=certificate", "pki/cert/crl"]);
    let file = env.write("pki.crl", pem);
    let checks = format!(
        "  - name: from-file\n    crl: {{ file: '{file}', issuer_file: '{ca}' }}\n    expect: {{ next_update: {{ warn: 1h, crit: 10m }} }}\n  - name: from-url\n    crl: {{ url: '{}/v1/pki/crl', issuer_file: '{ca}' }}\n",
        dev.url()
    );
    let g = env.gate(&suite(&checks), &["--at", &now()]);
    for check in ["from-file", "from-url"] {
        for a in ["crl", "signature", "next_update"] {
            assert_eq!(verdict(&g, check, a), pass(), "{check} {a}: {:#}", g.json);
        }
    }
    assert!(message(&g, "from-file", "crl").contains("1 revoked"));
}

/// A CRL whose nextUpdate has passed: `crl_stale` for the `crl` kind and for `not_revoked`
/// (a `files` check of a second, unrevoked leaf against the CRL file), a warning when asked.
fn stale(dev: &DevServer, env: &Env, ca: &str) {
    dev.must(&["write", "pki/config/crl", "expiry=1h"]);
    dev.must(&["read", "pki/crl/rotate"]);
    let pem = dev.must(&["read", "-field=certificate", "pki/cert/crl"]);
    let file = env.write("short.crl", pem);
    let leaf = env.write("fresh.pem", issue(dev, "pki").cert);
    let entry = format!("{{ path: '{leaf}', kind: cert, ca_file: '{ca}', crl_file: '{file}' }}");
    let checks = format!(
        "  - name: crl\n    crl: {{ file: '{file}', issuer_file: '{ca}' }}\n  - name: strict\n    files: [{entry}]\n    expect: {{ not_revoked: true }}\n  - name: lenient\n    files: [{entry}]\n    expect: {{ not_revoked: {{ crl_stale: warn }} }}\n"
    );
    let g = env.gate(&suite(&checks), &["--at", &now()]);
    assert_eq!(
        verdict(&g, "strict", "not_revoked:fresh.pem"),
        pass(),
        "{:#}",
        g.json
    );
    let later = at(Duration::from_secs(2 * 3600));
    let g = env.gate(&suite(&checks), &["--at", &later]);
    assert_eq!(verdict(&g, "crl", "next_update"), fail("crl_stale"));
    assert_eq!(
        verdict(&g, "strict", "not_revoked:fresh.pem"),
        fail("crl_stale")
    );
    let soft = verdict(&g, "lenient", "not_revoked:fresh.pem");
    assert_eq!(soft, ("warn".into(), Some("crl_stale".into())));
}

/// A CRL of another CA with the same name: its signature does not verify.
fn other_ca(dev: &DevServer, env: &Env, ca: &str) {
    let url = format!("{}/v1/other/crl", dev.url());
    mount(dev, "other", "Revocation Root", &url);
    let pem = dev.must(&["read", "-field=certificate", "other/cert/crl"]);
    let file = env.write("other.crl", pem);
    let leaf = env.write("leaf.pem", issue(dev, "pki").cert);
    let checks = format!(
        "  - name: crl\n    crl: {{ file: '{file}', issuer_file: '{ca}' }}\n  - name: files\n    files: [{{ path: '{leaf}', kind: cert, ca_file: '{ca}', crl_file: '{file}' }}]\n    expect: {{ not_revoked: true }}\n"
    );
    let g = env.gate(&suite(&checks), &["--at", &now()]);
    assert_eq!(verdict(&g, "crl", "signature"), fail("crl_bad_signature"));
    let files = verdict(&g, "files", "not_revoked:leaf.pem");
    assert_eq!(files, fail("crl_bad_signature"), "{:#}", g.json);
}

/// A certificate whose distribution point does not answer: `crl_unavailable`, with why.
fn unreachable(dev: &DevServer, env: &Env) {
    let url = format!("http://{}/crl", common::closed_port());
    let ca = env.write("dead-ca.pem", mount(dev, "dead", "Dead Root", &url));
    let leaf = env.write("dead.pem", issue(dev, "dead").cert);
    let checks = format!(
        "  - name: dead\n    files: [{{ path: '{leaf}', kind: cert, ca_file: '{ca}' }}]\n    expect: {{ not_revoked: true }}\n"
    );
    let g = env.gate(&suite(&checks), &["--at", &now()]);
    assert_eq!(
        verdict(&g, "dead", "not_revoked:dead.pem"),
        fail("crl_unavailable")
    );
    let msg = message(&g, "dead", "not_revoked:dead.pem");
    assert!(msg.contains(&url), "{msg}");
}

/// The raw serial of a DER certificate.
fn raw_serial(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.raw_serial().to_vec()
}

#[test]
fn an_intermediate_revoked_by_its_root_fails_a_chain_file() {
    let pki = common::Pki::new();
    let env = Env::new();
    let chain = env.write(
        "fullchain.pem",
        common::pem_of(&[&pki.leaf, &pki.inter.cert]),
    );
    let root = env.write("root.pem", &pki.root.cert.pem);
    let serial = raw_serial(&pki.inter.cert.der);
    let inter_crl = pki.inter.crl(&[], common::VALID);
    let both = env.write(
        "both.crl",
        format!("{inter_crl}{}", pki.root.crl(&[&serial], common::VALID)),
    );
    let only_inter = env.write("inter.crl", &inter_crl);
    let check = |name: &str, crl: &str| {
        format!("  - name: {name}\n    files: [{{ path: '{chain}', kind: chain, ca_file: '{root}', crl_file: '{crl}' }}]\n    expect: {{ not_revoked: true }}\n")
    };
    let checks = check("both", &both) + &check("leaf-only", &only_inter);
    let g = env.gate(&suite(&checks), &[]);
    let a = "not_revoked:fullchain.pem";
    assert_eq!(verdict(&g, "both", a), fail("revoked"), "{:#}", g.json);
    let msg = message(&g, "both", a);
    let hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
    assert!(msg.contains(hex.trim_start_matches("00")), "{msg}");
    assert!(msg.contains("reason code 1"), "{msg}");
    assert_eq!(verdict(&g, "leaf-only", a), pass(), "{:#}", g.json);
    assert!(message(&g, "leaf-only", a).contains("not checked"));
}

/// A plain-HTTP server answering every request with `body`; counts the requests.
fn crl_server(body: Vec<u8>) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    (addr, count)
}

#[test]
fn a_distribution_point_is_fetched_once_per_run_and_capped() {
    let pki = common::Pki::new();
    let env = Env::new();
    let (addr, count) = crl_server(pki.inter.crl(&[], common::VALID).into_bytes());
    let leaf = pki.inter.leaf_with_crl_url(
        common::NAMES,
        common::VALID,
        &format!("http://{addr}/inter.crl"),
    );
    let chain = env.write("fullchain.pem", common::pem_of(&[&leaf, &pki.inter.cert]));
    let (big, _) = crl_server(vec![b'x'; 5 * 1024 * 1024]);
    let huge = pki.inter.leaf_with_crl_url(
        common::NAMES,
        common::VALID,
        &format!("http://{big}/big.crl"),
    );
    let huge = env.write("huge.pem", common::pem_of(&[&huge, &pki.inter.cert]));
    let check = |name: &str, path: &str| {
        format!("  - name: {name}\n    files: [{{ path: '{path}', kind: chain }}]\n    expect: {{ not_revoked: true }}\n")
    };
    let checks =
        check("a", &chain) + &check("b", &chain) + &check("c", &chain) + &check("big", &huge);
    let g = env.gate(&suite(&checks), &[]);
    for c in ["a", "b", "c"] {
        assert_eq!(
            verdict(&g, c, "not_revoked:fullchain.pem"),
            pass(),
            "{:#}",
            g.json
        );
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "one fetch for three checks"
    );
    assert_eq!(
        verdict(&g, "big", "not_revoked:huge.pem"),
        fail("crl_unavailable")
    );
    assert!(message(&g, "big", "not_revoked:huge.pem").contains("4 MiB"));
}
