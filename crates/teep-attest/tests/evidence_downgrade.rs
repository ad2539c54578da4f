//! An encrypted EAT whose content protection an attacker on the path moves or removes is
//! refused by `decrypt_evidence` before any plaintext comes out (issue 7): A128CTR in the
//! unprotected header, and A128GCM moved out of the protected header.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
mod common;

use common::*;
use teep_attest::{EvidenceError, decrypt_evidence, encrypt_evidence};
use teep_cose::CoseError;
use teep_cose::coset::cbor::value::Value;
use teep_cose::coset::cbor::{de, ser};

/// `enc` with its outer protected header emptied and the unprotected alg set to `alg`
/// (IV kept, lengthened to 16 bytes for CTR).
fn with_unprotected_alg(enc: &[u8], alg: i64) -> Vec<u8> {
    let Value::Tag(96, inner) = de::from_reader::<Value, _>(enc).unwrap() else {
        panic!("not a tagged COSE_Encrypt")
    };
    let mut items = inner.into_array().unwrap();
    let mut iv = items[1].as_map().unwrap()[0].1.as_bytes().unwrap().clone();
    if alg == -65534 {
        iv.extend_from_slice(&[0, 0, 0, 2]);
    }
    items[0] = Value::Bytes(vec![]);
    items[1] = Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer(alg.into())),
        (Value::Integer(5.into()), Value::Bytes(iv)),
    ]);
    let mut out = Vec::new();
    ser::into_writer(&Value::Tag(96, Box::new(Value::Array(items))), &mut out).unwrap();
    out
}

#[test]
fn an_eat_downgraded_to_ctr_or_with_its_alg_unprotected_is_refused() {
    let keys = Keys::new();
    let evidence = sign(&good_claims(&keys), &keys.attestation);
    let enc = encrypt_evidence(provider(), &evidence, keys.teep.public_key()).unwrap();
    assert_eq!(
        decrypt_evidence(provider(), &with_unprotected_alg(&enc, -65534), &keys.teep).unwrap_err(),
        EvidenceError::Decryption(CoseError::UnauthenticatedContent { alg: -65534 })
    );
    assert_eq!(
        decrypt_evidence(provider(), &with_unprotected_alg(&enc, 1), &keys.teep).unwrap_err(),
        EvidenceError::Decryption(CoseError::MissingAlgorithm)
    );
    assert_eq!(
        decrypt_evidence(provider(), &enc, &keys.teep).unwrap(),
        evidence
    );
}
