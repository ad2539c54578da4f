//! Scenario 16. Delete via unneeded-manifest-list (device-requested) and TAM-initiated
//! removal of revoked TAs.
//!
//! Device-requested: an app asks for the counter TA (`teep device request`, the TAM's policy
//! lets the device request it), then no longer needs it (`teep device unrequest`): the Agent lists
//! its manifest in `unneeded-manifest-list`, the TAM answers with an Update unlinking it;
//! device and TAM both forget it. Before that, a Broker that forges the QueryResponse (the
//! Agent's real one with the counter added to `unneeded-manifest-list`, re-signed with a key
//! that is not the device's) gets nothing deleted: the TAM refuses it. TAM-initiated: the
//! operator revokes a TC the device's policy still names, and the next policy check unlinks
//! it (policy-removal is in `crates/teep-cli/tests/lifecycle.rs`).

use std::sync::Arc;

use teep_proto::Message;

use crate::common::deployment::{COUNTER_V1, Deployment, id_text};
use crate::messages::{message, sign_with, stranger};
use crate::processes::wait_for;
use crate::proxy::{Action, Proxy};

const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];
const OTHER: [&str; 3] = ["TEEP-Device", "other", "ta"];

#[test]
fn a_device_requested_delete_and_a_revocation_unlink_the_ta_and_a_forged_one_does_not() {
    let mut d = Deployment::new();
    let proxy = Proxy::forward(&d.tam_uri);
    d.tam_uri.clone_from(&proxy.uri());
    let counter = id_text(&["TEEP-Device", "counter", "suit"]);
    let other = id_text(&["TEEP-Device", "other", "suit"]);
    d.upload_counter(1);
    d.create(&OTHER, 1, &[], COUNTER_V1, "other.suit");
    d.admin(&["tc", "add", "other.suit"]);
    d.admin(&[
        "policy",
        "set",
        "--device",
        &d.device_id,
        "--tc",
        &other,
        "--requestable",
        &counter,
    ]);
    let tee = d.start_tee();
    let broker = d.start_broker(3600);
    proxy.wait_session_end();
    assert_eq!(d.listed_sequence(&OTHER), Some(1), "{:?}", d.listed());
    // The TAM matches requested-tc-list entries against manifest IDs (teep-tam `plan`): the
    // app names the manifest.
    d.app(&["device", "request", "/TEEP-Device/counter/suit"]);
    wait_for("the requested TA is installed", || {
        d.listed_sequence(&TA) == Some(1)
    });
    assert!(d.tam_installed().contains(&(counter.clone(), 1)));

    // The app no longer needs it; the Broker forges the QueryResponse to the TAM.
    let forge: crate::proxy::Rewriter = Arc::new(|body: &[u8]| match message(body) {
        Some(Message::QueryResponse(mut r)) => {
            let id = teep_suit::ComponentId::from_strs(&["TEEP-Device", "counter", "suit"]);
            r.unneeded_manifest_list = Some(vec![id]);
            sign_with(&stranger(), &Message::QueryResponse(r))
        }
        _ => body.to_vec(),
    });
    proxy.clear();
    proxy.plan([Action::Forward, Action::RewriteRequest(forge)]);
    let _ = d.output(&d.once_args());
    let seen = proxy.exchanges();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(
        !matches!(message(&seen[1].response), Some(Message::Update(_))),
        "the TAM answered a forged QueryResponse with an Update: {seen:?}"
    );
    assert_eq!(d.listed_sequence(&TA), Some(1), "nothing deleted");
    assert!(d.tam_installed().contains(&(counter.clone(), 1)));

    d.app(&["device", "unrequest", "/TEEP-Device/counter/ta"]);
    wait_for("the unneeded TA is unlinked", || {
        d.listed_sequence(&TA).is_none()
    });
    let installed = d.tam_installed();
    assert!(
        !installed.iter().any(|(m, _)| *m == counter),
        "{installed:?}"
    );
    assert!(installed.contains(&(other.clone(), 1)), "{installed:?}");

    // TAM-initiated: the operator revokes the other TC.
    d.admin(&["tc", "revoke", &other]);
    d.policy_check();
    assert_eq!(d.listed_sequence(&OTHER), None, "{:?}", d.listed());
    assert!(d.tam_installed().is_empty());
    broker.stop();
    tee.stop();
}
