//! `vault_cert_role`: reads a cert-auth mapping (`auth/<mount>/certs/<name>`) and compares it
//! with what the agents need — the CA it trusts, the CNs it allows, the policies it attaches.
//! Catches drift: "Vault Agent looks healthy but fails to auth".

use super::PolicyExpect;
use super::{assert_policies, cannot, list, mount_missing, read_data, settle, Read};
use crate::certs;
use crate::kinds::{CheckKind, Ctx};
use crate::model::{Assertion, CertFacts, Outcome};
use crate::suite::default_cert_mount;
use crate::vault::auth::strings;
use crate::vault::{encode_path, VaultError};
use serde::Deserialize;
use serde_json::Value;

/// `vault_cert_role`: a cert-auth mapping to read and compare.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultCertRoleSpec {
    #[serde(default = "default_cert_mount")]
    pub mount: String,
    pub name: String,
}

/// What a `vault_cert_role` check may expect of the mapping.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CertRoleExpect {
    pub ca_matches: Option<String>,
    pub policies: Option<PolicyExpect>,
    pub allowed_common_names: Option<PolicyExpect>,
}

/// The `vault_cert_role` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultCertRole;

impl CheckKind for VaultCertRole {
    const NAME: &'static str = "vault_cert_role";
    const CONNECTS: bool = true;
    type Spec = VaultCertRoleSpec;
    type Expect = CertRoleExpect;

    async fn probe(spec: &VaultCertRoleSpec, expect: &CertRoleExpect, ctx: &Ctx) -> Outcome {
        run(spec, expect, ctx).await
    }
}

pub async fn run(spec: &VaultCertRoleSpec, expect: &CertRoleExpect, ctx: &Ctx) -> Outcome {
    settle(probe(spec, expect, ctx).await)
}

async fn probe(
    spec: &VaultCertRoleSpec,
    expect: &CertRoleExpect,
    ctx: &Ctx,
) -> Result<Outcome, VaultError> {
    let path = format!(
        "auth/{}/certs/{}",
        encode_path(&spec.mount),
        encode_path(&spec.name)
    );
    let data = match read_data(ctx, &path, "mapping").await? {
        Read::Found(data) => data,
        Read::Missing(e) => return Ok(super::outcome(vec![missing(spec, &e)])),
    };
    Ok(evaluate(spec, expect, &data, ctx))
}

fn missing(spec: &VaultCertRoleSpec, e: &VaultError) -> Assertion {
    let mount = spec.mount.trim_matches('/');
    if mount_missing(e) {
        return Assertion::fail(
            "mapping",
            "mount_missing",
            format!("no cert auth method is mounted at auth/{mount}/; expected one; enable it: vault auth enable -path={mount} cert"),
        );
    }
    Assertion::fail(
        "mapping",
        "mapping_missing",
        format!(
            "no cert-auth mapping at auth/{mount}/certs/{}; expected one for this identity; create it: rotcheck rotate cert-role --name {} --ca-file ... --policies ...",
            spec.name, spec.name
        ),
    )
}

fn evaluate(spec: &VaultCertRoleSpec, expect: &CertRoleExpect, data: &Value, ctx: &Ctx) -> Outcome {
    let pem = data
        .get("certificate")
        .and_then(Value::as_str)
        .unwrap_or("");
    let source = format!(
        "the mapping auth/{}/certs/{}",
        spec.mount.trim_matches('/'),
        spec.name
    );
    let parsed = certs::parse_certs(pem.as_bytes(), &source);
    let facts: Vec<CertFacts> = parsed
        .as_ref()
        .map(|c| c.iter().map(|d| certs::facts(d, "mapping")).collect())
        .unwrap_or_default();
    let mut a = vec![summary(&source, data, &facts)];
    if let Some(file) = &expect.ca_matches {
        a.push(match &parsed {
            Ok(_) => assert_ca(file, &facts, spec, ctx),
            Err(e) => Assertion::fail(
                "ca_matches",
                "ca_mismatch",
                format!("{e}; expected the CA from {file}"),
            ),
        });
    }
    if let Some(want) = &expect.policies {
        let fix = format!("{source} (token_policies)");
        a.push(assert_policies(&effective_policies(data), want, &fix));
    }
    if let Some(want) = &expect.allowed_common_names {
        a.push(assert_cns(
            &strings(data.get("allowed_common_names")),
            want,
            &source,
        ));
    }
    Outcome {
        assertions: a,
        certs: facts,
        ..Default::default()
    }
}

fn summary(source: &str, data: &Value, facts: &[CertFacts]) -> Assertion {
    let cns: Vec<String> = facts.iter().map(|f| f.subject_cn.clone()).collect();
    let allowed = strings(data.get("allowed_common_names"));
    let allowed = if allowed.is_empty() {
        "any".to_string()
    } else {
        list(allowed.iter())
    };
    Assertion::pass(
        "mapping",
        format!(
            "{source} exists: trusts [{}], allowed CNs {allowed}, policies [{}]",
            list(cns.iter()),
            list(effective_policies(data).iter())
        ),
    )
}

/// `token_policies` (and the legacy `policies`), plus `default` unless the mapping opts out.
fn effective_policies(data: &Value) -> Vec<String> {
    let mut p = strings(data.get("token_policies"));
    for legacy in strings(data.get("policies")) {
        if !p.contains(&legacy) {
            p.push(legacy);
        }
    }
    let no_default = data
        .get("token_no_default_policy")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !no_default && !p.iter().any(|x| x == "default") {
        p.push("default".into());
    }
    p
}

/// The mapping's certificates equal the file's, as sets of SHA-256 fingerprints.
fn assert_ca(file: &str, mapping: &[CertFacts], spec: &VaultCertRoleSpec, ctx: &Ctx) -> Assertion {
    let wanted = match ctx.cache.certs(&ctx.path(file)) {
        Ok(c) => c,
        Err(e) => {
            return cannot(
                "ca_matches",
                e.class(),
                format!("cannot read the expected CA: {e}"),
            )
        }
    };
    let want: Vec<CertFacts> = wanted.iter().map(|d| certs::facts(d, "file")).collect();
    let same = want.len() == mapping.len()
        && want
            .iter()
            .all(|w| mapping.iter().any(|m| m.sha256 == w.sha256));
    if same {
        return Assertion::pass(
            "ca_matches",
            format!(
                "the mapping trusts exactly the CA in {file} ({})",
                describe(&want)
            ),
        );
    }
    Assertion::fail(
        "ca_matches",
        "ca_mismatch",
        format!(
            "the mapping trusts {}; expected the CA in {file}: {}; update it: rotcheck rotate cert-role --name {} --ca-file {file}",
            describe(mapping),
            describe(&want),
            spec.name
        ),
    )
}

/// `CN (sha256 1a2b3c4d5e6f…)` for each certificate.
fn describe(certs: &[CertFacts]) -> String {
    let items: Vec<String> = certs
        .iter()
        .map(|c| {
            format!(
                "{:?} (sha256 {}…)",
                c.subject_cn,
                &c.sha256[..c.sha256.len().min(12)]
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn assert_cns(found: &[String], want: &PolicyExpect, source: &str) -> Assertion {
    let name = "allowed_common_names";
    let has = |p: &String| found.iter().any(|f| f == p);
    let forbidden: Vec<&String> = want.exclude.iter().filter(|p| has(p)).collect();
    if !forbidden.is_empty() {
        return Assertion::fail(
            name,
            "cn_forbidden",
            format!(
                "{source} allows CN {}; expected it not to; remove it from allowed_common_names",
                list(forbidden.into_iter())
            ),
        );
    }
    let missing: Vec<&String> = want.include.iter().filter(|p| !has(p)).collect();
    if found.is_empty() && !want.include.is_empty() {
        return Assertion::fail(
            name,
            "cn_missing",
            format!("{source} allows any CN (allowed_common_names is empty); expected exactly [{}]; restrict it", list(want.include.iter())),
        );
    }
    if !missing.is_empty() {
        return Assertion::fail(
            name,
            "cn_missing",
            format!(
                "{source} allows CNs [{}]; expected [{}] to be among them; the agent with CN {} cannot log in",
                list(found.iter()),
                list(want.include.iter()),
                list(missing.into_iter())
            ),
        );
    }
    Assertion::pass(
        name,
        format!("allowed CNs [{}] as expected", list(found.iter())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_policy_is_implicit() {
        let d = json!({"token_policies": ["app-a-issue"], "token_no_default_policy": false});
        assert_eq!(effective_policies(&d), ["app-a-issue", "default"]);
        let d = json!({"token_policies": "a,b", "token_no_default_policy": true});
        assert_eq!(effective_policies(&d), ["a", "b"]);
    }

    #[test]
    fn any_cn_is_too_broad() {
        let want = PolicyExpect {
            include: vec!["agent-app-a".into()],
            exclude: vec![],
        };
        assert_eq!(
            assert_cns(&[], &want, "m").reason.as_deref(),
            Some("cn_missing")
        );
        let found = vec!["agent-app-a".to_string()];
        assert_eq!(
            assert_cns(&found, &want, "m").status,
            crate::model::Status::Pass
        );
    }
}
