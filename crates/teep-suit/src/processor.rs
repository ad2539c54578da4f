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
//!   manifest of another signer links (`ForeignComponent`).
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
//!   digest, or lower, is refused. A dependency may be re-processed at an equal number only
//!   if it is the manifest stored or processed before in the run. Numbers survive deletion.
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

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use teep_cose::CryptoProvider;
use teep_cose::encrypt::{DecryptionKey, SUIT_PAYLOAD_ENCRYPTION};

use crate::cbor::ct_eq;
use crate::command::{
    Command, Condition, Directive, IndexArg, Parameters, VendorId, param, parse_sequence,
};
use crate::error::SuitError;
use crate::model::{ComponentId, Digest, Envelope, Manifest, Section};
use crate::report::{Entry, Failure, Record, Report, SystemProperties};
use crate::storage::{Changes, Storage};
use crate::trust::{SignerId, TrustAnchors, covers};
use crate::verify::{Anchors, Authenticated, authenticate, section_bytes};

/// Resolves a URI to bytes (integrated payloads never reach it).
pub trait Fetcher {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, String>;
}

/// A fetcher for devices without a network: every URI fails.
pub struct NoFetcher;

impl Fetcher for NoFetcher {
    fn fetch(&self, _uri: &str) -> Result<Vec<u8>, String> {
        Err("no fetcher configured".into())
    }
}

/// Decrypts content protected by a `SUIT_Encryption_Info`.
pub trait Decryptor {
    fn decrypt(&self, encryption_info: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, SuitError>;
}

/// Decryption with the device's keys through a crypto provider (ECDH-ES+A128KW, A128KW).
pub struct KeyDecryptor<'a> {
    pub provider: &'a dyn CryptoProvider,
    pub keys: Vec<DecryptionKey>,
}

impl Decryptor for KeyDecryptor<'_> {
    fn decrypt(&self, encryption_info: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, SuitError> {
        teep_cose::encrypt::decrypt(
            self.provider,
            encryption_info,
            Some(ciphertext),
            &self.keys,
            SUIT_PAYLOAD_ENCRYPTION,
        )
        .map(|p| p.to_vec())
        .map_err(SuitError::Decryption)
    }
}

/// Current time for certificate checks.
pub trait Clock {
    /// Unix seconds, or `None` when the device has no trusted time.
    fn now(&self) -> Option<u64>;
}

/// A clock that knows no time (raw-key trust anchors do not need one).
pub struct NoClock;

impl Clock for NoClock {
    fn now(&self) -> Option<u64> {
        None
    }
}

/// What the device asserts about itself for the identifier conditions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub vendor_ids: Vec<VendorId>,
    pub class_ids: Vec<Vec<u8>>,
    pub device_ids: Vec<Vec<u8>>,
    /// Slot of each component (A/B images), for condition-component-slot.
    pub slots: Vec<(ComponentId, u64)>,
}

/// Processor limits and policy switches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Refuse manifests whose shared sequence lacks vendor- and class-identifier checks
    /// (the core spec's SHOULD; several published vectors have none, so it is a switch).
    pub require_compatibility_check: bool,
    pub max_components: usize,
    /// Nesting limit over try-each, run-sequence and dependencies.
    pub max_depth: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            require_compatibility_check: false,
            max_components: 64,
            max_depth: 16,
        }
    }
}

/// An invoke directive the caller should carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub component: ComponentId,
    pub args: Option<Vec<u8>>,
}

/// What a successful procedure did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The root manifest's storage location (manifest component ID).
    pub manifest_id: ComponentId,
    pub sequence_number: u64,
    pub invocations: Vec<Invocation>,
}

/// Result of a procedure: always a report; state committed only on success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub report: Report,
    pub result: Result<Done, Failure>,
}

/// The SUIT manifest processor.
pub struct Processor<'a> {
    pub provider: &'a dyn CryptoProvider,
    /// TC signer trust anchors and their scopes.
    pub trust: &'a TrustAnchors,
    /// HMAC keys for COSE_Mac0-authenticated manifests.
    pub mac_keys: &'a [Vec<u8>],
    pub fetcher: &'a dyn Fetcher,
    pub decryptor: Option<&'a dyn Decryptor>,
    pub clock: &'a dyn Clock,
    pub device: &'a DeviceIdentity,
    pub policy: Policy,
}

/// Which procedure a run belongs to (process-dependency and unlink depend on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Procedure {
    Update,
    Invocation,
    Uninstall,
}

/// Why a sequence stopped.
enum Stop {
    /// A condition failed with soft-failure on: the sequence ends quietly.
    Soft,
    Hard(Box<Failure>),
}

type Flow = Result<(), Stop>;

/// One manifest being executed (the root or a dependency).
struct Ctx<'a> {
    auth: Authenticated<'a>,
    path: Vec<u64>,
    /// Where this manifest is stored; the owner of what it writes.
    owner: ComponentId,
    /// The anchor that authenticated it.
    signer: SignerId,
}

/// Who authenticated a manifest and where its anchor lets it write.
struct Signer {
    id: SignerId,
    scope: Vec<ComponentId>,
}

/// Result of a condition.
enum Check {
    Pass(Parameters),
    Fail(SuitError, Parameters),
}

struct Run<'p, 's> {
    p: &'p Processor<'p>,
    store: &'s dyn Storage,
    procedure: Procedure,
    changes: Changes,
    params: alloc::collections::BTreeMap<ComponentId, Parameters>,
    records: Vec<Entry>,
    invocations: Vec<Invocation>,
    /// dependency-integrity results, valid until the component is written again.
    integrity: BTreeSet<ComponentId>,
    /// SHA-256 of components' current contents, valid until the component is written
    /// again (validate re-checks what install just wrote: hashing it twice buys nothing,
    /// the bytes are in memory we control).
    digests: alloc::collections::BTreeMap<ComponentId, [u8; 32]>,
    /// Dependency components filled in this run and not processed since, with the record
    /// of the command that filled them: none may be committed.
    unprocessed: alloc::collections::BTreeMap<ComponentId, Record>,
    /// Manifest digests of the dependencies processed in this run.
    processed: alloc::collections::BTreeMap<ComponentId, [u8; 32]>,
    /// (dependent, dependency, section key) for each process-dependency that ran.
    ran: BTreeSet<(ComponentId, ComponentId, u64)>,
    depth: usize,
}

fn record(ctx: &Ctx<'_>, section: Section, offset: usize, index: u64) -> Record {
    Record {
        manifest_id: ctx.path.clone(),
        section: section.key(),
        offset: offset as u64,
        component_index: index,
        properties: Parameters::default(),
    }
}

fn early(error: SuitError) -> Box<Failure> {
    Box::new(Failure {
        error,
        record: Record::default(),
    })
}

/// `suit-reference` of a report: the root's reference URI and manifest digest.
type Reference = (Option<String>, Digest);

/// The report reference of a run that failed before it had an authenticated manifest.
fn unknown_reference() -> Reference {
    (None, Digest::sha256([0; 32]))
}

fn reference(auth: &Authenticated<'_>) -> Reference {
    (
        auth.manifest.reference_uri.map(String::from),
        Digest::sha256(auth.digest),
    )
}

/// Where a root manifest lives (see the module notes for manifests without an ID).
fn storage_id(auth: &Authenticated<'_>) -> Result<ComponentId, SuitError> {
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

/// Output of a run that the caller commits.
type RunResult = Result<(Done, Changes), Box<Failure>>;

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

    fn start<'s>(&'a self, store: &'s dyn Storage, procedure: Procedure) -> Run<'a, 's> {
        Run {
            p: self,
            store,
            procedure,
            changes: Changes::default(),
            params: Default::default(),
            records: Vec::new(),
            invocations: Vec::new(),
            integrity: BTreeSet::new(),
            digests: Default::default(),
            unprocessed: Default::default(),
            processed: Default::default(),
            ran: BTreeSet::new(),
            depth: 0,
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
        self.run(storage, Procedure::Update, nonce, |run| match authenticate(
            envelope,
            self.provider,
            &self.anchors(),
        ) {
            Err(e) => (unknown_reference(), Err(early(e))),
            Ok(auth) => (reference(&auth), run.install_root(auth)),
        })
    }

    /// The Uninstall procedure for a root manifest (TEEP `unneeded-manifest-list`): drops
    /// its root link; if nothing else links it, runs its uninstall sequence and deletes it.
    pub fn uninstall(
        &'a self,
        storage: &mut dyn Storage,
        manifest_id: &ComponentId,
        nonce: Option<&[u8]>,
    ) -> Outcome {
        self.run(storage, Procedure::Uninstall, nonce, |run| {
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
        self.run(storage, Procedure::Invocation, nonce, |run| {
            run.with_stored_root(manifest_id, |run, auth, signer| {
                run.invoke_root(manifest_id, auth, signer)
            })
        })
    }

    /// Runs one procedure against a read-only view of `storage`, then commits what it
    /// changed (nothing on failure) and builds its report.
    fn run(
        &'a self,
        storage: &mut dyn Storage,
        procedure: Procedure,
        nonce: Option<&[u8]>,
        body: impl FnOnce(&mut Run<'a, '_>) -> (Reference, RunResult),
    ) -> Outcome {
        let (reference, result, records) = {
            let mut run = self.start(&*storage, procedure);
            let (reference, result) = body(&mut run);
            // Whatever filled a dependency component must have been processed since.
            let result = result.and_then(|ok| match run.unprocessed.pop_first() {
                Some((id, at)) => Err(Box::new(Failure {
                    error: SuitError::DependencyNotProcessed(id),
                    record: at,
                })),
                None => Ok(ok),
            });
            (reference, result, run.records)
        };
        finish(storage, reference, nonce, records, result)
    }
}

fn finish(
    storage: &mut dyn Storage,
    reference: Reference,
    nonce: Option<&[u8]>,
    records: Vec<Entry>,
    result: RunResult,
) -> Outcome {
    // A procedure that changed nothing (a re-delivery) does not touch storage at all.
    let result = result
        .and_then(|(done, changes)| {
            if changes == Changes::default() {
                return Ok(done);
            }
            storage.commit(changes).map(|()| done).map_err(early)
        })
        .map_err(|f| *f);
    let report = Report {
        reference_uri: reference.0,
        manifest_digest: reference.1,
        nonce: nonce.map(<[u8]>::to_vec),
        records,
        capabilities: result
            .as_ref()
            .is_err_and(|f| matches!(f.error.report_reason(), 2 | 3 | 5 | 8)),
        result: result.as_ref().map(|_| ()).map_err(Clone::clone),
    };
    Outcome { report, result }
}

fn hard(error: SuitError, rec: Record) -> Stop {
    Stop::Hard(Box::new(Failure { error, record: rec }))
}

fn to_failure(stop: Stop) -> Box<Failure> {
    match stop {
        Stop::Hard(f) => f,
        // Top-level sequences never run soft; a soft stop there cannot escape.
        Stop::Soft => early(SuitError::SoftFailureNotAllowed),
    }
}

impl Run<'_, '_> {
    // ---- overlay over storage: pending changes first ----

    fn data(&self, id: &ComponentId) -> Result<Option<Cow<'_, [u8]>>, SuitError> {
        match self.changes.data.get(id) {
            Some(pending) => Ok(pending.as_deref().map(Cow::Borrowed)),
            None => self.store.read(id),
        }
    }

    fn owners(&self, id: &ComponentId) -> Result<BTreeSet<ComponentId>, SuitError> {
        match self.changes.owners.get(id) {
            Some(set) => Ok(set.clone()),
            None => self.store.owners(id),
        }
    }

    fn sequence_number(&self, id: &ComponentId) -> Result<Option<u64>, SuitError> {
        match self.changes.sequence_numbers.get(id) {
            Some(n) => Ok(Some(*n)),
            None => self.store.sequence_number(id),
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
    fn manifest_digest(&self, envelope: &[u8]) -> Option<[u8; 32]> {
        Envelope::decode(envelope)
            .ok()
            .map(|e| self.p.provider.sha256(e.manifest_bstr))
    }

    fn link(&mut self, id: &ComponentId, owner: &ComponentId) -> Result<(), SuitError> {
        let mut set = self.owners(id)?;
        set.insert(owner.clone());
        self.changes.owners.insert(id.clone(), set);
        Ok(())
    }

    fn signer_of(&self, id: &ComponentId) -> Result<Option<SignerId>, SuitError> {
        match self.changes.signers.get(id) {
            Some(s) => Ok(Some(s.clone())),
            None => self.store.signer(id),
        }
    }

    /// The one path by which a directive changes a component's contents (fetch, write,
    /// copy, swap, decryption into place; the root's and its dependencies' alike).
    /// * A component another manifest links keeps its contents: other bytes (for a
    ///   dependency: another manifest) fail with `ComponentReferenced`.
    /// * An image is never written where a manifest is (or was) stored: sequence numbers
    ///   are what tells manifests from images when links are dropped.
    /// * An image is linked by the writer; a dependency component is not linked but marked
    ///   unprocessed: process-dependency must authenticate it before anything commits.
    fn put(
        &mut self,
        ctx: &Ctx<'_>,
        index: u64,
        bytes: Vec<u8>,
        at: &Record,
    ) -> Result<(), SuitError> {
        let id = Self::component_id(ctx, index)?;
        let dependency = Self::is_dependency(ctx, index);
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
        self.integrity.remove(&id);
        self.digests.remove(&id);
        self.changes.data.insert(id.clone(), Some(bytes));
        if dependency {
            self.processed.remove(&id);
            self.unprocessed.insert(id, at.clone());
            Ok(())
        } else {
            self.link(&id, &ctx.owner)
        }
    }

    /// The contents of a copy or swap source. A component linked by a manifest of another
    /// signer is not readable: one signer may not copy another's (decrypted) data.
    fn source(&self, ctx: &Ctx<'_>, id: &ComponentId) -> Result<Vec<u8>, SuitError> {
        for owner in self.owners(id)? {
            if owner != ctx.owner && self.signer_of(&owner)?.is_some_and(|s| s != ctx.signer) {
                return Err(SuitError::ForeignComponent(id.clone()));
            }
        }
        self.data(id)?
            .map(Cow::into_owned)
            .ok_or_else(|| SuitError::ComponentEmpty(id.clone()))
    }

    // ---- procedures ----

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
    fn admit(&self, auth: &Authenticated<'_>, location: &ComponentId) -> Result<Signer, SuitError> {
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
        // Replacing a manifest that other manifests depend on would break their digests.
        if self
            .owners(&owner)
            .map_err(early)?
            .iter()
            .any(|o| *o != owner)
        {
            return Err(early(SuitError::ComponentReferenced(owner)));
        }
        let stripped = auth.envelope.stripped();
        let ctx = Ctx {
            auth,
            path: Vec::new(),
            owner: owner.clone(),
            signer: signer.id.clone(),
        };
        for section in Section::UPDATE {
            self.run_section(&ctx, section).map_err(to_failure)?;
        }
        self.changes.data.insert(owner.clone(), Some(stripped));
        self.link(&owner, &owner).map_err(early)?;
        self.changes.sequence_numbers.insert(owner.clone(), seq);
        self.changes.signers.insert(owner.clone(), signer.id);
        let done = Done {
            manifest_id: owner,
            sequence_number: seq,
            invocations: core::mem::take(&mut self.invocations),
        };
        Ok((done, core::mem::take(&mut self.changes)))
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
        let done = Done {
            manifest_id: id,
            sequence_number: seq,
            invocations: Vec::new(),
        };
        Ok((done, core::mem::take(&mut self.changes)))
    }

    /// Loads a stored manifest; callers re-authenticate it (storage is outside our control).
    fn stored(&self, id: &ComponentId) -> Result<Vec<u8>, SuitError> {
        self.data(id)?
            .map(Cow::into_owned)
            .ok_or_else(|| SuitError::NotInstalled(id.clone()))
    }

    /// Loads a stored root manifest, re-authenticates it and hands it to `then`; a failure
    /// before that has no manifest to reference.
    fn with_stored_root(
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

    /// Re-authenticates the manifest stored at `id` and admits it as it would be admitted
    /// today (current anchors and scopes); it must be the manifest for that location.
    fn admit_stored<'b>(
        &self,
        bytes: &'b [u8],
        id: &ComponentId,
    ) -> Result<(Authenticated<'b>, Signer), SuitError> {
        let auth = authenticate(bytes, self.p.provider, &self.p.anchors())?;
        if storage_id(&auth)? != *id {
            return Err(SuitError::StoredManifestMismatch(id.clone()));
        }
        let signer = self.admit(&auth, id)?;
        Ok((auth, signer))
    }

    /// Uninstall needs no trust in the stored manifest: see [`Run::release`].
    fn uninstall_root(&mut self, id: &ComponentId) -> (Reference, RunResult) {
        let bytes = match self.stored(id) {
            Ok(b) => b,
            Err(e) => return (unknown_reference(), Err(early(e))),
        };
        let reference = match authenticate(&bytes, self.p.provider, &self.p.anchors()) {
            Ok(auth) => reference(&auth),
            Err(_) => Envelope::decode(&bytes).map_or_else(
                |_| unknown_reference(),
                |e| {
                    (
                        None,
                        Digest::sha256(self.p.provider.sha256(e.manifest_bstr)),
                    )
                },
            ),
        };
        match self.owners(id) {
            Ok(set) if set.contains(id) => {}
            Ok(_) => return (reference, Err(early(SuitError::NotInstalled(id.clone())))),
            Err(e) => return (reference, Err(early(e))),
        }
        let result = self.release(id, id, &[]).map_err(to_failure).map(|()| {
            let done = Done {
                manifest_id: id.clone(),
                sequence_number: self.store.sequence_number(id).ok().flatten().unwrap_or(0),
                invocations: Vec::new(),
            };
            (done, core::mem::take(&mut self.changes))
        });
        (reference, result)
    }

    fn invoke_root(
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
            if let Err(stop) = self.run_section(&ctx, section) {
                return (reference, Err(to_failure(stop)));
            }
        }
        let done = Done {
            manifest_id: id.clone(),
            sequence_number: seq,
            invocations: core::mem::take(&mut self.invocations),
        };
        (reference, Ok((done, core::mem::take(&mut self.changes))))
    }

    /// Drops `releaser`'s link on the manifest stored at `id`; the last link runs the
    /// manifest's uninstall sequence and deletes it. Dropping a link twice is a no-op.
    fn release(&mut self, id: &ComponentId, releaser: &ComponentId, path: &[u64]) -> Flow {
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
        self.enter(&at)?;
        // Only a manifest we would admit today runs its uninstall sequence; one whose
        // anchor was removed or narrowed is removed plainly (see the module notes).
        let r = match self.admit_stored(&bytes, id) {
            Ok((auth, signer)) => {
                let ctx = Ctx {
                    auth,
                    path: path.to_vec(),
                    owner: id.clone(),
                    signer: signer.id,
                };
                self.run_section(&ctx, Section::Uninstall)
            }
            Err(_) => Ok(()),
        };
        let r = r.and_then(|()| self.drop_links(id, path));
        self.depth -= 1;
        r?;
        self.changes.data.insert(id.clone(), None);
        Ok(())
    }

    /// After a manifest's uninstall sequence: links it still holds (its sequence did not
    /// unlink everything it wrote or depended on) are dropped too, so deleting a manifest
    /// never leaves orphans. A linked manifest is released (its own uninstall may run).
    fn drop_links(&mut self, id: &ComponentId, path: &[u64]) -> Flow {
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
                self.release(&c, id, path)?;
            } else {
                let mut owners = self.owners(&c).map_err(fail)?;
                owners.remove(id);
                if owners.is_empty() {
                    self.changes.data.insert(c.clone(), None);
                }
                self.changes.owners.insert(c, owners);
            }
        }
        Ok(())
    }

    fn enter(&mut self, at: &Record) -> Flow {
        if self.depth >= self.p.policy.max_depth {
            return Err(hard(SuitError::TooDeep, at.clone()));
        }
        self.depth += 1;
        Ok(())
    }

    // ---- sequences ----

    /// Runs the shared sequence and then `section`, if the manifest has that section.
    fn run_section(&mut self, ctx: &Ctx<'_>, section: Section) -> Flow {
        let bytes = section_bytes(&ctx.auth, section, self.p.provider)
            .map_err(|e| hard(e, record(ctx, section, 0, 0)))?;
        let Some(bytes) = bytes else {
            return Ok(());
        };
        if let Some(shared) = ctx.auth.manifest.common.shared_sequence {
            self.run_sequence(ctx, Section::Shared, section, shared, 0, 0, false, false)?;
        }
        self.run_sequence(ctx, section, section, bytes, 0, 0, false, false)?;
        if self.procedure == Procedure::Update {
            self.check_lockstep(ctx, section)
                .map_err(|e| hard(e, record(ctx, section, bytes.len(), 0)))?;
        }
        Ok(())
    }

    fn index_space(ctx: &Ctx<'_>) -> u64 {
        ctx.auth.manifest.common.index_space() as u64
    }

    fn component_id(ctx: &Ctx<'_>, index: u64) -> Result<ComponentId, SuitError> {
        ctx.auth
            .manifest
            .common
            .component_id(index)
            .ok_or(SuitError::ComponentIndexOutOfRange(index))
    }

    /// Runs one command sequence. `section` is where the bytes sit (for records),
    /// `procedure_section` the section being executed (for process-dependency), `base`
    /// the offset of the bytes in their section, `nested` whether inside try-each or
    /// run-sequence (the only places soft-failure may be set), `soft` its initial value.
    #[allow(clippy::too_many_arguments)]
    fn run_sequence(
        &mut self,
        ctx: &Ctx<'_>,
        section: Section,
        procedure_section: Section,
        bytes: &[u8],
        base: usize,
        start_index: u64,
        soft: bool,
        nested: bool,
    ) -> Flow {
        let at = |offset: usize, index: u64| record(ctx, section, offset, index);
        self.enter(&at(base, start_index))?;
        let steps = parse_sequence(bytes, base).map_err(|e| hard(e, at(base, start_index)))?;
        let mut index = IndexArg::One(start_index);
        let mut soft = soft;
        for step in &steps {
            if section == Section::Shared && !step.command.allowed_in_shared() {
                self.depth -= 1;
                return Err(hard(
                    SuitError::NotAllowedInShared(step.command.number()),
                    at(step.offset, 0),
                ));
            }
            let r = self.step(
                ctx,
                section,
                procedure_section,
                &step.command,
                step.offset,
                &mut index,
                &mut soft,
                nested,
            );
            if r.is_err() {
                self.depth -= 1;
                return r;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn targets(ctx: &Ctx<'_>, index: &IndexArg) -> Vec<u64> {
        match index {
            IndexArg::One(i) => vec![*i],
            IndexArg::All => (0..Self::index_space(ctx)).collect(),
            IndexArg::List(v) => v.clone(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        ctx: &Ctx<'_>,
        section: Section,
        procedure_section: Section,
        command: &Command<'_>,
        offset: usize,
        index: &mut IndexArg,
        soft: &mut bool,
        nested: bool,
    ) -> Flow {
        let at = |i: u64| record(ctx, section, offset, i);
        match command {
            Command::SetComponentIndex(arg) => {
                let space = Self::index_space(ctx);
                let bad = match arg {
                    IndexArg::One(i) => (*i >= space).then_some(*i),
                    IndexArg::All => None,
                    IndexArg::List(v) => v.iter().copied().find(|i| *i >= space),
                };
                if let Some(i) = bad {
                    return Err(hard(SuitError::ComponentIndexOutOfRange(i), at(i)));
                }
                *index = arg.clone();
                Ok(())
            }
            Command::OverrideParameters(p) | Command::SetParameters(p) => {
                if let Some(value) = p.soft_failure {
                    if !nested {
                        return Err(hard(SuitError::SoftFailureNotAllowed, at(0)));
                    }
                    *soft = value;
                }
                let overwrite = matches!(command, Command::OverrideParameters(_));
                for i in Self::targets(ctx, index) {
                    let id = Self::component_id(ctx, i).map_err(|e| hard(e, at(i)))?;
                    self.params.entry(id).or_default().merge(p, overwrite);
                }
                Ok(())
            }
            Command::TryEach(branches, empty_ok) => {
                for i in Self::targets(ctx, index) {
                    let mut done = false;
                    for b in branches {
                        match self.run_sequence(
                            ctx,
                            section,
                            procedure_section,
                            b.bytes,
                            b.offset,
                            i,
                            true,
                            true,
                        ) {
                            Ok(()) => {
                                done = true;
                                break;
                            }
                            Err(Stop::Soft) => {}
                            Err(hard) => return Err(hard),
                        }
                    }
                    if !done && !empty_ok {
                        return self.condition_failed(SuitError::TryEachExhausted, at(i), *soft);
                    }
                }
                Ok(())
            }
            Command::RunSequence(n) => {
                for i in Self::targets(ctx, index) {
                    match self.run_sequence(
                        ctx,
                        section,
                        procedure_section,
                        n.bytes,
                        n.offset,
                        i,
                        false,
                        true,
                    ) {
                        Ok(()) | Err(Stop::Soft) => {}
                        Err(hard) => return Err(hard),
                    }
                }
                Ok(())
            }
            Command::Condition(c, policy) => {
                for i in Self::targets(ctx, index) {
                    let check = self.condition(ctx, *c, i).map_err(|e| hard(e, at(i)))?;
                    match check {
                        Check::Pass(measured) => {
                            self.report(ctx, *policy, true, at(i), i, measured)
                        }
                        Check::Fail(error, measured) => {
                            self.report(ctx, *policy, false, at(i), i, measured.clone());
                            let mut rec = at(i);
                            rec.properties = measured;
                            return self.condition_failed(error, rec, *soft);
                        }
                    }
                }
                Ok(())
            }
            Command::Directive(d, policy) => {
                for i in Self::targets(ctx, index) {
                    let r = self.directive(ctx, *d, i, procedure_section, &at(i));
                    match r {
                        Ok(()) => self.report(ctx, *policy, true, at(i), i, Parameters::default()),
                        Err(Stop::Hard(mut f)) => {
                            // Errors from nested manifests keep their own location.
                            if f.record == Record::default() {
                                f.record = at(i);
                            }
                            self.report(ctx, *policy, false, at(i), i, Parameters::default());
                            return Err(Stop::Hard(f));
                        }
                        Err(Stop::Soft) => return Err(Stop::Soft),
                    }
                }
                Ok(())
            }
        }
    }

    fn condition_failed(&mut self, error: SuitError, rec: Record, soft: bool) -> Flow {
        if soft {
            Err(Stop::Soft)
        } else {
            Err(hard(error, rec))
        }
    }

    /// Appends records as the reporting policy asks: bit 0/1 a record on success/failure,
    /// bit 2/3 the component's measured properties on success/failure.
    fn report(
        &mut self,
        ctx: &Ctx<'_>,
        policy: u64,
        success: bool,
        mut rec: Record,
        index: u64,
        measured: Parameters,
    ) {
        let (record_bit, sysinfo_bit) = if success { (1, 4) } else { (2, 8) };
        if policy & sysinfo_bit != 0
            && measured != Parameters::default()
            && let Ok(component) = Self::component_id(ctx, index)
        {
            self.records.push(Entry::System(SystemProperties {
                component,
                properties: measured.clone(),
            }));
        }
        if policy & record_bit != 0 {
            rec.properties = measured;
            self.records.push(Entry::Record(rec));
        }
    }

    fn param<T: Clone>(
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

    /// A dependency's position among the manifest's dependencies (ascending index): the
    /// step it adds to a report record's `manifest-id` path (`[1, 0]` = the first
    /// dependency of the root's second dependency).
    fn dependency_ordinal(ctx: &Ctx<'_>, index: u64) -> u64 {
        ctx.auth
            .manifest
            .common
            .dependencies
            .iter()
            .filter(|d| d.index < index)
            .count() as u64
    }

    fn is_dependency(ctx: &Ctx<'_>, index: u64) -> bool {
        ctx.auth.manifest.common.dependency(index).is_some()
    }

    // ---- conditions ----

    fn condition(&mut self, ctx: &Ctx<'_>, c: Condition, index: u64) -> Result<Check, SuitError> {
        let id = Self::component_id(ctx, index)?;
        let device = self.p.device;
        let fail = |e| Ok(Check::Fail(e, Parameters::default()));
        let failed = SuitError::ConditionFailed { condition: c as u8 };
        let pass = Ok(Check::Pass(Parameters::default()));
        match c {
            Condition::VendorIdentifier => {
                match self.param(&id, param::VENDOR_ID, |p| &p.vendor_id) {
                    Ok(v) if device.vendor_ids.contains(&v) => pass,
                    Ok(_) => fail(failed),
                    Err(e) => fail(e),
                }
            }
            Condition::ClassIdentifier => match self.param(&id, param::CLASS_ID, |p| &p.class_id) {
                Ok(v) if device.class_ids.contains(&v) => pass,
                Ok(_) => fail(failed),
                Err(e) => fail(e),
            },
            Condition::DeviceIdentifier => {
                match self.param(&id, param::DEVICE_ID, |p| &p.device_id) {
                    Ok(v) if device.device_ids.contains(&v) => pass,
                    Ok(_) => fail(failed),
                    Err(e) => fail(e),
                }
            }
            Condition::ComponentSlot => {
                match self.param(&id, param::COMPONENT_SLOT, |p| &p.component_slot) {
                    Ok(slot) => {
                        let actual = device.slots.iter().find(|(c, _)| *c == id).map(|(_, s)| *s);
                        if actual == Some(slot) {
                            pass
                        } else {
                            let measured = Parameters {
                                component_slot: actual,
                                ..Parameters::default()
                            };
                            Ok(Check::Fail(failed, measured))
                        }
                    }
                    Err(e) => fail(e),
                }
            }
            Condition::ImageMatch => {
                let expected = match self.param(&id, param::IMAGE_DIGEST, |p| &p.image_digest) {
                    Ok(d) => d,
                    Err(e) => return fail(e),
                };
                if Self::is_dependency(ctx, index) {
                    return self.dependency_digest_check(&id, &expected, failed);
                }
                let Some(data) = self.data(&id)? else {
                    return fail(SuitError::ComponentEmpty(id));
                };
                let size = data.len() as u64;
                let digest = match self.digests.get(&id) {
                    Some(d) => *d,
                    None => self.p.provider.sha256(&data),
                };
                drop(data);
                self.digests.insert(id.clone(), digest);
                let measured = Parameters {
                    image_digest: Some(Digest::sha256(digest)),
                    image_size: Some(size),
                    ..Parameters::default()
                };
                let size_ok = self
                    .params
                    .get(&id)
                    .and_then(|p| p.image_size)
                    .is_none_or(|s| s == size);
                if expected.matches_sha256(&digest)? && size_ok {
                    Ok(Check::Pass(measured))
                } else {
                    Ok(Check::Fail(failed, measured))
                }
            }
            Condition::CheckContent => {
                let expected = match self.param(&id, param::CONTENT, |p| &p.content) {
                    Ok(c) => c,
                    Err(e) => return fail(e),
                };
                match self.data(&id)? {
                    Some(data) if ct_eq(&data, &expected) => pass,
                    _ => fail(failed),
                }
            }
            Condition::DependencyIntegrity => {
                if !Self::is_dependency(ctx, index) {
                    return Err(SuitError::NotADependency(index));
                }
                // Any failure aborts: the dependency cannot be trusted at all.
                self.verify_dependency(&id)?;
                self.integrity.insert(id);
                pass
            }
            Condition::IsDependency => {
                if Self::is_dependency(ctx, index) {
                    pass
                } else {
                    fail(failed)
                }
            }
            Condition::Abort => fail(failed),
        }
    }

    /// image-match on a dependency: its manifest digest (not the envelope bytes).
    fn dependency_digest_check(
        &self,
        id: &ComponentId,
        expected: &Digest,
        failed: SuitError,
    ) -> Result<Check, SuitError> {
        let Some(data) = self.data(id)? else {
            return Ok(Check::Fail(
                SuitError::ComponentEmpty(id.clone()),
                Parameters::default(),
            ));
        };
        let envelope = match Envelope::decode(&data) {
            Ok(e) => e,
            Err(e) => return Ok(Check::Fail(e, Parameters::default())),
        };
        let digest = self.p.provider.sha256(envelope.manifest_bstr);
        let measured = Parameters {
            image_digest: Some(Digest::sha256(digest)),
            ..Parameters::default()
        };
        if expected.matches_sha256(&digest)? {
            Ok(Check::Pass(measured))
        } else {
            Ok(Check::Fail(failed, measured))
        }
    }

    /// Authenticates the dependency stored (or fetched) at `id` and checks its manifest
    /// digest against the `image-digest` set for it. Returns the envelope bytes.
    fn verify_dependency(&self, id: &ComponentId) -> Result<Vec<u8>, SuitError> {
        let expected = self.param(id, param::IMAGE_DIGEST, |p| &p.image_digest)?;
        let bytes = self
            .data(id)?
            .map(Cow::into_owned)
            .ok_or_else(|| SuitError::ComponentEmpty(id.clone()))?;
        let auth = authenticate(&bytes, self.p.provider, &self.p.anchors())?;
        if !expected.matches_sha256(&auth.digest)? {
            return Err(SuitError::DependencyDigestMismatch);
        }
        Ok(bytes)
    }

    // ---- directives ----

    fn directive(
        &mut self,
        ctx: &Ctx<'_>,
        d: Directive,
        index: u64,
        procedure_section: Section,
        at: &Record,
    ) -> Flow {
        let plain = |e: SuitError| hard(e, Record::default());
        let id = Self::component_id(ctx, index).map_err(plain)?;
        match d {
            Directive::Fetch => {
                let uri = self.param(&id, param::URI, |p| &p.uri).map_err(plain)?;
                let bytes = match ctx.auth.envelope.integrated(&uri) {
                    Some(b) => b.to_vec(),
                    None => self.p.fetcher.fetch(&uri).map_err(|reason| {
                        plain(SuitError::Fetch {
                            uri: uri.clone(),
                            reason,
                        })
                    })?,
                };
                self.put(ctx, index, bytes, at).map_err(plain)
            }
            Directive::Write => {
                let content = self
                    .param(&id, param::CONTENT, |p| &p.content)
                    .map_err(plain)?;
                let bytes = self.maybe_decrypt(&id, content).map_err(plain)?;
                self.put(ctx, index, bytes, at).map_err(plain)
            }
            Directive::Copy | Directive::Swap => {
                let source = self
                    .param(&id, param::SOURCE_COMPONENT, |p| &p.source_component)
                    .map_err(plain)?;
                let source_id = Self::component_id(ctx, source).map_err(plain)?;
                let data = self.source(ctx, &source_id).map_err(plain)?;
                if d == Directive::Copy {
                    let bytes = self.maybe_decrypt(&id, data).map_err(plain)?;
                    self.put(ctx, index, bytes, at).map_err(plain)
                } else {
                    let current = self.source(ctx, &id).map_err(plain)?;
                    self.put(ctx, index, data, at).map_err(plain)?;
                    self.put(ctx, source, current, at).map_err(plain)
                }
            }
            Directive::Invoke => {
                let args = self.params.get(&id).and_then(|p| p.invoke_args.clone());
                self.invocations.push(Invocation {
                    component: id,
                    args,
                });
                Ok(())
            }
            Directive::ProcessDependency => {
                if !Self::is_dependency(ctx, index) {
                    return Err(plain(SuitError::NotADependency(index)));
                }
                let mut path = ctx.path.clone();
                path.push(Self::dependency_ordinal(ctx, index));
                if self.procedure == Procedure::Uninstall {
                    self.release(&id, &ctx.owner, &path)
                } else {
                    self.process_dependency(ctx, &id, path, procedure_section)
                }
            }
            Directive::Unlink => {
                let mut path = ctx.path.clone();
                path.push(Self::dependency_ordinal(ctx, index));
                if Self::is_dependency(ctx, index) {
                    self.release(&id, &ctx.owner, &path)
                } else {
                    let mut owners = self.owners(&id).map_err(plain)?;
                    if owners.remove(&ctx.owner) {
                        if owners.is_empty() {
                            self.changes.data.insert(id.clone(), None);
                        }
                        self.changes.owners.insert(id, owners);
                    }
                    Ok(())
                }
            }
        }
    }

    fn maybe_decrypt(&self, id: &ComponentId, data: Vec<u8>) -> Result<Vec<u8>, SuitError> {
        match self.params.get(id).and_then(|p| p.encryption_info.as_ref()) {
            None => Ok(data),
            Some(info) => self
                .p
                .decryptor
                .ok_or(SuitError::NoDecryptor)?
                .decrypt(info, &data),
        }
    }

    /// Runs the dependency's shared sequence and its section named like the dependent's.
    fn process_dependency(
        &mut self,
        ctx: &Ctx<'_>,
        id: &ComponentId,
        path: Vec<u64>,
        section: Section,
    ) -> Flow {
        let at = Record {
            manifest_id: path.clone(),
            ..Record::default()
        };
        // Refusing the dependency is a failure of the dependent's process-dependency command
        // (the caller puts its location in the record); failures inside it keep theirs.
        let refuse = |e: SuitError| hard(e, Record::default());
        let bytes = self.verify_dependency(id).map_err(refuse)?;
        let auth = authenticate(&bytes, self.p.provider, &self.p.anchors()).map_err(refuse)?;
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
        let fail = |e: SuitError| hard(e, at.clone());
        self.enter(&at)?;
        let digest = auth.digest;
        let child = Ctx {
            auth,
            path,
            owner: id.clone(),
            signer: signer.id.clone(),
        };
        let r = self.run_section(&child, section);
        self.depth -= 1;
        r?;
        let high = self
            .sequence_number(id)
            .map_err(fail)?
            .unwrap_or(0)
            .max(seq);
        self.changes.sequence_numbers.insert(id.clone(), high);
        self.changes.signers.insert(id.clone(), signer.id);
        self.changes.data.entry(id.clone()).or_insert(Some(bytes));
        self.unprocessed.remove(id);
        self.processed.insert(id.clone(), digest);
        self.ran
            .insert((ctx.owner.clone(), id.clone(), section.key()));
        self.link(id, &ctx.owner).map_err(fail)
    }

    /// A dependency's sequence number must not be below the highest stored or processed
    /// in this run for its manifest component ID; equal only for the very manifest stored
    /// or processed before (same digest), which re-processing leaves as it was.
    fn check_dependency_rollback(
        &self,
        id: &ComponentId,
        seq: u64,
        digest: &[u8; 32],
    ) -> Result<(), SuitError> {
        let stored = self.store.sequence_number(id)?;
        let Some(installed) = stored.max(self.changes.sequence_numbers.get(id).copied()) else {
            return Ok(());
        };
        if seq > installed {
            return Ok(());
        }
        let same = self.processed.get(id) == Some(digest)
            || (stored == Some(installed)
                && self
                    .store
                    .read(id)?
                    .is_some_and(|b| self.manifest_digest(&b) == Some(*digest)));
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
    fn check_lockstep(&self, ctx: &Ctx<'_>, section: Section) -> Result<(), SuitError> {
        for dep in &ctx.auth.manifest.common.dependencies {
            let Ok(id) = Self::component_id(ctx, dep.index) else {
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
