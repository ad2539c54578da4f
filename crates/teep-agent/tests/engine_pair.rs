//! The real TAM engine (teep-tam, on its in-memory store with an in-process Verifier)
//! and our Agent engine (on a `MemoryTee`), talking only in signed TEEP messages: the TAM
//! installs a TC, then updates it to a higher sequence number, then deletes it after a
//! policy change. Nothing here builds a TEEP message by hand.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::task::{Context as TaskContext, Poll, Waker};

use common::*;
use teep_agent::engine::{Agent, Event};
use teep_agent::memory::MemoryTee;
use teep_attest::appraiser::InProcess;
use teep_attest::{
    DebugStatus, Endorsement, EndorsementScope, Oemid, Policy, ReferenceValues, SigningVerifier,
    Verifier, VerifierId,
};
use teep_cose::{Curve, PrivateKey, TrustStore};
use teep_proto::Message;
use teep_suit::storage::Storage;
use teep_suit::verify::Anchors;
use teep_tam::own::{EarCheck, FileAttestation, OwnAttestation, OwnEar, SelfAttestation};
use teep_tam::store::{DeviceId, TcPolicy};
use teep_tam::tc::release_from_envelope;
use teep_tam::{Context, Dropped, Handled, MemoryStore, Random, Tam, TamConfig, driver};

const CLASS: &str = "phone";

/// Runs a future that never waits (in-memory store, in-process Verifier).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut TaskContext::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a test future waited"),
    }
}

/// Deterministic TAM randomness: distinct tokens per call.
struct CountingRng(u8);

impl Random for CountingRng {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), teep_cose::CoseError> {
        self.0 = self.0.wrapping_add(1);
        out.fill(self.0);
        Ok(())
    }
}

struct Pair {
    world: World,
    tam: Tam,
    store: MemoryStore,
    verifier: InProcess,
    rng: CountingRng,
    agent: Agent<MemoryTee>,
    /// The device an empty POST names (as a TLS client certificate would), if any.
    hint: Option<DeviceId>,
}

impl Pair {
    fn new() -> Self {
        Self::with(World::new(), None, None)
    }

    /// A pair whose TAM attests itself with `own` and whose Agent demands it by `demand`.
    fn with(world: World, own: Option<SelfAttestation>, demand: Option<TamAttestation>) -> Self {
        Self::configured(world, own, demand, false)
    }

    /// With `encrypted`, the TAM has an encryption key and the Agent encrypts Evidence and
    /// SUIT reports to it (§12).
    fn with_encryption(encrypted: bool) -> Self {
        Self::configured(World::new(), None, None, encrypted)
    }

    fn configured(
        world: World,
        own: Option<SelfAttestation>,
        demand: Option<TamAttestation>,
        encrypted: bool,
    ) -> Self {
        let tam_encryption = encrypted.then(|| key(Curve::P256));
        let verifier_key = key(Curve::P256);
        let policy = Policy {
            id: Some("policy:teep-agent/pair".into()),
            endorsements: vec![Endorsement {
                key: world.attestation.public_key().clone(),
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
        };
        let id = VerifierId {
            developer: "teep project".into(),
            build: "teep-agent pair test".into(),
        };
        let verifier = InProcess::new(SigningVerifier::new(
            Verifier::new(policy, id),
            signer(&verifier_key),
            provider(),
        ));
        let mut verifiers = TrustStore::new();
        verifiers.add_key(verifier_key.public_key().clone());
        let tam = Tam::new(TamConfig {
            provider: provider(),
            signers: vec![signer(&world.tam_esp256), signer(&world.tam_ed25519)],
            verifiers,
            numbering: world.numbering,
            token_lifetime: 4 * 3600,
            max_sessions_per_device: 3,
            max_anonymous_sessions: 8,
            attestation_max_age: 3600,
            default_class: Some(CLASS.into()),
            encryption_key: tam_encryption.clone(),
            self_attestation: own,
            passport_by_age: false,
        });
        let mut agent_cfg = world.config();
        agent_cfg.tam_attestation = demand;
        agent_cfg.tam_encryption_key = tam_encryption.map(|k| k.public_key().clone());
        let agent = world.agent_with(agent_cfg);
        Self {
            world,
            tam,
            store: MemoryStore::new(),
            verifier,
            rng: CountingRng(0),
            agent,
            hint: None,
        }
    }

    /// The TC Signer publishes `name` v`sequence` to the TAM.
    fn release(&self, name: &str, sequence: u64) {
        let envelope = self.world.envelope(name, sequence);
        let signer_key: &PrivateKey = &self.world.tc_signer;
        let mut trust = TrustStore::new();
        trust.add_key(signer_key.public_key().clone());
        let anchors = Anchors {
            signers: &trust,
            mac_keys: &[],
            now: None,
        };
        let release = release_from_envelope(envelope, provider(), &anchors, vec![]).unwrap();
        self.store.with(|s| s.releases.push(release));
    }

    fn policy(&self, install: &[&str]) {
        let ids = install
            .iter()
            .map(|n| teep_proto::ComponentId(manifest_id(n).0))
            .collect();
        self.store.with(|s| {
            s.class_policy.insert(
                CLASS.into(),
                TcPolicy {
                    install: ids,
                    requestable: vec![],
                },
            )
        });
    }

    /// One POST to the TAM; its reply, if any.
    fn post(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        self.drive(body).unwrap().reply
    }

    /// One POST to the TAM: what it decided.
    fn drive(&mut self, body: &[u8]) -> Result<Handled, Dropped> {
        let mut cx = Context {
            now: NOW,
            rng: &mut self.rng,
        };
        block_on(driver::drive(
            &self.tam,
            &self.store,
            &self.verifier,
            body,
            self.hint,
            &mut cx,
        ))
    }

    /// A whole exchange that may end in a drop: the Agent's events, the Agent's last
    /// message and the TAM's drop reason, if it ended in one.
    fn exchange_to_end(&mut self) -> (Vec<Event>, Option<Vec<u8>>, Option<Dropped>) {
        let mut events = Vec::new();
        let mut from_tam = self.post(&[]);
        while let Some(message) = from_tam {
            assert!(events.len() < 16, "the exchange loops: {events:?}");
            let handled = self.agent.handle(TAM_URI, &message, cx());
            events.push(handled.event);
            let Some(reply) = handled.reply else {
                return (events, None, None);
            };
            match self.drive(&reply) {
                Ok(h) => from_tam = h.reply,
                Err(d) => return (events, Some(reply), Some(d)),
            }
            if from_tam.is_none() {
                return (events, Some(reply), None);
            }
        }
        (events, None, None)
    }

    /// A whole exchange started by the Broker's empty POST; the Agent's events in order.
    fn exchange(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let mut from_tam = self.post(&[]);
        while let Some(message) = from_tam {
            let handled = self.agent.handle(TAM_URI, &message, cx());
            events.push(handled.event);
            from_tam = self.post(&handled.reply.unwrap());
        }
        events
    }

    fn installed(&self) -> Vec<(teep_suit::ComponentId, u64)> {
        self.agent
            .tee()
            .storage
            .manifests()
            .unwrap()
            .into_iter()
            .map(|m| (m.component_id, m.sequence_number))
            .collect()
    }
}

fn answered(tcs: usize) -> Event {
    Event::QueryAnswered {
        attested: true,
        tcs,
    }
}

fn applied(installed: usize, unlinked: usize) -> Event {
    Event::UpdateApplied {
        installed,
        unlinked,
    }
}

#[test]
fn the_tam_installs_updates_and_deletes_a_tc_on_our_agent() {
    let mut pair = Pair::new();
    pair.release("app", 1);
    pair.policy(&["app"]);

    // Install: QueryRequest (COSE_Sign) -> QueryResponse with Evidence -> Update -> Success.
    let events = pair.exchange();
    assert_eq!(events, vec![answered(0), applied(1, 0),]);
    assert_eq!(pair.installed(), vec![(manifest_id("app"), 1)]);
    assert_eq!(
        pair.agent.invoke_ta(&ta_id("app"), b"?").unwrap(),
        [payload("app", 1), b"?".to_vec()].concat()
    );

    // Update: the TC Signer publishes v2.
    pair.release("app", 2);
    let events = pair.exchange();
    assert_eq!(events, vec![answered(1), applied(1, 0),]);
    assert_eq!(pair.installed(), vec![(manifest_id("app"), 2)]);
    assert_eq!(
        pair.agent.invoke_ta(&ta_id("app"), b"").unwrap(),
        payload("app", 2)
    );

    // Nothing new: the exchange ends after the QueryResponse.
    let events = pair.exchange();
    assert_eq!(events, vec![answered(1)]);

    // Delete: policy no longer names the TC; the TAM unlinks it.
    pair.policy(&[]);
    let events = pair.exchange();
    assert_eq!(events, vec![answered(1), applied(0, 1),]);
    assert!(pair.installed().is_empty());
    assert!(pair.agent.invoke_ta(&ta_id("app"), b"").is_err());
}

#[test]
fn evidence_and_reports_encrypted_to_the_tam_install_and_delete() {
    let mut pair = Pair::with_encryption(true);
    pair.release("app", 1);
    pair.policy(&["app"]);
    // The QueryResponse carries Evidence as a tagged COSE_Encrypt, which the TAM opens.
    let query = pair.post(&[]).unwrap();
    let handled = pair.agent.handle(TAM_URI, &query, cx());
    let response = handled.reply.unwrap();
    let Message::QueryResponse(qr) = pair.world.read(&response) else {
        panic!("not a QueryResponse");
    };
    assert!(qr.attestation_payload.unwrap().starts_with(&[0xd8, 0x60]));
    let update = pair.post(&response).unwrap();
    let handled = pair.agent.handle(TAM_URI, &update, cx());
    assert_eq!(handled.event, applied(1, 0));
    // The Success's reports are encrypted too, and the TAM records the install.
    let success = handled.reply.unwrap();
    let Message::Success(s) = pair.world.read(&success) else {
        panic!("not a Success");
    };
    assert!(s.suit_reports.unwrap()[0].starts_with(&[0xd8, 0x60]));
    assert_eq!(pair.post(&success), None);
    let recorded = pair
        .store
        .with(|s| s.devices.values().next().unwrap().installed.len());
    assert_eq!(recorded, 1);
    assert_eq!(pair.installed(), vec![(manifest_id("app"), 1)]);

    pair.policy(&[]);
    assert_eq!(pair.exchange(), vec![answered(1), applied(0, 1)]);
    assert!(pair.installed().is_empty());
}

// The TAM attesting itself (issue 9; spec §10 Error handling, §11 QueryRequest step 1).

use teep_agent::engine::{Refusal, TamAttestation};
use teep_attest::ear::EAR_PROFILE;
use teep_attest::{
    ATTESTATION_RESULT_FORMAT, Cnf, Ear, EarAppraisal, Status, TrustVector, sign_ear,
};

/// The Verifier that attests the TAM, and the Agent's policy trusting it.
struct TamVerifier {
    key: PrivateKey,
}

impl TamVerifier {
    fn new() -> Self {
        Self {
            key: key(Curve::P256),
        }
    }

    fn trust(&self) -> TrustStore {
        let mut t = TrustStore::new();
        t.add_key(self.key.public_key().clone());
        t
    }

    /// The Agent demanding the TAM's attestation, fresh by `iat` (timestamp mechanism).
    fn demand(&self) -> TamAttestation {
        TamAttestation {
            verifiers: self.trust(),
            max_age: 600,
            timestamp: true,
        }
    }

    /// An affirming EAR about the TAM, no nonce, `cnf` = `bound`, issued at `iat`.
    fn ear(&self, bound: &teep_cose::PublicKey, iat: u64) -> Vec<u8> {
        let ear = Ear {
            profile: EAR_PROFILE.into(),
            iat: iat as i64,
            verifier_id: VerifierId {
                developer: "teep project".into(),
                build: "tam verifier".into(),
            },
            nonce: None,
            cnf: Some(Cnf::CoseKey(bound.to_cose_key_bytes())),
            submods: [(
                "tam".to_owned(),
                EarAppraisal {
                    status: Status::Affirming,
                    trust_vector: TrustVector::default(),
                    policy_id: None,
                },
            )]
            .into(),
        };
        sign_ear(&ear, signer(&self.key).as_ref()).unwrap()
    }

    /// The TAM's source reading `path`, checked against this Verifier and the TAM's keys.
    fn file_source(&self, world: &World, path: &std::path::Path) -> SelfAttestation {
        SelfAttestation {
            source: Box::new(FileAttestation::new(
                path.to_path_buf(),
                EarCheck {
                    provider: provider(),
                    verifiers: self.trust(),
                    tam_keys: vec![
                        world.tam_esp256.public_key().clone(),
                        world.tam_ed25519.public_key().clone(),
                    ],
                    max_age: 3600,
                },
            )),
            up_front: false,
        }
    }
}

/// A source that hands out whatever it holds, unchecked: what a buggy or subverted source
/// could give the engine.
struct Raw(OwnEar);

impl OwnAttestation for Raw {
    fn current(&self, _now: u64) -> Option<OwnEar> {
        Some(self.0.clone())
    }
}

fn demanded() -> Event {
    Event::Refused(Refusal::AttestationRequired)
}

#[test]
fn the_tam_attests_itself_when_the_agent_demands_it_and_the_install_follows() {
    let world = World::new();
    let tv = TamVerifier::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam-ear.cbor");
    std::fs::write(&path, tv.ear(world.tam_ed25519.public_key(), NOW - 60)).unwrap();
    let own = tv.file_source(&world, &path);
    let mut pair = Pair::with(world, Some(own), Some(tv.demand()));
    pair.release("app", 1);
    pair.policy(&["app"]);
    // Error ERR_ATTESTATION_REQUIRED, then the QueryRequest with the TAM's result is
    // answered, the Update installs.
    let (events, _, dropped) = pair.exchange_to_end();
    assert!(dropped.is_none(), "{dropped:?}");
    assert_eq!(events, vec![demanded(), answered(0), applied(1, 0)]);
    assert_eq!(pair.installed(), vec![(manifest_id("app"), 1)]);
    // The device is known now: its next session (named by the transport) has its Error
    // verified with its key, and answered the same way.
    pair.hint = Some(DeviceId(pair.world.agent_pub().thumbprint()));
    pair.release("app", 2);
    let (events, _, dropped) = pair.exchange_to_end();
    assert!(dropped.is_none(), "{dropped:?}");
    // (Its own attestation is fresh: the TAM asks for the tc-list only.)
    let unattested = Event::QueryAnswered {
        attested: false,
        tcs: 1,
    };
    assert_eq!(events, vec![demanded(), unattested, applied(1, 0)]);
    assert_eq!(pair.installed(), vec![(manifest_id("app"), 2)]);
}

#[test]
fn a_tam_configured_to_attest_up_front_is_answered_at_once() {
    let world = World::new();
    let tv = TamVerifier::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam-ear.cbor");
    std::fs::write(&path, tv.ear(world.tam_ed25519.public_key(), NOW)).unwrap();
    let own = SelfAttestation {
        up_front: true,
        ..tv.file_source(&world, &path)
    };
    let mut pair = Pair::with(world, Some(own), Some(tv.demand()));
    pair.release("app", 1);
    pair.policy(&["app"]);
    let (events, _, dropped) = pair.exchange_to_end();
    assert!(dropped.is_none(), "{dropped:?}");
    assert_eq!(events, vec![answered(0), applied(1, 0)]);
}

#[test]
fn a_tam_without_an_attestation_result_ends_the_session_without_a_loop() {
    let tv = TamVerifier::new();
    let mut pair = Pair::with(World::new(), None, Some(tv.demand()));
    pair.release("app", 1);
    pair.policy(&["app"]);
    let before = pair.store.snapshot();
    let (events, _, dropped) = pair.exchange_to_end();
    assert_eq!(events, vec![demanded()]);
    assert!(
        matches!(dropped, Some(Dropped::NoTamAttestation)),
        "{dropped:?}"
    );
    // Only the first QueryRequest's session was opened; nothing installed.
    assert_eq!(
        pair.store.snapshot().sessions.len(),
        before.sessions.len() + 1
    );
    assert!(pair.installed().is_empty());
}

#[test]
fn a_result_bound_to_another_key_is_refused_by_the_agent_and_not_sent_twice() {
    let world = World::new();
    let tv = TamVerifier::new();
    // The source claims the TAM's Ed25519 key while the EAR binds a stranger's key.
    let own = SelfAttestation {
        source: Box::new(Raw(OwnEar {
            ear: tv.ear(key(Curve::Ed25519).public_key(), NOW),
            format: ATTESTATION_RESULT_FORMAT.into(),
            key: world.tam_ed25519.public_key().clone(),
        })),
        up_front: false,
    };
    let mut pair = Pair::with(world, Some(own), Some(tv.demand()));
    pair.release("app", 1);
    pair.policy(&["app"]);
    let (events, last, dropped) = pair.exchange_to_end();
    // Demanded; the retry's result refused (ERR_ATTESTATION_REQUIRED again): not answered.
    assert_eq!(
        events,
        vec![demanded(), Event::Refused(Refusal::TamAttestation)]
    );
    assert!(
        matches!(dropped, Some(Dropped::TamAttestationRefused)),
        "{dropped:?}"
    );
    // The same second Error again changes nothing.
    let before = pair.store.snapshot();
    assert!(pair.drive(&last.unwrap()).is_err());
    assert_eq!(pair.store.snapshot(), before);
    assert!(pair.installed().is_empty());
}

#[test]
fn an_expired_result_is_not_sent_and_a_replaced_file_is_read_again() {
    let world = World::new();
    let tv = TamVerifier::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam-ear.cbor");
    // Older than the TAM's max age (3600 s): not sent, the session ends.
    std::fs::write(&path, tv.ear(world.tam_ed25519.public_key(), NOW - 3601)).unwrap();
    let own = tv.file_source(&world, &path);
    let fresh = tv.ear(world.tam_ed25519.public_key(), NOW);
    let mut pair = Pair::with(world, Some(own), Some(tv.demand()));
    pair.release("app", 1);
    pair.policy(&["app"]);
    let (events, _, dropped) = pair.exchange_to_end();
    assert_eq!(events, vec![demanded()]);
    assert!(
        matches!(dropped, Some(Dropped::NoTamAttestation)),
        "{dropped:?}"
    );
    // The operator replaces the file (another size, so the change is seen at once).
    std::fs::write(&path, [fresh.as_slice(), &[]].concat()).unwrap();
    let (events, _, dropped) = pair.exchange_to_end();
    assert!(dropped.is_none(), "{dropped:?}");
    assert_eq!(events, vec![demanded(), answered(0), applied(1, 0)]);
}

/// An Error `[5, {19: token}, 7]` built by hand and signed by `key`.
fn raw_attestation_required(token: &[u8], key: &PrivateKey) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    e.array(3).unwrap().u8(5).unwrap();
    e.map(1).unwrap().u8(19).unwrap().bytes(token).unwrap();
    e.u8(7).unwrap();
    teep_cose::sign1(signer(key).as_ref(), e.writer(), &Default::default()).unwrap()
}

/// The token of the QueryRequest `bytes`.
fn query_token(world: &World, bytes: &[u8]) -> Vec<u8> {
    let parsed = teep_proto::Unverified::parse(bytes, world.numbering).unwrap();
    parsed.message().token().unwrap().to_vec()
}

#[test]
fn forged_attestation_required_errors_change_nothing() {
    let world = World::new();
    let tv = TamVerifier::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam-ear.cbor");
    std::fs::write(&path, tv.ear(world.tam_ed25519.public_key(), NOW)).unwrap();
    let own = tv.file_source(&world, &path);
    let mut pair = Pair::with(world, Some(own), Some(tv.demand()));
    pair.release("app", 1);
    pair.policy(&["app"]);
    let (_, _, dropped) = pair.exchange_to_end();
    assert!(dropped.is_none(), "{dropped:?}");
    pair.hint = Some(DeviceId(pair.world.agent_pub().thumbprint()));
    // The device is known: a session for it, and an Error with its token signed by
    // another key is dropped, nothing committed.
    let query = pair.post(&[]).unwrap();
    let token = query_token(&pair.world, &query);
    let before = pair.store.snapshot();
    let forged = raw_attestation_required(&token, &key(Curve::Ed25519));
    assert!(matches!(pair.drive(&forged), Err(Dropped::WrongDevice(_))));
    assert_eq!(pair.store.snapshot(), before);
    // An unknown token (another TAM's, or made up): dropped, nothing committed.
    let stranger = raw_attestation_required(&[0xee; 16], &pair.world.agent_key);
    assert!(matches!(pair.drive(&stranger), Err(Dropped::UnknownToken)));
    assert_eq!(pair.store.snapshot(), before);
    // The genuine Error (by hand, the device's key) still gets the attested QueryRequest.
    let genuine = raw_attestation_required(&token, &pair.world.agent_key);
    let retry = pair.drive(&genuine).unwrap().reply.unwrap();
    let Ok(Message::QueryRequest(q)) =
        teep_proto::Unverified::parse(&retry, pair.world.numbering).map(|p| p.message().clone())
    else {
        panic!("not a QueryRequest")
    };
    assert!(q.attestation_payload.is_some());
    assert_ne!(q.token.as_deref(), Some(token.as_slice()));
    // The old token is consumed: the same Error once more is refused.
    assert!(matches!(pair.drive(&genuine), Err(Dropped::TokenReused)));
}
