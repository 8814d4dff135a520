//! `rotcheck completions SHELL`: a shell completion script generated from the clap definitions.

use std::io::Write;

/// Arguments of `rotcheck completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script of `cmd` (the whole command line, subcommands included) for
/// the chosen shell on stdout; 0, or 1 when stdout cannot be written.
pub fn run(a: CompletionsArgs, mut cmd: clap::Command) -> u8 {
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, name, &mut script);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|_| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            super::error(format!("cannot write the completion script: {e}"));
            1
        }
    }
}
