//! Decode and encode costs of the SUIT codec alone (no crypto): decoding a built
//! envelope with two dependencies down to every command sequence, building it, and
//! encoding a failure report. Run before and after a codec change to compare.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark set-up on fixed inputs: a failure aborts the benchmark"
)]

use std::hint::black_box;
use std::sync::LazyLock;

use teep_cose::default_provider;
use teep_suit::builder::{self, DependencySpec, ManifestSpec, PayloadLocation};
#[path = "../tests/fixtures/report.rs"]
mod fixture;
use fixture::report;
use teep_suit::{ComponentId, Envelope, Manifest, Member};

fn spec(name: &str, dependencies: Vec<DependencySpec>) -> ManifestSpec {
    ManifestSpec {
        component_id: ComponentId::from_strs(&["TEEP-Device", "SecureFS", name, "ta"]),
        manifest_component_id: None,
        sequence_number: 3,
        payload: vec![0x5a; 256],
        location: PayloadLocation::Integrated("#tc".into()),
        vendor_id: Some([0xc0; 16]),
        class_id: Some([0xdb; 16]),
        reference_uri: Some(format!("https://tam.example/{name}.suit")),
        encrypt_to: None,
        dependencies,
    }
}

static SPEC: LazyLock<ManifestSpec> = LazyLock::new(|| {
    let dep = |name| DependencySpec {
        envelope: builder::build(&spec(name, vec![]), default_provider())
            .unwrap()
            .envelope,
    };
    spec("app", vec![dep("lib1"), dep("lib2")])
});

static ENVELOPE: LazyLock<Vec<u8>> =
    LazyLock::new(|| builder::build(&SPEC, default_provider()).unwrap().envelope);

/// Decodes the envelope, its manifest and every command sequence in it; returns the
/// number of commands so nothing is optimised away.
fn decode_all(bytes: &[u8]) -> usize {
    let env = Envelope::decode(bytes).unwrap();
    let manifest = Manifest::decode(env.manifest_bytes).unwrap();
    manifest
        .sections()
        .into_iter()
        .filter_map(|s| match manifest.member(s) {
            Some(Member::Present(b)) => Some(teep_suit::parse_sequence(b, 0).unwrap().len()),
            _ => None,
        })
        .sum()
}

#[divan::bench]
fn decode_envelope_manifest_sequences(bencher: divan::Bencher<'_, '_>) {
    let bytes = &*ENVELOPE;
    bencher.bench(|| decode_all(black_box(bytes)));
}

#[divan::bench]
fn build_envelope_with_two_dependencies(bencher: divan::Bencher<'_, '_>) {
    let spec = &*SPEC;
    bencher.bench(|| builder::build(black_box(spec), default_provider()).unwrap());
}

#[divan::bench]
fn encode_report(bencher: divan::Bencher<'_, '_>) {
    let r = report(4);
    bencher.bench(|| black_box(&r).to_cbor().unwrap());
}

fn main() {
    divan::main();
}
