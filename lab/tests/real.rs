//! `rotcheck-lab up` on a real OpenBao: the layout with its modes, the seeds' SNI and world as
//! the server itself reports them, nothing secret on stdout, SIGHUP passed on and SIGTERM
//! stopping the server; and without `bao`, an emulator that says it is one.
//!
//! Skips without `bao` on PATH unless ROTCHECK_REQUIRE_BAO is set (scripts/test.sh sets it).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `bao` on PATH, or `None` (with a skip line) when the run does not require one.
fn bao() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("bao"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("ROTCHECK_REQUIRE_BAO").is_none(),
            "ROTCHECK_REQUIRE_BAO is set but no bao binary is on PATH; run ./scripts/test.sh, which installs it"
        );
        println!("skipped: no bao binary on PATH");
    }
    found
}

/// The running `up`; killed on drop if a test failed half-way.
struct Up {
    child: Child,
    first_lines: Vec<String>,
}

impl Up {
    fn start(args: &[&str], path_env: Option<&str>) -> Up {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rotcheck-lab"));
        cmd.arg("up").args(args).stdout(Stdio::piped());
        if let Some(p) = path_env {
            cmd.env("PATH", p);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first_lines: Vec<String> = (0..2).filter_map(|_| lines.next()?.ok()).collect();
        std::thread::spawn(move || lines.for_each(drop));
        Up { child, first_lines }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// Waits (bounded) for the process to end.
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "up did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The server's own CLI with the lab's admin identity and root token.
fn cli(bin: &Path, dir: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("BAO_ADDR", url)
        .env("BAO_CACERT", dir.join("vault/ca_chain.pem"))
        .env("BAO_CLIENT_CERT", dir.join("vault/tls-admin/admin.crt"))
        .env("BAO_CLIENT_KEY", dir.join("vault/tls-admin/admin.key"))
        .env("BAO_TLS_SERVER_NAME", "vault.prod.privsec.ch")
        .env("BAO_TOKEN", read(&dir.join("vault/root-token")).trim())
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[test]
fn up_runs_a_real_openbao_with_the_seeds_world_and_stops_it_on_sigterm() {
    let Some(bin) = bao() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let mut up = Up::start(&["--dir", dir.to_str().unwrap(), "--drift"], None);
    let url = up.first_lines.first().cloned().unwrap_or_default();
    assert!(
        url.starts_with("https://127.0.0.1:"),
        "{:?}",
        up.first_lines
    );
    assert!(
        up.first_lines[1].contains("OpenBao v"),
        "{:?}",
        up.first_lines
    );

    // Modes, and the secrets only in their 0600 files.
    for key in [
        "vault/tls-admin/admin.key",
        "app-a/vault/mtls/agent.key",
        "app-b/tls/app-b.key",
        "vault/tls/server.key",
        "vault/root-token",
        "vault/unseal-key",
    ] {
        assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
    }
    let token = read(&dir.join("vault/root-token"));
    let unseal = read(&dir.join("vault/unseal-key"));
    for line in &up.first_lines {
        assert!(!line.contains(token.trim()) && !line.contains(unseal.trim()));
    }
    assert!(!dir.join("vault/bootstrap").exists());

    // The suite names the seeds' SNI and the server's own version.
    let suite = read(&dir.join("lab.yaml"));
    let version =
        String::from_utf8(Command::new(&bin).arg("version").output().unwrap().stdout).unwrap();
    let version = version
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_start_matches('v');
    assert!(suite.contains("sni: \"vault.prod.privsec.ch\""), "{suite}");
    assert!(suite.contains(&format!("vault_version: \"{version}\"")));

    // The world, as the server reports it.
    let mounts = json(&cli(
        &bin,
        &dir,
        &url,
        &["read", "-format=json", "sys/mounts"],
    ));
    assert_eq!(mounts["data"]["pki/"]["type"], "pki");
    assert_eq!(mounts["data"]["pki-prod/"]["type"], "pki");
    assert_eq!(mounts["data"]["secret/"]["options"]["version"], "2");
    let chain = json(&cli(
        &bin,
        &dir,
        &url,
        &["read", "-format=json", "pki-prod/cert/ca_chain"],
    ));
    let chain = chain["data"]["ca_chain"].as_str().unwrap().to_string();
    assert_eq!(
        chain.matches("BEGIN CERTIFICATE").count(),
        2,
        "root imported"
    );
    let role = json(&cli(
        &bin,
        &dir,
        &url,
        &["read", "-format=json", "auth/cert/certs/agent-app-a"],
    ));
    let policies = role["data"]["token_policies"].to_string();
    assert!(policies.contains("app-a-issue") && policies.contains("debug-policy"));
    let issue = json(&cli(
        &bin,
        &dir,
        &url,
        &["read", "-format=json", "pki-prod/roles/nginx-app-b"],
    ));
    assert_eq!(
        issue["data"]["allowed_domains"][0],
        "app-b.lab.rotcheck.test"
    );
    let leader = json(&cli(
        &bin,
        &dir,
        &url,
        &["read", "-format=json", "sys/storage/raft/configuration"],
    ));
    assert_eq!(leader["data"]["config"]["servers"][0]["leader"], true);

    // The listener refuses a handshake without a client certificate.
    let anon = Command::new(&bin)
        .args(["status"])
        .env("BAO_ADDR", &url)
        .env("BAO_CACERT", dir.join("vault/ca_chain.pem"))
        .env("BAO_TLS_SERVER_NAME", "vault.prod.privsec.ch")
        .output()
        .unwrap();
    assert!(!anon.status.success());

    // SIGHUP is passed on (the server stays up), SIGTERM stops both processes.
    let bao_pid: i32 = read(&dir.join("vault/bao.pid")).trim().parse().unwrap();
    up.signal(nix::sys::signal::Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(cli(&bin, &dir, &url, &["token", "lookup"]).status.success());
    up.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(up.wait().success());
    assert!(!pid_alive(bao_pid), "the server outlived up");
}

#[test]
fn without_bao_up_says_it_runs_the_emulator() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let mut up = Up::start(&["--dir", dir.to_str().unwrap()], Some("/nonexistent"));
    assert!(
        up.first_lines[0].starts_with("https://127.0.0.1:"),
        "{:?}",
        up.first_lines
    );
    assert!(
        up.first_lines[1].contains("no `bao` on PATH") && up.first_lines[1].contains("emulator"),
        "{:?}",
        up.first_lines
    );
    assert!(dir.join("control.addr").exists());
    up.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(up.wait().success());
}

#[test]
fn a_real_lab_is_not_driven_through_ctl() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("vault")).unwrap();
    std::fs::write(tmp.path().join("vault/bao.pid"), "1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rotcheck-lab"))
        .args(["ctl", "--dir", tmp.path().to_str().unwrap(), "seal"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bao operator seal"));
}
