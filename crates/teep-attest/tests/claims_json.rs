//! The JSON claims files of `teep attest evidence` (docs/verifier-policy.md, "Claims files").
#![cfg(feature = "json")]

use teep_attest::{ClaimsJsonError, Cnf, DebugStatus, EatClaims, Oemid};
use teep_cose::{Curve, PrivateKey};

#[test]
fn reads_a_claims_file() {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let text = serde_json::json!({
        "ueid": "0198f50a4ff6c05861c8860d13a638ea",
        "oemid": 32473,
        "hwmodel": "549d",
        "hwversion": "2.0",
        "dbgstat": "disabled",
        "secboot": false,
        "manifests": [{"uri": "u", "sha256": "a7".repeat(32)}],
        "cnf": {"cose_key": hex::encode(key.public_key().to_cose_key_bytes())},
        "swversion": ["1.0", 1],
        "exp": 1_780_000_600,
        "nbf": 1_780_000_000
    })
    .to_string();
    let c = EatClaims::from_json(&text).unwrap();
    assert_eq!(c.oemid, Some(Oemid::Pen(32473)));
    assert_eq!(c.hwversion.unwrap().scheme, None);
    assert_eq!(c.swversion.unwrap().scheme, Some(1));
    assert_eq!(c.dbgstat, Some(DebugStatus::Disabled));
    assert_eq!(
        c.manifests.unwrap()[0].digest().unwrap().bytes,
        vec![0xa7; 32]
    );
    assert_eq!(
        c.cnf,
        Some(Cnf::CoseKey(key.public_key().to_cose_key_bytes()))
    );
    assert_eq!((c.exp, c.nbf), (Some(1_780_000_600), Some(1_780_000_000)));
    assert_eq!((c.nonce, c.iat), (None, None));
}

#[test]
fn rejects_bad_claims_files() {
    let err = |v: serde_json::Value| EatClaims::from_json(&v.to_string()).unwrap_err();
    assert_eq!(
        err(serde_json::json!({"ueid": "xyz"})),
        ClaimsJsonError::Hex("ueid")
    );
    assert_eq!(
        err(serde_json::json!({"oemid": "0102"})),
        ClaimsJsonError::Hex("oemid")
    );
    assert_eq!(
        err(serde_json::json!({"manifests": [{"uri": "u", "sha256": "00"}]})),
        ClaimsJsonError::Hex("sha256")
    );
    assert_eq!(
        err(serde_json::json!({"cnf": {"cose_key": "a0"}})),
        ClaimsJsonError::Hex("cnf.cose_key")
    );
    assert_eq!(
        err(serde_json::json!({"dbgstat": "off"})),
        ClaimsJsonError::Dbgstat("off".into())
    );
    assert!(matches!(
        err(serde_json::json!({"ueid2": "00"})),
        ClaimsJsonError::Json(_)
    ));
}
