//! Status changes of serve's checks as log lines on stderr, in logfmt or JSON
//! (`--log-format`): check, from, to, reason token and message, redacted field by field and
//! again as a whole line.

use crate::model::{CheckResult, Status};
use std::fmt::Write as _;
use std::io::Write as _;

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, values quoted when they need it.
    #[default]
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// A check whose status differs from its previous run's (or whose first run did not pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub suite: String,
    pub check: String,
    /// `pending` before the check's first result.
    pub from: &'static str,
    pub to: Status,
    pub reason: String,
    pub message: String,
}

impl Transition {
    /// The change from `before` to `after`, if it is one worth a line: a different status, or
    /// a first result that did not pass.
    pub fn between(suite: &str, before: Option<Status>, after: &CheckResult) -> Option<Self> {
        let from = before;
        let changed = match from {
            Some(s) => s != after.status,
            None => after.status != Status::Pass,
        };
        if !changed {
            return None;
        }
        let (reason, message) = after.headline();
        Some(Transition {
            suite: suite.to_string(),
            check: after.name.clone(),
            from: from.map_or("pending", Status::as_str),
            to: after.status,
            reason: reason.to_string(),
            message: crate::redact::truncate(&message, 300),
        })
    }

    fn level(&self) -> &'static str {
        match self.to {
            Status::Pass => "info",
            _ => "warn",
        }
    }

    /// The fields of the line, in order.
    fn fields(&self, ts: &str) -> [(&'static str, String); 9] {
        [
            ("ts", ts.to_string()),
            ("level", self.level().to_string()),
            ("event", "status_change".to_string()),
            ("suite", self.suite.clone()),
            ("check", self.check.clone()),
            ("from", self.from.to_string()),
            ("to", self.to.as_str().to_string()),
            ("reason", self.reason.clone()),
            ("msg", self.message.clone()),
        ]
    }

    /// The line (without newline), redacted.
    pub fn render(&self, format: LogFormat, ts: &str) -> String {
        let fields = self.fields(ts);
        let line = match format {
            LogFormat::Logfmt => logfmt(&fields),
            LogFormat::Json => json(&fields),
        };
        crate::redact::redact(&line)
    }
}

fn logfmt(fields: &[(&str, String)]) -> String {
    let mut s = String::new();
    for (k, v) in fields {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{k}={}", logfmt_value(v));
    }
    s
}

/// Quoted (with `\"`, `\\` and control characters escaped) when empty or holding a space,
/// `=` or `"`; bare otherwise.
fn logfmt_value(v: &str) -> String {
    let bare = !v.is_empty()
        && !v
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || c.is_control());
    if bare {
        return v.to_string();
    }
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into())
}

fn json(fields: &[(&str, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Writes the transition to stderr as one line.
pub fn log(t: &Transition, format: LogFormat) {
    let ts = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let _ = writeln!(std::io::stderr(), "{}", t.render(format, &ts));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::result;
    use crate::model::Assertion;

    fn failing() -> CheckResult {
        let mut r = result("vault listener", Status::Fail);
        r.assertions = vec![Assertion::fail(
            "chain",
            "incomplete_chain",
            "server sent only the leaf; token hvs.ABCDEFGHIJKLMNOPQRSTUVWX",
        )];
        r
    }

    #[test]
    fn only_changes_and_failing_first_runs_are_transitions() {
        let pass = result("a", Status::Pass);
        assert_eq!(Transition::between("s", None, &pass), None);
        assert_eq!(Transition::between("s", Some(pass.status), &pass), None);
        let t = Transition::between("s", None, &failing()).unwrap();
        assert_eq!((t.from, t.to), ("pending", Status::Fail));
        let back = Transition::between("s", Some(failing().status), &pass).unwrap();
        assert_eq!((back.from, back.reason.as_str()), ("fail", "ok"));
    }

    #[test]
    fn lines_are_logfmt_or_json_and_redacted() {
        let t = Transition::between("prod", Some(Status::Pass), &failing()).unwrap();
        let line = t.render(LogFormat::Logfmt, "2026-01-01T00:00:00.000Z");
        assert!(
            line.starts_with("ts=2026-01-01T00:00:00.000Z level=warn event=status_change suite=prod check=\"vault listener\" from=pass to=fail reason=incomplete_chain msg=\"chain: server sent only the leaf; token hvs.[redacted]\""),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&t.render(LogFormat::Json, "t")).unwrap();
        assert_eq!(v["check"], "vault listener");
        assert_eq!(v["reason"], "incomplete_chain");
        assert!(!v["msg"].as_str().unwrap().contains("ABCDEFGH"));
    }
}
