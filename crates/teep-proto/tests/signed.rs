//! tests/vectors/signed: every signed vector verifies with its committed public key under
//! both crypto providers, carries the draft example as payload, names the right alg and
//! kid, and fails against any other key.

mod common;

use common::MESSAGES;
use teep_cose::{
    AwsLcProvider, CoseError, CryptoProvider, PublicKey, RustCryptoProvider, TrustStore,
    VerifyContext,
};
use teep_proto::{
    CoseStructure, Numbering, ProtoError, decode, decode_unverified_cose, verify_message,
};

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
        let expected = decode(
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
                let (m, v) =
                    verify_message(&cose, Numbering::Draft26, &VerifyContext::new(p, &good))
                        .unwrap_or_else(|e| panic!("{message}.{slug} {}: {e}", p.name()));
                assert_eq!(m, expected);
                assert_eq!(v.alg.cose_id(), alg);
                assert_eq!(v.signer, key);
                assert_eq!(v.kid.as_deref(), Some(&key.thumbprint()[..]));
                // Every other committed key: the kid matches no anchor.
                let others: Vec<PublicKey> = ALGS
                    .iter()
                    .filter(|(s, _)| *s != slug)
                    .map(|(s, _)| public_key(s))
                    .collect();
                let wrong = trust(&others);
                let err = verify_message(&cose, Numbering::Draft26, &VerifyContext::new(p, &wrong))
                    .unwrap_err();
                assert_eq!(
                    err,
                    ProtoError::Cose(CoseError::UntrustedSigner),
                    "{message}.{slug}"
                );
            }
            let unverified = decode_unverified_cose(&cose).unwrap();
            assert_eq!(unverified.structure, CoseStructure::Sign1);
            assert!(unverified.tagged);
            assert_eq!(unverified.signatures[0].alg, Some(alg));
            assert_eq!(unverified.message(Numbering::Draft26).unwrap(), expected);
        }
    }
}

#[test]
fn multi_signer_query_request() {
    let cose = signed("query_request.multi.cose.hex");
    let expected = decode(&common::vector("query_request.hex"), Numbering::Draft26).unwrap();
    let unverified = decode_unverified_cose(&cose).unwrap();
    assert_eq!(unverified.structure, CoseStructure::Sign);
    let algs: Vec<Option<i64>> = unverified.signatures.iter().map(|s| s.alg).collect();
    assert_eq!(algs, vec![Some(-9), Some(-19)]);
    for p in providers() {
        // An Agent that knows only one of the TAM's keys verifies its signature.
        for (slug, alg) in [("esp256", -9), ("ed25519", -19)] {
            let t = trust(&[public_key(slug)]);
            let (m, v) =
                verify_message(&cose, Numbering::Draft26, &VerifyContext::new(p, &t)).unwrap();
            assert_eq!(m, expected);
            assert_eq!(v.alg.cose_id(), alg);
        }
        let t = trust(&[public_key("es384")]);
        assert_eq!(
            verify_message(&cose, Numbering::Draft26, &VerifyContext::new(p, &t)).unwrap_err(),
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
    let err = verify_message(
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
