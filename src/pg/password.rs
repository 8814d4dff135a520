//! A database password that cannot leak by accident: `Debug` and `Display` print
//! `[redacted]`, it is not serializable, and while it is alive [`crate::redact::redact`]
//! removes its value from any text (as Vault tokens are kept, [`crate::vault::Token`]).

use std::fmt;
use std::sync::Arc;

/// A password. Only [`Password::expose`] gives the secret, for the authentication exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Arc<str>);

impl Password {
    /// Wraps a password (one trailing line break, as files and `echo` leave it, is dropped);
    /// `None` for an empty one.
    pub fn new(secret: &str) -> Option<Password> {
        let p = secret
            .strip_suffix('\n')
            .map(|p| p.strip_suffix('\r').unwrap_or(p))
            .unwrap_or(secret);
        if p.is_empty() {
            return None;
        }
        let held: Arc<str> = Arc::from(p);
        crate::redact::remember(&held);
        Some(Password(held))
    }

    /// The secret itself. Use only to authenticate.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Who logs in: a role and its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub user: String,
    pub password: Password,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print_and_are_redacted_while_alive() {
        let p = Password::new("correct-horse-battery\n").unwrap();
        assert_eq!(p.expose(), "correct-horse-battery");
        assert_eq!(format!("{p:?} {p}"), "Password([redacted]) [redacted]");
        let c = Credential {
            user: "app_v1".into(),
            password: p.clone(),
        };
        assert!(!format!("{c:?}").contains("horse"));
        let text = crate::redact::redact("login with correct-horse-battery failed");
        assert!(!text.contains("horse"), "{text}");
        assert!(Password::new("\n").is_none());
        assert_eq!(Password::new("a b\r\n").unwrap().expose(), "a b");
    }
}
