//! Scenario 10. Attestation of the TAM by the Agent (ERR_ATTESTATION_REQUIRED, then a
//! QueryRequest with the TAM's Attestation Result, cnf bound to the TAM key).
//!
//! The TEE demands the TAM's attestation (`teep tee serve --require-tam-attestation
//! --tam-verifier-key`). The TAM's platform attests the TAM's TEEP key (`teep attest
//! evidence --cnf-key`, appraised and signed by the TAM's Verifier with `teep attest
//! verify --sign-key`) into the Attestation Result file that `teep tam serve
//! --attestation-result` serves. The Agent answers the TAM's first QueryRequest with
//! ERR_ATTESTATION_REQUIRED; the TAM sends its QueryRequest again with that result; the
//! Agent checks the result's signature, freshness and `cnf` (= the key that signed the
//! QueryRequest), and the install follows: the device runs the TA and the TAM records it.
//! The attacker's case first: the TEE trusts another Verifier for the TAM (what a device
//! sees from a TAM whose result was made by a Verifier it does not trust): the Agent refuses
//! the TAM's result, nothing is installed and the TAM records no TC on the device.
//!
//! The second test has the TAM attest itself to `teep verifier serve` (`teep tam serve
//! --attestation-verifier`): its attestation key (`teep tam identity`) endorsed at the
//! Verifier, the install follows; endorsed for nobody, the Verifier does not affirm, the TAM
//! has no result to send and the device installs nothing.

use crate::common::deployment::Deployment;
use crate::fixtures::{TAM_TOKEN, Verifier, assert_nothing_installed, counter_policy};
use crate::processes::wait_for;
use serde_json::{Value, json};

/// The TAM's Attestation Result, `tam-ear.cbor`, signed by `tam-verifier.key`, about the
/// TAM's TEEP key (`cnf`) as its platform (`tam-attest.key`) attests it.
fn tam_attestation_result(d: &Deployment) {
    let tam_key = format!("{}/tam-esp256.key", d.tam_data);
    d.run(&["keys", "generate", "--out", "tam-attest.key"]);
    let ueid = "01".repeat(17);
    let hwmodel = hex::encode("teep tam host");
    let claims = json!({
        "ueid": ueid, "oemid": 32473, "hwmodel": hwmodel, "hwversion": ["1", 1],
        "manifests": [ { "uri": "urn:teep:tam", "sha256": "ab".repeat(32) } ],
    });
    std::fs::write(d.work().join("tam-claims.json"), claims.to_string()).unwrap();
    let attest_pub = hex::encode(std::fs::read(d.work().join("tam-attest.key.pub")).unwrap());
    let policy = json!({
        "policy_id": "policy:tam",
        "endorsements": [ { "key": attest_pub, "ueid": ueid } ],
        "reference_values": {
            "oemids": [32473], "hwmodels": [hwmodel], "tc_digests": ["ab".repeat(32)],
        },
    });
    std::fs::write(d.work().join("tam-policy.json"), policy.to_string()).unwrap();
    d.run(&[
        "attest",
        "evidence",
        "--key",
        "tam-attest.key",
        "--claims",
        "tam-claims.json",
        "--cnf-key",
        &tam_key,
        "--cnf-form",
        "cose-key",
        "--out",
        "tam-evidence.cbor",
    ]);
    d.run(&[
        "attest",
        "verify",
        "--policy",
        "tam-policy.json",
        "--teep-key",
        &tam_key,
        "--sign-key",
        "tam-verifier.key",
        "--ear-out",
        "tam-ear.cbor",
        "tam-evidence.cbor",
    ]);
}

#[test]
fn a_tee_demanding_the_tams_attestation_installs_only_after_a_result_it_trusts() {
    let mut d = Deployment::new();
    d.run(&["keys", "generate", "--out", "tam-verifier.key"]);
    d.run(&["keys", "generate", "--out", "stranger-verifier.key"]);
    tam_attestation_result(&d);
    d.restart_tam(&[
        "--attestation-result",
        "tam-ear.cbor",
        "--attestation-verifier-key",
        "tam-verifier.key.pub",
    ]);
    counter_policy(&d);

    // The TEE trusts another Verifier for TAMs: the TAM's result does not convince it.
    let tee = d.start_tee_with(&[
        "--require-tam-attestation",
        "--tam-verifier-key",
        "stranger-verifier.key.pub",
    ]);
    // The exchange runs to its end (the Agent's Error, then 204); nothing comes of it.
    d.policy_check();
    assert_nothing_installed(&d);
    tee.stop();

    // The TAM's own Verifier: the install follows the TAM's attestation.
    let tee = d.start_tee_with(&[
        "--require-tam-attestation",
        "--tam-verifier-key",
        "tam-verifier.key.pub",
    ]);
    d.policy_check();
    crate::fixtures::assert_counter_installed(&d);
    tee.stop();
}

/// `tam-claims.json` (the TAM platform's claims) and `name`, a Verifier policy endorsing
/// `attestation_key` (PEM) for the TAM's `ueid` with reference values matching the claims.
fn tam_verifier_policy(d: &Deployment, name: &str, attestation_key: &Value, ueid: &Value) {
    let hwmodel = hex::encode("teep tam host");
    let claims = json!({
        "oemid": 32473, "hwmodel": hwmodel, "hwversion": ["1", 1],
        "manifests": [ { "uri": "urn:teep:tam", "sha256": "ab".repeat(32) } ],
    });
    std::fs::write(d.work().join("tam-claims.json"), claims.to_string()).unwrap();
    let policy = json!({
        "policy_id": "policy:tam",
        "endorsements": [ { "key": attestation_key, "ueid": ueid } ],
        "reference_values": {
            "oemids": [32473], "hwmodels": [hwmodel], "tc_digests": ["ab".repeat(32)],
        },
    });
    std::fs::write(d.work().join(name), policy.to_string()).unwrap();
}

/// Restarts the TAM attesting itself to `verifier` and waits for the outcome of its first
/// attempt (`line` in its log).
fn tam_attested_by(d: &mut Deployment, verifier: &Verifier, line: &str) {
    d.restart_tam(&[
        "--attestation-verifier",
        &verifier.url,
        "--attestation-verifier-token",
        TAM_TOKEN,
        "--attestation-claims",
        "tam-claims.json",
        "--attestation-verifier-key",
        "verifier.key.pub",
    ]);
    wait_for(line, || {
        std::fs::read_to_string(d.tam_log()).is_ok_and(|log| log.contains(line))
    });
}

#[test]
fn a_tam_attested_by_a_remote_verifier_installs_only_when_endorsed_there() {
    let mut d = Deployment::new();
    let identity: Value =
        serde_json::from_str(&d.run(&["tam", "identity", "--json", "--data-dir", &d.tam_data]))
            .unwrap();
    let ueid = &identity["ueid"];
    counter_policy(&d);
    let demanding = [
        "--require-tam-attestation",
        "--tam-verifier-key",
        "verifier.key.pub",
    ];

    // The attacker's case: the Verifier endorses another key for the TAM's ueid.
    d.run(&["keys", "generate", "--out", "stranger-attest.key"]);
    let stranger = std::fs::read(d.work().join("stranger-attest.key.pub")).unwrap();
    let stranger = hex::encode(stranger);
    tam_verifier_policy(&d, "tam-policy-stranger.json", &json!(stranger), ueid);
    let verifier = Verifier::start_with(&d, "tam-policy-stranger.json");
    tam_attested_by(&mut d, &verifier, "TAM attestation result not refreshed");
    let tee = d.start_tee_with(&demanding);
    d.policy_check();
    assert_nothing_installed(&d);
    tee.stop();
    drop(verifier);

    // Endorsed: the TAM's result comes from the Verifier, the device installs.
    tam_verifier_policy(
        &d,
        "tam-policy.json",
        &identity["attestation_key"]["pem"],
        ueid,
    );
    let verifier = Verifier::start_with(&d, "tam-policy.json");
    tam_attested_by(
        &mut d,
        &verifier,
        "TAM attestation result refreshed from the Verifier",
    );
    let tee = d.start_tee_with(&demanding);
    d.policy_check();
    crate::fixtures::assert_counter_installed(&d);
    tee.stop();
}
