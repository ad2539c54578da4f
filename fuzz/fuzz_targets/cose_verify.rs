//! COSE signature verification and key import on arbitrary bytes, with the aws-lc provider
//! and X.509 (`x5chain`) support as the CLI builds them: `verify_signed` and
//! `verify_sign1_detached` against a trust store of one P-256 and one Ed25519 key (the
//! signed vectors' `esp256` and `ed25519` keys, so the seeds verify) and a CA anchor (the
//! fixed chain of `teep_fuzz::chain`); the input as an attacker's certificate, once as the
//! leaf and once as the intermediate of an `x5chain` on a message the harness signs with
//! the leaf key; and the four COSE_Key/PEM importers. No panic; anything that verifies
//! names a trusted key or the certified leaf key as its signer; a fuzzed leaf certificate
//! verifies only for the key that signed; any key that imports round-trips through its
//! exports to the same key.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use teep_cose::{
    AwsLcProvider, CryptoProvider, PrivateKey, PublicKey, SignOptions, Signer, TrustStore,
    VerifyContext, verify_sign1_detached, verify_signed,
};
use teep_fuzz::{Chain, NOW, chain};

static PROVIDER: AwsLcProvider = AwsLcProvider;

/// The payload of the messages the harness signs with the leaf key.
const CERTIFIED_PAYLOAD: &[u8] = b"certified payload";

/// The payload offered to `verify_sign1_detached` (the input itself is the COSE_Sign1).
const DETACHED_PAYLOAD: &[u8] = b"detached payload";

struct Fixture {
    trust: TrustStore,
    chain: Chain,
    leaf_signer: Box<dyn Signer>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut trust = TrustStore::new();
        for hex in [
            include_str!("../../tests/vectors/signed/keys/esp256.pub.cose_key.hex"),
            include_str!("../../tests/vectors/signed/keys/ed25519.pub.cose_key.hex"),
        ] {
            trust.add_key(PublicKey::from_any(hex.as_bytes()).expect("vector key imports"));
        }
        let chain = chain();
        trust.add_ca_der(chain.ca.clone()).expect("CA anchor");
        let leaf_signer = PROVIDER
            .signer(&chain.leaf_key, chain.leaf_key.default_algorithm())
            .expect("leaf signer");
        Fixture {
            trust,
            chain,
            leaf_signer,
        }
    })
}

/// Signs the certified payload with the leaf key, carrying `x5chain`.
fn signed_with_chain(f: &Fixture, x5chain: Vec<Vec<u8>>) -> Vec<u8> {
    let opts = SignOptions {
        x5chain,
        ..SignOptions::default()
    };
    teep_cose::sign1(f.leaf_signer.as_ref(), CERTIFIED_PAYLOAD, &opts).expect("signs")
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
    let f = fixture();
    let leaf_key = f.chain.leaf_key.public_key();
    let cx = VerifyContext {
        now: Some(NOW),
        ..VerifyContext::new(&PROVIDER, &f.trust)
    };
    for verified in [
        verify_signed(data, &cx),
        verify_sign1_detached(data, DETACHED_PAYLOAD, &cx),
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            f.trust.keys().contains(&verified.signer) || &verified.signer == leaf_key,
            "verified with an untrusted key: {verified:?}"
        );
    }

    // The input as the leaf, then as the intermediate, of a chain on a signed message.
    for x5chain in [
        vec![data.to_vec(), f.chain.intermediate.clone()],
        vec![f.chain.leaf.clone(), data.to_vec()],
    ] {
        if let Ok(verified) = verify_signed(&signed_with_chain(f, x5chain), &cx) {
            assert_eq!(&verified.signer, leaf_key, "a certificate for another key");
            assert_eq!(verified.payload, CERTIFIED_PAYLOAD);
        }
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
