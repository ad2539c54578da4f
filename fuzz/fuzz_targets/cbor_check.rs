//! `teep_cbor::check` on arbitrary bytes: it must never panic, the profiles must nest
//! (whatever EAT or DETERMINISTIC accepts, TEEP accepts too), and whatever TEEP accepts must
//! decode with an independent parser (cbor-diag), so the checker never waves through
//! malformed input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teep_cbor::{Profile, check, check_prefix};

fuzz_target!(|data: &[u8]| {
    let teep = check(data, &Profile::TEEP);
    for strict in [Profile::EAT, Profile::DETERMINISTIC] {
        if check(data, &strict).is_ok() {
            assert!(
                teep.is_ok(),
                "stricter profile accepted what TEEP rejects: {teep:?}"
            );
        }
    }
    if teep.is_ok() {
        let parsed = cbor_diag::parse_bytes(data);
        assert!(
            parsed.is_ok(),
            "TEEP accepted what cbor-diag rejects: {parsed:?}"
        );
    }
    match check_prefix(data, &Profile::TEEP) {
        Ok(end) => {
            assert!(end > 0 && end <= data.len());
            assert_eq!(teep.is_ok(), end == data.len());
        }
        Err(err) => assert_eq!(teep, Err(err)),
    }
});
