//! SUIT envelope decoding on arbitrary bytes: decoding, manifest and command-sequence
//! parsing, authentication (against an empty trust store) and the JSON view must never
//! panic; a decoded envelope's stripped form decodes to the same manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teep_cose::{AwsLcProvider, TrustStore};
use teep_suit::verify::{Anchors, authenticate};
use teep_suit::{Envelope, Manifest, Section, parse_sequence};

fuzz_target!(|data: &[u8]| {
    let provider = AwsLcProvider;
    let trust = TrustStore::new();
    let anchors = Anchors {
        signers: &trust,
        mac_keys: &[],
        now: None,
    };
    assert!(authenticate(data, &provider, &anchors).is_err());
    let _ = teep_suit::json::envelope(data, &provider);
    let Ok(env) = Envelope::decode(data) else {
        return;
    };
    let stripped = env.stripped();
    let again = Envelope::decode(&stripped).expect("stripped envelope decodes");
    assert_eq!(again.manifest_bstr, env.manifest_bstr);
    assert_eq!(again.authentication, env.authentication);
    let Ok(manifest) = Manifest::decode(env.manifest_bytes) else {
        return;
    };
    for s in manifest.sections() {
        if let Some(teep_suit::Member::Present(bytes)) = manifest.member(s) {
            let _ = parse_sequence(bytes, 0);
        }
    }
    let _ = manifest.member(Section::Install);
});
