//! `rotate cert-role`: upserts the cert-auth mapping `auth/<mount>/certs/<name>` (CA
//! certificate, allowed CNs, token policies), enabling the auth method when absent. Only the
//! fields given are compared and written; an equal mapping is left alone.

use super::ctx::{write_changes, Ctx, Done, RotateError, Verb};
use super::spec::CertRoleSpec;
use crate::certs;
use crate::vault::auth::strings;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};

/// The `--ca-file` certificates, read as a regular file with the size cap.
fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, RotateError> {
    let bytes = super::safefs::read_input(path, super::safefs::MAX_PEM_BYTES, "a CA file")
        .map_err(|e| RotateError::File(e.into()))?;
    let bytes = bytes.ok_or_else(|| {
        RotateError::Material(format!(
            "{}: no such file; expected the CA certificate the mapping trusts",
            path.display()
        ))
    })?;
    certs::parse_certs(&bytes, &path.display().to_string())
        .map_err(|e| RotateError::Material(e.to_string()))
}

/// Runs `cert-role`.
pub async fn run(spec: &CertRoleSpec, cx: &mut Ctx<'_>) -> Result<Done, RotateError> {
    let ca = read_ca_file(&spec.ca_file)?;
    let enabled = ensure_mount(spec, cx).await?;
    let path = format!("auth/{}/certs/{}", spec.mount, spec.name);
    let current = if enabled {
        cx.vault.read(&path).await?
    } else {
        None
    };
    let (body, changes) = desired(spec, &ca, current.as_ref());
    if changes.is_empty() {
        cx.say(format!(
            "unchanged {path}: CA, allowed CNs and policies already as asked"
        ));
        return Ok(Done {
            changed: !enabled,
            certs: vec![],
        });
    }
    write_changes(cx, Verb::Post, &path, &body, &changes).await
}

/// Enables cert auth at the mount when it is missing; false when it was (or would be) enabled
/// now, so there is no mapping to read yet.
async fn ensure_mount(spec: &CertRoleSpec, cx: &mut Ctx<'_>) -> Result<bool, RotateError> {
    let mounts = cx.vault.read("sys/auth").await?.unwrap_or(Value::Null);
    let key = format!("{}/", spec.mount.trim_matches('/'));
    if let Some(m) = mounts.get(&key) {
        let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "cert" {
            return Err(RotateError::Config(format!(
                "auth/{} is a {kind:?} auth method, expected \"cert\"; pick another --mount",
                spec.mount
            )));
        }
        return Ok(true);
    }
    let path = format!("sys/auth/{}", spec.mount);
    if cx.dry_run {
        cx.say(format!(
            "would POST {path} type=cert (cert auth is not enabled at auth/{})",
            spec.mount
        ));
    } else {
        cx.vault.write(&path, &json!({ "type": "cert" })).await?;
        cx.say(format!("enabled cert auth at auth/{}", spec.mount));
    }
    Ok(false)
}

/// The body to write and the differences from the current mapping (empty: nothing to do).
fn desired(
    spec: &CertRoleSpec,
    ca: &[CertificateDer<'static>],
    current: Option<&Value>,
) -> (Value, Vec<String>) {
    let cur = current.cloned().unwrap_or(Value::Null);
    let mut changes = Vec::new();
    if current.is_none() {
        changes.push("new mapping".to_string());
    }
    let ca_pem = super::material::to_pem(ca);
    let cur_ca = cur.get("certificate").and_then(Value::as_str).unwrap_or("");
    let same_ca = certs::parse_certs(cur_ca.as_bytes(), "current").is_ok_and(|c| c == ca);
    if current.is_some() && !same_ca {
        changes.push(format!("certificate → {}", spec.ca_file.display()));
    }
    let mut body = json!({ "certificate": ca_pem, "display_name": spec.name });
    let cur_cns = strings(cur.get("allowed_common_names"));
    if !spec.allowed_cn.is_empty() {
        if current.is_some() && !same_set(&cur_cns, &spec.allowed_cn) {
            changes.push(format!(
                "allowed_common_names [{}] → [{}]",
                cur_cns.join(", "),
                spec.allowed_cn.join(", ")
            ));
        }
        body["allowed_common_names"] = json!(spec.allowed_cn);
    }
    let cur_pol = current_policies(&cur);
    let want = policies(spec, &cur_pol);
    if current.is_some() && !same_set(&cur_pol, &want) {
        changes.push(format!(
            "token_policies [{}] → [{}]",
            cur_pol.join(", "),
            want.join(", ")
        ));
    }
    body["token_policies"] = json!(want);
    if let Some(ttl) = &spec.token_ttl {
        let secs = crate::suite::parse_duration(ttl)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if current.is_some() && cur.get("token_ttl").and_then(Value::as_u64) != Some(secs) {
            changes.push(format!("token_ttl → {ttl}"));
        }
        body["token_ttl"] = json!(secs);
    }
    (body, changes)
}

fn current_policies(cur: &Value) -> Vec<String> {
    let p = strings(cur.get("token_policies"));
    if p.is_empty() {
        strings(cur.get("policies"))
    } else {
        p
    }
}

/// `--policies` (or the current ones) plus `--add-policy`, minus `--remove-policy`.
fn policies(spec: &CertRoleSpec, current: &[String]) -> Vec<String> {
    let mut out: Vec<String> = spec.policies.clone().unwrap_or_else(|| current.to_vec());
    out.extend(spec.add_policy.iter().cloned());
    out.retain(|p| !spec.remove_policy.contains(p));
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let sa: std::collections::BTreeSet<_> = a.iter().collect();
    let sb: std::collections::BTreeSet<_> = b.iter().collect();
    sa == sb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CertRoleSpec {
        CertRoleSpec {
            mount: "cert".into(),
            name: "agent-app-a".into(),
            ca_file: "ca.pem".into(),
            allowed_cn: vec!["agent-a".into()],
            policies: None,
            add_policy: vec![],
            remove_policy: vec!["debug-policy".into()],
            token_ttl: None,
        }
    }

    #[test]
    fn removes_debug_policy_and_keeps_the_rest() {
        let s = spec();
        let cur = vec!["app-a-issue".to_string(), "debug-policy".to_string()];
        assert_eq!(policies(&s, &cur), vec!["app-a-issue"]);
        let mut s2 = spec();
        s2.policies = Some(vec!["x".into(), "debug-policy".into()]);
        s2.add_policy = vec!["y".into(), "x".into()];
        assert_eq!(policies(&s2, &cur), vec!["x", "y"]);
    }

    #[test]
    fn equal_mapping_has_no_changes() {
        let root = super::super::material::testpki::ca("root", None);
        let ca = super::super::material::parse_pem(&root.cert_pem, "ca").unwrap();
        let cur = json!({"certificate": root.cert_pem, "allowed_common_names": ["agent-a"],
            "token_policies": ["app-a-issue"]});
        let (_, changes) = desired(&spec(), &ca, Some(&cur));
        assert!(changes.is_empty(), "{changes:?}");
        let cur = json!({"certificate": root.cert_pem, "allowed_common_names": ["agent-a"],
            "token_policies": ["app-a-issue", "debug-policy"]});
        let (body, changes) = desired(&spec(), &ca, Some(&cur));
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(body["token_policies"], json!(["app-a-issue"]));
    }
}
