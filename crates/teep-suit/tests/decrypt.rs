//! Payload decryption (draft-ietf-suit-firmware-encryption) on every encryption-info
//! vector of expected.json, and the personalization content of TEEP Example 3.

mod common;

use common::*;
use serde_json::Value;
use teep_cose::encrypt::{
    ContentAlgorithm, DecryptionKey, SUIT_PAYLOAD_ENCRYPTION, decrypt, encrypt_detached_esdh,
};
use teep_cose::{CoseError, CryptoProvider, Curve, PrivateKey};

fn keys() -> Vec<DecryptionKey> {
    vec![
        DecryptionKey::EcdhEs(private_key(
            "keys/fwenc-receiver-esdh-p256.cose-key-private.hex",
        )),
        DecryptionKey::A128Kw {
            kek: zeroize::Zeroizing::new(symmetric_key("keys/fwenc-kek-a128kw.cose-key.hex")),
            kid: Some(b"kid-1".to_vec()),
        },
    ]
}

#[test]
fn every_encryption_info_vector_decrypts_to_the_plaintext() {
    let text = std::fs::read_to_string(format!("{VECTORS}/suit/expected.json")).unwrap();
    let exp: Value = serde_json::from_str(&text).unwrap();
    let vectors = exp["encryption_info_vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        let info = hex_file(&format!("suit/{}", v["encryption_info"].as_str().unwrap()));
        let ct = hex_file(&format!("suit/{}", v["ciphertext"].as_str().unwrap()));
        let plain = decrypt(
            &PROVIDER,
            &info,
            Some(&ct),
            &keys(),
            SUIT_PAYLOAD_ENCRYPTION,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", v["encryption_info"]));
        assert_eq!(
            hex::encode(PROVIDER.sha256(&plain)),
            v["plaintext_sha256"].as_str().unwrap()
        );
        assert_eq!(
            *plain,
            hex_file(&format!("suit/{}", v["plaintext_file"].as_str().unwrap()))
        );
    }
}

#[test]
fn wrong_key_or_tampered_ciphertext_fails() {
    let info = hex_file("suit/firmware-encryption/fwenc-encinfo-esdh-a128gcm.hex");
    let mut ct = hex_file("suit/firmware-encryption/fwenc-ciphertext-esdh-a128gcm.hex");
    let other = vec![DecryptionKey::EcdhEs(
        PrivateKey::generate(Curve::P256).unwrap(),
    )];
    assert!(decrypt(&PROVIDER, &info, Some(&ct), &other, SUIT_PAYLOAD_ENCRYPTION).is_err());
    ct[0] ^= 1;
    assert!(
        decrypt(
            &PROVIDER,
            &info,
            Some(&ct),
            &keys(),
            SUIT_PAYLOAD_ENCRYPTION
        )
        .is_err()
    );
    // Garbage is a typed malformed error, never a panic.
    assert!(matches!(
        decrypt(
            &PROVIDER,
            &[0x80],
            Some(&ct),
            &keys(),
            SUIT_PAYLOAD_ENCRYPTION
        ),
        Err(CoseError::Malformed(_))
    ));
}

#[test]
fn esdh_encryption_round_trips_with_both_content_algorithms() {
    let device = PrivateKey::generate(Curve::P256).unwrap();
    for alg in [ContentAlgorithm::A128Gcm, ContentAlgorithm::A128Ctr] {
        let enc = encrypt_detached_esdh(
            &PROVIDER,
            device.public_key(),
            alg,
            b"trusted component",
            SUIT_PAYLOAD_ENCRYPTION,
        )
        .unwrap();
        let keys = vec![DecryptionKey::EcdhEs(
            PrivateKey::from_cose_key_bytes(&device.to_cose_key_bytes()).unwrap(),
        )];
        let plain = decrypt(
            &PROVIDER,
            &enc.cose_encrypt,
            Some(&enc.ciphertext),
            &keys,
            SUIT_PAYLOAD_ENCRYPTION,
        )
        .unwrap();
        assert_eq!(&*plain, b"trusted component");
    }
}

#[test]
fn encrypt0_with_a_known_key_decrypts() {
    use minicbor::Encoder;
    let cek = [0x42u8; 16];
    let iv = [7u8; 12];
    let protected = [0xa1, 0x01, 0x01]; // {1: 1 (A128GCM)}
    let mut aad = Vec::new();
    Encoder::new(&mut aad)
        .array(3)
        .unwrap()
        .str("Encrypt0")
        .unwrap()
        .bytes(&protected)
        .unwrap()
        .bytes(&[])
        .unwrap();
    let ct = PROVIDER.aes_gcm_seal(&cek, &iv, &aad, b"report").unwrap();
    let mut cose = Vec::new();
    Encoder::new(&mut cose)
        .tag(minicbor::data::Tag::new(16))
        .unwrap()
        .array(3)
        .unwrap()
        .bytes(&protected)
        .unwrap()
        .map(1)
        .unwrap()
        .u8(5)
        .unwrap()
        .bytes(&iv)
        .unwrap()
        .bytes(&ct)
        .unwrap();
    let plain = teep_cose::encrypt::decrypt0(&PROVIDER, &cose, None, &cek).unwrap();
    assert_eq!(&*plain, b"report");
    assert!(teep_cose::encrypt::decrypt0(&PROVIDER, &cose, None, &[0u8; 16]).is_err());
}
