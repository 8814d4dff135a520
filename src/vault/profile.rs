//! The connection profile: the suite's `vault:` block, each unset field falling back to the
//! CLI variables — OpenBao's `BAO_*` first, then Vault's `VAULT_*` (`ADDR`, `CACERT`,
//! `CLIENT_CERT`, `CLIENT_KEY`, `TLS_SERVER_NAME`, `TOKEN`, `NAMESPACE`), as the `bao` CLI does
//! — each read from the suite's `env_file` first and then the process environment (the same
//! order as `${env:NAME}`).

use super::errors::VaultError;
use super::token::Token;
use crate::suite::{Suite, VaultProfile};
use std::fmt;
use std::path::PathBuf;

/// A Vault base address: `https://host:port[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix before `/v1/`, without a trailing slash (usually empty).
    pub base: String,
}

impl Addr {
    /// Parses `https://host[:port][/prefix]` (`http://` for dev servers; no scheme means
    /// https). IPv6 as `[::1]`.
    pub fn parse(s: &str) -> Result<Addr, VaultError> {
        let bad = |why: &str| VaultError::BadAddress {
            addr: s.to_string(),
            why: why.to_string(),
        };
        let (https, rest) = if let Some(r) = s.trim().strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.trim().strip_prefix("http://") {
            (false, r)
        } else if s.contains("://") {
            return Err(bad("the scheme is neither https:// nor http://"));
        } else {
            (true, s.trim())
        };
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = split_authority(authority, if https { 443 } else { 80 })
            .ok_or_else(|| bad("the host or port is malformed"))?;
        Ok(Addr {
            https,
            host,
            port,
            base: base.to_string(),
        })
    }

    /// `host:port` for the Host header and for connecting (`[v6]:port`).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.base)
    }
}

fn split_authority(a: &str, default_port: u16) -> Option<(String, u16)> {
    if a.is_empty() || a.contains('@') {
        return None;
    }
    if let Some(rest) = a.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((h.to_string(), port));
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None => Some((a.to_string(), default_port)),
    }
    .filter(|(_, port)| *port != 0)
}

/// Where Vault is and which TLS identity to present.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub addr: Addr,
    /// SNI and the name verified; the address's host when unset.
    pub server_name: Option<String>,
    /// CA bundle that verifies Vault; the system bundle when unset.
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Sent as `X-Vault-Namespace` (Enterprise).
    pub namespace: Option<String>,
}

/// Where the token for token-needing reads comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenSource {
    /// A token given in the profile (`token:`) or in `VAULT_TOKEN`.
    Given { token: Token, from: &'static str },
    /// Log in with the profile's client certificate at `auth/<mount>/login`; revoked at the end.
    CertLogin { mount: String, role: Option<String> },
    /// Nothing configured.
    None,
}

/// The resolved profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub endpoint: Endpoint,
    pub token: TokenSource,
}

/// Looks up a fallback variable by name (non-empty values only).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;
/// Resolves a path written in the suite (relative to the suite's folder).
pub type PathResolver<'a> = &'a dyn Fn(&str) -> PathBuf;

impl Settings {
    /// Resolves the suite's profile against its env file and the process environment.
    pub fn for_suite(suite: &Suite) -> Result<Settings, VaultError> {
        let env = |k: &str| suite_env(suite, k);
        let path = |p: &str| suite.path_of(p);
        Settings::resolve(suite.file.vault.as_ref(), &env, &path)
    }

    /// Resolves a profile with explicit lookups (tests feed maps instead of the process env).
    pub fn resolve(
        profile: Option<&VaultProfile>,
        env: EnvLookup<'_>,
        path: PathResolver<'_>,
    ) -> Result<Settings, VaultError> {
        let empty = VaultProfile::default();
        let p = profile.unwrap_or(&empty);
        let pick =
            |v: &Option<String>, var: &str| set(v).or_else(|| cli_var(env, var).map(|x| x.1));
        let file = |v: &Option<String>, var: &str| match set(v) {
            Some(s) => Some(path(&s)),
            None => cli_var(env, var).map(|x| PathBuf::from(x.1)),
        };
        let addr = pick(&p.addr, "ADDR").ok_or(VaultError::NoAddress)?;
        let endpoint = Endpoint {
            addr: Addr::parse(&addr)?,
            server_name: pick(&p.server_name, "TLS_SERVER_NAME"),
            ca_file: file(&p.ca_file, "CACERT"),
            client_cert: file(&p.client_cert, "CLIENT_CERT"),
            client_key: file(&p.client_key, "CLIENT_KEY"),
            namespace: pick(&p.namespace, "NAMESPACE"),
        };
        Ok(Settings {
            endpoint,
            token: token_source(p, env),
        })
    }
}

/// Explicit profile settings win over the environment: `token:`, then `auth.cert`, then
/// `BAO_TOKEN`, then `VAULT_TOKEN`.
fn token_source(p: &VaultProfile, env: EnvLookup<'_>) -> TokenSource {
    if let Some(token) = p.token.as_deref().and_then(Token::configured) {
        return TokenSource::Given {
            token,
            from: "vault.token",
        };
    }
    if let Some(auth) = &p.auth {
        return TokenSource::CertLogin {
            mount: auth.cert.mount.trim_matches('/').to_string(),
            role: auth.cert.role.clone(),
        };
    }
    let given = cli_var(env, "TOKEN").and_then(|(from, t)| Some((from, Token::configured(&t)?)));
    match given {
        Some((from, token)) => TokenSource::Given { token, from },
        None => TokenSource::None,
    }
}

/// `BAO_<name>` if set, else `VAULT_<name>`, with the variable's name: OpenBao's CLI reads
/// both and prefers its own.
fn cli_var(env: EnvLookup<'_>, name: &str) -> Option<(&'static str, String)> {
    ["BAO_", "VAULT_"].into_iter().find_map(|prefix| {
        let var = static_name(prefix, name)?;
        env(var).map(|v| (var, v))
    })
}

/// The profile's variable names, as `'static` strings for messages.
fn static_name(prefix: &str, name: &str) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "BAO_ADDR",
        "BAO_CACERT",
        "BAO_CLIENT_CERT",
        "BAO_CLIENT_KEY",
        "BAO_TLS_SERVER_NAME",
        "BAO_TOKEN",
        "BAO_NAMESPACE",
        "VAULT_ADDR",
        "VAULT_CACERT",
        "VAULT_CLIENT_CERT",
        "VAULT_CLIENT_KEY",
        "VAULT_TLS_SERVER_NAME",
        "VAULT_TOKEN",
        "VAULT_NAMESPACE",
    ];
    NAMES
        .iter()
        .copied()
        .find(|n| n.strip_prefix(prefix) == Some(name))
}

fn set(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A variable from the suite's env file, else the process environment; empty counts as unset.
pub fn suite_env(suite: &Suite, name: &str) -> Option<String> {
    suite
        .env
        .get(name)
        .cloned()
        .or_else(|| std::env::var(name).ok())
        .filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn resolve(p: &VaultProfile, vars: &[(&str, &str)]) -> Result<Settings, VaultError> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = |k: &str| map.get(k).cloned();
        let path = |s: &str| PathBuf::from("/suite").join(s);
        Settings::resolve(Some(p), &env, &path)
    }

    #[test]
    fn addresses_parse() {
        let a = Addr::parse("https://127.0.0.1:22400").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.https),
            ("127.0.0.1", 22400, true)
        );
        assert_eq!(Addr::parse("https://vault.example/").unwrap().port, 443);
        let v6 = Addr::parse("https://[::1]:8200/prefix/").unwrap();
        assert_eq!((v6.host.as_str(), v6.base.as_str()), ("::1", "/prefix"));
        assert_eq!(v6.to_string(), "https://[::1]:8200/prefix");
        assert!(Addr::parse("127.0.0.1:8200").unwrap().https);
        assert!(Addr::parse("ftp://127.0.0.1:8200").is_err());
        assert!(Addr::parse("https://host:notaport").is_err());
    }

    #[test]
    fn profile_wins_then_env() {
        let p = VaultProfile {
            ca_file: Some("ca.pem".into()),
            ..Default::default()
        };
        let vars = [
            ("VAULT_ADDR", "https://vault:8200"),
            ("VAULT_CACERT", "/env/ca.pem"),
            ("VAULT_TLS_SERVER_NAME", "vault.prod"),
            ("VAULT_TOKEN", "hvs.fromenvfromenvfromenv"),
        ];
        let s = resolve(&p, &vars).unwrap();
        assert_eq!(s.endpoint.ca_file, Some(PathBuf::from("/suite/ca.pem")));
        assert_eq!(s.endpoint.server_name.as_deref(), Some("vault.prod"));
        assert!(matches!(
            s.token,
            TokenSource::Given {
                from: "VAULT_TOKEN",
                ..
            }
        ));
        assert_eq!(resolve(&p, &[]).unwrap_err(), VaultError::NoAddress);
    }

    #[test]
    fn bao_variables_win_over_vault_ones() {
        let vars = [
            ("VAULT_ADDR", "https://vault:8200"),
            ("BAO_ADDR", "https://bao:8200"),
            ("BAO_CACERT", "/env/bao-ca.pem"),
            ("VAULT_CACERT", "/env/vault-ca.pem"),
            ("VAULT_CLIENT_CERT", "/env/c.pem"),
            ("BAO_TLS_SERVER_NAME", "bao.prod"),
            ("BAO_NAMESPACE", "team"),
            ("BAO_TOKEN", "s.fromthebaoenvironment"),
            ("VAULT_TOKEN", "hvs.fromenvfromenvfromenv"),
        ];
        let s = resolve(&VaultProfile::default(), &vars).unwrap();
        assert_eq!(s.endpoint.addr.host, "bao");
        assert_eq!(s.endpoint.ca_file, Some(PathBuf::from("/env/bao-ca.pem")));
        assert_eq!(s.endpoint.client_cert, Some(PathBuf::from("/env/c.pem")));
        assert_eq!(s.endpoint.server_name.as_deref(), Some("bao.prod"));
        assert_eq!(s.endpoint.namespace.as_deref(), Some("team"));
        assert!(matches!(
            s.token,
            TokenSource::Given {
                from: "BAO_TOKEN",
                ..
            }
        ));
        let only_bao = resolve(
            &VaultProfile::default(),
            &[("BAO_ADDR", "http://127.0.0.1:1")],
        );
        assert_eq!(only_bao.unwrap().endpoint.addr.port, 1);
    }

    #[test]
    fn cert_login_beats_env_token() {
        let p: VaultProfile = serde_yaml_ng::from_str(
            "addr: https://v:1\nauth: { cert: { mount: cert, role: admin } }",
        )
        .unwrap();
        let s = resolve(&p, &[("VAULT_TOKEN", "hvs.xxxxxxxxxxxxxxxxxxxxxxxx")]).unwrap();
        let want = TokenSource::CertLogin {
            mount: "cert".into(),
            role: Some("admin".into()),
        };
        assert_eq!(s.token, want);
    }
}
