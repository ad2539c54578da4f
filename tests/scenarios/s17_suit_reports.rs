//! Scenario 17. SUIT reports: boot-time reports in QueryResponse (and from the TAM in QueryRequest), install reports in Success/Error, nonce = token, signing and encryption to the TAM.
