//! `rotcheck gate`: run the selected checks once (or until they pass) and exit 0/1/2.

use super::{emit, error, parse_at, parse_interval, parse_wait, EXIT_USAGE};
use crate::engine::{self, Attempt, RunOptions, Selection, Wait};
use crate::report::{self, Format, RenderOptions};
use crate::suite;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Arguments of `rotcheck gate`.
#[derive(clap::Args, Debug)]
pub struct GateArgs {
    /// The suite file.
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Only checks of this stage (repeatable).
    #[arg(long = "stage")]
    pub stages: Vec<String>,
    /// Only this check (repeatable).
    #[arg(long = "check")]
    pub checks: Vec<String>,
    /// Only checks with this tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Write the output to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Re-run failing checks until all pass or this much time has passed (e.g. 60s); each
    /// attempt prints one progress line on stderr.
    #[arg(long, value_parser = parse_wait)]
    pub wait: Option<std::time::Duration>,
    /// Pause between re-runs with --wait.
    #[arg(long, value_parser = parse_interval, default_value = "2s")]
    pub interval: std::time::Duration,
    /// Warnings fail the gate too.
    #[arg(long)]
    pub strict: bool,
    /// Evaluate time-based expectations at this RFC 3339 instant.
    #[arg(long, value_parser = parse_at)]
    pub at: Option<std::time::SystemTime>,
    /// Checks run at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

/// Runs the gate; returns the exit code.
pub fn run(a: GateArgs) -> u8 {
    let suite = match suite::load(&a.config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error(e);
            return EXIT_USAGE;
        }
    };
    let sel = Selection {
        stages: a.stages.clone(),
        checks: a.checks.clone(),
        tags: a.tags.clone(),
    };
    let checks = match sel.select(&suite) {
        Ok(c) => c,
        Err(e) => {
            error(e);
            return EXIT_USAGE;
        }
    };
    if let Some(Err(e)) = a.output.as_deref().map(output_folder) {
        error(e);
        return EXIT_USAGE;
    }
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            error(format!("cannot start the runtime: {e}"));
            return EXIT_USAGE;
        }
    };
    let opts = RunOptions {
        concurrency: a.concurrency,
        at: a.at,
    };
    let report = rt.block_on(async {
        match a.wait {
            Some(wait) => {
                let wait = Wait {
                    wait,
                    interval: a.interval,
                };
                engine::run_with_progress(&suite, &checks, &opts, wait, &mut show_attempt).await
            }
            None => engine::run(&suite, &checks, &opts).await,
        }
    });
    // A read stuck on a hung filesystem must not keep the process alive after its timeout.
    rt.shutdown_background();
    let color = a.output.is_none()
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let text = report::render(&report, a.format, RenderOptions { color });
    // The human report shows the run's warnings; other formats and files get them on stderr.
    if a.format != report::Format::Human || a.output.is_some() {
        report.warnings.iter().for_each(super::warning);
    }
    if let Err(e) = emit(&text, a.output.as_deref()) {
        error(e);
        return EXIT_USAGE;
    }
    report.exit_code(a.strict) as u8
}

/// Refuses an `--output` whose folder does not exist before anything is probed.
fn output_folder(path: &Path) -> Result<(), String> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if folder.is_dir() {
        return Ok(());
    }
    Err(format!(
        "cannot write the output to {}: the folder {} does not exist; create it or pass \
         another --output",
        path.display(),
        folder.display()
    ))
}

/// One `--wait` progress line on stderr: attempt, elapsed time, the checks still failing.
fn show_attempt(a: &Attempt) {
    let _ = writeln!(std::io::stderr(), "rotcheck: {}", report::progress::line(a));
}
