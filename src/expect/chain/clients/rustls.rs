//! The rustls profile: what `rustls::client::WebPkiServerVerifier` (and, for client
//! certificates, `WebPkiClientVerifier`) decide with a root store made of the CA file:
//! rustls-webpki path building with every store certificate as a trust anchor, the
//! presented certificates as the intermediates pool, then the name (SANs only).

use super::{Purpose, Refusal};
use crate::expect::names;
use crate::model::ChainReason;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

pub(super) fn check(
    presented: &[CertificateDer<'_>],
    store: &[CertificateDer<'_>],
    name: Option<&str>,
    purpose: Purpose,
    now: UnixTime,
) -> Result<String, Refusal> {
    let Some(leaf_der) = presented.first() else {
        return Err((ChainReason::Other, "no certificate was presented".into()));
    };
    let leaf = EndEntityCert::try_from(leaf_der).map_err(refusal)?;
    // RootCertStore::add refuses what it cannot read; the rest are anchors.
    let anchors: Vec<TrustAnchor<'_>> = store
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    let usage = match purpose {
        Purpose::ServerAuth => KeyUsage::server_auth(),
        Purpose::ClientAuth => KeyUsage::client_auth(),
    };
    leaf.verify_for_usage(
        crate::expect::chain::memo::algorithms(),
        &anchors,
        &presented[1..],
        now,
        usage,
        None,
        None,
    )
    .map_err(refusal)?;
    if let Some(name) = name {
        names::check(&leaf, leaf_der.as_ref(), name)
            .map_err(|e| (ChainReason::NameMismatch, e.to_string()))?;
    }
    Ok("rustls-webpki found a path to a certificate of the CA file".into())
}

fn refusal(e: webpki::Error) -> Refusal {
    #[allow(deprecated)]
    let reason = match &e {
        webpki::Error::CertExpired { .. } => ChainReason::Expired,
        webpki::Error::CertNotValidYet { .. } => ChainReason::NotYetValid,
        webpki::Error::UnknownIssuer => ChainReason::UnknownIssuer,
        webpki::Error::InvalidSignatureForPublicKey => ChainReason::BadSignature,
        webpki::Error::UnsupportedSignatureAlgorithm
        | webpki::Error::UnsupportedSignatureAlgorithmContext(_)
        | webpki::Error::UnsupportedSignatureAlgorithmForPublicKey
        | webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            ChainReason::WeakAlgorithm
        }
        webpki::Error::RequiredEkuNotFound
        | webpki::Error::RequiredEkuNotFoundContext(_)
        | webpki::Error::CaUsedAsEndEntity
        | webpki::Error::EndEntityUsedAsCa
        | webpki::Error::PathLenConstraintViolated
        | webpki::Error::NameConstraintViolation => ChainReason::InvalidUsage,
        _ => ChainReason::Other,
    };
    (reason, format!("rustls-webpki: {e:?}"))
}
