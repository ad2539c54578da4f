-- The TEEP messages the TAM exchanged, for the operator's console
-- (teep_tam::sql::SqlMessageLog): every replica records here, so each one's console shows
-- every session and a restart loses none. Bounded: each record deletes the messages more
-- than the configured number older than its own (seq), and the sessions left empty.
CREATE TABLE session_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    direction TEXT NOT NULL,
    message_type TEXT NOT NULL,
    token_prefix TEXT,
    at BIGINT NOT NULL,
    size BIGINT NOT NULL,
    dropped TEXT,
    -- The decoded view (JSON text): device-supplied, returned as data.
    json TEXT NOT NULL
);
CREATE INDEX session_messages_by_session ON session_messages (session, seq);

-- A session of the log: its device once known, and its newest message (listing order).
CREATE TABLE message_sessions (
    session TEXT PRIMARY KEY,
    device TEXT,
    last_seq BIGINT NOT NULL
);
CREATE INDEX message_sessions_by_last ON message_sessions (last_seq);
CREATE INDEX message_sessions_by_device ON message_sessions (device, last_seq);

-- Token (hex) -> the log session its message belongs to.
CREATE TABLE message_tokens (
    token TEXT PRIMARY KEY,
    session TEXT NOT NULL
);
CREATE INDEX message_tokens_by_session ON message_tokens (session);
