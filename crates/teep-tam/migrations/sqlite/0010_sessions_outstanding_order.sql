-- The outstanding tokens of a device (OUTSTANDING_SQL) and of unknown devices
-- (ANONYMOUS_SQL, on every connect) are read in (issued_at, issue_order, token) order:
-- with those columns in the index, the walk is that order and needs no table row, where
-- the index of 0001 made SQLite read every such session's row and sort them all.
DROP INDEX sessions_outstanding;
CREATE INDEX sessions_outstanding ON sessions (device, consumed, issued_at, issue_order, token);
