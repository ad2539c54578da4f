//! Verify + install of a 1 MiB integrated payload into memory, beside its lower bound
//! measured in the same run: SHA-256 over 1 MiB plus one signature verification (the two
//! operations an install cannot avoid). Target: at most 1.2 times the bound.
//!
//! Besides divan's table, `main` prints a ratio from its own interleaved timing (median of
//! alternating runs, so both sides see the same machine load).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark set-up on fixed inputs: a failure aborts the benchmark"
)]

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Instant;

use teep_cose::{Algorithm, PrivateKey, PublicKey, TrustStore, default_provider};
use teep_suit::builder::{self, ManifestSpec, PayloadLocation};
use teep_suit::processor::{DeviceIdentity, Processor};
use teep_suit::storage::MemoryStorage;
use teep_suit::{ComponentId, VendorId};

const MIB: usize = 1 << 20;
const VENDOR: [u8; 16] = [0xc0; 16];
const CLASS: [u8; 16] = [0xdb; 16];

struct Fixture {
    envelope: Vec<u8>,
    payload: Vec<u8>,
    key: PublicKey,
    trust: teep_suit::trust::TrustAnchors,
    device: DeviceIdentity,
    /// A signature and the bytes it covers, for the bound.
    tbs: Vec<u8>,
    signature: Vec<u8>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let provider = default_provider();
    let hex_key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/suit/keys/suit-example-signer-p256.cose-key-private.hex"
    ))
    .unwrap();
    let key = PrivateKey::from_cose_key_bytes(&hex::decode(hex_key.trim()).unwrap()).unwrap();
    let signer = provider.signer(&key, Algorithm::Esp256).unwrap();
    let payload: Vec<u8> = (0..MIB).map(|i| (i * 31 % 251) as u8).collect();
    let spec = ManifestSpec {
        component_id: ComponentId::from_strs(&["TEEP-Device", "SecureFS", "bench", "ta"]),
        manifest_component_id: None,
        sequence_number: 1,
        payload: payload.clone(),
        location: PayloadLocation::Integrated("#tc".into()),
        vendor_id: Some(VENDOR),
        class_id: Some(CLASS),
        reference_uri: None,
        encrypt_to: None,
        dependencies: vec![],
    };
    let unsigned = builder::build(&spec, provider).unwrap().envelope;
    let envelope = builder::sign(&unsigned, signer.as_ref(), provider).unwrap();
    let mut trust = TrustStore::new();
    trust.add_key(key.public_key().clone());
    let tbs = b"Sig_structure stand-in of the same size as SUIT's (about 60 bytes)".to_vec();
    let signature = signer.sign(&tbs).unwrap();
    Fixture {
        envelope,
        payload,
        key: key.public_key().clone(),
        trust: teep_suit::trust::TrustAnchors::unscoped(trust),
        device: DeviceIdentity {
            vendor_ids: vec![VendorId::Uuid(VENDOR.to_vec())],
            class_ids: vec![CLASS.to_vec()],
            ..DeviceIdentity::default()
        },
        tbs,
        signature,
    }
});

fn install_once(f: &Fixture) -> MemoryStorage {
    let provider = default_provider();
    let processor = Processor::new(provider, &f.trust, &f.device);
    let mut store = MemoryStorage::new();
    let out = processor.install(&mut store, black_box(&f.envelope), None);
    assert!(out.result.is_ok());
    store
}

fn bound_once(f: &Fixture) -> [u8; 32] {
    let provider = default_provider();
    let digest = provider.sha256(black_box(&f.payload));
    provider
        .verify(&f.key, Algorithm::Esp256, black_box(&f.tbs), &f.signature)
        .unwrap();
    digest
}

#[divan::bench]
fn verify_and_install_1mib(bencher: divan::Bencher<'_, '_>) {
    let f = &*FIXTURE;
    bencher.bench(|| install_once(f));
}

#[divan::bench]
fn bound_sha256_1mib_plus_one_verify(bencher: divan::Bencher<'_, '_>) {
    let f = &*FIXTURE;
    bencher.bench(|| bound_once(f));
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let f = &*FIXTURE;
    let (mut install, mut bound) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let t = Instant::now();
        black_box(install_once(f));
        install.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        black_box(bound_once(f));
        bound.push(t.elapsed().as_secs_f64());
    }
    let (i, b) = (median(install), median(bound));
    println!(
        "provider {}: verify+install 1 MiB {:.1} us; bound (SHA-256 1 MiB + 1 verify) {:.1} us; ratio {:.3} (target <= 1.2)",
        default_provider().name(),
        i * 1e6,
        b * 1e6,
        i / b
    );
    divan::main();
}
