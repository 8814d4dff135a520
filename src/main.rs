//! The `rotcheck` command line: parses arguments, dispatches, maps results to exit codes.

use clap::{CommandFactory, Parser, Subcommand};
use rotcheck::cli;
use std::process::ExitCode;

/// Verifies certificate and secret rotations.
#[derive(Parser)]
#[command(name = "rotcheck", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a suite once; exit 0 pass, 1 fail, 2 usage or suite error.
    Gate(cli::gate::GateArgs),
    /// Load and validate a suite; exit 0 valid, 2 invalid.
    Lint(cli::suite_cmds::SuiteArg),
    /// List a suite's checks and stages.
    List(cli::suite_cmds::SuiteArg),
    /// Verify a certificate against a CA file per client (OpenSSL, Go, rustls); exit 0 when
    /// every selected client accepts, 1 otherwise, 2 usage.
    Verify(cli::verify::VerifyArgs),
    /// Describe every certificate in a file or served by HOST:PORT.
    Inspect(cli::inspect::InspectArgs),
    /// Run the suite continuously and serve Prometheus metrics.
    Serve(cli::serve::ServeArgs),
    /// Perform rotation steps: issue, cert-role, pki-role, trust, reload, plan.
    #[command(subcommand)]
    Rotate(cli::rotate::RotateCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cli::completions::CompletionsArgs),
    /// Print the manual page, or write one per subcommand with --out-dir.
    Man(cli::man::ManArgs),
}

fn main() -> ExitCode {
    let args = match Cli::try_parse() {
        Ok(a) => a,
        Err(e) => return usage(e),
    };
    let code = match args.command {
        Command::Gate(a) => cli::gate::run(a),
        Command::Lint(a) => cli::suite_cmds::lint(a),
        Command::List(a) => cli::suite_cmds::list(a),
        Command::Verify(a) => cli::verify::run(a),
        Command::Inspect(a) => cli::inspect::run(a),
        Command::Serve(a) => cli::serve::run(a),
        Command::Rotate(c) => cli::rotate::run(c),
        Command::Completions(a) => cli::completions::run(a, Cli::command()),
        Command::Man(a) => cli::man::run(a, Cli::command()),
    };
    ExitCode::from(code)
}

/// `--help` and `--version` print as clap prints them; a usage error (which echoes the
/// arguments given, a token among them perhaps) is redacted before it reaches stderr.
fn usage(e: clap::Error) -> ExitCode {
    if !e.use_stderr() {
        e.exit();
    }
    let text = rotcheck::redact::redact(&e.render().to_string());
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}
