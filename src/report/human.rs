//! Human output: one line per check (status, name, stage, kind, duration), the details of
//! every non-passing assertion indented under it, certificate facts for failing TLS checks,
//! then a summary line. ANSI colour only when asked for. `render_all` lists passing
//! assertions too (serve's `/probe?debug=true`).

use crate::model::{Assertion, CertFacts, CheckResult, Report, Status};
use std::fmt::Write;

/// Indent of the detail lines under a check.
const INDENT: &str = "      ";

/// Renders the report, redacted; `color` adds ANSI colour to the status words.
pub fn render(report: &Report, color: bool) -> String {
    render_with(report, Paint(color), false)
}

/// The same without colour, listing every assertion (passing ones too) and every
/// certificate: what serve's `/probe?debug=true` answers.
pub fn render_all(report: &Report) -> String {
    render_with(report, Paint(false), true)
}

fn render_with(report: &Report, paint: Paint, every: bool) -> String {
    let widths = Widths::of(&report.checks);
    let mut s = String::new();
    for c in &report.checks {
        check_line(&mut s, c, &widths, paint);
        details(&mut s, c, paint, every);
    }
    for w in &report.warnings {
        let word = paint.status(Status::Warn, "warning");
        let _ = writeln!(s, "{word}: {}", clean(w));
    }
    s.push_str(&summary(report));
    s.push('\n');
    crate::redact::redact(&s)
}

/// `12 checks: 10 pass, 1 warn, 1 fail, 0 error in 0.84s` (and the `--at` instant, if any).
pub fn summary(report: &Report) -> String {
    let n = report.checks.len();
    let counts: Vec<String> = Status::ALL
        .iter()
        .map(|st| {
            let k = report.checks.iter().filter(|c| c.status == *st).count();
            format!("{k} {}", st.as_str())
        })
        .collect();
    let plural = if n == 1 { "" } else { "s" };
    let took = crate::human::duration(report.duration_seconds);
    let mut s = format!("{n} check{plural}: {} in {took}", counts.join(", "));
    if let Some(at) = &report.evaluated_at {
        let _ = write!(s, " (evaluated at {at})");
    }
    s
}

/// Column widths so the check lines line up.
struct Widths {
    name: usize,
    stage: usize,
    kind: usize,
}

impl Widths {
    fn of(checks: &[CheckResult]) -> Widths {
        let max = |f: fn(&CheckResult) -> usize| checks.iter().map(f).max().unwrap_or(0);
        Widths {
            name: max(|c| c.name.len()),
            stage: max(|c| c.stage.len()),
            kind: max(|c| c.kind.len()),
        }
    }
}

fn check_line(s: &mut String, c: &CheckResult, w: &Widths, paint: Paint) {
    let status = paint.status(c.status, &format!("{:<5}", upper(c.status)));
    let took = crate::human::duration(c.duration_seconds);
    let _ = writeln!(
        s,
        "{status}  {:<nw$}  {:<sw$}  {:<kw$}  {took}",
        c.name,
        c.stage,
        c.kind,
        nw = w.name,
        sw = w.stage,
        kw = w.kind
    );
}

fn upper(st: Status) -> String {
    st.as_str().to_ascii_uppercase()
}

fn details(s: &mut String, c: &CheckResult, paint: Paint, every: bool) {
    let bad: Vec<&Assertion> = c
        .assertions
        .iter()
        .filter(|a| every || a.status != Status::Pass)
        .collect();
    for a in &bad {
        assertion_line(s, a, paint);
    }
    if let Some(e) = c
        .error
        .as_ref()
        .filter(|e| !bad.iter().any(|a| a.message == e.message))
    {
        let word = paint.status(Status::Error, "error");
        let (class, msg) = (clean(&e.class), clean(&e.message));
        let _ = writeln!(s, "{INDENT}{word} ({class}): {msg}");
    }
    if c.kind == "tls" && (every || c.status != Status::Pass) {
        c.certs.iter().for_each(|cert| cert_line(s, cert));
    }
}

fn assertion_line(s: &mut String, a: &Assertion, paint: Paint) {
    let word = paint.status(a.status, a.status.as_str());
    let reason = a.reason.as_deref().unwrap_or("-");
    let (name, msg) = (clean(&a.name), clean(&a.message));
    let _ = writeln!(s, "{INDENT}{word} {name} ({}): {msg}", clean(reason));
}

fn cert_line(s: &mut String, c: &CertFacts) {
    let _ = writeln!(
        s,
        "{INDENT}cert {}: subject {}; issuer {}; not after {}",
        clean(&c.position),
        clean(&c.subject),
        clean(&c.issuer),
        c.not_after
    );
}

/// Control characters (a terminal escape in a certificate subject or command output)
/// become U+FFFD, so nothing a target sends can drive the terminal.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// ANSI colouring, or none.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn status(self, st: Status, text: &str) -> String {
        if !self.0 {
            return text.to_string();
        }
        let code = match st {
            Status::Pass => "32",
            Status::Warn => "33",
            Status::Fail => "31",
            Status::Error => "1;31",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}
