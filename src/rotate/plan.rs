//! The suite's `plan:` section, typed: steps in order, each with rotate actions, reloads, the
//! stage to gate on and how long to wait for it. Parsed from the YAML the suite loader kept.

use super::spec::{CertRoleSpec, IssueSpec, PkiRoleSpec, ReloadSpec, TrustSpec};
use crate::suite::{Dur, Suite};
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::path::PathBuf;
use std::time::Duration;

/// The whole plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Where the state file and lock live.
    pub state_dir: PathBuf,
    /// The audit log (JSON lines).
    pub audit_log: PathBuf,
    /// Default overlap window after which a replaced certificate is revoked (an issue
    /// action's own `revoke_previous_after` wins); `None`: never revoke.
    pub revoke_previous_after: Option<Duration>,
    pub steps: Vec<Step>,
}

/// When a step's reloads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReloadWhen {
    /// Only when an action of the step changed something (default).
    #[default]
    Changed,
    /// When any step of this run changed something ("restarts, if required").
    RunChanged,
    Always,
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub description: Option<String>,
    /// The stage gated on after the step.
    pub gate: String,
    pub wait: Duration,
    pub interval: Duration,
    pub actions: Vec<Action>,
    pub reload: Vec<ReloadSpec>,
    pub reload_when: ReloadWhen,
    pub trust_first: Option<TrustFirst>,
}

/// Trust first (seed 003): refuse to issue from a CA the consumers do not trust yet.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFirst {
    /// PKI mount whose issuing CA must be trusted; default: the mount of the step's issue.
    #[serde(default)]
    pub mount: Option<String>,
    /// Consumer bundles that must contain that CA.
    pub bundles: Vec<String>,
    /// How long to wait for the bundles to catch up (e.g. an agent refreshing them).
    #[serde(default)]
    pub wait: Option<Dur>,
}

/// One rotate action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Issue(Box<IssueSpec>),
    CertRole(CertRoleSpec),
    PkiRole(PkiRoleSpec),
    Trust(TrustSpec),
}

impl Action {
    /// The action's key in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Issue(_) => "issue",
            Action::CertRole(_) => "cert_role",
            Action::PkiRole(_) => "pki_role",
            Action::Trust(_) => "trust",
        }
    }
}

/// A plan that does not parse: the key path and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {key}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PlanError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    #[serde(default)]
    state_dir: Option<String>,
    #[serde(default)]
    audit_log: Option<String>,
    #[serde(default)]
    wait: Option<Dur>,
    #[serde(default)]
    interval: Option<Dur>,
    #[serde(default)]
    revoke_previous_after: Option<Dur>,
    steps: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    #[serde(default)]
    description: Option<String>,
    gate: String,
    #[serde(default)]
    wait: Option<Dur>,
    #[serde(default)]
    interval: Option<Dur>,
    #[serde(default)]
    actions: Vec<Value>,
    #[serde(default)]
    reload: Vec<Value>,
    #[serde(default)]
    reload_when: ReloadWhen,
    #[serde(default)]
    trust_first: Option<TrustFirst>,
}

/// Action keys, for messages.
pub const ACTION_KINDS: &[&str] = &["issue", "cert_role", "pki_role", "trust"];

const DEFAULT_WAIT: Duration = Duration::from_secs(60);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Parses and validates the suite's plan. `None` when the suite has no `plan:`.
pub fn parse(suite: &Suite) -> Result<Option<Plan>, PlanError> {
    let Some(v) = &suite.file.plan else {
        return Ok(None);
    };
    let cx = Cx::new(suite);
    let raw: RawPlan = cx.de(v.clone(), "plan")?;
    if raw.steps.is_empty() {
        return Err(cx.err("plan.steps", "the plan has no steps; list at least one: steps: [{name: ..., gate: STAGE, actions: [...]}]"));
    }
    let wait = raw.wait.map(|d| d.0).unwrap_or(DEFAULT_WAIT);
    let interval = raw.interval.map(|d| d.0).unwrap_or(DEFAULT_INTERVAL);
    let mut steps = Vec::new();
    for (i, s) in raw.steps.into_iter().enumerate() {
        steps.push(cx.step(s, i, wait, interval, &steps)?);
    }
    let state_dir = match raw.state_dir {
        Some(d) => suite.path_of(&d),
        None => default_state_dir(suite),
    };
    let audit_log = match raw.audit_log {
        Some(a) => suite.path_of(&a),
        None => state_dir.join("audit.jsonl"),
    };
    Ok(Some(Plan {
        state_dir,
        audit_log,
        revoke_previous_after: raw.revoke_previous_after.map(|d| d.0),
        steps,
    }))
}

/// `<suite folder>/.rotcheck/<suite>/` when the plan names no state_dir.
pub fn default_state_dir(suite: &Suite) -> PathBuf {
    suite.path_of(".rotcheck").join(&suite.file.suite)
}

/// Parsing context: the suite, for file names, lines and stage names.
struct Cx<'a> {
    suite: &'a Suite,
    text: String,
}

impl<'a> Cx<'a> {
    fn new(suite: &'a Suite) -> Self {
        Cx {
            suite,
            text: super::safefs::read_input(&suite.path, super::safefs::MAX_STATE_BYTES, "a suite")
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
        }
    }

    fn err(&self, key: &str, message: impl Into<String>) -> PlanError {
        PlanError {
            file: self.suite.path.display().to_string(),
            line: self.line_of(key),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The line of the key's last component inside `plan:` (best effort).
    fn line_of(&self, key: &str) -> Option<usize> {
        let start = self.text.lines().position(|l| l.starts_with("plan:"))?;
        let last = key.rsplit('.').next()?.split('[').next()?;
        let needle = format!("{last}:");
        self.text
            .lines()
            .enumerate()
            .skip(start)
            .find(|(_, l)| l.trim_start().trim_start_matches("- ").starts_with(&needle))
            .map(|(i, _)| i + 1)
    }

    fn de<T: serde::de::DeserializeOwned>(&self, v: Value, key: &str) -> Result<T, PlanError> {
        serde_yaml_ng::from_value(v).map_err(|e| self.err(key, e.to_string()))
    }

    fn step(
        &self,
        v: Value,
        i: usize,
        wait: Duration,
        interval: Duration,
        before: &[Step],
    ) -> Result<Step, PlanError> {
        let key = format!("plan.steps[{i}]");
        let raw: RawStep = self.de(v, &key)?;
        self.check_step(&raw, &key, before)?;
        let actions = raw
            .actions
            .into_iter()
            .enumerate()
            .map(|(j, a)| self.action(a, &format!("{key}.actions[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let reload = raw
            .reload
            .into_iter()
            .enumerate()
            .map(|(j, r)| self.reload(r, &format!("{key}.reload[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let step = Step {
            name: raw.name,
            description: raw.description,
            gate: raw.gate,
            wait: raw.wait.map(|d| d.0).unwrap_or(wait),
            interval: raw.interval.map(|d| d.0).unwrap_or(interval),
            actions,
            reload,
            reload_when: raw.reload_when,
            trust_first: raw.trust_first,
        };
        self.check_trust_first(&step, &key)?;
        Ok(step)
    }

    fn check_step(&self, raw: &RawStep, key: &str, before: &[Step]) -> Result<(), PlanError> {
        if !valid_name(&raw.name) {
            return Err(self.err(
                &format!("{key}.name"),
                format!("bad step name {:?}; use [a-z0-9_-]+", raw.name),
            ));
        }
        if before.iter().any(|s| s.name == raw.name) {
            return Err(self.err(
                &format!("{key}.name"),
                format!(
                    "duplicate step name {:?}; every step needs its own name",
                    raw.name
                ),
            ));
        }
        let stages = crate::engine::stages(self.suite);
        if !stages.contains(&raw.gate) {
            return Err(self.err(
                &format!("{key}.gate"),
                format!(
                    "no stage {:?} in the suite's checks; known stages: {}",
                    raw.gate,
                    stages.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn check_trust_first(&self, step: &Step, key: &str) -> Result<(), PlanError> {
        let Some(tf) = &step.trust_first else {
            return Ok(());
        };
        if tf.bundles.is_empty() {
            return Err(self.err(
                &format!("{key}.trust_first.bundles"),
                "list the consumer bundles that must contain the CA",
            ));
        }
        if tf.mount.is_none() && !step.actions.iter().any(|a| matches!(a, Action::Issue(_))) {
            return Err(self.err(
                &format!("{key}.trust_first.mount"),
                "the step has no issue action; name the PKI mount",
            ));
        }
        Ok(())
    }

    fn action(&self, v: Value, key: &str) -> Result<Action, PlanError> {
        let Value::Mapping(m) = &v else {
            return Err(self.err(
                key,
                format!(
                    "an action is a map with one key, one of: {}",
                    ACTION_KINDS.join(", ")
                ),
            ));
        };
        let mut it = m.iter();
        let (Some((Value::String(kind), body)), None) = (it.next(), it.next()) else {
            return Err(self.err(
                key,
                format!(
                    "an action has exactly one key, one of: {}",
                    ACTION_KINDS.join(", ")
                ),
            ));
        };
        let k = format!("{key}.{kind}");
        let body = body.clone();
        Ok(match kind.as_str() {
            "issue" => Action::Issue(Box::new(self.de(body, &k)?)),
            "cert_role" => Action::CertRole(self.de(body, &k)?),
            "pki_role" => Action::PkiRole(self.de(body, &k)?),
            "trust" => Action::Trust(self.de(body, &k)?),
            other => {
                return Err(self.err(
                    key,
                    format!(
                        "unknown action {other:?}; actions are {}",
                        ACTION_KINDS.join(", ")
                    ),
                ))
            }
        })
    }

    fn reload(&self, v: Value, key: &str) -> Result<ReloadSpec, PlanError> {
        let spec: ReloadSpec = self.de(v, key)?;
        if spec.mechanisms() != 1 {
            return Err(self.err(
                key,
                "give exactly one of podman_label, systemd_user, pid_file, command",
            ));
        }
        Ok(spec)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl Plan {
    /// The overlap window after which the certificate an issue action replaces is revoked.
    pub fn revoke_window(&self, action: &Action) -> Option<Duration> {
        match action {
            Action::Issue(i) => i.revoke_previous_after.or(self.revoke_previous_after),
            _ => None,
        }
    }

    /// The index of a step by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// Step names, for messages.
    pub fn names(&self) -> String {
        self.steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(plan: &str) -> Result<Option<Plan>, PlanError> {
        let d = tempfile::tempdir().unwrap();
        let text = format!(
            "suite: t\nchecks:\n  - name: c\n    stage: s1\n    command: [\"true\"]\n{plan}"
        );
        let path = d.path().join("t.yaml");
        std::fs::write(&path, &text).unwrap();
        let s = crate::suite::load(&path).unwrap();
        parse(&s)
    }

    #[test]
    fn parses_a_plan() {
        let p = suite(
            "plan:\n  wait: 5s\n  steps:\n    - name: one\n      gate: s1\n      actions:\n        - issue: { mount: pki, role: r, cn: a, key: k.pem, cert: c.pem }\n      reload:\n        - command: [nginx, -s, reload]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].wait, Duration::from_secs(5));
        assert!(matches!(&p.steps[0].actions[0], Action::Issue(i) if i.key_mode.0 == 0o600));
        assert_eq!(p.steps[0].reload[0].command, vec!["nginx", "-s", "reload"]);
        assert!(p.state_dir.ends_with(".rotcheck/t"));
        assert_eq!(p.revoke_window(&p.steps[0].actions[0]), None);
    }

    #[test]
    fn the_revoke_window_is_a_plan_option_an_action_overrides() {
        let p = suite(
            "plan:\n  revoke_previous_after: 10m\n  steps:\n    - name: one\n      gate: s1\n      actions:\n        - issue: { mount: pki, role: r, cn: a, key: k.pem, cert: c.pem }\n        - issue: { mount: pki, role: r, cn: b, key: k2.pem, cert: c2.pem, revoke_previous_after: 1s }\n",
        )
        .unwrap()
        .unwrap();
        let a = &p.steps[0].actions;
        assert_eq!(p.revoke_window(&a[0]), Some(Duration::from_secs(600)));
        assert_eq!(p.revoke_window(&a[1]), Some(Duration::from_secs(1)));
        let e = suite(
            "plan:\n  revoke_previous_after: soon\n  steps:\n    - name: one\n      gate: s1\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "plan");
    }

    #[test]
    fn errors_name_the_key() {
        let e = suite("plan:\n  steps:\n    - name: one\n      gate: nope\n").unwrap_err();
        assert_eq!(e.key, "plan.steps[0].gate");
        assert!(e.message.contains("known stages: s1"), "{e}");
        let e = suite("plan:\n  steps:\n    - name: one\n      gate: s1\n      actions:\n        - issue: { mount: pki, kye: x }\n").unwrap_err();
        assert_eq!(e.key, "plan.steps[0].actions[0].issue");
        assert!(e.message.contains("kye"), "{e}");
        let e = suite("plan:\n  steps:\n    - name: one\n      gate: s1\n      actions:\n        - frobnicate: {}\n").unwrap_err();
        assert!(e.message.contains("unknown action"), "{e}");
        let e = suite(
            "plan:\n  steps:\n    - name: one\n      gate: s1\n      reload:\n        - {}\n",
        )
        .unwrap_err();
        assert!(e.message.contains("exactly one"), "{e}");
    }
}
