-- The admin API's state (teep_tam::store::MemoryState::signers and ::revoked_tcs).

-- TC-signer trust anchors the operator configured: a name, one COSE_Key and the
-- component-ID prefixes (CBOR list of component IDs, src/sql/codec.rs) it may write.
CREATE TABLE tc_signers (
    name TEXT PRIMARY KEY NOT NULL,
    cose_key BLOB NOT NULL,
    scope BLOB NOT NULL
);

-- Trusted Components the operator revoked, by manifest component ID (every version),
-- in the order revoked.
CREATE TABLE revoked_tcs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    manifest_id BLOB UNIQUE NOT NULL
);
