//! Standalone listeners with scripted misbehaviour, each on `127.0.0.1:0`: reset on accept,
//! stall, garbage bytes, a plain-HTTP server, a TLS server presenting a chosen chain, and a
//! TLS server that requires client certificates. Each maps to one connection failure class.

use crate::tls::{certified_key, server_config, ClientCerts};
use crate::LabError;
use bytes::Bytes;
use http_body_util::Full;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// What a [`FaultListener`] does with each connection.
#[derive(Debug)]
pub enum FaultKind {
    /// Accept, wait for the client's first bytes, close with SO_LINGER 0: the client sees
    /// ECONNRESET (`reset`).
    ResetOnAccept,
    /// Accept and never answer (`timeout`).
    Stall,
    /// Read the ClientHello, answer with these bytes, close (`protocol`).
    Garbage(Vec<u8>),
    /// Answer like a plain HTTP server that got TLS bytes: an HTTP 400 (`protocol`).
    PlainHttp,
    /// A TLS server presenting `chain` (leaf first) with `key`; answers HTTP 200 to requests.
    Tls {
        /// Certificates sent, leaf first (send only the leaf for an incomplete chain).
        chain: Vec<CertificateDer<'static>>,
        /// The leaf's key.
        key: PrivateKeyDer<'static>,
    },
    /// Like `Tls`, but the handshake requires a client certificate issued under `client_cas`.
    TlsClientAuth {
        /// Certificates sent, leaf first.
        chain: Vec<CertificateDer<'static>>,
        /// The leaf's key.
        key: PrivateKeyDer<'static>,
        /// Trust anchors for client certificates.
        client_cas: Vec<CertificateDer<'static>>,
    },
}

/// A running fault listener; dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct FaultListener {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl FaultListener {
    /// Binds `127.0.0.1:0` and starts misbehaving.
    pub async fn start(kind: FaultKind) -> Result<FaultListener, LabError> {
        FaultListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), kind).await
    }

    /// Binds `addr` and starts misbehaving.
    pub async fn bind(addr: SocketAddr, kind: FaultKind) -> Result<FaultListener, LabError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| LabError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| LabError::Bind { addr, source })?;
        let behaviour = Behaviour::new(kind)?;
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(listener, behaviour, accepted.clone()));
        Ok(FaultListener {
            addr: local,
            accepted,
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A kind made ready to serve (TLS configs built once).
enum Behaviour {
    Reset,
    Stall,
    Garbage(Arc<Vec<u8>>),
    PlainHttp,
    Tls(TlsAcceptor),
}

impl Behaviour {
    fn new(kind: FaultKind) -> Result<Behaviour, LabError> {
        Ok(match kind {
            FaultKind::ResetOnAccept => Behaviour::Reset,
            FaultKind::Stall => Behaviour::Stall,
            FaultKind::Garbage(b) => Behaviour::Garbage(Arc::new(b)),
            FaultKind::PlainHttp => Behaviour::PlainHttp,
            FaultKind::Tls { chain, key } => {
                Behaviour::Tls(acceptor(chain, key, ClientCerts::None)?)
            }
            FaultKind::TlsClientAuth {
                chain,
                key,
                client_cas,
            } => Behaviour::Tls(acceptor(chain, key, ClientCerts::Require(client_cas))?),
        })
    }
}

fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    clients: ClientCerts,
) -> Result<TlsAcceptor, LabError> {
    let resolver = Arc::new(Fixed(certified_key(chain, key)?));
    Ok(TlsAcceptor::from(Arc::new(server_config(
        resolver, clients,
    )?)))
}

/// Always presents the same chain, whatever the SNI.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

async fn run(listener: TcpListener, behaviour: Behaviour, accepted: Arc<AtomicU64>) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        while conns.try_join_next().is_some() {}
        match &behaviour {
            Behaviour::Reset => {
                conns.spawn(crate::server::reset_after_hello(stream));
            }
            Behaviour::Stall => {
                conns.spawn(async move {
                    let _held = stream;
                    std::future::pending::<()>().await;
                });
            }
            Behaviour::Garbage(bytes) => {
                conns.spawn(answer_then_close(stream, bytes.clone()));
            }
            Behaviour::PlainHttp => {
                conns.spawn(answer_then_close(stream, Arc::new(PLAIN_HTTP_400.to_vec())));
            }
            Behaviour::Tls(acceptor) => {
                conns.spawn(serve_ok(stream, acceptor.clone()));
            }
        }
    }
}

const PLAIN_HTTP_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 15\r\n\r\n400 Bad Request";

/// Reads what the client sent first, writes `bytes`, half-closes, drains: a clean FIN, no RST.
async fn answer_then_close(mut stream: TcpStream, bytes: Arc<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
    let drain = async { while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

async fn serve_ok(stream: TcpStream, acceptor: TlsAcceptor) {
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let svc = hyper::service::service_fn(|_req| async {
        let mut resp = hyper::Response::new(Full::new(Bytes::from_static(
            b"{\"lab\":\"fault-listener\"}\n",
        )));
        let ct = hyper::header::HeaderValue::from_static("application/json");
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, ct);
        Ok::<_, std::convert::Infallible>(resp)
    });
    let io = hyper_util::rt::TokioIo::new(tls);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, svc)
        .await;
}
