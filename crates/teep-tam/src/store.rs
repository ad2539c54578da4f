//! The `Store` seam: what the TAM keeps, as plain data the shell loads and commits.
//!
//! The engine never holds state between messages: sessions (with their typed states),
//! devices, TCs, policy, attestation results, SUIT reports and the audit log live here, so
//! that any replica can continue any session. A message is handled as *load* (the shell
//! answers [`LoadRequest`]s with [`Loaded`] values), *decide* (pure engine code) and
//! *commit* ([`Store::commit`] applies one [`Changes`] in one transaction). The commit is
//! a compare-and-set on the token it consumes: if another replica consumed it meanwhile,
//! nothing is written and [`StoreError::Conflict`] comes back, so one QueryResponse
//! delivered to two replicas yields exactly one Update. It is one on the device record's
//! revision too ([`Changes::device_revision`]), so a decision made on a view that another
//! commit has since changed does not overwrite that commit's record.
//!
//! Records are plain (bytes, integers, strings) so that SQL implementations map them onto
//! columns; keys are stored as encoded COSE_Keys.

use std::collections::{BTreeMap, btree_map};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use teep_proto::{
    CipherSuite, ComponentId, DataItemRequested, FreshnessMechanism, SuitCoseProfile,
};

/// A device: the RFC 9679 thumbprint (SHA-256) of its TEEP Agent key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub [u8; 32]);

impl core::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Eight bytes name a device in logs; the full id is in the store.
        f.write_str(&hex::encode(self.0.get(..8).unwrap_or_default()))
    }
}

/// A session token (8..64 random bytes, single use).
pub type Token = Vec<u8>;

/// Identifies one TEEP session (the QueryRequest that opened it and the tokens after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub [u8; 16]);

/// A manifest the TAM knows it installed on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The manifest component ID.
    pub manifest_id: ComponentId,
    /// Its `suit-manifest-sequence-number`.
    pub sequence: u64,
    /// SHA-256 of the bstr-wrapped manifest.
    pub digest: [u8; 32],
}

/// A release a device failed to install: its Agent answered the Update with
/// ERR_MANIFEST_PROCESSING_FAILED and a SUIT report saying this manifest failed (failures
/// less than [`FAILED_BACKOFF`] after the last one counted count as that one). After a
/// second failure in a row the TAM waits before sending it to that device again
/// ([`Failed::held_until`]): an envelope that keeps failing on a device would otherwise
/// travel with every contact. It goes at once when the Agent asks for it
/// (`requested-tc-list`), and a new release of the manifest (another digest) goes as usual.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    /// The manifest component ID.
    pub manifest_id: ComponentId,
    /// SHA-256 of the bstr-wrapped manifest that failed.
    pub digest: [u8; 32],
    /// How many times in a row the device failed it.
    pub failures: u32,
    /// When it last failed (Unix seconds).
    pub at: u64,
}

impl Failed {
    /// Until when (Unix seconds) the release is not sent again: not at all after a first
    /// failure, whose cause may be gone at the next contact (a TC-signer anchor the device
    /// lacked, a payload at its URI being fixed), then [`FAILED_BACKOFF`] seconds doubled
    /// with each further failure, at most [`FAILED_BACKOFF_MAX`].
    pub fn held_until(&self) -> u64 {
        if self.failures < 2 {
            return self.at;
        }
        let doublings = (self.failures - 2).min(16);
        let wait = (FAILED_BACKOFF << doublings).min(FAILED_BACKOFF_MAX);
        self.at.saturating_add(wait)
    }
}

/// The wait after a release's second failure on a device (seconds).
pub const FAILED_BACKOFF: u64 = 60;
/// The longest wait between attempts of a release that keeps failing (one day).
pub const FAILED_BACKOFF_MAX: u64 = 86_400;
/// At most this many failed releases are remembered per device (the newest).
pub const FAILED_PER_DEVICE: usize = 16;

/// A device the TAM knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Thumbprint of `key`.
    pub id: DeviceId,
    /// The Agent's TEEP key, an encoded COSE_Key.
    pub key: Vec<u8>,
    /// The device class the policy names (set by the operator).
    pub class: Option<String>,
    /// Set by the operator: the device gets nothing, whatever its Evidence says.
    pub revoked: bool,
    /// The cipher suite the Agent signs with (its choice in its first QueryResponse).
    pub suite: Option<CipherSuite>,
    /// When the device last attested successfully (Unix seconds).
    pub attested_at: Option<u64>,
    /// Set by the operator who registered `key` in advance: the device is served without
    /// attestation (older Agents that cannot produce Evidence).
    pub attestation_exempt: bool,
    /// Manifests installed, as the TAM last learnt from a Success.
    pub installed: Vec<Installed>,
    /// Releases it failed to install, with how often and when (oldest first, at most
    /// [`FAILED_PER_DEVICE`]).
    pub failed: Vec<Failed>,
}

/// One version of a Trusted Component, as the TC signer made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcRelease {
    /// The manifest component ID (what `unneeded-manifest-list` names).
    pub manifest_id: ComponentId,
    /// `suit-manifest-sequence-number`.
    pub sequence: u64,
    /// SHA-256 of the bstr-wrapped manifest.
    pub digest: [u8; 32],
    /// Thumbprint of the TC signer key that authenticated the envelope.
    pub signer: Option<[u8; 32]>,
    /// The SUIT envelope: shared, not copied, by every device view and store cache that
    /// holds it (a 64 KiB TC copied into each view was a tenth of a session's own work).
    pub envelope: std::sync::Arc<[u8]>,
    /// Manifest IDs this TC depends on (installed first).
    pub depends_on: Vec<ComponentId>,
}

/// Which TCs a device (or every device of a class) should hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcPolicy {
    /// Manifest IDs to install and keep up to date.
    pub install: Vec<ComponentId>,
    /// Manifest IDs the device may ask for in `requested-tc-list`.
    pub requestable: Vec<ComponentId>,
}

impl TcPolicy {
    /// Drops the revoked TCs, so that the plan neither sends nor keeps them: a device that
    /// holds one is told to unlink it at its next contact.
    pub fn without_revoked(&mut self, revoked: &[ComponentId]) {
        self.install.retain(|id| !revoked.contains(id));
        self.requestable.retain(|id| !revoked.contains(id));
    }
}

/// A TC-signer trust anchor the operator configured: one raw key, or one CA certificate
/// whose `x5chain` leaves sign (see `teep_suit::trust::TrustAnchor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerRecord {
    /// The anchor's name (its identity in the admin API).
    pub name: String,
    /// The signer's public key, an encoded COSE_Key (empty for a CA anchor: the CA's own
    /// key signs certificates, never envelopes).
    pub key: Vec<u8>,
    /// Component-ID prefixes the signer may write (the empty ID: everything).
    pub scope: Vec<ComponentId>,
    /// A CA certificate (DER): envelopes signed by a leaf whose `x5chain` verifies to it
    /// are this anchor's, with its scope.
    pub ca: Option<Vec<u8>>,
}

/// What the TAM is waiting for in a session: the typed state a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// A QueryRequest was sent with this token.
    ExpectQueryResponse(ExpectQueryResponse),
    /// An Update was sent with this token.
    ExpectSuccess(ExpectSuccess),
}

impl SessionState {
    /// The state's name, for logs and errors.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::ExpectQueryResponse(_) => "ExpectQueryResponse",
            Self::ExpectSuccess(_) => "ExpectSuccess",
        }
    }
}

/// What the TAM offered in a QueryRequest (narrowed by the Agent's negotiation Errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// TEEP versions.
    pub versions: Vec<u32>,
    /// TEEP cipher suites.
    pub suites: Vec<CipherSuite>,
    /// SUIT COSE profiles.
    pub profiles: Vec<SuitCoseProfile>,
    /// Freshness mechanisms.
    pub freshness: Vec<FreshnessMechanism>,
}

/// Waiting for a QueryResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectQueryResponse {
    /// The Verifier's challenge the Evidence must carry (`None`: no attestation asked, or
    /// timestamp freshness).
    pub challenge: Option<Vec<u8>>,
    /// The data items the QueryRequest asked for.
    pub requested: DataItemRequested,
    /// What the QueryRequest offered.
    pub offer: Offer,
    /// The QueryRequest carried the TAM's own Attestation Result: a later
    /// ERR_ATTESTATION_REQUIRED in this session is not answered again (no loop).
    pub tam_attested: bool,
}

/// One manifest sent in an Update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentManifest {
    /// The manifest component ID.
    pub manifest_id: ComponentId,
    /// Its sequence number.
    pub sequence: u64,
    /// SHA-256 of the bstr-wrapped manifest (what a SUIT report names).
    pub digest: [u8; 32],
}

/// Waiting for the Success or Error that answers an Update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectSuccess {
    /// The manifests the Update carried.
    pub sent_manifests: Vec<SentManifest>,
    /// The manifests the Update asked to unlink.
    pub unneeded: Vec<ComponentId>,
}

/// One outstanding (or consumed, until purged) token and the state it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The token (the lookup key).
    pub token: Token,
    /// The session the token belongs to.
    pub session: SessionId,
    /// The device, once known (always for ExpectSuccess).
    pub device: Option<DeviceId>,
    /// When the token was issued.
    pub issued_at: u64,
    /// After this instant the token is ignored.
    pub expires_at: u64,
    /// Set when the first valid answer was committed; later ones are ignored.
    pub consumed: bool,
    /// What the TAM waits for.
    pub state: SessionState,
}

/// An attestation result the TAM accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationRecord {
    /// The device it is about.
    pub device: DeviceId,
    /// When it was accepted.
    pub at: u64,
    /// The signed EAR.
    pub ear: Vec<u8>,
}

/// How one appraisal of a known device's attestation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttestationVerdict {
    /// The EAR checked out and is affirming: the device counts as attested.
    Affirming,
    /// The EAR checked out but its status is not affirming (warning, contraindicated):
    /// answered with ERR_ATTESTATION_REQUIRED, nothing installed.
    NotAffirming,
    /// The QueryResponse's attestation was refused: the EAR did not verify (signature,
    /// nonce, age), binds no key or another device's, or the message is not signed by the
    /// key it binds (the Evidence's signer is not endorsed, for instance).
    Rejected,
    /// The Verifier gave no answer.
    VerifierUnavailable,
}

impl AttestationVerdict {
    /// The name stored and shown (`affirming`, `not-affirming`, `rejected`,
    /// `verifier-unavailable`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Affirming => "affirming",
            Self::NotAffirming => "not-affirming",
            Self::Rejected => "rejected",
            Self::VerifierUnavailable => "verifier-unavailable",
        }
    }

    /// The verdict named `name` ([`Self::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Affirming,
            Self::NotAffirming,
            Self::Rejected,
            Self::VerifierUnavailable,
        ]
        .into_iter()
        .find(|v| v.name() == name)
    }
}

/// One appraisal outcome of a device the TAM knows, kept so that the operator sees its
/// attestation over time, failures included (a failed appraisal changes nothing else).
/// Only devices with a record get outcomes: a stranger's failed first contact proves no
/// identity, and recording it would let anyone fill the store (metrics count those).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationOutcome {
    /// The device.
    pub device: DeviceId,
    /// When.
    pub at: u64,
    /// How it ended.
    pub verdict: AttestationVerdict,
    /// Why, in a few words (the EAR's status, the check that failed); never Evidence.
    pub detail: String,
}

/// How many [`AttestationOutcome`]s a store keeps per device (the oldest go first).
pub const OUTCOMES_PER_DEVICE: usize = 100;

/// A SUIT report the TAM accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRecord {
    /// The device that sent it.
    pub device: DeviceId,
    /// When it was accepted.
    pub at: u64,
    /// The manifest it is about (a manifest the TAM sent).
    pub manifest_digest: [u8; 32],
    /// Whether the report says the procedure succeeded.
    pub success: bool,
    /// The report as received (one `suit-reports` entry).
    pub report: Vec<u8>,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: u64,
    /// Which device, if known.
    pub device: Option<DeviceId>,
    /// What happened.
    pub event: String,
    /// What it affected (an admin call's TC, sequence number, signer, device...) or why it
    /// was refused; never a secret or a body's raw bytes.
    pub detail: Option<String>,
}

/// What the engine asks the shell to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadRequest {
    /// The session a token names.
    Session(Token),
    /// Tokens of the outstanding sessions that belong to no known device, oldest first,
    /// except the newest `keep`: the ones to retire before one more is opened. Only those
    /// are read, so an empty POST costs the same however many are outstanding.
    AnonymousSessions {
        /// How many of the newest to leave out.
        keep: usize,
    },
    /// A device, its policy and the TC releases that policy names. `class` is the class
    /// to take the policy of when the device has no record (or no class) yet.
    Device {
        /// The device.
        id: DeviceId,
        /// The class for a device not yet classified.
        class: Option<String>,
    },
}

/// A device as the engine sees it: the record (if any), the policy in force for it (its
/// own entry, else its class's) and the latest release of every TC that policy names (and
/// of their dependencies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceView {
    /// The record; `None` for a device seen for the first time.
    pub device: Option<Device>,
    /// Its policy.
    pub policy: TcPolicy,
    /// Latest release of each TC named by the policy, and of their dependencies.
    pub releases: Vec<TcRelease>,
    /// Tokens of the device's outstanding sessions, oldest first.
    pub outstanding: Vec<Token>,
    /// How many commits have written the device record (0: none yet). A decision that
    /// rewrites the record names the revision it read in [`Changes::device_revision`].
    pub revision: u64,
}

/// The shell's answer to a [`LoadRequest`] of the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// The session record, if the token is known.
    Session(Option<Box<SessionRecord>>),
    /// The device view.
    Device(Box<DeviceView>),
    /// Answer to [`LoadRequest::AnonymousSessions`].
    Anonymous(Vec<Token>),
}

/// Everything one message changes, committed in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The token this message answers: the commit fails unless it is still unconsumed.
    pub consume: Option<Token>,
    /// Tokens issued by the reply.
    pub new_sessions: Vec<SessionRecord>,
    /// Outstanding tokens retired to keep a device under its bound.
    pub retire: Vec<Token>,
    /// Delete session records that expired before this instant.
    pub purge_expired_before: Option<u64>,
    /// The device record, created or changed.
    pub device: Option<Device>,
    /// The record's revision the decision read ([`DeviceView::revision`]): the commit
    /// fails unless the record is still at it, and bumps it. The record is rewritten
    /// whole from that view, so without this check a decision made on an older view
    /// (one replica slow to commit) would undo what another replica committed meanwhile,
    /// e.g. record a TC the device has since unlinked (found by the simulation).
    pub device_revision: Option<u64>,
    /// An attestation result accepted.
    pub attestation: Option<AttestationRecord>,
    /// How an appraisal of a known device ended (also committed alone when the message
    /// was dropped: see [`crate::engine::Decision::failed_attestation`]).
    pub outcome: Option<AttestationOutcome>,
    /// SUIT reports accepted.
    pub reports: Vec<ReportRecord>,
    /// Audit log lines.
    pub audit: Vec<AuditEntry>,
}

/// Why the store did not answer or commit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The token to consume was consumed (or retired) by another commit: nothing written.
    #[error("the token was consumed meanwhile")]
    Conflict,
    /// The backend failed.
    #[error("store backend: {0}")]
    Backend(String),
}

/// The TAM's persistent state. Implementations: [`MemoryStore`] (tests, single process);
/// SQLite and PostgreSQL (sqlx) later. Both calls are async so that a database shell can
/// implement them; the in-memory store answers at once.
pub trait Store: Send + Sync {
    /// Answers one load request.
    fn load(
        &self,
        request: &LoadRequest,
    ) -> impl Future<Output = Result<Loaded, StoreError>> + Send;

    /// Applies `changes` in one transaction: if `changes.consume` names a token that is
    /// unknown or already consumed, or `changes.device_revision` is not the record's
    /// revision any more, nothing is applied and [`StoreError::Conflict`] is returned.
    fn commit(&self, changes: &Changes) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A shared store is a store: the TEEP server and the admin API hold one `Arc` each.
impl<T: Store> Store for std::sync::Arc<T> {
    fn load(
        &self,
        request: &LoadRequest,
    ) -> impl Future<Output = Result<Loaded, StoreError>> + Send {
        T::load(self, request)
    }

    fn commit(&self, changes: &Changes) -> impl Future<Output = Result<(), StoreError>> + Send {
        T::commit(self, changes)
    }
}

/// The whole state of a [`MemoryStore`]: tests compare two of these to prove that a
/// rejected message changed nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryState {
    /// Devices by id.
    pub devices: BTreeMap<DeviceId, Device>,
    /// Every TC release.
    pub releases: Vec<TcRelease>,
    /// Policy per device class.
    pub class_policy: BTreeMap<String, TcPolicy>,
    /// Policy per device (wins over its class's).
    pub device_policy: BTreeMap<DeviceId, TcPolicy>,
    /// Sessions by token.
    pub sessions: BTreeMap<Token, SessionRecord>,
    /// Issue order of the sessions by token: one more than the highest held when the
    /// session was first stored, so sessions issued in the same second still age in the
    /// order they were opened (the SQL stores' `issue_order` column, same rule).
    pub session_order: BTreeMap<Token, u64>,
    /// Accepted attestation results.
    pub attestations: Vec<AttestationRecord>,
    /// Appraisal outcomes, oldest first (at most [`OUTCOMES_PER_DEVICE`] per device).
    pub outcomes: Vec<AttestationOutcome>,
    /// Accepted SUIT reports.
    pub reports: Vec<ReportRecord>,
    /// The audit log.
    pub audit: Vec<AuditEntry>,
    /// TC-signer trust anchors by name (admin API).
    pub signers: BTreeMap<String, SignerRecord>,
    /// Manifest IDs the operator revoked (every version), in the order revoked.
    pub revoked_tcs: Vec<ComponentId>,
    /// [`DeviceView::revision`] of every device a commit wrote (absent: 0).
    pub device_revisions: BTreeMap<DeviceId, u64>,
}

impl MemoryState {
    /// The latest release of `id`.
    fn latest(&self, id: &ComponentId) -> Option<&TcRelease> {
        self.releases
            .iter()
            .filter(|r| &r.manifest_id == id)
            .max_by_key(|r| r.sequence)
    }

    fn device_view(&self, id: &DeviceId, default_class: Option<&String>) -> DeviceView {
        let device = self.devices.get(id).cloned();
        let mut policy = self
            .device_policy
            .get(id)
            .or_else(|| {
                let class = device.as_ref().and_then(|d| d.class.as_ref());
                self.class_policy.get(class.or(default_class)?)
            })
            .cloned()
            .unwrap_or_default();
        policy.without_revoked(&self.revoked_tcs);
        let mut releases: Vec<TcRelease> = Vec::new();
        let mut todo: Vec<ComponentId> = policy
            .install
            .iter()
            .chain(&policy.requestable)
            .cloned()
            .collect();
        while let Some(next) = todo.pop() {
            if releases.iter().any(|r| r.manifest_id == next) {
                continue;
            }
            if let Some(r) = self.latest(&next) {
                todo.extend(r.depends_on.iter().cloned());
                releases.push(r.clone());
            }
        }
        DeviceView {
            device,
            policy,
            releases,
            outstanding: self.outstanding(Some(*id)),
            revision: self.revision(id),
        }
    }

    fn revision(&self, id: &DeviceId) -> u64 {
        self.device_revisions.get(id).copied().unwrap_or(0)
    }

    /// One more write to `id`'s record (a commit's or the operator's): a decision that read
    /// the record before it can no longer commit (an admin revocation is not written back).
    fn bump_revision(&mut self, id: &DeviceId) {
        *self.device_revisions.entry(*id).or_insert(0) += 1;
    }

    /// The oldest outstanding sessions of devices not known yet beyond the newest `keep`,
    /// oldest first. Counted first: a connect with fewer than `keep` outstanding (every
    /// connect, as long as none need retiring) neither sorts nor looks up their order.
    fn anonymous_beyond(&self, keep: usize) -> Vec<Token> {
        let held = self
            .sessions
            .values()
            .filter(|s| s.device.is_none() && !s.consumed)
            .count();
        if held <= keep {
            return Vec::new();
        }
        let mut oldest = self.outstanding(None);
        oldest.truncate(held.saturating_sub(keep));
        oldest
    }

    /// Unconsumed tokens of `device`'s sessions, oldest first.
    fn outstanding(&self, device: Option<DeviceId>) -> Vec<Token> {
        let mut outstanding: Vec<(u64, Option<&u64>, &Token)> = self
            .sessions
            .values()
            .filter(|s| s.device == device && !s.consumed)
            .map(|s| (s.issued_at, self.session_order.get(&s.token), &s.token))
            .collect();
        outstanding.sort_unstable();
        outstanding.into_iter().map(|(.., t)| t.clone()).collect()
    }

    fn apply(&mut self, c: &Changes) -> Result<(), StoreError> {
        let stale = c
            .device
            .as_ref()
            .zip(c.device_revision)
            .is_some_and(|(d, read)| self.revision(&d.id) != read);
        if stale {
            return Err(StoreError::Conflict);
        }
        if let Some(token) = &c.consume {
            match self.sessions.get_mut(token) {
                Some(s) if !s.consumed => s.consumed = true,
                _ => return Err(StoreError::Conflict),
            }
        }
        let mut gone: Vec<Token> = c
            .retire
            .iter()
            .filter(|t| self.sessions.remove(*t).is_some())
            .cloned()
            .collect();
        if let Some(before) = c.purge_expired_before {
            gone.extend(
                self.sessions
                    .extract_if(.., |_, s| s.expires_at < before)
                    .map(|(t, _)| t),
            );
        }
        for t in &gone {
            self.session_order.remove(t);
        }
        let mut next = self.session_order.values().max().map_or(1, |m| m + 1);
        for s in &c.new_sessions {
            if let btree_map::Entry::Vacant(e) = self.session_order.entry(s.token.clone()) {
                e.insert(next);
                next += 1;
            }
            self.sessions.insert(s.token.clone(), s.clone());
        }
        if let Some(d) = &c.device {
            self.devices.insert(d.id, d.clone());
            self.bump_revision(&d.id);
        }
        self.attestations.extend(c.attestation.iter().cloned());
        // Outcomes of devices with a record only (the record may come in this commit).
        if let Some(o) = c
            .outcome
            .as_ref()
            .filter(|o| self.devices.contains_key(&o.device))
        {
            self.outcomes.push(o.clone());
            let held = self
                .outcomes
                .iter()
                .filter(|x| x.device == o.device)
                .count();
            let mut extra = held.saturating_sub(OUTCOMES_PER_DEVICE);
            self.outcomes.retain(|x| {
                let drop = extra > 0 && x.device == o.device;
                extra -= usize::from(drop);
                !drop
            });
        }
        self.reports.extend(c.reports.iter().cloned());
        self.audit.extend(c.audit.iter().cloned());
        Ok(())
    }
}

/// A [`Store`] in memory, behind one lock (a commit is atomic because it runs under it).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the state under the lock: for tests and an admin shell to set up
    /// devices, releases and policy.
    pub fn with<T>(&self, f: impl FnOnce(&mut MemoryState) -> T) -> T {
        // A commit applies all or nothing (`apply` checks before it writes), so a poisoned
        // lock never guards a half-applied change.
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> MemoryState {
        self.with(|s| s.clone())
    }
}

impl Store for MemoryStore {
    fn load(
        &self,
        request: &LoadRequest,
    ) -> impl Future<Output = Result<Loaded, StoreError>> + Send {
        let loaded = self.with(|s| match request {
            LoadRequest::Session(token) => {
                Loaded::Session(s.sessions.get(token).cloned().map(Box::new))
            }
            LoadRequest::AnonymousSessions { keep } => Loaded::Anonymous(s.anonymous_beyond(*keep)),
            LoadRequest::Device { id, class } => {
                Loaded::Device(Box::new(s.device_view(id, class.as_ref())))
            }
        });
        core::future::ready(Ok(loaded))
    }

    fn commit(&self, changes: &Changes) -> impl Future<Output = Result<(), StoreError>> + Send {
        core::future::ready(self.with(|s| s.apply(changes)))
    }
}

/// Whose policy [`AdminStore::set_policy`] sets.
#[derive(Clone, Copy, Debug)]
pub enum PolicyScope<'a> {
    /// Every device of a class (without a policy of its own).
    Class(&'a str),
    /// One device (wins over its class's).
    Device(DeviceId),
}

/// Why an admin operation was refused (nothing changed) or failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A release's sequence number is not above every earlier one of its manifest ID
    /// (SUIT rollback protection starts at the repository).
    #[error("sequence number {offered} is not above the latest, {latest}")]
    Rollback {
        /// The highest sequence number held.
        latest: u64,
        /// The one offered.
        offered: u64,
    },
    /// A later version is signed by another key than the earlier ones.
    #[error("a later version must be signed by the signer of the earlier ones")]
    SignerChanged,
    /// The manifest ID was revoked: no version of it is taken again.
    #[error("the TC is revoked")]
    TcRevoked,
    /// The thing named does not exist.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Policies of every class and device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policies {
    /// Per device class.
    pub classes: BTreeMap<String, TcPolicy>,
    /// Per device.
    pub devices: BTreeMap<DeviceId, TcPolicy>,
}

/// How many SUIT reports [`AdminStore::devices`] returns per device, newest first.
pub const LAST_REPORTS: usize = 8;

/// A device as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSummary {
    /// The record (installed TCs included).
    pub device: Device,
    /// The latest attestation result accepted.
    pub last_attestation: Option<AttestationRecord>,
    /// How its latest appraisal ended (failed ones included).
    pub last_outcome: Option<AttestationOutcome>,
    /// The latest SUIT reports (at most [`LAST_REPORTS`]), newest first.
    pub last_reports: Vec<ReportRecord>,
    /// The latest audit-log instant naming the device (its last contact that changed
    /// something).
    pub last_contact: Option<u64>,
}

/// Which devices [`AdminStore::devices`] lists, in id order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevicePage {
    /// At most `limit` devices with ids after `after` (from the first without it): the
    /// next page starts after the last id of this one, however devices come and go.
    After {
        /// The last id of the page before.
        after: Option<DeviceId>,
        /// The page's size.
        limit: usize,
    },
    /// The one device with this id, if known.
    One(DeviceId),
}

impl DevicePage {
    /// Every device: one page with no limit.
    pub const ALL: Self = Self::After {
        after: None,
        limit: usize::MAX,
    };
}

/// The future an [`AdminStore`] call returns (boxed, so the trait is object-safe and the
/// admin API's handlers are not generic).
pub type AdminFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, AdminError>> + Send + 'a>>;

/// The operator's side of the store: the admin API's operations, with the same behaviour
/// on every implementation (the repository rules are checked inside the write, so two
/// concurrent uploads cannot both pass them).
pub trait AdminStore: Send + Sync {
    /// Adds a release after checking the repository rules ([`check_release`]).
    fn add_release<'a>(&'a self, release: &'a TcRelease) -> AdminFuture<'a, ()>;
    /// Every release, in the order added.
    fn releases(&self) -> AdminFuture<'_, Vec<TcRelease>>;
    /// Revoked manifest IDs, in the order revoked.
    fn revoked_tcs(&self) -> AdminFuture<'_, Vec<ComponentId>>;
    /// Revokes every version of a TC (NotFound when no release has that ID).
    fn revoke_tc<'a>(&'a self, id: &'a ComponentId) -> AdminFuture<'a, ()>;
    /// Sets a class's or a device's policy.
    fn set_policy<'a>(
        &'a self,
        scope: PolicyScope<'a>,
        policy: &'a TcPolicy,
    ) -> AdminFuture<'a, ()>;
    /// Every policy.
    fn policies(&self) -> AdminFuture<'_, Policies>;
    /// The known devices of `page`, in id order.
    fn devices(&self, page: DevicePage) -> AdminFuture<'_, Vec<DeviceSummary>>;
    /// The latest `limit` appraisal outcomes of a known device, newest first (NotFound
    /// for a device without a record).
    fn attestation_outcomes<'a>(
        &'a self,
        id: &'a DeviceId,
        limit: u64,
    ) -> AdminFuture<'a, Vec<AttestationOutcome>>;
    /// Revokes a known device (NotFound otherwise).
    fn revoke_device<'a>(&'a self, id: &'a DeviceId) -> AdminFuture<'a, ()>;
    /// Registers a device's TEEP key in advance ([`Registration`]); `true` when the device
    /// was not known. A known device keeps its key, revocation, attestation and installed
    /// list: only the class (when given) and the exemption (when given) change, so that
    /// registration never un-revokes a device.
    fn register_device<'a>(&'a self, registration: &'a Registration) -> AdminFuture<'a, bool>;
    /// Sets (or, with `None`, clears) a known device's class (NotFound otherwise).
    fn set_device_class<'a>(
        &'a self,
        id: &'a DeviceId,
        class: Option<&'a str>,
    ) -> AdminFuture<'a, ()>;
    /// TC-signer anchors, in name order.
    fn signers(&self) -> AdminFuture<'_, Vec<SignerRecord>>;
    /// Adds or replaces a TC-signer anchor.
    fn put_signer<'a>(&'a self, signer: &'a SignerRecord) -> AdminFuture<'a, ()>;
    /// Removes a TC-signer anchor (NotFound when there is none of that name).
    fn remove_signer<'a>(&'a self, name: &'a str) -> AdminFuture<'a, ()>;
    /// Audit entries `offset..offset + limit`, oldest first.
    fn audit(&self, offset: u64, limit: u64) -> AdminFuture<'_, Vec<AuditEntry>>;
    /// Appends one audit entry.
    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> AdminFuture<'a, ()>;
}

/// A device the operator registers before its first contact ([`AdminStore::register_device`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The thumbprint of `key` (as the engine names an attested device).
    pub id: DeviceId,
    /// The TEEP Agent key, an encoded COSE_Key.
    pub key: Vec<u8>,
    /// The class to set (`None`: a new device has none, a known one keeps its own).
    pub class: Option<String>,
    /// Serve it without attestation (`None`: a new device is not exempt, a known one
    /// keeps its setting).
    pub attestation_exempt: Option<bool>,
}

impl Registration {
    /// The record of a device first known by this registration.
    pub fn new_device(&self) -> Device {
        Device {
            id: self.id,
            key: self.key.clone(),
            class: self.class.clone(),
            revoked: false,
            suite: None,
            attested_at: None,
            attestation_exempt: self.attestation_exempt.unwrap_or(false),
            installed: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// `device` as this registration changes it (key, revocation, attestation and
    /// installed list kept).
    pub fn update(&self, device: &mut Device) {
        if let Some(class) = &self.class {
            device.class = Some(class.clone());
        }
        if let Some(exempt) = self.attestation_exempt {
            device.attestation_exempt = exempt;
        }
    }
}

/// The repository rules for a new release, given the earlier releases of its manifest ID
/// and whether that ID is revoked: not revoked, a sequence number above every earlier
/// one, and the signer of the earlier ones.
///
/// # Errors
/// The rule broken.
pub fn check_release<'a>(
    earlier: impl IntoIterator<Item = &'a TcRelease>,
    revoked: bool,
    new: &TcRelease,
) -> Result<(), AdminError> {
    if revoked {
        return Err(AdminError::TcRevoked);
    }
    let Some(latest) = earlier.into_iter().max_by_key(|r| r.sequence) else {
        return Ok(());
    };
    if new.sequence <= latest.sequence {
        return Err(AdminError::Rollback {
            latest: latest.sequence,
            offered: new.sequence,
        });
    }
    if new.signer != latest.signer {
        return Err(AdminError::SignerChanged);
    }
    Ok(())
}

impl MemoryState {
    fn add_release(&mut self, release: &TcRelease) -> Result<(), AdminError> {
        let earlier = self
            .releases
            .iter()
            .filter(|r| r.manifest_id == release.manifest_id);
        let revoked = self.revoked_tcs.contains(&release.manifest_id);
        check_release(earlier, revoked, release)?;
        self.releases.push(release.clone());
        Ok(())
    }

    fn device_summary(&self, device: &Device) -> DeviceSummary {
        let of = |d: &DeviceId| d == &device.id;
        DeviceSummary {
            device: device.clone(),
            last_attestation: self
                .attestations
                .iter()
                .rev()
                .find(|a| of(&a.device))
                .cloned(),
            last_outcome: self.outcomes.iter().rev().find(|o| of(&o.device)).cloned(),
            last_reports: self
                .reports
                .iter()
                .rev()
                .filter(|r| of(&r.device))
                .take(LAST_REPORTS)
                .cloned()
                .collect(),
            last_contact: self
                .audit
                .iter()
                .filter(|a| a.device.as_ref().is_some_and(of))
                .map(|a| a.at)
                .max(),
        }
    }
}

impl MemoryStore {
    /// Runs `f` under the lock as an admin future.
    fn admin<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut MemoryState) -> Result<T, AdminError>,
    ) -> AdminFuture<'_, T> {
        Box::pin(core::future::ready(self.with(f)))
    }
}

impl AdminStore for MemoryStore {
    fn add_release<'a>(&'a self, release: &'a TcRelease) -> AdminFuture<'a, ()> {
        self.admin(|s| s.add_release(release))
    }

    fn releases(&self) -> AdminFuture<'_, Vec<TcRelease>> {
        self.admin(|s| Ok(s.releases.clone()))
    }

    fn revoked_tcs(&self) -> AdminFuture<'_, Vec<ComponentId>> {
        self.admin(|s| Ok(s.revoked_tcs.clone()))
    }

    fn revoke_tc<'a>(&'a self, id: &'a ComponentId) -> AdminFuture<'a, ()> {
        self.admin(|s| {
            if !s.releases.iter().any(|r| &r.manifest_id == id) {
                return Err(AdminError::NotFound("TC"));
            }
            if !s.revoked_tcs.contains(id) {
                s.revoked_tcs.push(id.clone());
            }
            Ok(())
        })
    }

    fn set_policy<'a>(
        &'a self,
        scope: PolicyScope<'a>,
        policy: &'a TcPolicy,
    ) -> AdminFuture<'a, ()> {
        self.admin(|s| {
            match scope {
                PolicyScope::Class(c) => s.class_policy.insert(c.to_owned(), policy.clone()),
                PolicyScope::Device(d) => s.device_policy.insert(d, policy.clone()),
            };
            Ok(())
        })
    }

    fn policies(&self) -> AdminFuture<'_, Policies> {
        self.admin(|s| {
            Ok(Policies {
                classes: s.class_policy.clone(),
                devices: s.device_policy.clone(),
            })
        })
    }

    fn devices(&self, page: DevicePage) -> AdminFuture<'_, Vec<DeviceSummary>> {
        use core::ops::Bound::{Excluded, Unbounded};
        self.admin(move |s| {
            let (from, limit) = match page {
                DevicePage::After { after, limit } => (after.map_or(Unbounded, Excluded), limit),
                DevicePage::One(id) => {
                    let one = s.devices.get(&id).map(|d| s.device_summary(d));
                    return Ok(one.into_iter().collect());
                }
            };
            Ok(s.devices
                .range((from, Unbounded))
                .take(limit)
                .map(|(_, d)| s.device_summary(d))
                .collect())
        })
    }

    fn attestation_outcomes<'a>(
        &'a self,
        id: &'a DeviceId,
        limit: u64,
    ) -> AdminFuture<'a, Vec<AttestationOutcome>> {
        self.admin(move |s| {
            if !s.devices.contains_key(id) {
                return Err(AdminError::NotFound("device"));
            }
            let take = usize::try_from(limit).unwrap_or(usize::MAX);
            Ok(s.outcomes
                .iter()
                .rev()
                .filter(|o| &o.device == id)
                .take(take)
                .cloned()
                .collect())
        })
    }

    fn revoke_device<'a>(&'a self, id: &'a DeviceId) -> AdminFuture<'a, ()> {
        self.admin(|s| {
            let device = s
                .devices
                .get_mut(id)
                .ok_or(AdminError::NotFound("device"))?;
            device.revoked = true;
            s.bump_revision(id);
            Ok(())
        })
    }

    fn register_device<'a>(&'a self, registration: &'a Registration) -> AdminFuture<'a, bool> {
        self.admin(|s| match s.devices.get_mut(&registration.id) {
            Some(device) => {
                registration.update(device);
                s.bump_revision(&registration.id);
                Ok(false)
            }
            None => {
                // Revision 1: a first contact decided on the device as absent (revision
                // 0) must not commit over the registration.
                s.devices.insert(registration.id, registration.new_device());
                s.bump_revision(&registration.id);
                Ok(true)
            }
        })
    }

    fn set_device_class<'a>(
        &'a self,
        id: &'a DeviceId,
        class: Option<&'a str>,
    ) -> AdminFuture<'a, ()> {
        self.admin(|s| {
            let device = s
                .devices
                .get_mut(id)
                .ok_or(AdminError::NotFound("device"))?;
            device.class = class.map(str::to_owned);
            s.bump_revision(id);
            Ok(())
        })
    }

    fn signers(&self) -> AdminFuture<'_, Vec<SignerRecord>> {
        self.admin(|s| Ok(s.signers.values().cloned().collect()))
    }

    fn put_signer<'a>(&'a self, signer: &'a SignerRecord) -> AdminFuture<'a, ()> {
        self.admin(|s| {
            s.signers.insert(signer.name.clone(), signer.clone());
            Ok(())
        })
    }

    fn remove_signer<'a>(&'a self, name: &'a str) -> AdminFuture<'a, ()> {
        self.admin(|s| {
            s.signers
                .remove(name)
                .map(drop)
                .ok_or(AdminError::NotFound("signer"))
        })
    }

    fn audit(&self, offset: u64, limit: u64) -> AdminFuture<'_, Vec<AuditEntry>> {
        self.admin(|s| {
            let skip = usize::try_from(offset).unwrap_or(usize::MAX);
            let take = usize::try_from(limit).unwrap_or(usize::MAX);
            Ok(s.audit.iter().skip(skip).take(take).cloned().collect())
        })
    }

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> AdminFuture<'a, ()> {
        self.admin(|s| {
            s.audit.push(entry.clone());
            Ok(())
        })
    }
}
