//! JSON Web Keys (RFC 7517, 7518, 8037): every key of a set parsed into its type, size and
//! public material, or the reason it cannot be used. Private or symmetric parts (`d`, `k`)
//! are never copied or quoted: a key that carries them is reported by the member's name only.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::{Map, Value};
use x509_parser::num_bigint::BigUint;

/// base64url as JOSE writes it (no padding; padding tolerated).
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// base64 (with padding) as `x5c` writes certificates.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64url text (JOSE's encoding of every binary member).
pub fn b64url(text: &str) -> Option<Vec<u8>> {
    B64URL.decode(text).ok()
}

/// A NIST curve of an `EC` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn from_name(crv: &str) -> Option<Curve> {
        match crv {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }

    /// `P-256`.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// Bytes of one coordinate.
    fn size(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Field size in bits.
    pub fn bits(self) -> usize {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// The field prime `p` and the curve constant `b` (`a` is `p - 3` on every NIST curve).
    fn constants(self) -> (&'static str, &'static str) {
        match self {
            Curve::P256 => (
                "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
                "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
            ),
            Curve::P384 => (
                "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
                "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
            ),
            Curve::P521 => (
                "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
            ),
        }
    }

    /// Whether `(x, y)` is a point of the curve: both below `p` and y² = x³ − 3x + b (mod p).
    pub fn on_curve(self, x: &[u8], y: &[u8]) -> bool {
        let (p, b) = self.constants();
        let hex = |s: &str| BigUint::parse_bytes(s.as_bytes(), 16).unwrap_or_default();
        let (p, b) = (hex(p), hex(b));
        let (x, y) = (BigUint::from_bytes_be(x), BigUint::from_bytes_be(y));
        if x >= p || y >= p {
            return false;
        }
        let three = BigUint::from(3u32);
        let lhs = (&y * &y) % &p;
        let rhs = ((&x * &x % &p) * &x + (&p - &three) * &x + &b) % &p;
        lhs == rhs
    }
}

/// The curve of an `OKP` key (RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OkpCurve {
    Ed25519,
    Ed448,
    X25519,
    X448,
}

impl OkpCurve {
    fn from_name(crv: &str) -> Option<OkpCurve> {
        match crv {
            "Ed25519" => Some(OkpCurve::Ed25519),
            "Ed448" => Some(OkpCurve::Ed448),
            "X25519" => Some(OkpCurve::X25519),
            "X448" => Some(OkpCurve::X448),
            _ => None,
        }
    }

    /// `Ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            OkpCurve::Ed25519 => "Ed25519",
            OkpCurve::Ed448 => "Ed448",
            OkpCurve::X25519 => "X25519",
            OkpCurve::X448 => "X448",
        }
    }

    /// Bytes of the public key.
    fn size(self) -> usize {
        match self {
            OkpCurve::Ed25519 | OkpCurve::X25519 => 32,
            OkpCurve::Ed448 => 57,
            OkpCurve::X448 => 56,
        }
    }

    /// Nominal size in bits.
    pub fn bits(self) -> usize {
        match self {
            OkpCurve::Ed25519 | OkpCurve::X25519 => 256,
            OkpCurve::Ed448 | OkpCurve::X448 => 448,
        }
    }
}

/// A key's public material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Okp {
        curve: OkpCurve,
        x: Vec<u8>,
    },
}

/// One usable key of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// Position in `keys` (from 0).
    pub index: usize,
    pub kid: Option<String>,
    pub alg: Option<String>,
    /// `use` (`sig`, `enc`).
    pub use_: Option<String>,
    pub key_ops: Vec<String>,
    pub material: Material,
    /// `x5c` certificates (DER), the key's own first.
    pub x5c: Vec<Vec<u8>>,
}

impl Jwk {
    /// `RSA`, `EC` or `OKP`.
    pub fn kty(&self) -> &'static str {
        match self.material {
            Material::Rsa { .. } => "RSA",
            Material::Ec { .. } => "EC",
            Material::Okp { .. } => "OKP",
        }
    }

    /// The key's size in bits (RSA: the modulus; EC, OKP: the curve).
    pub fn bits(&self) -> usize {
        match &self.material {
            Material::Rsa { n, .. } => modulus_bits(n),
            Material::Ec { curve, .. } => curve.bits(),
            Material::Okp { curve, .. } => curve.bits(),
        }
    }

    /// `RSA 2048`, `EC P-256`, `OKP Ed25519`.
    pub fn describe(&self) -> String {
        match &self.material {
            Material::Rsa { n, .. } => format!("RSA {}", modulus_bits(n)),
            Material::Ec { curve, .. } => format!("EC {}", curve.name()),
            Material::Okp { curve, .. } => format!("OKP {}", curve.name()),
        }
    }

    /// The kid, else the key's position (`#2`), for messages.
    pub fn label(&self) -> String {
        label(self.kid.as_deref(), self.index)
    }
}

/// Most characters of a kid quoted in a message (the server chooses them).
const KID_SHOWN: usize = 80;

/// The kid quoted (its head when long), else the position (`#2`).
pub fn label(kid: Option<&str>, index: usize) -> String {
    match kid {
        Some(k) if k.chars().count() > KID_SHOWN => {
            let head: String = k.chars().take(KID_SHOWN).collect();
            format!("{head:?}…")
        }
        Some(k) => format!("{k:?}"),
        None => format!("#{index} (no kid)"),
    }
}

fn modulus_bits(n: &[u8]) -> usize {
    match n.first() {
        Some(b) => n.len() * 8 - b.leading_zeros() as usize,
        None => 0,
    }
}

/// A member of `keys` that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadKey {
    pub index: usize,
    pub kid: Option<String>,
    pub why: String,
}

/// A parsed key set: the usable keys and the ones that are not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    pub bad: Vec<BadKey>,
}

impl KeySet {
    /// Every kid of the set, bad keys' too (a consumer still sees them published).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
            || self.bad.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The usable keys with this kid.
    pub fn with_kid<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.kid.as_deref() == Some(kid))
    }

    /// How many members `keys` has.
    pub fn total(&self) -> usize {
        self.keys.len() + self.bad.len()
    }
}

/// Parses a JWK Set document; `Err` says what was found instead of `{"keys": [...]}`.
pub fn parse_set(bytes: &[u8]) -> Result<KeySet, String> {
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("not JSON ({e}); expected a JSON Web Key Set {{\"keys\": [...]}}"))?;
    let keys = match doc.get("keys") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err("`keys` is not an array; expected {\"keys\": [...]}".into()),
        None => {
            let what = match doc.is_object() {
                true => "a JSON object without `keys`",
                false => "JSON that is not an object",
            };
            return Err(format!("{what}; expected a JSON Web Key Set {{\"keys\": [...]}} (is the URL the jwks_uri, not the discovery document?)"));
        }
    };
    let mut set = KeySet::default();
    for (index, v) in keys.iter().enumerate() {
        match parse_key(index, v) {
            Ok(k) => set.keys.push(k),
            Err(b) => set.bad.push(b),
        }
    }
    Ok(set)
}

/// One member of `keys`.
pub fn parse_key(index: usize, v: &Value) -> Result<Jwk, BadKey> {
    let obj = v.as_object();
    let kid = obj
        .and_then(|o| o.get("kid"))
        .and_then(Value::as_str)
        .map(String::from);
    let bad = |why: String| BadKey {
        index,
        kid: kid.clone(),
        why,
    };
    let Some(obj) = obj else {
        return Err(bad("is not a JSON object".into()));
    };
    let material = material(obj).map_err(&bad)?;
    let x5c = x5c(obj).map_err(&bad)?;
    Ok(Jwk {
        index,
        kid: kid.clone(),
        alg: text(obj, "alg"),
        use_: text(obj, "use"),
        key_ops: obj
            .get("key_ops")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        material,
        x5c,
    })
}

fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(String::from)
}

/// The public material by `kty`; private or symmetric parts refuse the key.
fn material(obj: &Map<String, Value>) -> Result<Material, String> {
    let kty = obj.get("kty").and_then(Value::as_str).unwrap_or_default();
    if kty == "oct" {
        return Err("is a symmetric key (kty oct): its secret is published; remove it from the set and replace the secret".into());
    }
    if let Some(m) = ["d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .find(|m| obj.contains_key(**m))
    {
        return Err(format!("carries private key material (member {m:?}); the private key is published: remove it and rotate the key at once"));
    }
    match kty {
        "RSA" => rsa(obj),
        "EC" => ec(obj),
        "OKP" => okp(obj),
        "" => Err("has no kty; expected RSA, EC or OKP".into()),
        other => Err(format!(
            "has kty {other:?}; expected RSA, EC or OKP (a consumer skips it)"
        )),
    }
}

/// A base64url member that must be present and not empty.
fn bytes(obj: &Map<String, Value>, key: &str) -> Result<Vec<u8>, String> {
    let Some(v) = obj.get(key) else {
        return Err(format!("lacks {key:?}"));
    };
    let decoded = v.as_str().and_then(b64url);
    match decoded {
        Some(b) if !b.is_empty() => Ok(b),
        Some(_) => Err(format!("has an empty {key:?}")),
        None => Err(format!("has {key:?} that is not base64url text")),
    }
}

fn strip_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let lead = b.iter().take_while(|x| **x == 0).count();
    b.drain(..lead);
    b
}

fn rsa(obj: &Map<String, Value>) -> Result<Material, String> {
    let n = strip_zeros(bytes(obj, "n")?);
    let e = strip_zeros(bytes(obj, "e")?);
    if n.is_empty() || e.is_empty() {
        return Err("has a zero modulus or exponent".into());
    }
    if e.len() > 8 || n.last().is_some_and(|b| b % 2 == 0) {
        return Err("has a modulus or exponent no RSA key can have".into());
    }
    Ok(Material::Rsa { n, e })
}

fn ec(obj: &Map<String, Value>) -> Result<Material, String> {
    let crv = obj.get("crv").and_then(Value::as_str).unwrap_or_default();
    let curve = Curve::from_name(crv)
        .ok_or_else(|| format!("has crv {crv:?}; expected P-256, P-384 or P-521"))?;
    let (x, y) = (bytes(obj, "x")?, bytes(obj, "y")?);
    if x.len() != curve.size() || y.len() != curve.size() {
        return Err(format!(
            "has {}/{}-byte coordinates; {} needs {} bytes each",
            x.len(),
            y.len(),
            curve.name(),
            curve.size()
        ));
    }
    if !curve.on_curve(&x, &y) {
        return Err(format!("is not a point on {}", curve.name()));
    }
    Ok(Material::Ec { curve, x, y })
}

fn okp(obj: &Map<String, Value>) -> Result<Material, String> {
    let crv = obj.get("crv").and_then(Value::as_str).unwrap_or_default();
    let curve = OkpCurve::from_name(crv)
        .ok_or_else(|| format!("has crv {crv:?}; expected Ed25519, Ed448, X25519 or X448"))?;
    let x = bytes(obj, "x")?;
    if x.len() != curve.size() {
        return Err(format!(
            "has a {}-byte x; {} keys are {} bytes",
            x.len(),
            curve.name(),
            curve.size()
        ));
    }
    Ok(Material::Okp { curve, x })
}

/// `x5c`: base64 (not base64url) DER certificates.
fn x5c(obj: &Map<String, Value>) -> Result<Vec<Vec<u8>>, String> {
    let Some(v) = obj.get("x5c") else {
        return Ok(vec![]);
    };
    let list = v
        .as_array()
        .ok_or("has x5c that is not an array of base64 certificates")?;
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let der = c.as_str().and_then(|s| B64.decode(s).ok());
        match der {
            Some(d) if x509_parser::parse_x509_certificate(&d).is_ok() => out.push(d),
            _ => return Err(format!("has x5c[{i}] that is not a base64 DER certificate")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(b: &[u8]) -> String {
        B64URL.encode(b)
    }

    #[test]
    fn nist_generator_points_are_on_their_curves() {
        let g256x = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
        let g256y = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
        let h = |s: &str| {
            BigUint::parse_bytes(s.as_bytes(), 16)
                .unwrap()
                .to_bytes_be()
        };
        assert!(Curve::P256.on_curve(&h(g256x), &h(g256y)));
        let mut off = h(g256y);
        *off.last_mut().unwrap() ^= 1;
        assert!(!Curve::P256.on_curve(&h(g256x), &off));
    }

    #[test]
    fn rsa_sizes_count_the_modulus_bits() {
        let mut n = vec![0u8, 0xc3];
        n.extend(vec![0xff; 255]);
        let k = parse_key(
            0,
            &json!({"kty": "RSA", "n": enc(&n), "e": "AQAB", "kid": "a"}),
        )
        .unwrap();
        assert_eq!((k.bits(), k.describe()), (2048, "RSA 2048".to_string()));
    }

    #[test]
    fn bad_members_are_reported_not_panicked_on() {
        let cases = [
            json!("x"),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "AQAB"}),
            json!({"kty": "EC", "crv": "P-256", "x": enc(&[1; 32]), "y": enc(&[2; 32])}),
            json!({"kty": "EC", "crv": "P-256", "x": enc(&[1; 31]), "y": enc(&[2; 32])}),
            json!({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": enc(&[1; 31])}),
            json!({"kty": "RSA", "n": "!!", "e": "AQAB"}),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "x5c": ["bm90IGEgY2VydA=="]}),
            json!({"kty": "AKP"}),
        ];
        for c in cases {
            let e = parse_key(3, &c).unwrap_err();
            assert_eq!(e.index, 3);
            assert!(!e.why.contains("c2VjcmV0"), "{}", e.why);
        }
    }

    #[test]
    fn a_set_needs_a_keys_array() {
        assert!(parse_set(b"<html>").is_err());
        assert!(parse_set(b"{\"jwks_uri\": \"x\"}")
            .unwrap_err()
            .contains("jwks_uri"));
        assert!(parse_set(b"{\"keys\": {}}").is_err());
        let s = parse_set(b"{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": \"k\", \"x\": \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}, 5]}").unwrap();
        assert_eq!((s.keys.len(), s.bad.len(), s.total()), (1, 1, 2));
        assert!(s.has_kid("k"));
    }
}
