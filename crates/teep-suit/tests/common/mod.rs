//! Shared helpers for the teep-suit integration tests: vector files, keys, anchors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a failure here is a failed test"
)]
#![allow(dead_code)]

use teep_cose::coset::{CborSerializable, CoseKey, Label};
use teep_cose::{PrivateKey, PublicKey, RustCryptoProvider, TrustStore};
use teep_suit::trust::TrustAnchors;

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

/// Both signer keys of the vectors, unscoped.
pub fn vector_trust() -> TrustAnchors {
    let mut t = TrustStore::new();
    t.add_key(example_signer());
    t.add_key(dependent_signer());
    TrustAnchors::unscoped(t)
}

pub fn mac_keys() -> Vec<Vec<u8>> {
    vec![symmetric_key("keys/fwenc-mac-hmac256.cose-key.hex")]
}

use std::collections::HashMap;
use teep_suit::processor::{DeviceIdentity, Fetcher, Processor};
use teep_suit::{ComponentId, VendorId};

/// Serves fixed bytes per URI.
#[derive(Default)]
pub struct MapFetcher(pub HashMap<String, Vec<u8>>);

impl Fetcher for MapFetcher {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, String> {
        self.0.get(uri).cloned().ok_or_else(|| format!("404 {uri}"))
    }
}

pub const TEEP_VENDOR: &str = "c0ddd5f15243566087db4f5b0aa26c2f";
pub const TEEP_CLASS: &str = "db42f7093d8c55baa8c5265fc5820f4e";
pub const TC_URI: &str = "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.ta";
pub const TC_MANIFEST_URI: &str = "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.suit";

pub fn teep_device() -> DeviceIdentity {
    DeviceIdentity {
        vendor_ids: vec![VendorId::Uuid(hex::decode(TEEP_VENDOR).unwrap())],
        class_ids: vec![hex::decode(TEEP_CLASS).unwrap()],
        ..DeviceIdentity::default()
    }
}

pub fn tc_uuid() -> Vec<u8> {
    hex::decode("8d82573a926d4754935332dc29997f74").unwrap()
}

/// The TEEP examples' TC binary component and TC manifest IDs.
pub fn tc_component() -> ComponentId {
    ComponentId(vec![
        b"TEEP-Device".to_vec(),
        b"SecureFS".to_vec(),
        tc_uuid(),
        b"ta".to_vec(),
    ])
}

pub fn tc_manifest_id() -> ComponentId {
    ComponentId(vec![
        b"TEEP-Device".to_vec(),
        b"SecureFS".to_vec(),
        tc_uuid(),
        b"suit".to_vec(),
    ])
}

pub fn teep_fetcher() -> MapFetcher {
    let mut m = HashMap::new();
    m.insert(TC_URI.to_string(), hex_file("suit/teep/teep-tc-binary.hex"));
    m.insert(
        TC_MANIFEST_URI.to_string(),
        hex_file("suit/teep/teep-tc-uri.hex"),
    );
    MapFetcher(m)
}

/// What a TEEP device test processes with: the vector anchors, the TEEP device identity and
/// a fetcher serving the TC and its manifest.
pub struct TeepSetup {
    pub trust: TrustAnchors,
    pub device: DeviceIdentity,
    pub fetcher: MapFetcher,
}

impl TeepSetup {
    pub fn new() -> Self {
        Self {
            trust: vector_trust(),
            device: teep_device(),
            fetcher: teep_fetcher(),
        }
    }

    /// A RustCrypto processor over this setup, with its fetcher.
    pub fn processor(&self) -> Processor<'_> {
        let mut p = Processor::new(&PROVIDER, &self.trust, &self.device);
        p.fetcher = &self.fetcher;
        p
    }
}

use minicbor::Encoder;

/// A minimal encoder for command sequences in tests.
#[derive(Default)]
pub struct Seq(pub Vec<u8>, pub u64);

impl Seq {
    pub fn new() -> Self {
        Self(Vec::new(), 0)
    }
    pub fn cmd(mut self, n: i64, arg: impl FnOnce(&mut Encoder<&mut Vec<u8>>)) -> Self {
        let mut e = Encoder::new(&mut self.0);
        e.i64(n).unwrap();
        arg(&mut e);
        self.1 += 2;
        self
    }
    pub fn rep(self, n: i64) -> Self {
        self.cmd(n, |e| {
            e.u8(15).unwrap();
        })
    }
    pub fn set_content(self, content: &[u8]) -> Self {
        self.cmd(20, |e| {
            e.map(1).unwrap().u8(18).unwrap().bytes(content).unwrap();
        })
    }
    pub fn bytes(self) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new(&mut out).array(self.1).unwrap();
        out.extend_from_slice(&self.0);
        out
    }
}

/// A nested sequence as a command argument (try-each branch, run-sequence).
pub fn nested(seq: Seq) -> impl FnOnce(&mut Encoder<&mut Vec<u8>>) {
    move |e| {
        e.bytes(&seq.bytes()).unwrap();
    }
}

use teep_suit::builder::{ManifestSpec, PayloadLocation};

/// A TC's image component.
pub fn app(name: &str) -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", name, "ta"])
}

/// A TC's manifest component ID.
pub fn app_manifest(name: &str) -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", name, "suit"])
}

/// A TEEP-style TC manifest with an integrated payload (for the builder).
pub fn spec(name: &str, seq: u64, payload: &[u8]) -> ManifestSpec {
    ManifestSpec {
        component_id: app(name),
        manifest_component_id: None,
        sequence_number: seq,
        payload: payload.to_vec(),
        location: PayloadLocation::Integrated("#tc".into()),
        vendor_id: Some(hex::decode(TEEP_VENDOR).unwrap().try_into().unwrap()),
        class_id: Some(hex::decode(TEEP_CLASS).unwrap().try_into().unwrap()),
        reference_uri: Some(format!("https://tam.example/{name}.suit")),
        encrypt_to: None,
        dependencies: vec![],
    }
}
