//! Fetching a CRL over HTTP(S) within a deadline, its size capped at [`MAX_CRL_BYTES`].
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
    let ask = exchange::ask(
        "GET",
        &parsed.target,
        &parsed.authority,
        &BTreeMap::new(),
        None,
    )
    .map_err(|(_, m)| m)?;
    if !parsed.tls {
        return get(tcp, &ask, deadline, budget).await;
    }
    let cfg = client::config(None, &[]).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tls = timeout_at(deadline, connector.connect(target.server_name.clone(), tcp))
        .await
        .map_err(|_| late(budget))?
        .map_err(|e| format!("TLS handshake with {} failed: {e}", target.addr()))?;
    get(tls, &ask, deadline, budget).await
}

/// Sends the request and reads a 200 answer's body.
async fn get<S>(
    io: S,
    ask: &exchange::Ask,
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
        return Err(format!("HTTP {status}; expected 200 with the CRL"));
    }
    timeout_at(deadline, read_capped(resp.into_body()))
        .await
        .map_err(|_| late(budget))?
}

async fn read_capped(mut body: Incoming) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the body broke off: {e}"))?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
        if out.len() as u64 > MAX_CRL_BYTES {
            return Err("larger than the 4 MiB limit for a CRL".into());
        }
    }
    Ok(out)
}

fn late(budget: Duration) -> String {
    format!(
        "no complete answer within the check's timeout ({} left)",
        crate::human::duration(budget)
    )
}
