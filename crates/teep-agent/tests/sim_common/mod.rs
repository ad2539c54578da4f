//! Shared by the SimTee tests and the install bench: a SimTee in a temporary directory,
//! TC and personalization manifests signed by a test TC signer, and the processor run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    reason = "test helpers outside #[test] fns: a failure here is a failed test; each test \
              file uses a part of them"
)]

use std::path::{Path, PathBuf};

use teep_agent::sim::{SimConfig, SimTee};
use teep_cose::{Curve, PrivateKey};
use teep_suit::ComponentId;
use teep_suit::builder::{self, DependencySpec, ManifestSpec, PayloadLocation};
use teep_suit::processor::{DeviceIdentity, Outcome, Processor};
use teep_suit::trust::{TrustAnchor, TrustAnchors};

pub const COUNTER_V1: &[u8] = include_bytes!("../../tas/counter-v1.wasm");
pub const COUNTER_V2: &[u8] = include_bytes!("../../tas/counter-v2.wasm");
pub const GREETING: &[u8] = b"Hello from perso";

/// A SimTee's files in a temporary directory, and the TC signer the device trusts.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: SimConfig,
    pub tc_key: PrivateKey,
    pub trust: TrustAnchors,
    pub device: DeviceIdentity,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = SimConfig::new(dir.path().join("state"));
        let key = PrivateKey::generate(Curve::P256).unwrap();
        let mut trust = TrustAnchors::new();
        trust.add(TrustAnchor::unscoped(key.public_key().clone()));
        Self {
            dir,
            config,
            tc_key: key,
            trust,
            device: DeviceIdentity::default(),
        }
    }

    pub fn open(&self) -> SimTee {
        SimTee::open(&self.config).unwrap()
    }

    /// The same fixture with all its files copied to a new temporary directory.
    pub fn copy(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(self.dir.path(), dir.path());
        let mut config = SimConfig::new(dir.path().join("state"));
        config.limits = self.config.limits;
        Self {
            dir,
            config,
            tc_key: self.tc_key.clone(),
            trust: self.trust.clone(),
            device: self.device.clone(),
        }
    }

    /// A signed envelope installing `payload` at `component`, integrated.
    pub fn envelope(&self, component: &ComponentId, seq: u64, payload: &[u8]) -> Vec<u8> {
        self.envelope_with(spec(component, seq, payload))
    }

    pub fn envelope_with(&self, spec: ManifestSpec) -> Vec<u8> {
        let provider = teep_cose::default_provider();
        let built = builder::build(&spec, provider).unwrap();
        let signer = provider
            .signer(&self.tc_key, self.tc_key.default_algorithm())
            .unwrap();
        builder::sign(&built.envelope, &*signer, provider).unwrap()
    }

    /// A personalization manifest: `data` at `component`, depending on `ta_envelope`.
    pub fn perso_envelope(
        &self,
        component: &ComponentId,
        seq: u64,
        data: &[u8],
        ta_envelope: &[u8],
    ) -> Vec<u8> {
        // The builder's default manifest ID: `greeting` -> `greeting.suit`, never the TA's
        // own `suit`.
        let mut s = spec(component, seq, data);
        s.dependencies = vec![DependencySpec {
            envelope: ta_envelope.to_vec(),
        }];
        self.envelope_with(s)
    }

    pub fn install(&self, tee: &mut SimTee, envelope: &[u8]) -> Outcome {
        let processor = Processor::new(tee.provider(), &self.trust, &self.device);
        let decryptor = tee.decryptor();
        let processor = Processor {
            decryptor: Some(&decryptor),
            ..processor
        };
        processor.install(tee.storage_mut(), envelope, None)
    }

    pub fn uninstall(&self, tee: &mut SimTee, manifest: &ComponentId) -> Outcome {
        let processor = Processor::new(tee.provider(), &self.trust, &self.device);
        processor.uninstall(tee.storage_mut(), manifest, None)
    }

    pub fn state_dir(&self) -> &Path {
        &self.config.state_dir
    }
}

pub fn spec(component: &ComponentId, seq: u64, payload: &[u8]) -> ManifestSpec {
    ManifestSpec {
        component_id: component.clone(),
        manifest_component_id: None,
        sequence_number: seq,
        payload: payload.to_vec(),
        location: PayloadLocation::Integrated("#tc".into()),
        vendor_id: None,
        class_id: None,
        reference_uri: None,
        encrypt_to: None,
        dependencies: Vec::new(),
    }
}

pub fn ta_id(app: &str) -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", app, "ta"])
}

pub fn greeting_id(app: &str) -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", app, "greeting"])
}

/// Where a personalization manifest is stored: the builder's default, `<component>.suit`.
pub fn perso_manifest_id(component: &ComponentId) -> ComponentId {
    builder::manifest_id_for(component)
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
