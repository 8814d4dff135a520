//! `files` checks end to end: real files with real modes and owners in a temp dir, keys and
//! certificates made at test time (rcgen; openssl for RSA, PKCS#1 and SEC1), suites run
//! through the real binary with `--format json`, the JSON parsed back.

use nix::unistd::{chown, Gid, Uid};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The instant every pinned test evaluates at: leaves are valid 2030-01-01..2030-01-31.
const AT: &str = "2030-01-05T00:00:00Z";

// ---------------------------------------------------------------------------------------
// A temp dir with files, a suite, and the binary's JSON answer.

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// Writes a file with mode 0644 (whatever the umask).
    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        self.chmod(name, 0o644);
        p
    }

    fn chmod(&self, name: &str, mode: u32) {
        std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes `suite.yaml` with these checks and runs `gate --format json` on it.
    fn gate(&self, checks: &str, args: &[&str]) -> Run {
        self.gate_as(checks, args, None)
    }

    fn gate_as(&self, checks: &str, args: &[&str], uid: Option<u32>) -> Run {
        let suite = self.write("suite.yaml", format!("suite: t\nchecks:\n{checks}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rotcheck"));
        cmd.args(["gate", "--format", "json", "-c"])
            .arg(&suite)
            .args(args);
        if let Some(id) = uid {
            cmd.uid(id).gid(id);
        }
        Run::of(cmd.output().unwrap())
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.0.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            text(&out.stderr)
        );
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One run of the binary: its exit code and its JSON report.
struct Run {
    code: i32,
    json: Value,
}

impl Run {
    fn of(out: std::process::Output) -> Run {
        let code = out.status.code().unwrap_or(-1);
        assert!(code == 0 || code == 1, "exit {code}: {}", text(&out.stderr));
        let json = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", text(&out.stdout)));
        Run { code, json }
    }

    fn check(&self, name: &str) -> &Value {
        let checks = self.json["checks"].as_array().unwrap();
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}"))
    }

    fn assertion(&self, check: &str, name: &str) -> &Value {
        let c = self.check(check);
        let all = c["assertions"].as_array().unwrap();
        all.iter().find(|a| a["name"] == name).unwrap_or_else(|| {
            let names: Vec<&Value> = all.iter().map(|a| &a["name"]).collect();
            panic!("{check}: no assertion {name}; have {names:?}")
        })
    }

    /// Asserts an assertion's status and reason, and returns its message.
    fn expect(&self, check: &str, name: &str, status: &str, reason: Option<&str>) -> String {
        let a = self.assertion(check, name);
        let got = (a["status"].as_str(), a["reason"].as_str());
        assert_eq!(got, (Some(status), reason), "{check} {name}: {a}");
        a["message"].as_str().unwrap().to_string()
    }

    fn status(&self, check: &str) -> &str {
        self.check(check)["status"].as_str().unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// Certificates and keys.

/// A certificate (PEM and DER) and its key (PKCS#8 PEM).
struct Made {
    cert: String,
    der: Vec<u8>,
    key: String,
}

/// A CA that can issue.
struct Ca {
    made: Made,
    issuer: Issuer<'static, KeyPair>,
}

fn params(cn: &str, sans: &[&str], ca: bool) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    // Conforming certificates carry authorityKeyIdentifier (else `lint` warns).
    p.use_authority_key_identifier_extension = true;
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = date_time_ymd(2029, 1, 1);
        p.not_after = date_time_ymd(2031, 1, 1);
    } else {
        p.not_before = date_time_ymd(2030, 1, 1);
        p.not_after = date_time_ymd(2030, 1, 31);
    }
    p
}

fn made(cert: &rcgen::Certificate, key: &KeyPair) -> Made {
    Made {
        cert: cert.pem(),
        der: cert.der().to_vec(),
        key: key.serialize_pem(),
    }
}

fn root(cn: &str, alg: &'static SignatureAlgorithm) -> Ca {
    let key = KeyPair::generate_for(alg).unwrap();
    let p = params(cn, &[], true);
    let cert = p.self_signed(&key).unwrap();
    Ca {
        made: made(&cert, &key),
        issuer: Issuer::new(p, key),
    }
}

fn sub_ca(cn: &str, alg: &'static SignatureAlgorithm, parent: &Ca) -> Ca {
    let key = KeyPair::generate_for(alg).unwrap();
    let p = params(cn, &[], true);
    let cert = p.signed_by(&key, &parent.issuer).unwrap();
    Ca {
        made: made(&cert, &key),
        issuer: Issuer::new(p, key),
    }
}

fn leaf(cn: &str, sans: &[&str], alg: &'static SignatureAlgorithm, parent: &Ca) -> Made {
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = params(cn, sans, false)
        .signed_by(&key, &parent.issuer)
        .unwrap();
    made(&cert, &key)
}

/// root (P-256) → prod-intermediate (P-384) → leaf `vault.prod` (P-256).
struct Pki {
    root: Ca,
    inter: Ca,
    leaf: Made,
}

fn pki() -> Pki {
    let root = root("prod-root", &PKCS_ECDSA_P256_SHA256);
    let inter = sub_ca("prod-intermediate", &PKCS_ECDSA_P384_SHA384, &root);
    let sans = ["vault.prod.example", "127.0.0.1"];
    let leaf = leaf("vault.prod.example", &sans, &PKCS_ECDSA_P256_SHA256, &inter);
    Pki { root, inter, leaf }
}

fn cat(parts: &[&str]) -> String {
    parts.concat()
}

fn is_root() -> bool {
    Uid::effective().is_root()
}

// ---------------------------------------------------------------------------------------
// Existence, mode, owner, group.

#[test]
fn modes_existence_and_facts() {
    let d = Dir::new();
    d.write("good.key", "x");
    d.chmod("good.key", 0o600);
    d.write("loose.key", "x");
    d.write("stale.bak", "x");
    let run = d.gate(
        r#"  - name: modes
    files:
      - {path: good.key, kind: other, mode: "0600"}
      - {path: loose.key, kind: other, mode: "0600"}
      - {path: gone.pem, kind: other, exists: false}
      - {path: stale.bak, kind: other, exists: false}
      - {path: missing.crt, kind: cert, mode: "0644"}
"#,
        &[],
    );
    assert_eq!(run.code, 1);
    run.expect("modes", "mode:good.key", "pass", None);
    let msg = run.expect("modes", "mode:loose.key", "fail", Some("mode"));
    let loose = d.path("loose.key").display().to_string();
    assert!(
        msg.contains("loose.key has mode 0644, expected 0600"),
        "{msg}"
    );
    assert!(msg.contains(&format!("run chmod 0600 {loose}")), "{msg}");
    run.expect("modes", "exists:gone.pem", "pass", None);
    run.expect("modes", "exists:stale.bak", "fail", Some("unexpected_file"));
    let msg = run.expect("modes", "exists:missing.crt", "fail", Some("not_found"));
    assert!(msg.contains("file not found"), "{msg}");
    let files = run.check("modes")["facts"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 5, "one FileFacts per entry");
    assert_eq!(files[0]["mode"], 0o600);
    assert_eq!(files[1]["mode"], 0o644);
    assert_eq!(files[2]["mode"], Value::Null);
}

#[test]
fn owners_and_groups() {
    if !is_root() {
        println!("skipped owners_and_groups: chown needs root");
        return;
    }
    let d = Dir::new();
    d.write("root.key", "x");
    let nobody = d.write("nobody.key", "x");
    chown(
        &nobody,
        Some(Uid::from_raw(65534)),
        Some(Gid::from_raw(65534)),
    )
    .unwrap();
    let orphan = d.write("orphan.key", "x");
    chown(
        &orphan,
        Some(Uid::from_raw(54321)),
        Some(Gid::from_raw(54321)),
    )
    .unwrap();
    let (nobody_name, nogroup_name) = names_of(65534);
    let checks = format!(
        r#"  - name: owned
    files:
      - {{path: root.key, kind: other, owner: root, group: root}}
      - {{path: nobody.key, kind: other, owner: {nobody_name}, group: {nogroup_name}}}
      - {{path: orphan.key, kind: other, owner: "54321", group: "54321"}}
  - name: misowned
    files:
      - {{path: root.key, kind: other, owner: {nobody_name}, group: {nogroup_name}}}
      - {{path: nobody.key, kind: other, owner: root, group: root}}
      - {{path: orphan.key, kind: other, owner: root, group: no-such-group-x}}
"#
    );
    let run = d.gate(&checks, &[]);
    for f in ["root.key", "nobody.key", "orphan.key"] {
        run.expect("owned", &format!("owner:{f}"), "pass", None);
        run.expect("owned", &format!("group:{f}"), "pass", None);
        run.expect("misowned", &format!("owner:{f}"), "fail", Some("owner"));
        run.expect("misowned", &format!("group:{f}"), "fail", Some("group"));
    }
    assert_eq!(run.status("owned"), "pass");
    let msg = run.expect("misowned", "owner:root.key", "fail", Some("owner"));
    assert!(msg.contains("is owned by root (uid 0)"), "{msg}");
    assert!(msg.contains(&format!("run chown {nobody_name} ")), "{msg}");
    let msg = run.expect("misowned", "owner:orphan.key", "fail", Some("owner"));
    assert!(msg.contains("uid 54321 (no name on this host)"), "{msg}");
    let msg = run.expect("misowned", "group:orphan.key", "fail", Some("group"));
    assert!(msg.contains("no group named no-such-group-x"), "{msg}");
    let files = run.check("owned")["facts"]["files"].as_array().unwrap();
    assert_eq!(files[1]["owner"], nobody_name.as_str());
    assert_eq!(files[2]["owner"], "54321");
    assert_eq!(files[2]["group"], "54321");
}

/// The user and group names of an id on this host (nobody / nogroup on Debian).
fn names_of(id: u32) -> (String, String) {
    let user = nix::unistd::User::from_uid(Uid::from_raw(id))
        .unwrap()
        .unwrap();
    let group = nix::unistd::Group::from_gid(Gid::from_raw(id))
        .unwrap()
        .unwrap();
    (user.name, group.name)
}

// ---------------------------------------------------------------------------------------
// Key pairing.

#[test]
fn keys_pair_with_their_certificates() {
    let d = Dir::new();
    let ca = root("pair-root", &PKCS_ECDSA_P256_SHA256);
    for (name, alg) in [
        ("p256", &PKCS_ECDSA_P256_SHA256),
        ("p384", &PKCS_ECDSA_P384_SHA384),
        ("ed25519", &PKCS_ED25519),
        ("other-p256", &PKCS_ECDSA_P256_SHA256),
        ("other-ed25519", &PKCS_ED25519),
    ] {
        let m = leaf(name, &[], alg, &ca);
        d.write(&format!("{name}.crt"), &m.cert);
        d.write(&format!("{name}.key"), &m.key);
    }
    for ec in ["p256", "p384"] {
        let (from, to) = (format!("{ec}.key"), format!("{ec}-sec1.key"));
        d.openssl(&["pkey", "-in", &from, "-traditional", "-out", &to]);
    }
    for rsa in ["rsa", "other-rsa"] {
        let key = format!("{rsa}.key");
        d.openssl(&["genpkey", "-algorithm", "RSA", "-out", &key]);
        let crt = format!("{rsa}.crt");
        let subj = format!("/CN={rsa}");
        d.openssl(&[
            "req", "-x509", "-new", "-key", &key, "-subj", &subj, "-days", "36500", "-out", &crt,
        ]);
    }
    d.openssl(&[
        "pkey",
        "-in",
        "rsa.key",
        "-traditional",
        "-out",
        "rsa-pkcs1.key",
    ]);
    let sec1 = std::fs::read_to_string(d.path("p256-sec1.key")).unwrap();
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"), "openssl wrote SEC1");
    let pkcs1 = std::fs::read_to_string(d.path("rsa-pkcs1.key")).unwrap();
    assert!(
        pkcs1.contains("BEGIN RSA PRIVATE KEY"),
        "openssl wrote PKCS#1"
    );

    let cases: &[(&str, &str, bool)] = &[
        ("rsa.key", "rsa.crt", true),
        ("rsa-pkcs1.key", "rsa.crt", true),
        ("p256.key", "p256.crt", true),
        ("p256-sec1.key", "p256.crt", true),
        ("p384.key", "p384.crt", true),
        ("p384-sec1.key", "p384.crt", true),
        ("ed25519.key", "ed25519.crt", true),
        ("rsa.key", "other-rsa.crt", false),
        ("rsa-pkcs1.key", "p256.crt", false),
        ("p256.key", "other-p256.crt", false),
        ("p256-sec1.key", "p384.crt", false),
        ("p384.key", "ed25519.crt", false),
        ("ed25519.key", "other-ed25519.crt", false),
    ];
    let checks: String = cases
        .iter()
        .enumerate()
        .map(|(i, (key, crt, _))| {
            format!("  - name: pair-{i}\n    files:\n      - {{path: {key}, kind: key, pairs_with: {crt}}}\n")
        })
        .collect();
    let run = d.gate(&checks, &["--at", AT]);
    for (i, (key, crt, ok)) in cases.iter().enumerate() {
        let check = format!("pair-{i}");
        run.expect(&check, &format!("parse:{key}"), "pass", None);
        let name = format!("pairs_with:{key}");
        if *ok {
            run.expect(&check, &name, "pass", None);
            continue;
        }
        let msg = run.expect(&check, &name, "fail", Some("key_mismatch"));
        assert!(
            msg.starts_with(&format!("{key} does not pair with {crt}")),
            "{msg}"
        );
        assert!(
            msg.contains("re-issue or restore the matching key"),
            "{msg}"
        );
        assert!(
            !msg.contains("PRIVATE KEY"),
            "no key material in messages: {msg}"
        );
    }
    let parse = run.assertion("pair-1", "parse:rsa-pkcs1.key")["message"]
        .as_str()
        .unwrap();
    assert!(parse.contains("RSA 2048 private key (PKCS#1)"), "{parse}");
    let parse = run.assertion("pair-3", "parse:p256-sec1.key")["message"]
        .as_str()
        .unwrap();
    assert!(parse.contains("ECDSA P-256 private key (SEC1)"), "{parse}");
}

// ---------------------------------------------------------------------------------------
// Chains and bundles.

#[test]
fn fullchain_order_bundles_and_chain_validation() {
    let d = Dir::new();
    let p = pki();
    let (leaf, inter, root) = (&p.leaf.cert, &p.inter.made.cert, &p.root.made.cert);
    d.write("fullchain.crt", cat(&[leaf, inter]));
    d.write("full3.crt", cat(&[leaf, inter, root]));
    d.write("reversed.crt", cat(&[inter, leaf]));
    d.write("noint.crt", cat(&[leaf, root]));
    d.write("onlyleaf.crt", leaf);
    d.write("root.pem", root);
    d.write("issuing_ca.pem", inter);
    d.write("ca_chain.pem", cat(&[inter, root]));
    d.write("roots.pem", root);
    let run = d.gate(
        r#"  - name: chains
    files:
      - {path: fullchain.crt, kind: chain, ca_file: root.pem}
      - {path: full3.crt, kind: chain}
      - {path: reversed.crt, kind: chain}
      - {path: noint.crt, kind: chain}
      - {path: onlyleaf.crt, kind: chain}
    expect:
      issuer_cn: prod-intermediate
  - name: valid
    files:
      - {path: fullchain.crt, kind: chain, ca_file: root.pem}
    expect: {chain: valid, names: [vault.prod.example, 127.0.0.1]}
  - name: bundles
    files:
      - {path: ca_chain.pem, kind: bundle, contains: issuing_ca.pem}
      - {path: roots.pem, kind: bundle, contains: ca_chain.pem}
"#,
        &["--at", AT],
    );
    run.expect("chains", "chain_order:fullchain.crt", "pass", None);
    run.expect("chains", "chain_order:full3.crt", "pass", None);
    let msg = run.expect(
        "chains",
        "chain_order:reversed.crt",
        "fail",
        Some("chain_order"),
    );
    assert!(
        msg.starts_with("reversed.crt: certificate 2 (CN=vault.prod.example) did not issue certificate 1 (CN=prod-intermediate); expected leaf then each issuer in order"),
        "{msg}"
    );
    assert!(msg.contains("reversed"), "{msg}");
    let msg = run.expect(
        "chains",
        "chain_order:noint.crt",
        "fail",
        Some("chain_order"),
    );
    assert!(
        msg.contains(
            "certificate 2 (CN=prod-root) did not issue certificate 1 (CN=vault.prod.example)"
        ),
        "{msg}"
    );
    assert!(msg.contains("missing"), "{msg}");
    run.expect(
        "chains",
        "chain_order:onlyleaf.crt",
        "fail",
        Some("incomplete_chain"),
    );
    run.expect("chains", "issuer_cn:fullchain.crt", "pass", None);
    run.expect(
        "chains",
        "issuer_cn:reversed.crt",
        "fail",
        Some("issuer_mismatch"),
    );
    run.expect("chains", "expiry:full3.crt", "pass", None);

    run.expect("valid", "chain:fullchain.crt", "pass", None);
    run.expect("valid", "names:fullchain.crt", "pass", None);
    assert_eq!(run.status("valid"), "pass");

    run.expect("bundles", "parse:ca_chain.pem", "pass", None);
    run.expect("bundles", "contains:ca_chain.pem", "pass", None);
    let msg = run.expect("bundles", "contains:roots.pem", "fail", Some("missing_ca"));
    assert!(
        msg.contains("roots.pem lacks 1 of 2 certificates of ca_chain.pem: CN=prod-intermediate"),
        "{msg}"
    );

    let certs = run.check("chains")["certs"].as_array().unwrap();
    let positions: Vec<&str> = certs
        .iter()
        .map(|c| c["position"].as_str().unwrap())
        .collect();
    assert_eq!(
        &positions[..3],
        ["fullchain.crt", "fullchain.crt#2", "full3.crt"]
    );
    let sha = certs[0]["sha256"].as_str().unwrap();
    assert_eq!(sha, hex_sha256(&p.leaf.der));
}

fn hex_sha256(der: &[u8]) -> String {
    rotcheck::certs::sha256_hex(der)
}

// ---------------------------------------------------------------------------------------
// Expectations over time, names, issuers.

#[test]
fn expiry_names_and_issuer_over_time() {
    let d = Dir::new();
    let p = pki();
    d.write("server.crt", &p.leaf.cert);
    let checks = r#"  - name: leaf
    files:
      - {path: server.crt, kind: cert}
    expect:
      expiry: {warn: 33%, crit: 10%}
      issuer_cn: prod-intermediate
      names: [vault.prod.example]
  - name: wrong
    files:
      - {path: server.crt, kind: cert}
    expect:
      issuer_cn: prod-root
      names: [other.example]
"#;
    let run = d.gate(checks, &["--at", AT]);
    assert_eq!(run.status("leaf"), "pass");
    run.expect("leaf", "expiry:server.crt", "pass", None);
    run.expect("leaf", "issuer_cn:server.crt", "pass", None);
    run.expect("leaf", "names:server.crt", "pass", None);
    let msg = run.expect(
        "wrong",
        "issuer_cn:server.crt",
        "fail",
        Some("issuer_mismatch"),
    );
    assert!(
        msg.contains("expected issuer CN \"prod-root\", found \"prod-intermediate\""),
        "{msg}"
    );
    run.expect("wrong", "names:server.crt", "fail", Some("name_mismatch"));

    let leaf_only = "  - name: leaf\n    files:\n      - {path: server.crt, kind: cert}\n";
    let warn = d.gate(leaf_only, &["--at", "2030-01-22T00:00:00Z"]);
    warn.expect("leaf", "expiry:server.crt", "warn", Some("expires_soon"));
    assert_eq!(
        (warn.code, warn.status("leaf")),
        (0, "warn"),
        "warnings pass the gate"
    );
    let crit = d.gate(leaf_only, &["--at", "2030-01-29T00:00:00Z"]);
    crit.expect("leaf", "expiry:server.crt", "fail", Some("expires_soon"));
    assert_eq!(crit.code, 1);
    let expired = d.gate(leaf_only, &["--at", "2030-02-02T00:00:00Z"]);
    expired.expect("leaf", "expiry:server.crt", "fail", Some("expired"));
}

// ---------------------------------------------------------------------------------------
// Files that cannot be used.

#[test]
fn bad_files_are_classified_and_do_not_stop_the_others() {
    let d = Dir::new();
    let p = pki();
    let pem = &p.leaf.cert;
    d.write("good.crt", pem);
    d.write("empty.crt", "");
    d.write("blank.crt", "\n  \n");
    d.write("garbage.crt", "this is not a certificate\n");
    d.write("cert.der", &p.leaf.der);
    d.write("truncated.crt", &pem[..pem.len() / 2]);
    d.write(
        "bad-der.crt",
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    );
    let big = d.write("huge.crt", "");
    std::fs::File::options()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(11 << 20)
        .unwrap();
    std::fs::create_dir(d.path("dir.crt")).unwrap();
    d.write("cert-as.key", pem);
    d.write(
        "garbage.key",
        "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n",
    );
    d.write("empty.key", "");
    let run = d.gate(
        r#"  - name: bad
    files:
      - {path: good.crt, kind: cert}
      - {path: empty.crt, kind: cert}
      - {path: blank.crt, kind: bundle}
      - {path: garbage.crt, kind: cert}
      - {path: cert.der, kind: cert}
      - {path: truncated.crt, kind: chain}
      - {path: bad-der.crt, kind: cert}
      - {path: huge.crt, kind: bundle}
      - {path: dir.crt, kind: cert}
      - {path: cert-as.key, kind: key}
      - {path: garbage.key, kind: key}
      - {path: empty.key, kind: key}
      - {path: absent.crt, kind: cert}
"#,
        &["--at", AT],
    );
    assert_eq!((run.code, run.status("bad")), (1, "error"));
    run.expect("bad", "parse:good.crt", "pass", None);
    run.expect("bad", "expiry:good.crt", "pass", None);
    for (file, class) in [
        ("empty.crt", "empty"),
        ("blank.crt", "empty"),
        ("garbage.crt", "no_certificate_found"),
        ("cert.der", "der_not_pem"),
        ("truncated.crt", "bad_pem"),
        ("bad-der.crt", "bad_der"),
        ("huge.crt", "too_large"),
        ("dir.crt", "not_regular_file"),
        ("cert-as.key", "no_certificate_found"),
        ("garbage.key", "bad_key"),
        ("empty.key", "empty"),
    ] {
        let msg = run.expect("bad", &format!("parse:{file}"), "error", Some(class));
        assert!(msg.contains(file), "{file}: {msg}");
    }
    let msg = run.assertion("bad", "parse:cert-as.key")["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("found CERTIFICATE"), "{msg}");
    run.expect("bad", "exists:absent.crt", "fail", Some("not_found"));
    assert_eq!(
        run.check("bad")["facts"]["files"].as_array().unwrap().len(),
        13
    );
}

#[test]
fn unreadable_file_is_permission_denied() {
    if !is_root() {
        println!("skipped unreadable_file_is_permission_denied: needs root to run as nobody");
        return;
    }
    let d = Dir::new();
    d.write("secret.key", "not read");
    d.chmod("secret.key", 0o600);
    let checks =
        "  - name: locked\n    files:\n      - {path: secret.key, kind: key, mode: \"0600\"}\n";
    let run = d.gate_as(checks, &[], Some(65534));
    run.expect("locked", "mode:secret.key", "pass", None);
    let msg = run.expect(
        "locked",
        "parse:secret.key",
        "error",
        Some("permission_denied"),
    );
    assert!(msg.contains("permission denied"), "{msg}");
}

#[test]
fn a_fifo_is_refused_at_once_without_hanging_the_gate() {
    let d = Dir::new();
    nix::unistd::mkfifo(
        &d.path("stuck.crt"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let checks =
        "  - name: stuck\n    timeout: 1s\n    files:\n      - {path: stuck.crt, kind: cert}\n";
    let clock = Instant::now();
    let run = d.gate(checks, &[]);
    assert!(
        clock.elapsed() < Duration::from_secs(10),
        "took {:?}",
        clock.elapsed()
    );
    let msg = run.expect(
        "stuck",
        "parse:stuck.crt",
        "error",
        Some("not_regular_file"),
    );
    assert!(msg.contains("stuck.crt: is a FIFO"), "{msg}");
    assert!(msg.contains("expected a regular file"), "{msg}");
}

#[test]
fn client_certificate_files_validate_for_client_use() {
    let d = Dir::new();
    let p = pki();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = params("vault-admin-prod", &[], false);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let admin = made(&params.signed_by(&key, &p.inter.issuer).unwrap(), &key);
    d.write("admin.crt", &admin.cert);
    d.write(
        "ca_chain.pem",
        cat(&[&p.inter.made.cert, &p.root.made.cert]),
    );
    let run = d.gate(
        r#"  - name: admin
    files:
      - {path: admin.crt, kind: cert, ca_file: ca_chain.pem}
    expect: {chain: valid}
"#,
        &["--at", AT],
    );
    // A clientAuth-only identity is valid for what it is for; only a TLS listener needs serverAuth.
    run.expect("admin", "chain:admin.crt", "pass", None);
}

#[test]
fn a_long_list_is_judged_in_entry_order() {
    // Long enough to be split across threads; a bad file in the middle of every slice.
    let d = Dir::new();
    let p = pki();
    d.write("root.pem", &p.root.made.cert);
    d.write("int.pem", &p.inter.made.cert);
    let mut checks = String::from("  - name: many\n    expect: {chain: valid}\n    files:\n");
    let names: Vec<String> = (0..300).map(|i| format!("c{i:03}.crt")).collect();
    for (i, n) in names.iter().enumerate() {
        match i % 97 {
            50 => d.write(n, "not a certificate"),
            _ => d.write(n, cat(&[&p.leaf.cert, &p.inter.made.cert])),
        };
        checks.push_str(&format!(
            "      - {{path: {n}, kind: chain, ca_file: root.pem}}\n"
        ));
    }
    let run = d.gate(&checks, &["--at", AT]);
    let c = run.check("many");
    let modes: Vec<&str> = c["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .filter(|n| n.starts_with("exists:"))
        .collect();
    let want: Vec<String> = names.iter().map(|n| format!("exists:{n}")).collect();
    assert_eq!(modes, want);
    let files: Vec<&str> = c["facts"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(files.len(), 300);
    assert!(files
        .iter()
        .zip(&names)
        .all(|(f, n)| f.ends_with(n.as_str())));
    for bad in [50, 147, 244] {
        let a = run.assertion("many", &format!("parse:c{bad:03}.crt"));
        assert_eq!(a["status"], "error", "{a}");
    }
    run.expect("many", "chain:c000.crt", "pass", None);
    run.expect("many", "chain:c299.crt", "pass", None);
    assert_eq!(run.status("many"), "error");
}
