//! Signature verification with a memo of verified `(algorithm, key, message, signature)`
//! tuples. Verifying the same signature twice always gives the same answer, so a memo is
//! sound; it saves the intermediate→root verification that every listener sharing an
//! intermediate repeats (one of the three ECDSA/RSA verifications of a TLS check), and the
//! repeats of one judgement: the main path, then each client profile, check the same
//! signatures.

use ring::digest::{Context, SHA256, SHA256_OUTPUT_LEN};
use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

/// Entries kept before the memo is cleared (a long-running `serve` sees rotations): about
/// 1 MiB of digests and table at most.
const MAX_ENTRIES: usize = 16_384;

/// The SHA-256 digest of one verified `(scope, key, message, signature)` tuple, its parts
/// framed by their lengths.
type Digest = [u8; SHA256_OUTPUT_LEN];

/// The tuples that verified, each kept as its digest only (32 bytes instead of the key and
/// the whole signed message): a hit means SHA-256 of the same framed bytes, so the same tuple
/// unless SHA-256 collides. Digesting the few hundred bytes of a tuple costs about a
/// microsecond, against tens of microseconds for the verification it saves.
#[derive(Default)]
struct Verified {
    seen: HashSet<Digest>,
}

impl Verified {
    fn contains(&self, d: &Digest) -> bool {
        self.seen.contains(d)
    }

    fn insert(&mut self, d: Digest) {
        if self.seen.len() >= MAX_ENTRIES {
            self.seen = HashSet::new();
        }
        self.seen.insert(d);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

static VERIFIED: LazyLock<Mutex<Verified>> = LazyLock::new(Default::default);

/// One of webpki's algorithms behind the memo.
#[derive(Debug)]
struct Memoized {
    inner: &'static dyn SignatureVerificationAlgorithm,
}

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
    let parts = scope.iter().copied().chain([key, message, signature]);
    let d = digest(parts);
    let memo = || VERIFIED.lock().unwrap_or_else(|p| p.into_inner());
    if memo().contains(&d) {
        return true;
    }
    if !verify() {
        return false;
    }
    memo().insert(d);
    true
}

/// SHA-256 of the parts, each after its length: no two lists of parts give the same bytes.
fn digest<'p>(parts: impl Iterator<Item = &'p [u8]>) -> Digest {
    let mut ctx = Context::new(&SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let mut out = [0; SHA256_OUTPUT_LEN];
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

    /// A remembered tuple answers only for the same scope, key, message and signature: any
    /// part changed, or bytes moved between parts, runs the verification again.
    #[test]
    fn a_hit_needs_every_part_the_same() {
        let good = |scope: &[&[u8]], k: &[u8], m: &[u8], s: &[u8]| {
            let mut ran = false;
            let ok = remembered(scope, k, m, s, || {
                ran = true;
                true
            });
            assert!(ok);
            ran
        };
        let scope: [&[u8]; 2] = [b"memo-test-pk", b"memo-test-sig"];
        assert!(good(&scope, b"key", b"message", b"sig"), "first time");
        assert!(!good(&scope, b"key", b"message", b"sig"), "remembered");
        assert!(good(&scope, b"key2", b"message", b"sig"), "other key");
        assert!(good(&scope, b"key", b"messag", b"sig"), "other message");
        assert!(
            good(&scope, b"ke", b"ymessage", b"sig"),
            "bytes moved between parts"
        );
        assert!(good(&scope, b"key", b"message", b"sig2"), "other signature");
        assert!(
            good(&[b"memo-test-pk", b"other"], b"key", b"message", b"sig"),
            "other scope"
        );
        let failed = remembered(&scope, b"bad", b"m", b"s", || false);
        assert!(!failed);
        assert!(
            !remembered(&scope, b"bad", b"m", b"s", || false),
            "a failure is not kept"
        );
    }

    #[test]
    fn the_memo_is_bounded() {
        let mut v = Verified::default();
        for i in 0..(MAX_ENTRIES + 10) as u64 {
            v.insert(digest([&i.to_be_bytes()[..]].into_iter()));
        }
        assert!(v.len() <= MAX_ENTRIES, "{}", v.len());
        assert!(v.len() >= 10);
    }
}
