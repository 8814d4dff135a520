//! The Vault HTTP client: hyper 1 (HTTP/1.1) over rustls, one connection per request, SNI
//! override, CA file, optional client certificate (mTLS), one time budget for all calls made
//! through a client, bodies capped at 1 MiB. Failures come back classified (`VaultError`).

use super::errors::{self, Cause, VaultError};
use super::profile::{Addr, Endpoint};
use super::token::Token;
use crate::certs::{self, FileError};
use crate::model::FailureClass;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Largest response body read from Vault.
pub const MAX_BODY: usize = 1024 * 1024;

/// System CA bundles tried when no CA file is configured.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A client for one Vault endpoint and identity. Cheap to clone.
#[derive(Clone)]
pub struct VaultClient {
    addr: Addr,
    server_name: ServerName<'static>,
    tls: Option<Arc<rustls::ClientConfig>>,
    namespace: Option<String>,
    /// Names the CA in messages (`the CA file ca.pem`).
    ca_desc: String,
    budget: Duration,
    deadline: Instant,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("addr", &self.addr.to_string())
            .finish_non_exhaustive()
    }
}

/// One answer from Vault.
#[derive(Debug, Clone)]
pub struct Reply {
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    /// The parsed body; None for an empty or non-JSON body.
    pub json: Option<Value>,
    /// A short, scrubbed excerpt of a non-JSON body, for messages.
    pub excerpt: Option<String>,
    errors: Vec<String>,
}

impl Reply {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Vault's `errors` (cleaned to one line each, scrubbed of tokens), or the body excerpt
    /// when the body is not JSON.
    pub fn errors(&self) -> Vec<String> {
        self.errors.clone()
    }

    /// This answer as an HTTP error.
    pub fn to_error(&self) -> VaultError {
        VaultError::Http {
            method: self.method,
            path: self.path.clone(),
            status: self.status,
            errors: self.errors(),
        }
    }

    /// The JSON body of a 2xx answer (`Null` for 204), else the HTTP error.
    pub fn into_ok(self) -> Result<Value, VaultError> {
        if !self.is_success() {
            return Err(self.to_error());
        }
        match (self.json, self.excerpt) {
            (Some(v), _) => Ok(v),
            (None, None) => Ok(Value::Null),
            (None, Some(e)) => Err(VaultError::BadResponse {
                method: self.method,
                path: self.path,
                detail: format!("expected a JSON body, found: {e}"),
            }),
        }
    }

    /// A missing or mistyped field in a successful answer.
    pub fn bad(&self, detail: impl Into<String>) -> VaultError {
        VaultError::BadResponse {
            method: self.method,
            path: self.path.clone(),
            detail: detail.into(),
        }
    }
}

impl VaultClient {
    /// Builds a client; reads the CA and client identity files now. `budget` covers every call
    /// made through this client (and its clones).
    pub fn new(ep: &Endpoint, budget: Duration) -> Result<VaultClient, VaultError> {
        let host = ep
            .server_name
            .clone()
            .unwrap_or_else(|| ep.addr.host.clone());
        let server_name = ServerName::try_from(host.clone()).map_err(|_| {
            VaultError::Setup(format!(
                "server name {host:?} is not a valid DNS name or IP address; set vault.server_name (VAULT_TLS_SERVER_NAME)"
            ))
        })?;
        let (tls, ca_desc) = if ep.addr.https {
            let (cfg, desc) = tls_config(ep)?;
            (Some(cfg), desc)
        } else {
            (None, "no TLS (http://)".into())
        };
        Ok(VaultClient {
            addr: ep.addr.clone(),
            server_name,
            tls,
            namespace: ep.namespace.clone(),
            ca_desc,
            budget,
            deadline: Instant::now() + budget,
        })
    }

    /// The same client with a fresh time budget (e.g. for revocations at the end of a run).
    pub fn with_budget(&self, budget: Duration) -> VaultClient {
        VaultClient {
            budget,
            deadline: Instant::now() + budget,
            ..self.clone()
        }
    }

    /// The address this client talks to.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// `GET /v1/<path>` (path may carry a query string).
    pub async fn get(&self, path: &str, token: Option<&Token>) -> Result<Reply, VaultError> {
        self.send(Method::GET, "GET", path, None, token).await
    }

    /// `POST /v1/<path>` with a JSON body.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        token: Option<&Token>,
    ) -> Result<Reply, VaultError> {
        self.send_json(Method::POST, path, body, token).await
    }

    /// `PATCH /v1/<path>` with a JSON merge patch: only the fields given change (Vault ≥ 1.11
    /// and OpenBao take it on PKI roles, among others).
    pub async fn patch(
        &self,
        path: &str,
        body: &Value,
        token: Option<&Token>,
    ) -> Result<Reply, VaultError> {
        self.send_json(Method::PATCH, path, body, token).await
    }

    async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        token: Option<&Token>,
    ) -> Result<Reply, VaultError> {
        let verb = if method == Method::PATCH {
            "PATCH"
        } else {
            "POST"
        };
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.send(method, verb, path, Some(bytes), token).await
    }

    async fn send(
        &self,
        method: Method,
        verb: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&Token>,
    ) -> Result<Reply, VaultError> {
        let req = self.request(method, path, body, token)?;
        let (status, bytes) = self.exchange(req).await.map_err(|e| match e {
            VaultError::BadResponse { detail, .. } => VaultError::BadResponse {
                method: verb,
                path: path.split('?').next().unwrap_or(path).to_string(),
                detail,
            },
            other => other,
        })?;
        Ok(reply(verb, path, status, &bytes, token))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&Token>,
    ) -> Result<Request<Full<Bytes>>, VaultError> {
        let uri = format!("{}/v1/{}", self.addr.base, path.trim_start_matches('/'));
        let mut b = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(HOST, self.addr.authority())
            .header(USER_AGENT, concat!("rotcheck/", env!("CARGO_PKG_VERSION")))
            .header("X-Vault-Request", "true")
            .header(CONNECTION, "close");
        if let Some(ns) = &self.namespace {
            b = b.header("X-Vault-Namespace", ns.as_str());
        }
        if let Some(t) = token {
            b = b.header("X-Vault-Token", token_header(t)?);
        }
        if body.is_some() {
            let json = if method == Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            b = b.header(CONTENT_TYPE, json);
        }
        b.body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| VaultError::Setup(format!("cannot build a request for {uri}: {e}")))
    }

    /// Connect, handshake, send, read the capped body — all within the deadline.
    async fn exchange(&self, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), VaultError> {
        let tcp = self.connect().await?;
        match &self.tls {
            None => self.http(tcp, req).await,
            Some(cfg) => {
                let connector = tokio_rustls::TlsConnector::from(cfg.clone());
                let hs = connector.connect(self.server_name.clone(), tcp);
                let tls = self
                    .within("TLS handshake", hs)
                    .await?
                    .map_err(|e| self.fail("TLS handshake", &e))?;
                self.http(tls, req).await
            }
        }
    }

    async fn connect(&self) -> Result<TcpStream, VaultError> {
        let authority = self.addr.authority();
        let addrs = self
            .within("DNS lookup", tokio::net::lookup_host(authority.clone()))
            .await?
            .map_err(|e| self.dns(&e.to_string()))?
            .collect::<Vec<_>>();
        if addrs.is_empty() {
            return Err(self.dns("no addresses"));
        }
        let mut last = None;
        for sa in addrs {
            match self.within("TCP connect", TcpStream::connect(sa)).await? {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| std::io::Error::other("no address to connect to"));
        Err(self.fail("TCP connect", &e))
    }

    async fn http<IO>(&self, io: IO, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), VaultError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let hs = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(io));
        let (mut sender, conn) = self
            .within("HTTP request", hs)
            .await?
            .map_err(|e| self.fail("HTTP request", &e))?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let resp = self
            .within("HTTP request", sender.send_request(req))
            .await?
            .map_err(|e| self.fail("HTTP request", &e))?;
        let status = resp.status().as_u16();
        let collected = self
            .within(
                "reading the answer",
                Limited::new(resp.into_body(), MAX_BODY).collect(),
            )
            .await?;
        drop(driver);
        let body = collected.map_err(|e| self.body_error(e))?.to_bytes();
        Ok((status, body))
    }

    fn body_error(&self, e: Box<dyn std::error::Error + Send + Sync>) -> VaultError {
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            return VaultError::BadResponse {
                method: "",
                path: self.addr.to_string(),
                detail: format!(
                    "the answer is larger than {} KiB; expected a small JSON document; is this really Vault?",
                    MAX_BODY / 1024
                ),
            };
        }
        self.fail("reading the answer", e.as_ref())
    }

    /// Runs a step within the client's deadline.
    async fn within<F: std::future::Future>(
        &self,
        phase: &str,
        fut: F,
    ) -> Result<F::Output, VaultError> {
        tokio::time::timeout_at(self.deadline, fut)
            .await
            .map_err(|_| VaultError::Connect {
                class: FailureClass::Timeout,
                alert: None,
                message: format!(
                    "{phase} with Vault at {} timed out ({} budget); expected an answer in time; is Vault stalled or starting up?",
                    self.addr,
                    crate::human::duration(self.budget)
                ),
            })
    }

    fn dns(&self, detail: &str) -> VaultError {
        VaultError::Connect {
            class: FailureClass::Dns,
            alert: None,
            message: format!(
                "cannot resolve {} ({detail}); check the host in vault.addr / VAULT_ADDR",
                self.addr.host
            ),
        }
    }

    /// Classifies a failed step into a `VaultError` with a what-to-do message.
    fn fail(&self, phase: &str, e: &(dyn std::error::Error + 'static)) -> VaultError {
        let detail = crate::redact::truncate(&chain_text(e), 240);
        match errors::classify(e) {
            Cause::ServerCert(reason) => VaultError::ServerCert {
                reason,
                message: format!(
                    "Vault's certificate at {} was rejected ({}: {detail}); expected a certificate for {:?} that chains to {}; fix vault.ca_file (VAULT_CACERT) or vault.server_name (VAULT_TLS_SERVER_NAME)",
                    self.addr,
                    reason.as_str(),
                    server_name_text(&self.server_name),
                    self.ca_desc
                ),
            },
            Cause::Class(class, alert) => VaultError::Connect {
                message: connect_message(&self.addr, phase, class, alert.as_deref(), &detail),
                class,
                alert,
            },
        }
    }
}

/// Aborts the spawned connection driver when the exchange ends (or is cancelled).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn token_header(t: &Token) -> Result<HeaderValue, VaultError> {
    let mut v = HeaderValue::from_str(t.expose()).map_err(|_| {
        VaultError::Setup(
            "the Vault token holds characters not allowed in an HTTP header; check vault.token / VAULT_TOKEN".into(),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Reads one answer: its JSON, or a scrubbed excerpt, and Vault's `errors` as clean lines.
pub fn reply(
    verb: &'static str,
    path: &str,
    status: u16,
    body: &[u8],
    token: Option<&Token>,
) -> Reply {
    let trimmed = body.iter().all(u8::is_ascii_whitespace);
    let json = if trimmed {
        None
    } else {
        serde_json::from_slice::<Value>(body).ok()
    };
    let excerpt = (json.is_none() && !trimmed).then(|| excerpt(body, token));
    let errors = vault_errors(json.as_ref(), excerpt.as_deref(), token);
    Reply {
        method: verb,
        path: path.split('?').next().unwrap_or(path).to_string(),
        status,
        json,
        excerpt,
        errors,
    }
}

/// `{"errors": [...]}` as clean, scrubbed lines; else the excerpt of a non-JSON body.
fn vault_errors(json: Option<&Value>, excerpt: Option<&str>, token: Option<&Token>) -> Vec<String> {
    let listed = json.and_then(|j| j.get("errors")).and_then(Value::as_array);
    match listed {
        Some(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|m| errors::clean_message(&scrub(m, token)))
            .filter(|m| !m.is_empty())
            .take(8)
            .collect(),
        None => excerpt.iter().map(|e| format!("(not JSON) {e}")).collect(),
    }
}

/// A printable, scrubbed, short excerpt of a body that is not JSON. The whole body is
/// scrubbed before anything is cut, so a secret that straddles the cut leaves nothing behind.
fn excerpt(body: &[u8], token: Option<&Token>) -> String {
    let text = scrub(&String::from_utf8_lossy(body), token);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::redact::truncate(&text, 120)
}

/// The body's secrets removed: every secret shape, and the token the call was made with.
fn scrub(text: &str, token: Option<&Token>) -> String {
    let known: Vec<&str> = token.map(Token::expose).into_iter().collect();
    crate::redact::redact_with(text, &known)
}

/// The error and its sources, `a: b: c`, without repeats.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(x) = cur {
        let s = x.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = x.source();
    }
    parts.join(": ")
}

fn server_name_text(n: &ServerName<'_>) -> String {
    match n {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => "?".into(),
    }
}

/// One line per class: what happened, and what usually causes it.
fn connect_message(
    addr: &Addr,
    phase: &str,
    class: FailureClass,
    alert: Option<&str>,
    detail: &str,
) -> String {
    let hint = match class {
        FailureClass::Refused => "nothing listens there; is Vault running and the port right?",
        FailureClass::Reset => {
            "Vault may be restarting, or its listener dropped this client; gate --wait retries until it is back"
        }
        FailureClass::Eof => {
            "Vault closed the connection before answering; it may be restarting, or the listener requires a client certificate"
        }
        FailureClass::TlsAlert => match alert {
            Some("certificate_required") | Some("bad_certificate") | Some("unknown_ca")
            | Some("certificate_unknown") | Some("certificate_expired") => {
                "the listener rejected the client certificate; set a valid client_cert/client_key (VAULT_CLIENT_CERT/VAULT_CLIENT_KEY) issued by the CA the listener trusts"
            }
            Some("unrecognized_name") => "the listener does not know the SNI name; check vault.server_name",
            _ => "the TLS handshake was refused by Vault",
        },
        FailureClass::Protocol => "the peer does not speak TLS/HTTP as expected; is this Vault's https port?",
        FailureClass::Timeout => "no answer in time; is Vault stalled?",
        FailureClass::Unreachable => "no route to the host; check the address and the network",
        FailureClass::Dns => "check the host name",
        FailureClass::Io => "an I/O error",
    };
    let alert = alert.map(|a| format!(" alert {a}")).unwrap_or_default();
    format!(
        "{phase} with Vault at {addr} failed: {}{alert} ({detail}); {hint}",
        class.as_str()
    )
}

/// TLS settings: the CA bundle (or the system one) and the optional client identity.
fn tls_config(ep: &Endpoint) -> Result<(Arc<rustls::ClientConfig>, String), VaultError> {
    let (roots, ca_desc) = root_store(ep.ca_file.as_deref())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| VaultError::Setup(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots);
    let mut cfg = match (&ep.client_cert, &ep.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(c), Some(k)) => {
            let (chain, key) = identity(c, k)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                VaultError::Setup(format!(
                    "client_cert {} and client_key {} cannot be used together ({e}); expected the key that belongs to the certificate",
                    c.display(),
                    k.display()
                ))
            })?
        }
        (Some(_), None) => return Err(half_identity("client_cert", "client_key")),
        (None, Some(_)) => return Err(half_identity("client_key", "client_cert")),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(cfg), ca_desc))
}

fn half_identity(set: &str, missing: &str) -> VaultError {
    VaultError::Setup(format!(
        "{set} is set but {missing} is not; set both (in the suite or as VAULT_CLIENT_CERT / VAULT_CLIENT_KEY) or neither"
    ))
}

type Identity = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// Reads a client certificate chain and its key. Key bytes never reach a message.
pub fn identity(cert: &Path, key: &Path) -> Result<Identity, VaultError> {
    let chain = certs::read_certs(cert).map_err(|source| VaultError::File {
        what: "Vault client certificate",
        source,
    })?;
    let key = certs::read_key(key).map_err(|source| VaultError::File {
        what: "Vault client key",
        source,
    })?;
    Ok((chain, key))
}

fn root_store(ca_file: Option<&Path>) -> Result<(rustls::RootCertStore, String), VaultError> {
    let (path, desc) = match ca_file {
        Some(p) => (p.to_path_buf(), format!("a CA in {}", p.display())),
        None => {
            let p = system_bundle().ok_or_else(|| {
                VaultError::Setup(
                    "no CA to verify Vault with: set vault.ca_file in the suite or VAULT_CACERT"
                        .into(),
                )
            })?;
            let desc = format!("a CA in the system bundle {}", p.display());
            (p, desc)
        }
    };
    let certs = certs::read_certs(&path).map_err(|source| VaultError::File {
        what: "Vault CA file",
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(VaultError::File {
            what: "Vault CA file",
            source: FileError::NoneFound {
                path: path.display().to_string(),
                expected: "CERTIFICATE",
                found: "no certificate usable as a trust anchor".into(),
            },
        });
    }
    Ok((roots, desc))
}

fn system_bundle() -> Option<PathBuf> {
    let from_env = std::env::var("SSL_CERT_FILE").ok().map(PathBuf::from);
    from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Percent-encodes one path piece written in the suite (role, mount, KV path), keeping `/`.
pub fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.trim_matches('/').bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_surface_vault_errors() {
        let r = reply(
            "GET",
            "sys/x?y=1",
            403,
            br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#,
            None,
        );
        assert_eq!(r.path, "sys/x");
        assert_eq!(r.errors(), vec!["permission denied".to_string()]);
        let garbage = reply(
            "GET",
            "sys/health",
            502,
            b"<html>\x00bad gateway</html>",
            None,
        );
        assert_eq!(
            garbage.errors(),
            vec!["(not JSON) <html> bad gateway</html>".to_string()]
        );
        assert!(reply("GET", "p", 200, b"{nope", None).into_ok().is_err());
        assert_eq!(
            reply("POST", "p", 204, b"", None).into_ok().unwrap(),
            Value::Null
        );
    }

    #[test]
    fn paths_are_encoded() {
        assert_eq!(encode_path("/app a/x/"), "app%20a/x");
        assert_eq!(encode_path("agent-app-a"), "agent-app-a");
    }
}
