-- The TAM's state (teep_tam::store::MemoryState, table by table). Integers are Unix
-- seconds or bit-cast u64 sequence numbers; structured values are CBOR (src/sql/codec.rs).

-- Devices by the RFC 9679 thumbprint of their TEEP Agent key.
CREATE TABLE devices (
    id BYTEA PRIMARY KEY NOT NULL,
    cose_key BYTEA NOT NULL,
    class TEXT,
    revoked BOOLEAN NOT NULL,
    suite BYTEA,
    attested_at BIGINT
);

-- Manifests the TAM knows it installed, in the order of Device::installed.
CREATE TABLE installed (
    device BYTEA NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    manifest_id BYTEA NOT NULL,
    sequence BIGINT NOT NULL,
    digest BYTEA NOT NULL,
    PRIMARY KEY (device, position)
);

-- Every version of every Trusted Component, in the order they were added.
CREATE TABLE tc_releases (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    manifest_id BYTEA NOT NULL,
    sequence BIGINT NOT NULL,
    digest BYTEA NOT NULL,
    signer BYTEA,
    envelope BYTEA NOT NULL,
    depends_on BYTEA NOT NULL
);
CREATE INDEX tc_releases_manifest ON tc_releases (manifest_id);

-- Policy per device class, and per device (wins over its class's).
CREATE TABLE class_policies (
    class TEXT PRIMARY KEY NOT NULL,
    install BYTEA NOT NULL,
    requestable BYTEA NOT NULL
);
CREATE TABLE device_policies (
    device BYTEA PRIMARY KEY NOT NULL,
    install BYTEA NOT NULL,
    requestable BYTEA NOT NULL
);

-- Sessions by token. The Verifier challenge a QueryRequest carried has its own column;
-- the rest of the typed state (kind) is CBOR.
CREATE TABLE sessions (
    token BYTEA PRIMARY KEY NOT NULL,
    session_id BYTEA NOT NULL,
    device BYTEA,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed BOOLEAN NOT NULL,
    kind TEXT NOT NULL,
    challenge BYTEA,
    state BYTEA NOT NULL
);
CREATE INDEX sessions_outstanding ON sessions (device, consumed, issued_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE attestations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device BYTEA NOT NULL,
    at BIGINT NOT NULL,
    ear BYTEA NOT NULL
);

CREATE TABLE suit_reports (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device BYTEA NOT NULL,
    at BIGINT NOT NULL,
    manifest_digest BYTEA NOT NULL,
    success BOOLEAN NOT NULL,
    report BYTEA NOT NULL
);

CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    device BYTEA,
    event TEXT NOT NULL
);
