//! Writes tests/vectors/signed/: every draft example message (-26 numbering) signed as
//! COSE_Sign1_Tagged with each algorithm (ESP256, Ed25519, ES256, EdDSA, ES384; kid =
//! RFC 9679 thumbprint), and one COSE_Sign QueryRequest with an ESP256 and an Ed25519
//! signature (a TAM's first QueryRequest).
//!
//! Keys are made once and committed under keys/; later runs reuse them, so re-running
//! only changes the ECDSA signatures (randomized), never the keys.
//!
//! Run: `cargo run -p teep-proto --example make_signed_vectors`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "vector generator run by hand on fixed inputs: a failure aborts it"
)]

use std::fs;
use std::path::{Path, PathBuf};

use teep_cose::{
    Algorithm, CryptoProvider, Curve, PrivateKey, RustCryptoProvider, SignOptions, Signer,
};
use teep_proto::{Numbering, decode_unsigned, sign_message, sign_message_multi};

/// File-name slug, algorithm and curve of every signing key.
pub const ALGORITHMS: [(&str, Algorithm, Curve); 5] = [
    ("esp256", Algorithm::Esp256, Curve::P256),
    ("ed25519", Algorithm::Ed25519, Curve::Ed25519),
    ("es256", Algorithm::Es256, Curve::P256),
    ("eddsa", Algorithm::EdDsa, Curve::Ed25519),
    ("es384", Algorithm::Es384, Curve::P384),
];

const MESSAGES: [&str; 5] = [
    "query_request",
    "query_response",
    "update",
    "success",
    "error",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

/// The committed key for `slug`, made on first use.
fn key(dir: &Path, slug: &str, curve: Curve) -> PrivateKey {
    let private = dir.join(format!("{slug}.priv.pem"));
    if let Ok(pem) = fs::read_to_string(&private) {
        return PrivateKey::from_pem(&pem).expect("committed private key");
    }
    let key = PrivateKey::generate(curve).expect("key generation");
    fs::write(&private, key.to_pkcs8_pem()).expect("write key");
    fs::write(
        dir.join(format!("{slug}.pub.pem")),
        key.public_key().to_pem(),
    )
    .expect("write key");
    fs::write(
        dir.join(format!("{slug}.pub.cose_key.hex")),
        hex::encode(key.public_key().to_cose_key_bytes()) + "\n",
    )
    .expect("write key");
    key
}

fn main() {
    let out = root().join("signed");
    let keys_dir = out.join("keys");
    fs::create_dir_all(&keys_dir).expect("create output dir");
    let provider = RustCryptoProvider;
    let signers: Vec<(&str, Box<dyn Signer>)> = ALGORITHMS
        .iter()
        .map(|(slug, alg, curve)| {
            let key = key(&keys_dir, slug, *curve);
            (*slug, provider.signer(&key, *alg).expect("signer"))
        })
        .collect();
    let opts = SignOptions::default(); // tagged, kid = thumbprint, alg protected
    for name in MESSAGES {
        let hex_text = fs::read_to_string(root().join(format!("teep/{name}.hex"))).expect("vector");
        let message = decode_unsigned(
            &hex::decode(hex_text.trim()).expect("hex"),
            Numbering::Draft26,
        )
        .expect("vector decodes");
        for (slug, signer) in &signers {
            let cose =
                sign_message(&message, Numbering::Draft26, signer.as_ref(), &opts).expect("sign");
            fs::write(
                out.join(format!("{name}.{slug}.cose.hex")),
                hex::encode(cose) + "\n",
            )
            .expect("write");
        }
        if name == "query_request" {
            let pair: Vec<&dyn Signer> = signers
                .iter()
                .filter(|(slug, _)| matches!(*slug, "esp256" | "ed25519"))
                .map(|(_, s)| s.as_ref())
                .collect();
            let cose =
                sign_message_multi(&message, Numbering::Draft26, &pair, &opts).expect("sign");
            fs::write(
                out.join("query_request.multi.cose.hex"),
                hex::encode(cose) + "\n",
            )
            .expect("write");
        }
    }
    println!("wrote {}", out.display());
}
