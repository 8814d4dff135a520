//! The OCSP sources of `not_revoked`: a response stapled in the handshake, and the
//! responders named in the certificate's authority information access. An answer is judged
//! like a CRL: signature first (in [`crate::ocsp::read`]), then the status (revoked is final
//! even on a stale answer), then freshness (thisUpdate not ahead of the clock by more than
//! [`crate::ocsp::SKEW`], nextUpdate not passed).

use super::{Family, Verdict};
use crate::certs::rfc3339;
use crate::ocsp::{self, Answer, CertState, OcspError, Pair};
use tokio::time::Instant;

/// The verdict of the stapled response `resp` (no fetch).
pub(super) fn stapled(resp: &[u8], pair: &Pair<'_, '_>, now: i64) -> Verdict {
    match ocsp::read(resp, pair, None, now, "the stapled OCSP response") {
        Ok(a) => judge(&a, pair, now, true),
        Err(e) => unusable(e),
    }
}

/// The verdict of the first responder that answers; `Unchecked` when the certificate names
/// none.
pub(super) async fn responders(pair: &Pair<'_, '_>, now: i64, deadline: Instant) -> Verdict {
    let urls = ocsp::responders(pair.cert);
    if urls.is_empty() {
        return Verdict::Unchecked(
            "it names no OCSP responder (authority information access)".into(),
        );
    }
    let mut problems = Vec::new();
    for u in &urls {
        match ocsp::ask(u, pair, now, deadline).await {
            Ok(a) => return judge(&a, pair, now, false),
            Err(e) if e.class() == "ocsp_bad_signature" => return unusable(e),
            Err(e) => problems.push(e.to_string()),
        }
    }
    Verdict::Unavailable(Family::Ocsp, problems.join("; "))
}

fn unusable(e: OcspError) -> Verdict {
    match e.class() {
        "ocsp_bad_signature" => Verdict::BadSignature(Family::Ocsp, e.to_string()),
        _ => Verdict::Unavailable(Family::Ocsp, e.to_string()),
    }
}

/// Status, then freshness, of a verified answer.
fn judge(a: &Answer, pair: &Pair<'_, '_>, now: i64, stapled: bool) -> Verdict {
    let serial = pair.serial();
    let from = format!("{}, signed by {}", a.origin, a.signer);
    match &a.state {
        CertState::Revoked(r) => Verdict::Revoked(format!(
            "serial {serial} is revoked per OCSP ({from}): {}; install a newly issued certificate",
            r.describe()
        )),
        CertState::Unknown => Verdict::Unknown(format!(
            "the OCSP answer ({from}) does not know serial {serial}; was the certificate issued by this CA, and does its responder serve this issuer?"
        )),
        CertState::Good => fresh(a, &serial, &from, now, stapled),
    }
}

fn fresh(a: &Answer, serial: &str, from: &str, now: i64, stapled: bool) -> Verdict {
    let fix = match stapled {
        true => "is the server refreshing its stapled response (nginx ssl_stapling_file, haproxy ocsp-update)?",
        false => "is the responder signing fresh answers?",
    };
    if a.this_update > now + ocsp::SKEW.as_secs() as i64 {
        return Verdict::Stale(Family::Ocsp, format!(
            "the OCSP answer ({from}) is not yet valid (this update {} is ahead of the clock); check the clocks of this host and the responder",
            rfc3339(a.this_update)
        ));
    }
    match a.next_update {
        Some(t) if t < now => Verdict::Stale(Family::Ocsp, format!(
            "the OCSP answer ({from}) is stale (next update {} has passed), so a recent revocation may be missing; {fix}",
            rfc3339(t)
        )),
        next => Verdict::Good(format!(
            "serial {serial} is good per OCSP ({from}; {})",
            crate::crl::describe_next_update(next)
        )),
    }
}
