//! Scenario 1. Agent-initiated session over HTTP(S): empty POST, QueryRequest, ..., 204 (and
//! its PostgreSQL variant with two TAM replicas behind a round-robin client).
//!
//! How: a [`Deployment`] (`teep tam serve`, `teep tee serve`, `teep device run --once`) with
//! the counter TA in the device's policy; the TEE is pointed at a recording proxy written in
//! the test ([`Proxy`]) in front of the TAM, so the test sees every POST and answer of the
//! session and decodes them with `teep inspect`. Asserted: the empty opening POST answered
//! with a QueryRequest, the QueryResponse answered with an Update, the Success answered with
//! 204 and no body; the device lists the TA and the TAM records it. The attacker then replays
//! the session's QueryResponse and Success straight to the TAM: both are dropped (204, no TEEP
//! answer; the TAM logs `token already used`) and neither the TAM's record nor the device changes.
//!
//! HTTPS: the same TAM (data directory) restarted with `--tls-cert`/`--tls-key`, a
//! certificate for 127.0.0.1 by a private CA made in the test; the Broker trusts that CA
//! with `teep device run --tam-ca` (added for this scenario). Trusting another CA instead,
//! the Broker does not authenticate the TAM and sends nothing (the TAM has no record); with
//! the right CA the session completes over TLS.
//!
//! PostgreSQL (only when `TEEP_TEST_DATABASE_URL` is set, in a database created for the run
//! and dropped after; otherwise it prints that it was skipped): two `teep tam serve`
//! replicas on one database and one data directory (the same TAM keys), both appraising with
//! one remote `teep verifier serve`, behind a round-robin proxy written in the test that
//! sends each request to the other replica. One session is served by both alternately
//! (QueryRequest by one, Update by the other, Success at the first); both replicas report the
//! same record; the QueryResponse replayed to the replica that did not consume its token is
//! dropped there too.

use crate::common::deployment::{Deployment, id_text};
use crate::processes::{Tam, installed_of, message_type, tls_files};
use crate::proxy::{Proxy, post};

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
        assert_eq!((status, body), (204, vec![]), "a replay was answered");
    }
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    let log = std::fs::read_to_string(d.tam_log()).unwrap();
    assert_eq!(
        log.matches("dropped=token already used").count(),
        2,
        "{log}"
    );
}

/// One `teep device run --once` against an HTTPS TAM, trusting the CA file `ca`; the exit
/// code and standard output.
fn once_https(d: &Deployment, ca: &str) -> (Option<i32>, String, String) {
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
        String::from_utf8_lossy(&out.stderr).into_owned(),
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
    let tam = Tam::start(
        &d,
        "tam",
        &["--tls-cert", "tam-tls.crt", "--tls-key", "tam-tls.key"],
    );
    assert!(tam.uri.starts_with("https://127.0.0.1:"), "{}", tam.uri);
    d.admin_url.clone_from(&tam.admin_url);
    d.tam_uri.clone_from(&tam.uri);
    let _tee = d.start_tee();

    // Trusting another CA, the Broker does not authenticate the TAM: nothing is sent, and
    // the failure is not retried (no retry can make the certificate trusted).
    let (code, out, err) = once_https(&d, "impostor-ca.pem");
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(err.matches("teep/http retry").count(), 0, "{err}");
    assert!(err.contains("certificate was not trusted"), "{err}");
    assert!(
        out.contains("0 TAM exchange(s) completed, 1 TAM(s) not reached"),
        "{out}"
    );
    assert_eq!(
        installed_of(&d.admin(&["devices", "--json"]), &d.device_id),
        vec![]
    );

    // Trusting the TAM's CA: the whole session over TLS.
    let (code, out, _) = once_https(&d, "tam-tls-ca.pem");
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

/// The PostgreSQL variant (see the module's doc).
#[test]
fn s01_session_across_two_postgresql_replicas() {
    let Some(db) = crate::processes::PgDatabase::create("s01") else {
        return;
    };
    let mut d = Deployment::new();
    d.stop_tam();
    let verifier = crate::fixtures::Verifier::start(&d);
    let mut replica_args = vec!["--database", &db.url];
    replica_args.extend(verifier.tam_args("verifier.key.pub"));
    let one = Tam::start(&d, "tam-pg", &replica_args).with_signer(&d);
    let two = Tam::start(&d, "tam-pg", &replica_args);
    d.tam_data.clone_from(&one.data);
    d.admin_url.clone_from(&one.admin_url);
    d.upload_counter(1);
    d.set_policy(&[&ta_manifest()]);

    let replicas = [
        crate::proxy::host_port(&one.uri),
        crate::proxy::host_port(&two.uri),
    ];
    let proxy = Proxy::start(None, move |n| {
        crate::proxy::Action::ForwardTo(replicas[n % 2])
    });
    d.tam_uri = proxy.uri();
    let _tee = d.start_tee();
    d.policy_check();

    let exchanges = proxy.exchanges();
    let served: Vec<(String, Option<u16>)> = exchanges
        .iter()
        .map(|e| (e.action.clone(), e.status))
        .collect();
    let by = |i: usize| format!("ForwardTo({})", replicas[i]);
    assert_eq!(
        served,
        [(by(0), Some(200)), (by(1), Some(200)), (by(0), Some(204))],
        "QueryRequest by one, Update by two, Success at one"
    );
    assert_eq!(message_type(d.work(), &exchanges[1].response), "update");
    // Both replicas report the same record of the device.
    assert_eq!(one.installed(&d), vec![(ta_manifest(), 1)]);
    assert_eq!(two.installed(&d), vec![(ta_manifest(), 1)]);

    // The QueryResponse (its token consumed by replica two) replayed to replica one.
    let (status, body) = post(&one.uri, &exchanges[1].request);
    assert_eq!((status, body), (204, vec![]), "replay answered");
    let log = std::fs::read_to_string(&one.process.log).unwrap();
    assert!(log.contains("dropped=token already used"), "{log}");
    assert_eq!(two.installed(&d), vec![(ta_manifest(), 1)]);
    let broker = d.start_broker(300);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    broker.stop();
    // The replicas end before their database is dropped.
    drop((one, two));
    drop(db);
}
