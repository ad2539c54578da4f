//! Typed errors: every rejected envelope, manifest or command names its reason with a
//! variant, so callers (the TEEP Agent, the CLI, tests) match on reasons, never on text.

use alloc::string::String;

use teep_cbor::write::EncodeError;
use teep_cose::CoseError;

use crate::model::ComponentId;

/// Why an envelope was rejected or a procedure failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuitError {
    /// The bytes are not the CBOR structure the SUIT CDDL requires.
    #[error("malformed SUIT structure at byte {offset}: {what}")]
    Malformed {
        /// What was expected there.
        what: &'static str,
        /// Byte offset of the offending item in the input.
        offset: usize,
    },
    /// An envelope or manifest key that SUIT (or we) do not support; unknown things fail.
    #[error("unsupported {container} member {key}")]
    UnsupportedMember {
        /// The map the key is in (envelope, manifest, common...).
        container: &'static str,
        /// The unsupported key.
        key: i64,
    },
    /// `suit-manifest-version` is not 1.
    #[error("unsupported manifest version {0}")]
    UnsupportedVersion(u64),
    /// A SUIT_Digest uses an algorithm other than SHA-256 (-16).
    #[error("unsupported digest algorithm {0}")]
    UnsupportedDigestAlgorithm(i64),
    /// The authentication wrapper holds no authentication block at all.
    #[error("the authentication wrapper holds no signature or MAC")]
    NoAuthenticationBlock,
    /// An authentication block is neither COSE_Sign1 (18) nor COSE_Mac0 (17).
    #[error("unsupported authentication block (COSE tag {0})")]
    UnsupportedAuthenticationBlock(u64),
    /// No authentication block verified against a trust anchor.
    #[error("manifest authentication failed: {0}")]
    Authentication(CoseError),
    /// SHA-256 over the bstr-wrapped manifest differs from the authenticated digest.
    #[error("the manifest does not match the authenticated digest")]
    ManifestDigestMismatch,
    /// A severed element is needed but the envelope does not carry it.
    #[error("severed element {0} is not in the envelope")]
    SeveredElementMissing(u64),
    /// A severed element in the envelope does not match its digest in the manifest.
    #[error("severed element {0} does not match its digest")]
    SeveredElementDigestMismatch(u64),
    /// The manifest's sequence number does not exceed the stored one.
    #[error("rollback: sequence number {offered} is not above the installed {installed}")]
    Rollback {
        /// `suit-manifest-sequence-number` of the installed manifest.
        installed: u64,
        /// `suit-manifest-sequence-number` of the offered one.
        offered: u64,
    },
    /// A command number we do not implement (custom or other drafts' commands).
    #[error("unsupported command {0}")]
    UnsupportedCommand(i64),
    /// A parameter number we do not implement.
    #[error("unsupported parameter {0}")]
    UnsupportedParameter(i64),
    /// A command refers to a component index the manifest does not declare.
    #[error("component index {0} out of range")]
    ComponentIndexOutOfRange(u64),
    /// More components than the processor accepts.
    #[error("too many components ({0})")]
    TooManyComponents(usize),
    /// Commands nested deeper than the processor allows (try-each/run-sequence/dependencies).
    #[error("nesting too deep")]
    TooDeep,
    /// A command needs a parameter that is not set for the current component.
    #[error("parameter {0} is not set")]
    MissingParameter(u8),
    /// A condition failed outside a soft-failure scope.
    #[error("condition {condition} failed")]
    ConditionFailed {
        /// The condition's command number.
        condition: u8,
    },
    /// Every try-each alternative failed and there was no empty fallback.
    #[error("every try-each alternative failed")]
    TryEachExhausted,
    /// Soft-failure was set outside try-each / run-sequence.
    #[error("soft-failure set outside try-each or run-sequence")]
    SoftFailureNotAllowed,
    /// A command that is not allowed in the shared sequence appeared there.
    #[error("command {0} is not allowed in the shared sequence")]
    NotAllowedInShared(i64),
    /// The manifest lacks the vendor-id / class-id checks the policy requires.
    #[error("the shared sequence lacks vendor and class identifier checks")]
    MissingCompatibilityCheck,
    /// A dependency-related command on an index that is not a dependency.
    #[error("component index {0} is not a dependency")]
    NotADependency(u64),
    /// The dependency envelope's manifest digest differs from the expected image digest.
    #[error("dependency does not match its expected digest")]
    DependencyDigestMismatch,
    /// The command would change a component another manifest still references.
    #[error("component {0} is referenced by another manifest")]
    ComponentReferenced(ComponentId),
    /// Nothing is installed under this manifest component ID.
    #[error("no manifest installed at {0}")]
    NotInstalled(ComponentId),
    /// The root manifest has no `suit-manifest-component-id` where it could be stored.
    #[error("the manifest has no manifest-component-id")]
    NoManifestComponentId,
    /// A component that a command reads holds no data.
    #[error("component {0} holds no data")]
    ComponentEmpty(ComponentId),
    /// Fetching a URI failed.
    #[error("fetching {uri} failed: {reason}")]
    Fetch {
        /// The `suit-parameter-uri` that was fetched.
        uri: String,
        /// The fetcher's own explanation.
        reason: String,
    },
    /// Encrypted content with no decryptor, or a decryption failure.
    #[error("decryption failed: {0}")]
    Decryption(CoseError),
    /// Encrypted content but the processor has no decryption key.
    #[error("encrypted content but no decryption key")]
    NoDecryptor,
    /// An Update procedure on a manifest with none of the Update sections (dependency-
    /// resolution, payload-fetch, candidate-verification, install, validate): it would
    /// "succeed" without installing anything (the TEEP D.4 example keeps its install under
    /// key 9, which is suit-invoke in the current numbering).
    #[error("the manifest has no section of the Update procedure")]
    NothingToUpdate,
    /// A component-index list with no entries: CDDL `[+ uint]` forbids it, and a condition
    /// over it would pass having checked nothing.
    #[error("empty component index list")]
    EmptyComponentIndexList,
    /// A dependency component was filled (fetched, written, copied) but process-dependency
    /// never authenticated it: it is not committed.
    #[error("dependency {0} was filled but never processed")]
    DependencyNotProcessed(ComponentId),
    /// A dependent section ended without running the same-named section its dependency
    /// has (trust-domains: lockstep processing).
    #[error("section {section} of dependency {dependency} did not run")]
    DependencySectionSkipped {
        /// The dependency's manifest component ID.
        dependency: ComponentId,
        /// The manifest key of the section that did not run.
        section: u64,
    },
    /// A dependency's own signed manifest-component-id differs from the location the
    /// dependent chose for it (its prefix): the signed ID keys rollback and ownership.
    #[error("dependency at {prefix} is signed for {manifest_id}")]
    DependencyLocation {
        /// The location the dependent chose (`suit-dependency-prefix`).
        prefix: ComponentId,
        /// The dependency's own `suit-manifest-component-id`.
        manifest_id: ComponentId,
    },
    /// A manifest names a component outside its signer's trust-anchor scope.
    #[error("component {0} is outside the signer's scope")]
    OutOfScope(ComponentId),
    /// An installed manifest may be updated only through the anchor that installed it.
    #[error("{0} was installed by another signer")]
    SignerMismatch(ComponentId),
    /// Copying from a component that a manifest of another signer links.
    #[error("component {0} belongs to another signer's manifest")]
    ForeignComponent(ComponentId),
    /// The manifest stored at a location names another manifest-component-id.
    #[error("the manifest stored at {0} is not that manifest")]
    StoredManifestMismatch(ComponentId),
    /// The storage backend failed; nothing was committed.
    #[error("storage: {0}")]
    Storage(String),
    /// This manifest of a multi-manifest Update did not fail (or did not run), but the
    /// manifest at this position in the list did: nothing of the Update was committed.
    #[error("manifest {0} of the same update failed; nothing was committed")]
    OtherManifestFailed(usize),
    /// A blob of the device state fails its seal (tampered, swapped with another blob,
    /// sealed under another key) or is missing; none of it is returned.
    #[error("state blob {0} is damaged or was tampered with")]
    StateTampered(String),
    /// The state's generation is below the one the caller expects (a TEE's monotonic
    /// counter): an older copy of the state was put back.
    #[error("state generation {found} is older than the expected {expected}")]
    StateRolledBack {
        /// The generation the stored state has.
        found: u64,
        /// The generation the caller expects at least.
        expected: u64,
    },
    /// A report that must carry the device's signature does not.
    #[error("the report is not signed by the device")]
    UnsignedReport,
    /// This item of an Update did not fail (or did not run), but unlinking the manifest at
    /// this position of its `unneeded-manifest-list` did: nothing was committed.
    #[error("unneeded manifest {0} of the same update failed; nothing was committed")]
    UnneededManifestFailed(usize),
    /// teep-cbor's writer refused what an encoder of this crate wrote (an entry of the
    /// wrong shape): a bug in that encoder, never something an input can cause. Returned
    /// instead of emitting bytes whose map or array count is wrong.
    #[error("encoding failed: {0}")]
    Encode(EncodeError),
    /// The device refused to store a component's contents as what its ID says it is
    /// (e.g. a TA image that is no valid module for the TEE's runtime); nothing was
    /// committed.
    #[error("component {component} refused by the device: {reason}")]
    ComponentRejected {
        /// The component whose contents were refused.
        component: ComponentId,
        /// Why the device refused them.
        reason: String,
    },
}

impl From<EncodeError> for SuitError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

/// `SUIT_Report_Reasons` (draft-ietf-suit-report): the numbers are stated here only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReportReason {
    /// `suit-report-reason-ok`: the procedure succeeded.
    Ok = 0,
    /// `suit-report-reason-cbor-parse`: the envelope or manifest is not valid CBOR/CDDL.
    CborParse = 1,
    /// `suit-report-reason-cose-unsupported`: a COSE structure we cannot process.
    CoseUnsupported = 2,
    /// `suit-report-reason-alg-unsupported`: a digest or COSE algorithm we lack.
    AlgUnsupported = 3,
    /// `suit-report-reason-unauthorised`: authentication or signer scope failed.
    Unauthorised = 4,
    /// `suit-report-reason-command-unsupported`: a command we do not implement.
    CommandUnsupported = 5,
    /// `suit-report-reason-component-unsupported`: a component we cannot hold.
    ComponentUnsupported = 6,
    /// `suit-report-reason-component-unauthorised`: a component the signer may not touch.
    ComponentUnauthorised = 7,
    /// `suit-report-reason-parameter-unsupported`: a parameter we do not implement.
    ParameterUnsupported = 8,
    /// `suit-report-reason-severing-unsupported`: a severed element we cannot process.
    SeveringUnsupported = 9,
    /// `suit-report-reason-condition-failed`: a condition failed.
    ConditionFailed = 10,
    /// `suit-report-reason-operation-failed`: a directive failed.
    OperationFailed = 11,
    /// `suit-report-reason-invoke-pending`: invocation is still to happen.
    InvokePending = 12,
}

impl ReportReason {
    /// Every reason, ascending.
    pub const ALL: [Self; 13] = [
        Self::Ok,
        Self::CborParse,
        Self::CoseUnsupported,
        Self::AlgUnsupported,
        Self::Unauthorised,
        Self::CommandUnsupported,
        Self::ComponentUnsupported,
        Self::ComponentUnauthorised,
        Self::ParameterUnsupported,
        Self::SeveringUnsupported,
        Self::ConditionFailed,
        Self::OperationFailed,
        Self::InvokePending,
    ];

    /// `suit-report-result-reason` on the wire.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The CDDL name without its `suit-report-reason-` prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::CborParse => "cbor-parse",
            Self::CoseUnsupported => "cose-unsupported",
            Self::AlgUnsupported => "alg-unsupported",
            Self::Unauthorised => "unauthorised",
            Self::CommandUnsupported => "command-unsupported",
            Self::ComponentUnsupported => "component-unsupported",
            Self::ComponentUnauthorised => "component-unauthorised",
            Self::ParameterUnsupported => "parameter-unsupported",
            Self::SeveringUnsupported => "severing-unsupported",
            Self::ConditionFailed => "condition-failed",
            Self::OperationFailed => "operation-failed",
            Self::InvokePending => "invoke-pending",
        }
    }

    /// Whether a report failing for this reason carries a capability report: the manifest
    /// used a COSE structure, algorithm, command or parameter we lack, and its author
    /// can see what we do.
    pub const fn wants_capabilities(self) -> bool {
        matches!(
            self,
            Self::CoseUnsupported
                | Self::AlgUnsupported
                | Self::CommandUnsupported
                | Self::ParameterUnsupported
        )
    }
}

/// The TEEP `err-code` (draft-ietf-teep-protocol-26 §6.9, -26 numbering) an Agent sends
/// in its Error message when a manifest fails. teep-suit does not depend on teep-proto:
/// the numbers are stated here and the Agent maps them onto its own codes.
///
/// The draft's `ERR_UNSUPPORTED_*` codes are about the TEEP message (extensions,
/// freshness mechanisms, message version, cipher suites, SUIT report profiles); a
/// manifest using a SUIT command, parameter or algorithm we lack is a manifest
/// processing failure, detailed by its SUIT report (reason and capability report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TeepErrCode {
    /// `ERR_TEMPORARY_ERROR` (10): the device failed, not the manifest (storage, or the
    /// network the fetcher uses); the TAM may retry the same Update later.
    TemporaryError = 10,
    /// `ERR_MANIFEST_PROCESSING_FAILED` (11; 17 before -26): one or more manifests
    /// failed; the SUIT reports carry the details.
    ManifestProcessingFailed = 11,
}

impl TeepErrCode {
    /// The -26 number on the wire.
    pub const fn number(self) -> u64 {
        self as u64
    }
}

impl SuitError {
    /// The `suit-report-reason` (draft-ietf-suit-report) for this error.
    pub fn reason(&self) -> ReportReason {
        use ReportReason as R;
        match self {
            Self::Malformed { .. } | Self::EmptyComponentIndexList => R::CborParse,
            Self::UnsupportedAuthenticationBlock(_) => R::CoseUnsupported,
            Self::UnsupportedDigestAlgorithm(_)
            | Self::Authentication(CoseError::UnsupportedAlgorithm(_)) => R::AlgUnsupported,
            Self::NoAuthenticationBlock
            | Self::Authentication(_)
            | Self::ManifestDigestMismatch
            | Self::DependencyDigestMismatch
            | Self::SignerMismatch(_)
            | Self::UnsignedReport => R::Unauthorised,
            Self::UnsupportedCommand(_) | Self::NotAllowedInShared(_) => R::CommandUnsupported,
            Self::ComponentIndexOutOfRange(_)
            | Self::TooManyComponents(_)
            | Self::NotADependency(_)
            | Self::NotInstalled(_)
            | Self::NoManifestComponentId
            | Self::ComponentRejected { .. } => R::ComponentUnsupported,
            Self::ComponentReferenced(_)
            | Self::OutOfScope(_)
            | Self::ForeignComponent(_)
            | Self::DependencyLocation { .. } => R::ComponentUnauthorised,
            Self::UnsupportedParameter(_) | Self::UnsupportedMember { .. } => {
                R::ParameterUnsupported
            }
            Self::SeveredElementMissing(_) | Self::SeveredElementDigestMismatch(_) => {
                R::SeveringUnsupported
            }
            Self::ConditionFailed { .. }
            | Self::TryEachExhausted
            | Self::Rollback { .. }
            | Self::MissingCompatibilityCheck
            | Self::UnsupportedVersion(_) => R::ConditionFailed,
            Self::TooDeep
            | Self::MissingParameter(_)
            | Self::SoftFailureNotAllowed
            | Self::ComponentEmpty(_)
            | Self::Fetch { .. }
            | Self::Decryption(_)
            | Self::NoDecryptor
            | Self::Storage(_)
            | Self::NothingToUpdate
            | Self::DependencyNotProcessed(_)
            | Self::DependencySectionSkipped { .. }
            | Self::StoredManifestMismatch(_)
            | Self::OtherManifestFailed(_)
            | Self::StateTampered(_)
            | Self::StateRolledBack { .. }
            | Self::UnneededManifestFailed(_)
            | Self::Encode(_) => R::OperationFailed,
        }
    }

    /// [`Self::reason`] as its wire number.
    pub fn report_reason(&self) -> u8 {
        self.reason().number()
    }

    /// The TEEP `err-code` for an Update this error made fail: a failure of the device
    /// (storage, fetching) is temporary, anything about the manifest is a processing
    /// failure.
    pub fn teep_err_code(&self) -> TeepErrCode {
        use TeepErrCode as T;
        match self {
            Self::Storage(_)
            | Self::Fetch { .. }
            | Self::StateTampered(_)
            | Self::StateRolledBack { .. }
            | Self::Encode(_) => T::TemporaryError,
            Self::Malformed { .. }
            | Self::UnsupportedMember { .. }
            | Self::UnsupportedVersion(_)
            | Self::UnsupportedDigestAlgorithm(_)
            | Self::NoAuthenticationBlock
            | Self::UnsupportedAuthenticationBlock(_)
            | Self::Authentication(_)
            | Self::ManifestDigestMismatch
            | Self::SeveredElementMissing(_)
            | Self::SeveredElementDigestMismatch(_)
            | Self::Rollback { .. }
            | Self::UnsupportedCommand(_)
            | Self::UnsupportedParameter(_)
            | Self::ComponentIndexOutOfRange(_)
            | Self::TooManyComponents(_)
            | Self::TooDeep
            | Self::MissingParameter(_)
            | Self::ConditionFailed { .. }
            | Self::TryEachExhausted
            | Self::SoftFailureNotAllowed
            | Self::NotAllowedInShared(_)
            | Self::MissingCompatibilityCheck
            | Self::NotADependency(_)
            | Self::DependencyDigestMismatch
            | Self::ComponentReferenced(_)
            | Self::NotInstalled(_)
            | Self::NoManifestComponentId
            | Self::ComponentEmpty(_)
            | Self::Decryption(_)
            | Self::NoDecryptor
            | Self::NothingToUpdate
            | Self::EmptyComponentIndexList
            | Self::DependencyNotProcessed(_)
            | Self::DependencySectionSkipped { .. }
            | Self::DependencyLocation { .. }
            | Self::OutOfScope(_)
            | Self::SignerMismatch(_)
            | Self::ForeignComponent(_)
            | Self::StoredManifestMismatch(_)
            | Self::OtherManifestFailed(_)
            | Self::UnsignedReport
            | Self::UnneededManifestFailed(_)
            | Self::ComponentRejected { .. } => T::ManifestProcessingFailed,
        }
    }

    /// A stable implementation-specific code for `suit-report-result-code`.
    pub fn code(&self) -> i64 {
        match self {
            Self::Malformed { .. } => 1,
            Self::UnsupportedMember { .. } => 2,
            Self::UnsupportedVersion(_) => 3,
            Self::UnsupportedDigestAlgorithm(_) => 4,
            Self::NoAuthenticationBlock => 5,
            Self::UnsupportedAuthenticationBlock(_) => 6,
            Self::Authentication(_) => 7,
            Self::ManifestDigestMismatch => 8,
            Self::SeveredElementMissing(_) => 9,
            Self::SeveredElementDigestMismatch(_) => 10,
            Self::Rollback { .. } => 11,
            Self::UnsupportedCommand(_) => 12,
            Self::UnsupportedParameter(_) => 13,
            Self::ComponentIndexOutOfRange(_) => 14,
            Self::TooManyComponents(_) => 15,
            Self::TooDeep => 16,
            Self::MissingParameter(_) => 17,
            Self::ConditionFailed { .. } => 18,
            Self::TryEachExhausted => 19,
            Self::SoftFailureNotAllowed => 20,
            Self::NotAllowedInShared(_) => 21,
            Self::MissingCompatibilityCheck => 22,
            Self::NotADependency(_) => 23,
            Self::DependencyDigestMismatch => 24,
            Self::ComponentReferenced(_) => 25,
            Self::NotInstalled(_) => 26,
            Self::NoManifestComponentId => 27,
            Self::ComponentEmpty(_) => 28,
            Self::Fetch { .. } => 29,
            Self::Decryption(_) => 30,
            Self::NoDecryptor => 31,
            Self::Storage(_) => 32,
            Self::NothingToUpdate => 33,
            Self::EmptyComponentIndexList => 34,
            Self::DependencyNotProcessed(_) => 35,
            Self::DependencySectionSkipped { .. } => 36,
            Self::DependencyLocation { .. } => 37,
            Self::OutOfScope(_) => 38,
            Self::SignerMismatch(_) => 39,
            Self::ForeignComponent(_) => 40,
            Self::StoredManifestMismatch(_) => 41,
            Self::OtherManifestFailed(_) => 42,
            Self::StateTampered(_) => 43,
            Self::StateRolledBack { .. } => 44,
            Self::UnsignedReport => 45,
            Self::UnneededManifestFailed(_) => 46,
            Self::Encode(_) => 47,
            Self::ComponentRejected { .. } => 48,
        }
    }
}

pub(crate) fn malformed(what: &'static str, offset: usize) -> SuitError {
    SuitError::Malformed { what, offset }
}
