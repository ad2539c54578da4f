-- The releases a device failed to install (store::Failed), with how often and when:
-- `[* [manifest-id, digest, failures, at]]` in CBOR; 0x80 is the empty list.
ALTER TABLE devices ADD COLUMN failed BYTEA NOT NULL DEFAULT '\x80';
