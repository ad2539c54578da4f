//! Dependencies (trust-domains): authenticating a dependency envelope, process-dependency,
//! the dependency rollback rule and the lockstep rule.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use crate::command::param;
use crate::error::SuitError;
use crate::model::{ComponentId, Digest, Envelope, Manifest, Section};
use crate::report::Record;
use crate::verify::Authenticated;

use super::admission::storage_id;
use super::ctx::Ctx;
use super::outcome::{Flow, hard};
use super::run::{Procedure, Run};
use super::sequence::Frame;

impl Run<'_, '_> {
    /// Authenticates the dependency stored (or fetched) at `id` and checks its manifest
    /// digest against the `image-digest` set for it (dependency-integrity).
    pub(super) fn verify_dependency(&self, id: &ComponentId) -> Result<(), SuitError> {
        let (expected, bytes) = self.dependency_envelope(id)?;
        self.authenticate_dependency(&expected, &bytes).map(|_| ())
    }

    /// The `image-digest` set for dependency `id` and the envelope there.
    fn dependency_envelope(&self, id: &ComponentId) -> Result<(Digest, Vec<u8>), SuitError> {
        let expected = self.param(id, param::IMAGE_DIGEST, |p| &p.image_digest)?;
        let bytes = self
            .data(id)?
            .map(Cow::into_owned)
            .ok_or_else(|| SuitError::ComponentEmpty(id.clone()))?;
        Ok((expected, bytes))
    }

    /// `bytes` authenticated, if its manifest digest is the one its dependent expects.
    fn authenticate_dependency<'b>(
        &self,
        expected: &Digest,
        bytes: &'b [u8],
    ) -> Result<Authenticated<'b>, SuitError> {
        let auth = self.authenticate(bytes)?;
        if !expected.matches_sha256(&auth.digest)? {
            return Err(SuitError::DependencyDigestMismatch);
        }
        Ok(auth)
    }

    /// Runs the dependency's shared sequence and its section named like the dependent's
    /// (`frame.procedure`), one level below `frame`; `path` is its report position.
    pub(super) fn process_dependency(
        &mut self,
        frame: &Frame<'_, '_>,
        id: &ComponentId,
        path: Vec<u64>,
    ) -> Flow {
        let at = Record {
            manifest_id: path.clone(),
            ..Record::default()
        };
        // Refusing the dependency is a failure of the dependent's process-dependency command
        // (the caller puts its location in the record); failures inside it keep theirs.
        let refuse = |e: SuitError| hard(e, Record::default());
        let (expected, bytes) = self.dependency_envelope(id).map_err(refuse)?;
        let auth = self
            .authenticate_dependency(&expected, &bytes)
            .map_err(refuse)?;
        // The dependency's own signed identity, not the location its dependent chose,
        // keys rollback, ownership and scope.
        let manifest_id = storage_id(&auth).map_err(refuse)?;
        if manifest_id != *id {
            return Err(refuse(SuitError::DependencyLocation {
                prefix: id.clone(),
                manifest_id,
            }));
        }
        let signer = self.admit(&auth, id).map_err(refuse)?;
        let seq = auth.manifest.sequence_number;
        self.check_dependency_rollback(id, seq, &auth.digest)
            .map_err(refuse)?;
        let depth = frame.depth.enter(self.p.policy.max_depth, &at)?;
        let digest = auth.digest;
        let child = Ctx {
            auth,
            path,
            owner: id.clone(),
            signer: signer.id.clone(),
        };
        self.run_section(&child, frame.procedure, depth)?;
        // Invocation checks and runs what is installed; it installs nothing, links nothing
        // (and whatever it filled stays unprocessed, so nothing commits).
        if self.procedure == Procedure::Invocation {
            return Ok(());
        }
        let fail = |e: SuitError| hard(e, at.clone());
        let high = self
            .sequence_number(id)
            .map_err(fail)?
            .unwrap_or(0)
            .max(seq);
        self.changes.sequence_numbers.insert(id.clone(), high);
        self.pinned.insert(id.clone(), digest);
        self.changes.signers.insert(id.clone(), signer.id);
        self.changes.data.entry(id.clone()).or_insert(Some(bytes));
        self.unprocessed.remove(id);
        let dependent = &frame.ctx.owner;
        self.ran
            .insert((dependent.clone(), id.clone(), frame.procedure.key()));
        self.link(id, dependent).map_err(fail)
    }

    /// A dependency's sequence number must not be below the highest stored or set in this
    /// Update for its manifest component ID; equal only for the very manifest that holds
    /// that number (same digest), which re-processing leaves as it was.
    fn check_dependency_rollback(
        &self,
        id: &ComponentId,
        seq: u64,
        digest: &[u8; 32],
    ) -> Result<(), SuitError> {
        let stored = self.store.sequence_number(id)?;
        let pending = self.changes.sequence_numbers.get(id).copied();
        let Some(installed) = stored.max(pending) else {
            return Ok(());
        };
        if seq > installed {
            return Ok(());
        }
        let same = match pending {
            // This Update set the number: the manifest that set it holds it.
            Some(n) if n == installed => self.pinned.get(id) == Some(digest),
            _ => self
                .store
                .read(id)?
                .is_some_and(|b| self.manifest_digest(&b) == Some(*digest)),
        };
        if seq == installed && same {
            Ok(())
        } else {
            Err(SuitError::Rollback {
                installed,
                offered: seq,
            })
        }
    }

    /// Trust-domains lockstep: at the end of a dependent's Update section, every
    /// dependency present whose manifest has that section must have had it run through
    /// process-dependency. Its manifest is read without authentication: only to decide
    /// whether to refuse; whatever fills a dependency must be processed before commit.
    pub(super) fn check_lockstep(&self, ctx: &Ctx<'_>, section: Section) -> Result<(), SuitError> {
        for dep in &ctx.auth.manifest.common.dependencies {
            let Ok(id) = ctx.component_id(dep.index) else {
                continue; // not addressable, so never filled
            };
            if self
                .ran
                .contains(&(ctx.owner.clone(), id.clone(), section.key()))
            {
                continue;
            }
            let Some(bytes) = self.data(&id)? else {
                continue;
            };
            let has = Envelope::decode(&bytes)
                .and_then(|e| Manifest::decode(e.manifest_bytes))
                .is_ok_and(|m| m.member(section).is_some());
            if has {
                return Err(SuitError::DependencySectionSkipped {
                    dependency: id,
                    section: section.key(),
                });
            }
        }
        Ok(())
    }
}
