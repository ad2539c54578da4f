-- What an audited admin call affected, or why it was refused
-- (teep_tam::store::AuditEntry::detail); NULL for the engine's lines and older rows.
ALTER TABLE audit_log ADD COLUMN detail TEXT;

-- A CA certificate (DER) as a TC-signer anchor (teep_tam::store::SignerRecord::ca): the
-- leaves its x5chain verifies to sign as this anchor. NULL for a raw-key anchor.
ALTER TABLE tc_signers ADD COLUMN ca_cert BYTEA;
