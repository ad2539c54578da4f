//! Scenario 12. Install by URI (Agent fetches), install with integrated payload, install
//! with encrypted payload.
//!
//! By URI: the counter TA's manifest names its module by `http://` URI (`teep suit create
//! --uri`), served by a small HTTP server in the test; the TEE fetches it (`teep tee serve
//! --fetch`, off by default) and the SUIT processor checks the manifest's digest on it.
//! The attacker's case: the server first hands out an altered module: the install fails,
//! nothing is installed, the TAM records the failed SUIT report and keeps the device's
//! installed list empty; once the right module is served, the next policy check installs.
//! Integrated: the TA's module inside the envelope (also the other scenarios' default).
//! Encrypted: the TA's module encrypted to the TEE's decryption key (`--encrypt-to`); the
//! attacker's case, a module encrypted to another key, installs nothing.

use crate::common::deployment::{COUNTER_V1, Deployment};
use crate::fixtures::{
    PayloadServer, assert_counter_installed, assert_nothing_installed, counter_manifest,
    greeting_manifest, tam_device, tam_reports, tee_decryption_key,
};

/// The counter TA at sequence 1 made with `extra` options, and its greeting; both in the
/// device's policy.
fn counter_with(d: &Deployment, extra: &[&str]) {
    d.create(
        &["TEEP-Device", "counter", "ta"],
        1,
        extra,
        COUNTER_V1,
        "ta-1.suit",
    );
    d.admin(&["tc", "add", "ta-1.suit"]);
    d.upload_greeting(1, 1);
    d.set_policy(&[&counter_manifest(), &greeting_manifest()]);
}

#[test]
fn install_by_uri_checks_the_fetched_payload() {
    let d = Deployment::new();
    let module = std::fs::read(COUNTER_V1).unwrap();
    let mut altered = module.clone();
    *altered.last_mut().unwrap() ^= 0x01;
    let server = PayloadServer::start("counter.wasm", altered);
    counter_with(&d, &["--uri", &server.url]);
    let tee = d.start_tee_with(&["--fetch"]);

    d.policy_check();
    assert!(server.served() >= 1, "the TEE did not fetch the payload");
    assert_nothing_installed(&d);
    assert!(
        tam_reports(&d).iter().any(|(_, ok)| !ok),
        "no failed report: {}",
        tam_device(&d).unwrap()
    );

    server.replace(module);
    // A fresh TEE process: the Broker that listed the device above was dropped in the
    // middle of its own policy check, which leaves the Agent's round half done.
    drop(tee);
    let _tee = d.start_tee_with(&["--fetch"]);
    d.policy_check();
    assert_counter_installed(&d);
}

#[test]
fn install_with_integrated_payload() {
    let d = Deployment::new();
    counter_with(&d, &[]);
    let _tee = d.start_tee();
    d.policy_check();
    assert_counter_installed(&d);
}

#[test]
fn install_with_encrypted_payload() {
    let d = Deployment::new();
    d.run(&["keys", "generate", "--out", "other.key"]);
    // Encrypted to another key: the TEE cannot decrypt, installs nothing.
    d.create(
        &["TEEP-Device", "counter", "ta"],
        1,
        &["--encrypt-to", "other.key.pub"],
        COUNTER_V1,
        "ta-1.suit",
    );
    d.admin(&["tc", "add", "ta-1.suit"]);
    d.set_policy(&[&counter_manifest()]);
    let tee = d.start_tee();
    d.policy_check();
    assert_nothing_installed(&d);
    drop(tee);

    let key = tee_decryption_key(&d);
    d.create(
        &["TEEP-Device", "counter", "ta"],
        2,
        &["--encrypt-to", key],
        COUNTER_V1,
        "ta-2.suit",
    );
    d.admin(&["tc", "add", "ta-2.suit"]);
    let _tee = d.start_tee();
    d.policy_check();
    let _broker = d.start_broker(3600);
    assert_eq!(
        d.listed_sequence(&["TEEP-Device", "counter", "ta"]),
        Some(2)
    );
    assert_eq!(d.tam_installed(), vec![(counter_manifest(), 2)]);
}
