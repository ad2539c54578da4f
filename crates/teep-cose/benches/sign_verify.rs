//! COSE_Sign1 against the bare provider signature it wraps, for each provider and for ESP256
//! and Ed25519. Target: the COSE operation within 10% of the bare one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark set-up on fixed inputs: a failure aborts the benchmark"
)]
use std::fmt;

use divan::{Bencher, black_box};
use teep_cose::*;

fn main() {
    divan::main();
}

/// A ~100-byte payload, as in a small TEEP message.
const PAYLOAD: [u8; 100] = [0x5a; 100];
/// Size of the Sig_structure that COSE_Sign1 signs for PAYLOAD: array head, "Signature1",
/// 3-byte protected bucket, empty AAD, payload (1 + 11 + 4 + 1 + 102).
const TBS_LEN: usize = 119;

#[derive(Clone, Copy)]
struct Case {
    provider: &'static dyn CryptoProvider,
    alg: Algorithm,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}", self.provider.name(), self.alg)
    }
}

fn cases() -> Vec<Case> {
    let providers: [&'static dyn CryptoProvider; 2] = [&AwsLcProvider, &RustCryptoProvider];
    providers
        .into_iter()
        .flat_map(|provider| {
            [Algorithm::Esp256, Algorithm::Ed25519].map(|alg| Case { provider, alg })
        })
        .collect()
}

/// Everything a case needs, prepared outside the timed loop.
struct Fixture {
    signer: Box<dyn Signer>,
    trust: TrustStore,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    cose: Vec<u8>,
}

impl Fixture {
    fn new(case: Case) -> Self {
        let key = PrivateKey::generate(case.alg.curve()).unwrap();
        let signer = case.provider.signer(&key, case.alg).unwrap();
        let mut trust = TrustStore::new();
        trust.add_key(key.public_key().clone());
        let tbs = vec![0xa5; TBS_LEN];
        let signature = signer.sign(&tbs).unwrap();
        let cose = sign1(signer.as_ref(), &PAYLOAD, &SignOptions::default()).unwrap();
        Self {
            signer,
            trust,
            tbs,
            signature,
            cose,
        }
    }
}

#[divan::bench(args = cases())]
fn bare_sign(bencher: Bencher<'_, '_>, case: Case) {
    let f = Fixture::new(case);
    bencher.bench_local(|| f.signer.sign(black_box(&f.tbs)).unwrap());
}

#[divan::bench(args = cases())]
fn cose_sign1(bencher: Bencher<'_, '_>, case: Case) {
    let f = Fixture::new(case);
    let opts = SignOptions::default();
    bencher.bench_local(|| sign1(f.signer.as_ref(), black_box(&PAYLOAD), &opts).unwrap());
}

#[divan::bench(args = cases())]
fn bare_verify(bencher: Bencher<'_, '_>, case: Case) {
    let f = Fixture::new(case);
    let key = f.signer.public_key();
    bencher.bench_local(|| {
        case.provider
            .verify(key, case.alg, black_box(&f.tbs), &f.signature)
            .unwrap()
    });
}

#[divan::bench(args = cases())]
fn cose_verify_sign1(bencher: Bencher<'_, '_>, case: Case) {
    let f = Fixture::new(case);
    let cx = VerifyContext::new(case.provider, &f.trust);
    bencher.bench_local(|| verify_sign1(black_box(&f.cose), &cx).unwrap());
}
