//! `token_file`: a JWT (compact JWS) whose header `kid` must be in the set and whose signature
//! must verify with that key (RS256/384/512, PS256/384/512, ES256/384, EdDSA with Ed25519),
//! and whose `exp` must not have passed. A token is a credential: messages name only its
//! `kid`, `alg`, `iss` and `exp`, never the token or any other claim.
//!
//! Reasons: `jwt_malformed`, `jwt_kid_unknown`, `jwt_bad_signature` (also an algorithm the key
//! cannot make), `jwt_expired`.

use super::jwk::{b64url, Curve, Jwk, KeySet, Material, OkpCurve};
use crate::model::{Assertion, Status};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::Value;

/// The assertion's name.
pub const NAME: &str = "token";

/// Most bytes read from `token_file`.
pub const TOKEN_CAP: u64 = 64 * 1024;

/// A compact JWS split and decoded.
#[derive(Debug, Clone)]
pub struct Token {
    pub alg: String,
    pub kid: Option<String>,
    pub iss: Option<String>,
    pub exp: Option<i64>,
    /// `header.payload` as sent: what is signed.
    signed: Vec<u8>,
    signature: Vec<u8>,
}

impl Token {
    /// `kid "k1", alg RS256, iss "https://…"`: what messages may say of a token.
    fn describe(&self) -> String {
        let mut s = format!(
            "kid {}, alg {}",
            self.kid
                .as_deref()
                .map_or("none".into(), |k| format!("{k:?}")),
            self.alg
        );
        if let Some(iss) = &self.iss {
            s.push_str(&format!(", iss {iss:?}"));
        }
        s
    }
}

/// Parses a compact JWS; `Err` says what is wrong without quoting it.
pub fn parse(text: &str) -> Result<Token, String> {
    let parts: Vec<&str> = text.trim().split('.').collect();
    let &[h, p, s] = parts.as_slice() else {
        return Err(format!("has {} dot-separated parts; expected a compact JWS header.payload.signature (a JWE or a bare claim set cannot be verified)", parts.len()));
    };
    let header = json_part(h, "header")?;
    let claims = json_part(p, "payload")?;
    let signature = b64url(s).ok_or("has a signature that is not base64url")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if alg.is_empty() || alg == "none" {
        return Err("is unsigned (alg none or missing); expected a signed JWS".into());
    }
    let string = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    Ok(Token {
        alg: alg.to_string(),
        kid: string(&header, "kid"),
        iss: string(&claims, "iss"),
        exp: claims.get("exp").and_then(Value::as_f64).map(|e| e as i64),
        signed: format!("{h}.{p}").into_bytes(),
        signature,
    })
}

fn json_part(part: &str, what: &str) -> Result<Value, String> {
    let bytes = b64url(part).ok_or_else(|| format!("has a {what} that is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(format!("has a {what} that is not a JSON object")),
    }
}

/// Verifies the signature with `key`; `Err` says why not.
pub fn verify(t: &Token, key: &Jwk) -> Result<(), String> {
    if let Some(alg) = key.alg.as_deref().filter(|a| *a != t.alg) {
        return Err(format!(
            "the token says alg {} but key {} is for {alg}",
            t.alg,
            key.label()
        ));
    }
    let ok = match &key.material {
        Material::Rsa { n, e } => rsa(&t.alg, n, e, t),
        Material::Ec { curve, x, y } => ec(&t.alg, *curve, x, y, t),
        Material::Okp { curve, x } => okp(&t.alg, *curve, x, t),
    }?;
    match ok {
        true => Ok(()),
        false => Err(format!(
            "the signature does not verify with key {} ({})",
            key.label(),
            key.describe()
        )),
    }
}

fn mismatch(t: &Token, what: &str) -> String {
    format!("alg {} cannot be verified with {what}", t.alg)
}

fn rsa(alg: &str, n: &[u8], e: &[u8], t: &Token) -> Result<bool, String> {
    let params: &signature::RsaParameters = match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
        "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return Err(mismatch(t, "an RSA key")),
    };
    let key = RsaPublicKeyComponents { n, e };
    if n.len() * 8 < 2048 {
        return Err("the RSA key is under 2048 bits, which rotcheck does not verify with".into());
    }
    Ok(key.verify(params, &t.signed, &t.signature).is_ok())
}

fn ec(alg: &str, curve: Curve, x: &[u8], y: &[u8], t: &Token) -> Result<bool, String> {
    let algorithm: &dyn VerificationAlgorithm = match (alg, curve) {
        ("ES256", Curve::P256) => &signature::ECDSA_P256_SHA256_FIXED,
        ("ES384", Curve::P384) => &signature::ECDSA_P384_SHA384_FIXED,
        ("ES512", Curve::P521) => {
            return Err("ES512 (P-521) signatures are not verified by rotcheck".into())
        }
        _ => return Err(mismatch(t, &format!("an EC {} key", curve.name()))),
    };
    let mut point = vec![4u8];
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    let key = UnparsedPublicKey::new(algorithm, point);
    Ok(key.verify(&t.signed, &t.signature).is_ok())
}

fn okp(alg: &str, curve: OkpCurve, x: &[u8], t: &Token) -> Result<bool, String> {
    match (alg, curve) {
        ("EdDSA" | "Ed25519", OkpCurve::Ed25519) => {
            let key = UnparsedPublicKey::new(&signature::ED25519, x);
            Ok(key.verify(&t.signed, &t.signature).is_ok())
        }
        ("EdDSA" | "Ed448", OkpCurve::Ed448) => {
            Err("Ed448 signatures are not verified by rotcheck".into())
        }
        _ => Err(mismatch(t, &format!("an OKP {} key", curve.name()))),
    }
}

/// The `token` assertion for the token read (or why it could not be read) against `set`.
pub fn assert_token(read: Result<String, (String, String)>, set: &KeySet, now: i64) -> Assertion {
    let text = match read {
        Ok(t) => t,
        Err((class, msg)) => return Assertion::not_ok(NAME, Status::Error, &class, msg),
    };
    let t = match parse(&text) {
        Ok(t) => t,
        Err(why) => return Assertion::fail(NAME, "jwt_malformed", format!("the token {why}")),
    };
    let Some(kid) = t.kid.as_deref() else {
        let msg = format!(
            "the token ({}) names no kid; expected a kid of the set so consumers can pick the key",
            t.describe()
        );
        return Assertion::fail(NAME, "jwt_kid_unknown", msg);
    };
    let keys: Vec<&Jwk> = set.with_kid(kid).collect();
    if keys.is_empty() {
        let msg = format!("the token ({}) is signed with a kid the set does not publish; consumers refuse it: publish the key before signing with it", t.describe());
        return Assertion::fail(NAME, "jwt_kid_unknown", msg);
    }
    let verdicts: Vec<Result<(), String>> = keys.iter().map(|k| verify(&t, k)).collect();
    if let Some(Err(why)) = verdicts.iter().all(Result::is_err).then(|| &verdicts[0]) {
        let msg = format!("the token ({}): {why}; expected it to verify with the published key: was it signed by another key of the same kid, or altered?", t.describe());
        return Assertion::fail(NAME, "jwt_bad_signature", msg);
    }
    expiry(&t, now)
}

fn expiry(t: &Token, now: i64) -> Assertion {
    let Some(exp) = t.exp else {
        let msg = format!("the token ({}) verifies; it has no exp", t.describe());
        return Assertion::pass(NAME, msg);
    };
    let when = crate::certs::rfc3339(exp);
    if exp <= now {
        let msg = format!("the token ({}) verifies but expired at {when}; expected a current token: issue a new one", t.describe());
        return Assertion::fail(NAME, "jwt_expired", msg);
    }
    let msg = format!("the token ({}) verifies; exp {when}", t.describe());
    Assertion::pass(NAME, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn enc(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    fn signed(kp: &Ed25519KeyPair, kid: &str, exp: i64) -> String {
        let h = enc(format!("{{\"alg\":\"EdDSA\",\"kid\":\"{kid}\"}}").as_bytes());
        let p = enc(format!("{{\"iss\":\"t\",\"sub\":\"secret-sub\",\"exp\":{exp}}}").as_bytes());
        let sig = kp.sign(format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", enc(sig.as_ref()))
    }

    fn set_of(kp: &Ed25519KeyPair, kid: &str) -> KeySet {
        let x = enc(kp.public_key().as_ref());
        let doc = format!("{{\"keys\":[{{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"{kid}\",\"x\":\"{x}\"}}]}}");
        super::super::jwk::parse_set(doc.as_bytes()).unwrap()
    }

    fn pair() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    #[test]
    fn tokens_verify_expire_and_name_no_claims() {
        let kp = pair();
        let set = set_of(&kp, "k1");
        let good = signed(&kp, "k1", 2000);
        let a = assert_token(Ok(good.clone()), &set, 1000);
        assert_eq!(a.status, Status::Pass, "{a:?}");
        let a = assert_token(Ok(good.clone()), &set, 3000);
        assert_eq!(a.reason.as_deref(), Some("jwt_expired"));
        assert!(!a.message.contains("secret-sub") && !a.message.contains(&good));
        let unknown = signed(&kp, "k2", 2000);
        let a = assert_token(Ok(unknown), &set, 1000);
        assert_eq!(a.reason.as_deref(), Some("jwt_kid_unknown"));
        let mut tampered = good.into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let a = assert_token(Ok(String::from_utf8(tampered).unwrap()), &set, 1000);
        assert_eq!(a.reason.as_deref(), Some("jwt_bad_signature"));
        let other = signed(&pair(), "k1", 2000);
        let a = assert_token(Ok(other), &set, 1000);
        assert_eq!(a.reason.as_deref(), Some("jwt_bad_signature"));
        for bad in ["", "a.b", "x.y.z", "eyJhbGciOiJub25lIn0.e30."] {
            let a = assert_token(Ok(bad.into()), &set, 1000);
            assert_eq!(a.reason.as_deref(), Some("jwt_malformed"), "{bad}");
        }
    }
}
