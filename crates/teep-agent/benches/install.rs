//! Installing a 1 MiB TC into the SimTee (the SUIT processor, then a sealed, fsynced,
//! counter-bound commit), beside what it cannot avoid, measured in the same run: SHA-256
//! over 1 MiB, one ES256 signature verification, and one AES-256-GCM sealed, fsynced
//! 1 MiB file write (`floor` runs the three in a row). Target: install <= 1.5 x floor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

#[path = "../tests/sim_common/mod.rs"]
mod sim_common;

use std::cell::Cell;
use std::io::Write;

use divan::Bencher;
use sim_common::{Fixture, contains};
use teep_cose::{Curve, PrivateKey, SignOptions, TrustStore, VerifyContext};
use teep_suit::ComponentId;
use teep_suit::processor::Processor;

const MIB: usize = 1 << 20;

fn main() {
    divan::main();
}

fn payload() -> Vec<u8> {
    (0..MIB).map(|i| (i * 31 % 251) as u8).collect()
}

fn tc_id() -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", "app", "data.bin"])
}

/// Each sample installs the next version of the same 1 MiB TC (the envelope is built
/// and signed outside the timing).
#[divan::bench(sample_count = 30, sample_size = 1)]
fn install_1mib_tc(bencher: Bencher<'_, '_>) {
    let fx = Fixture::new();
    let mut tee = fx.open();
    let payload = payload();
    let seq = Cell::new(0u64);
    bencher
        .with_inputs(|| {
            seq.set(seq.get() + 1);
            fx.envelope(&tc_id(), seq.get(), &payload)
        })
        .bench_local_values(|envelope| {
            let outcome = fx.install(&mut tee, &envelope);
            assert!(outcome.result.is_ok());
        });
    let stored = tee.snapshot().unwrap();
    assert!(stored[0].data.values().any(|v| contains(v, &payload[..64])));
}

/// The same install into memory: the processor's share (parse, verify, digests, copies).
#[divan::bench(sample_count = 30, sample_size = 1)]
fn install_1mib_tc_in_memory(bencher: Bencher<'_, '_>) {
    let fx = Fixture::new();
    let tee = fx.open();
    let payload = payload();
    let seq = Cell::new(0u64);
    let mut storage = teep_suit::storage::MemoryStorage::new();
    let processor = Processor::new(tee.provider(), &fx.trust, &fx.device);
    bencher
        .with_inputs(|| {
            seq.set(seq.get() + 1);
            fx.envelope(&tc_id(), seq.get(), &payload)
        })
        .bench_local_values(|envelope| {
            let outcome = processor.install(&mut storage, &envelope, None);
            assert!(outcome.result.is_ok());
        });
}

#[divan::bench]
fn sha256_1mib(bencher: Bencher<'_, '_>) {
    let provider = teep_cose::default_provider();
    let data = payload();
    bencher.bench_local(|| provider.sha256(divan::black_box(&data)));
}

struct Signed {
    cose: Vec<u8>,
    trust: TrustStore,
}

fn signed() -> Signed {
    let provider = teep_cose::default_provider();
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let signer = provider.signer(&key, key.default_algorithm()).unwrap();
    let cose = teep_cose::sign1(&*signer, &[0x5a; 40], &SignOptions::default()).unwrap();
    let mut trust = TrustStore::new();
    trust.add_key(key.public_key().clone());
    Signed { cose, trust }
}

fn verify(s: &Signed) {
    let cx = VerifyContext::new(teep_cose::default_provider(), &s.trust);
    teep_cose::verify_sign1(divan::black_box(&s.cose), &cx).unwrap();
}

#[divan::bench]
fn verify_es256(bencher: Bencher<'_, '_>) {
    let s = signed();
    bencher.bench_local(|| verify(&s));
}

fn sealed_write(dir: &std::path::Path, data: &[u8]) {
    let provider = teep_cose::default_provider();
    let sealed = provider
        .aes_gcm_seal(&[7; 32], &[1; 12], b"aad", divan::black_box(data))
        .unwrap();
    let mut f = std::fs::File::create(dir.join("blob")).unwrap();
    f.write_all(&sealed).unwrap();
    f.sync_all().unwrap();
}

#[divan::bench(sample_count = 30, sample_size = 1)]
fn sealed_fsynced_write_1mib(bencher: Bencher<'_, '_>) {
    let dir = tempfile::tempdir().unwrap();
    let data = payload();
    bencher.bench_local(|| sealed_write(dir.path(), &data));
}

/// The three above in a row: what an install cannot go below.
#[divan::bench(sample_count = 30, sample_size = 1)]
fn floor(bencher: Bencher<'_, '_>) {
    let dir = tempfile::tempdir().unwrap();
    let provider = teep_cose::default_provider();
    let data = payload();
    let s = signed();
    bencher.bench_local(|| {
        divan::black_box(provider.sha256(&data));
        verify(&s);
        sealed_write(dir.path(), &data);
    });
}
