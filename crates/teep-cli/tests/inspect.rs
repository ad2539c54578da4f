//! `teep inspect` over the draft's vectors: message types and fields in both numberings,
//! COSE-wrapped messages, COSE_Keys, SUIT envelopes, hex vs binary input, `--diag`, and
//! bad input (exit 2, one line on stderr).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

mod common;

use serde_json::Value as Json;
use teep_cose::{Curve, PrivateKey, SignOptions, default_provider};

fn vector(path: &str) -> PathBuf {
    common::vector(path).into()
}

fn vector_bytes(path: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(vector(path)).unwrap();
    hex::decode(text.trim()).unwrap()
}

fn teep(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = common::teep()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn inspect_json(args: &[&str], stdin: &[u8]) -> Json {
    let out = teep(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn inspect_file(args: &[&str], path: &Path) -> Json {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    all.push(path.to_str().unwrap());
    inspect_json(&all, b"")
}

const TOKEN: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

#[test]
fn every_teep_vector_in_both_numberings_shows_its_type_and_fields() {
    for (dir, numbering) in [("teep", "26"), ("teep/pre-26-numbering", "pre-26")] {
        let json = |name: &str| {
            inspect_file(
                &["--numbering", numbering],
                &vector(&format!("{dir}/{name}.hex")),
            )
        };

        let qr = json("query_request");
        assert_eq!(qr["type"], "query-request", "{dir}");
        assert_eq!(qr["token"], TOKEN);
        assert_eq!(qr["versions"], serde_json::json!([0]));
        assert!(qr["supported-teep-cipher-suites"].is_array());
        assert!(qr["supported-suit-cose-profiles"].is_array());
        assert!(qr.get("data-item-requested").is_some());

        let resp = json("query_response");
        assert_eq!(resp["type"], "query-response", "{dir}");
        assert_eq!(resp["token"], TOKEN);
        assert_eq!(resp["selected-version"], 0);
        assert_eq!(resp["tc-list"].as_array().unwrap().len(), 1);
        // The SUIT image digest decoded, not the hex of its bstr-wrapped CBOR.
        assert_eq!(
            resp["tc-list"][0]["image-digest"]["algorithm-id"], -16,
            "{dir}"
        );

        let update = json("update");
        assert_eq!(update["type"], "update", "{dir}");
        assert_eq!(update["token"], TOKEN);
        let manifests = update["manifest-list"].as_array().unwrap();
        assert_eq!(manifests.len(), 1);
        // The manifest is the bstr-wrapped SUIT_Envelope, shown as hex.
        assert!(manifests[0].as_str().unwrap().starts_with("a2025873"));

        let success = json("success");
        assert_eq!(success["type"], "success", "{dir}");
        assert_eq!(success["token"], TOKEN);

        let error = json("error");
        assert_eq!(error["type"], "error", "{dir}");
        assert_eq!(error["token"], TOKEN);
        assert_eq!(error["err-msg"], "disk-full");
        // ERR_MANIFEST_PROCESSING_FAILED: 11 in -26, 17 before.
        let code = if numbering == "26" { "11" } else { "17" };
        assert!(
            error["err-code"].to_string().contains(code),
            "{}",
            error["err-code"]
        );
    }
}

#[test]
fn the_wrong_numbering_is_an_error_not_a_misreading() {
    // Before -26, type 5 was Error; read as -26 it is an Error without an err-code.
    let out = teep(
        &[
            "inspect",
            vector("teep/pre-26-numbering/success.hex")
                .to_str()
                .unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hex_binary_and_stdin_give_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["query_request", "update", "suit_uri"] {
        let hex_path = vector(&format!("teep/{name}.hex"));
        let bin_path = dir.path().join(format!("{name}.cbor"));
        std::fs::write(&bin_path, vector_bytes(&format!("teep/{name}.hex"))).unwrap();
        let from_hex = teep(&["inspect", hex_path.to_str().unwrap()], b"");
        let from_bin = teep(&["inspect", bin_path.to_str().unwrap()], b"");
        let from_stdin = teep(&["inspect", "-"], &std::fs::read(&bin_path).unwrap());
        // Hex with spaces and line breaks, as people paste it.
        let spaced: String = hex::encode(vector_bytes(&format!("teep/{name}.hex")))
            .as_bytes()
            .chunks(8)
            .map(|c| format!("{}\n ", std::str::from_utf8(c).unwrap()))
            .collect();
        let from_spaced = teep(&["inspect"], spaced.as_bytes());
        assert!(from_hex.status.success());
        assert_eq!(from_hex.stdout, from_bin.stdout, "{name}");
        assert_eq!(from_hex.stdout, from_stdin.stdout, "{name}");
        assert_eq!(from_hex.stdout, from_spaced.stdout, "{name}");
    }
}

#[test]
fn cose_sign1_wrapped_message_shows_headers_beside_the_payload() {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let signer = default_provider()
        .signer(&key, key.default_algorithm())
        .unwrap();
    let payload = vector_bytes("teep/query_request.hex");
    for tagged in [true, false] {
        let opts = SignOptions {
            tagged,
            ..SignOptions::default()
        };
        let signed = teep_cose::sign1(signer.as_ref(), &payload, &opts).unwrap();
        let json = inspect_json(&["inspect"], &signed);
        assert_eq!(json["cose"], "COSE_Sign1");
        assert_eq!(json["tagged"], tagged);
        assert_eq!(json["verified"], Json::Null, "no key given: not checked");
        assert_eq!(json["protected"]["alg"], -9);
        assert_eq!(
            json["kid"],
            hex::encode(key.public_key().thumbprint()),
            "kid is the RFC 9679 thumbprint"
        );
        assert_eq!(json["payload"]["type"], "query-request");
        assert_eq!(json["payload"]["token"], TOKEN);
    }
}

#[test]
fn cose_sign_lists_every_signature() {
    let p256 = PrivateKey::generate(Curve::P256).unwrap();
    let ed = PrivateKey::generate(Curve::Ed25519).unwrap();
    let provider = default_provider();
    let s1 = provider.signer(&p256, p256.default_algorithm()).unwrap();
    let s2 = provider.signer(&ed, ed.default_algorithm()).unwrap();
    let payload = vector_bytes("teep/success.hex");
    let signed = teep_cose::sign(
        &[s1.as_ref(), s2.as_ref()],
        &payload,
        &SignOptions::default(),
    )
    .unwrap();
    let json = inspect_json(&["inspect"], &signed);
    assert_eq!(json["cose"], "COSE_Sign");
    let algs: Vec<&Json> = json["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["protected"]["alg"])
        .collect();
    assert_eq!(algs, [-9, -19]);
    assert_eq!(json["payload"]["type"], "success");
}

#[test]
fn cose_sign1_with_a_non_teep_payload_shows_it_as_cbor() {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let signer = default_provider()
        .signer(&key, key.default_algorithm())
        .unwrap();
    // A claims set {10: h'0102'} (eat_nonce), as an EAT would carry.
    let signed = teep_cose::sign1(
        signer.as_ref(),
        &[0xa1, 0x0a, 0x42, 1, 2],
        &SignOptions::default(),
    )
    .unwrap();
    let json = inspect_json(&["inspect"], &signed);
    assert_eq!(json["cose"], "COSE_Sign1");
    assert_eq!(json["payload"], serde_json::json!({ "10": "0102" }));

    // A payload that is not one CBOR item is shown as hex; a detached one as null.
    let raw = teep_cose::sign1(signer.as_ref(), b"hello", &SignOptions::default()).unwrap();
    assert_eq!(
        inspect_json(&["inspect"], &raw)["payload"],
        hex::encode(b"hello")
    );
    let detached = SignOptions {
        detached: true,
        ..SignOptions::default()
    };
    let no_payload = teep_cose::sign1(signer.as_ref(), b"hello", &detached).unwrap();
    assert_eq!(
        inspect_json(&["inspect"], &no_payload)["payload"],
        Json::Null
    );
}

#[test]
fn signed_attestation_results_use_the_ear_view() {
    use teep_attest::{Ear, EarAppraisal, Status, TrustVector, VerifierId};
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let signer = default_provider()
        .signer(&key, key.default_algorithm())
        .unwrap();
    let appraisal = EarAppraisal {
        status: Status::Affirming,
        trust_vector: TrustVector::default(),
        policy_id: None,
    };
    let ear = Ear {
        profile: teep_attest::ear::EAR_PROFILE.into(),
        iat: 1_700_000_000,
        verifier_id: VerifierId {
            developer: "example".into(),
            build: "1".into(),
        },
        nonce: Some(vec![1, 2, 3, 4, 5, 6, 7, 8]),
        cnf: None,
        submods: [("tee".to_owned(), appraisal)].into(),
    };
    let signed = teep_attest::sign_ear(&ear, signer.as_ref()).unwrap();
    let json = inspect_json(&["inspect"], &signed);
    assert_eq!(json["cose"], "COSE_Sign1");
    assert_eq!(json["payload"], ear.to_json());
    assert_eq!(
        json["payload"]["eat_profile"],
        teep_attest::ear::EAR_PROFILE
    );
}

#[test]
fn cose_keys_show_named_parameters_and_thumbprint_without_secrets() {
    let public = inspect_file(
        &[],
        &vector("suit/keys/suit-example-signer-p256.cose-key-public.hex"),
    );
    assert_eq!(public["type"], "COSE_Key");
    assert_eq!(public["kty"], "EC2");
    assert_eq!(public["crv"], "P-256");
    assert_eq!(public["x"].as_str().unwrap().len(), 64);
    assert_eq!(public["y"].as_str().unwrap().len(), 64);
    let thumbprint = public["thumbprint-sha256"].as_str().unwrap();
    assert_eq!(thumbprint.len(), 64);

    let private = inspect_file(
        &[],
        &vector("suit/keys/suit-example-signer-p256.cose-key-private.hex"),
    );
    assert_eq!(private["type"], "COSE_Key");
    assert!(private["d"].as_str().unwrap().contains("not shown"));
    assert_eq!(
        private["thumbprint-sha256"], thumbprint,
        "same key pair, same thumbprint"
    );
}

#[test]
fn suit_envelopes_show_digest_signatures_and_manifest() {
    for name in ["suit_uri", "suit_integrated", "suit_personalization"] {
        let json = inspect_file(&[], &vector(&format!("teep/{name}.hex")));
        assert_eq!(json["type"], "SUIT_Envelope", "{name}");
        let auth = &json["authentication-wrapper"];
        assert_eq!(auth["digest"]["algorithm-id"], -16, "{name}: SHA-256");
        assert_eq!(auth["digest-matches"], true, "{name}");
        assert_eq!(auth["blocks"][0]["cose"], "COSE_Sign1", "{name}");
        assert_eq!(auth["blocks"][0]["alg"], -9, "{name}: ESP256");
        assert_eq!(json["manifest"]["manifest-version"], 1, "{name}");
    }
    // SUIT_Envelope_Tagged (tag 107) is recognised too.
    let mut tagged = vec![0xd8, 107];
    tagged.extend(vector_bytes("teep/suit_uri.hex"));
    let json = inspect_json(&["inspect"], &tagged);
    assert_eq!(json["type"], "SUIT_Envelope");
    assert_eq!(json["tagged"], true);

    // The integrated TC binary: 20 bytes, "Hello, Secure World!".
    let integrated = inspect_file(&[], &vector("teep/suit_integrated.hex"));
    assert_eq!(integrated["integrated"]["#tc"]["length"], 20);
    assert_eq!(
        integrated["integrated"]["#tc"]["sha256"],
        "8cf71ac86af31be184ec7a05a411a8c3a14fd9b77a30d046397481469468ece8"
    );
}

#[test]
fn other_cbor_is_shown_generically() {
    // {"a": 1, -2: [h'ff', 1.5, null, 24(h'01')]}
    let json = inspect_json(&["inspect"], b"a2 6161 01 21 84 41ff f93e00 f6 d81841 01");
    assert_eq!(
        json,
        serde_json::json!({
            "type": "cbor",
            "value": { "a": 1, "-2": ["ff", 1.5, null, { "tag": 24, "value": "01" }] }
        })
    );
}

#[test]
fn diag_prints_diagnostic_notation() {
    let out = teep(
        &[
            "inspect",
            "--diag",
            vector("teep/error.hex").to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.trim_start().starts_with('['), "{text}");
    assert!(text.contains("\"disk-full\""), "{text}");
    assert!(
        text.contains("h'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf'"),
        "{text}"
    );
    // Anything CBOR, not only TEEP.
    let out = teep(&["inspect", "--diag"], b"a1 01 82 01 02");
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .collect::<String>(),
        "{1:[1,2]}"
    );
}

#[test]
fn bad_input_exits_2_with_one_line_naming_what_and_where() {
    let cases: [(&[u8], &str); 5] = [
        (b"82 01", "at byte 2"),          // truncated array
        (b"a2 01 00 01 00", "at byte 3"), // duplicate map key
        (b"hello world", "at byte 9"),    // a text string "ello wor", then more bytes
        (b"", "at byte 0"),               // nothing at all
        (b"8a 01", "at byte 2"),          // array of 10 with one element
    ];
    for (input, where_) in cases {
        let out = teep(&["inspect"], input);
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(where_), "{input:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    // A TEEP-shaped message that breaks a TEEP rule names the rule and the offset.
    let out = teep(&["inspect"], b"82 04 a1 13 01"); // success whose token is an integer
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("at byte"), "{stderr}");
}

#[test]
fn json_views_print_type_first() {
    // serde_json's preserve_order keeps insertion order, and every view inserts "type" first.
    for path in [
        "teep/query_request.hex",
        "teep/suit_integrated.hex",
        "suit/keys/suit-example-signer-p256.cose-key-public.hex",
    ] {
        let out = teep(&["inspect", vector(path).to_str().unwrap()], b"");
        assert!(out.status.success(), "{path}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("{\n  \"type\": "), "{path}: {text}");
    }
    let out = teep(&["inspect"], b"a1 6161 01");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("{\n  \"type\": \"cbor\"")
    );
}

/// Writes `key` as a COSE_Key (hex) or PEM file in `dir`.
fn key_file(dir: &Path, name: &str, key: &teep_cose::PublicKey, pem: bool) -> String {
    let path = dir.join(name);
    if pem {
        std::fs::write(&path, key.to_pem()).unwrap();
    } else {
        std::fs::write(&path, hex::encode(key.to_cose_key_bytes())).unwrap();
    }
    path.to_str().unwrap().to_owned()
}

fn sign1(key: &PrivateKey, payload: &[u8]) -> Vec<u8> {
    let signer = default_provider()
        .signer(key, key.default_algorithm())
        .unwrap();
    teep_cose::sign1(signer.as_ref(), payload, &SignOptions::default()).unwrap()
}

#[test]
fn trust_keys_check_the_signature_and_say_which_key_verified() {
    let dir = tempfile::tempdir().unwrap();
    let tam = PrivateKey::generate(Curve::P256).unwrap();
    let other = PrivateKey::generate(Curve::Ed25519).unwrap();
    let tam_pem = key_file(dir.path(), "tam.pem", tam.public_key(), true);
    let tam_cose = key_file(dir.path(), "tam.cose_key", tam.public_key(), false);
    let other_key = key_file(dir.path(), "other.cose_key", other.public_key(), false);
    let signed = sign1(&tam, &vector_bytes("teep/query_request.hex"));
    let thumbprint = hex::encode(tam.public_key().thumbprint());

    // The right key, as PEM or COSE_Key, alone or after another: true, naming it.
    for keys in [vec![&tam_pem], vec![&tam_cose], vec![&other_key, &tam_pem]] {
        let mut args = vec!["inspect"];
        for k in &keys {
            args.extend(["--trust", k.as_str()]);
        }
        let json = inspect_json(&args, &signed);
        assert_eq!(json["verified"], true, "{keys:?}");
        let with = &json["verified-with"];
        assert_eq!(with["key"], keys.last().unwrap().as_str());
        assert_eq!(with["thumbprint-sha256"], thumbprint);
        assert_eq!(with["alg"], -9);
        assert!(json.get("reason").is_none());
        assert_eq!(json["payload"]["type"], "query-request");
    }

    // Only another key: false, with the reason; the payload is still shown.
    let json = inspect_json(&["inspect", "--trust", &other_key], &signed);
    assert_eq!(json["verified"], false);
    assert!(json.get("verified-with").is_none());
    assert!(
        json["reason"].as_str().unwrap().contains("not trusted"),
        "{}",
        json["reason"]
    );
    assert_eq!(json["payload"]["type"], "query-request");

    // The right key but a tampered signature: false, bad signature.
    let mut tampered = signed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let json = inspect_json(&["inspect", "--trust", &tam_pem], &tampered);
    assert_eq!(json["verified"], false);
    assert!(
        json["reason"].as_str().unwrap().contains("signature"),
        "{}",
        json["reason"]
    );

    // A key file that is no key is an error, not a silent "not checked".
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a key").unwrap();
    let out = teep(&["inspect", "--trust", junk.to_str().unwrap()], &signed);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn trust_keys_on_cose_sign_eat_payloads_and_unsigned_input() {
    let dir = tempfile::tempdir().unwrap();
    let p256 = PrivateKey::generate(Curve::P256).unwrap();
    let ed = PrivateKey::generate(Curve::Ed25519).unwrap();
    let ed_key = key_file(dir.path(), "ed.pem", ed.public_key(), true);
    let provider = default_provider();
    let s1 = provider.signer(&p256, p256.default_algorithm()).unwrap();
    let s2 = provider.signer(&ed, ed.default_algorithm()).unwrap();
    let multi = teep_cose::sign(
        &[s1.as_ref(), s2.as_ref()],
        &vector_bytes("teep/query_request.hex"),
        &SignOptions::default(),
    )
    .unwrap();
    // COSE_Sign: the Ed25519 signature is the one that verified.
    let json = inspect_json(&["inspect", "--trust", &ed_key], &multi);
    assert_eq!(json["cose"], "COSE_Sign");
    assert_eq!(json["verified"], true);
    assert_eq!(json["verified-with"]["alg"], -19);
    assert_eq!(json["verified-with"]["key"], ed_key.as_str());

    // A non-TEEP payload (an EAT claims set) is checked the same way.
    let eat = sign1(&ed, &[0xa1, 0x0a, 0x42, 1, 2]);
    let json = inspect_json(&["inspect", "--trust", &ed_key], &eat);
    assert_eq!(json["verified"], true);
    assert_eq!(json["verified-with"]["alg"], -19);
    assert_eq!(json["payload"], serde_json::json!({ "10": "0102" }));

    // Nothing signed: with keys, false and why; without, no "verified" at all.
    let bare = vector("teep/success.hex");
    let json = inspect_file(&["--trust", &ed_key], &bare);
    assert_eq!(json["verified"], false);
    assert!(json["reason"].as_str().unwrap().contains("not signed"));
    assert!(inspect_file(&[], &bare).get("verified").is_none());
    let json = inspect_json(&["inspect", "--trust", &ed_key], b"a1 6161 01");
    assert_eq!(json["verified"], false);
}

/// `teep ... | head`: a reader that closes the pipe early ends the command quietly (no
/// panic message, exit 0), for every command that prints.
#[test]
fn closed_stdout_pipe_exits_quietly() {
    let (qr, update, suit, signer) = (
        common::vector("teep/query_request.hex"),
        common::vector("teep/update.hex"),
        common::vector("teep/suit_integrated.hex"),
        common::vector("suit/keys/suit-example-signer-p256.public.pem"),
    );
    let cases: [&[&str]; 5] = [
        &["inspect", &qr],
        &["inspect", "--diag", &update],
        &["suit", "inspect", &suit],
        &["suit", "verify", "--key", &signer, &suit],
        &["keys", "thumbprint", &signer],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // every write to stdout now fails with EPIPE
        let out = common::teep()
            .args(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
}
