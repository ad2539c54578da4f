//! The local API for apps, against the scripted Agent (and a scripted TAM for requests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::sync::Arc;

use common::*;
use teep_broker::{AgentAnswer, AgentCall, Broker, ScriptedAgent};
use tokio::net::TcpListener;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use teep_broker::TaInfo;

fn installed() -> ScriptedAgent {
    ScriptedAgent::new().with_ta(
        TaInfo {
            component_id: ta(),
            sequence_number: Some(3),
        },
        |input| input.iter().rev().copied().collect(),
    )
}

async fn serve(agent: ScriptedAgent) -> (String, Arc<Broker<ScriptedAgent>>) {
    let broker = Arc::new(broker(agent));
    let listener = loopback_listener().await;
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(teep_broker::local_api::serve_loopback(
        broker.clone(),
        listener,
    ));
    (base, broker)
}

async fn call(base: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let request = match body {
        Some(body) => client
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body),
        None => client.get(format!("{base}{path}")),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    call(base, path, Some(serde_json::to_vec(&body).unwrap())).await
}

const TA_HEX: &str = "74612e7761736d"; // "ta.wasm"

#[tokio::test]
async fn lists_installed_tas() {
    let (base, _) = serve(installed()).await;
    assert_eq!(
        call(&base, "/v1/tas", None).await,
        (
            200,
            json!({ "tas": [{ "component_id": [TA_HEX], "sequence_number": 3 }] })
        )
    );
}

#[tokio::test]
async fn invokes_a_ta_with_base64_bytes() {
    let (base, broker) = serve(installed()).await;
    let input = b"\x00hello\xff";
    let (status, body) = post(
        &base,
        "/v1/tas/invoke",
        json!({ "component_id": [TA_HEX], "input": BASE64.encode(input) }),
    )
    .await;
    assert_eq!(status, 200);
    let output = BASE64.decode(body["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, b"\xffolleh\x00");
    assert_eq!(
        broker.agent().calls(),
        [AgentCall::InvokeTa {
            component_id: ta(),
            input: input.to_vec()
        }]
    );
}

#[tokio::test]
async fn invoke_errors_are_typed_and_bad_input_never_reaches_the_agent() {
    let (base, broker) = serve(installed()).await;
    let (status, body) = post(
        &base,
        "/v1/tas/invoke",
        json!({ "component_id": ["00"], "input": "" }),
    )
    .await;
    assert_eq!((status, &body["error"]), (404, &json!("unknown_ta")));
    let calls_before = broker.agent().calls().len();

    let (status, body) = post(
        &base,
        "/v1/tas/invoke",
        json!({ "component_id": [TA_HEX], "input": "not base64!" }),
    )
    .await;
    assert_eq!((status, &body["error"]), (400, &json!("bad_input")));
    for malformed in [
        json!({ "component_id": ["zz"], "input": "" }),
        json!({ "component_id": TA_HEX, "input": "" }),
        json!({ "component_id": [TA_HEX], "input": "", "extra": 1 }),
        json!({ "input": "" }),
    ] {
        let (status, _) = post(&base, "/v1/tas/invoke", malformed.clone()).await;
        assert!((400..500).contains(&status), "{malformed} -> {status}");
    }
    let huge = vec![b' '; teep_broker::local_api::MAX_LOCAL_REQUEST + 1];
    assert_eq!(call(&base, "/v1/tas/invoke", Some(huge)).await.0, 413);
    assert_eq!(broker.agent().calls().len(), calls_before);
}

#[tokio::test]
async fn request_runs_the_exchange_and_reports_its_outcome() {
    let tam = tam(vec![
        Answer::Teep(b"query-request".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let agent = installed()
        .on_request_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"query-response".to_vec())))
        .on_request_ta(Ok(AgentAnswer::Nothing));
    let (base, broker) = serve(agent).await;
    let hint = "https://hint.invalid/tam";

    let request = json!({ "component_id": [TA_HEX], "tam_uri": hint });
    assert_eq!(
        post(&base, "/v1/tas/request", request.clone()).await,
        (200, json!({ "outcome": "completed", "exchanges": 1 }))
    );
    assert_eq!(tam.seen().len(), 2);
    assert_eq!(
        broker.agent().calls()[0],
        AgentCall::RequestTa(wants_ta(Some(hint)))
    );

    assert_eq!(
        post(&base, "/v1/tas/request", request).await,
        (200, json!({ "outcome": "nothing_to_do", "exchanges": 0 }))
    );
    assert_eq!(tam.seen().len(), 2);
}

#[tokio::test]
async fn unreachable_tam_is_a_gateway_error() {
    let down = format!("http://{}/tam", closed_port().await);
    let (base, _) = serve(installed().on_unrequest_ta(contact(&down))).await;
    let (status, body) = post(
        &base,
        "/v1/tas/unrequest",
        json!({ "component_id": [TA_HEX] }),
    )
    .await;
    assert_eq!((status, &body["error"]), (502, &json!("tam_unreachable")));
}

#[tokio::test]
async fn unrequest_and_policy_check_reach_the_agent() {
    let tam = tam(vec![Answer::NoContent, Answer::NoContent]).await;
    let agent = installed()
        .on_unrequest_ta(contact(&tam.uri()))
        .on_policy_check(contact(&tam.uri()));
    let (base, broker) = serve(agent).await;

    assert_eq!(
        post(
            &base,
            "/v1/tas/unrequest",
            json!({ "component_id": [TA_HEX] })
        )
        .await,
        (200, json!({ "outcome": "completed", "exchanges": 1 }))
    );
    assert_eq!(
        call(&base, "/v1/policy-check", Some(Vec::new())).await,
        (200, json!({ "completed": 1, "failed": 0 }))
    );
    assert_eq!(
        broker.agent().calls(),
        [
            AgentCall::UnrequestTa(ta()),
            AgentCall::RequestPolicyCheck { new_check: true },
            AgentCall::RequestPolicyCheck { new_check: false }
        ]
    );
    assert_eq!(tam.seen().len(), 2);
}

#[tokio::test]
async fn refuses_to_listen_beyond_loopback() {
    let broker = Arc::new(broker(installed()));
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let serving = teep_broker::local_api::serve_loopback(broker, listener);
    // A server that started would never return: bound the wait so that this fails instead.
    let error = tokio::time::timeout(std::time::Duration::from_secs(2), serving)
        .await
        .expect("served on a non-loopback address")
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn serves_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.sock");
    let broker = Arc::new(broker(installed()));
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(teep_broker::local_api::serve_unix(broker, listener));

    let client = reqwest::Client::builder()
        .unix_socket(path)
        .build()
        .unwrap();
    let response = client.get("http://broker/v1/tas").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["tas"][0]["component_id"], json!([TA_HEX]));
}
