//! The metric families (names, types, labels, help — DESIGN.md "Metric names") and how they
//! are built from check results, below both `serve` (`/metrics`, `/probe`) and
//! `gate --format prom`, so the names can never diverge. The families every check has are
//! here; each check kind adds its own through the kind registry ([`crate::kinds`]).

pub mod text;

use crate::model::{CheckResult, Report, Status};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use text::{family, Def, Exposition, Format};

family!(CHECK_SUCCESS, "rotcheck_check_success", Gauge,
    "1 if the check's last run passed or only warned, 0 if it failed or errored (labels: stage, kind).");
family!(
    CHECK_STATUS,
    "rotcheck_check_status",
    Gauge,
    "1 for the check's current status (pass, warn, fail or error); the other three are absent."
);
family!(CHECK_FAILURE_REASON, "rotcheck_check_failure_reason", Gauge,
    "1 for the reason token of the first failing assertion of the check's last run (else its error class); absent when it passed or only warned.");
family!(
    CHECK_DURATION,
    "rotcheck_check_duration_seconds",
    Gauge,
    "How long the check's last run took, in seconds."
);
family!(
    CHECK_LAST_RUN,
    "rotcheck_check_last_run_timestamp_seconds",
    Gauge,
    "Unix time at which the check's last run finished."
);
family!(CHECK_INTERVAL, "rotcheck_check_interval_seconds", Gauge,
    "How often serve runs the check, in seconds (per-check interval, else --interval, else the suite default).");
family!(
    ASSERTION_SUCCESS,
    "rotcheck_assertion_success",
    Gauge,
    "0 for each assertion that failed or errored in the check's last run; assertions that passed or only warned are absent."
);
family!(CONNECT_FAILURE, "rotcheck_connect_failure", Gauge,
    "1 for the class of the connection failure of the check's last run (refused, reset, timeout, dns, unreachable, eof, tls_alert, protocol, io); absent when it connected.");
family!(
    CONNECT_FAILURES,
    "rotcheck_connect_failures_total",
    Counter,
    "Runs of the check that failed to connect, by failure class, since the exporter started."
);
family!(CHAIN_FAILURE, "rotcheck_chain_failure", Gauge,
    "1 for the reason a client refused the certificate chain in the check's last run, or incomplete_chain when the chain lacks an intermediate (also when it only warns); absent otherwise.");
family!(CHAIN_CLIENT_ACCEPTS, "rotcheck_chain_client_accepts", Gauge,
    "1 if a client of that family (openssl, go, rustls) would accept the chain the check saw with its ca_file as trust store, 0 if it would refuse it; absent without expect.chain.");
family!(
    CERT_NOT_AFTER,
    "rotcheck_cert_not_after_timestamp_seconds",
    Gauge,
    "Unix time at which the certificate expires (reported even when the chain did not validate)."
);
family!(
    CERT_NOT_BEFORE,
    "rotcheck_cert_not_before_timestamp_seconds",
    Gauge,
    "Unix time from which the certificate is valid."
);
family!(CERT_RATIO, "rotcheck_cert_lifetime_remaining_ratio", Gauge,
    "Share of the certificate's lifetime still remaining (1 = just issued, 0 = expired); the lowest at each position.");
family!(CERT_REVOKED, "rotcheck_cert_revoked", Gauge,
    "1 if the certificate is revoked (on its issuer's CRL or per an OCSP answer), 0 if a valid CRL or OCSP answer says it is not; absent without expect.not_revoked or when neither could be used.");
family!(RELOAD_OK, "rotcheck_config_last_reload_successful", Gauge,
    "1 if the last suite (and web config) reload succeeded, 0 if it failed and the previous suite is still in use.");
family!(
    RELOAD_TIME,
    "rotcheck_config_last_reload_success_timestamp_seconds",
    Gauge,
    "Unix time of the last successful suite load (start-up or reload)."
);
family!(
    BUILD_INFO,
    "rotcheck_build_info",
    Gauge,
    "rotcheck's version; always 1."
);
/// The families of every check, before the kinds' own.
const HEAD: [&Def; 15] = [
    &CHECK_SUCCESS,
    &CHECK_STATUS,
    &CHECK_FAILURE_REASON,
    &CHECK_DURATION,
    &CHECK_LAST_RUN,
    &CHECK_INTERVAL,
    &ASSERTION_SUCCESS,
    &CONNECT_FAILURE,
    &CONNECT_FAILURES,
    &CHAIN_FAILURE,
    &CHAIN_CLIENT_ACCEPTS,
    &CERT_NOT_AFTER,
    &CERT_NOT_BEFORE,
    &CERT_RATIO,
    &CERT_REVOKED,
];

/// The exporter's own families, after the kinds'.
const TAIL: [&Def; 3] = [&RELOAD_OK, &RELOAD_TIME, &BUILD_INFO];

/// Every family, in output order: the common ones, each kind's in registry order, then the
/// exporter's own.
pub fn all() -> &'static [&'static Def] {
    static ALL: OnceLock<Vec<&'static Def>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<&'static Def> = HEAD.to_vec();
        for def in crate::kinds::families() {
            if !v.iter().any(|d| d.name == def.name) {
                v.push(def);
            }
        }
        v.extend(TAIL);
        v
    })
}

/// `/probe`: one fresh result, nothing else (no counters, no exporter state).
pub fn render_probe(suite: &str, r: &CheckResult, now_unix: i64) -> String {
    render_probe_as(suite, r, now_unix, Format::Text)
}

/// [`render_probe`] in the given format.
pub fn render_probe_as(suite: &str, r: &CheckResult, now_unix: i64, format: Format) -> String {
    let mut e = Exposition::new(all());
    check_series(&mut e, suite, r, now_unix);
    e.finish_as(format)
}

/// `gate --format prom`: a report for node_exporter's textfile collector. Time-based values
/// use the report's evaluation instant (`--at`). No counters: a one-shot run has none.
pub fn render_report(report: &Report) -> String {
    let mut e = Exposition::new(all());
    for r in &report.checks {
        check_series(&mut e, &report.suite, r, report.evaluated_unix);
    }
    build_info(&mut e);
    e.finish()
}

pub fn build_info(e: &mut Exposition) {
    e.sample(&BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
}

pub fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Gate semantics: a warning does not fail.
fn succeeded(s: Status) -> bool {
    s <= Status::Warn
}

/// Every per-check gauge of one result.
pub fn check_series(e: &mut Exposition, suite: &str, r: &CheckResult, now_unix: i64) {
    static_series(e, suite, r);
    ratio_series(
        e,
        &[("suite", suite), ("check", r.name.as_str())],
        r,
        now_unix,
    );
}

/// The gauges that do not depend on the time of the scrape.
pub fn static_series(e: &mut Exposition, suite: &str, r: &CheckResult) {
    let base = [("suite", suite), ("check", r.name.as_str())];
    status_series(e, &base, r);
    assertion_series(e, &base, r);
    failure_series(e, &base, r);
    cert_series(e, &base, r);
    crate::kinds::series(e, &base, r);
}

/// The base labels (`suite`, `check`) followed by `more`.
pub fn with<'a>(
    base: &[(&'a str, &'a str); 2],
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut v = Vec::with_capacity(2 + more.len());
    v.extend_from_slice(base);
    v.extend_from_slice(more);
    v
}

fn status_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    let labels = with(base, &[("stage", &r.stage), ("kind", &r.kind)]);
    e.sample(&CHECK_SUCCESS, &labels, flag(succeeded(r.status)));
    let labels = with(base, &[("status", r.status.as_str())]);
    e.sample(&CHECK_STATUS, &labels, 1.0);
    if let Some(reason) = r.failure_reason() {
        let labels = with(base, &[("reason", reason)]);
        e.sample(&CHECK_FAILURE_REASON, &labels, 1.0);
    }
    e.sample(&CHECK_DURATION, base, r.duration_seconds.as_secs_f64());
    e.sample(&CHECK_LAST_RUN, base, r.finished_unix);
}

/// One series, 0, per name of an assertion that failed or errored (a repeated name, one per
/// file say, counts once). Assertions that passed or only warned write none: a passing check
/// costs no series here, however many assertions it has.
fn assertion_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    let failed: BTreeSet<&str> = r
        .assertions
        .iter()
        .filter(|a| !succeeded(a.status))
        .map(|a| a.name.as_str())
        .collect();
    for name in failed {
        e.sample(&ASSERTION_SUCCESS, &with(base, &[("assertion", name)]), 0.0);
    }
}

/// The connection failure gauge (only for kinds that connect), the chain failure reason and
/// the client verdicts.
fn failure_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    let class = r.error.as_ref().and_then(|err| err.failure_class());
    if let Some(class) = class.filter(|_| crate::kinds::connects(&r.kind)) {
        e.sample(
            &CONNECT_FAILURE,
            &with(base, &[("class", class.as_str())]),
            1.0,
        );
    }
    if let Some(reason) = r.chain_reason() {
        e.sample(&CHAIN_FAILURE, &with(base, &[("reason", reason)]), 1.0);
    }
    client_series(e, base, r);
}

/// Per client family: 1 when every `accepted_by_<client>` assertion (one per file for a
/// files check) passed.
fn client_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    let mut by_client: BTreeMap<&str, bool> = BTreeMap::new();
    for a in &r.assertions {
        let Some(rest) = a.name.strip_prefix("accepted_by_") else {
            continue;
        };
        let client = rest.split(':').next().unwrap_or(rest);
        *by_client.entry(client).or_insert(true) &= a.status == Status::Pass;
    }
    for (client, ok) in by_client {
        e.sample(
            &CHAIN_CLIENT_ACCEPTS,
            &with(base, &[("client", client)]),
            flag(ok),
        );
    }
}

/// Validity series per certificate (deduplicated by position, subject and serial).
fn cert_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    let mut seen = Vec::with_capacity(r.certs.len());
    for c in &r.certs {
        let key = (
            c.position.as_str(),
            c.subject_cn.as_str(),
            c.serial.as_str(),
        );
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let labels = with(
            base,
            &[
                ("position", key.0),
                ("subject_cn", key.1),
                ("serial", key.2),
            ],
        );
        e.sample(&CERT_NOT_AFTER, &labels, c.not_after_unix as f64);
        e.sample(&CERT_NOT_BEFORE, &labels, c.not_before_unix as f64);
        if let Some(revoked) = c.revoked {
            e.sample(&CERT_REVOKED, &labels, flag(revoked));
        }
    }
}

/// The lowest share of lifetime left per position, at `now_unix`.
pub fn ratio_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult, now_unix: i64) {
    let mut ratios: BTreeMap<&str, f64> = BTreeMap::new();
    for c in &r.certs {
        let ratio = ratios.entry(c.position.as_str()).or_insert(f64::INFINITY);
        *ratio = ratio.min(c.lifetime_remaining_ratio(now_unix));
    }
    for (position, ratio) in ratios {
        e.sample(&CERT_RATIO, &with(base, &[("position", position)]), ratio);
    }
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::*;
    use std::time::Duration;
    use text::Kind;

    /// A certificate valid from `nb` to `na` (Unix seconds).
    pub fn cert(position: &str, cn: &str, serial: &str, nb: i64, na: i64) -> CertFacts {
        CertFacts {
            position: position.into(),
            subject: format!("CN={cn}"),
            subject_cn: cn.into(),
            issuer: "CN=ca".into(),
            issuer_cn: "ca".into(),
            serial: serial.into(),
            sans: vec![],
            not_before: String::new(),
            not_after: String::new(),
            not_before_unix: nb,
            not_after_unix: na,
            sha256: String::new(),
            key_type: "ECDSA P-256".into(),
            is_ca: position != "leaf",
            self_signed: position == "root",
            revoked: None,
        }
    }

    /// A finished tls result with the given status.
    pub fn result(name: &str, status: Status) -> CheckResult {
        CheckResult {
            name: name.into(),
            stage: "server-tls".into(),
            kind: "tls".into(),
            tags: vec![],
            status,
            duration_seconds: Duration::from_millis(250),
            finished_unix: 1_700_000_000.5,
            error: None,
            assertions: vec![],
            certs: vec![],
            facts: Facts::default(),
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn status_series_use_gate_semantics() {
        let text = render_probe("prod", &result("a", Status::Warn), 0);
        let l = lines(&text);
        assert!(l.contains(
            &"rotcheck_check_success{suite=\"prod\",check=\"a\",stage=\"server-tls\",kind=\"tls\"} 1"
        ));
        assert!(l.contains(&"rotcheck_check_status{suite=\"prod\",check=\"a\",status=\"warn\"} 1"));
        assert_eq!(
            text.matches("rotcheck_check_status{").count(),
            1,
            "only the current one"
        );
        assert!(l.contains(&"rotcheck_check_duration_seconds{suite=\"prod\",check=\"a\"} 0.25"));
        assert!(l.contains(
            &"rotcheck_check_last_run_timestamp_seconds{suite=\"prod\",check=\"a\"} 1700000000.5"
        ));
        let failed = render_probe("prod", &result("a", Status::Error), 0);
        assert!(failed.contains("kind=\"tls\"} 0\n"));
    }

    #[test]
    fn cert_facts_are_exported_when_the_chain_fails() {
        let mut r = result("a", Status::Fail);
        r.assertions = vec![
            Assertion::fail("chain", "incomplete_chain", "server sent only the leaf"),
            Assertion::pass("names", "ok"),
        ];
        r.certs = vec![cert("leaf", "vault.prod", "0a1b", 1000, 2000)];
        let text = render_probe("prod", &r, 1500);
        let l = lines(&text);
        assert!(l.contains(
            &"rotcheck_chain_failure{suite=\"prod\",check=\"a\",reason=\"incomplete_chain\"} 1"
        ));
        assert!(l.contains(&"rotcheck_cert_not_after_timestamp_seconds{suite=\"prod\",check=\"a\",position=\"leaf\",subject_cn=\"vault.prod\",serial=\"0a1b\"} 2000"));
        assert!(l.contains(&"rotcheck_cert_not_before_timestamp_seconds{suite=\"prod\",check=\"a\",position=\"leaf\",subject_cn=\"vault.prod\",serial=\"0a1b\"} 1000"));
        assert!(l.contains(&"rotcheck_cert_lifetime_remaining_ratio{suite=\"prod\",check=\"a\",position=\"leaf\"} 0.5"));
        assert!(l.contains(
            &"rotcheck_assertion_success{suite=\"prod\",check=\"a\",assertion=\"chain\"} 0"
        ));
        assert!(
            !text.contains("assertion=\"names\""),
            "a passing assertion writes no series"
        );
    }

    #[test]
    fn duplicate_positions_and_assertions_give_one_series_each() {
        let mut r = result("a", Status::Fail);
        r.certs = vec![
            cert("leaf", "l", "01", 0, 100),
            cert("intermediate", "i1", "02", 0, 100),
            cert("intermediate", "i2", "03", 0, 400),
            cert("intermediate", "i2", "03", 0, 400),
        ];
        r.assertions = vec![
            Assertion::pass("mode", "a"),
            Assertion::fail("mode", "mode", "b"),
        ];
        let text = render_probe("prod", &r, 50);
        let ratio: Vec<_> = lines(&text)
            .into_iter()
            .filter(|l| {
                l.starts_with("rotcheck_cert_lifetime_remaining_ratio{")
                    && l.contains("intermediate")
            })
            .collect();
        assert_eq!(ratio, vec!["rotcheck_cert_lifetime_remaining_ratio{suite=\"prod\",check=\"a\",position=\"intermediate\"} 0.5"]);
        assert_eq!(
            text.matches("rotcheck_cert_not_after_timestamp_seconds{")
                .count(),
            3
        );
        assert!(text.contains("assertion=\"mode\"} 0\n"));
        assert_eq!(text.matches("assertion=\"mode\"").count(), 1);
    }

    #[test]
    fn failure_reason_names_the_first_failing_assertion() {
        let mut r = result("a", Status::Fail);
        r.assertions = vec![
            Assertion::pass("handshake", "ok"),
            Assertion::not_ok("expiry", Status::Warn, "expiring", "soon"),
            Assertion::fail("chain", "incomplete_chain", "only the leaf"),
            Assertion::fail("names", "name_mismatch", "wrong host"),
        ];
        let text = render_probe("p", &r, 0);
        assert!(text.contains(
            "rotcheck_check_failure_reason{suite=\"p\",check=\"a\",reason=\"incomplete_chain\"} 1\n"
        ));
        assert_eq!(text.matches("rotcheck_check_failure_reason{").count(), 1);
        r.assertions.clear();
        r.status = Status::Error;
        r.error = Some(ProbeError::connect(FailureClass::Refused, "refused"));
        assert_eq!(r.failure_reason(), Some("refused"));
        r.status = Status::Warn;
        assert!(!render_probe("p", &r, 0).contains("rotcheck_check_failure_reason{"));
    }

    #[test]
    fn connect_failure_only_for_connection_classes() {
        let mut r = result("a", Status::Error);
        r.error = Some(ProbeError::connect(FailureClass::Reset, "reset by peer"));
        assert!(render_probe("p", &r, 0)
            .contains("rotcheck_connect_failure{suite=\"p\",check=\"a\",class=\"reset\"} 1\n"));
        r.error = Some(ProbeError::local("not_found", "no file"));
        assert!(!render_probe("p", &r, 0).contains("rotcheck_connect_failure{"));
    }

    #[test]
    fn each_kind_writes_its_own_fact_series() {
        let mut tls = result("t", Status::Pass);
        tls.facts.tls = Some(TlsFacts {
            version: Some("1.3".into()),
            ..Default::default()
        });
        let mut files = result("f", Status::Pass);
        files.kind = "files".into();
        files.facts.files = vec![FileFacts {
            path: "/etc/tls/server.key".into(),
            mode: Some(0o600),
            owner: None,
            group: None,
        }];
        let mut health = result("h", Status::Pass);
        health.kind = "vault_health".into();
        health.facts.vault = Some(VaultFacts {
            sealed: Some(true),
            initialized: Some(true),
            version: Some("1.20.4".into()),
            ..Default::default()
        });
        let mut skew = result("s", Status::Pass);
        skew.kind = "version_skew".into();
        skew.facts.vault = Some(VaultFacts {
            version: Some("1.20.4".into()),
            minor_skew: Some(1),
            agent_version: Some("1.21.1".into()),
            ..Default::default()
        });
        let text: String = [tls, files, health, skew]
            .iter()
            .map(|r| render_probe("p", r, 0))
            .collect();
        for want in [
            "rotcheck_tls_version_info{suite=\"p\",check=\"t\",version=\"1.3\"} 1",
            "rotcheck_file_mode{suite=\"p\",check=\"f\",path=\"/etc/tls/server.key\"} 600",
            "rotcheck_vault_sealed{suite=\"p\",check=\"h\"} 1",
            "rotcheck_vault_initialized{suite=\"p\",check=\"h\"} 1",
            "rotcheck_vault_version_info{suite=\"p\",check=\"h\",version=\"1.20.4\"} 1",
            "rotcheck_vault_version_info{suite=\"p\",check=\"s\",version=\"1.20.4\"} 1",
            "rotcheck_vault_agent_version_info{suite=\"p\",check=\"s\",version=\"1.21.1\"} 1",
            "rotcheck_version_skew_minor{suite=\"p\",check=\"s\"} 1",
        ] {
            assert!(text.contains(&format!("{want}\n")), "missing {want}");
        }
    }

    #[test]
    fn client_verdicts_become_one_series_per_family() {
        let mut r = result("a", Status::Fail);
        r.assertions = vec![
            Assertion::fail("chain", "unknown_issuer", "openssl refuses it"),
            Assertion::fail("accepted_by_openssl:a.crt", "unknown_issuer", "no root"),
            Assertion::pass("accepted_by_openssl:b.crt", "ok"),
            Assertion::pass("accepted_by_go:a.crt", "ok"),
            Assertion::pass("accepted_by_go:b.crt", "ok"),
        ];
        let text = render_probe("p", &r, 0);
        let l = lines(&text);
        assert!(
            l.contains(&"rotcheck_chain_client_accepts{suite=\"p\",check=\"a\",client=\"go\"} 1")
        );
        assert!(l.contains(
            &"rotcheck_chain_client_accepts{suite=\"p\",check=\"a\",client=\"openssl\"} 0"
        ));
        assert!(!text.contains("client=\"rustls\""));
    }

    #[test]
    fn family_order_is_common_then_kinds_then_exporter() {
        let names: Vec<&str> = all().iter().map(|d| d.name).collect();
        assert_eq!(names.first(), Some(&"rotcheck_check_success"));
        assert_eq!(names.last(), Some(&"rotcheck_build_info"));
        assert_eq!(names.len(), 39, "{names:?}");
        let tls = names.iter().position(|n| *n == "rotcheck_tls_version_info");
        let skew = names
            .iter()
            .position(|n| *n == "rotcheck_version_skew_minor");
        assert!(tls < skew);
    }

    #[test]
    fn octal_modes_read_like_chmod() {
        use crate::kinds::files::octal_digits;
        assert_eq!(octal_digits(0o640), 640.0);
        assert_eq!(octal_digits(0o100644), 644.0);
        assert_eq!(octal_digits(0o4755), 4755.0);
    }

    #[test]
    fn every_family_has_help_and_base_units() {
        for d in all() {
            assert!(d.name.starts_with("rotcheck_"));
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "{}",
                d.name
            );
            assert!(!d.help.is_empty());
        }
    }
}
