//! Evidence: claims codec, signing, the D.2 example, and the pinned registry choices.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use teep_attest::{
    ClaimsError, Cnf, EatClaims, EvidenceError, ManifestBody, Oemid, PayloadKind,
    claims::{SHA256_ALG, key},
    payload_kind, verify_evidence,
};
use teep_cose::{CoseError, TrustStore, VerifyContext};

fn verify(evidence: &[u8], trusted: &teep_cose::PublicKey) -> Result<EatClaims, EvidenceError> {
    let mut trust = TrustStore::new();
    trust.add_key(trusted.clone());
    let cx = VerifyContext::new(provider(), &trust);
    verify_evidence(evidence, &cx).map(|(claims, _)| claims)
}

#[test]
fn evidence_round_trip() {
    let keys = Keys::new();
    let claims = good_claims(&keys);
    let evidence = sign(&claims, &keys.attestation);
    assert_eq!(
        verify(&evidence, keys.attestation.public_key()).unwrap(),
        claims
    );
}

/// The TEEP EAT profile forbids CBOR tags, so Evidence is an untagged COSE_Sign1 (a
/// 4-element array), not COSE_Sign1_Tagged (tag 18).
#[test]
fn evidence_is_untagged_cose_sign1() {
    let keys = Keys::new();
    let evidence = sign(&good_claims(&keys), &keys.attestation);
    assert_eq!(evidence[0], 0x84);
}

/// Our encoding is deterministic (RFC 8949 §4.2.1: sorted keys, preferred heads).
#[test]
fn claims_encode_deterministically() {
    let keys = Keys::new();
    let bytes = good_claims(&keys).to_cbor().unwrap();
    teep_cbor::check(&bytes, &teep_cbor::Profile::DETERMINISTIC).unwrap();
    assert_eq!(
        EatClaims::from_cbor(&bytes).unwrap().to_cbor().unwrap(),
        bytes
    );
}

#[test]
fn evidence_from_unknown_key_is_untrusted() {
    let keys = Keys::new();
    let evidence = sign(&good_claims(&keys), &keys.attestation);
    assert_eq!(
        verify(&evidence, keys.teep.public_key()),
        Err(EvidenceError::Cose(CoseError::UntrustedSigner))
    );
}

#[test]
fn tampered_evidence_fails_signature() {
    let keys = Keys::new();
    let mut evidence = sign(&good_claims(&keys), &keys.attestation);
    let last = evidence.len() - 1;
    evidence[last] ^= 1;
    assert_eq!(
        verify(&evidence, keys.attestation.public_key()),
        Err(EvidenceError::Cose(CoseError::BadSignature))
    );
}

fn encoding_error(bytes: &[u8]) -> teep_cbor::CborErrorKind {
    match EatClaims::from_cbor(bytes) {
        Err(ClaimsError::Encoding(e)) => e.kind,
        other => panic!("expected an encoding error, got {other:?}"),
    }
}

#[test]
fn profile_encoding_rules_are_enforced() {
    use teep_cbor::CborErrorKind::*;
    // {10: 1(h'...')} - a tag
    assert_eq!(
        encoding_error(&hex::decode("a10ac1480102030405060708").unwrap()),
        TagNotAllowed
    );
    // indefinite-length map
    assert_eq!(
        encoding_error(&hex::decode("bf0a480102030405060708ff").unwrap()),
        IndefiniteLength
    );
    // key 10 with a non-preferred head (0x18 0x0a)
    assert_eq!(
        encoding_error(&hex::decode("a1180a480102030405060708").unwrap()),
        NonPreferredHead
    );
    // the same claim twice
    assert_eq!(
        encoding_error(&hex::decode("a20a4801020304050607080a480102030405060708").unwrap()),
        DuplicateMapKey
    );
    // trailing byte
    assert_eq!(encoding_error(&hex::decode("a000").unwrap()), TrailingBytes);
}

#[test]
fn claim_types_and_sizes_are_checked() {
    let invalid = |hex_str: &str| match EatClaims::from_cbor(&hex::decode(hex_str).unwrap()) {
        Err(ClaimsError::InvalidClaim { key, .. }) => key,
        other => panic!("expected InvalidClaim, got {other:?}"),
    };
    assert_eq!(invalid("a10a4401020304"), key::NONCE); // 4-byte nonce: too short
    assert_eq!(invalid("a119010043010203"), key::UEID); // 3-byte ueid
    assert_eq!(invalid("a119010242aabb"), key::OEMID); // 2-byte oemid
    assert_eq!(invalid("a1190107186f"), key::DBGSTAT); // dbgstat 111 undefined
    assert_eq!(invalid("a10a6161"), key::NONCE); // text nonce
    assert_eq!(invalid("a108a10241aa"), key::CNF); // encrypted COSE_Key unsupported
    assert_eq!(EatClaims::from_cbor(&[0x80]), Err(ClaimsError::NotAMap));
}

#[test]
fn unknown_claims_are_ignored() {
    // {10: nonce, "x": 1, 9999: [1]}
    let bytes = hex::decode("a30a48010203040506070861780119270f8101").unwrap();
    let claims = EatClaims::from_cbor(&bytes).unwrap();
    assert_eq!(
        claims.nonce.as_deref(),
        Some(&[1u8, 2, 3, 4, 5, 6, 7, 8][..])
    );
}

/// RFC 9711 / IANA CWT registry: manifests = 272, measurements = 273 (the TEEP draft's D.2
/// example and its claim table use 273 for manifests; the registry wins).
#[test]
fn claim_keys_follow_the_iana_registry() {
    assert_eq!(
        [
            key::NONCE,
            key::UEID,
            key::OEMID,
            key::HWMODEL,
            key::HWVERSION,
            key::SECBOOT
        ],
        [10, 256, 258, 259, 260, 262]
    );
    assert_eq!(
        [
            key::DBGSTAT,
            key::PROFILE,
            key::MANIFESTS,
            key::MEASUREMENTS
        ],
        [263, 265, 272, 273]
    );
    assert_eq!([key::IAT, key::CNF], [6, 8]);
}

fn d2_claims() -> EatClaims {
    let diag = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eat_claims.diag"
    ))
    .unwrap();
    let bytes = cbor_diag::parse_diag(&diag).unwrap().to_bytes();
    EatClaims::from_cbor(&bytes).unwrap()
}

#[test]
fn d2_example_parses() {
    let c = d2_claims();
    assert_eq!(
        c.cnf,
        Some(Cnf::Kid(
            hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .unwrap()
        ))
    );
    assert_eq!(c.nonce, Some(hex::decode("948f8860d13a463e8e").unwrap()));
    assert_eq!(
        c.ueid,
        Some(hex::decode("0198f50a4ff6c05861c8860d13a638ea").unwrap())
    );
    assert_eq!(c.oemid, Some(Oemid::Ieee([0x89, 0x48, 0x23])));
    assert_eq!(
        c.hwmodel,
        Some(hex::decode("549dcecc8b987c737b44e40f7c635ce8").unwrap())
    );
    let hw = c.hwversion.unwrap();
    assert_eq!((hw.version.as_str(), hw.scheme), ("1.3.4", Some(1)));
}

#[test]
fn d2_example_273_is_measurements() {
    let c = d2_claims();
    assert_eq!(c.manifests, None);
    let list = c.measurements.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].content_type, 60);
    let ManifestBody::SuitReference(r) = &list[0].body else {
        panic!("expected a SUIT_Reference body");
    };
    assert_eq!(r.uri, "https://example.com/manifest.cbor");
    assert_eq!(r.digest.algorithm, SHA256_ALG);
    assert_eq!(
        r.digest.bytes,
        hex::decode("a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609").unwrap()
    );
}

/// Digest §16.5: absent format = the TEEP EAT media type = an Attestation Result; raw
/// Evidence needs another string, and we send `application/eat+cwt`.
#[test]
fn payload_format_strings_are_pinned() {
    assert_eq!(
        teep_attest::ATTESTATION_RESULT_FORMAT,
        "application/eat+cwt; eat_profile=urn:ietf:rfc:rfcXXXX"
    );
    assert_eq!(teep_attest::EVIDENCE_FORMAT, "application/eat+cwt");
    assert_eq!(payload_kind(None), PayloadKind::AttestationResult);
    assert_eq!(
        payload_kind(Some("Application/EAT+CWT;eat_profile=urn:ietf:rfc:rfcXXXX")),
        PayloadKind::AttestationResult
    );
    assert_eq!(
        payload_kind(Some(teep_attest::EVIDENCE_FORMAT)),
        PayloadKind::Evidence
    );
    assert_eq!(
        payload_kind(Some("application/vnd.example-evidence")),
        PayloadKind::Evidence
    );
}

/// Each rejected claim says what is wrong with it as a typed reason, not as text.
#[test]
fn claim_rejections_name_their_typed_reason() {
    use teep_attest::ClaimReason::{Read, UnusableCnfKey};
    use teep_cbor::read::{CborType, ReadErrorKind::*};
    let reason = |hex_str: &str| match EatClaims::from_cbor(&hex::decode(hex_str).unwrap()) {
        Err(ClaimsError::InvalidClaim { key, reason }) => (key, reason),
        other => panic!("expected InvalidClaim, got {other:?}"),
    };
    let size = |min, max, found| Read(Size { min, max, found });
    assert_eq!(reason("a10a4401020304"), (key::NONCE, size(8, 64, 4)));
    assert_eq!(reason("a119010043010203"), (key::UEID, size(7, 33, 3)));
    assert_eq!(reason("a119010242aabb"), (key::OEMID, Read(OutOfRange)));
    assert_eq!(reason("a1190107186f"), (key::DBGSTAT, Read(OutOfRange)));
    assert_eq!(
        reason("a10a6161"),
        (key::NONCE, Read(Expected(CborType::Bytes)))
    );
    // cnf {2: h'aa'} (encrypted COSE_Key), cnf {1: 1} (COSE_Key not a map), cnf {1: {}}.
    assert_eq!(reason("a108a10241aa"), (key::CNF, Read(OutOfRange)));
    assert_eq!(
        reason("a108a10101"),
        (key::CNF, Read(Expected(CborType::Map)))
    );
    assert_eq!(reason("a108a101a0"), (key::CNF, UnusableCnfKey));
    // cnf with two methods; hwversion ["1", 1, 2]; eat_profile as a byte string.
    assert_eq!(reason("a108a201410303410a"), (key::CNF, size(1, 1, 2)));
    assert_eq!(
        reason("a11901048361310102"),
        (key::HWVERSION, size(1, 2, 3))
    );
    assert_eq!(
        reason("a11901094161"),
        (key::PROFILE, Read(Expected(CborType::Text)))
    );
    // a manifests entry of three elements.
    assert_eq!(
        reason("a11901108183010203"),
        (key::MANIFESTS, size(2, 2, 3))
    );
}

/// A pre-encoded part that is not one CBOR item (here a truncated array, which would
/// swallow the claims written after it and leave the map length wrong) is refused when
/// encoding, before anything is signed.
#[test]
fn claims_with_a_broken_pre_encoded_part_do_not_encode() {
    use teep_attest::{Manifest, sign_evidence};
    use teep_cbor::{CborErrorKind, write::EncodeError};
    let keys = Keys::new();
    for body in [vec![0x82, 0x01], vec![0x01, 0x02], vec![]] {
        let mut claims = good_claims(&keys);
        claims.manifests = Some(vec![Manifest {
            content_type: 60,
            body: ManifestBody::Other(body.clone()),
        }]);
        let kind = match claims.to_cbor() {
            Err(EncodeError::Raw(e)) => e.kind,
            other => panic!("{body:02x?} encoded: {other:?}"),
        };
        let want = if body.len() == 2 && body[0] == 0x01 {
            CborErrorKind::TrailingBytes
        } else {
            CborErrorKind::Truncated
        };
        assert_eq!(kind, want, "{body:02x?}");
        assert!(matches!(
            sign_evidence(&claims, Keys::signer(&keys.attestation).as_ref()),
            Err(EvidenceError::Encoding(EncodeError::Raw(_)))
        ));
    }
    let mut claims = good_claims(&keys);
    claims.cnf = Some(Cnf::CoseKey(vec![0xa1, 0x01]));
    assert!(matches!(claims.to_cbor(), Err(EncodeError::Raw(_))));
}
