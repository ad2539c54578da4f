//! Scenario 9. Attestation of the Agent: background check (challenge as eat_nonce, Evidence to the Verifier) and passport (token as nonce, Attestation Result in the QueryResponse).
