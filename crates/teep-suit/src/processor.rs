//! The manifest processor: the SUIT abstract machine (draft-ietf-suit-manifest §6 with
//! trust-domains and firmware-encryption) behind `Storage`, `Fetcher`, `Decryptor` and
//! `Clock`, with scoped TC-signer trust anchors ([`TrustAnchors`]).
//!
//! Pinned choices (each has a test):
//! * Parameters are keyed by component *identifier* and shared by a root manifest and its
//!   dependencies for one procedure (the firmware-encryption dependency template relies on
//!   a dependent setting the parameters its dependency consumes); they are cleared per
//!   procedure.
//! * A dependency's index may lie beyond the components list; its identifier is then its
//!   `dependency-prefix`, which is also where the dependency envelope is stored. Prefixes
//!   are not prepended to the dependency's own component IDs (TEEP IDs are full paths).
//! * A dependency is identified by its own signed manifest-component-id, which must equal
//!   the location its dependent chose (`DependencyLocation`): rollback, ownership, signer
//!   and scope key on what the dependency's signer signed, never on the dependent's choice.
//! * process-dependency always authenticates the dependency and checks its manifest digest
//!   against `image-digest`, whether or not dependency-integrity ran (td-ex2 and TEEP
//!   personalization omit it).
//! * The image size is not enforced on dependency envelopes (their size changes with tag,
//!   severing, re-signing); the manifest digest binds them.
//! * Ownership: every directive that changes contents (fetch, write, copy, swap, decryption
//!   into place; the root's and its dependencies') goes through one check, `Run::put`.
//!   Other bytes in a component another manifest links fail (`ComponentReferenced`); an
//!   image is never written where a manifest is or was stored. A dependency component
//!   filled in a run must be authenticated by process-dependency after its last fill, or
//!   nothing commits (`DependencyNotProcessed`). Copy and swap never read a component a
//!   manifest of another signer links (`ForeignComponent`). This holds for a manifest's own
//!   update too: an image another manifest links (it wrote the same bytes there) keeps its
//!   contents, as a co-linker cannot be told from the image's first writer.
//! * Updating a dependency: a root manifest's authenticated update (its signer, a higher
//!   sequence number) replaces the manifest stored at its ID even when other manifests
//!   link it: links are references, not ownership. (A location without a sequence number
//!   holds no manifest: an image others link there is never stored over,
//!   `ComponentReferenced`.) The dependents stay installed with their links; one that
//!   pinned the old manifest's digest (`image-digest`) fails its dependency check
//!   (`DependencyDigestMismatch`) when it is next processed (Invocation, an Update), until
//!   an updated dependent arrives; its uninstall needs no digest.
//! * Invocation runs validate, load and invoke of what is installed: process-dependency
//!   there authenticates and runs the dependency but installs and links nothing (so a
//!   dependency's `image-digest` must be set outside dependency-resolution, e.g. in the
//!   shared sequence, as the builder does).
//! * Lockstep (trust-domains): at the end of each Update section a dependent runs, every
//!   dependency present whose manifest has that section must have had it run by
//!   process-dependency (`DependencySectionSkipped`). Not applied to Invocation (td-ex1
//!   invokes its dependency's component itself) nor to Uninstall (a shared dependency's
//!   uninstall runs only with its last link; links left over are dropped anyway).
//! * Trust anchors carry scopes: a manifest's storage location and every component it
//!   lists (its dependencies are their own signers' locations) must lie under its anchor's
//!   prefixes (`OutOfScope`). Storage records the anchor that installed each manifest; an
//!   installed manifest is updated only through that anchor (`SignerMismatch`), which may
//!   hold several keys (rotation). Records, like sequence numbers, survive deletion.
//! * Rollback: a root manifest must carry a sequence number *above* the stored one for its
//!   manifest component ID. The same number with the manifest stored there (same digest)
//!   is a re-delivery (the TAM re-sends an Update after a crash between commit and
//!   Success): success, nothing runs, only a missing root link is added. Equal with another
//!   digest, or lower, is refused. A dependency may be processed at an equal number only
//!   if it is the manifest holding that number: the one stored, or the one this Update
//!   installed or processed at it (two dependencies sharing one, a dependency on a manifest
//!   listed earlier in the Update). Numbers survive deletion.
//! * Links: a component's reference count is the set of manifests linking it. A root
//!   install links its manifest to itself; a dependent links each dependency it processes;
//!   a manifest links what it writes. Unlink (or process-dependency inside uninstall)
//!   drops one link; when the last goes, a manifest's uninstall sequence runs and it is
//!   deleted (with any links its sequence left behind), and an image is deleted.
//! * Deletion needs no trust in the stored manifest: when the last link goes, its uninstall
//!   sequence runs only if it still passes today's anchors, scopes and signer record (we do
//!   not execute what we would not install); otherwise it is removed plainly, dropping the
//!   links storage records it holding. So a compromised signer's TCs can be deleted once
//!   its anchor is gone, and a tampered stored copy cannot stop its own deletion.
//! * Stored manifests are re-authenticated and must be the manifest for their location
//!   (`StoredManifestMismatch`) before they run (invocation, uninstall sequence).
//! * A root manifest without `suit-manifest-component-id` is stored at its first
//!   component's ID plus the segment `suit`.
//! * Shared sequence and each section start at component index 0; the shared sequence
//!   runs before each section that is present.
//! * A TEEP Update ([`Processor::update`]: `unneeded-manifest-list` unlinked first, then
//!   `manifest-list` installed) is atomic as a whole: items run in order, each seeing the
//!   effects of those before it, and everything is committed at once only if all succeed.
//!   Otherwise nothing is committed and every item's report says so: the failing one with
//!   its error, the others with `UnneededManifestFailed` or `OtherManifestFailed`. An
//!   unneeded ID without a root manifest installed there is `NotInstalled`, which fails the
//!   Update (the draft: Error if unlinking failed).
//!
//! Layout (private modules; their public types are re-exported here): `environment`
//! (what the processor is given), `outcome` (results, failure plumbing), `run` (pending
//! changes over storage, the ownership check), `admission` (signer, scope, policy), `ctx`
//! (the manifest being executed), `procedures` (install, invoke, uninstall, release),
//! `sequence` (sections, sequences, frames and depth), `conditions`, `directives`,
//! `dependencies`.

mod admission;
mod conditions;
mod ctx;
mod dependencies;
mod directives;
mod environment;
mod outcome;
mod procedures;
mod run;
mod sequence;

use alloc::boxed::Box;
use alloc::vec::Vec;

use teep_cose::CryptoProvider;

pub use environment::{
    Clock, Decryptor, DeviceIdentity, Fetcher, KeyDecryptor, NoClock, NoFetcher, Policy,
};
pub use outcome::{Done, Invocation, Outcome, UpdateFailure, UpdateItem, UpdateOutcome};

use crate::error::SuitError;
use crate::model::ComponentId;
use crate::report::{Failure, Record};
use crate::storage::{Changes, Storage};
use crate::trust::TrustAnchors;
use crate::verify::Anchors;
use outcome::{Pending, Reference, RunResult, claimed_reference, early, unknown_reference};
use run::{Carried, Procedure, Run};

/// The SUIT manifest processor. It only borrows its parts, all `Send + Sync`, so it is
/// too: a role may run it in a blocking task while holding them across `.await`.
pub struct Processor<'a> {
    /// Crypto for signature checks, digests and decryption.
    pub provider: &'a dyn CryptoProvider,
    /// TC signer trust anchors and their scopes.
    pub trust: &'a TrustAnchors,
    /// HMAC keys for COSE_Mac0-authenticated manifests.
    pub mac_keys: &'a [Vec<u8>],
    /// Resolves `suit-parameter-uri` for fetch.
    pub fetcher: &'a dyn Fetcher,
    /// Decrypts payloads with `suit-parameter-encryption-info`; `None` refuses them.
    pub decryptor: Option<&'a dyn Decryptor>,
    /// Current time for certificate validity.
    pub clock: &'a dyn Clock,
    /// The identifiers the device asserts for the identifier conditions.
    pub device: &'a DeviceIdentity,
    /// Limits and policy switches.
    pub policy: Policy,
}

impl<'a> Processor<'a> {
    /// A processor with no fetcher, no decryption key, no clock and default policy.
    pub fn new(
        provider: &'a dyn CryptoProvider,
        trust: &'a TrustAnchors,
        device: &'a DeviceIdentity,
    ) -> Self {
        Self {
            provider,
            trust,
            mac_keys: &[],
            fetcher: &NoFetcher,
            decryptor: None,
            clock: &NoClock,
            device,
            policy: Policy::default(),
        }
    }

    fn anchors(&self) -> Anchors<'_> {
        Anchors {
            signers: self.trust.store(),
            mac_keys: self.mac_keys,
            now: self.clock.now(),
        }
    }

    /// The Update procedure (dependency-resolution, payload-fetch, candidate-verification,
    /// install, validate) for a root manifest. On success the envelope (without payloads
    /// and severed elements) is stored at its manifest component ID with its sequence
    /// number; on failure nothing changes.
    pub fn install(
        &'a self,
        storage: &mut dyn Storage,
        envelope: &[u8],
        nonce: Option<&[u8]>,
    ) -> Outcome {
        self.single(storage, Procedure::Update, nonce, |run| {
            run.install(envelope)
        })
    }

    /// The Update procedure for every envelope of a TEEP `manifest-list`: [`Self::update`]
    /// with nothing to unlink.
    pub fn install_all<E: AsRef<[u8]>>(
        &'a self,
        storage: &mut dyn Storage,
        envelopes: &[E],
        nonce: Option<&[u8]>,
    ) -> UpdateOutcome {
        self.update(storage, &[], envelopes, nonce)
    }

    /// A TEEP Update as one transaction: first each manifest of `unneeded` is unlinked (as
    /// [`Self::uninstall`]), then the Update procedure runs on every envelope, in order.
    /// Each item sees what the earlier ones did (a personalization manifest may depend on
    /// the TC manifest before it; a manifest unlinked first may be installed again), and
    /// storage is committed once, only if every item succeeded. When one fails, later ones
    /// are not run, nothing is committed, and [`UpdateOutcome::result`] names it; every
    /// other item's report carries [`SuitError::UnneededManifestFailed`] or
    /// [`SuitError::OtherManifestFailed`]. An unneeded ID with no installed root manifest
    /// fails the Update with `NotInstalled` (the draft: Error if unlinking failed; a TAM
    /// that believes it removed a TC must learn that it did not). Each report carries
    /// `nonce`.
    pub fn update<E: AsRef<[u8]>>(
        &'a self,
        storage: &mut dyn Storage,
        unneeded: &[ComponentId],
        envelopes: &[E],
        nonce: Option<&[u8]>,
    ) -> UpdateOutcome {
        let items: Vec<Item<'_>> = unneeded
            .iter()
            .map(Item::Unneeded)
            .chain(envelopes.iter().map(|e| Item::Manifest(e.as_ref())))
            .collect();
        let position = |k: usize| match k.checked_sub(unneeded.len()) {
            None => UpdateItem::Unneeded(k),
            Some(m) => UpdateItem::Manifest(m),
        };
        let mut carried = Carried::default();
        let mut ran = Vec::new();
        for item in &items {
            let (pending, result, next) = match item {
                Item::Unneeded(id) => {
                    self.execute(&*storage, Procedure::Uninstall, carried, |run| {
                        run.uninstall_root(id)
                    })
                }
                Item::Manifest(envelope) => {
                    self.execute(&*storage, Procedure::Update, carried, |run| {
                        run.install(envelope)
                    })
                }
            };
            carried = next;
            let failed = result.is_err();
            ran.push((pending, result));
            if failed {
                break;
            }
        }
        let cause = match ran.iter().position(|(_, r)| r.is_err()) {
            Some(k) => ran
                .get(k)
                .and_then(|(_, r)| r.as_ref().err())
                .map(|f| UpdateFailure {
                    item: Some(position(k)),
                    failure: (**f).clone(),
                }),
            None => commit(storage, carried.changes)
                .err()
                .map(|f| UpdateFailure {
                    item: None,
                    failure: *f,
                }),
        };
        let mut outcomes: Vec<Outcome> = match &cause {
            None => ran
                .into_iter()
                .map(|(pending, result)| pending.outcome(nonce, result.map_err(|f| *f)))
                .collect(),
            Some(cause) => {
                // What every item but the failing one reports: the commit's failure, or
                // that another item failed.
                let others = match cause.item {
                    Some(item) => Failure {
                        error: item.others_error(),
                        record: Record::default(),
                    },
                    None => cause.failure.clone(),
                };
                let failing = cause.item;
                let mut ran = ran.into_iter();
                items
                    .iter()
                    .enumerate()
                    .map(|(k, item)| match ran.next() {
                        Some((pending, Err(f))) if failing == Some(position(k)) => {
                            pending.outcome(nonce, Err(*f))
                        }
                        Some((pending, _)) => pending.outcome(nonce, Err(others.clone())),
                        // Items after the failing one did not run.
                        None => Pending {
                            reference: item.reference(self.provider),
                            records: Vec::new(),
                        }
                        .outcome(nonce, Err(others.clone())),
                    })
                    .collect()
            }
        };
        let outcomes_of_manifests = outcomes.split_off(unneeded.len().min(outcomes.len()));
        UpdateOutcome {
            unlinked: outcomes,
            outcomes: outcomes_of_manifests,
            result: cause.map_or(Ok(()), Err),
        }
    }

    /// The Uninstall procedure for a root manifest (TEEP `unneeded-manifest-list`): drops
    /// its root link; if nothing else links it, runs its uninstall sequence and deletes it.
    pub fn uninstall(
        &'a self,
        storage: &mut dyn Storage,
        manifest_id: &ComponentId,
        nonce: Option<&[u8]>,
    ) -> Outcome {
        self.single(storage, Procedure::Uninstall, nonce, |run| {
            run.uninstall_root(manifest_id)
        })
    }

    /// The Invocation procedure (validate, load, invoke) of an installed manifest; the
    /// invocations to carry out come back in [`Done`].
    pub fn invoke(
        &'a self,
        storage: &mut dyn Storage,
        manifest_id: &ComponentId,
        nonce: Option<&[u8]>,
    ) -> Outcome {
        self.single(storage, Procedure::Invocation, nonce, |run| {
            run.with_stored_root(manifest_id, |run, auth, signer| {
                run.invoke_root(manifest_id, auth, signer)
            })
        })
    }

    /// One procedure on its own: run, then commit what it changed (nothing on failure).
    fn single(
        &'a self,
        storage: &mut dyn Storage,
        procedure: Procedure,
        nonce: Option<&[u8]>,
        body: impl FnOnce(&mut Run<'a, '_>) -> (Reference, RunResult),
    ) -> Outcome {
        let (pending, result, carried) =
            self.execute(&*storage, procedure, Carried::default(), body);
        let result = result
            .and_then(|done| commit(storage, carried.changes).map(|()| done))
            .map_err(|f| *f);
        pending.outcome(nonce, result)
    }

    /// Runs one procedure against a read-only view of `store` on top of what `carried`
    /// holds; returns its report material, its result, and what the next manifest of the
    /// same Update starts from.
    fn execute(
        &'a self,
        store: &dyn Storage,
        procedure: Procedure,
        carried: Carried,
        body: impl FnOnce(&mut Run<'a, '_>) -> (Reference, RunResult),
    ) -> (Pending, RunResult, Carried) {
        let mut run = Run::new(self, store, procedure, carried);
        let (reference, result) = body(&mut run);
        // Whatever filled a dependency component must have been processed since.
        let result = result.and_then(|ok| match run.unprocessed.pop_first() {
            Some((id, at)) => Err(Box::new(Failure {
                error: SuitError::DependencyNotProcessed(id),
                record: at,
            })),
            None => Ok(ok),
        });
        let pending = Pending {
            reference,
            records: core::mem::take(&mut run.records),
        };
        (pending, result, run.carried())
    }
}

/// An item of a TEEP Update, in the order it is processed.
enum Item<'e> {
    Unneeded(&'e ComponentId),
    Manifest(&'e [u8]),
}

impl Item<'_> {
    /// The report reference of an item that did not run.
    fn reference(&self, provider: &dyn CryptoProvider) -> Reference {
        match self {
            Self::Unneeded(_) => unknown_reference(),
            Self::Manifest(envelope) => claimed_reference(provider, envelope),
        }
    }
}

/// Commits `changes`; a procedure that changed nothing (a re-delivery) does not touch
/// storage at all.
fn commit(storage: &mut dyn Storage, changes: Changes) -> Result<(), Box<Failure>> {
    if changes == Changes::default() {
        return Ok(());
    }
    storage.commit(changes).map_err(early)
}

/// The roles hold processors and their parts across `.await` and run procedures in
/// blocking tasks: all of these must stay `Send + Sync` (stores `Send`).
const _: fn() = || {
    fn send_sync<T: Send + Sync + ?Sized>() {}
    fn send<T: Send + ?Sized>() {}
    send_sync::<Processor<'static>>();
    send_sync::<TrustAnchors>();
    send_sync::<DeviceIdentity>();
    send_sync::<Policy>();
    send_sync::<dyn Fetcher>();
    send_sync::<dyn Decryptor>();
    send_sync::<dyn Clock>();
    send_sync::<KeyDecryptor<'static>>();
    send_sync::<Outcome>();
    send_sync::<UpdateOutcome>();
    send_sync::<SuitError>();
    send_sync::<crate::model::Summary>();
    send_sync::<crate::storage::InstalledManifest>();
    send_sync::<crate::report::ReceivedReport>();
    send::<crate::storage::MemoryStorage>();
    #[cfg(feature = "std")]
    send::<crate::dir::DirStorage>();
    #[cfg(feature = "std")]
    send::<crate::dir::SealedDirStorage<'static>>();
};
