//! Test client for the lab: real TLS (tokio-rustls) and real HTTP/1.1 (hyper client).

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rotcheck_lab::pki::{parse_pem_certs, parse_pem_key, CertKey};
use rotcheck_lab::Lab;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `errors[0]`.
    pub fn error(&self) -> String {
        self.json()["errors"][0]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A client for one server address and name.
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub server_name: String,
    pub config: Arc<ClientConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config trusting `roots`, optionally with a client identity.
pub fn client_config(
    roots: &[CertificateDer<'static>],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store);
    let cfg = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(cfg)
}

impl Client {
    /// Trusts the lab root; no client certificate.
    pub fn anonymous(lab: &Lab) -> Client {
        Client::build(lab, None)
    }

    /// Presents `ck` (leaf only).
    pub fn with_cert(lab: &Lab, ck: &CertKey) -> Client {
        Client::build(lab, Some((vec![ck.cert_der().clone()], ck.key_der())))
    }

    /// Presents the identity stored in PEM files.
    pub fn with_files(lab: &Lab, cert: &Path, key: &Path) -> Client {
        let chain = parse_pem_certs(&std::fs::read_to_string(cert).unwrap());
        let key = parse_pem_key(&std::fs::read_to_string(key).unwrap()).unwrap();
        Client::build(lab, Some((chain, key)))
    }

    /// The admin identity `up`/`start` wrote.
    pub fn admin(lab: &Lab) -> Client {
        let a = &lab.files().admin;
        Client::with_files(lab, &a.cert, &a.key)
    }

    fn build(
        lab: &Lab,
        identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Client {
        let root = lab.pki().root().cert().cert_der().clone();
        Client {
            addr: lab.addr(),
            server_name: lab.server_name().to_string(),
            config: client_config(&[root], identity),
        }
    }

    /// TCP connect + TLS handshake.
    pub async fn connect(&self) -> io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from(self.server_name.clone()).map_err(io::Error::other)?;
        TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
    }

    /// One request on a fresh connection.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> io::Result<Reply> {
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(("X-Vault-Token", t.to_string()));
        }
        self.call_with(
            method,
            path,
            &headers,
            body.map(|b| b.to_string()).unwrap_or_default(),
        )
        .await
    }

    /// One request with explicit headers and a raw body.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: String,
    ) -> io::Result<Reply> {
        let tls = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("host", self.server_name.as_str());
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let resp = sender.send_request(req).await.map_err(io::Error::other)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(io::Error::other)?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), None).await.unwrap()
    }

    /// POST JSON with a token.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call("POST", path, Some(token), Some(body))
            .await
            .unwrap()
    }

    /// Cert login; returns the reply.
    pub async fn login(&self, role: Option<&str>) -> Reply {
        let body = role.map(|r| serde_json::json!({ "name": r }));
        self.call("POST", "/v1/auth/cert/login", None, body)
            .await
            .unwrap()
    }

    /// Cert login that must succeed; returns the client token.
    pub async fn token(&self, role: Option<&str>) -> String {
        let r = self.login(role).await;
        assert_eq!(
            r.status,
            200,
            "login failed: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Awaits `f` for at most `secs` seconds.
pub async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .ok()
}
