//! The Verifier's appraisal past the signature: the input's first byte picks the signer,
//! the freshness mechanism, the clock and the options; the rest is an EAT claims-set that
//! the harness signs (COSE_Sign1, as `sign_evidence` would) with an endorsed key (P-256
//! for a device class, Ed25519 for one ueid) or an unknown one, then appraises with the
//! aws-lc provider against a policy whose reference values match the seed claims (so the
//! seeds come out affirming and mutations hit each check).
//!
//! Asserts: no panic; Evidence from an unknown key yields no claims and a contraindicated
//! result; an endorsed signature yields exactly the claims `EatClaims::from_cbor` decodes;
//! an affirming result has no findings; the same Evidence presented twice under the
//! timestamp mechanism is never affirming the second time; the EAR round-trips through
//! CBOR and renders as JSON.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use teep_attest::claims::{DebugStatus, Oemid};
use teep_attest::{
    Challenges, Context, Ear, EatClaims, Endorsement, EndorsementScope, Finding, Freshness, Policy,
    ReferenceValues, SeenEvidence, Status, Verifier, VerifierId,
};
use teep_cose::{
    Algorithm, AwsLcProvider, CryptoProvider, Curve, PrivateKey, PublicKey, SignOptions, Signer,
};

static PROVIDER: AwsLcProvider = AwsLcProvider;

/// The seed claims' (`seeds/verifier_appraise/*`) values, accepted by the policy.
const OEMID: [u8; 3] = [0x89, 0x48, 0x23];
const HWMODEL: [u8; 16] = [
    0x54, 0x9d, 0xce, 0xcc, 0x8b, 0x98, 0x7c, 0x73, 0x7b, 0x44, 0xe4, 0x0f, 0x7c, 0x63, 0x5c, 0xe8,
];
const UEID: [u8; 16] = [
    0x01, 0x98, 0xf5, 0x0a, 0x4f, 0xf6, 0xc0, 0x58, 0x61, 0xc8, 0x86, 0x0d, 0x13, 0xa6, 0x38, 0xea,
];
const NONCE: [u8; 16] = [
    0xfb, 0x88, 0xeb, 0x7f, 0x74, 0xb2, 0xf6, 0x3c, 0xb8, 0x57, 0xd3, 0xa0, 0xa3, 0x1b, 0x56, 0x6f,
];
const TC_DIGEST: [u8; 32] = [
    0x54, 0xce, 0xd6, 0xf3, 0x0c, 0x71, 0x21, 0x7a, 0x97, 0x3c, 0xce, 0xca, 0xa1, 0x22, 0xcb, 0xdc,
    0x19, 0x3e, 0xe5, 0x67, 0xf8, 0xb4, 0x58, 0x28, 0x09, 0x89, 0x12, 0xbc, 0x21, 0xed, 0xfb, 0xaf,
];
/// The seed claims' `iat`.
const IAT: u64 = 0x6b08_ece6;
const WINDOW: u64 = 300;

struct Fixture {
    /// Endorsed for the device class (oemid, hwmodel).
    class_key: Box<dyn Signer>,
    /// Endorsed for one ueid.
    ueid_key: Box<dyn Signer>,
    /// Not endorsed.
    unknown_key: Box<dyn Signer>,
    verifier: Verifier,
}

fn signer(curve: Curve, seed: u8, alg: Algorithm) -> Box<dyn Signer> {
    let key = PrivateKey::from_bytes(curve, &[seed; 32]).expect("fixed key");
    PROVIDER.signer(&key, alg).expect("signer")
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let class_key = signer(Curve::P256, 0x11, Algorithm::Esp256);
        let ueid_key = signer(Curve::Ed25519, 0x22, Algorithm::Ed25519);
        let unknown_key = signer(Curve::P256, 0x33, Algorithm::Esp256);
        let policy = Policy {
            id: Some("fuzz".into()),
            endorsements: vec![
                Endorsement {
                    key: class_key.public_key().clone(),
                    scope: EndorsementScope::DeviceClass {
                        oemid: Oemid::Ieee(OEMID),
                        hwmodel: HWMODEL.to_vec(),
                    },
                },
                Endorsement {
                    key: ueid_key.public_key().clone(),
                    scope: EndorsementScope::Ueid(UEID.to_vec()),
                },
            ],
            reference: ReferenceValues {
                oemids: vec![Oemid::Ieee(OEMID), Oemid::Pen(32473)],
                hwmodels: vec![HWMODEL.to_vec()],
                hwversions: vec!["1.3.4".into()],
                min_dbgstat: Some(DebugStatus::DisabledSinceBoot),
                require_secboot: true,
                tc_digests: vec![TC_DIGEST.to_vec()],
            },
            freshness_window: WINDOW,
            clock_skew: teep_attest::policy::DEFAULT_CLOCK_SKEW,
        };
        let id = VerifierId {
            developer: "teep-fuzz".into(),
            build: "0".into(),
        };
        Fixture {
            class_key,
            ueid_key,
            unknown_key,
            verifier: Verifier::new(policy, id),
        }
    })
}

fn check_ear(ear: &Ear) {
    assert_eq!(
        Ear::from_cbor(&ear.to_cbor().expect("an appraised EAR encodes")).as_ref(),
        Ok(ear),
        "EAR round trip"
    );
    let _ = ear.to_json().to_string();
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, claims)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let (key, endorsed) = match options & 3 {
        0 => (&f.class_key, true),
        1 => (&f.ueid_key, true),
        _ => (&f.unknown_key, false),
    };
    let opts = SignOptions {
        tagged: options & 0x20 != 0,
        ..SignOptions::default()
    };
    let evidence = teep_cose::sign1(key.as_ref(), claims, &opts).expect("signing works");
    let now = match options >> 6 {
        0 => IAT,
        1 => IAT + WINDOW + 1,
        2 => 0,
        _ => IAT - 100,
    };
    let teep_key: Option<&PublicKey> = (options & 0x10 != 0).then(|| f.class_key.public_key());

    let mut challenges = Challenges::new(WINDOW);
    let _ = challenges.issue(&PROVIDER, now);
    let mut seen = SeenEvidence::new();
    let replay = (options >> 2) & 3 == 3;
    let freshness = match (options >> 2) & 3 {
        0 => Freshness::Nonce(&NONCE),
        1 => Freshness::Issued(&mut challenges),
        _ => Freshness::Timestamp(&mut seen),
    };
    let mut cx = Context {
        now,
        freshness,
        teep_key,
    };
    let outcome = f.verifier.appraise(&PROVIDER, &evidence, &mut cx);
    check_ear(&outcome.ear);
    if endorsed {
        assert_eq!(
            outcome.claims.as_ref(),
            EatClaims::from_cbor(claims).ok().as_ref(),
            "appraised claims differ from the decoded ones"
        );
    } else {
        assert!(outcome.claims.is_none(), "claims from an unknown key");
        assert_eq!(outcome.status(), Status::Contraindicated);
        assert!(outcome.findings.contains(&Finding::UnknownAttestationKey));
    }
    if outcome.status() == Status::Affirming {
        assert!(outcome.findings.is_empty(), "affirming with findings");
    }
    if replay {
        let again = f.verifier.appraise(&PROVIDER, &evidence, &mut cx);
        check_ear(&again.ear);
        assert_ne!(
            again.status(),
            Status::Affirming,
            "replayed Evidence affirmed"
        );
    }
});
