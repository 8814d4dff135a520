//! Vault HTTP client shared by probes and rotate (placeholder until the Vault work lands).
