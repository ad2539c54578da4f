//! Properties: decode_unsigned(encode(m)) == m for arbitrary valid messages in both numberings;
//! encoding is deterministic; decoding arbitrary or mutated bytes never panics.

mod common;

use proptest::prelude::*;
use teep_proto::decode_unsigned;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn round_trip((numbering, m) in common::numbered_message(false)) {
        let bytes = m.encode(numbering).unwrap();
        prop_assert_eq!(decode_unsigned(&bytes, numbering).unwrap(), m.clone());
        // Deterministic: the decoded message re-encodes to the same bytes.
        prop_assert_eq!(decode_unsigned(&bytes, numbering).unwrap().encode(numbering).unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in common::numbering()) {
        let _ = decode_unsigned(&bytes, n);
        let _ = teep_proto::Unverified::parse(&bytes, n);
    }

    /// Flip, insert or delete bytes of the draft's vectors: never a panic, and whatever
    /// still decodes re-encodes and decodes to the same message.
    #[test]
    fn mutated_vectors_never_panic(
        which in 0usize..10,
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let (numbering, _, mut bytes) = common::all_vectors().swap_remove(which);
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if !bytes.is_empty() => bytes[i] = byte,
                1 => bytes.insert(i.min(bytes.len()), byte),
                _ if !bytes.is_empty() => { bytes.remove(i); }
                _ => {}
            }
        }
        if let Ok(m) = decode_unsigned(&bytes, numbering) {
            let re = m.encode(numbering).unwrap();
            prop_assert_eq!(decode_unsigned(&re, numbering).unwrap(), m);
        }
    }
}
