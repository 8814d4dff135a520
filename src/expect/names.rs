//! Name checks: is a leaf certificate valid for a DNS name or an IP address?
//!
//! Web PKI rules, as rustls-webpki implements them: DNS names match DNS SANs only (no
//! fallback to the subject CN), a wildcard covers exactly one left-most label, IP addresses
//! match IP SANs only.

use crate::model::{Assertion, Status};
use rustls_pki_types::{CertificateDer, ServerName};
use webpki::EndEntityCert;
use x509_parser::prelude::*;

/// Why a name check did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The expected name itself is not a DNS name or an IP address.
    #[error(
        "{name:?} is not a valid DNS name or IP address; write e.g. vault.example.com or 10.0.0.5"
    )]
    InvalidName { name: String },
    /// The leaf does not parse, so no name can be checked.
    #[error("the leaf certificate does not parse ({detail})")]
    BadLeaf { detail: String },
    /// The leaf is not valid for the name.
    #[error("leaf is not valid for {name:?}; it names {}; reissue it with {name:?} in its SANs (the CN is not used)", list(presented))]
    Mismatch {
        name: String,
        /// The leaf's SANs (`DNS:x`, `IP:x`).
        presented: Vec<String>,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no DNS or IP SANs".into()
    } else {
        names.join(", ")
    }
}

/// Parses a DNS name or an IP address (`[::1]` brackets allowed) into a rustls server name.
pub fn parse_name(name: &str) -> Result<ServerName<'static>, NameError> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_string()).map_err(|_| NameError::InvalidName { name: name.into() })
}

/// Checks one name against a parsed leaf.
pub fn check(leaf: &EndEntityCert<'_>, leaf_der: &[u8], name: &str) -> Result<(), NameError> {
    let server_name = parse_name(name)?;
    leaf.verify_is_valid_for_subject_name(&server_name)
        .map_err(|_| NameError::Mismatch {
            name: name.into(),
            presented: presented_names(leaf_der),
        })
}

/// Checks one name against a leaf certificate in DER.
pub fn valid_for(leaf: &CertificateDer<'_>, name: &str) -> Result<(), NameError> {
    let parsed = EndEntityCert::try_from(leaf).map_err(|e| NameError::BadLeaf {
        detail: format!("{e:?}"),
    })?;
    check(&parsed, leaf.as_ref(), name)
}

/// The leaf's DNS and IP SANs, for messages.
pub fn presented_names(der: &[u8]) -> Vec<String> {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => crate::certs::sans(&cert)
            .into_iter()
            .filter(|s| s.starts_with("DNS:") || s.starts_with("IP:"))
            .collect(),
        Err(_) => vec![],
    }
}

/// The `names` expectation: every listed name must be valid for the leaf.
pub fn assert_names(leaf: &CertificateDer<'_>, names: &[String]) -> Assertion {
    let failures: Vec<NameError> = names
        .iter()
        .filter_map(|n| valid_for(leaf, n).err())
        .collect();
    if let Some(bad) = failures
        .iter()
        .find(|e| matches!(e, NameError::InvalidName { .. }))
    {
        return Assertion::not_ok("names", Status::Error, "config", bad.to_string());
    }
    match failures.as_slice() {
        [] => Assertion::pass("names", format!("leaf is valid for {}", names.join(", "))),
        [one] => Assertion::fail("names", reason_of(one), one.to_string()),
        many => Assertion::fail(
            "names",
            reason_of(&many[0]),
            format!(
                "leaf is not valid for {}; it names {}; reissue it with every expected name in its SANs",
                many.iter().map(failed_name).collect::<Vec<_>>().join(", "),
                list(&presented_names(leaf.as_ref()))
            ),
        ),
    }
}

/// The implicit `server_name` assertion (used when no `chain` expectation covers the name).
pub fn assert_server_name(leaf: &CertificateDer<'_>, name: &str) -> Assertion {
    match valid_for(leaf, name) {
        Ok(()) => Assertion::pass("server_name", format!("leaf is valid for {name:?}")),
        Err(e) => Assertion::fail("server_name", reason_of(&e), e.to_string()),
    }
}

fn reason_of(e: &NameError) -> &'static str {
    match e {
        NameError::InvalidName { .. } => "config",
        NameError::BadLeaf { .. } => "bad_der",
        NameError::Mismatch { .. } => "name_mismatch",
    }
}

fn failed_name(e: &NameError) -> String {
    match e {
        NameError::InvalidName { name } | NameError::Mismatch { name, .. } => format!("{name:?}"),
        NameError::BadLeaf { .. } => "(unparseable leaf)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_bracketed_ips() {
        assert!(matches!(
            parse_name("a.example.com"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            parse_name("10.0.0.5"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(parse_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert_eq!(
            parse_name("bad name"),
            Err(NameError::InvalidName {
                name: "bad name".into()
            })
        );
    }

    #[test]
    fn garbage_leaf_is_an_error_not_a_panic() {
        let der = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(matches!(
            valid_for(&der, "a.example.com"),
            Err(NameError::BadLeaf { .. })
        ));
    }
}
