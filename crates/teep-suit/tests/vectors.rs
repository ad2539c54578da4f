//! Every envelope in tests/vectors/suit and the TEEP suit_*.hex files: decoding,
//! authentication, digests and severed elements exactly as expected.json says, and every
//! negative vector rejected with its typed reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use serde_json::Value;
use teep_cose::{CoseError, TrustStore};
use teep_suit::verify::{Anchors, authenticate, section_bytes};
use teep_suit::{Envelope, Member, Section, SuitError};

fn expected() -> Value {
    let text = std::fs::read_to_string(format!("{VECTORS}/suit/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn section_of(name: &str) -> Section {
    match name {
        "shared" => Section::Shared,
        "install" => Section::Install,
        "validate" => Section::Validate,
        "invoke" => Section::Invoke,
        "load" => Section::Load,
        "payload-fetch" => Section::PayloadFetch,
        "dependency-resolution" => Section::DependencyResolution,
        "uninstall" => Section::Uninstall,
        other => panic!("unknown section {other}"),
    }
}

fn hexs(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}

/// Checks one expected.json entry (recursively for nested integrated dependencies).
fn check_entry(bytes: &[u8], e: &Value) {
    let file = e["file"].as_str().unwrap();
    assert_eq!(bytes.len() as u64, e["bytes"].as_u64().unwrap(), "{file}");
    let auth = &e["auth"][0];
    let key_file = auth["verifies_with"][0].as_str().unwrap();
    // Only the named key (or MAC key) is trusted: verification must succeed with it.
    let mut trust = TrustStore::new();
    let mut macs = Vec::new();
    if key_file.contains("hmac") {
        macs = mac_keys();
    } else {
        trust.add_key(public_key(key_file));
    }
    let anchors = Anchors {
        signers: &trust,
        mac_keys: &macs,
        now: None,
    };
    let a = authenticate(bytes, &PROVIDER, &anchors).unwrap_or_else(|err| panic!("{file}: {err}"));
    assert_eq!(
        a.envelope.tagged,
        e["envelope_tag_107"].as_bool().unwrap(),
        "{file}"
    );
    assert_eq!(
        hex::encode(a.digest),
        hexs(&e["manifest_digest_sha256"]),
        "{file}"
    );
    assert_eq!(
        a.manifest.sequence_number,
        e["sequence_number"].as_u64().unwrap(),
        "{file}"
    );
    let components: Vec<Vec<String>> = a
        .manifest
        .common
        .components
        .iter()
        .map(|c| c.0.iter().map(hex::encode).collect())
        .collect();
    let want: Vec<Vec<String>> = serde_json::from_value(e["components"].clone()).unwrap();
    assert_eq!(components, want, "{file}");
    if let Some(mcid) = e.get("manifest_component_id") {
        let want: Vec<String> = serde_json::from_value(mcid.clone()).unwrap();
        let got: Vec<String> = a
            .manifest
            .manifest_component_id
            .as_ref()
            .unwrap()
            .0
            .iter()
            .map(hex::encode)
            .collect();
        assert_eq!(got, want, "{file}");
    }
    if let Some(deps) = e.get("dependencies") {
        for (index, meta) in deps.as_object().unwrap() {
            let dep = a
                .manifest
                .common
                .dependency(index.parse().unwrap())
                .unwrap();
            let want: Vec<String> = serde_json::from_value(meta["prefix"].clone()).unwrap();
            let got: Vec<String> = dep
                .prefix
                .as_ref()
                .unwrap()
                .0
                .iter()
                .map(hex::encode)
                .collect();
            assert_eq!(got, want, "{file}");
        }
    }
    if let Some(uri) = e.get("reference_uri") {
        assert_eq!(a.manifest.reference_uri, uri.as_str(), "{file}");
    }
    // expected.json lists the sequences a processor can use: present, or severed with the
    // element still in the envelope.
    let mut sections: Vec<&str> = a
        .manifest
        .sections()
        .into_iter()
        .filter(|s| section_bytes(&a, *s, &PROVIDER).is_ok())
        .map(|s| s.name())
        .collect();
    let mut want: Vec<&str> = e["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    sections.sort();
    want.sort();
    assert_eq!(sections, want, "{file}");
    for (name, sev) in e["severed"].as_object().unwrap() {
        let member = if name == "text" {
            a.manifest.text.clone().unwrap()
        } else {
            a.manifest.member(section_of(name)).unwrap()
        };
        let Member::Severed(d) = member.clone() else {
            panic!("{file}: {name} not severed")
        };
        assert_eq!(hex::encode(&d.bytes), hexs(&sev["severed_digest"]));
        let key = if name == "text" {
            23
        } else {
            section_of(name).key()
        };
        let resolved = teep_suit::verify::resolve_member(&a.envelope, member, key, &PROVIDER);
        if sev["present_in_envelope"].as_bool().unwrap() {
            assert!(resolved.is_ok(), "{file}: {name}");
        } else {
            assert_eq!(
                resolved,
                Err(SuitError::SeveredElementMissing(key)),
                "{file}"
            );
        }
    }
    // Every present, non-severed section decodes as a command sequence.
    for s in a.manifest.sections() {
        if let Ok(Some(bytes)) = section_bytes(&a, s, &PROVIDER) {
            teep_suit::parse_sequence(bytes, 0).unwrap_or_else(|err| panic!("{file} {s:?}: {err}"));
        }
    }
    for (key, info) in e["integrated"].as_object().unwrap() {
        let payload = a.envelope.integrated(key).unwrap();
        assert_eq!(
            hex::encode(PROVIDER_SHA(payload)),
            hexs(&info["sha256"]),
            "{file} {key}"
        );
        if let Some(nested) = info.get("nested") {
            check_entry(payload, nested);
        }
    }
}

#[allow(non_snake_case)]
fn PROVIDER_SHA(data: &[u8]) -> [u8; 32] {
    use teep_cose::CryptoProvider;
    PROVIDER.sha256(data)
}

#[test]
fn every_envelope_matches_expected_json() {
    let exp = expected();
    let entries = exp["envelopes"].as_array().unwrap();
    assert!(entries.len() >= 18);
    for e in entries {
        let bytes = hex_file(&format!("suit/{}", e["file"].as_str().unwrap()));
        check_entry(&bytes, e);
    }
}

#[test]
fn teep_suit_hex_files_verify_and_equal_the_suit_folder_copies() {
    let trust = vector_trust();
    let anchors = Anchors {
        signers: trust.store(),
        mac_keys: &[],
        now: None,
    };
    for (teep, suit) in [
        ("teep/suit_uri.hex", "suit/teep/teep-tc-uri.hex"),
        (
            "teep/suit_integrated.hex",
            "suit/teep/teep-tc-integrated.hex",
        ),
        (
            "teep/suit_personalization.hex",
            "suit/teep/teep-personalization.hex",
        ),
    ] {
        let bytes = hex_file(teep);
        assert_eq!(bytes, hex_file(suit), "{teep}");
        let a = authenticate(&bytes, &PROVIDER, &anchors).unwrap();
        assert!(!a.envelope.tagged);
        assert_eq!(a.manifest.sequence_number, 3);
    }
}

#[test]
fn wrong_key_is_rejected_as_untrusted_or_bad_signature() {
    // td-ex0 is signed by the example signer; trusting only the dependent signer fails.
    let bytes = hex_file("suit/trust-domains/td-ex0-dependency.hex");
    let mut trust = TrustStore::new();
    trust.add_key(dependent_signer());
    let anchors = Anchors {
        signers: &trust,
        mac_keys: &[],
        now: None,
    };
    let err = authenticate(&bytes, &PROVIDER, &anchors).unwrap_err();
    assert!(
        matches!(
            err,
            SuitError::Authentication(CoseError::BadSignature | CoseError::UntrustedSigner)
        ),
        "{err:?}"
    );
    // A MAC envelope with the wrong MAC key.
    let bytes = hex_file("suit/firmware-encryption/fwenc-manifest-aeskw-write.hex");
    let wrong = vec![vec![0x62; 32]];
    let anchors = Anchors {
        signers: &trust,
        mac_keys: &wrong,
        now: None,
    };
    assert_eq!(
        authenticate(&bytes, &PROVIDER, &anchors).unwrap_err(),
        SuitError::Authentication(CoseError::BadSignature)
    );
}

fn anchors_all<'a>(trust: &'a TrustStore, macs: &'a [Vec<u8>]) -> Anchors<'a> {
    Anchors {
        signers: trust,
        mac_keys: macs,
        now: None,
    }
}

#[test]
fn negative_seq_tampered_fails_the_digest_check() {
    let trust = vector_trust();
    let bytes = hex_file("suit/negative/teep-tc-uri.seq-tampered.hex");
    assert_eq!(
        authenticate(&bytes, &PROVIDER, &anchors_all(trust.store(), &[])).unwrap_err(),
        SuitError::ManifestDigestMismatch
    );
}

#[test]
fn negative_seq_tampered_redigested_fails_the_signature() {
    let trust = vector_trust();
    let bytes = hex_file("suit/negative/teep-tc-uri.seq-tampered-redigested.hex");
    // Without a kid, a signature that no anchor verifies is reported as an untrusted
    // signer (teep-cose's rule); the digest itself matched.
    assert_eq!(
        authenticate(&bytes, &PROVIDER, &anchors_all(trust.store(), &[])).unwrap_err(),
        SuitError::Authentication(CoseError::UntrustedSigner)
    );
}

#[test]
fn negative_install_element_tampered_is_refused_when_used() {
    let trust = vector_trust();
    let bytes = hex_file("suit/negative/manifest-ex2.install-element-tampered.hex");
    let a = authenticate(&bytes, &PROVIDER, &anchors_all(trust.store(), &[])).unwrap();
    assert_eq!(
        section_bytes(&a, Section::Install, &PROVIDER),
        Err(SuitError::SeveredElementDigestMismatch(20))
    );
    // The text element still matches.
    let text = a.manifest.text.clone().unwrap();
    assert!(teep_suit::verify::resolve_member(&a.envelope, text, 23, &PROVIDER).is_ok());
}

#[test]
fn negative_payload_and_dependency_tampering_keep_the_envelope_valid() {
    // Both edits are outside the outer signature; the processor tests show the failures.
    let trust = vector_trust();
    for f in [
        "suit/negative/teep-tc-integrated.payload-tampered.hex",
        "suit/negative/td-ex2.integrated-dependency-tampered.hex",
    ] {
        let bytes = hex_file(f);
        assert!(
            authenticate(&bytes, &PROVIDER, &anchors_all(trust.store(), &[])).is_ok(),
            "{f}"
        );
    }
    // The tampered integrated dependency no longer matches its own authenticated digest.
    let bytes = hex_file("suit/negative/td-ex2.integrated-dependency-tampered.hex");
    let env = Envelope::decode(&bytes).unwrap();
    let inner = env.integrated("#dependent.suit").unwrap();
    assert_eq!(
        authenticate(inner, &PROVIDER, &anchors_all(trust.store(), &[])).unwrap_err(),
        SuitError::ManifestDigestMismatch
    );
}

#[test]
fn malformed_inputs_are_typed_errors() {
    let good = hex_file("suit/teep/teep-tc-uri.hex");
    for len in 0..good.len() {
        let r = Envelope::decode(&good[..len]);
        assert!(
            matches!(r, Err(SuitError::Malformed { .. })),
            "prefix {len}"
        );
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        Envelope::decode(&trailing),
        Err(SuitError::Malformed { .. })
    ));
    // A manifest version other than 1 is refused before anything else.
    assert_eq!(
        teep_suit::Manifest::decode(&[0xa1, 0x01, 0x02]),
        Err(SuitError::UnsupportedVersion(2))
    );
    // Unknown envelope member.
    assert_eq!(
        Envelope::decode(&[0xa1, 0x19, 0x01, 0x00, 0x40]),
        Err(SuitError::UnsupportedMember {
            container: "envelope",
            key: 256
        })
    );
}
