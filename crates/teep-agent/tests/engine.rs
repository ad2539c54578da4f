//! The Agent engine's rules (draft-ietf-teep-protocol §11), each with the input that tries
//! to get past it. Every refused message must leave the TEE (SUIT storage and the sealed
//! engine state) byte for byte as it was (`common::refused` compares snapshots).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use teep_agent::engine::{
    Agent, AgentError, Answer, Attestation, Context, Event, Passport, Refusal, TamAttestation,
};
use teep_agent::memory::MemoryTee;
use teep_attest::ear::EAR_PROFILE;
use teep_attest::{
    ATTESTATION_RESULT_FORMAT, Cnf, EVIDENCE_FORMAT, Ear, EarAppraisal, Status, TrustVector,
    VerifierId, decrypt_evidence, sign_ear, verify_evidence,
};
use teep_cose::coset::{CoseSign, TaggedCborSerializable};
use teep_cose::encrypt::DecryptionKey;
use teep_cose::{Algorithm, Curve, PrivateKey, SignOptions, TrustStore, VerifyContext};
use teep_proto::{
    CipherOperation, CipherSuite, ComponentId, DataItemRequested, ErrCode, FreshnessMechanism,
    Message, Numbering, QueryRequest, QueryResponse, Success, SuitCoseProfile, Update,
    sign_message, sign_message_multi,
};
use teep_suit::SuitError;
use teep_suit::processor::KeyDecryptor;
use teep_suit::report::{ReceivedReport, ReportKeys};
use teep_suit::storage::Storage;

const TOKEN: [u8; 16] = [0x11; 16];
const CHALLENGE: [u8; 32] = [0xc4; 32];

fn query(token: Option<&[u8]>, challenge: Option<&[u8]>, bits: DataItemRequested) -> QueryRequest {
    QueryRequest {
        token: token.map(<[u8]>::to_vec),
        challenge: challenge.map(<[u8]>::to_vec),
        supported_freshness_mechanisms: Some(vec![FreshnessMechanism::NONCE]),
        supported_teep_cipher_suites: vec![CipherSuite::SIGN1_ESP256, CipherSuite::SIGN1_ED25519],
        supported_suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
        data_item_requested: bits,
        ..QueryRequest::default()
    }
}

/// A QueryRequest asking for Evidence (token and challenge).
fn attest_query() -> QueryRequest {
    query(
        Some(&TOKEN),
        Some(&CHALLENGE),
        DataItemRequested::ATTESTATION,
    )
}

/// What a TAM reads our reports with (`tam`: its key for encrypted ones).
fn report_keys(tam: Option<&PrivateKey>) -> ReportKeys<'_> {
    static NO_DEVICE_KEYS: std::sync::LazyLock<TrustStore> =
        std::sync::LazyLock::new(TrustStore::new);
    ReportKeys {
        provider: provider(),
        device: &NO_DEVICE_KEYS,
        tam,
        require_signature: false,
    }
}

fn full_query() -> Message {
    Message::QueryRequest(query(
        Some(&TOKEN),
        Some(&CHALLENGE),
        DataItemRequested::ATTESTATION.with(DataItemRequested::TRUSTED_COMPONENTS),
    ))
}

fn sign1(w: &World, key: &PrivateKey, m: &Message) -> Vec<u8> {
    sign_message(
        m,
        w.numbering,
        signer(key).as_ref(),
        &SignOptions::default(),
    )
    .unwrap()
}

/// A TAM's first message: COSE_Sign with its ESP256 and Ed25519 keys.
fn sign_multi(w: &World, m: &Message) -> Vec<u8> {
    let (a, b) = (signer(&w.tam_esp256), signer(&w.tam_ed25519));
    sign_message_multi(
        m,
        w.numbering,
        &[a.as_ref(), b.as_ref()],
        &SignOptions::default(),
    )
    .unwrap()
}

/// Installs `name` v`sequence` through an Update signed by the TAM's Ed25519 key.
fn install(w: &World, agent: &mut Agent<MemoryTee>, token: u8, name: &str, sequence: u64) {
    let msg = update(&[token; 16], vec![w.envelope(name, sequence)], vec![]);
    let handled = agent.handle(TAM_URI, &sign1(w, &w.tam_ed25519, &msg), cx());
    assert!(
        matches!(handled.event, Event::UpdateApplied { installed: 1, .. }),
        "{:?}",
        handled.event
    );
}

fn installed(agent: &Agent<MemoryTee>) -> Vec<(ComponentId, u64)> {
    agent
        .tee()
        .storage
        .manifests()
        .unwrap()
        .into_iter()
        .map(|m| (m.component_id, m.sequence_number))
        .collect()
}

// ------------------------------------------------------------------ QueryRequest

#[test]
fn first_query_request_is_answered_in_the_suite_that_verified_with_evidence() {
    let w = World::new();
    let mut agent = w.agent();
    let handled = agent.handle(TAM_URI, &sign_multi(&w, &full_query()), cx());
    assert_eq!(
        handled.event,
        Event::QueryAnswered {
            attested: true,
            tcs: 0
        }
    );
    let reply = handled.reply.unwrap();
    let verified = Unverified(&reply).check(&w);
    assert_eq!(verified.1, Algorithm::Ed25519);
    let Message::QueryResponse(r) = verified.0 else {
        panic!("not a QueryResponse")
    };
    assert_eq!(r.token.as_deref(), Some(&TOKEN[..]));
    assert_eq!(r.tc_list, Some(vec![]));
    assert_eq!(
        r.attestation_payload_format.as_deref(),
        Some(EVIDENCE_FORMAT)
    );
    let mut trust = TrustStore::new();
    trust.add_key(w.attestation.public_key().clone());
    let (claims, _) = verify_evidence(
        &r.attestation_payload.unwrap(),
        &VerifyContext::new(provider(), &trust),
    )
    .unwrap();
    assert_eq!(claims.nonce.as_deref(), Some(&CHALLENGE[..]));
    assert_eq!(claims.cnf_key().unwrap(), *w.agent_pub());
    assert_eq!(claims.iat, Some(NOW as i64));
    assert_eq!(claims.ueid.as_deref(), Some(&UEID[..]));
}

/// Verifies an Agent reply and gives the message and the algorithm it was signed with.
struct Unverified<'a>(&'a [u8]);

impl Unverified<'_> {
    fn check(&self, w: &World) -> (Message, Algorithm) {
        let v = teep_proto::Unverified::parse(self.0, w.numbering)
            .unwrap()
            .verify_with_key(provider(), w.agent_pub())
            .unwrap();
        let alg = v.alg();
        (v.into_message(), alg)
    }
}

#[test]
fn passport_query_puts_the_token_in_eat_nonce() {
    let w = World::new();
    let mut agent = w.agent();
    let q = Message::QueryRequest(query(Some(&TOKEN), None, DataItemRequested::ATTESTATION));
    let reply = agent
        .handle(TAM_URI, &sign_multi(&w, &q), cx())
        .reply
        .unwrap();
    let Message::QueryResponse(r) = w.read(&reply) else {
        panic!()
    };
    let mut trust = TrustStore::new();
    trust.add_key(w.attestation.public_key().clone());
    let (claims, _) = verify_evidence(
        &r.attestation_payload.unwrap(),
        &VerifyContext::new(provider(), &trust),
    )
    .unwrap();
    assert_eq!(claims.nonce.as_deref(), Some(&TOKEN[..]));
    assert_eq!(r.tc_list, None, "tc-list was not asked for");
}

#[test]
fn an_untrusted_tam_key_gets_an_error_and_changes_nothing() {
    let w = World::new();
    let mut agent = w.agent();
    let stranger = key(Curve::Ed25519);
    let e = refused(&w, &mut agent, &sign1(&w, &stranger, &full_query()));
    assert_eq!(e.err_code, ErrCode::BadCertificate);
    assert_eq!(
        e.token, None,
        "no token is echoed from an unverified message"
    );
}

/// `cose_sign` re-encoded with coset after flipping a bit of its Ed25519 signature
/// (`ed25519`) or of its other one.
fn corrupt(cose_sign: &[u8], ed25519: bool) -> Vec<u8> {
    use teep_cose::coset::RegisteredLabelWithPrivate as Label;
    let is_ed25519 = |alg: &Option<Label<teep_cose::coset::iana::Algorithm>>| {
        *alg == Some(Label::Assigned(teep_cose::coset::iana::Algorithm::Ed25519))
            || *alg == Some(Label::PrivateUse(-19))
    };
    let mut sign = CoseSign::from_tagged_slice(cose_sign).unwrap();
    let target = sign
        .signatures
        .iter_mut()
        .find(|s| is_ed25519(&s.protected.header.alg) == ed25519)
        .unwrap();
    target.signature[0] ^= 1;
    sign.to_tagged_vec().unwrap()
}

#[test]
fn a_cose_sign_whose_only_signature_in_our_suite_is_bad_is_refused() {
    let w = World::new();
    let mut agent = w.agent();
    // The TAM's real COSE_Sign, then the Ed25519 signature (ours) corrupted with coset:
    // the ESP256 one, by a trusted key, still verifies, but it is not our suite.
    let good = sign_multi(&w, &full_query());
    let forged = corrupt(&good, true);
    assert_ne!(forged, good);
    let e = refused(&w, &mut agent, &forged);
    assert_eq!(e.err_code, ErrCode::PermanentError);

    // The other way round (our signature good, the other corrupted) is accepted.
    let handled = agent.handle(TAM_URI, &corrupt(&good, false), cx());
    assert!(matches!(handled.event, Event::QueryAnswered { .. }));
}

#[test]
fn a_sign1_in_another_suite_is_an_unsupported_cipher_suite_listing_ours() {
    let w = World::new();
    let mut agent = w.agent();
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_esp256, &full_query()));
    assert_eq!(e.err_code, ErrCode::UnsupportedCipherSuites);
    assert_eq!(
        e.supported_teep_cipher_suites,
        Some(vec![CipherSuite::SIGN1_ED25519])
    );
}

#[test]
fn a_query_offering_none_of_our_suites_is_refused_with_our_list() {
    let w = World::new();
    let mut agent = w.agent();
    let mut q = attest_query();
    q.supported_teep_cipher_suites = vec![
        CipherSuite::SIGN1_ESP256,
        CipherSuite::new(vec![
            CipherOperation {
                cose_type: 18,
                alg: -19,
            },
            CipherOperation {
                cose_type: 18,
                alg: -9,
            },
        ]),
    ];
    let e = refused(
        &w,
        &mut agent,
        &sign1(&w, &w.tam_ed25519, &Message::QueryRequest(q)),
    );
    assert_eq!(e.err_code, ErrCode::UnsupportedCipherSuites);
    assert_eq!(e.token.as_deref(), Some(&TOKEN[..]));
    assert_eq!(
        e.supported_teep_cipher_suites,
        Some(vec![CipherSuite::SIGN1_ED25519])
    );
}

#[test]
fn an_unsupported_version_is_refused_with_our_versions() {
    let w = World::new();
    let mut agent = w.agent();
    let mut q = attest_query();
    q.versions = Some(vec![1, 7]);
    let e = refused(&w, &mut agent, &sign_multi(&w, &Message::QueryRequest(q)));
    assert_eq!(e.err_code, ErrCode::UnsupportedMsgVersion);
    assert_eq!(e.versions, Some(vec![0]));
}

#[test]
fn unsupported_freshness_and_suit_profiles_are_refused_with_our_lists() {
    let w = World::new();
    let mut agent = w.agent();
    let mut q = attest_query();
    q.supported_freshness_mechanisms = Some(vec![FreshnessMechanism::TIMESTAMP]);
    let e = refused(&w, &mut agent, &sign_multi(&w, &Message::QueryRequest(q)));
    assert_eq!(e.err_code, ErrCode::UnsupportedFreshnessMechanisms);
    assert_eq!(
        e.supported_freshness_mechanisms,
        Some(vec![FreshnessMechanism::NONCE])
    );

    let mut cfg = w.config();
    cfg.suit_cose_profiles = vec![SuitCoseProfile::SHA256_ED25519_ECDH_A128CTR];
    let mut agent = w.agent_with(cfg);
    let mut q = attest_query();
    q.supported_suit_cose_profiles = vec![SuitCoseProfile::SHA256_ESP256_ECDH_A128GCM];
    let e = refused(&w, &mut agent, &sign_multi(&w, &Message::QueryRequest(q)));
    assert_eq!(e.err_code, ErrCode::UnsupportedSuitReport);
    assert_eq!(
        e.supported_suit_cose_profiles,
        Some(vec![SuitCoseProfile::SHA256_ED25519_ECDH_A128CTR])
    );
}

#[test]
fn attestation_without_a_nonce_or_with_one_too_long_for_eat_is_refused() {
    let w = World::new();
    let mut agent = w.agent();
    let q = query(None, None, DataItemRequested::ATTESTATION);
    let e = refused(&w, &mut agent, &sign_multi(&w, &Message::QueryRequest(q)));
    assert_eq!(e.err_code, ErrCode::PermanentError);
    let q = query(Some(&TOKEN), Some(&[7; 65]), DataItemRequested::ATTESTATION);
    let e = refused(&w, &mut agent, &sign_multi(&w, &Message::QueryRequest(q)));
    assert_eq!(e.err_code, ErrCode::PermanentError);
    assert_eq!(e.token.as_deref(), Some(&TOKEN[..]));
}

#[test]
fn a_replayed_token_is_refused() {
    let w = World::new();
    let mut agent = w.agent();
    let bytes = sign_multi(&w, &full_query());
    assert!(matches!(
        agent.handle(TAM_URI, &bytes, cx()).event,
        Event::QueryAnswered { .. }
    ));
    let e = refused(&w, &mut agent, &bytes);
    assert_eq!(e.err_code, ErrCode::PermanentError);
    // The Error echoes the token (a response's token MUST match the message answered).
    assert_eq!(e.token.as_deref(), Some(&TOKEN[..]));
    // The same token in a freshly signed Update is a replay too.
    let u = update(&TOKEN, vec![w.envelope("one", 1)], vec![]);
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_ed25519, &u));
    assert_eq!(e.err_code, ErrCode::PermanentError);
    assert_eq!(e.token.as_deref(), Some(&TOKEN[..]));
    assert!(installed(&agent).is_empty());
}

#[test]
fn garbage_and_agent_messages_get_a_signed_permanent_error() {
    let w = World::new();
    let mut agent = w.agent();
    // Not CBOR at all; a COSE_Sign1 by hand around a TEEP array that is no message type.
    let e = refused(&w, &mut agent, &[0xff, 0x00]);
    assert_eq!(e.err_code, ErrCode::PermanentError);
    let forged_payload = [0x82, 0x18, 0x63, 0xa0]; // [99, {}]
    let mut sign1_bytes = vec![0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0xa0, 0x44];
    sign1_bytes.extend_from_slice(&forged_payload);
    sign1_bytes.extend_from_slice(&[0x58, 0x40]);
    sign1_bytes.extend_from_slice(&[0; 64]);
    let e = refused(&w, &mut agent, &sign1_bytes);
    assert_eq!(e.err_code, ErrCode::PermanentError);
    // A Success (an Agent's message) signed by a trusted TAM key.
    let s = Message::Success(Success {
        token: Some(TOKEN.to_vec()),
        ..Success::default()
    });
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_ed25519, &s));
    assert_eq!(e.err_code, ErrCode::PermanentError);
    assert_eq!(e.token.as_deref(), Some(&TOKEN[..]));
}

/// An affirming EAR about the TAM from `verifier`, bound to `cnf_key`, for `nonce`.
fn tam_ear(verifier: &PrivateKey, cnf_key: &teep_cose::PublicKey, nonce: &[u8]) -> Vec<u8> {
    tam_ear_at(verifier, cnf_key, Some(nonce), NOW as i64)
}

/// An affirming EAR from `verifier`, bound to `cnf_key`, for `nonce`, appraised at `iat`.
fn ear_at(
    verifier: &PrivateKey,
    cnf_key: &teep_cose::PublicKey,
    nonce: &[u8],
    iat: u64,
) -> Vec<u8> {
    tam_ear_at(verifier, cnf_key, Some(nonce), iat as i64)
}

fn tam_ear_at(
    verifier: &PrivateKey,
    cnf_key: &teep_cose::PublicKey,
    nonce: Option<&[u8]>,
    iat: i64,
) -> Vec<u8> {
    let ear = Ear {
        profile: EAR_PROFILE.into(),
        iat,
        verifier_id: VerifierId {
            developer: "teep project".into(),
            build: "agent test".into(),
        },
        nonce: nonce.map(<[u8]>::to_vec),
        cnf: Some(Cnf::CoseKey(cnf_key.to_cose_key_bytes())),
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
    sign_ear(&ear, signer(verifier).as_ref()).unwrap()
}

#[test]
fn a_tam_attestation_result_for_our_challenge_and_its_key_is_accepted() {
    let w = World::new();
    let verifier = key(Curve::P256);
    let mut verifiers = TrustStore::new();
    verifiers.add_key(verifier.public_key().clone());
    let mut cfg = w.config();
    cfg.tam_attestation = Some(TamAttestation {
        verifiers,
        max_age: 300,
        timestamp: false,
    });
    let mut agent = w.agent_with(cfg);
    let first = agent.handle(TAM_URI, &sign_multi(&w, &full_query()), cx());
    assert_eq!(first.event, Event::Refused(Refusal::AttestationRequired));
    let Message::Error(e) = w.read(&first.reply.unwrap()) else {
        panic!("not an Error")
    };
    assert_eq!(e.err_code, ErrCode::AttestationRequired);
    let challenge = cx().random;
    assert_eq!(e.challenge.as_deref(), Some(&challenge[..]));
    assert_eq!(
        e.supported_freshness_mechanisms,
        Some(vec![FreshnessMechanism::NONCE])
    );
    // Not an EAR at all; then Evidence about the TAM (no Verifier in the TEE): refused.
    let mut q = attest_query();
    q.attestation_payload_format = Some(ATTESTATION_RESULT_FORMAT.into());
    q.attestation_payload = Some(vec![0xa0]);
    let e = refused(
        &w,
        &mut agent,
        &sign_multi(&w, &Message::QueryRequest(q.clone())),
    );
    assert_eq!(e.err_code, ErrCode::AttestationRequired);
    q.attestation_payload_format = Some(EVIDENCE_FORMAT.into());
    let e = refused(&w, &mut agent, &sign_multi(&w, &Message::QueryRequest(q)));
    assert_eq!(e.err_code, ErrCode::AttestationRequired);
    let with = |ear: Vec<u8>| {
        let mut q = attest_query();
        q.attestation_payload_format = Some(ATTESTATION_RESULT_FORMAT.into());
        q.attestation_payload = Some(ear);
        Message::QueryRequest(q)
    };
    // Bound to the TAM's ESP256 key while the QueryRequest verified with its Ed25519 key
    // (our suite): another key's result, refused.
    let other_key = with(tam_ear(&verifier, w.tam_esp256.public_key(), &challenge));
    let e = refused(&w, &mut agent, &sign_multi(&w, &other_key));
    assert_eq!(e.err_code, ErrCode::AttestationRequired);
    // For another nonce: refused.
    let stale = with(tam_ear(&verifier, w.tam_ed25519.public_key(), &[1; 32]));
    let e = refused(&w, &mut agent, &sign_multi(&w, &stale));
    assert_eq!(e.err_code, ErrCode::AttestationRequired);
    // Signed by a Verifier we do not trust: refused.
    let rogue = with(tam_ear(
        &key(Curve::P256),
        w.tam_ed25519.public_key(),
        &challenge,
    ));
    let e = refused(&w, &mut agent, &sign_multi(&w, &rogue));
    assert_eq!(e.err_code, ErrCode::AttestationRequired);
    // The right one.
    let good = with(tam_ear(&verifier, w.tam_ed25519.public_key(), &challenge));
    let handled = agent.handle(TAM_URI, &sign_multi(&w, &good), cx());
    assert!(matches!(
        handled.event,
        Event::QueryAnswered { attested: true, .. }
    ));
}

#[test]
fn a_tam_attestation_result_without_nonce_counts_only_under_the_timestamp_mechanism() {
    let w = World::new();
    let verifier = key(Curve::P256);
    let mut verifiers = TrustStore::new();
    verifiers.add_key(verifier.public_key().clone());
    let policy = |timestamp| TamAttestation {
        verifiers: verifiers.clone(),
        max_age: 300,
        timestamp,
    };
    let with = |ear: Vec<u8>| {
        let mut q = attest_query();
        q.attestation_payload_format = Some(ATTESTATION_RESULT_FORMAT.into());
        q.attestation_payload = Some(ear);
        Message::QueryRequest(q)
    };
    let tam = w.tam_ed25519.public_key();
    let no_nonce = with(tam_ear_at(&verifier, tam, None, NOW as i64));
    // Nonce mechanism only: a nonce-less result is refused, also up front (then with a
    // challenge to be fresh for), and the Error offers only the nonce mechanism.
    let mut cfg = w.config();
    cfg.tam_attestation = Some(policy(false));
    let mut agent = w.agent_with(cfg);
    let e = refused(&w, &mut agent, &sign_multi(&w, &no_nonce));
    assert_eq!(e.err_code, ErrCode::AttestationRequired);
    assert_eq!(e.challenge.as_deref(), Some(&cx().random[..]));
    assert_eq!(
        e.supported_freshness_mechanisms,
        Some(vec![FreshnessMechanism::NONCE])
    );
    let e = refused(&w, &mut agent, &sign_multi(&w, &no_nonce));
    assert_eq!(e.err_code, ErrCode::AttestationRequired);
    // Timestamp allowed: the Error offers both mechanisms; a stale or future result and
    // one for another key are refused; a fresh nonce-less one is accepted up front, and so
    // is a fresh one carrying another nonce (the challenge of the Verifier the TAM attested
    // itself to: it proves nothing to us, the `iat` does).
    let mut cfg = w.config();
    cfg.tam_attestation = Some(policy(true));
    let mut agent = w.agent_with(cfg);
    let first = agent.handle(TAM_URI, &sign_multi(&w, &full_query()), cx());
    let Message::Error(e) = w.read(&first.reply.unwrap()) else {
        panic!("not an Error")
    };
    assert_eq!(
        e.supported_freshness_mechanisms,
        Some(vec![
            FreshnessMechanism::NONCE,
            FreshnessMechanism::TIMESTAMP
        ])
    );
    for bad in [
        tam_ear_at(&verifier, tam, None, NOW as i64 - 301),
        tam_ear_at(&verifier, tam, None, NOW as i64 + 301),
        tam_ear_at(&verifier, w.tam_esp256.public_key(), None, NOW as i64),
    ] {
        let e = refused(&w, &mut agent, &sign_multi(&w, &with(bad)));
        assert_eq!(e.err_code, ErrCode::AttestationRequired);
    }
    let verifiers_nonce = with(tam_ear_at(&verifier, tam, Some(&[1; 32]), NOW as i64));
    for good in [&no_nonce, &verifiers_nonce] {
        let mut cfg = w.config();
        cfg.tam_attestation = Some(policy(true));
        let mut agent = w.agent_with(cfg);
        let handled = agent.handle(TAM_URI, &sign_multi(&w, good), cx());
        assert!(matches!(
            handled.event,
            Event::QueryAnswered { attested: true, .. }
        ));
    }
}

#[test]
fn evidence_is_encrypted_to_the_tam_when_its_key_is_known() {
    let w = World::new();
    let tam_enc = key(Curve::P256);
    let mut cfg = w.config();
    cfg.tam_encryption_key = Some(tam_enc.public_key().clone());
    let mut agent = w.agent_with(cfg);
    let reply = agent
        .handle(TAM_URI, &sign_multi(&w, &full_query()), cx())
        .reply
        .unwrap();
    let Message::QueryResponse(r) = w.read(&reply) else {
        panic!()
    };
    let encrypted = r.attestation_payload.unwrap();
    let mut trust = TrustStore::new();
    trust.add_key(w.attestation.public_key().clone());
    assert!(verify_evidence(&encrypted, &VerifyContext::new(provider(), &trust)).is_err());
    let signed = decrypt_evidence(provider(), &encrypted, &tam_enc).unwrap();
    let (claims, _) = verify_evidence(&signed, &VerifyContext::new(provider(), &trust)).unwrap();
    assert_eq!(claims.nonce.as_deref(), Some(&CHALLENGE[..]));
}

#[test]
fn suit_reports_are_encrypted_to_the_tam_when_its_key_is_known() {
    let w = World::new();
    let tam_enc = key(Curve::P256);
    let mut cfg = w.config();
    cfg.tam_encryption_key = Some(tam_enc.public_key().clone());
    let mut agent = w.agent_with(cfg);
    let u = update(&[1; 16], vec![w.envelope("one", 1)], vec![]);
    let reply = agent
        .handle(TAM_URI, &sign1(&w, &w.tam_ed25519, &u), cx())
        .reply
        .unwrap();
    let Message::Success(s) = w.read(&reply) else {
        panic!("not a Success")
    };
    let report = &s.suit_reports.unwrap()[0];
    let keys = report_keys(None);
    assert!(ReceivedReport::decode(report, &keys).is_err());
    let keys = report_keys(Some(&tam_enc));
    let received = ReceivedReport::decode(report, &keys).unwrap();
    assert!(received.protection.encrypted);
    assert_eq!(received.result, Ok(()));
}

/// Two trusted TAMs, each with its own encryption key, and a third with none of its own:
/// each gets Evidence and SUIT reports encrypted to its key (the other TAM cannot decrypt
/// them); the unmapped one gets the default key.
#[test]
fn evidence_and_reports_are_encrypted_to_the_key_of_the_tam_answered() {
    let w = World::new();
    let (second, third) = (key(Curve::Ed25519), key(Curve::Ed25519));
    let (enc_first, enc_second, enc_default) =
        (key(Curve::P256), key(Curve::P256), key(Curve::P256));
    let mut cfg = w.config();
    cfg.tam_trust.add_key(second.public_key().clone());
    cfg.tam_trust.add_key(third.public_key().clone());
    cfg.tam_encryption_key = Some(enc_default.public_key().clone());
    cfg.tam_encryption_keys = vec![
        (
            w.tam_ed25519.public_key().thumbprint(),
            enc_first.public_key().clone(),
        ),
        (
            second.public_key().thumbprint(),
            enc_second.public_key().clone(),
        ),
    ];
    let mut agent = w.agent_with(cfg);
    let mut trust = TrustStore::new();
    trust.add_key(w.attestation.public_key().clone());
    let cases = [
        (&w.tam_ed25519, &enc_first, [&enc_second, &enc_default]),
        (&second, &enc_second, [&enc_first, &enc_default]),
        (&third, &enc_default, [&enc_first, &enc_second]),
    ];
    for (n, (tam, own, others)) in cases.into_iter().enumerate() {
        let token = [u8::try_from(n).unwrap() + 10; 16];
        let q = Message::QueryRequest(query(
            Some(&token),
            Some(&CHALLENGE),
            DataItemRequested::ATTESTATION.with(DataItemRequested::TRUSTED_COMPONENTS),
        ));
        let reply = agent
            .handle(TAM_URI, &sign1(&w, tam, &q), cx())
            .reply
            .unwrap();
        let Message::QueryResponse(r) = w.read(&reply) else {
            panic!("not a QueryResponse")
        };
        let encrypted = r.attestation_payload.unwrap();
        for other in others {
            assert!(
                decrypt_evidence(provider(), &encrypted, other).is_err(),
                "{n}"
            );
        }
        let signed = decrypt_evidence(provider(), &encrypted, own).unwrap();
        assert!(verify_evidence(&signed, &VerifyContext::new(provider(), &trust)).is_ok());
    }

    let u = update(&[1; 16], vec![w.envelope("one", 1)], vec![]);
    let reply = agent
        .handle(TAM_URI, &sign1(&w, &second, &u), cx())
        .reply
        .unwrap();
    let Message::Success(s) = w.read(&reply) else {
        panic!("not a Success")
    };
    let report = &s.suit_reports.unwrap()[0];
    for other in [&enc_first, &enc_default] {
        assert!(ReceivedReport::decode(report, &report_keys(Some(other))).is_err());
    }
    let received = ReceivedReport::decode(report, &report_keys(Some(&enc_second))).unwrap();
    assert!(received.protection.encrypted);
    assert_eq!(received.result, Ok(()));
}

#[test]
fn an_encrypted_tc_needs_the_tees_decryption_key() {
    let w = World::new();
    let device_key = key(Curve::P256);
    let mut spec = spec("secret", 1);
    spec.encrypt_to = Some(device_key.public_key().clone());
    let built = teep_suit::builder::build(&spec, provider())
        .unwrap()
        .envelope;
    let env = teep_suit::builder::sign(&built, signer(&w.tc_signer).as_ref(), provider()).unwrap();
    let u = update(&[1; 16], vec![env], vec![]);
    let bytes = sign1(&w, &w.tam_ed25519, &u);

    // Without a decryption key: refused, nothing installed.
    let mut agent = w.agent();
    let e = refused(&w, &mut agent, &bytes);
    assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);

    let t = tee(&w.agent_key, &w.attestation).with_decryptor(Box::new(KeyDecryptor {
        provider: provider(),
        keys: vec![DecryptionKey::EcdhEs(device_key)],
    }));
    let mut agent = Agent::new(w.config(), t).unwrap();
    let handled = agent.handle(TAM_URI, &bytes, cx());
    assert!(matches!(
        handled.event,
        Event::UpdateApplied { installed: 1, .. }
    ));
    assert_eq!(
        agent.invoke_ta(&ta_id("secret"), b"").unwrap(),
        payload("secret", 1)
    );
}

#[test]
fn a_tee_that_cannot_save_state_answers_temporary_error_and_keeps_its_state() {
    let w = World::new();
    let mut t = tee(&w.agent_key, &w.attestation);
    t.fail_saves = true;
    let mut agent = Agent::new(w.config(), t).unwrap();
    let e = refused(&w, &mut agent, &sign_multi(&w, &full_query()));
    assert_eq!(e.err_code, ErrCode::TemporaryError);
}

// ------------------------------------------------------------------ Update

#[test]
fn update_installs_then_updates_then_deletes_with_reports() {
    let w = World::new();
    let mut agent = w.agent();
    let env = w.envelope("one", 1);
    let u = update(&[1; 16], vec![env], vec![]);
    let reply = agent
        .handle(TAM_URI, &sign1(&w, &w.tam_ed25519, &u), cx())
        .reply
        .unwrap();
    let Message::Success(s) = w.read(&reply) else {
        panic!("not a Success")
    };
    assert_eq!(s.token.as_deref(), Some(&[1; 16][..]));
    let reports = s.suit_reports.unwrap();
    assert_eq!(reports.len(), 1);
    let keys = report_keys(None);
    let report = ReceivedReport::decode(&reports[0], &keys).unwrap();
    assert_eq!(report.nonce.as_deref(), Some(&[1; 16][..]));
    assert_eq!(report.result, Ok(()));
    assert_eq!(installed(&agent), vec![(manifest_id("one"), 1)]);
    assert_eq!(
        agent.invoke_ta(&ta_id("one"), b"!").unwrap(),
        [payload("one", 1), b"!".to_vec()].concat()
    );

    install(&w, &mut agent, 2, "one", 2);
    assert_eq!(installed(&agent), vec![(manifest_id("one"), 2)]);
    let tas = agent.list_tas().unwrap();
    assert_eq!(tas.len(), 1);
    assert_eq!(tas[0].component_id, ta_id("one"));
    assert_eq!(tas[0].sequence_number, 2);

    let u = update(&[3; 16], vec![], vec![manifest_id("one")]);
    let handled = agent.handle(TAM_URI, &sign1(&w, &w.tam_ed25519, &u), cx());
    assert_eq!(
        handled.event,
        Event::UpdateApplied {
            installed: 0,
            unlinked: 1
        }
    );
    let Message::Success(s) = w.read(&handled.reply.unwrap()) else {
        panic!("not a Success")
    };
    assert_eq!(
        s.suit_reports, None,
        "reports answer manifest-list items only"
    );
    assert!(installed(&agent).is_empty());
    assert!(agent.invoke_ta(&ta_id("one"), b"!").is_err());
}

/// An Update held back (by the network, or by a hostile REE) and delivered after a newer
/// one was applied answers a QueryResponse that no longer describes the device: here it
/// would unlink the version the newer Update installed, which rollback protection keeps
/// from ever coming back. Refused until the Agent has answered the TAM again, also across a
/// restart (found by the simulation, seed 333).
#[test]
fn an_update_after_one_applied_since_the_last_query_response_is_refused() {
    let w = World::new();
    let mut agent = w.agent();
    let ask = |t: u8| {
        let q = query(Some(&[t; 16]), None, DataItemRequested::TRUSTED_COMPONENTS);
        sign_multi(&w, &Message::QueryRequest(q))
    };
    for t in [0xa1, 0xa2] {
        let answered = agent.handle(TAM_URI, &ask(t), cx());
        assert!(matches!(answered.event, Event::QueryAnswered { .. }));
    }
    // The TAM's answer to the second QueryResponse installs one v2 ...
    install(&w, &mut agent, 2, "one", 2);
    // ... and its earlier answer, unlinking one, arrives late: refused, nothing changes.
    let stale = sign1(
        &w,
        &w.tam_ed25519,
        &update(&[1; 16], vec![], vec![manifest_id("one")]),
    );
    let e = refused(&w, &mut agent, &stale);
    assert_eq!(e.err_code, ErrCode::PermanentError);
    assert_eq!(e.token.as_deref(), Some(&[1; 16][..]));
    assert_eq!(installed(&agent), vec![(manifest_id("one"), 2)]);
    // An attacker's made-up install under a fresh token fares the same, also after a restart.
    let mut agent = Agent::new(w.config(), agent.into_tee()).unwrap();
    let forged = sign1(
        &w,
        &w.tam_ed25519,
        &update(&[3; 16], vec![w.envelope("two", 1)], vec![]),
    );
    assert_eq!(
        agent.handle(TAM_URI, &forged, cx()).event,
        Event::Refused(Refusal::Superseded)
    );
    // An Update changing nothing (the TAM's err-code only) is still acknowledged.
    let note = Message::Update(Update {
        token: Some(vec![4; 16]),
        err_code: Some(ErrCode::AttestationRequired),
        ..Update::default()
    });
    let handled = agent.handle(TAM_URI, &sign1(&w, &w.tam_ed25519, &note), cx());
    assert!(matches!(handled.event, Event::TamReported { .. }));
    // Once the Agent answered the TAM again, its next Update applies.
    assert!(matches!(
        agent.handle(TAM_URI, &ask(0xa3), cx()).event,
        Event::QueryAnswered { .. }
    ));
    let unlink = sign1(
        &w,
        &w.tam_ed25519,
        &update(&[5; 16], vec![], vec![manifest_id("one")]),
    );
    assert!(matches!(
        agent.handle(TAM_URI, &unlink, cx()).event,
        Event::UpdateApplied { unlinked: 1, .. }
    ));
    assert!(installed(&agent).is_empty());
}

#[test]
fn a_rollback_manifest_is_refused_and_changes_nothing() {
    let w = World::new();
    let mut agent = w.agent();
    install(&w, &mut agent, 1, "one", 2);
    let u = update(&[2; 16], vec![w.envelope("one", 1)], vec![]);
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_ed25519, &u));
    assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);
    assert_eq!(installed(&agent), vec![(manifest_id("one"), 2)]);
}

#[test]
fn an_unknown_tc_signer_is_refused_and_changes_nothing() {
    let w = World::new();
    let mut agent = w.agent();
    let rogue = key(Curve::P256);
    let u = update(&[1; 16], vec![w.envelope_by(&rogue, "one", 1)], vec![]);
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_ed25519, &u));
    assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);
    assert!(installed(&agent).is_empty());
}

#[test]
fn a_tampered_payload_fails_with_a_report_naming_the_failed_command() {
    let w = World::new();
    let mut agent = w.agent();
    // Flip one byte of the integrated payload by hand: the manifest (and its signature)
    // are intact, the image digest condition is what catches it.
    let mut env = w.envelope("one", 1);
    let image = payload("one", 1);
    let at = env
        .windows(image.len())
        .position(|win| win == image.as_slice())
        .unwrap();
    env[at] ^= 0x20;
    // Installed first: another manifest of the same Update, to show nothing commits.
    let u = update(&[1; 16], vec![w.envelope("two", 1), env], vec![]);
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_ed25519, &u));
    assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);
    assert_eq!(e.token.as_deref(), Some(&[1; 16][..]));
    let reports = e.suit_reports.unwrap();
    assert_eq!(reports.len(), 2);
    let keys = report_keys(None);
    let failed = ReceivedReport::decode(&reports[1], &keys).unwrap();
    let failure = failed.result.unwrap_err();
    assert_eq!(
        failure.code,
        SuitError::ConditionFailed { condition: 3 }.code()
    );
    // The record names where: a section that ran (not 0 = "before any command") at the
    // offset of the image-match condition.
    assert_ne!(failure.record.section, 0);
    assert_eq!(
        failure.reason,
        u64::from(SuitError::ConditionFailed { condition: 3 }.report_reason())
    );
    let other = ReceivedReport::decode(&reports[0], &keys).unwrap();
    assert_eq!(
        other.result.unwrap_err().code,
        SuitError::OtherManifestFailed(1).code()
    );
    assert!(installed(&agent).is_empty());
}

#[test]
fn updates_over_the_limits_or_repeating_a_manifest_are_refused() {
    let w = World::new();
    let mut cfg = w.config();
    cfg.limits.max_manifests = 1;
    let mut agent = w.agent_with(cfg);
    let two = vec![w.envelope("one", 1), w.envelope("two", 1)];
    let e = refused(
        &w,
        &mut agent,
        &sign1(&w, &w.tam_ed25519, &update(&[1; 16], two, vec![])),
    );
    assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);

    let mut cfg = w.config();
    let one = w.envelope("one", 1);
    cfg.limits.max_update_bytes = one.len() - 1;
    let mut agent = w.agent_with(cfg);
    let u = update(&[1; 16], vec![one.clone()], vec![]);
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_ed25519, &u));
    assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);

    let mut agent = w.agent();
    let u = update(&[1; 16], vec![one.clone(), one], vec![]);
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_ed25519, &u));
    assert_eq!(e.err_code, ErrCode::PermanentError);
    assert!(installed(&agent).is_empty());
}

#[test]
fn unlinking_what_is_not_installed_fails_the_whole_update() {
    let w = World::new();
    let mut agent = w.agent();
    let u = update(
        &[1; 16],
        vec![w.envelope("one", 1)],
        vec![manifest_id("ghost").clone()],
    );
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_ed25519, &u));
    assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);
    // The failed unlink's report first, then the envelope's (not run: another failed).
    let keys = report_keys(None);
    let codes: Vec<i64> = e
        .suit_reports
        .unwrap()
        .iter()
        .map(|r| {
            ReceivedReport::decode(r, &keys)
                .unwrap()
                .result
                .unwrap_err()
                .code
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            SuitError::NotInstalled(manifest_id("ghost")).code(),
            SuitError::UnneededManifestFailed(0).code()
        ]
    );
}

#[test]
fn an_update_with_only_the_tams_err_code_is_acknowledged() {
    let w = World::new();
    let mut agent = w.agent();
    let u = Message::Update(Update {
        token: Some(vec![9; 16]),
        err_code: Some(ErrCode::AttestationRequired),
        ..Update::default()
    });
    let handled = agent.handle(TAM_URI, &sign1(&w, &w.tam_ed25519, &u), cx());
    assert_eq!(
        handled.event,
        Event::TamReported {
            err_code: ErrCode::AttestationRequired
        }
    );
    assert!(matches!(
        w.read(&handled.reply.unwrap()),
        Message::Success(_)
    ));
}

// ------------------------------------------------------------------ Broker calls

#[test]
fn request_ta_feeds_requested_tc_list_and_survives_a_restart() {
    let w = World::new();
    let mut agent = w.agent();
    assert_eq!(
        agent.request_ta(ta_id("one"), Some("https://evil.example/")),
        Ok(Answer::Contact {
            tam_uri: TAM_URI.into(),
            message: None
        }),
        "an unconfigured hint is not followed, and no TAM is known yet"
    );
    // Restart: a new engine over the same TEE still has the request.
    let mut agent = Agent::new(w.config(), agent.into_tee()).unwrap();
    assert_eq!(
        requested(&w, &mut agent, 0x21),
        Some(vec![ta_id("one").clone()])
    );

    // Once installed, it is no longer requested and RequestTA says nothing.
    install(&w, &mut agent, 5, "one", 1);
    assert_eq!(agent.request_ta(ta_id("one"), None), Ok(Answer::Nothing));
    assert_eq!(requested(&w, &mut agent, 0x22), None);
}

/// What the next QueryResponse (to a fresh token) requests.
fn requested(w: &World, agent: &mut Agent<MemoryTee>, token: u8) -> Option<Vec<ComponentId>> {
    let q = Message::QueryRequest(query(
        Some(&[token; 16]),
        None,
        DataItemRequested::TRUSTED_COMPONENTS,
    ));
    let reply = agent
        .handle(TAM_URI, &sign_multi(w, &q), cx())
        .reply
        .unwrap();
    let Message::QueryResponse(r) = w.read(&reply) else {
        panic!("not a QueryResponse")
    };
    r.requested_tc_list
        .map(|l| l.into_iter().map(|r| r.component_id).collect())
}

#[test]
fn a_tam_is_told_only_of_the_tas_requested_from_it() {
    let w = World::new();
    let other = "https://tam2.example/";
    let mut cfg = w.config();
    cfg.tam_uris.push(other.into());
    let mut agent = w.agent_with(cfg);
    assert_eq!(
        agent.request_ta(ta_id("theirs"), Some(other)),
        Ok(Answer::Contact {
            tam_uri: other.into(),
            message: None
        })
    );
    agent.request_ta(ta_id("ours"), None).unwrap();
    assert_eq!(
        requested(&w, &mut agent, 0x31),
        Some(vec![ta_id("ours").clone()])
    );
}

#[test]
fn made_up_tam_uris_from_the_broker_do_not_grow_the_sealed_state() {
    let w = World::new();
    let mut agent = w.agent();
    let plain = sign_multi(
        &w,
        &Message::QueryRequest(query(None, None, DataItemRequested::TRUSTED_COMPONENTS)),
    );
    agent.handle(TAM_URI, &plain, cx());
    let before = agent.tee().snapshot();
    for n in 0..20 {
        let handled = agent.handle(&format!("https://tam{n}.invalid/"), &plain, cx());
        assert!(matches!(handled.event, Event::QueryAnswered { .. }));
    }
    assert_eq!(agent.tee().snapshot(), before);
}

#[test]
fn unsolicited_query_response_only_under_the_three_conditions() {
    let w = World::new();
    let mut agent = w.agent();
    // A plain QueryRequest (no token, no challenge) from a cached raw key.
    let plain = Message::QueryRequest(query(None, None, DataItemRequested::TRUSTED_COMPONENTS));
    agent.handle(TAM_URI, &sign_multi(&w, &plain), cx());
    let Ok(Answer::Contact {
        message: Some(first),
        ..
    }) = agent.request_ta(ta_id("one"), None)
    else {
        panic!("expected an unsolicited QueryResponse")
    };
    let Message::QueryResponse(r) = w.read(&first) else {
        panic!()
    };
    assert_eq!(r.token, None);
    assert_eq!(
        r.requested_tc_list.unwrap()[0].component_id,
        ta_id("one").clone()
    );

    // ProcessError since: no message.
    assert_eq!(agent.process_error(TAM_URI), Ok(Answer::Nothing));
    assert!(matches!(
        agent.request_ta(ta_id("two"), None),
        Ok(Answer::Contact { message: None, .. })
    ));

    // A QueryRequest with a token (condition 1 fails): no message.
    let mut agent = w.agent();
    let with_token = Message::QueryRequest(query(
        Some(&TOKEN),
        None,
        DataItemRequested::TRUSTED_COMPONENTS,
    ));
    agent.handle(TAM_URI, &sign_multi(&w, &with_token), cx());
    assert!(matches!(
        agent.request_ta(ta_id("one"), None),
        Ok(Answer::Contact { message: None, .. })
    ));

    // The TAM key no longer trusted (condition 3 fails): no message.
    let mut agent = w.agent();
    agent.handle(TAM_URI, &sign_multi(&w, &plain), cx());
    let mut cfg = w.config();
    cfg.tam_trust = TrustStore::new();
    cfg.tam_trust.add_key(w.tam_esp256.public_key().clone());
    let mut agent = Agent::new(cfg, agent.into_tee()).unwrap();
    assert!(matches!(
        agent.request_ta(ta_id("one"), None),
        Ok(Answer::Contact { message: None, .. })
    ));
}

#[test]
fn unrequest_ta_feeds_unneeded_manifest_list() {
    let w = World::new();
    let mut agent = w.agent();
    install(&w, &mut agent, 1, "one", 1);
    assert!(matches!(
        agent.unrequest_ta(&ta_id("one")),
        Ok(Answer::Contact { .. })
    ));
    assert_eq!(agent.unrequest_ta(&ta_id("never")), Ok(Answer::Nothing));
    let q = Message::QueryRequest(query(
        Some(&TOKEN),
        None,
        DataItemRequested::TRUSTED_COMPONENTS,
    ));
    let reply = agent
        .handle(TAM_URI, &sign_multi(&w, &q), cx())
        .reply
        .unwrap();
    let Message::QueryResponse(r) = w.read(&reply) else {
        panic!()
    };
    assert_eq!(
        r.unneeded_manifest_list,
        Some(vec![manifest_id("one").clone()])
    );
    assert_eq!(r.tc_list.unwrap().len(), 1);
}

#[test]
fn policy_check_returns_each_tam_once_per_round() {
    let w = World::new();
    let mut cfg = w.config();
    cfg.tam_uris.push("https://tam2.example/".into());
    let mut agent = w.agent_with(cfg);
    let uris: Vec<Answer> = (0..4).map(|i| agent.policy_check(i == 0)).collect();
    let contact = |u: &str| Answer::Contact {
        tam_uri: u.into(),
        message: None,
    };
    assert_eq!(
        uris,
        vec![
            contact(TAM_URI),
            contact("https://tam2.example/"),
            Answer::Nothing,
            contact(TAM_URI)
        ]
    );
}

#[test]
fn a_policy_check_abandoned_midway_does_not_shorten_the_next_one() {
    let w = World::new();
    let mut cfg = w.config();
    cfg.tam_uris.push("https://tam2.example/".into());
    let mut agent = w.agent_with(cfg);
    let contact = |u: &str| Answer::Contact {
        tam_uri: u.into(),
        message: None,
    };
    // A Broker names the first TAM and is killed before asking again.
    assert_eq!(agent.policy_check(true), contact(TAM_URI));
    // The next Broker's check visits every TAM again, then ends.
    let next: Vec<Answer> = (0..3).map(|i| agent.policy_check(i == 0)).collect();
    assert_eq!(
        next,
        vec![
            contact(TAM_URI),
            contact("https://tam2.example/"),
            Answer::Nothing
        ]
    );
    // Within one check, a later call (not a new check) still goes on with the round.
    assert_eq!(agent.policy_check(true), contact(TAM_URI));
    assert_eq!(agent.policy_check(false), contact("https://tam2.example/"));
}

// ------------------------------------------------------------------ older TAMs

#[test]
fn a_pre26_tam_with_es256_is_answered_and_its_own_attestation_payload_ignored() {
    let mut w = World::with_agent_curve(Curve::P256);
    w.numbering = Numbering::Pre26;
    let teep = teep_cose::default_provider()
        .signer(&w.agent_key, Algorithm::Es256)
        .unwrap();
    let t = MemoryTee::new(
        teep,
        signer(&w.attestation),
        device_claims(),
        Box::new(|i, o| Ok([i, o].concat())),
    );
    let mut agent = Agent::new(w.config(), t).unwrap();
    let mut q = attest_query();
    q.supported_teep_cipher_suites = vec![CipherSuite::sign1(-7)];
    q.attestation_payload_format = Some(ATTESTATION_RESULT_FORMAT.into());
    q.attestation_payload = Some(vec![0xa0]);
    let tam_es256 = teep_cose::default_provider()
        .signer(&w.tam_esp256, Algorithm::Es256)
        .unwrap();
    let bytes = sign_message(
        &Message::QueryRequest(q),
        Numbering::Pre26,
        tam_es256.as_ref(),
        &SignOptions::default(),
    )
    .unwrap();
    let handled = agent.handle(TAM_URI, &bytes, cx());
    assert!(matches!(
        handled.event,
        Event::QueryAnswered { attested: true, .. }
    ));
    let (msg, alg) = Unverified(&handled.reply.unwrap()).check(&w);
    assert_eq!(alg, Algorithm::Es256);
    assert!(matches!(msg, Message::QueryResponse(QueryResponse { .. })));

    // A -26 Success to this Pre26 Agent (type 4 is no Pre26 type): an Error, in Pre26.
    let s = Message::Success(Success::default());
    let e = refused(
        &w,
        &mut agent,
        &sign_message(
            &s,
            Numbering::Draft26,
            tam_es256.as_ref(),
            &SignOptions::default(),
        )
        .unwrap(),
    );
    assert_eq!(e.err_code, ErrCode::PermanentError);
}

#[test]
fn damaged_sealed_state_is_an_error_at_start() {
    let w = World::new();
    let mut t = tee(&w.agent_key, &w.attestation);
    t.state = Some(vec![0x85, 0x01]);
    assert!(Agent::new(w.config(), t).is_err());
}

// ------------------------------------------------------------------ passport model

/// An Agent in passport mode trusting `verifier`'s EARs up to an hour old.
fn passport_agent(w: &World, verifier: &PrivateKey) -> Agent<MemoryTee> {
    let mut verifiers = TrustStore::new();
    verifiers.add_key(verifier.public_key().clone());
    let mut cfg = w.config();
    cfg.attestation = Attestation::Passport(Passport {
        verifiers,
        max_age: 3600,
    });
    w.agent_with(cfg)
}

/// The QueryResponse to a QueryRequest asking for attestation, at `now`.
fn answer_at(
    w: &World,
    agent: &mut Agent<MemoryTee>,
    token: u8,
    now: u64,
) -> (QueryResponse, Event) {
    let q = Message::QueryRequest(query(
        Some(&[token; 16]),
        None,
        DataItemRequested::ATTESTATION,
    ));
    let handled = agent.handle(TAM_URI, &sign_multi(w, &q), Context { now, ..cx() });
    let Message::QueryResponse(r) = w.read(&handled.reply.unwrap()) else {
        panic!("not a QueryResponse")
    };
    (r, handled.event)
}

#[test]
fn passport_evidence_binds_our_key_and_the_verifiers_nonce() {
    let w = World::new();
    let verifier = key(Curve::P256);
    assert_eq!(
        w.agent().passport_evidence(&CHALLENGE, NOW),
        Err(AgentError::NoPassport)
    );
    let agent = passport_agent(&w, &verifier);
    let evidence = agent.passport_evidence(&CHALLENGE, NOW).unwrap();
    let mut trust = TrustStore::new();
    trust.add_key(w.attestation.public_key().clone());
    let (claims, _) = verify_evidence(&evidence, &VerifyContext::new(provider(), &trust)).unwrap();
    assert_eq!(claims.nonce.as_deref(), Some(&CHALLENGE[..]));
    assert_eq!(claims.cnf_key().unwrap(), *w.agent_pub());
    // A nonce that does not fit eat_nonce is refused, not truncated.
    assert!(matches!(
        agent.passport_evidence(&[1; 65], NOW),
        Err(AgentError::Evidence(_))
    ));
}

#[test]
fn a_kept_passport_is_sent_while_fresh_then_nothing() {
    let w = World::new();
    let verifier = key(Curve::P256);
    let mut agent = passport_agent(&w, &verifier);
    // No EAR kept yet: attestation asked, nothing sent (no Evidence in passport mode).
    let (r, event) = answer_at(&w, &mut agent, 1, NOW);
    assert_eq!(r.attestation_payload, None);
    assert!(matches!(
        event,
        Event::QueryAnswered {
            attested: false,
            ..
        }
    ));

    let ear = ear_at(&verifier, w.agent_pub(), &CHALLENGE, NOW);
    agent.store_passport(&ear, NOW).unwrap();
    // Kept sealed: a restarted engine over the same TEE still has it.
    let mut agent = {
        let tee = agent.into_tee();
        let mut verifiers = TrustStore::new();
        verifiers.add_key(verifier.public_key().clone());
        let mut cfg = w.config();
        cfg.attestation = Attestation::Passport(Passport {
            verifiers,
            max_age: 3600,
        });
        Agent::new(cfg, tee).unwrap()
    };
    let (r, event) = answer_at(&w, &mut agent, 2, NOW + 60);
    assert_eq!(r.attestation_payload.as_deref(), Some(&ear[..]));
    assert_eq!(
        r.attestation_payload_format.as_deref(),
        Some(ATTESTATION_RESULT_FORMAT)
    );
    assert!(matches!(event, Event::QueryAnswered { attested: true, .. }));
    // Stale (older than max_age): no longer sent.
    let (r, _) = answer_at(&w, &mut agent, 3, NOW + 3601);
    assert_eq!(r.attestation_payload, None);
}

/// Hostile EARs handed over by the (untrusted) Broker: another key's, an expired one, one
/// from another Verifier, one not affirming, bytes that are no EAR. Each is refused and
/// the sealed state is unchanged.
#[test]
fn hostile_passports_are_refused_and_change_nothing() {
    let w = World::new();
    let verifier = key(Curve::P256);
    let mut agent = passport_agent(&w, &verifier);
    let other = key(Curve::P256);
    let contraindicated = {
        let ear = Ear {
            profile: EAR_PROFILE.into(),
            iat: NOW as i64,
            verifier_id: VerifierId {
                developer: "teep project".into(),
                build: "agent test".into(),
            },
            nonce: Some(CHALLENGE.to_vec()),
            cnf: Some(Cnf::CoseKey(w.agent_pub().to_cose_key_bytes())),
            submods: [(
                "teep".to_owned(),
                EarAppraisal {
                    status: Status::Contraindicated,
                    trust_vector: TrustVector::default(),
                    policy_id: None,
                },
            )]
            .into(),
        };
        sign_ear(&ear, signer(&verifier).as_ref()).unwrap()
    };
    let before = agent.tee().snapshot();
    for ear in [
        ear_at(&verifier, other.public_key(), &CHALLENGE, NOW),
        ear_at(&verifier, w.agent_pub(), &CHALLENGE, NOW - 3601),
        ear_at(&other, w.agent_pub(), &CHALLENGE, NOW),
        contraindicated,
        vec![0xa0],
    ] {
        assert!(matches!(
            agent.store_passport(&ear, NOW),
            Err(AgentError::Passport(_))
        ));
        assert_eq!(
            agent.tee().snapshot(),
            before,
            "a refused EAR changed the TEE"
        );
    }
    let (r, _) = answer_at(&w, &mut agent, 1, NOW);
    assert_eq!(r.attestation_payload, None);
    // Not in passport mode: nothing is kept.
    assert_eq!(
        w.agent()
            .store_passport(&ear_at(&verifier, w.agent_pub(), &CHALLENGE, NOW), NOW),
        Err(AgentError::NoPassport)
    );
}

#[test]
fn an_agent_without_attestation_answers_without_a_payload() {
    let w = World::new();
    let mut cfg = w.config();
    cfg.attestation = Attestation::None;
    let mut agent = w.agent_with(cfg);
    let (r, event) = answer_at(&w, &mut agent, 1, NOW);
    assert_eq!(r.attestation_payload, None);
    assert_eq!(r.attestation_payload_format, None);
    assert!(matches!(
        event,
        Event::QueryAnswered {
            attested: false,
            ..
        }
    ));
}

/// A pre-26 QueryRequest written by hand (minicbor): options {token (20)}, cipher suites
/// `[[18, -7]]`, SUIT COSE profiles as older TAMs write them, data-item-requested 2.
fn pre26_query_with_profiles(profiles: &[&[i64]]) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    e.array(5).unwrap().u8(1).unwrap();
    e.map(1).unwrap().u8(20).unwrap().bytes(&TOKEN).unwrap();
    e.array(1).unwrap().array(1).unwrap().array(2).unwrap();
    e.u8(18).unwrap().i64(-7).unwrap();
    e.array(profiles.len() as u64).unwrap();
    for p in profiles {
        e.array(p.len() as u64).unwrap();
        for alg in *p {
            e.i64(*alg).unwrap();
        }
    }
    e.u8(2).unwrap();
    e.into_writer()
}

#[test]
fn a_pre26_tams_two_element_profiles_are_understood_or_refused() {
    let mut w = World::with_agent_curve(Curve::P256);
    w.numbering = Numbering::Pre26;
    let es256 = |k: &PrivateKey| provider().signer(k, Algorithm::Es256).unwrap();
    let t = MemoryTee::new(
        es256(&w.agent_key),
        signer(&w.attestation),
        device_claims(),
        Box::new(|i, o| Ok([i, o].concat())),
    );
    let mut agent = Agent::new(w.config(), t).unwrap();
    let tam = es256(&w.tam_esp256);
    let signed =
        |payload: &[u8]| teep_cose::sign1(tam.as_ref(), payload, &SignOptions::default()).unwrap();
    // [-16, -7]: SHA-256 + ES256, our ESP256 profile's digest and signature.
    let handled = agent.handle(
        TAM_URI,
        &signed(&pre26_query_with_profiles(&[&[-16, -7]])),
        cx(),
    );
    assert!(
        matches!(handled.event, Event::QueryAnswered { .. }),
        "{:?}",
        handled.event
    );
    // Unknown values ([-16, -35]: ES384; [-43, -7]: SHA-384) have no unambiguous meaning:
    // refused as malformed, nothing changed; so is a three-element one.
    for bad in [&[-16, -35][..], &[-43, -7], &[-16, -7, -29]] {
        let e = refused(&w, &mut agent, &signed(&pre26_query_with_profiles(&[bad])));
        assert_eq!(e.err_code, ErrCode::PermanentError, "{bad:?}");
    }
}

// ------------------------------------------------------------------ several TAMs

/// An Agent trusting a second TAM key (`tam_b`, in the Agent's suite) besides the World's.
fn agent_trusting(w: &World, tam_b: &PrivateKey) -> Agent<MemoryTee> {
    let mut cfg = w.config();
    cfg.tam_trust.add_key(tam_b.public_key().clone());
    w.agent_with(cfg)
}

/// A TAM manages only the TCs it installed (RFC 9397 §4.4): TAM B, trusted and signing
/// validly, can neither unlink nor replace TAM A's manifest, not even hidden in an Update
/// that also installs its own TC and not under A's URI; nothing changes, the answer is
/// ERR_MANIFEST_PROCESSING_FAILED. Each TAM manages its own; once A unlinks its TC, the
/// location is free for B.
#[test]
fn a_tam_cannot_unlink_or_replace_what_another_tam_installed() {
    let w = World::new();
    let tam_b = key(Curve::Ed25519);
    let mut agent = agent_trusting(&w, &tam_b);
    install(&w, &mut agent, 1, "one", 1);

    let attacks = [
        update(&[2; 16], vec![], vec![manifest_id("one")]),
        update(&[3; 16], vec![w.envelope("one", 2)], vec![]),
        update(
            &[4; 16],
            vec![w.envelope("two", 1)],
            vec![manifest_id("one")],
        ),
    ];
    for attack in &attacks {
        let e = refused(&w, &mut agent, &sign1(&w, &tam_b, attack));
        assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);
        assert_eq!(
            e.err_msg.as_deref(),
            Some("manifest installed by another TAM")
        );
    }
    assert_eq!(installed(&agent), vec![(manifest_id("one"), 1)]);

    // B installs its own TC; A cannot unlink that one.
    let u = update(&[5; 16], vec![w.envelope("two", 1)], vec![]);
    let handled = agent.handle(TAM_URI, &sign1(&w, &tam_b, &u), cx());
    assert!(matches!(
        handled.event,
        Event::UpdateApplied { installed: 1, .. }
    ));
    let u = update(&[6; 16], vec![], vec![manifest_id("two")]);
    let e = refused(&w, &mut agent, &sign1(&w, &w.tam_ed25519, &u));
    assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);

    // The owners survive a restart of the engine (they are in the sealed state).
    let mut agent = Agent::new(
        {
            let mut cfg = w.config();
            cfg.tam_trust.add_key(tam_b.public_key().clone());
            cfg
        },
        agent.into_tee(),
    )
    .unwrap();
    refused(&w, &mut agent, &sign1(&w, &tam_b, &attacks[0]));

    // A updates and then unlinks its own TC; afterwards B may install at that location.
    install(&w, &mut agent, 7, "one", 2);
    let u = update(&[8; 16], vec![], vec![manifest_id("one")]);
    let handled = agent.handle(TAM_URI, &sign1(&w, &w.tam_ed25519, &u), cx());
    assert!(matches!(
        handled.event,
        Event::UpdateApplied { unlinked: 1, .. }
    ));
    let u = update(&[9; 16], vec![w.envelope("one", 3)], vec![]);
    let handled = agent.handle(TAM_URI, &sign1(&w, &tam_b, &u), cx());
    assert!(matches!(
        handled.event,
        Event::UpdateApplied { installed: 1, .. }
    ));
    assert_eq!(
        installed(&agent),
        vec![(manifest_id("one"), 3), (manifest_id("two"), 1)]
    );
}

/// An app's unneeded TA is offered for unlinking only to the TAM that installed it: another
/// TAM is not told of it (its unlink would only be refused).
#[test]
fn installed_and_unneeded_manifests_are_listed_only_to_the_tam_that_installed_them() {
    let w = World::new();
    let tam_b = key(Curve::Ed25519);
    let mut agent = agent_trusting(&w, &tam_b);
    install(&w, &mut agent, 1, "one", 1);
    agent.unrequest_ta(&ta_id("one")).unwrap();
    let unneeded_for = |agent: &mut Agent<MemoryTee>, tam: &PrivateKey, token: u8| {
        let q = Message::QueryRequest(query(
            Some(&[token; 16]),
            None,
            DataItemRequested::TRUSTED_COMPONENTS,
        ));
        let reply = agent.handle(TAM_URI, &sign1(&w, tam, &q), cx()).reply;
        let Message::QueryResponse(r) = w.read(&reply.unwrap()) else {
            panic!("not a QueryResponse")
        };
        let listed: Vec<ComponentId> = r
            .tc_list
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.component_id)
            .collect();
        (r.unneeded_manifest_list, listed)
    };
    // TAM B sees neither A's TC installed nor A's TC unneeded.
    assert_eq!(unneeded_for(&mut agent, &tam_b, 2), (None, vec![]));
    assert_eq!(
        unneeded_for(&mut agent, &w.tam_ed25519, 3),
        (Some(vec![manifest_id("one")]), vec![manifest_id("one")])
    );
}

/// `name` at `sequence` integrating `dependency` (an envelope), signed by the TC signer.
fn envelope_depending_on(w: &World, name: &str, sequence: u64, dependency: Vec<u8>) -> Vec<u8> {
    let mut spec = spec(name, sequence);
    spec.dependencies = vec![teep_suit::builder::DependencySpec {
        envelope: dependency,
    }];
    let built = teep_suit::builder::build(&spec, provider())
        .unwrap()
        .envelope;
    teep_suit::builder::sign(&built, signer(&w.tc_signer).as_ref(), provider()).unwrap()
}

/// TAM B cannot change TAM A's TC through a dependency integrated into B's own TC (the SUIT
/// processor refuses to store a dependency over a root manifest, so the ownership check
/// needs only the roots); B's TC may depend on A's as it is (the same envelope).
#[test]
fn a_tam_cannot_change_another_tams_tc_through_an_integrated_dependency() {
    let w = World::new();
    let tam_b = key(Curve::Ed25519);
    let mut agent = agent_trusting(&w, &tam_b);
    install(&w, &mut agent, 1, "one", 1);

    let sneaky = envelope_depending_on(&w, "two", 1, w.envelope("one", 2));
    let u = update(&[2; 16], vec![sneaky], vec![]);
    let e = refused(&w, &mut agent, &sign1(&w, &tam_b, &u));
    assert_eq!(e.err_code, ErrCode::ManifestProcessingFailed);
    // The SUIT processor stops it: a root manifest is not replaced as a dependency.
    assert_eq!(
        e.err_msg.as_deref(),
        Some("component /TEEP-Device/one/suit is referenced by another manifest")
    );
    assert_eq!(installed(&agent), vec![(manifest_id("one"), 1)]);

    let honest = envelope_depending_on(&w, "two", 1, w.envelope("one", 1));
    let u = update(&[3; 16], vec![honest], vec![]);
    let handled = agent.handle(TAM_URI, &sign1(&w, &tam_b, &u), cx());
    assert!(
        matches!(handled.event, Event::UpdateApplied { installed: 1, .. }),
        "{:?}",
        handled.event
    );
    assert_eq!(
        installed(&agent),
        vec![(manifest_id("one"), 1), (manifest_id("two"), 1)]
    );
}
