-- The engine's release walk (latest_sql: every version of the TCs a policy names, without
-- their envelopes) reads depends_on, which 0001 put after the envelope: SQLite had to walk
-- each row's overflow pages (the whole envelope, 64 KiB for a 64 KiB TC) to reach it.
-- With every column the walk reads in the index, it reads no table row at all.
-- PostgreSQL keeps large envelopes out of line (TOAST), so it has no such migration.
DROP INDEX tc_releases_manifest;
CREATE INDEX tc_releases_walk ON tc_releases (manifest_id, id, sequence, digest, signer, depends_on);
