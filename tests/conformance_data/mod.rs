//! Reading the shared conformance data (x509-limbo, badssl) for the tests that compare
//! verdicts with it: where it is, its PEM text, its validation times.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The path in `var`, or None (and "skipped") when it is not set.
pub fn env_path(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            println!("skipped: {var} is not set");
            None
        }
    }
}

/// Every certificate of a PEM text.
pub fn pems(text: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(text.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

/// Every certificate of a PEM file (none when it cannot be read).
pub fn pem_file(p: &Path) -> Vec<CertificateDer<'static>> {
    pems(&std::fs::read_to_string(p).unwrap_or_default())
}

/// A case's `validation_time` (RFC 3339), now when it has none.
pub fn validation_time(v: &Value) -> SystemTime {
    match v.as_str() {
        Some(s) => humantime::parse_rfc3339_weak(&s.replace("+00:00", "Z"))
            .unwrap_or_else(|e| panic!("bad validation_time {s}: {e}")),
        None => SystemTime::now(),
    }
}
