//! Scenario 3. The RequestPolicyCheck loop over several trusted TAMs (one URI per call).
