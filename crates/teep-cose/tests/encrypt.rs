//! Attached COSE_Encrypt with ES-DH (TEEP §12: encrypted EATs and SUIT reports): round trips
//! on every provider, the KDF `other` binding the purpose, and typed errors for a wrong key,
//! tampering and garbage.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
mod common;

use common::providers;
use coset::cbor::value::Value;
use proptest::prelude::*;
use std::sync::OnceLock;
use teep_cose::encrypt::{
    ContentAlgorithm, DecryptionKey, EAT_ENCRYPTION, SUIT_PAYLOAD_ENCRYPTION,
    SUIT_REPORT_ENCRYPTION, decrypt, decrypt0, encrypt_detached_esdh, encrypt_esdh,
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
            for alg in [ContentAlgorithm::A128Gcm, ContentAlgorithm::A256Gcm] {
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

/// A SUIT report whose result is a failure (`4: {5: 1, 6: [...], 7: 1}`): the byte the
/// attacker wants to turn into `true` (0xf5) is the map head at `RESULT_AT`.
const FAILURE_REPORT: &[u8] = b"\xa2\x03\x80\x04\xa3\x05\x01\x06\x80\x07\x01";
const RESULT_AT: usize = 4;

/// The four items of a tagged COSE_Encrypt, as an attacker on the path decodes them.
fn items(enc: &[u8]) -> Vec<Value> {
    let value: Value = coset::cbor::de::from_reader(enc).unwrap();
    match value {
        Value::Tag(96, inner) => inner.into_array().unwrap(),
        other => panic!("not a tagged COSE_Encrypt: {other:?}"),
    }
}

fn assemble(items: Vec<Value>) -> Vec<u8> {
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(&Value::Tag(96, Box::new(Value::Array(items))), &mut out)
        .unwrap();
    out
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

fn bytes_of(v: &Value) -> Vec<u8> {
    v.as_bytes().unwrap().clone()
}

/// The GCM IV (label 5) of the outer unprotected header.
fn gcm_iv(items: &[Value]) -> Vec<u8> {
    let map = items[1].as_map().unwrap();
    let (_, iv) = map.iter().find(|(k, _)| *k == int(5)).unwrap();
    bytes_of(iv)
}

/// The forgery: the same recipient (so the same CEK), the outer layer rewritten as A128CTR
/// in the unprotected header, IV' = IV || 00000002 (GCM's first keystream block, J0 + 1),
/// the tag dropped, and the result byte flipped from a failure map head to `true`.
fn ctr_forgery(enc: &[u8]) -> (Vec<Value>, Vec<u8>) {
    let mut it = items(enc);
    let mut iv = gcm_iv(&it);
    iv.extend_from_slice(&[0, 0, 0, 2]);
    let mut ct = bytes_of(&it[2]);
    ct.truncate(ct.len() - 16);
    ct[RESULT_AT] ^= FAILURE_REPORT[RESULT_AT] ^ 0xf5;
    it[0] = Value::Bytes(vec![]);
    it[1] = Value::Map(vec![(int(1), int(-65534)), (int(5), Value::Bytes(iv))]);
    it[2] = Value::Bytes(ct.clone());
    (it, ct)
}

/// The TAM opening attached `items` as a SUIT report.
fn open_report(p: &dyn CryptoProvider, items: Vec<Value>) -> Result<Vec<u8>, CoseError> {
    decrypt(
        p,
        &assemble(items),
        None,
        &keys(tam()),
        SUIT_REPORT_ENCRYPTION,
    )
    .map(|z| z.to_vec())
}

fn failure_report(p: &dyn CryptoProvider, alg: ContentAlgorithm) -> Vec<u8> {
    encrypt_esdh(
        p,
        tam().public_key(),
        alg,
        FAILURE_REPORT,
        SUIT_REPORT_ENCRYPTION,
    )
    .unwrap()
}

#[test]
fn a_ctr_rewrite_of_a_gcm_report_is_refused_and_forges_nothing() {
    let mut success = FAILURE_REPORT.to_vec();
    success[RESULT_AT] = 0xf5;
    for p in providers() {
        let enc = failure_report(p, ContentAlgorithm::A128Gcm);
        let (forged, ct) = ctr_forgery(&enc);
        assert_eq!(
            open_report(p, forged.clone()).unwrap_err(),
            CoseError::UnauthenticatedContent { alg: -65534 },
            "{}",
            p.name()
        );
        // The forgery is real: where CTR is allowed (a detached SUIT payload) the same bytes
        // open to the attacker's plaintext. Only the AEAD rule stops it for a report.
        let mut detached = forged;
        detached[2] = Value::Null;
        let opened = decrypt(
            p,
            &assemble(detached),
            Some(&ct),
            &keys(tam()),
            SUIT_REPORT_ENCRYPTION,
        )
        .unwrap();
        assert_eq!(opened.as_slice(), success.as_slice(), "{}", p.name());
    }
}

#[test]
fn every_way_of_moving_or_dropping_the_content_protection_is_refused() {
    for p in providers() {
        let enc = failure_report(p, ContentAlgorithm::A128Gcm);
        let original = items(&enc);
        let iv = gcm_iv(&original);
        let ct = bytes_of(&original[2]);
        let ctr_iv = [iv.as_slice(), &[0, 0, 0, 2]].concat();
        let unprotected = |alg: i64, iv: &[u8]| {
            Value::Map(vec![
                (int(1), int(alg)),
                (int(5), Value::Bytes(iv.to_vec())),
            ])
        };
        let protected_ctr = {
            let mut b = Vec::new();
            coset::cbor::ser::into_writer(&Value::Map(vec![(int(1), int(-65534))]), &mut b)
                .unwrap();
            b
        };
        let cases: Vec<(&str, Value, Value, Vec<u8>, CoseError)> = vec![
            (
                "A128GCM moved to the unprotected header",
                Value::Bytes(vec![]),
                unprotected(1, &iv),
                ct.clone(),
                CoseError::MissingAlgorithm,
            ),
            (
                "A128GCM moved, protected header an empty map",
                Value::Bytes(vec![0xa0]),
                unprotected(1, &iv),
                ct.clone(),
                CoseError::MissingAlgorithm,
            ),
            (
                "A128CTR in the protected header, tag dropped",
                Value::Bytes(protected_ctr),
                Value::Map(vec![(int(5), Value::Bytes(ctr_iv.clone()))]),
                ct[..ct.len() - 16].to_vec(),
                CoseError::UnauthenticatedContent { alg: -65534 },
            ),
            (
                "A128CTR in the unprotected header, tag kept",
                Value::Bytes(vec![]),
                unprotected(-65534, &ctr_iv),
                ct.clone(),
                CoseError::UnauthenticatedContent { alg: -65534 },
            ),
            (
                "alg in both headers (protected A128GCM, unprotected A128CTR)",
                original[0].clone(),
                unprotected(-65534, &ctr_iv),
                ct[..ct.len() - 16].to_vec(),
                CoseError::Malformed("alg in both protected and unprotected headers".into()),
            ),
            (
                "alg in both headers, same value",
                original[0].clone(),
                unprotected(1, &iv),
                ct.clone(),
                CoseError::Malformed("alg in both protected and unprotected headers".into()),
            ),
            (
                "GCM tag dropped",
                original[0].clone(),
                original[1].clone(),
                ct[..ct.len() - 16].to_vec(),
                CoseError::DecryptionFailed,
            ),
            (
                "ChaCha20-Poly1305 is not implemented",
                Value::Bytes(vec![0xa1, 0x01, 0x18, 0x18]),
                original[1].clone(),
                ct.clone(),
                CoseError::UnsupportedAlgorithm(24),
            ),
        ];
        for (what, protected, unprotected, ciphertext, expected) in cases {
            let mut bad = original.clone();
            bad[0] = protected;
            bad[1] = unprotected;
            bad[2] = Value::Bytes(ciphertext);
            assert_eq!(
                open_report(p, bad).unwrap_err(),
                expected,
                "{what} ({})",
                p.name()
            );
        }
        // The untouched structure still opens, so each refusal is the edit's doing.
        assert_eq!(open_report(p, original).unwrap().as_slice(), FAILURE_REPORT);
    }
}

#[test]
fn attached_ctr_is_neither_produced_nor_accepted() {
    let p = default_provider();
    assert_eq!(
        encrypt_esdh(
            p,
            tam().public_key(),
            ContentAlgorithm::A128Ctr,
            PLAINTEXT,
            EAT_ENCRYPTION
        )
        .unwrap_err(),
        CoseError::UnauthenticatedContent { alg: -65534 }
    );
    // An honest A128CTR SUIT_Encryption_Info with its ciphertext moved inside: refused
    // attached, accepted detached (the SUIT payload case, authenticated by the manifest).
    let enc = encrypt_detached_esdh(
        p,
        tam().public_key(),
        ContentAlgorithm::A128Ctr,
        PLAINTEXT,
        SUIT_PAYLOAD_ENCRYPTION,
    )
    .unwrap();
    let mut attached = items(&enc.cose_encrypt);
    attached[2] = Value::Bytes(enc.ciphertext.clone());
    assert_eq!(
        decrypt(
            p,
            &assemble(attached),
            None,
            &keys(tam()),
            SUIT_PAYLOAD_ENCRYPTION
        )
        .unwrap_err(),
        CoseError::UnauthenticatedContent { alg: -65534 }
    );
    let plain = decrypt(
        p,
        &enc.cose_encrypt,
        Some(&enc.ciphertext),
        &keys(tam()),
        SUIT_PAYLOAD_ENCRYPTION,
    )
    .unwrap();
    assert_eq!(plain.as_slice(), PLAINTEXT);
}

#[test]
fn encrypt0_with_an_embedded_ctr_ciphertext_is_refused() {
    let p = default_provider();
    let cek = [0x42u8; 16];
    let iv = [7u8; 16];
    let mut ct = PLAINTEXT.to_vec();
    p.aes_ctr_apply(&cek, &iv, &mut ct).unwrap();
    let cose = |content: Value| {
        let mut out = Vec::new();
        let v = Value::Tag(
            16,
            Box::new(Value::Array(vec![
                Value::Bytes(vec![]),
                Value::Map(vec![
                    (int(1), int(-65534)),
                    (int(5), Value::Bytes(iv.to_vec())),
                ]),
                content,
            ])),
        );
        coset::cbor::ser::into_writer(&v, &mut out).unwrap();
        out
    };
    assert_eq!(
        decrypt0(p, &cose(Value::Bytes(ct.clone())), None, &cek).unwrap_err(),
        CoseError::UnauthenticatedContent { alg: -65534 }
    );
    let plain = decrypt0(p, &cose(Value::Null), Some(&ct), &cek).unwrap();
    assert_eq!(plain.as_slice(), PLAINTEXT);
}

#[test]
fn a256gcm_uses_a_32_byte_cek_and_authenticates() {
    for p in providers() {
        let enc = failure_report(p, ContentAlgorithm::A256Gcm);
        let it = items(&enc);
        // Protected header {1: 3}; the wrapped CEK is 32 bytes + 8 of AES-KW.
        assert_eq!(bytes_of(&it[0]), [0xa1, 0x01, 0x03]);
        let recipient = it[3].as_array().unwrap()[0].as_array().unwrap();
        assert_eq!(bytes_of(&recipient[2]).len(), 40);
        let mut bad = it.clone();
        let mut ct = bytes_of(&bad[2]);
        ct[RESULT_AT] ^= 0x01;
        bad[2] = Value::Bytes(ct);
        assert_eq!(
            open_report(p, bad).unwrap_err(),
            CoseError::DecryptionFailed
        );
        // An A256GCM header over a 16-byte CEK (an A128GCM structure relabelled) is refused
        // before AES runs, not silently treated as AES-128.
        let small = items(&failure_report(p, ContentAlgorithm::A128Gcm));
        let mut relabelled = small.clone();
        relabelled[0] = Value::Bytes(vec![0xa1, 0x01, 0x03]);
        assert!(matches!(
            open_report(p, relabelled),
            Err(CoseError::Malformed(_))
        ));
    }
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
