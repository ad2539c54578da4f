//! What the Agent engine needs from a TEE, and nothing more.
//!
//! The engine ([`crate::engine`]) is the TEEP state machine; everything that must live in
//! the TEE's protected world is behind [`Tee`]: the sealed SUIT storage the manifest
//! processor writes to, the TEEP and attestation signing keys, the claims the device makes
//! about itself, the TC decryption key, the engine's own small persistent state and the TA
//! runtime. A real TEE maps these onto its secure storage and key slots; the software TEE
//! (`sim`) maps them onto its sealed state directory and Wasm runtime; tests use
//! [`crate::memory::MemoryTee`].
//!
//! The trait is object-safe and `no_std`: the engine never needs a file system, a clock
//! or an RNG of its own.

use alloc::string::String;
use alloc::vec::Vec;

use teep_attest::EatClaims;
use teep_cose::Signer;
use teep_suit::ComponentId;
use teep_suit::processor::{Decryptor, Fetcher};
use teep_suit::storage::Storage;

/// Why the TEE could not do what the engine asked.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TeeError {
    /// Sealed storage (the engine's own state blob) could not be read or written.
    #[error("sealed storage: {0}")]
    Storage(String),
    /// The TA runtime refused or failed the call.
    #[error("TA runtime: {0}")]
    Runtime(String),
}

/// The two things one Update needs at once from the TEE: its SUIT storage, to change,
/// and its TC decryption key, to read encrypted payloads with (split so that both can be
/// borrowed together).
pub struct UpdateParts<'a> {
    /// The sealed SUIT storage (committed atomically by the processor).
    pub storage: &'a mut dyn Storage,
    /// The TC decryption key; `None`: this TEE refuses encrypted payloads.
    pub decryptor: Option<&'a dyn Decryptor>,
    /// Resolves payload URIs (install by URI, scenario 12); a TEE without network access
    /// lends `NoFetcher`. The manifest's digest is checked on what it returns.
    pub fetcher: &'a dyn Fetcher,
}

/// A Trusted Execution Environment as the Agent engine sees it.
///
/// `Send` so that an engine owning its TEE can move to the thread or task that serves the
/// Broker.
pub trait Tee: Send {
    /// The installed TCs and manifests (read side of the sealed SUIT storage).
    fn storage(&self) -> &dyn Storage;

    /// The storage and decryption key for one Update.
    fn update_parts(&mut self) -> UpdateParts<'_>;

    /// The Agent's TEEP key: it signs every message to a TAM, and its public half goes as
    /// `cnf` into the Evidence. Its algorithm is the one TEEP cipher suite the Agent
    /// supports.
    fn teep_signer(&self) -> &dyn Signer;

    /// The attestation key, which signs Evidence (never TEEP messages).
    fn attestation_signer(&self) -> &dyn Signer;

    /// What the device claims about itself in every Evidence: `ueid`, `oemid`, `hwmodel`,
    /// `hwversion`, `manifests` (the Agent and its firmware), and optionally `dbgstat`,
    /// `secboot`, ... The engine sets `eat_profile`, `eat_nonce`, `cnf` and `iat` itself
    /// and ignores whatever this gives for them.
    fn device_claims(&self) -> EatClaims;

    /// The engine's own persistent state (requested TAs, known TAMs, answered tokens), as
    /// last saved; `None` on first start.
    ///
    /// # Errors
    /// [`TeeError::Storage`] when the sealed blob exists but cannot be read or unsealed.
    fn load_state(&self) -> Result<Option<Vec<u8>>, TeeError>;

    /// Replaces the engine's persistent state, atomically and sealed.
    ///
    /// # Errors
    /// [`TeeError::Storage`]; the previous state is then still the one loaded.
    fn save_state(&mut self, state: &[u8]) -> Result<(), TeeError>;

    /// Runs the installed TA `component` on `input` (the engine has checked it is
    /// installed).
    ///
    /// # Errors
    /// [`TeeError::Runtime`] when the TA cannot be loaded or fails.
    fn invoke(&mut self, component: &ComponentId, input: &[u8]) -> Result<Vec<u8>, TeeError>;
}
