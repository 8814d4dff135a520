//! The Vault API emulator's state and request routing: raw status endpoints first, then the
//! seal check, mount resolution, the token and ACL check (skipped for unauthenticated
//! paths), and the mount's backend.

pub(crate) mod acl;
pub(crate) mod certauth;
pub(crate) mod certinfo;
pub(crate) mod http;
pub(crate) mod kv;
pub(crate) mod pki;
pub(crate) mod sys;
pub(crate) mod token;
pub(crate) mod version;

use crate::encode;
use crate::pki::LabPki;
use http::{ApiError, Op, Req, Resp};
use std::collections::BTreeMap;
use std::sync::Arc;
use version::Ver;

/// Server-wide state the status endpoints report.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub version: String,
    pub ver: Ver,
    pub cluster_name: String,
    pub cluster_id: String,
    pub build_date: String,
    pub initialized: bool,
    pub sealed: bool,
    pub standby: bool,
}

impl Settings {
    /// Unsealed, initialized, active.
    pub fn new(version: &str, ver: Ver, cluster_name: &str) -> Settings {
        Settings {
            version: version.to_string(),
            ver,
            cluster_name: cluster_name.to_string(),
            cluster_id: encode::uuid(),
            build_date: "2025-10-01T12:00:00Z".into(),
            initialized: true,
            sealed: false,
            standby: false,
        }
    }
}

/// What serves a mount.
#[derive(Debug)]
pub(crate) enum Backend {
    Kv(kv::KvMount),
    Pki(pki::PkiMount),
    Cert(certauth::CertMount),
    Token,
    Inert,
}

/// A secrets engine or auth method mount.
#[derive(Debug)]
pub(crate) struct Mount {
    pub kind: String,
    pub accessor: String,
    pub uuid: String,
    pub description: String,
    pub options: Option<BTreeMap<String, String>>,
    pub local: bool,
    pub backend: Backend,
}

impl Mount {
    /// A mount with fresh ids.
    pub fn new(
        kind: &str,
        description: &str,
        options: Option<BTreeMap<String, String>>,
        backend: Backend,
    ) -> Mount {
        Mount {
            kind: kind.to_string(),
            accessor: format!("{}_{}", kind.replace('-', "_"), &encode::uuid()[..8]),
            uuid: encode::uuid(),
            description: description.to_string(),
            options,
            local: kind == "cubbyhole",
            backend,
        }
    }
}

/// Where a path goes.
enum Target {
    Sys(String),
    Auth(String, String),
    Secret(String, String),
    None,
}

/// The whole emulated server.
#[derive(Debug)]
pub(crate) struct Vault {
    pub s: Settings,
    pub mounts: BTreeMap<String, Mount>,
    pub auth: BTreeMap<String, Mount>,
    pub policies: BTreeMap<String, String>,
    pub tokens: token::TokenStore,
    pub pki: Arc<LabPki>,
}

impl Vault {
    /// A server with Vault's default mounts (sys, cubbyhole, identity, token auth).
    pub fn new(settings: Settings, pki: Arc<LabPki>) -> Vault {
        let mut mounts = BTreeMap::new();
        let inert = |kind: &str, desc: &str| Mount::new(kind, desc, None, Backend::Inert);
        mounts.insert(
            "sys/".into(),
            inert(
                "system",
                "system endpoints used for control, policy and debugging",
            ),
        );
        mounts.insert(
            "cubbyhole/".into(),
            inert("cubbyhole", "per-token private secret storage"),
        );
        mounts.insert("identity/".into(), inert("identity", "identity store"));
        let mut auth = BTreeMap::new();
        auth.insert(
            "token/".into(),
            Mount::new("token", "token based credentials", None, Backend::Token),
        );
        let policies = BTreeMap::from([("default".to_string(), acl::DEFAULT_POLICY.to_string())]);
        Vault {
            s: settings,
            mounts,
            auth,
            policies,
            tokens: token::TokenStore::new(),
            pki,
        }
    }

    /// Answers a raw status endpoint (`sys/health`, `sys/seal-status`, `sys/leader`), if `path`
    /// is one. `head` is a HEAD request (only `sys/health` accepts it).
    pub fn raw(
        &self,
        path: &str,
        op: Option<Op>,
        head: bool,
        query: &[(String, String)],
    ) -> Option<Resp> {
        let allowed = matches!(op, Some(Op::Read)) || (head && path == "sys/health");
        let resp = match path {
            "sys/health" | "sys/seal-status" | "sys/leader" if !allowed => {
                ApiError::method_not_allowed().into_resp()
            }
            "sys/health" => sys::health(&self.s, query),
            "sys/seal-status" => sys::seal_status(&self.s),
            "sys/leader" => sys::leader(&self.s),
            _ => return None,
        };
        Some(resp)
    }

    /// Handles one logical request.
    pub fn handle(&mut self, req: &Req) -> Resp {
        self.route(req).unwrap_or_else(ApiError::into_resp)
    }

    fn route(&mut self, req: &Req) -> Result<Resp, ApiError> {
        if !self.s.initialized || self.s.sealed {
            return Err(ApiError::sealed());
        }
        let target = self.resolve(&req.path);
        if !self.unauthenticated(&target) {
            self.authorize(req)?;
        }
        let ver = self.s.ver;
        match target {
            Target::Sys(sub) => self.sys(&sub, req),
            Target::Auth(key, sub) => self.auth_backend(&key, &sub, req),
            Target::Secret(key, sub) => self.secret_backend(&key, &sub, req, ver),
            Target::None => Err(ApiError::no_route(req.path.trim_end_matches('/'))),
        }
    }

    fn resolve(&self, path: &str) -> Target {
        if let Some(sub) = path.strip_prefix("sys/") {
            return Target::Sys(sub.to_string());
        }
        if let Some(rest) = path.strip_prefix("auth/") {
            return match longest_mount(&self.auth, rest) {
                Some((k, sub)) => Target::Auth(k, sub),
                None => Target::None,
            };
        }
        match longest_mount(&self.mounts, path) {
            Some((k, sub)) => Target::Secret(k, sub),
            None => Target::None,
        }
    }

    fn unauthenticated(&self, target: &Target) -> bool {
        match target {
            Target::Sys(sub) => sub.starts_with(sys::UI_MOUNTS),
            Target::Auth(k, sub) => {
                matches!(self.auth.get(k).map(|m| &m.backend), Some(Backend::Cert(_)))
                    && sub == "login"
            }
            Target::Secret(k, sub) => {
                matches!(
                    self.mounts.get(k).map(|m| &m.backend),
                    Some(Backend::Pki(_))
                ) && pki::PkiMount::unauthenticated(sub)
            }
            _ => false,
        }
    }

    /// The token check (403 per version) and the ACL check (403 permission denied).
    fn authorize(&mut self, req: &Req) -> Result<(), ApiError> {
        let Some(rules) = self.token_rules(req)? else {
            return Ok(());
        };
        let sudo = req.path.starts_with("sys/auth/");
        if acl::allows(&rules, &req.path, req.op.capability(), sudo) {
            Ok(())
        } else {
            Err(ApiError::denied())
        }
    }

    /// The ACL rules of the request's token; `None` for a root token. An unknown, expired
    /// or revoked token is the version's 403.
    pub(crate) fn token_rules(&mut self, req: &Req) -> Result<Option<Vec<acl::Rule>>, ApiError> {
        let ver = self.s.ver;
        let id = req.token.as_deref().unwrap_or("");
        let token = self
            .tokens
            .lookup(id)
            .ok_or_else(|| ApiError::invalid_token(ver))?;
        if token.policies.iter().any(|p| p == "root") {
            return Ok(None);
        }
        Ok(Some(
            token
                .policies
                .iter()
                .filter_map(|p| self.policies.get(p))
                .filter_map(|text| acl::parse(text).ok())
                .flatten()
                .collect(),
        ))
    }

    fn auth_backend(&mut self, key: &str, sub: &str, req: &Req) -> Result<Resp, ApiError> {
        let ver = self.s.ver;
        let Some(mount) = self.auth.get_mut(key) else {
            return Err(ApiError::no_route(&req.path));
        };
        match &mut mount.backend {
            Backend::Cert(cert) => {
                let ctx = certauth::LoginCtx {
                    mount: key,
                    ver,
                    tokens: &mut self.tokens,
                };
                cert.handle(sub, req, ctx)
            }
            Backend::Token => token::handle(&mut self.tokens, sub, req, ver),
            _ => Err(ApiError::no_route(&req.path)),
        }
    }

    fn secret_backend(
        &mut self,
        key: &str,
        sub: &str,
        req: &Req,
        ver: Ver,
    ) -> Result<Resp, ApiError> {
        let Some(mount) = self.mounts.get_mut(key) else {
            return Err(ApiError::no_route(&req.path));
        };
        match &mut mount.backend {
            Backend::Kv(kv) => kv.handle(sub, req, ver),
            Backend::Pki(pki) => pki.handle(sub, req, ver),
            _ => Err(ApiError::new(
                404,
                vec![http::multierror(&["unsupported path"])],
            )),
        }
    }
}

/// The mount whose key is the longest prefix of `path` (a key ends with `/`).
pub(crate) fn longest_mount(
    table: &BTreeMap<String, Mount>,
    path: &str,
) -> Option<(String, String)> {
    let with_slash = format!("{path}/");
    table
        .keys()
        .filter(|k| path.starts_with(k.as_str()) || with_slash == **k)
        .max_by_key(|k| k.len())
        .map(|k| (k.clone(), path.get(k.len()..).unwrap_or("").to_string()))
}

impl Vault {
    /// An in-process request (no TLS connection) as the root token; used for seeding.
    pub fn call_as_root(&mut self, op: Op, path: &str, body: serde_json::Value) -> Resp {
        let body = match body {
            serde_json::Value::Object(m) => Ok(m),
            serde_json::Value::Null => Ok(serde_json::Map::new()),
            _ => Err("json: cannot unmarshal into Go value of type map[string]interface {}".into()),
        };
        let rel = path.trim_start_matches('/').trim_start_matches("v1/");
        let req = Req {
            op,
            path: http::logical_path(rel, op),
            query: Vec::new(),
            body,
            token: Some(self.tokens.root_id().to_string()),
            conn: Arc::new(http::ConnInfo::default()),
        };
        self.handle(&req)
    }

    /// Mounts a PKI engine at `path` that issues from the lab intermediate.
    pub fn mount_pki(&mut self, path: &str) {
        let key = format!("{}/", path.trim_matches('/'));
        let backend = Backend::Pki(pki::PkiMount::new(Some(self.pki.clone())));
        self.mounts.insert(
            key,
            Mount::new("pki", "lab PKI (intermediate)", None, backend),
        );
    }
}
