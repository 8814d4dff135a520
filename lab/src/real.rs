//! The lab on a real OpenBao: `bao server` with raft storage under the lab directory and an
//! mTLS-required listener, initialized with one key share and unsealed, then the standard world
//! (the `pki` root and `pki-prod` intermediate mounts, roles, cert auth, policies, KV v2) set
//! up through its own CLI, and every credential file of the layout issued by `pki-prod`.
//!
//! The listener needs a certificate before the server can issue one, so the server first
//! starts on a throw-away bootstrap CA, builds the world, issues the real identities, and is
//! restarted on them. The unseal key and the root token stay in 0600 files; nothing secret is
//! printed or passed on a command line.

use crate::layout::{write_file, LabFiles, CERT_MODE, KEY_MODE};
use crate::pki::{LabPki, LeafSpec, INTERMEDIATE_CN, ROOT_CN};
use crate::world::{self, AGENTS, PKI_MOUNT};
use crate::LabError;
use serde_json::{json, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The root CA mount.
pub const ROOT_MOUNT: &str = "pki";

/// How long the server may take to listen, to become active, or to stop.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start a real lab.
#[derive(Debug, Clone)]
pub struct RealConfig {
    /// The `bao` binary.
    pub bin: PathBuf,
    /// Lab directory (created if missing).
    pub dir: PathBuf,
    /// API listener; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Seed app-a's mapping with `debug-policy` (see [`crate::LabConfig::drift`]).
    pub drift: bool,
}

/// Errors of the real lab: each says what was run and where the server log is.
#[derive(Debug, thiserror::Error)]
pub enum RealError {
    /// Writing the lab files or generating the bootstrap PKI failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The binary could not be run at all.
    #[error("cannot run {}: {source}; expected an OpenBao binary (install it with ./scripts/openbao.sh or pass --bao PATH)", bin.display())]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A CLI call failed.
    #[error("`bao {args}` failed ({status}): {stderr} (server log: {})", log.display())]
    Cli {
        /// The arguments (never secrets: those go through stdin).
        args: String,
        /// Exit status.
        status: String,
        /// What the CLI said.
        stderr: String,
        /// The server log.
        log: PathBuf,
    },
    /// A CLI call answered, but not with the fields expected.
    #[error("`bao {args}`: expected {expected} in its JSON answer, found none")]
    Reply {
        /// The arguments.
        args: String,
        /// The missing field.
        expected: String,
    },
    /// The server did not reach a state in time.
    #[error("the OpenBao server did not {what} within {}s; see {}", START_TIMEOUT.as_secs(), log.display())]
    Timeout {
        /// What it should have done.
        what: &'static str,
        /// The server log.
        log: PathBuf,
    },
    /// The server process ended on its own.
    #[error("the OpenBao server exited ({status}) while the lab was {what}; see {}", log.display())]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// What the lab was doing.
        what: &'static str,
        /// The server log.
        log: PathBuf,
    },
}

/// The TLS material the CLI presents: CA file, client certificate and key.
#[derive(Debug, Clone)]
struct Creds {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A running real lab. Dropping it stops the server.
pub struct RealLab {
    bin: PathBuf,
    files: LabFiles,
    addr: SocketAddr,
    child: Option<Child>,
    creds: Creds,
    root_token: String,
    unseal_key: String,
    version: String,
}

/// Paths of the server's own files under the lab directory.
struct ServerPaths {
    config: PathBuf,
    log: PathBuf,
    raft: PathBuf,
    client_ca: PathBuf,
    unseal_key: PathBuf,
    pid: PathBuf,
    bootstrap: PathBuf,
}

fn server_paths(files: &LabFiles) -> ServerPaths {
    let v = files.dir.join("vault");
    ServerPaths {
        config: v.join("server.hcl"),
        log: v.join("server.log"),
        raft: v.join("raft"),
        client_ca: v.join("tls/client_ca.pem"),
        unseal_key: v.join("unseal-key"),
        pid: v.join("bao.pid"),
        bootstrap: v.join("bootstrap"),
    }
}

/// A PEM certificate and key issued by the server.
struct Issued {
    cert: String,
    key: String,
}

/// The CA certificates the world was built with.
struct Cas {
    root: String,
    intermediate: String,
}

impl Cas {
    /// Intermediate then root: what clients trust.
    fn chain(&self) -> String {
        format!("{}{}", pem_line(&self.intermediate), pem_line(&self.root))
    }
}

impl RealLab {
    /// Starts the server, builds the world, writes the layout, `lab.env` and `lab.yaml`.
    pub fn start(cfg: &RealConfig) -> Result<RealLab, RealError> {
        std::fs::create_dir_all(&cfg.dir).map_err(LabError::io(&cfg.dir))?;
        let dir = std::fs::canonicalize(&cfg.dir).map_err(LabError::io(&cfg.dir))?;
        let files = LabFiles::under(&dir);
        let paths = server_paths(&files);
        let addr = free_addr(cfg.listen)?;
        let cluster = free_addr(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let creds = write_bootstrap(&files, &paths)?;
        write_server_config(&files, &paths, addr, cluster)?;
        std::fs::create_dir_all(&paths.raft).map_err(LabError::io(&paths.raft))?;
        let mut lab = RealLab {
            bin: cfg.bin.clone(),
            files,
            addr,
            child: None,
            creds,
            root_token: String::new(),
            unseal_key: String::new(),
            version: String::new(),
        };
        lab.version = lab.bao_version()?;
        lab.launch()?;
        lab.init()?;
        lab.unseal()?;
        let cas = lab.build_world(cfg.drift)?;
        lab.write_identities(&cas)?;
        lab.restart_on_lab_identities()?;
        let _ = std::fs::remove_dir_all(&paths.bootstrap);
        world::write_run_files(
            &lab.files,
            addr,
            world::REAL_SERVER_NAME,
            &lab.version,
            &lab.version,
            &lab.root_token,
        )?;
        Ok(lab)
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The server's version (`2.7.2`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every file of the layout.
    pub fn files(&self) -> &LabFiles {
        &self.files
    }

    /// The server log.
    pub fn log_path(&self) -> PathBuf {
        server_paths(&self.files).log
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGHUP: the server reloads its listener certificate.
    pub fn reload(&self) -> Result<(), RealError> {
        self.signal(nix::sys::signal::Signal::SIGHUP);
        Ok(())
    }

    /// `Some(status)` once the server process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Stops the server: SIGTERM, then SIGKILL if it is still there after a while.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate(&mut child);
        let _ = std::fs::remove_file(server_paths(&self.files).pid);
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }

    fn bao_version(&self) -> Result<String, RealError> {
        let out = self.run(&["version"], None, false)?;
        out.split_whitespace()
            .find_map(|w| w.strip_prefix('v'))
            .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .map(str::to_string)
            .ok_or_else(|| RealError::Reply {
                args: "version".into(),
                expected: "a version `vX.Y.Z`".into(),
            })
    }

    /// Starts the server process on the lab's config and waits for its listener.
    fn launch(&mut self) -> Result<(), RealError> {
        let paths = server_paths(&self.files);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&paths.log)
            .map_err(LabError::io(&paths.log))?;
        let err_log = log.try_clone().map_err(LabError::io(&paths.log))?;
        let child = Command::new(&self.bin)
            .arg("server")
            .arg(format!("-config={}", paths.config.display()))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|source| RealError::Spawn {
                bin: self.bin.clone(),
                source,
            })?;
        let pid = child.id();
        self.child = Some(child);
        write_file(&paths.pid, format!("{pid}\n").as_bytes(), CERT_MODE)?;
        self.wait_until("listen", |lab| Ok(TcpStream::connect(lab.addr).is_ok()))
    }

    fn wait_until(
        &mut self,
        what: &'static str,
        ready: impl Fn(&RealLab) -> Result<bool, RealError>,
    ) -> Result<(), RealError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let log = self.log_path();
        loop {
            if ready(self)? {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(RealError::Exited {
                    status,
                    what: "starting",
                    log,
                });
            }
            if Instant::now() > deadline {
                return Err(RealError::Timeout { what, log });
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// `operator init` with one key share; the key and root token go to 0600 files.
    fn init(&mut self) -> Result<(), RealError> {
        let args = [
            "operator",
            "init",
            "-key-shares=1",
            "-key-threshold=1",
            "-format=json",
        ];
        let v: Value = self.run_json(&args, None, false)?;
        let field = |name: &str, pointer: &str| {
            v.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| RealError::Reply {
                    args: args.join(" "),
                    expected: name.into(),
                })
        };
        self.unseal_key = field("unseal_keys_b64", "/unseal_keys_b64/0")?;
        self.root_token = field("root_token", "/root_token")?;
        let paths = server_paths(&self.files);
        let key_line = format!("{}\n", self.unseal_key);
        write_file(&paths.unseal_key, key_line.as_bytes(), KEY_MODE)?;
        let token_line = format!("{}\n", self.root_token);
        write_file(&self.files.root_token, token_line.as_bytes(), KEY_MODE)?;
        Ok(())
    }

    /// Unseals (the key goes through stdin) and waits until this node is the active one.
    fn unseal(&mut self) -> Result<(), RealError> {
        let body = json!({ "key": self.unseal_key });
        self.run(&["write", "sys/unseal", "-"], Some(&body), false)?;
        self.wait_until("become the active node after unseal", |lab| {
            let leader = lab.run_json(&["read", "-format=json", "sys/leader"], None, true);
            let active = leader.is_ok_and(|v| v.pointer("/data/is_self") == Some(&json!(true)));
            Ok(active && lab.run(&["token", "lookup"], None, true).is_ok())
        })
    }

    /// Mounts, the two-level PKI, roles, cert auth, policies and KV, as in the emulator.
    fn build_world(&mut self, drift: bool) -> Result<Cas, RealError> {
        let cas = self.build_pki()?;
        self.write(
            "sys/mounts/secret",
            &json!({"type": "kv", "options": {"version": "2"}, "description": "key/value secret storage"}),
        )?;
        self.write("sys/auth/cert", &json!({"type": "cert"}))?;
        for (path, body) in world::writes(&cas.intermediate, world::REAL_SERVER_NAME, drift) {
            self.write_retrying(&path, &body)?;
        }
        Ok(cas)
    }

    /// `pki` holds a generated root; `pki-prod` an intermediate from `sign-intermediate`,
    /// set with `set-signed` together with the root, so its `ca_chain` is complete.
    fn build_pki(&mut self) -> Result<Cas, RealError> {
        let mount = |max: &str| json!({"type": "pki", "config": {"max_lease_ttl": max}});
        self.write(&format!("sys/mounts/{ROOT_MOUNT}"), &mount("87600h"))?;
        let root = self.write(
            &format!("{ROOT_MOUNT}/root/generate/internal"),
            &json!({"common_name": ROOT_CN, "ttl": "87600h", "key_type": "ec", "issuer_name": "lab-root"}),
        )?;
        let root = data_str(&root, "certificate", "root/generate/internal")?;
        self.write(&format!("sys/mounts/{PKI_MOUNT}"), &mount("43800h"))?;
        let csr = self.write(
            &format!("{PKI_MOUNT}/intermediate/generate/internal"),
            &json!({"common_name": INTERMEDIATE_CN, "key_type": "ec"}),
        )?;
        let csr = data_str(&csr, "csr", "intermediate/generate/internal")?;
        let signed = self.write(
            &format!("{ROOT_MOUNT}/root/sign-intermediate"),
            &json!({"csr": csr, "common_name": INTERMEDIATE_CN, "ttl": "43800h", "format": "pem"}),
        )?;
        let intermediate = data_str(&signed, "certificate", "root/sign-intermediate")?;
        let cas = Cas { root, intermediate };
        self.write(
            &format!("{PKI_MOUNT}/intermediate/set-signed"),
            &json!({ "certificate": cas.chain() }),
        )?;
        Ok(cas)
    }

    /// Issues the listener, admin, agent and app identities from `pki-prod` and writes every
    /// file of the layout (and the listener's client CA file).
    fn write_identities(&mut self, cas: &Cas) -> Result<(), RealError> {
        let f = self.files.clone();
        let chain = cas.chain();
        for (path, text) in [
            (&f.root_ca, &cas.root),
            (&f.intermediate_ca, &cas.intermediate),
            (&f.ca_chain, &chain),
            (&f.server_ca_chain, &chain),
            (&f.proxy_ca_chain, &chain),
            (&f.admin.ca, &cas.intermediate),
        ] {
            write_file(path, pem_line(text).as_bytes(), CERT_MODE)?;
        }
        let server = self.issue(
            "vault-server",
            json!({"common_name": world::REAL_SERVER_NAME, "alt_names": "localhost", "ip_sans": "127.0.0.1", "ttl": "720h"}),
        )?;
        write_pair(&f.server_cert, &f.server_key, &server)?;
        let fullchain = format!("{}{}", pem_line(&server.cert), pem_line(&cas.intermediate));
        write_file(&f.server_fullchain, fullchain.as_bytes(), CERT_MODE)?;
        let client_ca = server_paths(&f).client_ca;
        write_file(&client_ca, chain.as_bytes(), CERT_MODE)?;
        let admin = self.issue(
            "admin-client",
            json!({"common_name": world::ADMIN_CN, "ttl": "720h"}),
        )?;
        write_pair(&f.admin.cert, &f.admin.key, &admin)?;
        for id in &f.agents {
            let cn = world::agent_cn(&id.name);
            let agent = self.issue(
                &format!("agent-{}", id.name),
                json!({"common_name": cn, "ttl": "72h"}),
            )?;
            write_pair(&id.cert, &id.key, &agent)?;
            write_file(&id.ca, chain.as_bytes(), CERT_MODE)?;
        }
        for (leaf, (app, _)) in f.app_leaves.iter().zip(AGENTS) {
            let domain = world::app_domain(app);
            let body =
                json!({"common_name": domain, "alt_names": format!("www.{domain}"), "ttl": "720h"});
            let cert = self.issue(&format!("nginx-{app}"), body)?;
            let full = format!("{}{}", pem_line(&cert.cert), pem_line(&cas.intermediate));
            write_file(&leaf.fullchain, full.as_bytes(), CERT_MODE)?;
            write_file(&leaf.key, pem_line(&cert.key).as_bytes(), KEY_MODE)?;
        }
        Ok(())
    }

    /// Restarts the server so its listener serves the `pki-prod` certificate and takes client
    /// certificates from the lab CAs; the CLI then presents the lab's admin identity.
    fn restart_on_lab_identities(&mut self) -> Result<(), RealError> {
        self.stop();
        self.creds = Creds {
            ca: self.files.ca_chain.clone(),
            cert: self.files.admin.cert.clone(),
            key: self.files.admin.key.clone(),
        };
        self.launch()?;
        self.unseal()
    }

    fn issue(&mut self, role: &str, body: Value) -> Result<Issued, RealError> {
        let path = format!("{PKI_MOUNT}/issue/{role}");
        let v = self.write(&path, &body)?;
        Ok(Issued {
            cert: data_str(&v, "certificate", &path)?,
            key: data_str(&v, "private_key", &path)?,
        })
    }

    /// `bao write -format=json PATH -` with `body` on stdin, as root.
    fn write(&self, path: &str, body: &Value) -> Result<Value, RealError> {
        self.run_json(&["write", "-format=json", path, "-"], Some(body), true)
    }

    /// Like `write`, retried for a few seconds: a fresh KV v2 mount refuses writes while it
    /// upgrades, and a fresh cert auth mount may not route yet.
    fn write_retrying(&self, path: &str, body: &Value) -> Result<Value, RealError> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.write(path, body) {
                Ok(v) => return Ok(v),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    fn run_json(
        &self,
        args: &[&str],
        stdin: Option<&Value>,
        root: bool,
    ) -> Result<Value, RealError> {
        let out = self.run(args, stdin, root)?;
        if out.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&out).map_err(|_| RealError::Reply {
            args: args.join(" "),
            expected: "a JSON document".into(),
        })
    }

    /// Runs the CLI against the lab server; `root` adds the root token (through the
    /// environment, never the command line).
    fn run(&self, args: &[&str], stdin: Option<&Value>, root: bool) -> Result<String, RealError> {
        let mut cmd = self.cli(root);
        cmd.args(args).stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RealError::Spawn {
                bin: self.bin.clone(),
                source,
            })?;
        if let (Some(body), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(body.to_string().as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|source| RealError::Spawn {
                bin: self.bin.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(RealError::Cli {
                args: args.join(" "),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                log: self.log_path(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn cli(&self, root: bool) -> Command {
        let mut c = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("VAULT_") || k.starts_with("BAO_") {
                c.env_remove(k);
            }
        }
        c.env("BAO_ADDR", self.url())
            .env("BAO_CACERT", &self.creds.ca)
            .env("BAO_TLS_SERVER_NAME", world::REAL_SERVER_NAME)
            .env("BAO_CLIENT_CERT", &self.creds.cert)
            .env("BAO_CLIENT_KEY", &self.creds.key);
        if root {
            c.env("BAO_TOKEN", &self.root_token);
        }
        c
    }
}

impl std::fmt::Debug for RealLab {
    /// Leaves the root token and unseal key out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealLab")
            .field("addr", &self.addr)
            .field("dir", &self.files.dir)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Drop for RealLab {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM, a grace period, then SIGKILL.
fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The listener's and the CLI's first identities, from a throw-away CA: the server cannot
/// issue its own certificate before it runs.
fn write_bootstrap(files: &LabFiles, paths: &ServerPaths) -> Result<Creds, LabError> {
    let pki = LabPki::with_names(
        "rotcheck lab bootstrap root CA",
        "rotcheck lab bootstrap CA",
    )?;
    let name = world::REAL_SERVER_NAME;
    let server = pki.issue(&LeafSpec::server(name, &[name, "localhost", "127.0.0.1"]))?;
    write_file(&files.server_key, server.key_pem().as_bytes(), KEY_MODE)?;
    write_file(&files.server_cert, server.cert_pem().as_bytes(), CERT_MODE)?;
    let full = pki.fullchain_pem(&server);
    write_file(&files.server_fullchain, full.as_bytes(), CERT_MODE)?;
    write_file(&paths.client_ca, pki.ca_chain_pem().as_bytes(), CERT_MODE)?;
    let admin = pki.issue(&LeafSpec::client("rotcheck-lab-bootstrap"))?;
    let creds = Creds {
        ca: paths.bootstrap.join("ca.pem"),
        cert: paths.bootstrap.join("admin.crt"),
        key: paths.bootstrap.join("admin.key"),
    };
    write_file(&creds.key, admin.key_pem().as_bytes(), KEY_MODE)?;
    write_file(&creds.cert, admin.cert_pem().as_bytes(), KEY_MODE)?;
    write_file(&creds.ca, pki.ca_chain_pem().as_bytes(), KEY_MODE)?;
    Ok(creds)
}

/// Raft storage, one TCP listener that requires and verifies client certificates.
fn write_server_config(
    files: &LabFiles,
    paths: &ServerPaths,
    addr: SocketAddr,
    cluster: SocketAddr,
) -> Result<(), LabError> {
    let q = |p: &Path| hcl_string(&p.display().to_string());
    let text = format!(
        "# Written by rotcheck-lab up.\nstorage \"raft\" {{\n  path    = {raft}\n  node_id = \"lab\"\n}}\n\
         listener \"tcp\" {{\n  address                            = \"{addr}\"\n  cluster_address                    = \"{cluster}\"\n  tls_cert_file                      = {crt}\n  tls_key_file                       = {key}\n  tls_client_ca_file                 = {cca}\n  tls_require_and_verify_client_cert = true\n}}\n\
         api_addr     = \"https://{addr}\"\ncluster_addr = \"https://{cluster}\"\nui           = false\n",
        raft = q(&paths.raft),
        crt = q(&files.server_fullchain),
        key = q(&files.server_key),
        cca = q(&paths.client_ca),
    );
    write_file(&paths.config, text.as_bytes(), CERT_MODE)
}

/// A quoted HCL string.
fn hcl_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The address `want` resolves to: a free port when it asks for port 0.
fn free_addr(want: SocketAddr) -> Result<SocketAddr, LabError> {
    if want.port() == 0 {
        return Ok(SocketAddr::new(
            want.ip(),
            crate::ports::free_port(want.ip()),
        ));
    }
    let l = TcpListener::bind(want).map_err(|source| LabError::Bind { addr: want, source })?;
    l.local_addr()
        .map_err(|source| LabError::Bind { addr: want, source })
}

fn data_str(v: &Value, field: &str, what: &str) -> Result<String, RealError> {
    v.pointer(&format!("/data/{field}"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| RealError::Reply {
            args: format!("write {what}"),
            expected: format!("data.{field}"),
        })
}

fn write_pair(cert: &Path, key: &Path, issued: &Issued) -> Result<(), LabError> {
    write_file(key, pem_line(&issued.key).as_bytes(), KEY_MODE)?;
    write_file(cert, pem_line(&issued.cert).as_bytes(), CERT_MODE)
}

/// `pem` ending in exactly one newline.
fn pem_line(pem: &str) -> String {
    format!("{}\n", pem.trim_end())
}

/// The `bao` to use: `explicit` when given (it must exist), else `bao` on PATH.
pub fn find_bao(explicit: Option<&Path>) -> Result<Option<PathBuf>, LabError> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(Some(p.to_path_buf()));
        }
        return Err(LabError::invalid(
            "--bao",
            format!(
                "{} is not a file; expected the OpenBao binary (./scripts/openbao.sh installs it as .venv/bin/bao)",
                p.display()
            ),
        ));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::split_paths(&path)
        .map(|d| d.join("bao"))
        .find(|p| p.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_strings_are_quoted() {
        assert_eq!(hcl_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
    }

    #[test]
    fn a_missing_explicit_binary_is_an_error_that_says_where_to_get_one() {
        let e = find_bao(Some(Path::new("/nonexistent/bao"))).unwrap_err();
        assert!(e.to_string().contains("scripts/openbao.sh"), "{e}");
    }

    #[test]
    fn pem_lines_end_in_one_newline() {
        assert_eq!(pem_line("A\n\n"), "A\n");
        assert_eq!(
            Cas {
                root: "R".into(),
                intermediate: "I\n".into()
            }
            .chain(),
            "I\nR\n"
        );
    }
}
