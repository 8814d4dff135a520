//! Name matching (placeholder until the TLS work lands).
