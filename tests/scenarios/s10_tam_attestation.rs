//! Scenario 10. Attestation of the TAM by the Agent (ERR_ATTESTATION_REQUIRED, then a QueryRequest with the TAM's Attestation Result, cnf bound to the TAM key).
