//! The appraisal matrix: each wrong or missing claim, and each rejection, with the finding,
//! trustworthiness claim and status it must give.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use teep_attest::{
    Challenges, Claim, Cnf, Context, DebugStatus, EatClaims, EndorsementScope, Finding, Freshness,
    FreshnessError, Oemid, Outcome, SeenEvidence, Status, TrustClaim, Verifier,
    ear::{TEE_SUBMOD, trust},
};

fn appraise_with_nonce(v: &Verifier, evidence: &[u8], keys: &Keys) -> Outcome {
    let mut cx = Context {
        now: NOW,
        freshness: Freshness::Nonce(&NONCE),
        teep_key: Some(keys.teep.public_key()),
    };
    v.appraise(provider(), evidence, &mut cx)
}

fn trust_value(o: &Outcome, claim: TrustClaim) -> i8 {
    let tv = o.ear.submods[TEE_SUBMOD].trust_vector;
    match claim {
        TrustClaim::InstanceIdentity => tv.instance_identity,
        TrustClaim::Configuration => tv.configuration,
        TrustClaim::Executables => tv.executables,
        TrustClaim::Hardware => tv.hardware,
    }
}

#[test]
fn good_evidence_is_affirmed() {
    let keys = Keys::new();
    let claims = good_claims(&keys);
    let o = appraise_with_nonce(&verifier(&keys), &sign(&claims, &keys.attestation), &keys);
    assert_eq!(o.findings, vec![]);
    assert_eq!(o.status(), Status::Affirming);
    let tv = o.ear.submods[TEE_SUBMOD].trust_vector;
    assert_eq!(
        [
            tv.instance_identity,
            tv.configuration,
            tv.executables,
            tv.hardware
        ],
        [
            trust::TRUSTWORTHY_INSTANCE,
            trust::APPROVED_CONFIG,
            trust::APPROVED_RUNTIME,
            trust::GENUINE_HARDWARE
        ]
    );
    // nonce and cnf are carried through; the EAR names the Verifier, the time and the policy.
    assert_eq!(o.ear.nonce.as_deref(), Some(&NONCE[..]));
    assert_eq!(o.ear.cnf, claims.cnf);
    assert_eq!(o.ear.verifier_id, verifier_id());
    assert_eq!(o.ear.iat, NOW as i64);
    assert_eq!(
        o.ear.submods[TEE_SUBMOD].policy_id.as_deref(),
        Some("policy:teep/test")
    );
}

type Mutation = fn(&mut EatClaims, &Keys);

#[test]
fn each_wrong_or_missing_claim_has_its_finding_claim_and_status() {
    use TrustClaim::*;
    let cases: Vec<(&str, Mutation, Finding, TrustClaim, i8, Status)> = vec![
        (
            "wrong nonce",
            |c, _| c.nonce = Some(vec![0; 16]),
            Finding::Freshness(FreshnessError::NonceMismatch),
            InstanceIdentity,
            96,
            Status::Contraindicated,
        ),
        (
            "no nonce",
            |c, _| c.nonce = None,
            Finding::MissingClaim(Claim::Nonce),
            InstanceIdentity,
            96,
            Status::Contraindicated,
        ),
        (
            "no ueid",
            |c, _| c.ueid = None,
            Finding::MissingClaim(Claim::Ueid),
            InstanceIdentity,
            97,
            Status::Contraindicated,
        ),
        (
            "other profile",
            |c, _| c.profile = Some("urn:example:other".into()),
            Finding::WrongProfile,
            InstanceIdentity,
            1,
            Status::Contraindicated,
        ),
        (
            "no cnf",
            |c, _| c.cnf = None,
            Finding::MissingClaim(Claim::Cnf),
            InstanceIdentity,
            96,
            Status::Contraindicated,
        ),
        (
            "cnf of another key",
            |c, k| c.cnf = Some(Cnf::Kid(k.verifier.public_key().thumbprint().to_vec())),
            Finding::CnfMismatch,
            InstanceIdentity,
            96,
            Status::Contraindicated,
        ),
        (
            "wrong oemid",
            |c, _| c.oemid = Some(Oemid::Ieee([1, 2, 3])),
            Finding::OemidNotAccepted,
            Hardware,
            97,
            Status::Contraindicated,
        ),
        (
            "no oemid",
            |c, _| c.oemid = None,
            Finding::MissingClaim(Claim::Oemid),
            Hardware,
            97,
            Status::Contraindicated,
        ),
        (
            "wrong hwmodel",
            |c, _| c.hwmodel = Some(vec![9; 16]),
            Finding::HwModelNotAccepted,
            Hardware,
            97,
            Status::Contraindicated,
        ),
        (
            "no hwmodel",
            |c, _| c.hwmodel = None,
            Finding::MissingClaim(Claim::HwModel),
            Hardware,
            97,
            Status::Contraindicated,
        ),
        (
            "wrong hwversion",
            |c, _| c.hwversion.as_mut().unwrap().version = "1.2.0".into(),
            Finding::HwVersionNotAccepted,
            Hardware,
            32,
            Status::Warning,
        ),
        (
            "no hwversion",
            |c, _| c.hwversion = None,
            Finding::MissingClaim(Claim::HwVersion),
            Hardware,
            97,
            Status::Contraindicated,
        ),
        (
            "debug enabled",
            |c, _| c.dbgstat = Some(DebugStatus::Enabled),
            Finding::DebugNotLocked(DebugStatus::Enabled),
            Configuration,
            96,
            Status::Contraindicated,
        ),
        (
            "no dbgstat",
            |c, _| c.dbgstat = None,
            Finding::MissingClaim(Claim::DbgStat),
            Configuration,
            36,
            Status::Warning,
        ),
        (
            "secure boot off",
            |c, _| c.secboot = Some(false),
            Finding::SecureBootOff,
            Configuration,
            96,
            Status::Contraindicated,
        ),
        (
            "no secboot",
            |c, _| c.secboot = None,
            Finding::MissingClaim(Claim::SecBoot),
            Configuration,
            36,
            Status::Warning,
        ),
        (
            "unknown TC",
            |c, _| c.manifests = Some(vec![teep_attest::Manifest::suit_reference("u", [7; 32])]),
            Finding::UnknownComponent(vec![7; 32]),
            Executables,
            33,
            Status::Warning,
        ),
        (
            "no manifests",
            |c, _| c.manifests = None,
            Finding::MissingClaim(Claim::Manifests),
            Executables,
            33,
            Status::Warning,
        ),
    ];
    let keys = Keys::new();
    let v = verifier(&keys);
    for (name, mutate, finding, claim, value, status) in cases {
        let mut claims = good_claims(&keys);
        mutate(&mut claims, &keys);
        let o = appraise_with_nonce(&v, &sign(&claims, &keys.attestation), &keys);
        assert_eq!(o.findings, vec![finding], "{name}");
        assert_eq!(trust_value(&o, claim), value, "{name}");
        assert_eq!(o.status(), status, "{name}");
    }
}

#[test]
fn unknown_attestation_key_is_rejected() {
    let keys = Keys::new();
    let o = appraise_with_nonce(
        &verifier(&keys),
        &sign(&good_claims(&keys), &keys.teep),
        &keys,
    );
    assert_eq!(o.findings, vec![Finding::UnknownAttestationKey]);
    assert_eq!(
        trust_value(&o, TrustClaim::InstanceIdentity),
        trust::UNRECOGNIZED_INSTANCE
    );
    assert_eq!(o.status(), Status::Contraindicated);
    // Nothing from unverified Evidence reaches the EAR.
    assert_eq!((o.ear.nonce, o.ear.cnf, o.claims), (None, None, None));
}

#[test]
fn bad_signature_is_rejected() {
    let keys = Keys::new();
    let mut evidence = sign(&good_claims(&keys), &keys.attestation);
    let last = evidence.len() - 1;
    evidence[last] ^= 0x80;
    let o = appraise_with_nonce(&verifier(&keys), &evidence, &keys);
    assert_eq!(o.findings, vec![Finding::BadSignature]);
    assert_eq!(
        trust_value(&o, TrustClaim::InstanceIdentity),
        trust::CRYPTO_FAILED
    );
    assert_eq!(o.status(), Status::Contraindicated);
}

#[test]
fn malformed_evidence_is_rejected() {
    let keys = Keys::new();
    let v = verifier(&keys);
    for garbage in [&b""[..], b"\xff", b"\x84\x40\xa0\x40"] {
        let o = appraise_with_nonce(&v, garbage, &keys);
        assert!(
            matches!(o.findings.as_slice(), [Finding::Malformed(_)]),
            "{garbage:?}: {:?}",
            o.findings
        );
        assert_eq!(
            trust_value(&o, TrustClaim::InstanceIdentity),
            trust::UNEXPECTED_EVIDENCE
        );
        assert_eq!(o.status(), Status::Contraindicated);
    }
}

#[test]
fn key_endorsed_for_another_device_is_rejected() {
    let keys = Keys::new();
    let mut claims = good_claims(&keys);
    claims.ueid = Some(vec![2; 17]);
    let o = appraise_with_nonce(&verifier(&keys), &sign(&claims, &keys.attestation), &keys);
    assert_eq!(o.findings, vec![Finding::KeyNotEndorsedForDevice]);
    assert_eq!(
        trust_value(&o, TrustClaim::InstanceIdentity),
        trust::UNTRUSTWORTHY_INSTANCE
    );
}

#[test]
fn device_class_endorsement_covers_its_class_only() {
    let keys = Keys::new();
    let mut policy = policy(&keys);
    policy.endorsements[0].scope = EndorsementScope::DeviceClass {
        oemid: Oemid::Ieee(OEMID),
        hwmodel: HWMODEL.to_vec(),
    };
    let other_model = vec![0x55; 16];
    policy.reference.hwmodels.push(other_model.clone());
    let v = Verifier::new(policy, verifier_id());
    let good = appraise_with_nonce(&v, &sign(&good_claims(&keys), &keys.attestation), &keys);
    assert_eq!(good.status(), Status::Affirming);
    let mut claims = good_claims(&keys);
    claims.hwmodel = Some(other_model);
    let o = appraise_with_nonce(&v, &sign(&claims, &keys.attestation), &keys);
    assert_eq!(o.findings, vec![Finding::KeyNotEndorsedForDevice]);
}

#[test]
fn issued_challenge_is_redeemed_once_and_expires() {
    let keys = Keys::new();
    let v = verifier(&keys);
    let mut challenges = Challenges::new(300);
    let nonce = challenges.issue(provider(), NOW).unwrap();
    let mut claims = good_claims(&keys);
    claims.nonce = Some(nonce.clone());
    let evidence = sign(&claims, &keys.attestation);
    let appraise = |challenges: &mut Challenges, now| {
        let mut cx = Context {
            now,
            freshness: Freshness::Issued(challenges),
            teep_key: None,
        };
        v.appraise(provider(), &evidence, &mut cx)
    };
    assert_eq!(appraise(&mut challenges, NOW + 10).findings, vec![]);
    // The same Evidence again: its challenge is spent.
    let replay = appraise(&mut challenges, NOW + 20);
    assert_eq!(
        replay.findings,
        vec![Finding::Freshness(FreshnessError::Replayed)]
    );
    assert_eq!(replay.status(), Status::Contraindicated);

    // A challenge answered after its lifetime is stale.
    let late = challenges.issue(provider(), NOW).unwrap();
    claims.nonce = Some(late);
    let evidence = sign(&claims, &keys.attestation);
    let mut cx = Context {
        now: NOW + 301,
        freshness: Freshness::Issued(&mut challenges),
        teep_key: None,
    };
    let o = v.appraise(provider(), &evidence, &mut cx);
    assert_eq!(
        o.findings,
        vec![Finding::Freshness(FreshnessError::Stale {
            issued: NOW as i64,
            now: NOW + 301
        })]
    );

    // A nonce this Verifier never issued.
    claims.nonce = Some(vec![0x42; 32]);
    let evidence = sign(&claims, &keys.attestation);
    let mut cx = Context {
        now: NOW,
        freshness: Freshness::Issued(&mut challenges),
        teep_key: None,
    };
    let o = v.appraise(provider(), &evidence, &mut cx);
    assert_eq!(
        o.findings,
        vec![Finding::Freshness(FreshnessError::UnknownChallenge)]
    );
}

#[test]
fn timestamp_freshness_checks_iat_and_replays() {
    let keys = Keys::new();
    let v = verifier(&keys);
    let mut seen = SeenEvidence::new();
    let evidence = sign(&good_claims(&keys), &keys.attestation);
    let at = |seen: &mut SeenEvidence, now| {
        let mut cx = Context {
            now,
            freshness: Freshness::Timestamp(seen),
            teep_key: None,
        };
        v.appraise(provider(), &evidence, &mut cx).findings
    };
    assert_eq!(at(&mut seen, NOW + 299), vec![]);
    assert_eq!(
        at(&mut seen, NOW + 299),
        vec![Finding::Freshness(FreshnessError::Replayed)]
    );
    assert_eq!(
        at(&mut SeenEvidence::new(), NOW + 301),
        vec![Finding::Freshness(FreshnessError::Stale {
            issued: NOW as i64,
            now: NOW + 301
        })]
    );
    let mut claims = good_claims(&keys);
    claims.iat = None;
    let evidence = sign(&claims, &keys.attestation);
    let mut cx = Context {
        now: NOW,
        freshness: Freshness::Timestamp(&mut seen),
        teep_key: None,
    };
    assert_eq!(
        v.appraise(provider(), &evidence, &mut cx).findings,
        vec![Finding::MissingClaim(Claim::Iat)]
    );
}

#[test]
fn forged_evidence_does_not_burn_a_challenge() {
    let keys = Keys::new();
    let v = verifier(&keys);
    let mut challenges = Challenges::new(300);
    let nonce = challenges.issue(provider(), NOW).unwrap();
    let mut claims = good_claims(&keys);
    claims.nonce = Some(nonce);
    let forged = sign(&claims, &keys.teep);
    let mut cx = Context {
        now: NOW,
        freshness: Freshness::Issued(&mut challenges),
        teep_key: None,
    };
    assert_eq!(
        v.appraise(provider(), &forged, &mut cx).findings,
        vec![Finding::UnknownAttestationKey]
    );
    let genuine = sign(&claims, &keys.attestation);
    let mut cx = Context {
        now: NOW,
        freshness: Freshness::Issued(&mut challenges),
        teep_key: None,
    };
    assert_eq!(v.appraise(provider(), &genuine, &mut cx).findings, vec![]);
}

/// Endorsements are raw keys: Evidence whose signer comes with a certificate chain is not
/// signed by an endorsed key, even when the certified key is the endorsed one.
#[test]
fn certificate_chained_evidence_is_not_endorsed() {
    let keys = Keys::new();
    let pair = rcgen::KeyPair::from_pem(&keys.attestation.to_pkcs8_pem()).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["attester".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let opts = teep_cose::SignOptions {
        tagged: false,
        x5chain: vec![cert.der().to_vec()],
        ..Default::default()
    };
    let signer = Keys::signer(&keys.attestation);
    let evidence = teep_cose::sign1(
        signer.as_ref(),
        &good_claims(&keys).to_cbor().unwrap(),
        &opts,
    )
    .unwrap();
    let o = appraise_with_nonce(&verifier(&keys), &evidence, &keys);
    assert_eq!(o.findings, vec![Finding::UnknownAttestationKey]);
    assert_eq!(o.status(), Status::Contraindicated);
}
