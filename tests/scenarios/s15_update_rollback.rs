//! Scenario 15. Update to a newer sequence number; a rollback or replayed Update rejected.
