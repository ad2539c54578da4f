//! Scenario 8. Negotiation failures: unsupported cipher suites, versions, freshness mechanisms, SUIT report profiles (each with its Error and retry).
