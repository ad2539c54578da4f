//! Scenario 8. Negotiation failures: unsupported cipher suites, versions, freshness
//! mechanisms, SUIT report profiles (each with its Error and retry).
//!
//! How, between real processes:
//! * The Agent's side, cipher suites: `teep tee serve --alg es256` offers only `[[18, -7]]`
//!   (ES256, what older TAMs use) to a -26 TAM that offers ESP256 and Ed25519. The Agent
//!   answers the QueryRequest with ERR_UNSUPPORTED_CIPHER_SUITES listing its suite (captured
//!   by the recording proxy (`proxy.rs`), decoded with `teep inspect`); the TAM, having no
//!   suite in common, ends the exchange (204) instead of retrying; nothing is installed and
//!   the TAM has no record of the device.
//! * The TAM's side, each of the four Errors: a negotiation Error from an Agent the TAM does
//!   not know yet cannot be verified, so the test plays that Agent by hand (`teep encode`,
//!   signed by a key of its own) against the real `teep tam serve`. An Error that narrows the
//!   offer gets a new QueryRequest (the retry) offering exactly what both sides support:
//!   ESP256 only (then a COSE_Sign1), the timestamp mechanism only (then no challenge), one
//!   SUIT COSE profile. An Error leaving nothing in common (versions: the TAM has only one),
//!   and a forged one that narrows nothing, are dropped without an answer; none of them
//!   creates a device record at the TAM.
//!
//! Not between processes: the Agent's ERR_UNSUPPORTED_MSG_VERSION, _FRESHNESS_MECHANISMS and
//! _SUIT_REPORT. The real TAM offers version 0, both freshness mechanisms and every SUIT
//! profile the software TEE has, and `teep tam serve` has no option to offer others, so the
//! Agent never has cause to send them here; `teep-agent`'s engine tests
//! `an_unsupported_version_is_refused_with_our_versions` and
//! `unsupported_freshness_and_suit_profiles_are_refused_with_our_lists` cover them, and
//! `teep-tam`'s `negotiation.rs` the bounds on forged Errors.

use serde_json::{Value, json};

use crate::common::deployment::Deployment;
use crate::processes::{inspect, installed_of, start_tee_with};
use crate::proxy::{Proxy, post};
use crate::s01_session::deployment_behind;

#[test]
fn s08_an_es256_agent_and_a_26_tam_share_no_cipher_suite() {
    let (d, proxy, _) = deployment_behind(Proxy::forward);
    let _tee = start_tee_with(&d, &[&d.tam_data], &[&d.tam_uri], &["--alg", "es256"]);
    let out = d.output(&d.once_args());
    let exchanges = proxy.exchanges();
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    let error = inspect(d.work(), "error", &exchanges[1].request);
    assert_eq!(error["protected"]["alg"], -7, "signed in the Agent's suite");
    assert_eq!(error["payload"]["err-code"]["value"], 5);
    assert_eq!(
        error["payload"]["supported-teep-cipher-suites"],
        json!([[[18, -7]]])
    );
    // No suite in common: the TAM does not retry; nothing was installed or recorded.
    assert_eq!(
        (exchanges[1].status, exchanges[1].response.len()),
        (Some(204), 0)
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        installed_of(&d.admin(&["devices", "--json"]), &d.device_id),
        vec![]
    );
}

/// A new session's QueryRequest (decoded), straight from the TAM.
fn query(d: &Deployment, uri: &str) -> Value {
    let (status, body) = post(uri, &[]);
    assert_eq!(status, 200);
    inspect(d.work(), "query", &body)
}

/// POSTs an Error (`fields` added to its payload) answering `query`, signed by the
/// attacker's key; the TAM's answer decoded, or `None` when it answered nothing.
fn answer_error(
    d: &Deployment,
    uri: &str,
    query: &Value,
    code: u8,
    fields: Value,
) -> Option<Value> {
    let mut payload = json!({
        "type": "error",
        "token": query["payload"]["token"],
        "err-code": {"value": code},
    });
    payload
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let view =
        json!({"cose": "COSE_Sign1", "tagged": true, "protected": {"alg": -9}, "payload": payload});
    std::fs::write(d.work().join("error.json"), view.to_string()).unwrap();
    d.run(&[
        "encode",
        "--key",
        "agent.key",
        "error.json",
        "--out",
        "error.cbor",
    ]);
    let body = std::fs::read(d.work().join("error.cbor")).unwrap();
    let (status, reply) = post(uri, &body);
    if reply.is_empty() {
        assert_eq!(status, 204);
        None
    } else {
        Some(inspect(d.work(), "retry", &reply))
    }
}

#[test]
fn s08_the_tam_narrows_its_offer_on_each_negotiation_error() {
    let d = Deployment::new();
    d.run(&["keys", "generate", "--out", "agent.key"]);
    let uri = d.tam_uri.clone();
    let devices_before = d.admin(&["devices", "--json"]);

    // Cipher suites: ESP256 only.
    let q = query(&d, &uri);
    assert_eq!(q["cose"], "COSE_Sign");
    let retry = answer_error(
        &d,
        &uri,
        &q,
        5,
        json!({"supported-teep-cipher-suites": [[[18, -9]]]}),
    )
    .expect("a new QueryRequest");
    assert_eq!(retry["payload"]["type"], "query-request");
    // Still a COSE_Sign (the Agent is unknown), now with the ESP256 signature alone.
    assert_eq!(retry["cose"], "COSE_Sign");
    let algs: Vec<&Value> = retry["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["protected"]["alg"])
        .collect();
    assert_eq!(algs, [&json!(-9)]);
    assert_eq!(
        retry["payload"]["supported-teep-cipher-suites"],
        json!([[[18, -9]]])
    );
    assert_ne!(
        retry["payload"]["token"], q["payload"]["token"],
        "a new token"
    );

    // Freshness: the timestamp mechanism only, so no challenge.
    let q = query(&d, &uri);
    assert!(q["payload"]["challenge"].is_string(), "{q}");
    let retry = answer_error(
        &d,
        &uri,
        &q,
        3,
        json!({"supported-freshness-mechanisms": [{"value": 1}]}),
    )
    .expect("a new QueryRequest");
    let mechanisms: Vec<&Value> = retry["payload"]["supported-freshness-mechanisms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["value"])
        .collect();
    assert_eq!(mechanisms, [&json!(1)]);
    assert!(retry["payload"].get("challenge").is_none(), "{retry}");

    // SUIT COSE profiles: the first offered only.
    let q = query(&d, &uri);
    let first = q["payload"]["supported-suit-cose-profiles"][0]["value"].clone();
    let retry = answer_error(
        &d,
        &uri,
        &q,
        8,
        json!({"supported-suit-cose-profiles": [{"value": first}]}),
    )
    .expect("a new QueryRequest");
    let profiles: Vec<&Value> = retry["payload"]["supported-suit-cose-profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["value"])
        .collect();
    assert_eq!(profiles, [&first]);

    // Versions: the TAM has only version 0; an Agent of version 1 only leaves nothing.
    let q = query(&d, &uri);
    assert_eq!(q["payload"]["versions"], json!([0]));
    assert_eq!(
        answer_error(&d, &uri, &q, 4, json!({"versions": [1]})),
        None
    );
    // A forged Error that removes nothing (both suites listed) is dropped too.
    let q = query(&d, &uri);
    let all = q["payload"]["supported-teep-cipher-suites"].clone();
    assert_eq!(
        answer_error(
            &d,
            &uri,
            &q,
            5,
            json!({"supported-teep-cipher-suites": all})
        ),
        None
    );

    assert_eq!(
        d.admin(&["devices", "--json"]),
        devices_before,
        "no device recorded"
    );
}
