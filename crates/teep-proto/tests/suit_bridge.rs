//! Where TEEP meets SUIT: one `ComponentId`, teep-suit's err-code as a TEEP code in each
//! numbering, and tc-list entries made from SUIT types and read back, with hand-written
//! CBOR for what a peer could send instead.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use std::collections::BTreeMap;

use teep_proto::{
    ComponentId, ErrCode, Message, Numbering, QueryResponse, RawCbor, SystemPropertyClaims,
    decode_unsigned,
};
use teep_suit::storage::InstalledManifest;
use teep_suit::{Digest, SuitError, TeepErrCode};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn tc() -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", "app", "suit"])
}

/// teep-proto's and teep-suit's component IDs are one type: no conversion between them.
#[test]
#[allow(
    unused_qualifications,
    reason = "the point is to name the type by both paths"
)]
fn the_component_id_is_suits() {
    use std::any::TypeId;
    assert_eq!(
        TypeId::of::<teep_proto::ComponentId>(),
        TypeId::of::<teep_suit::model::ComponentId>()
    );
}

/// ERR_MANIFEST_PROCESSING_FAILED is 17 before -26 and 11 in -26; a bridge by number
/// (`from_number(code.number())`) would send 11 to a pre-26 peer, where 11 is unassigned.
#[test]
fn suit_err_codes_map_by_meaning_in_each_numbering() {
    let table = [
        (TeepErrCode::TemporaryError, ErrCode::TemporaryError, 10, 10),
        (
            TeepErrCode::ManifestProcessingFailed,
            ErrCode::ManifestProcessingFailed,
            11,
            17,
        ),
    ];
    for (suit, teep, draft26, pre26) in table {
        let code = ErrCode::from(suit);
        assert_eq!(code, teep);
        assert_eq!(code.number(Numbering::Draft26), draft26);
        assert_eq!(code.number(Numbering::Pre26), pre26);
        assert_eq!(ErrCode::from_number(pre26, Numbering::Pre26), Some(teep));
    }
    // The number-based bridge is wrong for pre-26: the reason for the conversion.
    assert_eq!(
        ErrCode::from_number(
            TeepErrCode::ManifestProcessingFailed.number(),
            Numbering::Pre26
        ),
        Some(ErrCode::Unknown(11))
    );
}

fn digest() -> Digest {
    Digest::sha256([0xab; 32])
}

#[test]
fn a_tc_list_entry_carries_the_digest_wrapped_and_the_size_as_a_uint() {
    let entry = SystemPropertyClaims::new(tc(), &digest(), Some(20));
    // image-digest (3): bstr(35) wrapping [-16, bstr(32)]; image-size (14): 20.
    let wrapped = format!("5824 822f 5820 {}", "ab".repeat(32));
    assert_eq!(entry.parameters[&3].as_bytes(), h(&wrapped));
    assert_eq!(entry.parameters[&14].as_bytes(), [0x14]);
    assert_eq!(entry.parameters.len(), 2);
    assert_eq!(entry.image_digest(), Ok(Some(digest())));
    assert_eq!(entry.image_size(), Ok(Some(20)));

    // Through a QueryResponse on the wire and back, in both numberings.
    for numbering in [Numbering::Draft26, Numbering::Pre26] {
        let msg = Message::QueryResponse(QueryResponse {
            tc_list: Some(vec![entry.clone()]),
            ..QueryResponse::default()
        });
        let Message::QueryResponse(back) =
            decode_unsigned(&msg.encode(numbering).unwrap(), numbering).unwrap()
        else {
            panic!("not a QueryResponse");
        };
        let got = &back.tc_list.unwrap()[0];
        assert_eq!(got, &entry);
        assert_eq!(got.image_digest(), Ok(Some(digest())));
    }

    let without_size = SystemPropertyClaims::new(tc(), &digest(), None);
    assert_eq!(without_size.image_size(), Ok(None));
    assert_eq!(without_size.parameters.len(), 1);
}

#[test]
fn an_installed_manifest_is_listed_by_its_id_and_manifest_digest() {
    let installed = InstalledManifest {
        component_id: tc(),
        sequence_number: 3,
        digest: digest(),
        signer: None,
    };
    let entry = SystemPropertyClaims::from(&installed);
    assert_eq!(entry, SystemPropertyClaims::new(tc(), &digest(), None));
}

/// What a peer could send instead, written by hand: each is refused as the wrong SUIT
/// type, never read as something else.
#[test]
fn parameters_of_the_wrong_type_are_refused() {
    let claims = |key: i64, value: &str| SystemPropertyClaims {
        component_id: tc(),
        parameters: BTreeMap::from([(key, RawCbor::new(h(value)).unwrap())]),
    };
    let digest_cbor = format!("822f 5820 {}", "ab".repeat(32));
    let bad_digests = [
        // SUIT_Digest not wrapped in a bstr (the shape older tools wrote).
        digest_cbor.clone(),
        // A bstr holding something else.
        "43 010203".to_string(),
        // A bstr holding a digest and trailing bytes.
        format!("5825 {digest_cbor} 00"),
        // Text.
        "63 616263".to_string(),
    ];
    for value in bad_digests {
        assert!(
            matches!(
                claims(3, &value).image_digest(),
                Err(SuitError::Malformed { .. })
            ),
            "{value}"
        );
    }
    for value in ["20", "63 616263", "41 14", "f5"] {
        assert!(
            matches!(
                claims(14, value).image_size(),
                Err(SuitError::Malformed { .. })
            ),
            "{value}"
        );
    }
    // Absent parameters are None, not errors.
    let other = claims(1, "50 00112233445566778899aabbccddeeff");
    assert_eq!(other.image_digest(), Ok(None));
    assert_eq!(other.image_size(), Ok(None));
}
