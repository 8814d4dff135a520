//! The in-process handle: start the emulator on loopback, write its credential files, and
//! control it from tests (seal, version, faults, seeding, token counters).

use crate::layout::LabFiles;
use crate::pki::{CertKey, LabPki, LeafSpec};
use crate::server::{accept_loop, Faults, Shared};
use crate::tls::{certified_key, server_config, ClientCerts, SwappableCert};
use crate::vault::http::{Body, Op};
use crate::vault::version::Ver;
use crate::vault::{Settings, Vault};
use crate::{world, LabError};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// How to start a lab.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Listen address; `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// Reported Vault version; behaviour differences key on it (default `1.20.4`).
    pub version: String,
    /// `cluster_name` in health and seal-status.
    pub cluster_name: String,
    /// The listener's name: SNI, first DNS SAN and `VAULT_TLS_SERVER_NAME`.
    pub server_name: String,
    /// More SANs on the server certificate (IPs allowed).
    pub extra_sans: Vec<String>,
    /// `tls_require_and_verify_client_cert`: refuse handshakes without a lab-signed client cert.
    pub require_client_cert: bool,
    /// Where to write the credential files; a private temporary directory when `None`.
    pub dir: Option<PathBuf>,
    /// Seed the standard world (mounts, policies, mappings, PKI roles, KV data).
    pub seed: bool,
    /// Seed one deliberate drift: app-a's cert-auth mapping still carries `debug-policy`
    /// (what a rotation must clean up). Off by default: a fresh lab is healthy.
    pub drift: bool,
    /// Use this PKI instead of generating one.
    pub pki: Option<Arc<LabPki>>,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            version: "1.20.4".into(),
            cluster_name: "vault-cluster-lab".into(),
            server_name: world::SERVER_NAME.into(),
            extra_sans: vec!["localhost".into(), "127.0.0.1".into()],
            require_client_cert: false,
            dir: None,
            seed: true,
            drift: false,
            pki: None,
        }
    }
}

/// A running lab. Dropping it stops the listener and every connection (and removes the
/// temporary directory, if the lab made one).
pub struct Lab {
    addr: SocketAddr,
    server_name: String,
    shared: Arc<Shared>,
    files: LabFiles,
    pki: Arc<LabPki>,
    root_token: String,
    task: JoinHandle<()>,
    _tmp: Option<tempfile::TempDir>,
}

impl Lab {
    /// Starts the emulator: binds, writes all files, seeds (unless disabled), serves.
    pub async fn start(cfg: LabConfig) -> Result<Lab, LabError> {
        let ver = Ver::parse(&cfg.version).ok_or_else(|| {
            LabError::invalid("version", format!("{:?} is not X.Y.Z", cfg.version))
        })?;
        let pki = match &cfg.pki {
            Some(p) => p.clone(),
            None => Arc::new(LabPki::generate()?),
        };
        let (dir, tmp) = lab_dir(&cfg)?;
        let files = LabFiles::under(&dir);
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| LabError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| LabError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let server = issue_server_cert(&pki, &cfg)?;
        world::write_credentials(&files, &pki, &server)?;
        let mut vault = Vault::new(
            Settings::new(&cfg.version, ver, &cfg.cluster_name),
            pki.clone(),
        );
        if cfg.seed {
            world::seed(&mut vault, &pki.intermediate().cert_pem(), cfg.drift)?;
        }
        let root_token = vault.tokens.root_id().to_string();
        world::write_run_files(
            &files,
            addr,
            &cfg.server_name,
            &cfg.version,
            world::SEED_AGENT_VERSION,
            &root_token,
        )?;
        let cert = Arc::new(SwappableCert::new(certified_key(
            pki.fullchain_der(&server),
            server.key_der(),
        )?));
        let clients = client_mode(&cfg, &pki);
        let acceptor = TlsAcceptor::from(Arc::new(server_config(cert.clone(), clients)?));
        let shared = Arc::new(Shared {
            vault: Mutex::new(vault),
            faults: Mutex::new(Faults::default()),
            cert,
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, shared.clone()));
        let server_name = cfg.server_name.clone();
        Ok(Lab {
            addr,
            server_name,
            shared,
            files,
            pki,
            root_token,
            task,
            _tmp: tmp,
        })
    }

    /// The listener's address (always loopback unless configured otherwise).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The name to send as SNI and verify (`vault.lab.rotcheck.test` by default).
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Paths of every file the lab wrote.
    pub fn files(&self) -> &LabFiles {
        &self.files
    }

    /// The lab PKI (root → intermediate), e.g. to issue more test certificates.
    pub fn pki(&self) -> &Arc<LabPki> {
        &self.pki
    }

    /// The root token (also in `files().root_token`, mode 0600). Never log it.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// Seals or unseals (sealed: health 503, every logical path 503 "Vault is sealed").
    pub fn set_sealed(&self, sealed: bool) {
        self.shared.vault().s.sealed = sealed;
    }

    /// Marks the server initialized or not (not initialized: health 501, sealed everywhere).
    pub fn set_initialized(&self, initialized: bool) {
        self.shared.vault().s.initialized = initialized;
    }

    /// Makes the node an unsealed standby (health 429 unless `standbyok`).
    pub fn set_standby(&self, standby: bool) {
        self.shared.vault().s.standby = standby;
    }

    /// Changes the reported version and the version-keyed behaviour.
    pub fn set_version(&self, version: &str) -> Result<(), LabError> {
        let ver = Ver::parse(version)
            .ok_or_else(|| LabError::invalid("version", format!("{version:?} is not X.Y.Z")))?;
        let mut v = self.shared.vault();
        v.s.version = version.to_string();
        v.s.ver = ver;
        Ok(())
    }

    /// Resets (TCP RST) every new connection for `d`, like a restarting server.
    pub fn reset_for(&self, d: Duration) {
        self.shared.faults().reset_until = Some(Instant::now() + d);
    }

    /// Accepts new connections for `d` but never answers them.
    pub fn stall_for(&self, d: Duration) {
        self.shared.faults().stall_until = Some(Instant::now() + d);
    }

    /// Answers `path` (below `/v1/`, e.g. `sys/health`) with `status` and an error body.
    pub fn fail_path(&self, path: &str, status: u16) {
        let key = path
            .trim_start_matches('/')
            .trim_start_matches("v1/")
            .trim_end_matches('/');
        self.shared.faults().fail.insert(key.to_string(), status);
    }

    /// Like [`Lab::fail_path`], with `message` as the error text of the body (say, text that
    /// echoes a token, as a misbehaving proxy or plugin would).
    pub fn fail_path_saying(&self, path: &str, status: u16, message: &str) {
        self.fail_path(path, status);
        let key = path
            .trim_start_matches('/')
            .trim_start_matches("v1/")
            .trim_end_matches('/');
        let said = message.to_string();
        self.shared.faults().say.insert(key.to_string(), said);
    }

    /// Adds `warning` to the `warnings` of every answer to `path` (below `/v1/`).
    pub fn warn_path(&self, path: &str, warning: &str) {
        let key = path
            .trim_start_matches('/')
            .trim_start_matches("v1/")
            .trim_end_matches('/');
        let said = warning.to_string();
        self.shared.faults().warn.insert(key.to_string(), said);
    }

    /// Removes every injected fault (seal state and version are left alone).
    pub fn clear_faults(&self) {
        *self.shared.faults() = Faults::default();
    }

    /// Login tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.vault().tokens.issued
    }

    /// Login tokens revoked so far.
    pub fn tokens_revoked(&self) -> u64 {
        self.shared.vault().tokens.revoked
    }

    /// Login tokens still valid.
    pub fn tokens_live(&self) -> u64 {
        self.shared.vault().tokens.live()
    }

    /// Calls the API in-process as root (no TLS): `method` is `GET`, `LIST`, `POST`, `PUT`,
    /// `PATCH` or `DELETE`; `path` is below `/v1/`. Returns the JSON body (`Null` for 204) or
    /// [`LabError::Api`] with the `errors` texts. Use it to seed mappings, roles, policies, KV.
    pub fn api(&self, method: &str, path: &str, body: Value) -> Result<Value, LabError> {
        let op = match method.to_ascii_uppercase().as_str() {
            "GET" => Op::Read,
            "LIST" => Op::List,
            "POST" | "PUT" => Op::Write,
            "PATCH" => Op::Patch,
            "DELETE" => Op::Delete,
            other => return Err(LabError::invalid("method", other)),
        };
        let resp = self.shared.vault().call_as_root(op, path, body);
        let value = match resp.body {
            Body::Json(v) => v,
            Body::Raw { bytes, .. } => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            Body::Empty => Value::Null,
        };
        if resp.status < 400 {
            return Ok(value);
        }
        let message = value
            .get("errors")
            .map(|e| e.to_string())
            .unwrap_or_default();
        Err(LabError::Api {
            method: method.into(),
            path: path.into(),
            status: resp.status,
            message,
        })
    }

    /// Maps a CA (PEM) at `auth/cert/certs/<name>` with these policies (a common seed).
    pub fn put_cert_role(
        &self,
        name: &str,
        ca_pem: &str,
        policies: &[&str],
    ) -> Result<(), LabError> {
        let body =
            serde_json::json!({ "certificate": ca_pem, "token_policies": policies.join(",") });
        self.api("POST", &format!("auth/cert/certs/{name}"), body)
            .map(|_| ())
    }

    /// Writes an ACL policy.
    pub fn put_policy(&self, name: &str, hcl: &str) -> Result<(), LabError> {
        self.api(
            "POST",
            &format!("sys/policies/acl/{name}"),
            serde_json::json!({ "policy": hcl }),
        )
        .map(|_| ())
    }

    /// Re-reads the server certificate from `files().server_fullchain` and `server_key`, like
    /// Vault on SIGHUP; on error the old certificate stays.
    pub fn reload_tls(&self) -> Result<(), LabError> {
        let chain_pem = std::fs::read_to_string(&self.files.server_fullchain)
            .map_err(LabError::io(&self.files.server_fullchain))?;
        let key_pem = std::fs::read_to_string(&self.files.server_key)
            .map_err(LabError::io(&self.files.server_key))?;
        let chain = crate::pki::parse_pem_certs(&chain_pem);
        let key = crate::pki::parse_pem_key(&key_pem).ok_or_else(|| LabError::Pem {
            what: self.files.server_key.display().to_string(),
        })?;
        if chain.is_empty() {
            return Err(LabError::Pem {
                what: self.files.server_fullchain.display().to_string(),
            });
        }
        self.set_server_chain(chain, key)
    }

    /// Serves this chain and key on new handshakes (e.g. leaf-only or a foreign chain).
    pub fn set_server_chain(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), LabError> {
        self.shared.cert.set(certified_key(chain, key)?);
        Ok(())
    }
}

impl std::fmt::Debug for Lab {
    /// Leaves the root token out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .field("dir", &self.files.dir)
            .finish_non_exhaustive()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lab_dir(cfg: &LabConfig) -> Result<(PathBuf, Option<tempfile::TempDir>), LabError> {
    match &cfg.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(LabError::io(d))?;
            let abs = std::fs::canonicalize(d).map_err(LabError::io(d))?;
            Ok((abs, None))
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("rotcheck-lab-")
                .tempdir()
                .map_err(LabError::io(std::env::temp_dir()))?;
            Ok((tmp.path().to_path_buf(), Some(tmp)))
        }
    }
}

fn issue_server_cert(pki: &LabPki, cfg: &LabConfig) -> Result<CertKey, LabError> {
    let mut names: Vec<&str> = vec![cfg.server_name.as_str()];
    names.extend(cfg.extra_sans.iter().map(String::as_str));
    pki.issue(&LeafSpec::server(&cfg.server_name, &names))
}

fn client_mode(cfg: &LabConfig, pki: &LabPki) -> ClientCerts {
    if cfg.require_client_cert {
        let cas = vec![
            pki.root().cert().cert_der().clone(),
            pki.intermediate().cert().cert_der().clone(),
        ];
        ClientCerts::Require(cas)
    } else {
        ClientCerts::Request
    }
}
