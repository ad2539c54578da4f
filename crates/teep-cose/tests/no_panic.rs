//! Untrusted input never panics: arbitrary bytes and mutations of valid messages and keys
//! give typed errors (or, for harmless mutations, a verification result).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
mod common;

use common::*;
use proptest::prelude::*;
use teep_cose::*;

struct Setup {
    trust: TrustStore,
    sign1: Vec<u8>,
    sign: Vec<u8>,
    key: Vec<u8>,
}

fn setup() -> Setup {
    let p = default_provider();
    let (k1, s1) = key_and_signer(p, Algorithm::Esp256);
    let (k2, s2) = key_and_signer(p, Algorithm::Ed25519);
    let signers: [&dyn Signer; 2] = [s1.as_ref(), s2.as_ref()];
    let opts = SignOptions::default();
    Setup {
        trust: trusting(&[k1.public_key(), k2.public_key()]),
        sign1: sign1(s1.as_ref(), b"payload", &opts).unwrap(),
        sign: sign(&signers, b"payload", &opts).unwrap(),
        key: k1.to_cose_key_bytes(),
    }
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
    for &(at, value) in edits {
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] = value;
        }
    }
    bytes
}

fn check_all(input: &[u8], s: &Setup) {
    let cx = VerifyContext::new(default_provider(), &s.trust);
    let _ = verify_signed(input, &cx);
    let _ = verify_sign1_detached(input, b"payload", &cx);
    let _ = PublicKey::from_cose_key_bytes(input);
    let _ = PrivateKey::from_cose_key_bytes(input);
    #[cfg(feature = "std")]
    {
        let _ = PrivateKey::from_any(input);
        let _ = PublicKey::from_any(input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_all(&input, setup_once());
    }

    #[test]
    fn mutated_messages_and_keys(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let s = setup_once();
        for original in [&s.sign1, &s.sign, &s.key] {
            let mutated = mutate(original.clone(), &edits);
            check_all(&mutated, s);
            check_all(&mutated[..cut % (mutated.len() + 1)], s);
        }
    }
}

fn setup_once() -> &'static Setup {
    static SETUP: std::sync::OnceLock<Setup> = std::sync::OnceLock::new();
    SETUP.get_or_init(setup)
}
