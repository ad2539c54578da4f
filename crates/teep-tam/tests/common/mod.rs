//! The test world: a TAM engine on an in-memory store and a simulated clock, an in-process
//! Verifier, and test Agents built from the library crates (teep-proto messages signed with
//! the Agent key, teep-attest Evidence signed by an endorsed attestation key).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![allow(dead_code)]

#[cfg(feature = "server")]
pub mod serving;

use std::cell::RefCell;
use std::task::{Context as TaskContext, Poll, Waker};

use teep_attest::appraiser::InProcess;
use teep_attest::freshness::FreshnessError;
use teep_attest::{
    Cnf, DebugStatus, EVIDENCE_FORMAT, EatClaims, Endorsement, EndorsementScope, Manifest, Oemid,
    Policy, Redeem, ReferenceValues, SigningVerifier, Verifier, VerifierId, Version,
    claims::TEEP_EAT_PROFILE, sign_evidence,
};
use teep_cose::{CryptoProvider, Curve, PrivateKey, PublicKey, Signer, TrustStore, VerifyContext};
use teep_proto::{
    ComponentId, ErrorMessage, Message, Numbering, QueryRequest, QueryResponse, Success,
    SystemPropertyClaims, Unverified, Update, sign_message,
};
use teep_suit::builder::{self, ManifestSpec, PayloadLocation};
use teep_suit::report::Report;
use teep_suit::verify::Anchors;
use teep_tam::store::{
    AttestationOutcome, Device, DeviceId, MemoryState, SessionRecord, TcPolicy, TcRelease,
};
use teep_tam::tc::release_from_envelope;
use teep_tam::{Context, Decision, Dropped, Handled, MemoryStore, Random, Tam, TamConfig, driver};

pub const NOW: u64 = 1_780_000_000;
pub const OEMID: [u8; 3] = [0x89, 0x48, 0x23];
pub const HWMODEL: [u8; 16] = [0x54; 16];
pub const UEID: [u8; 17] = [0x01; 17];
pub const AGENT_DIGEST: [u8; 32] = [0xa7; 32];
pub const CLASS: &str = "phone";

pub fn provider() -> &'static dyn CryptoProvider {
    teep_cose::default_provider()
}

pub fn signer(key: &PrivateKey) -> Box<dyn Signer> {
    provider().signer(key, key.default_algorithm()).unwrap()
}

/// Runs a future that never waits (the in-memory store and in-process Verifier answer at
/// once).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = TaskContext::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a test future waited"),
    }
}

/// Deterministic randomness: a counter, so two runs issue the same tokens.
pub struct CountingRng(pub u8);

impl Random for CountingRng {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), teep_cose::CoseError> {
        self.0 = self.0.wrapping_add(1);
        out.fill(self.0);
        Ok(())
    }
}

/// A Redeem that accepts exactly one nonce (a passport Verifier told the TAM's token).
pub struct Expect(pub Vec<u8>);

impl Redeem for Expect {
    fn redeem(&mut self, nonce: &[u8], _now: u64) -> Result<(), FreshnessError> {
        if nonce == self.0 {
            Ok(())
        } else {
            Err(FreshnessError::NonceMismatch)
        }
    }
}

pub fn manifest_id(name: &str) -> ComponentId {
    ComponentId(vec![
        b"TEEP-Device".to_vec(),
        name.as_bytes().to_vec(),
        b"suit".to_vec(),
    ])
}

pub struct World {
    pub tam: Tam,
    pub store: MemoryStore,
    pub verifier: InProcess,
    pub verifier_signer: Box<dyn Signer>,
    pub attestation: PrivateKey,
    pub tam_esp256: PublicKey,
    pub tam_ed25519: PublicKey,
    pub tc_signer: Box<dyn Signer>,
    /// The TAM's key for Evidence and reports encrypted to it (§12).
    pub tam_encryption: PrivateKey,
    /// The TAM's private keys and the Verifier key, to start replicas.
    keys: (PrivateKey, PrivateKey, PublicKey),
    /// The Verifier's signing key, to restart it.
    verifier_key: PrivateKey,
    pub now: u64,
    pub rng: CountingRng,
}

/// The in-process Verifier signing with `key`, endorsing `attestation`.
fn in_process(attestation: &PrivateKey, key: &PrivateKey) -> InProcess {
    InProcess::new(SigningVerifier::new(
        Verifier::new(verifier_policy(attestation.public_key()), verifier_id()),
        signer(key),
        provider(),
    ))
}

pub fn verifier_policy(attestation: &PublicKey) -> Policy {
    Policy {
        id: Some("policy:teep/tam-test".into()),
        endorsements: vec![Endorsement {
            key: attestation.clone(),
            scope: EndorsementScope::Ueid(UEID.to_vec()),
        }],
        reference: ReferenceValues {
            oemids: vec![Oemid::Ieee(OEMID)],
            hwmodels: vec![HWMODEL.to_vec()],
            hwversions: vec!["1.3.4".into()],
            min_dbgstat: Some(DebugStatus::DisabledSinceBoot),
            require_secboot: true,
            tc_digests: vec![AGENT_DIGEST.to_vec()],
        },
        freshness_window: 300,
        clock_skew: 60,
    }
}

pub fn tam_config(esp: &PrivateKey, ed: &PrivateKey, verifier: &PublicKey) -> TamConfig {
    let mut verifiers = TrustStore::new();
    verifiers.add_key(verifier.clone());
    TamConfig {
        provider: provider(),
        signers: vec![signer(esp), signer(ed)],
        verifiers,
        numbering: Numbering::Draft26,
        token_lifetime: 4 * 3600,
        max_sessions_per_device: 3,
        max_anonymous_sessions: 8,
        attestation_max_age: 3600,
        default_class: Some(CLASS.into()),
        encryption_key: None,
        self_attestation: None,
        passport_by_age: false,
    }
}

impl World {
    pub fn new() -> Self {
        let esp = PrivateKey::generate(Curve::P256).unwrap();
        let ed = PrivateKey::generate(Curve::Ed25519).unwrap();
        let verifier_key = PrivateKey::generate(Curve::P256).unwrap();
        let attestation = PrivateKey::generate(Curve::P256).unwrap();
        let tc_key = PrivateKey::generate(Curve::P256).unwrap();
        let tam_encryption = PrivateKey::generate(Curve::P256).unwrap();
        let verifier = in_process(&attestation, &verifier_key);
        Self {
            tam: Tam::new(TamConfig {
                encryption_key: Some(tam_encryption.clone()),
                ..tam_config(&esp, &ed, verifier_key.public_key())
            }),
            store: MemoryStore::new(),
            verifier,
            verifier_signer: signer(&verifier_key),
            attestation,
            tam_esp256: esp.public_key().clone(),
            tam_ed25519: ed.public_key().clone(),
            tc_signer: signer(&tc_key),
            tam_encryption,
            keys: (esp.clone(), ed.clone(), verifier_key.public_key().clone()),
            verifier_key,
            now: NOW,
            rng: CountingRng(0),
        }
    }

    pub fn agent(&self, curve: Curve) -> Agent {
        let key = PrivateKey::generate(curve).unwrap();
        Agent {
            signer: signer(&key),
            key,
            attestation: signer(&self.attestation),
            tam_keys: vec![self.tam_esp256.clone(), self.tam_ed25519.clone()],
            held: RefCell::default(),
            updates: RefCell::default(),
        }
    }

    /// Restarts the in-process Verifier: same key and policy, no challenge outstanding.
    pub fn restart_verifier(&mut self) {
        self.verifier = in_process(&self.attestation, &self.verifier_key);
    }

    /// Another engine with the same keys: a replica sharing this store.
    pub fn replica(&self) -> Tam {
        Tam::new(self.replica_config())
    }

    /// The configuration of [`World::tam`], to start a variant of it.
    pub fn replica_config(&self) -> TamConfig {
        TamConfig {
            encryption_key: Some(self.tam_encryption.clone()),
            ..tam_config(&self.keys.0, &self.keys.1, &self.keys.2)
        }
    }

    pub fn decide_with(&mut self, tam: &Tam, body: &[u8], hint: Option<DeviceId>) -> Decision {
        let mut cx = Context {
            now: self.now,
            rng: &mut self.rng,
        };
        block_on(driver::decide(
            tam,
            &self.store,
            &self.verifier,
            body,
            hint,
            &mut cx,
        ))
    }

    /// Posts through `tam` (another replica) and commits.
    pub fn post_via(&mut self, tam: &Tam, body: &[u8]) -> Result<Handled, Dropped> {
        let decision = self.decide_with(tam, body, None);
        block_on(driver::commit(&self.store, decision))
    }

    pub fn post_hint(&mut self, body: &[u8], hint: Option<DeviceId>) -> Result<Handled, Dropped> {
        let mut cx = Context {
            now: self.now,
            rng: &mut self.rng,
        };
        block_on(driver::drive(
            &self.tam,
            &self.store,
            &self.verifier,
            body,
            hint,
            &mut cx,
        ))
    }

    pub fn post(&mut self, body: &[u8]) -> Result<Handled, Dropped> {
        self.post_hint(body, None)
    }

    /// Posts and asserts the message was dropped with the store unchanged.
    pub fn post_dropped(&mut self, body: &[u8]) -> Dropped {
        let before = self.store.snapshot();
        let err = self.post(body).expect_err("message should be dropped");
        assert_eq!(
            self.store.snapshot(),
            before,
            "a dropped message changed the store"
        );
        err
    }

    /// Posts and asserts the message was dropped and changed nothing but one failed
    /// attestation outcome appended for `device`; the reason and that outcome.
    pub fn post_dropped_recording(
        &mut self,
        body: &[u8],
        device: DeviceId,
    ) -> (Dropped, AttestationOutcome) {
        let before = self.store.snapshot();
        let err = self.post(body).expect_err("message should be dropped");
        let mut after = self.store.snapshot();
        let outcome = after
            .outcomes
            .pop()
            .expect("no attestation outcome recorded");
        assert_eq!(outcome.device, device);
        assert_eq!(
            after, before,
            "a dropped message changed more than its outcome"
        );
        (err, outcome)
    }

    /// An empty POST; returns the QueryRequest bytes.
    pub fn connect(&mut self) -> Vec<u8> {
        self.post(&[]).unwrap().reply.unwrap()
    }

    /// Builds, signs and registers a TC release.
    pub fn release(&self, name: &str, sequence: u64, deps: &[&str]) -> TcRelease {
        self.release_with(name, sequence, deps, default_payload(name, sequence))
    }

    /// [`Self::release`] with a given TC payload (e.g. a large one, for benchmarks).
    pub fn release_with(
        &self,
        name: &str,
        sequence: u64,
        deps: &[&str],
        payload: Vec<u8>,
    ) -> TcRelease {
        let unsigned = unsigned_envelope_with(name, sequence, &[], payload);
        let signed = builder::sign(&unsigned, self.tc_signer.as_ref(), provider()).unwrap();
        let mut trust = TrustStore::new();
        trust.add_key(self.tc_signer.public_key().clone());
        let anchors = Anchors {
            signers: &trust,
            mac_keys: &[],
            now: None,
        };
        let release = release_from_envelope(
            signed,
            provider(),
            &anchors,
            deps.iter().map(|d| manifest_id(d)).collect(),
        )
        .unwrap();
        self.store.with(|s| s.releases.push(release.clone()));
        release
    }

    pub fn class_policy(&self, install: &[&str], requestable: &[&str]) {
        let ids = |l: &[&str]| l.iter().map(|n| manifest_id(n)).collect();
        self.store.with(|s| {
            s.class_policy.insert(
                CLASS.into(),
                TcPolicy {
                    install: ids(install),
                    requestable: ids(requestable),
                },
            )
        });
    }

    pub fn device(&self, agent: &Agent) -> Option<Device> {
        self.store.with(|s| s.devices.get(&agent.id()).cloned())
    }

    pub fn session(&self, token: &[u8]) -> SessionRecord {
        self.store.with(|s| s.sessions.get(token).cloned().unwrap())
    }

    pub fn snapshot(&self) -> MemoryState {
        self.store.snapshot()
    }

    /// A complete first contact: connect, attest, and return the Update (not yet answered).
    pub fn first_contact(&mut self, agent: &Agent) -> Update {
        let qr = agent.read_query(&self.connect());
        let resp = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
        let reply = self.post(&resp).unwrap().reply.unwrap();
        update(agent.read(&reply))
    }

    /// The token of the first contact's Update.
    pub fn first_update_token(&mut self, agent: &Agent) -> Vec<u8> {
        self.first_contact(agent).token.unwrap()
    }
}

pub fn update(msg: Message) -> Update {
    match msg {
        Message::Update(u) => u,
        other => panic!("expected Update, got {other:?}"),
    }
}

pub fn verifier_id() -> VerifierId {
    VerifierId {
        developer: "teep project".into(),
        build: "teep-tam test".into(),
    }
}

/// A test TEEP Agent.
pub struct Agent {
    pub key: PrivateKey,
    pub signer: Box<dyn Signer>,
    pub attestation: Box<dyn Signer>,
    pub tam_keys: Vec<PublicKey>,
    /// What it holds, as its tc-list says (the TAM's record follows the tc-list): what the
    /// Updates it read and answered with [`Agent::success`] installed and unlinked.
    pub held: RefCell<Vec<SystemPropertyClaims>>,
    /// Updates read and not yet answered, by token.
    pub updates: RefCell<Vec<Update>>,
}

impl Agent {
    pub fn id(&self) -> DeviceId {
        DeviceId(self.key.public_key().thumbprint())
    }

    /// Verifies a TAM message with the TAM keys this Agent trusts.
    pub fn read(&self, bytes: &[u8]) -> Message {
        let mut trust = TrustStore::new();
        for k in &self.tam_keys {
            trust.add_key(k.clone());
        }
        let message = Unverified::parse(bytes, Numbering::Draft26)
            .unwrap()
            .verify(&VerifyContext::new(provider(), &trust))
            .unwrap()
            .into_message();
        if let Message::Update(u) = &message {
            self.updates.borrow_mut().push(u.clone());
        }
        message
    }

    pub fn read_query(&self, bytes: &[u8]) -> QueryRequest {
        match self.read(bytes) {
            Message::QueryRequest(q) => q,
            other => panic!("expected QueryRequest, got {other:?}"),
        }
    }

    pub fn sign(&self, message: Message) -> Vec<u8> {
        sign_message(
            &message,
            Numbering::Draft26,
            self.signer.as_ref(),
            &teep_cose::SignOptions::default(),
        )
        .unwrap()
    }

    pub fn claims(&self, nonce: &[u8]) -> EatClaims {
        EatClaims {
            profile: Some(TEEP_EAT_PROFILE.into()),
            nonce: Some(nonce.to_vec()),
            cnf: Some(Cnf::CoseKey(self.key.public_key().to_cose_key_bytes())),
            iat: Some(NOW as i64),
            ..device_claims()
        }
    }

    pub fn evidence(&self, nonce: &[u8]) -> Vec<u8> {
        sign_evidence(&self.claims(nonce), self.attestation.as_ref()).unwrap()
    }

    /// A QueryResponse to `qr` carrying `attestation` (with its format) and an empty tc-list.
    pub fn response_with(
        &self,
        qr: &QueryRequest,
        attestation: Option<(&str, Vec<u8>)>,
    ) -> QueryResponse {
        let (format, payload) = attestation.unzip();
        QueryResponse {
            token: qr.token.clone(),
            attestation_payload_format: format.map(str::to_owned),
            attestation_payload: payload,
            tc_list: Some(self.held.borrow().clone()),
            ..QueryResponse::default()
        }
    }

    /// A signed QueryResponse with Evidence for `nonce`.
    pub fn attested_response(&self, qr: &QueryRequest, nonce: &[u8]) -> Vec<u8> {
        let resp = self.response_with(qr, Some((EVIDENCE_FORMAT, self.evidence(nonce))));
        self.sign(Message::QueryResponse(resp))
    }

    /// A signed QueryResponse without attestation.
    pub fn plain_response(&self, qr: &QueryRequest) -> Vec<u8> {
        self.sign(Message::QueryResponse(self.response_with(qr, None)))
    }

    /// A signed Success for `token`, with `reports`.
    pub fn success(&self, token: &[u8], reports: Option<Vec<Vec<u8>>>) -> Vec<u8> {
        let applied = self
            .updates
            .borrow()
            .iter()
            .find(|u| u.token.as_deref() == Some(token))
            .cloned();
        if let Some(u) = applied {
            let mut held = self.held.borrow_mut();
            for id in u.unneeded_manifest_list.iter().flatten() {
                held.retain(|e| &e.component_id != id);
            }
            for envelope in u.manifest_list.iter().flatten() {
                let summary = teep_suit::Envelope::decode(envelope)
                    .unwrap()
                    .summary()
                    .unwrap();
                let id = summary.manifest_component_id.unwrap();
                held.retain(|e| e.component_id != id);
                held.push(SystemPropertyClaims::new(id, &summary.digest, None));
            }
        }
        self.sign(Message::Success(Success {
            token: Some(token.to_vec()),
            suit_reports: reports,
            ..Success::default()
        }))
    }

    pub fn error(&self, err: ErrorMessage) -> Vec<u8> {
        self.sign(Message::Error(err))
    }
}

/// An unprotected SUIT report for `digest` with `nonce`.
pub fn report(digest: [u8; 32], nonce: &[u8], ok: bool) -> Vec<u8> {
    let result = if ok {
        Ok(())
    } else {
        Err(teep_suit::report::Failure {
            error: teep_suit::SuitError::ManifestDigestMismatch,
            record: teep_suit::report::Record::default(),
        })
    };
    Report {
        reference_uri: None,
        manifest_digest: teep_suit::Digest::sha256(digest),
        nonce: Some(nonce.to_vec()),
        records: Vec::new(),
        result,
        capabilities: false,
    }
    .to_cbor()
    .unwrap()
}

/// The unsigned envelope of TC `name` version `sequence` (component
/// `TEEP-Device/NAME/ta`, manifest ID [`manifest_id`]), integrating the signed envelopes
/// it depends on.
pub fn unsigned_envelope(name: &str, sequence: u64, deps: &[Vec<u8>]) -> Vec<u8> {
    unsigned_envelope_with(name, sequence, deps, default_payload(name, sequence))
}

/// The payload of a test TC unless a test gives one.
fn default_payload(name: &str, sequence: u64) -> Vec<u8> {
    format!("{name} v{sequence}").into_bytes()
}

/// [`unsigned_envelope`] with a given payload.
pub fn unsigned_envelope_with(
    name: &str,
    sequence: u64,
    deps: &[Vec<u8>],
    payload: Vec<u8>,
) -> Vec<u8> {
    let spec = ManifestSpec {
        component_id: ComponentId(vec![
            b"TEEP-Device".to_vec(),
            name.as_bytes().to_vec(),
            b"ta".to_vec(),
        ]),
        manifest_component_id: Some(manifest_id(name)),
        sequence_number: sequence,
        payload,
        location: PayloadLocation::Integrated("#tc".into()),
        vendor_id: None,
        class_id: None,
        reference_uri: None,
        encrypt_to: None,
        dependencies: deps
            .iter()
            .map(|envelope| builder::DependencySpec {
                envelope: envelope.clone(),
            })
            .collect(),
    };
    builder::build(&spec, provider()).unwrap().envelope
}

/// That envelope signed by `signer`.
pub fn signed_envelope(
    signer: &dyn Signer,
    name: &str,
    sequence: u64,
    deps: &[Vec<u8>],
) -> Vec<u8> {
    builder::sign(&unsigned_envelope(name, sequence, deps), signer, provider()).unwrap()
}

/// The claims the test device makes about itself (those the test Verifier policy checks),
/// without the per-session ones (profile, nonce, cnf, iat).
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
