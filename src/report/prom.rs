//! `--format prom`: the exporter's metric families in the Prometheus text format, for
//! node_exporter's textfile collector. The families are built by `metrics`, the
//! code `serve` uses, so the names cannot diverge.

use crate::model::Report;

/// Renders the report, redacted; the run's warnings become `# warning:` comment lines
/// (comments that the text format's parsers skip).
pub fn render(report: &Report) -> String {
    let mut s = crate::metrics::render_report(report);
    for w in &report.warnings {
        s.push_str(&format!("# warning: {}\n", one_line(w)));
    }
    crate::redact::redact(&s)
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
