//! The HTTP endpoints: `/metrics` (latest results from memory), `/probe?check=NAME` (one
//! suite check run now), `/healthz`, `/ready`, `POST /-/reload`, and a landing page. Plain
//! HTTP or TLS per `--web-config`; basic auth on everything but `/healthz` and `/ready`.
//! Bad requests get a 4xx with a message, never a panic.

use super::metrics;
use super::scheduler::Runner;
use super::state::{unix_now, State};
use super::text::CONTENT_TYPE;
use super::webconfig::WebConfig;
use crate::model::{Assertion, CheckResult, FailureClass, ProbeError, Status};
use crate::suite::{CheckSpec, Dur, Suite};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

/// Subtracted from Prometheus' scrape timeout so the answer arrives in time.
pub const SCRAPE_TIMEOUT_OFFSET: Duration = Duration::from_millis(500);
/// A TLS handshake or request head that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
}

type Resp = Response<Full<Bytes>>;

/// Accepts connections until `shutdown` turns true, then lets open ones finish briefly.
pub async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(connection(stream, app.clone(), shutdown.clone()));
                }
                Err(e) => {
                    super::log(format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
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

async fn connection(stream: TcpStream, app: Arc<App>, shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let web = app.web.current();
    match web.tls() {
        None => http(stream, app, shutdown).await,
        Some(acceptor) => {
            // A refused handshake (say, no client certificate) leaves nothing to answer.
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                http(tls, app, shutdown).await;
            }
        }
    }
}

async fn http<S>(io: S, app: Arc<App>, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(&app, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
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

/// Authenticates, routes, and adds the configured headers.
async fn handle(app: &App, req: Request<Incoming>) -> Resp {
    let (req, _body) = req.into_parts();
    let web = app.web.current();
    let public = matches!(req.uri.path(), "/healthz" | "/ready");
    let mut resp = if !public && !authorized(&web, &req).await {
        unauthorized()
    } else {
        route(app, &req).await
    };
    for (name, value) in web.headers() {
        if !resp.headers().contains_key(name) {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    resp
}

async fn authorized(web: &Arc<WebConfig>, req: &Parts) -> bool {
    let header = req.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    web.authorize(header).await
}

async fn route(app: &App, req: &Parts) -> Resp {
    let get = matches!(req.method, Method::GET | Method::HEAD);
    match (req.uri.path(), get) {
        ("/metrics", true) => metrics_page(app),
        ("/probe", true) => probe(app, req).await,
        ("/healthz", true) => text(StatusCode::OK, "ok\n"),
        ("/ready", true) => ready(app),
        ("/", true) => landing(),
        ("/-/reload", _) if req.method == Method::POST || req.method == Method::PUT => {
            reload(app).await
        }
        ("/-/reload", _) => not_allowed("POST, PUT"),
        ("/metrics" | "/probe" | "/healthz" | "/ready" | "/", false) => not_allowed("GET, HEAD"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; endpoints: /metrics, /probe?check=NAME, /healthz, /ready, POST /-/reload\n",
        ),
    }
}

/// Every answer's body is built here, so every answer is redacted.
fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let body = crate::redact::redact(&body.into());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn exposition(body: String) -> Resp {
    let mut r = text(StatusCode::OK, body);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

fn unauthorized() -> Resp {
    let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"rotcheck\""),
    );
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

fn metrics_page(app: &App) -> Resp {
    exposition(metrics::render_serve(&app.state.snapshot(), now_unix()))
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
        <li>/probe?check=NAME runs one check of the suite now</li>\
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
    #[error("unknown parameter {0:?}; /probe only takes check=NAME: it runs checks of the suite, never arbitrary targets")]
    UnknownParam(String),
    #[error("bad percent-encoding in the query string")]
    BadEncoding,
    #[error("unknown check {name:?}; checks of the suite: {known}")]
    UnknownCheck { name: String, known: String },
}

/// Reads `check=NAME` from a query string; anything else is refused (no SSRF).
pub fn probe_param(query: Option<&str>) -> Result<String, ProbeRequestError> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k)?;
        if k != "check" {
            return Err(ProbeRequestError::UnknownParam(k));
        }
        if found.replace(percent_decode(v)?).is_some() {
            return Err(ProbeRequestError::Repeated);
        }
    }
    found
        .filter(|n| !n.is_empty())
        .ok_or(ProbeRequestError::Missing)
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

/// The suite check named `name`, or a typed refusal listing (some of) the known names.
fn find_check(suite: &Suite, name: &str) -> Result<CheckSpec, ProbeRequestError> {
    if let Some(c) = suite.file.checks.iter().find(|c| c.name == name) {
        return Ok(c.clone());
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
    Err(ProbeRequestError::UnknownCheck {
        name: name.chars().take(100).collect(),
        known,
    })
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

async fn probe(app: &App, req: &Parts) -> Resp {
    let (suite, _) = app.state.suite();
    let check = match probe_param(req.uri.query()).and_then(|n| find_check(&suite, &n)) {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let budget = scrape_budget(req.headers.get("x-prometheus-scrape-timeout-seconds"));
    let result = run_probe(app, suite.clone(), check, budget).await;
    exposition(metrics::render_probe(
        &suite.file.suite,
        &result,
        now_unix(),
    ))
}

/// Runs one check now (sharing the scheduler's concurrency bound), within `budget`.
async fn run_probe(
    app: &App,
    suite: Arc<Suite>,
    mut check: CheckSpec,
    budget: Option<Duration>,
) -> CheckResult {
    let own = check.timeout.unwrap_or(suite.file.defaults.timeout).0;
    let budget = budget.unwrap_or(own + Duration::from_secs(2));
    // The engine allows a run its timeout plus one second; keep both inside the budget.
    let inner = own
        .min(budget.saturating_sub(Duration::from_secs(1)))
        .max(Duration::from_millis(100));
    check.timeout = Some(Dur(inner));
    let clock = Instant::now();
    let run = async {
        let _permit = app.permits.acquire().await;
        app.runner.run(suite.clone(), check.clone()).await
    };
    match tokio::time::timeout(budget, run).await {
        Ok(r) => r,
        Err(_) => timed_out(&check, clock.elapsed()),
    }
}

/// The result of a probe that did not finish within the scrape's budget.
fn timed_out(check: &CheckSpec, took: Duration) -> CheckResult {
    let msg = format!(
        "no result within the scrape timeout ({:.1}s); raise scrape_timeout or the exporter is saturated",
        took.as_secs_f64()
    );
    CheckResult {
        name: check.name.clone(),
        stage: check.stage_name().to_string(),
        kind: check.kind().to_string(),
        tags: check.tags.clone(),
        status: Status::Error,
        duration_seconds: took,
        finished_unix: unix_now(),
        error: Some(ProbeError::connect(FailureClass::Timeout, msg.clone())),
        assertions: vec![Assertion::fail("probe", "timeout", msg)],
        certs: vec![],
        facts: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_takes_only_a_check_name() {
        assert_eq!(
            probe_param(Some("check=vault-listener")).unwrap(),
            "vault-listener"
        );
        assert_eq!(probe_param(Some("check=a%2Db")).unwrap(), "a-b");
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
    fn unknown_checks_list_the_known_ones() {
        let suite = crate::suite::load_str(
            "suite: t\nchecks:\n  - name: a\n    command: [\"true\"]\n",
            std::path::Path::new("s.yaml"),
        )
        .unwrap();
        let e = find_check(&suite, "nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown check \"nope\"; checks of the suite: a"
        );
        assert!(find_check(&suite, "a").is_ok());
    }
}
