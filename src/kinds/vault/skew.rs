//! `version_skew`: the server version from `sys/health` against the agent's version — given,
//! printed by a command (`vault version`: `Vault v1.21.1 (…)`), or read from the agent's
//! start-up line in its log. Judges the minor distance and a newer-than-server agent, and
//! never compares across products: an OpenBao agent against a HashiCorp Vault server (or the
//! other way round) is a `product_mismatch`.

use super::{cannot, outcome, prepare, settle};
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::{Def, Exposition};
use crate::model::{Assertion, CheckResult, Facts, Outcome, Status, VaultFacts};
use crate::vault::version::{from_agent_log, from_cli_output, Product, Stated};
use crate::vault::{VaultError, Version};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// How much of the end of an agent log is read.
const LOG_TAIL: u64 = crate::fsread::LOG_TAIL_CAP;

/// Defaults when the suite does not say: one minor version apart, warn on a newer agent.
const DEFAULT_MAX_MINOR_SKEW: u32 = 1;

/// `version_skew`: where the agent version comes from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VersionSkewSpec {
    pub agent: AgentVersionSource,
}

/// Exactly one of `version`, `command`, `log`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentVersionSource {
    pub version: Option<String>,
    pub command: Option<Vec<String>>,
    pub log: Option<String>,
}

/// How strictly a newer agent than server is judged.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AgentNewer {
    Ok,
    Warn,
    Fail,
}

/// What a `version_skew` check may expect of the two versions.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SkewExpect {
    pub max_minor_skew: Option<u32>,
    pub agent_newer: Option<AgentNewer>,
}

/// The `version_skew` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionSkew;

impl CheckKind for VersionSkew {
    const NAME: &'static str = "version_skew";
    const CONNECTS: bool = true;
    type Spec = VersionSkewSpec;
    type Expect = SkewExpect;
    const FAMILIES: &'static [&'static Def] = &[&super::VAULT_AGENT_VERSION, &super::VERSION_SKEW];

    fn validate(spec: &VersionSkewSpec, _expect: &SkewExpect) -> Result<(), Invalid> {
        let a = &spec.agent;
        let n = [a.version.is_some(), a.command.is_some(), a.log.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if n != 1 {
            return Err(Invalid::new(
                ".version_skew.agent",
                "give exactly one of version, command, log",
            ));
        }
        Ok(())
    }

    async fn probe(spec: &VersionSkewSpec, expect: &SkewExpect, ctx: &Ctx) -> Outcome {
        run(spec, expect, ctx).await
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        super::series(e, base, r);
    }
}

pub async fn run(spec: &VersionSkewSpec, expect: &SkewExpect, ctx: &Ctx) -> Outcome {
    let agent = match agent_version(&spec.agent, ctx).await {
        Ok(v) => v,
        Err(msg) => return outcome(vec![cannot("agent_version", "agent_version", msg)]),
    };
    settle(probe(&agent, expect, ctx).await)
}

async fn probe(agent: &Stated, expect: &SkewExpect, ctx: &Ctx) -> Result<Outcome, VaultError> {
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
    let server = Stated {
        product: Some(server_product(body, server)),
        version: server.to_string(),
    };
    Ok(evaluate(agent, &server, expect))
}

/// HashiCorp Vault's `sys/health` carries `enterprise`; OpenBao's does not. Otherwise the
/// major version tells (OpenBao 2.x, Vault 1.x).
fn server_product(health: &Value, version: &str) -> Product {
    if health.get("enterprise").is_some() {
        return Product::Vault;
    }
    Version::parse(version).map_or(Product::Vault, Product::by_major)
}

/// The agent's version text, or why it could not be found.
async fn agent_version(src: &AgentVersionSource, ctx: &Ctx) -> Result<Stated, String> {
    if let Some(v) = &src.version {
        return Ok(Stated::parse_given(v));
    }
    if let Some(argv) = &src.command {
        return from_command(argv, ctx).await;
    }
    if let Some(log) = &src.log {
        return from_log(&ctx.path(log));
    }
    Err("version_skew.agent names no source; give version, command or log".into())
}

async fn from_command(argv: &[String], ctx: &Ctx) -> Result<Stated, String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("version_skew.agent.command is empty; give [vault, version]".into());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(ctx.timeout, cmd.output())
        .await
        .map_err(|_| format!("{prog} did not finish within {}", crate::human::duration(ctx.timeout)))?
        .map_err(|e| format!("cannot run {prog}: {e}; install it, or give the version as agent: {{version: \"x.y.z\"}}"))?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    from_cli_output(&text).ok_or_else(|| {
        let head = crate::redact::truncate(text.trim(), 160);
        format!(
            "`{}` printed no `Vault vX.Y.Z` or `OpenBao vX.Y.Z` line (exit {}): {head:?}",
            argv.join(" "),
            out.status
        )
    })
}

fn from_log(path: &Path) -> Result<Stated, String> {
    let text = read_tail(path)
        .map_err(|e| format!("cannot read the agent log {}: {e}", path.display()))?;
    let stated = |v: crate::vault::version::AgentLogVersions| Stated {
        product: v.product,
        version: v.agent,
    };
    from_agent_log(&text).map(stated).ok_or_else(|| {
        format!(
            "no `Version: …` or `Agent version: …` line in {}; expected the agent's start-up output in its log; use agent: {{command: [bao, version]}} (or [vault, version]) instead",
            path.display()
        )
    })
}

fn read_tail(path: &Path) -> Result<String, String> {
    let buf = crate::fsread::read_tail(path, LOG_TAIL).map_err(|e| e.detail())?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn evaluate(agent: &Stated, server: &Stated, expect: &SkewExpect) -> Outcome {
    if let Some(mismatch) = product_mismatch(agent, server) {
        return outcome(vec![mismatch]);
    }
    let (agent, server) = (agent.version.as_str(), server.version.as_str());
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

/// A failed `product` assertion when the agent and the server are different products.
fn product_mismatch(agent: &Stated, server: &Stated) -> Option<Assertion> {
    let (a, s) = (agent.product()?, server.product()?);
    (a != s).then(|| {
        Assertion::fail(
            "product",
            "product_mismatch",
            format!(
                "agent is {} {} but the server is {} {}; versions of different products do not compare; expected an agent of the server's own product (run `{}` as the agent)",
                a.name(),
                agent.version,
                s.name(),
                server.version,
                match s {
                    Product::OpenBao => "bao agent",
                    Product::Vault => "vault agent",
                }
            ),
        )
    })
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
        "agent {agent} is newer than server {server}; a newer agent may rely on features the server lacks (an agent that lags the server is supported, one that leads is not); re-test auth, renewal and templates, or upgrade the server"
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

    fn expect(max: u32, newer: AgentNewer) -> SkewExpect {
        SkewExpect {
            max_minor_skew: Some(max),
            agent_newer: Some(newer),
        }
    }

    fn evaluate(agent: &str, server: &str, expect: &SkewExpect) -> Outcome {
        let server = Stated {
            product: Some(server_product(&Value::Null, server)),
            version: server.into(),
        };
        super::evaluate(&Stated::parse_given(agent), &server, expect)
    }

    #[test]
    fn products_never_compare() {
        let o = evaluate("1.21.1", "2.7.2", &expect(1, AgentNewer::Warn));
        assert_eq!(o.worst(), Status::Fail);
        assert_eq!(o.assertions.len(), 1);
        assert_eq!(o.assertions[0].reason.as_deref(), Some("product_mismatch"));
        assert!(o.assertions[0].message.contains("HashiCorp Vault 1.21.1"));
        assert!(o.assertions[0].message.contains("OpenBao 2.7.2"));
        let o = evaluate("OpenBao v2.7.2", "2.6.1", &expect(1, AgentNewer::Ok));
        assert_eq!(o.worst(), Status::Pass, "{:?}", o.assertions);
        let vault = serde_json::json!({"enterprise": false});
        assert_eq!(server_product(&vault, "2.0.0"), Product::Vault);
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
