//! Scenario 1. Agent-initiated session over HTTP(S): empty POST, QueryRequest, ..., 204 (and
//! its PostgreSQL variant with two TAM replicas behind a round-robin client).
//!
//! How: a [`Deployment`] (`teep tam serve`, `teep tee serve`, `teep device run --once`) with
//! the counter TA in the device's policy; the TEE is pointed at a recording proxy written in
//! the test ([`Proxy`]) in front of the TAM, so the test sees every POST and answer of the
//! session and decodes them with `teep inspect`. Asserted: the empty opening POST answered
//! with a QueryRequest, the QueryResponse answered with an Update, the Success answered with
//! 204 and no body; the device lists the TA and the TAM records it. The attacker then replays
//! the session's QueryResponse and Success straight to the TAM: both are refused without a
//! TEEP answer and neither the TAM's record nor the device changes.

use crate::common::deployment::{Deployment, id_text};
use crate::support_a::{OtherTam, Proxy, installed_of, message_type, post, tls_files};

pub const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];

/// The counter TA's manifest ID.
pub fn ta_manifest() -> String {
    id_text(&["TEEP-Device", "counter", "suit"])
}

/// A deployment with the counter TA (sequence 1) in the device's policy, its TEE contacting
/// the TAM through a recording proxy (`d.tam_uri` is the proxy's URI afterwards).
/// Also returns the TAM's own URI.
pub fn deployment_behind(proxy: impl FnOnce(&str) -> Proxy) -> (Deployment, Proxy, String) {
    let mut d = Deployment::new();
    d.upload_counter(1);
    d.set_policy(&[&ta_manifest()]);
    let proxy = proxy(&d.tam_uri);
    let direct = std::mem::replace(&mut d.tam_uri, proxy.uri());
    (d, proxy, direct)
}

#[test]
fn s01_agent_initiated_session_over_http() {
    let (d, proxy, upstream) = deployment_behind(Proxy::forward);
    let _tee = d.start_tee();
    d.policy_check();

    let exchanges = proxy.exchanges();
    let steps: Vec<(String, Option<u16>, String)> = exchanges
        .iter()
        .map(|e| {
            let sent = if e.request.is_empty() {
                "empty".to_owned()
            } else {
                message_type(d.work(), &e.request)
            };
            let got = if e.response.is_empty() {
                "none".to_owned()
            } else {
                message_type(d.work(), &e.response)
            };
            (sent, e.status, got)
        })
        .collect();
    let expected = [
        ("empty", 200, "query-request"),
        ("query-response", 200, "update"),
        ("success", 204, "none"),
    ]
    .map(|(s, c, g)| (s.to_owned(), Some(c), g.to_owned()));
    assert_eq!(steps, expected);
    // Every non-empty POST is labelled with TEEP's media type; the empty one carries nothing.
    assert_eq!(exchanges[0].content_type, None);
    for e in &exchanges[1..] {
        assert_eq!(e.content_type.as_deref(), Some("application/teep+cbor"));
    }
    // The app side (a Broker with its local API) lists the TA; the TAM recorded it.
    let _broker = d.start_broker(300);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);

    // Replays of the session's QueryResponse and Success, straight to the TAM: its token is
    // spent, so each is dropped with no TEEP answer; nothing is recorded.
    for e in &exchanges[1..] {
        let (status, body) = post(&upstream, &e.request);
        assert!(body.is_empty(), "a replay got a TEEP answer ({status})");
        assert_ne!(status, 200, "a replay was answered");
    }
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
}

/// One `teep device run --once` against an HTTPS TAM, trusting the CA file `ca`; the exit
/// code and standard output.
fn once_https(d: &Deployment, ca: &str) -> (Option<i32>, String) {
    let out = d.output(&[
        "device",
        "run",
        "--once",
        "--tam",
        &d.tam_uri,
        "--state-dir",
        &d.dev_dir,
        "--tam-ca",
        ca,
    ]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn s01_agent_initiated_session_over_https() {
    let mut d = Deployment::new();
    d.upload_counter(1);
    d.set_policy(&[&ta_manifest()]);
    tls_files(d.work(), "tam-tls");
    tls_files(d.work(), "impostor");
    // The same TAM (data directory) again, now serving HTTPS with a private CA's certificate.
    d.stop_tam();
    let tam = OtherTam::start(
        &d,
        "tam",
        true,
        &["--tls-cert", "tam-tls.crt", "--tls-key", "tam-tls.key"],
    );
    assert!(tam.uri.starts_with("https://127.0.0.1:"), "{}", tam.uri);
    d.admin_url.clone_from(&tam.admin_url);
    d.tam_uri.clone_from(&tam.uri);
    let _tee = d.start_tee();

    // Trusting another CA, the Broker does not authenticate the TAM: nothing is sent.
    let (code, out) = once_https(&d, "impostor-ca.pem");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("0 TAM exchange(s) completed, 1 TAM(s) not reached"),
        "{out}"
    );
    assert_eq!(
        installed_of(&d.admin(&["devices", "--json"]), &d.device_id),
        vec![]
    );

    // Trusting the TAM's CA: the whole session over TLS.
    let (code, out) = once_https(&d, "tam-tls-ca.pem");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("1 TAM exchange(s) completed, 0 TAM(s) not reached"),
        "{out}"
    );
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    let broker = d.start_broker(300);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    broker.stop();
}
