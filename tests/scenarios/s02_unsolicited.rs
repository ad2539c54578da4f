//! Scenario 2. The Agent returns a message at once (an unsolicited QueryResponse, under the
//! three conditions of draft §11), so the first POST already carries it.
//!
//! How: the deployment's TEE contacts "its TAM" through the scripted proxy (`proxy.rs`).
//! The real `teep tam serve` always puts a token (or a challenge) in its QueryRequests, so
//! the QueryRequest that makes an unsolicited QueryResponse possible, one with neither, is
//! played by the proxy: made by the test with `teep encode`, signed with the TAM's own ESP256
//! key (the one the TEE trusts), answered by the proxy with 204. The Agent's QueryResponse to
//! it carries no token (draft §4.2: absent when the request had none). Then an app's RequestTA
//! (`teep device request`) goes to the real TAM:
//! 1. all three conditions hold (last QueryRequest without token and challenge, no
//!    ProcessError since, the TAM's key a cached trust anchor): the Agent MAY answer at once,
//!    and does — the first POST carries a QueryResponse (no token) listing the requested TA;
//! 2. the real TAM, which issued no QueryRequest this answers, drops it (204, nothing
//!    recorded: the device is still unknown to it), as its token rules demand (§5: a TAM acts
//!    only on a response bearing one of its outstanding tokens; without a token or attested
//!    freshness a QueryResponse could be a replay, §6); the Broker then opens one ordinary
//!    session (an empty POST) at once, so the request is not lost and the next one opens
//!    empty (the TAM's QueryRequest had a token);
//! 3. after a ProcessError for that TAM (an HTTP 503 from the proxy), the next RequestTA's
//!    first POST is empty again (condition 2);
//! 4. after a real session (the TAM's QueryRequest had a token), also empty (condition 1);
//!    and the TA, once in the device's policy, is installed by the ordinary session.
//!
//! Not between processes: condition 3 (the TAM's key no longer cached). The TEE's trust
//! anchors are fixed for its process; `teep-agent`'s engine tests cover a key that is not.

use crate::common::deployment::Deployment;
use crate::processes::{inspect, installed_of, wait_for};
use crate::proxy::{Action, Exchange, Proxy};
use crate::s01_session::{TA, deployment_behind, ta_manifest};

/// A QueryRequest with neither token nor challenge (asking only for the TC list), signed
/// with the TAM's ESP256 key.
fn plain_query_request(d: &Deployment) -> Vec<u8> {
    let view = serde_json::json!({
        "cose": "COSE_Sign1", "tagged": true, "protected": {"alg": -9},
        "payload": {
            "type": "query-request",
            "versions": [0],
            "supported-teep-cipher-suites": [[[18, -9]]],
            "supported-freshness-mechanisms": [{"value": 0}],
            "supported-suit-cose-profiles": [{"value": [-16, -9, -29, -65534]}],
            "data-item-requested": {"value": 2},
        },
    });
    std::fs::write(d.work().join("plain-qr.json"), view.to_string()).unwrap();
    let key = format!("{}/tam-esp256.key", d.tam_data);
    d.run(&[
        "encode",
        "--key",
        &key,
        "plain-qr.json",
        "--out",
        "plain-qr.cbor",
    ]);
    std::fs::read(d.work().join("plain-qr.cbor")).unwrap()
}

/// `teep device request` for the counter TA (through the running Broker); must succeed.
fn request_ta(d: &Deployment) {
    let out = d.app(&["device", "request", "/TEEP-Device/counter/ta"]);
    assert!(out.contains("completed (1 TAM exchange(s))"), "{out}");
}

/// The exchanges recorded after the first `from`.
fn since(proxy: &Proxy, from: usize) -> Vec<Exchange> {
    proxy.exchanges()[from..].to_vec()
}

#[test]
fn s02_unsolicited_query_response_only_under_the_three_conditions() {
    let (d, proxy, direct) = deployment_behind(|_| Proxy::scripted(Action::Status(503)));
    proxy.set_upstream(&direct);
    // Nothing in the device's policy yet: the sessions below install nothing by themselves.
    d.set_policy(&[]);
    let tam = Action::Forward;
    let plain = plain_query_request(&d);
    let scripted = vec![Action::Reply(plain), Action::Status(204)];
    proxy.set(scripted.clone(), tam.clone());
    let _tee = d.start_tee();
    // The Broker's policy check at start meets the scripted TAM.
    let broker = d.start_broker(300);
    wait_for("the scripted session", || proxy.exchanges().len() >= 2);
    let answer = inspect(d.work(), "qresp", &proxy.exchanges()[1].request);
    assert_eq!(answer["payload"]["type"], "query-response");
    assert!(answer["payload"].get("token").is_none(), "{answer}");
    assert!(answer["payload"]["tc-list"].is_array(), "{answer}");

    // 1 and 2. RequestTA: the first POST is the unsolicited QueryResponse; the TAM drops it.
    //    The Broker then opens one ordinary session (an empty POST), whose QueryRequest has
    //    a token, so the Agent is not stuck answering unsolicited (the next RequestTA opens
    //    empty, below).
    let before = proxy.exchanges().len();
    request_ta(&d);
    let sent = since(&proxy, before);
    assert!(sent.len() >= 3, "{sent:?}");
    assert!(sent[1].request.is_empty(), "no empty post after the drop");
    let solicited = inspect(d.work(), "solicited", &sent[2].request);
    assert_eq!(solicited["payload"]["type"], "query-response");
    assert!(solicited["payload"].get("token").is_some(), "{solicited}");
    let first = inspect(d.work(), "unsolicited", &sent[0].request);
    assert_eq!(first["payload"]["type"], "query-response");
    assert!(first["payload"].get("token").is_none(), "{first}");
    let requested = first["payload"]["requested-tc-list"].to_string();
    assert!(requested.contains(&hex::encode("counter")), "{first}");
    assert_eq!((sent[0].status, sent[0].response.len()), (Some(204), 0));
    assert_eq!(
        installed_of(&d.admin(&["devices", "--json"]), &d.device_id),
        vec![]
    );
    assert_eq!(d.listed_sequence(&TA), None);
    let log = std::fs::read_to_string(d.tam_log()).unwrap();
    assert_eq!(
        log.matches(r#"kind="query-response" device= token= dropped=no token"#)
            .count(),
        1,
        "{log}"
    );
    let before = proxy.exchanges().len();
    request_ta(&d);
    let sent = since(&proxy, before);
    assert!(
        sent[0].request.is_empty(),
        "still unsolicited after the drop"
    );

    // 3. Plain QueryRequest again, then a ProcessError: the next RequestTA opens empty.
    proxy.set(scripted, tam.clone());
    d.policy_check();
    proxy.set(vec![Action::Status(503)], tam.clone());
    let failed = d.output(&d.once_args());
    assert_eq!(failed.status.code(), Some(1));
    let before = proxy.exchanges().len();
    request_ta(&d);
    let sent = since(&proxy, before);
    assert!(sent[0].request.is_empty(), "unsolicited after ProcessError");
    assert!(sent.len() >= 2, "a real session: {sent:?}");

    // 4. The last QueryRequest (the real TAM's) had a token: empty again. With the TA now in
    //    the device's policy, the ordinary session installs it.
    d.set_policy(&[&ta_manifest()]);
    let before = proxy.exchanges().len();
    request_ta(&d);
    let sent = since(&proxy, before);
    assert!(sent[0].request.is_empty(), "unsolicited after a token");
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    broker.stop();
}
