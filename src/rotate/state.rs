//! The plan's state file (JSON, one per suite: run, steps, statuses, timestamps, old and new
//! serials/fingerprints) and its lock file (one run of a plan at a time). Never key material.

use super::atomic::{write_atomic, FileSpec};
use super::killpoint;
use super::material::CertId;
use super::safefs::{self, Dir};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A step's status. Transitions: pending → running → applied → done | failed;
/// failed → running on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Running,
    Applied,
    Done,
    Failed,
}

impl StepStatus {
    /// Lowercase token.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Applied => "applied",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
        }
    }
}

/// The whole run's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Failed,
    Completed,
}

impl RunStatus {
    /// Lowercase token.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Failed => "failed",
            RunStatus::Completed => "completed",
        }
    }
}

/// One certificate file that a step replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertChange {
    pub path: String,
    pub old: Option<CertId>,
    pub new: Option<CertId>,
}

/// The gate's outcome, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GateSummary {
    pub stage: String,
    pub status: String,
    pub passed: usize,
    pub failed: usize,
    /// `check: assertion: message` for every failing check.
    pub failing: Vec<String>,
}

/// One step's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    pub name: String,
    pub status: StepStatus,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub attempts: u32,
    /// Something changed in this run of the step (reloads still owed if it failed).
    pub changed: bool,
    /// The step's reloads are owed: set before its actions may rename anything, cleared only
    /// after the reloads succeeded (or when nothing changed and none was owed before). A run
    /// killed in between leaves it set, and the next run reloads even though the files are
    /// already in place.
    #[serde(default)]
    pub reload_owed: bool,
    pub certs: Vec<CertChange>,
    pub gate: Option<GateSummary>,
    pub message: Option<String>,
    /// Superseded certificates this step owes a revocation for (`revoke_previous_after`),
    /// kept until revoked, across runs.
    #[serde(default)]
    pub revocations: Vec<Revocation>,
}

/// Where a superseded certificate's revocation stands. pending (the old serial is known, the
/// action may be about to replace it) → owed (replaced) → served (its successor was seen
/// served; due after the overlap window) → revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevokeStatus {
    Pending,
    Owed,
    Served,
    Revoked,
}

impl RevokeStatus {
    /// Lowercase token.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeStatus::Pending => "pending",
            RevokeStatus::Owed => "owed",
            RevokeStatus::Served => "served",
            RevokeStatus::Revoked => "revoked",
        }
    }
}

/// A superseded certificate to revoke at `<mount>/revoke` once its successor is served and
/// the overlap window has passed. Serials and fingerprints only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The certificate file whose previous content is to be revoked.
    pub path: String,
    pub mount: String,
    /// The superseded certificate (lowercase hex, as in reports).
    pub serial: String,
    pub sha256: String,
    /// Its successor, once the file holds it.
    #[serde(default)]
    pub new_serial: Option<String>,
    #[serde(default)]
    pub new_sha256: Option<String>,
    /// The overlap window, in seconds after the successor was seen served.
    pub after_seconds: u64,
    pub status: RevokeStatus,
    #[serde(default)]
    pub served_at: Option<String>,
    /// Unix seconds from which the revocation may be sent.
    #[serde(default)]
    pub due_unix: Option<i64>,
    #[serde(default)]
    pub revoked_at: Option<String>,
    /// Revocation requests sent (a failed one leaves the revocation owed).
    #[serde(default)]
    pub attempts: u32,
    /// Why it is still owed, or what Vault answered.
    #[serde(default)]
    pub message: Option<String>,
}

impl StepState {
    fn new(name: &str) -> Self {
        StepState {
            name: name.to_string(),
            status: StepStatus::Pending,
            started_at: None,
            finished_at: None,
            attempts: 0,
            changed: false,
            reload_owed: false,
            certs: vec![],
            gate: None,
            message: None,
            revocations: vec![],
        }
    }
}

/// The state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanState {
    pub version: u32,
    pub suite: String,
    pub run_id: String,
    pub status: RunStatus,
    pub started_at: String,
    pub updated_at: String,
    /// Some step of this run changed something (for `reload_when: run_changed`).
    #[serde(default)]
    pub changed: bool,
    pub steps: Vec<StepState>,
}

/// Why the state could not be read, written or locked.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: cannot read the state file: {detail}; move it aside to start a fresh run")]
    Read { path: String, detail: String },
    #[error("{0}")]
    Write(#[from] super::atomic::AtomicError),
    #[error("cannot take the plan lock: {0}")]
    LockFs(super::safefs::FsError),
    #[error("another `rotate plan` run of suite {suite:?} holds {path} ({holder}); wait for it to finish; concurrent runs of one plan are refused")]
    Locked {
        suite: String,
        path: String,
        holder: String,
    },
}

/// Now as RFC 3339 with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl PlanState {
    /// A fresh run over the given steps.
    pub fn fresh(suite: &str, steps: &[&str]) -> Self {
        let t = now();
        PlanState {
            version: 1,
            suite: suite.to_string(),
            run_id: format!("{}-{}", t.replace([':', '.'], ""), std::process::id()),
            status: RunStatus::Running,
            started_at: t.clone(),
            updated_at: t,
            changed: false,
            steps: steps.iter().map(|n| StepState::new(n)).collect(),
        }
    }

    /// Loads the state file; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, StateError> {
        let read = safefs::read_file(path, safefs::MAX_STATE_BYTES, "a state file");
        let text = match read {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(None),
            Err(e) => return Err(read_err(path, e.to_string())),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| read_err(path, format!("not a rotcheck state file ({e})")))
    }

    /// Writes the state atomically.
    pub fn save(&mut self, path: &Path) -> Result<(), StateError> {
        self.updated_at = now();
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        let spec = FileSpec {
            path: path.to_path_buf(),
            mode: 0o640,
            owner: None,
        };
        write_atomic(&spec, text.as_bytes())?;
        killpoint::reached("state-saved", Some(path));
        Ok(())
    }

    /// The record of a step, added when the plan gained a step since the state was written.
    pub fn step_mut(&mut self, name: &str) -> &mut StepState {
        if let Some(i) = self.steps.iter().position(|s| s.name == name) {
            return &mut self.steps[i];
        }
        self.steps.push(StepState::new(name));
        let last = self.steps.len() - 1;
        &mut self.steps[last]
    }

    /// The record of a step, if any.
    pub fn step(&self, name: &str) -> Option<&StepState> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Revocations still to send (owed or served, not pending or done).
    pub fn owed_revocations(&self) -> usize {
        self.steps
            .iter()
            .flat_map(|s| s.revocations.iter())
            .filter(|r| matches!(r.status, RevokeStatus::Owed | RevokeStatus::Served))
            .count()
    }

    /// Takes over the revocations an earlier run of the plan still owes (owed or served), so
    /// a new run never forgets one.
    pub fn carry_revocations(&mut self, earlier: &PlanState) {
        for st in &earlier.steps {
            let owed: Vec<Revocation> = st
                .revocations
                .iter()
                .filter(|r| matches!(r.status, RevokeStatus::Owed | RevokeStatus::Served))
                .cloned()
                .collect();
            if !owed.is_empty() {
                self.step_mut(&st.name).revocations.extend(owed);
            }
        }
    }
}

fn read_err(path: &Path, detail: String) -> StateError {
    StateError::Read {
        path: path.display().to_string(),
        detail,
    }
}

/// The state file and lock file of a suite's plan.
#[derive(Debug, Clone)]
pub struct Paths {
    pub state: PathBuf,
    pub lock: PathBuf,
}

impl Paths {
    /// `<dir>/state.json` and `<dir>/lock`.
    pub fn in_dir(dir: &Path) -> Self {
        Paths {
            state: dir.join("state.json"),
            lock: dir.join("lock"),
        }
    }
}

/// An exclusive lock on a plan, held until dropped (or the process dies).
pub struct PlanLock {
    _file: std::fs::File,
}

/// Bytes of the holder line in the lock file: written in place, padded, never truncated
/// first, so a reader sees the old holder or the new one, never an empty file.
const HOLDER_BYTES: usize = 256;

/// Takes the plan's lock without waiting; refuses when another run holds it. The lock file
/// is opened through the state directory's handle (no symlink, FIFO or device is followed or
/// opened), and the holder (pid, host, start time) is written to the locked descriptor.
pub fn lock(path: &Path, suite: &str) -> Result<PlanLock, StateError> {
    use rustix::fs::{FlockOperation, OFlags};
    let (dir, name) = Dir::of_file(path, true).map_err(StateError::LockFs)?;
    let held = dir
        .open_or_create(&name, OFlags::RDWR, 0o600, "lock")
        .map_err(StateError::LockFs)?;
    match rustix::fs::flock(&held.file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            return Err(StateError::Locked {
                suite: suite.into(),
                path: path.display().to_string(),
                holder: read_holder(&held.file),
            })
        }
        Err(e) => {
            return Err(StateError::LockFs(super::safefs::FsError::Io {
                path: path.display().to_string(),
                op: "lock",
                source: e.into(),
                hint: "check the file system of the state directory",
            }))
        }
    }
    write_holder(&held.file);
    Ok(PlanLock { _file: held.file })
}

/// `pid N on HOST since TIME`, padded to [`HOLDER_BYTES`].
fn write_holder(f: &std::fs::File) {
    use std::os::unix::fs::FileExt;
    let line = format!(
        "pid {} on {} since {}",
        std::process::id(),
        super::audit::host(),
        now()
    );
    let mut bytes = line.into_bytes();
    bytes.truncate(HOLDER_BYTES - 1);
    bytes.resize(HOLDER_BYTES - 1, b' ');
    bytes.push(b'\n');
    let _ = f.write_all_at(&bytes, 0);
    let _ = f.set_len(HOLDER_BYTES as u64);
    let _ = f.sync_data();
}

fn read_holder(f: &std::fs::File) -> String {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; HOLDER_BYTES];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
    if text.is_empty() {
        "holder unknown: it wrote no pid yet".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s/state.json");
        let mut s = PlanState::fresh("t", &["a", "b"]);
        s.step_mut("a").status = StepStatus::Done;
        s.save(&p).unwrap();
        let back = PlanState::load(&p).unwrap().unwrap();
        assert_eq!(back.step("a").unwrap().status, StepStatus::Done);
        assert_eq!(back.steps.len(), 2);
    }

    fn revocation(serial: &str, status: RevokeStatus) -> Revocation {
        Revocation {
            path: "/x.crt".into(),
            mount: "pki".into(),
            serial: serial.into(),
            sha256: "ab".into(),
            new_serial: Some("cd".into()),
            new_sha256: Some("ef".into()),
            after_seconds: 600,
            status,
            served_at: None,
            due_unix: None,
            revoked_at: None,
            attempts: 0,
            message: None,
        }
    }

    #[test]
    fn a_new_run_takes_over_what_is_still_owed_and_nothing_else() {
        let mut done = PlanState::fresh("t", &["a"]);
        done.step_mut("a").revocations = [
            RevokeStatus::Pending,
            RevokeStatus::Owed,
            RevokeStatus::Served,
            RevokeStatus::Revoked,
        ]
        .into_iter()
        .enumerate()
        .map(|(i, st)| revocation(&i.to_string(), st))
        .collect();
        assert_eq!(done.owed_revocations(), 2);
        let mut next = PlanState::fresh("t", &["a"]);
        next.carry_revocations(&done);
        let serials: Vec<&str> = next.steps[0]
            .revocations
            .iter()
            .map(|r| r.serial.as_str())
            .collect();
        assert_eq!(serials, ["1", "2"]);
        let old: serde_json::Value = serde_json::json!({"name": "a", "status": "done",
            "started_at": null, "finished_at": null, "attempts": 1, "changed": false,
            "certs": [], "gate": null, "message": null});
        let st: StepState = serde_json::from_value(old).unwrap();
        assert!(
            st.revocations.is_empty(),
            "a state file without the field loads"
        );
    }

    #[test]
    fn second_lock_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lock");
        let held = lock(&p, "t").unwrap();
        match lock(&p, "t") {
            Err(StateError::Locked { holder, .. }) => {
                let want = format!("pid {} on ", std::process::id());
                assert!(holder.starts_with(&want), "{holder}");
            }
            other => panic!("{:?}", other.err()),
        }
        drop(held);
        assert!(lock(&p, "t").is_ok());
    }
}
