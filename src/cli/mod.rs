//! Subcommand implementations. Each returns the process exit code.

pub mod at;
pub mod completions;
pub mod gate;
pub mod inspect;
pub mod man;
pub mod rotate;
pub mod serve;
pub mod suite_cmds;
pub mod verify;

pub use at::parse_at;

use crate::expect::chain::Client;
use std::io::Write;
use std::path::Path;

/// Exit code: usage or suite error, nothing probed.
pub const EXIT_USAGE: u8 = 2;

/// Prints `rotcheck: error: ...` to stderr, redacted.
pub fn error(msg: impl std::fmt::Display) {
    let msg = crate::redact::redact(&msg.to_string());
    let _ = writeln!(std::io::stderr(), "rotcheck: error: {msg}");
}

/// Prints `rotcheck: warning: ...` to stderr, redacted.
pub fn warning(msg: impl std::fmt::Display) {
    let msg = crate::redact::redact(&msg.to_string());
    let _ = writeln!(std::io::stderr(), "rotcheck: warning: {msg}");
}

/// The runtime of a one-shot command (gate, verify, inspect, rotate): one thread. Checks
/// are I/O-bound between short bursts of crypto; worker threads handing tasks to each other
/// cost more CPU than they save wall time (bench/tls_bench.py: 16% less CPU per
/// TLS check, a few per cent more wall time). File reads and DNS still go to the blocking pool.
/// `gate` with several checks adds one more such runtime per core and deals the checks over
/// them (`engine::spread`), so both cores are busy without work-stealing.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Writes output to a file (replacing it atomically through a fresh temp file with a random
/// name; a symlink, FIFO or device at the path is refused, never written through) or to
/// stdout. The error says where it could not write.
pub fn emit(text: &str, output: Option<&Path>) -> std::io::Result<()> {
    match output {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| std::io::Error::other(format!("cannot write the output: {e}")))
        }
        Some(p) => crate::rotate::safefs::replace(p, text.as_bytes(), 0o644).map_err(|e| {
            std::io::Error::other(format!("cannot write the output to {}: {e}", p.display()))
        }),
    }
}

/// Parses a timeout flag (more than zero, at most 1h).
pub fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    crate::suite::parse_timeout(s)
}

/// Parses an interval flag (more than zero, at most 24h).
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    crate::suite::parse_interval(s)
}

/// Parses a wait flag (zero to 24h).
pub fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    crate::suite::parse_wait(s)
}

/// A client family for `--client` (`verify`, `inspect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientArg {
    Openssl,
    Go,
    Rustls,
}

/// The families named by `--client`, in report order, each once; all three when none is.
pub fn clients(named: &[ClientArg]) -> Vec<Client> {
    let of = |c: &ClientArg| match c {
        ClientArg::Openssl => Client::Openssl,
        ClientArg::Go => Client::Go,
        ClientArg::Rustls => Client::Rustls,
    };
    let picked: Vec<Client> = named.iter().map(of).collect();
    Client::ALL
        .into_iter()
        .filter(|c| picked.is_empty() || picked.contains(c))
        .collect()
}
