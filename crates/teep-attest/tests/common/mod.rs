//! Fixtures shared by the teep-attest integration tests: keys, a policy that accepts the
//! "good" device, and that device's claims.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a failure here is a failed test"
)]
#![allow(dead_code)]

use teep_attest::{
    Cnf, DebugStatus, EatClaims, Endorsement, EndorsementScope, Manifest, Oemid, Policy,
    ReferenceValues, Verifier, VerifierId, Version, claims::TEEP_EAT_PROFILE,
};
use teep_cose::{CryptoProvider, Curve, PrivateKey, Signer, default_provider};

pub const NOW: u64 = 1_780_000_000;
pub const OEMID: [u8; 3] = [0x89, 0x48, 0x23];
pub const HWMODEL: [u8; 16] = [0x54; 16];
pub const UEID: [u8; 17] = [0x01; 17];
pub const TC_DIGEST: [u8; 32] = [0xa7; 32];
pub const NONCE: [u8; 16] = [0x94; 16];

pub fn provider() -> &'static dyn CryptoProvider {
    default_provider()
}

pub struct Keys {
    pub attestation: PrivateKey,
    pub teep: PrivateKey,
    pub verifier: PrivateKey,
}

impl Keys {
    pub fn new() -> Self {
        Self {
            attestation: PrivateKey::generate(Curve::P256).unwrap(),
            teep: PrivateKey::generate(Curve::P256).unwrap(),
            verifier: PrivateKey::generate(Curve::P256).unwrap(),
        }
    }

    pub fn signer(key: &PrivateKey) -> Box<dyn Signer> {
        provider().signer(key, key.default_algorithm()).unwrap()
    }
}

/// Claims of a device the policy below accepts.
pub fn good_claims(keys: &Keys) -> EatClaims {
    EatClaims {
        profile: Some(TEEP_EAT_PROFILE.into()),
        nonce: Some(NONCE.to_vec()),
        ueid: Some(UEID.to_vec()),
        oemid: Some(Oemid::Ieee(OEMID)),
        hwmodel: Some(HWMODEL.to_vec()),
        hwversion: Some(Version {
            version: "1.3.4".into(),
            scheme: Some(1),
        }),
        manifests: Some(vec![Manifest::suit_reference(
            "https://example.com/manifest.cbor",
            TC_DIGEST,
        )]),
        measurements: None,
        cnf: Some(Cnf::Kid(keys.teep.public_key().thumbprint().to_vec())),
        iat: Some(NOW as i64),
        exp: None,
        nbf: None,
        dbgstat: Some(DebugStatus::DisabledPermanently),
        secboot: Some(true),
        swname: None,
        swversion: None,
    }
}

pub fn policy(keys: &Keys) -> Policy {
    Policy {
        id: Some("policy:teep/test".into()),
        endorsements: vec![Endorsement {
            key: keys.attestation.public_key().clone(),
            scope: EndorsementScope::Ueid(UEID.to_vec()),
        }],
        reference: ReferenceValues {
            oemids: vec![Oemid::Ieee(OEMID)],
            hwmodels: vec![HWMODEL.to_vec()],
            hwversions: vec!["1.3.4".into()],
            min_dbgstat: Some(DebugStatus::DisabledSinceBoot),
            require_secboot: true,
            tc_digests: vec![TC_DIGEST.to_vec()],
        },
        freshness_window: 300,
        clock_skew: 60,
    }
}

pub fn verifier_id() -> VerifierId {
    VerifierId {
        developer: "teep project".into(),
        build: "teep-attest test".into(),
    }
}

pub fn verifier(keys: &Keys) -> Verifier {
    Verifier::new(policy(keys), verifier_id())
}

pub fn sign(claims: &EatClaims, key: &PrivateKey) -> Vec<u8> {
    teep_attest::sign_evidence(claims, Keys::signer(key).as_ref()).unwrap()
}
