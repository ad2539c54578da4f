//! The draft's example messages (tests/vectors/teep, both numberings): each decodes with
//! its numbering to the expected field values and re-encodes byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::numbered_vector;
use teep_proto::{
    CipherSuite, ComponentId, DataItemRequested, ErrCode, Message, Numbering, SuitCoseProfile,
    decode_unsigned,
};

const TOKEN: [u8; 16] = [
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
];

/// Decodes, checks the round trip, and returns the message.
fn round_trip(numbering: Numbering, name: &str) -> Message {
    let bytes = numbered_vector(numbering, name);
    let message = decode_unsigned(&bytes, numbering).unwrap();
    assert_eq!(
        message.encode(numbering).unwrap(),
        bytes,
        "{name} {numbering:?}"
    );
    message
}

const BOTH: [Numbering; 2] = [Numbering::Draft26, Numbering::Pre26];

#[test]
fn query_request() {
    for n in BOTH {
        let Message::QueryRequest(m) = round_trip(n, "query_request") else {
            panic!("not a QueryRequest")
        };
        assert_eq!(m.token.as_deref(), Some(&TOKEN[..]));
        assert_eq!(m.versions, Some(vec![0]));
        assert_eq!(
            m.supported_teep_cipher_suites,
            vec![CipherSuite::SIGN1_ESP256, CipherSuite::SIGN1_ED25519]
        );
        assert_eq!(
            m.supported_suit_cose_profiles,
            SuitCoseProfile::ALL_MTI.to_vec()
        );
        assert_eq!(
            m.data_item_requested,
            DataItemRequested::ATTESTATION.with(DataItemRequested::TRUSTED_COMPONENTS)
        );
        assert_eq!(m.challenge, None);
        assert!(m.extensions.is_empty());
    }
}

#[test]
fn query_response() {
    for n in BOTH {
        let Message::QueryResponse(m) = round_trip(n, "query_response") else {
            panic!("not a QueryResponse")
        };
        assert_eq!(m.token.as_deref(), Some(&TOKEN[..]));
        assert_eq!(m.selected_version, Some(0));
        assert_eq!(m.attestation_payload, Some(vec![]));
        let tc_list = m.tc_list.unwrap();
        assert_eq!(tc_list.len(), 1);
        let claims = &tc_list[0];
        assert_eq!(
            claims.component_id,
            ComponentId(vec![hex::decode("0102030405060708090a0b0c0d0e0f").unwrap()])
        );
        let digest = claims.parameters.get(&3).unwrap();
        assert_eq!(
            hex::encode(digest.as_bytes()),
            "5824822f5820a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609"
        );
        assert_eq!(claims.parameters.len(), 1);
        assert!(m.extensions.is_empty());
    }
}

#[test]
fn update() {
    for n in BOTH {
        let Message::Update(m) = round_trip(n, "update") else {
            panic!("not an Update")
        };
        assert_eq!(m.token.as_deref(), Some(&TOKEN[..]));
        let manifests = m.manifest_list.unwrap();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].len(), 334);
        // A SUIT_Envelope map with authentication wrapper (2) first.
        assert_eq!(&manifests[0][..2], &[0xa2, 0x02]);
        assert_eq!(m.err_code, None);
        assert!(m.extensions.is_empty());
    }
}

#[test]
fn success() {
    for n in BOTH {
        let Message::Success(m) = round_trip(n, "success") else {
            panic!("not a Success")
        };
        assert_eq!(m.token.as_deref(), Some(&TOKEN[..]));
        assert_eq!(m.msg, None);
        assert_eq!(m.suit_reports, None);
    }
}

#[test]
fn error() {
    for n in BOTH {
        let Message::Error(m) = round_trip(n, "error") else {
            panic!("not an Error")
        };
        assert_eq!(m.token.as_deref(), Some(&TOKEN[..]));
        assert_eq!(m.err_msg.as_deref(), Some("disk-full"));
        assert_eq!(m.err_code, ErrCode::ManifestProcessingFailed);
    }
}

/// A vector read with the other numbering is not silently misread: Success/Error have
/// other type numbers, and the other messages' labels land elsewhere.
#[test]
fn wrong_numbering_is_detected() {
    let success26 = numbered_vector(Numbering::Draft26, "success");
    // Type 4 is not assigned before -26.
    assert!(decode_unsigned(&success26, Numbering::Pre26).is_err());
    // -26's token label 19 is suit-reports before -26: a bstr is not an array there.
    let qr26 = numbered_vector(Numbering::Draft26, "query_request");
    assert!(decode_unsigned(&qr26, Numbering::Pre26).is_err());
    // Pre-26 Error (type 6) is unknown in -26.
    let error_pre = numbered_vector(Numbering::Pre26, "error");
    assert!(decode_unsigned(&error_pre, Numbering::Draft26).is_err());
}

#[test]
fn err_code_numbering_differs() {
    assert_eq!(
        ErrCode::ManifestProcessingFailed.number(Numbering::Draft26),
        11
    );
    assert_eq!(
        ErrCode::ManifestProcessingFailed.number(Numbering::Pre26),
        17
    );
    assert_eq!(
        ErrCode::from_number(17, Numbering::Draft26),
        Some(ErrCode::Unknown(17))
    );
    assert_eq!(
        ErrCode::from_number(11, Numbering::Pre26),
        Some(ErrCode::Unknown(11))
    );
    assert_eq!(ErrCode::from_number(0, Numbering::Draft26), None);
}
