//! Issue 8 "Show": the whole TAM <-> TEEP Agent exchange built from the library crates'
//! public APIs alone, in memory, with no CLI and no network.
//!
//! Round 1 (first contact): a QueryRequest signed as a COSE_Sign by the TAM's ESP256 and
//! Ed25519 keys; the Agent (which knows only the TAM's Ed25519 key) verifies it and answers
//! in that suite with a QueryResponse carrying TEEP-profile Evidence whose `cnf` is its own
//! TEEP key and whose `eat_nonce` is the challenge the TAM got from its Verifier
//! (`teep_attest::Appraiser` on `InProcess`). The TAM appraises the Evidence, takes the
//! Agent's key from `cnf`, verifies the QueryResponse with it, and sends an Update it builds
//! from its stored envelopes' summaries: a TC, a personalization TC depending on it, and a
//! second TC. The Agent installs them into sealed storage (`IndexedStore` over a blob
//! backend written here, `AesGcmSeal`) with scoped trust anchors and answers Success with
//! one signed SUIT report per manifest, whose nonce the TAM checks against the Update token.
//!
//! Round 2: the TAM now knows the Agent's key and suite (COSE_Sign1 both ways), learns what
//! is installed from the tc-list, and updates the first TC and its personalization to a
//! higher sequence number (the second TC is current and is left alone); the first TC's v1
//! sent again is refused as a rollback, with an Error and a report saying so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use teep_attest::InProcess;
use teep_attest::appraiser::{Appraiser, SigningVerifier};
use teep_attest::claims::TEEP_EAT_PROFILE;
use teep_attest::{
    Cnf, DebugStatus, EVIDENCE_FORMAT, EatClaims, Endorsement, EndorsementScope, Manifest, Oemid,
    PayloadKind, Policy, ReferenceValues, ResultCheck, ResultError, Status, Verifier, VerifierId,
    Version, payload_kind, sign_evidence, verify_ear,
};
use teep_cose::{
    Algorithm, AwsLcProvider, CoseError, CryptoProvider, Curve, PrivateKey, PublicKey, SignOptions,
    Signer, TrustStore, VerifyContext,
};
use teep_proto::{
    CipherSuite, CoseStructure, DataItemRequested, ErrCode, ErrorMessage, FreshnessMechanism,
    Message, Numbering, ProtoError, QueryRequest, QueryResponse, RequestedTcInfo, Success,
    SuitCoseProfile, SystemPropertyClaims, Unverified, Update, VerifiedMessage, sign_message,
    sign_message_multi,
};
use teep_suit::builder::{self, DependencySpec, ManifestSpec, PayloadLocation};
use teep_suit::model::Summary;
use teep_suit::processor::{DeviceIdentity, Processor, UpdateOutcome};
use teep_suit::report::{ReceivedReport, ReportKeys};
use teep_suit::storage::{InstalledManifest, Storage};
use teep_suit::store::{AesGcmSeal, Blob, BlobBackend, IndexedStore};
use teep_suit::trust::{TrustAnchor, TrustAnchors};
use teep_suit::{ComponentId, Envelope, SuitError, VendorId};

const NOW: u64 = 1_780_000_000;
const NUMBERING: Numbering = Numbering::Draft26;
static PROVIDER: AwsLcProvider = AwsLcProvider;

const VENDOR: [u8; 16] = [0xfa; 16];
const CLASS: [u8; 16] = [0xc1; 16];
const UEID: [u8; 17] = [0x01; 17];
const OEMID: [u8; 3] = [0x89, 0x48, 0x23];
const HWMODEL: [u8; 16] = [0x54; 16];
/// The Agent's own firmware, which its Evidence always lists (`manifests` is never empty).
const FIRMWARE_DIGEST: [u8; 32] = [0xa7; 32];

fn key(curve: Curve) -> PrivateKey {
    PrivateKey::generate(curve).unwrap()
}

fn signer(key: &PrivateKey) -> Box<dyn Signer> {
    PROVIDER.signer(key, key.default_algorithm()).unwrap()
}

fn trust(keys: &[&PublicKey]) -> TrustStore {
    let mut t = TrustStore::new();
    for k in keys {
        t.add_key((*k).clone());
    }
    t
}

fn random<const N: usize>() -> [u8; N] {
    let mut out = [0; N];
    PROVIDER.fill_random(&mut out).unwrap();
    out
}

/// Drives a future to completion on a fresh runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// Runs a future as a spawned task, which requires it to be `Send`, as a TAM shell's is.
fn spawned<F: Future + Send + 'static>(future: F) -> F::Output
where
    F::Output: Send + 'static,
{
    block_on(async { tokio::spawn(future).await.unwrap() })
}

// ---------------------------------------------------------------- the Agent's storage

/// The blobs of an in-memory backend; shared so the test can look at what is at rest.
#[derive(Default)]
struct Blobs {
    index: Option<Vec<u8>>,
    next_index: Option<Vec<u8>>,
    objects: BTreeMap<String, Vec<u8>>,
}

/// A `BlobBackend` in memory: what a TEE without a file system would write.
#[derive(Clone, Default)]
struct MemoryBackend(Arc<Mutex<Blobs>>);

impl MemoryBackend {
    fn blobs(&self) -> std::sync::MutexGuard<'_, Blobs> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BlobBackend for MemoryBackend {
    fn read(&self, blob: Blob<'_>) -> Result<Option<Vec<u8>>, SuitError> {
        let b = self.blobs();
        Ok(match blob {
            Blob::Index => b.index.clone(),
            Blob::NextIndex => b.next_index.clone(),
            Blob::Object(name) => b.objects.get(name).cloned(),
        })
    }

    fn write(&mut self, blob: Blob<'_>, bytes: &[u8]) -> Result<(), SuitError> {
        let mut b = self.blobs();
        match blob {
            Blob::Index => b.index = Some(bytes.to_vec()),
            Blob::NextIndex => b.next_index = Some(bytes.to_vec()),
            Blob::Object(name) => {
                b.objects.insert(name.to_owned(), bytes.to_vec());
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SuitError> {
        Ok(())
    }

    fn replace_index(&mut self) -> Result<(), SuitError> {
        let mut b = self.blobs();
        let next = b
            .next_index
            .take()
            .ok_or_else(|| SuitError::Storage("no next index to commit".into()))?;
        b.index = Some(next);
        Ok(())
    }

    fn remove(&mut self, object: &str) -> Result<(), SuitError> {
        self.blobs().objects.remove(object);
        Ok(())
    }

    fn objects(&self) -> Result<Vec<String>, SuitError> {
        Ok(self.blobs().objects.keys().cloned().collect())
    }
}

type AgentStore = IndexedStore<MemoryBackend, AesGcmSeal<'static>>;

// ---------------------------------------------------------------- the Trusted Components

fn app_tc() -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", "com.example.app", "ta"])
}

fn app_config() -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", "com.example.app", "config.json"])
}

fn tool_tc() -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", "com.example.tool", "ta"])
}

fn spec(component_id: ComponentId, sequence_number: u64, payload: &[u8]) -> ManifestSpec {
    ManifestSpec {
        reference_uri: Some(format!(
            "https://tam.example/{}.suit",
            String::from_utf8_lossy(&builder::manifest_id_for(&component_id).0.join(&b'/'))
        )),
        component_id,
        manifest_component_id: None,
        sequence_number,
        payload: payload.to_vec(),
        location: PayloadLocation::Integrated("#tc".into()),
        vendor_id: Some(VENDOR),
        class_id: Some(CLASS),
        encrypt_to: None,
        dependencies: vec![],
    }
}

/// Builds and signs one envelope with the TC Signer's key.
fn envelope(spec: &ManifestSpec, tc_signer: &dyn Signer) -> Vec<u8> {
    let built = builder::build(spec, &PROVIDER).unwrap();
    builder::sign(&built.envelope, tc_signer, &PROVIDER).unwrap()
}

/// The manifest component ID (storage location) of a signed envelope.
fn manifest_id(envelope: &[u8]) -> ComponentId {
    summary(envelope).manifest_component_id.unwrap()
}

/// What the TAM lists of a stored envelope.
fn summary(envelope: &[u8]) -> Summary {
    Envelope::decode(envelope).unwrap().summary().unwrap()
}

/// Envelopes as (manifest component ID, sequence number), for readable comparisons.
fn listed<E: AsRef<[u8]>>(envelopes: &[E]) -> Vec<(ComponentId, u64)> {
    envelopes
        .iter()
        .map(|e| (manifest_id(e.as_ref()), summary(e.as_ref()).sequence_number))
        .collect()
}

fn sha256_of(digest: &teep_suit::Digest) -> [u8; 32] {
    digest.bytes.as_slice().try_into().unwrap()
}

// ---------------------------------------------------------------- the TAM

/// A TAM: its two TEEP keys, its Verifier, the envelopes it may deliver and what it knows
/// about the one device of this test.
struct Tam {
    esp256: PrivateKey,
    ed25519: PrivateKey,
    verifier: InProcess,
    verifier_key: PublicKey,
    /// Signed envelopes from the TC Signer, in the order they must be installed.
    catalogue: Vec<Vec<u8>>,
    /// Learnt from the first appraisal: the Agent's TEEP key and cipher suite.
    agent: Option<(PublicKey, Algorithm)>,
}

/// One outstanding exchange of the TAM.
struct Session {
    token: Vec<u8>,
    challenge: Vec<u8>,
}

/// What the TAM reads from one stored envelope: its summary (components written,
/// dependencies' manifest IDs included).
struct Entry<'a> {
    envelope: &'a [u8],
    summary: Summary,
}

impl<'a> Entry<'a> {
    fn of(envelope: &'a [u8]) -> Self {
        Self {
            envelope,
            summary: summary(envelope),
        }
    }

    fn id(&self) -> ComponentId {
        self.summary.manifest_component_id.clone().unwrap()
    }
}

impl Tam {
    fn new(attestation_key: &PublicKey, tc_digests: Vec<Vec<u8>>) -> Self {
        let verifier_private = key(Curve::P256);
        let policy = Policy {
            id: Some("policy:library-flow".into()),
            endorsements: vec![Endorsement {
                key: attestation_key.clone(),
                scope: EndorsementScope::Ueid(UEID.to_vec()),
            }],
            reference: ReferenceValues {
                oemids: vec![Oemid::Ieee(OEMID)],
                hwmodels: vec![HWMODEL.to_vec()],
                hwversions: vec![],
                min_dbgstat: Some(DebugStatus::DisabledSinceBoot),
                require_secboot: true,
                tc_digests,
            },
            freshness_window: 300,
            clock_skew: 60,
        };
        let id = VerifierId {
            developer: "teep project".into(),
            build: "library_flow test".into(),
        };
        let verifier = SigningVerifier::new(
            Verifier::new(policy, id),
            signer(&verifier_private),
            &PROVIDER,
        );
        Self {
            esp256: key(Curve::P256),
            ed25519: key(Curve::Ed25519),
            verifier: InProcess::new(verifier),
            verifier_key: verifier_private.public_key().clone(),
            catalogue: Vec::new(),
            agent: None,
        }
    }

    /// A QueryRequest with a challenge from the Verifier: COSE_Sign with both keys on
    /// first contact, COSE_Sign1 in the Agent's suite afterwards.
    fn query(&self) -> (Session, Vec<u8>) {
        let challenge = run_challenge(&self.verifier);
        let session = Session {
            token: random::<16>().to_vec(),
            challenge,
        };
        let request = Message::QueryRequest(QueryRequest {
            token: Some(session.token.clone()),
            supported_freshness_mechanisms: Some(vec![FreshnessMechanism::NONCE]),
            challenge: Some(session.challenge.clone()),
            supported_teep_cipher_suites: vec![
                CipherSuite::SIGN1_ESP256,
                CipherSuite::SIGN1_ED25519,
            ],
            supported_suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
            data_item_requested: DataItemRequested::ATTESTATION
                .with(DataItemRequested::TRUSTED_COMPONENTS),
            ..QueryRequest::default()
        });
        let opts = SignOptions::default();
        let bytes = match &self.agent {
            None => {
                let (a, b) = (signer(&self.esp256), signer(&self.ed25519));
                sign_message_multi(&request, NUMBERING, &[a.as_ref(), b.as_ref()], &opts)
            }
            Some(_) => sign_message(&request, NUMBERING, self.teep_signer().as_ref(), &opts),
        };
        (session, bytes.unwrap())
    }

    /// The TAM key of the Agent's suite.
    fn teep_signer(&self) -> Box<dyn Signer> {
        match self.agent {
            Some((_, Algorithm::Ed25519)) => signer(&self.ed25519),
            _ => signer(&self.esp256),
        }
    }

    /// Which catalogue envelopes the device lacks. The TAM wants every manifest the
    /// device has or asks for, and the manifests those depend on; for each it sends the
    /// newest envelope when its sequence number is above the installed one (tc-list names
    /// installed manifests by ID and digest; the digest finds the envelope, hence its
    /// number) and at least what the Agent asked for. Catalogue order is install order.
    fn pick(&self, response: &QueryResponse) -> Vec<Vec<u8>> {
        let entries: Vec<Entry<'_>> = self.catalogue.iter().map(|e| Entry::of(e)).collect();
        let newest = |id: &ComponentId| {
            entries
                .iter()
                .filter(|e| e.summary.manifest_component_id.as_ref() == Some(id))
                .max_by_key(|e| e.summary.sequence_number)
        };
        let mut installed = BTreeMap::new();
        for tc in response.tc_list.iter().flatten() {
            let digest = tc.image_digest().unwrap();
            if let Some(e) = entries
                .iter()
                .find(|e| Some(&e.summary.digest) == digest.as_ref())
            {
                installed.insert(e.id(), e.summary.sequence_number);
            }
        }
        let mut wanted: BTreeMap<ComponentId, u64> =
            installed.keys().map(|id| (id.clone(), 0)).collect();
        for r in response.requested_tc_list.iter().flatten() {
            let tc = &r.component_id;
            // A requested TC is named by its own component ID: the summary lists the
            // components each manifest writes.
            for e in entries.iter().filter(|e| e.summary.components.contains(tc)) {
                let min = wanted.entry(e.id()).or_default();
                *min = (*min).max(r.tc_manifest_sequence_number.unwrap_or(0));
            }
        }
        let mut todo: Vec<ComponentId> = wanted.keys().cloned().collect();
        while let Some(id) = todo.pop() {
            for dep in newest(&id)
                .map(|e| e.summary.dependencies.clone())
                .unwrap_or_default()
            {
                if !wanted.contains_key(&dep) {
                    wanted.insert(dep.clone(), 0);
                    todo.push(dep);
                }
            }
        }
        entries
            .iter()
            .filter(|e| {
                let id = e.id();
                let n = e.summary.sequence_number;
                wanted.get(&id).is_some_and(|min| n >= *min)
                    && newest(&id).is_some_and(|best| best.summary.sequence_number == n)
                    && installed.get(&id).is_none_or(|have| *have < n)
            })
            .map(|e| e.envelope.to_vec())
            .collect()
    }

    fn update(&self, manifests: Vec<Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
        let token = random::<16>().to_vec();
        let update = Message::Update(Update {
            token: Some(token.clone()),
            manifest_list: Some(manifests),
            ..Update::default()
        });
        let bytes = sign_message(
            &update,
            NUMBERING,
            self.teep_signer().as_ref(),
            &SignOptions::default(),
        )
        .unwrap();
        (token, bytes)
    }
}

/// The challenge, asked through the `Appraiser` seam (as of a remote Verifier).
fn run_challenge(verifier: &InProcess) -> Vec<u8> {
    let challenge = block_on(verifier.challenge(NOW)).unwrap();
    assert_eq!(challenge.expires_in, 300);
    challenge.nonce
}

// ---------------------------------------------------------------- the Agent

struct Agent {
    teep: PrivateKey,
    attestation: PrivateKey,
    /// The TAM key this Agent was provisioned with (Ed25519 only).
    tam_trust: TrustStore,
    tc_trust: TrustAnchors,
    device: DeviceIdentity,
    backend: MemoryBackend,
    store: AgentStore,
    seal_key: [u8; 32],
}

impl Agent {
    fn new(tam_key: &PublicKey, tc_signer: &PublicKey, attestation: PrivateKey) -> Self {
        let mut tc_trust = TrustAnchors::new();
        tc_trust.add(TrustAnchor::scoped(
            tc_signer.clone(),
            vec![ComponentId::from_strs(&["TEEP-Device", "SecureFS"])],
        ));
        let backend = MemoryBackend::default();
        let seal_key = random::<32>();
        let store =
            IndexedStore::open_with(backend.clone(), AesGcmSeal::new(&PROVIDER, seal_key)).unwrap();
        Self {
            teep: key(Curve::Ed25519),
            attestation,
            tam_trust: trust(&[tam_key]),
            tc_trust,
            device: DeviceIdentity {
                vendor_ids: vec![VendorId::Uuid(VENDOR.to_vec())],
                class_ids: vec![CLASS.to_vec()],
                ..DeviceIdentity::default()
            },
            backend,
            store,
            seal_key,
        }
    }

    /// Verifies a TAM message with the one TAM key this Agent knows.
    fn receive(&self, bytes: &[u8]) -> VerifiedMessage {
        let unverified = Unverified::parse(bytes, NUMBERING).unwrap();
        unverified
            .verify(&VerifyContext::new(&PROVIDER, &self.tam_trust))
            .unwrap()
    }

    fn teep_signer(&self, alg: Algorithm) -> Box<dyn Signer> {
        PROVIDER.signer(&self.teep, alg).unwrap()
    }

    /// Evidence about this device: `cnf` its TEEP key as a COSE_Key, `eat_nonce` the
    /// challenge, `manifests` its firmware and every installed manifest.
    fn evidence(&self, challenge: &[u8]) -> Vec<u8> {
        let mut manifests = vec![Manifest::suit_reference(
            "urn:example:agent-firmware",
            FIRMWARE_DIGEST,
        )];
        for m in self.store.manifests().unwrap() {
            manifests.push(Manifest::suit_reference(
                m.component_id.to_string(),
                sha256_of(&m.digest),
            ));
        }
        let claims = EatClaims {
            profile: Some(TEEP_EAT_PROFILE.into()),
            nonce: Some(challenge.to_vec()),
            ueid: Some(UEID.to_vec()),
            oemid: Some(Oemid::Ieee(OEMID)),
            hwmodel: Some(HWMODEL.to_vec()),
            hwversion: Some(Version {
                version: "1.0".into(),
                scheme: None,
            }),
            manifests: Some(manifests),
            cnf: Some(Cnf::CoseKey(self.teep.public_key().to_cose_key_bytes())),
            iat: Some(NOW as i64),
            dbgstat: Some(DebugStatus::DisabledPermanently),
            secboot: Some(true),
            ..EatClaims::default()
        };
        sign_evidence(&claims, signer(&self.attestation).as_ref()).unwrap()
    }

    /// Answers a QueryRequest in the suite whose signature verified.
    fn answer(&self, query_request: &[u8], requested: Vec<RequestedTcInfo>) -> Vec<u8> {
        let verified = self.receive(query_request);
        let Message::QueryRequest(q) = verified.message() else {
            panic!("not a QueryRequest: {:?}", verified.message());
        };
        // The suite to answer in is the one of the signature that verified, and the TAM
        // offered it.
        let suite = verified.cipher_suite();
        assert_eq!(suite, CipherSuite::SIGN1_ED25519);
        assert_eq!(
            q.select_cipher_suite(&[CipherSuite::SIGN1_ED25519]),
            Ok(&suite)
        );
        assert!(
            q.data_item_requested
                .contains(DataItemRequested::ATTESTATION)
        );
        let challenge = q.challenge.as_deref().unwrap();
        let tc_list = self
            .store
            .manifests()
            .unwrap()
            .iter()
            .map(SystemPropertyClaims::from)
            .collect();
        let response = Message::QueryResponse(QueryResponse {
            token: q.token.clone(),
            attestation_payload_format: Some(EVIDENCE_FORMAT.into()),
            attestation_payload: Some(self.evidence(challenge)),
            tc_list: Some(tc_list),
            requested_tc_list: (!requested.is_empty()).then_some(requested),
            ..QueryResponse::default()
        });
        let signer = self.teep_signer(verified.alg());
        sign_message(
            &response,
            NUMBERING,
            signer.as_ref(),
            &SignOptions::default(),
        )
        .unwrap()
    }

    /// Processes an Update as one transaction and answers with one report per manifest
    /// (signed with the Agent's key, nonce the Update's token): Success, or the Error the
    /// outcome names.
    fn process(&mut self, update: &[u8]) -> Vec<u8> {
        let verified = self.receive(update);
        assert_eq!(verified.structure(), CoseStructure::Sign1);
        let alg = verified.alg();
        let Message::Update(u) = verified.into_message() else {
            panic!("not an Update");
        };
        let manifests = u.manifest_list.unwrap_or_default();
        let unneeded: Vec<ComponentId> = u.unneeded_manifest_list.unwrap_or_default();
        let processor = Processor::new(&PROVIDER, &self.tc_trust, &self.device);
        let outcome = processor.update(&mut self.store, &unneeded, &manifests, u.token.as_deref());
        let signer = self.teep_signer(alg);
        let reports = outcome
            .outcomes
            .iter()
            .map(|o| o.report.sign(signer.as_ref()).unwrap())
            .collect();
        let answer = match outcome.teep_err_code() {
            None => Message::Success(Success {
                token: u.token,
                suit_reports: Some(reports),
                ..Success::default()
            }),
            // teep-suit's err-code enum, bridged to teep-proto's by meaning.
            Some(code) => Message::Error(ErrorMessage {
                token: u.token,
                suit_reports: Some(reports),
                ..ErrorMessage::new(ErrCode::from(code))
            }),
        };
        sign_message(&answer, NUMBERING, signer.as_ref(), &SignOptions::default()).unwrap()
    }

    /// What is installed, as (manifest component ID, sequence number).
    fn installed(&self) -> Vec<(ComponentId, u64)> {
        let list: Vec<InstalledManifest> = self.store.manifests().unwrap();
        list.into_iter()
            .map(|m| (m.component_id, m.sequence_number))
            .collect()
    }
}

// ---------------------------------------------------------------- the TAM's checks

/// What the TAM learnt from a QueryResponse.
struct Appraisal {
    agent_key: PublicKey,
    response: QueryResponse,
}

/// The TAM side of a QueryResponse, as a shell's task would run it: parse, find the
/// session by token, appraise the Evidence through the `Appraiser` seam (holding the
/// unverified message across the `.await`), take the Agent's key from `cnf`, verify the
/// message with it and check the signed EAR.
async fn on_query_response(
    tam: Arc<Tam>,
    session: Arc<Session>,
    bytes: Vec<u8>,
) -> Result<Appraisal, String> {
    let unverified = Unverified::parse(&bytes, NUMBERING).map_err(|e| e.to_string())?;
    let Message::QueryResponse(claimed) = unverified.message() else {
        return Err("not a QueryResponse".into());
    };
    if claimed.token.as_deref() != Some(session.token.as_slice()) {
        return Err("token names no session".into());
    }
    if payload_kind(claimed.attestation_payload_format.as_deref()) != PayloadKind::Evidence {
        return Err("no Evidence".into());
    }
    let evidence = claimed.attestation_payload.clone().ok_or("no Evidence")?;
    let ear = tam
        .verifier
        .appraise(&evidence, NOW)
        .await
        .map_err(|e| e.to_string())?;
    // The signed EAR does not give its cnf before `verify_ear`, which wants the key up
    // front: the key comes from the Evidence's claims (read unverified here, bound by the
    // EAR check below, whose cnf the Verifier copied from the Evidence it verified).
    let cose = teep_proto::decode_unverified_cose(&evidence).map_err(|e| e.to_string())?;
    let claims = EatClaims::from_cbor(&cose.payload.ok_or("detached Evidence")?)
        .map_err(|e| e.to_string())?;
    let agent_key = claims.cnf_key().map_err(|e| e.to_string())?;
    let verifiers = trust(&[&tam.verifier_key]);
    let check = ResultCheck {
        provider: &PROVIDER,
        verifiers: &verifiers,
        nonce: Some(&session.challenge),
        now: NOW,
        max_age: 60,
        teep_key: &agent_key,
    };
    let ear = verify_ear(&ear, &check).map_err(|e| e.to_string())?;
    assert_eq!(ear.status(), Status::Affirming);
    let verified = unverified
        .verify_with_key(&PROVIDER, &agent_key)
        .map_err(|e| e.to_string())?;
    let Message::QueryResponse(response) = verified.into_message() else {
        return Err("not a QueryResponse".into());
    };
    Ok(Appraisal {
        agent_key,
        response,
    })
}

/// The TAM's reading of the Agent's answer to an Update: the Agent's signature, the
/// token, and each report's signature and nonce (the token). A report signed by another
/// key is refused.
fn answer_to_update(
    agent_key: &PublicKey,
    token: &[u8],
    bytes: &[u8],
) -> (Message, Vec<ReceivedReport>) {
    let verified = Unverified::parse(bytes, NUMBERING)
        .unwrap()
        .verify_with_key(&PROVIDER, agent_key)
        .unwrap();
    let message = verified.into_message();
    assert_eq!(message.token(), Some(token));
    let reports = match &message {
        Message::Success(m) => m.suit_reports.clone(),
        Message::Error(m) => m.suit_reports.clone(),
        other => panic!("not an answer to an Update: {other:?}"),
    }
    .unwrap();
    let device = trust(&[agent_key]);
    let keys = ReportKeys {
        provider: &PROVIDER,
        device: &device,
        tam: None,
        require_signature: true,
    };
    let decoded = reports
        .iter()
        .map(|r| ReceivedReport::decode(r, &keys).unwrap())
        .collect::<Vec<_>>();
    for report in &decoded {
        assert_eq!(report.nonce.as_deref(), Some(token));
        assert_eq!(report.protection.signer.as_ref(), Some(agent_key));
    }
    let stranger = trust(&[key(Curve::Ed25519).public_key()]);
    let err = ReceivedReport::decode(
        reports.first().unwrap(),
        &ReportKeys {
            device: &stranger,
            ..keys
        },
    )
    .unwrap_err();
    assert!(matches!(err, SuitError::Authentication(_)), "{err:?}");
    (message, decoded)
}

/// A Success whose reports say each sent manifest installed.
fn check_success(agent_key: &PublicKey, token: &[u8], sent: &[Vec<u8>], bytes: &[u8]) {
    let (message, reports) = answer_to_update(agent_key, token, bytes);
    assert!(matches!(message, Message::Success(_)), "{message:?}");
    assert_eq!(reports.len(), sent.len());
    for (report, envelope) in reports.iter().zip(sent) {
        assert_eq!(report.result, Ok(()));
        assert_eq!(report.manifest_digest, summary(envelope).digest);
    }
}

// ---------------------------------------------------------------- the flow

#[test]
fn tam_and_agent_run_the_whole_flow_in_memory() {
    let tc_signer_key = key(Curve::P256);
    let tc_signer = signer(&tc_signer_key);
    // Personalization data for the app, depending on the app's TC manifest `app`.
    let personalization = |app: &[u8], n| {
        let mut config = spec(app_config(), n, br#"{"greeting":"hello"}"#);
        config.dependencies = vec![DependencySpec {
            envelope: app.to_vec(),
        }];
        envelope(&config, tc_signer.as_ref())
    };
    let app_v1 = envelope(&spec(app_tc(), 1, b"app binary v1"), tc_signer.as_ref());
    let config_v1 = personalization(&app_v1, 1);
    let tool_v1 = envelope(&spec(tool_tc(), 1, b"tool binary v1"), tc_signer.as_ref());
    let app_v2 = envelope(&spec(app_tc(), 2, b"app binary v2"), tc_signer.as_ref());
    let config_v2 = personalization(&app_v2, 2);
    let digest = |e: &[u8]| summary(e).digest.bytes;

    let agent_attestation = key(Curve::P256);
    let mut tam = Tam::new(
        agent_attestation.public_key(),
        vec![
            FIRMWARE_DIGEST.to_vec(),
            digest(&app_v1),
            digest(&config_v1),
            digest(&tool_v1),
            digest(&app_v2),
            digest(&config_v2),
        ],
    );
    tam.catalogue = vec![app_v1.clone(), config_v1.clone(), tool_v1.clone()];
    let mut agent = Agent::new(
        tam.ed25519.public_key(),
        tc_signer_key.public_key(),
        agent_attestation,
    );

    // ---- Round 1: first contact.
    let (session, query) = tam.query();
    let unverified = Unverified::parse(&query, NUMBERING).unwrap();
    assert_eq!(unverified.cose().structure, CoseStructure::Sign);
    let algs: Vec<_> = unverified.cose().signatures.iter().map(|s| s.alg).collect();
    assert_eq!(algs, vec![Some(-9), Some(-19)]);
    // The Agent knows only the TAM's Ed25519 key: that signature is the one that verifies.
    let verified = agent.receive(&query);
    assert_eq!(verified.alg(), Algorithm::Ed25519);
    assert_eq!(verified.signer(), tam.ed25519.public_key());
    assert_eq!(verified.message().token(), Some(session.token.as_slice()));

    let requested = vec![
        RequestedTcInfo {
            component_id: app_config(),
            tc_manifest_sequence_number: None,
            have_binary: None,
        },
        RequestedTcInfo {
            component_id: tool_tc(),
            tc_manifest_sequence_number: Some(1),
            have_binary: None,
        },
    ];
    let response = agent.answer(&query, requested);
    // The QueryResponse answers in the Agent's suite and echoes the token.
    let unverified = Unverified::parse(&response, NUMBERING).unwrap();
    assert_eq!(unverified.cose().structure, CoseStructure::Sign1);
    assert_eq!(unverified.cose().signatures[0].alg, Some(-19));
    assert_eq!(unverified.message().token(), Some(session.token.as_slice()));
    // Another key than cnf's does not verify it.
    let err = unverified
        .verify_with_key(&PROVIDER, key(Curve::Ed25519).public_key())
        .unwrap_err();
    assert_eq!(err, ProtoError::Cose(CoseError::UntrustedSigner));

    let tam = Arc::new(tam);
    let session = Arc::new(session);
    let appraisal = spawned(on_query_response(
        Arc::clone(&tam),
        Arc::clone(&session),
        response.clone(),
    ))
    .unwrap();
    assert_eq!(&appraisal.agent_key, agent.teep.public_key());
    assert_eq!(appraisal.response.tc_list, Some(vec![]));
    // The challenge was redeemed: the same Evidence again is refused as a replay.
    let replay = spawned(on_query_response(
        Arc::clone(&tam),
        Arc::clone(&session),
        response,
    ));
    assert_eq!(
        replay.err(),
        Some(ResultError::NotAffirming(Status::Contraindicated).to_string())
    );
    let mut tam = Arc::try_unwrap(tam).ok().unwrap();
    tam.agent = Some((appraisal.agent_key.clone(), Algorithm::Ed25519));

    // The TAM picks the envelopes: the app's TC first (the personalization depends on
    // it), then its personalization, then the tool, whatever the request's order.
    let manifests = tam.pick(&appraisal.response);
    assert_eq!(listed(&manifests), listed(&[&app_v1, &config_v1, &tool_v1]));
    let (token, update) = tam.update(manifests.clone());
    let success = agent.process(&update);
    check_success(&appraisal.agent_key, &token, &manifests, &success);
    let app_id = manifest_id(&app_v1);
    assert_eq!(app_id, manifest_id(&app_v2));
    let config_id = manifest_id(&config_v1);
    let tool_id = manifest_id(&tool_v1);
    let installed = |app, config, tool| {
        let mut list = vec![
            (app_id.clone(), app),
            (config_id.clone(), config),
            (tool_id.clone(), tool),
        ];
        list.sort();
        list
    };
    let expected = installed(1, 1, 1);
    assert_eq!(agent.installed(), expected);
    // At rest the state is sealed: no blob holds a payload in the clear.
    let at_rest: Vec<Vec<u8>> = {
        let blobs = agent.backend.blobs();
        blobs.objects.values().cloned().collect()
    };
    assert!(!at_rest.is_empty());
    assert!(
        at_rest
            .iter()
            .all(|b| !b.windows(13).any(|w| w == b"app binary v1"))
    );

    // The Agent restarts: the sealed state opens again at the generation it reached.
    let generation = agent.store.generation();
    agent.store = IndexedStore::open_expecting(
        agent.backend.clone(),
        AesGcmSeal::new(&PROVIDER, agent.seal_key),
        generation,
    )
    .unwrap();
    assert_eq!(agent.installed(), expected);

    // ---- Round 2: v2 of the app's TC, on which its personalization depends, and a new
    // personalization for it; the tool is up to date and is not sent again.
    tam.catalogue.extend([app_v2.clone(), config_v2.clone()]);
    let (session, query) = tam.query();
    let unverified = Unverified::parse(&query, NUMBERING).unwrap();
    assert_eq!(unverified.cose().structure, CoseStructure::Sign1);
    let response = agent.answer(&query, vec![]);
    let unverified = Unverified::parse(&response, NUMBERING).unwrap();
    let Message::QueryResponse(claimed) = unverified.message() else {
        panic!("not a QueryResponse");
    };
    // In-process appraisal without the seam: the outcome names the cnf key directly.
    let appraised = tam
        .verifier
        .appraise_now(claimed.attestation_payload.as_deref().unwrap(), NOW);
    assert_eq!(appraised.outcome.status(), Status::Affirming);
    assert!(appraised.outcome.findings.is_empty());
    let cnf_key = appraised.outcome.cnf_key().unwrap();
    assert_eq!(cnf_key, appraisal.agent_key);
    let verifiers = trust(&[&tam.verifier_key]);
    let mut check = ResultCheck {
        provider: &PROVIDER,
        verifiers: &verifiers,
        nonce: Some(&session.challenge),
        now: NOW,
        max_age: 60,
        teep_key: &cnf_key,
    };
    let ear = appraised.signed.unwrap();
    assert!(verify_ear(&ear, &check).is_ok());
    let stranger = key(Curve::Ed25519);
    check.teep_key = stranger.public_key();
    assert_eq!(verify_ear(&ear, &check), Err(ResultError::CnfMismatch));
    let verified = unverified.verify_with_key(&PROVIDER, &cnf_key).unwrap();
    let Message::QueryResponse(response) = verified.into_message() else {
        panic!("not a QueryResponse");
    };
    assert_eq!(response.tc_list.as_ref().map(Vec::len), Some(3));

    let manifests = tam.pick(&response);
    assert_eq!(listed(&manifests), listed(&[&app_v2, &config_v2]));
    let (token, update) = tam.update(manifests.clone());
    let success = agent.process(&update);
    check_success(&cnf_key, &token, &manifests, &success);
    let expected = installed(2, 2, 1);
    assert_eq!(agent.installed(), expected);

    // The app's v1 again is a rollback: refused, nothing changes.
    let (token, update) = tam.update(vec![app_v1]);
    let refused = agent.process(&update);
    let (message, reports) = answer_to_update(&cnf_key, &token, &refused);
    let Message::Error(error) = message else {
        panic!("not an Error: {message:?}");
    };
    assert_eq!(error.err_code, ErrCode::ManifestProcessingFailed);
    let rollback = SuitError::Rollback {
        installed: 2,
        offered: 1,
    };
    assert_eq!(
        reports.first().unwrap().result.as_ref().map_err(|f| f.code),
        Err(rollback.code())
    );
    assert_eq!(agent.installed(), expected);
}

/// The roles hold these across `.await` (a TAM task between parsing and verifying a
/// message, an Agent task around a blocking processor run): they must be `Send`, and the
/// shared ones `Sync`.
const _: fn() = || {
    fn assert_send<T: Send + ?Sized>() {}
    fn assert_sync<T: Sync + ?Sized>() {}
    assert_send::<Unverified<'static>>();
    assert_send::<VerifiedMessage>();
    assert_send::<Message>();
    assert_send::<QueryRequest>();
    assert_send::<QueryResponse>();
    assert_send::<Update>();
    assert_send::<Success>();
    assert_send::<ErrorMessage>();
    assert_send::<ProtoError>();
    assert_send::<InProcess>();
    assert_sync::<InProcess>();
    assert_send::<teep_attest::Outcome>();
    assert_send::<teep_attest::Appraised>();
    assert_send::<Processor<'static>>();
    assert_sync::<Processor<'static>>();
    assert_send::<UpdateOutcome>();
    assert_send::<ReceivedReport>();
    assert_send::<AgentStore>();
    assert_send::<TrustAnchors>();
    assert_sync::<TrustAnchors>();
    assert_send::<TrustStore>();
    assert_sync::<TrustStore>();
    assert_send::<PrivateKey>();
    assert_sync::<PrivateKey>();
    assert_send::<PublicKey>();
    assert_sync::<PublicKey>();
    assert_send::<Box<dyn Signer>>();
    assert_sync::<dyn Signer>();
    assert_send::<AwsLcProvider>();
    assert_sync::<AwsLcProvider>();
    assert_sync::<dyn CryptoProvider>();
    assert_send::<AesGcmSeal<'static>>();
    assert_sync::<AesGcmSeal<'static>>();
};
