//! COSE_Encrypt / COSE_Encrypt0 decryption on arbitrary bytes, with the firmware-encryption
//! vectors' keys (the ECDH-ES P-256 receiver key and the A128KW KEK, so the seeds decrypt):
//! `decrypt` and `decrypt0`, each with the ciphertext embedded and detached, through the
//! aws-lc provider (what the CLI runs) and the RustCrypto one (what a TEE build runs). No
//! panic, and both providers give the same result.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use teep_cose::coset::{CborSerializable, CoseKey, Label};
use teep_cose::encrypt::{DecryptionKey, SUIT_PAYLOAD_ENCRYPTION, decrypt, decrypt0};
use teep_cose::{AwsLcProvider, PrivateKey, RustCryptoProvider};
use zeroize::Zeroizing;

/// Detached ciphertext: the vectors' A128GCM ciphertext, so a seed that mutates its
/// encryption info still meets a real ciphertext.
const DETACHED: &str =
    include_str!("../../tests/vectors/suit/firmware-encryption/fwenc-ciphertext-esdh-a128gcm.hex");

struct Keys {
    recipients: Vec<DecryptionKey>,
    /// The KEK doubles as a content key for `decrypt0`, which takes the CEK directly.
    cek: Vec<u8>,
    detached: Vec<u8>,
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.split_whitespace().collect::<String>()).expect("vector is hex")
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let receiver = PrivateKey::from_cose_key_bytes(&unhex(include_str!(
            "../../tests/vectors/suit/keys/fwenc-receiver-esdh-p256.cose-key-private.hex"
        )))
        .expect("receiver key imports");
        let kek_key = CoseKey::from_slice(&unhex(include_str!(
            "../../tests/vectors/suit/keys/fwenc-kek-a128kw.cose-key.hex"
        )))
        .expect("KEK is a COSE_Key");
        let kek = kek_key
            .params
            .iter()
            .find(|(label, _)| *label == Label::Int(-1))
            .and_then(|(_, k)| k.as_bytes().cloned())
            .expect("KEK has k");
        Keys {
            recipients: vec![
                DecryptionKey::EcdhEs(receiver),
                // The vectors' A128KW recipients carry kid "kid-1" (fwenc-encinfo-aeskw-*.diag).
                DecryptionKey::A128Kw {
                    kek: Zeroizing::new(kek.clone()),
                    kid: Some(b"kid-1".to_vec()),
                },
            ],
            cek: kek,
            detached: unhex(DETACHED),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    for detached in [None, Some(keys.detached.as_slice())] {
        let [aws, rust] = [
            &AwsLcProvider as &dyn teep_cose::CryptoProvider,
            &RustCryptoProvider,
        ]
        .map(|provider| {
            (
                decrypt(
                    provider,
                    data,
                    detached,
                    &keys.recipients,
                    SUIT_PAYLOAD_ENCRYPTION,
                ),
                decrypt0(provider, data, detached, &keys.cek),
            )
        });
        assert_eq!(aws, rust, "aws-lc and RustCrypto disagree");
    }
});
