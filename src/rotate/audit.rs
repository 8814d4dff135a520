//! The audit log: one JSON line per transition (time, suite, run, step, target and secret,
//! from → to, actor with uid and kind, serials, fingerprints, gate summary), appended and
//! fsynced, for a SIEM. It carries identities of certificates only — never key material or
//! tokens.

use super::safefs::{self, Dir, FsError};
use super::state::{CertChange, GateSummary};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One transition (the fields every line has had from the start; [`AuditLog::append`] adds
/// the newer ones).
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    pub time: String,
    pub suite: &'a str,
    pub run_id: &'a str,
    /// The step, or null for a run-level transition.
    pub step: Option<&'a str>,
    pub from: &'a str,
    pub to: &'a str,
    /// `alice (sudo as root)`: the person, and the account rotcheck ran as.
    pub actor: &'a str,
    pub host: &'a str,
    /// `{path: {old, new}}` serials of replaced certificates.
    pub serials: Vec<Serial<'a>>,
    pub gate: Option<&'a GateSummary>,
    pub message: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// A transition of the run by the log's actor, now; set step, serials, gate and message
    /// after.
    pub fn now(log: &'a AuditLog, run: (&'a str, &'a str), from_to: (&'a str, &'a str)) -> Self {
        Event {
            time: super::state::now(),
            suite: run.0,
            run_id: run.1,
            step: None,
            from: from_to.0,
            to: from_to.1,
            actor: &log.actor.display,
            host: &log.host,
            serials: vec![],
            gate: None,
            message: None,
        }
    }
}

/// What a line is about: `run`, `step:<name>`, or `revocation:<mount>:<serial>` with the
/// certificate as its secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    pub target: String,
    /// `<mount>:<serial>` of the certificate the line concerns.
    pub secret_id: Option<String>,
}

impl Subject {
    /// The run, or the event's step.
    pub fn of(e: &Event<'_>) -> Self {
        Subject {
            target: e.step.map_or_else(|| "run".into(), |s| format!("step:{s}")),
            secret_id: None,
        }
    }
}

/// A whole line: the event's fields, then the newer ones.
#[derive(Serialize)]
struct Line<'l> {
    #[serde(flatten)]
    event: &'l Event<'l>,
    /// The same instant as `time`, in UTC (`Z`).
    timestamp_utc: &'l str,
    target: &'l str,
    /// Written as `secret_id` (see [`SECRET_ID_KEY`]).
    #[serde(rename = "__sid__")]
    secret_id: Option<&'l str>,
    /// The state after the transition (`to`).
    state: &'l str,
    actor_user: &'l str,
    actor_uid: u32,
    actor_kind: &'static str,
}

/// Who acted: the person, their uid, and whether the plan runner or a person did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `ROTCHECK_ACTOR`, else `SUDO_USER (sudo as ACCOUNT)`, else the account's name.
    pub display: String,
    /// The person: `ROTCHECK_ACTOR`, else the sudo user, else the account's name.
    pub user: String,
    /// The person's uid: `SUDO_UID` under sudo, else the uid rotcheck runs as.
    pub uid: u32,
    pub kind: ActorKind,
}

/// Whether the plan runner or a person performed a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    PlanRunner,
    Person,
}

impl ActorKind {
    /// `plan_runner` or `person`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::PlanRunner => "plan_runner",
            ActorKind::Person => "person",
        }
    }
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

/// The key `secret_id` is serialized under until the line is redacted: the redaction takes
/// the value of anything named `secret_id` (an AppRole credential elsewhere), while here it is
/// a certificate's `<mount>:<serial>`, built by rotcheck and never secret. Inside a JSON string
/// a quote is escaped, so `"__sid__":` can only be this key.
const SECRET_ID_KEY: (&str, &str) = ("\"__sid__\":", "\"secret_id\":");

/// One event as its JSON line (redacted, `secret_id` named as documented), without newline.
pub fn line(e: &Event<'_>, about: &Subject, actor: &Actor) -> String {
    let l = Line {
        event: e,
        timestamp_utc: &e.time,
        target: &about.target,
        secret_id: about.secret_id.as_deref(),
        state: e.to,
        actor_user: &actor.user,
        actor_uid: actor.uid,
        actor_kind: actor.kind.as_str(),
    };
    let text = serde_json::to_string(&l).unwrap_or_default();
    crate::redact::redact(&text).replacen(SECRET_ID_KEY.0, SECRET_ID_KEY.1, 1)
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
    pub actor: Actor,
    pub host: String,
}

impl AuditLog {
    /// A log at `path`, attributing transitions to the current user through the plan runner.
    pub fn new(path: &Path) -> Self {
        AuditLog::acting_as(path, ActorKind::PlanRunner)
    }

    /// A log at `path`, attributing transitions to the current user acting as `kind`.
    pub fn acting_as(path: &Path, kind: ActorKind) -> Self {
        AuditLog {
            path: path.to_path_buf(),
            actor: Actor::current(kind),
            host: host(),
        }
    }

    /// Appends one line about the run or the event's step.
    pub fn append(&self, e: &Event<'_>) -> Result<(), AuditError> {
        self.append_about(e, &Subject::of(e))
    }

    /// Appends one line about `about` and fsyncs it.
    pub fn append_about(&self, e: &Event<'_>, about: &Subject) -> Result<(), AuditError> {
        let err = |source| AuditError { source };
        let (dir, name) = Dir::of_file(&self.path, true).map_err(err)?;
        let flags = rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::APPEND;
        let mut held = dir
            .open_or_create(&name, flags, 0o640, "append to")
            .map_err(err)?;
        let mut line = line(e, about, &self.actor);
        line.push('\n');
        safefs::write_synced(&mut held.file, line.as_bytes(), &self.path).map_err(err)
    }
}

impl Actor {
    /// The person running rotcheck now.
    pub fn current(kind: ActorKind) -> Self {
        let uid = nix::unistd::getuid().as_raw();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let sudo_uid = env("SUDO_UID").and_then(|u| u.trim().parse().ok());
        let user = env("ROTCHECK_ACTOR")
            .or_else(|| env("SUDO_USER"))
            .map(|u| u.trim().to_string())
            .unwrap_or_else(|| super::owner::user_name(uid));
        Actor {
            display: actor(),
            user,
            uid: sudo_uid.unwrap_or(uid),
            kind,
        }
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
            let mut e = Event::now(&log, ("t", "r"), ("pending", to));
            e.step = Some("one");
            log.append(&e).unwrap();
        }
        let text = std::fs::read_to_string(&log.path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["to"], "done");
        assert_eq!(lines[1]["state"], "done");
        assert_eq!(lines[1]["target"], "step:one");
        assert_eq!(lines[1]["actor_kind"], "plan_runner");
        let uid = nix::unistd::getuid().as_raw();
        if std::env::var_os("SUDO_UID").is_none() {
            assert_eq!(lines[1]["actor_uid"], uid);
        }
        let ts = lines[1]["timestamp_utc"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && humantime::parse_rfc3339(ts).is_ok(),
            "{ts}"
        );
        assert_eq!(lines[1]["time"], lines[1]["timestamp_utc"]);
        assert!(lines[1]["secret_id"].is_null());
    }

    #[test]
    fn secret_id_names_the_certificate_and_secrets_are_still_redacted() {
        let log = AuditLog::acting_as(Path::new("/nonexistent/audit.jsonl"), ActorKind::Person);
        let mut e = Event::now(&log, ("t", "r"), ("served", "revoked"));
        e.message = Some("denied for \"client_token\": \"s.abcdefghijklmnopqrstuvwx\"");
        let about = Subject {
            target: "revocation:pki:1f".into(),
            secret_id: Some("pki:1f".into()),
        };
        let l = line(&e, &about, &log.actor);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["secret_id"], "pki:1f");
        assert_eq!(v["actor_kind"], "person");
        assert!(!l.contains("abcdefghijklmnop"), "{l}");
        assert!(!l.contains("__sid__"), "{l}");
    }
}
