//! Scenario 9. Attestation of the Agent: background check (challenge as eat_nonce, Evidence
//! to the Verifier) and passport (token as nonce, Attestation Result in the QueryResponse).
//!
//! Background check: the TAM's QueryRequest carries a challenge, the TEE's Evidence
//! (`eat_nonce` = that challenge) comes back in the QueryResponse and the TAM has it
//! appraised, once by its in-process Verifier (`teep tam serve --verifier-policy`) and once
//! by `teep verifier serve` (`--verifier URL`). Passport: `teep device run --verifier`
//! takes the TEE's Evidence to that Verifier and the EAR to the TEE (`teep tee serve
//! --attestation passport`), which carries it in its QueryResponse. Each background check
//! ends with the counter TA and its greeting installed and runnable and the TAM's record
//! (installed TCs, attestation time). The attacker's case: the TAM trusts another Verifier
//! key than the one that signed the EARs: nothing installed, nothing recorded as attested.
//!
//! Not done between processes: a passport accepted on the -26 path. There the TAM takes a
//! passport EAR only with this session's token as its nonce (crates/teep-tam engine,
//! `passport_by_age` false), but `teep device run --verifier` fetches the EAR before the
//! session, with the Verifier's challenge; taking the TAM's token to the Verifier in the
//! middle of a session is not built. The test shows such an EAR refused (nothing
//! installed); the accepted passport between processes is the pre-26 path's
//! (crates/teep-cli/tests/pre26_lifecycle.rs, EAR fresh by `iat`).
//! Between processes it is not shown that the Evidence's `eat_nonce` is the TAM's
//! challenge (the engine tests in crates/teep-tam/tests/engine.rs replay Evidence with
//! another nonce).

use crate::common::deployment::Deployment;
use crate::fixtures::{
    Verifier, assert_counter_installed, assert_nothing_installed_unattested, counter_policy,
};

/// Background check with the TAM's in-process Verifier.
#[test]
fn background_check_in_process() {
    let d = Deployment::new();
    counter_policy(&d);
    let _tee = d.start_tee();
    d.policy_check();
    assert_counter_installed(&d);
}

/// Background check with `teep verifier serve`; a TAM trusting another Verifier key
/// installs nothing.
#[test]
fn background_check_by_a_verifier_service() {
    let mut d = Deployment::new();
    let verifier = Verifier::start(&d);
    counter_policy(&d);

    // The attacker's Verifier key: EARs signed by the real one are not trusted.
    d.run(&["keys", "generate", "--out", "other.key"]);
    d.restart_tam(&verifier.tam_args("other.key.pub"));
    let tee = d.start_tee();
    d.policy_check();
    assert_nothing_installed_unattested(&d);
    drop(tee);

    d.restart_tam(&verifier.tam_args("verifier.key.pub"));
    let _tee = d.start_tee();
    d.policy_check();
    assert_counter_installed(&d);
}

/// Passport on the -26 path: an EAR the Broker fetched ahead of time (`teep device run
/// --verifier`; its nonce is the Verifier's challenge, not this session's token) is not
/// taken as fresh by the TAM: nothing is installed, the device is not recorded attested.
#[test]
fn a_passport_fetched_ahead_is_not_fresh_on_the_26_path() {
    let mut d = Deployment::new();
    let verifier = Verifier::start(&d);
    counter_policy(&d);
    d.restart_tam(&verifier.tam_args("verifier.key.pub"));
    let _tee = d.start_tee_with(&[
        "--attestation",
        "passport",
        "--passport-verifier",
        "verifier.key.pub",
    ]);
    let out = verifier.passport_check(&d);
    assert!(out.contains("1 TAM exchange(s) completed"), "{out}");
    assert_nothing_installed_unattested(&d);
}
