//! `rotate pki-role`: upserts a per-app PKI role `<mount>/roles/<name>` that allows only the
//! intended domains. Only the fields the user named are compared and sent: an existing role is
//! changed with a JSON merge patch of the differing fields (so `key_type`, `organization`,
//! `no_store` … stay as they are), falling back to a read-modify-write POST of the whole role
//! on servers without PATCH. A new role is created from the named fields plus the safe
//! defaults below for the few fields that would otherwise widen what it may issue.

use super::ctx::{write_changes, Ctx, Done, RotateError, Verb};
use super::spec::PkiRoleSpec;
use crate::vault::auth::strings;
use serde_json::{json, Map, Value};

/// A new role gets these when the user did not name them: Vault's own defaults allow
/// localhost and any IP SAN, which a role "for these domains only" must not.
const NEW_ROLE_DEFAULTS: &[(&str, bool)] = &[
    ("allow_localhost", false),
    ("allow_ip_sans", false),
    ("enforce_hostnames", true),
];

/// Runs `pki-role`.
pub async fn run(spec: &PkiRoleSpec, cx: &mut Ctx<'_>) -> Result<Done, RotateError> {
    let path = format!("{}/roles/{}", spec.mount, spec.name);
    let wanted = wanted(spec);
    let Some(current) = cx.vault.read(&path).await? else {
        let body = Value::Object(new_role(wanted));
        return write_changes(cx, Verb::Post, &path, &body, &["new role".to_string()]).await;
    };
    let patch = differing(&wanted, &current);
    if patch.is_empty() {
        cx.say(format!(
            "unchanged {path}: allows only {}",
            spec.allowed_domains.join(", ")
        ));
        return Ok(Done::default());
    }
    let changes = describe(&patch, &current);
    let body = Value::Object(patch);
    match write_changes(cx, Verb::Patch, &path, &body, &changes).await {
        Err(e) if no_patch(&e) => {
            cx.say(format!(
                "{path}: the server does not take PATCH; sending the whole role as read with the changes"
            ));
            let whole = merged(&current, &body);
            write_changes(cx, Verb::Post, &path, &whole, &changes).await
        }
        other => other,
    }
}

/// The fields the user named, as Vault writes them. `allow_any_name: false` is always part
/// of it: a role that allows any name is not one "for these domains only".
fn wanted(spec: &PkiRoleSpec) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("allowed_domains".into(), json!(spec.allowed_domains));
    m.insert("allow_any_name".into(), json!(false));
    let flags = [
        ("allow_bare_domains", spec.allow_bare_domains),
        ("allow_subdomains", spec.allow_subdomains),
        ("allow_glob_domains", spec.allow_glob_domains),
        ("allow_ip_sans", spec.allow_ip_sans),
        ("allow_localhost", spec.allow_localhost),
        ("server_flag", spec.server_flag),
        ("client_flag", spec.client_flag),
    ];
    for (k, v) in flags {
        if let Some(b) = v {
            m.insert(k.into(), json!(b));
        }
    }
    if let Some(t) = &spec.key_type {
        m.insert("key_type".into(), json!(t));
    }
    if let Some(b) = spec.key_bits {
        m.insert("key_bits".into(), json!(b));
    }
    for (k, v) in [("ttl", &spec.ttl), ("max_ttl", &spec.max_ttl)] {
        if let Some(t) = v {
            m.insert(k.into(), json!(secs(t)));
        }
    }
    m
}

fn secs(t: &str) -> u64 {
    crate::suite::parse_duration(t)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The named fields plus the safe defaults for those not named.
fn new_role(mut wanted: Map<String, Value>) -> Map<String, Value> {
    for (k, v) in NEW_ROLE_DEFAULTS {
        wanted.entry(*k).or_insert(json!(v));
    }
    wanted
}

/// The named fields whose value differs from the role Vault holds (domains as a set,
/// numbers by value). `key_bits: 0` means "the type's default" and matches whatever the
/// role holds, since Vault stores the resolved number.
fn differing(wanted: &Map<String, Value>, cur: &Value) -> Map<String, Value> {
    wanted
        .iter()
        .filter(|(k, want)| !same_field(k, want, cur))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn same_field(key: &str, want: &Value, cur: &Value) -> bool {
    let got = cur.get(key).cloned().unwrap_or(Value::Null);
    match key {
        "allowed_domains" => sorted(strings(Some(want))) == sorted(strings(Some(&got))),
        "key_bits" if want.as_u64() == Some(0) => true,
        _ => same(&got, want),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Equal as JSON, treating numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// One "field old → new" line per changed field.
fn describe(patch: &Map<String, Value>, cur: &Value) -> Vec<String> {
    patch
        .iter()
        .map(|(k, want)| {
            let got = cur.get(k).cloned().unwrap_or(Value::Null);
            format!("{k} {got} → {want}")
        })
        .collect()
}

/// The role as read, with the patch applied: for servers that only take a whole role.
fn merged(cur: &Value, patch: &Value) -> Value {
    let mut whole = cur.as_object().cloned().unwrap_or_default();
    if let Some(p) = patch.as_object() {
        whole.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Value::Object(whole)
}

/// True when the server refused the PATCH method itself (405), not its content.
fn no_patch(e: &RotateError) -> bool {
    matches!(e, RotateError::Vault { source, .. } if source.status() == Some(405))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PkiRoleSpec {
        PkiRoleSpec {
            mount: "pki".into(),
            name: "nginx-app-a".into(),
            allowed_domains: vec!["app-a.example".into()],
            allow_bare_domains: Some(true),
            allow_subdomains: None,
            allow_glob_domains: None,
            allow_ip_sans: None,
            allow_localhost: None,
            server_flag: Some(true),
            client_flag: None,
            key_type: None,
            key_bits: None,
            ttl: None,
            max_ttl: Some("720h".into()),
        }
    }

    /// A role as OpenBao 2.7 reads it back, with fields the user never named.
    fn real_role() -> Value {
        json!({
            "allow_any_name": false, "allow_bare_domains": true, "allow_localhost": true,
            "allowed_domains": ["app-a.example"], "client_flag": true, "server_flag": true,
            "key_type": "rsa", "key_bits": 3072, "organization": ["Acme"], "ou": ["Ops"],
            "no_store": true, "ttl": 2_592_000, "max_ttl": 2_592_000,
            "key_usage": ["DigitalSignature", "KeyAgreement", "KeyEncipherment"],
        })
    }

    #[test]
    fn unnamed_fields_are_never_compared_or_sent() {
        let patch = differing(&wanted(&spec()), &real_role());
        assert!(patch.is_empty(), "{patch:?}");
    }

    #[test]
    fn only_the_differing_named_fields_are_sent() {
        let mut cur = real_role();
        cur["allowed_domains"] = json!(["app-a.example", "evil.example"]);
        cur["server_flag"] = json!(false);
        let patch = differing(&wanted(&spec()), &cur);
        let keys: Vec<&str> = patch.keys().map(String::as_str).collect();
        assert_eq!(keys, ["allowed_domains", "server_flag"]);
        assert_eq!(describe(&patch, &cur).len(), 2);
    }

    #[test]
    fn named_key_type_and_any_name_are_enforced() {
        let mut s = spec();
        s.key_type = Some("ec".into());
        s.key_bits = Some(0);
        let mut cur = real_role();
        cur["allow_any_name"] = json!(true);
        let patch = differing(&wanted(&s), &cur);
        assert_eq!(patch.get("key_type"), Some(&json!("ec")));
        assert_eq!(patch.get("allow_any_name"), Some(&json!(false)));
        assert!(
            !patch.contains_key("key_bits"),
            "0 means the type's default"
        );
    }

    #[test]
    fn a_new_role_never_defaults_the_key_type_but_closes_localhost() {
        let role = new_role(wanted(&spec()));
        assert!(!role.contains_key("key_type") && !role.contains_key("key_bits"));
        assert_eq!(role.get("allow_localhost"), Some(&json!(false)));
        let mut s = spec();
        s.allow_localhost = Some(true);
        assert_eq!(
            new_role(wanted(&s)).get("allow_localhost"),
            Some(&json!(true))
        );
    }

    #[test]
    fn the_fallback_keeps_every_field_read() {
        let cur = real_role();
        let whole = merged(&cur, &json!({"server_flag": false}));
        assert_eq!(whole["organization"], json!(["Acme"]));
        assert_eq!(whole["no_store"], json!(true));
        assert_eq!(whole["server_flag"], json!(false));
    }
}
