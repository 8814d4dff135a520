//! One module per fuzz target; each `run` must never panic, hang or abort on any input.

pub mod certs;
pub mod jwks;
pub mod ocsp_response;
pub mod probe_query;
pub mod state_file;
pub mod suite;
pub mod vault_body;
pub mod webconfig;

/// A target's name and entry point, for the replay tests and the seed generator.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by the name of its binary.
pub const ALL: &[Target] = &[
    ("suite", suite::run),
    ("certs", certs::run),
    ("webconfig", webconfig::run),
    ("probe_query", probe_query::run),
    ("vault_body", vault_body::run),
    ("state_file", state_file::run),
    ("ocsp_response", ocsp_response::run),
    ("jwks", jwks::run),
];
