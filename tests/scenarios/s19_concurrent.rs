//! Scenario 19. Multiple concurrent requests per device (token tracking, expiry, caps).
//!
//! A TAM with `--max-sessions-per-device 2`. Three policy checks each install one more TA
//! while a proxy keeps each Success from the TAM, so three Update sessions of the device
//! are outstanding at once: opening the third retires the oldest token. The Successes are
//! then delivered late: the first (its token retired) changes nothing at the TAM; the
//! second and third are recorded (each Update carried the TAs not yet confirmed); the third
//! again (a replayed Success, its token consumed) changes nothing. The device has all three. Expiry is scenario 18. (Found: the TAM ages sessions by their
//! issue time in whole seconds, then by token, so among sessions opened in the same second
//! the one retired is arbitrary, possibly the newest; the test spaces them a second apart.)

use crate::common::deployment::{COUNTER_V1, Deployment, id_text};
use crate::support_c::{Proxy, Tam, deliver, device_record, withheld_success};

#[test]
fn outstanding_sessions_per_device_are_capped_and_each_token_counts_once() {
    let mut d = Deployment::new();
    d.stop_tam();
    let tam = Tam::start(&d, "tam-capped", &["--max-sessions-per-device", "2"]);
    let proxy = Proxy::start(&tam.uri);
    d.tam_uri.clone_from(&proxy.uri);
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
        // The TAM orders sessions by issue time in whole seconds (then by token): sessions
        // of one second have no defined age order, so each starts in a second of its own.
        std::thread::sleep(std::time::Duration::from_millis(1100));
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
    assert!(
        before.is_empty(),
        "no Success reached the TAM yet: {before:?}"
    );

    let late = deliver(&d, &proxy, successes[0].clone());
    assert_eq!(
        recorded(&d),
        before,
        "a retired token's Success counted ({})",
        late.status
    );
    // Without a Success the TAM does not count a TA as installed: each later Update carries
    // the earlier TAs again (the Agent takes a re-delivery as such).
    deliver(&d, &proxy, successes[1].clone());
    assert_eq!(recorded(&d), manifests[..2], "the second session's Success");
    deliver(&d, &proxy, successes[2].clone());
    let after = recorded(&d);
    assert_eq!(after, manifests, "the third session's Success");
    let replay = deliver(&d, &proxy, successes[2].clone());
    assert_eq!(
        recorded(&d),
        after,
        "a replayed Success counted ({})",
        replay.status
    );
    let broker = d.start_broker(3600);
    proxy.wait_session_end();
    let listed = d.listed();
    assert_eq!(listed.len(), 3, "the device has all three: {listed:?}");
    broker.stop();
    tee.stop();
}
