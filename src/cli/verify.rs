//! `rotcheck verify` (placeholder until the TLS work lands).

/// Arguments of `rotcheck verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {}

/// Runs verify.
pub fn run(_a: VerifyArgs) -> u8 {
    2
}
