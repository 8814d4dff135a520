//! `vault_kv`: the mount is KV v2 (`options.version == "2"` in `sys/mounts`, or in
//! `sys/internal/ui/mounts/<path>` when the token may not list mounts), and an app path exists
//! (seed 002: "KV v2 detected", "app KV path missing"). Secret values are never read on v2
//! (only `metadata/`); on v1 the value is read and dropped at once.

use super::{cannot, outcome, prepare, settle, Prepared};
use crate::kinds::{CheckKind, Ctx};
use crate::model::{Assertion, Outcome};
use crate::vault::{encode_path, Token, VaultError};
use serde::Deserialize;
use serde_json::Value;

/// What the mount table says about a mount.
#[derive(Debug, Clone, PartialEq)]
struct MountInfo {
    kind: String,
    version: u8,
}

/// `vault_kv`: a KV mount (and optionally a path) to inspect.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultKvSpec {
    pub mount: String,
    pub path: Option<String>,
}

/// What a `vault_kv` check may expect of the mount.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct KvExpect {
    pub kv_version: Option<u8>,
    pub path_exists: Option<bool>,
}

/// The `vault_kv` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultKv;

impl CheckKind for VaultKv {
    const NAME: &'static str = "vault_kv";
    const CONNECTS: bool = true;
    type Spec = VaultKvSpec;
    type Expect = KvExpect;

    async fn probe(spec: &VaultKvSpec, expect: &KvExpect, ctx: &Ctx) -> Outcome {
        run(spec, expect, ctx).await
    }
}

pub async fn run(spec: &VaultKvSpec, expect: &KvExpect, ctx: &Ctx) -> Outcome {
    settle(probe(spec, expect, ctx).await)
}

async fn probe(spec: &VaultKvSpec, expect: &KvExpect, ctx: &Ctx) -> Result<Outcome, VaultError> {
    let p = prepare(ctx)?;
    let mount = spec.mount.trim_matches('/').to_string();
    let token = p.token(ctx, &format!("reading the mount {mount}/")).await?;
    let Some(info) = mount_info(&p, &token, &mount).await? else {
        return Ok(outcome(vec![Assertion::fail(
            "kv_version",
            "mount_missing",
            format!("no secrets engine is mounted at {mount}/; expected KV v2; enable it: vault secrets enable -path={mount} kv-v2"),
        )]));
    };
    let mut a = vec![assert_version(
        &mount,
        &info,
        expect.kv_version.unwrap_or(2),
    )];
    if let (Some(path), true) = (&spec.path, is_kv(&info)) {
        let want = expect.path_exists.unwrap_or(true);
        a.push(check_path(&p, &token, &mount, path, info.version, want).await);
    }
    Ok(outcome(a))
}

fn is_kv(i: &MountInfo) -> bool {
    i.kind == "kv" || i.kind == "generic"
}

/// `sys/mounts`, falling back to `sys/internal/ui/mounts/<mount>` on 403 (what `vault kv`
/// asks). None: no such mount. The fallback cannot tell a missing mount from a forbidden one
/// (Vault answers both with the same 403), so that 403 is an error carrying Vault's message.
async fn mount_info(
    p: &Prepared,
    token: &Token,
    mount: &str,
) -> Result<Option<MountInfo>, VaultError> {
    let reply = p.client.get("sys/mounts", Some(token)).await?;
    if reply.status != 403 {
        let v = reply.into_ok()?;
        let table = v.get("data").filter(|d| d.is_object()).unwrap_or(&v);
        return Ok(table.get(format!("{mount}/")).map(parse_mount));
    }
    let ui = format!("sys/internal/ui/mounts/{}", encode_path(mount));
    let v = p.client.get(&ui, Some(token)).await?.into_ok()?;
    Ok(v.get("data").map(parse_mount))
}

fn parse_mount(m: &Value) -> MountInfo {
    let version = m
        .get("options")
        .and_then(|o| o.get("version"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    MountInfo {
        kind: m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        version,
    }
}

fn assert_version(mount: &str, info: &MountInfo, want: u8) -> Assertion {
    if !is_kv(info) {
        return Assertion::fail(
            "kv_version",
            "kv_version",
            format!("{mount}/ is a {} engine, not KV; expected KV v{want}; point the check at the KV mount", info.kind),
        );
    }
    if info.version == want {
        return Assertion::pass("kv_version", format!("KV v{want} detected on {mount}/"));
    }
    let fix = if want == 2 {
        format!("upgrade it: vault kv enable-versioning {mount}/ (agents' templates use {mount}/data/... paths)")
    } else {
        "point the check at a KV v1 mount or expect kv_version: 2".into()
    };
    Assertion::fail(
        "kv_version",
        "kv_version",
        format!(
            "{mount}/ is KV v{}; expected KV v{want}; {fix}",
            info.version
        ),
    )
}

async fn check_path(
    p: &Prepared,
    token: &Token,
    mount: &str,
    path: &str,
    version: u8,
    want: bool,
) -> Assertion {
    let rel = encode_path(path);
    let (api, shown) = if version == 2 {
        (
            format!("{}/metadata/{rel}", encode_path(mount)),
            format!("{mount}/{}", path.trim_matches('/')),
        )
    } else {
        (
            format!("{}/{rel}", encode_path(mount)),
            format!("{mount}/{}", path.trim_matches('/')),
        )
    };
    let found = match p.client.get(&api, Some(token)).await {
        Ok(r) if r.status == 404 => Ok(false),
        Ok(r) => r.into_ok().map(|v| version != 2 || latest_alive(&v)),
        Err(e) => Err(e),
    };
    match found {
        Ok(found) => assert_exists(&shown, found, want),
        Err(e) => cannot(
            "path",
            &e.class(),
            format!("cannot tell whether {shown} exists: {e}"),
        ),
    }
}

/// KV v2 metadata: the current version is neither deleted nor destroyed.
fn latest_alive(v: &Value) -> bool {
    let data = v.get("data").unwrap_or(&Value::Null);
    let Some(current) = data.get("current_version").and_then(Value::as_u64) else {
        return true;
    };
    let meta = data
        .get("versions")
        .and_then(|vs| vs.get(current.to_string()));
    let deleted = meta
        .and_then(|m| m.get("deletion_time"))
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let destroyed = meta
        .and_then(|m| m.get("destroyed"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    !(deleted || destroyed)
}

fn assert_exists(shown: &str, found: bool, want: bool) -> Assertion {
    match (found, want) {
        (true, true) => Assertion::pass("path", format!("{shown} exists")),
        (false, false) => Assertion::pass("path", format!("{shown} does not exist, as expected")),
        (false, true) => Assertion::fail(
            "path",
            "path_missing",
            format!("app KV path {shown} is missing (or its latest version is deleted); expected it to exist; seed it (vault kv put {shown} ...) before the agent renders templates from it"),
        ),
        (true, false) => Assertion::fail(
            "path",
            "path_exists",
            format!("{shown} exists; expected it not to"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kv_versions_from_options() {
        assert_eq!(
            parse_mount(&json!({"type": "kv", "options": {"version": "2"}})).version,
            2
        );
        assert_eq!(
            parse_mount(&json!({"type": "kv", "options": null})).version,
            1
        );
        let v1 = parse_mount(&json!({"type": "kv", "options": {}}));
        assert_eq!(
            assert_version("secret", &v1, 2).reason.as_deref(),
            Some("kv_version")
        );
    }

    #[test]
    fn deleted_latest_counts_as_missing() {
        let v = json!({"data": {"current_version": 2, "versions": {
            "1": {"deletion_time": "", "destroyed": false},
            "2": {"deletion_time": "2026-01-01T00:00:00Z", "destroyed": false}}}});
        assert!(!latest_alive(&v));
    }
}
