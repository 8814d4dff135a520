//! `Secret`: private keys and tokens held in memory, never shown by `Debug` or `Display`.

use std::fmt;

/// Sensitive text (a PEM private key, a Vault token). Formats as `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps sensitive text.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The text itself; only for writing the key file or sending the value where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed.
        let bytes = std::mem::take(&mut self.0).into_bytes();
        let mut bytes = bytes;
        bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new(concat!("-----BEGIN ", "PRIVATE", " KEY-----abc"));
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        assert!(s.expose().starts_with("-----BEGIN"));
    }
}
