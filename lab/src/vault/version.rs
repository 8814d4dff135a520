//! The emulated server version and the behaviour switches keyed on it.

use std::fmt;

/// `major.minor.patch` of the emulated Vault; pre-release and build metadata are ignored for
/// comparisons but kept in the reported string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ver {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Ver {
    /// Parses `1.20.4`, `v1.17.0-beta1+ent`; `None` unless it starts with `X.Y`.
    pub fn parse(s: &str) -> Option<Ver> {
        let core = s.trim().trim_start_matches('v');
        let core = core.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        Some(Ver {
            major,
            minor,
            patch,
        })
    }

    /// True for this version or newer (`1.y`).
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// An OpenBao version (2.x): forked from Vault 1.14, so none of the HashiCorp Vault
    /// changes below apply, whatever the number.
    pub fn openbao(self) -> bool {
        self.major >= 2
    }

    /// A HashiCorp Vault of this version or newer.
    fn vault_at_least(self, major: u32, minor: u32) -> bool {
        !self.openbao() && self.at_least(major, minor)
    }

    /// `mount_type` in the response envelope (PR #23047).
    pub fn has_mount_type(self) -> bool {
        self.vault_at_least(1, 16)
    }

    /// `enterprise`, `echo_duration_ms`, `clock_skew_ms` in health.
    pub fn health_116_fields(self) -> bool {
        self.vault_at_least(1, 16)
    }

    /// `replication_primary_canary_age_ms` in health; `invalid token` in 403s.
    pub fn is_117(self) -> bool {
        self.vault_at_least(1, 17)
    }

    /// Single "failed to match all constraints" cert login message (PR #27202).
    pub fn unified_login_error(self) -> bool {
        self.vault_at_least(1, 18)
    }

    /// `removedcode`, `haunhealthycode`, `removed_from_cluster`.
    pub fn is_119(self) -> bool {
        self.vault_at_least(1, 19)
    }

    /// The "additionally got errors during verification" suffix of cert logins (1.14 – 1.17).
    pub fn login_error_suffix(self) -> bool {
        self.vault_at_least(1, 14)
    }
}

impl fmt::Display for Ver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares() {
        let v = Ver::parse("1.17.0-beta1+ent").unwrap();
        assert_eq!(
            v,
            Ver {
                major: 1,
                minor: 17,
                patch: 0
            }
        );
        assert!(v.is_117() && !v.unified_login_error());
        assert!(Ver::parse("1.20.4").unwrap().is_119());
        assert!(Ver::parse("nonsense").is_none());
    }
}
