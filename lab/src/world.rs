//! The standard lab world, modelled on the seeds: a `pki-prod` intermediate mount with the
//! admin/server/agent/app roles, cert auth with the admin and two agent mappings (with
//! `drift`, app-a's still carries `debug-policy`, so drift detection has something to find),
//! their policies,
//! a KV v2 `secret/` mount with app-a's seed, and every credential file on disk.

use crate::layout::{
    render_env, render_suite, write_file, LabFiles, CERT_MODE, KEY_MODE, SUITE_TEMPLATE,
};
use crate::pki::{CertKey, LabPki, LeafSpec};
use crate::vault::http::{Body, Op};
use crate::vault::Vault;
use crate::LabError;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// DNS suffix of every lab name.
pub const DOMAIN: &str = "lab.rotcheck.test";
/// The Vault listener's name (SNI and first DNS SAN).
pub const SERVER_NAME: &str = "vault.lab.rotcheck.test";
/// The real OpenBao listener's name: the seeds' SNI.
pub const REAL_SERVER_NAME: &str = "vault.prod.privsec.ch";
/// The agent version the emulator's suite states (the seeds' agents run 1.21.1).
pub const SEED_AGENT_VERSION: &str = "1.21.1";
/// CN of the admin client certificate.
pub const ADMIN_CN: &str = "vault-admin-lab";
/// The PKI mount that issues from the lab intermediate.
pub const PKI_MOUNT: &str = "pki-prod";
/// Agent apps and the policies their cert-auth mappings carry.
pub const AGENTS: &[(&str, &[&str])] = &[("app-a", &["app-a-issue"]), ("app-b", &["app-b-issue"])];

/// The policy a drifted mapping still carries (`LabConfig::drift`).
pub const DRIFT_POLICY: &str = "debug-policy";

const HOUR: u64 = 3600;

/// CN of an app's agent identity (`agent-app-a.lab.rotcheck.test`).
pub fn agent_cn(app: &str) -> String {
    format!("agent-{app}.{DOMAIN}")
}

/// The domain an app's leaf certificates live under (`app-a.lab.rotcheck.test`).
pub fn app_domain(app: &str) -> String {
    format!("{app}.{DOMAIN}")
}

/// Issues every identity and writes every credential file of the layout.
pub(crate) fn write_credentials(
    files: &LabFiles,
    pki: &LabPki,
    server: &CertKey,
) -> Result<(), LabError> {
    let chain = pki.ca_chain_pem();
    let intermediate = pki.intermediate().cert_pem();
    write_file(&files.root_ca, pki.root().cert_pem().as_bytes(), CERT_MODE)?;
    write_file(&files.intermediate_ca, intermediate.as_bytes(), CERT_MODE)?;
    write_file(&files.ca_chain, chain.as_bytes(), CERT_MODE)?;
    write_file(&files.server_ca_chain, chain.as_bytes(), CERT_MODE)?;
    write_file(&files.proxy_ca_chain, chain.as_bytes(), CERT_MODE)?;
    write_pair(&files.server_cert, &files.server_key, server)?;
    write_file(
        &files.server_fullchain,
        pki.fullchain_pem(server).as_bytes(),
        CERT_MODE,
    )?;
    let admin =
        pki.issue(&LeafSpec::client(ADMIN_CN).valid_for(Duration::from_secs(720 * HOUR)))?;
    write_pair(&files.admin.cert, &files.admin.key, &admin)?;
    write_file(&files.admin.ca, intermediate.as_bytes(), CERT_MODE)?;
    for id in &files.agents {
        let spec = LeafSpec::client(&agent_cn(&id.name)).valid_for(Duration::from_secs(72 * HOUR));
        write_pair(&id.cert, &id.key, &pki.issue(&spec)?)?;
        write_file(&id.ca, chain.as_bytes(), CERT_MODE)?;
    }
    for (leaf, (app, _)) in files.app_leaves.iter().zip(AGENTS) {
        let domain = app_domain(app);
        let www = format!("www.{domain}");
        let cert = pki.issue(&LeafSpec::server(&domain, &[&domain, &www]))?;
        write_file(
            &leaf.fullchain,
            pki.fullchain_pem(&cert).as_bytes(),
            CERT_MODE,
        )?;
        write_file(&leaf.key, cert.key_pem().as_bytes(), KEY_MODE)?;
    }
    Ok(())
}

fn write_pair(
    cert_path: &std::path::Path,
    key_path: &std::path::Path,
    ck: &CertKey,
) -> Result<(), LabError> {
    write_file(key_path, ck.key_pem().as_bytes(), KEY_MODE)?;
    write_file(cert_path, ck.cert_pem().as_bytes(), CERT_MODE)
}

/// Writes `lab.env`, `lab.yaml` and the root token file for a running lab.
pub(crate) fn write_run_files(
    files: &LabFiles,
    addr: SocketAddr,
    server_name: &str,
    version: &str,
    agent_version: &str,
    root_token: &str,
) -> Result<(), LabError> {
    let path = |p: &std::path::Path| p.display().to_string();
    let settings = [
        ("ADDR", format!("https://{addr}")),
        ("CACERT", path(&files.ca_chain)),
        ("CLIENT_CERT", path(&files.admin.cert)),
        ("CLIENT_KEY", path(&files.admin.key)),
        ("TLS_SERVER_NAME", server_name.to_string()),
    ];
    // The same values under both prefixes: `vault` reads VAULT_*, `bao` BAO_*.
    let names: Vec<(String, String)> = ["VAULT_", "BAO_"]
        .iter()
        .flat_map(|prefix| {
            settings
                .iter()
                .map(move |(k, v)| (format!("{prefix}{k}"), v.clone()))
        })
        .collect();
    let pairs: Vec<(&str, String)> = names.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let env = render_env(&pairs);
    write_file(&files.env, env.as_bytes(), CERT_MODE)?;
    let vars = [
        ("lab_addr", addr.to_string()),
        ("sni", server_name.to_string()),
        ("lab_dir", path(&files.dir)),
        ("vault_version", version.to_string()),
        ("agent_version", agent_version.to_string()),
    ];
    write_file(
        &files.suite,
        render_suite(SUITE_TEMPLATE, &vars).as_bytes(),
        CERT_MODE,
    )?;
    write_file(
        &files.root_token,
        format!("{root_token}\n").as_bytes(),
        KEY_MODE,
    )
}

/// Mounts, policies, mappings, roles and KV data of the standard world.
pub(crate) fn seed(vault: &mut Vault, issuing_ca_pem: &str, drift: bool) -> Result<(), LabError> {
    vault.mount_pki(PKI_MOUNT);
    call(
        vault,
        "sys/mounts/secret",
        json!({"type": "kv", "options": {"version": "2"}, "description": "key/value secret storage"}),
    )?;
    call(vault, "sys/auth/cert", json!({"type": "cert"}))?;
    for (path, body) in writes(issuing_ca_pem, SERVER_NAME, drift) {
        call(vault, &path, body)?;
    }
    Ok(())
}

/// Every write after the mounts, in order: policies, the cert-auth mappings (on
/// `issuing_ca_pem`), the `pki-prod` roles (the listener's for `server_name`) and app-a's KV
/// seed. The emulator and the real lab build the same world from it.
pub(crate) fn writes(issuing_ca_pem: &str, server_name: &str, drift: bool) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = policies()
        .into_iter()
        .map(|(name, text)| {
            (
                format!("sys/policies/acl/{name}"),
                json!({ "policy": text }),
            )
        })
        .collect();
    v.push((
        "auth/cert/certs/vault-admin".into(),
        json!({
            "certificate": issuing_ca_pem, "allowed_common_names": "vault-admin-*",
            "token_policies": "lab-admin", "token_ttl": "1h",
        }),
    ));
    for (i, (app, policies)) in AGENTS.iter().enumerate() {
        let mut policies: Vec<&str> = policies.to_vec();
        if drift && i == 0 {
            policies.push(DRIFT_POLICY);
        }
        v.push((
            format!("auth/cert/certs/agent-{app}"),
            json!({
                "certificate": issuing_ca_pem, "allowed_common_names": format!("agent-{app}.*"),
                "token_policies": policies.join(","), "token_ttl": "1h",
            }),
        ));
    }
    for (name, body) in pki_roles(server_name) {
        v.push((format!("{PKI_MOUNT}/roles/{name}"), body));
    }
    v.push((
        "secret/data/app-a/config".into(),
        json!({"data": {"owner": "app-a", "greeting": "hello from the lab"}}),
    ));
    v
}

fn policies() -> Vec<(String, String)> {
    let mut v = vec![
        ("lab-admin".to_string(), r#"path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }"#.to_string()),
        ("debug-policy".into(), "# marker policy left on a mapping by an earlier debug session\npath \"sys/mounts\" { capabilities = [\"read\"] }\n".into()),
        ("proxy-ca-read".into(), format!("path \"{PKI_MOUNT}/cert/ca_chain\" {{ capabilities = [\"read\"] }}\n")),
    ];
    for (app, _) in AGENTS {
        let text = format!(
            "path \"{PKI_MOUNT}/issue/nginx-{app}\" {{ capabilities = [\"create\", \"update\"] }}\n\
             path \"secret/data/{app}/*\" {{ capabilities = [\"read\"] }}\n"
        );
        v.push((format!("{app}-issue"), text));
    }
    v
}

fn pki_roles(server_name: &str) -> Vec<(String, Value)> {
    let client = |domain: &str, max: &str| {
        json!({
            "allowed_domains": [domain], "allow_bare_domains": true, "server_flag": false,
            "client_flag": true, "max_ttl": max, "ttl": max, "key_type": "ec",
        })
    };
    let mut v = vec![
        ("admin-client".to_string(), client(ADMIN_CN, "720h")),
        (
            "vault-server".into(),
            json!({
                "allowed_domains": [server_name, "localhost"], "allow_bare_domains": true,
                "allow_ip_sans": true, "server_flag": true, "client_flag": false,
                "max_ttl": "2160h", "ttl": "720h", "key_type": "ec",
            }),
        ),
    ];
    for (app, _) in AGENTS {
        v.push((format!("agent-{app}"), client(&agent_cn(app), "168h")));
        v.push((
            format!("nginx-{app}"),
            json!({
                "allowed_domains": [app_domain(app)], "allow_bare_domains": true,
                "allow_subdomains": true, "server_flag": true, "client_flag": false,
                "max_ttl": "720h", "ttl": "720h", "key_type": "ec",
            }),
        ));
    }
    v
}

fn call(vault: &mut Vault, path: &str, body: Value) -> Result<(), LabError> {
    let resp = vault.call_as_root(Op::Write, path, body);
    if resp.status < 400 {
        return Ok(());
    }
    let message = match resp.body {
        Body::Json(v) => v.to_string(),
        _ => String::new(),
    };
    Err(LabError::Api {
        method: "POST".into(),
        path: path.into(),
        status: resp.status,
        message,
    })
}
