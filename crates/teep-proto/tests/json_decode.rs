//! The JSON view read back (`teep encode`): CBOR -> JSON text -> CBOR byte for byte for every
//! TEEP vector (bare in both numberings, and every signed one with its COSE envelope),
//! re-signing a view, arbitrary messages, and hostile views refused with typed errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![cfg(feature = "json")]

mod common;

use proptest::prelude::*;
use serde_json::{Value, json};
use teep_cose::{PrivateKey, PublicKey, RustCryptoProvider, SignOptions};
use teep_proto::json::{
    JsonErrorKind, SignatureCheck, View, cose_view, from_json, to_json, view_from_json,
};
use teep_proto::{Numbering, Unverified, Violation, decode_unsigned, sign_message};

/// The view as a file holds it: printed, then parsed again.
fn through_text(v: &Value) -> Value {
    serde_json::from_str(&serde_json::to_string_pretty(v).unwrap()).unwrap()
}

fn bare_round_trip(bytes: &[u8], n: Numbering) -> Vec<u8> {
    let view = through_text(&to_json(&decode_unsigned(bytes, n).unwrap(), n));
    from_json(&view, n).unwrap().encode(n).unwrap()
}

#[test]
fn every_message_vector_round_trips_byte_for_byte() {
    let vectors = common::all_vectors();
    assert_eq!(vectors.len(), 10);
    for (n, name, bytes) in vectors {
        assert_eq!(bare_round_trip(&bytes, n), bytes, "{name} {n:?}");
    }
}

fn signed_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/signed")
}

fn signed_vectors() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(signed_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".cose.hex"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = hex::decode(std::fs::read_to_string(&p).unwrap().trim()).unwrap();
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

fn signed_view(bytes: &[u8]) -> Value {
    let m = Unverified::parse(bytes, Numbering::Draft26).unwrap();
    let payload = to_json(m.message(), Numbering::Draft26);
    through_text(&cose_view(m.cose(), &SignatureCheck::NotChecked, payload))
}

/// The COSE view carries alg, kid and the signature bytes, so the envelope is rebuilt
/// exactly, without a key: COSE_Sign1 and the two-signature COSE_Sign alike.
#[test]
fn every_signed_vector_round_trips_with_its_envelope() {
    let vectors = signed_vectors();
    assert_eq!(vectors.len(), 26, "5 messages x 5 algs + multi");
    for (name, bytes) in vectors {
        let view = signed_view(&bytes);
        assert!(view.get("other-headers").is_none(), "{name}");
        let View::Cose(cose) = view_from_json(&view, Numbering::Draft26).unwrap() else {
            panic!("{name}: not read as COSE");
        };
        assert_eq!(cose.to_cbor(Numbering::Draft26).unwrap(), bytes, "{name}");
    }
}

/// The view of a signed vector re-signed with its own key: a new envelope that verifies
/// with the public key and carries the same payload bytes.
#[test]
fn a_view_re_signed_verifies() {
    for alg in ["esp256", "ed25519", "es256", "eddsa", "es384"] {
        let keys = signed_dir().join("keys");
        let private =
            PrivateKey::from_any(&std::fs::read(keys.join(format!("{alg}.priv.pem"))).unwrap())
                .unwrap();
        let public =
            PublicKey::from_any(&std::fs::read(keys.join(format!("{alg}.pub.pem"))).unwrap())
                .unwrap();
        let original = hex::decode(
            std::fs::read_to_string(signed_dir().join(format!("update.{alg}.cose.hex")))
                .unwrap()
                .trim(),
        )
        .unwrap();
        let view = view_from_json(&signed_view(&original), Numbering::Draft26).unwrap();
        let provider = RustCryptoProvider;
        let alg_id = teep_cose::Algorithm::from_cose_id(match view {
            View::Cose(ref c) => c.signatures[0].alg.unwrap(),
            View::Bare(_) => panic!("not COSE"),
        })
        .unwrap();
        let signer = teep_cose::CryptoProvider::signer(&provider, &private, alg_id).unwrap();
        let signed = sign_message(
            view.message(),
            Numbering::Draft26,
            signer.as_ref(),
            &SignOptions::default(),
        )
        .unwrap();
        let verified = Unverified::parse(&signed, Numbering::Draft26)
            .unwrap()
            .verify_with_key(&provider, &public)
            .unwrap();
        assert_eq!(verified.message(), view.message(), "{alg}");
        assert_eq!(
            verified.message().encode(Numbering::Draft26).unwrap(),
            common::vector("update.hex")
        );
    }
}

/// A view whose signature was edited rebuilds to an envelope that no longer verifies (the
/// rebuild does not check, the receiver does).
#[test]
fn an_edited_payload_no_longer_verifies() {
    let bytes = hex::decode(
        std::fs::read_to_string(signed_dir().join("success.ed25519.cose.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let mut view = signed_view(&bytes);
    view["payload"]["msg"] = json!("edited");
    let View::Cose(cose) = view_from_json(&view, Numbering::Draft26).unwrap() else {
        panic!("not COSE");
    };
    let rebuilt = cose.to_cbor(Numbering::Draft26).unwrap();
    let public =
        PublicKey::from_any(&std::fs::read(signed_dir().join("keys/ed25519.pub.pem")).unwrap())
            .unwrap();
    let err = Unverified::parse(&rebuilt, Numbering::Draft26)
        .unwrap()
        .verify_with_key(&RustCryptoProvider, &public)
        .unwrap_err();
    assert!(
        matches!(
            err,
            teep_proto::ProtoError::Cose(teep_cose::CoseError::BadSignature)
        ),
        "{err:?}"
    );
}

/// An envelope with a header the view does not show says so, and is not rebuilt from it.
#[test]
fn other_headers_are_flagged_and_not_rebuilt() {
    use teep_cose::coset::{CborSerializable as _, CoseSign1Builder, HeaderBuilder, iana};
    let payload = common::vector("success.hex");
    let sign1 = CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::EdDSA)
                .content_format(iana::CoapContentFormat::Cbor)
                .build(),
        )
        .payload(payload)
        .signature(vec![0; 64])
        .build()
        .to_vec()
        .unwrap();
    let view = signed_view(&sign1);
    assert_eq!(view["other-headers"], true);
    let View::Cose(cose) = view_from_json(&view, Numbering::Draft26).unwrap() else {
        panic!("not COSE");
    };
    let err = cose.to_cbor(Numbering::Draft26).unwrap_err();
    assert!(
        matches!(err.kind, JsonErrorKind::NotRebuildable(_)),
        "{err}"
    );
    // Without the signature bytes the view cannot be rebuilt either.
    let mut plain = signed_view(
        &hex::decode(
            std::fs::read_to_string(signed_dir().join("success.ed25519.cose.hex"))
                .unwrap()
                .trim(),
        )
        .unwrap(),
    );
    plain.as_object_mut().unwrap().remove("signature");
    let View::Cose(cose) = view_from_json(&plain, Numbering::Draft26).unwrap() else {
        panic!("not COSE");
    };
    assert!(matches!(
        cose.to_cbor(Numbering::Draft26).unwrap_err().kind,
        JsonErrorKind::NotRebuildable(_)
    ));
}

/// SUIT parameters the view decodes, and the ones it cannot (wrong type, non-preferred
/// head, unwrapped digest: `{"cbor": hex}`), all come back as the same bytes.
#[test]
fn tc_list_parameters_round_trip_exactly() {
    let uuid = "fa6b4a53d5ad5fdfbe9de663e4d41ffe";
    let claims = [
        "ac",
        "39 0100 01",                           // -257 (custom): unknown
        "00 81 41 01",                          // system-component-id [h'01']
        &format!("01 50 {uuid}"),               // vendor-identifier, 16 bytes
        "02 4f 000102030405060708090a0b0c0d0e", // class-identifier, 15 bytes
        "03 46 82 2f 43 aabbcc",                // image-digest, bstr-wrapped
        "05 19 0001",                           // component-slot 1, non-preferred head
        "0c f4",                                // strict-order false
        "0d f5",                                // soft-failure true
        "0e 14",                                // image-size 20
        "15 63 61 2f 62",                       // uri "a/b"
        "16 01",                                // source-component 1
        "18 18 61 61",                          // device-identifier as text: wrong type
    ]
    .concat()
    .replace(' ', "");
    let bytes = hex::decode(format!("8202a10781{claims}")).unwrap();
    let n = Numbering::Draft26;
    let view = to_json(&decode_unsigned(&bytes, n).unwrap(), n);
    assert_eq!(
        view["tc-list"][0]["component-slot"],
        json!({"cbor": "190001"})
    );
    assert_eq!(
        view["tc-list"][0]["device-identifier"],
        json!({"cbor": "6161"})
    );
    assert_eq!(view["tc-list"][0]["image-size"], 20);
    assert_eq!(bare_round_trip(&bytes, n), bytes);
    // An unwrapped digest (accepted by the view) is not what the view's digest encodes to.
    let unwrapped =
        hex::decode("8202a1078 1a2 0081 4101 03 822f43aabbcc".replace(' ', "")).unwrap();
    let view = to_json(&decode_unsigned(&unwrapped, n).unwrap(), n);
    assert_eq!(
        view["tc-list"][0]["image-digest"],
        json!({"cbor": "822f43aabbcc"})
    );
    assert_eq!(bare_round_trip(&unwrapped, n), unwrapped);
    // A CBOR PEN vendor id.
    let pen = hex::decode("8202a10781a20081410101d870420102").unwrap();
    assert_eq!(bare_round_trip(&pen, n), pen);
}

/// Extensions (kept raw by label) and unknown err-codes survive in both numberings.
#[test]
fn extensions_and_unknown_codes_round_trip() {
    let bytes = hex::decode("8305a11863617818c8").unwrap();
    assert_eq!(bare_round_trip(&bytes, Numbering::Draft26), bytes);
    let pre = hex::decode("8306a11863617818c8").unwrap();
    assert_eq!(bare_round_trip(&pre, Numbering::Pre26), pre);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any valid message: view -> message is the identity, in its numbering.
    #[test]
    fn arbitrary_messages_round_trip((n, m) in common::numbered_message(false)) {
        let view = through_text(&to_json(&m, n));
        let back = from_json(&view, n).unwrap();
        prop_assert_eq!(back.encode(n).unwrap(), m.encode(n).unwrap());
        prop_assert_eq!(back, m);
    }

    /// Arbitrary JSON never panics the reader.
    #[test]
    fn arbitrary_json_never_panics(text in "[\\[\\]{}\":,0-9a-z\\- ]{0,200}") {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            let _ = view_from_json(&v, Numbering::Draft26);
        }
    }
}

// ---- hostile views: each built by hand, each refused with its path and kind ----

fn success_view() -> Value {
    json!({"type": "success", "token": "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"})
}

fn refused(view: &Value) -> teep_proto::json::JsonError {
    from_json(view, Numbering::Draft26).expect_err("a hostile view must be refused")
}

#[test]
fn token_of_7_or_65_bytes_is_refused_at_its_path() {
    for len in [7, 65] {
        let mut v = success_view();
        v["token"] = hex::encode(vec![0xaa; len]).into();
        let e = refused(&v);
        assert_eq!(e.path, "$.token");
        assert_eq!(
            e.kind,
            JsonErrorKind::Invalid(Violation::Size {
                field: teep_proto::Field::Token,
                len
            })
        );
    }
    for len in [8, 64] {
        let mut v = success_view();
        v["token"] = hex::encode(vec![0xaa; len]).into();
        assert!(from_json(&v, Numbering::Draft26).is_ok());
    }
}

#[test]
fn wrong_types_are_refused() {
    let cases = [
        (
            json!({"type": "success", "token": 5}),
            "$.token",
            "expected a string",
        ),
        (
            json!({"type": "success", "token": "abc"}),
            "$.token",
            "not a hex",
        ),
        (
            json!({"type": "success", "token": "zz".repeat(8)}),
            "$.token",
            "not a hex",
        ),
        (json!({"type": 4}), "$.type", "expected a string"),
        (json!(["success"]), "$", "expected an object"),
        (json!({"type": "hello"}), "$.type", "unknown message type"),
        (json!({"token": "00"}), "$", "missing \"type\""),
        (
            json!({"type": "query-response", "selected-version": -1}),
            "$.selected-version",
            "out of range",
        ),
        (
            json!({"type": "query-response", "selected-version": 1.5}),
            "$.selected-version",
            "out of range",
        ),
        (
            json!({"type": "query-response", "selected-version": "0"}),
            "$.selected-version",
            "expected an unsigned integer",
        ),
        (
            json!({"type": "query-response", "tc-list": {}}),
            "$.tc-list",
            "expected an array",
        ),
        (
            json!({"type": "query-response", "tc-list": [{"system-component-id": ["01"], "image-size": true}]}),
            "$.tc-list[0].image-size",
            "expected an unsigned integer",
        ),
        (
            json!({"type": "query-response", "requested-tc-list": [{"component-id": [1]}]}),
            "$.requested-tc-list[0].component-id[0]",
            "expected a string",
        ),
        (
            json!({"type": "error", "err-code": 11}),
            "$.err-code",
            "expected an object",
        ),
    ];
    for (view, path, message) in cases {
        let e = refused(&view);
        assert_eq!(e.path, path, "{view}");
        assert!(e.to_string().contains(message), "{view}: {e}");
    }
}

#[test]
fn huge_numbers_are_out_of_range() {
    // Parsed from text, as a file would be: 2^64 and beyond are not u64.
    for n in ["18446744073709551616", "1e30", "-9223372036854775809"] {
        let text = format!(r#"{{"type": "query-response", "ext-list": [{n}]}}"#);
        let v: Value = serde_json::from_str(&text).unwrap();
        let e = refused(&v);
        assert_eq!(e.path, "$.ext-list[0]");
        assert_eq!(e.kind, JsonErrorKind::OutOfRange);
    }
    // A version over 4 bytes.
    let e = refused(&json!({"type": "query-response", "ext-list": [4_294_967_296_u64]}));
    assert_eq!(e.kind, JsonErrorKind::OutOfRange);
    // An err-code of 2^64 - 1 reads (unknown code), 0 is reserved.
    let ok = json!({"type": "error", "err-code": {"value": u64::MAX}});
    assert!(from_json(&ok, Numbering::Draft26).is_ok());
    let e = refused(&json!({"type": "error", "err-code": {"value": 0}}));
    assert_eq!(e.path, "$.err-code.value");
    assert_eq!(e.kind, JsonErrorKind::Invalid(Violation::ReservedErrCode));
}

#[test]
fn unknown_keys_are_refused_everywhere() {
    let cases = [
        (json!({"type": "success", "colour": "red"}), "$.colour"),
        // A field of another message type.
        (json!({"type": "success", "tc-list": []}), "$.tc-list"),
        (
            json!({"type": "error", "err-code": {"value": 1, "extra": 1}}),
            "$.err-code.extra",
        ),
        (
            json!({"type": "query-response", "requested-tc-list": [{"component-id": [], "x": 1}]}),
            "$.requested-tc-list[0].x",
        ),
        (
            json!({"type": "query-response", "tc-list": [{"system-component-id": [], "colour": "00"}]}),
            "$.tc-list[0].colour",
        ),
        (
            json!({"type": "query-response", "tc-list": [{"system-component-id": [], "image-digest": {"algorithm-id": -16, "digest-bytes": "00", "x": 0}}]}),
            "$.tc-list[0].image-digest.x",
        ),
    ];
    for (view, path) in cases {
        let e = refused(&view);
        assert_eq!(e.path, path, "{view}");
        assert!(
            matches!(e.kind, JsonErrorKind::UnknownKey(_)),
            "{view}: {e}"
        );
    }
    // In a COSE view too.
    let mut cose = json!({"cose": "COSE_Sign1", "tagged": true, "protected": {"alg": -19},
        "signature": "00", "payload": success_view(), "sneaky": 1});
    let e = view_from_json(&cose, Numbering::Draft26).unwrap_err();
    assert_eq!(e.path, "$.sneaky");
    cose.as_object_mut().unwrap().remove("sneaky");
    cose["protected"]["crit"] = json!([1]);
    let e = view_from_json(&cose, Numbering::Draft26).unwrap_err();
    assert_eq!(e.path, "$.protected.crit");
}

#[test]
fn names_must_agree_with_values() {
    let e =
        refused(&json!({"type": "error", "err-code": {"value": 1, "name": "ERR_TEMPORARY_ERROR"}}));
    assert_eq!(e.path, "$.err-code.name");
    assert!(matches!(e.kind, JsonErrorKind::NameMismatch { .. }));
    // The same code number means another code in the other numbering: 17 is
    // ERR_MANIFEST_PROCESSING_FAILED only before -26.
    let v = json!({"type": "error", "err-code": {"value": 17, "name": "ERR_MANIFEST_PROCESSING_FAILED"}});
    assert!(from_json(&v, Numbering::Pre26).is_ok());
    assert!(matches!(
        refused(&v).kind,
        JsonErrorKind::NameMismatch { .. }
    ));
    let e = refused(&json!({"type": "query-request",
        "supported-teep-cipher-suites": [[[18, -9]]],
        "supported-suit-cose-profiles": [{"value": [-16, -9, -29, 1], "name": "suit-sha256-ed25519-ecdh-chacha-poly"}],
        "data-item-requested": {"value": 1, "names": ["attestation", "extensions"]}}));
    assert_eq!(e.path, "$.supported-suit-cose-profiles[0].name");
}

#[test]
fn cddl_rules_are_the_encoders() {
    // An empty cipher-suite list, an extension on a defined label, have-binary alone,
    // a SUIT parameter keyed 0, a tc-list entry without parameters.
    let qr = json!({"type": "query-request", "supported-teep-cipher-suites": [],
        "supported-suit-cose-profiles": [{"value": [-16, -9, -29, 1]}],
        "data-item-requested": {"value": 0}});
    assert!(matches!(
        refused(&qr).kind,
        JsonErrorKind::Invalid(Violation::EmptyList { .. })
    ));
    let taken = json!({"type": "success", "extensions": {"19": "00"}});
    assert_eq!(
        refused(&taken).kind,
        JsonErrorKind::Invalid(Violation::ExtensionLabelTaken(19))
    );
    let have = json!({"type": "query-response", "requested-tc-list": [{"component-id": [], "have-binary": true}]});
    let e = refused(&have);
    assert_eq!(e.path, "$.requested-tc-list[0]");
    assert_eq!(
        e.kind,
        JsonErrorKind::Invalid(Violation::HaveBinaryWithoutSequenceNumber)
    );
    let zero =
        json!({"type": "query-response", "tc-list": [{"system-component-id": [], "0": "00"}]});
    assert_eq!(
        refused(&zero).kind,
        JsonErrorKind::Invalid(Violation::ParameterKeyZero)
    );
    let none = json!({"type": "query-response", "tc-list": [{"system-component-id": []}]});
    assert_eq!(
        refused(&none).kind,
        JsonErrorKind::Invalid(Violation::NoSuitParameter)
    );
    // A named parameter given by number too would be the same wire key: by name only.
    let twice = json!({"type": "query-response", "tc-list": [{"system-component-id": [], "image-size": 1, "14": "01"}]});
    assert!(matches!(refused(&twice).kind, JsonErrorKind::UnknownKey(_)));
    // Labels are written as the view writes them.
    for label in ["019", "+99", "-1", "x"] {
        let v = json!({"type": "success", "extensions": {label: "00"}});
        assert_eq!(refused(&v).path, format!("$.extensions.{label}"));
    }
}

#[test]
fn raw_cbor_must_be_one_well_formed_item() {
    for raw in ["", "18", "0000", "ff", "5f", "a20000"] {
        let v = json!({"type": "success", "extensions": {"99": raw}});
        let e = refused(&v);
        assert_eq!(e.path, "$.extensions.99", "{raw}");
        assert!(matches!(e.kind, JsonErrorKind::Proto(_)), "{raw}: {e}");
        let p = json!({"type": "query-response", "tc-list": [{"system-component-id": [], "uri": {"cbor": raw}}]});
        assert_eq!(refused(&p).path, "$.tc-list[0].uri.cbor", "{raw}");
    }
}

/// Deep nesting: serde_json stops at its depth limit when reading text, and nesting in a
/// value that takes no nesting is a type error, never a stack overflow or a panic.
#[test]
fn deep_nesting_is_refused() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(serde_json::from_str::<Value>(&deep).is_err());
    let mut nested = json!("a0a1a2a3a4a5a6a7");
    for _ in 0..100 {
        nested = json!([nested]);
    }
    let e = refused(&json!({"type": "success", "token": nested.clone()}));
    assert_eq!(e.path, "$.token");
    let e = refused(&json!({"type": "query-response", "unneeded-manifest-list": [nested]}));
    assert_eq!(e.path, "$.unneeded-manifest-list[0][0]");
}
