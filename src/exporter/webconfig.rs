//! `--web-config`: the Prometheus exporter-toolkit web configuration file — TLS served with
//! rustls (server cert and key, optional client CA and client auth type, TLS versions),
//! `basic_auth_users` with bcrypt hashes, and extra response headers. Unknown keys and
//! settings rustls cannot honour are errors: a security setting must never be ignored.

use super::admission::Admission;
use hyper::header::{HeaderName, HeaderValue};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_rustls::TlsAcceptor;

/// The file as written (exporter-toolkit key names).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebFile {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: Option<String>,
    key_file: Option<String>,
    #[serde(default)]
    client_auth_type: String,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted for compatibility; rotcheck serves HTTP/1.1 only.
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Why a web config cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebConfigError {
    #[error("{path}: cannot read the web config: {detail}")]
    Read { path: String, detail: String },
    #[error("{path}: {detail}")]
    Parse { path: String, detail: String },
    #[error("{path}: tls_server_config.{key}: {detail}")]
    Tls {
        path: String,
        key: &'static str,
        detail: String,
    },
    #[error("{path}: basic_auth_users.{user}: not a bcrypt hash ({detail}); create one with `htpasswd -nbBC 10 USER PASSWORD`")]
    BadHash {
        path: String,
        user: String,
        detail: String,
    },
    #[error("{path}: http_server_config.headers: {detail}")]
    Header { path: String, detail: String },
}

/// A loaded web config: what the HTTP server applies to every connection and request.
#[derive(Default)]
pub struct WebConfig {
    tls: Option<TlsAcceptor>,
    users: BTreeMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// SHA-256 of `user:password` pairs that passed bcrypt, so each scrape does not pay
    /// bcrypt's deliberate cost again.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// Whether TLS asks clients for a certificate (then a client without one is anonymous).
    client_certs: bool,
}

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No basic auth is configured.
    Open,
    /// The credentials passed.
    Granted,
    /// Missing or wrong credentials.
    Denied,
    /// Too many password checks are queued already; retry shortly.
    Busy,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebConfig {
    /// Plain HTTP, no authentication (no `--web-config`).
    pub fn none() -> Self {
        WebConfig::default()
    }

    /// Reads and validates a web config file.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = crate::fsread::read_text(path, crate::fsread::WEB_CONFIG_CAP, "a web config")
            .map_err(|e| WebConfigError::Read {
                path: path.display().to_string(),
                detail: e.detail(),
            })?;
        Self::from_text(&text, path)
    }

    /// Validates web config text as if read from `path` (TLS files resolve against its folder).
    pub fn from_text(text: &str, path: &Path) -> Result<Self, WebConfigError> {
        let p = path.display().to_string();
        crate::suite::nesting::check(text).map_err(|e| WebConfigError::Parse {
            path: p.clone(),
            detail: format!("line {}: {}", e.line, e.message()),
        })?;
        let file: WebFile = if text.trim().is_empty() {
            WebFile::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| WebConfigError::Parse {
                path: p.clone(),
                detail: e.to_string(),
            })?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = match &file.tls_server_config {
            Some(t) => Some(acceptor(t, dir, &p)?),
            None => None,
        };
        check_hashes(&file.basic_auth_users, &p)?;
        // `http2` is accepted for compatibility and has no effect: HTTP/1.1 only.
        let http = file.http_server_config.unwrap_or_default();
        let client_certs = file
            .tls_server_config
            .as_ref()
            .is_some_and(|t| client_auth(t) != Ok(ClientAuth::None));
        Ok(WebConfig {
            tls,
            users: file.basic_auth_users,
            headers: headers(&http.headers, &p)?,
            verified: Mutex::default(),
            client_certs,
        })
    }

    /// The TLS acceptor when TLS is configured.
    pub fn tls(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }

    /// Extra response headers.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// Whether requests must carry basic auth credentials.
    pub fn needs_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// Whether TLS is configured to ask clients for a certificate.
    pub fn asks_client_certs(&self) -> bool {
        self.client_certs
    }

    /// Checks an `Authorization` header value against `basic_auth_users`. bcrypt runs on
    /// `pool` (a bounded queue); a full queue answers `Busy` without hashing anything.
    pub async fn authorize(self: &Arc<Self>, header: Option<&[u8]>, pool: &Admission) -> Auth {
        if !self.needs_auth() {
            return Auth::Open;
        }
        let Some((user, password)) = header.and_then(parse_basic) else {
            return Auth::Denied;
        };
        let digest = sha256(format!("{user}:{password}").as_bytes());
        if self.cached(&user, &digest) {
            return Auth::Granted;
        }
        let (hash, known) = self.hash_for(&user);
        let Ok(queued) = pool.enter() else {
            return Auth::Busy;
        };
        let running = queued.start().await;
        let hash = hash.to_string();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or(false);
        drop(running);
        if !(ok && known) {
            return Auth::Denied;
        }
        self.lock_verified().insert(user, digest);
        Auth::Granted
    }

    /// The hash to check `user`'s password against, and whether the user is known. Unknown
    /// users are checked against the configured hash of the highest cost, so they never cost
    /// less than a known user and timing does not reveal names.
    fn hash_for(&self, user: &str) -> (&str, bool) {
        if let Some(h) = self.users.get(user) {
            return (h, true);
        }
        let costliest = self.users.values().max_by_key(|h| cost(h));
        (costliest.map_or("", |h| h.as_str()), false)
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, [u8; 32]>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, user: &str, digest: &[u8; 32]) -> bool {
        self.lock_verified()
            .get(user)
            .is_some_and(|d| constant_time_eq(d, digest))
    }
}

/// A bcrypt hash's cost (hashes are validated at load).
fn cost(hash: &str) -> u32 {
    hash.parse::<bcrypt::HashParts>()
        .map(|p| p.get_cost())
        .unwrap_or(0)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    use base64::Engine;
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn check_hashes(users: &BTreeMap<String, String>, path: &str) -> Result<(), WebConfigError> {
    for (user, hash) in users {
        hash.parse::<bcrypt::HashParts>()
            .map_err(|e| WebConfigError::BadHash {
                path: path.into(),
                user: user.clone(),
                detail: e.to_string(),
            })?;
    }
    Ok(())
}

fn headers(
    map: &BTreeMap<String, String>,
    path: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    let err = |detail: String| WebConfigError::Header {
        path: path.into(),
        detail,
    };
    map.iter()
        .map(|(k, v)| {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| err(format!("{k:?} is not a header name")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| err(format!("{k}: {v:?} is not a header value")))?;
            Ok((name, value))
        })
        .collect()
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
    let pb = PathBuf::from(p);
    if pb.is_absolute() {
        pb
    } else {
        dir.join(pb)
    }
}

fn acceptor(t: &TlsFile, dir: &Path, path: &str) -> Result<TlsAcceptor, WebConfigError> {
    let err = |key: &'static str, detail: String| WebConfigError::Tls {
        path: path.into(),
        key,
        detail,
    };
    let (Some(cert_file), Some(key_file)) = (&t.cert_file, &t.key_file) else {
        return Err(err(
            "cert_file",
            "cert_file and key_file are both required to serve TLS".into(),
        ));
    };
    let chain = crate::certs::read_certs(&resolve(dir, cert_file))
        .map_err(|e| err("cert_file", e.to_string()))?;
    let key = crate::certs::read_key(&resolve(dir, key_file))
        .map_err(|e| err("key_file", e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(t).map_err(|d| err("min_version", d))?)
        .map_err(|e| err("min_version", e.to_string()))?;
    let builder = match client_verifier(t, dir, provider, &err)? {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| err("key_file", format!("does not pair with cert_file: {e}")))?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn version(name: &str) -> Result<u8, String> {
    match name {
        "TLS12" => Ok(2),
        "TLS13" => Ok(3),
        "TLS10" | "TLS11" => Err(format!(
            "{name} is not supported (rustls speaks TLS12 and TLS13)"
        )),
        other => Err(format!("unknown version {other:?}; use TLS12 or TLS13")),
    }
}

fn versions(t: &TlsFile) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let min = version(t.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = version(t.max_version.as_deref().unwrap_or("TLS13"))?;
    let all = [(2, &rustls::version::TLS12), (3, &rustls::version::TLS13)];
    let picked: Vec<_> = all
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, p)| p)
        .collect();
    if picked.is_empty() {
        return Err("min_version is above max_version".into());
    }
    Ok(picked)
}

type ErrFn<'a> = &'a dyn Fn(&'static str, String) -> WebConfigError;

/// How client certificates are treated (exporter-toolkit `client_auth_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    None,
    VerifyIfGiven,
    RequireAndVerify,
}

fn client_auth(t: &TlsFile) -> Result<ClientAuth, String> {
    const USE: &str = "use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert";
    match t.client_auth_type.as_str() {
        "" | "NoClientCert" if t.client_ca_file.is_some() => Err(format!(
            "client_ca_file is set but client_auth_type is not; {USE}"
        )),
        "" | "NoClientCert" => Ok(ClientAuth::None),
        "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyIfGiven),
        "RequireAndVerifyClientCert" => Ok(ClientAuth::RequireAndVerify),
        "RequestClientCert" | "RequireAnyClientCert" => Err(format!(
            "{} accepts unverified client certificates and is not supported; {USE}",
            t.client_auth_type
        )),
        other => Err(format!("unknown value {other:?}; {USE}")),
    }
}

fn client_verifier(
    t: &TlsFile,
    dir: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
    err: ErrFn<'_>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, WebConfigError> {
    let mode = client_auth(t).map_err(|d| err("client_auth_type", d))?;
    if mode == ClientAuth::None {
        return Ok(None);
    }
    let Some(ca) = &t.client_ca_file else {
        let detail = format!("{} needs client_ca_file", t.client_auth_type);
        return Err(err("client_ca_file", detail));
    };
    let ca_err = |e: &dyn std::fmt::Display| err("client_ca_file", e.to_string());
    let mut roots = RootCertStore::empty();
    for c in crate::certs::read_certs(&resolve(dir, ca)).map_err(|e| ca_err(&e))? {
        roots.add(c).map_err(|e| ca_err(&e))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match mode {
        ClientAuth::VerifyIfGiven => builder.allow_unauthenticated(),
        _ => builder,
    };
    builder.build().map(Some).map_err(|e| ca_err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn load(text: &str) -> Result<WebConfig, WebConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "web.yml", text);
        WebConfig::load(&p)
    }

    #[test]
    fn empty_file_means_plain_http_without_auth() {
        let w = load("").unwrap();
        assert!(w.tls().is_none());
        assert!(!w.needs_auth());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e =
            load("tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n").unwrap_err();
        assert!(e.to_string().contains("cipher_suites"), "{e}");
        let e = load("basic_auth:\n  a: b\n").unwrap_err();
        assert!(matches!(e, WebConfigError::Parse { .. }), "{e}");
    }

    #[test]
    fn hashes_must_be_bcrypt() {
        let e = load("basic_auth_users:\n  alice: plaintext\n").unwrap_err();
        assert!(
            matches!(e, WebConfigError::BadHash { ref user, .. } if user == "alice"),
            "{e}"
        );
    }

    #[test]
    fn tls_needs_files_and_a_known_auth_type() {
        let e = load("tls_server_config:\n  cert_file: x.crt\n").unwrap_err();
        assert!(
            matches!(
                e,
                WebConfigError::Tls {
                    key: "cert_file",
                    ..
                }
            ),
            "{e}"
        );
        let e =
            load("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n").unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }

    #[test]
    fn parses_basic_headers() {
        assert_eq!(
            parse_basic(b"Basic YWxpY2U6czNjcjp0"),
            Some(("alice".into(), "s3cr:t".into()))
        );
        assert_eq!(
            parse_basic(b"basic YWxpY2U6eA=="),
            Some(("alice".into(), "x".into()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
    }

    fn basic(u: &str, p: &str) -> String {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[tokio::test]
    async fn authorizes_with_bcrypt_and_caches() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let w = Arc::new(load(&format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap());
        let pool = Admission::new(1, 4);
        let h = |u: &str, p: &str| basic(u, p);
        let auth = |v: String| {
            let (w, pool) = (w.clone(), &pool);
            async move { w.authorize(Some(v.as_bytes()), pool).await }
        };
        assert_eq!(auth(h("alice", "s3cret")).await, Auth::Granted);
        assert_eq!(auth(h("alice", "s3cret")).await, Auth::Granted);
        assert_eq!(auth(h("alice", "wrong")).await, Auth::Denied);
        assert_eq!(auth(h("bob", "s3cret")).await, Auth::Denied);
        assert_eq!(w.authorize(None, &pool).await, Auth::Denied);
        let open = Arc::new(WebConfig::none());
        assert_eq!(open.authorize(None, &pool).await, Auth::Open);
    }

    #[tokio::test]
    async fn a_full_password_queue_answers_busy_without_hashing() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let w = Arc::new(load(&format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap());
        let pool = Admission::new(1, 0);
        let _held = pool.enter().unwrap();
        let wrong = basic("alice", "wrong");
        assert_eq!(w.authorize(Some(wrong.as_bytes()), &pool).await, Auth::Busy);
    }

    #[test]
    fn unknown_users_are_checked_against_the_costliest_hash() {
        let cheap = bcrypt::hash("a", 4).unwrap();
        let dear = bcrypt::hash("b", 6).unwrap();
        // "alice" sorts first: checking unknown users against the first hash would be cheap.
        let w = load(&format!(
            "basic_auth_users:\n  alice: '{cheap}'\n  zoe: '{dear}'\n"
        ))
        .unwrap();
        assert_eq!(w.hash_for("mallory"), (dear.as_str(), false));
        assert_eq!(w.hash_for("alice"), (cheap.as_str(), true));
    }

    #[tokio::test]
    async fn an_unknown_user_costs_as_much_as_a_known_one() {
        let hash = bcrypt::hash("s3cret", 10).unwrap();
        let cheap = bcrypt::hash("x", 4).unwrap();
        let w = Arc::new(
            load(&format!(
                "basic_auth_users:\n  alice: '{cheap}'\n  prometheus: '{hash}'\n"
            ))
            .unwrap(),
        );
        let pool = Admission::new(1, 4);
        let time = |user: &'static str| {
            let (w, pool) = (w.clone(), &pool);
            async move {
                let h = basic(user, "wrong");
                let t = std::time::Instant::now();
                for _ in 0..3 {
                    assert_eq!(w.authorize(Some(h.as_bytes()), pool).await, Auth::Denied);
                }
                t.elapsed()
            }
        };
        let known = time("prometheus").await;
        let unknown = time("mallory").await;
        // Generous: the same cost gives about the same time; a cost-4 hash is ~64x faster.
        assert!(
            unknown * 3 > known,
            "unknown {unknown:?} vs known {known:?}"
        );
    }

    #[test]
    fn client_auth_types() {
        let t = |kind: &str, ca: bool| TlsFile {
            client_auth_type: kind.into(),
            client_ca_file: ca.then(|| "ca.pem".into()),
            ..Default::default()
        };
        assert_eq!(client_auth(&t("", false)), Ok(ClientAuth::None));
        assert_eq!(
            client_auth(&t("RequireAndVerifyClientCert", true)),
            Ok(ClientAuth::RequireAndVerify)
        );
        assert_eq!(
            client_auth(&t("VerifyClientCertIfGiven", true)),
            Ok(ClientAuth::VerifyIfGiven)
        );
        assert!(client_auth(&t("", true)).is_err());
        assert!(client_auth(&t("RequireAnyClientCert", true)).is_err());
        assert!(client_auth(&t("Sometimes", true)).is_err());
    }

    #[test]
    fn versions_are_bounded() {
        let t = TlsFile {
            min_version: Some("TLS13".into()),
            ..Default::default()
        };
        assert_eq!(versions(&t).unwrap().len(), 1);
        let t = TlsFile {
            min_version: Some("TLS10".into()),
            ..Default::default()
        };
        assert!(versions(&t).is_err());
    }
}
