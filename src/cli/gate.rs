//! `rotcheck gate`: run the selected checks once (or until they pass) and exit 0/1/2.

use super::{emit, error, parse_at, parse_interval, parse_wait, EXIT_USAGE};
use crate::engine::{self, Attempt, RunOptions, Selection, Wait};
use crate::report::{self, Format, RenderOptions};
use crate::suite;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

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
    let rts = match Runtimes::start(checks.len()) {
        Ok(rts) => rts,
        Err(e) => {
            error(format!("cannot start the runtime: {e}"));
            return EXIT_USAGE;
        }
    };
    let opts = RunOptions {
        concurrency: a.concurrency,
        at: a.at,
        spread: rts.handles(),
    };
    let report = rts.main.block_on(async {
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
    rts.stop();
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

/// The gate's runtimes: this thread's and one more current-thread runtime per further core
/// (at most [`MAX_THREADS`] in all), each on its own thread. The engine deals its lanes of
/// checks over them ([`crate::engine::RunOptions::spread`]); a check stays on the runtime
/// it started on, so a TLS check's crypto runs on every core without tasks or wake-ups
/// moving between threads.
struct Runtimes {
    main: tokio::runtime::Runtime,
    /// The other runtimes' handles; dropping a stop sender ends its thread.
    others: Vec<(Handle, oneshot::Sender<()>)>,
}

/// Threads that run checks at most, however many cores the machine has.
const MAX_THREADS: usize = 4;

impl Runtimes {
    /// Runtimes for `checks` checks: no more threads than cores or checks.
    fn start(checks: usize) -> std::io::Result<Runtimes> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.min(checks).min(MAX_THREADS);
        let others = (1..threads)
            .map(|_| other_runtime())
            .collect::<std::io::Result<_>>()?;
        Ok(Runtimes {
            main: super::runtime()?,
            others,
        })
    }

    /// Every runtime's handle, this thread's first; none when this thread is the only one
    /// (the engine then runs every check here).
    fn handles(&self) -> Vec<Handle> {
        if self.others.is_empty() {
            return vec![];
        }
        let others = self.others.iter().map(|(h, _)| h.clone());
        std::iter::once(self.main.handle().clone())
            .chain(others)
            .collect()
    }

    /// Stops every runtime without waiting for a read stuck on a hung filesystem: it must
    /// not keep the process alive after its check timed out.
    fn stop(self) {
        drop(self.others);
        self.main.shutdown_background();
    }
}

/// A current-thread runtime driven by a thread of its own until its stop sender is dropped.
fn other_runtime() -> std::io::Result<(Handle, oneshot::Sender<()>)> {
    let rt = super::runtime()?;
    let handle = rt.handle().clone();
    let (stop, stopped) = oneshot::channel();
    std::thread::Builder::new()
        .name("rotcheck-checks".into())
        .spawn(move || {
            let _ = rt.block_on(stopped);
            rt.shutdown_background();
        })?;
    Ok((handle, stop))
}
