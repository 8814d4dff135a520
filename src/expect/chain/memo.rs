//! Signature verification with a memo of verified `(algorithm, key, message, signature)`
//! tuples. Verifying the same signature twice always gives the same answer, so a memo is
//! sound; it saves the intermediate→root verification that every listener sharing an
//! intermediate repeats (one of the three ECDSA/RSA verifications of a TLS check), and the
//! repeats of one judgement: the main path, then each client profile, check the same
//! signatures.

use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

/// Entries kept before the memo is cleared (a long-running `serve` sees rotations).
const MAX_ENTRIES: usize = 16_384;

/// One of webpki's algorithms behind the memo.
#[derive(Debug)]
struct Memoized {
    inner: &'static dyn SignatureVerificationAlgorithm,
}

static VERIFIED: LazyLock<Mutex<HashSet<[u8; 32]>>> = LazyLock::new(Default::default);

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
    let mut parts = scope.to_vec();
    parts.extend([key, message, signature]);
    let id = digest(&parts);
    let memo = || VERIFIED.lock().unwrap_or_else(|p| p.into_inner());
    if memo().contains(&id) {
        return true;
    }
    if !verify() {
        return false;
    }
    let mut m = memo();
    if m.len() >= MAX_ENTRIES {
        m.clear();
    }
    m.insert(id);
    true
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
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
