//! `rotcheck rotate …` (placeholder until the rotate work lands).

/// The rotate subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum RotateCommand {
    /// Placeholder.
    Plan,
}

/// Runs a rotate subcommand.
pub fn run(_c: RotateCommand) -> u8 {
    2
}
