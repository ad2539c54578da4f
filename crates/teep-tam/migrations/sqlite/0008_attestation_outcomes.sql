-- How each appraisal of a known device ended, failures included (`AttestationOutcome`):
-- the operator's "attestation results over time". At most OUTCOMES_PER_DEVICE rows per
-- device are kept (the commit deletes the oldest).
CREATE TABLE attestation_outcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device BLOB NOT NULL,
    at BIGINT NOT NULL,
    verdict TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX attestation_outcomes_by_device ON attestation_outcomes (device, id);

-- The per-device reads of the device listing (latest attestation, latest reports, last
-- contact) scanned whole tables without these: with 100 000 devices the listing did not
-- finish in two minutes.
CREATE INDEX attestations_by_device ON attestations (device, id);
CREATE INDEX suit_reports_by_device ON suit_reports (device, id);
CREATE INDEX audit_log_by_device ON audit_log (device, at);
