//! `rotate reload`: make a service pick up new files — signal or restart podman containers by
//! label, restart a systemd user unit, signal a pid file's process, or run a command. The
//! exit status and output are reported; a failure is an error the plan stops on.

use super::spec::ReloadSpec;
use std::process::Stdio;
use std::time::Duration;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// One line: the mechanism and target.
    pub what: String,
    /// Per command run: `argv → exit N: output`.
    pub details: Vec<String>,
}

/// Why a reload failed. The new files stay in place; the service still runs the old ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reload {what} failed: {detail}; the service may still serve the old files — fix it and re-run, or restore NAME.prev")]
pub struct ReloadError {
    pub what: String,
    pub detail: String,
}

/// How the reload would run, for `--dry-run` and messages.
pub fn describe(spec: &ReloadSpec) -> String {
    if let Some(l) = &spec.podman_label {
        let how = if spec.restart {
            "restart".to_string()
        } else {
            format!("signal {}", signal_name(&spec.signal))
        };
        return format!("podman containers with label {l}: {how}");
    }
    if let Some(u) = &spec.systemd_user {
        return format!("systemctl {} {u}", systemd_args(spec).join(" "));
    }
    if let Some(p) = &spec.pid_file {
        return format!(
            "signal {} to the pid in {}",
            signal_name(&spec.signal),
            p.display()
        );
    }
    format!("command {}", spec.command.join(" "))
}

/// Runs the reload.
pub async fn run(spec: &ReloadSpec) -> Result<Reloaded, ReloadError> {
    let what = describe(spec);
    let fail = |detail: String| ReloadError {
        what: what.clone(),
        detail,
    };
    if spec.mechanisms() != 1 {
        return Err(fail(
            "give exactly one of --podman-label, --systemd-user, --pid-file, -- CMD".into(),
        ));
    }
    let details = if let Some(label) = &spec.podman_label {
        podman(spec, label).await.map_err(fail)?
    } else if let Some(unit) = &spec.systemd_user {
        let mut argv = vec!["systemctl".to_string()];
        argv.extend(systemd_args(spec));
        argv.push(unit.clone());
        vec![exec(&argv, spec.timeout).await.map_err(fail)?]
    } else if let Some(p) = &spec.pid_file {
        vec![signal_pid_file(p, &spec.signal).map_err(fail)?]
    } else {
        vec![exec(&spec.command, spec.timeout).await.map_err(fail)?]
    };
    Ok(Reloaded { what, details })
}

fn systemd_args(spec: &ReloadSpec) -> Vec<String> {
    let mut a = vec!["--user".to_string()];
    if let Some(m) = &spec.machine {
        a.push("--machine".into());
        a.push(if m.contains('@') {
            m.clone()
        } else {
            format!("{m}@")
        });
    }
    a.push(
        if spec.restart {
            "restart"
        } else {
            "reload-or-restart"
        }
        .into(),
    );
    a
}

/// `HUP` / `sighup` / `SIGHUP` → `SIGHUP`.
pub fn signal_name(s: &str) -> String {
    let up = s.trim().to_ascii_uppercase();
    if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    }
}

fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal, String> {
    signal_name(s)
        .parse()
        .map_err(|_| format!("unknown signal {s:?}; write e.g. HUP, USR1, USR2, TERM"))
}

async fn podman(spec: &ReloadSpec, label: &str) -> Result<Vec<String>, String> {
    let list = vec![
        "podman".to_string(),
        "ps".into(),
        "--filter".into(),
        format!("label={label}"),
        "--format".into(),
        "{{.Names}}".into(),
    ];
    let out = capture(&list, spec.timeout).await?;
    let names: Vec<String> = out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Err(format!("no running podman container has label {label}; expected at least one (podman ps --filter label={label})"));
    }
    let mut details = Vec::new();
    for n in names {
        let argv = if spec.restart {
            vec!["podman".to_string(), "restart".into(), n]
        } else {
            let sig = signal_name(&spec.signal);
            vec![
                "podman".to_string(),
                "kill".into(),
                "--signal".into(),
                sig,
                n,
            ]
        };
        details.push(exec(&argv, spec.timeout).await?);
    }
    Ok(details)
}

fn signal_pid_file(path: &std::path::Path, sig: &str) -> Result<String, String> {
    let signal = parse_signal(sig)?;
    let bytes = super::safefs::read_file(path, super::safefs::MAX_SMALL_BYTES, "a pid file")
        .map_err(|e| format!("cannot read the pid file: {e}"))?
        .ok_or_else(|| {
            format!(
                "the pid file {} does not exist; is the service running?",
                path.display()
            )
        })?;
    let text = String::from_utf8_lossy(&bytes);
    let pid: i32 = text.trim().parse().map_err(|_| {
        format!(
            "{} holds {:?}, expected a process id",
            path.display(),
            text.trim()
        )
    })?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(|e| {
        format!(
            "cannot send {} to pid {pid} (from {}): {e}; is the service running?",
            signal_name(sig),
            path.display()
        )
    })?;
    Ok(format!("sent {} to pid {pid}", signal_name(sig)))
}

/// Output of a finished command.
struct Captured {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn capture(argv: &[String], timeout: Duration) -> Result<Captured, String> {
    let (prog, args) = argv.split_first().ok_or("an empty command")?;
    let child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}; is it installed and on PATH?"))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "{} did not finish within {}",
                argv.join(" "),
                crate::human::duration(timeout)
            )
        })?
        .map_err(|e| format!("{prog}: {e}"))?;
    Ok(Captured {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs a command; a non-zero exit is an error carrying its output.
async fn exec(argv: &[String], timeout: Duration) -> Result<String, String> {
    let c = capture(argv, timeout).await?;
    let output = tail(&format!("{}{}", c.stdout, c.stderr));
    let exit = c
        .code
        .map(|n| n.to_string())
        .unwrap_or_else(|| "killed by a signal".into());
    let line = format!(
        "{} → exit {exit}{}",
        argv.join(" "),
        if output.is_empty() {
            String::new()
        } else {
            format!(": {output}")
        }
    );
    if c.code == Some(0) {
        Ok(line)
    } else {
        Err(line)
    }
}

/// The last 400 characters of output, on one line.
fn tail(s: &str) -> String {
    let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let n = one.chars().count();
    if n <= 400 {
        one
    } else {
        format!("…{}", one.chars().skip(n - 400).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(argv: &[&str]) -> ReloadSpec {
        ReloadSpec {
            command: argv.iter().map(|s| s.to_string()).collect(),
            signal: "HUP".into(),
            timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn command_status_and_output_are_reported() {
        let ok = run(&cmd(&["sh", "-c", "echo reloaded"])).await.unwrap();
        assert!(ok.details[0].contains("exit 0: reloaded"), "{ok:?}");
        let bad = run(&cmd(&["sh", "-c", "echo broken >&2; exit 3"]))
            .await
            .unwrap_err();
        assert!(bad.detail.contains("exit 3: broken"), "{bad}");
        let missing = run(&cmd(&["/nonexistent/x"])).await.unwrap_err();
        assert!(missing.detail.contains("cannot run"), "{missing}");
    }

    #[tokio::test]
    async fn pid_file_signal() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let d = tempfile::tempdir().unwrap();
        let pf = d.path().join("pid");
        std::fs::write(&pf, child.id().to_string()).unwrap();
        let spec = ReloadSpec {
            pid_file: Some(pf),
            signal: "term".into(),
            timeout: Duration::from_secs(5),
            ..Default::default()
        };
        let r = run(&spec).await.unwrap();
        assert!(r.details[0].contains("SIGTERM"));
        assert!(!child.wait().unwrap().success());
    }
}
