//! Malformed and forged inputs: a table of bytes, each rejected with its own typed error
//! (variant, fields and byte offset compared exactly, never a string).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use teep_cbor::CborErrorKind as Cbor;
use teep_proto::{
    ErrCode, Field, MalformedKind as K, Message, Numbering, ProtoError, RawCbor, Violation,
    decode_unsigned,
};

/// Hex with spaces allowed, for readable rows.
fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

const TOKEN16: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
/// Positional tail of a valid QueryRequest: suites [[[18,-9]]], profiles
/// [[-16,-9,-29,-65534]], data-item-requested 3.
const QR_SUITES: &str = "81 81 82 12 28";
const QR_PROFILES: &str = "81 84 2f 28 38 1c 39 ff fd";

fn err(offset: usize, kind: K) -> ProtoError {
    ProtoError::Malformed { offset, kind }
}

fn v(offset: usize, violation: Violation) -> ProtoError {
    err(offset, K::Violation(violation))
}

fn size(offset: usize, field: Field, len: usize) -> ProtoError {
    v(offset, Violation::Size { field, len })
}

fn ty(offset: usize, field: Field) -> ProtoError {
    err(offset, K::UnexpectedType { field })
}

fn missing(offset: usize, field: Field) -> ProtoError {
    err(offset, K::MissingField { field })
}

#[test]
fn malformed_table() {
    let success = h(&format!("82 04 a1 13 50 {TOKEN16}"));
    let long_msg = format!("78 81 {}", "61".repeat(129));
    let long_lang = format!("78 24 {}", "61".repeat(36));
    let deep = format!("82 04 a1 00 {} 00", "81".repeat(33));
    let big_token = format!("82 04 a1 13 58 41 {}", "00".repeat(65));
    let rows: Vec<(&str, Numbering, Vec<u8>, ProtoError)> = vec![
        (
            "empty input",
            Numbering::Draft26,
            vec![],
            err(0, K::Cbor(Cbor::Truncated)),
        ),
        (
            "truncated token",
            Numbering::Draft26,
            success[..success.len() - 1].to_vec(),
            err(4, K::Cbor(Cbor::Truncated)),
        ),
        (
            "trailing byte",
            Numbering::Draft26,
            [&success[..], &[0x00]].concat(),
            err(21, K::Cbor(Cbor::TrailingBytes)),
        ),
        (
            "duplicate token label",
            Numbering::Draft26,
            h("82 04 a2 13 48 0001020304050607 13 48 0001020304050607"),
            err(13, K::Cbor(Cbor::DuplicateMapKey)),
        ),
        (
            "reserved additional info",
            Numbering::Draft26,
            h("82 04 bc"),
            err(2, K::Cbor(Cbor::ReservedAdditionalInfo)),
        ),
        (
            "stray break",
            Numbering::Draft26,
            h("82 04 ff"),
            err(2, K::Cbor(Cbor::UnexpectedBreak)),
        ),
        (
            "invalid UTF-8 in err-msg",
            Numbering::Draft26,
            h("83 05 a1 0b 62 c3 28 01"),
            err(5, K::Cbor(Cbor::InvalidUtf8)),
        ),
        (
            "nesting too deep",
            Numbering::Draft26,
            h(&deep),
            err(34, K::Cbor(Cbor::TooDeep)),
        ),
        (
            "message is a map",
            Numbering::Draft26,
            h("a0"),
            ty(0, Field::Message),
        ),
        (
            "empty message array",
            Numbering::Draft26,
            h("80"),
            missing(1, Field::Type),
        ),
        (
            "type is text",
            Numbering::Draft26,
            h("82 61 31 a0"),
            ty(1, Field::Type),
        ),
        (
            "unknown message type 7",
            Numbering::Draft26,
            h("82 07 a0"),
            err(1, K::UnknownMessageType(7)),
        ),
        (
            "reserved message type 0",
            Numbering::Draft26,
            h("82 00 a0"),
            err(1, K::UnknownMessageType(0)),
        ),
        (
            "-26 success type under pre-26",
            Numbering::Pre26,
            h("82 04 a0"),
            err(1, K::UnknownMessageType(4)),
        ),
        (
            "Error without err-code",
            Numbering::Draft26,
            h("82 05 a0"),
            missing(3, Field::ErrCode),
        ),
        (
            "options missing",
            Numbering::Draft26,
            h("81 04"),
            missing(2, Field::Options),
        ),
        (
            "options not a map",
            Numbering::Draft26,
            h("82 04 80"),
            ty(2, Field::Options),
        ),
        (
            "negative option label",
            Numbering::Draft26,
            h("82 04 a1 20 00"),
            ty(3, Field::OptionLabel),
        ),
        (
            "Success with a third element",
            Numbering::Draft26,
            h("83 04 a0 00"),
            err(
                0,
                K::ArrayLength {
                    field: Field::Message,
                    expected: 2,
                    found: 3,
                },
            ),
        ),
        (
            "indefinite Success with a third element",
            Numbering::Draft26,
            h("9f 04 a0 00 ff"),
            err(
                0,
                K::ArrayLength {
                    field: Field::Message,
                    expected: 2,
                    found: 3,
                },
            ),
        ),
        (
            "token of 7 bytes",
            Numbering::Draft26,
            h("82 04 a1 13 47 00010203040506"),
            size(4, Field::Token, 7),
        ),
        (
            "token of 65 bytes",
            Numbering::Draft26,
            h(&big_token),
            size(4, Field::Token, 65),
        ),
        (
            "token is text",
            Numbering::Draft26,
            h("82 04 a1 13 62 61 61"),
            ty(4, Field::Token),
        ),
        (
            "token is tagged",
            Numbering::Draft26,
            h("82 04 a1 13 d8 40 48 0001020304050607"),
            ty(4, Field::Token),
        ),
        (
            "err-msg of 129 bytes",
            Numbering::Draft26,
            h(&format!("83 05 a1 0b {long_msg} 01")),
            size(4, Field::ErrMsg, 129),
        ),
        (
            "err-lang of 36 bytes",
            Numbering::Draft26,
            h(&format!("83 05 a1 15 {long_lang} 01")),
            size(4, Field::ErrLang, 36),
        ),
        (
            "empty msg",
            Numbering::Draft26,
            h("82 04 a1 0a 60"),
            size(4, Field::Msg, 0),
        ),
        (
            "empty challenge",
            Numbering::Draft26,
            h("83 05 a1 02 40 01"),
            size(4, Field::Challenge, 0),
        ),
        (
            "Error err-code 0",
            Numbering::Draft26,
            h("83 05 a0 00"),
            v(3, Violation::ReservedErrCode),
        ),
        (
            "Error err-code 0 (pre-26)",
            Numbering::Pre26,
            h("83 06 a0 00"),
            v(3, Violation::ReservedErrCode),
        ),
        (
            "Update err-code 0",
            Numbering::Draft26,
            h("82 03 a1 16 00"),
            v(4, Violation::ReservedErrCode),
        ),
        (
            "err-code is text",
            Numbering::Draft26,
            h("83 05 a0 61 31"),
            ty(3, Field::ErrCode),
        ),
        (
            "QueryRequest without data-item-requested",
            Numbering::Draft26,
            h(&format!("84 01 a0 {QR_SUITES} {QR_PROFILES}")),
            missing(17, Field::DataItemRequested),
        ),
        (
            "empty supported-teep-cipher-suites",
            Numbering::Draft26,
            h(&format!("85 01 a0 80 {QR_PROFILES} 03")),
            v(
                3,
                Violation::EmptyList {
                    field: Field::SupportedTeepCipherSuites,
                },
            ),
        ),
        (
            "cipher-suite operation of 3 elements",
            Numbering::Draft26,
            h(&format!("85 01 a0 81 81 83 12 28 00 {QR_PROFILES} 03")),
            err(
                5,
                K::ArrayLength {
                    field: Field::CipherOperation,
                    expected: 2,
                    found: 3,
                },
            ),
        ),
        (
            "indefinite cipher-suite operation of 1 element",
            Numbering::Draft26,
            h(&format!("85 01 a0 81 81 9f 12 ff {QR_PROFILES} 03")),
            err(
                5,
                K::ArrayLength {
                    field: Field::CipherOperation,
                    expected: 2,
                    found: 1,
                },
            ),
        ),
        (
            "indefinite cipher-suite operation of 3 elements",
            Numbering::Draft26,
            h(&format!("85 01 a0 81 81 9f 12 28 00 ff {QR_PROFILES} 03")),
            err(
                5,
                K::ArrayLength {
                    field: Field::CipherOperation,
                    expected: 2,
                    found: 3,
                },
            ),
        ),
        (
            "negative cose-type",
            Numbering::Draft26,
            h(&format!("85 01 a0 81 81 82 20 28 {QR_PROFILES} 03")),
            ty(6, Field::CipherOperation),
        ),
        (
            "SUIT COSE profile of 3 elements",
            Numbering::Draft26,
            h(&format!("85 01 a0 {QR_SUITES} 81 83 2f 28 38 1c 03")),
            err(
                9,
                K::ArrayLength {
                    field: Field::SuitCoseProfile,
                    expected: 4,
                    found: 3,
                },
            ),
        ),
        (
            "version over 4 bytes",
            Numbering::Draft26,
            h(&format!(
                "85 01 a1 03 81 1b 0000000100000000 {QR_SUITES} {QR_PROFILES} 03"
            )),
            err(
                5,
                K::OutOfRange {
                    field: Field::Version,
                },
            ),
        ),
        (
            "empty versions",
            Numbering::Draft26,
            h(&format!("85 01 a1 03 80 {QR_SUITES} {QR_PROFILES} 03")),
            v(
                4,
                Violation::EmptyList {
                    field: Field::Versions,
                },
            ),
        ),
        (
            "negative data-item-requested",
            Numbering::Draft26,
            h(&format!("85 01 a0 {QR_SUITES} {QR_PROFILES} 20")),
            ty(17, Field::DataItemRequested),
        ),
        (
            "selected-version over 4 bytes",
            Numbering::Draft26,
            h("82 02 a1 05 1b 0000000100000000"),
            err(
                4,
                K::OutOfRange {
                    field: Field::SelectedVersion,
                },
            ),
        ),
        (
            "tc-list entry without component id",
            Numbering::Draft26,
            h("82 02 a1 07 81 a1 03 40"),
            missing(5, Field::SystemComponentId),
        ),
        (
            // system-property-claims = { 0 => id, + $$SUIT_Parameters }: one is required.
            "tc-list entry with a component id and no SUIT parameter",
            Numbering::Draft26,
            h("82 02 a1 07 81 a1 00 81 41 01"),
            v(5, Violation::NoSuitParameter),
        ),
        (
            "tc-list entry without SUIT parameter, indefinite map, second entry",
            Numbering::Draft26,
            h("82 02 a1 07 82 a2 00 80 0e 01 bf 00 80 ff"),
            v(10, Violation::NoSuitParameter),
        ),
        (
            "requested-tc-info with unknown key",
            Numbering::Draft26,
            h("82 02 a1 0d 81 a2 0f 80 00 00"),
            err(
                8,
                K::UnknownKey {
                    field: Field::RequestedTcInfo,
                    label: 0,
                },
            ),
        ),
        (
            "requested-tc-info without component-id",
            Numbering::Draft26,
            h("82 02 a1 0d 81 a1 10 01"),
            missing(5, Field::ComponentId),
        ),
        (
            "have-binary not a bool",
            Numbering::Draft26,
            h("82 02 a1 0d 81 a2 0f 80 11 01"),
            ty(9, Field::HaveBinary),
        ),
        (
            "have-binary without sequence number",
            Numbering::Draft26,
            h("82 02 a1 0d 81 a2 0f 80 11 f5"),
            v(5, Violation::HaveBinaryWithoutSequenceNumber),
        ),
        (
            // Pre-26: requested-tc-list 14, component-id 16, have-binary 18.
            "have-binary without sequence number, pre-26 labels",
            Numbering::Pre26,
            h("82 02 a1 0e 81 a2 10 80 12 f5"),
            v(5, Violation::HaveBinaryWithoutSequenceNumber),
        ),
        (
            "empty requested-tc-list",
            Numbering::Draft26,
            h("82 02 a1 0d 80"),
            v(
                4,
                Violation::EmptyList {
                    field: Field::RequestedTcList,
                },
            ),
        ),
        (
            "empty manifest-list",
            Numbering::Draft26,
            h("82 03 a1 09 80"),
            v(
                4,
                Violation::EmptyList {
                    field: Field::ManifestList,
                },
            ),
        ),
        (
            "manifest not a bstr",
            Numbering::Draft26,
            h("82 03 a1 09 81 01"),
            ty(5, Field::ListItem),
        ),
        (
            "empty suit-reports",
            Numbering::Draft26,
            h("82 04 a1 12 80"),
            v(
                4,
                Violation::EmptyList {
                    field: Field::SuitReports,
                },
            ),
        ),
    ];
    assert!(rows.len() >= 30);
    for (name, numbering, bytes, expected) in rows {
        // Every malformed message is answered with ERR_PERMANENT_ERROR.
        assert_eq!(expected.err_code(), ErrCode::PermanentError, "{name}");
        assert_eq!(decode_unsigned(&bytes, numbering), Err(expected), "{name}");
    }
}

/// The draft does not require deterministic encoding, so a peer may send indefinite
/// lengths and non-preferred heads: they are ACCEPTED and decode to the same message as
/// the preferred encoding.
#[test]
fn indefinite_lengths_and_long_heads_are_accepted() {
    let preferred = h(&format!("82 04 a2 13 50 {TOKEN16} 0a 62 6f 6b"));
    let expected = decode_unsigned(&preferred, Numbering::Draft26).unwrap();
    // Indefinite array, map, text (two chunks) and bytes (two chunks).
    let indefinite = h(&format!(
        "9f 04 bf 0a 7f 61 6f 61 6b ff 13 5f 48 {} 48 {} ff ff ff",
        &TOKEN16[..16],
        &TOKEN16[16..]
    ));
    assert_eq!(
        decode_unsigned(&indefinite, Numbering::Draft26).unwrap(),
        expected
    );
    // Non-preferred heads: type 4 as 0x18 0x04, label 10 as 0x19 0x000a.
    let long_heads = h(&format!("82 18 04 a2 19 000a 62 6f 6b 13 50 {TOKEN16}"));
    assert_eq!(
        decode_unsigned(&long_heads, Numbering::Draft26).unwrap(),
        expected
    );
    // We re-emit the preferred form.
    assert_eq!(expected.encode(Numbering::Draft26).unwrap(), preferred);
}

/// Spec §16.4: tc-list, ext-list and unneeded-manifest-list are `[+ ...]` in the CDDL but
/// must be sent when their data-item bit is set even if there is nothing to list. We
/// accept (and emit) them empty; every other `[+ ...]` list must be non-empty.
#[test]
fn empty_lists_of_spec_16_4_are_accepted() {
    // QueryResponse { tc-list: [], ext-list: [], unneeded-manifest-list: [] }
    let bytes = h("82 02 a3 07 80 08 80 0e 80");
    let Message::QueryResponse(m) = decode_unsigned(&bytes, Numbering::Draft26).unwrap() else {
        panic!("not a QueryResponse")
    };
    assert_eq!(m.tc_list, Some(vec![]));
    assert_eq!(m.ext_list, Some(vec![]));
    assert_eq!(m.unneeded_manifest_list, Some(vec![]));
    let re = Message::QueryResponse(m)
        .encode(Numbering::Draft26)
        .unwrap();
    assert_eq!(re, bytes);
    // Update { unneeded-manifest-list: [] }
    assert!(decode_unsigned(&h("82 03 a1 0e 80"), Numbering::Draft26).is_ok());
}

/// Unknown labels are tolerated and kept; a label defined for another message type is
/// unknown in this one.
#[test]
fn unknown_labels_are_kept() {
    // Success { 0: h'01', 1 (cipher suites, not a Success option): [], 99: "x", token }
    let bytes = h(&format!(
        "82 04 a4 13 50 {TOKEN16} 00 41 01 01 80 18 63 61 78"
    ));
    let Message::Success(m) = decode_unsigned(&bytes, Numbering::Draft26).unwrap() else {
        panic!("not a Success")
    };
    let labels: Vec<u64> = m.extensions.keys().copied().collect();
    assert_eq!(labels, vec![0, 1, 99]);
    assert_eq!(m.extensions[&99].as_bytes(), &[0x61, 0x78]);
    assert_eq!(
        Message::Success(m).encode(Numbering::Draft26).unwrap(),
        bytes
    );
}

/// The encoder refuses what the decoder rejects, with the same violation.
#[test]
fn encoder_refuses_invalid_messages() {
    let refuse = |m: Message, n: Numbering, violation: Violation| {
        assert_eq!(m.encode(n), Err(ProtoError::Invalid(violation)), "{m:?}");
    };
    let success = |token: Vec<u8>| {
        Message::Success(teep_proto::Success {
            token: Some(token),
            ..Default::default()
        })
    };
    refuse(
        success(vec![0; 7]),
        Numbering::Draft26,
        Violation::Size {
            field: Field::Token,
            len: 7,
        },
    );
    refuse(
        success(vec![0; 65]),
        Numbering::Draft26,
        Violation::Size {
            field: Field::Token,
            len: 65,
        },
    );
    refuse(
        Message::Success(teep_proto::Success {
            msg: Some("x".repeat(129)),
            ..Default::default()
        }),
        Numbering::Draft26,
        Violation::Size {
            field: Field::Msg,
            len: 129,
        },
    );
    refuse(
        Message::QueryRequest(teep_proto::QueryRequest::default()),
        Numbering::Draft26,
        Violation::EmptyList {
            field: Field::SupportedTeepCipherSuites,
        },
    );
    refuse(
        Message::Error(teep_proto::ErrorMessage::new(ErrCode::Unknown(0))),
        Numbering::Draft26,
        Violation::ReservedErrCode,
    );
    refuse(
        Message::Error(teep_proto::ErrorMessage::new(ErrCode::Unknown(11))),
        Numbering::Draft26,
        Violation::KnownCodeAsUnknown(11),
    );
    refuse(
        Message::Error(teep_proto::ErrorMessage::new(ErrCode::Unknown(17))),
        Numbering::Pre26,
        Violation::KnownCodeAsUnknown(17),
    );
    let mut with_ext = teep_proto::Success::default();
    with_ext
        .extensions
        .insert(19, RawCbor::new(vec![0x00]).unwrap());
    refuse(
        Message::Success(with_ext.clone()),
        Numbering::Draft26,
        Violation::ExtensionLabelTaken(19),
    );
    // Label 19 is suit-reports before -26, an option Success also defines.
    refuse(
        Message::Success(with_ext),
        Numbering::Pre26,
        Violation::ExtensionLabelTaken(19),
    );
    let claims = teep_proto::SystemPropertyClaims {
        component_id: teep_proto::ComponentId(vec![vec![1]]),
        parameters: [(0, RawCbor::new(vec![0x00]).unwrap())].into(),
    };
    refuse(
        Message::QueryResponse(teep_proto::QueryResponse {
            tc_list: Some(vec![claims]),
            ..Default::default()
        }),
        Numbering::Draft26,
        Violation::ParameterKeyZero,
    );
    let bare = teep_proto::SystemPropertyClaims {
        component_id: teep_proto::ComponentId(vec![vec![1]]),
        parameters: Default::default(),
    };
    refuse(
        Message::QueryResponse(teep_proto::QueryResponse {
            tc_list: Some(vec![bare]),
            ..Default::default()
        }),
        Numbering::Draft26,
        Violation::NoSuitParameter,
    );
    refuse(
        Message::QueryResponse(teep_proto::QueryResponse {
            requested_tc_list: Some(vec![teep_proto::RequestedTcInfo {
                component_id: teep_proto::ComponentId(vec![vec![1]]),
                tc_manifest_sequence_number: None,
                have_binary: Some(true),
            }]),
            ..Default::default()
        }),
        Numbering::Draft26,
        Violation::HaveBinaryWithoutSequenceNumber,
    );
}

#[test]
fn raw_cbor_must_be_one_item() {
    assert!(RawCbor::new(vec![0x01]).is_ok());
    assert_eq!(
        RawCbor::new(vec![0x01, 0x02]),
        Err(ProtoError::Malformed {
            offset: 1,
            kind: K::Cbor(Cbor::TrailingBytes)
        })
    );
    assert_eq!(
        RawCbor::new(vec![]),
        Err(ProtoError::Malformed {
            offset: 0,
            kind: K::Cbor(Cbor::Truncated)
        })
    );
}

/// Every decode failure maps onto ERR_PERMANENT_ERROR; negotiation failures onto their
/// own codes.
#[test]
fn err_code_mapping_of_codec_and_negotiation_errors() {
    assert_eq!(
        decode_unsigned(&h("82 07 a0"), Numbering::Draft26)
            .unwrap_err()
            .err_code(),
        ErrCode::PermanentError
    );
    let qr = teep_proto::QueryRequest {
        versions: Some(vec![1, 2]),
        supported_teep_cipher_suites: vec![teep_proto::CipherSuite::SIGN1_ESP256],
        ..Default::default()
    };
    let e = qr.select_version(&[0]).unwrap_err();
    assert_eq!(
        e,
        ProtoError::UnsupportedVersion {
            offered: vec![1, 2]
        }
    );
    assert_eq!(e.err_code(), ErrCode::UnsupportedMsgVersion);
    assert_eq!(qr.select_version(&[0, 2]), Ok(2));
    let e = qr
        .select_cipher_suite(&[teep_proto::CipherSuite::SIGN1_ED25519])
        .unwrap_err();
    assert_eq!(e, ProtoError::UnsupportedCipherSuites);
    assert_eq!(e.err_code(), ErrCode::UnsupportedCipherSuites);
    let absent = teep_proto::QueryRequest::default();
    assert_eq!(
        absent.select_version(&[0]),
        Ok(0),
        "absent versions mean [0]"
    );
}

mod forged {
    //! Forged or unacceptable COSE envelopes around valid TEEP payloads: each rejected by
    //! `Unverified::parse` + `verify` with its own typed error and mapped onto its err-code.

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd,
    };
    use teep_cose::coset::{
        CborSerializable, CoseSign1Builder, HeaderBuilder, RegisteredLabelWithPrivate,
        TaggedCborSerializable,
    };
    use teep_cose::{
        CertificateError, CoseError, CryptoProvider, Curve, PrivateKey, RustCryptoProvider,
        SignOptions, Signer, TrustStore, VerifyContext,
    };
    use teep_proto::{ErrCode, MalformedKind, Message, Numbering, ProtoError, Success};

    use crate::common::verify as verify_message;

    /// 2025-06-01T00:00:00Z.
    const NOW: u64 = 1_748_736_000;

    fn payload() -> Vec<u8> {
        Message::Success(Success {
            token: Some(vec![7; 16]),
            ..Default::default()
        })
        .encode(Numbering::Draft26)
        .unwrap()
    }

    fn signer(key: &PrivateKey) -> Box<dyn Signer> {
        RustCryptoProvider
            .signer(key, key.default_algorithm())
            .unwrap()
    }

    /// A COSE_Sign1_Tagged built by hand: protected `alg` label, unprotected kid, any
    /// extra protected parameters, signed by `key` over whatever the headers say.
    fn hand_made(
        key: &PrivateKey,
        alg: i64,
        kid: Option<Vec<u8>>,
        crit: Option<i64>,
        payload: Vec<u8>,
    ) -> Vec<u8> {
        let mut protected =
            HeaderBuilder::new().algorithm_label(RegisteredLabelWithPrivate::PrivateUse(alg));
        if let Some(label) = crit {
            protected = protected
                .add_critical_label(RegisteredLabelWithPrivate::PrivateUse(label))
                .value(label, 1.into());
        }
        let mut unprotected = HeaderBuilder::new();
        if let Some(kid) = kid {
            unprotected = unprotected.key_id(kid);
        }
        let s = signer(key);
        CoseSign1Builder::new()
            .protected(protected.build())
            .unprotected(unprotected.build())
            .payload(payload)
            .create_signature(b"", |tbs| s.sign(tbs).unwrap())
            .build()
            .to_tagged_vec()
            .unwrap()
    }

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        der: Vec<u8>,
    }

    fn ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2030, 1, 1);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(key: &PrivateKey, ca: &Ca, from: i32, until: i32) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "TAM");
        params.not_before = date_time_ymd(from, 1, 1);
        params.not_after = date_time_ymd(until, 1, 1);
        let public = KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
        params
            .signed_by(&public, &ca.issuer)
            .unwrap()
            .der()
            .to_vec()
    }

    fn with_chain(key: &PrivateKey, chain: Vec<Vec<u8>>) -> Vec<u8> {
        let opts = SignOptions {
            x5chain: chain,
            kid: false,
            ..SignOptions::default()
        };
        teep_proto::sign_message(
            &teep_proto::decode_unsigned(&payload(), Numbering::Draft26).unwrap(),
            Numbering::Draft26,
            signer(key).as_ref(),
            &opts,
        )
        .unwrap()
    }

    type Check = fn(&ProtoError) -> bool;

    #[test]
    fn forged_cose_table() {
        let tam = PrivateKey::generate(Curve::Ed25519).unwrap();
        let other = PrivateKey::generate(Curve::Ed25519).unwrap();
        let p256 = PrivateKey::generate(Curve::P256).unwrap();
        let tam_kid = tam.public_key().thumbprint().to_vec();
        let mut keys = TrustStore::new();
        keys.add_key(tam.public_key().clone());
        keys.add_key(p256.public_key().clone());
        let root = ca("root");
        let stranger = ca("stranger");
        let mut cas = TrustStore::new();
        cas.add_ca_der(root.der.clone()).unwrap();

        let good = teep_proto::sign_message(
            &teep_proto::decode_unsigned(&payload(), Numbering::Draft26).unwrap(),
            Numbering::Draft26,
            signer(&tam).as_ref(),
            &SignOptions::default(),
        )
        .unwrap();
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;

        let rows: Vec<(&str, Vec<u8>, &TrustStore, Check, ErrCode)> = vec![
            (
                "signature byte flipped",
                flipped,
                &keys,
                |e| *e == ProtoError::Cose(CoseError::BadSignature),
                ErrCode::PermanentError,
            ),
            (
                "signed by another key, kid of the trusted key",
                hand_made(&other, -19, Some(tam_kid.clone()), None, payload()),
                &keys,
                |e| *e == ProtoError::Cose(CoseError::BadSignature),
                ErrCode::PermanentError,
            ),
            (
                "signed by an unknown key with its own kid",
                hand_made(
                    &other,
                    -19,
                    Some(other.public_key().thumbprint().to_vec()),
                    None,
                    payload(),
                ),
                &keys,
                |e| *e == ProtoError::Cose(CoseError::UntrustedSigner),
                ErrCode::BadCertificate,
            ),
            (
                "alg ES256 on an Ed25519 key",
                hand_made(&tam, -7, Some(tam_kid.clone()), None, payload()),
                &keys,
                |e| *e == ProtoError::Cose(CoseError::AlgorithmKeyMismatch { alg: -7 }),
                ErrCode::PermanentError,
            ),
            (
                "unknown algorithm",
                hand_made(&tam, -65000, Some(tam_kid.clone()), None, payload()),
                &keys,
                |e| *e == ProtoError::Cose(CoseError::UnsupportedAlgorithm(-65000)),
                ErrCode::UnsupportedCipherSuites,
            ),
            (
                "unknown critical header",
                hand_made(&tam, -19, Some(tam_kid.clone()), Some(-70000), payload()),
                &keys,
                |e| matches!(e, ProtoError::Cose(CoseError::UnknownCriticalHeader(_))),
                ErrCode::PermanentError,
            ),
            (
                "bare TEEP message, no COSE",
                payload(),
                &keys,
                |e| matches!(e, ProtoError::Cose(CoseError::Malformed(_))),
                ErrCode::PermanentError,
            ),
            (
                "validly signed malformed payload",
                hand_made(
                    &tam,
                    -19,
                    Some(tam_kid.clone()),
                    None,
                    vec![0x82, 0x07, 0xa0],
                ),
                &keys,
                |e| {
                    *e == ProtoError::Malformed {
                        offset: 1,
                        kind: MalformedKind::UnknownMessageType(7),
                    }
                },
                ErrCode::PermanentError,
            ),
            (
                "expired certificate",
                with_chain(&tam, vec![leaf(&tam, &root, 2020, 2024)]),
                &cas,
                |e| *e == ProtoError::Cose(CoseError::Certificate(CertificateError::Expired)),
                ErrCode::CertificateExpired,
            ),
            (
                "certificate not yet valid",
                with_chain(&tam, vec![leaf(&tam, &root, 2026, 2028)]),
                &cas,
                |e| *e == ProtoError::Cose(CoseError::Certificate(CertificateError::NotYetValid)),
                ErrCode::CertificateExpired,
            ),
            (
                "chain to an unknown CA",
                with_chain(&tam, vec![leaf(&tam, &stranger, 2024, 2027)]),
                &cas,
                |e| *e == ProtoError::Cose(CoseError::Certificate(CertificateError::UnknownIssuer)),
                ErrCode::BadCertificate,
            ),
        ];
        for (name, bytes, trust, check, code) in rows {
            let cx = VerifyContext {
                now: Some(NOW),
                ..VerifyContext::new(&RustCryptoProvider, trust)
            };
            let err = verify_message(&bytes, Numbering::Draft26, &cx).unwrap_err();
            assert!(check(&err), "{name}: {err:?}");
            assert_eq!(err.err_code(), code, "{name}");
        }
        // The untouched message and a good chain verify, so the rows fail for their reason.
        let cx = VerifyContext {
            now: Some(NOW),
            ..VerifyContext::new(&RustCryptoProvider, &keys)
        };
        assert!(verify_message(&good, Numbering::Draft26, &cx).is_ok());
        let chained = with_chain(&tam, vec![leaf(&tam, &root, 2024, 2027)]);
        let cx = VerifyContext {
            now: Some(NOW),
            ..VerifyContext::new(&RustCryptoProvider, &cas)
        };
        assert!(verify_message(&chained, Numbering::Draft26, &cx).is_ok());
        // Untagged COSE_Sign1 is accepted too.
        let untagged = teep_cose::coset::CoseSign1::from_tagged_slice(&good)
            .unwrap()
            .to_vec()
            .unwrap();
        let cx = VerifyContext::new(&RustCryptoProvider, &keys);
        assert!(verify_message(&untagged, Numbering::Draft26, &cx).is_ok());
    }
}

/// Pre-26 TAMs write SUIT COSE profiles as `[digest-alg, auth-alg]`: read in the pre-26
/// numbering where the pair has one meaning (SHA-256 with ES256/ESP256 or EdDSA/Ed25519),
/// refused where it has none, and never in -26 (which wants four).
#[test]
fn two_element_suit_cose_profiles_only_in_pre26_and_only_when_unambiguous() {
    use teep_proto::SuitCoseProfile;
    // [1, {}, [[[18, -7]]], PROFILES, 2]
    let query = |profiles: &str| h(&format!("85 01 a0 81 81 82 12 26 {profiles} 02"));
    let profiles = |bytes: &[u8], numbering| match decode_unsigned(bytes, numbering) {
        Ok(Message::QueryRequest(q)) => Ok(q.supported_suit_cose_profiles),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    };
    // [[-16, -7], [-16, -8], [-16, -19], [-16, -9]]
    let pairs = query("84 82 2f 26 82 2f 27 82 2f 32 82 2f 28");
    assert_eq!(
        profiles(&pairs, Numbering::Pre26),
        Ok(vec![
            SuitCoseProfile::SHA256_ESP256_ECDH_A128CTR,
            SuitCoseProfile::SHA256_ED25519_ECDH_A128CTR,
            SuitCoseProfile::SHA256_ED25519_ECDH_A128CTR,
            SuitCoseProfile::SHA256_ESP256_ECDH_A128CTR,
        ])
    );
    // The four-element form stays as it is in pre-26.
    assert_eq!(
        profiles(&query(QR_PROFILES), Numbering::Pre26),
        Ok(vec![SuitCoseProfile::SHA256_ESP256_ECDH_A128CTR])
    );
    // The offset of the profile array: 1 + 1 + 1 + 5 (suites) + 1 (outer list) = 9.
    assert_eq!(
        profiles(&query("81 82 2f 26"), Numbering::Draft26),
        Err(err(
            9,
            K::ArrayLength {
                field: Field::SuitCoseProfile,
                expected: 4,
                found: 2,
            }
        ))
    );
    for (bytes, digest, auth) in [
        ("81 82 2f 38 22", -16, -35), // ES384
        ("81 82 38 2a 26", -43, -7),  // SHA-384
        ("81 82 00 00", 0, 0),
    ] {
        assert_eq!(
            profiles(&query(bytes), Numbering::Pre26),
            Err(v(9, Violation::AmbiguousSuitCoseProfile { digest, auth })),
            "{bytes}"
        );
    }
    // Three elements are neither form.
    assert_eq!(
        profiles(&query("81 83 2f 26 38 1c"), Numbering::Pre26),
        Err(err(
            9,
            K::ArrayLength {
                field: Field::SuitCoseProfile,
                expected: 4,
                found: 3,
            }
        ))
    );
}
