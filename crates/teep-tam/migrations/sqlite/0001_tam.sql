-- The TAM's state (teep_tam::store::MemoryState, table by table). Integers are Unix
-- seconds or bit-cast u64 sequence numbers; structured values are CBOR (src/sql/codec.rs).

-- Devices by the RFC 9679 thumbprint of their TEEP Agent key.
CREATE TABLE devices (
    id BLOB PRIMARY KEY NOT NULL,
    cose_key BLOB NOT NULL,
    class TEXT,
    revoked BOOLEAN NOT NULL,
    suite BLOB,
    attested_at BIGINT
);

-- Manifests the TAM knows it installed, in the order of Device::installed.
CREATE TABLE installed (
    device BLOB NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    manifest_id BLOB NOT NULL,
    sequence BIGINT NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (device, position)
);

-- Every version of every Trusted Component, in the order they were added.
CREATE TABLE tc_releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    manifest_id BLOB NOT NULL,
    sequence BIGINT NOT NULL,
    digest BLOB NOT NULL,
    signer BLOB,
    envelope BLOB NOT NULL,
    depends_on BLOB NOT NULL
);
CREATE INDEX tc_releases_manifest ON tc_releases (manifest_id);

-- Policy per device class, and per device (wins over its class's).
CREATE TABLE class_policies (
    class TEXT PRIMARY KEY NOT NULL,
    install BLOB NOT NULL,
    requestable BLOB NOT NULL
);
CREATE TABLE device_policies (
    device BLOB PRIMARY KEY NOT NULL,
    install BLOB NOT NULL,
    requestable BLOB NOT NULL
);

-- Sessions by token. The Verifier challenge a QueryRequest carried has its own column;
-- the rest of the typed state (kind) is CBOR.
CREATE TABLE sessions (
    token BLOB PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL,
    device BLOB,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed BOOLEAN NOT NULL,
    kind TEXT NOT NULL,
    challenge BLOB,
    state BLOB NOT NULL
);
CREATE INDEX sessions_outstanding ON sessions (device, consumed, issued_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE attestations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device BLOB NOT NULL,
    at BIGINT NOT NULL,
    ear BLOB NOT NULL
);

CREATE TABLE suit_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device BLOB NOT NULL,
    at BIGINT NOT NULL,
    manifest_digest BLOB NOT NULL,
    success BOOLEAN NOT NULL,
    report BLOB NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    device BLOB,
    event TEXT NOT NULL
);
