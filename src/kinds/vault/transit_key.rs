//! `vault_transit_key`: reads a transit key (`<mount>/keys/<name>`, never its key material)
//! and judges its rotation: the latest version is younger than `max_age`, `auto_rotate_period`
//! is set and short enough, `min_decryption_version` does not cut off versions still in use
//! (`decrypts_from`), and the key type and exportability are as expected.
//!
//! Reason tokens: `mount_missing`, `key_missing` (`key`), `key_stale` (`max_age`),
//! `auto_rotate_off`, `auto_rotate_too_long` (`auto_rotate_at_most`), `decryption_cut_off`
//! (`decrypts_from`), `key_type` (`type`), `exportable` (`exportable`), `no_creation_time`.
//! Series: `rotcheck_secret_last_rotation_timestamp_seconds` (the latest version's creation)
//! and `rotcheck_secret_max_age_seconds` (`max_age`), shared with every kind that watches when
//! a secret was last rotated.

use super::{mount_missing, outcome, read_data, settle, Read};
use crate::human::duration;
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::{family, Def, Exposition};
use crate::model::{Assertion, CheckResult, Outcome};
use crate::suite::Dur;
use crate::vault::{encode_path, VaultError};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Fact: Unix time the secret's current version was created.
pub const F_LAST_ROTATION: &str = "secret_last_rotation";
/// Fact: the maximum age the check allows, in seconds.
pub const F_MAX_AGE: &str = "secret_max_age";

family!(
    LAST_ROTATION,
    "rotcheck_secret_last_rotation_timestamp_seconds",
    Gauge,
    "Unix time the watched secret's current version was created (its last rotation)."
);
family!(
    MAX_AGE,
    "rotcheck_secret_max_age_seconds",
    Gauge,
    "The check's max_age: how old the secret's current version may become."
);

/// `vault_transit_key`: the transit mount and the key's name.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransitKeySpec {
    #[serde(default = "default_mount")]
    pub mount: String,
    pub name: String,
}

fn default_mount() -> String {
    "transit".into()
}

/// What a `vault_transit_key` check may expect of the key.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TransitKeyExpect {
    /// The latest version is at most this old.
    pub max_age: Option<Dur>,
    /// `auto_rotate_period` is set (not 0) and at most this.
    pub auto_rotate_at_most: Option<Dur>,
    /// Ciphertexts of this version and later must still decrypt: `min_decryption_version`
    /// (and the oldest version kept) is at most this.
    pub decrypts_from: Option<u64>,
    /// The key type (`aes256-gcm96`, `rsa-4096`, `ed25519`, ...).
    #[serde(rename = "type")]
    pub key_type: Option<String>,
    /// Whether the key may be exported.
    pub exportable: Option<bool>,
}

/// The `vault_transit_key` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultTransitKey;

impl CheckKind for VaultTransitKey {
    const NAME: &'static str = "vault_transit_key";
    const CONNECTS: bool = true;
    const FAMILIES: &'static [&'static Def] = &[&LAST_ROTATION, &MAX_AGE];
    type Spec = TransitKeySpec;
    type Expect = TransitKeyExpect;

    fn validate(spec: &TransitKeySpec, expect: &TransitKeyExpect) -> Result<(), Invalid> {
        if spec.name.trim_matches('/').is_empty() {
            return Err(Invalid::new(
                ".vault_transit_key.name",
                "name the transit key (name: KEY)",
            ));
        }
        if expect.decrypts_from == Some(0) {
            return Err(Invalid::new(
                ".expect.decrypts_from",
                "key versions start at 1; write the oldest version whose ciphertexts are still in use",
            ));
        }
        Ok(())
    }

    async fn probe(spec: &TransitKeySpec, expect: &TransitKeyExpect, ctx: &Ctx) -> Outcome {
        settle(probe(spec, expect, ctx).await)
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        secret_series(e, base, r);
    }
}

/// The shared secret-rotation series of a result that recorded the facts.
pub fn secret_series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
    let number = |k: &str| r.facts.extra.get(k).and_then(|v| v.parse::<f64>().ok());
    if let Some(t) = number(F_LAST_ROTATION) {
        e.sample(&LAST_ROTATION, base, t);
    }
    if let Some(s) = number(F_MAX_AGE) {
        e.sample(&MAX_AGE, base, s);
    }
}

async fn probe(
    spec: &TransitKeySpec,
    expect: &TransitKeyExpect,
    ctx: &Ctx,
) -> Result<Outcome, VaultError> {
    let mount = spec.mount.trim_matches('/');
    let shown = format!("{mount}/keys/{}", spec.name.trim_matches('/'));
    let path = format!("{}/keys/{}", encode_path(mount), encode_path(&spec.name));
    let data = match read_data(ctx, &path, "transit key").await? {
        Read::Found(data) => data,
        Read::Missing(e) => return Ok(outcome(vec![missing(mount, &shown, &e)])),
    };
    let key = Key::from(&data);
    let mut out = outcome(evaluate(&key, expect, &shown, ctx.now_unix()));
    let x = &mut out.facts.extra;
    if let Some(t) = key.created {
        x.insert(F_LAST_ROTATION.into(), t.to_string());
    }
    if let Some(m) = expect.max_age {
        x.insert(F_MAX_AGE.into(), m.0.as_secs().to_string());
    }
    x.insert("transit_latest_version".into(), key.latest.to_string());
    Ok(out)
}

fn missing(mount: &str, shown: &str, e: &VaultError) -> Assertion {
    if mount_missing(e) {
        return Assertion::fail(
            "key",
            "mount_missing",
            format!("no secrets engine is mounted at {mount}/; expected a transit mount; enable it: bao secrets enable -path={mount} transit"),
        );
    }
    Assertion::fail(
        "key",
        "key_missing",
        format!("no transit key at {shown}; expected one; create it (bao write -f {shown}) or fix the check's name"),
    )
}

/// The fields of a transit key that say how it is rotated.
#[derive(Debug, Clone, PartialEq, Default)]
struct Key {
    key_type: String,
    exportable: bool,
    latest: u64,
    min_decryption: u64,
    min_available: u64,
    auto_rotate: u64,
    /// Unix time the latest version was created.
    created: Option<i64>,
}

impl Key {
    fn from(d: &Value) -> Key {
        let num = |k: &str| super::seconds(d.get(k));
        let latest = num("latest_version");
        let version = d.get("keys").and_then(|k| k.get(latest.to_string()));
        Key {
            key_type: d.get("type").and_then(Value::as_str).unwrap_or("").into(),
            exportable: d
                .get("exportable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            latest,
            min_decryption: num("min_decryption_version"),
            min_available: num("min_available_version"),
            auto_rotate: num("auto_rotate_period"),
            created: version.and_then(creation),
        }
    }
}

/// A version's creation: Unix seconds (symmetric keys) or `{creation_time: RFC 3339}`.
fn creation(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::Object(o) => o
            .get("creation_time")
            .and_then(Value::as_str)
            .and_then(rfc3339),
        _ => None,
    }
}

/// Unix seconds of an RFC 3339 time with `Z` or a numeric offset, as Go writes it.
fn rfc3339(s: &str) -> Option<i64> {
    let t = crate::cli::at::instant(s)?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

fn evaluate(key: &Key, expect: &TransitKeyExpect, shown: &str, now: i64) -> Vec<Assertion> {
    let mut a = vec![describe(key, shown, now)];
    if let Some(max) = expect.max_age {
        a.push(assert_age(key, shown, max.0, now));
    }
    if let Some(most) = expect.auto_rotate_at_most {
        a.push(assert_auto_rotate(key, shown, most.0));
    }
    if let Some(floor) = expect.decrypts_from {
        a.push(assert_floor(key, shown, floor));
    }
    if let Some(want) = &expect.key_type {
        a.push(assert_type(key, shown, want));
    }
    if let Some(want) = expect.exportable {
        a.push(assert_exportable(key, shown, want));
    }
    a
}

fn describe(key: &Key, shown: &str, now: i64) -> Assertion {
    let age = key
        .created
        .map(|t| format!(", created {} ago", ago(now - t)))
        .unwrap_or_default();
    Assertion::pass(
        "key",
        format!(
            "{shown}: {} version {}{age}, min_decryption_version {}, auto_rotate_period {}",
            key.key_type,
            key.latest,
            key.min_decryption,
            period(key.auto_rotate)
        ),
    )
}

fn ago(secs: i64) -> String {
    duration(Duration::from_secs(secs.max(0) as u64))
}

fn period(secs: u64) -> String {
    match secs {
        0 => "off".into(),
        s => duration(Duration::from_secs(s)),
    }
}

fn assert_age(key: &Key, shown: &str, max: Duration, now: i64) -> Assertion {
    let Some(created) = key.created else {
        return Assertion::fail(
            "max_age",
            "no_creation_time",
            format!("{shown} version {} has no creation time; expected one to judge its age; check that the check reads a transit key", key.latest),
        );
    };
    let age = now - created;
    if age <= max.as_secs() as i64 {
        return Assertion::pass(
            "max_age",
            format!(
                "{shown} version {} is {} old, within {}",
                key.latest,
                ago(age),
                duration(max)
            ),
        );
    }
    let auto = match key.auto_rotate {
        0 => "auto_rotate_period is off".to_string(),
        p => format!("auto_rotate_period is {} yet it did not rotate (is the server's rollback/rotation ticker running?)", period(p)),
    };
    Assertion::fail(
        "max_age",
        "key_stale",
        format!(
            "{shown} version {} is {} old; expected at most {}; {auto}; rotate it: bao write -f {shown}/rotate",
            key.latest,
            ago(age),
            duration(max)
        ),
    )
}

fn assert_auto_rotate(key: &Key, shown: &str, most: Duration) -> Assertion {
    let fix = format!(
        "bao write {shown}/config auto_rotate_period={}",
        duration(most)
    );
    match key.auto_rotate {
        0 => Assertion::fail(
            "auto_rotate",
            "auto_rotate_off",
            format!(
                "{shown} has auto_rotate_period off; expected at most {}; set it: {fix}",
                duration(most)
            ),
        ),
        p if p > most.as_secs() => Assertion::fail(
            "auto_rotate",
            "auto_rotate_too_long",
            format!(
                "{shown} rotates itself every {}; expected at most {}; shorten it: {fix}",
                period(p),
                duration(most)
            ),
        ),
        p => Assertion::pass(
            "auto_rotate",
            format!(
                "{shown} rotates itself every {}, within {}",
                period(p),
                duration(most)
            ),
        ),
    }
}

fn assert_floor(key: &Key, shown: &str, floor: u64) -> Assertion {
    let cut = key.min_decryption.max(key.min_available);
    if cut <= floor {
        return Assertion::pass(
            "decrypts_from",
            format!(
                "{shown} still decrypts version {floor} (min_decryption_version {})",
                key.min_decryption
            ),
        );
    }
    let fix = if key.min_available > floor {
        format!("versions below {} were trimmed and cannot be restored; re-encrypt from a backup or lower the expectation", key.min_available)
    } else {
        format!("lower it (bao write {shown}/config min_decryption_version={floor}) or rewrap those ciphertexts first")
    };
    Assertion::fail(
        "decrypts_from",
        "decryption_cut_off",
        format!(
            "{shown} no longer decrypts versions below {cut}; expected ciphertexts from version {floor} to decrypt; {fix}"
        ),
    )
}

fn assert_type(key: &Key, shown: &str, want: &str) -> Assertion {
    if key.key_type == want {
        return Assertion::pass("type", format!("{shown} is a {want} key"));
    }
    Assertion::fail(
        "type",
        "key_type",
        format!(
            "{shown} is a {} key; expected {want}; a key's type cannot change: create a new key of type {want} and move its users",
            key.key_type
        ),
    )
}

fn assert_exportable(key: &Key, shown: &str, want: bool) -> Assertion {
    let is = |b: bool| if b { "exportable" } else { "not exportable" };
    if key.exportable == want {
        return Assertion::pass("exportable", format!("{shown} is {}", is(want)));
    }
    let fix = if want {
        format!("allow it: bao write {shown}/config exportable=true (this cannot be undone)")
    } else {
        "exportability cannot be revoked: create a new non-exportable key, move its users, delete this one".into()
    };
    Assertion::fail(
        "exportable",
        "exportable",
        format!(
            "{shown} is {}; expected {}; {fix}",
            is(key.exportable),
            is(want)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(data: Value) -> Key {
        Key::from(&data)
    }

    #[test]
    fn symmetric_and_asymmetric_creation_times() {
        let k = key(json!({"type": "aes256-gcm96", "latest_version": 2,
            "keys": {"1": 1000, "2": 2000}, "min_decryption_version": 1, "auto_rotate_period": 0}));
        assert_eq!(k.created, Some(2000));
        let k = key(json!({"type": "ed25519", "latest_version": 1,
            "keys": {"1": {"creation_time": "1970-01-01T01:00:10.123456+01:00", "public_key": "x"}}}));
        assert_eq!(k.created, Some(10));
        assert_eq!(rfc3339("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(rfc3339("garbage"), None);
        assert_eq!(rfc3339("+01:00"), None);
    }

    #[test]
    fn malformed_answers_give_defaults_not_panics() {
        let k = key(json!({"keys": [1, 2], "latest_version": "abc", "type": 7,
            "min_decryption_version": -3, "auto_rotate_period": "soon"}));
        assert_eq!(k, Key::default());
        let k = key(json!({"latest_version": 1, "keys": {"1": {"creation_time": 5}}}));
        assert_eq!(k.created, None);
        let e = TransitKeyExpect {
            max_age: Some(Dur(Duration::from_secs(60))),
            ..Default::default()
        };
        let a = evaluate(&k, &e, "transit/keys/k", 0);
        assert_eq!(a[1].reason.as_deref(), Some("no_creation_time"));
    }

    #[test]
    fn validation_refuses_an_empty_name_and_version_zero() {
        let spec = TransitKeySpec {
            mount: default_mount(),
            name: "/".into(),
        };
        let e = TransitKeyExpect::default();
        assert!(VaultTransitKey::validate(&spec, &e).is_err());
        let spec = TransitKeySpec {
            name: "app".into(),
            ..spec
        };
        assert!(VaultTransitKey::validate(&spec, &e).is_ok());
        let zero = TransitKeyExpect {
            decrypts_from: Some(0),
            ..e
        };
        let err = VaultTransitKey::validate(&spec, &zero).unwrap_err();
        assert_eq!(err.key, ".expect.decrypts_from");
    }

    #[test]
    fn stale_floor_type_and_export() {
        let k = key(
            json!({"type": "aes256-gcm96", "latest_version": 3, "exportable": false,
            "keys": {"3": 1000}, "min_decryption_version": 3, "min_available_version": 0,
            "auto_rotate_period": 7200}),
        );
        let e = TransitKeyExpect {
            max_age: Some(Dur(Duration::from_secs(3600))),
            auto_rotate_at_most: Some(Dur(Duration::from_secs(3600))),
            decrypts_from: Some(2),
            key_type: Some("rsa-4096".into()),
            exportable: Some(true),
        };
        let reasons: Vec<_> = evaluate(&k, &e, "transit/keys/k", 1000 + 7200)
            .into_iter()
            .filter_map(|a| a.reason)
            .collect();
        assert_eq!(
            reasons,
            [
                "key_stale",
                "auto_rotate_too_long",
                "decryption_cut_off",
                "key_type",
                "exportable"
            ]
        );
        let fresh = evaluate(&k, &e, "transit/keys/k", 1000 + 60);
        assert!(fresh[1].reason.is_none(), "{:?}", fresh[1]);
    }
}
