//! Scenario 10. Attestation of the TAM by the Agent (ERR_ATTESTATION_REQUIRED, then a
//! QueryRequest with the TAM's Attestation Result, cnf bound to the TAM key).
//!
//! Not filled in this round (time): no scenario test here yet. Between processes it is
//! covered by crates/teep-cli/tests/tam_attestation.rs (`teep tee serve
//! --require-tam-attestation --tam-verifier-key` against `teep tam serve
//! --attestation-result`), the engine rules by crates/teep-tam's engine tests.
