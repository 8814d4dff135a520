//! rotcheck's fuzz targets: one `run(&[u8])` per parser, shared by the cargo-afl binaries
//! (`src/bin/`) and the corpus replay tests, plus the seed generator's test PKI.

pub mod jwks_seeds;
pub mod ocsp_seeds;
pub mod pki;
pub mod scratch;
pub mod seeds;
pub mod targets;

/// The text of an input, or None when it is not UTF-8 (the parsers under test take `&str`).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Splits an input at its first NUL byte: (first part, rest). No NUL: (all, empty).
pub fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
