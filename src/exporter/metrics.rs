//! The metric families (names, types, labels, help — DESIGN.md "Metric names") and how they
//! are built from check results. Shared by `serve` (`/metrics`, `/probe`) and
//! `gate --format prom`, so the names can never diverge.

use super::text::{write_family, Def, Exposition, Kind};
use crate::model::{CheckResult, FailureClass, Report, Status};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

macro_rules! family {
    ($id:ident, $name:literal, $kind:ident, $help:literal) => {
        #[doc = $help]
        pub static $id: Def = Def {
            name: $name,
            help: $help,
            kind: Kind::$kind,
        };
    };
}

family!(CHECK_SUCCESS, "rotcheck_check_success", Gauge,
    "1 if the check's last run passed or only warned, 0 if it failed or errored (labels: stage, kind).");
family!(
    CHECK_STATUS,
    "rotcheck_check_status",
    Gauge,
    "1 for the check's current status (pass, warn, fail, error), 0 for the other three."
);
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
    "1 if the assertion passed or only warned in the check's last run, 0 if it failed or errored."
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
    "1 for the reason the certificate chain did not validate in the check's last run; absent when it validated.");
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
family!(
    TLS_VERSION,
    "rotcheck_tls_version_info",
    Gauge,
    "The TLS version negotiated by the check's last handshake; always 1."
);
family!(
    FILE_MODE,
    "rotcheck_file_mode",
    Gauge,
    "The file's permission bits as a number whose decimal digits are the octal mode (0640 is 640)."
);
family!(
    VAULT_SEALED,
    "rotcheck_vault_sealed",
    Gauge,
    "1 if Vault reported itself sealed, 0 if unsealed."
);
family!(
    VAULT_INITIALIZED,
    "rotcheck_vault_initialized",
    Gauge,
    "1 if Vault reported itself initialized, 0 if not."
);
family!(
    VAULT_VERSION,
    "rotcheck_vault_version_info",
    Gauge,
    "The Vault server version reported by sys/health; always 1."
);
family!(
    VAULT_AGENT_VERSION,
    "rotcheck_vault_agent_version_info",
    Gauge,
    "The Vault Agent version seen by a version_skew check; always 1."
);
family!(
    VERSION_SKEW,
    "rotcheck_version_skew_minor",
    Gauge,
    "Minor-version difference agent minus server (negative: the agent lags the server)."
);
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

/// Every family, in output order.
pub static ALL: [&Def; 22] = [
    &CHECK_SUCCESS,
    &CHECK_STATUS,
    &CHECK_DURATION,
    &CHECK_LAST_RUN,
    &CHECK_INTERVAL,
    &ASSERTION_SUCCESS,
    &CONNECT_FAILURE,
    &CONNECT_FAILURES,
    &CHAIN_FAILURE,
    &CERT_NOT_AFTER,
    &CERT_NOT_BEFORE,
    &CERT_RATIO,
    &TLS_VERSION,
    &FILE_MODE,
    &VAULT_SEALED,
    &VAULT_INITIALIZED,
    &VAULT_VERSION,
    &VAULT_AGENT_VERSION,
    &VERSION_SKEW,
    &RELOAD_OK,
    &RELOAD_TIME,
    &BUILD_INFO,
];

/// One check as serve knows it: its schedule, latest result (none before the first run),
/// failure counters (indexed like `FailureClass::ALL`), and those rendered as text.
#[derive(Debug, Clone)]
pub struct CheckEntry {
    pub name: String,
    pub interval: Duration,
    pub result: Option<Arc<CheckResult>>,
    pub failures: [u64; FailureClass::ALL.len()],
    /// The series that only change when the check runs or the suite reloads.
    pub rendered: Arc<Rendered>,
}

impl CheckEntry {
    /// An entry, rendered for `suite`.
    pub fn new(
        suite: &str,
        name: &str,
        interval: Duration,
        result: Option<Arc<CheckResult>>,
        failures: [u64; FailureClass::ALL.len()],
    ) -> Self {
        let mut entry = CheckEntry {
            name: name.to_string(),
            interval,
            result,
            failures,
            rendered: Arc::default(),
        };
        entry.render(suite);
        entry
    }

    /// Re-renders the cached series after the result or counters changed.
    pub fn render(&mut self, suite: &str) {
        let mut e = Exposition::new(&ALL);
        let base = [("suite", suite), ("check", self.name.as_str())];
        if let Some(r) = &self.result {
            static_series(&mut e, suite, r);
        }
        e.sample(&CHECK_INTERVAL, &base, self.interval.as_secs_f64());
        counter_series(&mut e, &base, &self.failures);
        self.rendered = Arc::new(Rendered::from_bodies(e.into_bodies()));
    }
}

/// A check's series rendered once per run, so a scrape only concatenates (and computes the
/// time-dependent lifetime ratios): one exact-size text holding a fragment per family of
/// `ALL`, and where each fragment ends.
#[derive(Debug, Default)]
pub struct Rendered {
    text: String,
    ends: Vec<usize>,
}

impl Rendered {
    fn from_bodies(bodies: Vec<String>) -> Self {
        let mut text = String::with_capacity(bodies.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(bodies.len());
        for b in &bodies {
            text.push_str(b);
            ends.push(text.len());
        }
        Rendered { text, ends }
    }

    fn part(&self, family: usize) -> &str {
        let start = family
            .checked_sub(1)
            .and_then(|i| self.ends.get(i))
            .copied()
            .unwrap_or(0);
        let end = self.ends.get(family).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or("")
    }

    fn len(&self) -> usize {
        self.text.len()
    }
}

/// Everything `/metrics` shows, copied out of the exporter's state.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub suite: String,
    pub checks: Vec<CheckEntry>,
    pub reload_ok: bool,
    pub reload_success_unix: f64,
}

/// `/metrics`: every check's latest results, counters, schedule, and the exporter's own state.
pub fn render_serve(s: &Snapshot, now_unix: i64) -> String {
    let mut live = Exposition::new(&ALL);
    for r in s.checks.iter().filter_map(|c| c.result.as_ref()) {
        ratio_series(
            &mut live,
            &[("suite", &s.suite), ("check", &r.name)],
            r,
            now_unix,
        );
    }
    live.sample(&RELOAD_OK, &[], flag(s.reload_ok));
    live.sample(&RELOAD_TIME, &[], s.reload_success_unix);
    build_info(&mut live);
    let live = live.into_bodies();
    let cached: usize = s.checks.iter().map(|c| c.rendered.len()).sum();
    let mut out =
        String::with_capacity(cached + live.iter().map(String::len).sum::<usize>() + 8192);
    for (i, def) in ALL.iter().enumerate() {
        let parts = s.checks.iter().map(|c| c.rendered.part(i));
        write_family(&mut out, def, parts.chain(live.get(i).map(String::as_str)));
    }
    out
}

/// `/probe`: one fresh result, nothing else (no counters, no exporter state).
pub fn render_probe(suite: &str, r: &CheckResult, now_unix: i64) -> String {
    let mut e = Exposition::new(&ALL);
    check_series(&mut e, suite, r, now_unix);
    e.finish()
}

/// `gate --format prom`: a report for node_exporter's textfile collector. Time-based values
/// use the report's evaluation instant (`--at`). No counters: a one-shot run has none.
pub fn render_report(report: &Report) -> String {
    let mut e = Exposition::new(&ALL);
    for r in &report.checks {
        check_series(&mut e, &report.suite, r, report.evaluated_unix);
    }
    build_info(&mut e);
    e.finish()
}

fn build_info(e: &mut Exposition) {
    e.sample(&BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
}

fn flag(b: bool) -> f64 {
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

fn counter_series(e: &mut Exposition, base: &[(&str, &str); 2], failures: &[u64]) {
    for (class, n) in FailureClass::ALL.iter().zip(failures) {
        let labels = [base[0], base[1], ("class", class.as_str())];
        e.sample(&CONNECT_FAILURES, &labels, *n as f64);
    }
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
fn static_series(e: &mut Exposition, suite: &str, r: &CheckResult) {
    let base = [("suite", suite), ("check", r.name.as_str())];
    status_series(e, &base, r);
    assertion_series(e, &base, r);
    failure_series(e, &base, r);
    cert_series(e, &base, r);
    fact_series(e, &base, r);
}

fn with<'a>(
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
    for s in Status::ALL {
        let labels = with(base, &[("status", s.as_str())]);
        e.sample(&CHECK_STATUS, &labels, flag(s == r.status));
    }
    e.sample(&CHECK_DURATION, base, r.duration_seconds.as_secs_f64());
    e.sample(&CHECK_LAST_RUN, base, r.finished_unix);
}

/// One series per assertion name; repeated names (one per file, say) must all succeed.
fn assertion_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    let mut by_name: BTreeMap<&str, bool> = BTreeMap::new();
    for a in &r.assertions {
        let ok = by_name.entry(a.name.as_str()).or_insert(true);
        *ok &= succeeded(a.status);
    }
    for (name, ok) in by_name {
        e.sample(
            &ASSERTION_SUCCESS,
            &with(base, &[("assertion", name)]),
            flag(ok),
        );
    }
}

fn failure_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    if let Some(class) = r.error.as_ref().and_then(|err| err.failure_class()) {
        e.sample(
            &CONNECT_FAILURE,
            &with(base, &[("class", class.as_str())]),
            1.0,
        );
    }
    if let Some(reason) = r.chain_reason() {
        e.sample(&CHAIN_FAILURE, &with(base, &[("reason", reason)]), 1.0);
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
    }
}

/// The lowest share of lifetime left per position, at `now_unix`.
fn ratio_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult, now_unix: i64) {
    let mut ratios: BTreeMap<&str, f64> = BTreeMap::new();
    for c in &r.certs {
        let ratio = ratios.entry(c.position.as_str()).or_insert(f64::INFINITY);
        *ratio = ratio.min(c.lifetime_remaining_ratio(now_unix));
    }
    for (position, ratio) in ratios {
        e.sample(&CERT_RATIO, &with(base, &[("position", position)]), ratio);
    }
}

fn fact_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    if let Some(v) = r.facts.tls.as_ref().and_then(|t| t.version.as_deref()) {
        e.sample(&TLS_VERSION, &with(base, &[("version", v)]), 1.0);
    }
    file_series(e, base, r);
    vault_series(e, base, r);
}

fn file_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    let mut seen: Vec<&str> = Vec::new();
    for f in &r.facts.files {
        let Some(mode) = f.mode else { continue };
        if seen.contains(&f.path.as_str()) {
            continue;
        }
        seen.push(&f.path);
        e.sample(
            &FILE_MODE,
            &with(base, &[("path", &f.path)]),
            octal_digits(mode),
        );
    }
}

/// 0o640 → 640: the mode reads the same on a dashboard as in `ls -l` / `chmod`.
pub fn octal_digits(mode: u32) -> f64 {
    format!("{:o}", mode & 0o7777).parse::<f64>().unwrap_or(0.0)
}

fn vault_series(e: &mut Exposition, base: &[(&str, &str); 2], r: &CheckResult) {
    let Some(v) = &r.facts.vault else { return };
    if let Some(sealed) = v.sealed {
        e.sample(&VAULT_SEALED, base, flag(sealed));
    }
    if let Some(init) = v.initialized {
        e.sample(&VAULT_INITIALIZED, base, flag(init));
    }
    if let Some(version) = &v.version {
        e.sample(&VAULT_VERSION, &with(base, &[("version", version)]), 1.0);
    }
    if let Some(version) = &v.agent_version {
        e.sample(
            &VAULT_AGENT_VERSION,
            &with(base, &[("version", version)]),
            1.0,
        );
    }
    if let Some(skew) = v.minor_skew {
        e.sample(&VERSION_SKEW, base, skew as f64);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::*;

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
        assert!(l.contains(&"rotcheck_check_status{suite=\"prod\",check=\"a\",status=\"pass\"} 0"));
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
        assert!(l.contains(
            &"rotcheck_assertion_success{suite=\"prod\",check=\"a\",assertion=\"names\"} 1"
        ));
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
    fn connect_failure_only_for_connection_classes() {
        let mut r = result("a", Status::Error);
        r.error = Some(ProbeError::connect(FailureClass::Reset, "reset by peer"));
        assert!(render_probe("p", &r, 0)
            .contains("rotcheck_connect_failure{suite=\"p\",check=\"a\",class=\"reset\"} 1\n"));
        r.error = Some(ProbeError::local("not_found", "no file"));
        assert!(!render_probe("p", &r, 0).contains("rotcheck_connect_failure{"));
    }

    #[test]
    fn facts_series() {
        let mut r = result("v", Status::Pass);
        r.facts.tls = Some(TlsFacts {
            version: Some("1.3".into()),
            ..Default::default()
        });
        r.facts.files = vec![FileFacts {
            path: "/etc/tls/server.key".into(),
            mode: Some(0o600),
            owner: None,
            group: None,
        }];
        r.facts.vault = Some(VaultFacts {
            sealed: Some(true),
            initialized: Some(true),
            version: Some("1.20.4".into()),
            minor_skew: Some(1),
            agent_version: Some("1.21.1".into()),
            ..Default::default()
        });
        let text = render_probe("p", &r, 0);
        for want in [
            "rotcheck_tls_version_info{suite=\"p\",check=\"v\",version=\"1.3\"} 1",
            "rotcheck_file_mode{suite=\"p\",check=\"v\",path=\"/etc/tls/server.key\"} 600",
            "rotcheck_vault_sealed{suite=\"p\",check=\"v\"} 1",
            "rotcheck_vault_initialized{suite=\"p\",check=\"v\"} 1",
            "rotcheck_vault_version_info{suite=\"p\",check=\"v\",version=\"1.20.4\"} 1",
            "rotcheck_vault_agent_version_info{suite=\"p\",check=\"v\",version=\"1.21.1\"} 1",
            "rotcheck_version_skew_minor{suite=\"p\",check=\"v\"} 1",
        ] {
            assert!(text.contains(&format!("{want}\n")), "missing {want}");
        }
    }

    #[test]
    fn serve_adds_schedule_counters_and_exporter_state() {
        let mut failures = [0; FailureClass::ALL.len()];
        failures[1] = 4;
        let s = Snapshot {
            suite: "prod".into(),
            checks: vec![CheckEntry::new(
                "prod",
                "a",
                Duration::from_secs(60),
                None,
                failures,
            )],
            reload_ok: false,
            reload_success_unix: 1_700_000_000.0,
        };
        let text = render_serve(&s, 0);
        assert!(text.contains("# TYPE rotcheck_connect_failures_total counter\n"));
        assert!(text.contains(
            "rotcheck_connect_failures_total{suite=\"prod\",check=\"a\",class=\"reset\"} 4\n"
        ));
        assert_eq!(text.matches("rotcheck_connect_failures_total{").count(), 9);
        assert!(text.contains("rotcheck_check_interval_seconds{suite=\"prod\",check=\"a\"} 60\n"));
        assert!(text.contains("rotcheck_config_last_reload_successful 0\n"));
        assert!(text.contains("rotcheck_config_last_reload_success_timestamp_seconds 1700000000\n"));
        assert!(text.contains("rotcheck_build_info{version=\""));
        assert!(!text.contains("rotcheck_check_success{"));
    }

    #[test]
    fn serve_groups_cached_and_live_series_by_family() {
        let entry = |name: &str| {
            let mut r = result(name, Status::Pass);
            r.certs = vec![cert("leaf", "l", "01", 0, 100)];
            CheckEntry::new(
                "prod",
                name,
                Duration::from_secs(60),
                Some(Arc::new(r)),
                [0; 9],
            )
        };
        let s = Snapshot {
            suite: "prod".into(),
            checks: vec![entry("a"), entry("b")],
            reload_ok: true,
            reload_success_unix: 0.0,
        };
        let early = render_serve(&s, 25);
        let late = render_serve(&s, 75);
        for text in [&early, &late] {
            let mut families: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .collect();
            let n = families.len();
            families.dedup();
            assert_eq!(families.len(), n, "a family is split:\n{text}");
            let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            let names: Vec<&str> = samples
                .iter()
                .map(|l| l.split(['{', ' ']).next().unwrap())
                .collect();
            let mut grouped = names.clone();
            grouped.dedup();
            assert_eq!(grouped.len(), n, "samples of a family are not together");
        }
        assert!(early.contains("check=\"b\",position=\"leaf\"} 0.75\n"));
        assert!(late.contains("check=\"b\",position=\"leaf\"} 0.25\n"));
        let strip = |t: &str| {
            t.lines()
                .filter(|l| !l.contains("ratio"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(&early), strip(&late));
    }

    #[test]
    fn every_family_has_help_and_base_units() {
        for d in ALL {
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

    #[test]
    fn octal_modes_read_like_chmod() {
        assert_eq!(octal_digits(0o640), 640.0);
        assert_eq!(octal_digits(0o100644), 644.0);
        assert_eq!(octal_digits(0o4755), 4755.0);
    }
}

#[cfg(test)]
mod perf {
    use super::tests::{cert, result};
    use super::*;
    use crate::model::*;

    /// `cargo test --release --lib render_1000 -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn render_1000() {
        let checks: Vec<CheckEntry> = (0..1000)
            .map(|i| {
                let mut r = result(&format!("tls-{i:04}"), Status::Pass);
                r.certs = vec![
                    cert(
                        "leaf",
                        "vault.lab.rotcheck.test",
                        "3d01fb1d9baab5b85342d0608002827aeb1a7f2e",
                        1795384883,
                        1797976943,
                    ),
                    cert(
                        "intermediate",
                        "rotcheck lab pki-prod intermediate CA",
                        "743780bf9cd4e4f03f8d8b9640e63e6930e864a0",
                        1795384883,
                        1953064943,
                    ),
                ];
                r.assertions = vec![
                    Assertion::pass("handshake", ""),
                    Assertion::pass("chain", ""),
                    Assertion::pass("expiry", ""),
                ];
                r.facts.tls = Some(TlsFacts {
                    version: Some("1.3".into()),
                    ..Default::default()
                });
                CheckEntry::new(
                    "bench",
                    &r.name.clone(),
                    Duration::from_secs(30),
                    Some(Arc::new(r)),
                    [0; 9],
                )
            })
            .collect();
        let s = Snapshot {
            suite: "bench".into(),
            checks,
            reload_ok: true,
            reload_success_unix: 1.0,
        };
        let t = std::time::Instant::now();
        let mut len = 0;
        for _ in 0..20 {
            len = render_serve(&s, 1795384900).len();
        }
        println!(
            "render: {:.2} ms for {len} bytes",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
        let body = render_serve(&s, 1795384900);
        let t = std::time::Instant::now();
        for _ in 0..20 {
            len = crate::redact::redact(&body).len();
        }
        println!(
            "redact: {:.2} ms for {len} bytes",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
    }
}
