//! The life of a TA across real processes: `teep tam serve` (in-process Verifier endorsing
//! the device), `teep tee serve` (the software TEE, trusting the TAM and the TC signer),
//! `teep device run` (the Broker); the TA and its personalization data made with `teep suit
//! create` and uploaded with the admin commands; then the app side lists and invokes it, the
//! vendor updates it, and the operator removes TAs (policy, revocation) while a rollback
//! upload is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::path::Path;

use common::deployment::{COUNTER_V1, Deployment, id_text};
use serde_json::Value;

const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];

/// The manifest IDs of the counter TA and of its personalization data.
fn manifests() -> (String, String) {
    (
        id_text(&["TEEP-Device", "counter", "suit"]),
        id_text(&["TEEP-Device", "counter", "greeting.suit"]),
    )
}

/// What the TA answers the app (`teep device invoke`); must succeed.
fn invoke(d: &Deployment) -> String {
    common::ok(d.invoke_counter()).trim().to_owned()
}

/// The deployment with counter-v1 and its greeting in the device's policy, the TEE running
/// and one policy check done (v1 installed).
fn installed_v1() -> (Deployment, common::deployment::Spawned) {
    let d = Deployment::new();
    d.upload_counter(1);
    d.upload_greeting(1, 1);
    let (ta_manifest, perso_manifest) = manifests();
    d.set_policy(&[&ta_manifest, &perso_manifest]);
    let tee = d.start_tee();
    d.policy_check();
    (d, tee)
}

#[test]
fn a_tam_installs_a_ta_on_a_device_across_processes() {
    let (d, tee) = installed_v1();
    let broker = d.start_broker(300);
    // The device lists the TA at sequence 1 (`teep device list --json`).
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    for n in 1..=2 {
        assert_eq!(invoke(&d), format!("Hello from the TAM, call #{n}"));
    }

    // The vendor releases counter-v2 (sequence 2): the next policy check updates it in
    // place; the TA's store (the count) and its personalization data are kept.
    d.upload_counter(2);
    d.policy_check();
    assert_eq!(d.listed_sequence(&TA), Some(2), "{:?}", d.listed());
    assert_eq!(invoke(&d), "v2: HELLO FROM THE TAM, call #4");

    let (ta_manifest, perso_manifest) = manifests();
    let installed = d.tam_installed();
    assert!(
        installed.contains(&(ta_manifest, 2)),
        "the TAM recorded the update: {installed:?}"
    );
    assert!(installed.contains(&(perso_manifest, 1)), "{installed:?}");

    // `teep trace` draws the TAM's log: the first install is QueryRequest, QueryResponse,
    // Update, Success, as the messages went; the Mermaid file has the same arrows.
    let log = d.tam_log().to_str().unwrap().to_owned();
    let trace = d.run(&[
        "trace",
        &log,
        "--device",
        &d.device_id,
        "--mermaid",
        "trace.mmd",
    ]);
    // `TIME SHAFT TYPE (details)`: the shaft is `--->` (Agent to TAM) or `<---` (TAM to Agent).
    let arrows: Vec<&str> = trace
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().skip(1);
            let shaft = words.next()?;
            shaft
                .starts_with(['<', '-'])
                .then(|| words.next())
                .flatten()
        })
        .collect();
    assert_eq!(
        arrows.get(..4),
        Some(&["QueryRequest", "QueryResponse", "Update", "Success"][..]),
        "{trace}\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(trace.contains("manifests 2"), "{trace}");
    let mermaid = std::fs::read_to_string(d.work().join("trace.mmd")).unwrap();
    assert!(mermaid.starts_with("sequenceDiagram"), "{mermaid}");
    let mermaid_arrows: Vec<&str> = mermaid
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(_, label)| label.split(' ').next().unwrap())
        .collect();
    assert_eq!(mermaid_arrows, arrows, "{mermaid}");

    broker.stop();
    tee.stop();
    assert!(!Path::new(&d.socket).exists(), "socket removed on shutdown");
}

/// After the update to v2: an upload of a lower (or equal) sequence number is refused by the
/// admin API and changes nothing on the device; a revoked TC is unlinked at the next policy
/// check; a TA the policy no longer names is unlinked too, and the app gets a clean error.
#[test]
fn rollback_is_refused_and_revocation_and_policy_remove_tas_across_processes() {
    let (d, tee) = installed_v1();
    let (ta_manifest, perso_manifest) = manifests();
    // A second TA, to be revoked.
    let other = ["TEEP-Device", "other", "ta"];
    let other_manifest = id_text(&["TEEP-Device", "other", "suit"]);
    d.create(&other, 1, &[], COUNTER_V1, "other.suit");
    d.admin(&["tc", "add", "other.suit"]);
    d.set_policy(&[&ta_manifest, &perso_manifest, &other_manifest]);
    d.upload_counter(2);
    d.policy_check();
    let broker = d.start_broker(300);
    assert_eq!(d.listed_sequence(&TA), Some(2), "{:?}", d.listed());
    assert_eq!(d.listed_sequence(&other), Some(1), "{:?}", d.listed());
    assert_eq!(invoke(&d), "v2: HELLO FROM THE TAM, call #2");

    // Rollback: v1's module again at sequence 1 (signed by the same vendor), and an equal
    // sequence number with other content; the admin API refuses both, nothing changes.
    for (seq, wasm) in [(1, COUNTER_V1), (2, COUNTER_V1)] {
        let file = format!("rollback-{seq}.suit");
        d.create(&TA, seq, &[], wasm, &file);
        let out = d.admin_output(&["tc", "add", &file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "sequence {seq} accepted");
        assert!(
            err.contains(&format!("sequence number {seq} is not above the latest, 2")),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let tcs: Value = serde_json::from_str(&d.admin(&["tc", "list", "--json"])).unwrap();
    let tcs = tcs.to_string();
    assert!(!tcs.contains("rollback"), "{tcs}");
    d.policy_check();
    assert_eq!(d.listed_sequence(&TA), Some(2), "the device keeps v2");
    assert_eq!(invoke(&d), "v2: HELLO FROM THE TAM, call #4");
    assert!(d.tam_installed().contains(&(ta_manifest.clone(), 2)));

    // Revocation: the operator revokes the other TC; at the next policy check the device
    // unlinks it (it is still named by the policy), the counter stays.
    d.admin(&["tc", "revoke", &other_manifest]);
    d.policy_check();
    assert_eq!(d.listed_sequence(&other), None, "{:?}", d.listed());
    assert_eq!(d.listed_sequence(&TA), Some(2));
    let installed = d.tam_installed();
    assert!(
        !installed.iter().any(|(m, _)| *m == other_manifest),
        "{installed:?}"
    );
    assert!(
        installed.contains(&(ta_manifest.clone(), 2)),
        "{installed:?}"
    );
    // A revoked TC is not taken again, whatever its sequence number.
    d.create(&other, 2, &[], COUNTER_V1, "other-2.suit");
    let out = d.admin_output(&["tc", "add", "other-2.suit"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"));

    // Policy: the operator sets the device's policy without the counter and its data; the
    // next policy check unlinks both.
    d.set_policy(&[]);
    d.policy_check();
    let listed = d.listed();
    assert!(listed.is_empty(), "{listed:?}");
    let out = d.invoke_counter();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "invoking a removed TA succeeded");
    assert!(err.contains("404") && err.contains("unknown_ta"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let installed = d.tam_installed();
    assert!(installed.is_empty(), "the TAM still claims {installed:?}");
    // Another policy check has nothing to do and the Broker and TEE are still well.
    d.policy_check();
    assert!(d.listed().is_empty());

    broker.stop();
    tee.stop();
}
