//! Untrusted input never panics: arbitrary bytes through every decoder, and single-byte
//! mutations of real envelopes through authentication and the processor (which must leave
//! storage untouched whenever it fails).

mod common;

use common::*;
use proptest::prelude::*;
use teep_suit::storage::MemoryStorage;
use teep_suit::{Envelope, Manifest, parse_sequence};

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::decode(&bytes);
        let _ = Manifest::decode(&bytes);
        let _ = parse_sequence(&bytes, 0);
        #[cfg(feature = "json")]
        let _ = teep_suit::json::envelope(&bytes, &PROVIDER);
    }

    #[test]
    fn mutated_envelopes_fail_cleanly(
        which in 0usize..4,
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let files = [
            "suit/teep/teep-tc-integrated.hex",
            "suit/teep/teep-personalization.hex",
            "suit/trust-domains/td-ex2-integrated-dependency.hex",
            "suit/manifest/manifest-ex3-ab-images.hex",
        ];
        let mut env = hex_file(files[which]);
        let i = at.index(env.len());
        env[i] ^= xor;
        let teep = TeepSetup::new();
        let p = teep.processor();
        let mut store = MemoryStorage::new();
        let out = p.install(&mut store, &env, None);
        out.report.to_cbor().unwrap();
        if out.result.is_err() {
            prop_assert_eq!(store, MemoryStorage::new());
        }
    }
}
