//! Probes: one file per check kind, behind one entry point. Probes never print.

pub mod classify;
pub mod command;
pub mod files;
pub mod tls;
pub mod vault;

use crate::model::{Assertion, Outcome, ProbeError};
use crate::suite::{CheckSpec, ExpiryThresholds, Suite};
use rustls_pki_types::CertificateDer;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What every probe gets: the suite, the evaluation instant, the timeout, shared caches.
#[derive(Clone)]
pub struct Ctx {
    pub suite: Arc<Suite>,
    /// The instant time-based expectations are evaluated at (`--at`, else now).
    pub now: SystemTime,
    /// The check's whole budget: DNS, connect, handshake and reads.
    pub timeout: Duration,
    pub cache: Arc<Cache>,
}

impl Ctx {
    /// `now` as Unix seconds.
    pub fn now_unix(&self) -> i64 {
        match self.now.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }

    /// The suite's default expiry thresholds.
    pub fn default_expiry(&self) -> ExpiryThresholds {
        self.suite.file.defaults.expiry
    }

    /// Resolves a path named in the suite.
    pub fn path(&self, p: &str) -> PathBuf {
        self.suite.path_of(p)
    }
}

type Loaded = Result<Arc<Vec<CertificateDer<'static>>>, crate::certs::FileError>;

/// Per-run caches (CA bundles are read once however many checks name them).
#[derive(Default)]
pub struct Cache {
    bundles: Mutex<HashMap<PathBuf, Loaded>>,
    /// Free slots for probes to cache their own prepared state (e.g. TLS client configs).
    pub tls_configs: Mutex<HashMap<String, Arc<rustls::ClientConfig>>>,
    /// `chain` verdicts of the tls probe, keyed by presented chain, CA file, name, mode and
    /// instant: many listeners serving one chain are validated once per run.
    pub chains: Mutex<HashMap<String, crate::model::Assertion>>,
    /// Vault tokens this run obtained (the profile's cert login); the engine revokes them.
    pub vault: crate::vault::Session,
}

impl Cache {
    /// Reads a PEM certificate file once per cache.
    pub fn certs(&self, path: &Path) -> Loaded {
        if let Some(hit) = self
            .bundles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
        {
            return hit.clone();
        }
        let loaded = crate::certs::read_certs(path).map(Arc::new);
        let mut map = self.bundles.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(path.to_path_buf(), loaded.clone());
        loaded
    }
}

/// Runs one check's probe and expectations.
pub async fn run(check: &CheckSpec, ctx: &Ctx) -> Outcome {
    if let Some(spec) = &check.tls {
        return tls::probe(spec, &check.expect, ctx).await;
    }
    if let Some(entries) = &check.files {
        return files::probe(entries, &check.expect, ctx).await;
    }
    if let Some(spec) = &check.command {
        return command::probe(spec, &check.expect, ctx).await;
    }
    if let Some(outcome) = vault::probe(check, ctx).await {
        return outcome;
    }
    unsupported(check.kind())
}

fn unsupported(kind: &str) -> Outcome {
    let msg = format!(
        "{kind} checks are not available in this build; remove the check or upgrade rotcheck"
    );
    Outcome {
        error: Some(ProbeError::local("unsupported", msg.clone())),
        assertions: vec![Assertion::not_ok(
            "probe",
            crate::model::Status::Error,
            "unsupported",
            msg,
        )],
        ..Default::default()
    }
}
