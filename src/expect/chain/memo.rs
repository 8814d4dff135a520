//! Signature verification with a memo of verified `(algorithm, key, message, signature)`
//! tuples. Verifying the same signature twice always gives the same answer, so a memo is
//! sound; it saves the intermediate→root verification that every listener sharing an
//! intermediate repeats (one of the three ECDSA/RSA verifications of a TLS check), and the
//! repeats of one judgement: the main path, then each client profile, check the same
//! signatures.

use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Entries kept before the memo is cleared (a long-running `serve` sees rotations).
const MAX_ENTRIES: usize = 16_384;

/// Bytes of keys and messages kept before the memo is cleared.
const MAX_BYTES: usize = 32 << 20;

/// One of webpki's algorithms behind the memo.
#[derive(Debug)]
struct Memoized {
    inner: &'static dyn SignatureVerificationAlgorithm,
}

/// A public key and the message a signature over it verified.
type KeyAndMessage = (Box<[u8]>, Box<[u8]>);

/// The signatures that verified, found by scope and signature bytes (short, and all but
/// unique per certificate), each with the key and message it verified, compared in full on a
/// hit: a lookup hashes a hundred bytes instead of digesting the whole signed message.
#[derive(Default)]
struct Verified {
    by_signature: HashMap<Box<[u8]>, Vec<KeyAndMessage>>,
    entries: usize,
    bytes: usize,
}

impl Verified {
    fn contains(&self, id: &[u8], key: &[u8], message: &[u8]) -> bool {
        self.by_signature
            .get(id)
            .is_some_and(|seen| seen.iter().any(|(k, m)| **k == *key && **m == *message))
    }

    fn insert(&mut self, id: Vec<u8>, key: &[u8], message: &[u8]) {
        if self.entries >= MAX_ENTRIES || self.bytes >= MAX_BYTES {
            *self = Verified::default();
        }
        self.entries += 1;
        self.bytes += id.len() + key.len() + message.len();
        let seen = self.by_signature.entry(id.into()).or_default();
        seen.push((key.into(), message.into()));
    }
}

static VERIFIED: LazyLock<Mutex<Verified>> = LazyLock::new(Default::default);

static MEMOIZED: LazyLock<Vec<Memoized>> = LazyLock::new(|| {
    webpki::ALL_VERIFICATION_ALGS
        .iter()
        .map(|a| Memoized { inner: *a })
        .collect()
});

static ALGS: LazyLock<Vec<&'static dyn SignatureVerificationAlgorithm>> = LazyLock::new(|| {
    MEMOIZED
        .iter()
        .map(|m| m as &dyn SignatureVerificationAlgorithm)
        .collect()
});

/// webpki's algorithms, each remembering the signatures it verified.
pub fn algorithms() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    &ALGS
}

/// `verify()`, unless this signature over this message already verified with this key under
/// `scope` (the algorithm, as its caller names it); only successes are remembered.
pub fn remembered(
    scope: &[&[u8]],
    key: &[u8],
    message: &[u8],
    signature: &[u8],
    verify: impl FnOnce() -> bool,
) -> bool {
    let id = framed(scope.iter().copied().chain([signature]));
    let memo = || VERIFIED.lock().unwrap_or_else(|p| p.into_inner());
    if memo().contains(&id, key, message) {
        return true;
    }
    if !verify() {
        return false;
    }
    memo().insert(id, key, message);
    true
}

/// The parts, each after its length: no two lists of parts give the same bytes.
fn framed<'p>(parts: impl Iterator<Item = &'p [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

impl SignatureVerificationAlgorithm for Memoized {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let (pk_alg, sig_alg) = (
            self.inner.public_key_alg_id(),
            self.inner.signature_alg_id(),
        );
        let scope = [pk_alg.as_ref(), sig_alg.as_ref()];
        let verify = || {
            self.inner
                .verify_signature(public_key, message, signature)
                .is_ok()
        };
        match remembered(&scope, public_key, message, signature, verify) {
            true => Ok(()),
            false => Err(InvalidSignature),
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_signature_is_never_remembered_as_good() {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .unwrap();
        let kp = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            doc.as_ref(),
            &rng,
        )
        .unwrap();
        use ring::signature::KeyPair;
        let sig = kp.sign(&rng, b"message").unwrap();
        let alg = algorithms()
            .iter()
            .find(|a| {
                a.signature_alg_id() == rustls_pki_types::alg_id::ECDSA_SHA256
                    && a.public_key_alg_id() == rustls_pki_types::alg_id::ECDSA_P256
            })
            .unwrap();
        let pk = kp.public_key().as_ref();
        assert!(alg.verify_signature(pk, b"message", sig.as_ref()).is_ok());
        assert!(
            alg.verify_signature(pk, b"message", sig.as_ref()).is_ok(),
            "memo hit"
        );
        assert!(alg.verify_signature(pk, b"other", sig.as_ref()).is_err());
        assert!(
            alg.verify_signature(pk, b"other", sig.as_ref()).is_err(),
            "still bad"
        );
    }
}
