//! TEEP Evidence decoding on arbitrary bytes: `EatClaims::from_cbor` and `Ear::from_cbor`
//! must never panic, and whatever claims-set decodes must re-encode (deterministically, in
//! the EAT profile) to bytes that decode to the same claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teep_attest::{Ear, EatClaims};

fuzz_target!(|data: &[u8]| {
    if let Ok(claims) = EatClaims::from_cbor(data) {
        let again = claims.to_cbor().expect("a decoded claims-set encodes");
        assert_eq!(EatClaims::from_cbor(&again).as_ref(), Ok(&claims));
    }
    if let Ok(ear) = Ear::from_cbor(data) {
        let again = ear.to_cbor().expect("a decoded EAR encodes");
        assert_eq!(Ear::from_cbor(&again).as_ref(), Ok(&ear));
    }
});
