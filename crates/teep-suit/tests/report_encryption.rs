//! SUIT reports encrypted to the TAM (draft-ietf-teep-protocol §12): round trip, purpose
//! binding of the KDF context, typed errors for a wrong key, tampering and garbage.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
use proptest::prelude::*;
use std::sync::OnceLock;
use teep_cose::coset::cbor::value::Value;
use teep_cose::coset::cbor::{de, ser};
use teep_cose::encrypt::{ContentAlgorithm, EAT_ENCRYPTION, encrypt_esdh};
use teep_cose::{CoseError, CryptoProvider, Curve, PrivateKey, default_provider};
use teep_suit::SuitError;
use teep_suit::model::Digest;
use teep_suit::report::{Entry, Failure, Record, Report, decrypt_report};

fn provider() -> &'static dyn CryptoProvider {
    default_provider()
}

fn tam() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(Curve::P256).unwrap())
}

fn report(result: Result<(), Failure>) -> Report {
    Report {
        reference_uri: Some("https://example.com/tc.suit".into()),
        manifest_digest: Digest {
            algorithm: -16,
            bytes: vec![0xa5; 32],
        },
        nonce: Some(vec![1, 2, 3, 4]),
        records: vec![Entry::Record(Record {
            manifest_id: vec![0],
            section: 3,
            offset: 7,
            component_index: 0,
            ..Record::default()
        })],
        capabilities: result.is_err(),
        result,
    }
}

fn failed() -> Report {
    report(Err(Failure {
        error: SuitError::ManifestDigestMismatch,
        record: Record::default(),
    }))
}

#[test]
fn encrypted_reports_decrypt_to_their_cbor() {
    for r in [report(Ok(())), failed()] {
        let enc = r.encrypt(provider(), tam().public_key()).unwrap();
        assert_ne!(enc, r.to_cbor().unwrap());
        assert_eq!(
            decrypt_report(provider(), &enc, tam()).unwrap(),
            r.to_cbor().unwrap()
        );
    }
}

/// Issue 7's attack on a real encrypted report: an attacker on the path rewrites the
/// A128GCM COSE_Encrypt of a failed report as A128CTR (alg unprotected, IV || 00000002 =
/// GCM's keystream, tag dropped) and XORs the known failure into a success. The CEK is
/// unchanged, so without the AEAD rule `decrypt_report` returned the forged success.
#[test]
fn a_failed_report_cannot_be_rewritten_as_a_ctr_success() {
    let (failed_cbor, success) = (
        failed().to_cbor().unwrap(),
        report(Ok(())).to_cbor().unwrap(),
    );
    let enc = failed().encrypt(provider(), tam().public_key()).unwrap();
    let Value::Tag(96, inner) = de::from_reader::<Value, _>(enc.as_slice()).unwrap() else {
        panic!("not a tagged COSE_Encrypt")
    };
    let mut items = inner.into_array().unwrap();
    let iv = items[1].as_map().unwrap()[0].1.as_bytes().unwrap().clone();
    // CTR may be cut short, so the shorter success fits: ct' = ct ^ failed ^ success.
    assert!(success.len() < failed_cbor.len());
    let forged: Vec<u8> = (success.iter().zip(&failed_cbor))
        .zip(items[2].as_bytes().unwrap())
        .map(|((s, f), c)| s ^ f ^ c)
        .collect();
    let int = |i: i64| Value::Integer(i.into());
    items[0] = Value::Bytes(vec![]);
    items[1] = Value::Map(vec![
        (int(1), int(-65534)),
        (
            int(5),
            Value::Bytes([iv.as_slice(), &[0, 0, 0, 2]].concat()),
        ),
    ]);
    items[2] = Value::Bytes(forged);
    let mut attack = Vec::new();
    ser::into_writer(&Value::Tag(96, Box::new(Value::Array(items))), &mut attack).unwrap();
    assert_eq!(
        decrypt_report(provider(), &attack, tam()).unwrap_err(),
        SuitError::Decryption(CoseError::UnauthenticatedContent { alg: -65534 })
    );
    assert_eq!(
        decrypt_report(provider(), &enc, tam()).unwrap(),
        failed_cbor
    );
}

#[test]
fn an_encrypted_eat_is_not_a_report() {
    // The same bytes encrypted under the EAT purpose: the KDF context differs, so the TAM's
    // own key does not unwrap the CEK.
    let eat = encrypt_esdh(
        provider(),
        tam().public_key(),
        ContentAlgorithm::A128Gcm,
        &report(Ok(())).to_cbor().unwrap(),
        EAT_ENCRYPTION,
    )
    .unwrap();
    assert_eq!(
        decrypt_report(provider(), &eat, tam()).unwrap_err(),
        SuitError::Decryption(CoseError::DecryptionFailed)
    );
}

#[test]
fn another_key_is_a_decryption_error() {
    let enc = report(Ok(()))
        .encrypt(provider(), tam().public_key())
        .unwrap();
    let other = PrivateKey::generate(Curve::P256).unwrap();
    assert_eq!(
        decrypt_report(provider(), &enc, &other).unwrap_err(),
        SuitError::Decryption(CoseError::DecryptionFailed)
    );
    // Encrypting to a key that cannot do ECDH-ES+A128KW is refused up front.
    let ed = PrivateKey::generate(Curve::Ed25519).unwrap();
    assert!(matches!(
        report(Ok(())).encrypt(provider(), ed.public_key()),
        Err(CoseError::InvalidKey(_))
    ));
}

#[test]
fn a_tampered_report_is_a_decryption_error() {
    let enc = report(Ok(()))
        .encrypt(provider(), tam().public_key())
        .unwrap();
    // The last bytes of the COSE_Encrypt are the wrapped CEK; the GCM tag ends the
    // ciphertext just before the recipients. Flip a byte of each region.
    let wrapped_cek = enc.len() - 1;
    let mut bad = enc.clone();
    bad[wrapped_cek] ^= 0x80;
    assert_eq!(
        decrypt_report(provider(), &bad, tam()).unwrap_err(),
        SuitError::Decryption(CoseError::DecryptionFailed)
    );
    let cbor_len = report(Ok(())).to_cbor().unwrap().len();
    let ct = enc
        .windows(2)
        .position(|w| w == [0x58, (cbor_len + 16) as u8])
        .unwrap()
        + 2;
    let mut bad = enc;
    bad[ct + cbor_len / 2] ^= 0x01;
    assert_eq!(
        decrypt_report(provider(), &bad, tam()).unwrap_err(),
        SuitError::Decryption(CoseError::DecryptionFailed)
    );
}

#[test]
fn plaintext_that_is_no_suit_report_is_malformed() {
    let encrypt = |plain: &[u8]| {
        encrypt_esdh(
            provider(),
            tam().public_key(),
            ContentAlgorithm::A128Gcm,
            plain,
            teep_cose::encrypt::SUIT_REPORT_ENCRYPTION,
        )
        .unwrap()
    };
    for plain in [
        &b""[..],
        b"\x80",                         // an array
        b"\xa1\x03\x80",                 // records only
        b"\xa3\x03\x80\x04\xf5\x03\x80", // duplicate key 3
        b"\xbf\x03\x80\xff",             // indefinite map
        b"\xa0\x00",                     // trailing byte
        // The fuzzer's encrypted_decrypt/report-nested-duplicate-key: a repeated key in a
        // nested map ({3: [{1: 0, 1: 0}], 4: true, 99: [[-16, h'00' * 32]]}), and the same
        // in the capability report, which the decoder does not interpret.
        &[
            b"\xa3\x03\x81\xa2\x01\x00\x01\x00\x04\xf5\x18\x63\x81\x82\x2f\x58\x20",
            &[0; 32][..],
        ]
        .concat(),
        b"\xa4\x03\x80\x04\xf5\x08\xa2\x01\x00\x01\x00\x18\x63\x81\x82\x2f\x41\x00",
    ] {
        assert!(
            matches!(
                decrypt_report(provider(), &encrypt(plain), tam()),
                Err(SuitError::Malformed { .. })
            ),
            "{plain:02x?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(decrypt_report(provider(), &input, tam()).is_err());
    }
}
