//! Persistent device state behind the processor: component contents (images and stored
//! manifests), the links that keep them alive (reference counts), and per-manifest
//! sequence numbers and signers. A procedure collects all its effects in one [`Changes`] and commits
//! them at once, so a failed or interrupted procedure changes nothing.

use alloc::borrow::Cow;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::error::SuitError;
use crate::model::ComponentId;
use crate::trust::SignerId;

/// Everything one procedure changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New contents of components; `None` deletes the component.
    pub data: BTreeMap<ComponentId, Option<Vec<u8>>>,
    /// New link sets (the manifests that reference a component); empty removes them.
    pub owners: BTreeMap<ComponentId, BTreeSet<ComponentId>>,
    /// New high-water sequence numbers per manifest component ID.
    pub sequence_numbers: BTreeMap<ComponentId, u64>,
    /// The anchor that installed each manifest component ID (kept like sequence numbers).
    pub signers: BTreeMap<ComponentId, SignerId>,
}

/// The device's SUIT state.
pub trait Storage {
    /// Contents of a component (an image, or a stored manifest envelope).
    fn read(&self, id: &ComponentId) -> Result<Option<Cow<'_, [u8]>>, SuitError>;
    /// The manifests holding a link on `id`; its reference count is the set's size.
    fn owners(&self, id: &ComponentId) -> Result<BTreeSet<ComponentId>, SuitError>;
    /// The components on which `owner` holds a link.
    fn linked_by(&self, owner: &ComponentId) -> Result<Vec<ComponentId>, SuitError>;
    /// Highest sequence number ever installed for a manifest component ID (kept after
    /// the manifest is deleted, so a deleted TC cannot come back at an older version).
    fn sequence_number(&self, manifest: &ComponentId) -> Result<Option<u64>, SuitError>;
    /// The trust anchor that last installed a manifest component ID (kept after deletion
    /// with the sequence number: the high-water mark belongs to that signer). `None` for
    /// state written before signers were recorded.
    fn signer(&self, manifest: &ComponentId) -> Result<Option<SignerId>, SuitError>;
    /// Applies all changes, atomically: afterwards either all or none are visible.
    fn commit(&mut self, changes: Changes) -> Result<(), SuitError>;
}

/// State held in memory (tests, fuzzing, benchmarks, TEEs with their own persistence).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryStorage {
    pub data: BTreeMap<ComponentId, Vec<u8>>,
    pub owners: BTreeMap<ComponentId, BTreeSet<ComponentId>>,
    pub sequence_numbers: BTreeMap<ComponentId, u64>,
    pub signers: BTreeMap<ComponentId, SignerId>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The maps a store keeps, with contents of type `T` (bytes, or object file names).
pub(crate) struct Maps<'a, T> {
    pub data: &'a mut BTreeMap<ComponentId, T>,
    pub owners: &'a mut BTreeMap<ComponentId, BTreeSet<ComponentId>>,
    pub seqs: &'a mut BTreeMap<ComponentId, u64>,
    pub signers: &'a mut BTreeMap<ComponentId, SignerId>,
}

/// Applies `changes` to a store's maps (shared by the in-memory and directory stores).
pub(crate) fn apply<T>(changes: Changes, maps: Maps<'_, T>, mut store: impl FnMut(Vec<u8>) -> T) {
    let Maps {
        data,
        owners,
        seqs,
        signers,
    } = maps;
    for (id, value) in changes.data {
        match value {
            Some(bytes) => {
                data.insert(id, store(bytes));
            }
            None => {
                data.remove(&id);
            }
        }
    }
    for (id, set) in changes.owners {
        if set.is_empty() {
            owners.remove(&id);
        } else {
            owners.insert(id, set);
        }
    }
    seqs.extend(changes.sequence_numbers);
    signers.extend(changes.signers);
}

/// Components whose link set contains `owner` (shared by the in-memory and directory stores).
pub(crate) fn linked_by(
    owners: &BTreeMap<ComponentId, BTreeSet<ComponentId>>,
    owner: &ComponentId,
) -> Vec<ComponentId> {
    owners
        .iter()
        .filter(|(_, set)| set.contains(owner))
        .map(|(id, _)| id.clone())
        .collect()
}

impl Storage for MemoryStorage {
    fn read(&self, id: &ComponentId) -> Result<Option<Cow<'_, [u8]>>, SuitError> {
        Ok(self.data.get(id).map(|v| Cow::Borrowed(v.as_slice())))
    }

    fn owners(&self, id: &ComponentId) -> Result<BTreeSet<ComponentId>, SuitError> {
        Ok(self.owners.get(id).cloned().unwrap_or_default())
    }

    fn linked_by(&self, owner: &ComponentId) -> Result<Vec<ComponentId>, SuitError> {
        Ok(linked_by(&self.owners, owner))
    }

    fn sequence_number(&self, manifest: &ComponentId) -> Result<Option<u64>, SuitError> {
        Ok(self.sequence_numbers.get(manifest).copied())
    }

    fn signer(&self, manifest: &ComponentId) -> Result<Option<SignerId>, SuitError> {
        Ok(self.signers.get(manifest).cloned())
    }

    fn commit(&mut self, changes: Changes) -> Result<(), SuitError> {
        let maps = Maps {
            data: &mut self.data,
            owners: &mut self.owners,
            seqs: &mut self.sequence_numbers,
            signers: &mut self.signers,
        };
        apply(changes, maps, |b| b);
        Ok(())
    }
}
