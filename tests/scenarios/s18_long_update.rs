//! Scenario 18. A long-running Update, with token and nonce state kept, and timeouts.
