//! human format (placeholder until the reports work lands).
use crate::model::Report;

/// Renders the report.
pub fn render(report: &Report, _color: bool) -> String {
    let _ = report;
    String::new()
}
