//! JUnit XML: one testsuite per suite, one testcase per check; fail → `<failure>`, error →
//! `<error>` (message = the first problem, type = its reason, body = every non-passing
//! assertion); warnings go to `<system-out>`, the run's own warnings to the suite's
//! `<system-err>`. Nothing is ever `<skipped>`. The document follows the Jenkins/Ant
//! junit-10 schema (tests/data/junit.xsd checks it); it is redacted last.

use crate::model::{Assertion, CheckResult, Report, Status};
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use std::borrow::Cow;
use std::io;

type Xml = Writer<Vec<u8>>;

/// Renders the report as a JUnit XML document.
pub fn render(report: &Report) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    if let Err(e) = document(&mut w, report) {
        return format!("<!-- cannot write the JUnit report: {e} -->\n");
    }
    let mut s = String::from_utf8_lossy(&w.into_inner()).into_owned();
    s.push('\n');
    crate::redact::redact(&s)
}

fn document(w: &mut Xml, r: &Report) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let counts = Counts::of(&r.checks);
    let time = secs(r.duration_seconds.as_secs_f64());
    w.create_element("testsuites")
        .with_attributes(counts.attrs(&time))
        .with_attribute(("name", "rotcheck"))
        .write_inner_content(|w| suite(w, r, &counts, &time))?;
    Ok(())
}

fn suite(w: &mut Xml, r: &Report, counts: &Counts, time: &str) -> io::Result<()> {
    let stamp = humantime::format_rfc3339_seconds(r.started_at).to_string();
    w.create_element("testsuite")
        .with_attribute(("name", clean(&r.suite).as_ref()))
        .with_attributes(counts.attrs(time))
        .with_attribute(("skipped", "0"))
        .with_attribute(("timestamp", stamp.as_str()))
        .write_inner_content(|w| {
            properties(w, r)?;
            r.checks.iter().try_for_each(|c| testcase(w, &r.suite, c))?;
            run_warnings(w, r)
        })?;
    Ok(())
}

/// The run's warnings (not tied to a check), one per line, in `<system-err>`.
fn run_warnings(w: &mut Xml, r: &Report) -> io::Result<()> {
    if r.warnings.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = r.warnings.iter().map(|l| format!("warning: {l}")).collect();
    let text = clean(&lines.join("\n")).into_owned();
    w.create_element("system-err")
        .write_text_content(BytesText::new(&text))?;
    Ok(())
}

/// `evaluated_at` (from `--at`) as a property, when set.
fn properties(w: &mut Xml, r: &Report) -> io::Result<()> {
    let Some(at) = &r.evaluated_at else {
        return Ok(());
    };
    w.create_element("properties").write_inner_content(|w| {
        w.create_element("property")
            .with_attribute(("name", "evaluated_at"))
            .with_attribute(("value", clean(at).as_ref()))
            .write_empty()?;
        Ok(())
    })?;
    Ok(())
}

fn testcase(w: &mut Xml, suite: &str, c: &CheckResult) -> io::Result<()> {
    let class = clean(&format!("{suite}.{}", c.stage)).into_owned();
    let time = secs(c.duration_seconds.as_secs_f64());
    let el = w
        .create_element("testcase")
        .with_attribute(("name", clean(&c.name).as_ref()))
        .with_attribute(("classname", class.as_str()))
        .with_attribute(("time", time.as_str()));
    if c.status == Status::Pass {
        el.write_empty()?;
        return Ok(());
    }
    el.write_inner_content(|w| outcome(w, c))?;
    Ok(())
}

fn outcome(w: &mut Xml, c: &CheckResult) -> io::Result<()> {
    let body = clean(&details(c)).into_owned();
    let tag = match c.status {
        Status::Fail => "failure",
        Status::Error => "error",
        _ => {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&body))?;
            return Ok(());
        }
    };
    // The first problem: the worst assertion, else the probe error.
    let (kind, message) = c.headline();
    w.create_element(tag)
        .with_attribute(("message", clean(&message).as_ref()))
        .with_attribute(("type", clean(kind).as_ref()))
        .write_text_content(BytesText::new(&body))?;
    Ok(())
}

/// One line per non-passing assertion, the probe error, and (for TLS) the certificates.
fn details(c: &CheckResult) -> String {
    let mut lines: Vec<String> = c
        .assertions
        .iter()
        .filter(|a| a.status != Status::Pass)
        .map(line)
        .collect();
    if let Some(e) = &c.error {
        lines.push(format!("error ({}): {}", e.class, e.message));
    }
    if c.kind == "tls" {
        lines.extend(c.certs.iter().map(|f| {
            let p = &f.position;
            format!(
                "cert {p}: subject {}; issuer {}; not after {}",
                f.subject, f.issuer, f.not_after
            )
        }));
    }
    lines.join("\n")
}

fn line(a: &Assertion) -> String {
    let reason = a.reason.as_deref().unwrap_or("-");
    format!("{} {} ({reason}): {}", a.status.as_str(), a.name, a.message)
}

/// Failure and error counts for the `testsuites`/`testsuite` attributes.
struct Counts {
    tests: String,
    failures: String,
    errors: String,
}

impl Counts {
    fn of(checks: &[CheckResult]) -> Counts {
        let n = |st: Status| checks.iter().filter(|c| c.status == st).count().to_string();
        Counts {
            tests: checks.len().to_string(),
            failures: n(Status::Fail),
            errors: n(Status::Error),
        }
    }

    /// The attributes `testsuites` and `testsuite` share (`skipped` is the suite's alone).
    fn attrs<'a>(&'a self, time: &'a str) -> [(&'a str, &'a str); 4] {
        [
            ("tests", self.tests.as_str()),
            ("failures", self.failures.as_str()),
            ("errors", self.errors.as_str()),
            ("time", time),
        ]
    }
}

fn secs(s: f64) -> String {
    format!("{s:.3}")
}

/// Replaces characters XML 1.0 cannot carry (control characters) with U+FFFD.
fn clean(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if bad(c) { '\u{fffd}' } else { c })
            .collect(),
    )
}
