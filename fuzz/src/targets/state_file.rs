//! The rotate plan's state file (JSON): it must parse or be refused, and what parses must
//! write back and read again unchanged.

use rotcheck::rotate::state::PlanState;

/// Fuzz entry point.
pub fn run(data: &[u8]) {
    let Ok(mut state) = serde_json::from_slice::<PlanState>(data) else {
        return;
    };
    let text = serde_json::to_string_pretty(&state).expect("a loaded state serializes");
    let again: PlanState = serde_json::from_str(&text).expect("a written state loads again");
    assert_eq!(again, state, "the state changed on a write and read");
    let names: Vec<String> = state.steps.iter().map(|s| s.name.clone()).collect();
    for n in &names {
        assert!(state.step(n).is_some());
        let _ = state.step_mut(n).status.as_str();
    }
    let _ = state.status.as_str();
}
