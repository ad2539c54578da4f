//! Property: every claims-set and EAR we can build encodes in the EAT profile and decodes to
//! itself.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use teep_attest::{
    Cnf, DebugStatus, EatClaims, Manifest, ManifestBody, Oemid, SuitDigest, SuitReference, Version,
};

fn version() -> impl Strategy<Value = Version> {
    ("[0-9.]{1,8}", option::of(-3i64..5)).prop_map(|(version, scheme)| Version { version, scheme })
}

fn manifest() -> impl Strategy<Value = Manifest> {
    prop_oneof![
        ("[a-z:/.]{0,20}", vec(any::<u8>(), 0..40), -50i64..50).prop_map(|(uri, bytes, alg)| {
            Manifest {
                content_type: 60,
                body: ManifestBody::SuitReference(SuitReference {
                    uri,
                    digest: SuitDigest {
                        algorithm: alg,
                        bytes,
                    },
                }),
            }
        }),
        // An opaque body: a CBOR unsigned integer.
        (0u64..1000, any::<u8>().prop_map(|b| vec![0x18, b.max(24)])).prop_map(
            |(content_type, body)| Manifest {
                content_type,
                body: ManifestBody::Other(body)
            }
        ),
    ]
}

fn claims() -> impl Strategy<Value = EatClaims> {
    let ids = (
        option::of(vec(any::<u8>(), 8..=64)),
        option::of(vec(any::<u8>(), 7..=33)),
        option::of(prop_oneof![
            any::<[u8; 3]>().prop_map(Oemid::Ieee),
            any::<[u8; 16]>().prop_map(Oemid::Random),
            any::<u64>().prop_map(Oemid::Pen),
        ]),
        option::of(vec(any::<u8>(), 1..=32)),
        option::of(version()),
    );
    let rest = (
        option::of(vec(manifest(), 1..4)),
        option::of(vec(any::<u8>(), 32).prop_map(Cnf::Kid)),
        option::of(any::<i64>()),
        (option::of(any::<i64>()), option::of(any::<i64>())),
        option::of((0u64..5).prop_map(|c| DebugStatus::from_code(c).unwrap())),
        option::of(any::<bool>()),
        option::of("[a-z]{0,10}"),
        option::of(version()),
    );
    (ids, rest).prop_map(
        |(
            (nonce, ueid, oemid, hwmodel, hwversion),
            (manifests, cnf, iat, (exp, nbf), dbgstat, secboot, swname, swversion),
        )| {
            EatClaims {
                profile: Some(teep_attest::claims::TEEP_EAT_PROFILE.into()),
                nonce,
                ueid,
                oemid,
                hwmodel,
                hwversion,
                manifests,
                measurements: None,
                cnf,
                iat,
                exp,
                nbf,
                dbgstat,
                secboot,
                swname,
                swversion,
            }
        },
    )
}

proptest! {
    #[test]
    fn claims_round_trip(c in claims()) {
        let bytes = c.to_cbor().unwrap();
        teep_cbor::check(&bytes, &teep_cbor::Profile::DETERMINISTIC).unwrap();
        prop_assert_eq!(EatClaims::from_cbor(&bytes).unwrap(), c);
    }
}
