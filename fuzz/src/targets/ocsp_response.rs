//! OCSP responses, stapled or fetched: `ocsp::read` (DER, status, signature by the issuer or a
//! delegated responder, nonce, the entry for the certificate). The input frames the issuer
//! and the certificate asked about ahead of the response, so a seed signed by its own issuer
//! reaches past the signature check. Anything read must answer for the certificate asked
//! about, and every refusal must map to one of the documented reason tokens.

use rotcheck::ocsp::{read, CertState, Pair};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The nonce every fuzzed request "was sent with".
pub const NONCE: &[u8] = b"rotcheck-fuzz-nonce-16";

/// The time the answer is judged at (2027-01-15).
pub const NOW: i64 = 1_800_000_000;

/// Frames an input: issuer DER and certificate DER, each after a two-byte big-endian length,
/// then the response.
pub fn frame(issuer: &[u8], cert: &[u8], response: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [issuer, cert] {
        let len = u16::try_from(part.len()).expect("a certificate under 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(response);
    out
}

fn unframe(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (issuer, rest) = part(data)?;
    let (cert, response) = part(rest)?;
    Some((issuer, cert, response))
}

fn part(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
    let rest = &data[2..];
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Fuzz entry point.
pub fn run(data: &[u8]) {
    let Some((issuer, cert, response)) = unframe(data) else {
        return;
    };
    let (Ok((_, issuer)), Ok((_, cert))) = (
        X509Certificate::from_der(issuer),
        X509Certificate::from_der(cert),
    ) else {
        return;
    };
    let pair = Pair {
        cert: &cert,
        issuer: &issuer,
    };
    for nonce in [None, Some(NONCE)] {
        match read(response, &pair, nonce, NOW, "stapled") {
            Ok(answer) => {
                assert!(!answer.signer.is_empty(), "an answer names its signer");
                if let CertState::Revoked(r) = &answer.state {
                    assert_eq!(r.serial, pair.serial(), "a revocation of another serial");
                }
            }
            Err(e) => {
                let token = e.class();
                assert!(
                    ["ocsp_unavailable", "ocsp_bad_signature"].contains(&token),
                    "undocumented token {token}"
                );
                assert!(!e.to_string().is_empty());
            }
        }
    }
}
