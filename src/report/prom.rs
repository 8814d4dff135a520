//! `--format prom`: the exporter's metric families in the Prometheus text format, for
//! node_exporter's textfile collector. The families are built by `exporter::metrics`, the
//! code `serve` uses, so the names cannot diverge.

use crate::model::Report;

/// Renders the report.
pub fn render(report: &Report) -> String {
    crate::exporter::metrics::render_report(report)
}
