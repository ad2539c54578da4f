//! `teep_proto::decode` (no_std core, both numberings) and `decode_unverified_cose` on
//! arbitrary bytes: never a panic; whatever decodes re-encodes, decodes to the same
//! message, and re-encodes to the same bytes (the encoder is deterministic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use teep_proto::{Numbering, decode, decode_unverified_cose};

fuzz_target!(|data: &[u8]| {
    for numbering in [Numbering::Draft26, Numbering::Pre26] {
        if let Ok(message) = decode(data, numbering) {
            let bytes = message
                .encode(numbering)
                .expect("a decoded message encodes");
            let again = decode(&bytes, numbering).expect("our encoding decodes");
            assert_eq!(again, message);
            assert_eq!(again.encode(numbering).expect("encodes"), bytes);
        }
    }
    if let Ok(cose) = decode_unverified_cose(data) {
        let _ = cose.message(Numbering::Draft26);
    }
});
