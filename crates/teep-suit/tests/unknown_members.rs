//! Members this crate does not know: shown by the JSON view (as `unknown-KEY`), refused by
//! decoding for processing, authentication and the processor. The envelopes are made by
//! hand: the builder never writes such members and `builder::sign` refuses them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![cfg(feature = "json")]

mod common;
use common::{PROVIDER, private_key, teep_device, vector_trust};

use minicbor::Encoder;
use teep_cose::{CryptoProvider as _, SignOptions};
use teep_suit::processor::Processor;
use teep_suit::storage::MemoryStorage;
use teep_suit::verify::{Anchors, authenticate};
use teep_suit::{Envelope, Manifest, SuitError};

/// `[1, "abc"]`, the value of the unknown members.
const VALUE: &[u8] = &[0x82, 0x01, 0x63, b'a', b'b', b'c'];

/// `{1: 1, 2: 7, 3: << {2: [[h'00']]} >>, 99: [1, "abc"]}`.
fn manifest_with_key_99() -> Vec<u8> {
    let mut common = Vec::new();
    let mut e = Encoder::new(&mut common);
    e.map(1).unwrap().u8(2).unwrap().array(1).unwrap();
    e.array(1).unwrap().bytes(&[0]).unwrap();
    let mut m = Vec::new();
    let mut e = Encoder::new(&mut m);
    e.map(4).unwrap();
    e.u8(1).unwrap().u8(1).unwrap();
    e.u8(2).unwrap().u8(7).unwrap();
    e.u8(3).unwrap().bytes(&common).unwrap();
    e.u8(99).unwrap();
    m.extend_from_slice(VALUE);
    m
}

/// A signed envelope `{2: auth, 3: manifest, extra...}` around `manifest`, signed by the
/// vectors' example signer over the manifest digest (what an attacker with a stolen
/// signing key, or a careless signer, would ship).
fn signed_envelope(manifest: &[u8], extra: &[(u8, &[u8])]) -> Vec<u8> {
    let unsigned = teep_suit::builder::unsigned_envelope(manifest, &[], &PROVIDER).unwrap();
    let env = Envelope::decode(&unsigned).unwrap();
    let key = private_key("keys/suit-example-signer-p256.cose-key-private.hex");
    let signer = PROVIDER.signer(&key, key.default_algorithm()).unwrap();
    let opts = SignOptions {
        detached: true,
        ..SignOptions::default()
    };
    let block = teep_cose::sign1(signer.as_ref(), env.authentication.digest_cbor, &opts).unwrap();
    let mut auth = Vec::new();
    let mut e = Encoder::new(&mut auth);
    e.array(2).unwrap();
    e.bytes(env.authentication.digest_cbor).unwrap();
    e.bytes(&block).unwrap();
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    e.map(2 + extra.len() as u64).unwrap();
    e.u8(2).unwrap().bytes(&auth).unwrap();
    e.u8(3).unwrap();
    out.extend_from_slice(env.manifest_bstr);
    for (key, value) in extra {
        Encoder::new(&mut out).u8(*key).unwrap();
        out.extend_from_slice(value);
    }
    out
}

#[test]
fn the_json_view_shows_unknown_manifest_and_envelope_members() {
    let env = signed_envelope(&manifest_with_key_99(), &[(99, VALUE)]);
    let view = teep_suit::json::envelope(&env, &PROVIDER).unwrap();
    assert_eq!(view["manifest"]["unknown-99"], hex::encode(VALUE));
    assert_eq!(view["unknown-99"], hex::encode(VALUE));
    assert_eq!(view["manifest"]["manifest-sequence-number"], 7);
    assert_eq!(view["authentication-wrapper"]["digest-matches"], true);
}

#[test]
fn processing_refuses_unknown_members() {
    let manifest = manifest_with_key_99();
    assert_eq!(
        Manifest::decode(&manifest).unwrap_err(),
        SuitError::UnsupportedMember {
            container: "manifest",
            key: 99
        }
    );
    let kept = Manifest::decode_keeping_unknown(&manifest).unwrap();
    assert_eq!(kept.unknown.len(), 1);
    assert_eq!((kept.unknown[0].key, kept.unknown[0].value), (99, VALUE));

    let trust = vector_trust();
    let anchors = Anchors {
        signers: trust.store(),
        mac_keys: &[],
        now: None,
    };
    // Unknown envelope member: refused before anything is verified.
    let env = signed_envelope(&manifest, &[(99, VALUE)]);
    let refused = SuitError::UnsupportedMember {
        container: "envelope",
        key: 99,
    };
    assert_eq!(Envelope::decode(&env).unwrap_err(), refused);
    assert_eq!(
        authenticate(&env, &PROVIDER, &anchors).unwrap_err(),
        refused
    );
    // Unknown manifest member under a valid signature: refused once authenticated.
    let env = signed_envelope(&manifest, &[]);
    assert_eq!(
        authenticate(&env, &PROVIDER, &anchors).unwrap_err(),
        SuitError::UnsupportedMember {
            container: "manifest",
            key: 99
        }
    );
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let out = p.install(&mut store, &env, None);
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::UnsupportedMember {
            container: "manifest",
            key: 99
        }
    );
    assert!(store.data.is_empty() && store.sequence_numbers.is_empty());
}

/// `[[_ 1]]`: a definite array holding an indefinite-length one, hand-encoded.
const NESTED_INDEFINITE: &[u8] = &[0x81, 0x9f, 0x01, 0xff];
/// `[[1]]`: the same value with definite lengths.
const NESTED_DEFINITE: &[u8] = &[0x81, 0x81, 0x01];
/// `[{1: 0, 1: 0}]`: a repeated key one level down.
const NESTED_REPEATED_KEY: &[u8] = &[0x81, 0xa2, 0x01, 0x00, 0x01, 0x00];

fn not_well_formed(what: &'static str) -> impl Fn(&SuitError) -> bool {
    move |e| matches!(e, SuitError::Malformed { what: w, .. } if *w == what)
}

#[test]
fn indefinite_lengths_inside_skipped_members_are_refused() {
    let refused = not_well_formed("SUIT_Envelope is not well-formed CBOR");
    // The severed CoSWID (14) is carried, never decoded: its nested items are still checked.
    let ok = signed_envelope(&manifest_with_key_99(), &[(14, NESTED_DEFINITE)]);
    assert!(Envelope::decode(&ok).is_ok(), "the definite twin decodes");
    for bad in [NESTED_INDEFINITE, NESTED_REPEATED_KEY] {
        let env = signed_envelope(&manifest_with_key_99(), &[(14, bad)]);
        let e = Envelope::decode(&env).unwrap_err();
        assert!(refused(&e), "{e:?}");
        assert_eq!(e.reason(), teep_suit::ReportReason::CborParse);
        // Unknown members kept for showing are held to the same rules.
        let env = signed_envelope(&manifest_with_key_99(), &[(99, bad)]);
        let e = Envelope::decode_keeping_unknown(&env).unwrap_err();
        assert!(refused(&e), "{e:?}");
        // The processor refuses it before anything is verified, and stores nothing.
        let env = signed_envelope(&manifest_with_key_99(), &[(14, bad)]);
        let trust = vector_trust();
        let device = teep_device();
        let p = Processor::new(&PROVIDER, &trust, &device);
        let mut store = MemoryStorage::new();
        let out = p.install(&mut store, &env, None);
        assert!(refused(&out.result.unwrap_err().error));
        assert_eq!(store, MemoryStorage::new());
    }
    let ok = signed_envelope(&manifest_with_key_99(), &[(99, NESTED_DEFINITE)]);
    assert!(Envelope::decode_keeping_unknown(&ok).is_ok());
}

#[test]
fn indefinite_lengths_inside_unknown_manifest_members_are_refused() {
    let with_value = |value: &[u8]| {
        let mut m = manifest_with_key_99();
        m.truncate(m.len() - VALUE.len());
        m.extend_from_slice(value);
        m
    };
    assert!(Manifest::decode_keeping_unknown(&with_value(NESTED_DEFINITE)).is_ok());
    for bad in [NESTED_INDEFINITE, NESTED_REPEATED_KEY] {
        let e = Manifest::decode_keeping_unknown(&with_value(bad)).unwrap_err();
        assert!(
            not_well_formed("SUIT_Manifest is not well-formed CBOR")(&e),
            "{e:?}"
        );
    }
}
