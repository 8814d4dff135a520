//! Assertions over probe results, shared by every kind: chain, names, expiry, issuer, modes.

pub mod chain;
pub mod expiry;
pub mod issuer;
pub mod names;
