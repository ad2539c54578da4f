//! Signatures made by other implementations: the COSE_Sign1 authentication blocks of the
//! SUIT manifest examples (draft-ietf-suit-manifest App. B; ES256, detached payload = the
//! encoded SUIT_Digest), verified with the published example key by every provider.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
// The example key is read from its PEM file, which needs the `std` feature.
#![cfg(feature = "std")]

mod common;

use common::providers;
use teep_cose::coset::{self, cbor::value::Value};
use teep_cose::*;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/suit");

fn decode(bytes: &[u8]) -> Value {
    coset::cbor::de::from_reader(bytes).unwrap()
}

/// (detached payload, COSE_Sign1) of the first authentication block of a SUIT envelope.
fn auth_block(envelope_hex: &str) -> (Vec<u8>, Vec<u8>) {
    let envelope = decode(&hex::decode(envelope_hex.trim()).unwrap());
    let Value::Tag(107, envelope) = envelope else {
        panic!("not a SUIT envelope")
    };
    let wrapper = envelope
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_integer() == Some(2.into()))
        .and_then(|(_, v)| v.as_bytes())
        .unwrap();
    let wrapper = decode(wrapper);
    let items = wrapper.as_array().unwrap();
    let digest = items[0].as_bytes().unwrap().clone();
    let block = items[1].as_bytes().unwrap().clone();
    (digest, block)
}

#[test]
fn suit_manifest_examples_verify_with_the_example_key() {
    let key_hex = std::fs::read(format!(
        "{VECTORS}/keys/suit-example-signer-p256.cose-key-public.hex"
    ))
    .unwrap();
    let key = PublicKey::from_any(&key_hex).unwrap();
    let mut trust = TrustStore::new();
    trust.add_key(key.clone());
    let mut checked = 0;
    for n in [
        "ex0-secure-boot",
        "ex1-download-install",
        "ex2-severable-text",
        "ex3-ab-images",
        "ex4-load-external",
        "ex5-two-images",
    ] {
        let text = std::fs::read_to_string(format!("{VECTORS}/manifest/manifest-{n}.hex")).unwrap();
        let (digest, block) = auth_block(&text);
        for p in providers() {
            let cx = VerifyContext::new(p, &trust);
            let v = verify_sign1_detached(&block, &digest, &cx).unwrap();
            assert_eq!(
                (v.alg, &v.signer),
                (Algorithm::Es256, &key),
                "{n} {}",
                p.name()
            );
            let mut wrong = digest.clone();
            *wrong.last_mut().unwrap() ^= 1;
            // These blocks carry no kid, so a signature no anchor verifies is an unknown signer.
            assert_eq!(
                verify_sign1_detached(&block, &wrong, &cx).unwrap_err(),
                CoseError::UntrustedSigner
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6 * providers().len());
}
