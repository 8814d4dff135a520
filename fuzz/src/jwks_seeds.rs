//! Seeds for the `jwks` target: key sets with Ed25519, P-256, RSA and unusable members, and
//! compact JWS tokens signed by their keys (valid, expired, unknown kid), each framed as the
//! key set's two-byte length, the set, then the token or a Cache-Control value.

use crate::targets::jwks::NOW;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

/// base64url without padding, as JOSE writes it.
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// `header.payload.signature` with `sign` over `header.payload`.
fn token(alg: &str, kid: &str, exp: i64, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = b64url(
        json!({"alg": alg, "kid": kid, "typ": "JWT"})
            .to_string()
            .as_bytes(),
    );
    let claims = json!({"iss": "https://idp.test", "sub": "app", "exp": exp});
    let signed = format!("{header}.{}", b64url(claims.to_string().as_bytes()));
    let sig = sign(signed.as_bytes());
    format!("{signed}.{}", b64url(&sig))
}

fn frame(set: &Value, rest: &str) -> Vec<u8> {
    let set = set.to_string().into_bytes();
    let mut out = u16::try_from(set.len())
        .expect("a small set")
        .to_be_bytes()
        .to_vec();
    out.extend(set);
    out.extend(rest.as_bytes());
    out
}

/// Every seed of the target: (name, framed bytes).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let ed = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("an Ed25519 seed");
    let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "alg": "EdDSA", "use": "sig",
        "x": b64url(ed.public_key().as_ref())});
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("a P-256 key");
    let ec = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("a P-256 key");
    let point = ec.public_key().as_ref();
    let ec_jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec1", "alg": "ES256",
        "x": b64url(&point[1..33]), "y": b64url(&point[33..65])});
    let rsa_jwk = json!({"kty": "RSA", "kid": "rsa1", "alg": "RS256",
        "n": b64url(&[0xc5; 256]), "e": "AQAB"});
    let sign_ed = |m: &[u8]| ed.sign(m).as_ref().to_vec();
    let sign_ec = |m: &[u8]| ec.sign(&rng, m).expect("a signature").as_ref().to_vec();
    let both = json!({"keys": [ed_jwk, ec_jwk, rsa_jwk]});
    let unusable = json!({"keys": [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-256", "kid": "leaky", "x": "AA", "y": "AA", "d": "AA"},
        {"kty": "OKP", "crv": "X25519", "kid": "x1", "x": b64url(&[9; 32])},
        {"kty": "RSA", "kid": "weak", "n": b64url(&[0xc5; 64]), "e": "AQAB"}
    ]});
    vec![
        (
            "ed25519_valid".into(),
            frame(&both, &token("EdDSA", "ed1", NOW + 3600, sign_ed)),
        ),
        (
            "ed25519_expired".into(),
            frame(&both, &token("EdDSA", "ed1", NOW - 60, sign_ed)),
        ),
        (
            "es256_valid".into(),
            frame(&both, &token("ES256", "ec1", NOW + 3600, sign_ec)),
        ),
        (
            "unknown_kid".into(),
            frame(&both, &token("EdDSA", "gone", NOW + 3600, sign_ed)),
        ),
        (
            "unusable_members".into(),
            frame(&unusable, "max-age=300, public"),
        ),
        (
            "discovery_not_a_set".into(),
            frame(
                &json!({"issuer": "https://idp.test", "jwks_uri": "https://idp.test/keys"}),
                "no-store",
            ),
        ),
    ]
}
