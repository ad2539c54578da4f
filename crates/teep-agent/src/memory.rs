//! [`MemoryTee`]: a [`Tee`] held in memory, for tests of the engine and of whatever drives
//! it (the Broker adapter). Nothing is sealed and nothing survives the process; the state
//! blob and the SUIT storage can be snapshotted and compared, which is how tests show that
//! a refused message changed nothing.

use alloc::boxed::Box;
use alloc::vec::Vec;

use teep_attest::EatClaims;
use teep_cose::Signer;
use teep_suit::ComponentId;
use teep_suit::processor::{Decryptor, NoFetcher};
use teep_suit::storage::{MemoryStorage, Storage};

use crate::tee::{Tee, TeeError, UpdateParts};

/// The TA runtime of a [`MemoryTee`]: given the installed image and the input, the output.
pub type MemoryRuntime = Box<dyn Fn(&[u8], &[u8]) -> Result<Vec<u8>, TeeError> + Send + Sync>;

/// A TEE in memory.
pub struct MemoryTee {
    /// The SUIT storage (public: tests inspect and snapshot it).
    pub storage: MemoryStorage,
    /// The last saved engine state.
    pub state: Option<Vec<u8>>,
    /// When set, `save_state` fails with this (to test what a failing TEE does).
    pub fail_saves: bool,
    teep: Box<dyn Signer>,
    attestation: Box<dyn Signer>,
    claims: EatClaims,
    decryptor: Option<Box<dyn Decryptor>>,
    runtime: MemoryRuntime,
}

/// Everything a [`MemoryTee`] keeps, for before/after comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The SUIT storage.
    pub storage: MemoryStorage,
    /// The engine's state blob.
    pub state: Option<Vec<u8>>,
}

impl MemoryTee {
    /// An empty TEE with these keys, device claims and TA runtime.
    pub fn new(
        teep: Box<dyn Signer>,
        attestation: Box<dyn Signer>,
        claims: EatClaims,
        runtime: MemoryRuntime,
    ) -> Self {
        Self {
            storage: MemoryStorage::new(),
            state: None,
            fail_saves: false,
            teep,
            attestation,
            claims,
            decryptor: None,
            runtime,
        }
    }

    /// The same TEE with a TC decryption key.
    #[must_use]
    pub fn with_decryptor(mut self, decryptor: Box<dyn Decryptor>) -> Self {
        self.decryptor = Some(decryptor);
        self
    }

    /// What the TEE holds now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            storage: self.storage.clone(),
            state: self.state.clone(),
        }
    }
}

impl Tee for MemoryTee {
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }

    fn update_parts(&mut self) -> UpdateParts<'_> {
        UpdateParts {
            storage: &mut self.storage,
            decryptor: self.decryptor.as_deref(),
            fetcher: &NoFetcher,
        }
    }

    fn teep_signer(&self) -> &dyn Signer {
        self.teep.as_ref()
    }

    fn attestation_signer(&self) -> &dyn Signer {
        self.attestation.as_ref()
    }

    fn device_claims(&self) -> EatClaims {
        self.claims.clone()
    }

    fn load_state(&self) -> Result<Option<Vec<u8>>, TeeError> {
        Ok(self.state.clone())
    }

    fn save_state(&mut self, state: &[u8]) -> Result<(), TeeError> {
        if self.fail_saves {
            return Err(TeeError::Storage("save refused (fail_saves)".into()));
        }
        self.state = Some(state.to_vec());
        Ok(())
    }

    fn invoke(&mut self, component: &ComponentId, input: &[u8]) -> Result<Vec<u8>, TeeError> {
        let image = self
            .storage
            .read(component)
            .map_err(|e| TeeError::Runtime(alloc::format!("{e}")))?
            .ok_or_else(|| TeeError::Runtime("no image".into()))?;
        (self.runtime)(&image, input)
    }
}
