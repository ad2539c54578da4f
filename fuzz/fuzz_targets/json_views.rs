//! The JSON views `teep inspect` and the Verifier print or read, on arbitrary input. The
//! first byte picks the view: 0: a TEEP message (both numberings) and a COSE-wrapped one
//! (`teep_proto::json`); 1: a SUIT envelope and a bare command sequence
//! (`teep_suit::json`); 2: an EAR (`Ear::to_json`); 3: the rest as UTF-8 text for the
//! claims-file and policy-file readers (`EatClaims::from_json`, `Policy::from_json`).
//!
//! Asserts: no panic; every view renders; a claims file that reads encodes to an EAT
//! claims-set that decodes to the same claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teep_attest::{Ear, EatClaims, Policy};
use teep_cose::AwsLcProvider;
use teep_proto::json::SignatureCheck;
use teep_proto::{Numbering, Unverified, decode_unsigned, decode_unverified_cose};

fuzz_target!(|data: &[u8]| {
    let Some((&view, rest)) = data.split_first() else {
        return;
    };
    match view {
        0 => {
            for numbering in [Numbering::Draft26, Numbering::Pre26] {
                if let Ok(message) = decode_unsigned(rest, numbering) {
                    let _ = teep_proto::json::to_json(&message, numbering).to_string();
                }
            }
            for numbering in [Numbering::Draft26, Numbering::Pre26] {
                if let Ok(message) = Unverified::parse(rest, numbering) {
                    let view = teep_proto::json::to_json(message.message(), numbering);
                    let _ = teep_proto::json::cose_view(
                        message.cose(),
                        &SignatureCheck::NotChecked,
                        view,
                    )
                    .to_string();
                }
            }
            if let Ok(cose) = decode_unverified_cose(rest) {
                let _ = teep_proto::json::cose_view(
                    &cose,
                    &SignatureCheck::Failed("fuzz"),
                    serde_json::Value::Null,
                )
                .to_string();
            }
        }
        1 => {
            if let Ok(json) = teep_suit::json::envelope(rest, &AwsLcProvider) {
                let _ = json.to_string();
            }
            let _ = teep_suit::json::sequence(rest, 0).to_string();
        }
        2 => {
            if let Ok(ear) = Ear::from_cbor(rest) {
                let _ = ear.to_json().to_string();
            }
        }
        3 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(claims) = EatClaims::from_json(text) {
                let bytes = claims.to_cbor().expect("claims read from a file encode");
                assert_eq!(
                    EatClaims::from_cbor(&bytes).as_ref(),
                    Ok(&claims),
                    "claims file does not round-trip through CBOR"
                );
            }
            let _ = Policy::from_json(text);
        }
        _ => {}
    }
});
