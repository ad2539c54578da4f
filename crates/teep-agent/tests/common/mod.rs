//! The Agent test world: an engine over a `MemoryTee`, the TAM keys it trusts, a TC
//! signer, and helpers that read the Agent's signed replies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![allow(dead_code, reason = "each test file uses its own part of the world")]

use teep_agent::engine::{Agent, AgentConfig, Attestation, Context, Handled, Limits};
use teep_agent::memory::{MemoryTee, Snapshot};
use teep_attest::{DebugStatus, EatClaims, Manifest, Oemid, Version};
use teep_cose::{CryptoProvider, Curve, PrivateKey, PublicKey, Signer, TrustStore};
use teep_proto::{ErrorMessage, Message, Numbering, SuitCoseProfile, Unverified, Update};
use teep_suit::ComponentId;
use teep_suit::builder::{self, ManifestSpec, PayloadLocation};
use teep_suit::processor::DeviceIdentity;
use teep_suit::trust::{TrustAnchor, TrustAnchors};

pub const NOW: u64 = 1_780_000_000;
pub const TAM_URI: &str = "https://tam.example/tam";
pub const OEMID: [u8; 3] = [0x89, 0x48, 0x23];
pub const HWMODEL: [u8; 16] = [0x54; 16];
pub const UEID: [u8; 17] = [0x01; 17];
pub const AGENT_DIGEST: [u8; 32] = [0xa7; 32];

pub fn provider() -> &'static dyn CryptoProvider {
    teep_cose::default_provider()
}

pub fn key(curve: Curve) -> PrivateKey {
    PrivateKey::generate(curve).unwrap()
}

pub fn signer(key: &PrivateKey) -> Box<dyn Signer> {
    provider().signer(key, key.default_algorithm()).unwrap()
}

pub fn cx() -> Context {
    Context {
        now: NOW,
        random: [0x5a; 32],
    }
}

/// The claims the test device makes (those a TAM's Verifier policy checks).
pub fn device_claims() -> EatClaims {
    EatClaims {
        ueid: Some(UEID.to_vec()),
        oemid: Some(Oemid::Ieee(OEMID)),
        hwmodel: Some(HWMODEL.to_vec()),
        hwversion: Some(Version {
            version: "1.3.4".into(),
            scheme: Some(1),
        }),
        manifests: Some(vec![Manifest::suit_reference(
            "https://example.com/agent.suit",
            AGENT_DIGEST,
        )]),
        dbgstat: Some(DebugStatus::DisabledPermanently),
        secboot: Some(true),
        ..EatClaims::default()
    }
}

/// A TEE whose TA runtime answers `image || input` (enough to see that the installed
/// image is the one run).
pub fn tee(teep: &PrivateKey, attestation: &PrivateKey) -> MemoryTee {
    MemoryTee::new(
        signer(teep),
        signer(attestation),
        device_claims(),
        Box::new(|image, input| Ok([image, input].concat())),
    )
}

/// Keys and trust of one test Agent and the TAM it talks to.
pub struct World {
    pub tam_esp256: PrivateKey,
    pub tam_ed25519: PrivateKey,
    pub agent_key: PrivateKey,
    pub attestation: PrivateKey,
    pub tc_signer: PrivateKey,
    pub numbering: Numbering,
}

impl World {
    /// An Agent with an Ed25519 TEEP key trusting both TAM keys.
    pub fn new() -> Self {
        Self::with_agent_curve(Curve::Ed25519)
    }

    pub fn with_agent_curve(curve: Curve) -> Self {
        Self {
            tam_esp256: key(Curve::P256),
            tam_ed25519: key(Curve::Ed25519),
            agent_key: key(curve),
            attestation: key(Curve::P256),
            tc_signer: key(Curve::P256),
            numbering: Numbering::Draft26,
        }
    }

    pub fn config(&self) -> AgentConfig {
        let mut tam_trust = TrustStore::new();
        tam_trust.add_key(self.tam_esp256.public_key().clone());
        tam_trust.add_key(self.tam_ed25519.public_key().clone());
        let mut tc_trust = TrustAnchors::new();
        tc_trust.add(TrustAnchor::unscoped(self.tc_signer.public_key().clone()));
        AgentConfig {
            provider: provider(),
            numbering: self.numbering,
            tam_trust,
            tam_uris: vec![TAM_URI.into()],
            tc_trust,
            device: DeviceIdentity::default(),
            suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
            tam_attestation: None,
            tam_encryption_key: None,
            tam_encryption_keys: Vec::new(),
            limits: Limits::default(),
            attestation: Attestation::Evidence,
        }
    }

    pub fn agent(&self) -> Agent<MemoryTee> {
        self.agent_with(self.config())
    }

    pub fn agent_with(&self, cfg: AgentConfig) -> Agent<MemoryTee> {
        Agent::new(cfg, tee(&self.agent_key, &self.attestation)).unwrap()
    }

    pub fn agent_pub(&self) -> &PublicKey {
        self.agent_key.public_key()
    }

    /// Verifies an Agent reply with the Agent's key.
    pub fn read(&self, reply: &[u8]) -> Message {
        Unverified::parse(reply, self.numbering)
            .unwrap()
            .verify_with_key(provider(), self.agent_pub())
            .unwrap()
            .into_message()
    }

    /// A signed TC envelope for `name` at `sequence` from `signer`.
    pub fn envelope_by(&self, signer_key: &PrivateKey, name: &str, sequence: u64) -> Vec<u8> {
        let spec = spec(name, sequence);
        let built = builder::build(&spec, provider()).unwrap().envelope;
        builder::sign(&built, signer(signer_key).as_ref(), provider()).unwrap()
    }

    pub fn envelope(&self, name: &str, sequence: u64) -> Vec<u8> {
        self.envelope_by(&self.tc_signer, name, sequence)
    }
}

pub fn ta_id(name: &str) -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", name, "ta"])
}

pub fn manifest_id(name: &str) -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", name, "suit"])
}

/// The payload of `name` at `sequence` (what the TA image holds).
pub fn payload(name: &str, sequence: u64) -> Vec<u8> {
    format!("{name} image v{sequence}").into_bytes()
}

pub fn spec(name: &str, sequence: u64) -> ManifestSpec {
    ManifestSpec {
        component_id: ta_id(name),
        manifest_component_id: Some(manifest_id(name)),
        sequence_number: sequence,
        payload: payload(name, sequence),
        location: PayloadLocation::Integrated("#tc".into()),
        vendor_id: None,
        class_id: None,
        reference_uri: None,
        encrypt_to: None,
        dependencies: vec![],
    }
}

/// Handles `bytes` and asserts that the TEE (storage and sealed state) did not change and
/// that the reply is an Error signed by the Agent; returns it.
pub fn refused(world: &World, agent: &mut Agent<MemoryTee>, bytes: &[u8]) -> ErrorMessage {
    let before: Snapshot = agent.tee().snapshot();
    let handled: Handled = agent.handle(TAM_URI, bytes, cx());
    assert_eq!(
        agent.tee().snapshot(),
        before,
        "a refused message changed the TEE"
    );
    match world.read(&handled.reply.expect("an Error reply")) {
        Message::Error(e) => e,
        other => panic!("expected Error, got {other:?}"),
    }
}

/// An unsigned Update with `token`, the envelopes `manifests` and the manifests to unlink.
pub fn update(token: &[u8], manifests: Vec<Vec<u8>>, unneeded: Vec<ComponentId>) -> Message {
    Message::Update(Update {
        token: Some(token.to_vec()),
        manifest_list: (!manifests.is_empty()).then_some(manifests),
        unneeded_manifest_list: (!unneeded.is_empty()).then_some(unneeded),
        ..Update::default()
    })
}
