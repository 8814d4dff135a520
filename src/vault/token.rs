//! A Vault token that cannot leak by accident: `Debug` and `Display` print `<redacted>`, it is
//! not serializable, and text from Vault is scrubbed of token-shaped strings before it goes
//! into a message.

use std::fmt;
use std::sync::{Arc, OnceLock};

/// A Vault token. Only [`Token::expose`] gives the secret, for the `X-Vault-Token` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// Wraps a token; None for an empty or whitespace-only string.
    pub fn new(secret: &str) -> Option<Token> {
        let t = secret.trim();
        (!t.is_empty()).then(|| Token(Arc::from(t)))
    }

    /// The secret itself. Use only to build the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Token-shaped substrings: `hvs.`/`hvb.`/`hvr.` tokens and legacy `s.`/`b.` tokens.
fn token_pattern() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\b(hv[sbr]|[sbr])\.[A-Za-z0-9_-]{16,}").expect("static regex")
    })
}

/// Removes `secret` (when given) and anything token-shaped from text that came from Vault.
pub fn scrub(text: &str, secret: Option<&Token>) -> String {
    let mut out = text.to_string();
    if let Some(t) = secret {
        if t.expose().len() >= 4 {
            out = out.replace(t.expose(), "<redacted>");
        }
    }
    token_pattern()
        .replace_all(&out, "$1.<redacted>")
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_print() {
        let t = Token::new("hvs.CAESIJ2xExampleExampleExample").unwrap();
        assert_eq!(format!("{t:?} {t}"), "Token(<redacted>) <redacted>");
        assert!(Token::new("  ").is_none());
    }

    #[test]
    fn scrub_removes_token_shapes() {
        let t = Token::new("custom-secret-1234").unwrap();
        let s = scrub(
            "bad token hvs.CAESIJ2xExampleExampleExample and custom-secret-1234",
            Some(&t),
        );
        assert!(!s.contains("CAESIJ2x") && !s.contains("custom-secret"));
        assert_eq!(scrub("permission denied", None), "permission denied");
    }
}
