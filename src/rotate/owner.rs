//! `--owner user:group`: parsing (chown's forms) and resolution to numeric ids.

use nix::unistd::{Gid, Group, Uid, User};
use std::fmt;

/// An owner and/or group as written: `user`, `user:group`, `user:` (login group), `:group`;
/// names or numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub user: Option<String>,
    pub group: Option<String>,
    /// `user:` — use the user's login group.
    pub login_group: bool,
}

/// Why an ownership could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    #[error("bad owner {0:?}; write user, user:group, user: or :group (names or numeric ids)")]
    Syntax(String),
    #[error("no user named {0:?} on this machine; create it or fix --owner")]
    NoUser(String),
    #[error("no group named {0:?} on this machine; create it or fix --owner")]
    NoGroup(String),
}

impl std::str::FromStr for Ownership {
    type Err = OwnerError;

    fn from_str(s: &str) -> Result<Self, OwnerError> {
        let bad = || OwnerError::Syntax(s.to_string());
        let (u, g, login) = match s.split_once(':') {
            Some((u, "")) => (u, "", true),
            Some((u, g)) => (u, g, false),
            None => (s, "", false),
        };
        let valid = |t: &str| {
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-$".contains(c))
        };
        if (u.is_empty() && g.is_empty()) || (login && u.is_empty()) || !valid(u) || !valid(g) {
            return Err(bad());
        }
        let opt = |t: &str| (!t.is_empty()).then(|| t.to_string());
        Ok(Ownership {
            user: opt(u),
            group: opt(g),
            login_group: login,
        })
    }
}

impl fmt::Display for Ownership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = self.user.as_deref().unwrap_or("");
        match (&self.group, self.login_group) {
            (Some(g), _) => write!(f, "{u}:{g}"),
            (None, true) => write!(f, "{u}:"),
            (None, false) => f.write_str(u),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ownership {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Numeric ids to set; `None` leaves that id as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Ownership {
    /// Resolves names to ids on this machine.
    pub fn resolve(&self) -> Result<Ids, OwnerError> {
        let user = match &self.user {
            Some(u) => Some(find_user(u)?),
            None => None,
        };
        let gid = match (&self.group, self.login_group, &user) {
            (Some(g), _, _) => Some(find_group(g)?),
            (None, true, Some(u)) => Some(u.gid.as_raw()),
            _ => None,
        };
        Ok(Ids {
            uid: user.map(|u| u.uid.as_raw()),
            gid,
        })
    }
}

fn find_user(name: &str) -> Result<User, OwnerError> {
    let found = match name.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(name),
    };
    found
        .ok()
        .flatten()
        .ok_or_else(|| OwnerError::NoUser(name.into()))
}

fn find_group(name: &str) -> Result<u32, OwnerError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(OwnerError::NoGroup(name.into())),
    }
}

/// A user name for a uid (the number when unknown).
pub fn user_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

/// A group name for a gid (the number when unknown).
pub fn group_name(gid: u32) -> String {
    match Group::from_gid(Gid::from_raw(gid)) {
        Ok(Some(g)) => g.name,
        _ => gid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chown_forms() {
        let o: Ownership = "root:root".parse().unwrap();
        assert_eq!(o.user.as_deref(), Some("root"));
        assert_eq!(o.group.as_deref(), Some("root"));
        let o: Ownership = ":adm".parse().unwrap();
        assert_eq!((o.user, o.group.as_deref()), (None, Some("adm")));
        let o: Ownership = "root:".parse().unwrap();
        assert!(o.login_group);
        assert_eq!(o.to_string(), "root:");
        assert!(":".parse::<Ownership>().is_err());
        assert!("a b".parse::<Ownership>().is_err());
    }

    #[test]
    fn resolves_root() {
        let ids = "root:".parse::<Ownership>().unwrap().resolve().unwrap();
        assert_eq!(
            ids,
            Ids {
                uid: Some(0),
                gid: Some(0)
            }
        );
        assert!(matches!(
            "no-such-user-rotcheck"
                .parse::<Ownership>()
                .unwrap()
                .resolve(),
            Err(OwnerError::NoUser(_))
        ));
    }
}
