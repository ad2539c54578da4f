//! Scenario 1. Agent-initiated session over HTTP(S): empty POST, QueryRequest, ..., 204 (and its PostgreSQL variant with two TAM replicas behind a round-robin client).
