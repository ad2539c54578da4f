//! Codec and COSE costs per message type, on the draft's example messages.
//!
//! `cargo bench -p teep-proto --bench codec`. Targets on the reference machine: decode of
//! the 360-byte Update < 200 ns, of the 64-byte QueryRequest < 500 ns (C/QCBOR: 210 ns and
//! 980 ns). Decode includes the strict teep-cbor pre-pass.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark set-up on fixed inputs: a failure aborts the benchmark"
)]

use divan::{Bencher, black_box};
use teep_cose::{
    Algorithm, AwsLcProvider, CryptoProvider, PrivateKey, RustCryptoProvider, SignOptions,
    TrustStore, VerifyContext,
};
use teep_proto::{Numbering, Unverified, decode_unsigned, sign_message};

fn main() {
    divan::main();
}

const MESSAGES: [&str; 5] = [
    "query_request",
    "query_response",
    "update",
    "success",
    "error",
];

fn vector(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/vectors/teep/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

fn provider(name: &str) -> &'static dyn CryptoProvider {
    match name {
        "aws-lc" => &AwsLcProvider,
        _ => &RustCryptoProvider,
    }
}

/// The committed test key of the signed vectors, and its algorithm.
fn key(alg: &str) -> (PrivateKey, Algorithm) {
    let path = format!(
        "{}/../../tests/vectors/signed/keys/{alg}.priv.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let key = PrivateKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap();
    let alg = if alg == "esp256" {
        Algorithm::Esp256
    } else {
        Algorithm::Ed25519
    };
    (key, alg)
}

#[divan::bench(args = MESSAGES)]
fn decode_message(bencher: Bencher<'_, '_>, name: &str) {
    let bytes = vector(name);
    bencher.bench(|| decode_unsigned(black_box(&bytes), Numbering::Draft26).unwrap());
}

#[divan::bench(args = MESSAGES)]
fn encode_message(bencher: Bencher<'_, '_>, name: &str) {
    let message = decode_unsigned(&vector(name), Numbering::Draft26).unwrap();
    bencher.bench(|| black_box(&message).encode(Numbering::Draft26).unwrap());
}

fn sign_case(bencher: Bencher<'_, '_>, provider_name: &str, alg_name: &str, name: &str) {
    let (key, alg) = key(alg_name);
    let signer = provider(provider_name).signer(&key, alg).unwrap();
    let message = decode_unsigned(&vector(name), Numbering::Draft26).unwrap();
    let opts = SignOptions::default();
    bencher.bench(|| {
        sign_message(
            black_box(&message),
            Numbering::Draft26,
            signer.as_ref(),
            &opts,
        )
        .unwrap()
    });
}

fn verify_case(bencher: Bencher<'_, '_>, provider_name: &str, alg_name: &str, name: &str) {
    let (key, alg) = key(alg_name);
    let p = provider(provider_name);
    let signer = p.signer(&key, alg).unwrap();
    let message = decode_unsigned(&vector(name), Numbering::Draft26).unwrap();
    let opts = SignOptions::default();
    let cose = sign_message(&message, Numbering::Draft26, signer.as_ref(), &opts).unwrap();
    let mut trust = TrustStore::new();
    trust.add_key(key.public_key().clone());
    let cx = VerifyContext::new(p, &trust);
    bencher.bench(|| {
        Unverified::parse(black_box(&cose), Numbering::Draft26)
            .and_then(|m| m.verify(&cx))
            .unwrap()
    });
}

/// One sign and one verify benchmark per (provider, algorithm), each over every message.
macro_rules! cose_benches {
    ($($sign:ident, $verify:ident, $provider:literal, $alg:literal;)*) => {$(
        #[divan::bench(args = MESSAGES)]
        fn $sign(bencher: Bencher<'_, '_>, name: &str) {
            sign_case(bencher, $provider, $alg, name);
        }

        #[divan::bench(args = MESSAGES)]
        fn $verify(bencher: Bencher<'_, '_>, name: &str) {
            verify_case(bencher, $provider, $alg, name);
        }
    )*};
}

cose_benches! {
    sign_rustcrypto_esp256, verify_rustcrypto_esp256, "rustcrypto", "esp256";
    sign_rustcrypto_ed25519, verify_rustcrypto_ed25519, "rustcrypto", "ed25519";
    sign_awslc_esp256, verify_awslc_esp256, "aws-lc", "esp256";
    sign_awslc_ed25519, verify_awslc_ed25519, "aws-lc", "ed25519";
}
