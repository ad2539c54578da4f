//! Scenario 11. Attestation failure remediation: updating Agent/firmware TCs, or an Update with ERR_ATTESTATION_REQUIRED when the TAM lacks permission.
