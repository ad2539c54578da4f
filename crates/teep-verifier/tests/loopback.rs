//! The background-check flow through the HTTP Verifier on loopback: the relying party (a
//! TAM) asks for a challenge, the Attester answers with Evidence carrying it, the relying
//! party forwards the Evidence and checks the signed EAR it gets back.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use teep_attest::{
    Cnf, DebugStatus, EatClaims, Endorsement, EndorsementScope, Manifest, Oemid, Policy,
    ReferenceValues, ResultCheck, ResultError, Status, Verifier, VerifierId, Version,
    claims::TEEP_EAT_PROFILE, sign_evidence, verify_ear,
};
use teep_cose::{CryptoProvider, Curve, PrivateKey, TrustStore, default_provider};
use teep_verifier::{Client, ClientError, Service};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Fixture {
    attestation: PrivateKey,
    teep: PrivateKey,
    verifier_key: PrivateKey,
    client: Client,
    base: String,
}

fn policy(attestation: &PrivateKey) -> Policy {
    Policy {
        id: Some("policy:loopback".into()),
        endorsements: vec![Endorsement {
            key: attestation.public_key().clone(),
            scope: EndorsementScope::Ueid(vec![1; 17]),
        }],
        reference: ReferenceValues {
            oemids: vec![Oemid::Ieee([0x89, 0x48, 0x23])],
            hwmodels: vec![vec![0x54; 16]],
            hwversions: vec![],
            min_dbgstat: Some(DebugStatus::Disabled),
            require_secboot: false,
            tc_digests: vec![vec![0xa7; 32]],
        },
        freshness_window: 60,
        clock_skew: 60,
    }
}

fn evidence(f: &Fixture, nonce: &[u8]) -> Vec<u8> {
    let claims = EatClaims {
        profile: Some(TEEP_EAT_PROFILE.into()),
        nonce: Some(nonce.to_vec()),
        ueid: Some(vec![1; 17]),
        oemid: Some(Oemid::Ieee([0x89, 0x48, 0x23])),
        hwmodel: Some(vec![0x54; 16]),
        hwversion: Some(Version {
            version: "2.0".into(),
            scheme: None,
        }),
        manifests: Some(vec![Manifest::suit_reference(
            "https://tam.example/tc.suit",
            [0xa7; 32],
        )]),
        cnf: Some(Cnf::Kid(f.teep.public_key().thumbprint().to_vec())),
        iat: Some(now() as i64),
        dbgstat: Some(DebugStatus::DisabledSinceBoot),
        ..EatClaims::default()
    };
    let signer = default_provider()
        .signer(&f.attestation, f.attestation.default_algorithm())
        .unwrap();
    sign_evidence(&claims, signer.as_ref()).unwrap()
}

async fn start() -> Fixture {
    let attestation = PrivateKey::generate(Curve::P256).unwrap();
    let teep = PrivateKey::generate(Curve::P256).unwrap();
    let verifier_key = PrivateKey::generate(Curve::P256).unwrap();
    let provider: &'static dyn CryptoProvider = default_provider();
    let verifier = Verifier::new(
        policy(&attestation),
        VerifierId {
            developer: "teep project".into(),
            build: "loopback test".into(),
        },
    );
    let signer = provider
        .signer(&verifier_key, verifier_key.default_algorithm())
        .unwrap();
    let service = Arc::new(Service::new(verifier, signer, provider));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(teep_verifier::serve(listener, service));
    Fixture {
        attestation,
        teep,
        verifier_key,
        client: Client::new(base.clone()),
        base,
    }
}

fn check<'a>(f: &'a Fixture, trust: &'a TrustStore, nonce: &'a [u8]) -> ResultCheck<'a> {
    ResultCheck {
        provider: default_provider(),
        verifiers: trust,
        nonce: Some(nonce),
        now: now(),
        max_age: 60,
        teep_key: f.teep.public_key(),
    }
}

#[tokio::test]
async fn background_check_flow_over_http() {
    let f = start().await;
    let mut trust = TrustStore::new();
    trust.add_key(f.verifier_key.public_key().clone());

    let nonce = f.client.challenge().await.unwrap();
    assert_eq!(nonce.len(), 32);
    let evidence = evidence(&f, &nonce);
    let signed_ear = f.client.verify(&evidence).await.unwrap();
    let ear = verify_ear(&signed_ear, &check(&f, &trust, &nonce)).unwrap();
    assert_eq!(ear.status(), Status::Affirming);
    assert_eq!(ear.verifier_id.build, "loopback test");

    // The same Evidence again: the Verifier answers, and its EAR says contraindicated.
    let replayed = f.client.verify(&evidence).await.unwrap();
    assert_eq!(
        verify_ear(&replayed, &check(&f, &trust, &nonce)),
        Err(ResultError::NotAffirming(Status::Contraindicated))
    );
}

#[tokio::test]
async fn evidence_with_a_nonce_the_verifier_never_issued_is_contraindicated() {
    let f = start().await;
    let mut trust = TrustStore::new();
    trust.add_key(f.verifier_key.public_key().clone());
    let made_up = [7u8; 32];
    let signed_ear = f.client.verify(&evidence(&f, &made_up)).await.unwrap();
    assert_eq!(
        verify_ear(&signed_ear, &check(&f, &trust, &made_up)),
        Err(ResultError::NotAffirming(Status::Contraindicated))
    );
}

#[tokio::test]
async fn verify_wants_the_evidence_media_type() {
    let f = start().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/verify", f.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let too_big = vec![0u8; teep_verifier::MAX_EVIDENCE + 1];
    assert!(matches!(
        f.client.verify(&too_big).await,
        Err(ClientError::Status(413))
    ));
}
