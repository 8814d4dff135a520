//! `version_skew`: the server version from `sys/health` against the agent's version — given,
//! printed by a command (`vault version`: `Vault v1.21.1 (…)`), or read from the agent's
//! start-up line in its log. Judges the minor distance and a newer-than-server agent.

use super::{cannot, outcome, prepare, settle};
use crate::model::{Assertion, Facts, Outcome, Status, VaultFacts};
use crate::probe::Ctx;
use crate::suite::{AgentNewer, AgentVersionSource, Expect, VersionSkewSpec};
use crate::vault::version::{from_agent_log, from_cli_output};
use crate::vault::{VaultError, Version};
use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How much of the end of an agent log is read.
const LOG_TAIL: u64 = 4 * 1024 * 1024;

/// Defaults when the suite does not say: one minor version apart, warn on a newer agent.
const DEFAULT_MAX_MINOR_SKEW: u32 = 1;

pub(super) async fn run(spec: &VersionSkewSpec, expect: &Expect, ctx: &Ctx) -> Outcome {
    let agent = match agent_version(&spec.agent, ctx).await {
        Ok(v) => v,
        Err(msg) => return outcome(vec![cannot("agent_version", "agent_version", msg)]),
    };
    settle(probe(&agent, expect, ctx).await)
}

async fn probe(agent: &str, expect: &Expect, ctx: &Ctx) -> Result<Outcome, VaultError> {
    let p = prepare(ctx)?;
    let reply = p
        .client
        .get("sys/health?standbyok=true&perfstandbyok=true", None)
        .await?;
    let body = reply
        .json
        .as_ref()
        .filter(|j| j.get("initialized").is_some());
    let Some(body) = body else {
        return Err(if reply.is_success() {
            reply.bad("expected sys/health's JSON status document")
        } else {
            reply.to_error()
        });
    };
    let server = body.get("version").and_then(Value::as_str);
    let Some(server) = server.filter(|s| !s.is_empty()) else {
        let msg = "sys/health did not report a server version (redact_version on the listener?); expected one to compare the agent with";
        return Ok(outcome(vec![cannot(
            "server_version",
            "server_version",
            msg,
        )]));
    };
    Ok(evaluate(agent, server, expect))
}

/// The agent's version text, or why it could not be found.
async fn agent_version(src: &AgentVersionSource, ctx: &Ctx) -> Result<String, String> {
    if let Some(v) = &src.version {
        return Ok(v.trim().trim_start_matches('v').to_string());
    }
    if let Some(argv) = &src.command {
        return from_command(argv, ctx).await;
    }
    if let Some(log) = &src.log {
        return from_log(&ctx.path(log));
    }
    Err("version_skew.agent names no source; give version, command or log".into())
}

async fn from_command(argv: &[String], ctx: &Ctx) -> Result<String, String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("version_skew.agent.command is empty; give [vault, version]".into());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(ctx.timeout, cmd.output())
        .await
        .map_err(|_| format!("{prog} did not finish within {}", humantime::format_duration(ctx.timeout)))?
        .map_err(|e| format!("cannot run {prog}: {e}; install it, or give the version as agent: {{version: \"x.y.z\"}}"))?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    from_cli_output(&text).ok_or_else(|| {
        let head = crate::redact::truncate(text.trim(), 160);
        format!(
            "`{}` printed no `Vault vX.Y.Z` line (exit {}): {head:?}",
            argv.join(" "),
            out.status
        )
    })
}

fn from_log(path: &Path) -> Result<String, String> {
    let text = read_tail(path)
        .map_err(|e| format!("cannot read the agent log {}: {e}", path.display()))?;
    from_agent_log(&text).map(|v| v.agent).ok_or_else(|| {
        format!(
            "no `Vault Agent version: …` line in {}; the agent prints it only when its version differs from the server's; use agent: {{command: [vault, version]}} instead",
            path.display()
        )
    })
}

fn read_tail(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)))?;
    let mut buf = Vec::new();
    f.take(LOG_TAIL).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn evaluate(agent: &str, server: &str, expect: &Expect) -> Outcome {
    let (Some(a), Some(s)) = (Version::parse(agent), Version::parse(server)) else {
        let msg = format!(
            "cannot compare agent {agent:?} with server {server:?}; expected X.Y.Z versions"
        );
        return outcome(vec![cannot("skew", "version_parse", msg)]);
    };
    let skew = a.minor_skew(s);
    let max = expect.max_minor_skew.unwrap_or(DEFAULT_MAX_MINOR_SKEW);
    let policy = expect.agent_newer.unwrap_or(AgentNewer::Warn);
    let assertions = vec![
        assert_skew(agent, server, skew, max),
        assert_newer(agent, server, a > s, policy),
    ];
    Outcome {
        assertions,
        facts: Facts {
            vault: Some(VaultFacts {
                version: Some(server.to_string()),
                agent_version: Some(agent.to_string()),
                minor_skew: skew,
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn assert_skew(agent: &str, server: &str, skew: Option<i64>, max: u32) -> Assertion {
    let Some(skew) = skew else {
        return Assertion::fail(
            "skew",
            "skew",
            format!("agent {agent} and server {server} differ in the major version; expected the same major; upgrade the older one"),
        );
    };
    let dist = skew.unsigned_abs();
    let side = if skew > 0 { "ahead of" } else { "behind" };
    if dist <= u64::from(max) {
        let what = if dist == 0 {
            "the same minor version as".to_string()
        } else {
            format!(
                "{dist} minor {} {side}",
                if dist == 1 { "version" } else { "versions" }
            )
        };
        return Assertion::pass(
            "skew",
            format!("agent {agent} is {what} server {server} (at most {max} allowed)"),
        );
    }
    let fix = if skew > 0 {
        "upgrade the server or pin the agent"
    } else {
        "upgrade the agent"
    };
    Assertion::fail(
        "skew",
        "skew",
        format!("agent {agent} is {dist} minor versions {side} server {server}; expected at most {max}; {fix}"),
    )
}

fn assert_newer(agent: &str, server: &str, newer: bool, policy: AgentNewer) -> Assertion {
    if !newer {
        return Assertion::pass(
            "agent_newer",
            format!("agent {agent} is not newer than server {server}"),
        );
    }
    let msg = format!(
        "agent {agent} is newer than server {server}; a newer agent may rely on features the server lacks (HashiCorp supports an agent that lags, not one that leads); re-test auth, renewal and templates, or upgrade the server"
    );
    match policy {
        AgentNewer::Ok => Assertion::pass(
            "agent_newer",
            format!("agent {agent} is newer than server {server} (allowed)"),
        ),
        AgentNewer::Warn => Assertion::not_ok("agent_newer", Status::Warn, "agent_newer", msg),
        AgentNewer::Fail => Assertion::fail("agent_newer", "agent_newer", msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(max: u32, newer: AgentNewer) -> Expect {
        Expect {
            max_minor_skew: Some(max),
            agent_newer: Some(newer),
            ..Default::default()
        }
    }

    #[test]
    fn seed_example_warns() {
        let o = evaluate("1.21.1", "1.20.4", &expect(1, AgentNewer::Warn));
        assert_eq!(o.worst(), Status::Warn);
        assert_eq!(o.facts.vault.as_ref().unwrap().minor_skew, Some(1));
        let o = evaluate("1.21.1", "1.20.4", &expect(1, AgentNewer::Fail));
        assert_eq!(o.worst(), Status::Fail);
    }

    #[test]
    fn too_old_agent_fails() {
        let o = evaluate("1.17.0", "1.20.4", &expect(1, AgentNewer::Warn));
        assert_eq!(o.assertions[0].reason.as_deref(), Some("skew"));
        assert!(o.assertions[0].message.contains("3 minor versions behind"));
    }
}
