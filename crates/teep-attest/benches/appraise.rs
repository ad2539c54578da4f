//! Appraisal of one Evidence (signature check, claims decode, every policy check, EAR built)
//! beside one bare signature verification with the same provider and key, in the same run.
//! Target: appraisal at most 1.3 times the bare verification.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark set-up on fixed inputs: a failure aborts the benchmark"
)]

use divan::{Bencher, black_box};
use teep_attest::{
    Cnf, Context, DebugStatus, EatClaims, Endorsement, EndorsementScope, Freshness, Manifest,
    Oemid, Policy, ReferenceValues, Status, Verifier, VerifierId, Version,
    claims::TEEP_EAT_PROFILE, sign_evidence,
};
use teep_cose::{CryptoProvider, Curve, PrivateKey, default_provider};

fn main() {
    println!("provider: {}", default_provider().name());
    divan::main();
}

const NONCE: [u8; 32] = [0x42; 32];

struct Setup {
    verifier: Verifier,
    evidence: Vec<u8>,
    teep: PrivateKey,
}

fn setup() -> Setup {
    let attestation = PrivateKey::generate(Curve::P256).unwrap();
    let teep = PrivateKey::generate(Curve::P256).unwrap();
    let claims = EatClaims {
        profile: Some(TEEP_EAT_PROFILE.into()),
        nonce: Some(NONCE.to_vec()),
        ueid: Some(vec![1; 17]),
        oemid: Some(Oemid::Ieee([0x89, 0x48, 0x23])),
        hwmodel: Some(vec![0x54; 16]),
        hwversion: Some(Version {
            version: "1.3.4".into(),
            scheme: Some(1),
        }),
        manifests: Some(vec![Manifest::suit_reference(
            "https://tam.example/tc.suit",
            [0xa7; 32],
        )]),
        cnf: Some(Cnf::Kid(teep.public_key().thumbprint().to_vec())),
        iat: Some(1_780_000_000),
        exp: None,
        nbf: None,
        dbgstat: Some(DebugStatus::DisabledPermanently),
        secboot: Some(true),
        ..EatClaims::default()
    };
    let signer = default_provider()
        .signer(&attestation, attestation.default_algorithm())
        .unwrap();
    let evidence = sign_evidence(&claims, signer.as_ref()).unwrap();
    let policy = Policy {
        id: None,
        endorsements: vec![Endorsement {
            key: attestation.public_key().clone(),
            scope: EndorsementScope::Ueid(vec![1; 17]),
        }],
        reference: ReferenceValues {
            oemids: vec![Oemid::Ieee([0x89, 0x48, 0x23])],
            hwmodels: vec![vec![0x54; 16]],
            hwversions: vec!["1.3.4".into()],
            min_dbgstat: Some(DebugStatus::DisabledSinceBoot),
            require_secboot: true,
            tc_digests: vec![vec![0xa7; 32]],
        },
        freshness_window: 300,
        clock_skew: 60,
    };
    let id = VerifierId {
        developer: "bench".into(),
        build: "bench".into(),
    };
    Setup {
        verifier: Verifier::new(policy, id),
        evidence,
        teep,
    }
}

#[divan::bench]
fn appraise_evidence(bencher: Bencher<'_, '_>) {
    let s = setup();
    let provider = default_provider();
    bencher.bench_local(|| {
        let mut cx = Context {
            now: 1_780_000_000,
            freshness: Freshness::Nonce(&NONCE),
            teep_key: Some(s.teep.public_key()),
        };
        let outcome = s
            .verifier
            .appraise(provider, black_box(&s.evidence), &mut cx);
        assert_eq!(outcome.status(), Status::Affirming);
        outcome
    });
}

#[divan::bench]
fn bare_signature_verify(bencher: Bencher<'_, '_>) {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let alg = key.default_algorithm();
    let provider: &dyn CryptoProvider = default_provider();
    let signer = provider.signer(&key, alg).unwrap();
    // About the size of the Evidence's Sig_structure.
    let tbs = vec![0x5a; setup().evidence.len()];
    let sig = signer.sign(&tbs).unwrap();
    bencher
        .bench_local(|| provider.verify(key.public_key(), alg, black_box(&tbs), black_box(&sig)));
}
