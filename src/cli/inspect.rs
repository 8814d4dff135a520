//! `rotcheck inspect` (placeholder until the TLS work lands).

/// Arguments of `rotcheck inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {}

/// Runs inspect.
pub fn run(_a: InspectArgs) -> u8 {
    2
}
