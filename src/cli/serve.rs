//! `rotcheck serve` (placeholder until the exporter work lands).

/// Arguments of `rotcheck serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {}

/// Runs the exporter.
pub fn run(_a: ServeArgs) -> u8 {
    2
}
