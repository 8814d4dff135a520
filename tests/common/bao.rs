//! A real OpenBao (or HashiCorp Vault) dev server for tests: `bao server -dev -dev-tls` on a
//! free loopback port, its CLI run against it as root. `scripts/test.sh` installs OpenBao into
//! the project's virtualenv and sets `ROTCHECK_REQUIRE_BAO=1`, so a missing binary fails there
//! instead of skipping.

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The dev server's root token.
pub const DEV_ROOT_TOKEN: &str = "rotcheck-dev-root";

/// `bao` (or `vault`) on PATH; `None` (with a skip line) when neither is and the run does not
/// require one.
pub fn server_binary() -> Option<String> {
    let found = ["bao", "vault"].into_iter().find(|b| on_path(b));
    if found.is_none() {
        assert!(
            std::env::var_os("ROTCHECK_REQUIRE_BAO").is_none(),
            "ROTCHECK_REQUIRE_BAO is set but no bao binary is on PATH; run ./scripts/test.sh, which installs it"
        );
        println!(
            "skipped: no bao or vault binary on PATH; the Vault checks ran against the lab only"
        );
    }
    found.map(String::from)
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// What the PKI set-up needs of a server: its CLI (asserting success) and a scratch folder.
pub trait Cli {
    /// Runs the CLI as root; the standard output.
    fn must(&self, args: &[&str]) -> String;
    /// A file of the server's folder.
    fn file(&self, name: &str) -> PathBuf;
}

/// A root mount and an intermediate mount signed by it (`sign-intermediate`, `set-signed`).
/// With `import_root` the intermediate's issuer is set with the whole chain, else with the
/// intermediate alone (so its `cert/ca_chain` is one certificate, as is common). Writes
/// `root.pem` and `int.pem` in the server's folder; returns the root's PEM.
pub fn two_tier_pki(s: &dyn Cli, root_mount: &str, int_mount: &str, import_root: bool) -> String {
    s.must(&["secrets", "enable", &format!("-path={root_mount}"), "pki"]);
    s.must(&["secrets", "tune", "-max-lease-ttl=87600h", root_mount]);
    let generate = format!("{root_mount}/root/generate/internal");
    let root = s.must(&[
        "write",
        "-field=certificate",
        &generate,
        "common_name=Test Root",
        "ttl=87600h",
    ]);
    s.must(&["secrets", "enable", &format!("-path={int_mount}"), "pki"]);
    s.must(&["secrets", "tune", "-max-lease-ttl=43800h", int_mount]);
    let csr_path = format!("{int_mount}/intermediate/generate/internal");
    let csr = s.must(&[
        "write",
        "-field=csr",
        &csr_path,
        "common_name=Test Intermediate",
    ]);
    std::fs::write(s.file("int.csr"), csr).unwrap();
    let csr_arg = format!("csr=@{}", s.file("int.csr").display());
    let sign = format!("{root_mount}/root/sign-intermediate");
    let int = s.must(&[
        "write",
        "-field=certificate",
        &sign,
        &csr_arg,
        "format=pem",
        "ttl=43800h",
    ]);
    std::fs::write(s.file("int.pem"), &int).unwrap();
    std::fs::write(s.file("root.pem"), &root).unwrap();
    let signed = if import_root {
        format!("{}\n{}\n", int.trim(), root.trim())
    } else {
        int
    };
    std::fs::write(s.file("int-signed.pem"), signed).unwrap();
    let cert_arg = format!("certificate=@{}", s.file("int-signed.pem").display());
    s.must(&[
        "write",
        &format!("{int_mount}/intermediate/set-signed"),
        &cert_arg,
    ]);
    root
}

impl Cli for DevServer {
    fn must(&self, args: &[&str]) -> String {
        DevServer::must(self, args)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Cli for RaftServer {
    fn must(&self, args: &[&str]) -> String {
        RaftServer::must(self, args)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.path(name)
    }
}

/// A root PKI mount at `name` whose certificates carry `urls` (`pki/config/urls` fields such
/// as `crl_distribution_points=URL` or `ocsp_servers=URL`), with a role `web` for `localhost`
/// and 127.0.0.1. Returns the CA's PEM.
pub fn web_root_mount(dev: &DevServer, name: &str, cn: &str, urls: &str) -> String {
    dev.must(&["secrets", "enable", &format!("-path={name}"), "pki"]);
    let ca = dev.must(&[
        "write",
        "-field=certificate",
        &format!("{name}/root/generate/internal"),
        &format!("common_name={cn}"),
        "ttl=8760h",
    ]);
    dev.must(&["write", &format!("{name}/config/urls"), urls]);
    dev.must(&[
        "write",
        &format!("{name}/roles/web"),
        "allowed_domains=localhost",
        "allow_bare_domains=true",
        "allow_ip_sans=true",
        "max_ttl=72h",
    ]);
    ca
}

/// A dev server with a TLS listener; killed on drop.
pub struct DevServer {
    child: Child,
    pub bin: String,
    pub dir: TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl DevServer {
    /// Starts `BIN server -dev -dev-tls` and waits until it answers.
    pub fn start(bin: &str) -> DevServer {
        let dir = tempfile::tempdir().unwrap();
        let port = rotcheck_lab::ports::free_port([127, 0, 0, 1].into());
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(bin)
            .args(["server", "-dev", "-dev-tls"])
            .arg(format!("-dev-tls-cert-dir={}", dir.path().display()))
            .arg(format!("-dev-root-token-id={DEV_ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the dev server");
        let dev = DevServer {
            child,
            bin: bin.into(),
            dir,
            addr: format!("127.0.0.1:{port}"),
        };
        dev.wait_up();
        dev
    }

    /// The CA file that verifies the dev listener (its certificate is for `localhost`).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("vault-ca.pem")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.ca().exists() && self.cli(&["status"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the dev server did not come up: {}", self.log());
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs the binary's own CLI against the dev server as root.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .env("VAULT_ADDR", self.url())
            .env("VAULT_CACERT", self.ca())
            .env("VAULT_TOKEN", DEV_ROOT_TOKEN)
            .env("BAO_ADDR", self.url())
            .env("BAO_CACERT", self.ca())
            .env("BAO_TOKEN", DEV_ROOT_TOKEN)
            .output()
            .expect("run the CLI")
    }

    /// Like `cli`, asserting success; the standard output.
    pub fn must(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `read -format=json PATH`'s `data`.
    pub fn read_json(&self, path: &str) -> serde_json::Value {
        let text = self.must(&["read", "-format=json", path]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["data"].clone()
    }
}

/// A server that was never initialized (in-memory storage), with a TLS listener at `tls`
/// (certificate for `localhost`/127.0.0.1 from `ca_pem`) and a plain-HTTP one at `http`.
pub struct Uninitialized {
    child: Child,
    pub dir: TempDir,
    pub tls: String,
    pub http: String,
    pub ca: PathBuf,
}

impl Uninitialized {
    /// Starts `BIN server -config=…`; `cert_pem`/`key_pem` serve the TLS listener.
    pub fn start(bin: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> Uninitialized {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (tls, http) = (free_addr(), free_addr());
        for (name, text) in [
            ("ca.pem", ca_pem),
            ("tls.crt", cert_pem),
            ("tls.key", key_pem),
        ] {
            std::fs::write(d.join(name), text).unwrap();
        }
        let config = format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"{tls}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\nlistener \"tcp\" {{\n  address = \"{http}\"\n  tls_disable = true\n}}\n",
            d.join("tls.crt").display(),
            d.join("tls.key").display()
        );
        std::fs::write(d.join("server.hcl"), config).unwrap();
        let log = std::fs::File::create(d.join("server.log")).unwrap();
        let child = Command::new(bin)
            .arg("server")
            .arg(format!("-config={}", d.join("server.hcl").display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the server");
        let ca = d.join("ca.pem");
        let s = Uninitialized {
            child,
            dir,
            tls,
            http,
            ca,
        };
        s.wait_up();
        s
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&self.http).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        panic!("the server did not come up: {log}");
    }
}

impl Drop for Uninitialized {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A production-like server: raft storage, a TLS listener for `vault.prod.privsec.ch` that
/// requires and verifies client certificates (`tls_require_and_verify_client_cert`),
/// initialized with one key share and unsealed. Every CLI call presents the admin certificate.
pub struct RaftServer {
    child: Option<Child>,
    pub bin: String,
    pub dir: TempDir,
    /// `127.0.0.1:PORT` of the API listener.
    pub addr: String,
    pub root_token: String,
    unseal_key: String,
}

/// The listener's name, as in the seeds.
pub const SNI: &str = "vault.prod.privsec.ch";

/// Files of a [`RaftServer`]'s PKI, written in its directory.
pub struct RaftPki<'a> {
    /// Verifies the listener.
    pub ca_pem: &'a str,
    pub server_cert_pem: &'a str,
    pub server_key_pem: &'a str,
    /// The CA the listener takes client certificates from.
    pub client_ca_pem: &'a str,
    pub admin_cert_pem: &'a str,
    pub admin_key_pem: &'a str,
}

impl RaftServer {
    /// Starts, initializes and unseals the server.
    pub fn start(bin: &str, pki: &RaftPki<'_>) -> RaftServer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let files = [
            ("ca.pem", pki.ca_pem),
            ("server.crt", pki.server_cert_pem),
            ("server.key", pki.server_key_pem),
            ("client-ca.pem", pki.client_ca_pem),
            ("admin.crt", pki.admin_cert_pem),
            ("admin.key", pki.admin_key_pem),
        ];
        for (name, text) in files {
            std::fs::write(d.join(name), text).unwrap();
        }
        std::fs::create_dir(d.join("raft")).unwrap();
        let (addr, cluster) = (free_addr(), free_addr());
        let config = format!(
            "storage \"raft\" {{\n  path = \"{raft}\"\n  node_id = \"n1\"\n}}\nlistener \"tcp\" {{\n  address = \"{addr}\"\n  cluster_address = \"{cluster}\"\n  tls_cert_file = \"{crt}\"\n  tls_key_file = \"{key}\"\n  tls_client_ca_file = \"{cca}\"\n  tls_require_and_verify_client_cert = true\n}}\napi_addr = \"https://{addr}\"\ncluster_addr = \"https://{cluster}\"\n",
            raft = d.join("raft").display(),
            crt = d.join("server.crt").display(),
            key = d.join("server.key").display(),
            cca = d.join("client-ca.pem").display(),
        );
        std::fs::write(d.join("server.hcl"), config).unwrap();
        let mut s = RaftServer {
            child: None,
            bin: bin.into(),
            dir,
            addr,
            root_token: String::new(),
            unseal_key: String::new(),
        };
        s.launch();
        s.init();
        s.unseal();
        s
    }

    /// Starts the server process (again) on the same storage and address.
    pub fn launch(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("server.log"))
            .unwrap();
        let child = Command::new(&self.bin)
            .arg("server")
            .arg(format!("-config={}", d.join("server.hcl").display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(Instant::now() < deadline, "no listener: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server process (SIGKILL): a crash, or the first half of a restart.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn init(&mut self) {
        let out = self.cli_as(
            None,
            &[
                "operator",
                "init",
                "-key-shares=1",
                "-key-threshold=1",
                "-format=json",
            ],
        );
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        self.unseal_key = v["unseal_keys_b64"][0].as_str().unwrap().to_string();
        self.root_token = v["root_token"].as_str().unwrap().to_string();
    }

    /// Unseals and waits until the node is the active one.
    pub fn unseal(&self) {
        let key = self.unseal_key.clone();
        let out = self.cli_as(None, &["operator", "unseal", &key]);
        assert!(
            out.status.success(),
            "unseal: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.cli_as(None, &["read", "-format=json", "sys/leader"]);
            let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap_or_default();
            if v["data"]["is_self"] == serde_json::json!(true)
                && self.cli(&["token", "lookup"]).status.success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never became active: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A file of the server's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CLI as root, presenting the admin certificate.
    pub fn cli(&self, args: &[&str]) -> Output {
        let token = self.root_token.clone();
        self.cli_as(Some(&token), args)
    }

    fn cli_as(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("BAO_ADDR", self.url())
            .env("BAO_CACERT", self.path("ca.pem"))
            .env("BAO_TLS_SERVER_NAME", SNI)
            .env("BAO_CLIENT_CERT", self.path("admin.crt"))
            .env("BAO_CLIENT_KEY", self.path("admin.key"))
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_TOKEN");
        if let Some(t) = token {
            c.env("BAO_TOKEN", t);
        }
        c.output().expect("run the CLI")
    }

    /// Like `cli`, asserting success; the standard output.
    pub fn must(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How many tokens exist (`auth/token/accessors`, as root).
    pub fn token_count(&self) -> usize {
        let text = self.must(&["list", "-format=json", "auth/token/accessors"]);
        serde_json::from_str::<Vec<String>>(&text)
            .map(|v| v.len())
            .unwrap_or(0)
    }
}

impl Drop for RaftServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_addr() -> String {
    let port = rotcheck_lab::ports::free_port([127, 0, 0, 1].into());
    format!("127.0.0.1:{port}")
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
