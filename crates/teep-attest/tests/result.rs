//! Attestation results: EAR signing and checking, background-check and passport models.

mod common;

use common::*;
use teep_attest::{
    Context, Ear, Freshness, ResultCheck, ResultError, Status, ear::TEE_SUBMOD, sign_ear,
    verify_ear,
};
use teep_cose::{PrivateKey, TrustStore};

fn affirming_ear(keys: &Keys, nonce: &[u8]) -> Ear {
    let mut claims = good_claims(keys);
    claims.nonce = Some(nonce.to_vec());
    let evidence = sign(&claims, &keys.attestation);
    let mut cx = Context {
        now: NOW,
        freshness: Freshness::Nonce(nonce),
        teep_key: None,
    };
    let o = verifier(keys).appraise(provider(), &evidence, &mut cx);
    assert_eq!(o.status(), Status::Affirming);
    o.ear
}

fn trusting(key: &PrivateKey) -> TrustStore {
    let mut t = TrustStore::new();
    t.add_key(key.public_key().clone());
    t
}

fn check<'a>(trust: &'a TrustStore, keys: &'a Keys, nonce: &'a [u8]) -> ResultCheck<'a> {
    ResultCheck {
        provider: provider(),
        verifiers: trust,
        nonce: Some(nonce),
        now: NOW + 5,
        max_age: 60,
        teep_key: keys.teep.public_key(),
    }
}

#[test]
fn ear_cbor_is_deterministic_and_round_trips() {
    let keys = Keys::new();
    let ear = affirming_ear(&keys, &NONCE);
    let bytes = ear.to_cbor().unwrap();
    teep_cbor::check(&bytes, &teep_cbor::Profile::DETERMINISTIC).unwrap();
    assert_eq!(Ear::from_cbor(&bytes).unwrap(), ear);
}

#[cfg(feature = "json")]
#[test]
fn ear_json_view_uses_ear_names() {
    let keys = Keys::new();
    let json = affirming_ear(&keys, &NONCE).to_json();
    assert_eq!(json["eat_profile"], "tag:github.com,2023:veraison/ear");
    assert_eq!(json["ear.verifier-id"]["developer"], "teep project");
    assert_eq!(json["submods"][TEE_SUBMOD]["ear.status"], "affirming");
    assert_eq!(
        json["submods"][TEE_SUBMOD]["ear.trustworthiness-vector"]["instance-identity"],
        2
    );
    assert_eq!(json["eat_nonce"], "lJSUlJSUlJSUlJSUlJSUlA");
    assert!(json["cnf"]["kid"].is_string());
}

#[test]
fn signed_ear_verifies_with_the_verifier_key() {
    let keys = Keys::new();
    let ear = affirming_ear(&keys, &NONCE);
    let signed = sign_ear(&ear, Keys::signer(&keys.verifier).as_ref()).unwrap();
    let trust = trusting(&keys.verifier);
    assert_eq!(verify_ear(&signed, &check(&trust, &keys, &NONCE)), Ok(ear));
}

#[test]
fn ear_from_another_verifier_is_rejected() {
    let keys = Keys::new();
    let other = Keys::new().verifier;
    let signed = sign_ear(&affirming_ear(&keys, &NONCE), Keys::signer(&other).as_ref()).unwrap();
    let trust = trusting(&keys.verifier);
    assert_eq!(
        verify_ear(&signed, &check(&trust, &keys, &NONCE)),
        Err(ResultError::UntrustedVerifier)
    );
}

#[test]
fn tampered_ear_is_rejected() {
    let keys = Keys::new();
    let mut signed = sign_ear(
        &affirming_ear(&keys, &NONCE),
        Keys::signer(&keys.verifier).as_ref(),
    )
    .unwrap();
    let last = signed.len() - 1;
    signed[last] ^= 1;
    let trust = trusting(&keys.verifier);
    assert_eq!(
        verify_ear(&signed, &check(&trust, &keys, &NONCE)),
        Err(ResultError::BadSignature)
    );
}

#[test]
fn ear_checks_nonce_age_binding_and_status() {
    let keys = Keys::new();
    let trust = trusting(&keys.verifier);
    let signer = Keys::signer(&keys.verifier);
    let ear = affirming_ear(&keys, &NONCE);
    let signed = sign_ear(&ear, signer.as_ref()).unwrap();

    let other_nonce = [0x11; 16];
    assert_eq!(
        verify_ear(&signed, &check(&trust, &keys, &other_nonce)),
        Err(ResultError::NonceMismatch)
    );

    let mut late = check(&trust, &keys, &NONCE);
    late.now = NOW + 61;
    assert_eq!(
        verify_ear(&signed, &late),
        Err(ResultError::Stale {
            iat: NOW as i64,
            now: NOW + 61
        })
    );

    // Another Agent presenting this Agent's result: cnf names a different TEEP key.
    let thief = Keys::new();
    let mut stolen = check(&trust, &keys, &NONCE);
    stolen.teep_key = thief.teep.public_key();
    assert_eq!(verify_ear(&signed, &stolen), Err(ResultError::CnfMismatch));

    let mut warned = ear.clone();
    warned.submods.get_mut(TEE_SUBMOD).unwrap().status = Status::Warning;
    let signed = sign_ear(&warned, signer.as_ref()).unwrap();
    assert_eq!(
        verify_ear(&signed, &check(&trust, &keys, &NONCE)),
        Err(ResultError::NotAffirming(Status::Warning))
    );
}

/// Passport model: the nonce is the TAM's TEEP token. The Agent got its EAR from the
/// Verifier and presents it; the TAM checks the Verifier signature, the token and cnf
/// against the key that signed the Agent's QueryResponse.
#[test]
fn passport_flow() {
    let keys = Keys::new();
    let token = [0x5a; 16];
    let ear = affirming_ear(&keys, &token);
    let passport = sign_ear(&ear, Keys::signer(&keys.verifier).as_ref()).unwrap();
    let trust = trusting(&keys.verifier);
    let tam_check = check(&trust, &keys, &token);
    assert_eq!(
        verify_ear(&passport, &tam_check).unwrap().status(),
        Status::Affirming
    );
}

/// An EAR whose `cnf` COSE_Key is not one CBOR item (the struct is public, so a caller can
/// build one) is never signed: it would be a malformed result under the Verifier's key.
#[test]
fn an_ear_that_does_not_encode_is_not_signed() {
    let keys = Keys::new();
    let mut ear = affirming_ear(&keys, &NONCE);
    ear.cnf = Some(teep_attest::Cnf::CoseKey(vec![0xa1, 0x01]));
    assert!(matches!(
        ear.to_cbor(),
        Err(teep_cbor::write::EncodeError::Raw(_))
    ));
    assert!(matches!(
        sign_ear(&ear, Keys::signer(&keys.verifier).as_ref()),
        Err(teep_cose::CoseError::Malformed(_))
    ));
}
