//! Chain validation (placeholder until the TLS work lands).
