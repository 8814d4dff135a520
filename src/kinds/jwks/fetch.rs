//! Getting a `jwks` check's documents: one GET over the `http` kind's connection (the `tls`
//! kind's client for `https://`, judged by [`crate::kinds::tls::judge`] when asked) with the
//! body capped at [`DOC_CAP`] and everything within the check's deadline, or a file read
//! through [`crate::fsread`]. A stall, a reset, garbage or an oversized body is a classified
//! failure, never a hang.

use super::JwksSpec;
use crate::kinds::classify::{Failure, Peer};
use crate::kinds::http::exchange::{self, Ask, Url};
use crate::kinds::tls::{self, client, TlsExpect, TlsSpec};
use crate::kinds::Ctx;
use crate::model::{Assertion, FailureClass, Outcome, ProbeError, Status};
use http_body_util::BodyExt;
use hyper::header::CACHE_CONTROL;
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout_at, Instant};

/// Most bytes of a discovery document or key set (a set of a hundred RSA 4096 keys is 80 KiB).
pub const DOC_CAP: u64 = 1024 * 1024;

/// A document as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// The URL or path it came from.
    pub source: String,
    pub body: Vec<u8>,
    /// The `Cache-Control` header (absent for files).
    pub cache_control: Option<String>,
}

/// How one GET is made and reported.
pub struct Get<'a> {
    pub spec: &'a JwksSpec,
    pub ctx: &'a Ctx,
    /// The assertion reporting the fetch (`discovery`, `fetch`).
    pub name: &'static str,
    /// SNI and verified name (default: the URL's host).
    pub server_name: Option<String>,
    /// The TLS expectations judged on this connection (`None`: only the answer counts).
    pub judge: Option<&'a TlsExpect>,
    pub deadline: Instant,
}

/// A document on disk: a regular file of at most [`DOC_CAP`] bytes.
pub fn file(ctx: &Ctx, path: &str, out: &mut Outcome) -> Option<Doc> {
    let path = ctx.path(path);
    match crate::fsread::read(&path, DOC_CAP, "a JWKS document") {
        Ok(body) => {
            let msg = format!("read {} ({} bytes)", path.display(), body.len());
            out.assertions.push(Assertion::pass("fetch", msg));
            Some(Doc {
                source: path.display().to_string(),
                body,
                cache_control: None,
            })
        }
        Err(e) => {
            let class = e.class();
            out.error = Some(ProbeError::local(class, e.to_string()));
            let a = Assertion::not_ok("fetch", Status::Error, class, e.to_string());
            out.assertions.push(a);
            None
        }
    }
}

/// The `tls` spec of the connection to `url`.
fn tls_spec(spec: &JwksSpec, url: &Url, server_name: Option<String>) -> TlsSpec {
    TlsSpec {
        addr: url.addr(),
        server_name,
        ca_file: spec.ca_file.clone(),
        client_cert: spec.client_cert.clone(),
        client_key: spec.client_key.clone(),
        alpn: vec!["http/1.1".into()],
        crl_file: spec.crl_file.clone(),
        resolve: Default::default(),
    }
}

/// GETs `url`; its assertions (and, when judged, the TLS ones) go to `out`.
pub async fn get(g: &Get<'_>, url: &str, out: &mut Outcome) -> Option<Doc> {
    let url = match Url::parse(url) {
        Ok(u) => u,
        Err(m) => return local(g.name, "config", m, out),
    };
    let mut headers = BTreeMap::new();
    headers.insert("Accept".to_string(), "application/json".to_string());
    let host = url.host_header(g.server_name.as_deref().filter(|_| url.tls));
    let ask = match exchange::ask("GET", &url.target, &host, &headers, None) {
        Ok(a) => a,
        Err((_, m)) => return local(g.name, "config", m, out),
    };
    let got = match url.tls {
        true => https(g, &url, &ask, out).await?,
        false => plain(g, &url, &ask).await,
    };
    let shown = format!("GET {}://{}{}", scheme(&url), url.authority, url.target);
    answered(g.name, &shown, got, out)
}

fn scheme(url: &Url) -> &'static str {
    match url.tls {
        true => "https",
        false => "http",
    }
}

/// A failure before anything was sent (a bad URL, an unusable client identity).
fn local(name: &str, class: &str, msg: String, out: &mut Outcome) -> Option<Doc> {
    out.error = Some(ProbeError::local(class, msg.clone()));
    out.assertions
        .push(Assertion::not_ok(name, Status::Error, class, msg));
    None
}

/// The handshake (judged when asked), then the exchange; `None` when the handshake failed
/// and that is already reported.
async fn https(g: &Get<'_>, url: &Url, ask: &Ask, out: &mut Outcome) -> Option<Got> {
    let spec = tls_spec(g.spec, url, g.server_name.clone());
    let target = match client::Target::parse(&spec.addr, spec.server_name.as_deref()) {
        Ok(t) => t,
        Err(m) => {
            local(g.name, "config", m, out);
            return None;
        }
    };
    let template = match tls::cached_config(&spec, g.ctx) {
        Ok(c) => c,
        Err(e) => {
            local(g.name, &e.class, e.message, out);
            return None;
        }
    };
    let opened = client::open(&target, &template, g.deadline, g.ctx.timeout).await;
    let open = match opened {
        Ok(o) => o,
        Err(f) => {
            let (chain, stapled) = (f.chain.clone(), f.stapled.clone());
            let failure = f.failure.clone();
            if let Some(want) = g.judge {
                merge(out, tls::judge(&spec, want, g.ctx, &target, Err(f)));
                tls::revocation(&spec, want, g.ctx, &chain, &stapled, g.deadline, out).await;
                return None;
            }
            return Some(Err(failure));
        }
    };
    if let Some(want) = g.judge {
        let session = Ok(open.session.clone());
        merge(out, tls::judge(&spec, want, g.ctx, &target, session));
        let (chain, stapled) = (&open.session.chain, &open.session.stapled);
        tls::revocation(&spec, want, g.ctx, chain, stapled, g.deadline, out).await;
    }
    let watch = open.watch;
    Some(exchange_doc(open.stream, ask, g, || watch.peer()).await)
}

/// A plain TCP connection, then the exchange.
async fn plain(g: &Get<'_>, url: &Url, ask: &Ask) -> Got {
    let target = client::Target::parse(&url.addr(), None).map_err(|m| fail(FailureClass::Io, m))?;
    let peer = Peer {
        addr: target.addr(),
        ..Default::default()
    };
    let tcp = client::connect(&target, &peer, g.deadline, g.ctx.timeout).await?;
    exchange_doc(tcp, ask, g, || peer.clone()).await
}

/// What came back: the status, the header and the body (`too_large` when over the cap).
#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    cache_control: Option<String>,
    body: Vec<u8>,
    too_large: bool,
}

type Got = Result<Answer, Failure>;

fn fail(class: FailureClass, message: String) -> Failure {
    Failure {
        class,
        alert: None,
        message,
    }
}

/// Sends the GET and reads the answer with the body capped, all before the deadline.
async fn exchange_doc<S, P>(io: S, ask: &Ask, g: &Get<'_>, peer: P) -> Got
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    P: Fn() -> Peer,
{
    let t = crate::human::duration(g.ctx.timeout);
    let (resp, _driver) = match timeout_at(g.deadline, exchange::send(io, ask)).await {
        Err(_) => {
            let msg = format!(
                "sent GET {} to {} but got no response within {t}; the server accepted and stalled",
                ask.target,
                peer().addr
            );
            return Err(fail(FailureClass::Timeout, msg));
        }
        Ok(Err(e)) => return Err(exchange::hyper_failure(&e, &peer())),
        Ok(Ok(r)) => r,
    };
    let header = |h: hyper::header::HeaderName| {
        let v = resp.headers().get_all(h).iter();
        let parts: Vec<String> = v
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into())
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    };
    let mut a = Answer {
        status: resp.status().as_u16(),
        location: header(hyper::header::LOCATION),
        cache_control: header(CACHE_CONTROL),
        body: Vec::new(),
        too_large: false,
    };
    let mut incoming = resp.into_body();
    let read = timeout_at(g.deadline, async {
        while let Some(frame) = incoming.frame().await {
            if let Ok(data) = frame?.into_data() {
                a.body.extend_from_slice(&data);
                if a.body.len() as u64 > DOC_CAP {
                    a.too_large = true;
                    break;
                }
            }
        }
        Ok::<(), hyper::Error>(())
    })
    .await;
    match read {
        Ok(Ok(())) => Ok(a),
        Ok(Err(e)) => Err(exchange::hyper_failure(&e, &peer())),
        Err(_) => {
            let msg = format!("{} answered {} but its body did not finish within {t} (got {} bytes); is the server stalling mid-response?", peer().addr, a.status, a.body.len());
            Err(fail(FailureClass::Timeout, msg))
        }
    }
}

/// Judges the answer: a connection failure, a status other than 2xx, an oversized body.
fn answered(name: &str, shown: &str, got: Got, out: &mut Outcome) -> Option<Doc> {
    let a = match got {
        Ok(a) => a,
        Err(f) => {
            let msg = format!("{shown}: {}", f.message);
            out.assertions
                .push(Assertion::fail(name, f.class.as_str(), msg));
            out.error = Some(f.to_probe_error());
            return None;
        }
    };
    if !(200..300).contains(&a.status) {
        let msg = match &a.location {
            Some(l) => format!("{shown}: HTTP {} to {l:?} (redirects are not followed); expected 200 with the document: point the check at {l:?}", a.status),
            None => format!("{shown}: HTTP {}; expected 200 with the document: is the path right, and does the server publish it?", a.status),
        };
        out.assertions.push(Assertion::fail(name, "status", msg));
        return None;
    }
    if a.too_large {
        let msg = format!(
            "{shown}: the body is over {} KiB; expected a small JSON document: is the URL right?",
            DOC_CAP / 1024
        );
        out.assertions
            .push(Assertion::fail(name, "jwks_too_large", msg));
        return None;
    }
    let cc = a.cache_control.as_deref().unwrap_or("none");
    let msg = format!(
        "{shown}: HTTP {}, {} bytes, Cache-Control: {cc}",
        a.status,
        a.body.len()
    );
    out.assertions.push(Assertion::pass(name, msg));
    Some(Doc {
        source: shown.trim_start_matches("GET ").to_string(),
        body: a.body,
        cache_control: a.cache_control,
    })
}

/// Adds the TLS judgement of a connection to the check's outcome.
fn merge(out: &mut Outcome, judged: Outcome) {
    out.assertions.extend(judged.assertions);
    out.certs = judged.certs;
    out.facts.tls = judged.facts.tls;
    if judged.error.is_some() {
        out.error = judged.error;
    }
}
