//! Persistent device state behind the processor: component contents (images and stored
//! manifests), the links that keep them alive (reference counts), and per-manifest
//! sequence numbers and signers. A procedure collects all its effects in one [`Changes`] and commits
//! them at once, so a failed or interrupted procedure changes nothing.
//!
//! [`State`] holds the semantics every store shares (what a commit does to contents,
//! links, sequence numbers and signers; which components a manifest links; which
//! manifests are installed), over any content type: bytes in [`MemoryStorage`], blob names
//! in [`crate::store::IndexedStore`]. A store of its own keeps a `State` and implements
//! only how contents are kept.

use alloc::borrow::Cow;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::error::SuitError;
use crate::model::{ComponentId, Digest, Envelope};
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

/// One installed manifest, as a TEEP Agent lists it (QueryResponse `tc-list`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledManifest {
    /// Where the manifest is stored: its manifest component ID.
    pub component_id: ComponentId,
    /// The installed manifest's sequence number.
    pub sequence_number: u64,
    /// Its authenticated digest (of the bstr-wrapped manifest).
    pub digest: Digest,
    /// The anchor that installed it (`None` for state written before signers were kept).
    pub signer: Option<SignerId>,
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
    /// Manifest component IDs of the installed manifests (see [`State::installed`]).
    fn manifest_ids(&self) -> Result<Vec<ComponentId>, SuitError>;
    /// Applies all changes, atomically: afterwards either all or none are visible.
    fn commit(&mut self, changes: Changes) -> Result<(), SuitError>;

    /// The installed manifests with their sequence numbers, digests and signers, read
    /// from the stored envelopes (which were authenticated when they were installed).
    ///
    /// # Errors
    /// The store fails, or a stored manifest no longer decodes (damaged state).
    fn manifests(&self) -> Result<Vec<InstalledManifest>, SuitError> {
        let mut out = Vec::new();
        for id in self.manifest_ids()? {
            let bytes = self
                .read(&id)?
                .ok_or_else(|| SuitError::NotInstalled(id.clone()))?;
            let summary = Envelope::decode(&bytes)?.summary()?;
            out.push(InstalledManifest {
                sequence_number: summary.sequence_number,
                digest: summary.digest,
                signer: self.signer(&id)?,
                component_id: id,
            });
        }
        Ok(out)
    }
}

/// SUIT state with contents of type `T`: bytes held in memory ([`MemoryStorage`]), or
/// the names of blobs that hold them ([`crate::store::IndexedStore`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State<T> {
    /// Component contents, by component ID (manifests under their manifest component ID).
    pub data: BTreeMap<ComponentId, T>,
    /// For each component, the manifests that link it (trust domains: unlink drops a link;
    /// the component goes with its last one).
    pub owners: BTreeMap<ComponentId, BTreeSet<ComponentId>>,
    /// `suit-manifest-sequence-number` of each installed manifest, for rollback checks.
    pub sequence_numbers: BTreeMap<ComponentId, u64>,
    /// The trust anchor that installed each manifest: only it may update the manifest.
    pub signers: BTreeMap<ComponentId, SignerId>,
}

/// State held in memory (tests, fuzzing, benchmarks, TEEs with their own persistence).
pub type MemoryStorage = State<Vec<u8>>;

impl<T> Default for State<T> {
    fn default() -> Self {
        Self {
            data: BTreeMap::new(),
            owners: BTreeMap::new(),
            sequence_numbers: BTreeMap::new(),
            signers: BTreeMap::new(),
        }
    }
}

impl<T> State<T> {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `changes`, keeping each new content through `keep` (which may store it
    /// elsewhere and return its handle). An empty link set removes the entry; sequence
    /// numbers and signers are only ever added or raised, never removed. On an error from
    /// `keep` the state is partly changed: apply to a copy when that matters.
    pub fn apply<E>(
        &mut self,
        changes: Changes,
        mut keep: impl FnMut(&ComponentId, Vec<u8>) -> Result<T, E>,
    ) -> Result<(), E> {
        for (id, value) in changes.data {
            match value {
                Some(bytes) => {
                    let kept = keep(&id, bytes)?;
                    self.data.insert(id, kept);
                }
                None => {
                    self.data.remove(&id);
                }
            }
        }
        for (id, set) in changes.owners {
            if set.is_empty() {
                self.owners.remove(&id);
            } else {
                self.owners.insert(id, set);
            }
        }
        self.sequence_numbers.extend(changes.sequence_numbers);
        self.signers.extend(changes.signers);
        Ok(())
    }

    /// The link set on `id` (empty when nothing links it).
    pub fn owners_of(&self, id: &ComponentId) -> BTreeSet<ComponentId> {
        self.owners.get(id).cloned().unwrap_or_default()
    }

    /// Components whose link set contains `owner`.
    pub fn links_held_by(&self, owner: &ComponentId) -> Vec<ComponentId> {
        self.owners
            .iter()
            .filter(|(_, set)| set.contains(owner))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Installed manifests: IDs with a sequence-number record (only manifests get one)
    /// that still have stored contents (the record outlives a deleted manifest).
    pub fn installed(&self) -> Vec<ComponentId> {
        self.sequence_numbers
            .keys()
            .filter(|id| self.data.contains_key(*id))
            .cloned()
            .collect()
    }
}

impl Storage for MemoryStorage {
    fn read(&self, id: &ComponentId) -> Result<Option<Cow<'_, [u8]>>, SuitError> {
        Ok(self.data.get(id).map(|v| Cow::Borrowed(v.as_slice())))
    }

    fn owners(&self, id: &ComponentId) -> Result<BTreeSet<ComponentId>, SuitError> {
        Ok(self.owners_of(id))
    }

    fn linked_by(&self, owner: &ComponentId) -> Result<Vec<ComponentId>, SuitError> {
        Ok(self.links_held_by(owner))
    }

    fn sequence_number(&self, manifest: &ComponentId) -> Result<Option<u64>, SuitError> {
        Ok(self.sequence_numbers.get(manifest).copied())
    }

    fn signer(&self, manifest: &ComponentId) -> Result<Option<SignerId>, SuitError> {
        Ok(self.signers.get(manifest).cloned())
    }

    fn manifest_ids(&self) -> Result<Vec<ComponentId>, SuitError> {
        Ok(self.installed())
    }

    fn commit(&mut self, changes: Changes) -> Result<(), SuitError> {
        self.apply(changes, |_, bytes| Ok::<_, SuitError>(bytes))
    }
}
