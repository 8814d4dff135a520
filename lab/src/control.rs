//! The control channel of a running `rotcheck-lab up`: a plain-HTTP endpoint on a second
//! loopback port (address in `DIR/control.addr`, shared secret in `DIR/control.token`, 0600)
//! so shell scripts can inject faults, and the small client `rotcheck-lab ctl` uses.

use crate::server::parse_query;
use crate::{Lab, LabError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Header carrying the control secret.
pub const SECRET_HEADER: &str = "x-lab-control";

/// Actions the endpoint understands (`POST /ctl/<action>`), with their query parameters.
pub const ACTIONS: &[(&str, &str)] = &[
    (
        "reset",
        "for=DURATION  reset every new connection (TCP RST)",
    ),
    ("stall", "for=DURATION  accept connections and never answer"),
    (
        "fail",
        "path=API_PATH&status=CODE  answer one API path with an error status",
    ),
    ("clear", "remove every injected fault"),
    ("seal", "seal the server"),
    ("unseal", "unseal the server"),
    ("uninit", "report the server as not initialized"),
    ("init", "report the server as initialized"),
    ("standby", "make the node an unsealed standby"),
    ("active", "make the node active again"),
    ("version", "value=X.Y.Z  change the reported version"),
    (
        "reload",
        "re-read the server certificate files (like SIGHUP)",
    ),
    ("status", "print state and token counters"),
];

/// Serves the control endpoint on `127.0.0.1:0` for `lab`.
pub async fn serve(
    lab: Arc<Lab>,
    secret: String,
) -> Result<(SocketAddr, JoinHandle<()>), LabError> {
    let want = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = TcpListener::bind(want)
        .await
        .map_err(|source| LabError::Bind { addr: want, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| LabError::Bind { addr: want, source })?;
    let secret = Arc::new(secret);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (lab, secret) = (lab.clone(), secret.clone());
            tokio::spawn(serve_conn(stream, lab, secret));
        }
    });
    Ok((addr, task))
}

async fn serve_conn(stream: TcpStream, lab: Arc<Lab>, secret: Arc<String>) {
    let svc = hyper::service::service_fn(move |req| {
        let (lab, secret) = (lab.clone(), secret.clone());
        async move { Ok::<_, std::convert::Infallible>(handle(&lab, &secret, &req)) }
    });
    let io = hyper_util::rt::TokioIo::new(stream);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, svc)
        .await;
}

fn handle<B>(lab: &Lab, secret: &str, req: &Request<B>) -> Response<Full<Bytes>> {
    let given = req
        .headers()
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok());
    if given != Some(secret) {
        return reply(403, json!({ "error": "missing or wrong control secret" }));
    }
    let action = req.uri().path().trim_start_matches("/ctl/");
    let query = parse_query(req.uri().query().unwrap_or(""));
    match apply(lab, action, &query) {
        Ok(v) => reply(200, v),
        Err(e) => reply(400, json!({ "error": e })),
    }
}

fn apply(lab: &Lab, action: &str, query: &[(String, String)]) -> Result<Value, String> {
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let dur = || -> Result<Duration, String> {
        let text = get("for").ok_or("missing for=DURATION")?;
        humantime::parse_duration(text).map_err(|e| format!("for={text}: {e}"))
    };
    match action {
        "reset" => lab.reset_for(dur()?),
        "stall" => lab.stall_for(dur()?),
        "fail" => {
            let path = get("path").ok_or("missing path=API_PATH")?;
            let status = get("status")
                .unwrap_or("500")
                .parse::<u16>()
                .map_err(|e| format!("status: {e}"))?;
            lab.fail_path(path, status);
        }
        "clear" => lab.clear_faults(),
        "seal" | "unseal" => lab.set_sealed(action == "seal"),
        "init" | "uninit" => lab.set_initialized(action == "init"),
        "standby" | "active" => lab.set_standby(action == "standby"),
        "version" => lab
            .set_version(get("value").ok_or("missing value=X.Y.Z")?)
            .map_err(|e| e.to_string())?,
        "reload" => lab.reload_tls().map_err(|e| e.to_string())?,
        "status" => {}
        other => return Err(format!("unknown action {other:?}")),
    }
    Ok(status(lab))
}

fn status(lab: &Lab) -> Value {
    json!({
        "addr": lab.addr().to_string(),
        "tokens_issued": lab.tokens_issued(),
        "tokens_revoked": lab.tokens_revoked(),
        "tokens_live": lab.tokens_live(),
    })
}

fn reply(status: u16, v: Value) -> Response<Full<Bytes>> {
    let mut body = v.to_string();
    body.push('\n');
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    let ct = hyper::header::HeaderValue::from_static("application/json");
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, ct);
    resp
}

/// Sends one control action; returns the HTTP status and body.
pub async fn request(
    addr: SocketAddr,
    secret: &str,
    action: &str,
    query: &[(&str, &str)],
) -> Result<(u16, String), LabError> {
    let io = |source| LabError::Io {
        path: format!("control endpoint {addr}").into(),
        source,
    };
    let mut stream = TcpStream::connect(addr).await.map_err(io)?;
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", pct(v)))
        .collect();
    let head = format!(
        "POST /ctl/{action}?{} HTTP/1.1\r\nHost: {addr}\r\n{SECRET_HEADER}: {secret}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        q.join("&")
    );
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// Percent-encodes a query value.
fn pct(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
