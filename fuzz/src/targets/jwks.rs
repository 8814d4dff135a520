//! JSON Web Key Sets and tokens, as servers and files give them: `jwk::parse_set` on the key
//! set, the key-set assertions, `Cache-Control` parsing, and `jwt::assert_token` on a token
//! against the set. The first two bytes give the key set's length; the rest is the token (and
//! the Cache-Control value). No message may quote the token.

use rotcheck::kinds::jwks::{jwk, jwt, policy};

/// The instant tokens are judged at (2027-01-15).
pub const NOW: i64 = 1_800_000_000;

/// Fuzz entry point.
pub fn run(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
    let (set_bytes, rest) = data[2..].split_at(n);
    let text = String::from_utf8_lossy(rest);
    let _ = policy::cache_max_age(&text);
    let Ok(set) = jwk::parse_set(set_bytes) else {
        return;
    };
    let _ = (policy::assert_keys(&set, "fuzz"), set.total());
    let a = jwt::assert_token(Ok(text.to_string()), &set, NOW);
    let token = text.trim();
    assert!(
        token.len() < 16 || !a.message.contains(token),
        "a message quotes the token: {:?}",
        a.message
    );
}
