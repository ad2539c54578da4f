-- Each new session row takes MAX(issue_order) + 1 (see push_session): without an index
-- that is a scan of every session held, on every connect and every Update.
CREATE INDEX sessions_issue_order ON sessions (issue_order);
