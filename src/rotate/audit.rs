//! The audit log: one JSON line per transition (time, suite, run, step, from → to, actor,
//! serials, fingerprints, gate summary), appended and fsynced, for a SIEM. It carries
//! identities of certificates only — never key material or tokens.

use super::safefs::{self, Dir, FsError};
use super::state::{CertChange, GateSummary};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One transition.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    pub time: String,
    pub suite: &'a str,
    pub run_id: &'a str,
    /// The step, or null for a run-level transition.
    pub step: Option<&'a str>,
    pub from: &'a str,
    pub to: &'a str,
    pub actor: &'a str,
    pub host: &'a str,
    /// `{path: {old, new}}` serials of replaced certificates.
    pub serials: Vec<Serial<'a>>,
    pub gate: Option<&'a GateSummary>,
    pub message: Option<&'a str>,
}

/// Old and new identity of one certificate file.
#[derive(Debug, Clone, Serialize)]
pub struct Serial<'a> {
    pub path: &'a str,
    pub old_serial: Option<&'a str>,
    pub new_serial: Option<&'a str>,
    pub old_sha256: Option<&'a str>,
    pub new_sha256: Option<&'a str>,
}

impl<'a> Serial<'a> {
    /// From a recorded change.
    pub fn of(c: &'a CertChange) -> Self {
        Serial {
            path: &c.path,
            old_serial: c.old.as_ref().map(|i| i.serial.as_str()),
            new_serial: c.new.as_ref().map(|i| i.serial.as_str()),
            old_sha256: c.old.as_ref().map(|i| i.sha256.as_str()),
            new_sha256: c.new.as_ref().map(|i| i.sha256.as_str()),
        }
    }
}

/// Why an audit line could not be appended.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot append to the audit log: {source}; fix the path or its permissions (plan.audit_log)"
)]
pub struct AuditError {
    #[source]
    pub source: FsError,
}

/// An append-only audit log.
#[derive(Debug, Clone)]
pub struct AuditLog {
    pub path: PathBuf,
    pub actor: String,
    pub host: String,
}

impl AuditLog {
    /// A log at `path`, attributing transitions to the current user.
    pub fn new(path: &Path) -> Self {
        AuditLog {
            path: path.to_path_buf(),
            actor: actor(),
            host: host(),
        }
    }

    /// Appends one line and fsyncs it.
    pub fn append(&self, e: &Event<'_>) -> Result<(), AuditError> {
        let err = |source| AuditError { source };
        let (dir, name) = Dir::of_file(&self.path, true).map_err(err)?;
        let flags = rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::APPEND;
        let mut held = dir
            .open_or_create(&name, flags, 0o640, "append to")
            .map_err(err)?;
        let mut line = crate::redact::redact(&serde_json::to_string(e).unwrap_or_default());
        line.push('\n');
        safefs::write_synced(&mut held.file, line.as_bytes(), &self.path).map_err(err)
    }
}

/// Who runs rotcheck: `ROTCHECK_ACTOR`, else the sudo user, else the login name of the uid.
pub fn actor() -> String {
    let uid_name = super::owner::user_name(nix::unistd::getuid().as_raw());
    if let Ok(a) = std::env::var("ROTCHECK_ACTOR") {
        if !a.trim().is_empty() {
            return a.trim().to_string();
        }
    }
    match std::env::var("SUDO_USER") {
        Ok(s) if !s.is_empty() => format!("{s} (sudo as {uid_name})"),
        _ => uid_name,
    }
}

/// This machine's host name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_line_per_event() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&d.path().join("a/audit.jsonl"));
        for to in ["running", "done"] {
            let e = Event {
                time: super::super::state::now(),
                suite: "t",
                run_id: "r",
                step: Some("one"),
                from: "pending",
                to,
                actor: &log.actor,
                host: &log.host,
                serials: vec![],
                gate: None,
                message: None,
            };
            log.append(&e).unwrap();
        }
        let text = std::fs::read_to_string(&log.path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["to"], "done");
    }
}
