//! TAP version 13 (what Perl's `prove` and most consumers read; `prove` refuses "version 14"):
//! the plan, `ok`/`not ok` per check (a warning is `ok ... # warn`), and a YAML diagnostics
//! block with the non-passing assertions; a summary comment closes it.

use crate::model::{Assertion, CheckResult, Report, Status};
use std::fmt::Write;

/// Renders the report as a TAP 13 stream, redacted; the run's warnings are comment lines.
pub fn render(report: &Report) -> String {
    let mut s = format!("TAP version 13\n1..{}\n", report.checks.len());
    for (i, c) in report.checks.iter().enumerate() {
        test_line(&mut s, i + 1, c);
        if c.status != Status::Pass {
            diagnostics(&mut s, c);
        }
    }
    for w in &report.warnings {
        let _ = writeln!(s, "# warning: {}", w.replace(['\n', '\r'], " "));
    }
    let _ = writeln!(s, "# {}", super::human::summary(report));
    crate::redact::redact(&s)
}

fn test_line(s: &mut String, n: usize, c: &CheckResult) {
    let ok = match c.status {
        Status::Pass | Status::Warn => "ok",
        Status::Fail | Status::Error => "not ok",
    };
    let name = c.name.replace('\\', "\\\\").replace('#', "\\#");
    let warn = if c.status == Status::Warn {
        " # warn"
    } else {
        ""
    };
    let _ = writeln!(s, "{ok} {n} - {name}{warn}");
}

/// The YAML block: status, stage, kind, duration, the probe error and failing assertions.
fn diagnostics(s: &mut String, c: &CheckResult) {
    s.push_str("  ---\n");
    let _ = writeln!(s, "  status: {}", c.status.as_str());
    let _ = writeln!(s, "  stage: {}", quoted(&c.stage));
    let _ = writeln!(s, "  kind: {}", quoted(&c.kind));
    let _ = writeln!(
        s,
        "  duration_seconds: {:.3}",
        c.duration_seconds.as_secs_f64()
    );
    if let Some(e) = &c.error {
        let _ = writeln!(s, "  error:");
        let _ = writeln!(s, "    class: {}", quoted(&e.class));
        let _ = writeln!(s, "    message: {}", quoted(&e.message));
    }
    let bad: Vec<&Assertion> = c
        .assertions
        .iter()
        .filter(|a| a.status != Status::Pass)
        .collect();
    if !bad.is_empty() {
        s.push_str("  assertions:\n");
        bad.iter().for_each(|a| assertion(s, a));
    }
    s.push_str("  ...\n");
}

fn assertion(s: &mut String, a: &Assertion) {
    let reason = a.reason.as_deref().map(quoted);
    let _ = writeln!(s, "    - name: {}", quoted(&a.name));
    let _ = writeln!(s, "      status: {}", a.status.as_str());
    let _ = writeln!(s, "      reason: {}", reason.as_deref().unwrap_or("null"));
    let _ = writeln!(s, "      message: {}", quoted(&a.message));
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}
