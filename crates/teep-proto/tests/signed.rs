//! tests/vectors/signed: every signed vector verifies with its committed public key under
//! both crypto providers, carries the draft example as payload, names the right alg and
//! kid, and fails against any other key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::{MESSAGES, verify};
use teep_cose::{
    AwsLcProvider, CoseError, CryptoProvider, PublicKey, RustCryptoProvider, TrustStore,
    VerifyContext,
};
use teep_proto::{CoseStructure, Numbering, ProtoError, Unverified, decode_unsigned};

const ALGS: [(&str, i64); 5] = [
    ("esp256", -9),
    ("ed25519", -19),
    ("es256", -7),
    ("eddsa", -8),
    ("es384", -35),
];

fn read(rel: &str) -> String {
    let path = format!(
        "{}/../../tests/vectors/signed/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn signed(rel: &str) -> Vec<u8> {
    hex::decode(read(rel).trim()).unwrap()
}

fn public_key(slug: &str) -> PublicKey {
    PublicKey::from_any(&signed(&format!("keys/{slug}.pub.cose_key.hex"))).unwrap()
}

fn providers() -> [&'static dyn CryptoProvider; 2] {
    [&RustCryptoProvider, &AwsLcProvider]
}

fn trust(keys: &[PublicKey]) -> TrustStore {
    let mut t = TrustStore::new();
    keys.iter().for_each(|k| t.add_key(k.clone()));
    t
}

#[test]
fn every_sign1_vector_verifies_and_fails_with_other_keys() {
    for message in MESSAGES {
        let expected = decode_unsigned(
            &common::vector(&format!("{message}.hex")),
            Numbering::Draft26,
        )
        .unwrap();
        for (slug, alg) in ALGS {
            let cose = signed(&format!("{message}.{slug}.cose.hex"));
            assert_eq!(cose[0], 0xd2, "COSE_Sign1_Tagged");
            let key = public_key(slug);
            // The PEM form names the same key.
            let pem = read(&format!("keys/{slug}.pub.pem"));
            assert_eq!(PublicKey::from_pem(&pem).unwrap(), key);
            for p in providers() {
                let good = trust(std::slice::from_ref(&key));
                let v = verify(&cose, Numbering::Draft26, &VerifyContext::new(p, &good))
                    .unwrap_or_else(|e| panic!("{message}.{slug} {}: {e}", p.name()));
                assert_eq!(v.message(), &expected);
                assert_eq!(v.alg().cose_id(), alg);
                assert_eq!(v.signer(), &key);
                assert_eq!(v.kid(), Some(&key.thumbprint()[..]));
                assert_eq!(v.structure(), CoseStructure::Sign1);
                // The same check through verify_with_key.
                let by_key = Unverified::parse(&cose, Numbering::Draft26)
                    .unwrap()
                    .verify_with_key(p, &key)
                    .unwrap();
                assert_eq!(by_key.into_message(), expected);
                // Every other committed key: the kid matches no anchor.
                let others: Vec<PublicKey> = ALGS
                    .iter()
                    .filter(|(s, _)| *s != slug)
                    .map(|(s, _)| public_key(s))
                    .collect();
                let wrong = trust(&others);
                let err =
                    verify(&cose, Numbering::Draft26, &VerifyContext::new(p, &wrong)).unwrap_err();
                assert_eq!(
                    err,
                    ProtoError::Cose(CoseError::UntrustedSigner),
                    "{message}.{slug}"
                );
            }
            let unverified = Unverified::parse(&cose, Numbering::Draft26).unwrap();
            assert_eq!(unverified.cose().structure, CoseStructure::Sign1);
            assert!(unverified.cose().tagged);
            assert_eq!(unverified.cose().signatures[0].alg, Some(alg));
            assert_eq!(unverified.message(), &expected);
        }
    }
}

#[test]
fn multi_signer_query_request() {
    let cose = signed("query_request.multi.cose.hex");
    let expected =
        decode_unsigned(&common::vector("query_request.hex"), Numbering::Draft26).unwrap();
    let unverified = Unverified::parse(&cose, Numbering::Draft26).unwrap();
    assert_eq!(unverified.cose().structure, CoseStructure::Sign);
    let algs: Vec<Option<i64>> = unverified.cose().signatures.iter().map(|s| s.alg).collect();
    assert_eq!(algs, vec![Some(-9), Some(-19)]);
    for p in providers() {
        // An Agent that knows only one of the TAM's keys verifies its signature.
        for (slug, alg) in [("esp256", -9), ("ed25519", -19)] {
            let t = trust(&[public_key(slug)]);
            let v = verify(&cose, Numbering::Draft26, &VerifyContext::new(p, &t)).unwrap();
            assert_eq!(v.message(), &expected);
            assert_eq!(v.structure(), CoseStructure::Sign);
            // Which of the signatures verified, as the suit to answer in.
            assert_eq!(v.alg().cose_id(), alg);
            assert_eq!(v.cipher_suite(), teep_proto::CipherSuite::sign1(alg));
        }
        let t = trust(&[public_key("es384")]);
        assert_eq!(
            verify(&cose, Numbering::Draft26, &VerifyContext::new(p, &t)).unwrap_err(),
            ProtoError::Cose(CoseError::UntrustedSigner)
        );
    }
}

/// A signed -26 message read with the pre-26 numbering verifies (the signature is over
/// bytes) but its payload is rejected with a typed error, offset into the payload.
#[test]
fn verified_payload_is_decoded_strictly() {
    let cose = signed("success.esp256.cose.hex");
    let t = trust(&[public_key("esp256")]);
    let err = verify(
        &cose,
        Numbering::Pre26,
        &VerifyContext::new(&RustCryptoProvider, &t),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ProtoError::Malformed {
            offset: 1,
            kind: teep_proto::MalformedKind::UnknownMessageType(4)
        }
    );
}

/// The receiver looks before it trusts: the token picks the session (and so the key) and
/// the Evidence can be taken out, and only then is the signature checked with that key.
#[test]
fn look_at_the_token_then_verify_with_the_session_key() {
    use teep_cose::{Curve, PrivateKey, SignOptions};
    use teep_proto::{Message, QueryResponse, sign_message};
    let agent = PrivateKey::generate(Curve::P256).unwrap();
    let stranger = PrivateKey::generate(Curve::P256).unwrap();
    let response = Message::QueryResponse(QueryResponse {
        token: Some(vec![9; 16]),
        attestation_payload: Some(vec![0xa1, 0x0a, 0x41, 0x01]),
        ..Default::default()
    });
    let p = &RustCryptoProvider;
    let signer = p.signer(&agent, agent.default_algorithm()).unwrap();
    let cose = sign_message(
        &response,
        Numbering::Draft26,
        signer.as_ref(),
        &SignOptions::default(),
    )
    .unwrap();
    let sessions = [(vec![9u8; 16], agent.public_key().clone())];

    let unverified = Unverified::parse(&cose, Numbering::Draft26).unwrap();
    let Message::QueryResponse(claimed) = unverified.message() else {
        panic!("not a QueryResponse")
    };
    assert_eq!(
        claimed.attestation_payload.as_deref(),
        Some(&[0xa1, 0x0a, 0x41, 0x01][..])
    );
    let key = &sessions
        .iter()
        .find(|(token, _)| Some(token.as_slice()) == claimed.token.as_deref())
        .unwrap()
        .1;
    let kid = unverified.cose().signatures[0].kid.clone();
    assert_eq!(kid.as_deref(), Some(&key.thumbprint()[..]));
    let verified = unverified.verify_with_key(p, key).unwrap();
    assert_eq!(verified.message(), &response);

    // The same bytes under another key: refused, typed, with its err-code.
    let err = Unverified::parse(&cose, Numbering::Draft26)
        .unwrap()
        .verify_with_key(p, stranger.public_key())
        .unwrap_err();
    assert_eq!(err, ProtoError::Cose(CoseError::UntrustedSigner));
    assert_eq!(err.err_code(), teep_proto::ErrCode::BadCertificate);
}

/// A COSE_Sign whose first signature is forged and whose second is good verifies through
/// the second, and says so: the Agent answers in that suite.
#[test]
fn cose_sign_reports_the_signature_that_verified() {
    use teep_cose::coset::{CborSerializable, CoseSign, TaggedCborSerializable};
    let cose = signed("query_request.multi.cose.hex");
    let mut sign = CoseSign::from_tagged_slice(&cose).unwrap();
    sign.signatures[0].signature[0] ^= 1;
    let forged = sign.to_tagged_vec().unwrap();
    let both = trust(&[public_key("esp256"), public_key("ed25519")]);
    for p in providers() {
        let v = verify(&forged, Numbering::Draft26, &VerifyContext::new(p, &both)).unwrap();
        assert_eq!(v.alg().cose_id(), -19);
        assert_eq!(v.signer(), &public_key("ed25519"));
        assert_eq!(v.cipher_suite(), teep_proto::CipherSuite::SIGN1_ED25519);
        // Only the forged one trusted: the failure is the forged signature's.
        let only_p256 = trust(&[public_key("esp256")]);
        assert_eq!(
            verify(
                &forged,
                Numbering::Draft26,
                &VerifyContext::new(p, &only_p256)
            )
            .unwrap_err(),
            ProtoError::Cose(CoseError::BadSignature)
        );
    }
    // Untagged is read the same way.
    let untagged = CoseSign::from_tagged_slice(&forged)
        .unwrap()
        .to_vec()
        .unwrap();
    let v = verify(
        &untagged,
        Numbering::Draft26,
        &VerifyContext::new(&RustCryptoProvider, &both),
    );
    assert_eq!(v.unwrap().alg().cose_id(), -19);
}

/// A TAM that adds a suite later signs with it too: an Agent reads the COSE_Sign and verifies
/// the signature whose algorithm it supports, though coset has no name for the other's.
#[test]
fn a_cose_sign_with_an_unregistered_alg_reads_and_verifies_through_the_other() {
    use teep_cose::coset::cbor::value::Value;
    let cose = signed("query_request.multi.cose.hex");
    let mut value: Value = teep_cose::coset::cbor::de::from_reader(cose.as_slice()).unwrap();
    let Value::Tag(98, inner) = &mut value else {
        panic!("not a tagged COSE_Sign");
    };
    let Value::Array(signatures) = &mut inner.as_array_mut().unwrap()[3] else {
        panic!("no signatures");
    };
    // The ESP256 signature becomes one under alg -100 ({1: -100}), unregistered.
    signatures[0].as_array_mut().unwrap()[0] = Value::Bytes(vec![0xa1, 0x01, 0x38, 0x63]);
    let mut newer = Vec::new();
    teep_cose::coset::cbor::ser::into_writer(&value, &mut newer).unwrap();
    let parsed = Unverified::parse(&newer, Numbering::Draft26).unwrap();
    let algs: Vec<_> = parsed.cose().signatures.iter().map(|s| s.alg).collect();
    assert_eq!(algs, [Some(-100), Some(-19)]);
    let both = trust(&[public_key("esp256"), public_key("ed25519")]);
    let v = parsed
        .verify(&VerifyContext::new(&RustCryptoProvider, &both))
        .unwrap();
    assert_eq!(v.signer(), &public_key("ed25519"));
    // Trusting only the P-256 key: its signature is now of an unknown suite and the other
    // is by an untrusted key, the more telling failure.
    let only_p256 = trust(&[public_key("esp256")]);
    let e = verify(
        &newer,
        Numbering::Draft26,
        &VerifyContext::new(&RustCryptoProvider, &only_p256),
    )
    .unwrap_err();
    assert_eq!(e, ProtoError::Cose(CoseError::UntrustedSigner));
}

/// A TEEP message is never detached: parsing refuses a nil payload before any key is used.
#[test]
fn detached_payload_is_refused_at_parse() {
    use teep_cose::{Curve, PrivateKey, SignOptions};
    let key = PrivateKey::generate(Curve::Ed25519).unwrap();
    let signer = RustCryptoProvider
        .signer(&key, key.default_algorithm())
        .unwrap();
    let opts = SignOptions {
        detached: true,
        ..SignOptions::default()
    };
    let payload = common::vector("success.hex");
    let cose = teep_cose::sign1(signer.as_ref(), &payload, &opts).unwrap();
    let err = Unverified::parse(&cose, Numbering::Draft26).unwrap_err();
    assert!(
        matches!(err, ProtoError::Cose(CoseError::Malformed(_))),
        "{err:?}"
    );
    assert_eq!(err.err_code(), teep_proto::ErrCode::PermanentError);
}
