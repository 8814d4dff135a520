//! A finished run as serve keeps it until the check's next run: its status, its duration and
//! its entry of the `/status` document (the gate's JSON), deflated. That is all `/status` and
//! the status-change log read, at a fraction of the size of the parsed result (every
//! certificate fact and assertion message as its own allocation).

use crate::model::{CheckResult, Report, Status};
use flate2::write::{DeflateDecoder, DeflateEncoder};
use std::io::Write;
use std::time::{Duration, SystemTime};

/// One check's latest result, compact.
#[derive(Debug)]
pub struct Stored {
    pub status: Status,
    pub duration: Duration,
    /// The result as pretty JSON, deflated.
    json: Box<[u8]>,
}

impl Stored {
    /// The compact form of `r`.
    pub fn new(r: &CheckResult) -> Self {
        let text = serde_json::to_string_pretty(r).unwrap_or_else(|e| unserialisable(&r.name, e));
        let mut z = DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing to a Vec cannot fail.
        let _ = z.write_all(text.as_bytes());
        let json = z.finish().unwrap_or_default().into_boxed_slice();
        Stored {
            status: r.status,
            duration: r.duration_seconds,
            json,
        }
    }

    /// The result's pretty JSON, as `serde_json::to_string_pretty` wrote it.
    pub fn json(&self) -> String {
        let mut z = DeflateDecoder::new(Vec::new());
        let _ = z.write_all(&self.json);
        let bytes = z.finish().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// Bytes held (the benchmark's memory notes).
    pub fn size(&self) -> usize {
        self.json.len()
    }
}

fn unserialisable(name: &str, e: serde_json::Error) -> String {
    let msg = serde_json::to_string(&format!("cannot serialise the result of {name}: {e}"));
    format!("{{\n  \"error\": {}\n}}", msg.unwrap_or_default())
}

/// The gate's JSON report (report/json.rs: pretty, a newline, redacted) of `suite` with the
/// given results, as of now: the report's own fields are serialised, the checks spliced in.
pub fn report_json(suite: &str, checks: &[&Stored]) -> String {
    let now = SystemTime::now();
    let head = Report {
        suite: suite.to_string(),
        status: checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass),
        started_at: now,
        duration_seconds: checks.iter().map(|c| c.duration).max().unwrap_or_default(),
        evaluated_at: None,
        evaluated_unix: 0,
        checks: vec![],
        warnings: vec![],
    };
    let mut doc = serde_json::to_string_pretty(&head).unwrap_or_default();
    if !checks.is_empty() {
        doc = splice(&doc, checks);
    }
    doc.push('\n');
    crate::redact::redact(&doc)
}

/// `doc` with its top-level `"checks": []` filled, each check indented one level deeper.
fn splice(doc: &str, checks: &[&Stored]) -> String {
    const EMPTY: &str = "\n  \"checks\": []";
    let Some(at) = doc.find(EMPTY) else {
        return doc.to_string();
    };
    let mut out = String::with_capacity(doc.len() + checks.len() * 2048);
    out.push_str(&doc[..at]);
    out.push_str("\n  \"checks\": [");
    for (i, c) in checks.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        // JSON strings hold no raw newline, so every line break is the printer's own.
        out.push_str(&c.json().replace('\n', "\n    "));
    }
    out.push_str("\n  ]");
    out.push_str(&doc[at + EMPTY.len()..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{cert, result};
    use crate::model::*;

    fn results() -> Vec<CheckResult> {
        let mut a = result("a", Status::Pass);
        a.certs = vec![cert("leaf", "l", "01", 0, 100)];
        a.assertions = vec![Assertion::pass("chain", "")];
        a.duration_seconds = Duration::from_millis(1500);
        let mut b = result("b", Status::Fail);
        b.error = Some(ProbeError::connect(FailureClass::Refused, "refused"));
        b.tags = vec!["edge".into()];
        vec![a, b]
    }

    /// The spliced document equals the gate's own rendering but for the clock fields.
    #[test]
    fn the_spliced_report_is_the_gates_json() {
        let rs = results();
        let stored: Vec<Stored> = rs.iter().map(Stored::new).collect();
        let refs: Vec<&Stored> = stored.iter().collect();
        let ours: serde_json::Value = serde_json::from_str(&report_json("p", &refs)).unwrap();
        let gate = crate::report::json::render(&super::super::status::report("p", rs));
        let gate: serde_json::Value = serde_json::from_str(&gate).unwrap();
        let drop_clock = |mut v: serde_json::Value| {
            v.as_object_mut().unwrap().remove("started_at");
            v
        };
        assert_eq!(drop_clock(ours.clone()), drop_clock(gate));
        assert_eq!(ours["status"], "fail");
        assert_eq!(ours["duration_seconds"], 1.5);
        assert_eq!(ours["checks"][1]["tags"][0], "edge");
    }

    #[test]
    fn an_empty_report_and_a_redacted_one() {
        let empty: serde_json::Value = serde_json::from_str(&report_json("p", &[])).unwrap();
        assert_eq!(empty["checks"], serde_json::json!([]));
        let mut r = result("a", Status::Fail);
        r.assertions = vec![Assertion::fail(
            "mode:hvs.CAESIJ0123456789abcdefghijklmnop",
            "mode",
            "x",
        )];
        let s = Stored::new(&r);
        assert!(s.size() < s.json().len());
        let doc = report_json("p", &[&s]);
        assert!(!doc.contains("CAESIJ0123456789"), "{doc}");
    }
}
