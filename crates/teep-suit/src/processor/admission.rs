//! Admission: who signed a manifest, whether its anchor's scope covers where it goes and
//! what it lists, whether that anchor installed the location before, and policy limits.

use alloc::borrow::Cow;
use alloc::vec;
use alloc::vec::Vec;

use crate::command::{Command, Condition, parse_sequence};
use crate::error::SuitError;
use crate::model::ComponentId;
use crate::trust::{SignerId, covers};
use crate::verify::{Authenticated, authenticate};

use super::outcome::{Reference, RunResult, early, unknown_reference};
use super::run::Run;

/// Who authenticated a manifest and where its anchor lets it write.
pub(super) struct Signer {
    pub id: SignerId,
    scope: Vec<ComponentId>,
}

/// Where a root manifest lives (see the module notes for manifests without an ID).
pub(super) fn storage_id(auth: &Authenticated<'_>) -> Result<ComponentId, SuitError> {
    if let Some(id) = &auth.manifest.manifest_component_id {
        return Ok(id.clone());
    }
    let mut id = auth
        .manifest
        .common
        .components
        .first()
        .cloned()
        .ok_or(SuitError::NoManifestComponentId)?;
    id.0.push(b"suit".to_vec());
    Ok(id)
}

impl Run<'_, '_> {
    /// Authenticates an envelope against the processor's anchors and MAC keys.
    pub(super) fn authenticate<'b>(&self, bytes: &'b [u8]) -> Result<Authenticated<'b>, SuitError> {
        authenticate(bytes, self.p.provider, &self.p.anchors())
    }

    /// The anchor whose key verified the manifest (a MAC: the device's own keys).
    fn identify(&self, auth: &Authenticated<'_>) -> Signer {
        match &auth.signer {
            Some(key) => {
                let (id, scope) = self.p.trust.identify(key, auth.ca.as_ref());
                Signer {
                    id,
                    scope: scope.to_vec(),
                }
            }
            None => Signer {
                id: SignerId::Mac,
                scope: vec![ComponentId::default()],
            },
        }
    }

    /// Admits an authenticated manifest to be stored (or found) at `location`: policy
    /// limits, its signer's scope over `location` and every component it lists (other
    /// than its dependencies, which are their own signers' locations), and the signer
    /// that installed `location` before.
    pub(super) fn admit(
        &self,
        auth: &Authenticated<'_>,
        location: &ComponentId,
    ) -> Result<Signer, SuitError> {
        self.check_policy(auth)?;
        let signer = self.identify(auth);
        if !covers(&signer.scope, location) {
            return Err(SuitError::OutOfScope(location.clone()));
        }
        let common = &auth.manifest.common;
        for (i, c) in common.components.iter().enumerate() {
            if common.dependency(i as u64).is_none() && !covers(&signer.scope, c) {
                return Err(SuitError::OutOfScope(c.clone()));
            }
        }
        if self
            .signer_of(location)?
            .is_some_and(|installed| installed != signer.id)
        {
            return Err(SuitError::SignerMismatch(location.clone()));
        }
        Ok(signer)
    }

    fn check_policy(&self, auth: &Authenticated<'_>) -> Result<(), SuitError> {
        let space = auth.manifest.common.index_space();
        if space > self.p.policy.max_components {
            return Err(SuitError::TooManyComponents(space));
        }
        if self.p.policy.require_compatibility_check {
            let steps = match auth.manifest.common.shared_sequence {
                Some(shared) => parse_sequence(shared, 0)?,
                None => Vec::new(),
            };
            let has = |c: Condition| {
                steps
                    .iter()
                    .any(|s| matches!(s.command, Command::Condition(x, _) if x == c))
            };
            if !has(Condition::VendorIdentifier) || !has(Condition::ClassIdentifier) {
                return Err(SuitError::MissingCompatibilityCheck);
            }
        }
        Ok(())
    }

    /// Loads a stored manifest; callers re-authenticate it (storage is outside our control).
    pub(super) fn stored(&self, id: &ComponentId) -> Result<Vec<u8>, SuitError> {
        self.data(id)?
            .map(Cow::into_owned)
            .ok_or_else(|| SuitError::NotInstalled(id.clone()))
    }

    /// Re-authenticates the manifest stored at `id` and admits it as it would be admitted
    /// today (current anchors and scopes); it must be the manifest for that location.
    pub(super) fn admit_stored<'b>(
        &self,
        bytes: &'b [u8],
        id: &ComponentId,
    ) -> Result<(Authenticated<'b>, Signer), SuitError> {
        let auth = self.authenticate(bytes)?;
        if storage_id(&auth)? != *id {
            return Err(SuitError::StoredManifestMismatch(id.clone()));
        }
        let signer = self.admit(&auth, id)?;
        Ok((auth, signer))
    }

    /// Loads a stored root manifest, re-authenticates it and hands it to `then`; a failure
    /// before that has no manifest to reference.
    pub(super) fn with_stored_root(
        &mut self,
        id: &ComponentId,
        then: impl FnOnce(&mut Self, Authenticated<'_>, Signer) -> (Reference, RunResult),
    ) -> (Reference, RunResult) {
        let bytes = match self.stored(id) {
            Ok(b) => b,
            Err(e) => return (unknown_reference(), Err(early(e))),
        };
        match self.admit_stored(&bytes, id) {
            Ok((auth, signer)) => then(self, auth, signer),
            Err(e) => (unknown_reference(), Err(early(e))),
        }
    }
}
