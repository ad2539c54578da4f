//! Scenario 5. The ProcessError path (network and HTTP failures) and the Agent's retry policy.
