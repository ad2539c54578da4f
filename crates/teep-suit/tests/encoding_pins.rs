//! Byte-exact pins of everything teep-suit encodes: builder output (with and without
//! dependencies, references, vendor/class checks, fetched payloads), signed envelopes,
//! reports, component IDs, digests and parameters. The SHA-256 values were taken from the
//! encoders before they moved onto teep-cbor's counting writers; any change to the bytes
//! we emit fails here, so a codec refactor cannot change the wire format unnoticed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;
use common::{PROVIDER, private_key, spec};

use teep_cose::{Algorithm, CryptoProvider};
use teep_suit::builder::{self, DependencySpec, PayloadLocation};
#[path = "fixtures/report.rs"]
mod fixture;
use fixture::report;
use teep_suit::report::Report;
use teep_suit::{ComponentId, Digest, Parameters, VendorId};

fn sha(bytes: &[u8]) -> String {
    hex::encode(PROVIDER.sha256(bytes))
}

/// The builder outputs the pins cover, by name.
fn built() -> Vec<(&'static str, Vec<u8>)> {
    let plain = spec("a", 1, b"payload");
    let fetched = builder::ManifestSpec {
        location: PayloadLocation::Uri("https://tam.example/b.ta".into()),
        vendor_id: None,
        class_id: None,
        reference_uri: None,
        ..spec("b", 7, &[0x5a; 300])
    };
    let dep = builder::build(&plain, &PROVIDER).unwrap().envelope;
    let dependent = builder::ManifestSpec {
        dependencies: vec![
            DependencySpec {
                envelope: dep.clone(),
            },
            DependencySpec {
                envelope: builder::build(&fetched, &PROVIDER).unwrap().envelope,
            },
        ],
        ..spec("c", 30, b"dependent payload")
    };
    vec![
        ("plain", dep),
        (
            "fetched",
            builder::build(&fetched, &PROVIDER).unwrap().envelope,
        ),
        (
            "dependent",
            builder::build(&dependent, &PROVIDER).unwrap().envelope,
        ),
    ]
}

#[test]
fn builder_output_is_byte_exact() {
    let got: Vec<(&str, String)> = built().iter().map(|(n, b)| (*n, sha(b))).collect();
    assert_eq!(
        got,
        [
            (
                "plain",
                "8f98ccedc2796f870efc7e94fb641d1a2916f64a8998ab72307f381ad3ed6ada".to_string()
            ),
            (
                "fetched",
                "837f69583071be88e64081a5c839567bc94581cbbe6ff26ed8f65300c7356d66".to_string()
            ),
            (
                "dependent",
                "351d248a5b966eb8998597ca3254787244e4c80bfd34c7d89cd8a4910a99df40".to_string()
            ),
        ]
    );
}

#[test]
fn signing_re_encodes_the_envelope_byte_exact() {
    let key = private_key("keys/suit-example-signer-p256.cose-key-private.hex");
    let signer = PROVIDER.signer(&key, Algorithm::Esp256).unwrap();
    let (_, unsigned) = built().swap_remove(2);
    let once = builder::sign(&unsigned, signer.as_ref(), &PROVIDER).unwrap();
    let twice = builder::sign(&once, signer.as_ref(), &PROVIDER).unwrap();
    // ECDSA signatures are randomised: pin everything but the signatures' bytes, which
    // are the last 64 bytes of each COSE_Sign1 block.
    let env = teep_suit::Envelope::decode(&twice).unwrap();
    assert_eq!(env.authentication.blocks.len(), 2);
    let mut masked = twice.clone();
    for block in &env.authentication.blocks {
        let end = block.as_ptr() as usize - twice.as_ptr() as usize + block.len();
        masked[end - 64..end].fill(0);
    }
    assert_eq!(
        sha(&masked),
        "228f90c7bb781cc72da83ce75a2d7d96a4c4f6191bba0d6ef1ef906aa2afa463"
    );
}

#[test]
fn reports_are_byte_exact() {
    let full = report(1);
    let ok = Report {
        reference_uri: None,
        nonce: None,
        records: vec![],
        result: Ok(()),
        capabilities: false,
        ..report(1)
    };
    assert_eq!(
        [sha(&full.to_cbor().unwrap()), sha(&ok.to_cbor().unwrap())],
        [
            "3128b2138b1e288afb22fd7dcdad205bdd85a914933337a928ca984c5819dd1c".to_string(),
            "f06c03310e131e32349278f525df27babfb78e1af5cef267074a9c314422cdc3".to_string()
        ]
    );
}

#[test]
fn leaf_encodings_are_byte_exact() {
    let id = ComponentId::from_strs(&["a", ""]);
    assert_eq!(id.to_cbor(), [0x82, 0x41, b'a', 0x40]);
    assert_eq!(ComponentId::default().to_cbor(), [0x80]);
    let d = Digest {
        algorithm: -16,
        bytes: vec![0xab],
    };
    assert_eq!(d.to_cbor(), [0x82, 0x2f, 0x41, 0xab]);
    let mut out = Vec::new();
    let p = Parameters {
        vendor_id: Some(VendorId::Uuid(vec![0x11; 16])),
        strict_order: Some(false),
        source_component: Some(300),
        ..Parameters::default()
    };
    teep_suit::internal::encode_parameters(&p, &mut minicbor::Encoder::new(&mut out)).unwrap();
    assert_eq!(
        sha(&out),
        "7f9f40eec44411ed54f51bea5caa17576b18bbbf18a59e85d247fdc4d312cf93"
    );
}
