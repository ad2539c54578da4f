//! Shared helpers for the teep-suit integration tests: vector files, keys, anchors.
#![allow(dead_code)]

use teep_cose::coset::{CborSerializable, CoseKey, Label};
use teep_cose::{PrivateKey, PublicKey, RustCryptoProvider, TrustStore};

pub const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");

pub static PROVIDER: RustCryptoProvider = RustCryptoProvider;

/// Reads a one-line hex vector file.
pub fn hex_file(rel: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{VECTORS}/{rel}"))
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    hex::decode(text.split_whitespace().collect::<String>()).unwrap()
}

/// A public key named in expected.json (PEM names map onto the same key's COSE_Key file).
pub fn public_key(rel: &str) -> PublicKey {
    let rel = rel.replace(".public.pem", ".cose-key-public.hex");
    PublicKey::from_cose_key_bytes(&hex_file(&format!("suit/{rel}"))).unwrap()
}

pub fn private_key(rel: &str) -> PrivateKey {
    PrivateKey::from_cose_key_bytes(&hex_file(&format!("suit/{rel}"))).unwrap()
}

/// The `k` of a symmetric COSE_Key.
pub fn symmetric_key(rel: &str) -> Vec<u8> {
    let key = CoseKey::from_slice(&hex_file(&format!("suit/{rel}"))).unwrap();
    key.params
        .iter()
        .find(|(l, _)| *l == Label::Int(-1))
        .and_then(|(_, v)| v.as_bytes().cloned())
        .unwrap()
}

pub fn example_signer() -> PublicKey {
    public_key("keys/suit-example-signer-p256.cose-key-public.hex")
}

pub fn dependent_signer() -> PublicKey {
    public_key("keys/fwenc-dependent-signer-p256.cose-key-public.hex")
}

/// Trust store with both signer keys of the vectors.
pub fn vector_trust() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_key(example_signer());
    t.add_key(dependent_signer());
    t
}

pub fn mac_keys() -> Vec<Vec<u8>> {
    vec![symmetric_key("keys/fwenc-mac-hmac256.cose-key.hex")]
}
