//! Scenario 7. First contact with an unknown Agent: a COSE_Sign QueryRequest with ESP256 and
//! Ed25519 signatures; then COSE_Sign1 with the selected suite.
//!
//! How: the TAM (`teep tam serve`, keys for both suites) behind the recording proxy
//! (`proxy.rs`); a device it has never seen runs one policy check. Decoded with `teep
//! inspect`: the first QueryRequest is a tagged COSE_Sign with two signatures, `alg` -9
//! (ESP256) and -19 (Ed25519), and lists both suites; the Agent answers with a COSE_Sign1
//! (ESP256, its only suite) and everything the TAM sends afterwards (the Update) is a
//! COSE_Sign1 with ESP256. The attacker first strips the ESP256 signature from the
//! QueryRequest on the path (a downgrade to a suite the Agent does not trust the TAM for):
//! the Agent answers an Error ERR_UNSUPPORTED_CIPHER_SUITES listing its one suite, no Update
//! is sent, and the TAM records nothing about the device.
//!
//! Not between processes: an Agent that selects Ed25519. The software TEE's TEEP key is
//! always P-256 (ESP256), so the Ed25519 branch is covered by the engine tests only:
//! `teep-tam`'s `engine::empty_post_opens_session_with_cose_sign_offering_everything` and
//! `engine::update_is_signed_in_the_suite_the_agent_chose`, `teep-agent`'s
//! `engine::first_query_request_is_answered_in_the_suite_that_verified_with_evidence`. Note also that over HTTP the session-opening empty POST carries no identity
//! of the Agent, so the TAM cannot tell a known device from a new one before the
//! QueryResponse: every session's QueryRequest is a COSE_Sign (not only the first contact's),
//! which the test shows with a further session after the install.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::processes::inspect;
use crate::proxy::{Action, Proxy, Rewriter};
use crate::s01_session::{TA, deployment_behind, ta_manifest};

/// The COSE_Sign `body` with only its last signature (the Ed25519 one) kept.
fn keep_last_signature(body: &[u8]) -> Vec<u8> {
    let mut r = teep_cbor::read::Reader::new(body);
    if r.tag("tag").ok() != Some(98) {
        return body.to_vec();
    }
    assert_eq!(r.array("cose").unwrap(), 4);
    let mut out = vec![0xd8, 0x62, 0x84];
    for field in ["protected", "unprotected", "payload"] {
        out.extend_from_slice(r.raw(field).unwrap());
    }
    let n = r.array("signatures").unwrap();
    let mut last = &[][..];
    for _ in 0..n {
        last = r.raw("signature").unwrap();
    }
    out.push(0x81);
    out.extend_from_slice(last);
    out
}

/// The `alg` of each signature of a decoded COSE_Sign.
fn algs(cose: &serde_json::Value) -> Vec<i64> {
    cose["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["protected"]["alg"].as_i64().unwrap())
        .collect()
}

#[test]
fn s07_first_contact_cose_sign_then_cose_sign1() {
    let attack = Arc::new(AtomicBool::new(true));
    let on = Arc::clone(&attack);
    let (d, proxy, _) = deployment_behind(|tam| {
        let rewrite: Rewriter = Arc::new(keep_last_signature);
        Proxy::start(Some(tam), move |_| {
            if on.load(Ordering::SeqCst) {
                Action::RewriteAnswer(Arc::clone(&rewrite))
            } else {
                Action::Forward
            }
        })
    });
    let _tee = d.start_tee();

    // The downgraded QueryRequest (Ed25519 only) is refused by the Agent.
    let once = d.output(&d.once_args());
    let stripped = &proxy.exchanges()[0];
    assert_eq!(
        algs(&inspect(d.work(), "stripped", &stripped.response)),
        [-19]
    );
    // It answers with an Error naming the one suite it has (ERR_UNSUPPORTED_CIPHER_SUITES, 5),
    // the TAM ends the exchange (204): no Update crossed, so nothing was installed.
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    let attacked = proxy.exchanges();
    assert_eq!(attacked.len(), 2, "{attacked:?}");
    let error = inspect(d.work(), "error", &attacked[1].request);
    assert_eq!(error["payload"]["type"], "error");
    assert_eq!(error["payload"]["err-code"]["value"], 5);
    assert_eq!(
        error["payload"]["supported-teep-cipher-suites"],
        serde_json::json!([[[18, -9]]])
    );
    assert_eq!(
        (attacked[1].status, attacked[1].response.len()),
        (Some(204), 0)
    );
    let devices = d.admin(&["devices", "--json"]);
    assert!(
        !devices.contains(&d.device_id),
        "the TAM recorded the device: {devices}"
    );
    attack.store(false, Ordering::SeqCst);
    let attacked = attacked.len();

    d.policy_check();
    let session = &proxy.exchanges()[attacked..];
    let query = inspect(d.work(), "query", &session[0].response);
    assert_eq!(query["cose"], "COSE_Sign");
    assert_eq!(query["tagged"], true);
    assert_eq!(algs(&query), [-9, -19]);
    assert_eq!(
        query["payload"]["supported-teep-cipher-suites"],
        serde_json::json!([[[18, -9]], [[18, -19]]])
    );
    for (name, body, ty) in [
        ("response", &session[1].request, "query-response"),
        ("update", &session[1].response, "update"),
    ] {
        let message = inspect(d.work(), name, body);
        assert_eq!(message["cose"], "COSE_Sign1", "{name}");
        assert_eq!(message["protected"]["alg"], -9, "{name}");
        assert_eq!(message["payload"]["type"], ty);
    }
    // The device is known now, yet the next session opens the same way: the empty POST
    // does not say who is asking.
    let before = proxy.exchanges().len();
    d.policy_check();
    let again = inspect(d.work(), "again", &proxy.exchanges()[before].response);
    assert_eq!(again["payload"]["type"], "query-request");
    assert_eq!(algs(&again), [-9, -19]);

    let broker = d.start_broker(300);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    broker.stop();
}
