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
use teep_suit::storage::Storage;
use teep_suit::verify::Anchors;
use teep_tam::store::TcPolicy;
use teep_tam::tc::release_from_envelope;
use teep_tam::{Context, MemoryStore, Random, Tam, TamConfig, driver};

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
}

impl Pair {
    fn new() -> Self {
        let world = World::new();
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
            passport_by_age: false,
        });
        let agent = world.agent();
        Self {
            world,
            tam,
            store: MemoryStore::new(),
            verifier,
            rng: CountingRng(0),
            agent,
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
        let mut cx = Context {
            now: NOW,
            rng: &mut self.rng,
        };
        block_on(driver::drive(
            &self.tam,
            &self.store,
            &self.verifier,
            body,
            None,
            &mut cx,
        ))
        .unwrap()
        .reply
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
