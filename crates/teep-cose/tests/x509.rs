//! `x5chain` signing and verification against CA anchors, with certificates made by rcgen:
//! good chains (with and without intermediate), expired, not-yet-valid, unknown CA, revoked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![cfg(feature = "x509")]

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber, date_time_ymd,
};
use teep_cose::coset::{self, HeaderBuilder, ProtectedHeader, cbor::value::Value};
use teep_cose::*;

const PAYLOAD: &[u8] = b"certified payload";
/// 2025-06-01T00:00:00Z: inside the default validity window below.
const NOW: u64 = 1_748_736_000;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
    pem: String,
}

fn make_ca(name: &str, parent: Option<&Ca>) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = match parent {
        Some(parent) => params.signed_by(&key, &parent.issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate (DER) for our own key, valid from `from` to `until` (years).
fn make_leaf(key: &PrivateKey, ca: &Ca, serial: u64, from: i32, until: i32) -> Vec<u8> {
    make_leaf_cert(key, ca, serial, from, until).der().to_vec()
}

fn make_leaf_cert(
    key: &PrivateKey,
    ca: &Ca,
    serial: u64,
    from: i32,
    until: i32,
) -> rcgen::Certificate {
    make_leaf_with_usage(key, ca, serial, from, until, Vec::new())
}

/// A leaf with the given keyUsage bits (none: no keyUsage extension).
fn make_leaf_with_usage(
    key: &PrivateKey,
    ca: &Ca,
    serial: u64,
    from: i32,
    until: i32,
    usages: Vec<KeyUsagePurpose>,
) -> rcgen::Certificate {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.key_usages = usages;
    params
        .distinguished_name
        .push(DnType::CommonName, "TAM signer");
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(until, 1, 1);
    let public = KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
    params.signed_by(&public, &ca.issuer).unwrap()
}

fn revoke(ca: &Ca, serial: u64) -> Vec<u8> {
    CertificateRevocationListParams {
        this_update: date_time_ymd(2025, 1, 1),
        next_update: date_time_ymd(2026, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(serial),
            revocation_time: date_time_ymd(2025, 1, 1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .unwrap()
    .der()
    .to_vec()
}

fn ca_trust(ca: &Ca) -> TrustStore {
    let mut trust = TrustStore::new();
    trust.add_ca_der(ca.der.clone()).unwrap();
    trust
}

fn signed_with_chain(p: &dyn CryptoProvider, key: &PrivateKey, chain: Vec<Vec<u8>>) -> Vec<u8> {
    let signer = p.signer(key, key.default_algorithm()).unwrap();
    let opts = SignOptions {
        x5chain: chain,
        ..SignOptions::default()
    };
    sign1(signer.as_ref(), PAYLOAD, &opts).unwrap()
}

fn at<'a>(p: &'a dyn CryptoProvider, trust: &'a TrustStore) -> VerifyContext<'a> {
    VerifyContext {
        now: Some(NOW),
        ..VerifyContext::new(p, trust)
    }
}

#[test]
fn chains_to_a_ca_anchor_verify() {
    let root = make_ca("root", None);
    let intermediate = make_ca("intermediate", Some(&root));
    for p in providers() {
        for curve in [Curve::P256, Curve::Ed25519, Curve::P384] {
            let key = PrivateKey::generate(curve).unwrap();
            let leaf = make_leaf(&key, &root, 7, 2024, 2027);
            let trust = ca_trust(&root);
            let cose = signed_with_chain(p, &key, vec![leaf]);
            let v = verify_sign1(&cose, &at(p, &trust)).unwrap();
            assert_eq!(&v.signer, key.public_key(), "{} {curve:?}", p.name());
            assert_eq!(v.payload, PAYLOAD);
            // x5chain is protected.
            let parsed = parse(&cose);
            assert!(
                parsed
                    .protected
                    .header
                    .rest
                    .iter()
                    .any(|(l, _)| *l == coset::Label::Int(33))
            );

            // Through an intermediate: x5chain is an array, leaf first.
            let leaf = make_leaf(&key, &intermediate, 8, 2024, 2027);
            let cose = signed_with_chain(p, &key, vec![leaf, intermediate.der.clone()]);
            assert_eq!(
                &verify_signed(&cose, &at(p, &trust)).unwrap().signer,
                key.public_key()
            );
        }
    }
}

#[test]
fn the_ca_a_chain_verified_to_is_reported() {
    let (first, second) = (make_ca("first", None), make_ca("second", None));
    let intermediate = make_ca("intermediate", Some(&second));
    let mut trust = ca_trust(&first);
    trust.add_ca_der(second.der.clone()).unwrap();
    // The same CA again is one anchor.
    trust.add_ca_der(second.der.clone()).unwrap();
    assert_eq!(trust.cas().len(), 2);
    let key = PrivateKey::generate(Curve::P256).unwrap();
    trust.add_key(key.public_key().clone());
    let p = default_provider();
    let ca_of = |cose: &[u8]| verify_signed(cose, &at(p, &trust)).unwrap().ca;
    let second_ca = CaCertificate::from_der(second.der.clone()).unwrap();
    let direct = make_leaf(&key, &second, 1, 2024, 2027);
    assert_eq!(
        ca_of(&signed_with_chain(p, &key, vec![direct])),
        Some(second_ca.clone())
    );
    let via = make_leaf(&key, &intermediate, 2, 2024, 2027);
    let chain = vec![via, intermediate.der.clone()];
    assert_eq!(ca_of(&signed_with_chain(p, &key, chain)), Some(second_ca));
    let first_leaf = make_leaf(&key, &first, 3, 2024, 2027);
    assert_eq!(
        ca_of(&signed_with_chain(p, &key, vec![first_leaf])),
        Some(CaCertificate::from_der(first.der.clone()).unwrap())
    );
    // The same key as a raw anchor, without a chain: no CA.
    assert_eq!(ca_of(&signed_with_chain(p, &key, vec![])), None);
    assert!(matches!(
        CaCertificate::from_der(b"not a certificate".to_vec()),
        Err(CoseError::Certificate(CertificateError::Malformed(_)))
    ));
}

#[test]
fn a_leaf_without_digital_signature_key_usage_verifies_nothing() {
    use KeyUsagePurpose::*;
    let ca = make_ca("ca", None);
    let trust = ca_trust(&ca);
    let p = default_provider();
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let with = |usages: Vec<KeyUsagePurpose>| {
        let leaf = make_leaf_with_usage(&key, &ca, 5, 2024, 2027, usages);
        verify_sign1(
            &signed_with_chain(p, &key, vec![leaf.der().to_vec()]),
            &at(p, &trust),
        )
    };
    for refused in [
        vec![KeyAgreement],
        vec![KeyEncipherment, DataEncipherment],
        vec![ContentCommitment],
        vec![KeyCertSign, CrlSign],
    ] {
        assert_eq!(
            with(refused.clone()).unwrap_err(),
            CoseError::KeyOpNotPermitted(KeyOp::Verify),
            "{refused:?}"
        );
    }
    for accepted in [vec![DigitalSignature], vec![DigitalSignature, KeyAgreement]] {
        assert_eq!(&with(accepted).unwrap().signer, key.public_key());
    }
    // The same restriction holds for a certificate imported as a key.
    let pem = make_leaf_with_usage(&key, &ca, 6, 2024, 2027, vec![KeyAgreement]).pem();
    let imported = PublicKey::from_any(pem.as_bytes()).unwrap();
    assert!(!imported.key_use().permits(KeyOp::Verify));
    assert!(imported.key_use().permits(KeyOp::DeriveBits));
}

#[test]
fn certificate_failures_are_typed() {
    let ca = make_ca("ca", None);
    let other_ca = make_ca("other", None);
    let p = default_provider();
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let trust = ca_trust(&ca);
    let cert_err = |cose: &[u8], trust: &TrustStore| match verify_sign1(cose, &at(p, trust)) {
        Err(CoseError::Certificate(e)) => e,
        other => panic!("expected a certificate error, got {other:?}"),
    };

    let expired = signed_with_chain(p, &key, vec![make_leaf(&key, &ca, 1, 2020, 2024)]);
    assert_eq!(cert_err(&expired, &trust), CertificateError::Expired);
    let future = signed_with_chain(p, &key, vec![make_leaf(&key, &ca, 2, 2026, 2028)]);
    assert_eq!(cert_err(&future, &trust), CertificateError::NotYetValid);
    let foreign = signed_with_chain(p, &key, vec![make_leaf(&key, &other_ca, 3, 2024, 2027)]);
    assert_eq!(cert_err(&foreign, &trust), CertificateError::UnknownIssuer);

    let good = signed_with_chain(p, &key, vec![make_leaf(&key, &ca, 4, 2024, 2027)]);
    let no_clock = VerifyContext::new(p, &trust);
    assert_eq!(
        verify_sign1(&good, &no_clock).unwrap_err(),
        CoseError::Certificate(CertificateError::NoClock)
    );
    // A trusted raw key does not stand in for a CA anchor when x5chain is present.
    let raw_only = trusting(&[key.public_key()]);
    assert_eq!(cert_err(&good, &raw_only), CertificateError::UnknownIssuer);

    // The certificate is good but names another key than the one that signed.
    let other_key = PrivateKey::generate(Curve::P256).unwrap();
    let mismatched = signed_with_chain(p, &other_key, vec![make_leaf(&key, &ca, 5, 2024, 2027)]);
    assert_eq!(
        verify_sign1(&mismatched, &at(p, &trust)).unwrap_err(),
        CoseError::BadSignature
    );

    // Garbage where a certificate should be.
    let garbage = signed_with_chain(p, &key, vec![vec![0x30, 0x03, 0x02, 0x01, 0x01]]);
    assert!(matches!(
        cert_err(&garbage, &trust),
        CertificateError::Malformed(_)
    ));
}

#[test]
fn crls_revoke_listed_certificates_only() {
    let ca = make_ca("ca", None);
    let p = default_provider();
    let key = PrivateKey::generate(Curve::Ed25519).unwrap();
    let mut trust = ca_trust(&ca);
    trust.add_crl_der(revoke(&ca, 66)).unwrap();
    let revoked = signed_with_chain(p, &key, vec![make_leaf(&key, &ca, 66, 2024, 2027)]);
    assert_eq!(
        verify_sign1(&revoked, &at(p, &trust)).unwrap_err(),
        CoseError::Certificate(CertificateError::Revoked)
    );
    let fine = signed_with_chain(p, &key, vec![make_leaf(&key, &ca, 67, 2024, 2027)]);
    assert!(verify_sign1(&fine, &at(p, &trust)).is_ok());
    assert!(matches!(
        trust.add_crl_der(vec![1, 2, 3]),
        Err(CoseError::Certificate(CertificateError::Malformed(_)))
    ));
}

#[test]
fn raw_key_anchors_work_beside_ca_anchors() {
    let ca = make_ca("ca", None);
    let p = default_provider();
    let certified = PrivateKey::generate(Curve::P256).unwrap();
    let raw = PrivateKey::generate(Curve::P256).unwrap();
    let mut trust = ca_trust(&ca);
    trust.add_key(raw.public_key().clone());
    let raw_signer = p.signer(&raw, Algorithm::Esp256).unwrap();
    let by_raw = sign1(raw_signer.as_ref(), PAYLOAD, &SignOptions::default()).unwrap();
    assert_eq!(
        &verify_sign1(&by_raw, &at(p, &trust)).unwrap().signer,
        raw.public_key()
    );
    let by_cert = signed_with_chain(
        p,
        &certified,
        vec![make_leaf(&certified, &ca, 9, 2024, 2027)],
    );
    assert_eq!(
        &verify_sign1(&by_cert, &at(p, &trust)).unwrap().signer,
        certified.public_key()
    );

    // COSE_Sign: the chain rides on the first signer.
    let certified_signer = p.signer(&certified, Algorithm::Esp256).unwrap();
    let signers: [&dyn Signer; 1] = [certified_signer.as_ref()];
    let opts = SignOptions {
        x5chain: vec![make_leaf(&certified, &ca, 10, 2024, 2027)],
        ..SignOptions::default()
    };
    let cose = sign(&signers, PAYLOAD, &opts).unwrap();
    assert_eq!(
        &verify_sign(&cose, &at(p, &ca_trust(&ca))).unwrap().signer,
        certified.public_key()
    );
}

#[test]
fn x5chain_must_be_bstr_or_array_of_bstr() {
    let ca = make_ca("ca", None);
    let p = default_provider();
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let signer = p.signer(&key, Algorithm::Esp256).unwrap();
    let trust = ca_trust(&ca);
    for bad in [
        Value::Integer(1.into()),
        Value::Array(vec![]),
        Value::Array(vec![Value::Bool(true)]),
    ] {
        let protected = ProtectedHeader {
            original_data: None,
            header: alg_header(Algorithm::Esp256).value(33, bad).build(),
        };
        let cose = custom_sign1(
            signer.as_ref(),
            protected,
            HeaderBuilder::new().build(),
            PAYLOAD,
        );
        assert!(matches!(
            verify_sign1(&cose, &at(p, &trust)),
            Err(CoseError::Malformed(_))
        ));
    }
}

#[test]
fn ca_pem_import() {
    let mut trust = TrustStore::new();
    assert!(matches!(
        trust.add_ca_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
        Err(CoseError::Certificate(CertificateError::Malformed(_)))
    ));
    let ca = make_ca("pem ca", None);
    trust.add_ca_pem(&ca.pem).unwrap();
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let cose = signed_with_chain(
        default_provider(),
        &key,
        vec![make_leaf(&key, &ca, 11, 2024, 2027)],
    );
    assert!(verify_sign1(&cose, &at(default_provider(), &trust)).is_ok());
    // The leaf certificate's key is also importable as a public key.
    let leaf_pem = make_leaf_cert(&key, &ca, 12, 2024, 2027).pem();
    assert_eq!(&PublicKey::from_pem(&leaf_pem).unwrap(), key.public_key());
}
