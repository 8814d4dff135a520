//! Vault and OpenBao version strings: parsing `1.20.4`, `1.17.0-beta1+ent`, the CLI's
//! `Vault v1.21.1 (…)` / `OpenBao v2.7.2 (…)` line and the agent's start-up note `Vault Agent
//! version: a, Vault server version: s`, and telling the two products apart.

use std::fmt;
use std::sync::OnceLock;

/// `major.minor.patch`; pre-release and build metadata are kept only in the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// Parses `1.20.4`, `v1.21.1`, `1.17.0-beta1+ent`, `1.20` (patch 0).
    pub fn parse(s: &str) -> Option<Version> {
        let core = s.trim().trim_start_matches('v');
        let core = core.split(['-', '+', ' ']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        parts.next().is_none().then_some(Version {
            major,
            minor,
            patch,
        })
    }

    /// Signed minor distance `self − other`, when the majors agree.
    pub fn minor_skew(self, other: Version) -> Option<i64> {
        (self.major == other.major).then(|| self.minor as i64 - other.minor as i64)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Which server family a version belongs to: versions compare only within one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Vault,
    OpenBao,
}

impl Product {
    /// The name an operator knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Product::Vault => "HashiCorp Vault",
            Product::OpenBao => "OpenBao",
        }
    }

    /// The product a text names (`OpenBao v2.7.2`, `Vault v1.21.1`), if any.
    pub fn named_in(text: &str) -> Option<Product> {
        if text.contains("OpenBao") {
            Some(Product::OpenBao)
        } else if text.contains("Vault") {
            Some(Product::Vault)
        } else {
            None
        }
    }

    /// The product when nothing names it: OpenBao's releases start at 2.0, HashiCorp Vault's
    /// are 1.x.
    pub fn by_major(v: Version) -> Product {
        if v.major >= 2 {
            Product::OpenBao
        } else {
            Product::Vault
        }
    }
}

/// A version with the product it was stated for (`None` when the text did not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stated {
    pub product: Option<Product>,
    pub version: String,
}

impl Stated {
    /// `2.7.2`, `v1.21.1`, `OpenBao 2.7.2`, `Vault v1.21.1`.
    pub fn parse_given(text: &str) -> Stated {
        let version = text
            .trim()
            .trim_start_matches("OpenBao")
            .trim_start_matches("Vault")
            .trim()
            .trim_start_matches('v');
        Stated {
            product: Product::named_in(text),
            version: version.to_string(),
        }
    }

    /// The stated product, else the one its major version implies.
    pub fn product(&self) -> Option<Product> {
        self.product
            .or_else(|| Version::parse(&self.version).map(Product::by_major))
    }
}

fn re(cell: &'static OnceLock<regex::Regex>, pattern: &str) -> &'static regex::Regex {
    cell.get_or_init(|| regex::Regex::new(pattern).expect("static regex"))
}

/// The version in `vault version` / `vault-agent -version` output: `Vault v1.21.1 (hash), built
/// …` (also `OpenBao v2.1.0`): the product and the text after the `v`.
pub fn from_cli_output(text: &str) -> Option<Stated> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = re(
        &RE,
        r"(?m)\b(Vault|OpenBao)\s+v(\d+\.\d+(?:\.\d+)?[0-9A-Za-z.+-]*)",
    );
    re.captures(text).map(|c| Stated {
        product: Product::named_in(&c[1]),
        version: c[2].to_string(),
    })
}

/// What an agent's start-up output says about versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLogVersions {
    pub agent: String,
    /// The product the line names (`OpenBao Agent`, `Version: Vault v…`).
    pub product: Option<Product>,
    /// The server version the agent saw at start (only in the mismatch note).
    pub server: Option<String>,
}

/// The last version statement in an agent log: the mismatch note (`Vault Agent version: a,
/// Vault server version: s`, also `Vault Proxy` / `OpenBao Agent`), or the configuration
/// block's `Version: Vault v1.14.0` line — whichever comes last (the latest start).
pub fn from_agent_log(text: &str) -> Option<AgentLogVersions> {
    static NOTE: OnceLock<regex::Regex> = OnceLock::new();
    static BLOCK: OnceLock<regex::Regex> = OnceLock::new();
    let note = re(
        &NOTE,
        r"(Vault|OpenBao) (?:Agent|Proxy) version: ([0-9][0-9A-Za-z.+-]*), (?:Vault|OpenBao) server version: ([0-9][0-9A-Za-z.+-]*)",
    );
    let block = re(&BLOCK, r"Version: (Vault|OpenBao) v([0-9][0-9A-Za-z.+-]*)");
    let last_note = note.captures_iter(text).last().map(|c| {
        let at = c.get(0).map_or(0, |m| m.start());
        let v = AgentLogVersions {
            agent: c[2].to_string(),
            product: Product::named_in(&c[1]),
            server: Some(c[3].to_string()),
        };
        (at, v)
    });
    let last_block = block.captures_iter(text).last().map(|c| {
        let at = c.get(0).map_or(0, |m| m.start());
        let v = AgentLogVersions {
            agent: c[2].to_string(),
            product: Product::named_in(&c[1]),
            server: None,
        };
        (at, v)
    });
    match (last_note, last_block) {
        (Some(n), Some(b)) => Some(if b.0 > n.0 { b.1 } else { n.1 }),
        (n, b) => n.or(b).map(|x| x.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        let v = Version::parse("1.17.0-beta1+ent").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 17, 0));
        assert_eq!(Version::parse("v1.21.1").unwrap().to_string(), "1.21.1");
        assert!(Version::parse("one.two").is_none() && Version::parse("1.2.3.4").is_none());
        let (a, s) = (
            Version::parse("1.21.1").unwrap(),
            Version::parse("1.20.4").unwrap(),
        );
        assert_eq!(a.minor_skew(s), Some(1));
        assert_eq!(s.minor_skew(a), Some(-1));
    }

    #[test]
    fn cli_and_log_lines() {
        let out = "Vault v1.21.1 (8b2f2ac1c6d9b7c3), built 2025-11-18T13:04:32Z\n";
        let cli = from_cli_output(out).unwrap();
        assert_eq!(
            (cli.version.as_str(), cli.product),
            ("1.21.1", Some(Product::Vault))
        );
        let bao = from_cli_output("OpenBao v2.7.2 (9e0a0d3c), built 2026-10-26T20:32:27Z").unwrap();
        assert_eq!(
            (bao.version.as_str(), bao.product),
            ("2.7.2", Some(Product::OpenBao))
        );
        let block = "                 Version: OpenBao v2.7.2, committed 2026-10-26T20:32:27Z";
        assert_eq!(
            from_agent_log(block).unwrap().product,
            Some(Product::OpenBao)
        );
        let log = "==> Note: Vault Agent version does not match Vault server version. Vault Agent version: 1.21.1, Vault server version: 1.20.4\n==> Vault Agent started!";
        let got = from_agent_log(log).unwrap();
        assert_eq!(
            (got.agent.as_str(), got.server.as_deref()),
            ("1.21.1", Some("1.20.4"))
        );
        let block = "              Version: Vault v1.14.0, built 2023-06-19T11:40:23Z";
        assert_eq!(from_agent_log(block).unwrap().agent, "1.14.0");
        assert!(from_agent_log("nothing here").is_none());
    }
}
