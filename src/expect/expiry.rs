//! Expiry: remaining lifetime against warn/crit thresholds (a duration or a lifetime share).

use crate::model::{Assertion, CertFacts, Status};
use crate::suite::{ExpiryThresholds, Threshold};

/// How one certificate stands against the thresholds at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    Ok,
    Warn,
    Crit,
    NotYetValid,
    Expired,
}

/// Judges one certificate.
pub fn standing(cert: &CertFacts, t: &ExpiryThresholds, now: i64) -> Standing {
    if now < cert.not_before_unix {
        return Standing::NotYetValid;
    }
    if now > cert.not_after_unix {
        return Standing::Expired;
    }
    if below(cert, &t.crit, now) {
        Standing::Crit
    } else if below(cert, &t.warn, now) {
        Standing::Warn
    } else {
        Standing::Ok
    }
}

fn below(cert: &CertFacts, t: &Threshold, now: i64) -> bool {
    match t {
        Threshold::Remaining(d) => cert.not_after_unix - now < d.as_secs() as i64,
        Threshold::Ratio(r) => cert.lifetime_remaining_ratio(now) < *r,
    }
}

/// One `expiry` assertion over all certificates: the worst standing decides.
pub fn assert_expiry(certs: &[CertFacts], t: &ExpiryThresholds, now: i64) -> Assertion {
    let worst = certs
        .iter()
        .map(|c| (standing(c, t, now), c))
        .max_by_key(|(s, c)| (*s, -c.not_after_unix));
    let Some((s, cert)) = worst else {
        return Assertion::fail(
            "expiry",
            "no_certificate",
            "expected a certificate to judge expiry; found none",
        );
    };
    let left = describe_left(cert, now);
    let who = format!("{} {:?}", cert.position, cert.subject_cn);
    match s {
        Standing::Ok => Assertion::pass("expiry", format!("soonest: {who} {left}")),
        Standing::Warn => Assertion::not_ok(
            "expiry",
            Status::Warn,
            "expires_soon",
            format!(
                "{who} {left}, below the warn threshold ({}); renew it",
                t.warn
            ),
        ),
        Standing::Crit => Assertion::fail(
            "expiry",
            "expires_soon",
            format!(
                "{who} {left}, below the critical threshold ({}); renew it now",
                t.crit
            ),
        ),
        Standing::Expired => Assertion::fail(
            "expiry",
            "expired",
            format!(
                "{who} expired at {}; install a renewed certificate",
                cert.not_after
            ),
        ),
        Standing::NotYetValid => Assertion::fail(
            "expiry",
            "not_yet_valid",
            format!(
                "{who} is not valid before {}; check the issuer's clock or wait",
                cert.not_before
            ),
        ),
    }
}

fn describe_left(cert: &CertFacts, now: i64) -> String {
    let secs = (cert.not_after_unix - now).max(0) as u64;
    format!(
        "expires in {} ({:.0}% of lifetime left, not after {})",
        crate::human::duration(std::time::Duration::from_secs(secs)),
        cert.lifetime_remaining_ratio(now) * 100.0,
        cert.not_after
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::parse_threshold;

    fn cert(nb: i64, na: i64) -> CertFacts {
        let mut c = crate::certs::facts(b"", "leaf");
        c.not_before_unix = nb;
        c.not_after_unix = na;
        c.subject_cn = "x".into();
        c
    }

    fn th(w: &str, c: &str) -> ExpiryThresholds {
        ExpiryThresholds {
            warn: parse_threshold(w).unwrap(),
            crit: parse_threshold(c).unwrap(),
        }
    }

    #[test]
    fn ratio_thresholds_follow_lifetime() {
        let day = 86_400;
        let c = cert(0, 30 * day); // a 720 h certificate
        let t = th("33%", "10%");
        assert_eq!(standing(&c, &t, 10 * day), Standing::Ok);
        assert_eq!(standing(&c, &t, 21 * day), Standing::Warn);
        assert_eq!(standing(&c, &t, 28 * day), Standing::Crit);
        assert_eq!(standing(&c, &t, 31 * day), Standing::Expired);
        assert_eq!(standing(&c, &t, -1), Standing::NotYetValid);
    }

    #[test]
    fn duration_thresholds() {
        let day = 86_400;
        let c = cert(0, 365 * day);
        let t = th("21d", "7d");
        assert_eq!(standing(&c, &t, 300 * day), Standing::Ok);
        assert_eq!(standing(&c, &t, 350 * day), Standing::Warn);
        assert_eq!(standing(&c, &t, 360 * day), Standing::Crit);
        let a = assert_expiry(&[c], &t, 360 * day);
        assert_eq!(
            (a.status, a.reason.as_deref()),
            (Status::Fail, Some("expires_soon"))
        );
    }
}
