//! `teep_proto::decode_unsigned` (no_std core, both numberings) and `Unverified::parse` on
//! arbitrary bytes: never a panic; whatever decodes re-encodes, decodes to the same
//! message, and re-encodes to the same bytes (the encoder is deterministic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use teep_proto::{Numbering, Unverified, decode_unsigned};

fuzz_target!(|data: &[u8]| {
    for numbering in [Numbering::Draft26, Numbering::Pre26] {
        if let Ok(message) = decode_unsigned(data, numbering) {
            let bytes = message
                .encode(numbering)
                .expect("a decoded message encodes");
            let again = decode_unsigned(&bytes, numbering).expect("our encoding decodes");
            assert_eq!(again, message);
            assert_eq!(again.encode(numbering).expect("encodes"), bytes);
        }
    }
    let _ = Unverified::parse(data, Numbering::Draft26);
});
