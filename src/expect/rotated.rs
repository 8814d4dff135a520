//! `expect.rotated_after`: "it really rotated" — the served leaf is newer than an instant, or
//! is not the certificate a plan step replaced.
//!
//! Two shapes:
//! - `rotated_after: 2026-12-01T09:00:00Z` (RFC 3339 with a zone): the leaf's notBefore is at
//!   or after that instant.
//! - `rotated_after: {step: NAME}` (a step of the suite's `plan:`): the plan's state file
//!   (`plan.state_dir`, default `.rotcheck/<suite>/` beside the suite) records, per step, the
//!   certificates the step replaced (old) and wrote (new). The leaf must be one the step
//!   wrote; the one it replaced is `not_rotated`, any other is `unexpected_leaf`. Certificates
//!   are compared by SHA-256 fingerprint; messages name serials.
//!
//! Reasons: `not_rotated` (fail), `unexpected_leaf` (fail), `plan_not_run` (fail: no state
//! file, or the step has not run), `no_rotation_recorded` (warn: the step's last run found its
//! certificates current and replaced none), `config` (error: no plan or no such step),
//! `bad_state` and the file read classes (error: the state file cannot be used).

use crate::fsread::{self, ReadError};
use crate::kinds::Ctx;
use crate::model::{Assertion, CertFacts, Status};
use crate::rotate::material::CertId;
use crate::rotate::state::{PlanState, StepState, StepStatus};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::Path;

const NAME: &str = "rotated_after";
/// The largest state file read (as `rotate plan` itself allows).
const STATE_CAP: u64 = crate::rotate::safefs::MAX_STATE_BYTES;
/// Vault and OpenBao date a certificate this much before its issuance by default
/// (`not_before_duration`); an instant this close after the notBefore gets a hint.
const BACKDATE_HINT_SECS: i64 = 300;

/// What the served leaf must be newer than.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotatedAfter {
    /// An RFC 3339 instant, as written and as Unix seconds.
    Instant { text: String, unix: i64 },
    /// A step of the suite's plan.
    Step(String),
}

impl<'de> Deserialize<'de> for RotatedAfter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RotatedVisitor)
    }
}

struct RotatedVisitor;

/// `{step: NAME}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRef {
    step: String,
}

impl<'de> Visitor<'de> for RotatedVisitor {
    type Value = RotatedAfter;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an RFC 3339 instant (2026-12-01T00:00:00Z) or a plan step ({step: NAME})")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<RotatedAfter, E> {
        parse_instant(s).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RotatedAfter, A::Error> {
        let r = StepRef::deserialize(de::value::MapAccessDeserializer::new(map))?;
        if r.step.trim().is_empty() {
            return Err(de::Error::custom(
                "rotated_after: step is empty; name a step of the suite's plan, e.g. {step: server-tls}",
            ));
        }
        Ok(RotatedAfter::Step(r.step))
    }
}

/// Parses the instant form; the error says what is accepted.
pub fn parse_instant(s: &str) -> Result<RotatedAfter, String> {
    match crate::cli::at::parse_at(s) {
        Ok(t) => Ok(RotatedAfter::Instant {
            text: s.trim().to_string(),
            unix: unix(t),
        }),
        Err(_) if !s.bytes().any(|b| b.is_ascii_digit()) => Err(format!(
            "bad rotated_after {s:?}: a plan step is written {{step: {s}}}; an instant in RFC 3339 with a zone, e.g. 2026-12-01T00:00:00Z"
        )),
        Err(_) => Err(format!(
            "bad rotated_after {s:?}: write an RFC 3339 instant with a zone, e.g. 2026-12-01T00:00:00Z or 2026-12-01T09:00:00+01:00, or a plan step as {{step: NAME}}"
        )),
    }
}

fn unix(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Judges the served leaf against `want`.
pub fn assert_rotated(leaf: &CertFacts, want: &RotatedAfter, ctx: &Ctx) -> Assertion {
    match want {
        RotatedAfter::Instant { text, unix } => assert_instant(leaf, text, *unix),
        RotatedAfter::Step(step) => match step_record(ctx, step) {
            Ok((st, path)) => judge_step(leaf, &st, &path),
            Err(a) => a,
        },
    }
}

/// The leaf's notBefore must be at or after the instant.
pub fn assert_instant(leaf: &CertFacts, text: &str, at: i64) -> Assertion {
    if leaf.not_before_unix >= at {
        let msg = format!(
            "the leaf (serial {}) was issued at {}, not before {text}",
            leaf.serial, leaf.not_before
        );
        return Assertion::pass(NAME, msg);
    }
    let early = at - leaf.not_before_unix;
    let hint = match early <= BACKDATE_HINT_SECS {
        true => " (Vault and OpenBao backdate notBefore by 30 s by default: write an instant a minute before the rotation started)",
        false => "",
    };
    let msg = format!(
        "expected a leaf issued at or after {text}; found serial {}, not before {} ({} earlier): the certificate from before the rotation is still served; reload or restart the service, or check that the rotation ran{hint}",
        leaf.serial,
        leaf.not_before,
        crate::human::duration(std::time::Duration::from_secs(early as u64))
    );
    Assertion::fail(NAME, "not_rotated", msg)
}

fn not_ok(status: Status, reason: &str, message: String) -> Assertion {
    Assertion::not_ok(NAME, status, reason, message)
}

/// The state file's record of `step`, with the state file's path; or the assertion that
/// says why there is none.
fn step_record(ctx: &Ctx, step: &str) -> Result<(StepState, String), Assertion> {
    let plan = match crate::rotate::plan::parse(&ctx.suite) {
        Ok(Some(p)) => p,
        Ok(None) => {
            let msg = format!("rotated_after names plan step {step:?}, but the suite has no plan: section; add the plan, or write an RFC 3339 instant");
            return Err(not_ok(Status::Error, "config", msg));
        }
        Err(e) => {
            let msg = format!("rotated_after needs the suite's plan, which does not load: {e}");
            return Err(not_ok(Status::Error, "config", msg));
        }
    };
    if !plan.steps.iter().any(|s| s.name == step) {
        let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
        let msg = format!(
            "rotated_after names plan step {step:?}, which the plan does not have; its steps: {}",
            names.join(", ")
        );
        return Err(not_ok(Status::Error, "config", msg));
    }
    let path = crate::rotate::state::Paths::in_dir(&plan.state_dir).state;
    let state = load_state(&path, ctx)?;
    let shown = path.display().to_string();
    match state.steps.into_iter().find(|s| s.name == step) {
        Some(st) if st.status != StepStatus::Pending => Ok((st, shown)),
        _ => Err(not_ok(
            Status::Fail,
            "plan_not_run",
            format!("plan step {step:?} has not run yet (state file {shown}); run `rotcheck rotate plan -c {}` first", ctx.suite.path.display()),
        )),
    }
}

/// Reads the plan's state file (a regular file, size-capped).
fn load_state(path: &Path, ctx: &Ctx) -> Result<PlanState, Assertion> {
    let bytes = match fsread::read(path, STATE_CAP, "a plan state file") {
        Ok(b) => b,
        Err(ReadError::NotFound { .. }) => {
            let msg = format!(
                "no plan state file at {}: the plan has not run; run `rotcheck rotate plan -c {}` first",
                path.display(),
                ctx.suite.path.display()
            );
            return Err(not_ok(Status::Fail, "plan_not_run", msg));
        }
        Err(e) => return Err(not_ok(Status::Error, e.class(), e.to_string())),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        let msg = format!(
            "{}: not a rotcheck plan state file ({e}); expected the JSON `rotcheck rotate plan` writes; move it aside and run the plan again",
            path.display()
        );
        not_ok(Status::Error, "bad_state", msg)
    })
}

/// The leaf against what the step recorded: one it wrote passes, the one it replaced is
/// `not_rotated`, any other `unexpected_leaf`.
fn judge_step(leaf: &CertFacts, st: &StepState, state: &str) -> Assertion {
    let olds: Vec<&CertId> = st.certs.iter().filter_map(|c| c.old.as_ref()).collect();
    let news: Vec<&CertId> = st.certs.iter().filter_map(|c| c.new.as_ref()).collect();
    let when = st
        .finished_at
        .as_deref()
        .or(st.started_at.as_deref())
        .unwrap_or("an unknown time");
    if st.certs.is_empty() {
        let msg = format!(
            "plan step {:?} replaced no certificate in its last run ({}, {when}: they were current), so {state} holds no earlier serial to compare with; the served serial {} is not judged; use an RFC 3339 instant, or `rotate plan --force` to rotate",
            st.name,
            st.status.as_str(),
            leaf.serial
        );
        return not_ok(Status::Warn, "no_rotation_recorded", msg);
    }
    let is = |c: &&&CertId| c.sha256 == leaf.sha256;
    if let Some(new) = news.iter().find(is) {
        let replaced = match olds.is_empty() {
            true => "no earlier certificate".to_string(),
            false => serials(&olds),
        };
        let msg = format!(
            "serves serial {}, the certificate plan step {:?} wrote ({when}), replacing {replaced}",
            new.serial, st.name
        );
        return Assertion::pass(NAME, msg);
    }
    if let Some(old) = olds.iter().find(is) {
        let msg = format!(
            "expected a leaf other than serial {} (not after {}), which plan step {:?} replaced ({when}) with {}; found that old certificate still served: the service did not reload; reload or restart it, then gate again",
            old.serial, old.not_after, st.name, serials(&news)
        );
        return Assertion::fail(NAME, "not_rotated", msg);
    }
    if news.is_empty() {
        let msg = format!(
            "serves serial {}, not the {} plan step {:?} replaced ({when})",
            leaf.serial,
            serials(&olds),
            st.name
        );
        return Assertion::pass(NAME, msg);
    }
    let msg = format!(
        "expected the certificate plan step {:?} wrote ({when}): {}; found serial {} (not after {}), neither that nor the one it replaced: the listener serves another certificate, or it was rotated again outside the plan; check serves_file, re-run the step, or use an RFC 3339 instant",
        st.name,
        serials(&news),
        leaf.serial,
        leaf.not_after
    );
    Assertion::fail(NAME, "unexpected_leaf", msg)
}

/// `serial A` or `serials A, B`.
fn serials(ids: &[&CertId]) -> String {
    let s: Vec<&str> = ids.iter().map(|c| c.serial.as_str()).collect();
    match s.len() {
        1 => format!("serial {}", s[0]),
        _ => format!("serials {}", s.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::state::CertChange;

    fn parse(y: &str) -> Result<RotatedAfter, String> {
        serde_yaml_ng::from_str::<RotatedAfter>(y).map_err(|e| e.to_string())
    }

    fn facts(serial: &str, sha: &str, not_before_unix: i64) -> CertFacts {
        let mut f = crate::certs::facts(&[], "leaf");
        f.serial = serial.into();
        f.sha256 = sha.into();
        f.not_before_unix = not_before_unix;
        f.not_before = "then".into();
        f
    }

    fn id(serial: &str, sha: &str) -> CertId {
        CertId {
            serial: serial.into(),
            sha256: sha.into(),
            subject_cn: "x".into(),
            not_after: "later".into(),
        }
    }

    fn step(certs: Vec<CertChange>) -> StepState {
        let mut s = PlanState::fresh("t", &["s"]).steps.remove(0);
        s.status = StepStatus::Applied;
        s.certs = certs;
        s
    }

    fn change(old: Option<CertId>, new: Option<CertId>) -> CertChange {
        CertChange {
            path: "/x.crt".into(),
            old,
            new,
        }
    }

    #[test]
    fn an_instant_or_a_step_and_nothing_looser() {
        assert_eq!(
            parse("2026-12-01T00:00:00Z"),
            Ok(RotatedAfter::Instant {
                text: "2026-12-01T00:00:00Z".into(),
                unix: 1_796_083_200
            })
        );
        assert_eq!(
            parse("{step: server-tls}"),
            Ok(RotatedAfter::Step("server-tls".into()))
        );
        assert!(parse("server-tls")
            .unwrap_err()
            .contains("{step: server-tls}"));
        assert!(parse("2026-12-01").unwrap_err().contains("RFC 3339"));
        assert!(parse("{step: a, file: b}").unwrap_err().contains("file"));
        assert!(parse("{step: ''}").unwrap_err().contains("empty"));
        assert!(parse("[a]").is_err());
    }

    #[test]
    fn instant_compares_with_not_before() {
        let leaf = facts("0a", "aa", 1000);
        assert_eq!(assert_instant(&leaf, "t", 1000).status, Status::Pass);
        let late = assert_instant(&leaf, "t", 1030);
        assert_eq!(late.reason.as_deref(), Some("not_rotated"));
        assert!(late.message.contains("backdate"), "{}", late.message);
        let old = assert_instant(&leaf, "t", 100_000);
        assert!(!old.message.contains("backdate"), "{}", old.message);
    }

    #[test]
    fn a_step_passes_on_what_it_wrote_only() {
        let st = step(vec![change(Some(id("01", "old")), Some(id("02", "new")))]);
        let judge = |sha: &str| judge_step(&facts("ff", sha, 0), &st, "state.json");
        assert_eq!(judge("new").status, Status::Pass);
        assert_eq!(judge("old").reason.as_deref(), Some("not_rotated"));
        assert!(judge("old").message.contains("serial 01"));
        assert_eq!(judge("other").reason.as_deref(), Some("unexpected_leaf"));
        let none = judge_step(&facts("ff", "x", 0), &step(vec![]), "s");
        assert_eq!(
            (none.status, none.reason.as_deref()),
            (Status::Warn, Some("no_rotation_recorded"))
        );
        let first = step(vec![change(None, Some(id("02", "new")))]);
        let a = judge_step(&facts("02", "new", 0), &first, "s");
        assert!(
            a.message.contains("no earlier certificate"),
            "{}",
            a.message
        );
    }
}
