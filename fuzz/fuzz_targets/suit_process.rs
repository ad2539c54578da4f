//! The SUIT processor on arbitrary manifests: the input is a SUIT_Manifest, signed here
//! with a fixed Ed25519 key the processor trusts (so the fuzzer reaches the interpreter),
//! with one integrated payload `#tc`. Install, then uninstall, against in-memory storage:
//! no panic, and a failed procedure leaves the storage exactly as it was.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use teep_cose::{Algorithm, CryptoProvider, Curve, PrivateKey, RustCryptoProvider, Signer};
use teep_suit::builder;
use teep_suit::processor::{DeviceIdentity, Processor};
use teep_suit::storage::MemoryStorage;
use teep_suit::trust::{TrustAnchor, TrustAnchors};

fn signer() -> &'static (Box<dyn Signer>, TrustAnchors) {
    static SIGNER: OnceLock<(Box<dyn Signer>, TrustAnchors)> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let key = PrivateKey::from_bytes(Curve::Ed25519, &[7; 32]).expect("fixed key");
        let signer = RustCryptoProvider
            .signer(&key, Algorithm::Ed25519)
            .expect("signer");
        let mut trust = TrustAnchors::new();
        trust.add(TrustAnchor::unscoped(key.public_key().clone()));
        (signer, trust)
    })
}

fuzz_target!(|data: &[u8]| {
    let provider = RustCryptoProvider;
    let (signer, trust) = signer();
    let unsigned =
        builder::unsigned_envelope(data, &[("#tc".into(), b"payload".to_vec())], &provider);
    let Ok(envelope) = builder::sign(&unsigned, signer.as_ref(), &provider) else {
        return;
    };
    let device = DeviceIdentity::default();
    let processor = Processor::new(&provider, trust, &device);
    let mut storage = MemoryStorage::new();
    let out = processor.install(&mut storage, &envelope, Some(b"nonce"));
    let _ = out.report.to_cbor();
    match out.result {
        Err(_) => assert_eq!(storage, MemoryStorage::new()),
        Ok(done) => {
            let before = storage.clone();
            let out = processor.uninstall(&mut storage, &done.manifest_id, None);
            if out.result.is_err() {
                assert_eq!(storage, before);
            }
        }
    }
});
