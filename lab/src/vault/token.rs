//! The token store (root token plus login tokens, with issue/revoke counters) and the
//! `auth/token/lookup-self`, `renew-self` and `revoke-self` endpoints (§6).

use super::http::{ApiError, Envelope, Op, Req, Resp};
use super::version::Ver;
use crate::encode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

/// One token.
#[derive(Clone)]
pub(crate) struct Token {
    pub id: String,
    pub accessor: String,
    pub policies: Vec<String>,
    pub path: String,
    pub meta: Option<BTreeMap<String, String>>,
    pub display_name: String,
    pub issued: SystemTime,
    /// Seconds; 0 means it never expires (root).
    pub ttl: u64,
    pub entity_id: String,
    pub renewable: bool,
}

impl Token {
    /// A new login token with the given policies and TTL.
    pub fn login(policies: Vec<String>, ttl: u64, path: String, display_name: String) -> Token {
        Token {
            id: encode::service_token(),
            accessor: encode::random_alnum(24),
            policies,
            path,
            meta: None,
            display_name,
            issued: SystemTime::now(),
            ttl,
            entity_id: encode::uuid(),
            renewable: true,
        }
    }

    fn expires(&self) -> Option<SystemTime> {
        (self.ttl > 0).then(|| self.issued + Duration::from_secs(self.ttl))
    }

    fn expired(&self, now: SystemTime) -> bool {
        self.expires().is_some_and(|e| e <= now)
    }

    fn remaining(&self, now: SystemTime) -> u64 {
        self.expires()
            .and_then(|e| e.duration_since(now).ok())
            .map_or(0, |d| d.as_secs())
    }

    /// lookup-self's `data`.
    fn lookup_data(&self) -> Value {
        let now = SystemTime::now();
        json!({
            "accessor": self.accessor,
            "creation_time": encode::unix(self.issued),
            "creation_ttl": self.ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": self.expires().map(encode::rfc3339_nano),
            "explicit_max_ttl": 0,
            "id": self.id,
            "issue_time": encode::rfc3339_nano(self.issued),
            "meta": self.meta,
            "num_uses": 0,
            "orphan": true,
            "path": self.path,
            "policies": self.policies,
            "renewable": self.renewable,
            "ttl": self.remaining(now),
            "type": "service",
        })
    }
}

/// Every live token, plus counters of login tokens issued and revoked.
pub(crate) struct TokenStore {
    tokens: HashMap<String, Token>,
    root: String,
    pub issued: u64,
    pub revoked: u64,
}

impl std::fmt::Debug for TokenStore {
    /// Counts only: token ids never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("issued", &self.issued)
            .field("revoked", &self.revoked)
            .field("live", &self.live())
            .finish()
    }
}

impl TokenStore {
    /// A store holding only a fresh root token.
    pub fn new() -> TokenStore {
        let mut root = Token::login(
            vec!["root".into()],
            0,
            "auth/token/root".into(),
            "root".into(),
        );
        root.renewable = false;
        let id = root.id.clone();
        let tokens = HashMap::from([(id.clone(), root)]);
        TokenStore {
            tokens,
            root: id,
            issued: 0,
            revoked: 0,
        }
    }

    /// The root token's id.
    pub fn root_id(&self) -> &str {
        &self.root
    }

    /// Stores a login token and counts it.
    pub fn issue(&mut self, token: Token) {
        self.issued += 1;
        self.tokens.insert(token.id.clone(), token);
    }

    /// A valid token; expired ones are dropped on the way.
    pub fn lookup(&mut self, id: &str) -> Option<&Token> {
        if self.tokens.get(id)?.expired(SystemTime::now()) {
            self.tokens.remove(id);
            return None;
        }
        self.tokens.get(id)
    }

    /// Revokes a login token (the root token is never revoked); true if it was live.
    pub fn revoke(&mut self, id: &str) -> bool {
        if id == self.root || self.tokens.remove(id).is_none() {
            return false;
        }
        self.revoked += 1;
        true
    }

    /// Login tokens that are still valid.
    pub fn live(&self) -> u64 {
        let now = SystemTime::now();
        let live = self
            .tokens
            .values()
            .filter(|t| t.id != self.root && !t.expired(now));
        live.count() as u64
    }
}

/// `auth/token/<sub>` for an already-validated token.
pub(crate) fn handle(
    store: &mut TokenStore,
    sub: &str,
    req: &Req,
    ver: Ver,
) -> Result<Resp, ApiError> {
    let id = req.token.clone().unwrap_or_default();
    match (sub, req.op) {
        ("lookup-self", Op::Read | Op::Write) => lookup_self(store, &id, ver),
        ("revoke-self", Op::Write) => {
            store.revoke(&id);
            Ok(Resp::no_content())
        }
        ("renew-self", Op::Write) => renew_self(store, &id, ver),
        ("lookup-self" | "revoke-self" | "renew-self", _) => Err(ApiError::unsupported_operation()),
        _ => Err(ApiError::new(
            404,
            vec![super::http::multierror(&["unsupported path"])],
        )),
    }
}

fn lookup_self(store: &mut TokenStore, id: &str, ver: Ver) -> Result<Resp, ApiError> {
    let token = store
        .lookup(id)
        .ok_or_else(|| ApiError::invalid_token(ver))?;
    Envelope::new(token.lookup_data(), "").ok(ver)
}

fn renew_self(store: &mut TokenStore, id: &str, ver: Ver) -> Result<Resp, ApiError> {
    let token = store
        .tokens
        .get_mut(id)
        .ok_or_else(|| ApiError::invalid_token(ver))?;
    if !token.renewable {
        return Err(ApiError::bad("token not renewable"));
    }
    token.issued = SystemTime::now();
    let auth = json!({
        "client_token": token.id, "accessor": token.accessor, "policies": token.policies,
        "token_policies": token.policies, "metadata": token.meta, "lease_duration": token.ttl,
        "renewable": true, "entity_id": token.entity_id, "token_type": "service",
        "orphan": true, "mfa_requirement": null, "num_uses": 0,
    });
    let mut env = Envelope::new(Value::Null, "");
    env.auth = auth;
    env.ok(ver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_issue_and_revoke() {
        let mut s = TokenStore::new();
        let t = Token::login(
            vec!["default".into()],
            60,
            "auth/cert/login".into(),
            "cert-x".into(),
        );
        let id = t.id.clone();
        s.issue(t);
        assert_eq!((s.issued, s.live()), (1, 1));
        assert!(s.lookup(&id).is_some());
        assert!(s.revoke(&id));
        assert!(!s.revoke(&id));
        assert_eq!((s.revoked, s.live()), (1, 0));
        let root = s.root_id().to_string();
        assert!(!s.revoke(&root) && s.lookup(&root).is_some());
    }
}
