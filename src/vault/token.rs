//! A Vault token that cannot leak by accident: `Debug` and `Display` print `[redacted]`, it is
//! not serializable, and while it is alive [`crate::redact::redact`] removes its value from
//! any text.

use std::fmt;
use std::sync::Arc;

/// A Vault token. Only [`Token::expose`] gives the secret, for the `X-Vault-Token` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// Wraps a token (and has redaction remove its value while it lives); None for an empty
    /// or whitespace-only string.
    pub fn new(secret: &str) -> Option<Token> {
        let t = secret.trim();
        if t.is_empty() {
            return None;
        }
        let held: Arc<str> = Arc::from(t);
        crate::redact::remember(&held);
        Some(Token(held))
    }

    /// A token from configuration (the profile's `token:`, `VAULT_TOKEN`): redaction removes
    /// its value for the life of the process, not only while this value lives.
    pub fn configured(secret: &str) -> Option<Token> {
        let t = Token::new(secret)?;
        crate::redact::remember_always(&t.0);
        Some(t)
    }

    /// The secret itself. Use only to build the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([redacted])")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_print() {
        let t = Token::new("hvs.CAESIJ2xExampleExampleExample").unwrap();
        assert_eq!(format!("{t:?} {t}"), "Token([redacted]) [redacted]");
        assert!(Token::new("  ").is_none());
    }

    #[test]
    fn a_live_token_is_redacted_in_any_text() {
        let t = Token::new("site-specific-token-0042").unwrap();
        let said = "lookup of site-specific-token-0042 failed";
        assert_eq!(crate::redact::redact(said), "lookup of [redacted] failed");
        drop(t);
    }
}
