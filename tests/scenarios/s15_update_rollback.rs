//! Scenario 15. Update to a newer sequence number; a rollback or replayed Update rejected.
//!
//! The counter TA goes from sequence 1 to 2 through the TAM. A proxy between the Broker and
//! the TAM (what a compromised Broker or network can do) then answers the next policy check
//! with the recorded, validly signed Update of sequence 1: the Agent refuses the replayed
//! token (ERR_PERMANENT_ERROR) and the device keeps sequence 2. Then the TAM is "restored
//! from an old backup": a TAM with the same keys whose catalog has only sequence 1 (the
//! admin API of the live TAM refuses a lower upload: `lifecycle.rs`) sends it under a fresh
//! token; the Agent's SUIT rollback check refuses it with ERR_MANIFEST_PROCESSING_FAILED and
//! a failed SUIT report, which that TAM keeps (admin API), while it does not record the
//! rolled-back version as installed. The device keeps sequence 2.

use teep_proto::{ErrCode, Message};

use crate::common::deployment::{Deployment, id_text};
use crate::messages::{device_record, message, updates};
use crate::processes::Tam;
use crate::proxy::{Action, Proxy};

const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];

#[test]
fn a_replayed_or_rolled_back_update_is_refused_and_the_device_keeps_the_new_version() {
    let mut d = Deployment::new();
    let proxy = Proxy::forward(&d.tam_uri);
    d.tam_uri.clone_from(&proxy.uri());
    let manifest = id_text(&["TEEP-Device", "counter", "suit"]);
    d.upload_counter(1);
    d.set_policy(&[&manifest]);
    let tee = d.start_tee();
    // The Broker's first policy check (at its start) installs sequence 1.
    let broker = d.start_broker(3600);
    proxy.wait_session_end();
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    d.upload_counter(2);
    d.policy_check();
    assert_eq!(d.listed_sequence(&TA), Some(2), "{:?}", d.listed());
    assert!(d.tam_installed().contains(&(manifest.clone(), 2)));
    let sent = updates(&proxy.exchanges());
    assert_eq!(sent.len(), 2, "one Update per version");
    let Some(Message::Update(old)) = message(&sent[0]) else {
        panic!("not an Update")
    };

    // Replay: the Broker's first POST of the next check is answered with the old Update.
    proxy.clear();
    proxy.plan([Action::Reply(sent[0].clone())]);
    let _ = d.output(&d.once_args());
    let seen = proxy.exchanges();
    let Some(Message::Error(e)) = seen.get(1).and_then(|x| message(&x.request)) else {
        panic!("the Agent did not answer the replay with an Error: {seen:?}")
    };
    assert_eq!(e.err_code, ErrCode::PermanentError);
    assert_eq!(e.token, old.token);
    assert_eq!(d.listed_sequence(&TA), Some(2), "the device keeps v2");
    assert!(d.tam_installed().contains(&(manifest.clone(), 2)));

    // Rollback under a fresh token: a TAM with the same keys but only sequence 1.
    d.stop_tam();
    let restored_dir = d.work().join("tam-restored");
    std::fs::create_dir_all(&restored_dir).unwrap();
    for entry in std::fs::read_dir(&d.tam_data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with("tam-") {
            std::fs::copy(&path, restored_dir.join(&name)).unwrap();
        }
    }
    let restored = Tam::start(&d, "tam-restored", &[]).with_signer(&d);
    restored.admin(&d, &["tc", "add", "ta-1.suit"]);
    restored.admin(
        &d,
        &["policy", "set", "--device", &d.device_id, "--tc", &manifest],
    );
    proxy.set_upstream(&restored.uri);
    proxy.clear();
    let _ = d.output(&d.once_args());
    let seen = proxy.exchanges();
    let error = seen
        .iter()
        .find_map(|x| match message(&x.request) {
            Some(Message::Error(e)) => Some(e),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Error for the rollback: {seen:?}"));
    assert_eq!(error.err_code, ErrCode::ManifestProcessingFailed);
    assert!(error.suit_reports.is_some(), "{error:?}");
    assert_eq!(d.listed_sequence(&TA), Some(2), "the device keeps v2");
    let record = device_record(&restored.admin(&d, &["devices", "--json"]), &d.device_id);
    let installed = record["installed"].to_string();
    assert!(
        !installed.contains(&format!("[\"{manifest}\",1]")),
        "{record}"
    );
    let reports = record["last_reports"].as_array().unwrap();
    assert!(
        reports.iter().any(|r| r["success"] == false),
        "the TAM keeps the failed report: {record}"
    );
    broker.stop();
    tee.stop();
}
