//! Evidence encrypted to the TAM (draft-ietf-teep-protocol §12): sign-then-encrypt round
//! trip, purpose binding, typed errors for a wrong key, tampering and garbage.
mod common;

use common::*;
use proptest::prelude::*;
use teep_attest::{EvidenceError, decrypt_evidence, encrypt_evidence, verify_evidence};
use teep_cose::encrypt::{ContentAlgorithm, SUIT_REPORT_ENCRYPTION, decrypt, encrypt_esdh};
use teep_cose::{CoseError, Curve, PrivateKey, TrustStore, VerifyContext};

#[test]
fn encrypted_evidence_decrypts_and_verifies() {
    let keys = Keys::new();
    let claims = good_claims(&keys);
    let evidence = sign(&claims, &keys.attestation);
    let enc = encrypt_evidence(provider(), &evidence, keys.teep.public_key()).unwrap();
    // Tag 96 tells it from the untagged COSE_Sign1 of plain Evidence.
    assert_eq!(&enc[..2], &[0xd8, 0x60]);
    let signed = decrypt_evidence(provider(), &enc, &keys.teep).unwrap();
    assert_eq!(signed, evidence);
    let mut trust = TrustStore::new();
    trust.add_key(keys.attestation.public_key().clone());
    let (decoded, _) = verify_evidence(&signed, &VerifyContext::new(provider(), &trust)).unwrap();
    assert_eq!(decoded, claims);
}

#[test]
fn encrypted_evidence_is_not_a_suit_report() {
    let keys = Keys::new();
    let evidence = sign(&good_claims(&keys), &keys.attestation);
    let enc = encrypt_evidence(provider(), &evidence, keys.teep.public_key()).unwrap();
    let as_report = decrypt(
        provider(),
        &enc,
        None,
        &[teep_cose::encrypt::DecryptionKey::EcdhEs(keys.teep.clone())],
        SUIT_REPORT_ENCRYPTION,
    );
    assert_eq!(as_report.unwrap_err(), CoseError::DecryptionFailed);
    // And a report-purpose encryption is not Evidence.
    let report = encrypt_esdh(
        provider(),
        keys.teep.public_key(),
        ContentAlgorithm::A128Gcm,
        &evidence,
        SUIT_REPORT_ENCRYPTION,
    )
    .unwrap();
    assert_eq!(
        decrypt_evidence(provider(), &report, &keys.teep).unwrap_err(),
        EvidenceError::Decryption(CoseError::DecryptionFailed)
    );
}

#[test]
fn wrong_key_and_tampering_are_decryption_errors() {
    let keys = Keys::new();
    let evidence = sign(&good_claims(&keys), &keys.attestation);
    let enc = encrypt_evidence(provider(), &evidence, keys.teep.public_key()).unwrap();
    let other = PrivateKey::generate(Curve::P256).unwrap();
    assert_eq!(
        decrypt_evidence(provider(), &enc, &other).unwrap_err(),
        EvidenceError::Decryption(CoseError::DecryptionFailed)
    );
    // A flip inside the ciphertext (it starts right after its bstr head).
    let ct_len = evidence.len() + 16;
    let head: &[u8] = if ct_len < 256 {
        &[0x58, ct_len as u8]
    } else {
        &[0x59, (ct_len >> 8) as u8, ct_len as u8]
    };
    let at = enc.windows(head.len()).position(|w| w == head).unwrap() + head.len();
    let mut bad = enc.clone();
    bad[at + ct_len / 2] ^= 0x01;
    assert_eq!(
        decrypt_evidence(provider(), &bad, &keys.teep).unwrap_err(),
        EvidenceError::Decryption(CoseError::DecryptionFailed)
    );
    // Plain Evidence is no COSE_Encrypt: its alg (ESP256) is no content algorithm.
    assert_eq!(
        decrypt_evidence(provider(), &evidence, &keys.teep).unwrap_err(),
        EvidenceError::Decryption(CoseError::UnsupportedAlgorithm(-9))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        let key = PrivateKey::generate(Curve::P256).unwrap();
        prop_assert!(decrypt_evidence(provider(), &input, &key).is_err());
    }
}
