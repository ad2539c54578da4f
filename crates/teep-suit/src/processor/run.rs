//! The state of one procedure run: an overlay of pending changes over read-only storage,
//! and the one path by which directives change a component ([`Run::put`]).

use alloc::borrow::Cow;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::command::Parameters;
use crate::error::SuitError;
use crate::model::{ComponentId, Envelope};
use crate::report::{Entry, Record};
use crate::storage::{Changes, Storage};
use crate::trust::SignerId;

use super::Processor;
use super::ctx::Ctx;
use super::outcome::Invocation;

/// Which procedure a run belongs to (process-dependency and unlink depend on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Procedure {
    Update,
    Invocation,
    Uninstall,
}

/// What the manifests of one Update hand on to each other: later manifests see earlier
/// ones' effects, and all of it is committed at once (or nothing).
#[derive(Default)]
pub(super) struct Carried {
    pub changes: Changes,
    /// Manifest digest of the manifest holding each sequence number this Update set (a
    /// root installed or a dependency processed): an equal number is accepted again only
    /// for that very manifest.
    pub pinned: BTreeMap<ComponentId, [u8; 32]>,
}

pub(super) struct Run<'p, 's> {
    pub p: &'p Processor<'p>,
    pub store: &'s dyn Storage,
    pub procedure: Procedure,
    pub changes: Changes,
    pub pinned: BTreeMap<ComponentId, [u8; 32]>,
    /// Parameters by component identifier, shared by a root and its dependencies.
    pub params: BTreeMap<ComponentId, Parameters>,
    pub records: Vec<Entry>,
    pub invocations: Vec<Invocation>,
    /// SHA-256 of components' current contents, valid until the component is written
    /// again (validate re-checks what install just wrote: hashing it twice buys nothing,
    /// the bytes are in memory we control).
    pub digests: BTreeMap<ComponentId, [u8; 32]>,
    /// Dependency components filled in this run and not processed since, with the record
    /// of the command that filled them: none may be committed.
    pub unprocessed: BTreeMap<ComponentId, Record>,
    /// (dependent, dependency, section key) for each process-dependency that ran.
    pub ran: BTreeSet<(ComponentId, ComponentId, u64)>,
}

impl<'p, 's> Run<'p, 's> {
    pub(super) fn new(
        p: &'p Processor<'p>,
        store: &'s dyn Storage,
        procedure: Procedure,
        carried: Carried,
    ) -> Self {
        Self {
            p,
            store,
            procedure,
            changes: carried.changes,
            pinned: carried.pinned,
            params: BTreeMap::new(),
            records: Vec::new(),
            invocations: Vec::new(),
            digests: BTreeMap::new(),
            unprocessed: BTreeMap::new(),
            ran: BTreeSet::new(),
        }
    }

    /// What the next manifest of the same Update starts from.
    pub(super) fn carried(&mut self) -> Carried {
        Carried {
            changes: core::mem::take(&mut self.changes),
            pinned: core::mem::take(&mut self.pinned),
        }
    }

    // ---- overlay over storage: pending changes first ----

    pub(super) fn data(&self, id: &ComponentId) -> Result<Option<Cow<'_, [u8]>>, SuitError> {
        match self.changes.data.get(id) {
            Some(pending) => Ok(pending.as_deref().map(Cow::Borrowed)),
            None => self.store.read(id),
        }
    }

    pub(super) fn owners(&self, id: &ComponentId) -> Result<BTreeSet<ComponentId>, SuitError> {
        match self.changes.owners.get(id) {
            Some(set) => Ok(set.clone()),
            None => self.store.owners(id),
        }
    }

    pub(super) fn sequence_number(&self, id: &ComponentId) -> Result<Option<u64>, SuitError> {
        match self.changes.sequence_numbers.get(id) {
            Some(n) => Ok(Some(*n)),
            None => self.store.sequence_number(id),
        }
    }

    pub(super) fn signer_of(&self, id: &ComponentId) -> Result<Option<SignerId>, SuitError> {
        match self.changes.signers.get(id) {
            Some(s) => Ok(Some(s.clone())),
            None => self.store.signer(id),
        }
    }

    /// Whether two envelopes carry the same manifest (same digest). A root manifest is
    /// stored stripped of integrated payloads, so the same manifest arriving again
    /// integrated in a dependent has other bytes; it may then replace the stored copy.
    fn same_manifest(&self, a: &[u8], b: &[u8]) -> bool {
        self.manifest_digest(a)
            .is_some_and(|d| self.manifest_digest(b) == Some(d))
    }

    /// SHA-256 of an envelope's bstr-wrapped manifest (`None`: not an envelope).
    pub(super) fn manifest_digest(&self, envelope: &[u8]) -> Option<[u8; 32]> {
        Envelope::decode(envelope)
            .ok()
            .map(|e| self.p.provider.sha256(e.manifest_bstr))
    }

    pub(super) fn link(&mut self, id: &ComponentId, owner: &ComponentId) -> Result<(), SuitError> {
        let mut set = self.owners(id)?;
        set.insert(owner.clone());
        self.changes.owners.insert(id.clone(), set);
        Ok(())
    }

    /// Drops `owner`'s link on the image `id`; the last link deletes it.
    pub(super) fn unlink_image(
        &mut self,
        id: &ComponentId,
        owner: &ComponentId,
    ) -> Result<(), SuitError> {
        let mut owners = self.owners(id)?;
        if owners.remove(owner) {
            if owners.is_empty() {
                self.changes.data.insert(id.clone(), None);
            }
            self.changes.owners.insert(id.clone(), owners);
        }
        Ok(())
    }

    /// The one path by which a directive changes a component's contents (fetch, write,
    /// copy, swap, decryption into place; the root's and its dependencies' alike).
    /// * A component another manifest links keeps its contents: other bytes (for a
    ///   dependency: another manifest) fail with `ComponentReferenced`.
    /// * An image is never written where a manifest is (or was) stored: sequence numbers
    ///   are what tells manifests from images when links are dropped.
    /// * An image is linked by the writer; a dependency component is not linked but marked
    ///   unprocessed: process-dependency must authenticate it before anything commits.
    pub(super) fn put(
        &mut self,
        ctx: &Ctx<'_>,
        index: u64,
        bytes: Vec<u8>,
        at: &Record,
    ) -> Result<(), SuitError> {
        let id = ctx.component_id(index)?;
        let dependency = ctx.is_dependency(index);
        if self.owners(&id)?.iter().any(|o| *o != ctx.owner) {
            let same = match self.data(&id)? {
                Some(d) if dependency => self.same_manifest(&d, &bytes),
                Some(d) => *d == *bytes,
                None => false,
            };
            if !same {
                return Err(SuitError::ComponentReferenced(id));
            }
        }
        if !dependency && self.sequence_number(&id)?.is_some() {
            return Err(SuitError::ComponentReferenced(id));
        }
        self.digests.remove(&id);
        self.changes.data.insert(id.clone(), Some(bytes));
        if dependency {
            self.unprocessed.insert(id, at.clone());
            Ok(())
        } else {
            self.link(&id, &ctx.owner)
        }
    }

    /// The contents of a copy or swap source. A component linked by a manifest of another
    /// signer is not readable: one signer may not copy another's (decrypted) data.
    pub(super) fn source(&self, ctx: &Ctx<'_>, id: &ComponentId) -> Result<Vec<u8>, SuitError> {
        for owner in self.owners(id)? {
            if owner != ctx.owner && self.signer_of(&owner)?.is_some_and(|s| s != ctx.signer) {
                return Err(SuitError::ForeignComponent(id.clone()));
            }
        }
        self.data(id)?
            .map(Cow::into_owned)
            .ok_or_else(|| SuitError::ComponentEmpty(id.clone()))
    }

    /// A parameter set for the component `id`, or `MissingParameter(number)`.
    pub(super) fn param<T: Clone>(
        &self,
        id: &ComponentId,
        number: u8,
        get: impl Fn(&Parameters) -> &Option<T>,
    ) -> Result<T, SuitError> {
        self.params
            .get(id)
            .and_then(|p| get(p).clone())
            .ok_or(SuitError::MissingParameter(number))
    }
}
