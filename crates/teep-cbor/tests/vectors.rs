//! The draft's TEEP and SUIT examples are accepted as peers send them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use std::path::Path;

use teep_cbor::{CborErrorKind, Profile, check};

fn hex_vectors(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(dir);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        // The TC binary is the raw Trusted Application ("Hello, Secure World!"), not CBOR.
        if path.extension().is_some_and(|e| e == "hex") && !name.starts_with("tc_binary") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((
                path.display().to_string(),
                hex::decode(text.trim()).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn every_teep_vector_passes_the_teep_profile() {
    let mut count = 0;
    for dir in ["teep", "teep/pre-26-numbering"] {
        for (name, bytes) in hex_vectors(dir) {
            assert_eq!(check(&bytes, &Profile::TEEP), Ok(()), "{name}");
            count += 1;
        }
    }
    // 5 messages and 3 SUIT envelopes at the top, 5 messages with the pre-26 numbers.
    assert_eq!(count, 13);
}

#[test]
fn draft_messages_use_preferred_serialization_but_not_sorted_keys() {
    let vectors = hex_vectors("teep");
    let query_request = &vectors
        .iter()
        .find(|(n, _)| n.ends_with("/query_request.hex"))
        .unwrap()
        .1;
    assert_eq!(check(query_request, &Profile::EAT), Ok(()));
    // The draft's QueryRequest lists token (19) before versions (3): it is not deterministic.
    let err = check(query_request, &Profile::DETERMINISTIC).unwrap_err();
    assert_eq!(err.kind, CborErrorKind::UnsortedMapKeys);
}

#[test]
fn every_truncation_of_a_vector_is_rejected() {
    for (name, bytes) in hex_vectors("teep") {
        for cut in 0..bytes.len() {
            let err = check(&bytes[..cut], &Profile::TEEP).unwrap_err();
            assert_eq!(err.kind, CborErrorKind::Truncated, "{name} cut at {cut}");
        }
    }
}
