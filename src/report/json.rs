//! JSON format: one document in DESIGN.md's schema.

use crate::model::Report;

/// Renders the report as pretty JSON followed by a newline, redacted.
pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"));
    s.push('\n');
    crate::redact::redact(&s)
}
