//! Scenario 7. First contact with an unknown Agent: a COSE_Sign QueryRequest with ESP256 and Ed25519 signatures; then COSE_Sign1 with the selected suite.
