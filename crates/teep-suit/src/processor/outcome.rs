//! What a procedure returns (a report always, state changes only on success) and the
//! failure plumbing of a run: hard failures with their record, soft stops, references.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use teep_cose::CryptoProvider;

use crate::error::{SuitError, TeepErrCode};
use crate::model::{ComponentId, Digest, Envelope};
use crate::report::{Entry, Failure, Record, Report};
use crate::verify::Authenticated;

/// An invoke directive the caller should carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The component to invoke.
    pub component: ComponentId,
    /// `suit-parameter-invoke-args` in force, if set.
    pub args: Option<Vec<u8>>,
}

/// What a successful procedure did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The root manifest's storage location (manifest component ID).
    pub manifest_id: ComponentId,
    /// `suit-manifest-sequence-number` of the root manifest, now the installed one.
    pub sequence_number: u64,
    /// The invokes to carry out, in order (invoke procedure only).
    pub invocations: Vec<Invocation>,
}

/// Result of a procedure: always a report; state committed only on success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The SUIT report of what ran, for the TAM (success or not).
    pub report: Report,
    /// What was done, or why nothing was committed.
    pub result: Result<Done, Failure>,
}

/// Result of a TEEP Update ([`crate::processor::Processor::update`]): its unlinks and
/// installs committed at once, or none of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// One per `unneeded-manifest-list` entry, in order.
    pub unlinked: Vec<Outcome>,
    /// One per `manifest-list` envelope, in order.
    ///
    /// When the Update failed, every item but the failing one carries
    /// [`SuitError::UnneededManifestFailed`] or [`SuitError::OtherManifestFailed`] (the
    /// records of those that ran are kept: they show what ran before the failure).
    pub outcomes: Vec<Outcome>,
    /// `Ok` when every item succeeded and their changes were committed.
    pub result: Result<(), UpdateFailure>,
}

/// An item of an Update, by its position in its list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateItem {
    /// An entry of `unneeded-manifest-list`.
    Unneeded(usize),
    /// An envelope of `manifest-list`.
    Manifest(usize),
}

impl UpdateItem {
    /// What every other item of the Update reports when this one failed.
    pub(super) fn others_error(self) -> SuitError {
        match self {
            Self::Unneeded(k) => SuitError::UnneededManifestFailed(k),
            Self::Manifest(k) => SuitError::OtherManifestFailed(k),
        }
    }
}

/// Why an Update committed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateFailure {
    /// The item that failed; `None` when every item succeeded but the commit failed.
    pub item: Option<UpdateItem>,
    /// The error and where it happened.
    pub failure: Failure,
}

impl UpdateOutcome {
    /// The TEEP `err-code` for the Error message answering this Update (`None`: Success).
    pub fn teep_err_code(&self) -> Option<TeepErrCode> {
        self.result
            .as_ref()
            .err()
            .map(|f| f.failure.error.teep_err_code())
    }
}

/// Why a sequence stopped.
pub(super) enum Stop {
    /// A condition failed with soft-failure on: the sequence ends quietly.
    Soft,
    Hard(Box<Failure>),
}

pub(super) type Flow = Result<(), Stop>;

/// Output of a run: what it did, or where it failed.
pub(super) type RunResult = Result<Done, Box<Failure>>;

pub(super) fn hard(error: SuitError, record: Record) -> Stop {
    Stop::Hard(Box::new(Failure { error, record }))
}

/// A failure outside any command (envelope, authentication, rollback, policy, commit).
pub(super) fn early(error: SuitError) -> Box<Failure> {
    Box::new(Failure {
        error,
        record: Record::default(),
    })
}

pub(super) fn to_failure(stop: Stop) -> Box<Failure> {
    match stop {
        Stop::Hard(f) => f,
        // Top-level sequences never run soft; a soft stop there cannot escape.
        Stop::Soft => early(SuitError::SoftFailureNotAllowed),
    }
}

/// `suit-reference` of a report: the root's reference URI and manifest digest.
pub(super) type Reference = (Option<String>, Digest);

/// The report reference of a run that failed before it had an authenticated manifest.
pub(super) fn unknown_reference() -> Reference {
    (None, Digest::sha256([0; 32]))
}

pub(super) fn reference(auth: &Authenticated<'_>) -> Reference {
    (
        auth.manifest.reference_uri.map(String::from),
        Digest::sha256(auth.digest),
    )
}

/// The reference of an envelope that was not (or could not be) authenticated: the digest
/// of the manifest it carries, which is how its sender knows it.
pub(super) fn claimed_reference(provider: &dyn CryptoProvider, envelope: &[u8]) -> Reference {
    Envelope::decode(envelope).map_or_else(
        |_| unknown_reference(),
        |e| (None, Digest::sha256(provider.sha256(e.manifest_bstr))),
    )
}

/// What a procedure's report says besides its result.
pub(super) struct Pending {
    pub reference: Reference,
    pub records: Vec<Entry>,
}

impl Pending {
    /// The outcome once `result` is known (the run's own, or why nothing was committed).
    pub(super) fn outcome(self, nonce: Option<&[u8]>, result: Result<Done, Failure>) -> Outcome {
        let report = Report {
            reference_uri: self.reference.0,
            manifest_digest: self.reference.1,
            nonce: nonce.map(<[u8]>::to_vec),
            records: self.records,
            capabilities: result
                .as_ref()
                .is_err_and(|f| f.error.reason().wants_capabilities()),
            result: result.as_ref().map(|_| ()).map_err(Clone::clone),
        };
        Outcome { report, result }
    }
}
