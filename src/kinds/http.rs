//! The `http` probe: one HTTP/1.1 request to a URL (over TLS for `https://`), then the
//! response judged, plus every expectation of the `tls` kind on the connection it made. How a
//! user checks an edge proxy serves the app end to end after a chain refresh.
//!
//! The connection is the `tls` kind's ([`super::tls::client::open`]) and so is the judgement
//! of what the server presented ([`super::tls::judge`]): `handshake`, `chain`,
//! `server_name`, `names`, `expiry`, `issuer_cn`, `issuer_dn`, `min_tls`, `serves_file`,
//! `not_revoked` (with `crl_file`) read exactly as for `tls`. Then, in order:
//! - `response` (implicit): the request was answered. Fails with the connection failure
//!   class as its reason (`timeout`, `reset`, `eof`, `tls_alert`, `protocol`, ...); for
//!   `http://` it covers the connection too (there is no `handshake`).
//! - `status`: one of the expected codes (default: any 2xx), reason `status`. An answer that
//!   shows why (nginx's 400 "No required SSL certificate was sent", a proxy's 502, a
//!   redirect's Location) is said plainly.
//! - `body_contains`, `body_matches`: on the first 64 KiB of the body, reason `body`.
//!
//! Redirects are not followed: a 3xx fails the default `status` and names its Location.
//! The whole exchange, body included, ends within the check's timeout.

pub mod exchange;
pub mod status;

use crate::expect::chain::want::ChainExpect;
use crate::expect::revocation::NotRevoked;
use crate::expect::rotated::RotatedAfter;
use crate::kinds::classify::Peer;
use crate::kinds::tls::{self, client, TlsSpec};
use crate::kinds::{Base, CheckKind, Ctx, Invalid};
use crate::metrics::text::{family, Def, Exposition};
use crate::model::{Assertion, CheckResult, Outcome, Status};
use crate::suite::{ExpiryThresholds, TlsVersion};
use exchange::{Answer, Ask, Body, Broken, Url};
use serde::Deserialize;
use status::StatusExpect;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// A URL to request.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// `https://host[:port]/path?query` or `http://...`.
    pub url: String,
    /// SNI sent, name verified and `Host` header; defaults to the URL's host (https only).
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    /// CRLs for `expect.not_revoked`, as for `tls`.
    pub crl_file: Option<String>,
    #[serde(default = "get")]
    pub method: String,
    /// Sent as written; `Host` and `User-Agent` here replace the defaults.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A request body (none by default).
    pub body: Option<String>,
}

fn get() -> String {
    "GET".into()
}

/// What an `http` check may expect: the answer, and the `tls` expectations.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    pub status: Option<StatusExpect>,
    pub body_contains: Option<String>,
    pub body_matches: Option<String>,
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

tls::tls_expect_of!(HttpExpect);

impl HttpSpec {
    /// The `tls` spec of the connection to `url` (ALPN http/1.1).
    pub fn tls(&self, url: &Url) -> TlsSpec {
        TlsSpec {
            addr: url.addr(),
            server_name: self.server_name.clone(),
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            alpn: vec!["http/1.1".into()],
            crl_file: self.crl_file.clone(),
            resolve: Default::default(),
        }
    }

    /// The TLS settings that are set.
    fn tls_keys(&self) -> Vec<&'static str> {
        let set = [
            ("server_name", self.server_name.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("client_cert", self.client_cert.is_some()),
            ("client_key", self.client_key.is_some()),
            ("crl_file", self.crl_file.is_some()),
        ];
        set.into_iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| k)
            .collect()
    }

    /// The request to send, or the key (`method`, `headers`) that cannot be sent.
    fn ask(&self, url: &Url) -> Result<Ask, (&'static str, String)> {
        let host = url.host_header(self.server_name.as_deref());
        exchange::ask(
            &self.method,
            &url.target,
            &host,
            &self.headers,
            self.body.as_deref(),
        )
    }
}

family!(
    HTTP_STATUS,
    "rotcheck_http_status_code",
    Gauge,
    "The HTTP status code of the check's last response; absent when no response arrived."
);

/// The `http` check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http;

impl CheckKind for Http {
    const NAME: &'static str = "http";
    const CONNECTS: bool = true;
    type Spec = HttpSpec;
    type Expect = HttpExpect;
    const FAMILIES: &'static [&'static Def] = &[&HTTP_STATUS];

    fn validate(spec: &HttpSpec, expect: &HttpExpect) -> Result<(), Invalid> {
        let url = Url::parse(&spec.url).map_err(|m| Invalid::new(".http.url", m))?;
        if !url.tls {
            plain_has_no_tls(spec, expect)?;
        }
        spec.ask(&url)
            .map_err(|(key, m)| Invalid::new(format!(".http.{key}"), m))?;
        tls_settings(spec, expect)?;
        match &expect.body_matches {
            Some(re) => regex::Regex::new(re).map(drop).map_err(|e| {
                let msg = format!("bad regular expression: {e}");
                Invalid::new(".expect.body_matches", msg)
            }),
            None => Ok(()),
        }
    }

    async fn probe(spec: &HttpSpec, expect: &HttpExpect, ctx: &Ctx) -> Outcome {
        probe(spec, expect, ctx).await
    }

    fn series(e: &mut Exposition, base: &Base<'_>, r: &CheckResult) {
        <tls::Tls as CheckKind>::series(e, base, r);
        let code = r.facts.extra.get("http_status");
        if let Some(code) = code.and_then(|c| c.parse::<f64>().ok()) {
            e.sample(&HTTP_STATUS, base, code);
        }
    }
}

/// The client identity comes in pairs; `chain: valid` needs the CA it validates against.
fn tls_settings(spec: &HttpSpec, expect: &HttpExpect) -> Result<(), Invalid> {
    if spec.client_cert.is_some() != spec.client_key.is_some() {
        let msg = "client_cert and client_key go together; set both or neither";
        return Err(Invalid::new(".http", msg));
    }
    if matches!(expect.chain, Some(c) if c.valid) && spec.ca_file.is_none() {
        let msg =
            "chain: valid needs http.ca_file (the CA chain clients trust); add it to the check";
        return Err(Invalid::new(".expect.chain", msg));
    }
    Ok(())
}

/// A plain `http://` check may not set TLS settings or expectations.
fn plain_has_no_tls(spec: &HttpSpec, expect: &HttpExpect) -> Result<(), Invalid> {
    if let Some(k) = spec.tls_keys().first() {
        let msg = format!(
            "{k} needs TLS, but url {:?} is plain HTTP; write https:// or remove {k}",
            spec.url
        );
        return Err(Invalid::new(format!(".http.{k}"), msg));
    }
    if let Some(k) = expect.tls().keys_set().first() {
        let msg = format!("{k} is judged on a TLS connection, but url {:?} is plain HTTP; write https:// or remove {k}", spec.url);
        return Err(Invalid::new(format!(".expect.{k}"), msg));
    }
    Ok(())
}

/// Requests the URL and evaluates the expectations.
pub async fn probe(spec: &HttpSpec, expect: &HttpExpect, ctx: &Ctx) -> Outcome {
    let deadline = Instant::now() + ctx.timeout;
    let url = match Url::parse(&spec.url) {
        Ok(u) => u,
        Err(m) => return not_probed(m),
    };
    let ask = match spec.ask(&url) {
        Ok(a) => a,
        Err((_, m)) => return not_probed(m),
    };
    match url.tls {
        true => https(spec, expect, ctx, &url, &ask, deadline).await,
        false => plain(expect, ctx, &url, &ask, deadline).await,
    }
}

fn not_probed(message: String) -> Outcome {
    let mut out = tls::not_probed("config", message);
    out.assertions[0].name = "response".into();
    out
}

/// TLS as the `tls` kind does it, then the exchange on the same connection.
async fn https(
    spec: &HttpSpec,
    expect: &HttpExpect,
    ctx: &Ctx,
    url: &Url,
    ask: &Ask,
    deadline: Instant,
) -> Outcome {
    let tls_spec = spec.tls(url);
    let target = match client::Target::parse(&tls_spec.addr, spec.server_name.as_deref()) {
        Ok(t) => t,
        Err(msg) => return tls::not_probed("config", msg),
    };
    let template = match tls::cached_config(&tls_spec, ctx) {
        Ok(c) => c,
        Err(e) => return tls::not_probed(&e.class, e.message),
    };
    let opened = client::open(&target, &template, deadline, ctx.timeout).await;
    let tls_expect = expect.tls();
    let open = match opened {
        Ok(open) => open,
        Err(f) => {
            let (presented, stapled) = (f.chain.clone(), f.stapled.clone());
            let mut out = tls::judge(&tls_spec, &tls_expect, ctx, &target, Err(f));
            let (spec, want) = (&tls_spec, &tls_expect);
            tls::revocation(spec, want, ctx, &presented, &stapled, deadline, &mut out).await;
            return out;
        }
    };
    let session = Ok(open.session.clone());
    let mut out = tls::judge(&tls_spec, &tls_expect, ctx, &target, session);
    let (presented, stapled) = (open.session.chain.clone(), open.session.stapled.clone());
    let watch = open.watch;
    let got = exchange::exchange(open.stream, ask, deadline, ctx.timeout, || watch.peer()).await;
    judge(expect, got, &mut out);
    let (spec, want) = (&tls_spec, &tls_expect);
    tls::revocation(spec, want, ctx, &presented, &stapled, deadline, &mut out).await;
    out
}

/// A plain TCP connection, then the exchange.
async fn plain(expect: &HttpExpect, ctx: &Ctx, url: &Url, ask: &Ask, deadline: Instant) -> Outcome {
    let mut out = Outcome::default();
    let target = match client::Target::parse(&url.addr(), None) {
        Ok(t) => t,
        Err(msg) => return not_probed(msg),
    };
    let peer = Peer {
        addr: target.addr(),
        ..Default::default()
    };
    let got = match client::connect(&target, &peer, deadline, ctx.timeout).await {
        Ok(tcp) => exchange::exchange(tcp, ask, deadline, ctx.timeout, || peer.clone()).await,
        Err(failure) => Err(Broken {
            head: None,
            failure,
        }),
    };
    judge(expect, got, &mut out);
    out
}

/// Adds `response`, `status` and the body assertions.
fn judge(expect: &HttpExpect, got: Result<Answer, Broken>, out: &mut Outcome) {
    let want = expect.status.clone().unwrap_or_default();
    let Answer { head, body } = match got {
        Ok(a) => a,
        Err(b) => return broken(&want, b, out),
    };
    out.assertions.push(answered(&head, &body));
    let code = head.status.to_string();
    out.facts.extra.insert("http_status".into(), code);
    let status = status::assert_status(&want, &head, Some(&body));
    out.assertions.push(status);
    if let Some(s) = &expect.body_contains {
        out.assertions.push(contains(&body, s));
    }
    if let Some(re) = &expect.body_matches {
        out.assertions.push(matches(&body, re));
    }
}

/// A failed exchange: `response` fails with the class; the status is judged when it came.
fn broken(want: &StatusExpect, b: Broken, out: &mut Outcome) {
    let f = &b.failure;
    let response = Assertion::fail("response", f.class.as_str(), &f.message);
    out.assertions.push(response);
    out.error = Some(f.to_probe_error());
    if let Some(h) = &b.head {
        let code = h.status.to_string();
        out.facts.extra.insert("http_status".into(), code);
        out.assertions.push(status::assert_status(want, h, None));
    }
}

fn answered(head: &exchange::Head, body: &Body) -> Assertion {
    let cut = match body.cut {
        true => format!(", stopped reading after {} KiB", exchange::BODY_READ / 1024),
        false => String::new(),
    };
    let msg = format!(
        "HTTP {}, {} body bytes{cut}",
        head.status_text(),
        body.total
    );
    Assertion::pass("response", msg)
}

fn contains(body: &Body, want: &str) -> Assertion {
    let name = "body_contains";
    if body.text().contains(want) {
        return Assertion::pass(name, format!("the body contains {want:?}"));
    }
    let msg = format!(
        "expected the body to contain {want:?}; found {}",
        found(body)
    );
    Assertion::fail(name, "body", msg)
}

fn matches(body: &Body, re: &str) -> Assertion {
    let name = "body_matches";
    let regex = match regex::Regex::new(re) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("bad regular expression {re:?} ({e}); fix body_matches");
            return Assertion::not_ok(name, Status::Error, "config", msg);
        }
    };
    if regex.is_match(&body.text()) {
        return Assertion::pass(name, format!("the body matches /{re}/"));
    }
    let msg = format!("expected the body to match /{re}/; found {}", found(body));
    Assertion::fail(name, "body", msg)
}

/// The body quoted for a message, saying when only its head was kept.
fn found(body: &Body) -> String {
    let cut = match body.truncated() {
        true => format!(
            " (only the first {} KiB were kept)",
            exchange::BODY_KEEP / 1024
        ),
        false => String::new(),
    };
    match body.text().trim().is_empty() {
        true => format!("an empty body{cut}"),
        false => format!("{}{cut}", crate::kinds::command::quote(&body.text())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expect: &str) -> Result<(), Invalid> {
        let spec: HttpSpec = serde_yaml_ng::from_str(spec).unwrap();
        let expect: HttpExpect = serde_yaml_ng::from_str(expect).unwrap();
        Http::validate(&spec, &expect)
    }

    fn key(spec: &str, expect: &str) -> String {
        check(spec, expect).unwrap_err().key
    }

    #[test]
    fn plain_http_refuses_tls_settings_and_expectations() {
        let plain = "{url: 'http://127.0.0.1:8080/'}";
        assert_eq!(check(plain, "{status: 200, body_contains: ok}"), Ok(()));
        assert_eq!(key(plain, "{chain: valid}"), ".expect.chain");
        assert_eq!(key(plain, "{min_tls: '1.3'}"), ".expect.min_tls");
        let with_ca = "{url: 'http://h/', ca_file: ca.pem}";
        assert_eq!(key(with_ca, "{}"), ".http.ca_file");
    }

    #[test]
    fn settings_are_checked_at_load_time() {
        assert_eq!(key("{url: 'h:443'}", "{}"), ".http.url");
        assert_eq!(
            key("{url: 'https://h/', method: 'G T'}", "{}"),
            ".http.method"
        );
        let header = "{url: 'https://h/', headers: {'a b': c}}";
        assert_eq!(key(header, "{}"), ".http.headers");
        let half = "{url: 'https://h/', client_cert: c.pem}";
        assert_eq!(key(half, "{}"), ".http");
        assert_eq!(
            key("{url: 'https://h/'}", "{chain: valid}"),
            ".expect.chain"
        );
        let re = "{body_matches: '(('}";
        assert_eq!(key("{url: 'https://h/'}", re), ".expect.body_matches");
    }

    #[test]
    fn the_tls_part_of_the_expectations_is_the_tls_kinds() {
        let e: HttpExpect = serde_yaml_ng::from_str("{chain: partial, issuer_cn: x}").unwrap();
        let t = e.tls();
        assert_eq!(t.chain.map(|c| c.partial), Some(true));
        assert_eq!(t.issuer_cn.as_deref(), Some("x"));
        assert_eq!(e.tls().keys_set(), ["chain", "issuer_cn"]);
    }
}
