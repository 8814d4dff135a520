//! One HTTP/1.1 exchange over an open stream (plain TCP or TLS): the URL a check names, the
//! request it sends, and the response read within the deadline with its body capped. Failures
//! are classified like every connection failure ([`crate::kinds::classify`]).

use crate::kinds::classify::{self, Failure, Peer, Phase};
use crate::model::FailureClass;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, HOST, LOCATION, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout_at, Instant};

/// Most body bytes kept for `body_contains` / `body_matches`.
pub const BODY_KEEP: usize = 64 * 1024;

/// Most body bytes read in all; the rest is left unread and the connection dropped.
pub const BODY_READ: u64 = 1024 * 1024;

/// A parsed `http.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https://`.
    pub tls: bool,
    /// The host without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// The host and port as written (`Host` header default).
    pub authority: String,
    /// Path and query (`/` when the URL has none).
    pub target: String,
}

impl Url {
    /// Parses `http(s)://host[:port][/path][?query]`.
    pub fn parse(url: &str) -> Result<Url, String> {
        let bad = |why: &str| {
            format!("bad url {url:?} ({why}); write http(s)://host[:port]/path, e.g. https://127.0.0.1:8443/health")
        };
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "credentials in the URL are not sent; use an Authorization header",
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        Ok(Url {
            tls,
            host: host.to_string(),
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: authority.as_str().to_string(),
            target: uri.path_and_query().map_or("/".into(), |p| p.to_string()),
        })
    }

    /// `host:port` for connecting (IPv6 in brackets).
    pub fn addr(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }

    /// The scheme's default port.
    fn default_port(&self) -> u16 {
        if self.tls {
            443
        } else {
            80
        }
    }

    /// The `Host` header: `server_name` (with a non-default port) when set, else the URL's.
    pub fn host_header(&self, server_name: Option<&str>) -> String {
        match server_name {
            Some(n) if self.port == self.default_port() => n.to_string(),
            Some(n) => format!("{n}:{}", self.port),
            None => self.authority.clone(),
        }
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Ask {
    pub method: Method,
    pub target: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// Parses a method and header list as written in the suite; an error names the key
/// (`method` or `headers`) and says what to write.
pub fn ask(
    method: &str,
    target: &str,
    host: &str,
    headers: &BTreeMap<String, String>,
    body: Option<&str>,
) -> Result<Ask, (&'static str, String)> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| {
        let msg = format!("bad method {method:?}; write an HTTP method such as GET or HEAD");
        ("method", msg)
    })?;
    let agent = concat!("rotcheck/", env!("CARGO_PKG_VERSION"));
    let mut list = vec![(HOST, value(host)?), (USER_AGENT, value(agent)?)];
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            let msg = format!("bad header name {k:?}; write a token such as X-Request-Id");
            ("headers", msg)
        })?;
        list.retain(|(n, _)| *n != name);
        list.push((name, value(v)?));
    }
    Ok(Ask {
        method,
        target: target.to_string(),
        headers: list,
        body: Bytes::from(body.unwrap_or_default().to_string()),
    })
}

fn value(v: &str) -> Result<HeaderValue, (&'static str, String)> {
    HeaderValue::from_str(v).map_err(|_| {
        let msg = format!("bad header value {v:?}; use visible ASCII without line breaks");
        ("headers", msg)
    })
}

impl Ask {
    fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self
            .target
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
        for (k, v) in &self.headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        req
    }
}

/// The status line and what the checks quote from the headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub location: Option<String>,
}

impl Head {
    fn of(resp: &hyper::Response<Incoming>) -> Head {
        let location = resp.headers().get(LOCATION);
        Head {
            status: resp.status().as_u16(),
            location: location.map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned()),
        }
    }

    /// `400 Bad Request`.
    pub fn status_text(&self) -> String {
        let reason = hyper::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason());
        match reason {
            Some(r) => format!("{} {r}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// The body as read: the first [`BODY_KEEP`] bytes and how many came in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    pub kept: Vec<u8>,
    pub total: u64,
    /// More than [`BODY_READ`] bytes: reading stopped there.
    pub cut: bool,
}

impl Body {
    fn take(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let room = BODY_KEEP.saturating_sub(self.kept.len()).min(data.len());
        self.kept.extend_from_slice(&data[..room]);
        self.cut = self.total > BODY_READ;
    }

    /// The kept bytes as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept).into_owned()
    }

    /// True when bytes were dropped.
    pub fn truncated(&self) -> bool {
        self.total > self.kept.len() as u64
    }
}

/// A finished exchange.
#[derive(Debug, Clone)]
pub struct Answer {
    pub head: Head,
    pub body: Body,
}

/// An exchange that broke, with the response head when it had arrived.
#[derive(Debug, Clone)]
pub struct Broken {
    pub head: Option<Head>,
    pub failure: Failure,
}

/// Where the deadline struck, for messages.
enum Stalled {
    Head,
    Body(u16, u64),
}

/// Sends `ask` over `io` and reads the answer, all before `deadline`. `peer` describes the
/// connection for classifying failures (called after the failure, so it sees every byte).
pub async fn exchange<S, P>(
    io: S,
    ask: &Ask,
    deadline: Instant,
    budget: Duration,
    peer: P,
) -> Result<Answer, Broken>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    P: Fn() -> Peer,
{
    let head_err = |e| Broken {
        head: None,
        failure: e,
    };
    let (resp, _driver) = timeout_at(deadline, send(io, ask))
        .await
        .map_err(|_| head_err(stalled(Stalled::Head, ask, &peer(), budget)))?
        .map_err(|e| head_err(hyper_failure(&e, &peer())))?;
    let head = Head::of(&resp);
    let mut body = Body::default();
    let read = timeout_at(deadline, read_into(&mut body, resp.into_body())).await;
    let failure = match read {
        Ok(Ok(())) => return Ok(Answer { head, body }),
        Ok(Err(e)) => hyper_failure(&e, &peer()),
        Err(_) => stalled(Stalled::Body(head.status, body.total), ask, &peer(), budget),
    };
    let head = Some(head);
    Err(Broken { head, failure })
}

/// Handshakes HTTP/1.1 and sends the request; returns the response and the connection's
/// driver, aborted when dropped.
pub(crate) async fn send<S>(
    io: S,
    ask: &Ask,
) -> Result<(hyper::Response<Incoming>, AbortOnDrop), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let resp = sender.send_request(ask.request()).await?;
    Ok((resp, driver))
}

/// Reads body frames into `body` until the end or [`BODY_READ`] bytes.
async fn read_into(body: &mut Body, mut incoming: Incoming) -> Result<(), hyper::Error> {
    while let Some(frame) = incoming.frame().await {
        if let Ok(data) = frame?.into_data() {
            body.take(&data);
            if body.cut {
                break;
            }
        }
    }
    Ok(())
}

/// Aborts the spawned connection driver when the exchange ends (or is cancelled).
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn stalled(at: Stalled, ask: &Ask, peer: &Peer, budget: Duration) -> Failure {
    let t = crate::human::duration(budget);
    let message = match at {
        Stalled::Head => format!(
            "sent {} {} to {} but got no response within {t}; the listener accepted and stalled: is the app (or the proxy's backend) hung?",
            ask.method, ask.target, peer.addr
        ),
        Stalled::Body(status, got) => format!(
            "{} answered {status} but its body did not finish within {t} (got {got} bytes); is the app or the proxy's backend stalling mid-response?",
            peer.addr
        ),
    };
    failure(FailureClass::Timeout, message)
}

fn failure(class: FailureClass, message: String) -> Failure {
    Failure {
        class,
        alert: None,
        message,
    }
}

/// Classifies a hyper error: the I/O error inside it like any connection failure, else by
/// what hyper says went wrong.
pub(crate) fn hyper_failure(e: &hyper::Error, peer: &Peer) -> Failure {
    if let Some(io) = io_source(e) {
        return classify::classify(io, Phase::Exchange, peer);
    }
    if e.is_incomplete_message() {
        let msg = format!("{} closed the connection before a complete HTTP response; expected an answer to our request: does it reject our client certificate, or did the app behind it crash? See the server's log", peer.addr);
        return failure(FailureClass::Eof, msg);
    }
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        let msg = format!("{} did not answer in HTTP/1.1 ({e}); expected a status line: is this the right port and scheme (http:// or https://)?", peer.addr);
        return failure(FailureClass::Protocol, msg);
    }
    let msg = format!("the HTTP exchange with {} failed: {e}", peer.addr);
    failure(FailureClass::Io, msg)
}

/// The first `io::Error` in an error's source chain.
fn io_source<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports_and_paths() {
        let u = Url::parse("https://app.example.test/health?x=1").unwrap();
        assert_eq!(
            (u.tls, u.port, u.addr()),
            (true, 443, "app.example.test:443".into())
        );
        assert_eq!(u.target, "/health?x=1");
        let u = Url::parse("http://[::1]:8080").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.target.as_str()),
            (false, "::1", "/")
        );
        assert_eq!(u.addr(), "[::1]:8080");
        assert_eq!(u.host_header(None), "[::1]:8080");
        for bad in ["ftp://x/", "/health", "https://user:pw@x/", "not a url"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_header_follows_server_name() {
        let u = Url::parse("https://127.0.0.1:8443/").unwrap();
        assert_eq!(u.host_header(Some("app.test")), "app.test:8443");
        let u = Url::parse("https://127.0.0.1/").unwrap();
        assert_eq!(u.host_header(Some("app.test")), "app.test");
    }

    #[test]
    fn headers_override_the_defaults() {
        let mut h = BTreeMap::new();
        h.insert("host".to_string(), "other.test".to_string());
        let a = ask("HEAD", "/", "app.test", &h, None).unwrap();
        let hosts: Vec<_> = a.headers.iter().filter(|(n, _)| *n == HOST).collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].1, "other.test");
        assert!(ask("G ET", "/", "h", &BTreeMap::new(), None).is_err());
    }

    #[test]
    fn the_body_keeps_its_head_and_counts_the_rest() {
        let mut b = Body::default();
        b.take(&vec![b'a'; BODY_KEEP + 10]);
        assert_eq!(
            (b.kept.len(), b.total, b.cut),
            (BODY_KEEP, BODY_KEEP as u64 + 10, false)
        );
        assert!(b.truncated());
        b.take(&vec![b'b'; BODY_READ as usize]);
        assert!(b.cut);
    }
}
