//! The HTTP endpoints: `/metrics` (latest results from memory), `/probe?check=NAME` (one
//! suite check run now; `&debug=true` for its human report), `/status` (latest results as
//! the gate's JSON), `/healthz`, `/ready`, `POST /-/reload`, and a landing page. Plain
//! HTTP or TLS per `--web-config`; basic auth on everything but `/healthz` and `/ready`.
//! Bad requests get a 4xx with a message, never a panic.

use super::admission::Admission;
use super::compat::{self, Compat};
use super::conns::{Conns, Marker, Ticket};
use super::metrics;
use super::negotiate::Choice;
use super::probes::{ProbeGate, ProbeJob};
use super::scheduler::Runner;
use super::state::{unix_now, State};
use super::status;
use super::webconfig::{Auth, WebConfig};
use crate::metrics::text::Exposition;
use crate::model::CheckResult;
use crate::suite::{CheckSpec, Suite};
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

/// Subtracted from Prometheus' scrape timeout so the answer arrives in time.
pub const SCRAPE_TIMEOUT_OFFSET: Duration = Duration::from_millis(500);
/// How long open connections get to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the connection reaper looks for timed-out connections.
const REAP_EVERY: Duration = Duration::from_secs(1);
/// The longest pause of the accept loop while the process is out of file descriptors.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// Running out of file descriptors is logged at most this often.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

/// A request to the control loop.
pub enum Control {
    /// Reload the suite (and web config); answers with the number of checks or the error.
    Reload(oneshot::Sender<Result<usize, String>>),
}

/// The web config in force; swapped on reload.
#[derive(Default)]
pub struct WebHandle(RwLock<Arc<WebConfig>>);

impl WebHandle {
    /// Wraps the start-up web config.
    pub fn new(w: WebConfig) -> Self {
        WebHandle(RwLock::new(Arc::new(w)))
    }

    /// The config in force.
    pub fn current(&self) -> Arc<WebConfig> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a reloaded config in force.
    pub fn set(&self, w: WebConfig) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(w);
    }
}

/// What the handlers share.
pub struct App {
    pub state: Arc<State>,
    pub runner: Arc<dyn Runner>,
    pub permits: Arc<Semaphore>,
    pub control: mpsc::Sender<Control>,
    pub web: Arc<WebHandle>,
    /// Open connections: the cap, timeouts and eviction.
    pub conns: Arc<Conns>,
    /// bcrypt password checks: one at a time, a short line, the rest answered 503.
    pub passwords: Admission,
    /// `/probe` runs: bounded, one per check at a time.
    pub probes: Arc<ProbeGate>,
    /// `--compat`: extra series `/probe` writes.
    pub compat: Compat,
}

/// An answer: a body in one piece, or `/metrics`, sent as it is assembled.
type Resp = Response<Either<Full<Bytes>, PiecesBody>>;

/// `/metrics` as an HTTP body: each frame is the next piece (or, compressed, the encoder's
/// output for the next pieces), assembled when the connection is ready for it (a few hundred
/// microseconds of work per piece, about a millisecond compressed), so a large body is never
/// held whole and the first bytes leave before the last are made.
pub struct PiecesBody(metrics::Body);

impl hyper::body::Body for PiecesBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let piece = self.0.next_chunk();
        std::task::Poll::Ready(piece.map(|p| Ok(hyper::body::Frame::data(Bytes::from(p)))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_done()
    }
}

/// Accepts connections until `shutdown` turns true, then lets open ones finish briefly.
pub async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut accepting = AcceptLoop::default();
    let mut reaper = tokio::time::interval(REAP_EVERY);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    accepting.recovered();
                    admit(stream, &app, &shutdown, &mut conns);
                }
                Err(e) => accepting.failed(&e, &app.conns).await,
            },
            _ = reaper.tick() => {
                app.conns.reap(tokio::time::Instant::now());
            }
            _ = shutdown.changed() => break,
        }
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// Serves a new connection if the registry admits it; otherwise closes it at once.
fn admit(
    stream: TcpStream,
    app: &Arc<App>,
    shutdown: &watch::Receiver<bool>,
    conns: &mut JoinSet<()>,
) {
    if let Some(ticket) = app.conns.admit() {
        conns.spawn(connection(stream, app.clone(), ticket, shutdown.clone()));
    }
}

/// The accept loop's error handling: running out of file descriptors is a local error,
/// logged at most once a minute, answered by closing the stalest idle connection and backing
/// off (doubling up to a second) instead of spinning; other errors concern one connection.
#[derive(Default)]
struct AcceptLoop {
    backoff: Option<Duration>,
    logged: Option<tokio::time::Instant>,
    unlogged: u64,
}

impl AcceptLoop {
    async fn failed(&mut self, e: &std::io::Error, conns: &Conns) {
        if !out_of_descriptors(e) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            return;
        }
        self.report(e);
        let pause = self.backoff.map_or(Duration::from_millis(10), |d| {
            (d * 2).min(MAX_ACCEPT_BACKOFF)
        });
        self.backoff = Some(pause);
        conns.evict_one();
        tokio::time::sleep(pause).await;
    }

    fn report(&mut self, e: &std::io::Error) {
        if self
            .logged
            .is_some_and(|t| t.elapsed() < ACCEPT_ERROR_LOG_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        let again = match self.unlogged {
            0 => String::new(),
            n => format!(" ({n} more times since the last report)"),
        };
        super::log(format!(
            "error: cannot accept connections: {e}{again}; the process (or the host) is \
             out of file descriptors ({}). Closing idle connections and retrying; raise the open-file \
             limit (LimitNOFILE=) or lower --web.max-connections",
            super::fdlimit::describe()
        ));
        self.logged = Some(tokio::time::Instant::now());
        self.unlogged = 0;
    }

    fn recovered(&mut self) {
        self.backoff = None;
    }
}

/// EMFILE (the process's limit) or ENFILE (the host's).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    let code = e.raw_os_error().map(Errno::from_raw);
    matches!(code, Some(Errno::EMFILE | Errno::ENFILE))
}

/// Serves one connection until it ends or the registry closes it.
async fn connection(
    stream: TcpStream,
    app: Arc<App>,
    ticket: Ticket,
    shutdown: watch::Receiver<bool>,
) {
    let marker = ticket.marker();
    tokio::select! {
        _ = ticket.closed() => {}
        _ = serve_stream(stream, app, marker, shutdown) => {}
    }
}

async fn serve_stream(
    stream: TcpStream,
    app: Arc<App>,
    marker: Marker,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let web = app.web.current();
    let timeout = app.conns.limits().header_timeout;
    match web.tls() {
        None => http(stream, app, marker, false, shutdown).await,
        Some(acceptor) => {
            // A refused handshake (say, no client certificate) leaves nothing to answer; one
            // that never finishes (a half-open connection) is dropped after the timeout.
            let handshake = tokio::time::timeout(timeout, acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                let cert = tls.get_ref().1.peer_certificates().is_some();
                http(tls, app, marker, cert, shutdown).await;
            }
        }
    }
}

async fn http<S>(
    io: S,
    app: Arc<App>,
    marker: Marker,
    cert: bool,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = app.conns.limits().header_timeout;
    let service = hyper::service::service_fn(move |req| {
        let (app, marker) = (app.clone(), marker.clone());
        async move {
            let _busy = marker.busy();
            Ok::<_, Infallible>(handle(&app, req, cert).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Who is asking: decides whether refusals may name the suite's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Neither basic auth nor client certificates are configured.
    Open,
    /// Passed basic auth, or presented a verified client certificate.
    Authenticated,
    /// Reached a public endpoint, or TLS asks for a client certificate and none was given.
    Anonymous,
}

/// Authenticates, routes, and adds the configured headers.
async fn handle(app: &App, req: Request<Incoming>, cert: bool) -> Resp {
    let (req, _body) = req.into_parts();
    let web = app.web.current();
    let public = matches!(req.uri.path(), "/healthz" | "/ready");
    let mut resp = if public {
        route(app, &req, Caller::Anonymous).await
    } else {
        match authorized(app, &web, &req).await {
            Auth::Denied => unauthorized(),
            Auth::Busy => busy(
                1,
                "too many password checks are waiting; retry in a second\n".into(),
            ),
            Auth::Granted => route(app, &req, Caller::Authenticated).await,
            Auth::Open => route(app, &req, caller(&web, cert)).await,
        }
    };
    for (name, value) in web.headers() {
        if !resp.headers().contains_key(name) {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    resp
}

/// Without basic auth: a verified client certificate authenticates; with TLS asking for
/// one and none given, the caller is anonymous; with neither configured, access is open.
fn caller(web: &WebConfig, cert: bool) -> Caller {
    match (web.asks_client_certs(), cert) {
        (_, true) => Caller::Authenticated,
        (true, false) => Caller::Anonymous,
        (false, false) => Caller::Open,
    }
}

async fn authorized(app: &App, web: &Arc<WebConfig>, req: &Parts) -> Auth {
    let header = req.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    web.authorize(header, &app.passwords).await
}

async fn route(app: &App, req: &Parts, caller: Caller) -> Resp {
    let get = matches!(req.method, Method::GET | Method::HEAD);
    match (req.uri.path(), get) {
        ("/metrics", true) => metrics_page(app, req).await,
        ("/probe", true) => probe(app, req, caller).await,
        ("/status", true) => status_page(app),
        ("/healthz", true) => text(StatusCode::OK, "ok\n"),
        ("/ready", true) => ready(app),
        ("/", true) => landing(),
        ("/-/reload", _) if req.method == Method::POST || req.method == Method::PUT => {
            reload(app).await
        }
        ("/-/reload", _) => not_allowed("POST, PUT"),
        ("/metrics" | "/probe" | "/status" | "/healthz" | "/ready" | "/", false) => {
            not_allowed("GET, HEAD")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; endpoints: /metrics, /probe?check=NAME[&debug=true], /status, /healthz, /ready, POST /-/reload\n",
        ),
    }
}

/// Every answer's body is built here, so every answer is redacted.
fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let body = crate::redact::redact(&body.into());
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// An exposition answer (`/probe`): redacted, in the negotiated format and encoding.
fn exposition(body: String, choice: Choice) -> Resp {
    let body = crate::redact::redact(&body).into_bytes();
    let body = if choice.gzip {
        metrics::gzip(&body)
    } else {
        body
    };
    exposition_bytes(body, choice)
}

/// An exposition answer whose body is ready and redacted (`/metrics` is streamed instead, from
/// fragments redacted when they were rendered: exporter/metrics.rs).
fn exposition_bytes(body: Vec<u8>, choice: Choice) -> Resp {
    exposition_headers(
        Response::new(Either::Left(Full::new(Bytes::from(body)))),
        choice,
    )
}

/// The content type, `Vary` and encoding headers of an exposition answer.
fn exposition_headers(mut r: Resp, choice: Choice) -> Resp {
    let h = r.headers_mut();
    let content_type = HeaderValue::from_static(choice.format.content_type());
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if choice.gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// The format and encoding the request asks for.
fn choice(req: &Parts) -> Choice {
    let value = |name| {
        req.headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    Choice::from_headers(value(header::ACCEPT), value(header::ACCEPT_ENCODING))
}

fn unauthorized() -> Resp {
    let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"rotcheck\""),
    );
    r
}

/// 503 with `Retry-After`: the server is busy, not broken.
fn busy(retry_after_secs: u32, body: String) -> Resp {
    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

fn not_allowed(allow: &'static str) -> Resp {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allow}\n"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn now_unix() -> i64 {
    unix_now() as i64
}

/// `/metrics`: streamed piece by piece as the connection takes it, compressed on the way when
/// the scraper asks for gzip.
async fn metrics_page(app: &App, req: &Parts) -> Resp {
    let (snapshot, choice) = (app.state.snapshot(), choice(req));
    let body = metrics::Body::new(snapshot, now_unix(), choice.format, choice.gzip);
    exposition_headers(Response::new(Either::Right(PiecesBody(body))), choice)
}

/// The latest result of every check that has run, as `gate --format json` prints it; the
/// checks still waiting for their first run are counted in `X-Rotcheck-Pending`.
fn status_page(app: &App) -> Resp {
    let (body, pending) = status::render_json(&app.state.snapshot());
    let mut r = text(StatusCode::OK, body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("x-rotcheck-pending", HeaderValue::from(pending));
    r
}

fn ready(app: &App) -> Resp {
    if app.state.is_ready() {
        return text(StatusCode::OK, "ready\n");
    }
    let (done, total) = app.state.progress();
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: the first round is running ({done} of {total} checks done)\n"),
    )
}

fn landing() -> Resp {
    let body = "<html><head><title>rotcheck</title></head><body><h1>rotcheck exporter</h1><ul>\
        <li><a href=\"/metrics\">/metrics</a> latest results of every check</li>\
        <li>/probe?check=NAME runs one check of the suite now (&amp;debug=true: its report)</li>\
        <li><a href=\"/status\">/status</a> latest results as JSON</li>\
        <li><a href=\"/healthz\">/healthz</a>, <a href=\"/ready\">/ready</a></li>\
        <li>POST /-/reload reloads the suite</li></ul></body></html>\n";
    let mut r = text(StatusCode::OK, body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

async fn reload(app: &App) -> Resp {
    let (tx, rx) = oneshot::channel();
    if app.control.send(Control::Reload(tx)).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match rx.await {
        Ok(Ok(n)) => text(StatusCode::OK, format!("reloaded: {n} checks\n")),
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed, the previous suite stays in force: {e}\n"),
        ),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
    }
}

/// Why a `/probe` request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeRequestError {
    #[error("missing check parameter; use /probe?check=NAME with a check of the suite")]
    Missing,
    #[error("give one check parameter, not several")]
    Repeated,
    #[error("unknown parameter {0:?}; /probe only takes check=NAME (and debug=true): it runs checks of the suite, never arbitrary targets")]
    UnknownParam(String),
    #[error("debug={0:?}: expected debug=true or debug=false")]
    BadDebug(String),
    #[error("bad percent-encoding in the query string")]
    BadEncoding,
    #[error("unknown check {name:?}; checks of the suite: {known}")]
    UnknownCheck { name: String, known: String },
    #[error("unknown check {name:?}; the suite's check names are listed to authenticated callers (or run `rotcheck list -c SUITE` on the host)")]
    UnknownCheckHidden { name: String },
}

/// What a `/probe` request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeQuery {
    pub check: String,
    /// `debug=true`: the human report of the run instead of its metrics.
    pub debug: bool,
}

/// Reads `check=NAME` (and `debug=true|false`) from a query string; anything else is
/// refused (no SSRF).
pub fn probe_param(query: Option<&str>) -> Result<ProbeQuery, ProbeRequestError> {
    let (mut found, mut debug) = (None, false);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k)?, percent_decode(v)?);
        match k.as_str() {
            "check" => {
                if found.replace(v).is_some() {
                    return Err(ProbeRequestError::Repeated);
                }
            }
            "debug" => debug = debug_flag(v)?,
            _ => return Err(ProbeRequestError::UnknownParam(k)),
        }
    }
    let check = found
        .filter(|n| !n.is_empty())
        .ok_or(ProbeRequestError::Missing)?;
    Ok(ProbeQuery { check, debug })
}

fn debug_flag(v: String) -> Result<bool, ProbeRequestError> {
    match v.as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ProbeRequestError::BadDebug(v.chars().take(20).collect())),
    }
}

fn percent_decode(s: &str) -> Result<String, ProbeRequestError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex = [bytes.next(), bytes.next()];
                let [Some(h), Some(l)] = hex else {
                    return Err(ProbeRequestError::BadEncoding);
                };
                let pair = std::str::from_utf8(&[h, l])
                    .ok()
                    .and_then(|t| u8::from_str_radix(t, 16).ok())
                    .ok_or(ProbeRequestError::BadEncoding)?;
                out.push(pair);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| ProbeRequestError::BadEncoding)
}

/// The suite check named `name`, or a typed refusal that lists (some of) the known names
/// when `reveal` (the caller is authenticated, or no authentication is configured).
fn find_check(suite: &Suite, name: &str, reveal: bool) -> Result<CheckSpec, ProbeRequestError> {
    if let Some(c) = suite.file.checks.iter().find(|c| c.name == name) {
        return Ok(c.clone());
    }
    let name = name.chars().take(100).collect();
    if !reveal {
        return Err(ProbeRequestError::UnknownCheckHidden { name });
    }
    let names = suite.check_names();
    let mut known = names
        .iter()
        .take(20)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 20 {
        known.push_str(&format!(" and {} more", names.len() - 20));
    }
    Err(ProbeRequestError::UnknownCheck { name, known })
}

/// Time left for a probe: Prometheus' scrape timeout header minus the offset.
pub fn scrape_budget(header: Option<&HeaderValue>) -> Option<Duration> {
    let secs: f64 = header?.to_str().ok()?.trim().parse().ok()?;
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    let total = Duration::from_secs_f64(secs.min(3600.0));
    Some(if total > SCRAPE_TIMEOUT_OFFSET * 2 {
        total - SCRAPE_TIMEOUT_OFFSET
    } else {
        total / 2
    })
}

async fn probe(app: &App, req: &Parts, caller: Caller) -> Resp {
    let choice = choice(req);
    let (suite, generation) = app.state.suite();
    let reveal = caller != Caller::Anonymous;
    let asked = probe_param(req.uri.query());
    let found = asked.and_then(|q| find_check(&suite, &q.check, reveal).map(|c| (c, q.debug)));
    let (check, debug) = match found {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let job = ProbeJob {
        suite: suite.clone(),
        generation,
        check,
        budget: scrape_budget(req.headers.get("x-prometheus-scrape-timeout-seconds")),
    };
    match app.probes.probe(job).await {
        Ok(result) if debug => text(
            StatusCode::OK,
            status::render_debug(&suite.file.suite, result),
        ),
        Ok(result) => exposition(
            probe_body(&suite.file.suite, &result, app.compat, choice),
            choice,
        ),
        Err(e) => busy(5, format!("{e}\n")),
    }
}

/// One run's series, and blackbox_exporter's with `--compat blackbox`.
fn probe_body(suite: &str, result: &CheckResult, compat: Compat, choice: Choice) -> String {
    let mut e = Exposition::new(crate::metrics::all());
    crate::metrics::check_series(&mut e, suite, result, now_unix());
    if compat == Compat::Blackbox {
        compat::blackbox_series(&mut e, result);
    }
    e.finish_as(choice.format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_takes_only_a_check_name() {
        let q = |check: &str, debug| ProbeQuery {
            check: check.into(),
            debug,
        };
        assert_eq!(
            probe_param(Some("check=vault-listener")).unwrap(),
            q("vault-listener", false)
        );
        assert_eq!(probe_param(Some("check=a%2Db")).unwrap(), q("a-b", false));
        assert_eq!(
            probe_param(Some("debug=true&check=a")).unwrap(),
            q("a", true)
        );
        assert_eq!(
            probe_param(Some("check=a&debug=yes")),
            Err(ProbeRequestError::BadDebug("yes".into()))
        );
        assert_eq!(
            probe_param(Some("debug=true")),
            Err(ProbeRequestError::Missing)
        );
        assert_eq!(probe_param(None), Err(ProbeRequestError::Missing));
        assert_eq!(probe_param(Some("check=")), Err(ProbeRequestError::Missing));
        assert_eq!(
            probe_param(Some("check=a&check=b")),
            Err(ProbeRequestError::Repeated)
        );
        assert_eq!(
            probe_param(Some("check=a&target=169.254.169.254:80")),
            Err(ProbeRequestError::UnknownParam("target".into()))
        );
        assert_eq!(
            probe_param(Some("check=%zz")),
            Err(ProbeRequestError::BadEncoding)
        );
        assert_eq!(
            probe_param(Some("check=%e2")),
            Err(ProbeRequestError::BadEncoding)
        );
    }

    #[test]
    fn budget_follows_the_scrape_timeout_header() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            scrape_budget(Some(&h("10"))),
            Some(Duration::from_millis(9500))
        );
        assert_eq!(
            scrape_budget(Some(&h("0.8"))),
            Some(Duration::from_millis(400))
        );
        assert_eq!(scrape_budget(Some(&h("nope"))), None);
        assert_eq!(scrape_budget(Some(&h("-1"))), None);
        assert_eq!(scrape_budget(None), None);
    }

    #[test]
    fn a_client_certificate_authenticates_only_when_one_was_presented() {
        let web = WebConfig::none();
        assert_eq!(caller(&web, false), Caller::Open);
        assert_eq!(caller(&web, true), Caller::Authenticated);
    }

    #[test]
    fn unknown_checks_list_the_known_ones() {
        let suite = crate::suite::load_str(
            "suite: t\nchecks:\n  - name: a\n    command: [\"true\"]\n",
            std::path::Path::new("s.yaml"),
        )
        .unwrap();
        let e = find_check(&suite, "nope", true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown check \"nope\"; checks of the suite: a"
        );
        assert!(find_check(&suite, "a", true).is_ok());
        let e = find_check(&suite, "nope", false).unwrap_err();
        assert_eq!(
            e,
            ProbeRequestError::UnknownCheckHidden {
                name: "nope".into()
            }
        );
        assert!(!e.to_string().contains(": a"), "{e}");
        assert!(find_check(&suite, "a", false).is_ok());
    }
}
