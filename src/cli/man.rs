//! `rotcheck man`: manual pages generated from the clap definitions (clap_mangen), one per
//! command and subcommand (`rotcheck.1`, `rotcheck-gate.1`, `rotcheck-rotate-issue.1` …).

use crate::rotate::safefs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `rotcheck man`.
#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write every page (rotcheck.1 and one per subcommand) into this directory, created if
    /// missing; without it, print rotcheck.1 on stdout.
    #[arg(long = "out-dir", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// One rendered page: its file name and its roff text.
pub struct Page {
    pub file: String,
    pub roff: Vec<u8>,
}

/// Renders the page of `cmd` and of every visible subcommand below it, depth first, parents
/// before children. `cmd` is built first so each subcommand carries its full name
/// (`rotcheck-rotate-issue`).
pub fn pages(cmd: clap::Command) -> std::io::Result<Vec<Page>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, &mut out)?;
    Ok(out)
}

fn collect(cmd: &clap::Command, out: &mut Vec<Page>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone()).manual("rotcheck manual");
    let mut rendered = Vec::new();
    man.render(&mut rendered)?;
    out.push(Page {
        file: man.get_filename(),
        roff: ascii(&String::from_utf8_lossy(&rendered)).into_bytes(),
    });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, out)?;
    }
    Ok(())
}

/// The page with every non-ASCII character as a groff escape (`—` → `\[u2014]`), so it
/// renders the same whatever encoding `man` or `groff` assume for the input.
fn ascii(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    for c in roff.chars() {
        match c.is_ascii() {
            true => out.push(c),
            false => out.push_str(&format!("\\[u{:04X}]", u32::from(c))),
        }
    }
    out
}

/// Prints rotcheck.1, or writes every page into `--out-dir` (each replaced atomically; a
/// symlink at a page's path is refused, never written through). 0, or 1 on a write error.
pub fn run(a: ManArgs, cmd: clap::Command) -> u8 {
    let written = pages(cmd).map_err(|e| format!("cannot render the manual pages: {e}"));
    let written = written.and_then(|pages| match &a.out_dir {
        None => print(&pages[0].roff),
        Some(dir) => write_all(&pages, dir),
    });
    match written {
        Ok(()) => 0,
        Err(e) => {
            super::error(e);
            1
        }
    }
}

fn print(roff: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(roff)
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot write the manual page: {e}"))
}

fn write_all(pages: &[Page], dir: &Path) -> Result<(), String> {
    safefs::Dir::open(dir, true)
        .map_err(|e| format!("cannot create the directory for the manual pages: {e}"))?;
    for p in pages {
        safefs::replace(&dir.join(&p.file), &p.roff, 0o644).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_ascii_becomes_a_groff_escape() {
        assert_eq!(super::ascii("a \u{2014} b é"), "a \\[u2014] b \\[u00E9]");
    }
}
