//! COSE signature verification and key import on arbitrary bytes: `verify_signed` and
//! `verify_sign1_detached` against a trust store of one P-256 and one Ed25519 key (the
//! signed vectors' `esp256` and `ed25519` keys, so the seeds verify), and the four
//! COSE_Key/PEM importers. No panic; anything that verifies names one of the two trusted
//! keys as its signer; any key that imports round-trips through its exports to the same key.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use teep_cose::{
    PrivateKey, PublicKey, RustCryptoProvider, TrustStore, VerifyContext, verify_sign1_detached,
    verify_signed,
};

/// A fixed clock (2026-01-01T00:00:00Z): certificate expiry checks need one.
const NOW: u64 = 1_767_225_600;

/// The payload offered to `verify_sign1_detached` (the input itself is the COSE_Sign1).
const DETACHED_PAYLOAD: &[u8] = b"detached payload";

fn trust() -> &'static TrustStore {
    static TRUST: OnceLock<TrustStore> = OnceLock::new();
    TRUST.get_or_init(|| {
        let mut trust = TrustStore::new();
        for hex in [
            include_str!("../../tests/vectors/signed/keys/esp256.pub.cose_key.hex"),
            include_str!("../../tests/vectors/signed/keys/ed25519.pub.cose_key.hex"),
        ] {
            trust.add_key(PublicKey::from_any(hex.as_bytes()).expect("vector key imports"));
        }
        trust
    })
}

fn assert_public_round_trips(key: &PublicKey) {
    let cose = PublicKey::from_cose_key_bytes(&key.to_cose_key_bytes());
    assert_eq!(cose.as_ref(), Ok(key), "COSE_Key round trip");
    let pem = PublicKey::from_pem(&key.to_pem());
    assert_eq!(pem.as_ref(), Ok(key), "SPKI PEM round trip");
}

fn assert_private_round_trips(key: &PrivateKey) {
    let same = |again: PrivateKey| {
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(again.secret_bytes(), key.secret_bytes());
    };
    same(PrivateKey::from_cose_key_bytes(&key.to_cose_key_bytes()).expect("COSE_Key re-imports"));
    same(PrivateKey::from_pem(&key.to_pkcs8_pem()).expect("PKCS#8 PEM re-imports"));
    assert_public_round_trips(key.public_key());
}

fuzz_target!(|data: &[u8]| {
    let provider = RustCryptoProvider;
    let trust = trust();
    let cx = VerifyContext {
        now: Some(NOW),
        ..VerifyContext::new(&provider, trust)
    };
    for verified in [
        verify_signed(data, &cx),
        verify_sign1_detached(data, DETACHED_PAYLOAD, &cx),
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            trust.keys().contains(&verified.signer),
            "verified with an untrusted key: {verified:?}"
        );
    }

    for key in [
        PublicKey::from_cose_key_bytes(data),
        PublicKey::from_any(data),
    ]
    .into_iter()
    .flatten()
    {
        assert_public_round_trips(&key);
    }
    for key in [
        PrivateKey::from_cose_key_bytes(data),
        PrivateKey::from_any(data),
    ]
    .into_iter()
    .flatten()
    {
        assert_private_round_trips(&key);
    }
});
