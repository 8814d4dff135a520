//! Shared fixtures for tests/exporter.rs: the lab (Vault emulator, PKI, fault listeners) on
//! an in-test runtime, suite files in a temp dir, a `rotcheck serve` child process, an HTTP
//! client, and Prometheus tooling.

#![allow(dead_code)]

pub mod client;
pub mod prom;
pub mod serve;

use rotcheck_lab::pki::{CertKey, LabPki, LeafSpec};
use rotcheck_lab::{FaultKind, FaultListener, Lab, LabConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A file of the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    rotcheck_lab::ports::free_port([127, 0, 0, 1].into())
}

/// Polls `f` every 100 ms until it holds; panics naming `what` after `within`.
pub fn deadline_loop(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lab and fault listeners, running on their own runtime for the test's lifetime.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub lab: Lab,
    pub leaf_only: FaultListener,
    pub reset: FaultListener,
    pub stall: FaultListener,
    /// A port nobody listens on.
    pub refused: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// Starts a lab (optionally sealed) and the fault listeners.
    pub fn start(sealed: bool) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let lab = rt.block_on(Lab::start(LabConfig::default())).unwrap();
        lab.set_sealed(sealed);
        let leaf = issue(lab.pki(), "leaf-only.lab.rotcheck.test");
        let leaf_only = rt
            .block_on(FaultListener::start(FaultKind::Tls {
                chain: vec![leaf.cert_der().clone()],
                key: leaf.key_der(),
            }))
            .unwrap();
        let reset = rt
            .block_on(FaultListener::start(FaultKind::ResetOnAccept))
            .unwrap();
        let stall = rt.block_on(FaultListener::start(FaultKind::Stall)).unwrap();
        let refused = SocketAddr::from(([127, 0, 0, 1], free_port()));
        Env {
            rt,
            lab,
            leaf_only,
            reset,
            stall,
            refused,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The lab's CA chain file (intermediate + root).
    pub fn ca(&self) -> String {
        self.lab.files().ca_chain.display().to_string()
    }

    /// Writes `name` in the temp dir with `{lab}`, `{sni}`, `{ca}`, `{leaf_only}`, `{reset}`,
    /// `{stall}`, `{refused}`, `{admin_crt}`, `{admin_key}`, `{server_key}`, `{fullchain}`
    /// replaced.
    pub fn write_suite(&self, name: &str, template: &str) -> PathBuf {
        let f = self.lab.files();
        let text = template
            .replace("{lab}", &self.lab.addr().to_string())
            .replace("{sni}", self.lab.server_name())
            .replace("{ca}", &self.ca())
            .replace("{leaf_only}", &self.leaf_only.addr().to_string())
            .replace("{reset}", &self.reset.addr().to_string())
            .replace("{stall}", &self.stall.addr().to_string())
            .replace("{refused}", &self.refused.to_string())
            .replace("{admin_crt}", &f.admin.cert.display().to_string())
            .replace("{admin_key}", &f.admin.key.display().to_string())
            .replace("{server_key}", &f.server_key.display().to_string())
            .replace("{fullchain}", &f.server_fullchain.display().to_string());
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Serves a freshly issued leaf (new serial) on the lab listener; returns its serial as
    /// rotcheck reports it.
    pub fn rotate_lab_cert(&self) -> String {
        let pki = self.lab.pki();
        let leaf = pki
            .issue(&LeafSpec::server(
                self.lab.server_name(),
                &[self.lab.server_name(), "localhost", "127.0.0.1"],
            ))
            .unwrap();
        self.lab
            .set_server_chain(pki.fullchain_der(&leaf), leaf.key_der())
            .unwrap();
        serial_of(&leaf)
    }
}

/// A server leaf for `name` (and 127.0.0.1) from the PKI's intermediate.
pub fn issue(pki: &Arc<LabPki>, name: &str) -> CertKey {
    pki.issue(&LeafSpec::server(name, &[name, "127.0.0.1"]))
        .unwrap()
}

/// The serial of a certificate the way rotcheck labels it.
pub fn serial_of(c: &CertKey) -> String {
    rotcheck::certs::facts(c.cert_der(), "leaf").serial
}
