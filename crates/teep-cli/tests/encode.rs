//! `teep encode`: `teep inspect`'s JSON back to the same CBOR, for every TEEP vector bare
//! (both numberings) and signed; `--key` signs afresh; hostile JSON is refused with its path.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{ok, teep};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn encode_stdin(args: &[&str], json: &str) -> std::process::Output {
    let mut child = teep()
        .arg("encode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn round_trip(file: &Path, numbering: &str) {
    let view = ok(teep()
        .args(["inspect", "--numbering", numbering])
        .arg(file)
        .output()
        .unwrap());
    let hex = ok(encode_stdin(&["--numbering", numbering], &view));
    let want = std::fs::read_to_string(file).unwrap();
    assert_eq!(hex.trim(), want.trim(), "{}", file.display());
}

#[test]
fn inspect_then_encode_gives_every_vector_back() {
    let mut seen = 0;
    for name in [
        "query_request",
        "query_response",
        "update",
        "success",
        "error",
    ] {
        round_trip(&root().join(format!("teep/{name}.hex")), "26");
        round_trip(
            &root().join(format!("teep/pre-26-numbering/{name}.hex")),
            "pre26",
        );
        seen += 2;
    }
    for entry in std::fs::read_dir(root().join("signed")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".cose.hex") {
            round_trip(&path, "26");
            seen += 1;
        }
    }
    assert_eq!(seen, 36);
}

#[test]
fn key_signs_and_out_writes_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signed.cbor");
    let view = ok(teep()
        .arg("inspect")
        .arg(root().join("teep/success.hex"))
        .output()
        .unwrap());
    let keys = root().join("signed/keys");
    ok(encode_stdin(
        &[
            "--key",
            keys.join("esp256.priv.pem").to_str().unwrap(),
            "--key",
            keys.join("ed25519.priv.pem").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &view,
    ));
    let shown: serde_json::Value = serde_json::from_str(&ok(teep()
        .arg("inspect")
        .arg("--trust")
        .arg(keys.join("ed25519.pub.pem"))
        .arg(&out)
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(shown["cose"], "COSE_Sign");
    assert_eq!(shown["verified"], true);
    assert_eq!(shown["signatures"].as_array().unwrap().len(), 2);
    assert_eq!(shown["payload"]["type"], "success");
}

#[test]
fn hostile_json_is_refused_with_its_path() {
    let cases = [
        ("not json", "not a JSON document"),
        (r#"{"type":"success","token":"00112233445566"}"#, "$.token"),
        (
            r#"{"type":"success","token":"0011223344556677","extra":1}"#,
            "$.extra",
        ),
        (
            r#"{"type":"query-response","ext-list":[18446744073709551616]}"#,
            "$.ext-list[0]",
        ),
        (
            &format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            "not a JSON document",
        ),
    ];
    for (json, says) in cases {
        let out = encode_stdin(&[], json);
        assert_eq!(out.status.code(), Some(2), "{json:.60}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{json:.60}: {err}");
    }
}
