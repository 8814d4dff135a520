//! `serve --compat blackbox`: `/probe` also answers with the series blackbox_exporter's tcp
//! and http probers write for a TLS target, with their meaning, so dashboards and alert rules
//! written for blackbox keep working when a rotcheck check replaces a blackbox module:
//! `probe_success`, `probe_duration_seconds`, `probe_ssl_earliest_cert_expiry`,
//! `probe_ssl_last_chain_expiry_timestamp_seconds` and `probe_tls_version_info`.

use crate::metrics::flag;
use crate::metrics::text::{family, Exposition};
use crate::model::{CheckResult, Status};

/// Which extra series `/probe` writes (`--compat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Compat {
    /// rotcheck's own series only.
    #[default]
    None,
    /// Also blackbox_exporter's probe series.
    Blackbox,
}

family!(PROBE_SUCCESS, "probe_success", Gauge,
    "Displays whether or not the probe was a success (blackbox_exporter compatible: 1 when the rotcheck check passed or only warned).");
family!(
    PROBE_DURATION,
    "probe_duration_seconds",
    Gauge,
    "Returns how long the probe took to complete in seconds (blackbox_exporter compatible)."
);
family!(PROBE_SSL_EARLIEST, "probe_ssl_earliest_cert_expiry", Gauge,
    "Returns earliest SSL cert expiry in unixtime: the soonest not-after of the certificates the server presented (blackbox_exporter compatible).");
family!(PROBE_SSL_LAST_CHAIN, "probe_ssl_last_chain_expiry_timestamp_seconds", Gauge,
    "Returns last SSL chain expiry in timestamp: the soonest not-after of the presented chain, when it validated (blackbox_exporter compatible).");
family!(PROBE_TLS_VERSION, "probe_tls_version_info", Gauge,
    "Returns the TLS version used (blackbox_exporter compatible: version=\"TLS 1.2\" or \"TLS 1.3\").");

/// What Go's zero `time.Time` is in Unix seconds: blackbox's last chain expiry when it did
/// not verify the chain (`insecure_skip_verify`).
const GO_ZERO_TIME: f64 = -62_135_596_800.0;

/// Writes the blackbox series of one `/probe` run. As with blackbox, the certificate and TLS
/// series appear only after a handshake whose chain was accepted: a check whose `chain`
/// assertion failed is a refused handshake to blackbox (its Go client stops there), and a
/// check without `expect.chain` is blackbox with `insecure_skip_verify` (no verified chain,
/// so its last chain expiry is Go's zero time).
pub fn blackbox_series(e: &mut Exposition, r: &CheckResult) {
    e.sample(&PROBE_SUCCESS, &[], flag(r.status <= Status::Warn));
    e.sample(&PROBE_DURATION, &[], r.duration_seconds.as_secs_f64());
    let Some(version) = r.facts.tls.as_ref().and_then(|t| t.version.as_deref()) else {
        return;
    };
    let chain = r.assertions.iter().find(|a| a.name == "chain");
    if chain.is_some_and(|a| a.status > Status::Warn) {
        return;
    }
    if let Some(t) = r.certs.iter().map(|c| c.not_after_unix).min() {
        e.sample(&PROBE_SSL_EARLIEST, &[], t as f64);
        let last = if chain.is_some() {
            t as f64
        } else {
            GO_ZERO_TIME
        };
        e.sample(&PROBE_SSL_LAST_CHAIN, &[], last);
    }
    let label = format!("TLS {version}");
    e.sample(&PROBE_TLS_VERSION, &[("version", &label)], 1.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{cert, result};
    use crate::model::*;

    fn render(r: &CheckResult) -> String {
        let mut e = Exposition::new(&[]);
        blackbox_series(&mut e, r);
        e.finish()
    }

    #[test]
    fn a_validated_handshake_writes_every_series() {
        let mut r = result("a", Status::Pass);
        r.facts.tls = Some(TlsFacts {
            version: Some("1.3".into()),
            ..Default::default()
        });
        r.certs = vec![
            cert("leaf", "l", "01", 0, 500),
            cert("intermediate", "i", "02", 0, 900),
        ];
        r.assertions = vec![Assertion::pass("chain", "ok")];
        let text = render(&r);
        for want in [
            "probe_success 1\n",
            "probe_duration_seconds 0.25\n",
            "probe_ssl_earliest_cert_expiry 500\n",
            "probe_ssl_last_chain_expiry_timestamp_seconds 500\n",
            "probe_tls_version_info{version=\"TLS 1.3\"} 1\n",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
    }

    #[test]
    fn a_refused_chain_is_a_refused_handshake_and_no_chain_check_skips_verify() {
        let mut r = result("a", Status::Fail);
        r.facts.tls = Some(TlsFacts {
            version: Some("1.2".into()),
            ..Default::default()
        });
        r.certs = vec![cert("leaf", "l", "01", 0, 500)];
        r.assertions = vec![Assertion::fail("chain", "unknown_issuer", "no")];
        let text = render(&r);
        assert!(text.contains("probe_success 0\n"));
        assert!(
            !text.contains("probe_ssl") && !text.contains("probe_tls"),
            "{text}"
        );
        r.assertions.clear();
        let text = render(&r);
        assert!(text.contains("probe_ssl_earliest_cert_expiry 500\n"));
        assert!(text.contains("probe_ssl_last_chain_expiry_timestamp_seconds -62135596800\n"));
        r.facts.tls = None;
        let text = render(&r);
        assert!(
            !text.contains("probe_ssl") && !text.contains("probe_tls"),
            "{text}"
        );
    }
}
