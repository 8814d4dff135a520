//! `rotcheck lint` and `rotcheck list`.

use super::{error, EXIT_USAGE};
use crate::suite;
use std::path::PathBuf;

/// `-c FILE`.
#[derive(clap::Args)]
pub struct SuiteArg {
    /// The suite file.
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
}

/// Loads and validates the suite and its plan; exit 0 or 2.
pub fn lint(a: SuiteArg) -> u8 {
    let loaded = suite::load(&a.config)
        .map_err(|e| e.to_string())
        .and_then(|s| {
            crate::rotate::plan::parse(&s)
                .map_err(|e| e.to_string())
                .map(|_| s)
        });
    match loaded {
        Ok(s) => {
            println!(
                "{}: ok: suite {:?}, {} checks",
                a.config.display(),
                s.file.suite,
                s.file.checks.len()
            );
            0
        }
        Err(e) => {
            error(e);
            EXIT_USAGE
        }
    }
}

/// Prints one line per check: stage, name, kind, tags.
pub fn list(a: SuiteArg) -> u8 {
    let s = match suite::load(&a.config) {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return EXIT_USAGE;
        }
    };
    println!("suite {}", s.file.suite);
    for stage in crate::engine::stages(&s) {
        println!("stage {stage}");
        for c in s.file.checks.iter().filter(|c| c.stage_name() == stage) {
            let tags = if c.tags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", c.tags.join(","))
            };
            println!("  {:<32} {}{}", c.name, c.kind_name(), tags);
        }
    }
    0
}
