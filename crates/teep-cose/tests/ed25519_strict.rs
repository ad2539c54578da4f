//! Strict Ed25519 in every provider: malleable signatures and small-order or non-canonical
//! keys are refused, and the providers agree on every edge case here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
mod common;

use common::{key_and_signer, parse, providers, trusting};
use teep_cose::coset::{CborSerializable, Label, TaggedCborSerializable};
use teep_cose::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// The Ed25519 group order L, little-endian as in a signature's S.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Replaces S (the second half of a 64-byte signature) by S + L: the same value mod L,
/// which plain RFC 8032 arithmetic would still accept without the S < L check.
fn add_l_to_s(sig: &mut [u8]) {
    let mut carry = 0u16;
    for (s, l) in sig[32..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 256 bits since S < L < 2^253");
}

#[test]
fn s_plus_l_is_a_bad_signature() {
    for p in providers() {
        let (key, signer) = key_and_signer(p, Algorithm::Ed25519);
        let mut sig = signer.sign(b"tbs").unwrap();
        p.verify(key.public_key(), Algorithm::Ed25519, b"tbs", &sig)
            .unwrap();
        add_l_to_s(&mut sig);
        assert_eq!(
            p.verify(key.public_key(), Algorithm::Ed25519, b"tbs", &sig),
            Err(CoseError::BadSignature),
            "{}",
            p.name()
        );
    }
}

#[test]
fn s_plus_l_in_a_cose_sign1_is_a_bad_signature() {
    for p in providers() {
        let (key, signer) = key_and_signer(p, Algorithm::EdDsa);
        let trust = trusting(&[key.public_key()]);
        let cose = sign1(signer.as_ref(), b"payload", &SignOptions::default()).unwrap();
        let cx = VerifyContext::new(p, &trust);
        verify_sign1(&cose, &cx).unwrap();
        let mut msg = parse(&cose);
        add_l_to_s(&mut msg.signature);
        let forged = msg.to_tagged_vec().unwrap();
        assert_eq!(
            verify_sign1(&forged, &cx).unwrap_err(),
            CoseError::BadSignature,
            "{}",
            p.name()
        );
    }
}

/// The eight small-order points (canonical encodings) and two non-canonical encodings of
/// them (identity with the x sign bit set; y = p + 1, i.e. the identity again).
const SMALL_ORDER_KEYS: [&str; 10] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

#[test]
fn small_order_public_keys_are_refused_at_import() {
    // The key type is shared, so refusing at import covers both providers the same way.
    let template = PrivateKey::generate(Curve::Ed25519)
        .unwrap()
        .public_key()
        .to_cose_key();
    for hex_key in SMALL_ORDER_KEYS {
        let raw = h(hex_key);
        assert!(
            matches!(
                PublicKey::from_bytes(Curve::Ed25519, &raw),
                Err(CoseError::InvalidKey(_))
            ),
            "{hex_key}"
        );
        let mut cose = template.clone();
        for (label, value) in &mut cose.params {
            if *label == Label::Int(-2) {
                *value = coset::cbor::value::Value::Bytes(raw.clone());
            }
        }
        assert!(
            matches!(
                PublicKey::from_cose_key_bytes(&cose.to_vec().unwrap()),
                Err(CoseError::InvalidKey(_))
            ),
            "{hex_key}"
        );
    }
}

#[test]
fn non_canonical_encodings_of_large_order_keys_are_refused() {
    // y < 19 has a second encoding y + p; take the points among them of large order.
    let mut checked = 0;
    for y in 2u8..19 {
        let mut canonical = [0u8; 32];
        canonical[0] = y;
        if PublicKey::from_bytes(Curve::Ed25519, &canonical).is_err() {
            continue; // not on the curve, or small order
        }
        let mut alias = [0xff; 32];
        alias[0] = 0xed + y;
        alias[31] = 0x7f;
        assert!(
            matches!(
                PublicKey::from_bytes(Curve::Ed25519, &alias),
                Err(CoseError::InvalidKey(_))
            ),
            "y = {y}"
        );
        checked += 1;
    }
    assert!(checked > 0, "some y in 2..19 is a point of large order");
}

/// Vectors 2 and 3 of Chalkias, Garillot, Nikolaenko, "Taming the many EdDSAs" (SSR 2020):
/// both have a mixed-order key (large order plus a torsion part, so not refused at import)
/// and hold in the cofactorless equation SB = R + kA that both libraries check.
struct Taming {
    msg: &'static str,
    key: &'static str,
    sig: &'static str,
}

#[test]
fn small_order_r_is_a_bad_signature_in_both_providers() {
    let v = Taming {
        msg: "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
        key: "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        sig: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa\
              8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
    };
    let key = PublicKey::from_bytes(Curve::Ed25519, &h(v.key)).unwrap();
    for p in providers() {
        assert_eq!(
            p.verify(&key, Algorithm::Ed25519, &h(v.msg), &h(v.sig)),
            Err(CoseError::BadSignature),
            "{}",
            p.name()
        );
    }
}

#[test]
fn mixed_order_key_and_r_verify_in_both_providers() {
    // Pinned choice: mixed-order points are not refused (RFC 8032 allows them, and spotting
    // one takes a full scalar multiplication by L); both providers accept them alike.
    let v = Taming {
        msg: "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        key: "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        sig: "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f\
              87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
    };
    let key = PublicKey::from_bytes(Curve::Ed25519, &h(v.key)).unwrap();
    for p in providers() {
        p.verify(&key, Algorithm::Ed25519, &h(v.msg), &h(v.sig))
            .unwrap_or_else(|e| panic!("{}: {e}", p.name()));
    }
}
