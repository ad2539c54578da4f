//! Scenario 14. Personalization data as a separate, encrypted TC depending on its TA.
//!
//! The counter's greeting is its own TC (manifest `/TEEP-Device/counter/greeting.suit`),
//! encrypted to the TEE's decryption key and depending on the TA's manifest; the device's
//! policy names both. After one policy check `teep device invoke` gets the TA's answer
//! with the personalized greeting, and the TAM records both installed. The attacker's
//! case: the greeting encrypted to another key: the TEE cannot decrypt it, the greeting is
//! not installed (the TA, its own TC, is) and the invocation does not greet; a greeting
//! encrypted to the TEE at a higher sequence number then installs.
//! Not done: the variant in which the personalization data's signer runs its own TAM (a
//! second TAM only for the greeting): it needs the Agent to take the dependency from
//! another TAM than its dependent's, which scenario 13 also leaves out.

use crate::common::deployment::Deployment;
use crate::fixtures::{counter_manifest, greeting_manifest, tee_decryption_key};

#[test]
fn an_encrypted_greeting_personalizes_its_ta() {
    let d = Deployment::new();
    d.run(&["keys", "generate", "--out", "other.key"]);
    d.upload_counter(1);
    d.upload_greeting_with(1, 1, &["--encrypt-to", "other.key.pub"]);
    d.set_policy(&[&counter_manifest(), &greeting_manifest()]);
    let tee = d.start_tee();
    d.policy_check();
    {
        let _broker = d.start_broker(3600);
        assert_eq!(
            d.listed_sequence(&["TEEP-Device", "counter", "greeting"]),
            None
        );
        let out = d.invoke_counter();
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("Hello from the TAM"),
            "{out:?}"
        );
        let installed = d.tam_installed();
        assert!(
            !installed.iter().any(|(m, _)| *m == greeting_manifest()),
            "{installed:?}"
        );
    }
    drop(tee);

    let key = tee_decryption_key(&d);
    d.upload_greeting_with(2, 1, &["--encrypt-to", key]);
    let _tee = d.start_tee();
    d.policy_check();
    let _broker = d.start_broker(3600);
    assert_eq!(
        d.listed_sequence(&["TEEP-Device", "counter", "greeting"]),
        Some(2)
    );
    let out = crate::common::ok(d.invoke_counter());
    assert!(out.contains("Hello from the TAM"), "{out}");
    let mut installed = d.tam_installed();
    installed.sort();
    let mut want = vec![(counter_manifest(), 1), (greeting_manifest(), 2)];
    want.sort();
    assert_eq!(installed, want);
}
