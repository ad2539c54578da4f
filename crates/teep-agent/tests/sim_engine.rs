//! The Agent engine over the software TEE (`impl Tee for SimTee`): an Update installs a
//! real Wasm TA into the sealed state directory, and everything survives a restart (a
//! reopen of the same directory): the TA, its store, and the engine's own state (pending
//! requests, answered tokens).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;
mod sim_common;

use common::{TAM_URI, World, cx};
use sim_common::{COUNTER_V1, Fixture, GREETING, greeting_id, ta_id};
use teep_agent::engine::{Agent, AgentConfig, Answer, Event, Refusal};
use teep_agent::sim::SimTee;
use teep_agent::tee::Tee;
use teep_cose::SignOptions;
use teep_proto::{
    CipherSuite, DataItemRequested, Message, QueryRequest, SuitCoseProfile, Unverified, Update,
    sign_message,
};

/// The engine configuration of `w`, trusting the fixture's TC signer.
fn config(w: &World, fx: &Fixture) -> AgentConfig {
    AgentConfig {
        tc_trust: fx.trust.clone(),
        device: fx.device.clone(),
        ..w.config()
    }
}

/// `m` signed by the TAM's ESP256 key (the SimTee's TEEP key is P-256).
fn from_tam(w: &World, m: &Message) -> Vec<u8> {
    let signer = common::signer(&w.tam_esp256);
    sign_message(m, w.numbering, signer.as_ref(), &SignOptions::default()).unwrap()
}

fn update(token: u8, manifests: Vec<Vec<u8>>) -> Vec<u8> {
    let u = Update {
        token: Some(vec![token; 16]),
        manifest_list: Some(manifests),
        ..Update::default()
    };
    from_tam(&World::new(), &Message::Update(u))
}

fn output(agent: &mut Agent<SimTee>, input: &[u8]) -> String {
    String::from_utf8(agent.invoke_ta(&ta_id("app"), input).unwrap()).unwrap()
}

#[test]
fn engine_installs_into_a_sim_tee_and_everything_survives_a_reopen() {
    let w = World::new();
    let fx = Fixture::new();
    let mut agent = Agent::new(config(&w, &fx), fx.open()).unwrap();
    assert_eq!(
        agent.tee().device_claims().ueid.as_deref(),
        Some(agent.tee().ueid()),
        "Evidence carries the identity's ueid"
    );

    let ta = fx.envelope(&ta_id("app"), 1, COUNTER_V1);
    let perso = fx.perso_envelope(&greeting_id("app"), 1, GREETING, &ta);
    let update_bytes = {
        let u = Update {
            token: Some(vec![0x21; 16]),
            manifest_list: Some(vec![ta, perso]),
            ..Update::default()
        };
        from_tam(&w, &Message::Update(u))
    };
    let handled = agent.handle(TAM_URI, &update_bytes, cx());
    assert!(
        matches!(handled.event, Event::UpdateApplied { installed: 2, .. }),
        "{:?}",
        handled.event
    );
    assert_eq!(output(&mut agent, b""), "Hello from perso, call #1");
    // A pending request goes into the engine's sealed state.
    let wanted = ta_id("other");
    assert!(matches!(
        agent.request_ta(wanted.clone(), None).unwrap(),
        Answer::Contact { .. }
    ));
    let teep_key = agent.tee().teep_public_key().clone();
    drop(agent.into_tee());

    // Restart: the same directory, a new engine.
    let mut agent = Agent::new(config(&w, &fx), fx.open()).unwrap();
    assert!(
        agent
            .list_tas()
            .unwrap()
            .iter()
            .any(|t| t.component_id == ta_id("app") && t.sequence_number == 1)
    );
    assert_eq!(
        output(&mut agent, b""),
        "Hello from perso, call #2",
        "the TA's own store survived"
    );
    // The answered token survived: the same Update again is a replay, and changes nothing.
    let before = agent.tee().snapshot().unwrap();
    let replayed = agent.handle(TAM_URI, &update_bytes, cx());
    assert_eq!(replayed.event, Event::Refused(Refusal::Replay));
    assert_eq!(agent.tee().snapshot().unwrap(), before);
    // The pending request survived: it is in the next QueryResponse.
    let query = QueryRequest {
        token: Some(vec![0x22; 16]),
        supported_teep_cipher_suites: vec![CipherSuite::SIGN1_ESP256],
        supported_suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
        data_item_requested: DataItemRequested::TRUSTED_COMPONENTS,
        ..QueryRequest::default()
    };
    let reply = agent
        .handle(TAM_URI, &from_tam(&w, &Message::QueryRequest(query)), cx())
        .reply
        .unwrap();
    let message = Unverified::parse(&reply, w.numbering)
        .unwrap()
        .verify_with_key(common::provider(), &teep_key)
        .unwrap()
        .into_message();
    let Message::QueryResponse(response) = message else {
        panic!("expected a QueryResponse, got {message:?}");
    };
    let requested = response.requested_tc_list.unwrap();
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0].component_id, wanted);
}

#[test]
fn an_update_from_an_untrusted_tam_key_leaves_the_sim_tee_unchanged() {
    let w = World::new();
    let fx = Fixture::new();
    let mut agent = Agent::new(config(&w, &fx), fx.open()).unwrap();
    let ta = fx.envelope(&ta_id("app"), 1, COUNTER_V1);
    let before = agent.tee().snapshot().unwrap();
    // Signed by another World's TAM key, which this Agent does not trust.
    let handled = agent.handle(TAM_URI, &update(0x31, vec![ta]), cx());
    assert!(
        matches!(handled.event, Event::Refused(Refusal::Message(_))),
        "{:?}",
        handled.event
    );
    assert_eq!(agent.tee().snapshot().unwrap(), before);
    assert!(agent.list_tas().unwrap().is_empty());
}
