//! Scenario 20. Invalid, unsigned and unknown messages: the Agent answers Error; the TAM drops them or answers with an Update err-code.
