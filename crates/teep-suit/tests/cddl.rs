//! What the builder and signer emit validates against the SUIT CDDL (tests/suit.cddl,
//! written from the spec digest), checked with the `cddl` crate; the published vectors
//! validate too, which checks the CDDL file itself.

mod common;

use common::*;
use teep_cose::{Algorithm, CryptoProvider, Curve, PrivateKey};
use teep_suit::ComponentId;
use teep_suit::builder::{self, DependencySpec, ManifestSpec, PayloadLocation};

const CDDL: &str = include_str!("suit.cddl");

/// Validates an envelope. Integrated payloads are checked by hand (tstr key, bstr value:
/// `Envelope::decode` accepts nothing else) and the rest against the CDDL, because
/// cddl 0.10.7 cannot mix `* tstr => bstr` with integer keys.
fn validate(bytes: &[u8]) -> Result<(), String> {
    let env = teep_suit::Envelope::decode(bytes).map_err(|e| e.to_string())?;
    assert!(
        env.severed.is_empty(),
        "stripping would drop severed elements"
    );
    cddl::validate_cbor_from_slice(CDDL, &env.stripped(), None).map_err(|e| e.to_string())
}

fn spec(name: &str) -> ManifestSpec {
    ManifestSpec {
        component_id: ComponentId::from_strs(&["TEEP-Device", "SecureFS", name, "ta"]),
        manifest_component_id: None,
        sequence_number: 7,
        payload: b"payload".to_vec(),
        location: PayloadLocation::Integrated("#tc".into()),
        vendor_id: Some([1; 16]),
        class_id: Some([2; 16]),
        reference_uri: Some("https://example.org/x.suit".into()),
        encrypt_to: None,
        dependencies: vec![],
    }
}

#[test]
fn built_and_signed_envelopes_validate() {
    let key = private_key("keys/suit-example-signer-p256.cose-key-private.hex");
    let signer = PROVIDER.signer(&key, Algorithm::Esp256).unwrap();
    let tee = PrivateKey::generate(Curve::P256).unwrap();
    let lib = builder::sign(
        &builder::build(&spec("lib"), &PROVIDER).unwrap().envelope,
        signer.as_ref(),
        &PROVIDER,
    )
    .unwrap();
    let mut variants = vec![spec("plain")];
    let mut by_uri = spec("uri");
    by_uri.location = PayloadLocation::Uri("https://example.org/uri.ta".into());
    by_uri.vendor_id = None;
    by_uri.class_id = None;
    by_uri.reference_uri = None;
    variants.push(by_uri);
    let mut enc = spec("enc");
    enc.encrypt_to = Some(tee.public_key().clone());
    variants.push(enc);
    let mut dep = spec("dep");
    dep.dependencies = vec![DependencySpec { envelope: lib }];
    variants.push(dep);
    for s in &variants {
        let unsigned = builder::build(s, &PROVIDER).unwrap().envelope;
        validate(&unsigned).unwrap_or_else(|e| panic!("unsigned {:?}: {e}", s.component_id));
        let signed = builder::sign(&unsigned, signer.as_ref(), &PROVIDER).unwrap();
        validate(&signed).unwrap_or_else(|e| panic!("signed {:?}: {e}", s.component_id));
    }
}

#[test]
fn published_teep_vectors_validate_and_garbage_does_not() {
    for f in [
        "teep/suit_uri.hex",
        "teep/suit_integrated.hex",
        "teep/suit_personalization.hex",
    ] {
        validate(&hex_file(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    // An unknown command (99) and a manifest version 2 are outside the CDDL.
    for manifest in [
        // {1: 1, 2: 1, 3: << {} >>, 20: << [99, 15] >>}
        &[
            0xa4, 0x01, 0x01, 0x02, 0x01, 0x03, 0x41, 0xa0, 0x14, 0x43, 0x82, 0x18, 0x63, 0x0f,
        ][..],
        // {1: 2, 2: 1, 3: << {} >>}
        &[0xa3, 0x01, 0x02, 0x02, 0x01, 0x03, 0x41, 0xa0][..],
    ] {
        let env = builder::unsigned_envelope(manifest, &[], &PROVIDER).unwrap();
        assert!(validate(&env).is_err());
    }
    let ok = builder::unsigned_envelope(
        &[0xa3, 0x01, 0x01, 0x02, 0x01, 0x03, 0x41, 0xa0],
        &[],
        &PROVIDER,
    )
    .unwrap();
    validate(&ok).unwrap();
}

#[test]
fn reports_validate_against_the_report_cddl() {
    use teep_suit::processor::Processor;
    use teep_suit::storage::MemoryStorage;
    const REPORT_CDDL: &str = include_str!("report.cddl");
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let cases = [
        ("suit/teep/teep-tc-integrated.hex", true),
        (
            "suit/negative/teep-tc-integrated.payload-tampered.hex",
            false,
        ),
        ("suit/negative/teep-tc-uri.seq-tampered.hex", false),
    ];
    for (f, ok) in cases {
        let out = p.install(&mut MemoryStorage::new(), &hex_file(f), Some(b"token"));
        assert_eq!(out.result.is_ok(), ok, "{f}");
        cddl::validate_cbor_from_slice(REPORT_CDDL, &out.report.to_cbor().unwrap(), None)
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    // A report with a capability report (unknown command) and no nonce.
    let mut report = p
        .install(&mut MemoryStorage::new(), &hex_file(cases[1].0), None)
        .report;
    report.capabilities = true;
    cddl::validate_cbor_from_slice(REPORT_CDDL, &report.to_cbor().unwrap(), None).unwrap();
    // The CDDL does reject: an empty map lacks records, result and reference.
    assert!(cddl::validate_cbor_from_slice(REPORT_CDDL, &[0xa0], None).is_err());
}
