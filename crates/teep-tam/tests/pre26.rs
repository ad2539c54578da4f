//! Older Agents (pre-26 numbering, ES256, no Evidence) served by a second engine: the
//! operator registered the device's key in advance and exempted it from attestation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use teep_cose::{Algorithm, Curve, PrivateKey, SignOptions, Signer, TrustStore, VerifyContext};
use teep_proto::{
    CipherSuite, ErrCode, Message, Numbering, QueryRequest, QueryResponse, Success, Unverified,
    Update, sign_message,
};
use teep_tam::store::{AdminStore as _, Registration};
use teep_tam::{Dropped, Tam, TamConfig};

/// What older Agents in the field take at most.
const PRE26_MAX_QUERY_REQUEST: usize = 1024;

/// The cipher suite older Agents offer: COSE_Sign1 with ES256, `[[18, -7]]`.
fn es256_suite() -> CipherSuite {
    CipherSuite::sign1(Algorithm::Es256.cose_id())
}

/// The TAM's engine for older Agents: pre-26 numbering, one ES256 signer, passport EARs
/// by `verifier` fresh by age (as `teep tam serve` sets it up).
fn pre26_tam(key: &PrivateKey, verifier: &teep_cose::PublicKey) -> Tam {
    let unused = PrivateKey::generate(Curve::P256).unwrap();
    let cfg = tam_config(key, &unused, verifier);
    Tam::new(TamConfig {
        numbering: Numbering::Pre26,
        signers: vec![provider().signer(key, Algorithm::Es256).unwrap()],
        passport_by_age: true,
        ..cfg
    })
}

/// An older Agent: ES256, pre-26 numbering, no Evidence.
struct OldAgent {
    key: PrivateKey,
    signer: Box<dyn Signer>,
    tam: teep_cose::PublicKey,
}

impl OldAgent {
    fn new(tam: &PrivateKey) -> Self {
        let key = PrivateKey::generate(Curve::P256).unwrap();
        Self {
            signer: provider().signer(&key, Algorithm::Es256).unwrap(),
            key,
            tam: tam.public_key().clone(),
        }
    }

    /// What the operator registers for this Agent's key (`POST /admin/devices`).
    fn registration(&self, exempt: bool) -> Registration {
        Registration {
            id: teep_tam::store::DeviceId(self.key.public_key().thumbprint()),
            key: self.key.public_key().to_cose_key_bytes(),
            class: None,
            attestation_exempt: Some(exempt),
        }
    }

    fn read(&self, bytes: &[u8]) -> Message {
        let mut trust = TrustStore::new();
        trust.add_key(self.tam.clone());
        Unverified::parse(bytes, Numbering::Pre26)
            .unwrap()
            .verify(&VerifyContext::new(provider(), &trust))
            .unwrap()
            .into_message()
    }

    fn sign(&self, message: &Message, numbering: Numbering) -> Vec<u8> {
        sign_message(
            message,
            numbering,
            self.signer.as_ref(),
            &SignOptions::default(),
        )
        .unwrap()
    }

    /// QueryResponse without attestation, an empty tc-list.
    fn response(&self, qr: &QueryRequest, numbering: Numbering) -> Vec<u8> {
        self.response_with(qr, numbering, None)
    }

    /// QueryResponse with an empty tc-list and `ear` as passport (format: Attestation
    /// Result), written with the raw types, not with an Agent engine.
    fn response_with(
        &self,
        qr: &QueryRequest,
        numbering: Numbering,
        ear: Option<Vec<u8>>,
    ) -> Vec<u8> {
        let resp = QueryResponse {
            token: qr.token.clone(),
            tc_list: Some(Vec::new()),
            attestation_payload_format: ear
                .as_ref()
                .map(|_| teep_attest::ATTESTATION_RESULT_FORMAT.into()),
            attestation_payload: ear,
            ..QueryResponse::default()
        };
        self.sign(&Message::QueryResponse(resp), numbering)
    }
}

fn query(agent: &OldAgent, bytes: &[u8]) -> QueryRequest {
    assert!(
        bytes.len() <= PRE26_MAX_QUERY_REQUEST,
        "QueryRequest of {} bytes",
        bytes.len()
    );
    match agent.read(bytes) {
        Message::QueryRequest(q) => q,
        other => panic!("expected QueryRequest, got {other:?}"),
    }
}

fn as_update(msg: Message) -> Update {
    match msg {
        Message::Update(u) => u,
        other => panic!("expected Update, got {other:?}"),
    }
}

/// A world with `app` v1 in the default class's policy, its pre-26 engine and an older
/// Agent (registered when `registered` is `Some(exempt)`).
fn world(registered: Option<bool>) -> (World, Tam, OldAgent) {
    let w = World::new();
    w.release("app", 1, &[]);
    w.class_policy(&["app"], &[]);
    let tam_key = PrivateKey::generate(Curve::P256).unwrap();
    let agent = OldAgent::new(&tam_key);
    if let Some(exempt) = registered {
        // Through the admin store operation the API calls.
        let created = block_on(w.store.register_device(&agent.registration(exempt))).unwrap();
        assert!(created);
    }
    let tam = pre26_tam(&tam_key, w.verifier_signer.public_key());
    (w, tam, agent)
}

/// Posts to `tam` and asserts the message was dropped with the store unchanged.
fn dropped_via(w: &mut World, tam: &Tam, body: &[u8]) -> Dropped {
    let before = w.snapshot();
    let err = w
        .post_via(tam, body)
        .expect_err("message should be dropped");
    assert_eq!(w.snapshot(), before, "a dropped message changed the store");
    err
}

#[test]
fn registered_exempt_older_agent_gets_the_whole_install_flow() {
    let (mut w, tam, agent) = world(Some(true));
    let qr = query(&agent, &w.post_via(&tam, &[]).unwrap().reply.unwrap());
    assert_eq!(qr.supported_teep_cipher_suites, vec![es256_suite()]);
    let reply = w
        .post_via(&tam, &agent.response(&qr, Numbering::Pre26))
        .unwrap()
        .reply
        .unwrap();
    // Signed COSE_Sign1 with the suite the Agent offered.
    let cose = teep_proto::decode_unverified_cose(&reply).unwrap();
    assert_eq!(cose.structure, teep_proto::CoseStructure::Sign1);
    assert_eq!(cose.signatures[0].alg, Some(Algorithm::Es256.cose_id()));
    let u = as_update(agent.read(&reply));
    assert_eq!(u.err_code, None);
    assert_eq!(u.manifest_list.as_ref().map(Vec::len), Some(1));
    let success = Message::Success(Success {
        token: u.token.clone(),
        ..Success::default()
    });
    w.post_via(&tam, &agent.sign(&success, Numbering::Pre26))
        .unwrap();
    let d = w
        .store
        .with(|s| s.devices.values().next().cloned())
        .unwrap();
    assert_eq!(d.installed[0].manifest_id, manifest_id("app"));
    assert_eq!(d.suite, Some(es256_suite()));
    assert_eq!(d.attested_at, None, "served without attestation");
}

#[test]
fn unregistered_older_agent_gets_nothing() {
    let (mut w, tam, agent) = world(None);
    let qr = query(&agent, &w.post_via(&tam, &[]).unwrap().reply.unwrap());
    let err = dropped_via(&mut w, &tam, &agent.response(&qr, Numbering::Pre26));
    assert!(matches!(err, Dropped::UnknownAgent), "{err:?}");
    assert!(w.snapshot().devices.is_empty());
}

#[test]
fn registered_but_not_exempt_older_agent_gets_nothing_installed() {
    let (mut w, tam, agent) = world(Some(false));
    let qr = query(&agent, &w.post_via(&tam, &[]).unwrap().reply.unwrap());
    let reply = w
        .post_via(&tam, &agent.response(&qr, Numbering::Pre26))
        .unwrap()
        .reply
        .unwrap();
    let u = as_update(agent.read(&reply));
    assert_eq!(u.err_code, Some(ErrCode::AttestationRequired));
    assert_eq!(u.manifest_list, None);
    let d = w
        .store
        .with(|s| s.devices.values().next().cloned())
        .unwrap();
    assert!(d.installed.is_empty());
}

#[test]
fn each_generation_refuses_the_others_messages() {
    let (mut w, pre26, agent) = world(Some(true));
    // A pre-26 QueryResponse answering a -26 session, posted to the -26 engine.
    let current = w.connect();
    let token = Unverified::parse(&current, Numbering::Draft26)
        .unwrap()
        .message()
        .token()
        .unwrap()
        .to_vec();
    let qr = QueryRequest {
        token: Some(token),
        ..QueryRequest::default()
    };
    let tam = w.replica();
    dropped_via(&mut w, &tam, &agent.response(&qr, Numbering::Pre26));
    // A -26 QueryResponse answering a pre-26 session, posted to the pre-26 engine.
    let qr = query(&agent, &w.post_via(&pre26, &[]).unwrap().reply.unwrap());
    dropped_via(&mut w, &pre26, &agent.response(&qr, Numbering::Draft26));
    // The session stays open for the right generation.
    w.post_via(&pre26, &agent.response(&qr, Numbering::Pre26))
        .unwrap();
}

/// One HTTP server with both engines: each path takes its own generation's messages only,
/// and a refusal (204) changes nothing.
#[cfg(feature = "server")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_serves_both_generations_on_their_paths() {
    use std::sync::Arc;
    use teep_tam::http::{Server, ServerConfig, TEEP_CBOR};

    let (mut w, pre26, agent) = world(Some(true));
    let store = std::mem::take(&mut w.store);
    let verifier = std::mem::replace(&mut w.verifier, World::new().verifier);
    let current = std::mem::replace(&mut w.tam, World::new().tam);
    let server = Arc::new(
        Server::new(current, store, verifier, ServerConfig::default())
            .with_pre26("/tam/pre26".into(), pre26),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let post = |path: &str, body: Vec<u8>| {
        http.post(format!("http://{addr}{path}"))
            .header("accept", TEEP_CBOR)
            .header("content-type", TEEP_CBOR)
            .body(body)
            .send()
    };
    let reply = post("/tam/pre26", Vec::new()).await.unwrap();
    assert_eq!(reply.status(), 200);
    let qr = query(&agent, &reply.bytes().await.unwrap());
    let before = server.store().snapshot();
    // The pre-26 QueryResponse on the -26 path, and a -26 one on the pre-26 path: 204.
    for (path, numbering) in [
        ("/tam", Numbering::Pre26),
        ("/tam/pre26", Numbering::Draft26),
    ] {
        let reply = post(path, agent.response(&qr, numbering)).await.unwrap();
        assert_eq!(reply.status(), 204, "{path}");
        assert_eq!(server.store().snapshot(), before, "{path}");
    }
    let reply = post("/tam/pre26", agent.response(&qr, Numbering::Pre26))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let u = as_update(agent.read(&reply.bytes().await.unwrap()));
    assert_eq!(u.manifest_list.map(|l| l.len()), Some(1));
    let _ = stop.send(());
    task.await.unwrap();
}

/// An affirming EAR about `cnf`, appraised at `iat`, with `nonce` (the Agent's Verifier's
/// own challenge, not the TAM's token), signed by `verifier`.
fn passport_ear(
    verifier: &dyn Signer,
    cnf: &teep_cose::PublicKey,
    iat: u64,
    nonce: &[u8],
) -> Vec<u8> {
    use teep_attest::ear::EAR_PROFILE;
    use teep_attest::{Cnf, Ear, EarAppraisal, Status, TrustVector};
    let ear = Ear {
        profile: EAR_PROFILE.into(),
        iat: i64::try_from(iat).unwrap(),
        verifier_id: verifier_id(),
        nonce: Some(nonce.to_vec()),
        cnf: Some(Cnf::CoseKey(cnf.to_cose_key_bytes())),
        submods: [(
            "teep".to_owned(),
            EarAppraisal {
                status: Status::Affirming,
                trust_vector: TrustVector {
                    instance_identity: 2,
                    ..TrustVector::default()
                },
                policy_id: None,
            },
        )]
        .into(),
    };
    teep_attest::sign_ear(&ear, verifier).unwrap()
}

/// An older Agent that is not registered presents an EAR it got from the TAM's trusted
/// Verifier ahead of time (its nonce is that Verifier's challenge): accepted by age, the
/// device recorded as attested, its TC sent.
#[test]
fn pre26_passport_ear_fresh_by_age_is_accepted() {
    let (mut w, tam, agent) = world(None);
    let qr = query(&agent, &w.post_via(&tam, &[]).unwrap().reply.unwrap());
    let ear = passport_ear(
        w.verifier_signer.as_ref(),
        agent.key.public_key(),
        w.now - 600,
        &[0x77; 32],
    );
    let done = w
        .post_via(&tam, &agent.response_with(&qr, Numbering::Pre26, Some(ear)))
        .unwrap();
    let u = as_update(agent.read(&done.reply.unwrap()));
    assert_eq!(u.err_code, None);
    assert_eq!(u.manifest_list.as_ref().map(Vec::len), Some(1));
    let d = w
        .store
        .with(|s| s.devices.values().next().cloned())
        .unwrap();
    assert_eq!(d.attested_at, Some(w.now));
    assert!(!d.attestation_exempt);
}

/// The same EAR on the -26 engine: there a passport EAR must carry the session's token.
#[test]
fn the_26_engine_still_wants_the_token_as_passport_nonce() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let ear = passport_ear(
        w.verifier_signer.as_ref(),
        agent.key.public_key(),
        w.now,
        &[0x77; 32],
    );
    let resp = agent.response_with(&qr, Some((teep_attest::ATTESTATION_RESULT_FORMAT, ear)));
    assert!(matches!(
        w.post_dropped(&agent.sign(Message::QueryResponse(resp))),
        Dropped::Attestation(teep_attest::ResultError::NonceMismatch)
    ));
}

/// Hostile passports on the pre-26 path, each dropped with the store unchanged: an EAR
/// about another key, an expired one, one from a Verifier the TAM does not trust, and a
/// good one in a QueryResponse signed by a thief.
#[test]
fn pre26_hostile_passports_are_dropped() {
    use teep_attest::ResultError;
    let (mut w, tam, agent) = world(None);
    let other = PrivateKey::generate(Curve::P256).unwrap();
    let rogue = signer(&PrivateKey::generate(Curve::P256).unwrap());
    let now = w.now;
    let max_age = tam.config().attestation_max_age;
    let cases: [(Vec<u8>, ResultError); 2] = [
        (
            passport_ear(
                w.verifier_signer.as_ref(),
                agent.key.public_key(),
                now - max_age - 1,
                &[1; 32],
            ),
            ResultError::Stale {
                iat: i64::try_from(now - max_age - 1).unwrap(),
                now,
            },
        ),
        (
            passport_ear(rogue.as_ref(), agent.key.public_key(), now, &[1; 32]),
            ResultError::UntrustedVerifier,
        ),
    ];
    for (ear, expected) in cases {
        let qr = query(&agent, &w.post_via(&tam, &[]).unwrap().reply.unwrap());
        let err = dropped_via(
            &mut w,
            &tam,
            &agent.response_with(&qr, Numbering::Pre26, Some(ear)),
        );
        assert!(
            matches!(&err, Dropped::Attestation(e) if *e == expected),
            "{err:?}, expected {expected:?}"
        );
    }
    // An EAR about another key (`cnf` = `other`) in `agent`'s QueryResponse: the TAM
    // verifies the QueryResponse with the EAR's key, which did not sign it.
    let qr = query(&agent, &w.post_via(&tam, &[]).unwrap().reply.unwrap());
    let ear = passport_ear(
        w.verifier_signer.as_ref(),
        other.public_key(),
        now,
        &[1; 32],
    );
    let err = dropped_via(
        &mut w,
        &tam,
        &agent.response_with(&qr, Numbering::Pre26, Some(ear)),
    );
    assert!(matches!(err, Dropped::BadSignature(_)), "{err:?}");
    // A good EAR about `agent`, presented in a QueryResponse the thief signed.
    let thief = OldAgent::new(&PrivateKey::generate(Curve::P256).unwrap());
    let qr = query(&agent, &w.post_via(&tam, &[]).unwrap().reply.unwrap());
    let ear = passport_ear(
        w.verifier_signer.as_ref(),
        agent.key.public_key(),
        now,
        &[1; 32],
    );
    let err = dropped_via(
        &mut w,
        &tam,
        &thief.response_with(&qr, Numbering::Pre26, Some(ear)),
    );
    assert!(matches!(err, Dropped::BadSignature(_)), "{err:?}");
    assert!(w.snapshot().devices.is_empty());
}
