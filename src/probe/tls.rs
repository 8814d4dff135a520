//! TLS probe (placeholder until the TLS work lands).
use crate::model::Outcome;
use crate::probe::Ctx;
use crate::suite::{Expect, TlsSpec};

/// Handshakes with the listener and evaluates the expectations.
pub async fn probe(_spec: &TlsSpec, _expect: &Expect, _ctx: &Ctx) -> Outcome {
    Outcome::default()
}
