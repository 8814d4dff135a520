//! Vault answers: JSON or not, `errors` lists, go-multierror text, and the excerpt of a
//! non-JSON body. The first two bytes are the HTTP status; the rest is the body. The token
//! the request was sent with must never appear in any message.

use rotcheck::vault::client::reply;
use rotcheck::vault::token::Token;

/// The token every fuzzed request "was sent with".
pub const TOKEN: &str = "hvs.FuzzTokenThatMustNeverPrint0123";

/// Fuzz entry point.
pub fn run(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]) % 1000;
    let token = Token::new(TOKEN).expect("a non-empty token");
    let r = reply(
        "GET",
        "secret/data/app?version=2",
        status,
        &data[2..],
        Some(&token),
    );
    let mut said = r.errors().join("\n");
    said.push_str(r.excerpt.as_deref().unwrap_or(""));
    let err = r.to_error();
    said.push_str(&err.to_string());
    let _ = (err.class(), err.status(), err.is_connection());
    if let Err(e) = r.into_ok() {
        said.push_str(&e.to_string());
    }
    assert!(
        !said.contains(TOKEN),
        "the token leaked into a message: {said:?}"
    );
}
