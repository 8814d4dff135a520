//! Assertions over probe results, shared by every kind: chain, names, expiry, issuer, revocation.

pub mod chain;
pub mod expiry;
pub mod issuer;
pub mod names;
pub mod revocation;
pub mod rotated;
