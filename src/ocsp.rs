//! OCSP (RFC 6960) with RustCrypto's `x509-ocsp` types: the request for one certificate
//! (CertID with SHA-1 of the issuer's name and key, as responders expect, and a nonce), the
//! responders a certificate names (authority information access, `id-ad-ocsp`), and the
//! reading of a response — stapled in a handshake or fetched — whose signature must be the
//! issuer's or that of a delegated responder the issuer certified for OCSP signing.

use crate::crl::{self, Revoked};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use ring::digest;
use std::time::Duration;
use tokio::time::Instant;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    SingleResponse, TbsRequest,
};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

/// Largest OCSP response read from a responder.
pub const MAX_OCSP_BYTES: u64 = 64 * 1024;

const BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Why an OCSP answer could not be used. `class()` is the stable reason token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    #[error("OCSP responder {origin} is unavailable: {detail}")]
    Unavailable { origin: String, detail: String },
    #[error("OCSP response from {origin} does not parse ({detail}); expected a DER OCSPResponse (RFC 6960)")]
    Malformed { origin: String, detail: String },
    #[error("OCSP responder {origin} answered {status} instead of a status; is it the responder of this certificate's issuer?")]
    Refused { origin: String, status: String },
    #[error("OCSP response from {origin} is signed neither by {issuer:?} nor by a responder it certified for OCSP signing ({detail}); is the responder using the CA's key?")]
    BadSignature {
        origin: String,
        issuer: String,
        detail: String,
    },
    #[error("OCSP response from {origin} does not answer this request ({detail}): a replayed or misrouted response")]
    NotOurs { origin: String, detail: String },
    #[error("OCSP response from {origin} holds no status for serial {serial}; is it the responder of this certificate's issuer?")]
    Missing { origin: String, serial: String },
}

impl OcspError {
    /// Stable reason token.
    pub fn class(&self) -> &'static str {
        match self {
            OcspError::BadSignature { .. } | OcspError::NotOurs { .. } => "ocsp_bad_signature",
            _ => "ocsp_unavailable",
        }
    }
}

/// The status a response gives the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertState {
    Good,
    Revoked(Revoked),
    Unknown,
}

/// A verified answer for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Where it came from (a URL, or the stapled response), for messages.
    pub origin: String,
    pub state: CertState,
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// Who signed it: `the issuer` or `delegated responder "CN"`.
    pub signer: String,
}

/// The certificate asked about and its issuer.
pub struct Pair<'a, 'b> {
    pub cert: &'a X509Certificate<'b>,
    pub issuer: &'a X509Certificate<'b>,
}

impl Pair<'_, '_> {
    /// The certificate's serial as lowercase hex without leading zero bytes.
    pub fn serial(&self) -> String {
        crl::serial_hex(self.cert.raw_serial())
    }

    /// The CertID of the certificate under hash `alg` (SHA-1, SHA-256/384/512).
    fn cert_id(&self, alg: &ObjectIdentifier) -> Option<CertId> {
        let algo = match *alg {
            SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            SHA256 => &digest::SHA256,
            SHA384 => &digest::SHA384,
            SHA512 => &digest::SHA512,
            _ => return None,
        };
        let name = digest::digest(algo, self.issuer.subject().as_raw());
        let key = digest::digest(algo, &self.issuer.public_key().subject_public_key.data);
        Some(CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: *alg,
                parameters: Some(der::asn1::Null.into()),
            },
            issuer_name_hash: OctetString::new(name.as_ref()).ok()?,
            issuer_key_hash: OctetString::new(key.as_ref()).ok()?,
            serial_number: SerialNumber::new(strip(self.cert.raw_serial())).ok()?,
        })
    }

    /// Does `id` name this certificate (its hashes, whatever the algorithm, and serial)?
    fn named_by(&self, id: &CertId) -> bool {
        let Some(ours) = self.cert_id(&id.hash_algorithm.oid) else {
            return false;
        };
        ours.issuer_name_hash == id.issuer_name_hash
            && ours.issuer_key_hash == id.issuer_key_hash
            && crl::serial_hex(id.serial_number.as_bytes()) == self.serial()
    }
}

/// A serial's bytes without leading zero bytes (one kept for zero).
fn strip(raw: &[u8]) -> &[u8] {
    let skip = raw.iter().take_while(|b| **b == 0).count();
    &raw[skip.min(raw.len().saturating_sub(1))..]
}

/// The DER OCSPRequest for the pair: SHA-1 CertID, and a nonce extension when given.
pub fn request(pair: &Pair<'_, '_>, nonce: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let req_cert = pair
        .cert_id(&SHA1)
        .ok_or("the certificate's serial cannot be put in an OCSP request (over 20 bytes)")?;
    let request_extensions = match nonce {
        Some(n) => Some(vec![nonce_extension(n).map_err(|e| e.to_string())?]),
        None => None,
    };
    let req = OcspRequest {
        tbs_request: TbsRequest {
            version: Default::default(),
            requestor_name: None,
            request_list: vec![Request {
                req_cert,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    };
    req.to_der().map_err(|e| e.to_string())
}

fn nonce_extension(nonce: &[u8]) -> Result<Extension, der::Error> {
    let value = OctetString::new(nonce)?.to_der()?;
    Ok(Extension {
        extn_id: NONCE,
        critical: false,
        extn_value: OctetString::new(value)?,
    })
}

/// Reads a DER OCSPResponse about `pair`: its status must be successful, its signature the
/// issuer's or a delegated responder's, its nonce (when it echoes one and `nonce` was sent)
/// ours, and it must hold a status for the certificate. Freshness is the caller's to judge.
pub fn read(
    bytes: &[u8],
    pair: &Pair<'_, '_>,
    nonce: Option<&[u8]>,
    now: i64,
    origin: &str,
) -> Result<Answer, OcspError> {
    let malformed = |detail: String| OcspError::Malformed {
        origin: origin.into(),
        detail,
    };
    let resp = OcspResponse::from_der(bytes).map_err(|e| malformed(e.to_string()))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(OcspError::Refused {
            origin: origin.into(),
            status: format!("{:?}", resp.response_status),
        });
    }
    let body = resp
        .response_bytes
        .ok_or_else(|| malformed("a successful response without a body".into()))?;
    if body.response_type != BASIC {
        let t = body.response_type;
        return Err(malformed(format!(
            "response type {t}, not id-pkix-ocsp-basic"
        )));
    }
    let basic = BasicOcspResponse::from_der(body.response.as_bytes())
        .map_err(|e| malformed(e.to_string()))?;
    let signer = verify(&basic, pair, now, origin)?;
    check_nonce(&basic, nonce, origin)?;
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| pair.named_by(&r.cert_id))
        .ok_or_else(|| OcspError::Missing {
            origin: origin.into(),
            serial: pair.serial(),
        })?;
    Ok(answer(single, pair, signer, origin))
}

fn answer(single: &SingleResponse, pair: &Pair<'_, '_>, signer: String, origin: &str) -> Answer {
    let state = match &single.cert_status {
        CertStatus::Good(_) => CertState::Good,
        CertStatus::Unknown(_) => CertState::Unknown,
        CertStatus::Revoked(info) => CertState::Revoked(Revoked {
            serial: pair.serial(),
            time: unix(&info.revocation_time),
            reason: info.revocation_reason.map(|r| r as u8),
        }),
    };
    Answer {
        origin: origin.into(),
        state,
        this_update: unix(&single.this_update),
        next_update: single.next_update.as_ref().map(unix),
        signer,
    }
}

fn unix(t: &x509_ocsp::OcspGeneralizedTime) -> i64 {
    t.0.to_unix_duration().as_secs() as i64
}

/// An echoed nonce must be the one sent (a responder that echoes none is accepted, as
/// pre-signed responses carry none).
fn check_nonce(
    basic: &BasicOcspResponse,
    sent: Option<&[u8]>,
    origin: &str,
) -> Result<(), OcspError> {
    let Some(sent) = sent else { return Ok(()) };
    let exts = basic.tbs_response_data.response_extensions.as_deref();
    let echoed = exts.unwrap_or_default().iter().find(|e| e.extn_id == NONCE);
    let Some(echoed) = echoed else { return Ok(()) };
    // RFC 8954 wraps the nonce in an OCTET STRING; some older responders echo it bare.
    let wrapped = nonce_extension(sent).map(|e| e.extn_value).ok();
    let echoed = &echoed.extn_value;
    match wrapped.as_ref() == Some(echoed) || echoed.as_bytes() == sent {
        true => Ok(()),
        false => Err(OcspError::NotOurs {
            origin: origin.into(),
            detail: "its nonce differs from the one sent".into(),
        }),
    }
}

/// Who signed the response: the issuer, else a certificate it carries that the issuer
/// signed, valid now and extended-key-usage OCSP signing.
fn verify(
    basic: &BasicOcspResponse,
    pair: &Pair<'_, '_>,
    now: i64,
    origin: &str,
) -> Result<String, OcspError> {
    let bad = |detail: String| OcspError::BadSignature {
        origin: origin.into(),
        issuer: pair.issuer.subject().to_string(),
        detail,
    };
    let tbs = basic
        .tbs_response_data
        .to_der()
        .map_err(|e| bad(e.to_string()))?;
    let alg = basic
        .signature_algorithm
        .to_der()
        .map_err(|e| bad(e.to_string()))?;
    let (_, alg) = AlgorithmIdentifier::from_der(&alg).map_err(|e| bad(e.to_string()))?;
    let sig = basic.signature.raw_bytes();
    let checks = |key: &SubjectPublicKeyInfo<'_>| {
        let sig = x509_parser::der_parser::asn1_rs::BitString::new(0, sig);
        x509_parser::verify::verify_signature(key, &alg, &sig, &tbs)
    };
    if checks(pair.issuer.public_key()).is_ok() {
        return Ok("the issuer".into());
    }
    let mut why =
        "the issuer's key does not verify it and it carries no delegated responder certificate"
            .to_string();
    for der in basic.certs.iter().flatten().filter_map(|c| c.to_der().ok()) {
        match delegated(&der, pair.issuer, now) {
            Ok(responder) => match checks(responder.public_key()) {
                Ok(()) => return Ok(format!("delegated responder {:?}", cn(&responder))),
                Err(e) => why = format!("the delegated responder's key does not verify it: {e}"),
            },
            Err(e) => why = e,
        }
    }
    Err(bad(why))
}

/// A responder certificate the issuer delegated OCSP signing to, or why it is not one.
fn delegated<'a>(
    der: &'a [u8],
    issuer: &X509Certificate<'_>,
    now: i64,
) -> Result<X509Certificate<'a>, String> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| format!("a responder certificate does not parse: {e}"))?;
    let who = cn(&c);
    if c.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(format!(
            "responder {who:?} is not issued by the certificate's issuer"
        ));
    }
    c.verify_signature(Some(issuer.public_key()))
        .map_err(|e| format!("responder {who:?} is not signed by the issuer: {e}"))?;
    let ocsp_signing = c.extended_key_usage().ok().flatten();
    if !ocsp_signing.is_some_and(|e| e.value.ocsp_signing) {
        return Err(format!(
            "responder {who:?} lacks extended key usage OCSPSigning"
        ));
    }
    let v = c.validity();
    if now < v.not_before.timestamp() || now > v.not_after.timestamp() {
        return Err(format!("responder {who:?} is not valid now"));
    }
    Ok(c)
}

fn cn(c: &X509Certificate<'_>) -> String {
    let cn = c.subject().iter_common_name().next();
    cn.and_then(|a| a.as_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| c.subject().to_string())
}

/// The http(s) URLs of the OCSP responders named in a certificate's authority information
/// access, in order.
pub fn responders(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() else {
            continue;
        };
        for d in aia
            .iter()
            .filter(|d| d.access_method.to_id_string() == AD_OCSP)
        {
            if let GeneralName::URI(u) = d.access_location {
                if u.starts_with("http://") || u.starts_with("https://") {
                    urls.push(u.to_string());
                }
            }
        }
    }
    urls
}

/// Asks the responder at `url` about the pair (one POST of `application/ocsp-request` with a
/// fresh nonce) before `deadline`, and reads its answer.
pub async fn ask(
    url: &str,
    pair: &Pair<'_, '_>,
    now: i64,
    deadline: Instant,
) -> Result<Answer, OcspError> {
    let unavailable = |detail: String| OcspError::Unavailable {
        origin: url.into(),
        detail,
    };
    let nonce = fresh_nonce().map_err(unavailable)?;
    let req = crl::fetch::Request {
        method: "POST",
        content_type: Some("application/ocsp-request"),
        body: request(pair, Some(&nonce)).map_err(unavailable)?,
        limit: MAX_OCSP_BYTES,
    };
    let bytes = crl::fetch::request(url, &req, deadline)
        .await
        .map_err(unavailable)?;
    read(&bytes, pair, Some(&nonce), now, url)
}

fn fresh_nonce() -> Result<[u8; 16], String> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut n = [0u8; 16];
    SystemRandom::new()
        .fill(&mut n)
        .map_err(|_| "no randomness for the nonce".to_string())?;
    Ok(n)
}

/// How far a response's thisUpdate may lie ahead of the clock (clock skew).
pub const SKEW: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, IsCa, Issuer, KeyPair};

    /// A CA and a leaf it issued, as DER.
    fn pki() -> (Vec<u8>, Vec<u8>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(vec![]).unwrap();
        ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_der = ca.self_signed(&ca_key).unwrap().der().to_vec();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["app.test".into()]).unwrap();
        leaf.serial_number = Some(vec![0x00, 0x9a, 0x01].into());
        let leaf_der = leaf.signed_by(&leaf_key, &issuer).unwrap().der().to_vec();
        (ca_der, leaf_der)
    }

    #[test]
    fn the_request_names_the_certificate_by_sha1_cert_id_and_carries_the_nonce() {
        let (ca, leaf) = pki();
        let (_, ca) = X509Certificate::from_der(&ca).unwrap();
        let (_, leaf) = X509Certificate::from_der(&leaf).unwrap();
        let pair = Pair {
            cert: &leaf,
            issuer: &ca,
        };
        let der = request(&pair, Some(b"0123456789abcdef")).unwrap();
        let req = OcspRequest::from_der(&der).unwrap();
        let id = &req.tbs_request.request_list[0].req_cert;
        assert_eq!(id.hash_algorithm.oid, SHA1);
        assert_eq!(id.issuer_name_hash.as_bytes().len(), 20);
        assert!(pair.named_by(id));
        assert_eq!(pair.serial(), "9a01");
        let exts = req.tbs_request.request_extensions.unwrap();
        assert_eq!(exts[0].extn_id, NONCE);
    }

    #[test]
    fn hostile_answers_are_classified_not_panics() {
        let (ca, leaf) = pki();
        let (_, ca) = X509Certificate::from_der(&ca).unwrap();
        let (_, leaf) = X509Certificate::from_der(&leaf).unwrap();
        let pair = Pair {
            cert: &leaf,
            issuer: &ca,
        };
        let read = |b: &[u8]| read(b, &pair, None, 0, "test").unwrap_err();
        assert!(matches!(read(b"garbage"), OcspError::Malformed { .. }));
        assert!(matches!(
            read(&[0x30, 0x82, 0xff]),
            OcspError::Malformed { .. }
        ));
        // OCSPResponse { responseStatus unauthorized (6) }
        let e = read(&[0x30, 0x03, 0x0a, 0x01, 0x06]);
        assert!(matches!(e, OcspError::Refused { .. }), "{e:?}");
        assert_eq!(e.class(), "ocsp_unavailable");
        // successful, but no body
        assert!(matches!(
            read(&[0x30, 0x03, 0x0a, 0x01, 0x00]),
            OcspError::Malformed { .. }
        ));
    }

    #[test]
    fn serials_lose_leading_zero_bytes_but_zero_stays() {
        assert_eq!(strip(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(strip(&[0]), &[0]);
    }
}
