//! The TAM engine driven by test Agents over the in-memory store on a simulated clock: one
//! test per rule, and the attacks, each asserting the typed outcome and (for drops) that
//! the store did not change.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use teep_attest::{ATTESTATION_RESULT_FORMAT, ResultError, SigningVerifier, Verifier, sign_ear};
use teep_cose::{Curve, PrivateKey};
use teep_proto::{
    CipherSuite, ComponentId, CoseStructure, DataItemRequested, ErrCode, ErrorMessage,
    FreshnessMechanism, Message, QueryResponse, RequestedTcInfo, SuitCoseProfile,
    SystemPropertyClaims, decode_unverified_cose,
};
use teep_tam::store::{
    AttestationVerdict, Device, FAILED_BACKOFF, FAILED_BACKOFF_MAX, FAILED_PER_DEVICE, Failed,
    MemoryState, OUTCOMES_PER_DEVICE, SessionState, TcPolicy, TcRelease,
};
use teep_tam::{Dropped, Event, Handled, TOKEN_LEN, driver};

/// A world whose policy installs `app` v1, and a P-256 Agent.
fn app_world() -> (World, Agent, TcRelease) {
    let w = World::new();
    let app = w.release("app", 1, &[]);
    w.class_policy(&["app"], &[]);
    let agent = w.agent(Curve::P256);
    (w, agent, app)
}

#[test]
fn empty_post_opens_session_with_cose_sign_offering_everything() {
    let mut w = World::new();
    let before = w.snapshot();
    let bytes = w.connect();
    let cose = decode_unverified_cose(&bytes).unwrap();
    assert_eq!(cose.structure, CoseStructure::Sign);
    let algs: Vec<_> = cose.signatures.iter().map(|s| s.alg).collect();
    assert_eq!(algs, vec![Some(-9), Some(-19)]);
    // Each Agent verifies its own suite's signature.
    let p256_only = World::new().agent(Curve::P256);
    let qr = Agent {
        tam_keys: vec![w.tam_esp256.clone()],
        ..p256_only
    }
    .read_query(&bytes);
    let ed_agent = w.agent(Curve::Ed25519);
    assert_eq!(
        Agent {
            tam_keys: vec![w.tam_ed25519.clone()],
            ..ed_agent
        }
        .read_query(&bytes),
        qr
    );
    assert_eq!(qr.versions, Some(vec![0]));
    assert_eq!(
        qr.supported_teep_cipher_suites,
        vec![CipherSuite::SIGN1_ESP256, CipherSuite::SIGN1_ED25519]
    );
    assert_eq!(
        qr.supported_suit_cose_profiles,
        SuitCoseProfile::ALL_MTI.to_vec()
    );
    assert_eq!(
        qr.supported_freshness_mechanisms,
        Some(vec![
            FreshnessMechanism::NONCE,
            FreshnessMechanism::TIMESTAMP
        ])
    );
    assert!(
        qr.data_item_requested
            .contains(DataItemRequested::ATTESTATION)
    );
    assert!(
        qr.data_item_requested
            .contains(DataItemRequested::TRUSTED_COMPONENTS)
    );
    let token = qr.token.unwrap();
    assert_eq!(token.len(), TOKEN_LEN);
    // The session is persisted with the challenge the Verifier issued.
    let record = w.session(&token);
    let SessionState::ExpectQueryResponse(state) = &record.state else {
        panic!("wrong state {:?}", record.state);
    };
    assert_eq!(state.challenge, qr.challenge);
    assert_eq!(record.expires_at, NOW + 4 * 3600);
    assert_eq!(w.snapshot().sessions.len(), before.sessions.len() + 1);
}

#[test]
fn first_contact_attests_records_key_and_sends_policy_dependencies_first() {
    let mut w = World::new();
    let lib = w.release("lib", 1, &[]);
    let app = w.release("app", 2, &["lib"]);
    w.class_policy(&["app"], &[]);
    let agent = w.agent(Curve::P256);
    let u = w.first_contact(&agent);
    assert_eq!(
        u.manifest_list,
        Some(vec![lib.envelope.to_vec(), app.envelope.to_vec()])
    );
    let device = w.device(&agent).unwrap();
    assert_eq!(device.key, agent.key.public_key().to_cose_key_bytes());
    assert_eq!(device.attested_at, Some(NOW));
    assert_eq!(device.class.as_deref(), Some(CLASS));
    assert_eq!(w.snapshot().attestations.len(), 1);
    let token = u.token.unwrap();
    let SessionState::ExpectSuccess(state) = w.session(&token).state else {
        panic!("not ExpectSuccess");
    };
    let digests: Vec<_> = state.sent_manifests.iter().map(|m| m.digest).collect();
    assert_eq!(digests, vec![lib.digest, app.digest]);

    // Success with both reports: the device's recorded state follows.
    let reports = vec![
        report(lib.digest, &token, true),
        report(app.digest, &token, true),
    ];
    let done = w.post(&agent.success(&token, Some(reports))).unwrap();
    assert_eq!(
        done.event,
        Event::Installed {
            manifests: 2,
            unlinked: 0
        }
    );
    let installed: Vec<_> = w
        .device(&agent)
        .unwrap()
        .installed
        .into_iter()
        .map(|i| i.sequence)
        .collect();
    assert_eq!(installed, vec![1, 2]);
    assert_eq!(w.snapshot().reports.len(), 2);
}

#[test]
fn update_is_signed_in_the_suite_the_agent_chose() {
    let mut w = World::new();
    w.release("app", 1, &[]);
    w.class_policy(&["app"], &[]);
    let agent = w.agent(Curve::Ed25519);
    let qr = agent.read_query(&w.connect());
    let reply = w
        .post(&agent.attested_response(&qr, qr.challenge.as_deref().unwrap()))
        .unwrap()
        .reply
        .unwrap();
    let cose = decode_unverified_cose(&reply).unwrap();
    assert_eq!(cose.structure, CoseStructure::Sign1);
    assert_eq!(cose.signatures[0].alg, Some(-19));
    assert_eq!(
        w.device(&agent).unwrap().suite,
        Some(CipherSuite::SIGN1_ED25519)
    );
}

/// Installs `app` v1 through a full exchange and returns the agent.
fn installed_world() -> (World, Agent) {
    let mut w = World::new();
    w.release("app", 1, &[]);
    w.class_policy(&["app"], &["extra"]);
    let agent = w.agent(Curve::P256);
    let token = w.first_update_token(&agent);
    w.post(&agent.success(&token, None)).unwrap();
    (w, agent)
}

#[test]
fn known_device_gets_sign1_without_attestation_and_nothing_when_up_to_date() {
    let (mut w, agent) = installed_world();
    w.now += 60;
    let bytes = w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap();
    assert_eq!(
        decode_unverified_cose(&bytes).unwrap().structure,
        CoseStructure::Sign1
    );
    let qr = agent.read_query(&bytes);
    assert!(
        !qr.data_item_requested
            .contains(DataItemRequested::ATTESTATION)
    );
    assert_eq!(qr.challenge, None);
    assert_eq!(qr.supported_freshness_mechanisms, None);
    let done = w.post(&agent.plain_response(&qr)).unwrap();
    assert_eq!(done.event, Event::UpToDate);
    assert_eq!(done.reply, None);
}

#[test]
fn stale_attestation_asks_again() {
    let (mut w, agent) = installed_world();
    w.now += 3601;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    assert!(
        qr.data_item_requested
            .contains(DataItemRequested::ATTESTATION)
    );
    assert!(qr.challenge.is_some());
}

#[test]
fn update_with_err_code_still_records_the_tc_list() {
    // The record claims app v1; the device has since dropped it (a Success lost on the
    // way) and its attestation is stale, so the Update carries err-code.
    let (mut w, agent) = installed_world();
    agent.held.borrow_mut().clear();
    w.now += 3601;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let done = w.post(&agent.plain_response(&qr)).unwrap();
    let u = update(agent.read(&done.reply.unwrap()));
    assert_eq!(u.err_code, Some(ErrCode::AttestationRequired));
    assert!(w.device(&agent).unwrap().installed.is_empty());
    // A failed attestation: the device's tc-list is not believed, the record stays.
    let (mut w, agent) = installed_world();
    agent.held.borrow_mut().clear();
    w.now += 3601;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let evidence = rejected_evidence(&agent, qr.challenge.as_deref().unwrap());
    let resp = agent.response_with(&qr, Some((teep_attest::EVIDENCE_FORMAT, evidence)));
    let done = w.post(&agent.sign(Message::QueryResponse(resp))).unwrap();
    let u = update(agent.read(&done.reply.unwrap()));
    assert_eq!(u.err_code, Some(ErrCode::AttestationRequired));
    assert_eq!(w.device(&agent).unwrap().installed.len(), 1);
}

#[test]
fn only_higher_sequence_numbers_and_unneeded_for_removals() {
    let (mut w, agent) = installed_world();
    w.release("app", 2, &[]);
    w.release("app", 1, &[]); // an older re-upload never wins
    w.now += 60;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let u = update(agent.read(&w.post(&agent.plain_response(&qr)).unwrap().reply.unwrap()));
    let SessionState::ExpectSuccess(state) = w.session(u.token.as_ref().unwrap()).state else {
        panic!()
    };
    assert_eq!(state.sent_manifests[0].sequence, 2);
    assert_eq!(u.manifest_list.unwrap().len(), 1);
    w.post(&agent.success(u.token.as_ref().unwrap(), None))
        .unwrap();

    // Policy drops app: the next Update unlinks it.
    w.class_policy(&[], &[]);
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let u = update(agent.read(&w.post(&agent.plain_response(&qr)).unwrap().reply.unwrap()));
    assert_eq!(u.manifest_list, None);
    assert_eq!(u.unneeded_manifest_list, Some(vec![manifest_id("app")]));
    w.post(&agent.success(u.token.as_ref().unwrap(), None))
        .unwrap();
    assert!(w.device(&agent).unwrap().installed.is_empty());
}

#[test]
fn requested_tc_list_honoured_when_policy_permits() {
    let (mut w, agent) = installed_world();
    let extra = w.release("extra", 1, &[]);
    w.release("secret", 1, &[]);
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let ask = |name| RequestedTcInfo {
        component_id: manifest_id(name),
        tc_manifest_sequence_number: None,
        have_binary: None,
    };
    let resp = QueryResponse {
        requested_tc_list: Some(vec![ask("extra"), ask("secret")]),
        ..agent.response_with(&qr, None)
    };
    let u = update(
        agent.read(
            &w.post(&agent.sign(Message::QueryResponse(resp)))
                .unwrap()
                .reply
                .unwrap(),
        ),
    );
    assert_eq!(u.manifest_list, Some(vec![extra.envelope.to_vec()]));
}

/// have-binary with the release's own sequence number: the envelope goes without its
/// integrated payload and still authenticates with teep-suit's verification; without
/// have-binary, or with another sequence number, the release goes in full.
#[test]
fn have_binary_with_the_releases_sequence_gets_the_envelope_without_payload() {
    let (mut w, agent) = installed_world();
    let extra = w.release("extra", 2, &[]);
    let mut trust = teep_cose::TrustStore::new();
    trust.add_key(w.tc_signer.public_key().clone());
    let mut sent = |min, have| {
        w.now += 60;
        let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
        let resp = QueryResponse {
            requested_tc_list: Some(vec![RequestedTcInfo {
                component_id: manifest_id("extra"),
                tc_manifest_sequence_number: min,
                have_binary: have,
            }]),
            ..agent.response_with(&qr, None)
        };
        let reply = w.post(&agent.sign(Message::QueryResponse(resp))).unwrap();
        let mut list = update(agent.read(&reply.reply.unwrap()))
            .manifest_list
            .unwrap();
        assert_eq!(list.len(), 1);
        list.remove(0)
    };
    let bare = sent(Some(2), Some(true));
    let envelope = teep_suit::Envelope::decode(&bare).unwrap();
    assert!(envelope.integrated.is_empty(), "{:?}", envelope.integrated);
    let full = teep_suit::Envelope::decode(&extra.envelope).unwrap();
    assert_eq!(full.integrated("#tc"), Some(&b"extra v2"[..]));
    assert_eq!(envelope.manifest_bstr, full.manifest_bstr);
    let anchors = teep_suit::verify::Anchors {
        signers: &trust,
        mac_keys: &[],
        now: None,
    };
    teep_suit::verify::authenticate(&bare, provider(), &anchors).unwrap();
    assert_eq!(sent(Some(2), None), extra.envelope.to_vec());
    assert_eq!(sent(Some(2), Some(false)), extra.envelope.to_vec());
    assert_eq!(sent(Some(1), Some(true)), extra.envelope.to_vec());
}

#[test]
fn a_requested_tc_named_by_its_ta_component_id_is_sent_when_permitted() {
    let (mut w, agent) = installed_world();
    // `lib` is in the device's view only as `extra`'s dependency: not requestable itself.
    let lib = w.release("lib", 1, &[]);
    let extra = w.release("extra", 1, &["lib"]);
    w.release("secret", 1, &[]);
    let ta = |name: &str| {
        ComponentId(vec![
            b"TEEP-Device".to_vec(),
            name.as_bytes().to_vec(),
            b"ta".to_vec(),
        ])
    };
    let ask = |name| RequestedTcInfo {
        component_id: ta(name),
        tc_manifest_sequence_number: None,
        have_binary: None,
    };
    // First the attacker's asks: TAs whose manifests policy does not let it request (one
    // the TAM would send only as a dependency), and one no release installs. Nothing is
    // sent and nothing recorded.
    let before = w.device(&agent).unwrap();
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let resp = QueryResponse {
        requested_tc_list: Some(vec![ask("secret"), ask("lib"), ask("nowhere")]),
        ..agent.response_with(&qr, None)
    };
    let done = w.post(&agent.sign(Message::QueryResponse(resp))).unwrap();
    assert_eq!(done.reply, None, "{:?}", done.event);
    assert_eq!(w.device(&agent).unwrap().installed, before.installed);
    // Then the requestable TC by its TA's component ID: its release is sent, and recorded
    // installed on the device's Success.
    w.now += 60;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let resp = QueryResponse {
        requested_tc_list: Some(vec![ask("extra")]),
        ..agent.response_with(&qr, None)
    };
    let u = update(
        agent.read(
            &w.post(&agent.sign(Message::QueryResponse(resp)))
                .unwrap()
                .reply
                .unwrap(),
        ),
    );
    assert_eq!(
        u.manifest_list,
        Some(vec![lib.envelope.to_vec(), extra.envelope.to_vec()])
    );
    w.post(&agent.success(u.token.as_ref().unwrap(), None))
        .unwrap();
    assert_eq!(
        installed_ids(&w, &agent),
        vec![manifest_id("app"), manifest_id("lib"), manifest_id("extra")]
    );
}

#[test]
fn query_response_missing_tc_list_gets_update_with_err_code() {
    let (mut w, agent) = installed_world();
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let resp = QueryResponse {
        tc_list: None,
        ..agent.response_with(&qr, None)
    };
    let done = w.post(&agent.sign(Message::QueryResponse(resp))).unwrap();
    let u = update(agent.read(&done.reply.unwrap()));
    assert_eq!(u.err_code, Some(ErrCode::PermanentError));
    assert_eq!(u.err_msg.as_deref(), Some("tc-list missing"));
    assert_eq!(u.manifest_list, None);
}

#[test]
fn unsupported_cipher_suites_retries_with_what_the_agent_listed() {
    let mut w = World::new();
    let agent = w.agent(Curve::Ed25519);
    let qr = agent.read_query(&w.connect());
    let err = ErrorMessage {
        token: qr.token.clone(),
        supported_teep_cipher_suites: Some(vec![CipherSuite::SIGN1_ED25519]),
        ..ErrorMessage::new(ErrCode::UnsupportedCipherSuites)
    };
    let done = w.post(&agent.error(err)).unwrap();
    assert_eq!(done.event, Event::QueryRequestSent);
    let bytes = done.reply.unwrap();
    let cose = decode_unverified_cose(&bytes).unwrap();
    assert_eq!(cose.signatures.len(), 1);
    assert_eq!(cose.signatures[0].alg, Some(-19));
    let retry = agent.read_query(&bytes);
    assert_eq!(
        retry.supported_teep_cipher_suites,
        vec![CipherSuite::SIGN1_ED25519]
    );
    assert_eq!(retry.challenge, qr.challenge);
    assert!(w.session(qr.token.as_ref().unwrap()).consumed);
}

#[test]
fn negotiation_with_nothing_in_common_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let err = ErrorMessage {
        token: qr.token.clone(),
        versions: Some(vec![7]),
        ..ErrorMessage::new(ErrCode::UnsupportedMsgVersion)
    };
    assert!(matches!(
        w.post_dropped(&agent.error(err)),
        Dropped::NegotiationFailed
    ));
}

#[test]
fn passport_ear_accepted_when_it_verifies() {
    let (mut w, agent, _) = app_world();
    let qr = agent.read_query(&w.connect());
    let token = qr.token.clone().unwrap();
    let ear = passport_ear(&w, &agent, &token);
    let resp = agent.response_with(&qr, Some((ATTESTATION_RESULT_FORMAT, ear)));
    let done = w.post(&agent.sign(Message::QueryResponse(resp))).unwrap();
    assert!(matches!(done.event, Event::UpdateSent { manifests: 1, .. }));
    assert_eq!(w.device(&agent).unwrap().attested_at, Some(NOW));
}

/// An EAR from the TAM's trusted Verifier for Evidence whose nonce is `nonce`.
fn passport_ear(w: &World, agent: &Agent, nonce: &[u8]) -> Vec<u8> {
    let sv = SigningVerifier::new(
        Verifier::new(verifier_policy(w.attestation.public_key()), verifier_id()),
        signer(&PrivateKey::generate(Curve::P256).unwrap()),
        provider(),
    );
    let outcome = sv
        .appraise(&agent.evidence(nonce), NOW, &mut Expect(nonce.to_vec()))
        .outcome;
    sign_ear(&outcome.ear, w.verifier_signer.as_ref()).unwrap()
}

// ---- attacks: each is dropped and leaves the store as it was ----

#[test]
fn expired_token_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let resp = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    w.now += 4 * 3600 + 1;
    assert!(matches!(w.post_dropped(&resp), Dropped::TokenExpired));
}

#[test]
fn reused_token_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let resp = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    w.post(&resp).unwrap();
    assert!(matches!(w.post_dropped(&resp), Dropped::TokenReused));
}

#[test]
fn token_from_another_session_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let a = agent.read_query(&w.connect());
    let b = agent.read_query(&w.connect());
    // A's token with Evidence for B's challenge: the token carries A's challenge.
    let mixed = agent.attested_response(&a, b.challenge.as_deref().unwrap());
    assert!(matches!(
        w.post_dropped(&mixed),
        Dropped::Attestation(ResultError::NonceMismatch)
    ));
    // A QueryRequest's token in a Success: the token's state takes only a QueryResponse.
    assert!(matches!(
        w.post_dropped(&agent.success(a.token.as_ref().unwrap(), None)),
        Dropped::WrongState {
            expected: "ExpectQueryResponse",
            got: "success"
        }
    ));
}

#[test]
fn unknown_token_and_no_token_are_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    assert!(matches!(
        w.post_dropped(&agent.success(&[9; 16], None)),
        Dropped::UnknownToken
    ));
    let no_token = agent.sign(Message::QueryResponse(QueryResponse::default()));
    assert!(matches!(w.post_dropped(&no_token), Dropped::NoToken));
    assert!(matches!(w.post_dropped(b"\xa0"), Dropped::Malformed(_)));
}

#[test]
fn unknown_agent_without_attestation_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    assert!(matches!(
        w.post_dropped(&agent.plain_response(&qr)),
        Dropped::UnknownAgent
    ));
}

#[test]
fn evidence_with_a_wrong_nonce_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let resp = agent.attested_response(&qr, &[0x55; 32]);
    assert!(matches!(
        w.post_dropped(&resp),
        Dropped::Attestation(ResultError::NonceMismatch)
    ));
}

#[test]
fn replayed_ear_is_dropped() {
    let mut w = World::new();
    w.class_policy(&[], &[]);
    let agent = w.agent(Curve::P256);
    let first = agent.read_query(&w.connect());
    let ear = passport_ear(&w, &agent, first.token.as_ref().unwrap());
    let resp = agent.response_with(&first, Some((ATTESTATION_RESULT_FORMAT, ear.clone())));
    w.post(&agent.sign(Message::QueryResponse(resp))).unwrap();
    // The same EAR in a later session: its nonce is the old token.
    let second = agent.read_query(&w.connect());
    let replay = agent.response_with(&second, Some((ATTESTATION_RESULT_FORMAT, ear)));
    assert!(matches!(
        w.post_dropped(&agent.sign(Message::QueryResponse(replay))),
        Dropped::Attestation(ResultError::NonceMismatch)
    ));
}

#[test]
fn query_response_signed_by_another_key_than_cnf_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let thief = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    // Good Evidence binding `agent`'s key, in a QueryResponse the thief signed.
    let resp = agent.response_with(
        &qr,
        Some((
            teep_attest::EVIDENCE_FORMAT,
            agent.evidence(qr.challenge.as_deref().unwrap()),
        )),
    );
    let forged = thief.sign(Message::QueryResponse(resp));
    assert!(matches!(w.post_dropped(&forged), Dropped::BadSignature(_)));
}

#[test]
fn ear_from_an_untrusted_verifier_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let token = qr.token.clone().unwrap();
    let real = passport_ear(&w, &agent, &token);
    // Same claims, signed by a key the TAM does not trust.
    let payload = decode_unverified_cose(&real).unwrap().payload.unwrap();
    let ear = teep_attest::Ear::from_cbor(&payload).unwrap();
    let rogue = signer(&PrivateKey::generate(Curve::P256).unwrap());
    let forged = sign_ear(&ear, rogue.as_ref()).unwrap();
    let resp = agent.response_with(&qr, Some((ATTESTATION_RESULT_FORMAT, forged)));
    assert!(matches!(
        w.post_dropped(&agent.sign(Message::QueryResponse(resp))),
        Dropped::Attestation(ResultError::UntrustedVerifier)
    ));
}

#[test]
fn revoked_device_stays_out_with_good_evidence() {
    let (mut w, agent, _) = app_world();
    w.store.with(|s| {
        s.devices.insert(
            agent.id(),
            Device {
                id: agent.id(),
                key: agent.key.public_key().to_cose_key_bytes(),
                class: Some(CLASS.into()),
                revoked: true,
                suite: None,
                attested_at: None,
                failed: Vec::new(),
                attestation_exempt: false,
                installed: Vec::new(),
            },
        )
    });
    let qr = agent.read_query(&w.connect());
    let resp = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    assert!(matches!(w.post_dropped(&resp), Dropped::Revoked));
}

#[test]
fn success_from_another_device_is_dropped() {
    let (mut w, agent, _) = app_world();
    let other = w.agent(Curve::P256);
    let token = w.first_update_token(&agent);
    // The other device is known too (attested in its own session): its valid signature
    // still does not answer an Update sent to `agent`.
    w.first_contact(&other);
    assert!(w.device(&other).is_some());
    assert!(matches!(
        w.post_dropped(&other.success(&token, None)),
        Dropped::WrongDevice(_)
    ));
}

#[test]
fn suit_report_for_a_manifest_never_sent_is_dropped() {
    let (mut w, agent, _) = app_world();
    let unsent = w.release("other", 1, &[]);
    let token = w.first_update_token(&agent);
    let bad = agent.success(&token, Some(vec![report(unsent.digest, &token, true)]));
    assert!(matches!(
        w.post_dropped(&bad),
        Dropped::ReportForUnsentManifest
    ));
}

/// A manifest the device refused (e.g. its TC signer is not trusted there) is reported
/// under the digest the TAM sent it with: the Error and its failed report are kept and
/// nothing is installed. A report under any other digest (the all-zero one an Agent sent
/// for an unauthenticated manifest) still claims nothing: the Error is dropped whole.
#[test]
fn failed_report_of_a_sent_manifest_is_kept_and_another_digest_dropped() {
    let (mut w, agent, app) = app_world();
    let token = w.first_update_token(&agent);
    let error = |digest: [u8; 32]| ErrorMessage {
        token: Some(token.clone()),
        suit_reports: Some(vec![report(digest, &token, false)]),
        ..ErrorMessage::new(ErrCode::ManifestProcessingFailed)
    };
    let before = w.snapshot();
    assert!(matches!(
        w.post_dropped(&agent.error(error([0; 32]))),
        Dropped::ReportForUnsentManifest
    ));
    assert_eq!(w.snapshot(), before);
    w.post(&agent.error(error(app.digest))).unwrap();
    let kept = w.snapshot().reports.last().cloned().unwrap();
    assert_eq!((kept.manifest_digest, kept.success), (app.digest, false));
    assert!(w.device(&agent).unwrap().installed.is_empty());
}

#[test]
fn suit_report_with_another_nonce_is_dropped() {
    let (mut w, agent, app) = app_world();
    let token = w.first_update_token(&agent);
    let bad = agent.success(&token, Some(vec![report(app.digest, &[0xee; 16], true)]));
    assert!(matches!(w.post_dropped(&bad), Dropped::ReportNonce));
}

#[test]
fn manifest_processing_error_records_only_what_succeeded() {
    let (w, agent, _, done) = failing_app(ErrCode::ManifestProcessingFailed);
    assert_eq!(
        done.event,
        Event::AgentError {
            code: ErrCode::ManifestProcessingFailed
        }
    );
    assert_eq!(installed_ids(&w, &agent), vec![manifest_id("lib")]);
}

/// The manifest IDs the TAM records as installed on `agent`'s device.
fn installed_ids(w: &World, agent: &Agent) -> Vec<ComponentId> {
    let device = w.device(agent).unwrap();
    device
        .installed
        .into_iter()
        .map(|i| i.manifest_id)
        .collect()
}

/// The known device's next exchange: a QueryRequest, and its QueryResponse (tc-list as the
/// Agent holds, and `asking` for these TCs) answered.
fn next_contact(w: &mut World, agent: &Agent, asking: &[&str]) -> Handled {
    w.now += 10;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let requested = asking.iter().map(|name| RequestedTcInfo {
        component_id: manifest_id(name),
        tc_manifest_sequence_number: None,
        have_binary: None,
    });
    let response = QueryResponse {
        requested_tc_list: (!asking.is_empty()).then(|| requested.collect()),
        ..agent.response_with(&qr, None)
    };
    w.post(&agent.sign(Message::QueryResponse(response)))
        .unwrap()
}

/// An Error answering an Update for app v1 (over lib v1): lib installed, app failed with
/// `code`; the Agent then holds lib. The Error's outcome last.
fn failing_app(code: ErrCode) -> (World, Agent, TcRelease, Handled) {
    let mut w = World::new();
    let lib = w.release("lib", 1, &[]);
    let app = w.release("app", 1, &["lib"]);
    w.class_policy(&["app"], &[]);
    let agent = w.agent(Curve::P256);
    let token = w.first_update_token(&agent);
    let err = ErrorMessage {
        token: Some(token.clone()),
        suit_reports: Some(vec![
            report(lib.digest, &token, true),
            report(app.digest, &token, false),
        ]),
        ..ErrorMessage::new(code)
    };
    let done = w.post(&agent.error(err)).unwrap();
    let digest = teep_suit::Digest::sha256(lib.digest);
    agent
        .held
        .borrow_mut()
        .push(SystemPropertyClaims::new(manifest_id("lib"), &digest, None));
    (w, agent, app, done)
}

/// The Agent's Error for the Update `sent` (for `app`): its report says `app` failed.
fn fail(w: &mut World, agent: &Agent, sent: Handled, app: &TcRelease) {
    let u = update(agent.read(&sent.reply.unwrap()));
    assert_eq!(u.manifest_list, Some(vec![app.envelope.to_vec()]));
    let token = u.token.unwrap();
    let err = ErrorMessage {
        token: Some(token.clone()),
        suit_reports: Some(vec![report(app.digest, &token, false)]),
        ..ErrorMessage::new(ErrCode::ManifestProcessingFailed)
    };
    w.post(&agent.error(err)).unwrap();
}

/// A manifest the Agent failed to process (ERR_MANIFEST_PROCESSING_FAILED, its report
/// failed) goes again at the next contact (the cause may be gone: an anchor added, a
/// payload fixed), but after a second failure in a row, a minute or more after the first,
/// it waits, a minute and then twice as long each time, instead of travelling with every
/// contact. It goes at once when the
/// Agent asks for it, and a new release of it (another digest) goes as usual; installed,
/// its failures are forgotten.
#[test]
fn a_manifest_that_keeps_failing_waits_unless_asked_for_or_released_anew() {
    let (mut w, agent, app, _) = failing_app(ErrCode::ManifestProcessingFailed);
    let first = Failed {
        manifest_id: manifest_id("app"),
        digest: app.digest,
        failures: 1,
        at: w.now,
    };
    assert_eq!(w.device(&agent).unwrap().failed, vec![first.clone()]);
    // Failing again within FAILED_BACKOFF (the retries of one policy check) counts once.
    let sent = next_contact(&mut w, &agent, &[]);
    fail(&mut w, &agent, sent, &app);
    assert_eq!(w.device(&agent).unwrap().failed, vec![first]);
    w.now += FAILED_BACKOFF;
    let sent = next_contact(&mut w, &agent, &[]);
    fail(&mut w, &agent, sent, &app);
    let failed = w.device(&agent).unwrap().failed;
    assert_eq!(
        (failed.len(), failed[0].failures, failed[0].at),
        (1, 2, w.now)
    );
    assert_eq!(failed[0].held_until(), w.now + FAILED_BACKOFF);
    // Within the wait: nothing to send.
    assert_eq!(next_contact(&mut w, &agent, &[]).event, Event::UpToDate);
    // Asked for, it goes (policy lets the device ask for what it must install).
    let asked = next_contact(&mut w, &agent, &["app"]);
    let u = update(agent.read(&asked.reply.unwrap()));
    assert_eq!(u.manifest_list, Some(vec![app.envelope.to_vec()]));
    // That Update is left unanswered. After the wait it goes again; a third failure
    // doubles the wait.
    w.now += FAILED_BACKOFF;
    let sent = next_contact(&mut w, &agent, &[]);
    fail(&mut w, &agent, sent, &app);
    let failed = w.device(&agent).unwrap().failed;
    assert_eq!(failed[0].held_until(), w.now + 2 * FAILED_BACKOFF);
    assert_eq!(next_contact(&mut w, &agent, &[]).event, Event::UpToDate);
    // A new release goes without waiting and, installed, clears the failures.
    let app2 = w.release("app", 2, &[]);
    let sent = next_contact(&mut w, &agent, &[]);
    let u = update(agent.read(&sent.reply.unwrap()));
    assert_eq!(u.manifest_list, Some(vec![app2.envelope.to_vec()]));
    let token = u.token.unwrap();
    let reports = vec![report(app2.digest, &token, true)];
    w.post(&agent.success(&token, Some(reports))).unwrap();
    assert!(w.device(&agent).unwrap().failed.is_empty());
}

/// The wait grows to a day at most, however often the release fails.
#[test]
fn the_wait_of_a_failing_release_is_at_most_a_day() {
    let failed = |failures| Failed {
        manifest_id: manifest_id("app"),
        digest: [0; 32],
        failures,
        at: 1000,
    };
    assert_eq!(failed(1).held_until(), 1000);
    assert_eq!(failed(3).held_until(), 1000 + 2 * FAILED_BACKOFF);
    assert_eq!(failed(u32::MAX).held_until(), 1000 + FAILED_BACKOFF_MAX);
}

/// A temporary error holds nothing back: the next contact sends the manifest again.
#[test]
fn a_temporary_error_holds_nothing_back() {
    let (mut w, agent, app, _) = failing_app(ErrCode::TemporaryError);
    assert!(w.device(&agent).unwrap().failed.is_empty());
    let sent = next_contact(&mut w, &agent, &[]);
    let u = update(agent.read(&sent.reply.unwrap()));
    assert_eq!(u.manifest_list, Some(vec![app.envelope.to_vec()]));
}

/// The failures kept per device are bounded: the oldest go first.
#[test]
fn failed_releases_are_bounded_per_device() {
    let (mut w, agent, _, _) = failing_app(ErrCode::ManifestProcessingFailed);
    for sequence in 2..=(FAILED_PER_DEVICE as u64 + 3) {
        let app = w.release("app", sequence, &[]);
        let sent = next_contact(&mut w, &agent, &[]);
        fail(&mut w, &agent, sent, &app);
        let failed = w.device(&agent).unwrap().failed;
        assert!(failed.len() <= FAILED_PER_DEVICE);
        assert_eq!(failed.last().unwrap().digest, app.digest);
    }
}

/// The Agent applied an Update replacing app v1 by v2, its Success was lost, and it
/// refused a replayed copy: that Error (no report) is what the TAM gets. The record must not
/// keep claiming v1 (found by the simulation, seed 377): whether and which version the
/// device holds is unknown, so the record claims nothing of app.
#[test]
fn an_error_without_reports_drops_the_sent_manifests_from_the_record() {
    let (mut w, agent) = installed_world();
    w.release("app", 2, &[]);
    w.now += 60;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let u = update(agent.read(&w.post(&agent.plain_response(&qr)).unwrap().reply.unwrap()));
    let refused = agent.error(ErrorMessage {
        token: u.token.clone(),
        ..ErrorMessage::new(ErrCode::PermanentError)
    });
    let done = w.post(&refused).unwrap();
    assert_eq!(
        done.event,
        Event::AgentError {
            code: ErrCode::PermanentError
        }
    );
    assert!(w.device(&agent).unwrap().installed.is_empty());
    // A replay of that Error changes nothing more.
    let before = w.snapshot();
    w.post_dropped(&refused);
    assert_eq!(w.snapshot(), before);
    // The next session re-sends v2 (a re-delivery if the device holds it); the device's
    // tc-list (still app v1 here) is recorded meanwhile.
    w.now += 60;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let u = update(agent.read(&w.post(&agent.plain_response(&qr)).unwrap().reply.unwrap()));
    let SessionState::ExpectSuccess(state) = w.session(u.token.as_ref().unwrap()).state else {
        panic!()
    };
    assert_eq!(state.sent_manifests[0].sequence, 2);
}

/// The simulated clock stands still: every session opens in the same second, and each
/// one past the bound (3) retires exactly the oldest, whatever the random tokens' order.
#[test]
fn same_second_sessions_retire_oldest_first() {
    let (mut w, agent) = installed_world();
    let mut opened = Vec::new();
    for _ in 0..12 {
        let reply = w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap();
        opened.push(agent.read_query(&reply).token.unwrap());
        let held = w.snapshot().sessions;
        let newest = &opened[opened.len().saturating_sub(3)..];
        assert!(
            newest.iter().all(|t| held.contains_key(t)),
            "a new token retired"
        );
        let kept = opened.iter().filter(|t| held.contains_key(*t)).count();
        assert_eq!(kept, newest.len(), "an old token kept");
    }
}

#[test]
fn outstanding_tokens_are_bounded_per_device() {
    let (mut w, agent) = installed_world();
    let tokens: Vec<_> = (0..4)
        .map(|_| {
            agent
                .read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap())
                .token
                .unwrap()
        })
        .collect();
    let held = w.snapshot().sessions;
    assert!(
        !held.contains_key(&tokens[0]),
        "the oldest token should be retired"
    );
    assert!(tokens[1..].iter().all(|t| held.contains_key(t)));
    assert!(matches!(
        w.post_dropped(&agent.plain_response(&teep_proto::QueryRequest {
            token: Some(tokens[0].clone()),
            ..Default::default()
        })),
        Dropped::UnknownToken
    ));
}

#[test]
fn two_replicas_on_one_store_send_exactly_one_update() {
    // A known device (the in-process Verifier would itself refuse a second appraisal of
    // the same Evidence, so this exercises the store's compare-and-set alone).
    let (mut w, agent) = installed_world();
    w.release("app", 2, &[]);
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let resp = agent.plain_response(&qr);
    // Two replicas (same keys, same store) load and decide before either commits.
    let (one, two) = (w.replica(), w.replica());
    let a = w.decide_with(&one, &resp, None);
    let b = w.decide_with(&two, &resp, None);
    assert!(a.result.is_ok() && b.result.is_ok());
    let a = block_on(driver::commit(&w.store, a));
    let b = block_on(driver::commit(&w.store, b));
    let sent = a.unwrap().reply.unwrap();
    assert!(matches!(b, Err(Dropped::Conflict)));
    let waiting: Vec<_> = w
        .snapshot()
        .sessions
        .into_values()
        .filter(|s| !s.consumed && matches!(s.state, SessionState::ExpectSuccess(_)))
        .map(|s| s.token)
        .collect();
    assert_eq!(waiting, vec![update(agent.read(&sent)).token.unwrap()]);
}

#[test]
fn a_decision_on_a_record_changed_since_is_not_committed() {
    // Two sessions opened by empty POSTs (the TAM cannot tell whose, so answering one does
    // not retire the other). Replica one decides on the first QueryResponse (app v1 held)
    // but is slow to commit; meanwhile the second session unlinks app.
    let (mut w, agent) = installed_world();
    w.class_policy(&[], &[]);
    let first = agent.read_query(&w.connect());
    let second = agent.read_query(&w.connect());
    let slow = w.replica();
    let stale = w.decide_with(&slow, &agent.plain_response(&first), None);
    assert!(stale.result.is_ok());
    let u = update(
        agent.read(
            &w.post(&agent.plain_response(&second))
                .unwrap()
                .reply
                .unwrap(),
        ),
    );
    assert_eq!(u.unneeded_manifest_list, Some(vec![manifest_id("app")]));
    w.post(&agent.success(&u.token.unwrap(), None)).unwrap();
    assert!(w.device(&agent).unwrap().installed.is_empty());
    // The stale decision would record app v1 again: its commit fails, nothing changes.
    let before = w.snapshot();
    let late = block_on(driver::commit(&w.store, stale));
    assert!(matches!(late, Err(Dropped::Conflict)), "{late:?}");
    assert_eq!(w.snapshot(), before);
    assert!(w.device(&agent).unwrap().installed.is_empty());
}

/// Hand-written payloads an attacker would sign with its own key: the codec's limits
/// stop them before any session is looked up.
#[test]
fn hand_written_malformed_messages_are_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let token = qr.token.unwrap();
    let signed = |payload: &[u8]| {
        teep_cose::sign1(
            agent.signer.as_ref(),
            payload,
            &teep_cose::SignOptions::default(),
        )
        .unwrap()
    };
    // [2, {19: h'0102'}]: a token shorter than 8 bytes.
    let short = signed(&[0x82, 0x02, 0xa1, 0x13, 0x42, 0x01, 0x02]);
    assert!(matches!(w.post_dropped(&short), Dropped::Malformed(_)));
    // [2, {19: token, 19: token}]: the token twice.
    let mut dup = vec![0x82, 0x02, 0xa2, 0x13, 0x50];
    dup.extend(&token);
    dup.extend([0x13, 0x50]);
    dup.extend(&token);
    assert!(matches!(
        w.post_dropped(&signed(&dup)),
        Dropped::Malformed(_)
    ));
    // [2, {19: token}] followed by a stray byte.
    let mut trailing = vec![0x82, 0x02, 0xa1, 0x13, 0x50];
    trailing.extend(&token);
    trailing.push(0x00);
    assert!(matches!(
        w.post_dropped(&signed(&trailing)),
        Dropped::Malformed(_)
    ));
    // The same message without the stray byte is well-formed: it reaches the session
    // (and is dropped there, since this Agent is unknown and did not attest).
    trailing.pop();
    assert!(matches!(
        w.post_dropped(&signed(&trailing)),
        Dropped::UnknownAgent
    ));
}

#[test]
fn expired_sessions_are_purged_when_a_new_one_opens() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let old = agent.read_query(&w.connect()).token.unwrap();
    w.now += 4 * 3600 + 1;
    let new = agent.read_query(&w.connect()).token.unwrap();
    let held = w.snapshot().sessions;
    assert!(!held.contains_key(&old));
    assert!(held.contains_key(&new));
}

#[test]
fn error_from_a_known_device_retires_the_token() {
    let (mut w, agent) = installed_world();
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let err = ErrorMessage {
        token: qr.token.clone(),
        ..ErrorMessage::new(ErrCode::TemporaryError)
    };
    let done = w.post(&agent.error(err)).unwrap();
    assert_eq!(
        done.event,
        Event::AgentError {
            code: ErrCode::TemporaryError
        }
    );
    assert_eq!(done.reply, None);
    assert!(w.session(qr.token.as_ref().unwrap()).consumed);
    // Another key cannot do the same for this device's session.
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let thief = w.agent(Curve::P256);
    let forged = thief.error(ErrorMessage {
        token: qr.token.clone(),
        ..ErrorMessage::new(ErrCode::TemporaryError)
    });
    assert!(matches!(w.post_dropped(&forged), Dropped::WrongDevice(_)));
}

#[test]
fn another_device_attesting_in_a_known_devices_session_is_dropped() {
    let (mut w, agent) = installed_world();
    w.now += 3601; // stale: the session asks for attestation
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let other = w.agent(Curve::P256);
    let resp = other.attested_response(&qr, qr.challenge.as_deref().unwrap());
    // The failure is the known device's appraisal: recorded for it, nothing else changes.
    let (why, outcome) = w.post_dropped_recording(&resp, agent.id());
    assert!(matches!(why, Dropped::NotSessionDevice));
    assert_eq!(outcome.verdict, AttestationVerdict::Rejected);
}

#[test]
fn appraisals_are_recorded_per_known_device_failures_included() {
    let (mut w, agent) = installed_world();
    // The first contact's appraisal.
    let first = w.snapshot().outcomes;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        (first[0].device, first[0].verdict, first[0].detail.as_str()),
        (
            agent.id(),
            AttestationVerdict::Affirming,
            "EAR status affirming"
        )
    );
    // Stale: the next session asks for Evidence, which carries another nonce (an attacker
    // replaying old Evidence, or a device with a broken clock): dropped, and the known
    // device's record shows the failure, newest last.
    w.now += 3601;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let resp = agent.attested_response(&qr, &[0x55; 32]);
    let (why, outcome) = w.post_dropped_recording(&resp, agent.id());
    assert!(matches!(
        why,
        Dropped::Attestation(ResultError::NonceMismatch)
    ));
    assert_eq!(outcome.verdict, AttestationVerdict::Rejected);
    assert!(outcome.detail.contains("nonce"), "{}", outcome.detail);
    // The same device attesting well again: affirming, after the failure.
    let resp = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    w.post(&resp).unwrap();
    let verdicts: Vec<_> = w.snapshot().outcomes.iter().map(|o| o.verdict).collect();
    assert_eq!(
        verdicts,
        [
            AttestationVerdict::Affirming,
            AttestationVerdict::Rejected,
            AttestationVerdict::Affirming
        ]
    );
}

#[test]
fn a_known_devices_failed_appraisal_in_an_anonymous_session_is_recorded_for_it() {
    // Over HTTP a session opens with an empty POST: the engine learns the device from the
    // key that signed the QueryResponse (the Evidence's `cnf`, checked before appraisal).
    let (mut w, agent) = installed_world();
    w.now += 60;
    // The device's TEE now signs Evidence with a key the Verifier does not endorse (a
    // replaced TEE, a cloned identity): the EAR binds no key, the message is dropped.
    let rogue = Agent {
        attestation: signer(&PrivateKey::generate(Curve::P256).unwrap()),
        ..agent
    };
    let qr = rogue.read_query(&w.connect());
    let resp = rogue.attested_response(&qr, qr.challenge.as_deref().unwrap());
    let (why, outcome) = w.post_dropped_recording(&resp, rogue.id());
    assert!(matches!(why, Dropped::NoCnfKey), "{why:?}");
    assert_eq!(outcome.verdict, AttestationVerdict::Rejected);
    // A stranger signing with its own key gets nothing recorded under the known device:
    // the outcome goes to the key that signed, which the TAM does not know.
    let stranger = w.agent(Curve::P256);
    let qr = stranger.read_query(&w.connect());
    w.post_dropped(&stranger.attested_response(&qr, &[0x55; 32]));
}

#[test]
fn a_strangers_failed_first_contact_records_no_outcome() {
    // Anyone can make Evidence that fails: a device the TAM does not know gets nothing
    // written (`post_dropped` asserts the whole store unchanged), whatever it sends.
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    w.post_dropped(&agent.attested_response(&qr, &[0x55; 32]));
    let unendorsed = Agent {
        attestation: signer(&PrivateKey::generate(Curve::P256).unwrap()),
        ..w.agent(Curve::P256)
    };
    let qr = unendorsed.read_query(&w.connect());
    let resp = unendorsed.attested_response(&qr, qr.challenge.as_deref().unwrap());
    w.post_dropped(&resp);
    assert!(w.snapshot().outcomes.is_empty());
}

#[test]
fn a_flood_of_failed_appraisals_keeps_only_the_latest_per_device() {
    let (mut w, agent) = installed_world();
    w.now += 3601;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    // The same session's token, replayed with bad Evidence again and again (a dropped
    // message consumes nothing): the device keeps OUTCOMES_PER_DEVICE outcomes.
    let resp = agent.attested_response(&qr, &[0x55; 32]);
    let before = w.snapshot();
    for _ in 0..OUTCOMES_PER_DEVICE + 20 {
        w.post(&resp).unwrap_err();
    }
    let mut after = w.snapshot();
    let outcomes = std::mem::take(&mut after.outcomes);
    assert_eq!(
        after,
        MemoryState {
            outcomes: Vec::new(),
            ..before
        },
        "the flood changed more than the outcomes"
    );
    assert_eq!(outcomes.len(), OUTCOMES_PER_DEVICE);
    assert!(
        outcomes
            .iter()
            .all(|o| o.verdict == AttestationVerdict::Rejected),
        "the oldest (the affirming first contact) went first"
    );
}

#[test]
fn timestamp_only_agent_gets_a_query_request_without_challenge() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let err = ErrorMessage {
        token: qr.token.clone(),
        supported_freshness_mechanisms: Some(vec![FreshnessMechanism::TIMESTAMP]),
        ..ErrorMessage::new(ErrCode::UnsupportedFreshnessMechanisms)
    };
    let retry = agent.read_query(&w.post(&agent.error(err)).unwrap().reply.unwrap());
    assert_eq!(retry.challenge, None);
    assert_eq!(
        retry.supported_freshness_mechanisms,
        Some(vec![FreshnessMechanism::TIMESTAMP])
    );
    // Nor does the session expect one: an EAR is then checked for age, not nonce.
    let SessionState::ExpectQueryResponse(state) = w.session(retry.token.as_ref().unwrap()).state
    else {
        panic!()
    };
    assert_eq!(state.challenge, None);
}

#[test]
fn a_session_hops_between_replicas() {
    let (mut w, agent, app) = app_world();
    let (one, two, three) = (w.replica(), w.replica(), w.replica());
    let qr = agent.read_query(&w.post_via(&one, &[]).unwrap().reply.unwrap());
    let resp = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    let u = update(agent.read(&w.post_via(&two, &resp).unwrap().reply.unwrap()));
    let token = u.token.unwrap();
    let reports = vec![report(app.digest, &token, true)];
    let done = w
        .post_via(&three, &agent.success(&token, Some(reports)))
        .unwrap();
    assert!(matches!(done.event, Event::Installed { manifests: 1, .. }));
    assert_eq!(w.device(&agent).unwrap().installed[0].digest, app.digest);
}

#[test]
fn sessions_of_unknown_devices_are_bounded_too() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let tokens: Vec<_> = (0..12)
        .map(|_| agent.read_query(&w.connect()).token.unwrap())
        .collect();
    let held = w.snapshot().sessions;
    // The bound is 8: each connect past it retires the oldest, so the newest 8 stay.
    let newest: Vec<_> = tokens[4..].to_vec();
    let mut kept: Vec<_> = held.keys().cloned().collect();
    kept.sort();
    let mut expected = newest;
    expected.sort();
    assert_eq!(kept, expected, "exactly the newest 8 tokens are held");
}

#[test]
fn query_response_with_a_report_for_another_nonce_gets_update_with_err_code() {
    let (mut w, agent) = installed_world();
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let resp = QueryResponse {
        suit_reports: Some(vec![report([1; 32], &[0xee; 16], true)]),
        ..agent.response_with(&qr, None)
    };
    let u = update(
        agent.read(
            &w.post(&agent.sign(Message::QueryResponse(resp)))
                .unwrap()
                .reply
                .unwrap(),
        ),
    );
    assert_eq!(u.err_code, Some(ErrCode::PermanentError));
    assert_eq!(u.manifest_list, None);
    // The same report with the token as nonce is fine.
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let resp = QueryResponse {
        suit_reports: Some(vec![report([1; 32], qr.token.as_ref().unwrap(), true)]),
        ..agent.response_with(&qr, None)
    };
    assert_eq!(
        w.post(&agent.sign(Message::QueryResponse(resp)))
            .unwrap()
            .event,
        Event::UpToDate
    );
}

#[test]
fn stale_device_without_evidence_gets_attestation_required() {
    let (mut w, agent) = installed_world();
    w.now += 3601;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let done = w.post(&agent.plain_response(&qr)).unwrap();
    let u = update(agent.read(&done.reply.unwrap()));
    assert_eq!(u.err_code, Some(ErrCode::AttestationRequired));
    assert_eq!(u.manifest_list, None);
}

/// `installed_world` whose policy then drops `app`: the Update unlinking it, and the digest
/// of the installed `app`.
fn unlinking_update() -> (World, Agent, Vec<u8>, [u8; 32]) {
    let (mut w, agent) = installed_world();
    let digest = w.device(&agent).unwrap().installed[0].digest;
    w.class_policy(&[], &[]);
    w.now += 60;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let u = update(agent.read(&w.post(&agent.plain_response(&qr)).unwrap().reply.unwrap()));
    assert_eq!(u.unneeded_manifest_list, Some(vec![manifest_id("app")]));
    (w, agent, u.token.unwrap(), digest)
}

#[test]
fn report_about_an_unlinked_manifest_is_recorded_and_removes_it() {
    let (mut w, agent, token, digest) = unlinking_update();
    let err = ErrorMessage {
        token: Some(token.clone()),
        suit_reports: Some(vec![report(digest, &token, true)]),
        ..ErrorMessage::new(ErrCode::ManifestProcessingFailed)
    };
    w.post(&agent.error(err)).unwrap();
    let s = w.snapshot();
    assert_eq!(s.reports.last().unwrap().manifest_digest, digest);
    // An Error: only what its reports say was done happened, and this one says unlinked.
    assert!(w.device(&agent).unwrap().installed.is_empty());
}

#[test]
fn failed_unlink_report_keeps_the_manifest_installed() {
    let (mut w, agent, token, digest) = unlinking_update();
    let err = ErrorMessage {
        token: Some(token.clone()),
        suit_reports: Some(vec![report(digest, &token, false)]),
        ..ErrorMessage::new(ErrCode::ManifestProcessingFailed)
    };
    w.post(&agent.error(err)).unwrap();
    assert!(!w.snapshot().reports.last().unwrap().success);
    let installed = w.device(&agent).unwrap().installed;
    assert_eq!(installed[0].manifest_id, manifest_id("app"));
}

/// An Error without any report (the Agent refusing a replayed copy of this Update, whose
/// first copy it applied and whose Success was lost) leaves the unlink's outcome unknown:
/// the record stops claiming the manifest, and the next tc-list restores it if still there.
#[test]
fn error_without_reports_drops_the_unlinked_manifest_from_the_record() {
    let (mut w, agent, token, _) = unlinking_update();
    let err = ErrorMessage {
        token: Some(token.clone()),
        ..ErrorMessage::new(ErrCode::PermanentError)
    };
    w.post(&agent.error(err)).unwrap();
    assert!(w.device(&agent).unwrap().installed.is_empty());
    assert!(w.session(&token).consumed);
}

#[test]
fn success_with_unlink_report_is_accepted() {
    let (mut w, agent, token, digest) = unlinking_update();
    w.post(&agent.success(&token, Some(vec![report(digest, &token, true)])))
        .unwrap();
    assert!(w.device(&agent).unwrap().installed.is_empty());
    assert_eq!(w.snapshot().reports.last().unwrap().manifest_digest, digest);
}

#[test]
fn report_about_a_manifest_neither_sent_nor_unlinked_is_still_dropped() {
    let (mut w, agent, token, digest) = unlinking_update();
    let mut other = digest;
    other[0] ^= 1;
    // Hand-built report (our Report writer, raw digest): not the installed app's digest.
    let bad = agent.success(&token, Some(vec![report(other, &token, true)]));
    assert!(matches!(
        w.post_dropped(&bad),
        Dropped::ReportForUnsentManifest
    ));
}

/// Counts the Evidence a Verifier is asked to appraise.
struct CountingAppraiser<'a> {
    inner: &'a teep_attest::InProcess,
    appraisals: std::sync::atomic::AtomicUsize,
}

impl teep_attest::Appraiser for CountingAppraiser<'_> {
    type Error = <teep_attest::InProcess as teep_attest::Appraiser>::Error;

    fn challenge(
        &self,
        now: u64,
    ) -> impl Future<Output = Result<teep_attest::Challenge, Self::Error>> + Send {
        self.inner.challenge(now)
    }

    fn appraise(
        &self,
        evidence: &[u8],
        now: u64,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        self.appraisals
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.appraise(evidence, now)
    }
}

/// A Verifier whose EARs name `cnf` instead of the key the Evidence bound (re-signed with
/// the trusted Verifier key): a compromised or confused Verifier.
struct CnfSwapping<'a> {
    inner: &'a teep_attest::InProcess,
    signer: &'a dyn teep_cose::Signer,
    cnf: teep_cose::PublicKey,
}

impl teep_attest::Appraiser for CnfSwapping<'_> {
    type Error = <teep_attest::InProcess as teep_attest::Appraiser>::Error;

    fn challenge(
        &self,
        now: u64,
    ) -> impl Future<Output = Result<teep_attest::Challenge, Self::Error>> + Send {
        self.inner.challenge(now)
    }

    async fn appraise(&self, evidence: &[u8], now: u64) -> Result<Vec<u8>, Self::Error> {
        let real = self.inner.appraise(evidence, now).await?;
        let payload = decode_unverified_cose(&real).unwrap().payload.unwrap();
        let mut ear = teep_attest::Ear::from_cbor(&payload).unwrap();
        ear.cnf = Some(teep_attest::Cnf::CoseKey(self.cnf.to_cose_key_bytes()));
        Ok(sign_ear(&ear, self.signer).unwrap())
    }
}

/// The QueryResponse verified with its Evidence's key before the appraisal is verified
/// again when the EAR binds another key: an EAR about `other` (signed by the trusted
/// Verifier) for the Evidence of `agent`, whose key signed the QueryResponse, is dropped
/// with nothing recorded, as `agent`'s message does not verify with `other`'s key.
#[test]
fn an_ear_binding_another_key_than_the_evidence_gets_the_message_verified_with_that_key() {
    let (mut w, agent, _app) = app_world();
    let other = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let response = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    let before = w.snapshot();
    let World {
        store,
        verifier,
        verifier_signer,
        rng,
        now,
        tam,
        ..
    } = &mut w;
    let swapping = CnfSwapping {
        inner: verifier,
        signer: verifier_signer.as_ref(),
        cnf: other.key.public_key().clone(),
    };
    let mut cx = teep_tam::Context { now: *now, rng };
    let got = block_on(driver::drive(
        tam, store, &swapping, &response, None, &mut cx,
    ));
    assert!(matches!(got, Err(Dropped::BadSignature(_))), "{got:?}");
    assert_eq!(
        store.snapshot(),
        before,
        "a dropped message changed the store"
    );
}

/// The attacker holds a copy of a genuine QueryResponse (good Evidence) and posts it first
/// with its signature spoiled: it is dropped before the Verifier sees the Evidence (no
/// appraisal, no challenge spent, store unchanged), and the genuine one then succeeds.
#[test]
fn tampered_query_response_is_dropped_before_appraisal_and_the_genuine_one_succeeds() {
    let (mut w, agent, _app) = app_world();
    let qr = agent.read_query(&w.connect());
    let genuine = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    let mut tampered = genuine.clone();
    *tampered.last_mut().unwrap() ^= 0x01;
    let tam = w.replica();
    let before = w.snapshot();
    let World {
        store,
        verifier,
        rng,
        now,
        ..
    } = &mut w;
    let counting = CountingAppraiser {
        inner: verifier,
        appraisals: 0.into(),
    };
    let mut post = |body: &[u8]| {
        let mut cx = teep_tam::Context { now: *now, rng };
        block_on(driver::drive(&tam, store, &counting, body, None, &mut cx))
    };
    assert!(matches!(post(&tampered), Err(Dropped::BadSignature(_))));
    assert_eq!(
        store.snapshot(),
        before,
        "a dropped message changed the store"
    );
    assert_eq!(
        counting
            .appraisals
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let handled = post(&genuine).unwrap();
    assert_eq!(
        counting
            .appraisals
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert!(
        update(agent.read(&handled.reply.unwrap()))
            .manifest_list
            .is_some()
    );
    assert_ne!(w.snapshot(), before);
    assert!(w.device(&agent).unwrap().attested_at.is_some());
}

/// Evidence the Verifier appraises as not affirming (a hardware model outside the
/// policy's reference values), for `agent` and `nonce`.
fn rejected_evidence(agent: &Agent, nonce: &[u8]) -> Vec<u8> {
    let claims = teep_attest::EatClaims {
        hwmodel: Some(b"not-a-reference-model".to_vec()),
        ..agent.claims(nonce)
    };
    teep_attest::sign_evidence(&claims, agent.attestation.as_ref()).unwrap()
}

/// A QueryResponse to `qr` with [`rejected_evidence`] for its challenge.
fn rejected_response(agent: &Agent, qr: &teep_proto::QueryRequest) -> Vec<u8> {
    let evidence = rejected_evidence(agent, qr.challenge.as_deref().unwrap());
    let resp = agent.response_with(qr, Some((teep_attest::EVIDENCE_FORMAT, evidence)));
    agent.sign(Message::QueryResponse(resp))
}

fn attestation_failures(w: &World, agent: &Agent) -> usize {
    w.snapshot()
        .audit
        .iter()
        .filter(|a| a.device == Some(agent.id()) && a.event == "attestation not affirming")
        .count()
}

/// Spec §10 (QueryResponse handling 3): a TAM that cannot remedy a failed attestation
/// answers an Update with ERR_ATTESTATION_REQUIRED and installs nothing; an unknown device
/// is not recorded, the audit log says it failed.
#[test]
fn not_affirming_evidence_gets_update_with_attestation_required() {
    let (mut w, agent, _app) = app_world();
    let qr = agent.read_query(&w.connect());
    let done = w.post(&rejected_response(&agent, &qr)).unwrap();
    assert_eq!(
        done.event,
        Event::UpdateSent {
            manifests: 0,
            unlinked: 0,
            err_code: Some(ErrCode::AttestationRequired)
        }
    );
    let u = update(agent.read(&done.reply.unwrap()));
    assert_eq!(u.err_code, Some(ErrCode::AttestationRequired));
    assert_eq!(u.manifest_list, None);
    assert_eq!(w.device(&agent), None);
    assert!(w.snapshot().attestations.is_empty());
    assert_eq!(attestation_failures(&w, &agent), 1);
}

/// A known device whose re-attestation fails is recorded unattested (so it is asked again)
/// with what it has installed unchanged, and gets the same Update.
#[test]
fn a_known_device_failing_re_attestation_is_recorded_unattested() {
    let (mut w, agent) = installed_world();
    let installed = w.device(&agent).unwrap().installed;
    w.now += 3601;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let done = w.post(&rejected_response(&agent, &qr)).unwrap();
    let u = update(agent.read(&done.reply.unwrap()));
    assert_eq!(u.err_code, Some(ErrCode::AttestationRequired));
    assert_eq!(u.manifest_list, None);
    let device = w.device(&agent).unwrap();
    assert_eq!(device.attested_at, None);
    assert_eq!(device.installed, installed);
    assert_eq!(attestation_failures(&w, &agent), 1);
}

/// The attacker's copy of a not-affirming QueryResponse signed by another key than the
/// Evidence's `cnf`: dropped, nothing recorded, no audit entry for the victim.
#[test]
fn not_affirming_evidence_in_a_response_signed_by_another_key_is_dropped() {
    let (mut w, agent, _app) = app_world();
    let thief = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let evidence = rejected_evidence(&agent, qr.challenge.as_deref().unwrap());
    let resp = agent.response_with(&qr, Some((teep_attest::EVIDENCE_FORMAT, evidence)));
    let forged = thief.sign(Message::QueryResponse(resp));
    assert!(matches!(w.post_dropped(&forged), Dropped::BadSignature(_)));
    assert_eq!(attestation_failures(&w, &agent), 0);
}

/// A store where the operator acts between a decision's loads and its commit: before each
/// of the first `times` commits, `interfere` runs on the store.
struct Interfering<'a, F> {
    inner: &'a teep_tam::MemoryStore,
    times: std::sync::atomic::AtomicUsize,
    commits: std::sync::atomic::AtomicUsize,
    interfere: F,
}

impl<F: Fn(&teep_tam::MemoryStore) + Send + Sync> teep_tam::Store for Interfering<'_, F> {
    async fn load(
        &self,
        request: &teep_tam::store::LoadRequest,
    ) -> Result<teep_tam::store::Loaded, teep_tam::StoreError> {
        self.inner.load(request).await
    }

    async fn commit(&self, changes: &teep_tam::Changes) -> Result<(), teep_tam::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.commits.fetch_add(1, SeqCst);
        if self
            .times
            .fetch_update(SeqCst, SeqCst, |t| t.checked_sub(1))
            .is_ok()
        {
            (self.interfere)(self.inner);
        }
        self.inner.commit(changes).await
    }
}

/// Posts `body` on a store where `interfere` runs before each of the first `times`
/// commits; the result, the commits tried and the appraisals asked for.
fn drive_interfered(
    w: &mut World,
    body: &[u8],
    times: usize,
    interfere: impl Fn(&teep_tam::MemoryStore) + Send + Sync,
) -> (Result<Handled, Dropped>, usize, usize) {
    use std::sync::atomic::Ordering::SeqCst;
    let tam = w.replica();
    let World {
        store,
        verifier,
        rng,
        now,
        ..
    } = w;
    let counting = CountingAppraiser {
        inner: verifier,
        appraisals: 0.into(),
    };
    let store = Interfering {
        inner: store,
        times: times.into(),
        commits: 0.into(),
        interfere,
    };
    let mut cx = teep_tam::Context { now: *now, rng };
    let result = block_on(driver::drive(&tam, &store, &counting, body, None, &mut cx));
    (
        result,
        store.commits.load(SeqCst),
        counting.appraisals.load(SeqCst),
    )
}

/// A known device holding app v1 after v2 was released, and its QueryResponse.
fn update_pending() -> (World, Agent, Vec<u8>, Vec<u8>) {
    let (mut w, agent) = installed_world();
    w.release("app", 2, &[]);
    w.now += 60;
    let qr = agent.read_query(&w.post_hint(&[], Some(agent.id())).unwrap().reply.unwrap());
    let response = agent.plain_response(&qr);
    (w, agent, qr.token.unwrap(), response)
}

/// The operator moves a device to a class with an empty policy while the TAM decides on
/// its QueryResponse (an Update to app v2): the commit loses its compare-and-set on the
/// device record, and the TAM decides again on the record as it now is: the device is
/// told to remove app, not to update it.
#[test]
fn a_decision_that_loses_to_an_operator_change_is_taken_again_on_the_new_record() {
    use teep_tam::store::AdminStore;
    let (mut w, agent, _, response) = update_pending();
    w.store.with(|s| {
        s.class_policy.insert("tablet".into(), TcPolicy::default());
    });
    let id = agent.id();
    let (result, commits, _) = drive_interfered(&mut w, &response, 1, move |s| {
        block_on(s.set_device_class(&id, Some("tablet"))).unwrap();
    });
    let handled = result.expect("decided again after the conflict");
    let u = update(agent.read(&handled.reply.unwrap()));
    assert_eq!(
        u.manifest_list, None,
        "the stale decision's Update was sent"
    );
    assert_eq!(u.unneeded_manifest_list, Some(vec![manifest_id("app")]));
    assert_eq!(commits, 2);
}

/// A first contact whose device the operator registers while its Evidence is appraised:
/// the decision is taken again on the new record, and the Verifier is not asked twice (it
/// would refuse the Evidence: its challenge is spent).
#[test]
fn a_decision_taken_again_reuses_the_appraisal() {
    use teep_tam::store::{AdminStore, Registration};
    let (mut w, agent, _app) = app_world();
    let qr = agent.read_query(&w.connect());
    let response = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    let registration = Registration {
        id: agent.id(),
        key: agent.key.public_key().to_cose_key_bytes(),
        class: Some(CLASS.into()),
        attestation_exempt: None,
    };
    let (result, commits, appraisals) = drive_interfered(&mut w, &response, 1, move |s| {
        assert!(block_on(s.register_device(&registration)).unwrap());
    });
    let handled = result.expect("decided again after the conflict");
    let u = update(agent.read(&handled.reply.unwrap()));
    assert_eq!(u.manifest_list.map(|l| l.len()), Some(1));
    assert_eq!((commits, appraisals), (2, 1));
}

/// When every try loses its compare-and-set, the TAM gives up after
/// `CONFLICT_RETRIES` more tries: the message is dropped with `Conflict` and its token is
/// not consumed.
#[test]
fn decisions_that_keep_losing_are_dropped_after_the_retries() {
    use teep_tam::store::AdminStore;
    let (mut w, agent, token, response) = update_pending();
    let id = agent.id();
    let flip = std::sync::atomic::AtomicBool::new(false);
    let (result, commits, _) = drive_interfered(&mut w, &response, usize::MAX, move |s| {
        let class = if flip.fetch_xor(true, std::sync::atomic::Ordering::SeqCst) {
            CLASS
        } else {
            "other"
        };
        block_on(s.set_device_class(&id, Some(class))).unwrap();
    });
    assert!(matches!(result, Err(Dropped::Conflict)), "{result:?}");
    assert_eq!(commits, 1 + driver::CONFLICT_RETRIES);
    assert!(!w.session(&token).consumed, "a lost try consumed the token");
}
