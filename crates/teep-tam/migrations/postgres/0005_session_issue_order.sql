-- The order sessions were opened in, so that the per-device bound on outstanding tokens
-- retires the oldest even among sessions issued in the same second (issued_at is whole
-- seconds). Each new row gets one more than the highest held (see push_session);
-- existing rows are numbered by (issued_at, token), the order used until now.
ALTER TABLE sessions ADD COLUMN issue_order BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET issue_order = (
    SELECT COUNT(*) FROM sessions AS earlier
    WHERE earlier.issued_at < sessions.issued_at
       OR (earlier.issued_at = sessions.issued_at AND earlier.token <= sessions.token)
);
