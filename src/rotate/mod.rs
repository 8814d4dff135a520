//! Rotation steps, atomic file writes and the plan runner (placeholder until the rotate work lands).
