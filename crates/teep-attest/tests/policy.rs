//! The JSON policy format of docs/verifier-policy.md.
#![cfg(feature = "json")]

use teep_attest::{DebugStatus, EndorsementScope, Oemid, Policy, PolicyError};
use teep_cose::{Curve, PrivateKey};

fn policy_json(key: &str) -> String {
    serde_json::json!({
        "policy_id": "policy:teep/example",
        "endorsements": [
            {"key": key, "ueid": "0198f50a4ff6c05861c8860d13a638ea"},
            {"key": key, "device_class": {"oemid": "894823", "hwmodel": "549dcecc8b987c737b44e40f7c635ce8"}}
        ],
        "reference_values": {
            "oemids": ["894823", 32473],
            "hwmodels": ["549dcecc8b987c737b44e40f7c635ce8"],
            "hwversions": ["1.3.4"],
            "dbgstat": "disabled-since-boot",
            "secboot": true,
            "tc_digests": ["a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609"]
        },
        "freshness_window_seconds": 120
    })
    .to_string()
}

#[test]
fn reads_pem_and_cose_key_endorsements() {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let pem = key.public_key().to_pem();
    let cose_hex = hex::encode(key.public_key().to_cose_key_bytes());
    for text in [pem, cose_hex] {
        let p = Policy::from_json(&policy_json(&text)).unwrap();
        assert_eq!(p.id.as_deref(), Some("policy:teep/example"));
        assert_eq!(&p.endorsements[0].key, key.public_key());
        assert_eq!(
            p.endorsements[0].scope,
            EndorsementScope::Ueid(hex::decode("0198f50a4ff6c05861c8860d13a638ea").unwrap())
        );
        assert!(matches!(
            p.endorsements[1].scope,
            EndorsementScope::DeviceClass {
                oemid: Oemid::Ieee([0x89, 0x48, 0x23]),
                ..
            }
        ));
        assert_eq!(p.reference.oemids[1], Oemid::Pen(32473));
        assert_eq!(
            p.reference.min_dbgstat,
            Some(DebugStatus::DisabledSinceBoot)
        );
        assert!(p.reference.require_secboot);
        assert_eq!(p.reference.tc_digests.len(), 1);
        assert_eq!(p.freshness_window, 120);
    }
}

#[test]
fn rejects_bad_policies() {
    let key = PrivateKey::generate(Curve::P256)
        .unwrap()
        .public_key()
        .to_pem();
    let mut v: serde_json::Value = serde_json::from_str(&policy_json(&key)).unwrap();
    v["endorsements"][0]["device_class"] = v["endorsements"][1]["device_class"].clone();
    assert_eq!(
        Policy::from_json(&v.to_string()),
        Err(PolicyError::Scope(0))
    );

    let mut v: serde_json::Value = serde_json::from_str(&policy_json(&key)).unwrap();
    v["reference_values"]["dbgstat"] = "sometimes".into();
    assert_eq!(
        Policy::from_json(&v.to_string()),
        Err(PolicyError::Dbgstat("sometimes".into()))
    );

    let mut v: serde_json::Value = serde_json::from_str(&policy_json(&key)).unwrap();
    v["reference_values"]["oemids"][0] = "8948".into();
    assert_eq!(Policy::from_json(&v.to_string()), Err(PolicyError::Oemid));

    let v = policy_json("not a key");
    assert!(matches!(
        Policy::from_json(&v),
        Err(PolicyError::Key { index: 0, .. })
    ));

    let mut v: serde_json::Value = serde_json::from_str(&policy_json(&key)).unwrap();
    v["surprise"] = 1.into();
    assert!(matches!(
        Policy::from_json(&v.to_string()),
        Err(PolicyError::Json(_))
    ));
}

/// `clock_skew_seconds` is the leeway on `exp` / `nbf`; absent, a minute.
#[test]
fn clock_skew_is_read_with_a_default() {
    let key = PrivateKey::generate(Curve::P256)
        .unwrap()
        .public_key()
        .to_pem();
    let p = Policy::from_json(&policy_json(&key)).unwrap();
    assert_eq!(p.clock_skew, teep_attest::policy::DEFAULT_CLOCK_SKEW);
    assert_eq!(teep_attest::policy::DEFAULT_CLOCK_SKEW, 60);
    let mut v: serde_json::Value = serde_json::from_str(&policy_json(&key)).unwrap();
    v["clock_skew_seconds"] = 5.into();
    assert_eq!(Policy::from_json(&v.to_string()).unwrap().clock_skew, 5);
}
