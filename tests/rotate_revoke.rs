//! Revoking the superseded certificate against a real OpenBao PKI mount: `rotate issue` and
//! `rotate plan` revoke the certificate they replaced only after a real TLS listener serves the
//! new one and the overlap window has passed; an unserved successor leaves the revocation owed
//! (and reported); a plan killed between "served" and the revocation revokes exactly once on
//! resume; a token that may not revoke leaves it owed; the next gate finds the old serial on
//! the mount's CRL (`expect.not_revoked`); and every audit line is JSON with the new fields.

mod common;

use common::bao::{self, DevServer, DEV_ROOT_TOKEN};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ------------------------------------------------------------ a listener serving the files

/// Serves the certificate and key files: re-read at every handshake while `live` (a service
/// that picked up the new files), the last ones read while not (a service not reloaded yet).
#[derive(Debug)]
struct FileCert {
    cert: PathBuf,
    key: PathBuf,
    live: AtomicBool,
    current: Mutex<Arc<CertifiedKey>>,
}

impl FileCert {
    fn load(cert: &Path, key: &Path) -> Arc<CertifiedKey> {
        let chain = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider.key_provider.load_private_key(key).unwrap();
        Arc::new(CertifiedKey::new(chain, signing))
    }
}

impl ResolvesServerCert for FileCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut cur = self.current.lock().unwrap();
        if self.live.load(Ordering::SeqCst) {
            *cur = FileCert::load(&self.cert, &self.key);
        }
        Some(cur.clone())
    }
}

/// A rustls listener on 127.0.0.1 presenting what [`FileCert`] resolves.
fn file_server(cert: &Path, key: &Path, live: bool) -> (SocketAddr, Arc<FileCert>) {
    let files = Arc::new(FileCert {
        cert: cert.into(),
        key: key.into(),
        live: AtomicBool::new(live),
        current: Mutex::new(FileCert::load(cert, key)),
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(files.clone());
    let addr = common::serve_tls_on(TcpListener::bind("127.0.0.1:0").unwrap(), Arc::new(cfg));
    (addr, files)
}

// ------------------------------------------------------------ OpenBao and the files

/// A dev server with a root PKI mount `pki` whose certificates name its CRL, a role `web`
/// for localhost, and a folder for the suite, certificates and state.
struct Lab {
    dev: DevServer,
    dir: tempfile::TempDir,
}

impl Lab {
    fn start() -> Option<Lab> {
        let bin = bao::server_binary()?;
        let dev = DevServer::start(&bin);
        let crl = format!("crl_distribution_points={}/v1/pki/crl", dev.url());
        let ca = bao::web_root_mount(&dev, "pki", "Revoke Root", &crl);
        let lab = Lab {
            dev,
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(lab.p("ca.pem"), ca).unwrap();
        Some(lab)
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.p(name).display().to_string()
    }

    /// `rotcheck ARGS` with the dev server's address and CA, and `token`.
    fn rotcheck(&self, args: &[&str], token: &str, envs: &[(&str, &str)]) -> Run {
        let t0 = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_rotcheck"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("VAULT_ADDR", self.dev.url())
            .env("VAULT_CACERT", self.dev.ca())
            .env("VAULT_TLS_SERVER_NAME", "localhost")
            .env("VAULT_TOKEN", token)
            .env_remove("BAO_TOKEN")
            .env_remove("SUDO_USER")
            .env_remove("SUDO_UID")
            .env_remove("ROTCHECK_ACTOR")
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        Run {
            code: out.status.code(),
            signal: out.status.signal(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            out: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            took: t0.elapsed(),
        }
    }

    /// The issue flags for `web.crt` / `web.key`.
    fn issue_args(&self) -> Vec<String> {
        [
            "rotate",
            "issue",
            "--mount",
            "pki",
            "--role",
            "web",
            "--cn",
            "localhost",
            "--ip-sans",
            "127.0.0.1",
            "--ttl",
            "24h",
            "--key",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([self.s("web.key"), "--cert".into(), self.s("web.crt")])
        .collect()
    }

    fn issue(&self, extra: &[&str]) -> Run {
        let mut args = self.issue_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.rotcheck(&args, DEV_ROOT_TOKEN, &[])
    }

    /// The serial of the certificate in a file, lowercase hex as rotcheck reports it.
    fn serial_of(&self, name: &str) -> String {
        let der = CertificateDer::from_pem_file(self.p(name)).unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let hex: String = c.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
        hex.trim_start_matches("00").to_string()
    }

    /// OpenBao's `revocation_time` for a serial (0: not revoked).
    fn revocation_time(&self, serial: &str) -> i64 {
        let colons = serial
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        let v = self.dev.read_json(&format!("pki/cert/{colons}"));
        v["revocation_time"].as_i64().unwrap_or(0)
    }

    /// `rotcheck gate` of `expect.not_revoked` on a certificate file (the CRL named by its
    /// distribution point): the verdict's status and reason.
    fn not_revoked(&self, file: &str) -> (String, Option<String>) {
        let suite = format!(
            "suite: crl\nchecks:\n  - name: crl\n    files: [{{ path: '{}', kind: cert, ca_file: '{}' }}]\n    expect: {{ not_revoked: true }}\n",
            self.s(file),
            self.s("ca.pem")
        );
        std::fs::write(self.p("crl.yaml"), suite).unwrap();
        let crl_suite = self.s("crl.yaml");
        let run = self.rotcheck(&["gate", "-c", &crl_suite, "--format", "json"], "", &[]);
        let v: Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.out));
        let a = v["checks"][0]["assertions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"].as_str().unwrap_or("").starts_with("not_revoked"))
            .unwrap_or_else(|| panic!("no not_revoked assertion: {v:#}"))
            .clone();
        (
            a["status"].as_str().unwrap().to_string(),
            a["reason"].as_str().map(String::from),
        )
    }

    /// A suite whose stage `web` handshakes with `addr`, and a one-step plan issuing
    /// `web.crt` with a 1 s revoke window (state and audit in the folder).
    fn plan_suite(&self, addr: SocketAddr) -> String {
        let text = format!(
            "suite: revoke\nvault:\n  addr: {url}\n  ca_file: '{vca}'\n  server_name: localhost\nchecks:\n  - name: web\n    stage: web\n    tls: {{ addr: '{addr}', server_name: localhost, ca_file: '{ca}' }}\nplan:\n  state_dir: '{state}'\n  revoke_previous_after: 1s\n  wait: 5s\n  interval: 1s\n  steps:\n    - name: web\n      gate: web\n      actions:\n        - issue: {{ mount: pki, role: web, cn: localhost, ip_sans: [127.0.0.1], ttl: 24h, key: '{key}', cert: '{cert}' }}\n",
            url = self.dev.url(),
            vca = self.dev.ca().display(),
            ca = self.s("ca.pem"),
            state = self.s("state"),
            key = self.s("web.key"),
            cert = self.s("web.crt"),
        );
        std::fs::write(self.p("suite.yaml"), text).unwrap();
        self.s("suite.yaml")
    }

    fn plan(&self, token: &str, extra: &[&str], envs: &[(&str, &str)]) -> Run {
        let suite = self.s("suite.yaml");
        let mut args = vec!["rotate", "plan", "-c", suite.as_str()];
        args.extend_from_slice(extra);
        self.rotcheck(&args, token, envs)
    }

    fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.p("state/state.json")).unwrap()).unwrap()
    }

    /// The step's revocation records.
    fn revocations(&self) -> Vec<Value> {
        self.state()["steps"][0]["revocations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every audit line, each parsed as JSON.
    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.p("state/audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("every audit line is JSON ({e}): {l}"))
            })
            .collect()
    }

    /// The audit lines of revocation transitions to `to` for a serial.
    fn revocation_lines(&self, serial: &str, to: &str) -> Vec<Value> {
        let id = format!("pki:{serial}");
        self.audit()
            .into_iter()
            .filter(|l| l["secret_id"] == id.as_str() && l["to"] == to)
            .collect()
    }
}

/// The revocation was sent at least the window (1 s) after its successor was seen served.
fn assert_window_kept(r: &Value) {
    let t = |k: &str| humantime::parse_rfc3339(r[k].as_str().unwrap()).unwrap();
    let waited = t("revoked_at").duration_since(t("served_at")).unwrap();
    assert!(
        waited >= Duration::from_secs(1),
        "revoked {waited:?} after served: {r:#}"
    );
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    out: String,
    took: Duration,
}

/// A restricted token: may issue from `pki/issue/web`, may not revoke.
fn issue_only_token(lab: &Lab) -> String {
    let policy = lab.p("issue-only.hcl");
    std::fs::write(
        &policy,
        "path \"pki/issue/web\" { capabilities = [\"update\"] }\n",
    )
    .unwrap();
    let arg = policy.display().to_string();
    lab.dev.must(&["policy", "write", "issue-only", &arg]);
    lab.dev
        .must(&["token", "create", "-field=token", "-policy=issue-only"])
        .trim()
        .to_string()
}

/// No private key and no token in any output, the state file or the audit log.
fn assert_no_secrets(lab: &Lab, outputs: &[&Run], tokens: &[&str]) {
    let mut texts: Vec<String> = outputs.iter().map(|r| r.out.clone()).collect();
    for f in ["state/state.json", "state/audit.jsonl"] {
        texts.push(std::fs::read_to_string(lab.p(f)).unwrap_or_default());
    }
    for t in &texts {
        assert!(!t.contains("PRIVATE KEY"), "key material in output:\n{t}");
        for tok in tokens {
            assert!(!t.contains(tok), "a token in output:\n{t}");
        }
    }
}

// ------------------------------------------------------------ the tests

#[test]
fn rotate_issue_revokes_the_old_serial_only_once_the_new_one_is_served() {
    let Some(lab) = Lab::start() else { return };
    let first = lab.issue(&[]);
    assert_eq!(first.code, Some(0), "{}", first.out);
    let old = lab.serial_of("web.crt");
    let (addr, _server) = file_server(&lab.p("web.crt"), &lab.p("web.key"), true);
    let addr_s = addr.to_string();

    // Flags that cannot work are refused before anything is issued.
    let bad = lab.issue(&["--force", "--revoke-previous-after", "1s"]);
    assert_eq!(bad.code, Some(2), "{}", bad.out);
    assert!(bad.out.contains("needs --served-at"), "{}", bad.out);
    assert_eq!(lab.serial_of("web.crt"), old);

    // With -c, the suite's plan audit log gets the revocation's lines, by a person.
    let suite = lab.plan_suite(addr);
    let t0 = unix_now();
    let run = lab.issue(&[
        "-c",
        &suite,
        "--force",
        "--revoke-previous-after",
        "1s",
        "--served-at",
        &addr_s,
        "--server-name",
        "localhost",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.out);
    let new = lab.serial_of("web.crt");
    assert_ne!(new, old);
    let served = run.out.find("serves the new certificate").expect(&run.out);
    let revoked = run
        .out
        .find(&format!("revoked serial {old}"))
        .expect(&run.out);
    assert!(served < revoked, "served before revoked: {}", run.out);
    assert!(run.took >= Duration::from_secs(1), "the window was waited");
    let when = lab.revocation_time(&old);
    assert!(when > t0, "revoked after the window: {when} vs start {t0}");
    assert_eq!(lab.revocation_time(&new), 0, "the new one is not revoked");
    let lines = lab.audit();
    let states: Vec<&str> = lines.iter().map(|l| l["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["owed", "served", "revoked"], "{lines:#?}");
    for l in &lines {
        assert_eq!(l["actor_kind"], "person");
        assert_eq!(l["secret_id"], format!("pki:{old}").as_str());
        assert_eq!(l["serials"][0]["new_serial"], new.as_str());
        assert!(l["step"].is_null());
    }

    // The next gate proves it: the old certificate is on the mount's CRL, the new one not.
    assert_eq!(
        lab.not_revoked("web.crt.prev"),
        ("fail".into(), Some("revoked".into()))
    );
    assert_eq!(lab.not_revoked("web.crt"), ("pass".into(), None));
    assert_no_secrets(&lab, &[&first, &run], &[DEV_ROOT_TOKEN]);
}

#[test]
fn rotate_issue_does_not_revoke_while_the_old_certificate_is_still_served() {
    let Some(lab) = Lab::start() else { return };
    assert_eq!(lab.issue(&[]).code, Some(0));
    let old = lab.serial_of("web.crt");
    // A service that was not reloaded: it keeps the certificate it read at start.
    let (addr, _server) = file_server(&lab.p("web.crt"), &lab.p("web.key"), false);
    let addr_s = addr.to_string();
    let run = lab.issue(&[
        "--force",
        "--revoke-previous-after",
        "0s",
        "--served-at",
        &addr_s,
        "--server-name",
        "localhost",
        "--served-wait",
        "2s",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert_ne!(
        lab.serial_of("web.crt"),
        old,
        "the new certificate was written"
    );
    assert!(
        run.out.contains("does not serve the new certificate"),
        "{}",
        run.out
    );
    assert!(
        run.out
            .contains(&format!("not revoked: serial {old} stays valid")),
        "{}",
        run.out
    );
    assert_eq!(lab.revocation_time(&old), 0, "nothing was revoked");
}

#[test]
fn a_plan_revokes_once_served_and_an_unserved_successor_stays_owed() {
    let Some(lab) = Lab::start() else { return };
    assert_eq!(lab.issue(&[]).code, Some(0));
    let old = lab.serial_of("web.crt");
    let (addr, server) = file_server(&lab.p("web.crt"), &lab.p("web.key"), false);
    lab.plan_suite(addr);

    // The gate passes (a handshake), but the listener still presents the old certificate.
    let run = lab.plan(DEV_ROOT_TOKEN, &["--force"], &[]);
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert!(run.out.contains("not revoked yet"), "{}", run.out);
    assert!(
        run.out.contains(&format!("owed: serial {old}")),
        "{}",
        run.out
    );
    let new = lab.serial_of("web.crt");
    let r = &lab.revocations()[0];
    assert_eq!(r["status"], "owed", "{r:#}");
    assert_eq!(r["serial"], old.as_str());
    assert_eq!(r["new_serial"], new.as_str());
    assert!(r["message"]
        .as_str()
        .unwrap()
        .contains("no check of stage web presented"));
    assert_eq!(lab.state()["status"], "failed");
    assert_eq!(lab.revocation_time(&old), 0);

    // The service reloads; the next run resumes, sees it served, waits, revokes.
    server.live.store(true, Ordering::SeqCst);
    let run = lab.plan(DEV_ROOT_TOKEN, &[], &[("ROTCHECK_ACTOR", "alice")]);
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert!(
        run.out.contains(&format!("revoked serial {old}")),
        "{}",
        run.out
    );
    assert_eq!(lab.revocations()[0]["status"], "revoked");
    assert_window_kept(&lab.revocations()[0]);
    assert_eq!(lab.state()["status"], "completed");
    assert_ne!(lab.revocation_time(&old), 0);
    assert_eq!(
        lab.not_revoked("web.crt.prev"),
        ("fail".into(), Some("revoked".into()))
    );
    assert_audit_fields(&lab, &old);
}

/// Every line keeps the old fields and carries the new ones; the revocation's lines name it.
fn assert_audit_fields(lab: &Lab, old: &str) {
    let uid = nix::unistd::getuid().as_raw();
    let lines = lab.audit();
    assert!(lines.len() >= 8, "{lines:#?}");
    for l in &lines {
        for k in [
            "time", "suite", "run_id", "from", "to", "actor", "host", "serials",
        ] {
            assert!(l.get(k).is_some(), "{k} kept: {l}");
        }
        let ts = l["timestamp_utc"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && humantime::parse_rfc3339(ts).is_ok(),
            "{ts}"
        );
        assert_eq!(l["state"], l["to"]);
        assert_eq!(l["actor_kind"], "plan_runner");
        assert_eq!(l["actor_uid"], uid, "{l}");
        assert!(l["target"].as_str().is_some_and(|t| !t.is_empty()), "{l}");
    }
    let chain: Vec<&str> = lines
        .iter()
        .filter(|l| l["secret_id"] == format!("pki:{old}").as_str())
        .map(|l| l["to"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["owed", "served", "revoked"], "{lines:#?}");
    let revoked = &lab.revocation_lines(old, "revoked")[0];
    assert_eq!(revoked["target"], format!("revocation:pki:{old}").as_str());
    assert_eq!(revoked["step"], "web");
    assert_eq!(revoked["actor_user"], "alice");
    assert_eq!(revoked["serials"][0]["old_serial"], old);
    let run_line = lines.iter().find(|l| l["step"].is_null()).unwrap();
    assert_eq!(run_line["target"], "run");
    assert!(run_line["secret_id"].is_null());
}

#[test]
fn a_plan_killed_between_served_and_revoke_revokes_exactly_once_on_resume() {
    let Some(lab) = Lab::start() else { return };
    assert_eq!(lab.issue(&[]).code, Some(0));
    let old = lab.serial_of("web.crt");
    let (addr, _server) = file_server(&lab.p("web.crt"), &lab.p("web.key"), true);
    lab.plan_suite(addr);
    let kill = [("ROTCHECK_TEST_KILL_AT", "revocation-served")];
    let run = lab.plan(DEV_ROOT_TOKEN, &["--force"], &kill);
    assert_eq!(run.signal, Some(9), "killed at the point: {}", run.out);
    let r = &lab.revocations()[0];
    assert_eq!(r["status"], "served", "{r:#}");
    assert_eq!(r["attempts"], 0);
    assert_eq!(lab.revocation_time(&old), 0, "not revoked before the kill");
    assert_eq!(lab.revocation_lines(&old, "served").len(), 1);

    let resumed = lab.plan(DEV_ROOT_TOKEN, &[], &[]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.out);
    assert!(
        resumed.out.contains(&format!("revoked serial {old}")),
        "{}",
        resumed.out
    );
    assert_window_kept(&lab.revocations()[0]);
    assert_ne!(lab.revocation_time(&old), 0);
    // A further run is a new run with nothing owed: no second revocation.
    let again = lab.plan(DEV_ROOT_TOKEN, &[], &[]);
    assert_eq!(again.code, Some(0), "{}", again.out);
    assert!(!again.out.contains("revoked serial"), "{}", again.out);
    assert_eq!(lab.revocation_lines(&old, "revoked").len(), 1);
    assert_eq!(
        lab.revocations().len(),
        0,
        "a new run carries nothing revoked"
    );
    assert_eq!(
        lab.not_revoked("web.crt.prev"),
        ("fail".into(), Some("revoked".into()))
    );
}

#[test]
fn a_plan_killed_right_after_the_rename_still_owes_the_old_serial_and_revokes_it() {
    let Some(lab) = Lab::start() else { return };
    assert_eq!(lab.issue(&[]).code, Some(0));
    let old = lab.serial_of("web.crt");
    let (addr, _server) = file_server(&lab.p("web.crt"), &lab.p("web.key"), true);
    lab.plan_suite(addr);
    let kill = [("ROTCHECK_TEST_KILL_AT", "renamed:web.crt")];
    let run = lab.plan(DEV_ROOT_TOKEN, &["--force"], &kill);
    assert_eq!(run.signal, Some(9), "killed at the point: {}", run.out);
    assert_ne!(
        lab.serial_of("web.crt"),
        old,
        "the new certificate is in place"
    );
    let r = &lab.revocations()[0];
    assert_eq!(r["status"], "pending", "recorded before the rename: {r:#}");
    assert_eq!(r["serial"], old.as_str());

    let resumed = lab.plan(DEV_ROOT_TOKEN, &[], &[]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.out);
    let r = &lab.revocations()[0];
    assert_eq!(r["status"], "revoked", "{r:#}");
    assert_eq!(r["new_serial"], lab.serial_of("web.crt").as_str());
    assert_ne!(lab.revocation_time(&old), 0);
    assert_eq!(lab.revocation_time(&lab.serial_of("web.crt")), 0);
}

#[test]
fn a_certificate_of_another_name_planted_in_the_target_is_never_revoked() {
    let Some(lab) = Lab::start() else { return };
    lab.dev.must(&[
        "write",
        "pki/roles/other",
        "allowed_domains=example.test",
        "allow_subdomains=true",
    ]);
    let out = lab.dev.must(&[
        "write",
        "-format=json",
        "pki/issue/other",
        "common_name=app.example.test",
        "ttl=24h",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    std::fs::write(lab.p("web.crt"), v["data"]["certificate"].as_str().unwrap()).unwrap();
    std::fs::write(lab.p("web.key"), v["data"]["private_key"].as_str().unwrap()).unwrap();
    let planted = lab.serial_of("web.crt");
    let (addr, _server) = file_server(&lab.p("web.crt"), &lab.p("web.key"), true);
    lab.plan_suite(addr);
    let run = lab.plan(DEV_ROOT_TOKEN, &[], &[]);
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert!(
        run.out.contains(&format!("not revoking serial {planted}")),
        "{}",
        run.out
    );
    assert!(lab.revocations().is_empty());
    assert_ne!(lab.serial_of("web.crt"), planted, "replaced all the same");
    assert_eq!(lab.revocation_time(&planted), 0);
}

#[test]
fn a_revoke_the_token_may_not_make_is_reported_and_stays_owed() {
    let Some(lab) = Lab::start() else { return };
    assert_eq!(lab.issue(&[]).code, Some(0));
    let old = lab.serial_of("web.crt");
    let (addr, _server) = file_server(&lab.p("web.crt"), &lab.p("web.key"), true);
    lab.plan_suite(addr);
    let token = issue_only_token(&lab);
    let run = lab.plan(&token, &["--force"], &[]);
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert!(run.out.contains("pki/revoke failed"), "{}", run.out);
    assert!(run.out.contains("permission denied"), "{}", run.out);
    let r = &lab.revocations()[0];
    assert_eq!(r["status"], "served", "{r:#}");
    assert_eq!(r["attempts"], 1);
    assert!(r["message"].as_str().unwrap().contains("still owed"));
    assert_eq!(lab.revocation_lines(&old, "revoke_failed").len(), 1);
    assert_eq!(lab.revocation_time(&old), 0);
    assert_eq!(
        lab.not_revoked("web.crt.prev"),
        ("pass".into(), None),
        "not on the CRL yet"
    );

    let fixed = lab.plan(DEV_ROOT_TOKEN, &[], &[]);
    assert_eq!(fixed.code, Some(0), "{}", fixed.out);
    assert_eq!(lab.revocations()[0]["status"], "revoked");
    assert_eq!(lab.revocations()[0]["attempts"], 2);
    assert_ne!(lab.revocation_time(&old), 0);
    assert_no_secrets(&lab, &[&run, &fixed], &[DEV_ROOT_TOKEN, &token]);
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
