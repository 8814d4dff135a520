//! Seed corpora: the project's own suites (checks/, tests/data/, YAML blocks of the docs),
//! certificate sets from the test PKI, and small hand-written inputs for the other parsers.

use crate::pki::Pki;
use rotcheck::rotate::material::CertId;
use rotcheck::rotate::state::{CertChange, GateSummary, PlanState, RunStatus, StepStatus};
use std::path::Path;

/// One seed: (target, file name, bytes).
pub type Seed = (&'static str, String, Vec<u8>);

/// Every seed, reading suites from the repository at `repo`.
pub fn all(repo: &Path) -> Vec<Seed> {
    let mut out = suites(repo);
    let pki = Pki::generate();
    out.extend(certs(&pki));
    let ocsp = crate::ocsp_seeds::seeds(&pki).into_iter();
    out.extend(ocsp.map(|(name, bytes)| seed("ocsp_response", name, bytes)));
    let jwks = crate::jwks_seeds::seeds().into_iter();
    out.extend(jwks.map(|(name, bytes)| seed("jwks", name, bytes)));
    out.extend(webconfigs());
    out.extend(fixed("probe_query", PROBE_QUERIES));
    out.extend(vault_bodies());
    out.extend(states());
    out
}

fn seed(target: &'static str, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Seed {
    (target, name.into(), bytes.into())
}

fn fixed(target: &'static str, items: &[&str]) -> Vec<Seed> {
    let named = items.iter().enumerate();
    named
        .map(|(i, s)| seed(target, format!("{i:02}"), s.as_bytes()))
        .collect()
}

/// Suite files of the repository and the ```yaml blocks of its docs.
fn suites(repo: &Path) -> Vec<Seed> {
    let mut out = Vec::new();
    for dir in ["checks", "tests/data/bad"] {
        for (name, text) in files(&repo.join(dir), ".yaml") {
            let text = relative_env_file(&String::from_utf8_lossy(&text));
            let name = format!("{}-{name}", dir.replace('/', "-"));
            out.push(seed("suite", name, text));
        }
    }
    let docs = files(&repo.join("docs"), ".md");
    let readme = std::fs::read(repo.join("README.md")).map(|t| ("README.md".to_string(), t));
    for (name, text) in docs.into_iter().chain(readme) {
        for (i, block) in yaml_blocks(&String::from_utf8_lossy(&text)).enumerate() {
            out.push(seed("suite", format!("doc-{name}-{i:02}"), block));
        }
    }
    out.push(seed("suite", "env-file", ENV_SUITE));
    out
}

/// The suite target skips suites whose `env_file` is absolute (it could name any file);
/// as seeds they would fuzz nothing past the first parse, so their env file is made relative.
fn relative_env_file(text: &str) -> String {
    text.replace("\nenv_file: /", "\nenv_file: ")
}

/// A suite with an env file, then (after the NUL) an env file body.
const ENV_SUITE: &str = "suite: s\nenv_file: app.env\nvars: { a: x, b: \"${a}/y\" }\nchecks:\n  - name: c\n    files: [{ path: \"${b}\", kind: cert }]\n\0# c\nexport A='x y'\nB=\"q\"\nC=plain # note\n";

fn files(dir: &Path, ext: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read(e.path()).ok()?;
            name.ends_with(ext).then_some((name, text))
        })
        .collect();
    out.sort();
    out
}

fn yaml_blocks(md: &str) -> impl Iterator<Item = String> + '_ {
    md.split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(b, _)| b.to_string()))
}

/// Presented PEM, a NUL, then the CA file's PEM; and raw DER.
fn certs(p: &Pki) -> Vec<Seed> {
    let (leaf, int, root) = (&p.leaf, &p.intermediate, &p.root);
    let join = |parts: &[&str]| parts.concat().into_bytes();
    let with_ca = |presented: &[&str], ca: &[&str]| {
        let mut b = join(presented);
        b.push(0);
        b.extend(join(ca));
        b
    };
    vec![
        seed(
            "certs",
            "chain",
            with_ca(&[&leaf.cert_pem, &int.cert_pem], &[&root.cert_pem]),
        ),
        seed(
            "certs",
            "leaf-only",
            with_ca(&[&leaf.cert_pem], &[&int.cert_pem, &root.cert_pem]),
        ),
        seed(
            "certs",
            "key-and-chain",
            with_ca(
                &[&leaf.key_pem, &leaf.cert_pem, &int.cert_pem],
                &[&root.cert_pem],
            ),
        ),
        seed(
            "certs",
            "wrong-key",
            with_ca(
                &[&root.key_pem, &leaf.cert_pem],
                &[&int.cert_pem, &root.cert_pem],
            ),
        ),
        seed(
            "certs",
            "client",
            with_ca(&[&p.client.key_pem, &p.client.cert_pem], &[&int.cert_pem]),
        ),
        seed("certs", "lone", join(&[&p.lone.cert_pem, &p.lone.key_pem])),
        seed("certs", "ca-chain", join(&[&int.cert_pem, &root.cert_pem])),
        seed("certs", "root-der", root.cert_der.clone()),
        seed(
            "certs",
            "chain-der",
            [&leaf.cert_der[..], &int.cert_der, &root.cert_der].concat(),
        ),
    ]
}

fn webconfigs() -> Vec<Seed> {
    let hash = bcrypt::hash_with_salt("secret", 4, *b"rotcheck-fuzz-16").expect("bcrypt");
    let users = format!(
        "basic_auth_users:\n  prometheus: '{}'\n",
        hash.format_for_version(bcrypt::Version::TwoY)
    );
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let mtls = format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS12\n  max_version: TLS13\n  prefer_server_cipher_suites: true\n");
    let headers = "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n";
    [
        String::new(),
        tls.to_string(),
        mtls.clone(),
        users.clone(),
        headers.to_string(),
        format!("{mtls}{users}{headers}"),
        "tls_server_config:\n  cert_file: client.crt\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n".into(),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, t)| seed("webconfig", format!("{i:02}"), t))
    .collect()
}

const PROBE_QUERIES: &[&str] = &[
    "check=admin-client-files",
    "check=agent%20app%2Fa",
    "check=a+b",
    "check=x&check=y",
    "target=https://example.test&module=x",
    "check=%zz",
    "check=%E2%9C%93",
    "check",
    "&&check=ok&",
    "",
];

/// (HTTP status, body); the seed is the status as two big-endian bytes, then the body.
const VAULT_BODIES: &[(u16, &str)] = &[
    (403, "{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\\n\"]}"),
    (400, "{\"errors\":[\"2 errors occurred:\\n\\t* invalid token hvs.AAAAAAAAAAAAAAAAAAAAAA\\n\\t* x\\n\\n\"]}"),
    (200, "{\"data\":{\"keys\":[\"a\"]},\"warnings\":[\"w\"],\"errors\":[]}"),
    (204, ""),
    (503, "<html><body>503 Service Unavailable</body></html>"),
    (500, "{\"errors\":[\"internal error\", 7, null]}"),
    (200, "not json at all hvs.FuzzTokenThatMustNeverPrint0123"),
];

fn vault_bodies() -> Vec<Seed> {
    let named = VAULT_BODIES.iter().enumerate();
    named
        .map(|(i, (status, body))| {
            let bytes = [&status.to_be_bytes()[..], body.as_bytes()].concat();
            seed("vault_body", format!("{i:02}"), bytes)
        })
        .collect()
}

/// State files as `rotate plan` writes them, in several stages of a run.
fn states() -> Vec<Seed> {
    let mut s = PlanState::fresh("prod", &["admin-client", "vault-server", "agents"]);
    let mut out = vec![seed("state_file", "fresh", json(&s))];
    let id = CertId {
        serial: "1a2b".into(),
        sha256: "ab".repeat(32),
        subject_cn: "vault.example.test".into(),
        not_after: "2027-01-15T08:00:00Z".into(),
    };
    let step = s.step_mut("vault-server");
    step.status = StepStatus::Applied;
    step.attempts = 2;
    step.changed = true;
    step.certs.push(CertChange {
        path: "/etc/vault/tls/vault.crt".into(),
        old: Some(id.clone()),
        new: None,
    });
    step.gate = Some(GateSummary {
        stage: "vault-server".into(),
        status: "failed".into(),
        passed: 3,
        failed: 1,
        failing: vec!["vault-tls: chain: incomplete".into()],
    });
    out.push(seed("state_file", "applied", json(&s)));
    s.status = RunStatus::Failed;
    s.step_mut("agents").status = StepStatus::Failed;
    s.step_mut("agents").message = Some("reload failed".into());
    out.push(seed("state_file", "failed", json(&s)));
    out
}

fn json(s: &PlanState) -> Vec<u8> {
    serde_json::to_vec_pretty(s).expect("state serializes")
}
