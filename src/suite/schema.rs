//! The suite file's typed schema (DESIGN.md "The suite file"). Unknown keys are rejected.

use super::values::{ChainExpect, Dur, ExpiryThresholds, Mode, TlsVersion};
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

fn default_cert_mount() -> String {
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

/// One check as written: common fields, exactly one kind, expectations.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default, deserialize_with = "super::values::de_opt_timeout")]
    pub timeout: Option<Dur>,
    #[serde(default, deserialize_with = "super::values::de_opt_interval")]
    pub interval: Option<Dur>,
    #[serde(default)]
    pub description: Option<String>,
    pub tls: Option<TlsSpec>,
    pub files: Option<Vec<FileEntry>>,
    pub vault_health: Option<VaultHealthSpec>,
    pub vault_login: Option<VaultLoginSpec>,
    pub vault_cert_role: Option<VaultCertRoleSpec>,
    pub vault_pki_role: Option<VaultPkiRoleSpec>,
    pub vault_kv: Option<VaultKvSpec>,
    pub version_skew: Option<VersionSkewSpec>,
    pub command: Option<CommandSpec>,
    #[serde(default)]
    pub expect: Expect,
}

/// A TLS listener to handshake with.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// `host:port`.
    pub addr: String,
    /// SNI sent and the name verified; defaults to the host part of `addr`.
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    #[serde(default)]
    pub alpn: Vec<String>,
}

/// What a file is expected to hold.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Cert,
    Key,
    Chain,
    Bundle,
    /// Any file: only existence, mode, owner and group are checked.
    Other,
}

impl FileKind {
    /// Lowercase token.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Cert => "cert",
            FileKind::Key => "key",
            FileKind::Chain => "chain",
            FileKind::Bundle => "bundle",
            FileKind::Other => "other",
        }
    }
}

/// One file of a `files` check.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub kind: FileKind,
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// For a key: the cert (or chain) file whose leaf it must pair with.
    pub pairs_with: Option<String>,
    /// For a bundle or chain: a file whose certificate(s) must be contained.
    pub contains: Option<String>,
    /// Trust anchors for `expect.chain` on cert/chain entries.
    pub ca_file: Option<String>,
    /// `false` for a file that must not exist. Defaults to true.
    #[serde(default = "yes")]
    pub exists: bool,
}

fn yes() -> bool {
    true
}

/// `vault_health`: sys/health + sys/seal-status.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct VaultHealthSpec {
    #[serde(default)]
    pub standbyok: bool,
    #[serde(default)]
    pub perfstandbyok: bool,
}

/// `vault_login`: cert login with an agent identity.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultLoginSpec {
    #[serde(default = "default_cert_mount")]
    pub mount: String,
    pub role: Option<String>,
    pub client_cert: String,
    pub client_key: String,
    pub ca_file: Option<String>,
    pub addr: Option<String>,
    pub server_name: Option<String>,
}

/// `vault_cert_role`: a cert-auth mapping to read and compare.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultCertRoleSpec {
    #[serde(default = "default_cert_mount")]
    pub mount: String,
    pub name: String,
}

/// `vault_pki_role`: a PKI role to read and compare.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultPkiRoleSpec {
    pub mount: String,
    pub name: String,
}

/// `vault_kv`: a KV mount (and optionally a path) to inspect.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultKvSpec {
    pub mount: String,
    pub path: Option<String>,
}

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

/// `policies: {include, exclude}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyExpect {
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// How strictly a newer agent than server is judged.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AgentNewer {
    Ok,
    Warn,
    Fail,
}

/// Every expectation any kind understands; `validate` rejects keys a kind does not.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    // tls and files
    pub chain: Option<ChainExpect>,
    pub names: Option<Vec<String>>,
    pub expiry: Option<ExpiryThresholds>,
    pub issuer_cn: Option<String>,
    pub issuer_dn: Option<String>,
    pub min_tls: Option<TlsVersion>,
    pub serves_file: Option<String>,
    // vault_health
    pub sealed: Option<bool>,
    pub initialized: Option<bool>,
    pub standby_ok: Option<bool>,
    pub version: Option<String>,
    // vault_login, vault_cert_role
    pub policies: Option<PolicyExpect>,
    pub token_ttl_min: Option<Dur>,
    pub ca_matches: Option<String>,
    pub allowed_common_names: Option<PolicyExpect>,
    // vault_pki_role
    pub allowed_domains: Option<Vec<String>>,
    pub allowed_domains_at_most: Option<Vec<String>>,
    pub allow_subdomains: Option<bool>,
    pub max_ttl: Option<Dur>,
    pub client_flag: Option<bool>,
    pub server_flag: Option<bool>,
    // vault_kv
    pub kv_version: Option<u8>,
    pub path_exists: Option<bool>,
    // version_skew
    pub max_minor_skew: Option<u32>,
    pub agent_newer: Option<AgentNewer>,
    // command
    pub exit: Option<i32>,
    pub stdout_contains: Option<String>,
    pub stdout_matches: Option<String>,
}

/// Expectation keys each kind accepts (for validation messages).
pub fn allowed_expect_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "tls" => &[
            "chain",
            "names",
            "expiry",
            "issuer_cn",
            "issuer_dn",
            "min_tls",
            "serves_file",
        ],
        "files" => &["chain", "names", "expiry", "issuer_cn", "issuer_dn"],
        "vault_health" => &["sealed", "initialized", "standby_ok", "version"],
        "vault_login" => &["policies", "token_ttl_min"],
        "vault_cert_role" => &["ca_matches", "policies", "allowed_common_names"],
        "vault_pki_role" => &[
            "allowed_domains",
            "allowed_domains_at_most",
            "allow_subdomains",
            "max_ttl",
            "client_flag",
            "server_flag",
        ],
        "vault_kv" => &["kv_version", "path_exists"],
        "version_skew" => &["max_minor_skew", "agent_newer"],
        "command" => &["exit", "stdout_contains", "stdout_matches"],
        _ => &[],
    }
}

impl Expect {
    /// The keys that are set, for per-kind validation.
    pub fn set_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut add = |set: bool, k: &'static str| {
            if set {
                keys.push(k)
            }
        };
        add(self.chain.is_some(), "chain");
        add(self.names.is_some(), "names");
        add(self.expiry.is_some(), "expiry");
        add(self.issuer_cn.is_some(), "issuer_cn");
        add(self.issuer_dn.is_some(), "issuer_dn");
        add(self.min_tls.is_some(), "min_tls");
        add(self.serves_file.is_some(), "serves_file");
        add(self.sealed.is_some(), "sealed");
        add(self.initialized.is_some(), "initialized");
        add(self.standby_ok.is_some(), "standby_ok");
        add(self.version.is_some(), "version");
        add(self.policies.is_some(), "policies");
        add(self.token_ttl_min.is_some(), "token_ttl_min");
        add(self.ca_matches.is_some(), "ca_matches");
        add(self.allowed_common_names.is_some(), "allowed_common_names");
        add(self.allowed_domains.is_some(), "allowed_domains");
        add(
            self.allowed_domains_at_most.is_some(),
            "allowed_domains_at_most",
        );
        add(self.allow_subdomains.is_some(), "allow_subdomains");
        add(self.max_ttl.is_some(), "max_ttl");
        add(self.client_flag.is_some(), "client_flag");
        add(self.server_flag.is_some(), "server_flag");
        add(self.kv_version.is_some(), "kv_version");
        add(self.path_exists.is_some(), "path_exists");
        add(self.max_minor_skew.is_some(), "max_minor_skew");
        add(self.agent_newer.is_some(), "agent_newer");
        add(self.exit.is_some(), "exit");
        add(self.stdout_contains.is_some(), "stdout_contains");
        add(self.stdout_matches.is_some(), "stdout_matches");
        keys
    }
}

impl CheckSpec {
    /// The kinds set on this check (valid suites have exactly one).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        let mut add = |set: bool, name: &'static str| {
            if set {
                k.push(name)
            }
        };
        add(self.tls.is_some(), "tls");
        add(self.files.is_some(), "files");
        add(self.vault_health.is_some(), "vault_health");
        add(self.vault_login.is_some(), "vault_login");
        add(self.vault_cert_role.is_some(), "vault_cert_role");
        add(self.vault_pki_role.is_some(), "vault_pki_role");
        add(self.vault_kv.is_some(), "vault_kv");
        add(self.version_skew.is_some(), "version_skew");
        add(self.command.is_some(), "command");
        k
    }

    /// The check's kind (first one set; validation guarantees exactly one).
    pub fn kind(&self) -> &'static str {
        self.kinds().first().copied().unwrap_or("none")
    }

    /// Stage name, `default` when unset.
    pub fn stage_name(&self) -> &str {
        self.stage.as_deref().unwrap_or("default")
    }
}

/// All check kinds, for messages.
pub const KINDS: &[&str] = &[
    "tls",
    "files",
    "vault_health",
    "vault_login",
    "vault_cert_role",
    "vault_pki_role",
    "vault_kv",
    "version_skew",
    "command",
];
