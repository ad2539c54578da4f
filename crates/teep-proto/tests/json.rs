//! The JSON view (what `teep inspect` prints): CDDL names as keys, hex byte strings,
//! err-code by number and name in the numbering given.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![cfg(feature = "json")]

mod common;

use serde_json::json;
use teep_proto::json::{SignatureCheck, cose_view, cut, shorten, to_json, to_json_within};
use teep_proto::{Message, Numbering, Unverified, Update, decode_unsigned};

const TOKEN: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

fn view(numbering: Numbering, rel: &str) -> serde_json::Value {
    to_json(
        &decode_unsigned(&common::vector(rel), numbering).unwrap(),
        numbering,
    )
}

#[test]
fn query_request() {
    assert_eq!(
        view(Numbering::Draft26, "query_request.hex"),
        json!({
            "type": "query-request",
            "token": TOKEN,
            "versions": [0],
            "supported-teep-cipher-suites": [[[18, -9]], [[18, -19]]],
            "supported-suit-cose-profiles": [
                {"value": [-16, -9, -29, -65534], "name": "suit-sha256-esp256-ecdh-a128ctr"},
                {"value": [-16, -19, -29, -65534], "name": "suit-sha256-ed25519-ecdh-a128ctr"},
                {"value": [-16, -9, -29, 1], "name": "suit-sha256-esp256-ecdh-a128gcm"},
                {"value": [-16, -19, -29, 24], "name": "suit-sha256-ed25519-ecdh-chacha-poly"},
            ],
            "data-item-requested": {"value": 3, "names": ["attestation", "trusted-components"]},
        })
    );
}

#[test]
fn query_response_tc_list() {
    let v = view(Numbering::Pre26, "pre-26-numbering/query_response.hex");
    assert_eq!(v["type"], "query-response");
    assert_eq!(v["selected-version"], 0);
    assert_eq!(v["attestation-payload"], "");
    assert_eq!(
        v["tc-list"],
        json!([{
            "system-component-id": ["0102030405060708090a0b0c0d0e0f"],
            "image-digest": {
                "algorithm-id": -16,
                "digest-bytes": "a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609",
            },
        }])
    );
}

#[test]
fn error_code_by_number_and_name_in_each_numbering() {
    let e26 = view(Numbering::Draft26, "error.hex");
    assert_eq!(e26["type"], "error");
    assert_eq!(e26["err-msg"], "disk-full");
    assert_eq!(
        e26["err-code"],
        json!({"value": 11, "name": "ERR_MANIFEST_PROCESSING_FAILED"})
    );
    let pre = view(Numbering::Pre26, "pre-26-numbering/error.hex");
    assert_eq!(
        pre["err-code"],
        json!({"value": 17, "name": "ERR_MANIFEST_PROCESSING_FAILED"})
    );
    let success = view(Numbering::Draft26, "success.hex");
    assert_eq!(success, json!({"type": "success", "token": TOKEN}));
    let update = view(Numbering::Draft26, "update.hex");
    assert_eq!(update["type"], "update");
    assert_eq!(update["manifest-list"].as_array().unwrap().len(), 1);
}

#[test]
fn extensions_and_unknown_codes_are_shown() {
    // Error { 99: "x" } with err-code 200 (unknown).
    let bytes = hex::decode("8305a11863617818c8").unwrap();
    let v = to_json(
        &decode_unsigned(&bytes, Numbering::Draft26).unwrap(),
        Numbering::Draft26,
    );
    assert_eq!(v["extensions"], json!({"99": "6178"}));
    assert_eq!(v["err-code"], json!({"value": 200, "name": null}));
}

#[test]
fn cose_wrapped() {
    let path = format!(
        "{}/../../tests/vectors/signed/success.ed25519.cose.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    let cose = hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap();
    let m = Unverified::parse(&cose, Numbering::Draft26).unwrap();
    let payload = to_json(m.message(), Numbering::Draft26);
    let v = cose_view(m.cose(), &SignatureCheck::NotChecked, payload);
    assert_eq!(v["cose"], "COSE_Sign1");
    assert_eq!(v["tagged"], true);
    assert_eq!(v["verified"], serde_json::Value::Null);
    assert_eq!(v["protected"], json!({"alg": -19}));
    assert_eq!(v["kid"].as_str().unwrap().len(), 64);
    assert_eq!(v["payload"], json!({"type": "success", "token": TOKEN}));
}

/// SUIT parameters in a tc-list entry are shown decoded, not as the hex of their CBOR;
/// values that do not have their parameter's type are `{"cbor": hex}`, unknown keys hex.
#[test]
fn tc_list_suit_parameters_are_decoded() {
    let uuid = "fa6b4a53d5ad5fdfbe9de663e4d41ffe";
    let claims = [
        "a9",
        "00 81 41 01",                          // system-component-id [h'01']
        &format!("01 50 {uuid}"),               // vendor-identifier, 16 bytes
        "02 4f 000102030405060708090a0b0c0d0e", // class-identifier, 15 bytes: hex
        "03 46 82 2f 43 aabbcc",                // image-digest, bstr-wrapped [-16, h'aabbcc']
        "0e 14",                                // image-size 20
        "0d f5",                                // soft-failure true
        "15 63 61 2f 62",                       // uri "a/b"
        "18 18 61 61",                          // device-identifier as text: wrong type
        "39 0100 01",                           // -257 (custom): unknown
    ]
    .concat()
    .replace(' ', "");
    let bytes = hex::decode(format!("8202a107 81 {claims}").replace(' ', "")).unwrap();
    let v = to_json(
        &decode_unsigned(&bytes, Numbering::Draft26).unwrap(),
        Numbering::Draft26,
    );
    assert_eq!(
        v["tc-list"][0],
        json!({
            "system-component-id": ["01"],
            "vendor-identifier": "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
            "class-identifier": "000102030405060708090a0b0c0d0e",
            "image-digest": {"algorithm-id": -16, "digest-bytes": "aabbcc"},
            "image-size": 20,
            "soft-failure": true,
            "uri": "a/b",
            // Not shown as a UUID: the hex of its CBOR, marked so it reads back as such.
            "device-identifier": {"cbor": "6161"},
            "-257": "01",
        })
    );
    // A CBOR PEN vendor id: #6.112(h'0102').
    let pen = hex::decode("8202a10781a20081410101d8704201 02".replace(' ', "")).unwrap();
    let v = to_json(
        &decode_unsigned(&pen, Numbering::Draft26).unwrap(),
        Numbering::Draft26,
    );
    assert_eq!(
        v["tc-list"][0]["vendor-identifier"],
        json!({"cbor-pen": "0102"})
    );
}

/// `to_json_within(m, n, limit)` is `shorten(to_json(m, n), limit)`, at every limit
/// around the lengths of its strings: the byte strings' hex, cut as it is written, reads
/// exactly as the whole hex cut by `shorten`.
#[test]
fn a_view_within_a_limit_is_the_shortened_view() {
    let update = Message::Update(Update {
        token: Some(vec![0xa7; 8]),
        manifest_list: Some(vec![vec![0x5a; 64 << 10], vec![1, 2, 3], Vec::new()]),
        attestation_payload: Some(vec![0xee; 1000]),
        err_msg: Some("é".repeat(50)),
        unneeded_manifest_list: Some(vec![teep_proto::ComponentId(vec![vec![0x11; 40]])]),
        ..Update::default()
    });
    for numbering in [Numbering::Draft26, Numbering::Pre26] {
        for limit in [
            0,
            1,
            5,
            6,
            7,
            16,
            99,
            2000,
            2048,
            128 << 10,
            (128 << 10) + 1,
            usize::MAX,
        ] {
            let mut expected = to_json(&update, numbering);
            shorten(&mut expected, limit);
            assert_eq!(
                to_json_within(&update, numbering, limit),
                expected,
                "limit {limit}"
            );
        }
    }
    let within = to_json_within(&update, Numbering::Draft26, 2048);
    assert_eq!(
        within["manifest-list"][0],
        format!("{}… (131072 characters in all)", "5a".repeat(1024))
    );
    assert_eq!(within["manifest-list"][1], "010203");
    assert_eq!(within["manifest-list"][2], "");
    let mut cut_text = to_json(&update, Numbering::Draft26);
    shorten(&mut cut_text, 5);
    // Cut back to a character boundary: "éé" is 4 bytes.
    assert_eq!(cut_text["err-msg"], cut("éé", 100));
}
