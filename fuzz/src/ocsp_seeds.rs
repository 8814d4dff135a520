//! Seed OCSP responses for the `ocsp_response` target, signed by the test PKI's intermediate
//! so that they pass the signature check: good, revoked (with a reason), unknown, one echoing
//! the target's nonce, one about another serial, and refusals without a body.

use crate::pki::Pki;
use crate::targets::ocsp_response::{frame, NONCE, NOW};
use der::asn1::{BitString, Null, ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode};
use rcgen::{KeyPair, SigningKey};
use ring::digest;
use std::time::{Duration, UNIX_EPOCH};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, ResponderId,
    ResponseData, RevokedInfo, SingleResponse, Version,
};

const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const NONCE_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");

/// (name, framed input) pairs.
pub fn seeds(pki: &Pki) -> Vec<(String, Vec<u8>)> {
    let issuer = Certificate::from_der(&pki.intermediate.cert_der).expect("issuer parses");
    let leaf = Certificate::from_der(&pki.leaf.cert_der).expect("leaf parses");
    let key = KeyPair::from_pem(&pki.intermediate.key_pem).expect("issuer key reads");
    let serial = leaf.tbs_certificate.serial_number.clone();
    let other = SerialNumber::new(&[0x42]).expect("a serial");
    let revoked = CertStatus::Revoked(RevokedInfo {
        revocation_time: time(NOW - 3600),
        revocation_reason: Some(CrlReason::KeyCompromise),
    });
    let cases = [
        ("good", CertStatus::good(), serial.clone(), false),
        ("revoked", revoked, serial.clone(), false),
        ("unknown", CertStatus::unknown(), serial.clone(), false),
        ("good-nonce", CertStatus::good(), serial, true),
        ("other-serial", CertStatus::good(), other, false),
    ];
    let mut out: Vec<(String, Vec<u8>)> = cases
        .into_iter()
        .map(|(name, status, serial, nonce)| {
            let id = cert_id(&issuer, serial);
            let der = signed(&key, single(id, status), nonce);
            (name.to_string(), der)
        })
        .collect();
    out.push(("try-later".into(), der(&OcspResponse::try_later())));
    out.push(("unauthorized".into(), der(&OcspResponse::unauthorized())));
    let (i, c) = (&pki.intermediate.cert_der, &pki.leaf.cert_der);
    out.into_iter()
        .map(|(name, resp)| (name, frame(i, c, &resp)))
        .collect()
}

fn cert_id(issuer: &Certificate, serial_number: SerialNumber) -> CertId {
    let tbs = &issuer.tbs_certificate;
    let name = tbs.subject.to_der().expect("name encodes");
    let key = tbs.subject_public_key_info.subject_public_key.raw_bytes();
    CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: SHA1,
            parameters: Some(Any::from(Null)),
        },
        issuer_name_hash: sha1(&name),
        issuer_key_hash: sha1(key),
        serial_number,
    }
}

fn sha1(bytes: &[u8]) -> OctetString {
    let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bytes);
    OctetString::new(d.as_ref()).expect("a digest fits")
}

fn time(unix: i64) -> OcspGeneralizedTime {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).expect("after 1970"));
    OcspGeneralizedTime::try_from(at).expect("a representable time")
}

fn single(cert_id: CertId, cert_status: CertStatus) -> SingleResponse {
    SingleResponse {
        cert_id,
        cert_status,
        this_update: time(NOW - 60),
        next_update: Some(time(NOW + 86_400)),
        single_extensions: None,
    }
}

/// A successful response holding `single`, signed ECDSA P-256/SHA-256 by `key`.
fn signed(key: &KeyPair, single: SingleResponse, nonce: bool) -> Vec<u8> {
    let extensions = nonce.then(|| {
        let value = OctetString::new(NONCE)
            .expect("nonce")
            .to_der()
            .expect("nonce encodes");
        vec![Extension {
            extn_id: NONCE_OID,
            critical: false,
            extn_value: OctetString::new(value).expect("wrapped nonce"),
        }]
    });
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new([7u8; 20]).expect("key hash")),
        produced_at: time(NOW - 60),
        responses: vec![single],
        response_extensions: extensions,
    };
    let tbs = data.to_der().expect("response data encodes");
    let signature = key.sign(&tbs).expect("the issuer key signs");
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ECDSA_SHA256,
            parameters: None,
        },
        signature: BitString::from_bytes(&signature).expect("signature bits"),
        certs: None,
    };
    der(&OcspResponse::successful(basic).expect("response wraps"))
}

fn der(r: &OcspResponse) -> Vec<u8> {
    r.to_der().expect("response encodes")
}
