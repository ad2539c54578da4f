-- How many commits have written the device record: a commit that rewrites the record
-- names the revision its decision read and fails unless the record is still at it (see
-- `Changes::device_revision`), so a replica slow to commit does not overwrite what another
-- committed meanwhile.
ALTER TABLE devices ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
