-- How many sessions of devices not known yet are outstanding (device NULL, not
-- consumed), kept by triggers: every connect reads the sessions beyond the newest
-- `max_anonymous_sessions - 1`, and finding them with OFFSET walked every outstanding
-- one, so a flood of empty POSTs made each connect cost more than the last. With the
-- count, a connect reads only the sessions it retires (ANONYMOUS_SQL in sqlite_ops.rs).
CREATE TABLE anonymous_sessions (n BIGINT NOT NULL);
INSERT INTO anonymous_sessions (n)
    SELECT COUNT(*) FROM sessions WHERE device IS NULL AND consumed = FALSE;

CREATE TRIGGER anonymous_sessions_insert AFTER INSERT ON sessions
    WHEN NEW.device IS NULL AND NEW.consumed = FALSE
BEGIN
    UPDATE anonymous_sessions SET n = n + 1;
END;

CREATE TRIGGER anonymous_sessions_delete AFTER DELETE ON sessions
    WHEN OLD.device IS NULL AND OLD.consumed = FALSE
BEGIN
    UPDATE anonymous_sessions SET n = n - 1;
END;

CREATE TRIGGER anonymous_sessions_update AFTER UPDATE OF device, consumed ON sessions
    WHEN (OLD.device IS NULL AND OLD.consumed = FALSE)
        != (NEW.device IS NULL AND NEW.consumed = FALSE)
BEGIN
    UPDATE anonymous_sessions
        SET n = n + (NEW.device IS NULL AND NEW.consumed = FALSE)
                  - (OLD.device IS NULL AND OLD.consumed = FALSE);
END;
