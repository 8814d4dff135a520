//! Issuer expectations: `issuer_cn` and `issuer_dn` of the leaf.

use crate::model::{Assertion, CertFacts};

/// Compares the leaf's issuer CN with the expected one (exact, case-sensitive).
pub fn assert_issuer_cn(leaf: &CertFacts, expected: &str) -> Assertion {
    if leaf.issuer_cn == expected {
        Assertion::pass("issuer_cn", format!("issued by {expected:?}"))
    } else {
        Assertion::fail(
            "issuer_cn",
            "issuer_mismatch",
            format!("expected issuer CN {expected:?}, found {:?} ({}); was it issued from the right PKI mount?", leaf.issuer_cn, leaf.issuer),
        )
    }
}

/// Compares the leaf's issuer DN with the expected one, ignoring spacing after commas.
pub fn assert_issuer_dn(leaf: &CertFacts, expected: &str) -> Assertion {
    let norm = |s: &str| s.split(',').map(str::trim).collect::<Vec<_>>().join(",");
    if norm(&leaf.issuer) == norm(expected) {
        Assertion::pass("issuer_dn", format!("issued by {expected:?}"))
    } else {
        Assertion::fail(
            "issuer_dn",
            "issuer_mismatch",
            format!(
                "expected issuer {expected:?}, found {:?}; was it issued from the right CA?",
                leaf.issuer
            ),
        )
    }
}
