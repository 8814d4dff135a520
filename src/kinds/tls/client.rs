//! The TLS client side of the probe: a reusable rustls config, a verifier that records the
//! presented chain instead of judging it (handshake signatures are still verified, so a
//! server without the certificate's key fails), and one deadline-bounded connect, handshake
//! and, when a late client-certificate rejection can still come, a short read ([`settle`]).
//! The verifier also keeps the OCSP response the server stapled (rustls always asks for one),
//! for `not_revoked`. Used by the `tls` probe and by `rotcheck inspect HOST:PORT`.

use crate::kinds::classify::{self, Failure, Peer, Phase};
use crate::kinds::tls::progress::Progress;
use crate::kinds::tls::settle::{self, Signals, Waited};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::ring::cipher_suite as suite;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme, SupportedCipherSuite};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// Where to connect and which name to send and verify.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// The name verified on the leaf: `server_name`, else the host of `addr`.
    pub name: String,
    /// Sent as SNI when it is a DNS name; an IP address sends no SNI.
    pub server_name: ServerName<'static>,
}

impl Target {
    /// Parses `host:port` and an optional server name.
    pub fn parse(addr: &str, server_name: Option<&str>) -> Result<Target, String> {
        let (host, port) = crate::suite::split_host_port(addr).ok_or_else(|| {
            format!("bad address {addr:?}; write host:port, e.g. 127.0.0.1:8443 or [::1]:443")
        })?;
        let name = server_name
            .map(str::to_string)
            .unwrap_or_else(|| host.clone());
        let server_name = crate::expect::names::parse_name(&name).map_err(|e| e.to_string())?;
        Ok(Target {
            host,
            port,
            name,
            server_name,
        })
    }

    /// `host:port`, IPv6 hosts in brackets.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The SNI sent: the name when it is a DNS name.
    pub fn sni(&self) -> Option<String> {
        match &self.server_name {
            ServerName::DnsName(d) => Some(d.as_ref().to_string()),
            _ => None,
        }
    }
}

/// A client identity for mTLS.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// The cipher suites offered: every suite of rustls' ring provider, each version's
/// AES-128-GCM first, as browsers and Go order them. A server that honours the client's
/// order then picks a SHA-256 suite, whose key schedule costs less than SHA-384's; one that
/// supports only the others still gets them.
const CIPHER_SUITES: &[SupportedCipherSuite] = &[
    suite::TLS13_AES_128_GCM_SHA256,
    suite::TLS13_AES_256_GCM_SHA384,
    suite::TLS13_CHACHA20_POLY1305_SHA256,
    suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// Builds the template config: ring ([`CIPHER_SUITES`]), TLS 1.2 + 1.3, no session
/// resumption (a resumed session shows no certificate; each connection's store keeps
/// nothing, see [`settle`]), the recording verifier, optional identity and ALPN.
pub fn config(identity: Option<Identity>, alpn: &[String]) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: CIPHER_SUITES.to_vec(),
        ..rustls::crypto::ring::default_provider()
    });
    let algs = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recorder::new(algs)));
    let mut cfg = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain, id.key)?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    cfg.resumption = Resumption::disabled();
    Ok(cfg)
}

/// A finished handshake.
#[derive(Debug, Clone)]
pub struct Session {
    /// `1.2` or `1.3`.
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub alpn: Option<String>,
    /// The presented chain, leaf first, as sent.
    pub chain: Vec<CertificateDer<'static>>,
    /// The OCSP response stapled for the leaf (empty: none).
    pub stapled: Vec<u8>,
    /// The server sent a CertificateRequest.
    pub asked_for_client_cert: bool,
    /// How the wait for a late client-certificate rejection ended.
    pub waited: Waited,
}

/// A failed connection, with whatever chain the server presented before it failed.
#[derive(Debug, Clone)]
pub struct Failed {
    pub failure: Failure,
    pub chain: Vec<CertificateDer<'static>>,
    /// The OCSP response stapled for the leaf, when the server sent one before failing.
    pub stapled: Vec<u8>,
}

/// Resolves, connects and handshakes, then, when the server may still reject our client
/// certificate (TLS 1.3 and it asked for one), reads until it shows how it took our
/// Finished; all before `deadline`.
pub async fn handshake(
    target: &Target,
    template: &Arc<ClientConfig>,
    deadline: Instant,
    budget: Duration,
) -> Result<Session, Failed> {
    let mut open = open(target, template, deadline, budget).await?;
    let s = &open.session;
    if settle::may_reject_late(s.version.as_deref(), s.asked_for_client_cert) {
        match settle::linger(&mut open.stream, &open.watch.signals, deadline).await {
            Ok(w) => open.session.waited = w,
            Err(e) => {
                let failure = open.watch.failure(Phase::AfterHandshake, &e);
                let (chain, stapled) = (open.session.chain, open.session.stapled);
                return Err(Failed {
                    failure,
                    chain,
                    stapled,
                });
            }
        }
    }
    close(&mut open.stream, deadline).await;
    Ok(open.session)
}

/// A connection whose handshake finished: the stream to speak on, what was negotiated, and
/// what classifies a later failure on it.
pub struct Open {
    pub stream: tokio_rustls::client::TlsStream<Sniff>,
    pub session: Session,
    pub watch: Watch,
}

/// Classifies a failure on an open connection with what the peer sent so far.
pub struct Watch {
    peer: Peer,
    seen: Arc<Seen>,
    signals: Arc<Signals>,
    /// The presented leaf, read for unsupported critical extensions only if a failure
    /// needs them.
    leaf: Option<CertificateDer<'static>>,
}

impl Watch {
    /// The classified failure of an I/O error in `phase`.
    pub fn failure(&self, phase: Phase, e: &io::Error) -> Failure {
        classify::classify(e, phase, &self.peer())
    }

    /// The peer as seen so far (address, SNI, bytes received).
    pub fn peer(&self) -> Peer {
        let mut peer = self.peer.clone();
        self.seen.describe(&mut peer);
        if let Some(leaf) = &self.leaf {
            peer.unsupported_critical = crate::certs::unsupported_critical(leaf);
        }
        peer
    }
}

/// Resolves, connects and handshakes before `deadline`, recording the presented chain.
pub async fn open(
    target: &Target,
    template: &Arc<ClientConfig>,
    deadline: Instant,
    budget: Duration,
) -> Result<Open, Failed> {
    let peer = Peer {
        addr: target.addr(),
        sni: target.sni(),
        ..Default::default()
    };
    let tcp = connect(target, &peer, deadline, budget)
        .await
        .map_err(|failure| Failed {
            failure,
            chain: vec![],
            stapled: vec![],
        })?;
    upgrade(target, template, tcp, peer, deadline, budget).await
}

/// Handshakes on a connected stream (after a protocol's own TLS upgrade request, such as
/// PostgreSQL's SSLRequest) before `deadline`, recording the presented chain as [`open`] does.
pub async fn upgrade(
    target: &Target,
    template: &Arc<ClientConfig>,
    tcp: TcpStream,
    mut peer: Peer,
    deadline: Instant,
    budget: Duration,
) -> Result<Open, Failed> {
    let algs = template.crypto_provider().signature_verification_algorithms;
    let recorder = Arc::new(Recorder::new(algs));
    let mut cfg = ClientConfig::clone(template);
    cfg.dangerous().set_certificate_verifier(recorder.clone());
    let signals = settle::install(&mut cfg);
    let seen = Arc::new(Seen::default());
    let sniff = Sniff {
        inner: tcp,
        seen: seen.clone(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let connecting = connector.connect(target.server_name.clone(), sniff);
    let mut fail = |phase, e: Option<io::Error>| {
        seen.describe(&mut peer);
        let (chain, stapled) = (recorder.take(), recorder.take_stapled());
        if let Some(leaf) = chain.first() {
            peer.unsupported_critical = crate::certs::unsupported_critical(leaf);
        }
        let failure = match e {
            Some(e) => classify::classify(&e, phase, &peer),
            None => classify::timeout(phase, &peer, budget),
        };
        Failed {
            failure,
            chain,
            stapled,
        }
    };
    let stream = match timeout_at(deadline, connecting).await {
        Err(_) => return Err(fail(Phase::Handshake, None)),
        Ok(Err(e)) => return Err(fail(Phase::Handshake, Some(e))),
        Ok(Ok(s)) => s,
    };
    let mut session = describe(&stream, recorder.take());
    session.stapled = recorder.take_stapled();
    session.asked_for_client_cert = signals.asked();
    let watch = Watch {
        peer,
        seen,
        signals,
        leaf: session.chain.first().cloned(),
    };
    Ok(Open {
        stream,
        session,
        watch,
    })
}

/// Resolves and connects (TCP) before `deadline`; the first address that answers wins.
pub async fn connect(
    target: &Target,
    peer: &Peer,
    deadline: Instant,
    budget: Duration,
) -> Result<TcpStream, Failure> {
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let addrs: Vec<std::net::SocketAddr> = match timeout_at(deadline, lookup).await {
        Err(_) => return Err(classify::timeout(Phase::Resolve, peer, budget)),
        Ok(Err(e)) => return Err(classify::dns(&target.host, &e.to_string())),
        Ok(Ok(a)) => a.collect(),
    };
    let mut last = None;
    for addr in addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(classify::timeout(Phase::Connect, peer, budget)),
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => classify::classify(&e, Phase::Connect, peer),
        None => classify::dns(&target.host, "no addresses"),
    })
}

/// Sends close_notify, briefly bounded.
async fn close<S: AsyncWrite + Unpin>(stream: &mut S, deadline: Instant) {
    let until = deadline.min(Instant::now() + Duration::from_millis(100));
    let _ = timeout_at(until, stream.shutdown()).await;
}

fn describe(
    stream: &tokio_rustls::client::TlsStream<Sniff>,
    recorded: Vec<CertificateDer<'static>>,
) -> Session {
    let conn = stream.get_ref().1;
    let chain = match conn.peer_certificates() {
        Some(c) if !c.is_empty() => c.to_vec(),
        _ => recorded,
    };
    Session {
        version: conn.protocol_version().map(version_text),
        cipher: conn.negotiated_cipher_suite().map(|s| {
            let suite = s.suite();
            suite
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{suite:?}"))
        }),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        chain,
        stapled: vec![],
        asked_for_client_cert: false,
        waited: Waited::No,
    }
}

fn version_text(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_2 => "1.2".into(),
        rustls::ProtocolVersion::TLSv1_3 => "1.3".into(),
        other => format!("{other:?}"),
    }
}

/// Records the presented chain and stapled OCSP response; judges nothing but the handshake
/// signatures.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    stapled: Mutex<Vec<u8>>,
    algs: WebPkiSupportedAlgorithms,
}

impl Recorder {
    fn new(algs: WebPkiSupportedAlgorithms) -> Self {
        Recorder {
            chain: Mutex::new(vec![]),
            stapled: Mutex::new(vec![]),
            algs,
        }
    }

    fn take(&self) -> Vec<CertificateDer<'static>> {
        std::mem::take(&mut *self.chain.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn take_stapled(&self) -> Vec<u8> {
        std::mem::take(&mut *self.stapled.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        *self.chain.lock().unwrap_or_else(|p| p.into_inner()) = chain;
        *self.stapled.lock().unwrap_or_else(|p| p.into_inner()) = ocsp_response.to_vec();
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// What the peer sent so far, shared with the stream so it survives a dropped handshake.
#[derive(Debug, Default)]
struct Seen {
    head: Mutex<Vec<u8>>,
    received: AtomicU64,
    progress: Mutex<Progress>,
}

impl Seen {
    const KEEP: usize = 64;

    fn record(&self, new: &[u8]) {
        self.received.fetch_add(new.len() as u64, Ordering::Relaxed);
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let room = Self::KEEP.saturating_sub(head.len()).min(new.len());
        head.extend_from_slice(&new[..room]);
        drop(head);
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        progress.feed(new);
    }

    fn describe(&self, peer: &mut Peer) {
        peer.head = self.head.lock().unwrap_or_else(|p| p.into_inner()).clone();
        peer.received = self.received.load(Ordering::Relaxed);
        let progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        peer.reached = progress.describe();
        peer.server_done = progress.server_done();
    }
}

/// A TCP stream that remembers the first bytes the peer sent, for "does not speak TLS".
pub struct Sniff {
    inner: TcpStream,
    seen: Arc<Seen>,
}

impl AsyncRead for Sniff {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.seen.record(&buf.filled()[before..]);
        res
    }
}

impl AsyncWrite for Sniff {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// rustls hands over every record it has queued at once (a TLS 1.2 client's key
    /// exchange, ChangeCipherSpec and Finished): one segment instead of one per record.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reordering offers every suite the ring provider has, and nothing else.
    #[test]
    fn offers_every_suite_of_the_provider() {
        let names = |suites: &[SupportedCipherSuite]| {
            let mut v: Vec<String> = suites.iter().map(|s| format!("{:?}", s.suite())).collect();
            v.sort();
            v
        };
        let all = rustls::crypto::ring::ALL_CIPHER_SUITES;
        assert_eq!(names(CIPHER_SUITES), names(all));
        let cfg = config(None, &[]).unwrap();
        assert_eq!(names(&cfg.crypto_provider().cipher_suites), names(all));
    }
}
