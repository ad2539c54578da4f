//! A key's own COSE_Key `alg` and `key_ops` restrict what it does (RFC 9052 §7.1): trust
//! anchors built as raw CBOR maps, the way a key file or an attacker would write them, on
//! every provider.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
mod common;

use common::providers;
use teep_cose::coset::cbor::value::Value;
use teep_cose::encrypt::{ContentAlgorithm, DecryptionKey, EAT_ENCRYPTION, decrypt, encrypt_esdh};
use teep_cose::*;

const PAYLOAD: &[u8] = b"attested";

/// Extra COSE_Key entries (label, value).
type Extra = Vec<(i64, Value)>;

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// A COSE_Key map for `key` (public, or private with `d`) plus `extra` entries (alg 3,
/// key_ops 4), encoded by hand rather than through our exporter.
fn cose_key(key: &PrivateKey, private: bool, extra: &[(i64, Value)]) -> Vec<u8> {
    let public = key.public_key().as_bytes();
    let mut map = match key.curve() {
        Curve::Ed25519 => vec![
            (int(1), int(1)),
            (int(-1), int(6)),
            (int(-2), Value::Bytes(public.to_vec())),
        ],
        curve => {
            let n = if curve == Curve::P256 { 32 } else { 48 };
            vec![
                (int(1), int(2)),
                (int(-1), int(curve.cose_crv())),
                (int(-2), Value::Bytes(public[1..1 + n].to_vec())),
                (int(-3), Value::Bytes(public[1 + n..].to_vec())),
            ]
        }
    };
    if private {
        map.push((int(-4), Value::Bytes(key.secret_bytes().to_vec())));
    }
    map.extend(extra.iter().map(|(k, v)| (int(*k), v.clone())));
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(&Value::Map(map), &mut out).unwrap();
    out
}

fn alg(id: i64) -> (i64, Value) {
    (3, int(id))
}

fn key_ops(ops: &[i64]) -> (i64, Value) {
    (4, Value::Array(ops.iter().map(|o| int(*o)).collect()))
}

fn anchor(cbor: &[u8]) -> TrustStore {
    let mut trust = TrustStore::new();
    trust.add_key(PublicKey::from_cose_key_bytes(cbor).unwrap());
    trust
}

fn signed(p: &dyn CryptoProvider, key: &PrivateKey, alg: Algorithm, kid: bool) -> Vec<u8> {
    let signer = p.signer(key, alg).unwrap();
    let opts = SignOptions {
        kid,
        ..SignOptions::default()
    };
    sign1(signer.as_ref(), PAYLOAD, &opts).unwrap()
}

fn verify(p: &dyn CryptoProvider, cose: &[u8], trust: &TrustStore) -> Result<Verified, CoseError> {
    verify_sign1(cose, &VerifyContext::new(p, trust))
}

#[test]
fn an_anchor_marked_for_something_else_does_not_verify() {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    for p in providers() {
        let cose = signed(p, &key, Algorithm::Esp256, true);
        let no_kid = signed(p, &key, Algorithm::Esp256, false);
        let refused: [(&str, Extra, CoseError); 6] = [
            (
                "alg ECDH-ES+A128KW",
                vec![alg(-29)],
                CoseError::AlgorithmKeyMismatch { alg: -9 },
            ),
            (
                "alg ES384 on a P-256 key",
                vec![alg(-35)],
                CoseError::AlgorithmKeyMismatch { alg: -9 },
            ),
            (
                "key_ops derive key, derive bits",
                vec![key_ops(&[7, 8])],
                CoseError::KeyOpNotPermitted(KeyOp::Verify),
            ),
            (
                "key_ops sign on a public key",
                vec![key_ops(&[1])],
                CoseError::KeyOpNotPermitted(KeyOp::Verify),
            ),
            (
                "key_ops only a text op",
                vec![(4, Value::Array(vec![Value::Text("verify".into())]))],
                CoseError::KeyOpNotPermitted(KeyOp::Verify),
            ),
            (
                "alg ESP256 but key_ops derive bits",
                vec![alg(-9), key_ops(&[8])],
                CoseError::KeyOpNotPermitted(KeyOp::Verify),
            ),
        ];
        for (what, extra, expected) in refused {
            let trust = anchor(&cose_key(&key, false, &extra));
            assert_eq!(
                verify(p, &cose, &trust).unwrap_err(),
                expected,
                "{what} ({})",
                p.name()
            );
            // Without a kid the restricted anchor is not even tried.
            assert_eq!(
                verify(p, &no_kid, &trust).unwrap_err(),
                CoseError::UntrustedSigner,
                "{what} without kid ({})",
                p.name()
            );
            // The provider refuses the key directly too, so no path skips the check.
            let restricted = trust.keys()[0].clone();
            assert_eq!(
                p.verify(&restricted, Algorithm::Esp256, b"tbs", &[0; 64])
                    .unwrap_err(),
                expected,
                "{what} ({})",
                p.name()
            );
        }
        // The same key unrestricted, or restricted to verifying ESP256, verifies.
        for extra in [vec![], vec![alg(-9), key_ops(&[2])]] {
            let trust = anchor(&cose_key(&key, false, &extra));
            assert_eq!(verify(p, &cose, &trust).unwrap().payload, PAYLOAD);
            assert_eq!(verify(p, &no_kid, &trust).unwrap().payload, PAYLOAD);
        }
    }
}

#[test]
fn es256_and_esp256_eddsa_and_ed25519_are_aliases_and_nothing_else() {
    let p256 = PrivateKey::generate(Curve::P256).unwrap();
    let ed = PrivateKey::generate(Curve::Ed25519).unwrap();
    for p in providers() {
        let cases = [
            (&p256, -7, Algorithm::Esp256),
            (&p256, -9, Algorithm::Es256),
            (&p256, -7, Algorithm::Es256),
            (&ed, -8, Algorithm::Ed25519),
            (&ed, -19, Algorithm::EdDsa),
        ];
        for (key, key_alg, sig_alg) in cases {
            let trust = anchor(&cose_key(key, false, &[alg(key_alg)]));
            let cose = signed(p, key, sig_alg, true);
            assert_eq!(
                verify(p, &cose, &trust).unwrap().alg,
                sig_alg,
                "key alg {key_alg}, signature {sig_alg:?} ({})",
                p.name()
            );
        }
        // An Ed25519 key marked ES256 is refused for Ed25519 signatures.
        let trust = anchor(&cose_key(&ed, false, &[alg(-7)]));
        assert_eq!(
            verify(p, &signed(p, &ed, Algorithm::Ed25519, true), &trust).unwrap_err(),
            CoseError::AlgorithmKeyMismatch { alg: -19 }
        );
    }
}

#[test]
fn the_public_half_of_a_private_signing_key_verifies() {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let file = cose_key(&key, true, &[alg(-9), key_ops(&[1])]);
    for p in providers() {
        let cose = signed(p, &key, Algorithm::Esp256, true);
        // from_cose_key_bytes and from_any (binary and hex text) keep alg and key_ops.
        let imported = vec![
            PublicKey::from_cose_key_bytes(&file).unwrap(),
            #[cfg(feature = "std")]
            PublicKey::from_any(&file).unwrap(),
            #[cfg(feature = "std")]
            PublicKey::from_any(hex::encode(&file).as_bytes()).unwrap(),
        ];
        for public in imported {
            assert_eq!(public.key_use().alg(), Some(-9));
            assert!(public.key_use().permits(KeyOp::Verify));
            assert!(!public.key_use().permits(KeyOp::DeriveBits));
            let mut trust = TrustStore::new();
            trust.add_key(public);
            assert_eq!(verify(p, &cose, &trust).unwrap().payload, PAYLOAD);
        }
        #[cfg(feature = "std")]
        let private = PrivateKey::from_any(hex::encode(&file).as_bytes()).unwrap();
        #[cfg(not(feature = "std"))]
        let private = PrivateKey::from_cose_key_bytes(&file).unwrap();
        assert_eq!(
            private.key_use(),
            KeyUse::new(Some(-9), Some(&[KeyOp::Sign]))
        );
    }
}

#[test]
fn a_private_key_marked_for_key_agreement_does_not_sign() {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let cases = [
        (vec![alg(-29)], CoseError::AlgorithmKeyMismatch { alg: -9 }),
        (
            vec![key_ops(&[8])],
            CoseError::KeyOpNotPermitted(KeyOp::Sign),
        ),
        (
            vec![key_ops(&[2])],
            CoseError::KeyOpNotPermitted(KeyOp::Sign),
        ),
    ];
    for p in providers() {
        for (extra, expected) in &cases {
            let private = PrivateKey::from_cose_key_bytes(&cose_key(&key, true, extra)).unwrap();
            assert_eq!(
                p.signer(&private, Algorithm::Esp256).err().unwrap(),
                *expected,
                "{extra:?} ({})",
                p.name()
            );
        }
        let signing = PrivateKey::from_cose_key_bytes(&cose_key(&key, true, &[alg(-7)])).unwrap();
        assert!(p.signer(&signing, Algorithm::Esp256).is_ok());
    }
}

#[test]
fn key_agreement_follows_the_key() {
    let tam = PrivateKey::generate(Curve::P256).unwrap();
    for p in providers() {
        let enc = encrypt_esdh(
            p,
            tam.public_key(),
            ContentAlgorithm::default(),
            PAYLOAD,
            EAT_ENCRYPTION,
        )
        .unwrap();
        let open = |extra: &[(i64, Value)]| {
            let key = PrivateKey::from_cose_key_bytes(&cose_key(&tam, true, extra)).unwrap();
            decrypt(p, &enc, None, &[DecryptionKey::EcdhEs(key)], EAT_ENCRYPTION)
        };
        // A signing key, or one for another agreement, is not used: as if absent.
        for extra in [
            vec![alg(-9)],
            vec![key_ops(&[1])],
            vec![alg(-25)],
            vec![alg(-29), key_ops(&[1, 2])],
        ] {
            assert_eq!(
                open(&extra).unwrap_err(),
                CoseError::DecryptionFailed,
                "{extra:?} ({})",
                p.name()
            );
        }
        for extra in [vec![], vec![alg(-29), key_ops(&[8])], vec![key_ops(&[7])]] {
            assert_eq!(open(&extra).unwrap().as_slice(), PAYLOAD, "{extra:?}");
        }
        // The sender refuses a recipient key marked for something else.
        let to = |extra: &[(i64, Value)]| {
            let key = PublicKey::from_cose_key_bytes(&cose_key(&tam, false, extra)).unwrap();
            encrypt_esdh(
                p,
                &key,
                ContentAlgorithm::default(),
                PAYLOAD,
                EAT_ENCRYPTION,
            )
        };
        assert_eq!(
            to(&[alg(-9)]).unwrap_err(),
            CoseError::AlgorithmKeyMismatch { alg: -29 }
        );
        assert_eq!(
            to(&[key_ops(&[2])]).unwrap_err(),
            CoseError::KeyOpNotPermitted(KeyOp::DeriveBits)
        );
        assert!(to(&[alg(-29)]).is_ok());
    }
}

#[test]
fn a_text_alg_is_refused_at_import_and_identity_ignores_restrictions() {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    assert!(matches!(
        PublicKey::from_cose_key_bytes(&cose_key(&key, false, &[(3, Value::Text("ES256".into()))])),
        Err(CoseError::InvalidKey(_))
    ));
    let marked = PublicKey::from_cose_key_bytes(&cose_key(&key, false, &[alg(-29)])).unwrap();
    assert_eq!(&marked, key.public_key());
    assert_eq!(marked.thumbprint(), key.public_key().thumbprint());
    assert_eq!(key.public_key().key_use(), KeyUse::UNRESTRICTED);
}

/// Export keeps `alg` and `key_ops`: a restricted anchor written out and read back is as
/// restricted as before, the hand encoding equals coset's, and the kid (thumbprint, over
/// the required members only) does not change.
#[test]
fn export_keeps_restrictions_and_the_thumbprint() {
    use teep_cose::coset::CborSerializable;
    let text_op = (4, Value::Array(vec![Value::Text("x-private".into())]));
    let restrictions: [(Extra, bool); 5] = [
        (vec![(3, int(-9)), (4, Value::Array(vec![int(2)]))], false),
        (vec![(4, Value::Array(vec![int(7), int(8)]))], false),
        (vec![(3, int(-19))], false),
        (vec![(3, int(-9)), (4, Value::Array(vec![int(1)]))], true),
        (vec![text_op], false),
    ];
    for curve in [Curve::P256, Curve::Ed25519] {
        let key = PrivateKey::generate(curve).unwrap();
        let bare = key.public_key().thumbprint();
        for (extra, private) in &restrictions {
            let bytes = cose_key(&key, *private, extra);
            let (use_in, thumb_in, export, coset_export) = if *private {
                let k = PrivateKey::from_cose_key_bytes(&bytes).unwrap();
                let export = k.to_cose_key_bytes();
                let again = PrivateKey::from_cose_key_bytes(&export).unwrap();
                assert_eq!(again.key_use(), k.key_use(), "{curve:?} {extra:?}");
                assert_eq!(again.public_key().key_use(), k.public_key().key_use());
                let coset_export = k.to_cose_key().to_vec().unwrap();
                (
                    k.key_use(),
                    k.public_key().thumbprint(),
                    export,
                    coset_export,
                )
            } else {
                let k = PublicKey::from_cose_key_bytes(&bytes).unwrap();
                let export = k.to_cose_key_bytes();
                let again = PublicKey::from_cose_key_bytes(&export).unwrap();
                assert_eq!(again.key_use(), k.key_use(), "{curve:?} {extra:?}");
                assert_eq!(again.thumbprint(), k.thumbprint());
                (
                    k.key_use(),
                    k.thumbprint(),
                    export,
                    k.to_cose_key().to_vec().unwrap(),
                )
            };
            assert_ne!(use_in, KeyUse::UNRESTRICTED, "{extra:?}");
            assert_eq!(thumb_in, bare, "restrictions are not part of the kid");
            assert_eq!(export, coset_export, "hand encoding matches coset");
        }
    }
}
