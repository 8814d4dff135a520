//! `command` checks: run an argv without a shell (env and cwd from the suite; a relative
//! program path with a `/` and a relative cwd resolve against the suite's folder), kill its
//! process group at the check's timeout, then judge `exit`, `stdout_contains`, `stdout_matches`.

use crate::kinds::{CheckKind, Ctx, Invalid};
use crate::model::{Assertion, Outcome, ProbeError, Status};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// `command`: run an argv (no shell). Written as a list (`[systemctl, --user, is-active, x]`)
/// or as a map with `argv`, `env`, `cwd`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandMap {
    argv: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
}

impl<'de> Deserialize<'de> for CommandSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_yaml_ng::Value::deserialize(d)?;
        let map = if v.is_sequence() {
            let argv = Vec::<String>::deserialize(v).map_err(D::Error::custom)?;
            CommandMap {
                argv,
                env: BTreeMap::new(),
                cwd: None,
            }
        } else {
            CommandMap::deserialize(v).map_err(D::Error::custom)?
        };
        if map.argv.is_empty() {
            return Err(D::Error::custom(
                "command needs at least the program: [prog, args...]",
            ));
        }
        Ok(CommandSpec {
            argv: map.argv,
            env: map.env,
            cwd: map.cwd,
        })
    }
}

/// What a `command` check may expect of the run.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CommandExpect {
    pub exit: Option<i32>,
    pub stdout_contains: Option<String>,
    pub stdout_matches: Option<String>,
}

/// The `command` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command;

impl CheckKind for Command {
    const NAME: &'static str = "command";
    type Spec = CommandSpec;
    type Expect = CommandExpect;

    fn validate(_spec: &CommandSpec, expect: &CommandExpect) -> Result<(), Invalid> {
        match &expect.stdout_matches {
            Some(re) => regex::Regex::new(re).map(drop).map_err(|e| {
                Invalid::new(
                    ".expect.stdout_matches",
                    format!("bad regular expression: {e}"),
                )
            }),
            None => Ok(()),
        }
    }

    async fn probe(spec: &CommandSpec, expect: &CommandExpect, ctx: &Ctx) -> Outcome {
        probe(spec, expect, ctx).await
    }
}

/// Most bytes kept of stdout and of stderr; the rest is read and dropped.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// Most characters of output quoted in a message.
const QUOTE_CHARS: usize = 200;

/// Why the command could not be run to completion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("{program}: program not found; expected an executable on PATH or at that path; install it or fix the check's argv")]
    NotFound { program: String },
    #[error("{program}: permission denied starting it; make it executable (chmod +x) or run rotcheck as a user allowed to")]
    PermissionDenied { program: String },
    #[error(
        "{program}: working directory {cwd} is not a directory; create it or fix the check's cwd"
    )]
    BadCwd { program: String, cwd: String },
    #[error("{program}: cannot start it: {detail}")]
    Spawn { program: String, detail: String },
    #[error("{program}: failed while waiting for it: {detail}")]
    Wait { program: String, detail: String },
    #[error("{program} did not finish within {after}; killed it; expected it to exit in time (is it waiting on a lock, the network or a prompt?)")]
    Timeout { program: String, after: String },
}

impl RunError {
    /// Stable reason token.
    pub fn class(&self) -> &'static str {
        match self {
            RunError::NotFound { .. } => "not_found",
            RunError::PermissionDenied { .. } => "permission_denied",
            RunError::BadCwd { .. } => "bad_cwd",
            RunError::Spawn { .. } => "spawn_failed",
            RunError::Wait { .. } => "wait_failed",
            RunError::Timeout { .. } => "timeout",
        }
    }

    /// A timeout fails the check (like the engine's); anything else could not be evaluated.
    fn status(&self) -> Status {
        match self {
            RunError::Timeout { .. } => Status::Fail,
            _ => Status::Error,
        }
    }
}

/// Captured output of one stream, cut at [`OUTPUT_CAP`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub text: String,
    pub truncated: bool,
}

/// A finished command.
#[derive(Debug, Clone)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Runs the command and evaluates the expectations.
pub async fn probe(spec: &CommandSpec, expect: &CommandExpect, ctx: &Ctx) -> Outcome {
    let mut out = Outcome::default();
    match run(spec, ctx).await {
        Ok(ran) => judge(spec, &ran, expect, &mut out),
        Err(err) => {
            let msg = err.to_string();
            out.error = Some(ProbeError::local(err.class(), msg.clone()));
            let run = Assertion::not_ok("run", err.status(), err.class(), msg);
            out.assertions.push(run);
        }
    }
    out
}

/// Spawns the argv in its own process group and waits, killing the group at `ctx.timeout`.
pub async fn run(spec: &CommandSpec, ctx: &Ctx) -> Result<Ran, RunError> {
    let program = spec.argv[0].clone();
    let mut child = command(spec, ctx)?
        .spawn()
        .map_err(|e| spawn_error(&program, &e))?;
    let pid = child.id();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let work = async { tokio::join!(capture(stdout), capture(stderr), child.wait()) };
    match tokio::time::timeout(ctx.timeout, work).await {
        Ok((stdout, stderr, status)) => {
            let status = status.map_err(|e| RunError::Wait {
                program,
                detail: e.to_string(),
            })?;
            Ok(Ran {
                status,
                stdout,
                stderr,
            })
        }
        Err(_) => {
            kill_group(pid);
            let _ = child.kill().await;
            Err(timed_out(program, ctx.timeout))
        }
    }
}

fn timed_out(program: String, after: Duration) -> RunError {
    let after = crate::human::duration(after);
    RunError::Timeout { program, after }
}

fn command(spec: &CommandSpec, ctx: &Ctx) -> Result<tokio::process::Command, RunError> {
    let mut cmd = tokio::process::Command::new(program_path(&spec.argv[0], ctx));
    cmd.args(&spec.argv[1..])
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(cwd) = &spec.cwd {
        let dir = ctx.path(cwd);
        if !dir.is_dir() {
            let (program, cwd) = (spec.argv[0].clone(), dir.display().to_string());
            return Err(RunError::BadCwd { program, cwd });
        }
        cmd.current_dir(dir);
    }
    Ok(cmd)
}

/// A bare name is looked up on PATH; a relative path resolves against the suite's folder.
fn program_path(program: &str, ctx: &Ctx) -> std::path::PathBuf {
    match program.contains('/') {
        true => ctx.path(program),
        false => program.into(),
    }
}

fn spawn_error(program: &str, e: &std::io::Error) -> RunError {
    let program = program.to_string();
    match e.kind() {
        std::io::ErrorKind::NotFound => RunError::NotFound { program },
        std::io::ErrorKind::PermissionDenied => RunError::PermissionDenied { program },
        _ => RunError::Spawn {
            program,
            detail: e.to_string(),
        },
    }
}

/// Kills the whole process group, so grandchildren holding the pipes die too.
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    let pgid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
}

/// Reads a stream to its end, keeping at most [`OUTPUT_CAP`] bytes.
async fn capture(pipe: Option<impl AsyncRead + Unpin>) -> Captured {
    let Some(mut pipe) = pipe else {
        return Captured::default();
    };
    let (mut kept, mut chunk, mut truncated) = (Vec::new(), vec![0u8; 8192], false);
    while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
        truncated |= keep(&mut kept, &chunk[..n]);
    }
    Captured {
        text: String::from_utf8_lossy(&kept).into_owned(),
        truncated,
    }
}

/// Appends what fits under the cap; true when something was dropped.
fn keep(kept: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let room = OUTPUT_CAP.saturating_sub(kept.len());
    kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    bytes.len() > room
}

fn judge(spec: &CommandSpec, ran: &Ran, expect: &CommandExpect, out: &mut Outcome) {
    let program = super::files::file_name(&spec.argv[0]);
    let (key, value) = exit_fact(ran.status);
    out.facts.extra.insert(key.into(), value);
    out.assertions
        .push(exit(&program, ran, expect.exit.unwrap_or(0)));
    if let Some(want) = &expect.stdout_contains {
        out.assertions.push(contains(&ran.stdout, want));
    }
    if let Some(re) = &expect.stdout_matches {
        out.assertions.push(matches(&ran.stdout, re));
    }
}

fn exit_fact(status: ExitStatus) -> (&'static str, String) {
    match (status.code(), status.signal()) {
        (Some(code), _) => ("exit_code", code.to_string()),
        (None, Some(sig)) => ("signal", sig.to_string()),
        (None, None) => ("exit_code", "unknown".into()),
    }
}

fn exit(program: &str, ran: &Ran, want: i32) -> Assertion {
    let found = match (ran.status.code(), ran.status.signal()) {
        (Some(code), _) if code == want => {
            return Assertion::pass("exit", format!("{program} exited {code}"));
        }
        (Some(code), _) => format!("{program} exited {code}"),
        (None, Some(sig)) => format!("{program} was killed by signal {sig}"),
        (None, None) => format!("{program} ended without an exit code"),
    };
    let said = output_hint(ran);
    let msg = format!("{found}, expected exit {want}{said}; run it by hand to see why");
    Assertion::fail("exit", "exit", msg)
}

/// `; stderr: "..."` (or stdout when stderr is empty), or nothing.
fn output_hint(ran: &Ran) -> String {
    for (name, c) in [("stderr", &ran.stderr), ("stdout", &ran.stdout)] {
        if !c.text.trim().is_empty() {
            return format!("; {name}: {}", quote(&c.text));
        }
    }
    String::new()
}

fn contains(stdout: &Captured, want: &str) -> Assertion {
    let name = "stdout_contains";
    if stdout.text.contains(want) {
        return Assertion::pass(name, format!("stdout contains {want:?}"));
    }
    let found = found(stdout);
    let msg = format!("expected stdout to contain {want:?}; found {found}");
    Assertion::fail(name, "stdout", msg)
}

fn matches(stdout: &Captured, re: &str) -> Assertion {
    let name = "stdout_matches";
    let regex = match regex::Regex::new(re) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("bad regular expression {re:?} ({e}); fix stdout_matches");
            return Assertion::not_ok(name, Status::Error, "config", msg);
        }
    };
    if regex.is_match(&stdout.text) {
        return Assertion::pass(name, format!("stdout matches /{re}/"));
    }
    let msg = format!("expected stdout to match /{re}/; found {}", found(stdout));
    Assertion::fail(name, "stdout", msg)
}

fn found(c: &Captured) -> String {
    let cut = match c.truncated {
        true => format!(" (only the first {} KiB were kept)", OUTPUT_CAP / 1024),
        false => String::new(),
    };
    match c.text.trim().is_empty() {
        true => format!("no output{cut}"),
        false => format!("{}{cut}", quote(&c.text)),
    }
}

/// At most [`QUOTE_CHARS`] characters of trimmed output, redacted (tokens, private keys)
/// before it is cut, then debug-quoted.
pub fn quote(text: &str) -> String {
    let q = crate::redact::truncate(text.trim(), QUOTE_CHARS);
    format!("{q:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_short_and_escaped() {
        let long = "x".repeat(1000);
        assert_eq!(quote(&long).chars().count(), QUOTE_CHARS + 3);
        assert_eq!(quote(" a\nb \n"), "\"a\\nb\"");
    }

    #[test]
    fn quotes_hold_no_secret_even_when_cut() {
        let token = format!("hvs.CAESI{}", "Q".repeat(90));
        for pad in 180..200 {
            let q = quote(&format!("{} {token}", "a".repeat(pad)));
            assert!(!q.contains("CAESI"), "{pad}: {q}");
        }
        let label = ["EC", "PRIVATE", "KEY"].join(" ");
        let key = format!("-----BEGIN {label}-----\nMHcCAQEEIB\n-----END {label}-----");
        assert_eq!(quote(&key), "\"[redacted private key]\"");
    }

    #[test]
    fn keep_caps_output() {
        let mut kept = vec![0; OUTPUT_CAP - 2];
        assert!(keep(&mut kept, b"abcd"));
        assert_eq!(kept.len(), OUTPUT_CAP);
        assert!(keep(&mut kept, b"e"));
    }
}
