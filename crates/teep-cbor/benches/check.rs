//! How long the strict pre-pass takes on the draft's messages (it runs before every decode).
//! A fixed sample size keeps a slow first sample from setting one iteration per sample.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark set-up on fixed inputs: a failure aborts the benchmark"
)]

use teep_cbor::{Profile, check};

fn main() {
    divan::main();
}

fn vector(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/vectors/teep/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    hex::decode(text.trim()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[divan::bench(args = ["query_request.hex", "update.hex"], sample_size = 500)]
fn teep_profile(bencher: divan::Bencher<'_, '_>, name: &str) {
    let bytes = vector(name);
    bencher
        .counter(divan::counter::BytesCount::of_slice(&bytes))
        .bench(|| check(divan::black_box(&bytes), &Profile::TEEP));
}

#[divan::bench(args = ["query_request.hex", "update.hex"], sample_size = 500)]
fn eat_profile(bencher: divan::Bencher<'_, '_>, name: &str) {
    let bytes = vector(name);
    bencher
        .counter(divan::counter::BytesCount::of_slice(&bytes))
        .bench(|| check(divan::black_box(&bytes), &Profile::EAT));
}
