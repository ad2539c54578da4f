//! Scenario 11. Attestation failure remediation: update Agent/firmware TCs, or Update with
//! ERR_ATTESTATION_REQUIRED when the TAM lacks permission.
//!
//! The TAM's Verifier policy does not list the device's hardware model, so it appraises the
//! TEE's Evidence as not affirming. The TAM has no permission to update the Agent or the
//! firmware, so it answers the QueryResponse with an Update carrying ERR_ATTESTATION_REQUIRED
//! (spec §10, QueryResponse handling 3): the device installs nothing, the TAM does not
//! record the device (anyone can make Evidence a Verifier rejects) and its audit log says
//! the attestation failed. Once the policy lists the model (the operator's remedy), the
//! next policy check attests and installs; when the model is dropped again, the now known
//! device's failed appraisal is its latest attestation outcome at the TAM. The attacker's copy of such a QueryResponse
//! signed by another key is an engine test
//! (`engine::not_affirming_evidence_in_a_response_signed_by_another_key_is_dropped`).
//! Not done: remediation by updating the Agent or firmware through TEEP (this TAM has no
//! such TCs or permission; the spec leaves that policy out of scope).

use crate::common::deployment::Deployment;
use crate::fixtures::{
    assert_counter_installed, assert_nothing_installed_unattested, audit, counter_policy,
    tam_device,
};

#[test]
fn a_rejected_device_gets_attestation_required_then_attests_after_the_remedy() {
    let mut d = Deployment::new();
    counter_policy(&d);
    let mut policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.work().join("policy.json")).unwrap())
            .unwrap();
    policy["reference_values"]["hwmodels"] =
        serde_json::json!(["00112233445566778899aabbccddeeff"]);
    std::fs::write(d.work().join("reject.json"), policy.to_string()).unwrap();
    d.restart_tam(&["--verifier-policy", "reject.json"]);
    let tee = d.start_tee();
    d.policy_check();
    assert_nothing_installed_unattested(&d);
    let failed: Vec<_> = audit(&d)
        .into_iter()
        .filter(|a| a["device"] == d.device_id.as_str())
        .map(|a| a["event"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        failed.iter().any(|e| e == "attestation not affirming"),
        "{failed:?}"
    );
    drop(tee);

    d.restart_tam(&["--verifier-policy", "policy.json"]);
    let tee = d.start_tee();
    d.policy_check();
    assert_counter_installed(&d);
    let known = tam_device(&d).unwrap();
    assert_eq!(known["last_outcome"]["verdict"], "affirming", "{known}");
    drop(tee);

    // The model falls out of the policy again: the device, known now, fails its next
    // appraisal, and the operator sees it (`last_outcome`, the console's "attestation
    // failed"), while its record keeps what it holds.
    d.restart_tam(&["--verifier-policy", "reject.json"]);
    let _tee = d.start_tee();
    d.policy_check();
    let failed = tam_device(&d).unwrap();
    assert_eq!(
        failed["last_outcome"]["verdict"], "not-affirming",
        "{failed}"
    );
    assert!(
        failed["last_outcome"]["detail"]
            .as_str()
            .unwrap()
            .contains("contraindicated"),
        "{failed}"
    );
    assert!(failed["attested_at"].is_null(), "{failed}");
    assert_eq!(failed["installed"], known["installed"], "{failed}");
}
