-- Devices whose TEEP key the operator registered in advance and which are served without
-- attestation (teep_tam::store::Device::attestation_exempt): older Agents.
ALTER TABLE devices ADD COLUMN attestation_exempt BOOLEAN NOT NULL DEFAULT FALSE;
