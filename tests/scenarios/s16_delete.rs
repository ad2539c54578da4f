//! Scenario 16. Delete through unneeded-manifest-list (device-requested) and TAM-initiated removal of revoked TAs.
