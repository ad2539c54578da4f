//! The per-TA key-value store behind the `kv_get` / `kv_put` ABI functions.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Why the store could not serve a request (an I/O or sealing failure of the backing
/// storage, never a TA's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backing storage failed; the string says how.
    #[error("TA store backend failed: {0}")]
    Backend(alloc::string::String),
}

/// Key-value storage for TAs, each TA seeing only the entries under its own component id.
///
/// `component` is the TA's identity as the Agent keys its state (the CBOR encoding of its
/// SUIT component identifier). The runtime passes the invoked TA's id and nothing a TA
/// says can change it, so one TA cannot name another's entries. The sealed storage of the
/// software TEE implements this on teep-suit's sealed indexed store.
pub trait TaStore {
    /// The value stored under `key` for `component`, if any.
    fn get(&self, component: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores every `(key, value)` of one successful invocation for `component`: all of
    /// them or, on error, none.
    fn put_all(
        &mut self,
        component: &[u8],
        writes: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), StoreError>;
}

/// An in-memory [`TaStore`] (tests, benchmarks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTaStore {
    entries: BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>>,
}

impl MemoryTaStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TaStore for MemoryTaStore {
    fn get(&self, component: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .entries
            .get(&(component.to_vec(), key.to_vec()))
            .cloned())
    }

    fn put_all(
        &mut self,
        component: &[u8],
        writes: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), StoreError> {
        for (key, value) in writes {
            self.entries
                .insert((component.to_vec(), key.clone()), value.clone());
        }
        Ok(())
    }
}
