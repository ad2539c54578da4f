//! The attack issue 7 names, end to end on a real encrypted report: an attacker on the path
//! rewrites the A128GCM COSE_Encrypt of a *failed* SUIT report as A128CTR (alg in the
//! unprotected header, IV || 00000002 = GCM's keystream, tag dropped) and XORs the known
//! failure into a success. The CEK is unchanged, so before the AEAD rule `decrypt_report`
//! returned the forged success; now it is a typed error.
use teep_cose::coset::cbor::value::Value;
use teep_cose::coset::cbor::{de, ser};
use teep_cose::{CoseError, Curve, PrivateKey, default_provider};
use teep_suit::SuitError;
use teep_suit::model::Digest;
use teep_suit::report::{Failure, Record, Report, decrypt_report};

fn report(result: Result<(), Failure>) -> Report {
    Report {
        reference_uri: Some("https://example.com/tc.suit".into()),
        manifest_digest: Digest {
            algorithm: -16,
            bytes: vec![0xa5; 32],
        },
        nonce: Some(vec![1, 2, 3, 4]),
        records: vec![],
        capabilities: false,
        result,
    }
}

#[test]
fn a_failed_report_cannot_be_rewritten_as_a_ctr_success() {
    let p = default_provider();
    let tam = PrivateKey::generate(Curve::P256).unwrap();
    let failure = || {
        report(Err(Failure {
            error: SuitError::ManifestDigestMismatch,
            record: Record::default(),
        }))
    };
    let failed = failure().to_cbor();
    let success = report(Ok(())).to_cbor();
    assert!(success.len() < failed.len());
    let enc = failure().encrypt(p, tam.public_key()).unwrap();

    let Value::Tag(96, inner) = de::from_reader::<Value, _>(enc.as_slice()).unwrap() else {
        panic!("not a tagged COSE_Encrypt")
    };
    let mut items = inner.into_array().unwrap();
    let iv = items[1].as_map().unwrap()[0].1.as_bytes().unwrap().clone();
    let ct = items[2].as_bytes().unwrap().clone();
    // CTR may be cut short, so the shorter success fits: ct' = ct ^ failed ^ success.
    let forged: Vec<u8> = success
        .iter()
        .zip(&failed)
        .zip(&ct)
        .map(|((s, f), c)| s ^ f ^ c)
        .collect();
    items[0] = Value::Bytes(vec![]);
    items[1] = Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer((-65534).into())),
        (
            Value::Integer(5.into()),
            Value::Bytes([iv.as_slice(), &[0, 0, 0, 2]].concat()),
        ),
    ]);
    items[2] = Value::Bytes(forged);
    let mut attack = Vec::new();
    ser::into_writer(&Value::Tag(96, Box::new(Value::Array(items))), &mut attack).unwrap();

    assert_eq!(
        decrypt_report(p, &attack, &tam).unwrap_err(),
        SuitError::Decryption(CoseError::UnauthenticatedContent { alg: -65534 })
    );
    assert_eq!(decrypt_report(p, &enc, &tam).unwrap(), failed);
}
