//! Output formats. Each file only formats a `Report` (progress.rs: a `--wait` attempt);
//! nothing here probes. Every format's
//! `render` passes its finished text through `crate::redact` last.

pub mod human;
pub mod json;
pub mod junit;
pub mod progress;
pub mod prom;
pub mod tap;

use crate::model::Report;

/// The `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
    Tap,
    Prom,
}

/// Rendering switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// ANSI colour (only when writing to a terminal).
    pub color: bool,
}

/// Formats a report.
pub fn render(report: &Report, format: Format, opts: RenderOptions) -> String {
    match format {
        Format::Human => human::render(report, opts.color),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Tap => tap::render(report),
        Format::Prom => prom::render(report),
    }
}
