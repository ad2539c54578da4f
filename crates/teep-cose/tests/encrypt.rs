//! Attached COSE_Encrypt with ES-DH (TEEP §12: encrypted EATs and SUIT reports): round trips
//! on every provider, the KDF `other` binding the purpose, and typed errors for a wrong key,
//! tampering and garbage.
mod common;

use common::providers;
use proptest::prelude::*;
use std::sync::OnceLock;
use teep_cose::encrypt::{
    ContentAlgorithm, DecryptionKey, EAT_ENCRYPTION, SUIT_PAYLOAD_ENCRYPTION,
    SUIT_REPORT_ENCRYPTION, decrypt, encrypt_esdh,
};
use teep_cose::*;

const PLAINTEXT: &[u8] = b"\xa2\x03\x80\x04\xf5 a SUIT report";

fn tam() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(Curve::P256).unwrap())
}

fn keys(key: &PrivateKey) -> Vec<DecryptionKey> {
    vec![DecryptionKey::EcdhEs(key.clone())]
}

#[test]
fn attached_encryption_round_trips_on_every_provider_and_content_algorithm() {
    for sender in providers() {
        for receiver in providers() {
            for alg in [ContentAlgorithm::A128Gcm, ContentAlgorithm::A128Ctr] {
                let enc = encrypt_esdh(
                    sender,
                    tam().public_key(),
                    alg,
                    PLAINTEXT,
                    SUIT_REPORT_ENCRYPTION,
                )
                .unwrap();
                // Tag 96, and the content is carried (third element not nil).
                assert_eq!(&enc[..2], &[0xd8, 0x60]);
                let plain =
                    decrypt(receiver, &enc, None, &keys(tam()), SUIT_REPORT_ENCRYPTION).unwrap();
                assert_eq!(
                    plain.as_slice(),
                    PLAINTEXT,
                    "{} -> {}",
                    sender.name(),
                    receiver.name()
                );
            }
        }
    }
}

#[test]
fn the_default_content_algorithm_is_a128gcm() {
    assert_eq!(ContentAlgorithm::default(), ContentAlgorithm::A128Gcm);
}

#[test]
fn the_kdf_context_binds_the_purpose() {
    let p = default_provider();
    let enc = encrypt_esdh(
        p,
        tam().public_key(),
        ContentAlgorithm::default(),
        PLAINTEXT,
        EAT_ENCRYPTION,
    )
    .unwrap();
    for other in [SUIT_REPORT_ENCRYPTION, SUIT_PAYLOAD_ENCRYPTION] {
        assert_eq!(
            decrypt(p, &enc, None, &keys(tam()), other).unwrap_err(),
            CoseError::DecryptionFailed
        );
    }
    assert_eq!(
        decrypt(p, &enc, None, &keys(tam()), EAT_ENCRYPTION)
            .unwrap()
            .as_slice(),
        PLAINTEXT
    );
}

#[test]
fn a_wrong_key_is_a_typed_error() {
    let p = default_provider();
    let enc = encrypt_esdh(
        p,
        tam().public_key(),
        ContentAlgorithm::default(),
        PLAINTEXT,
        EAT_ENCRYPTION,
    )
    .unwrap();
    let other = PrivateKey::generate(Curve::P256).unwrap();
    assert_eq!(
        decrypt(p, &enc, None, &keys(&other), EAT_ENCRYPTION).unwrap_err(),
        CoseError::DecryptionFailed
    );
    // No key of the recipient's kind at all is the same answer.
    assert_eq!(
        decrypt(p, &enc, None, &[], EAT_ENCRYPTION).unwrap_err(),
        CoseError::DecryptionFailed
    );
    // A P-384 TAM key cannot be encrypted to.
    let p384 = PrivateKey::generate(Curve::P384).unwrap();
    assert!(matches!(
        encrypt_esdh(
            p,
            p384.public_key(),
            ContentAlgorithm::default(),
            PLAINTEXT,
            EAT_ENCRYPTION
        ),
        Err(CoseError::InvalidKey(_))
    ));
}

#[test]
fn tampered_gcm_ciphertext_is_a_typed_error() {
    let p = default_provider();
    let enc = encrypt_esdh(
        p,
        tam().public_key(),
        ContentAlgorithm::A128Gcm,
        PLAINTEXT,
        SUIT_REPORT_ENCRYPTION,
    )
    .unwrap();
    // The ciphertext bstr (plaintext + 16-byte tag) is found by its content length.
    let ct_len = PLAINTEXT.len() + 16;
    let at = enc
        .windows(2)
        .position(|w| w == [0x58, ct_len as u8])
        .unwrap()
        + 2;
    for offset in [0, PLAINTEXT.len() - 1, ct_len - 1] {
        let mut bad = enc.clone();
        bad[at + offset] ^= 0x01;
        assert_eq!(
            decrypt(p, &bad, None, &keys(tam()), SUIT_REPORT_ENCRYPTION).unwrap_err(),
            CoseError::DecryptionFailed,
            "flip at {offset}"
        );
    }
}

#[test]
fn attached_content_and_a_detached_ciphertext_together_are_malformed() {
    let p = default_provider();
    let enc = encrypt_esdh(
        p,
        tam().public_key(),
        ContentAlgorithm::default(),
        PLAINTEXT,
        EAT_ENCRYPTION,
    )
    .unwrap();
    assert!(matches!(
        decrypt(p, &enc, Some(b"more"), &keys(tam()), EAT_ENCRYPTION),
        Err(CoseError::Malformed(_))
    ));
}

fn sealed() -> &'static Vec<u8> {
    static ENC: OnceLock<Vec<u8>> = OnceLock::new();
    ENC.get_or_init(|| {
        encrypt_esdh(
            default_provider(),
            tam().public_key(),
            ContentAlgorithm::A128Gcm,
            PLAINTEXT,
            EAT_ENCRYPTION,
        )
        .unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decrypt(default_provider(), &input, None, &keys(tam()), EAT_ENCRYPTION);
    }

    /// GCM authenticates everything that matters: a mutated structure either fails with an
    /// error or (a change that leaves the meaning intact) gives the original plaintext.
    #[test]
    fn mutations_fail_or_give_the_plaintext(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)
    ) {
        let mut bad = sealed().clone();
        for (at, value) in edits {
            let at = at % bad.len();
            bad[at] = value;
        }
        if let Ok(plain) = decrypt(default_provider(), &bad, None, &keys(tam()), EAT_ENCRYPTION) {
            prop_assert_eq!(plain.as_slice(), PLAINTEXT);
        }
    }
}
