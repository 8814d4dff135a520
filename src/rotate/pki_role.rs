//! `rotate pki-role`: upserts a per-app PKI role `<mount>/roles/<name>` that allows only the
//! intended domains. A POST replaces the whole role, so the full role is sent — but only when
//! a field given differs from what Vault holds.

use super::ctx::{write_changes, Ctx, Done, RotateError};
use super::spec::PkiRoleSpec;
use crate::vault::auth::strings;
use serde_json::{json, Value};

/// Runs `pki-role`.
pub async fn run(spec: &PkiRoleSpec, cx: &mut Ctx<'_>) -> Result<Done, RotateError> {
    let path = format!("{}/roles/{}", spec.mount, spec.name);
    let current = cx.vault.read(&path).await?;
    let body = body(spec);
    let changes = match &current {
        None => vec!["new role".to_string()],
        Some(cur) => differences(spec, &body, cur),
    };
    if changes.is_empty() {
        cx.say(format!(
            "unchanged {path}: allows only {}",
            spec.allowed_domains.join(", ")
        ));
        return Ok(Done::default());
    }
    write_changes(cx, &path, &body, &changes).await
}

fn body(spec: &PkiRoleSpec) -> Value {
    let mut b = json!({
        "allowed_domains": spec.allowed_domains,
        "allow_bare_domains": spec.allow_bare_domains,
        "allow_subdomains": spec.allow_subdomains,
        "allow_glob_domains": spec.allow_glob_domains,
        "allow_any_name": false,
        "allow_ip_sans": spec.allow_ip_sans,
        "allow_localhost": spec.allow_localhost,
        "enforce_hostnames": true,
        "server_flag": spec.server_flag,
        "client_flag": spec.client_flag,
        "key_type": spec.key_type,
        "key_bits": spec.key_bits,
    });
    for (k, v) in [("ttl", &spec.ttl), ("max_ttl", &spec.max_ttl)] {
        if let Some(t) = v {
            b[k] = json!(secs(t));
        }
    }
    b
}

fn secs(t: &str) -> u64 {
    crate::suite::parse_duration(t)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Fields of the body that differ from the role Vault holds.
fn differences(spec: &PkiRoleSpec, body: &Value, cur: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let have = strings(cur.get("allowed_domains"));
    let mut a = have.clone();
    let mut b = spec.allowed_domains.clone();
    a.sort();
    b.sort();
    if a != b {
        out.push(format!(
            "allowed_domains [{}] → [{}]",
            have.join(", "),
            spec.allowed_domains.join(", ")
        ));
    }
    let Some(map) = body.as_object() else {
        return out;
    };
    for (k, want) in map {
        if k == "allowed_domains" || (k == "key_bits" && spec.key_bits == 0) {
            continue;
        }
        let got = cur.get(k).cloned().unwrap_or(Value::Null);
        if !same(&got, want) {
            out.push(format!("{k} {got} → {want}"));
        }
    }
    out
}

/// Equal as JSON, treating numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PkiRoleSpec {
        PkiRoleSpec {
            mount: "pki".into(),
            name: "nginx-app-a".into(),
            allowed_domains: vec!["app-a.example".into()],
            allow_bare_domains: true,
            allow_subdomains: false,
            allow_glob_domains: false,
            allow_ip_sans: false,
            allow_localhost: false,
            server_flag: true,
            client_flag: false,
            key_type: "ec".into(),
            key_bits: 0,
            ttl: None,
            max_ttl: Some("720h".into()),
        }
    }

    #[test]
    fn differences_are_by_field() {
        let s = spec();
        let b = body(&s);
        let mut cur = b.clone();
        cur["key_bits"] = json!(256);
        cur["ttl"] = json!(0);
        assert!(differences(&s, &b, &cur).is_empty());
        cur["allowed_domains"] = json!(["app-a.example", "evil.example"]);
        cur["client_flag"] = json!(true);
        let d = differences(&s, &b, &cur);
        assert_eq!(d.len(), 2, "{d:?}");
    }
}
