//! The TAM with a remote Verifier: the teep-verifier HTTP service and the TAM's HTTP server
//! on loopback, the TAM asking the Verifier through `teep_verifier::Client` (an
//! `Appraiser`). The first-contact session runs through HTTP end to end; then the attacks
//! on the seam: an EAR signed by a key the TAM does not trust, Evidence replayed into a
//! later session, and a QueryResponse signed by another key than the one the EAR's `cnf`
//! names. Each is refused with the store unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![cfg(feature = "server")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::serving::{Running, start_with};
use common::{World, provider, signer, verifier_id, verifier_policy};
use teep_attest::{EVIDENCE_FORMAT, SigningVerifier, Verifier};
use teep_cose::{Curve, PrivateKey, Signer};
use teep_proto::Message;
use teep_tam::http::ServerConfig;
use teep_verifier::{Client, Config, RelyingParties, Service};
use tokio::net::TcpListener;

const TOKEN: &str = "tam-0123456789abcdef0123456789abcdef";

/// The Verifier service on loopback, signing EARs with `ear_signer`; its base URL.
async fn verifier_service(world: &World, ear_signer: Box<dyn Signer>) -> String {
    let verifier = SigningVerifier::new(
        Verifier::new(
            verifier_policy(world.attestation.public_key()),
            verifier_id(),
        ),
        ear_signer,
        provider(),
    );
    let parties = RelyingParties::parse(&format!("tam {TOKEN}\n")).unwrap();
    let service = Arc::new(Service::new(verifier, Config::new(parties)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(teep_verifier::serve(listener, service));
    base
}

/// The TAM of a new world asking a remote Verifier that signs with the world's Verifier key
/// (`trusted`) or with a stranger's.
async fn tam(trusted: bool) -> Running<Client> {
    let mut world = World::new();
    let ear_signer = if trusted {
        let stranger = PrivateKey::generate(Curve::P256).unwrap();
        std::mem::replace(&mut world.verifier_signer, signer(&stranger))
    } else {
        signer(&PrivateKey::generate(Curve::P256).unwrap())
    };
    let base = verifier_service(&world, ear_signer).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let client = Client::new(base, TOKEN, http).unwrap();
    start_with(ServerConfig::default(), world, client).await
}

/// A TEEP POST; the status and body.
async fn post(addr: SocketAddr, body: &[u8]) -> (u16, Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/tam"))
        .header("accept", "application/teep+cbor")
        .header("content-type", "application/teep+cbor")
        .body(body.to_vec())
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_contact_through_the_remote_verifier() {
    let tam = tam(true).await;
    let agent = tam.world.agent(Curve::P256);
    let (status, body) = post(tam.addr, b"").await;
    assert_eq!(status, 200);
    let qr = agent.read_query(&body);
    let challenge = qr
        .challenge
        .clone()
        .expect("the remote Verifier's challenge");
    let (status, _) = post(tam.addr, &agent.attested_response(&qr, &challenge)).await;
    assert_eq!(status, 204);
    let state = tam.store().snapshot();
    let device = state
        .devices
        .get(&agent.id())
        .expect("the device was recorded");
    assert_eq!(device.key, agent.key.public_key().to_cose_key_bytes());
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ear_signed_by_an_untrusted_key_is_refused() {
    let tam = tam(false).await;
    let agent = tam.world.agent(Curve::P256);
    let qr = agent.read_query(&post(tam.addr, b"").await.1);
    let challenge = qr.challenge.clone().unwrap();
    let before = tam.store().snapshot();
    let (status, body) = post(tam.addr, &agent.attested_response(&qr, &challenge)).await;
    assert_eq!((status, body.len()), (204, 0));
    assert_eq!(tam.store().snapshot(), before);
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_replayed_into_a_later_session_is_refused() {
    let tam = tam(true).await;
    let agent = tam.world.agent(Curve::P256);
    let first = agent.read_query(&post(tam.addr, b"").await.1);
    let old_challenge = first.challenge.clone().unwrap();
    let old_evidence = agent.evidence(&old_challenge);
    let (status, _) = post(
        tam.addr,
        &agent.sign(Message::QueryResponse(agent.response_with(
            &first,
            Some((EVIDENCE_FORMAT, old_evidence.clone())),
        ))),
    )
    .await;
    assert_eq!(status, 204);
    // A later session: the Agent (or whoever holds its key) sends the old Evidence again.
    let second = agent.read_query(&post(tam.addr, b"").await.1);
    assert_ne!(second.challenge.as_deref(), Some(&old_challenge[..]));
    let before = tam.store().snapshot();
    let replay = agent.sign(Message::QueryResponse(
        agent.response_with(&second, Some((EVIDENCE_FORMAT, old_evidence))),
    ));
    let (status, body) = post(tam.addr, &replay).await;
    assert_eq!((status, body.len()), (204, 0));
    // Nothing changes but the known device's failed appraisal, kept for the operator.
    let mut after = tam.store().snapshot();
    let failed = after.outcomes.pop().unwrap();
    assert_eq!(
        (failed.device, failed.verdict),
        (agent.id(), teep_tam::store::AttestationVerdict::Rejected)
    );
    assert_eq!(after, before);
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_response_not_signed_by_the_ears_cnf_key_is_refused() {
    let tam = tam(true).await;
    let attested = tam.world.agent(Curve::P256);
    let signer = tam.world.agent(Curve::P256);
    let qr = attested.read_query(&post(tam.addr, b"").await.1);
    let challenge = qr.challenge.clone().unwrap();
    // Evidence (and so the EAR's cnf) names `attested`; the message is signed by `signer`.
    let forged = signer.sign(Message::QueryResponse(
        attested.response_with(&qr, Some((EVIDENCE_FORMAT, attested.evidence(&challenge)))),
    ));
    let before = tam.store().snapshot();
    let (status, body) = post(tam.addr, &forged).await;
    assert_eq!((status, body.len()), (204, 0));
    assert_eq!(tam.store().snapshot(), before);
    assert!(before.devices.is_empty());
    tam.stop().await;
}
