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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
            "storage \"inmem\" {{}}\ndisable_mlock = true\nlistener \"tcp\" {{\n  address = \"{tls}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\nlistener \"tcp\" {{\n  address = \"{http}\"\n  tls_disable = true\n}}\n",
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

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
