//! The `sys/` backend: the raw status endpoints (`health` §1, `seal-status` §2, `leader`
//! §2.1) and the logical ones (`mounts`, `auth`, `policies/acl` §7).

use super::acl;
use super::http::{list_reply, multierror, str_field, ApiError, Envelope, Op, Req, Resp};
use super::version::Ver;
use super::{Backend, Mount, Settings, Vault};
use crate::encode;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Query parameters of `sys/health`, parsed like Vault (§1.2).
struct HealthQuery {
    standbyok: bool,
    perfstandbyok: bool,
    codes: BTreeMap<&'static str, u16>,
}

/// The prefix of the endpoint `vault kv` reads a mount's version from (unauthenticated path).
pub(crate) const UI_MOUNTS: &str = "internal/ui/mounts/";

const HEALTH_CODES: &[(&str, u16)] = &[
    ("activecode", 200),
    ("standbycode", 429),
    ("drsecondarycode", 472),
    ("performancestandbycode", 473),
    ("sealedcode", 503),
    ("uninitcode", 501),
    ("haunhealthycode", 474),
    ("removedcode", 530),
];

impl HealthQuery {
    fn parse(query: &[(String, String)], ver: Ver) -> Result<HealthQuery, ApiError> {
        let first = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
        let flag = |k: &str| match first(k) {
            None => Ok(false),
            Some(v) => super::http::parse_bool(v).ok_or_else(|| ApiError::new(400, Vec::new())),
        };
        let mut codes = BTreeMap::new();
        for (name, default) in HEALTH_CODES {
            let newer_only = matches!(*name, "haunhealthycode" | "removedcode");
            let code = match first(name) {
                Some(v) if !newer_only || ver.is_119() => v
                    .trim()
                    .parse::<u16>()
                    .map_err(|_| ApiError::new(400, Vec::new()))?,
                _ => *default,
            };
            codes.insert(*name, code);
        }
        Ok(HealthQuery {
            standbyok: flag("standbyok")?,
            perfstandbyok: flag("perfstandbyok")?,
            codes,
        })
    }
}

/// GET/HEAD `sys/health`: the status from the first matching state (§1.3) and the body.
pub(crate) fn health(s: &Settings, query: &[(String, String)]) -> Resp {
    let q = match HealthQuery::parse(query, s.ver) {
        Ok(q) => q,
        Err(e) => return e.into_resp(),
    };
    let code = |k: &str| q.codes.get(k).copied().unwrap_or(500);
    let status = if !s.initialized {
        code("uninitcode")
    } else if s.sealed {
        code("sealedcode")
    } else if s.standby && !q.standbyok {
        code("standbycode")
    } else {
        code("activecode")
    };
    // The lab is never a performance standby, so `perfstandbyok` cannot change the code.
    let _ = q.perfstandbyok;
    Resp::json(status, health_body(s))
}

fn health_body(s: &Settings) -> Value {
    let unsealed = s.initialized && !s.sealed;
    let mut m = Map::new();
    m.insert("initialized".into(), json!(s.initialized));
    m.insert("sealed".into(), json!(!unsealed));
    m.insert("standby".into(), json!(!unsealed || s.standby));
    if !s.ver.openbao() {
        m.insert("performance_standby".into(), json!(false));
    }
    m.insert("replication_performance_mode".into(), json!("disabled"));
    m.insert("replication_dr_mode".into(), json!("disabled"));
    m.insert(
        "server_time_utc".into(),
        json!(encode::unix(SystemTime::now())),
    );
    m.insert("version".into(), json!(s.version));
    if s.ver.health_116_fields() {
        m.insert("enterprise".into(), json!(false));
    }
    if unsealed {
        m.insert("cluster_name".into(), json!(s.cluster_name));
        m.insert("cluster_id".into(), json!(s.cluster_id));
    }
    if s.ver.health_116_fields() {
        m.insert("echo_duration_ms".into(), json!(0));
        m.insert("clock_skew_ms".into(), json!(0));
    }
    if s.ver.is_117() {
        m.insert("replication_primary_canary_age_ms".into(), json!(0));
    }
    if s.ver.is_119() && unsealed {
        m.insert("removed_from_cluster".into(), json!(false));
        if s.standby {
            m.insert("ha_connection_healthy".into(), json!(true));
            m.insert("last_request_forwarding_heartbeat_ms".into(), json!(1));
        }
    }
    Value::Object(m)
}

/// GET `sys/seal-status` (§2): 200 in every state.
pub(crate) fn seal_status(s: &Settings) -> Resp {
    let mut m = Map::new();
    m.insert("type".into(), json!("shamir"));
    m.insert("initialized".into(), json!(s.initialized));
    m.insert("sealed".into(), json!(!s.initialized || s.sealed));
    let (t, n) = if s.initialized { (3, 5) } else { (0, 0) };
    m.insert("t".into(), json!(t));
    m.insert("n".into(), json!(n));
    m.insert("progress".into(), json!(0));
    m.insert("nonce".into(), json!(""));
    m.insert("version".into(), json!(s.version));
    let built = if s.ver.openbao() {
        "commit_date"
    } else {
        "build_date"
    };
    m.insert(built.into(), json!(s.build_date));
    m.insert("migration".into(), json!(false));
    if s.initialized && !s.sealed {
        m.insert("cluster_name".into(), json!(s.cluster_name));
        m.insert("cluster_id".into(), json!(s.cluster_id));
    }
    m.insert("recovery_seal".into(), json!(false));
    m.insert("storage_type".into(), json!("raft"));
    if s.ver.is_119() && s.initialized && !s.sealed {
        m.insert("removed_from_cluster".into(), json!(false));
    }
    Resp::json(200, Value::Object(m))
}

/// GET `sys/leader` (§2.1); HA is off in the lab.
pub(crate) fn leader(s: &Settings) -> Resp {
    if !s.initialized || s.sealed {
        return ApiError::sealed().into_resp();
    }
    Resp::json(
        200,
        json!({
            "ha_enabled": false, "is_self": false, "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "", "leader_cluster_address": "", "performance_standby": false,
            "performance_standby_last_remote_wal": 0,
        }),
    )
}

impl Vault {
    /// Logical `sys/<sub>` endpoints, after the token check.
    pub(crate) fn sys(&mut self, sub: &str, req: &Req) -> Result<Resp, ApiError> {
        let ver = self.s.ver;
        match (sub, req.op) {
            ("mounts", Op::Read) => mounts_reply(&self.mounts, ver, false),
            ("auth", Op::Read) => mounts_reply(&self.auth, ver, true),
            ("policies/acl/", Op::List) | ("policy", Op::Read) => {
                list_reply(self.policy_names(), "", ver)
            }
            _ => self.sys_more(sub, req),
        }
    }

    fn sys_more(&mut self, sub: &str, req: &Req) -> Result<Resp, ApiError> {
        if let Some(path) = sub.strip_prefix(UI_MOUNTS) {
            return self.ui_mount(path, req);
        }
        if let Some(name) = sub.strip_prefix("policies/acl/").filter(|n| !n.is_empty()) {
            return self.policy_op(name, req);
        }
        if let Some(path) = sub.strip_prefix("mounts/").filter(|p| !p.is_empty()) {
            return self.mount_op(path, req, false);
        }
        if let Some(path) = sub.strip_prefix("auth/").filter(|p| !p.is_empty()) {
            return self.mount_op(path, req, true);
        }
        Err(ApiError::new(404, vec![multierror(&["unsupported path"])]))
    }

    /// `sys/internal/ui/mounts/<path>` (what `vault kv` asks first, §7.2): the mount's
    /// entry plus `path`, if the token may use something under it. An unknown mount answers
    /// like a forbidden one, so the path cannot be used to list mounts.
    fn ui_mount(&mut self, path: &str, req: &Req) -> Result<Resp, ApiError> {
        if req.op != Op::Read {
            return Err(ApiError::unsupported_operation());
        }
        if path.trim_matches('/').is_empty() {
            return Err(ApiError::bad("path not set"));
        }
        let clean = format!("{}/", path.trim_matches('/'));
        let preflight = || {
            ApiError::new(
                403,
                vec![format!("preflight capability check returned 403, please ensure client's policies grant access to path \"{clean}\"")],
            )
        };
        let Some((key, _)) = super::longest_mount(&self.mounts, path.trim_end_matches('/')) else {
            return Err(preflight());
        };
        let rules = self.token_rules(req).map_err(|_| preflight())?;
        if !rules.is_none_or(|r| acl::has_mount_access(&r, &key)) {
            return Err(preflight());
        }
        let mut data = self.mounts[&key].json(self.s.ver, false);
        data["path"] = json!(key);
        Envelope::new(data, "").ok(self.s.ver)
    }

    fn policy_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.policies.keys().cloned().collect();
        names.push("root".into());
        names.sort();
        names
    }

    fn policy_op(&mut self, name: &str, req: &Req) -> Result<Resp, ApiError> {
        let ver = self.s.ver;
        let lower = name.to_lowercase();
        match req.op {
            Op::Read if lower == "root" => policy_reply("root", "", ver),
            Op::Read => match self.policies.get(&lower) {
                Some(text) => policy_reply(&lower, text, ver),
                None => Err(ApiError::not_found()),
            },
            Op::Write => self.write_policy(name, req.body()?),
            Op::Delete if matches!(lower.as_str(), "root" | "default") => {
                Err(ApiError::bad(format!("cannot delete {lower} policy")))
            }
            Op::Delete => {
                self.policies.remove(&lower);
                Ok(Resp::no_content())
            }
            _ => Err(ApiError::unsupported_operation()),
        }
    }

    fn write_policy(&mut self, name: &str, body: &Map<String, Value>) -> Result<Resp, ApiError> {
        let lower = name.to_lowercase();
        if lower == "root" {
            return Err(ApiError::bad("cannot update root policy"));
        }
        let raw = str_field(body, "policy").unwrap_or_default();
        if raw.trim().is_empty() {
            return Err(ApiError::bad("'policy' parameter not supplied or empty"));
        }
        let text = decode_policy(&raw);
        acl::parse(&text).map_err(ApiError::bad)?;
        self.policies.insert(lower.clone(), text);
        if lower != name {
            let warn = format!("policy name was converted to {lower}");
            return Envelope::new(Value::Null, "").warn(warn).ok(self.s.ver);
        }
        Ok(Resp::no_content())
    }

    fn mount_op(&mut self, path: &str, req: &Req, auth: bool) -> Result<Resp, ApiError> {
        let key = format!("{}/", path.trim_end_matches('/'));
        let ver = self.s.ver;
        let table = if auth {
            &mut self.auth
        } else {
            &mut self.mounts
        };
        match req.op {
            Op::Read => match table.get(&key) {
                Some(m) => Envelope::new(m.json(ver, auth), "").ok(ver),
                None => Err(ApiError::bad(format!("No mount at {key}"))),
            },
            Op::Write if table.contains_key(&key) => {
                let prefix = if auth { "auth/" } else { "" };
                Err(ApiError::bad(format!(
                    "path is already in use at {prefix}{key}"
                )))
            }
            Op::Write => {
                let mount = Mount::from_request(req.body()?)?;
                table.insert(key, mount);
                Ok(Resp::no_content())
            }
            Op::Delete => {
                table.remove(&key);
                Ok(Resp::no_content())
            }
            _ => Err(ApiError::unsupported_operation()),
        }
    }
}

fn policy_reply(name: &str, text: &str, ver: Ver) -> Result<Resp, ApiError> {
    Envelope::new(json!({ "name": name, "policy": text }), "").ok(ver)
}

/// Vault tries base64 first and keeps the decoded text when that works.
fn decode_policy(raw: &str) -> String {
    let compact: String = raw.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let alphabet = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    if compact.len() % 4 != 0 || !compact.chars().all(alphabet) {
        return raw.to_string();
    }
    match encode::unbase64(&compact).and_then(|b| String::from_utf8(b).ok()) {
        Some(text) => text,
        None => raw.to_string(),
    }
}

fn mounts_reply(table: &BTreeMap<String, Mount>, ver: Ver, auth: bool) -> Result<Resp, ApiError> {
    let data: Map<String, Value> = table
        .iter()
        .map(|(k, m)| (k.clone(), m.json(ver, auth)))
        .collect();
    let mut env = Envelope::new(Value::Object(data), "");
    env.inject = true;
    env.ok(ver)
}

impl Mount {
    /// The `sys/mounts` / `sys/auth` entry (§7.2, §7.3).
    pub(crate) fn json(&self, ver: Ver, auth: bool) -> Value {
        let mut config =
            json!({ "default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0 });
        if auth {
            config["token_type"] = json!("default-service");
        }
        let builtin_core = matches!(
            self.kind.as_str(),
            "system" | "token" | "cubbyhole" | "identity"
        );
        let running = if builtin_core {
            format!("v{ver}+builtin.vault")
        } else {
            "v0.21.0+builtin".to_string()
        };
        let mut v = json!({
            "accessor": self.accessor, "config": config, "description": self.description,
            "external_entropy_access": false, "local": self.local, "options": self.options,
            "plugin_version": "", "running_plugin_version": running, "running_sha256": "",
            "seal_wrap": false, "type": self.kind, "uuid": self.uuid,
        });
        if !builtin_core {
            v["deprecation_status"] = json!("supported");
        }
        v
    }

    /// A mount from a `sys/mounts/:path` or `sys/auth/:path` body.
    fn from_request(body: &Map<String, Value>) -> Result<Mount, ApiError> {
        let kind = str_field(body, "type").unwrap_or_default();
        let mut options: Option<BTreeMap<String, String>> =
            body.get("options").and_then(Value::as_object).map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            });
        let (kind, backend) = match kind.as_str() {
            "kv-v2" => {
                options = Some(BTreeMap::from([("version".into(), "2".into())]));
                ("kv", Backend::Kv(super::kv::KvMount::new(Some("2"))))
            }
            "kv" | "generic" => {
                let version = options
                    .as_ref()
                    .and_then(|o| o.get("version"))
                    .map(String::as_str);
                ("kv", Backend::Kv(super::kv::KvMount::new(version)))
            }
            "pki" => ("pki", Backend::Pki(super::pki::PkiMount::new(None))),
            "cert" => ("cert", Backend::Cert(super::certauth::CertMount::default())),
            "" => return Err(ApiError::bad("missing type")),
            other => {
                return Err(ApiError::bad(format!(
                    "plugin not found in the catalog: {other}"
                )))
            }
        };
        let description = str_field(body, "description").unwrap_or_default();
        Ok(Mount::new(kind, &description, options, backend))
    }
}
