//! The procedures on a root manifest: Update (install), Invocation and Uninstall, and the
//! release of a link (the last one runs a manifest's uninstall sequence and deletes it).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use crate::error::SuitError;
use crate::model::{ComponentId, Section};
use crate::report::Record;
use crate::verify::Authenticated;

use super::admission::{Signer, storage_id};
use super::ctx::Ctx;
use super::outcome::{
    Done, Flow, Reference, RunResult, claimed_reference, early, hard, reference, to_failure,
    unknown_reference,
};
use super::run::Run;
use super::sequence::Depth;

impl Run<'_, '_> {
    /// The Update procedure on one envelope as received. A manifest that fails
    /// authentication is still reported under the digest of the manifest the envelope
    /// carries (suit-report: `suit-reference` names the root manifest's digest), so that
    /// its sender can tell which manifest failed.
    pub(super) fn install(&mut self, envelope: &[u8]) -> (Reference, RunResult) {
        match self.authenticate(envelope) {
            Err(e) => (claimed_reference(self.p.provider, envelope), Err(early(e))),
            Ok(auth) => (reference(&auth), self.install_root(auth)),
        }
    }

    fn install_root(&mut self, auth: Authenticated<'_>) -> RunResult {
        let owner = storage_id(&auth).map_err(early)?;
        let signer = self.admit(&auth, &owner).map_err(early)?;
        if Section::UPDATE
            .iter()
            .all(|s| auth.manifest.member(*s).is_none())
        {
            return Err(early(SuitError::NothingToUpdate));
        }
        let seq = auth.manifest.sequence_number;
        if let Some(installed) = self.sequence_number(&owner).map_err(early)?
            && seq <= installed
        {
            if seq == installed && self.is_stored(&owner, &auth).map_err(early)? {
                return self.redelivered(owner, seq);
            }
            return Err(early(SuitError::Rollback {
                installed,
                offered: seq,
            }));
        }
        // Links other manifests hold on a manifest stay: they reference it, they do not own
        // it (see the module notes on updating a dependency). Where no manifest is (or
        // was) stored, a component others link is their image: never stored over.
        if self.sequence_number(&owner).map_err(early)?.is_none()
            && self
                .owners(&owner)
                .map_err(early)?
                .iter()
                .any(|o| *o != owner)
        {
            return Err(early(SuitError::ComponentReferenced(owner)));
        }
        let stripped = auth.envelope.stripped();
        let digest = auth.digest;
        let ctx = Ctx {
            auth,
            path: Vec::new(),
            owner: owner.clone(),
            signer: signer.id.clone(),
        };
        for section in Section::UPDATE {
            self.run_section(&ctx, section, Depth::default())
                .map_err(to_failure)?;
        }
        self.changes.data.insert(owner.clone(), Some(stripped));
        self.link(&owner, &owner).map_err(early)?;
        self.changes.sequence_numbers.insert(owner.clone(), seq);
        self.pinned.insert(owner.clone(), digest);
        self.changes.signers.insert(owner.clone(), signer.id);
        Ok(Done {
            manifest_id: owner,
            sequence_number: seq,
            invocations: core::mem::take(&mut self.invocations),
        })
    }

    /// Whether the manifest stored at `id` is `auth`'s (same manifest digest).
    fn is_stored(&self, id: &ComponentId, auth: &Authenticated<'_>) -> Result<bool, SuitError> {
        Ok(self
            .data(id)?
            .is_some_and(|stored| self.manifest_digest(&stored) == Some(auth.digest)))
    }

    /// The very manifest installed at `id` arrives again (the TAM re-sends an Update after
    /// a crash between commit and Success): success, nothing runs; only a missing root
    /// link (the manifest was stored as a dependency) is added.
    fn redelivered(&mut self, id: ComponentId, seq: u64) -> RunResult {
        if !self.owners(&id).map_err(early)?.contains(&id) {
            self.link(&id, &id).map_err(early)?;
        }
        Ok(Done {
            manifest_id: id,
            sequence_number: seq,
            invocations: Vec::new(),
        })
    }

    /// Uninstall needs no trust in the stored manifest: see [`Run::release`].
    pub(super) fn uninstall_root(&mut self, id: &ComponentId) -> (Reference, RunResult) {
        let bytes = match self.stored(id) {
            Ok(b) => b,
            Err(e) => return (unknown_reference(), Err(early(e))),
        };
        let reference = match self.authenticate(&bytes) {
            Ok(auth) => reference(&auth),
            Err(_) => claimed_reference(self.p.provider, &bytes),
        };
        match self.owners(id) {
            Ok(set) if set.contains(id) => {}
            Ok(_) => return (reference, Err(early(SuitError::NotInstalled(id.clone())))),
            Err(e) => return (reference, Err(early(e))),
        }
        let result = self
            .release(id, id, &[], Depth::default())
            .map_err(to_failure)
            .map(|()| Done {
                manifest_id: id.clone(),
                sequence_number: self.store.sequence_number(id).ok().flatten().unwrap_or(0),
                invocations: Vec::new(),
            });
        (reference, result)
    }

    pub(super) fn invoke_root(
        &mut self,
        id: &ComponentId,
        auth: Authenticated<'_>,
        signer: Signer,
    ) -> (Reference, RunResult) {
        let reference = reference(&auth);
        let seq = auth.manifest.sequence_number;
        let ctx = Ctx {
            auth,
            path: Vec::new(),
            owner: id.clone(),
            signer: signer.id,
        };
        for section in Section::INVOCATION {
            if let Err(stop) = self.run_section(&ctx, section, Depth::default()) {
                return (reference, Err(to_failure(stop)));
            }
        }
        let done = Done {
            manifest_id: id.clone(),
            sequence_number: seq,
            invocations: core::mem::take(&mut self.invocations),
        };
        (reference, Ok(done))
    }

    /// Drops `releaser`'s link on the manifest stored at `id`; the last link runs the
    /// manifest's uninstall sequence (one level below `depth`) and deletes it. Dropping a
    /// link twice is a no-op.
    pub(super) fn release(
        &mut self,
        id: &ComponentId,
        releaser: &ComponentId,
        path: &[u64],
        depth: Depth,
    ) -> Flow {
        let at = Record {
            manifest_id: path.to_vec(),
            ..Record::default()
        };
        let mut owners = self.owners(id).map_err(|e| hard(e, at.clone()))?;
        if !owners.remove(releaser) {
            return Ok(());
        }
        self.changes.owners.insert(id.clone(), owners.clone());
        if !owners.is_empty() {
            return Ok(());
        }
        let bytes = self.stored(id).map_err(|e| hard(e, at.clone()))?;
        let depth = depth.enter(self.p.policy.max_depth, &at)?;
        // Only a manifest we would admit today runs its uninstall sequence; one whose
        // anchor was removed or narrowed is removed plainly (see the module notes).
        if let Ok((auth, signer)) = self.admit_stored(&bytes, id) {
            let ctx = Ctx {
                auth,
                path: path.to_vec(),
                owner: id.clone(),
                signer: signer.id,
            };
            self.run_section(&ctx, Section::Uninstall, depth)?;
        }
        self.drop_links(id, path, depth)?;
        self.changes.data.insert(id.clone(), None);
        Ok(())
    }

    /// After a manifest's uninstall sequence: links it still holds (its sequence did not
    /// unlink everything it wrote or depended on) are dropped too, so deleting a manifest
    /// never leaves orphans. A linked manifest is released (its own uninstall may run).
    fn drop_links(&mut self, id: &ComponentId, path: &[u64], depth: Depth) -> Flow {
        let at = Record {
            manifest_id: path.to_vec(),
            ..Record::default()
        };
        let fail = |e: SuitError| hard(e, at.clone());
        let mut linked: BTreeSet<ComponentId> = self
            .store
            .linked_by(id)
            .map_err(fail)?
            .into_iter()
            .filter(|c| !self.changes.owners.contains_key(c))
            .collect();
        for (c, set) in &self.changes.owners {
            if set.contains(id) {
                linked.insert(c.clone());
            }
        }
        linked.remove(id);
        for c in linked {
            if self.sequence_number(&c).map_err(fail)?.is_some() {
                self.release(&c, id, path, depth)?;
            } else {
                self.unlink_image(&c, id).map_err(fail)?;
            }
        }
        Ok(())
    }
}
