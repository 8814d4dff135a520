//! The suite file's typed schema (DESIGN.md "The suite file"). Unknown keys are rejected.

pub use super::check::CheckSpec;
use super::values::{Dur, ExpiryThresholds};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole suite file, as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub suite: String,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub env_file: Option<String>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub vault: Option<VaultProfile>,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// Parsed by the plan runner; kept as YAML until then.
    #[serde(default)]
    pub plan: Option<serde_yaml_ng::Value>,
}

/// Suite-wide defaults.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(
        default = "default_timeout",
        deserialize_with = "super::values::de_timeout"
    )]
    pub timeout: Dur,
    #[serde(default)]
    pub expiry: ExpiryThresholds,
    /// How often `serve` runs each check.
    #[serde(
        default = "default_interval",
        deserialize_with = "super::values::de_interval"
    )]
    pub interval: Dur,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: default_timeout(),
            expiry: ExpiryThresholds::default(),
            interval: default_interval(),
        }
    }
}

fn default_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(5))
}

fn default_interval() -> Dur {
    Dur(std::time::Duration::from_secs(60))
}

/// Connection profile for vault_* checks and rotate. Unset fields fall back to VAULT_* env.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct VaultProfile {
    pub addr: Option<String>,
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub token: Option<String>,
    pub namespace: Option<String>,
    pub auth: Option<VaultAuth>,
}

/// How the profile obtains a token when none is given.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultAuth {
    pub cert: CertAuth,
}

/// A cert-auth login: `auth/<mount>/login` with `name: <role>`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertAuth {
    #[serde(default = "default_cert_mount")]
    pub mount: String,
    pub role: Option<String>,
}

pub fn default_cert_mount() -> String {
    "cert".into()
}

/// Whether a failing check fails the run or only warns.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Fail,
    Warn,
}
