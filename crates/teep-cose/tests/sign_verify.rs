//! COSE_Sign1 / COSE_Sign rules, run against every compiled provider, plus cross-provider
//! checks (sign with one, verify with the other).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
mod common;

use common::*;
use teep_cose::coset::{
    self, CborSerializable, HeaderBuilder, ProtectedHeader, TaggedCborSerializable,
    cbor::value::Value, iana,
};
use teep_cose::*;

const PAYLOAD: &[u8] = b"a TEEP message body of modest size";

/// Each test calls a body once per provider, so a failure names the provider.
fn for_each_provider(body: impl Fn(&dyn CryptoProvider)) {
    for p in providers() {
        eprintln!("provider {}", p.name());
        body(p);
    }
}

#[test]
fn sign1_round_trips_for_every_algorithm() {
    for_each_provider(|p| {
        for alg in ALL_ALGS {
            let (key, signer) = key_and_signer(p, alg);
            let cose = sign1(signer.as_ref(), PAYLOAD, &SignOptions::default()).unwrap();
            assert_eq!(cose.first(), Some(&0xd2), "tagged by default");
            let trust = trusting(&[key.public_key()]);
            let v = verify_sign1(&cose, &VerifyContext::new(p, &trust)).unwrap();
            assert_eq!(v.payload, PAYLOAD);
            assert_eq!(v.alg, alg);
            assert_eq!(&v.signer, key.public_key());
            assert_eq!(v.kid.as_deref(), Some(&key.public_key().thumbprint()[..]));
            // coset reads what we wrote: alg protected, kid unprotected.
            let parsed = parse(&cose);
            assert_eq!(parsed.unprotected.key_id, key.public_key().thumbprint());
            assert!(parsed.protected.header.key_id.is_empty());
            assert!(parsed.unprotected.alg.is_none());
            assert_eq!(parsed.signature.len(), alg.signature_len());
        }
    });
}

/// `sign1` writes the payload once into the buffer it signs and returns, with the heads
/// put in front of it afterwards: at every width of the payload's bstr head (1, 2, 3 and 5
/// bytes) the bytes equal coset's encoding of the same COSE_Sign1 (Ed25519 signs
/// deterministically), and ESP256 ones verify.
#[test]
fn sign1_equals_cosets_encoding_at_every_bstr_head_width() {
    for_each_provider(|p| {
        let (key, ed) = key_and_signer(p, Algorithm::Ed25519);
        let (ec_key, ec) = key_and_signer(p, Algorithm::Esp256);
        // 3 990 and 4 000: the COSE_Sign1 either side of the 4 KiB scratch buffer.
        for len in [
            0, 23, 24, 255, 256, 3_990, 4_000, 4_096, 65_535, 65_536, 70_001,
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let ours = sign1(ed.as_ref(), &payload, &SignOptions::default()).unwrap();
            let kid = HeaderBuilder::new()
                .key_id(key.public_key().thumbprint().to_vec())
                .build();
            let protected = ProtectedHeader {
                original_data: None,
                header: alg_header(Algorithm::Ed25519).build(),
            };
            let theirs = custom_sign1(ed.as_ref(), protected, kid, &payload);
            assert_eq!(ours, theirs, "payload of {len} bytes");
            let trust = trusting(&[ec_key.public_key()]);
            let cose = sign1(ec.as_ref(), &payload, &SignOptions::default()).unwrap();
            let v = verify_sign1(&cose, &VerifyContext::new(p, &trust)).unwrap();
            assert_eq!(v.payload, payload, "payload of {len} bytes");
        }
    });
}

/// `sign1_with` takes what its writer appends as the payload, and a writer's error comes
/// back as it was, with nothing signed.
#[test]
fn sign1_with_signs_what_its_writer_appends_and_passes_its_error_on() {
    for_each_provider(|p| {
        let (key, signer) = key_and_signer(p, Algorithm::Ed25519);
        let opts = SignOptions::default();
        let written = sign1_with(signer.as_ref(), &opts, 4, |out| {
            out.extend_from_slice(b"a TEEP ");
            out.extend_from_slice(b"message");
            Ok::<_, CoseError>(())
        })
        .unwrap();
        assert_eq!(
            written,
            sign1(signer.as_ref(), b"a TEEP message", &opts).unwrap()
        );
        let trust = trusting(&[key.public_key()]);
        let cx = VerifyContext::new(p, &trust);
        assert_eq!(
            verify_sign1(&written, &cx).unwrap().payload,
            b"a TEEP message"
        );
        let failed = sign1_with(signer.as_ref(), &opts, 4, |out| {
            out.push(1);
            Err(CoseError::Crypto("the writer failed"))
        });
        assert_eq!(failed.unwrap_err(), CoseError::Crypto("the writer failed"));
    });
}

#[test]
fn untagged_and_kidless_messages_verify() {
    for_each_provider(|p| {
        let (key, signer) = key_and_signer(p, Algorithm::Esp256);
        let (other, _) = key_and_signer(p, Algorithm::Esp256);
        let opts = SignOptions {
            tagged: false,
            kid: false,
            ..SignOptions::default()
        };
        let cose = sign1(signer.as_ref(), PAYLOAD, &opts).unwrap();
        assert_eq!(cose.first(), Some(&0x84));
        // Without a kid every trusted key fitting the alg is tried.
        let trust = trusting(&[other.public_key(), key.public_key()]);
        let v = verify_signed(&cose, &VerifyContext::new(p, &trust)).unwrap();
        assert_eq!(v.kid, None);
        assert_eq!(&v.signer, key.public_key());
        let only_other = trusting(&[other.public_key()]);
        assert_eq!(
            verify_sign1(&cose, &VerifyContext::new(p, &only_other)).unwrap_err(),
            CoseError::UntrustedSigner
        );
    });
}

#[test]
fn detached_payload_and_external_aad() {
    for_each_provider(|p| {
        let (key, signer) = key_and_signer(p, Algorithm::Ed25519);
        let trust = trusting(&[key.public_key()]);
        let opts = SignOptions {
            detached: true,
            external_aad: b"context".to_vec(),
            ..SignOptions::default()
        };
        let cose = sign1(signer.as_ref(), PAYLOAD, &opts).unwrap();
        let mut cx = VerifyContext::new(p, &trust);
        assert!(matches!(
            verify_sign1(&cose, &cx),
            Err(CoseError::Malformed(_))
        ));
        assert_eq!(
            verify_sign1_detached(&cose, PAYLOAD, &cx).unwrap_err(),
            CoseError::BadSignature,
            "external AAD missing"
        );
        cx.external_aad = b"context";
        assert_eq!(
            verify_sign1_detached(&cose, PAYLOAD, &cx).unwrap().payload,
            PAYLOAD
        );
        assert_eq!(
            verify_sign1_detached(&cose, b"other payload", &cx).unwrap_err(),
            CoseError::BadSignature
        );
        let attached = sign1(signer.as_ref(), PAYLOAD, &SignOptions::default()).unwrap();
        assert!(matches!(
            verify_sign1_detached(&attached, PAYLOAD, &cx),
            Err(CoseError::Malformed(_))
        ));
    });
}

#[test]
fn tampering_and_unknown_signers_are_rejected() {
    for_each_provider(|p| {
        let (key, signer) = key_and_signer(p, Algorithm::Esp256);
        let trust = trusting(&[key.public_key()]);
        let cx = VerifyContext::new(p, &trust);
        let cose = sign1(signer.as_ref(), PAYLOAD, &SignOptions::default()).unwrap();

        let mut msg = parse(&cose);
        msg.payload = Some(b"forged".to_vec());
        assert_eq!(
            verify_sign1(&msg.to_vec().unwrap(), &cx).unwrap_err(),
            CoseError::BadSignature
        );

        let mut msg = parse(&cose);
        msg.signature[5] ^= 1;
        assert_eq!(
            verify_sign1(&msg.to_vec().unwrap(), &cx).unwrap_err(),
            CoseError::BadSignature
        );

        let mut msg = parse(&cose);
        msg.signature.truncate(10);
        assert_eq!(
            verify_sign1(&msg.to_vec().unwrap(), &cx).unwrap_err(),
            CoseError::BadSignature
        );

        let empty = TrustStore::new();
        assert_eq!(
            verify_sign1(&cose, &VerifyContext::new(p, &empty)).unwrap_err(),
            CoseError::UntrustedSigner,
            "a kid matching no anchor"
        );
    });
}

#[test]
fn alg_must_be_protected_supported_and_fit_the_key() {
    for_each_provider(|p| {
        let (key, signer) = key_and_signer(p, Algorithm::Esp256);
        let trust = trusting(&[key.public_key()]);
        let cx = VerifyContext::new(p, &trust);
        let kid = key.public_key().thumbprint().to_vec();

        // alg only in the unprotected bucket.
        let cose = custom_sign1(
            signer.as_ref(),
            ProtectedHeader::default(),
            alg_header(Algorithm::Esp256).key_id(kid.clone()).build(),
            PAYLOAD,
        );
        assert_eq!(
            verify_sign1(&cose, &cx).unwrap_err(),
            CoseError::MissingAlgorithm
        );

        // A registered alg we do not implement (ES512), an unregistered one, a private one.
        let es512 = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES512)
            .build();
        let cose = custom_sign1(
            signer.as_ref(),
            ProtectedHeader {
                original_data: None,
                header: es512,
            },
            HeaderBuilder::new().key_id(kid.clone()).build(),
            PAYLOAD,
        );
        assert_eq!(
            verify_sign1(&cose, &cx).unwrap_err(),
            CoseError::UnsupportedAlgorithm(-36)
        );
        // {1: -100}
        let cose = raw_protected_sign1(signer.as_ref(), &[0xa1, 0x01, 0x38, 0x63], PAYLOAD);
        assert_eq!(
            verify_sign1(&cose, &cx).unwrap_err(),
            CoseError::UnsupportedAlgorithm(-100)
        );
        // {1: -70000}
        let cose = raw_protected_sign1(
            signer.as_ref(),
            &[0xa1, 0x01, 0x3a, 0, 1, 0x11, 0x6f],
            PAYLOAD,
        );
        assert_eq!(
            verify_sign1(&cose, &cx).unwrap_err(),
            CoseError::UnsupportedAlgorithm(-70000)
        );

        // EdDSA claimed with a kid naming a P-256 key.
        let cose = custom_sign1(
            signer.as_ref(),
            ProtectedHeader {
                original_data: None,
                header: alg_header(Algorithm::Ed25519).build(),
            },
            HeaderBuilder::new().key_id(kid.clone()).build(),
            PAYLOAD,
        );
        assert_eq!(
            verify_sign1(&cose, &cx).unwrap_err(),
            CoseError::AlgorithmKeyMismatch { alg: -19 }
        );
        // And a provider refuses to make such a signer.
        assert!(matches!(
            p.signer(&key, Algorithm::Ed25519),
            Err(CoseError::AlgorithmKeyMismatch { alg: -19 })
        ));
    });
}

#[test]
fn crit_and_duplicate_labels() {
    for_each_provider(|p| {
        let (key, signer) = key_and_signer(p, Algorithm::Ed25519);
        let trust = trusting(&[key.public_key()]);
        let cx = VerifyContext::new(p, &trust);
        let kid = key.public_key().thumbprint().to_vec();
        let protected = |h: coset::Header| ProtectedHeader {
            original_data: None,
            header: h,
        };

        let unknown = alg_header(Algorithm::Ed25519)
            .add_critical_label(coset::RegisteredLabelWithPrivate::PrivateUse(-70001))
            .value(-70001, Value::Bool(true))
            .build();
        let cose = custom_sign1(
            signer.as_ref(),
            protected(unknown),
            HeaderBuilder::new().key_id(kid.clone()).build(),
            PAYLOAD,
        );
        assert_eq!(
            verify_sign1(&cose, &cx).unwrap_err(),
            CoseError::UnknownCriticalHeader("-70001".into())
        );

        // crit naming a header we understand (content type) is fine.
        let known = alg_header(Algorithm::Ed25519)
            .add_critical(iana::HeaderParameter::ContentType)
            .content_format(iana::CoapContentFormat::Cbor)
            .build();
        let cose = custom_sign1(
            signer.as_ref(),
            protected(known),
            HeaderBuilder::new().key_id(kid.clone()).build(),
            PAYLOAD,
        );
        assert_eq!(verify_sign1(&cose, &cx).unwrap().payload, PAYLOAD);

        // crit must be protected.
        let cose = custom_sign1(
            signer.as_ref(),
            protected(alg_header(Algorithm::Ed25519).build()),
            HeaderBuilder::new()
                .key_id(kid.clone())
                .add_critical(iana::HeaderParameter::Kid)
                .build(),
            PAYLOAD,
        );
        assert!(matches!(
            verify_sign1(&cose, &cx),
            Err(CoseError::Malformed(_))
        ));

        // kid in both buckets.
        let cose = custom_sign1(
            signer.as_ref(),
            protected(alg_header(Algorithm::Ed25519).key_id(kid.clone()).build()),
            HeaderBuilder::new().key_id(kid.clone()).build(),
            PAYLOAD,
        );
        assert!(matches!(
            verify_sign1(&cose, &cx),
            Err(CoseError::Malformed(_))
        ));

        // kid in the protected bucket only is accepted.
        let cose = custom_sign1(
            signer.as_ref(),
            protected(alg_header(Algorithm::Ed25519).key_id(kid.clone()).build()),
            HeaderBuilder::new().build(),
            PAYLOAD,
        );
        assert_eq!(verify_sign1(&cose, &cx).unwrap().kid, Some(kid.clone()));
    });
}

#[test]
fn framing_errors_are_malformed() {
    let p = default_provider();
    let (key, signer) = key_and_signer(p, Algorithm::Esp256);
    let trust = trusting(&[key.public_key()]);
    let cx = VerifyContext::new(p, &trust);
    let cose = sign1(signer.as_ref(), PAYLOAD, &SignOptions::default()).unwrap();

    let mut trailing = cose.clone();
    trailing.push(0x00);
    assert!(matches!(
        verify_sign1(&trailing, &cx),
        Err(CoseError::Malformed(_))
    ));
    assert!(matches!(
        verify_signed(&trailing, &cx),
        Err(CoseError::Malformed(_))
    ));

    // Tag 17 (COSE_Mac0) and tag 98 around a COSE_Sign1 body.
    let mut mac0 = cose.clone();
    mac0[0] = 0xd1;
    assert!(matches!(
        verify_signed(&mac0, &cx),
        Err(CoseError::Malformed(_))
    ));
    let mut as_sign = vec![0xd8, 0x62];
    as_sign.extend_from_slice(&cose[1..]);
    assert!(matches!(
        verify_signed(&as_sign, &cx),
        Err(CoseError::Malformed(_))
    ));

    for truncated in 0..cose.len() {
        assert!(matches!(
            verify_signed(&cose[..truncated], &cx),
            Err(CoseError::Malformed(_))
        ));
    }
}

#[test]
fn cose_sign_with_several_signers() {
    for_each_provider(|p| {
        let (p256, s1) = key_and_signer(p, Algorithm::Esp256);
        let (ed, s2) = key_and_signer(p, Algorithm::Ed25519);
        let signers: [&dyn Signer; 2] = [s1.as_ref(), s2.as_ref()];
        let cose = sign(&signers, PAYLOAD, &SignOptions::default()).unwrap();
        assert_eq!(&cose[..2], &[0xd8, 0x62]);
        let parsed = coset::CoseSign::from_tagged_slice(&cose).unwrap();
        assert_eq!(parsed.signatures.len(), 2);

        for (trusted, alg) in [(&p256, Algorithm::Esp256), (&ed, Algorithm::Ed25519)] {
            let trust = trusting(&[trusted.public_key()]);
            let cx = VerifyContext::new(p, &trust);
            let v = verify_sign(&cose, &cx).unwrap();
            assert_eq!((v.alg, &v.signer), (alg, trusted.public_key()));
            assert_eq!(verify_signed(&cose, &cx).unwrap().alg, alg);
        }
        let nobody = TrustStore::new();
        assert_eq!(
            verify_sign(&cose, &VerifyContext::new(p, &nobody)).unwrap_err(),
            CoseError::UntrustedSigner
        );
        // Break the Ed25519 signature; trusting only that key reports the bad signature,
        // trusting the P-256 key still verifies through the other signature.
        let mut broken = parsed.clone();
        broken.signatures[1].signature[0] ^= 1;
        let broken = broken.to_vec().unwrap();
        let trust = trusting(&[ed.public_key()]);
        assert_eq!(
            verify_signed(&broken, &VerifyContext::new(p, &trust)).unwrap_err(),
            CoseError::BadSignature
        );
        let trust = trusting(&[p256.public_key()]);
        assert_eq!(
            verify_signed(&broken, &VerifyContext::new(p, &trust))
                .unwrap()
                .alg,
            Algorithm::Esp256
        );
        // A COSE_Sign is not a COSE_Sign1.
        assert!(matches!(
            verify_sign1(&cose, &VerifyContext::new(p, &trust)),
            Err(CoseError::Malformed(_))
        ));
        assert!(matches!(
            sign(&[], PAYLOAD, &SignOptions::default()),
            Err(CoseError::Malformed(_))
        ));
    });
}

#[test]
fn signatures_cross_providers() {
    let all = providers();
    for signer_p in &all {
        for verifier_p in &all {
            for alg in ALL_ALGS {
                let (key, signer) = key_and_signer(*signer_p, alg);
                let trust = trusting(&[key.public_key()]);
                let cx = VerifyContext::new(*verifier_p, &trust);
                let cose = sign1(signer.as_ref(), PAYLOAD, &SignOptions::default()).unwrap();
                assert_eq!(
                    verify_sign1(&cose, &cx).unwrap().payload,
                    PAYLOAD,
                    "{} -> {} {alg:?}",
                    signer_p.name(),
                    verifier_p.name()
                );
            }
        }
    }
}

#[test]
fn default_provider_is_the_fastest_compiled_in() {
    let expected = if cfg!(feature = "aws-lc") {
        "aws-lc"
    } else {
        "rustcrypto"
    };
    assert_eq!(default_provider().name(), expected);
}

/// A tagged COSE_Sign built by hand: body protected bucket `body`, and per signature its
/// protected bucket bytes and the signer that signs the real Sig_structure and is named by
/// an unprotected kid (`None`: 64 junk bytes, as for a suite we cannot check anyway).
fn raw_sign(body: &[u8], signatures: &[(&[u8], Option<&dyn Signer>)]) -> Vec<u8> {
    let signatures = signatures
        .iter()
        .map(|(protected, signer)| {
            let tbs = Value::Array(vec![
                Value::Text("Signature".into()),
                Value::Bytes(body.to_vec()),
                Value::Bytes(protected.to_vec()),
                Value::Bytes(vec![]),
                Value::Bytes(PAYLOAD.to_vec()),
            ]);
            let mut tbs_bytes = Vec::new();
            coset::cbor::ser::into_writer(&tbs, &mut tbs_bytes).unwrap();
            let signature = signer.map_or(vec![0x55; 64], |s| s.sign(&tbs_bytes).unwrap());
            let kid = signer.map(|s| {
                (
                    Value::Integer(4.into()),
                    Value::Bytes(s.public_key().thumbprint().to_vec()),
                )
            });
            Value::Array(vec![
                Value::Bytes(protected.to_vec()),
                Value::Map(kid.into_iter().collect()),
                Value::Bytes(signature),
            ])
        })
        .collect();
    let value = Value::Tag(
        98,
        Box::new(Value::Array(vec![
            Value::Bytes(body.to_vec()),
            Value::Map(vec![]),
            Value::Bytes(PAYLOAD.to_vec()),
            Value::Array(signatures),
        ])),
    );
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(&value, &mut out).unwrap();
    out
}

#[test]
fn a_cose_sign_verifies_through_the_signature_whose_alg_it_supports() {
    // {1: -9} (ESP256)
    const ESP256: &[u8] = &[0xa1, 0x01, 0x28];
    // {1: -100}: unregistered, coset has no name for it; {1: -65537}: private use.
    let unknown: [(&[u8], i64); 2] = [
        (&[0xa1, 0x01, 0x38, 0x63], -100),
        (&[0xa1, 0x01, 0x3a, 0x00, 0x01, 0x00, 0x00], -65537),
    ];
    for_each_provider(|p| {
        let (key, signer) = key_and_signer(p, Algorithm::Esp256);
        let trust = trusting(&[key.public_key()]);
        let cx = VerifyContext::new(p, &trust);
        for (bucket, id) in unknown {
            for order in [[0, 1], [1, 0]] {
                let entries = [(bucket, None), (ESP256, Some(signer.as_ref()))];
                let cose = raw_sign(&[], &order.map(|i| entries[i]));
                let v = verify_signed(&cose, &cx).unwrap();
                assert_eq!((v.alg, &v.signer), (Algorithm::Esp256, key.public_key()));
                assert_eq!(v.payload, PAYLOAD);
                // Parsing keeps the unknown signature, its alg readable, its bytes intact.
                let ParsedSigned::Sign { message, tagged } = parse_signed(&cose).unwrap() else {
                    panic!("not a COSE_Sign");
                };
                assert!(tagged);
                let unknown_at = order.iter().position(|&i| i == 0).unwrap();
                let sig = &message.signatures[unknown_at];
                assert_eq!(sig.protected.original_data.as_deref(), Some(bucket));
                assert_eq!(
                    sig.protected.header.alg,
                    Some(coset::RegisteredLabelWithPrivate::PrivateUse(id))
                );
            }
            // Alone, the unknown signature is an unsupported algorithm.
            let cose = raw_sign(&[], &[(bucket, None)]);
            assert_eq!(
                verify_signed(&cose, &cx).unwrap_err(),
                CoseError::UnsupportedAlgorithm(id)
            );
            // A broken ESP256 signature next to it is still a bad signature.
            let mut broken = raw_sign(&[], &[(bucket, None), (ESP256, Some(signer.as_ref()))]);
            let last = broken.len() - 1;
            broken[last] ^= 1;
            assert_eq!(
                verify_signed(&broken, &cx).unwrap_err(),
                CoseError::BadSignature
            );
            // An unknown critical header in the body still refuses the whole message:
            // {2: [-70001]} (a private label nobody understands).
            let crit_body = [0xa1, 0x02, 0x81, 0x3a, 0x00, 0x01, 0x11, 0x70];
            let cose = raw_sign(
                &crit_body,
                &[(bucket, None), (ESP256, Some(signer.as_ref()))],
            );
            assert_eq!(
                verify_signed(&cose, &cx).unwrap_err(),
                CoseError::UnknownCriticalHeader("-70001".into())
            );
            // An unknown critical header in the supported signature's own bucket:
            // {1: -9, 2: [-70001]}.
            let crit_sig = [0xa2, 0x01, 0x28, 0x02, 0x81, 0x3a, 0x00, 0x01, 0x11, 0x70];
            let cose = raw_sign(&[], &[(bucket, None), (&crit_sig, Some(signer.as_ref()))]);
            assert_eq!(
                verify_signed(&cose, &cx).unwrap_err(),
                CoseError::UnknownCriticalHeader("-70001".into())
            );
        }
        // Two alg entries are not "one unknown alg": coset's refusal stands.
        let twice = [0xa2, 0x01, 0x38, 0x63, 0x01, 0x38, 0x64];
        let cose = raw_sign(&[], &[(&twice, None), (ESP256, Some(signer.as_ref()))]);
        assert!(matches!(
            verify_signed(&cose, &cx),
            Err(CoseError::Malformed(_))
        ));
    });
}

/// Attack: a key the verifier trusts signs under an algorithm this deployment did not
/// choose (a downgrade to another suite, or a key trusted for one suite used for another).
/// The allow-list refuses it before any key is tried, in Sign1 (with and without kid) and
/// in COSE_Sign, where another signature under an allowed algorithm still counts.
#[test]
fn a_valid_signature_by_a_trusted_key_under_a_disallowed_algorithm_is_refused() {
    for_each_provider(|p| {
        let (ed, ed_signer) = key_and_signer(p, Algorithm::Ed25519);
        let (ec, ec_signer) = key_and_signer(p, Algorithm::Esp256);
        let trust = trusting(&[ed.public_key(), ec.public_key()]);
        let open = VerifyContext::new(p, &trust);
        let only_esp256 = open.with_algorithms(&[Algorithm::Esp256]);
        for kid in [true, false] {
            let opts = SignOptions {
                kid,
                ..SignOptions::default()
            };
            let cose = sign1(ed_signer.as_ref(), PAYLOAD, &opts).unwrap();
            // Valid and trusted: without the allow-list it verifies.
            assert_eq!(verify_sign1(&cose, &open).unwrap().alg, Algorithm::Ed25519);
            assert_eq!(
                verify_sign1(&cose, &only_esp256).err(),
                Some(CoseError::DisallowedAlgorithm(Algorithm::Ed25519))
            );
            assert_eq!(
                verify_signed(&cose, &only_esp256).err(),
                Some(CoseError::DisallowedAlgorithm(Algorithm::Ed25519))
            );
            let allowed = sign1(ec_signer.as_ref(), PAYLOAD, &opts).unwrap();
            assert_eq!(
                verify_sign1(&allowed, &only_esp256).unwrap().alg,
                Algorithm::Esp256
            );
            // An empty list accepts nothing.
            assert_eq!(
                verify_sign1(&allowed, &open.with_algorithms(&[])).err(),
                Some(CoseError::DisallowedAlgorithm(Algorithm::Esp256))
            );
        }
        // COSE_Sign: the disallowed signature alone is refused; next to an allowed one,
        // the allowed one is what verifies.
        let alone = sign(&[ed_signer.as_ref()], PAYLOAD, &SignOptions::default()).unwrap();
        assert!(verify_sign(&alone, &open).is_ok());
        assert_eq!(
            verify_sign(&alone, &only_esp256).err(),
            Some(CoseError::DisallowedAlgorithm(Algorithm::Ed25519))
        );
        let both = sign(
            &[ed_signer.as_ref(), ec_signer.as_ref()],
            PAYLOAD,
            &SignOptions::default(),
        )
        .unwrap();
        let v = verify_sign(&both, &only_esp256).unwrap();
        assert_eq!((v.alg, &v.signer), (Algorithm::Esp256, ec.public_key()));
    });
}
