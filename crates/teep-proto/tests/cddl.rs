//! Every message our encoder emits validates against the draft's CDDL
//! (tests/vectors/teep/teep-protocol.cddl, and the pre-26 file for the old numbering),
//! checked with the `cddl` crate against each message type's own rule.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use proptest::prelude::*;
use teep_proto::{Message, Numbering};

/// Definitions the TEEP CDDL imports from the SUIT drafts, reduced to what TEEP relies on.
const SUIT_SHIM: &str = r#"
; --- shim: external names (draft-ietf-suit-manifest, -suit-report, -suit-mti) ---
SUIT_Envelope = any
SUIT_Component_Identifier = [* bstr]
SUIT_Report_Protected = any
SUIT_Report_Unprotected = any
system-property-claims = { 0 => SUIT_Component_Identifier, + int => any }
suit-sha256-esp256-ecdh-a128ctr = [-16, -9, -29, -65534]
suit-sha256-ed25519-ecdh-a128ctr = [-16, -19, -29, -65534]
suit-sha256-esp256-ecdh-a128gcm = [-16, -9, -29, 1]
suit-sha256-ed25519-ecdh-chacha-poly = [-16, -19, -29, 24]
"#;

/// The draft's CDDL with one mechanical rewrite, a workaround for a bug of cddl 0.10.7:
/// a map key written as a rule name (`token => bstr`, with `token = 19`) never matches an
/// integer key (even the draft's own examples fail), while the literal (`19 => bstr`)
/// does. So every `name =>` whose rule is `name = <integer>` is replaced by the integer.
/// Everything else (types, `.size`, `.bits`, `.cbor`, occurrences, choices) is left to
/// the crate.
fn cddl_text(numbering: Numbering) -> String {
    let rel = match numbering {
        Numbering::Draft26 => "teep-protocol.cddl",
        Numbering::Pre26 => "pre-26-numbering/teep-protocol.cddl",
    };
    let path = format!(
        "{}/../../tests/vectors/teep/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut text = std::fs::read_to_string(path).unwrap();
    let labels: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(" = ")?;
            let value = value.split(';').next()?.trim();
            (value.parse::<u64>().is_ok() && !name.contains(' '))
                .then(|| (name.to_string(), value.to_string()))
        })
        .collect();
    for (name, value) in labels {
        text = text.replace(&format!(" {name} =>"), &format!(" {value} =>"));
    }
    text
}

/// Validates `bytes` against the rule of `message`'s type: the crate validates against the
/// first rule of a document, so a `root` rule naming the message type comes first.
fn validate(numbering: Numbering, message: &Message, bytes: &[u8]) -> Result<(), String> {
    let rule = message.message_type().name();
    let doc = format!("root = {rule}\n{}\n{SUIT_SHIM}", cddl_text(numbering));
    cddl::validate_cbor_from_slice(&doc, bytes, None).map_err(|e| e.to_string())
}

fn check(numbering: Numbering, m: &Message) {
    let bytes = m.encode(numbering).unwrap();
    validate(numbering, m, &bytes).unwrap_or_else(|e| panic!("{m:?} {numbering:?}: {e}"));
}

#[test]
fn vectors_validate() {
    for (numbering, name, bytes) in common::all_vectors() {
        let m = teep_proto::decode_unsigned(&bytes, numbering).unwrap();
        let ours = m.encode(numbering).unwrap();
        validate(numbering, &m, &ours).unwrap_or_else(|e| panic!("{name} {numbering:?}: {e}"));
    }
}

/// One message per type with EVERY field set, in both numberings.
#[test]
fn constructed_messages_with_every_field_validate() {
    use teep_proto::*;
    let id = ComponentId(vec![b"TEEP-Device".to_vec(), vec![0x8d; 16]]);
    let report = vec![0xa1, 0x02, 0x41, 0x00];
    let raw = |b: &[u8]| RawCbor::new(b.to_vec()).unwrap();
    let messages = [
        Message::QueryRequest(QueryRequest {
            token: Some(vec![1; 8]),
            supported_freshness_mechanisms: Some(vec![
                FreshnessMechanism::NONCE,
                FreshnessMechanism::TIMESTAMP,
            ]),
            challenge: Some(vec![2; 512]),
            versions: Some(vec![0, u32::MAX]),
            attestation_payload_format: Some("application/eat+cwt".into()),
            attestation_payload: Some(vec![0xd2, 0x84]),
            suit_reports: Some(vec![report.clone()]),
            extensions: Extensions::new(),
            supported_teep_cipher_suites: vec![
                CipherSuite::SIGN1_ESP256,
                CipherSuite::SIGN1_ED25519,
            ],
            supported_suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
            data_item_requested: DataItemRequested(15),
        }),
        Message::QueryResponse(QueryResponse {
            token: Some(vec![3; 64]),
            selected_version: Some(0),
            attestation_payload_format: Some("application/eat+cwt".into()),
            attestation_payload: Some(vec![]),
            suit_reports: Some(vec![report.clone(), report.clone()]),
            tc_list: Some(vec![SystemPropertyClaims {
                component_id: id.clone(),
                parameters: [
                    (3, raw(&[0x41, 0x00])),
                    (14, raw(&[0x14])),
                    (-1, raw(&[0xf5])),
                ]
                .into(),
            }]),
            requested_tc_list: Some(vec![
                RequestedTcInfo {
                    component_id: id.clone(),
                    tc_manifest_sequence_number: Some(7),
                    have_binary: Some(true),
                },
                RequestedTcInfo {
                    component_id: ComponentId(vec![]),
                    tc_manifest_sequence_number: None,
                    have_binary: Some(false),
                },
            ]),
            unneeded_manifest_list: Some(vec![id.clone()]),
            ext_list: Some(vec![1, 2]),
            extensions: Extensions::new(),
        }),
        Message::Update(Update {
            token: Some(vec![4; 16]),
            unneeded_manifest_list: Some(vec![id.clone()]),
            manifest_list: Some(vec![vec![0xa2, 0x02, 0x40, 0x03, 0x40]]),
            attestation_payload_format: Some("application/ear+cwt".into()),
            attestation_payload: Some(vec![0x00]),
            err_code: Some(ErrCode::AttestationRequired),
            err_msg: Some("é".repeat(64)),
            err_lang: Some("en-US".into()),
            extensions: Extensions::new(),
        }),
        Message::Success(Success {
            token: Some(vec![5; 8]),
            msg: Some("installed".into()),
            suit_reports: Some(vec![report.clone()]),
            extensions: Extensions::new(),
        }),
        Message::Error(ErrorMessage {
            token: Some(vec![6; 8]),
            err_msg: Some("x".repeat(128)),
            err_lang: Some("a".repeat(35)),
            supported_teep_cipher_suites: Some(vec![CipherSuite::SIGN1_ED25519]),
            supported_freshness_mechanisms: Some(vec![FreshnessMechanism::NONCE]),
            supported_suit_cose_profiles: Some(vec![SuitCoseProfile::SHA256_ESP256_ECDH_A128GCM]),
            challenge: Some(vec![7; 8]),
            versions: Some(vec![0]),
            suit_reports: Some(vec![report]),
            extensions: Extensions::new(),
            err_code: ErrCode::ManifestProcessingFailed,
        }),
    ];
    for numbering in [Numbering::Draft26, Numbering::Pre26] {
        for m in &messages {
            check(numbering, m);
            assert_eq!(
                &decode_unsigned(&m.encode(numbering).unwrap(), numbering).unwrap(),
                m
            );
        }
    }
}

/// The validator is not vacuous: it rejects what the CDDL forbids.
#[test]
fn validator_rejects_cddl_violations() {
    let m =
        teep_proto::decode_unsigned(&common::vector("success.hex"), Numbering::Draft26).unwrap();
    // Success with a 7-byte token, and an Error with err-code 0 (hand-made bytes: our
    // encoder refuses both).
    let short_token = hex::decode("8204a1134700010203040506").unwrap();
    assert!(validate(Numbering::Draft26, &m, &short_token).is_err());
    let e = Message::Error(teep_proto::ErrorMessage::new(
        teep_proto::ErrCode::PermanentError,
    ));
    assert!(validate(Numbering::Draft26, &e, &hex::decode("8305a000").unwrap()).is_err());
    assert!(validate(Numbering::Draft26, &e, &hex::decode("8305a001").unwrap()).is_ok());
}

/// Spec §16.4, pinned: an empty tc-list is what an Agent with no TCs must send when the
/// trusted-components bit is set; the CDDL's `[+ ...]` rejects it. This is our one
/// deliberate deviation from the CDDL (see `validate::list_len`).
#[test]
fn empty_tc_list_is_the_documented_deviation() {
    let m = Message::QueryResponse(teep_proto::QueryResponse {
        tc_list: Some(vec![]),
        ..Default::default()
    });
    let bytes = m.encode(Numbering::Draft26).unwrap();
    assert!(validate(Numbering::Draft26, &m, &bytes).is_err());
    assert_eq!(
        teep_proto::decode_unsigned(&bytes, Numbering::Draft26).unwrap(),
        m
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_messages_validate((numbering, m) in common::numbered_message(true)) {
        let bytes = m.encode(numbering).unwrap();
        prop_assert!(validate(numbering, &m, &bytes).is_ok(), "{:?}", validate(numbering, &m, &bytes));
    }
}
