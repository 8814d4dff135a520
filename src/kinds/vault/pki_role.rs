//! `vault_pki_role`: reads a PKI role (`<mount>/roles/<name>`) and checks it is no broader than
//! intended — domains, subdomains, maximum TTL, client/server EKU flags (seed 002's per-app
//! nginx roles "allowed only the intended domains").

use super::{list, mount_missing, outcome, read_data, settle, Read};
use crate::human::ttl;
use crate::kinds::{CheckKind, Ctx};
use crate::model::{Assertion, Outcome};
use crate::suite::Dur;
use crate::vault::auth::strings;
use crate::vault::{encode_path, VaultError};
use serde::Deserialize;
use serde_json::Value;

/// Vault's default maximum lease TTL (768 h), what `max_ttl: 0` falls back to.
const SYSTEM_MAX_TTL: u64 = 768 * 3600;

/// `vault_pki_role`: a PKI role to read and compare.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultPkiRoleSpec {
    pub mount: String,
    pub name: String,
}

/// What a `vault_pki_role` check may expect of the role.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PkiRoleExpect {
    pub allowed_domains: Option<Vec<String>>,
    pub allowed_domains_at_most: Option<Vec<String>>,
    pub allow_subdomains: Option<bool>,
    pub max_ttl: Option<Dur>,
    pub client_flag: Option<bool>,
    pub server_flag: Option<bool>,
}

/// The `vault_pki_role` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultPkiRole;

impl CheckKind for VaultPkiRole {
    const NAME: &'static str = "vault_pki_role";
    const CONNECTS: bool = true;
    type Spec = VaultPkiRoleSpec;
    type Expect = PkiRoleExpect;

    async fn probe(spec: &VaultPkiRoleSpec, expect: &PkiRoleExpect, ctx: &Ctx) -> Outcome {
        run(spec, expect, ctx).await
    }
}

pub async fn run(spec: &VaultPkiRoleSpec, expect: &PkiRoleExpect, ctx: &Ctx) -> Outcome {
    settle(probe(spec, expect, ctx).await)
}

async fn probe(
    spec: &VaultPkiRoleSpec,
    expect: &PkiRoleExpect,
    ctx: &Ctx,
) -> Result<Outcome, VaultError> {
    let path = format!(
        "{}/roles/{}",
        encode_path(&spec.mount),
        encode_path(&spec.name)
    );
    let data = match read_data(ctx, &path, "role").await? {
        Read::Found(data) => data,
        Read::Missing(e) => return Ok(outcome(vec![missing(spec, &path, &e)])),
    };
    Ok(outcome(evaluate(&Role::from(&data), expect, &path)))
}

fn missing(spec: &VaultPkiRoleSpec, path: &str, e: &VaultError) -> Assertion {
    if mount_missing(e) {
        return Assertion::fail(
            "role",
            "mount_missing",
            format!(
                "no secrets engine is mounted at {}/; expected a PKI mount",
                spec.mount.trim_matches('/')
            ),
        );
    }
    Assertion::fail(
        "role",
        "role_missing",
        format!("no PKI role at {path}; expected one; create it (vault write {path} allowed_domains=...)"),
    )
}

/// The fields of a role that decide how broad it is.
#[derive(Debug, Clone, PartialEq, Default)]
struct Role {
    allowed_domains: Vec<String>,
    allow_subdomains: bool,
    allow_any_name: bool,
    allow_glob_domains: bool,
    max_ttl: u64,
    client_flag: bool,
    server_flag: bool,
}

impl Role {
    fn from(d: &Value) -> Role {
        let flag = |k: &str, default: bool| d.get(k).and_then(Value::as_bool).unwrap_or(default);
        Role {
            allowed_domains: strings(d.get("allowed_domains")),
            allow_subdomains: flag("allow_subdomains", false),
            allow_any_name: flag("allow_any_name", false),
            allow_glob_domains: flag("allow_glob_domains", false),
            max_ttl: super::seconds(d.get("max_ttl")),
            client_flag: flag("client_flag", true),
            server_flag: flag("server_flag", true),
        }
    }
}

fn evaluate(role: &Role, expect: &PkiRoleExpect, path: &str) -> Vec<Assertion> {
    let mut a = vec![Assertion::pass(
        "role",
        format!(
            "{path}: allowed_domains [{}], allow_subdomains {}, max_ttl {}",
            list(role.allowed_domains.iter()),
            role.allow_subdomains,
            ttl_text(role.max_ttl)
        ),
    )];
    if let Some(exact) = &expect.allowed_domains {
        a.push(assert_domains("allowed_domains", role, exact, true));
    }
    if let Some(most) = &expect.allowed_domains_at_most {
        a.push(assert_domains("allowed_domains_at_most", role, most, false));
    }
    if let Some(want) = expect.allow_subdomains {
        a.push(assert_flag("allow_subdomains", role.allow_subdomains, want));
    }
    if let Some(limit) = expect.max_ttl {
        a.push(assert_max_ttl(role.max_ttl, limit.0.as_secs()));
    }
    if let Some(want) = expect.client_flag {
        a.push(assert_flag("client_flag", role.client_flag, want));
    }
    if let Some(want) = expect.server_flag {
        a.push(assert_flag("server_flag", role.server_flag, want));
    }
    a
}

fn ttl_text(s: u64) -> String {
    if s == 0 {
        "unset (the mount's maximum)".into()
    } else {
        ttl(s)
    }
}

/// Exactly the listed domains (`exact`), or a subset of them.
fn assert_domains(name: &str, role: &Role, listed: &[String], exact: bool) -> Assertion {
    if role.allow_any_name {
        return Assertion::fail(
            name,
            "role_too_broad",
            "allow_any_name is true: the role issues certificates for any name; expected only the listed domains; set allow_any_name=false",
        );
    }
    let extra: Vec<&String> = role
        .allowed_domains
        .iter()
        .filter(|d| !listed.contains(d))
        .collect();
    let missing: Vec<&String> = listed
        .iter()
        .filter(|d| !role.allowed_domains.contains(d))
        .collect();
    let found = list(role.allowed_domains.iter());
    let glob = if role.allow_glob_domains {
        " (allow_glob_domains is on)"
    } else {
        ""
    };
    if !extra.is_empty() {
        return Assertion::fail(
            name,
            "role_too_broad",
            format!(
                "the role allows [{found}]{glob}; expected {} [{}]; remove {} from allowed_domains",
                if exact { "exactly" } else { "at most" },
                list(listed.iter()),
                list(extra.into_iter())
            ),
        );
    }
    if exact && !missing.is_empty() {
        return Assertion::fail(
            name,
            "domain_missing",
            format!(
                "the role allows [{found}]; expected exactly [{}]; missing {}: leaf issuance for it will fail",
                list(listed.iter()),
                list(missing.into_iter())
            ),
        );
    }
    Assertion::pass(name, format!("allowed_domains [{found}] as expected"))
}

/// A flag that widens the role when true: true where false is expected is `role_too_broad`.
fn assert_flag(name: &str, found: bool, want: bool) -> Assertion {
    if found == want {
        return Assertion::pass(name, format!("{name} is {found}, as expected"));
    }
    let (reason, fix) = if found {
        ("role_too_broad", format!("set {name}=false on the role"))
    } else {
        ("flag_mismatch", format!("set {name}=true on the role"))
    };
    Assertion::fail(
        name,
        reason,
        format!("{name} is {found}; expected {want}; {fix}"),
    )
}

fn assert_max_ttl(found: u64, limit: u64) -> Assertion {
    if found != 0 && found <= limit {
        return Assertion::pass(
            "max_ttl",
            format!("max_ttl {} ≤ {}", ttl(found), ttl(limit)),
        );
    }
    let what = if found == 0 {
        format!(
            "unset (0: the mount's maximum, {} by default)",
            ttl(SYSTEM_MAX_TTL)
        )
    } else {
        ttl(found)
    };
    Assertion::fail(
        "max_ttl",
        "ttl_too_long",
        format!(
            "max_ttl is {what}; expected at most {}; set max_ttl={} on the role",
            ttl(limit),
            ttl(limit)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn broad_roles_fail() {
        let r = Role::from(&json!({"allowed_domains": ["app-a.prod", "example.com"],
            "allow_subdomains": true, "max_ttl": 2764800, "client_flag": true}));
        let listed = vec!["app-a.prod".to_string()];
        assert_eq!(
            assert_domains("d", &r, &listed, false).reason.as_deref(),
            Some("role_too_broad")
        );
        assert_eq!(
            assert_flag("allow_subdomains", r.allow_subdomains, false)
                .reason
                .as_deref(),
            Some("role_too_broad")
        );
        assert_eq!(
            assert_max_ttl(r.max_ttl, 72 * 3600).reason.as_deref(),
            Some("ttl_too_long")
        );
        assert_eq!(
            assert_max_ttl(0, 72 * 3600).reason.as_deref(),
            Some("ttl_too_long")
        );
        let narrow = Role::from(&json!({"allowed_domains": "app-a.prod", "max_ttl": "72h"}));
        assert_eq!(narrow.max_ttl, 259_200);
        assert_eq!(
            assert_domains("d", &narrow, &listed, true).status,
            crate::model::Status::Pass
        );
        let wider = vec!["app-a.prod".to_string(), "app-a.internal".into()];
        assert_eq!(
            assert_domains("d", &narrow, &wider, true).reason.as_deref(),
            Some("domain_missing")
        );
    }
}
