//! Scenario 12. Install by URI (the Agent fetches), install with an integrated payload, install with an encrypted payload.
