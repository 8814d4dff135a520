//! Shared test support: an rcgen test PKI with pinned validity, in-process TLS and raw TCP
//! servers on 127.0.0.1:0, and helpers that run the real `rotcheck` binary on a suite in a
//! temp dir and parse its JSON back. Each test binary uses a subset, hence `dead_code`.
#![allow(dead_code)]

pub mod bao;
pub mod peers;
pub mod report;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, SupportedProtocolVersion};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The instant every test evaluates at (`--at`): certificates are dated around it.
pub const AT: &str = "2030-06-01T00:00:00Z";

/// A validity window in whole days (UTC), pinned so tests never go stale.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub from: (i32, u8, u8),
    pub to: (i32, u8, u8),
}

/// Valid at [`AT`]: 2030-01-01 .. 2031-01-01.
pub const VALID: Validity = Validity {
    from: (2030, 1, 1),
    to: (2031, 1, 1),
};
/// Expired at [`AT`].
pub const EXPIRED: Validity = Validity {
    from: (2029, 1, 1),
    to: (2029, 6, 1),
};
/// Not yet valid at [`AT`].
pub const FUTURE: Validity = Validity {
    from: (2031, 1, 1),
    to: (2032, 1, 1),
};
/// For CAs, and for client certificates that real-time verifiers (rustls, openssl) check.
pub const FOREVER: Validity = Validity {
    from: (2000, 1, 1),
    to: (2099, 1, 1),
};

/// A certificate with its key, as DER and PEM.
#[derive(Clone)]
pub struct Issued {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub key_pem: String,
    key_pkcs8: Vec<u8>,
}

impl Issued {
    /// The private key for rustls.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }
}

/// A CA that can issue.
pub struct Authority {
    pub cert: Issued,
    issuer: Issuer<'static, KeyPair>,
}

fn dn(cn: &str) -> rcgen::DistinguishedName {
    let mut d = rcgen::DistinguishedName::new();
    d.push(DnType::OrganizationName, "rotcheck tests");
    d.push(DnType::CommonName, cn);
    d
}

fn dated(mut p: CertificateParams, v: Validity) -> CertificateParams {
    p.not_before = rcgen::date_time_ymd(v.from.0, v.from.1, v.from.2);
    p.not_after = rcgen::date_time_ymd(v.to.0, v.to.1, v.to.2);
    p
}

fn ca_params(cn: &str, v: Validity) -> CertificateParams {
    let mut p = dated(CertificateParams::default(), v);
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn issued(cert: rcgen::Certificate, key: &KeyPair) -> Issued {
    Issued {
        der: cert.der().clone(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        key_pkcs8: key.serialize_der(),
    }
}

impl Authority {
    /// A self-signed root (ECDSA P-256), valid 2000..2099.
    pub fn root(cn: &str) -> Authority {
        let key = KeyPair::generate().expect("key");
        let params = ca_params(cn, FOREVER);
        let cert = issued(params.self_signed(&key).expect("root"), &key);
        Authority {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA issued by this one.
    pub fn intermediate(&self, cn: &str) -> Authority {
        let key = KeyPair::generate().expect("key");
        let mut params = ca_params(cn, FOREVER);
        params.use_authority_key_identifier_extension = true;
        let cert = issued(params.signed_by(&key, &self.issuer).expect("ica"), &key);
        Authority {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// This CA's CRL (PEM) for the window `v`, revoking `serials` (raw DER serial bytes) for
    /// key compromise at the window's start.
    pub fn crl(&self, serials: &[&[u8]], v: Validity) -> String {
        let day = |d: (i32, u8, u8)| rcgen::date_time_ymd(d.0, d.1, d.2);
        let revoked = |s: &&[u8]| rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(s),
            revocation_time: day(v.from),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        };
        let params = rcgen::CertificateRevocationListParams {
            this_update: day(v.from),
            next_update: day(v.to),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials.iter().map(revoked).collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .expect("crl")
            .pem()
            .expect("pem")
    }

    /// A server leaf for `names` (DNS names or IP addresses) with serverAuth.
    pub fn leaf(&self, names: &[&str], v: Validity) -> Issued {
        let key = KeyPair::generate().expect("key");
        let params = leaf_params(names, v, ExtendedKeyUsagePurpose::ServerAuth);
        issued(params.signed_by(&key, &self.issuer).expect("leaf"), &key)
    }

    /// A server leaf for `names` naming `crl_url` as its CRL distribution point.
    pub fn leaf_with_crl_url(&self, names: &[&str], v: Validity, crl_url: &str) -> Issued {
        let key = KeyPair::generate().expect("key");
        let mut params = leaf_params(names, v, ExtendedKeyUsagePurpose::ServerAuth);
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![crl_url.to_string()],
        }];
        issued(params.signed_by(&key, &self.issuer).expect("leaf"), &key)
    }

    /// A leaf for `names` that only allows clientAuth (wrong for a server).
    pub fn client_only_leaf(&self, names: &[&str]) -> Issued {
        let key = KeyPair::generate().expect("key");
        let params = leaf_params(names, VALID, ExtendedKeyUsagePurpose::ClientAuth);
        issued(params.signed_by(&key, &self.issuer).expect("leaf"), &key)
    }

    /// A client certificate (clientAuth), valid 2000..2099 for real-time verifiers.
    pub fn client(&self, cn: &str) -> Issued {
        let key = KeyPair::generate().expect("key");
        let mut params = leaf_params(&[], FOREVER, ExtendedKeyUsagePurpose::ClientAuth);
        params.distinguished_name = dn(cn);
        issued(params.signed_by(&key, &self.issuer).expect("client"), &key)
    }
}

fn leaf_params(names: &[&str], v: Validity, eku: ExtendedKeyUsagePurpose) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut p = dated(CertificateParams::new(names.clone()).expect("names"), v);
    p.distinguished_name = dn(names.first().map(String::as_str).unwrap_or("client"));
    p.extended_key_usages = vec![eku];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p
}

/// A self-signed leaf (not a CA) for `names`.
pub fn self_signed(names: &[&str]) -> Issued {
    let key = KeyPair::generate().expect("key");
    let params = leaf_params(names, VALID, ExtendedKeyUsagePurpose::ServerAuth);
    issued(params.self_signed(&key).expect("self-signed"), &key)
}

/// Names every test leaf carries: the server runs on 127.0.0.1.
pub const NAMES: &[&str] = &["localhost", "svc.rotcheck.test", "127.0.0.1"];

/// The usual test PKI: root -> intermediate -> leaf, ECDSA P-256.
pub struct Pki {
    pub root: Authority,
    pub inter: Authority,
    pub leaf: Issued,
}

impl Pki {
    /// A fresh PKI whose leaf is valid at [`AT`] for [`NAMES`].
    pub fn new() -> Pki {
        Pki::with_leaf(VALID)
    }

    /// A fresh PKI whose leaf has the given validity.
    pub fn with_leaf(v: Validity) -> Pki {
        Pki::build("rotcheck test", v)
    }

    /// A PKI whose CAs are named `{prefix} root` and `{prefix} intermediate`. Two PKIs with
    /// the same prefix have the same names but different keys (a re-keyed CA).
    pub fn build(prefix: &str, v: Validity) -> Pki {
        let root = Authority::root(&format!("{prefix} root"));
        let inter = root.intermediate(&format!("{prefix} intermediate"));
        let leaf = inter.leaf(NAMES, v);
        Pki { root, inter, leaf }
    }

    /// Leaf then intermediate: what a correct fullchain.crt holds.
    pub fn fullchain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.leaf.der.clone(), self.inter.cert.der.clone()]
    }
}

/// Concatenated PEM of certificates.
pub fn pem_of(certs: &[&Issued]) -> String {
    certs.iter().map(|c| c.pem.as_str()).collect()
}

// ---------------------------------------------------------------- servers

/// Runs `handle` on a thread for every accepted connection; the listener lives as long as
/// the test process (servers are cheap and tests are short).
fn spawn_acceptor<F>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    accept_on(TcpListener::bind("127.0.0.1:0").expect("bind"), handle)
}

/// Serves TLS with `cfg` on `listener` (handshake, then read until the client closes), one
/// thread per connection, for the test's life.
pub fn serve_tls_on(listener: TcpListener, cfg: Arc<ServerConfig>) -> SocketAddr {
    accept_on(listener, move |tcp| serve_tls(cfg.clone(), tcp))
}

fn accept_on<F>(listener: TcpListener, handle: F) -> SocketAddr
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let addr = listener.local_addr().expect("addr");
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let h = handle.clone();
            std::thread::spawn(move || h(stream));
        }
    });
    addr
}

/// What an in-process TLS server presents and requires.
pub struct TlsOpts {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Require a client certificate issued by this CA.
    pub client_ca: Option<CertificateDer<'static>>,
    pub versions: &'static [&'static SupportedProtocolVersion],
    /// TLS 1.3 session tickets sent after the client's Finished (rustls' default: 2).
    pub tickets: usize,
}

impl TlsOpts {
    /// Presents `chain` (leaf first) with the leaf's key, TLS 1.2 and 1.3, no client auth.
    pub fn new(chain: Vec<CertificateDer<'static>>, leaf: &Issued) -> TlsOpts {
        TlsOpts {
            chain,
            key: leaf.key(),
            client_ca: None,
            versions: rustls::ALL_VERSIONS,
            tickets: 2,
        }
    }
}

/// TLS 1.3 only (a client-cert rejection then arrives after the client's Finished).
pub static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
/// TLS 1.2 only.
pub static TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls server config of an in-process TLS server.
pub fn server_config(o: TlsOpts) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(o.versions)
        .expect("versions");
    let builder = match o.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca).expect("client ca");
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(o.chain, o.key)
        .expect("server cert");
    cfg.send_tls13_tickets = o.tickets;
    Arc::new(cfg)
}

/// One handshake through the library's TLS client (what the report does not show: whether
/// the server asked for a client certificate, how the wait after the handshake ended).
pub fn handshake(
    addr: SocketAddr,
    identity: Option<&Issued>,
) -> Result<rotcheck::kinds::tls::client::Session, rotcheck::kinds::tls::client::Failed> {
    use rotcheck::kinds::tls::client;
    let id = identity.map(|i| client::Identity {
        chain: vec![i.der.clone()],
        key: i.key(),
    });
    let cfg = Arc::new(client::config(id, &[]).expect("client config"));
    let target = client::Target::parse(&addr.to_string(), Some("localhost")).expect("target");
    let budget = Duration::from_secs(5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + budget;
        client::handshake(&target, &cfg, deadline, budget).await
    })
}

/// A rustls server on 127.0.0.1:0: handshakes, then reads until the client closes.
pub fn tls_server(o: TlsOpts) -> SocketAddr {
    let cfg = server_config(o);
    spawn_acceptor(move |tcp| serve_tls(cfg.clone(), tcp))
}

fn serve_tls(cfg: Arc<ServerConfig>, tcp: TcpStream) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(cfg) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf = [0u8; 1024];
    // The first read completes the handshake (or fails it, sending the alert).
    while let Ok(n) = tls.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// Accepts, reads the ClientHello, then resets the connection (SO_LINGER 0).
pub fn reset_server() -> SocketAddr {
    spawn_acceptor(|mut tcp| {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = tcp.read(&mut [0u8; 2048]);
        let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
        drop(tcp);
    })
}

/// Accepts and never answers (holds the connection for a minute).
pub fn stall_server() -> SocketAddr {
    spawn_acceptor(|tcp| {
        std::thread::sleep(Duration::from_secs(60));
        drop(tcp);
    })
}

/// Reads the ClientHello, then closes cleanly (FIN) without a word.
pub fn eof_server() -> SocketAddr {
    spawn_acceptor(|mut tcp| {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = tcp.read(&mut [0u8; 2048]);
        let _ = tcp.shutdown(std::net::Shutdown::Both);
    })
}

/// Answers anything with a plain HTTP 400, like an HTTP server on a TLS client's path.
pub fn http_server() -> SocketAddr {
    answer_with(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// Answers anything with bytes that are neither TLS nor text.
pub fn garbage_server() -> SocketAddr {
    answer_with(&[
        0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0xff, 0xfe, 0x10, 0x20,
    ])
}

fn answer_with(bytes: &'static [u8]) -> SocketAddr {
    spawn_acceptor(move |mut tcp| {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = tcp.read(&mut [0u8; 2048]);
        let _ = tcp.write_all(bytes);
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        std::thread::sleep(Duration::from_millis(200));
    })
}

/// A port nothing listens on (below the ephemeral range: see `rotcheck_lab::ports`).
pub fn closed_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A free port on 127.0.0.1 for an external server.
pub fn free_port() -> u16 {
    rotcheck_lab::ports::free_port([127, 0, 0, 1].into())
}

/// Waits until something accepts on `addr` (external servers start asynchronously).
pub fn wait_listening(addr: SocketAddr, within: Duration) -> bool {
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

// ---------------------------------------------------------------- running rotcheck

/// A temp dir holding a suite and its files.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes a file into the temp dir; returns its absolute path as text.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write");
        p.display().to_string()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `suite.yaml` and runs `rotcheck gate --format json --at AT` plus `extra`.
    pub fn gate(&self, suite: &str, extra: &[&str]) -> Gate {
        let path = self.write("suite.yaml", suite);
        let mut args = vec!["gate", "-c", &path, "--format", "json"];
        if !extra.contains(&"--at") {
            args.extend(["--at", AT]);
        }
        args.extend(extra);
        Gate::from_output(&rotcheck(&args))
    }
}

/// Runs the real binary.
pub fn rotcheck(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rotcheck"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run rotcheck")
}

/// Runs the binary and parses stdout as JSON; returns the exit code too.
pub fn rotcheck_json(args: &[&str]) -> (i32, Value) {
    let out = rotcheck(args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// A gate run: exit code and the parsed JSON report.
pub struct Gate {
    pub code: i32,
    pub json: Value,
}

impl Gate {
    /// The exit code and JSON report of a `gate --format json` run.
    pub fn from_output(out: &std::process::Output) -> Gate {
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "gate output is not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        Gate {
            code: out.status.code().unwrap_or(-1),
            json,
        }
    }

    /// The check named `name`.
    pub fn check(&self, name: &str) -> &Value {
        self.json["checks"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no check {name} in {:#}", self.json))
    }

    /// The assertion `assertion` of check `check`.
    pub fn assertion(&self, check: &str, assertion: &str) -> &Value {
        self.check(check)["assertions"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == assertion))
            .unwrap_or_else(|| panic!("no assertion {assertion} in {:#}", self.check(check)))
    }

    /// `(status, reason)` of an assertion.
    pub fn verdict(&self, check: &str, assertion: &str) -> (String, Option<String>) {
        let a = self.assertion(check, assertion);
        (
            a["status"].as_str().unwrap_or_default().to_string(),
            a["reason"].as_str().map(str::to_string),
        )
    }

    /// The check's connection failure class, when any.
    pub fn error_class(&self, check: &str) -> Option<String> {
        self.check(check)["error"]["class"]
            .as_str()
            .map(str::to_string)
    }

    pub fn status(&self, check: &str) -> String {
        self.check(check)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A one-check tls suite. `tls` and `expect` are YAML mapping bodies (flow style).
pub fn tls_suite(name: &str, tls: &str, expect: &str) -> String {
    format!(
        "suite: test\ndefaults:\n  timeout: 3s\nchecks:\n  - name: {name}\n    tls: {tls}\n    expect: {expect}\n"
    )
}

/// True when `bin` is on PATH (external-peer tests skip otherwise).
pub fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Path of a file relative to the env var `var` when set.
pub fn data_dir(var: &str) -> Option<PathBuf> {
    let v = std::env::var_os(var)?;
    let p = Path::new(&v).to_path_buf();
    Some(p)
}
