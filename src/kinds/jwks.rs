//! The `jwks` probe: fetches a JSON Web Key Set — from `url`, from the `jwks_uri` of an OIDC
//! discovery document (`discovery`), or from a `file` — parses every key (RSA, EC, OKP) and
//! judges a signing-key rotation: the new key pre-published, the retired one gone, the overlap,
//! the key policy, `x5c` chains, how long consumers may cache the set, and optionally that a
//! real token's `kid` resolves and its signature verifies.
//!
//! Both documents are fetched over the `http` kind's connection, within the check's one
//! deadline and at most 1 MiB each; on an `https://` key set every `tls` expectation (`chain`,
//! `names`, `expiry`, `serves_file`, `not_revoked`, ...) is judged on that connection.
//!
//! Assertions, in order: `discovery` (with `discovery:`), `fetch` (the key set was read:
//! connection classes, `status`, `jwks_too_large`, a file's read error), the `tls` ones,
//! `keys` (implicit), `kids_include`, `kids_exclude`, `min_keys`, `max_keys`, `key_policy`,
//! `x5c`, `x5c_expiry`, `max_cache_age`, `token`.
//!
//! Reason tokens: `jwks_bad_discovery` (no usable `jwks_uri`), `jwks_too_large`,
//! `jwks_not_json` (not a key set), `jwks_bad_key` (a key that does not parse, a symmetric or
//! private key), `jwks_missing_kid`, `jwks_retired_kid_present`, `jwks_too_few_keys`,
//! `jwks_too_many_keys`, `jwks_weak_key`, `jwks_alg_not_allowed`, `jwks_x5c_mismatch`,
//! `jwks_x5c_missing`, `jwks_cache_too_long`, `jwks_no_cache_control` (a warning),
//! `jwt_malformed`, `jwt_kid_unknown`, `jwt_bad_signature`, `jwt_expired`.
//!
//! Series: `rotcheck_jwks_keys`, `rotcheck_jwks_kid_present{kid,expected}` (only the kids the
//! check names), `rotcheck_jwks_cache_max_age_seconds`.

pub mod fetch;
pub mod jwk;
pub mod jwt;
pub mod policy;
pub mod x5c;

use crate::expect::chain::want::ChainExpect;
use crate::expect::revocation::NotRevoked;
use crate::expect::rotated::RotatedAfter;
use crate::kinds::http::exchange::Url;
use crate::kinds::tls::{self, TlsExpect};
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::{family, Def, Exposition};
use crate::model::{Assertion, CheckResult, Outcome};
use crate::suite::{Dur, ExpiryThresholds, TlsVersion};
use fetch::{Doc, Get};
use jwk::KeySet;
use policy::KeyPolicy;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use x5c::X5cExpect;

/// Where the key set comes from, and how to connect.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct JwksSpec {
    /// The key set's URL (`https://…/.well-known/jwks.json`).
    pub url: Option<String>,
    /// An OIDC discovery document's URL; its `jwks_uri` is fetched.
    pub discovery: Option<String>,
    /// A key set on disk.
    pub file: Option<String>,
    /// SNI, verified name and `Host` (default: the URL's host; for a `jwks_uri` on another
    /// host, that host).
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub crl_file: Option<String>,
}

/// What a `jwks` check may expect.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct JwksExpect {
    pub kids_include: Option<Vec<String>>,
    pub kids_exclude: Option<Vec<String>>,
    pub min_keys: Option<usize>,
    pub max_keys: Option<usize>,
    pub key_policy: Option<KeyPolicy>,
    pub x5c: Option<X5cExpect>,
    pub max_cache_age: Option<Dur>,
    /// A JWT whose kid must resolve and whose signature must verify.
    pub token_file: Option<String>,
    pub chain: Option<ChainExpect>,
    pub names: Option<Vec<String>>,
    pub expiry: Option<ExpiryThresholds>,
    pub issuer_cn: Option<String>,
    pub issuer_dn: Option<String>,
    pub min_tls: Option<TlsVersion>,
    pub serves_file: Option<String>,
    pub not_revoked: Option<NotRevoked>,
    pub rotated_after: Option<RotatedAfter>,
}

tls::tls_expect_of!(JwksExpect);

/// Fact: how many usable keys the set publishes.
const F_KEYS: &str = "jwks_keys";
/// Fact: the seconds `Cache-Control` lets consumers keep the set.
const F_CACHE: &str = "jwks_cache_max_age";
/// Fact prefix: `jwks_kid:<present|absent>:<kid>` = 1 when published, 0 when not.
const F_KID: &str = "jwks_kid:";

family!(
    KEYS,
    "rotcheck_jwks_keys",
    Gauge,
    "The number of usable keys the JWKS publishes."
);
family!(
    KID_PRESENT,
    "rotcheck_jwks_kid_present",
    Gauge,
    "1 when the kid named in kids_include (expected=present) or kids_exclude (expected=absent) is published, 0 when not."
);
family!(
    CACHE_MAX_AGE,
    "rotcheck_jwks_cache_max_age_seconds",
    Gauge,
    "How long Cache-Control lets consumers cache the JWKS (0 for no-store or no-cache); absent without max-age."
);

/// The `jwks` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jwks;

impl CheckKind for Jwks {
    const NAME: &'static str = "jwks";
    const CONNECTS: bool = true;
    type Spec = JwksSpec;
    type Expect = JwksExpect;
    const FAMILIES: &'static [&'static Def] = &[&KEYS, &KID_PRESENT, &CACHE_MAX_AGE];

    fn validate(spec: &JwksSpec, expect: &JwksExpect) -> Result<(), Invalid> {
        let tls = source(spec)?;
        if !tls {
            no_tls(spec, expect)?;
        }
        if spec.client_cert.is_some() != spec.client_key.is_some() {
            let msg = "client_cert and client_key go together; set both or neither";
            return Err(Invalid::new(".jwks", msg));
        }
        if matches!(expect.chain, Some(c) if c.valid) && spec.ca_file.is_none() {
            let msg =
                "chain: valid needs jwks.ca_file (the CA chain clients trust); add it to the check";
            return Err(Invalid::new(".expect.chain", msg));
        }
        validate_expect(spec, expect)
    }

    async fn probe(spec: &JwksSpec, expect: &JwksExpect, ctx: &Ctx) -> Outcome {
        probe(spec, expect, ctx).await
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        <tls::Tls as CheckKind>::series(e, base, r);
        let x = &r.facts.extra;
        let number = |k: &str| x.get(k).and_then(|v| v.parse::<f64>().ok());
        if let Some(n) = number(F_KEYS) {
            e.sample(&KEYS, base, n);
        }
        for (k, v) in x.range(F_KID.to_string()..) {
            let Some((expected, kid)) = k.strip_prefix(F_KID).and_then(|r| r.split_once(':'))
            else {
                break;
            };
            let labels = crate::metrics::with(base, &[("kid", kid), ("expected", expected)]);
            e.sample(&KID_PRESENT, &labels, v.parse().unwrap_or(0.0));
        }
        if let Some(s) = number(F_CACHE) {
            e.sample(&CACHE_MAX_AGE, base, s);
        }
    }
}

/// Exactly one source, and a URL that parses; whether the key set may come over TLS.
fn source(spec: &JwksSpec) -> Result<bool, Invalid> {
    let set = [&spec.url, &spec.discovery, &spec.file];
    if set.iter().filter(|s| s.is_some()).count() != 1 {
        let msg = "name exactly one source: url (the key set), discovery (an OIDC discovery document) or file";
        return Err(Invalid::new(".jwks", msg));
    }
    let (key, url) = match (&spec.url, &spec.discovery) {
        (Some(u), _) => ("url", u),
        (_, Some(d)) => ("discovery", d),
        _ => return Ok(false),
    };
    let parsed = Url::parse(url).map_err(|m| Invalid::new(format!(".jwks.{key}"), m))?;
    // A discovery document may point at an https:// key set even when it is plain.
    Ok(parsed.tls || key == "discovery")
}

/// A file or plain-HTTP source may not set TLS settings or expectations.
fn no_tls(spec: &JwksSpec, expect: &JwksExpect) -> Result<(), Invalid> {
    let settings = [
        ("server_name", spec.server_name.is_some()),
        ("client_cert", spec.client_cert.is_some()),
        ("crl_file", spec.crl_file.is_some()),
    ];
    let what = match &spec.file {
        Some(_) => "a file",
        None => "plain HTTP",
    };
    if let Some((k, _)) = settings.iter().find(|(_, on)| *on) {
        let msg = format!("{k} needs TLS, but the key set is read from {what}; remove {k}");
        return Err(Invalid::new(format!(".jwks.{k}"), msg));
    }
    if let Some(k) = expect.tls().keys_set().first() {
        let msg = format!(
            "{k} is judged on a TLS connection, but the key set is read from {what}; remove {k}"
        );
        return Err(Invalid::new(format!(".expect.{k}"), msg));
    }
    Ok(())
}

fn validate_expect(spec: &JwksSpec, expect: &JwksExpect) -> Result<(), Invalid> {
    if let (Some(min), Some(max)) = (expect.min_keys, expect.max_keys) {
        if min > max {
            let msg =
                format!("min_keys {min} is above max_keys {max}; write min_keys at most max_keys");
            return Err(Invalid::new(".expect.min_keys", msg));
        }
    }
    let include = expect.kids_include.as_deref().unwrap_or_default();
    let exclude = expect.kids_exclude.as_deref().unwrap_or_default();
    if let Some(k) = include.iter().find(|k| exclude.contains(*k)) {
        let msg = format!("kid {k:?} is in both kids_include and kids_exclude; keep it in one");
        return Err(Invalid::new(".expect.kids_exclude", msg));
    }
    if spec.file.is_some() && expect.max_cache_age.is_some() {
        let msg = "max_cache_age is judged on an HTTP answer's Cache-Control; a file has none: remove it or fetch the key set by url";
        return Err(Invalid::new(".expect.max_cache_age", msg));
    }
    let x5c_ca = expect.x5c.as_ref().and_then(|x| x.ca_file.as_ref());
    if expect.x5c.is_some() && x5c_ca.or(spec.ca_file.as_ref()).is_none() {
        let msg = "x5c chains are judged against trust anchors; set x5c.ca_file or jwks.ca_file";
        return Err(Invalid::new(".expect.x5c", msg));
    }
    Ok(())
}

/// Gets the key set and evaluates the expectations.
pub async fn probe(spec: &JwksSpec, expect: &JwksExpect, ctx: &Ctx) -> Outcome {
    let deadline = Instant::now() + ctx.timeout;
    let mut out = Outcome::default();
    let want_tls = expect.tls();
    let Some(doc) = document(spec, &want_tls, ctx, deadline, &mut out).await else {
        return out;
    };
    let set = match jwk::parse_set(&doc.body) {
        Ok(s) => s,
        Err(why) => {
            let msg = format!("{}: {why}", doc.source);
            out.assertions
                .push(Assertion::fail("keys", "jwks_not_json", msg));
            return out;
        }
    };
    judge(&set, &doc, spec, expect, ctx, &mut out);
    out
}

/// The key set's document from its source; `None` when that failed (reported in `out`).
async fn document(
    spec: &JwksSpec,
    want: &TlsExpect,
    ctx: &Ctx,
    deadline: Instant,
    out: &mut Outcome,
) -> Option<Doc> {
    if let Some(f) = &spec.file {
        return fetch::file(ctx, f, out);
    }
    let mut g = Get {
        spec,
        ctx,
        name: "fetch",
        server_name: spec.server_name.clone(),
        judge: Some(want),
        deadline,
    };
    let Some(discovery) = &spec.discovery else {
        return fetch::get(&g, spec.url.as_deref().unwrap_or_default(), out).await;
    };
    g.name = "discovery";
    g.judge = None;
    let doc = fetch::get(&g, discovery, out).await?;
    let uri = match jwks_uri(&doc, discovery) {
        Ok(u) => u,
        Err(msg) => {
            let failed = Assertion::fail("discovery", "jwks_bad_discovery", msg);
            if let Some(last) = out.assertions.last_mut() {
                *last = failed;
            }
            return None;
        }
    };
    let same_host =
        Url::parse(discovery).ok().map(|d| d.host) == Url::parse(&uri).ok().map(|u| u.host);
    g.name = "fetch";
    g.judge = Some(want);
    g.server_name = spec.server_name.clone().filter(|_| same_host);
    fetch::get(&g, &uri, out).await
}

/// The discovery document's `jwks_uri`: a URL, https when the document came over https.
fn jwks_uri(doc: &Doc, discovery: &str) -> Result<String, String> {
    let v: Value = serde_json::from_slice(&doc.body).map_err(|e| {
        format!(
            "{}: not JSON ({e}); expected an OpenID Provider configuration with jwks_uri",
            doc.source
        )
    })?;
    let Some(uri) = v.get("jwks_uri").and_then(Value::as_str) else {
        return Err(format!("{}: no jwks_uri string; expected the OpenID Provider configuration (…/.well-known/openid-configuration)", doc.source));
    };
    let parsed = Url::parse(uri).map_err(|m| format!("{}: jwks_uri: {m}", doc.source))?;
    if !parsed.tls && discovery.starts_with("https://") {
        return Err(format!("{}: jwks_uri {uri:?} is plain HTTP; consumers that fetched discovery over HTTPS refuse it: publish an https:// jwks_uri", doc.source));
    }
    Ok(uri.to_string())
}

/// Every judgement of the key set, and the facts the series read.
fn judge(
    set: &KeySet,
    doc: &Doc,
    spec: &JwksSpec,
    expect: &JwksExpect,
    ctx: &Ctx,
    out: &mut Outcome,
) {
    let a = &mut out.assertions;
    a.push(policy::assert_keys(set, &doc.source));
    if let Some(k) = &expect.kids_include {
        a.push(policy::assert_include(set, k));
    }
    if let Some(k) = &expect.kids_exclude {
        a.push(policy::assert_exclude(set, k));
    }
    if let Some(n) = expect.min_keys {
        a.push(policy::assert_min(set, n));
    }
    if let Some(n) = expect.max_keys {
        a.push(policy::assert_max(set, n));
    }
    if let Some(p) = &expect.key_policy {
        a.push(policy::assert_policy(set, p));
    }
    if let Some(want) = &expect.x5c {
        let ca = want.ca_file.as_deref().or(spec.ca_file.as_deref());
        let (judged, facts) = x5c::judge(set, want, ca, ctx);
        out.assertions.extend(judged);
        out.certs.extend(facts);
    }
    if let Some(max) = expect.max_cache_age {
        out.assertions.push(policy::assert_cache(doc, max.0));
    }
    if let Some(f) = &expect.token_file {
        out.assertions.push(token(f, set, ctx));
    }
    record(set, doc, expect, out);
}

/// The `token` assertion of the JWT in `file`.
fn token(file: &str, set: &KeySet, ctx: &Ctx) -> Assertion {
    let path = ctx.path(file);
    let read = crate::fsread::read_text(&path, jwt::TOKEN_CAP, "a JWT")
        .map_err(|e| (e.class().to_string(), e.to_string()));
    jwt::assert_token(read, set, ctx.now_unix())
}

/// The facts behind the series.
fn record(set: &KeySet, doc: &Doc, expect: &JwksExpect, out: &mut Outcome) {
    let x = &mut out.facts.extra;
    x.insert(F_KEYS.into(), set.keys.len().to_string());
    if let Some(age) = doc.cache_control.as_deref().and_then(policy::cache_max_age) {
        x.insert(F_CACHE.into(), age.to_string());
    }
    let named = [
        ("present", &expect.kids_include),
        ("absent", &expect.kids_exclude),
    ];
    for (expected, kids) in named {
        for kid in kids.iter().flatten() {
            let on = u8::from(set.has_kid(kid));
            x.insert(format!("{F_KID}{expected}:{kid}"), on.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expect: &str) -> Result<(), Invalid> {
        let spec: JwksSpec = serde_yaml_ng::from_str(spec).unwrap();
        let expect: JwksExpect = serde_yaml_ng::from_str(expect).unwrap();
        Jwks::validate(&spec, &expect)
    }

    fn key(spec: &str, expect: &str) -> String {
        check(spec, expect).unwrap_err().key
    }

    #[test]
    fn settings_are_checked_at_load_time() {
        let url = "{url: 'https://idp.test/keys', ca_file: ca.pem}";
        assert_eq!(
            check(url, "{chain: valid, kids_include: [a], min_keys: 2}"),
            Ok(())
        );
        assert_eq!(key("{}", "{}"), ".jwks");
        assert_eq!(key("{url: 'https://h/k', file: k.json}", "{}"), ".jwks");
        assert_eq!(key("{url: 'h/k'}", "{}"), ".jwks.url");
        assert_eq!(key("{file: k.json}", "{chain: valid}"), ".expect.chain");
        assert_eq!(
            key("{file: k.json}", "{max_cache_age: 1h}"),
            ".expect.max_cache_age"
        );
        assert_eq!(
            key("{url: 'http://h/k', server_name: x}", "{}"),
            ".jwks.server_name"
        );
        assert_eq!(key(url, "{min_keys: 3, max_keys: 2}"), ".expect.min_keys");
        assert_eq!(
            key(url, "{kids_include: [a], kids_exclude: [a]}"),
            ".expect.kids_exclude"
        );
        assert_eq!(key("{file: k.json}", "{x5c: {}}"), ".expect.x5c");
        assert_eq!(
            check(
                "{discovery: 'http://h/.well-known/openid-configuration'}",
                "{chain: {valid: false}}"
            ),
            Ok(())
        );
    }
}
