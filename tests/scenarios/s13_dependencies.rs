//! Scenario 13. TC dependencies resolved across one or several TAMs (recursive), with
//! `have-binary` and minimum sequence numbers in requested-tc-list.
//!
//! One TAM: the device's policy names only the greeting (the counter's personalization
//! data), whose manifest depends on the counter TA's; the TAM resolves the dependency and
//! sends both (the dependency first; the engine test
//! `engine::first_contact_attests_records_key_and_sends_policy_dependencies_first` checks
//! the order on the wire), the device installs both and runs the TA with its greeting,
//! and the TAM records both installed.
//! Not done between processes: `have-binary` and minimum sequence numbers in
//! requested-tc-list (`teep device request` takes only a component ID, so the Broker's
//! RequestTA cannot carry them; the engine's plan handles requested-tc-list, tested in
//! crates/teep-tam), and dependencies across two TAMs (the Agent asks each TAM for its
//! own policy; no TAM sends another's TC).

use crate::common::deployment::Deployment;
use crate::fixtures::{assert_counter_installed, greeting_manifest};

#[test]
fn a_dependency_named_only_by_its_dependent_is_installed_too() {
    let d = Deployment::new();
    d.upload_counter(1);
    d.upload_greeting(1, 1);
    d.set_policy(&[&greeting_manifest()]);
    let _tee = d.start_tee();
    d.policy_check();
    assert_counter_installed(&d);
}
