//! The judgements of a key set: every key usable (`keys`), the announced kids published
//! (`kids_include`), the retired ones gone (`kids_exclude`), the overlap (`min_keys`,
//! `max_keys`), the key policy (`key_policy`) and how long consumers may cache the set
//! (`max_cache_age`, from `Cache-Control`).

use super::fetch::Doc;
use super::jwk::{label, Jwk, KeySet};
use crate::human::duration;
use crate::model::{Assertion, Status};
use serde::Deserialize;
use std::time::Duration;

/// `key_policy:` what every published key must meet.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    /// Smallest RSA modulus.
    pub min_rsa_bits: Option<usize>,
    /// Smallest EC curve (256, 384, 521).
    pub min_ec_bits: Option<usize>,
    /// The `alg` values a key may name (a key naming none passes).
    pub allowed_algs: Option<Vec<String>>,
    /// The key types allowed (`RSA`, `EC`, `OKP`).
    pub allowed_kty: Option<Vec<String>>,
}

/// At most this many kids are named in a message.
const NAMED: usize = 8;

/// The kids of the set, quoted, for messages.
fn kids(set: &KeySet) -> String {
    let all: Vec<String> = set
        .keys
        .iter()
        .map(|k| k.label())
        .chain(set.bad.iter().map(|b| label(b.kid.as_deref(), b.index)))
        .collect();
    if all.is_empty() {
        return "no keys".into();
    }
    let more = all.len().saturating_sub(NAMED);
    let mut s = all.into_iter().take(NAMED).collect::<Vec<_>>().join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    format!("kids {s}")
}

/// `keys` (implicit): every member parses into a usable public key, and there is one.
pub fn assert_keys(set: &KeySet, source: &str) -> Assertion {
    if let Some(b) = set.bad.first() {
        let more = match set.bad.len() {
            1 => String::new(),
            n => format!(" ({} more unusable keys)", n - 1),
        };
        let msg = format!("{source}: key {} {}{more}; consumers skip a key they cannot parse, so tokens signed with it fail", label(b.kid.as_deref(), b.index), b.why);
        return Assertion::fail("keys", "jwks_bad_key", msg);
    }
    if set.keys.is_empty() {
        let msg = format!(
            "{source}: the set publishes no key; expected at least the current signing key"
        );
        return Assertion::fail("keys", "jwks_too_few_keys", msg);
    }
    let each: Vec<String> = set.keys.iter().take(NAMED).map(summary).collect();
    let msg = format!("{} keys: {}", set.keys.len(), each.join("; "));
    Assertion::pass("keys", msg)
}

fn summary(k: &Jwk) -> String {
    let alg = k
        .alg
        .as_deref()
        .map(|a| format!(" {a}"))
        .unwrap_or_default();
    format!("{} {}{alg}", k.label(), k.describe())
}

/// `kids_include`: every announced kid is published.
pub fn assert_include(set: &KeySet, want: &[String]) -> Assertion {
    let missing: Vec<&String> = want.iter().filter(|k| !set.has_kid(k)).collect();
    if missing.is_empty() {
        let msg = format!("publishes {}", quoted(want));
        return Assertion::pass("kids_include", msg);
    }
    let msg = format!("expected {} to be published before tokens are signed with it; the set has {}: publish the new key and wait out consumers' cache before switching", quoted(&missing), kids(set));
    Assertion::fail("kids_include", "jwks_missing_kid", msg)
}

/// `kids_exclude`: every retired kid is gone.
pub fn assert_exclude(set: &KeySet, gone: &[String]) -> Assertion {
    let present: Vec<&String> = gone.iter().filter(|k| set.has_kid(k)).collect();
    if present.is_empty() {
        let msg = format!("none of {} is published", quoted(gone));
        return Assertion::pass("kids_exclude", msg);
    }
    let msg = format!("expected {} to be retired; it is still published: remove it once no unexpired token is signed with it (a retired key that stays published keeps accepting its tokens)", quoted(&present));
    Assertion::fail("kids_exclude", "jwks_retired_kid_present", msg)
}

fn quoted<S: AsRef<str>>(kids: &[S]) -> String {
    let q: Vec<String> = kids.iter().map(|k| format!("{:?}", k.as_ref())).collect();
    format!("kid {}", q.join(", "))
}

/// `min_keys`: at least this many usable keys (old and new during a switch).
pub fn assert_min(set: &KeySet, min: usize) -> Assertion {
    let n = set.keys.len();
    if n >= min {
        return Assertion::pass("min_keys", format!("{} (at least {min})", usable(n)));
    }
    let msg = format!("{} ({}); expected at least {min}: during a rotation the old and the new key must both be published, or tokens signed with the missing one fail", usable(n), kids(set));
    Assertion::fail("min_keys", "jwks_too_few_keys", msg)
}

/// `1 usable key`, `2 usable keys`.
fn usable(n: usize) -> String {
    match n {
        1 => "1 usable key".into(),
        n => format!("{n} usable keys"),
    }
}

/// `max_keys`: at most this many keys (retired keys are removed).
pub fn assert_max(set: &KeySet, max: usize) -> Assertion {
    let n = set.total();
    if n <= max {
        return Assertion::pass("max_keys", format!("{n} keys (at most {max})"));
    }
    let msg = format!(
        "{n} keys ({}); expected at most {max}: remove retired keys",
        kids(set)
    );
    Assertion::fail("max_keys", "jwks_too_many_keys", msg)
}

/// `key_policy`: sizes, algorithms and key types of every usable key.
pub fn assert_policy(set: &KeySet, p: &KeyPolicy) -> Assertion {
    let found: Vec<(&'static str, String)> = set.keys.iter().filter_map(|k| breach(k, p)).collect();
    match found.first() {
        None => Assertion::pass(
            "key_policy",
            format!("{} keys meet the policy", set.keys.len()),
        ),
        Some((reason, why)) => {
            let more = match found.len() {
                1 => String::new(),
                n => format!(" ({} more keys breach the policy)", n - 1),
            };
            Assertion::fail("key_policy", reason, format!("{why}{more}"))
        }
    }
}

/// The first way `k` breaches the policy: a reason token and a message.
fn breach(k: &Jwk, p: &KeyPolicy) -> Option<(&'static str, String)> {
    let who = format!("key {} ({})", k.label(), k.describe());
    if let Some(allowed) = p
        .allowed_kty
        .as_ref()
        .filter(|a| !a.iter().any(|t| t == k.kty()))
    {
        let msg = format!(
            "{who}: key type {} is not allowed; expected one of {}: replace the key",
            k.kty(),
            allowed.join(", ")
        );
        return Some(("jwks_alg_not_allowed", msg));
    }
    let alg = k.alg.as_deref();
    if let (Some(allowed), Some(alg)) = (&p.allowed_algs, alg) {
        if !allowed.iter().any(|a| a == alg) {
            let msg = format!("{who}: alg {alg} is not allowed; expected one of {}: re-issue the key for an allowed algorithm", allowed.join(", "));
            return Some(("jwks_alg_not_allowed", msg));
        }
    }
    let min = match k.kty() {
        "RSA" => p.min_rsa_bits,
        "EC" => p.min_ec_bits,
        _ => None,
    };
    match min {
        Some(min) if k.bits() < min => {
            let msg = format!(
                "{who}: {} bits, under the policy's {min}; replace it with a larger key",
                k.bits()
            );
            Some(("jwks_weak_key", msg))
        }
        _ => None,
    }
}

/// The seconds `Cache-Control` lets a consumer keep the set: `max-age`, 0 for `no-store` or
/// `no-cache`; `None` when it says neither.
pub fn cache_max_age(cc: &str) -> Option<u64> {
    let mut age = None;
    for d in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if d == "no-store" || d == "no-cache" {
            return Some(0);
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse().ok().or(age);
        }
    }
    age
}

/// `max_cache_age`: consumers refresh the set at least this often.
pub fn assert_cache(doc: &Doc, max: Duration) -> Assertion {
    let name = "max_cache_age";
    let limit = duration(max);
    let Some(cc) = &doc.cache_control else {
        let msg = format!("the answer has no Cache-Control; consumers then cache the set for their own default, which may exceed {limit}: set Cache-Control: max-age on the JWKS endpoint");
        return Assertion::not_ok(name, Status::Warn, "jwks_no_cache_control", msg);
    };
    let Some(age) = cache_max_age(cc) else {
        let msg = format!("Cache-Control {cc:?} names no max-age; consumers then cache the set for their own default, which may exceed {limit}: add max-age");
        return Assertion::not_ok(name, Status::Warn, "jwks_no_cache_control", msg);
    };
    let age_text = duration(Duration::from_secs(age));
    if age > max.as_secs() {
        let msg = format!("Cache-Control max-age={age} ({age_text}) is above max_cache_age {limit}: a consumer may not see a new key for {age_text}; publish new keys at least that long before signing with them, or lower max-age");
        return Assertion::fail(name, "jwks_cache_too_long", msg);
    }
    let msg = format!("Cache-Control max-age={age} ({age_text}), at most {limit}");
    Assertion::pass(name, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_directives() {
        assert_eq!(cache_max_age("public, max-age=3600"), Some(3600));
        assert_eq!(cache_max_age("max-age=\"60\", must-revalidate"), Some(60));
        assert_eq!(cache_max_age("no-store"), Some(0));
        assert_eq!(cache_max_age("private, No-Cache, max-age=100"), Some(0));
        assert_eq!(cache_max_age("public"), None);
        assert_eq!(cache_max_age("max-age=soon"), None);
    }
}
