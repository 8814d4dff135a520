//! Command probe (placeholder until the command work lands).
use crate::model::Outcome;
use crate::probe::Ctx;
use crate::suite::{CommandSpec, Expect};

/// Runs the command and evaluates the expectations.
pub async fn probe(_spec: &CommandSpec, _expect: &Expect, _ctx: &Ctx) -> Outcome {
    Outcome::default()
}
