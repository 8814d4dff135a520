//! junit format (placeholder until the reports work lands).
use crate::model::Report;

/// Renders the report.
pub fn render(report: &Report) -> String {
    let _ = report;
    String::new()
}
