//! Request and response shapes shared by the emulator's backends: the parsed request, the
//! success envelope (§0.4), the error envelope and status codes (§0.5), and request-field
//! parsing with Vault's loose typing (comma strings or arrays, durations as seconds or text).

use super::version::Ver;
use crate::encode;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;

/// The logical operation a request maps to (§0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    List,
    Write,
    Delete,
    Patch,
}

impl Op {
    /// The ACL capability this operation needs (`create` is accepted for writes too).
    pub fn capability(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::List => "list",
            Op::Write => "update",
            Op::Delete => "delete",
            Op::Patch => "patch",
        }
    }
}

/// List paths end with `/` (Vault appends it before routing and ACL checks).
pub(crate) fn logical_path(rel: &str, op: Op) -> String {
    if op == Op::List && !rel.ends_with('/') {
        format!("{rel}/")
    } else {
        rel.to_string()
    }
}

/// What the TLS layer knows about the connection.
#[derive(Debug, Default)]
pub(crate) struct ConnInfo {
    /// Certificates the client presented, leaf first.
    pub peer_certs: Vec<CertificateDer<'static>>,
    /// Client address.
    pub remote: Option<SocketAddr>,
    /// False for in-process calls that never had a TLS connection.
    pub tls: bool,
}

/// One API request below `/v1/`.
#[derive(Debug)]
pub(crate) struct Req {
    pub op: Op,
    /// Path below `/v1/`, no leading slash; list paths end with `/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The JSON body (an object), or the parse error text.
    pub body: Result<Map<String, Value>, String>,
    pub token: Option<String>,
    pub conn: Arc<ConnInfo>,
}

impl Req {
    /// The body, or Vault's 400 for unparsable JSON.
    pub fn body(&self) -> Result<&Map<String, Value>, ApiError> {
        self.body
            .as_ref()
            .map_err(|e| ApiError::bad(format!("failed to parse JSON input: {e}")))
    }

    /// A query parameter's first value.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A response body.
#[derive(Debug)]
pub(crate) enum Body {
    Json(Value),
    Raw {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
    Empty,
}

/// A response: status and body (headers are added by the server layer).
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub body: Body,
}

impl Resp {
    /// A JSON body with a status.
    pub fn json(status: u16, v: Value) -> Resp {
        Resp {
            status,
            body: Body::Json(v),
        }
    }

    /// 204 No Content.
    pub fn no_content() -> Resp {
        Resp {
            status: 204,
            body: Body::Empty,
        }
    }

    /// A raw body with its own content type (PKI PEM/DER), or 204 when empty.
    pub fn raw(content_type: &'static str, bytes: Vec<u8>) -> Resp {
        if bytes.is_empty() {
            return Resp::no_content();
        }
        Resp {
            status: 200,
            body: Body::Raw {
                content_type,
                bytes,
            },
        }
    }
}

/// An error response: `{"errors":[...]}` (plus `data` for a few cases).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub errors: Vec<String>,
}

impl ApiError {
    /// Any status with messages.
    pub fn new(status: u16, errors: Vec<String>) -> ApiError {
        ApiError { status, errors }
    }

    /// 400 from a backend's error response.
    pub fn bad(msg: impl Into<String>) -> ApiError {
        ApiError::new(400, vec![msg.into()])
    }

    /// 404 with an empty error list (a read that found nothing).
    pub fn not_found() -> ApiError {
        ApiError::new(404, Vec::new())
    }

    /// 405 with an empty error list (a method the raw handlers refuse).
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(405, Vec::new())
    }

    /// 405 for an operation a logical path does not support.
    pub fn unsupported_operation() -> ApiError {
        ApiError::new(405, vec![multierror(&["unsupported operation"])])
    }

    /// 403 for a valid token whose policies forbid the path.
    pub fn denied() -> ApiError {
        ApiError::new(403, vec![multierror(&["permission denied"])])
    }

    /// 403 for an unknown, expired or revoked token; the text changed in Vault 1.17, and
    /// OpenBao says a bare "permission denied".
    pub fn invalid_token(ver: Ver) -> ApiError {
        if ver.openbao() {
            ApiError::new(403, vec!["permission denied".into()])
        } else if ver.is_117() {
            ApiError::new(
                403,
                vec![multierror(&["permission denied", "invalid token"])],
            )
        } else {
            ApiError::denied()
        }
    }

    /// 503 while sealed.
    pub fn sealed() -> ApiError {
        ApiError::new(503, vec!["Vault is sealed".into()])
    }

    /// 500 for a handler error.
    pub fn internal(msg: impl Into<String>) -> ApiError {
        ApiError::new(500, vec![msg.into()])
    }

    /// 404 for a path with no mount.
    pub fn no_route(path: &str) -> ApiError {
        ApiError::new(
            404,
            vec![format!(
                "no handler for route \"{path}\". route entry not found."
            )],
        )
    }

    /// The response for this error.
    pub fn into_resp(self) -> Resp {
        Resp::json(self.status, json!({ "errors": self.errors }))
    }
}

/// go-multierror's text for a list of errors.
pub(crate) fn multierror(errs: &[&str]) -> String {
    let head = if errs.len() == 1 {
        "1 error occurred:".to_string()
    } else {
        format!("{} errors occurred:", errs.len())
    };
    let items: String = errs.iter().map(|e| format!("\n\t* {e}")).collect();
    format!("{head}{items}\n\n")
}

/// The success envelope of a logical endpoint (§0.4).
#[derive(Debug)]
pub(crate) struct Envelope {
    pub data: Value,
    pub mount_type: &'static str,
    pub warnings: Vec<String>,
    pub auth: Value,
    pub lease_duration: u64,
    /// Copy `data`'s keys to the top level (sys/mounts, sys/auth).
    pub inject: bool,
}

impl Envelope {
    /// An envelope around `data`.
    pub fn new(data: Value, mount_type: &'static str) -> Envelope {
        Envelope {
            data,
            mount_type,
            warnings: Vec::new(),
            auth: Value::Null,
            lease_duration: 0,
            inject: false,
        }
    }

    /// Adds a warning.
    pub fn warn(mut self, w: impl Into<String>) -> Envelope {
        self.warnings.push(w.into());
        self
    }

    /// 200 with the rendered envelope.
    pub fn ok(self, ver: Ver) -> Result<Resp, ApiError> {
        Ok(Resp::json(200, self.render(ver)))
    }

    /// The JSON object.
    pub fn render(self, ver: Ver) -> Value {
        let mut m = Map::new();
        m.insert("request_id".into(), Value::String(encode::uuid()));
        m.insert("lease_id".into(), Value::String(String::new()));
        m.insert("renewable".into(), Value::Bool(false));
        m.insert("lease_duration".into(), json!(self.lease_duration));
        if self.inject {
            if let Value::Object(d) = &self.data {
                m.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        m.insert("data".into(), self.data);
        m.insert("wrap_info".into(), Value::Null);
        let warnings = if self.warnings.is_empty() {
            Value::Null
        } else {
            json!(self.warnings)
        };
        m.insert("warnings".into(), warnings);
        m.insert("auth".into(), self.auth);
        if ver.has_mount_type() {
            m.insert("mount_type".into(), Value::String(self.mount_type.into()));
        }
        Value::Object(m)
    }
}

/// A string field; numbers and bools are accepted in their text form.
pub(crate) fn str_field(body: &Map<String, Value>, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list field: a JSON array or a comma-separated string; empty items dropped.
pub(crate) fn list_field(
    body: &Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    let items: Vec<String> = match body.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            return Err(ApiError::bad(format!(
                "error converting input for field \"{key}\""
            )))
        }
    };
    let items = items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    Ok(Some(items.collect()))
}

/// A bool field: JSON bool, or `true`/`false`/`1`/`0`/`t`/`f` text.
pub(crate) fn bool_field(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    let err = || ApiError::bad(format!("error converting input for field \"{key}\""));
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) => Ok(Some(n.as_f64().unwrap_or(0.0) != 0.0)),
        Some(Value::String(s)) => parse_bool(s).map(Some).ok_or_else(err),
        Some(_) => Err(err()),
    }
}

/// Go's `strconv.ParseBool` plus an empty string meaning false.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        _ => None,
    }
}

/// A duration field in seconds: an integer, or text like `72h`, `30m`, `3600`, `1d`.
pub(crate) fn dur_field(body: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    let err = || ApiError::bad(format!("error converting input for field \"{key}\""));
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(err),
        Some(Value::String(s)) => parse_duration(s).map(Some).ok_or_else(err),
        Some(_) => Err(err()),
    }
}

/// Vault's `parseutil.ParseDurationSecond`: plain numbers are seconds.
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    humantime::parse_duration(s).ok().map(|d| d.as_secs())
}

/// An integer field.
pub(crate) fn int_field(body: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    let err = || ApiError::bad(format!("error converting input for field \"{key}\""));
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(err),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| err()),
        Some(_) => Err(err()),
    }
}

/// `{"keys": [...]}` for a list, or 404 with no errors when there are none (§4.3).
pub(crate) fn list_reply(
    keys: Vec<String>,
    mount_type: &'static str,
    ver: Ver,
) -> Result<Resp, ApiError> {
    if keys.is_empty() {
        return Err(ApiError::not_found());
    }
    Envelope::new(json!({ "keys": keys }), mount_type).ok(ver)
}

/// The direct children of `prefix` among `keys` (`a/b` under `` lists as `a/`).
pub(crate) fn children<'a>(keys: impl Iterator<Item = &'a String>, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = keys
        .filter_map(|k| k.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty())
        .map(|rest| match rest.find('/') {
            Some(i) => rest[..=i].to_string(),
            None => rest.to_string(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Go-glob (`ryanuber/go-glob`): `*` matches any run of characters, including dots.
pub(crate) fn glob(pattern: &str, subject: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == subject;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !subject.starts_with(first) || subject.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &subject[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_paths_end_with_a_slash() {
        assert_eq!(
            logical_path("auth/cert/certs", Op::List),
            "auth/cert/certs/"
        );
        assert_eq!(
            logical_path("auth/cert/certs/", Op::List),
            "auth/cert/certs/"
        );
        assert_eq!(logical_path("sys/health", Op::Read), "sys/health");
    }

    #[test]
    fn multierror_text_matches_go() {
        assert_eq!(
            multierror(&["permission denied"]),
            "1 error occurred:\n\t* permission denied\n\n"
        );
        assert_eq!(
            multierror(&["permission denied", "invalid token"]),
            "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"
        );
    }

    #[test]
    fn globs_span_dots() {
        assert!(glob("agent-*", "agent-app-a.lab.test"));
        assert!(glob("*.lab.test", "a.b.lab.test"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXc"));
        assert!(!glob("app-b*", "app-a"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
    }

    #[test]
    fn durations_and_lists() {
        assert_eq!(parse_duration("72h"), Some(259_200));
        assert_eq!(parse_duration("3600"), Some(3600));
        let body: Map<String, Value> =
            serde_json::from_str(r#"{"a":"x, y,,z","b":["p","q"]}"#).unwrap();
        assert_eq!(list_field(&body, "a").unwrap().unwrap(), ["x", "y", "z"]);
        assert_eq!(list_field(&body, "b").unwrap().unwrap(), ["p", "q"]);
        let keys = ["app-a/config".to_string(), "app-a/x".into(), "top".into()];
        assert_eq!(children(keys.iter(), ""), ["app-a/", "top"]);
    }
}
