//! One row per error kind: the input, the profile, and the kind and byte offset expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use teep_cbor::{CborError, CborErrorKind as K, Profile, check, check_prefix};

fn bytes(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text.replace(' ', "")).unwrap()
}

#[test]
fn each_error_kind_at_its_offset() {
    let teep = Profile::TEEP;
    let eat = Profile::EAT;
    let det = Profile::DETERMINISTIC;
    let cases: &[(&str, &str, Profile, K, usize)] = &[
        ("empty input", "", teep, K::Truncated, 0),
        ("array missing its 2nd item", "82 01", teep, K::Truncated, 2),
        (
            "head missing its argument byte",
            "81 18",
            teep,
            K::Truncated,
            1,
        ),
        (
            "byte string shorter than its length",
            "82 00 43 01 02",
            teep,
            K::Truncated,
            2,
        ),
        (
            "indefinite array without break",
            "9f 01",
            teep,
            K::Truncated,
            2,
        ),
        ("two items", "01 02", teep, K::TrailingBytes, 1),
        ("ai 28", "1c", teep, K::ReservedAdditionalInfo, 0),
        (
            "ai 30 in a nested head",
            "82 01 5e",
            teep,
            K::ReservedAdditionalInfo,
            2,
        ),
        (
            "indefinite unsigned",
            "1f",
            teep,
            K::ReservedAdditionalInfo,
            0,
        ),
        (
            "indefinite tag",
            "df 01",
            teep,
            K::ReservedAdditionalInfo,
            0,
        ),
        ("lone break", "ff", teep, K::UnexpectedBreak, 0),
        (
            "break in a definite array",
            "82 01 ff",
            teep,
            K::UnexpectedBreak,
            2,
        ),
        (
            "break between key and value",
            "bf 01 ff",
            teep,
            K::UnexpectedBreak,
            2,
        ),
        ("break after a tag", "9f c1 ff", teep, K::UnexpectedBreak, 2),
        (
            "two-byte simple value 31",
            "f8 1f",
            teep,
            K::InvalidSimpleValue,
            0,
        ),
        (
            "text chunk in a byte string",
            "5f 61 61 ff",
            teep,
            K::InvalidChunk,
            1,
        ),
        (
            "nested indefinite chunk",
            "7f 7f ff ff",
            teep,
            K::InvalidChunk,
            1,
        ),
        (
            "lone continuation byte",
            "82 00 62 61 80",
            teep,
            K::InvalidUtf8,
            4,
        ),
        (
            "invalid UTF-8 in 2nd chunk",
            "7f 61 61 61 c3 ff",
            teep,
            K::InvalidUtf8,
            4,
        ),
        (
            "character split between chunks",
            "7f 61 c3 61 a9 ff",
            teep,
            K::InvalidUtf8,
            2,
        ),
        ("indefinite array", "9f ff", eat, K::IndefiniteLength, 0),
        (
            "indefinite byte string",
            "81 5f ff",
            det,
            K::IndefiniteLength,
            1,
        ),
        ("1 as 0x1801", "18 01", eat, K::NonPreferredHead, 0),
        (
            "length 255 in 2 bytes",
            "82 00 59 00 ff",
            eat,
            K::NonPreferredHead,
            2,
        ),
        (
            "tag 1 in 4 bytes",
            "da 00 00 00 01 00",
            det,
            K::NonPreferredHead,
            0,
        ),
        (
            "2^32-1 in 8 bytes",
            "1b 00 00 00 00 ff ff ff ff",
            eat,
            K::NonPreferredHead,
            0,
        ),
        ("1.0 as f32", "fa 3f 80 00 00", eat, K::NonPreferredFloat, 0),
        (
            "1.5 as f64",
            "fb 3f f8 00 00 00 00 00 00",
            det,
            K::NonPreferredFloat,
            0,
        ),
        (
            "100000.0 as f64 (fits f32)",
            "fb 40 f8 6a 00 00 00 00 00",
            eat,
            K::NonPreferredFloat,
            0,
        ),
        ("NaN as f32", "fa 7f c0 00 00", eat, K::NonPreferredFloat, 0),
        (
            "duplicate key",
            "a2 01 00 01 00",
            teep,
            K::DuplicateMapKey,
            3,
        ),
        (
            "duplicate text key",
            "a3 61 61 00 61 62 00 61 61 00",
            eat,
            K::DuplicateMapKey,
            7,
        ),
        (
            "duplicate key, sorted profile",
            "a2 01 00 01 00",
            det,
            K::DuplicateMapKey,
            3,
        ),
        (
            "same key, other encoding",
            "a2 01 00 18 01 00",
            teep,
            K::DuplicateMapKey,
            3,
        ),
        (
            "same key, chunked",
            "a2 62 61 62 00 7f 61 61 61 62 ff 00",
            teep,
            K::DuplicateMapKey,
            5,
        ),
        (
            "same float key, other width",
            "a2 f9 3c 00 00 fb 3f f0 00 00 00 00 00 00 00",
            teep,
            K::DuplicateMapKey,
            5,
        ),
        (
            "duplicate in an indefinite map",
            "bf 02 00 02 00 ff",
            teep,
            K::DuplicateMapKey,
            3,
        ),
        ("3 before 1", "a2 03 00 01 00", det, K::UnsortedMapKeys, 3),
        (
            "-1 before 24 (bytewise: 0x20 > 0x18)",
            "a2 20 00 18 18 00",
            det,
            K::UnsortedMapKeys,
            3,
        ),
        ("tag in EAT", "c1 00", eat, K::TagNotAllowed, 0),
        (
            "depth 3 over limit 2",
            "81 81 81 00",
            teep.with_max_depth(2),
            K::TooDeep,
            2,
        ),
        (
            "tags count for depth",
            "c1 c1 00",
            teep.with_max_depth(1),
            K::TooDeep,
            1,
        ),
        (
            "empty array still nests",
            "81 80",
            teep.with_max_depth(1),
            K::TooDeep,
            1,
        ),
        (
            "longer than max_size",
            "43 01 02 03",
            teep.with_max_size(3),
            K::TooLarge,
            3,
        ),
        (
            "length claims more than max_size",
            "5a 00 10 00 00 00 00",
            teep.with_max_size(6),
            K::TooLarge,
            6,
        ),
    ];
    for (what, input, profile, kind, offset) in cases {
        let got = check(&bytes(input), profile);
        assert_eq!(
            got,
            Err(CborError {
                offset: *offset,
                kind: *kind
            }),
            "{what}: {input}"
        );
    }
}

#[test]
fn well_formed_edge_cases_pass_teep() {
    for input in [
        "00",
        "f8 20",          // simple(32), first valid two-byte simple value
        "f9 7e 00",       // NaN
        "5f 41 01 40 ff", // chunked byte string with an empty chunk
        "7f ff",          // empty chunked text
        "bf 01 9f ff 02 bf ff ff",
        "c1 c2 40",
        "a2 18 01 00 02 00", // 1 (non-preferred) and 2 are different keys
        "63 e2 82 ac",       // euro sign
    ] {
        assert_eq!(check(&bytes(input), &Profile::TEEP), Ok(()), "{input}");
    }
}

#[test]
fn limits_are_inclusive() {
    assert_eq!(
        check(&bytes("81 81 00"), &Profile::TEEP.with_max_depth(2)),
        Ok(())
    );
    assert_eq!(
        check(&bytes("43 01 02 03"), &Profile::TEEP.with_max_size(4)),
        Ok(())
    );
    assert_eq!(
        check(&bytes("00"), &Profile::TEEP.with_max_depth(0)),
        Ok(())
    );
}

#[test]
fn large_maps_find_duplicates_after_sorting() {
    // 20 distinct keys then a repeat of key 5: beyond the pairwise window of 16.
    let mut input = vec![0xb4];
    for k in 0u8..20 {
        input.extend_from_slice(&[k, 0xf6]);
    }
    assert_eq!(check(&input, &Profile::TEEP), Ok(()));
    input[0] = 0xb5;
    let repeat_at = input.len();
    input.extend_from_slice(&[0x18, 0x05, 0xf6]); // 5, non-preferred: same key
    assert_eq!(
        check(&input, &Profile::TEEP),
        Err(CborError {
            offset: repeat_at,
            kind: K::DuplicateMapKey
        })
    );
    input.truncate(repeat_at);
    input.extend_from_slice(&[0x18, 0x20, 0xf6]); // 32: new key
    assert_eq!(check(&input, &Profile::TEEP), Ok(()));
}

#[test]
fn keys_of_nested_maps_do_not_mix() {
    // {1: {1: 0}, 2: {1: 0}}: the inner 1s belong to different maps.
    assert_eq!(
        check(
            &bytes("a2 01 a1 01 00 02 a1 01 00"),
            &Profile::DETERMINISTIC
        ),
        Ok(())
    );
    // A map as a key that holds a repeat of the outer key: still fine.
    assert_eq!(
        check(&bytes("a2 01 00 a1 01 00 00"), &Profile::TEEP),
        Ok(())
    );
}

#[test]
fn prefix_reports_the_first_item_length() {
    assert_eq!(
        check_prefix(&bytes("82 01 02 ff ff"), &Profile::TEEP),
        Ok(3)
    );
    // An item that fits max_size followed by more input is fine for a prefix check.
    assert_eq!(
        check_prefix(&bytes("41 00 00 00"), &Profile::TEEP.with_max_size(2)),
        Ok(2)
    );
}

#[test]
fn display_names_what_and_where() {
    let err = check(&bytes("a2 01 00 01 00"), &Profile::TEEP).unwrap_err();
    assert_eq!(err.to_string(), "duplicate map key at byte 3");
}

#[test]
fn custom_profile_sorts_keys_by_their_canonical_encoding() {
    // Sorted keys but any encoding: order and equality follow the canonical form of each key.
    let sorted_any_encoding = Profile {
        require_sorted_keys: true,
        ..Profile::TEEP
    };
    assert_eq!(
        check(&bytes("a2 01 00 19 00 02 00"), &sorted_any_encoding),
        Ok(())
    );
    assert_eq!(
        check(&bytes("a2 18 02 00 01 00"), &sorted_any_encoding),
        Err(CborError {
            offset: 4,
            kind: K::UnsortedMapKeys
        })
    );
    assert_eq!(
        check(&bytes("a2 5f 41 01 ff 00 41 01 00"), &sorted_any_encoding),
        Err(CborError {
            offset: 6,
            kind: K::DuplicateMapKey
        })
    );
}
