//! Revoking the superseded certificate (`revoke_previous_after`): what an issue owes, proof
//! that its successor is served (a TLS-speaking check of the engine's report presents it), the
//! overlap window, and `<mount>/revoke`. Never revoked before the successor is served.

use super::ctx::{Out, RotateError, VaultIo};
use super::issue::cert_id_of;
use super::material::CertId;
use super::spec::IssueSpec;
use super::state::{now, Revocation, RevokeStatus};
use crate::model::Report;
use crate::suite::Suite;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Vault's form of a serial: lowercase byte pairs joined by colons (`1f:0a:…`).
pub fn vault_serial(hex: &str) -> String {
    let hex = hex.to_ascii_lowercase();
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    };
    padded
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// Unix milliseconds now.
fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// True when a TLS-speaking check of the report presented the certificate with this SHA-256
/// as its leaf (a `files` check of the certificate proves nothing about what is served).
pub fn served_in(report: &Report, sha256: &str) -> bool {
    report.checks.iter().any(|c| {
        let speaks_tls = c.facts.tls.is_some() || matches!(c.kind.as_str(), "tls" | "http");
        speaks_tls
            && c.certs
                .iter()
                .any(|f| f.position == "leaf" && f.sha256 == sha256)
    })
}

/// Why the certificate found in a target file is not revoked: it is not for the common name
/// the issue asks for. The file's directory may belong to a service user, who could place
/// another service's certificate there; only one of the same identity is ever revoked.
pub fn foreign(id: &CertId, spec: &IssueSpec) -> Option<String> {
    (id.subject_cn != spec.cn).then(|| {
        format!(
            "not revoking serial {} of {}: it is for CN {:?}, not {:?}; revoke it by hand if it must go",
            id.serial,
            spec.cert.display(),
            id.subject_cn,
            spec.cn
        )
    })
}

/// Before an issue action runs: remembers the current certificate as `pending`, so a crash
/// between the rename and the state save still leaves its revocation owed. Keeps an entry
/// already pending for the file (an interrupted run's), whose serial is the superseded one.
/// A certificate for another CN is not recorded; the returned note says so.
pub fn before_issue(
    list: &mut Vec<Revocation>,
    spec: &IssueSpec,
    window: Duration,
) -> Result<Option<String>, RotateError> {
    let path = spec.cert.display().to_string();
    if list
        .iter()
        .any(|r| r.path == path && r.status == RevokeStatus::Pending)
    {
        return Ok(None);
    }
    let Some(id) = cert_id_of(&spec.cert)? else {
        return Ok(None);
    };
    if let Some(note) = foreign(&id, spec) {
        return Ok(Some(note));
    }
    list.push(Revocation {
        path,
        mount: spec.mount.clone(),
        serial: id.serial,
        sha256: id.sha256,
        new_serial: None,
        new_sha256: None,
        after_seconds: window.as_secs(),
        status: RevokeStatus::Pending,
        served_at: None,
        due_unix: None,
        revoked_at: None,
        attempts: 0,
        message: None,
    });
    Ok(None)
}

/// After an issue action succeeded: the pending entry of its file becomes `owed` when the file
/// now holds another certificate (its index is returned), and is dropped when it does not.
pub fn after_issue(
    list: &mut Vec<Revocation>,
    spec: &IssueSpec,
) -> Result<Option<usize>, RotateError> {
    let path = spec.cert.display().to_string();
    let Some(i) = list
        .iter()
        .position(|r| r.path == path && r.status == RevokeStatus::Pending)
    else {
        return Ok(None);
    };
    match cert_id_of(&spec.cert)? {
        Some(id) if id.sha256 != list[i].sha256 => {
            let r = &mut list[i];
            r.new_serial = Some(id.serial);
            r.new_sha256 = Some(id.sha256);
            r.status = RevokeStatus::Owed;
            Ok(Some(i))
        }
        _ => {
            list.remove(i);
            Ok(None)
        }
    }
}

/// Marks an owed revocation served now; it is due once its window has passed (rounded up
/// to the next whole second, so the window is never shortened).
pub fn mark_served(r: &mut Revocation) {
    r.status = RevokeStatus::Served;
    r.served_at = Some(now());
    let due_ms = unix_now_ms() + r.after_seconds as i64 * 1000;
    r.due_unix = Some((due_ms + 999).div_euclid(1000));
    r.message = None;
}

/// The successor was not (or no longer) seen served: owed again, with why.
pub fn mark_unserved(r: &mut Revocation, stage: &str) {
    r.status = RevokeStatus::Owed;
    r.served_at = None;
    r.due_unix = None;
    r.message = Some(format!(
        "not revoked: no check of stage {stage} presented the new certificate (serial {}) as its leaf; reload the service (or add a tls check with serves_file: {} to the stage), then re-run the plan",
        r.new_serial.as_deref().unwrap_or("?"),
        r.path
    ));
}

/// One line naming a revocation, for output.
pub fn describe(r: &Revocation) -> String {
    format!(
        "serial {} of {} (superseded by {}) at {}/revoke",
        r.serial,
        r.path,
        r.new_serial.as_deref().unwrap_or("?"),
        r.mount
    )
}

/// `POST <mount>/revoke`; the revocation time Vault reports, and its warnings.
pub async fn send(
    vault: &VaultIo,
    mount: &str,
    serial: &str,
) -> Result<(String, Vec<String>), RotateError> {
    let path = format!("{mount}/revoke");
    let body = json!({ "serial_number": vault_serial(serial) });
    let answer = vault.write(&path, &body).await?;
    let time = answer
        .pointer("/data/revocation_time_rfc3339")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(now);
    Ok((time, super::ctx::warnings(&answer)))
}

/// Waits until `due_unix` (seconds), saying so.
pub async fn wait_until(due_unix: i64, what: &str, out: &mut Out) {
    let left = due_unix.saturating_mul(1000) - unix_now_ms();
    if left > 0 {
        wait(Duration::from_millis(left as u64), what, out).await;
    }
}

/// Waits out (the rest of) an overlap window, saying so.
async fn wait(d: Duration, what: &str, out: &mut Out) {
    out.line(format!(
        "waiting {} for the overlap window before revoking {what}",
        crate::human::duration(d)
    ));
    tokio::time::sleep(d).await;
}

/// Where a standalone `rotate issue` looks for its new certificate being served.
#[derive(Debug, Clone)]
pub struct ServedAt {
    /// `host:port`.
    pub addr: String,
    pub server_name: Option<String>,
    /// How long to wait for the listener to serve the new certificate.
    pub wait: Duration,
}

/// A one-check suite probing `served.addr` for the certificate in `cert` (`serves_file`).
fn served_suite(served: &ServedAt, cert: &Path) -> Result<Arc<Suite>, String> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let name = served
        .server_name
        .as_deref()
        .map(|n| format!(", server_name: {}", q(n)))
        .unwrap_or_default();
    let text = format!(
        "suite: rotate-issue\nchecks:\n  - name: served\n    tls: {{ addr: {}{name} }}\n    expect: {{ serves_file: {} }}\n",
        q(&served.addr),
        q(&cert.display().to_string())
    );
    let here = std::env::current_dir().unwrap_or_default();
    crate::suite::load_str(&text, &here.join("rotate-issue.yaml"))
        .map(Arc::new)
        .map_err(|e| format!("--served-at {}: {e}", served.addr))
}

/// Probes the listener (re-trying for up to `wait`); true when it serves `sha256`.
pub async fn probe_served(
    served: &ServedAt,
    cert: &Path,
    sha256: &str,
    wait: Duration,
) -> Result<bool, String> {
    let suite = served_suite(served, cert)?;
    let checks: Vec<_> = suite.file.checks.iter().collect();
    let opts = crate::engine::RunOptions::default();
    let report =
        crate::engine::run_with_wait(&suite, &checks, &opts, wait, Duration::from_secs(1)).await;
    Ok(served_in(&report, sha256))
}

/// After a standalone `rotate issue --revoke-previous-after W --served-at ADDR`: when the
/// certificate was replaced, waits for ADDR to serve the new one, then for the window, checks
/// once more that it is served, and revokes the old serial. An error says what stays owed.
pub async fn standalone(
    spec: &IssueSpec,
    served: &ServedAt,
    window: Duration,
    settings: &crate::vault::Settings,
    done: &super::ctx::Done,
    trail: Option<&Trail>,
    out: &mut Out,
) -> Result<(), String> {
    let path = spec.cert.display().to_string();
    let change = done.certs.iter().find(|c| c.path == path);
    let (Some(old), Some(new)) = (
        change.and_then(|c| c.old.as_ref()),
        change.and_then(|c| c.new.as_ref()),
    ) else {
        out.line(format!(
            "nothing to revoke: {path} held no earlier certificate or was not replaced"
        ));
        return Ok(());
    };
    if let Some(note) = foreign(old, spec) {
        return Err(note);
    }
    let note = |from: &str, to: &str, msg: Option<&str>, out: &mut Out| {
        if let Some(t) = trail {
            t.note(spec, (old, new), (from, to), msg, out);
        }
    };
    note("pending", "owed", None, out);
    let owed = |why: String| {
        format!(
            "{why}; not revoked: serial {} stays valid; reload the service, then revoke it (`bao write {}/revoke serial_number={}`)",
            old.serial,
            spec.mount,
            vault_serial(&old.serial)
        )
    };
    out.line(format!(
        "waiting up to {} for {} to serve the new certificate (serial {})",
        crate::human::duration(served.wait),
        served.addr,
        new.serial
    ));
    if !probe_served(served, &spec.cert, &new.sha256, served.wait).await? {
        let why = format!(
            "{} does not serve the new certificate (serial {}) after {}",
            served.addr,
            new.serial,
            crate::human::duration(served.wait)
        );
        return Err(owed(why));
    }
    out.line(format!(
        "{} serves the new certificate (serial {})",
        served.addr, new.serial
    ));
    note("owed", "served", None, out);
    wait(window, &format!("serial {}", old.serial), out).await;
    if !probe_served(served, &spec.cert, &new.sha256, Duration::ZERO).await? {
        return Err(owed(format!(
            "{} no longer serves the new certificate",
            served.addr
        )));
    }
    let vault = VaultIo::new(settings).map_err(|e| e.to_string())?;
    let sent = send(&vault, &spec.mount, &old.serial).await;
    for e in vault.close().await {
        out.line(format!("warning: {e}"));
    }
    let (time, warnings) = match sent {
        Ok(x) => x,
        Err(e) => {
            let msg = owed(format!("{}/revoke failed: {e}", spec.mount));
            note("served", "revoke_failed", Some(&msg), out);
            return Err(msg);
        }
    };
    note("served", "revoked", None, out);
    warnings
        .iter()
        .for_each(|w| out.line(format!("Vault warns: {w}")));
    out.line(format!(
        "revoked serial {} (superseded by {}) at {}/revoke, revocation time {time}",
        old.serial, new.serial, spec.mount
    ));
    Ok(())
}

/// The audit trail of a standalone `rotate issue -c SUITE` whose suite has a plan: its
/// revocation transitions go to the plan's audit log, by a person.
pub struct Trail {
    pub log: super::audit::AuditLog,
    pub suite: String,
    pub run_id: String,
}

impl Trail {
    /// The trail for a suite with a plan, else none.
    pub fn for_suite(config: &Path) -> Option<Trail> {
        let suite = crate::suite::load(config).ok()?;
        let plan = super::plan::parse(&suite).ok()??;
        let t = now();
        Some(Trail {
            log: super::audit::AuditLog::acting_as(
                &plan.audit_log,
                super::audit::ActorKind::Person,
            ),
            run_id: format!("issue-{}-{}", t.replace([':', '.'], ""), std::process::id()),
            suite: suite.file.suite,
        })
    }

    /// Appends one revocation transition; a failure to append is printed as a warning.
    fn note(
        &self,
        spec: &IssueSpec,
        (old, new): (&CertId, &CertId),
        from_to: (&str, &str),
        msg: Option<&str>,
        out: &mut Out,
    ) {
        use super::audit::{Event, Serial, Subject};
        let id = format!("{}:{}", spec.mount, old.serial);
        let about = Subject {
            target: format!("revocation:{id}"),
            secret_id: Some(id),
        };
        let path = spec.cert.display().to_string();
        let mut e = Event::now(&self.log, (&self.suite, &self.run_id), from_to);
        e.serials = vec![Serial {
            path: &path,
            old_serial: Some(&old.serial),
            new_serial: Some(&new.serial),
            old_sha256: Some(&old.sha256),
            new_sha256: Some(&new.sha256),
        }];
        e.message = msg;
        if let Err(err) = self.log.append_about(&e, &about) {
            out.line(format!("warning: {err}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_take_vaults_colon_form() {
        assert_eq!(vault_serial("1F0a"), "1f:0a");
        assert_eq!(vault_serial("abc"), "0a:bc");
        assert_eq!(vault_serial("00"), "00");
    }
}
