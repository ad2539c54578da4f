//! Scenario 20. Invalid/unsigned/unknown messages: the Agent answers Error; the TAM drops
//! them or answers with an err-code.
//!
//! A proxy between the Broker and the TAM (a compromised Broker or network) hands the
//! Agent, in the TAM's place, garbage, an unsigned TEEP message, a QueryRequest signed by a
//! key the TEE does not trust, and a message type a TAM never sends (a QueryResponse signed
//! by the TAM's own key): each time the Agent answers a signed Error (the proxy sees the
//! Broker POST it): ERR_PERMANENT_ERROR, ERR_BAD_CERTIFICATE for the untrusted key, the token
//! echoed only from the verified message. Then the proxy replaces the Agent's
//! QueryResponse to the TAM with garbage, an unsigned QueryResponse and one signed by a key
//! the TAM does not know: the TAM sends no Update for any of them. Throughout, the device's
//! policy names a TC: nothing is installed and the TAM records nothing until a clean policy
//! check, which installs it (so each refusal is what stopped the install).

use std::sync::Arc;

use teep_proto::{
    CipherSuite, DataItemRequested, ErrCode, ErrorMessage, Message, Numbering, QueryRequest,
    QueryResponse, SuitCoseProfile,
};

use crate::common::deployment::{Deployment, id_text};
use crate::messages::{message, sign_with, stranger, tam_key};
use crate::proxy::{Action, Proxy};

const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];

fn query_request() -> Message {
    Message::QueryRequest(QueryRequest {
        token: Some(vec![0x20; 16]),
        data_item_requested: DataItemRequested::TRUSTED_COMPONENTS,
        supported_teep_cipher_suites: vec![CipherSuite::sign1(-9)],
        supported_suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
        ..QueryRequest::default()
    })
}

/// One policy check whose first TAM answer is `bytes`; the Error the Agent answered.
fn agent_error(d: &Deployment, proxy: &Proxy, bytes: Vec<u8>) -> ErrorMessage {
    proxy.clear();
    proxy.plan([Action::Reply(bytes)]);
    let _ = d.output(&d.once_args());
    let seen = proxy.exchanges();
    match seen.get(1).and_then(|x| message(&x.request)) {
        Some(Message::Error(e)) => e,
        other => panic!("the Agent answered {other:?}: {seen:?}"),
    }
}

#[test]
fn invalid_messages_get_an_error_from_the_agent_and_nothing_from_the_tam() {
    let mut d = Deployment::new();
    let proxy = Proxy::forward(&d.tam_uri);
    d.tam_uri.clone_from(&proxy.uri());
    let counter = id_text(&["TEEP-Device", "counter", "suit"]);
    d.upload_counter(1);
    let tee = d.start_tee();
    let broker = d.start_broker(3600);
    proxy.wait_session_end();
    d.set_policy(&[&counter]);

    // To the Agent.
    let unsigned = query_request().encode(Numbering::Draft26).unwrap();
    let by_stranger = sign_with(&stranger(), &query_request());
    let tam = tam_key(&d.tam_data);
    let not_from_a_tam = sign_with(
        &tam,
        &Message::QueryResponse(QueryResponse {
            token: Some(vec![0x21; 16]),
            ..QueryResponse::default()
        }),
    );
    for (what, bytes, code, token) in [
        (
            "garbage",
            b"\x00garbage".to_vec(),
            ErrCode::PermanentError,
            None,
        ),
        ("unsigned", unsigned, ErrCode::PermanentError, None),
        ("untrusted key", by_stranger, ErrCode::BadCertificate, None),
        (
            "QueryResponse from the TAM",
            not_from_a_tam,
            ErrCode::PermanentError,
            Some(vec![0x21; 16]),
        ),
    ] {
        let e = agent_error(&d, &proxy, bytes);
        assert_eq!(e.err_code, code, "{what}: {e:?}");
        // The token is echoed only from a verified message.
        assert_eq!(e.token, token, "{what}");
        assert!(d.listed().is_empty(), "{what}: {:?}", d.listed());
    }

    // To the TAM, in place of the Agent's QueryResponse.
    let rewrites: [(&str, crate::proxy::Rewriter); 3] = [
        ("garbage", Arc::new(|_: &[u8]| b"\x00garbage".to_vec())),
        (
            "unsigned",
            Arc::new(|body: &[u8]| message(body).unwrap().encode(Numbering::Draft26).unwrap()),
        ),
        (
            "unknown key",
            Arc::new(|body: &[u8]| sign_with(&stranger(), &message(body).unwrap())),
        ),
    ];
    for (what, rewrite) in rewrites {
        proxy.clear();
        proxy.plan([Action::Forward, Action::RewriteRequest(rewrite)]);
        let _ = d.output(&d.once_args());
        let seen = proxy.exchanges();
        assert!(
            matches!(message(&seen[1].request), Some(Message::QueryResponse(_))),
            "{what}: {seen:?}"
        );
        assert!(
            !matches!(message(&seen[1].response), Some(Message::Update(_))),
            "{what}: the TAM answered with an Update ({:?})",
            seen[1].status
        );
        assert!(d.listed().is_empty(), "{what}: {:?}", d.listed());
        assert!(d.tam_installed().is_empty(), "{what}");
    }

    // A clean check installs the TC: the refusals were what stopped it.
    d.policy_check();
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    assert!(d.tam_installed().contains(&(counter, 1)));
    broker.stop();
    tee.stop();
}
