//! `verify` and `inspect` report each client family's verdict (OpenSSL, Go, rustls), the
//! chain's completeness and lint, through the real binary on PKIs made with rcgen at test
//! time; every run passes `--at`, so nothing goes stale.

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

/// The name the CN-only leaf carries.
const NAME: &str = "svc.rotcheck.test";

/// A CA made here, for the shapes `common` does not make (no SKI, CN-only leaf).
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn dn(cn: &str) -> rcgen::DistinguishedName {
    let mut d = rcgen::DistinguishedName::new();
    d.push(DnType::OrganizationName, "rotcheck verify");
    d.push(DnType::CommonName, cn);
    d
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p.not_before = rcgen::date_time_ymd(2000, 1, 1);
    p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    p
}

/// A CA without subjectKeyIdentifier: rcgen writes one on every CA it knows is one, so
/// basicConstraints goes in as a custom (critical) extension.
fn no_ski(mut p: CertificateParams) -> CertificateParams {
    p.is_ca = IsCa::NoCa;
    let mut bc =
        CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x03, 0x01, 0x01, 0xff]);
    bc.set_criticality(true);
    p.custom_extensions.push(bc);
    p
}

/// A serverAuth leaf for `sans`, named `cn`, valid 2030..2031.
fn leaf_params(cn: &str, sans: &[&str]) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).expect("names");
    p.distinguished_name = dn(cn);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p.not_before = rcgen::date_time_ymd(2030, 1, 1);
    p.not_after = rcgen::date_time_ymd(2031, 1, 1);
    p
}

impl Ca {
    fn root(p: CertificateParams) -> Ca {
        let key = KeyPair::generate().expect("key");
        let pem = p.self_signed(&key).expect("root").pem();
        Ca {
            pem,
            issuer: Issuer::new(p, key),
        }
    }

    fn sub(&self, p: CertificateParams) -> Ca {
        let key = KeyPair::generate().expect("key");
        let pem = p.signed_by(&key, &self.issuer).expect("ca").pem();
        Ca {
            pem,
            issuer: Issuer::new(p, key),
        }
    }

    /// A leaf's PEM.
    fn leaf(&self, p: CertificateParams) -> String {
        let key = KeyPair::generate().expect("key");
        p.signed_by(&key, &self.issuer).expect("leaf").pem()
    }
}

/// `rotcheck verify --format json --at AT` plus `args`.
fn verify(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["verify", "--format", "json", "--at", AT];
    all.extend(args);
    rotcheck_json(&all)
}

/// `rotcheck verify --at AT` plus `args`: exit code and the human text.
fn verify_text(args: &[&str]) -> (i32, String) {
    let mut all = vec!["verify", "--at", AT];
    all.extend(args);
    let out = rotcheck(&all);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.code().unwrap_or(-1), text)
}

/// Each client's `accepts`, in report order.
fn accepts(v: &Value) -> Vec<(String, bool)> {
    v["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .map(|c| {
            let name = c["client"].as_str().unwrap_or_default().to_string();
            (name, c["accepts"].as_bool().unwrap_or_default())
        })
        .collect()
}

fn verdicts(openssl: bool, go: bool, rustls: bool) -> Vec<(String, bool)> {
    vec![
        ("openssl".into(), openssl),
        ("go".into(), go),
        ("rustls".into(), rustls),
    ]
}

fn lint_reasons(v: &Value) -> Vec<String> {
    v["lint"]
        .as_array()
        .expect("lint")
        .iter()
        .map(|l| l["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn leaf_alone_with_the_intermediate_in_the_ca_file() {
    let (env, pki) = (Env::new(), Pki::new());
    let leaf = env.write("leaf.crt", &pki.leaf.pem);
    let ca = env.write("ca_chain.pem", pem_of(&[&pki.inter.cert, &pki.root.cert]));
    let (code, v) = verify(&[&leaf, "--ca", &ca, "--host", "localhost"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(accepts(&v), verdicts(true, true, true), "{v:#}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["complete_chain"]["complete"], false, "{v:#}");
    assert_eq!(v["complete_chain"]["reason"], "incomplete_chain");
    let (code, text) = verify_text(&[&leaf, "--ca", &ca]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("holds only the leaf"), "{text}");
    assert!(!text.contains("server"), "no server in verify: {text}");
}

#[test]
fn ca_file_with_the_intermediate_only() {
    let (env, pki) = (Env::new(), Pki::new());
    let full = env.write("full.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let ca = env.write("inter.pem", &pki.inter.cert.pem);
    let (code, v) = verify(&[&full, "--ca", &ca]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(accepts(&v), verdicts(false, true, true), "{v:#}");
    assert_eq!(v["clients"][0]["reason"], "unknown_issuer", "{v:#}");
    let (code, v) = verify(&[&full, "--ca", &ca, "--client", "go", "--client", "rustls"]);
    assert_eq!(code, 0, "{v:#}");
    let chosen: Vec<&str> = v["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client"].as_str().unwrap())
        .collect();
    assert_eq!(chosen, ["go", "rustls"]);
    let (code, text) = verify_text(&[&full, "--ca", &ca]);
    assert_eq!(code, 1);
    assert!(text.contains("openssl  refuses (unknown_issuer)"), "{text}");
    let (code, v) = verify(&[&full, "--ca", &ca, "--partial"]);
    assert_eq!(code, 0, "-partial_chain: {v:#}");
    assert_eq!(accepts(&v), verdicts(true, true, true), "{v:#}");
}

#[test]
fn cn_only_leaf_is_accepted_by_openssl_alone() {
    let env = Env::new();
    let root = Ca::root(ca_params("cn root"));
    let inter = root.sub(ca_params("cn intermediate"));
    let leaf = inter.leaf(leaf_params(NAME, &[]));
    let full = env.write("full.crt", format!("{leaf}{}", inter.pem));
    let ca = env.write("root.pem", &root.pem);
    let (code, v) = verify(&[&full, "--ca", &ca, "--host", NAME]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(accepts(&v), verdicts(true, false, false), "{v:#}");
    assert_eq!(v["clients"][1]["reason"], "name_mismatch", "{v:#}");
    assert_eq!(v["valid"], false);
    let (code, _) = verify(&[&full, "--ca", &ca, "--host", NAME, "--client", "openssl"]);
    assert_eq!(code, 0);
}

#[test]
fn root_without_ski_is_accepted_with_lint() {
    let env = Env::new();
    let root = Ca::root(no_ski(ca_params("root without ski")));
    let inter = root.sub(ca_params("under ski-less root"));
    let leaf = inter.leaf(leaf_params(NAME, &[NAME]));
    let full = env.write("full.crt", format!("{leaf}{}", inter.pem));
    let ca = env.write("root.pem", &root.pem);
    let (code, v) = verify(&[&full, "--ca", &ca, "--host", NAME]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(accepts(&v), verdicts(true, true, true), "{v:#}");
    assert!(
        lint_reasons(&v).contains(&"ca_without_ski".to_string()),
        "{v:#}"
    );
    assert_eq!(v["complete_chain"]["complete"], true, "{v:#}");
    let (_, text) = verify_text(&[&full, "--ca", &ca]);
    assert!(text.contains("lint ca_without_ski:"), "{text}");
}

#[test]
fn reversed_fullchain_is_diagnosed_as_reversed() {
    let (env, pki) = (Env::new(), Pki::new());
    let reversed = env.write("rev.crt", pem_of(&[&pki.inter.cert, &pki.leaf]));
    let ca = env.write("root.pem", &pki.root.cert.pem);
    let (code, v) = verify(&[&reversed, "--ca", &ca]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["reason"], "chain_order", "{v:#}");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("reverse order"), "{msg}");
    let (code, text) = verify_text(&[&reversed, "--ca", &ca]);
    assert_eq!(code, 1);
    let headline = text.lines().next().unwrap_or_default();
    assert!(
        headline.starts_with("invalid (chain_order)") && headline.contains("reverse"),
        "{text}"
    );
}

#[test]
fn json_names_are_plain() {
    let (env, pki) = (Env::new(), Pki::new());
    let full = env.write("full.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let ca = env.write("root.pem", &pki.root.cert.pem);
    let (code, v) = verify(&[&full, "--ca", &ca, "--host", "localhost"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["anchor"], "rotcheck test root", "{v:#}");
    let names = [
        &v["anchor"],
        &v["certs"][0]["subject"],
        &v["clients"][0]["client"],
    ];
    for n in names {
        assert!(!n.as_str().unwrap().contains('"'), "{n}");
    }
    assert_eq!(v["complete_chain"]["complete"], true);
    assert!(v["lint"].as_array().unwrap().is_empty(), "{v:#}");
}

#[test]
fn inspect_a_listener_with_a_ca_file() {
    let (env, pki) = (Env::new(), Pki::new());
    let srv = tls_server(TlsOpts::new(pki.fullchain(), &pki.leaf)).to_string();
    let ca = env.write("root.pem", &pki.root.cert.pem);
    let args = [
        "inspect",
        &srv,
        "--servername",
        "localhost",
        "--ca",
        &ca,
        "--at",
        AT,
    ];
    let out = rotcheck(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for c in ["openssl", "go", "rustls"] {
        let line = format!("  {c:<8} accepts: ");
        assert_eq!(text.matches(&line).count(), 1, "{c}: {text}");
    }
    let mut json = args.to_vec();
    json.extend(["--format", "json"]);
    let (code, v) = rotcheck_json(&json);
    assert_eq!(code, 0);
    assert_eq!(accepts(&v), verdicts(true, true, true), "{v:#}");
    let (_, v) = rotcheck_json(&["inspect", &srv, "--format", "json"]);
    assert!(v["clients"].is_null(), "no verdicts without --ca");
}

#[test]
fn inspect_a_file_with_a_ca_file() {
    let (env, pki) = (Env::new(), Pki::new());
    let full = env.write("full.crt", pem_of(&[&pki.leaf, &pki.inter.cert]));
    let inter = env.write("inter.pem", &pki.inter.cert.pem);
    let (code, v) = rotcheck_json(&[
        "inspect", &full, "--ca", &inter, "--at", AT, "--format", "json",
    ]);
    assert_eq!(code, 0, "inspect judges, it does not fail: {v:#}");
    assert_eq!(accepts(&v), verdicts(false, true, true), "{v:#}");
    let out = rotcheck(&["inspect", &full, "--host", "localhost"]);
    assert_eq!(out.status.code(), Some(2), "--host needs --ca");
}
