//! The emulator's HTTPS listener: accept loop with connection faults (reset, stall), TLS via
//! tokio-rustls, HTTP/1.1 via hyper, and the translation between hyper requests and the
//! emulator's logical requests (headers of §0.2/§0.3, path and method mapping of §0.1).

use crate::tls::SwappableCert;
use crate::vault::http::{logical_path, parse_bool, ApiError, Body, ConnInfo, Op, Req, Resp};
use crate::vault::Vault;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Largest request body accepted (Vault's default `max_request_size`).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Faults currently injected.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub reset_until: Option<Instant>,
    pub stall_until: Option<Instant>,
    /// Path below `/v1/` → status to answer with.
    pub fail: HashMap<String, u16>,
    /// Path below `/v1/` → the error text to answer with instead of the default one.
    pub say: HashMap<String, String>,
    /// Path below `/v1/` → a warning added to every answer.
    pub warn: HashMap<String, String>,
}

/// What to do with a freshly accepted connection.
enum ConnFault {
    Reset,
    Stall(Instant),
    Serve,
}

/// State shared by the listener, its connections and the [`crate::Lab`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub vault: Mutex<Vault>,
    pub faults: Mutex<Faults>,
    pub cert: Arc<SwappableCert>,
}

impl Shared {
    /// The emulator state (a poisoned lock is recovered: the state is still consistent).
    pub fn vault(&self) -> MutexGuard<'_, Vault> {
        self.vault.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fault table.
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn conn_fault(&self) -> ConnFault {
        let now = Instant::now();
        let f = self.faults();
        match (f.reset_until, f.stall_until) {
            (Some(t), _) if t > now => ConnFault::Reset,
            (_, Some(t)) if t > now => ConnFault::Stall(t),
            _ => ConnFault::Serve,
        }
    }
}

/// Accepts connections until the task is aborted; aborting also ends every connection task.
pub(crate) async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        match shared.conn_fault() {
            ConnFault::Reset => {
                conns.spawn(reset_after_hello(stream));
            }
            ConnFault::Stall(until) => {
                conns.spawn(async move {
                    tokio::time::sleep_until(until).await;
                    drop(stream);
                });
            }
            ConnFault::Serve => {
                conns.spawn(serve_tls(stream, peer, acceptor.clone(), shared.clone()));
            }
        }
    }
}

/// Waits (briefly) for the client's first bytes, then closes with SO_LINGER 0: the client,
/// blocked reading the ServerHello, gets a TCP RST (ECONNRESET, "connection reset by peer"),
/// as from a Vault process that dies mid-restart.
pub(crate) async fn reset_after_hello(stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_millis(500), stream.readable()).await;
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
) {
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let certs = tls.get_ref().1.peer_certificates().unwrap_or_default();
    let conn = Arc::new(ConnInfo {
        peer_certs: certs.iter().map(|c| c.clone().into_owned()).collect(),
        remote: Some(peer),
        tls: true,
    });
    let svc = hyper::service::service_fn(move |req| {
        let (shared, conn) = (shared.clone(), conn.clone());
        async move { Ok::<_, Infallible>(handle_http(&shared, conn, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), svc)
        .await;
}

async fn handle_http(
    shared: &Shared,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let head = parts.method == Method::HEAD;
    let namespace = parts.headers.get("x-vault-namespace").cloned();
    let resp = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => {
            let call = Call {
                method: &parts.method,
                uri: &parts.uri,
                headers: &parts.headers,
                body: b.to_bytes(),
            };
            dispatch(shared, call, conn)
        }
        Err(_) => ApiError::new(413, vec!["http: request body too large".into()]).into_resp(),
    };
    to_http(resp, head, namespace)
}

/// One HTTP request, before it is mapped to a logical one.
pub(crate) struct Call<'a> {
    pub method: &'a Method,
    pub uri: &'a hyper::Uri,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

/// Routes one request: non-API paths, injected failures, raw status endpoints, then the
/// logical API.
pub(crate) fn dispatch(shared: &Shared, call: Call<'_>, conn: Arc<ConnInfo>) -> Resp {
    let path = percent_decode(call.uri.path());
    if path == "/robots.txt" {
        return Resp::raw(
            "text/plain; charset=utf-8",
            b"User-agent: *\nDisallow: /\n".to_vec(),
        );
    }
    let Some(rel) = path.strip_prefix("/v1/") else {
        return ApiError::not_found().into_resp();
    };
    if let Some(resp) = injected_fault(shared, rel) {
        return resp;
    }
    let query = parse_query(call.uri.query().unwrap_or(""));
    let op = method_op(call.method, &query);
    let mut vault = shared.vault();
    if let Some(resp) = vault.raw(rel, op, call.method == Method::HEAD, &query) {
        return resp;
    }
    let Some(op) = op else {
        return ApiError::method_not_allowed().into_resp();
    };
    let req = Req {
        op,
        path: logical_path(rel, op),
        query,
        body: parse_body(&call.body),
        token: token(call.headers),
        conn,
    };
    let resp = vault.handle(&req);
    drop(vault);
    warned(shared, rel, resp)
}

/// Adds the injected warning of `rel` to its answer (a 204 becomes a 200 carrying only
/// `warnings`, as Vault answers a write that warns).
fn warned(shared: &Shared, rel: &str, mut resp: Resp) -> Resp {
    let faults = shared.faults();
    let Some(text) = faults.warn.get(rel.trim_end_matches('/')) else {
        return resp;
    };
    if let Body::Empty = resp.body {
        resp = Resp::json(200, Value::Object(Map::new()));
    }
    if let Body::Json(Value::Object(m)) = &mut resp.body {
        let list = m.entry("warnings").or_insert(Value::Null);
        if !list.is_array() {
            *list = Value::Array(vec![]);
        }
        if let Some(a) = list.as_array_mut() {
            a.push(Value::String(text.clone()));
        }
    }
    resp
}

/// The injected answer for `rel`, if a fault is set on it.
fn injected_fault(shared: &Shared, rel: &str) -> Option<Resp> {
    let faults = shared.faults();
    let key = rel.trim_end_matches('/');
    let status = faults.fail.get(key).copied()?;
    let msg = match faults.say.get(key) {
        Some(text) => text.clone(),
        None => format!("lab fault: injected HTTP {status} on {rel}"),
    };
    Some(ApiError::new(status, vec![msg]).into_resp())
}

/// §0.1: GET (or `?list=true`), LIST, POST/PUT, DELETE, PATCH; anything else is not mapped.
fn method_op(method: &Method, query: &[(String, String)]) -> Option<Op> {
    let list_param = query
        .iter()
        .find(|(k, _)| k == "list")
        .and_then(|(_, v)| parse_bool(v));
    match method.as_str() {
        "GET" if list_param == Some(true) => Some(Op::List),
        "GET" => Some(Op::Read),
        "LIST" => Some(Op::List),
        "POST" | "PUT" => Some(Op::Write),
        "DELETE" => Some(Op::Delete),
        "PATCH" => Some(Op::Patch),
        _ => None,
    }
}

/// `X-Vault-Token`, else `Authorization: Bearer`.
fn token(headers: &HeaderMap) -> Option<String> {
    let text = |v: &HeaderValue| v.to_str().ok().map(|s| s.trim().to_string());
    if let Some(t) = headers.get("x-vault-token").and_then(text) {
        return Some(t);
    }
    let auth = headers.get("authorization").and_then(text)?;
    auth.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The JSON body as an object; an empty body is `{}`.
pub(crate) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("json: cannot unmarshal into Go value of type map[string]interface {}".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `a=1&b=x%2Fy` → pairs (`+` is a space).
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The HTTP response: `Cache-Control: no-store` always, JSON content type on JSON bodies,
/// `X-Vault-Namespace` echoed, no body on HEAD.
pub(crate) fn to_http(
    resp: Resp,
    head: bool,
    namespace: Option<HeaderValue>,
) -> Response<Full<Bytes>> {
    let (content_type, bytes) = match resp.body {
        Body::Json(v) => {
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.push(b'\n');
            (Some("application/json"), b)
        }
        Body::Raw {
            content_type,
            bytes,
        } => (Some(content_type), bytes),
        Body::Empty => (None, Vec::new()),
    };
    let mut out = Response::new(Full::new(if head {
        Bytes::new()
    } else {
        Bytes::from(bytes)
    }));
    *out.status_mut() = hyper::StatusCode::from_u16(resp.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = out.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(ct) = content_type {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if let Some(ns) = namespace {
        h.insert("x-vault-namespace", ns);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_paths() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
        let q = parse_query("standbyok&list=true&x=a+b");
        assert_eq!(q[0], ("standbyok".to_string(), String::new()));
        assert_eq!(q[2].1, "a b");
        assert!(parse_body(b"").unwrap().is_empty());
        assert!(parse_body(b"[1]").is_err() && parse_body(b"{").is_err());
    }
}
