//! The scenarios of RFC 9397 (the TEEP architecture) that `../shared/spec/teep-architecture.md`
//! §8 lists, one test each, between real processes (`teep tam serve`, `teep tee serve`,
//! `teep device run`, `teep verifier serve`) on loopback. Each asserts on the device's
//! installed state and on the TAM's recorded state, not only on exit codes. Built as a test
//! target of `teep-cli` (so that `CARGO_BIN_EXE_teep` names the binary under test); the
//! README beside this file says which test covers which scenario.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

#[path = "../../crates/teep-cli/tests/common/mod.rs"]
mod common;

mod s01_session;
mod s02_unsolicited;
mod s03_several_tams;
mod s05_process_error;
mod s06_tee_topologies;
mod s07_first_contact;
mod s08_negotiation;
mod s09_agent_attestation;
mod s10_tam_attestation;
mod s11_attestation_remediation;
mod s12_install_modes;
mod s13_dependencies;
mod s14_personalization;
mod s15_update_rollback;
mod s16_delete;
mod s17_suit_reports;
mod s18_long_update;
mod s19_concurrent;
mod s20_invalid_messages;
mod s21_trust_anchors;
mod s22_multiple_tams;

mod fixtures;
mod messages;
mod processes;
mod proxy;
