//! Fetching a CRL over HTTP(S) within a deadline, its size capped at [`MAX_CRL_BYTES`]; also
//! the one-request exchange an OCSP responder is asked with ([`request`]).
//!
//! The transport of an `https://` distribution point is not verified: what is trusted is the
//! CRL's own signature, checked against the certificate's issuer (as RFC 5280 intends; most
//! distribution points are plain `http://` for that reason).

use super::MAX_CRL_BYTES;
use crate::kinds::classify::Peer;
use crate::kinds::http::exchange::{self, Url};
use crate::kinds::tls::client::{self, Target};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout_at, Instant};

/// GETs `url` before `deadline`: the body of a 200 answer, else why not (one line).
pub async fn fetch(url: &str, deadline: Instant) -> Result<Vec<u8>, String> {
    let get = Request {
        method: "GET",
        content_type: None,
        body: Vec::new(),
        limit: MAX_CRL_BYTES,
    };
    request(url, &get, deadline).await
}

/// One HTTP request: method, body with its content type, and the largest answer accepted.
pub struct Request {
    pub method: &'static str,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
    pub limit: u64,
}

/// Sends `req` to `url` before `deadline`: the body of a 200 answer, else why not (one line).
pub async fn request(url: &str, req: &Request, deadline: Instant) -> Result<Vec<u8>, String> {
    let parsed = Url::parse(url)?;
    let target = Target::parse(&parsed.addr(), None)?;
    let peer = Peer {
        addr: target.addr(),
        ..Default::default()
    };
    let budget = deadline.saturating_duration_since(Instant::now());
    let tcp = client::connect(&target, &peer, deadline, budget)
        .await
        .map_err(|f| f.message)?;
    let mut headers = BTreeMap::new();
    if let Some(t) = req.content_type {
        headers.insert("Content-Type".to_string(), t.to_string());
    }
    let mut ask = exchange::ask(
        req.method,
        &parsed.target,
        &parsed.authority,
        &headers,
        None,
    )
    .map_err(|(_, m)| m)?;
    ask.body = req.body.clone().into();
    if !parsed.tls {
        return get(tcp, &ask, req.limit, deadline, budget).await;
    }
    let cfg = client::config(None, &[]).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tls = timeout_at(deadline, connector.connect(target.server_name.clone(), tcp))
        .await
        .map_err(|_| late(budget))?
        .map_err(|e| format!("TLS handshake with {} failed: {e}", target.addr()))?;
    get(tls, &ask, req.limit, deadline, budget).await
}

/// Sends the request and reads a 200 answer's body, at most `limit` bytes.
async fn get<S>(
    io: S,
    ask: &exchange::Ask,
    limit: u64,
    deadline: Instant,
    budget: Duration,
) -> Result<Vec<u8>, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (resp, _driver) = timeout_at(deadline, exchange::send(io, ask))
        .await
        .map_err(|_| late(budget))?
        .map_err(|e| format!("the HTTP exchange failed: {e}"))?;
    let status = resp.status();
    if status != hyper::StatusCode::OK {
        return Err(format!("HTTP {status}; expected 200"));
    }
    timeout_at(deadline, read_capped(resp.into_body(), limit))
        .await
        .map_err(|_| late(budget))?
}

async fn read_capped(mut body: Incoming, limit: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the body broke off: {e}"))?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
        if out.len() as u64 > limit {
            return Err(format!("larger than the {} limit", size(limit)));
        }
    }
    Ok(out)
}

/// `4 MiB`, `64 KiB`.
fn size(bytes: u64) -> String {
    match bytes % (1024 * 1024) {
        0 => format!("{} MiB", bytes / (1024 * 1024)),
        _ => format!("{} KiB", bytes / 1024),
    }
}

fn late(budget: Duration) -> String {
    format!(
        "no complete answer within the check's timeout ({} left)",
        crate::human::duration(budget)
    )
}
