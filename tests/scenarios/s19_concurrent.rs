//! Scenario 19. Multiple concurrent requests per device (token tracking, expiry, caps).
//!
//! A TAM with `--max-sessions-per-device 2`. Three policy checks each install one more TA
//! while a proxy keeps each Success from the TAM, so three Update sessions of the device
//! are opened one after the other, none of them answered. The TAM's record follows the
//! device's verified tc-list in each QueryResponse, so before any Success it already lists
//! the two TAs the device reported in the third session; and answering that QueryResponse
//! retired the device's older Update tokens (a Success to an older Update must not rewrite
//! a record a newer session made). The Successes are then delivered late: the first and
//! second (their tokens retired) change nothing at the TAM; the third is recorded; the
//! third again (a replayed Success, its token consumed) changes nothing. The device has
//! all three. Expiry is scenario 18; the cap on outstanding sessions of one device is
//! also tested in `teep-tam`'s engine and store tests (sessions opened in the same second
//! are aged in the order opened).

use crate::common::deployment::{COUNTER_V1, Deployment, id_text};
use crate::messages::{deliver, device_record, withheld_success};
use crate::processes::Tam;
use crate::proxy::Proxy;

#[test]
fn outstanding_sessions_per_device_are_capped_and_each_token_counts_once() {
    let mut d = Deployment::new();
    d.stop_tam();
    let tam = Tam::start(&d, "tam-capped", &["--max-sessions-per-device", "2"]).with_signer(&d);
    let proxy = Proxy::forward(&tam.uri);
    d.tam_uri.clone_from(&proxy.uri());
    d.tam_data.clone_from(&tam.data);
    d.admin_url.clone_from(&tam.admin_url);
    let names = ["one", "two", "three"];
    let manifests: Vec<String> = names
        .iter()
        .map(|n| id_text(&["TEEP-Device", n, "suit"]))
        .collect();
    for n in names {
        let file = format!("{n}.suit");
        d.create(&["TEEP-Device", n, "ta"], 1, &[], COUNTER_V1, &file);
        d.admin(&["tc", "add", &file]);
    }
    let tee = d.start_tee();
    let mut successes = Vec::new();
    for k in 1..=3 {
        let policy: Vec<&str> = manifests[..k].iter().map(String::as_str).collect();
        d.set_policy(&policy);
        successes.push(withheld_success(&d, &proxy));
    }
    let recorded = |d: &Deployment| -> Vec<String> {
        let record = device_record(&d.admin(&["devices", "--json"]), &d.device_id);
        record["installed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m[0].as_str().unwrap().to_owned())
            .collect()
    };
    let before = recorded(&d);
    assert_eq!(
        before,
        manifests[..2],
        "the record follows the third session's tc-list"
    );
    for (k, success) in successes[..2].iter().enumerate() {
        let late = deliver(&d, &proxy, success.clone());
        assert_eq!(
            recorded(&d),
            before,
            "the retired token of session {}: its Success counted ({:?})",
            k + 1,
            late.status
        );
    }
    deliver(&d, &proxy, successes[2].clone());
    let after = recorded(&d);
    assert_eq!(after, manifests, "the third session's Success");
    let replay = deliver(&d, &proxy, successes[2].clone());
    assert_eq!(
        recorded(&d),
        after,
        "a replayed Success counted ({:?})",
        replay.status
    );
    let broker = d.start_broker(3600);
    proxy.wait_session_end();
    let listed = d.listed();
    assert_eq!(listed.len(), 3, "the device has all three: {listed:?}");
    broker.stop();
    tee.stop();
}
