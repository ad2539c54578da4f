//! Typed errors: every rejected envelope, manifest or command names its reason with a
//! variant, so callers (the TEEP Agent, the CLI, tests) match on reasons, never on text.

use alloc::string::String;

use teep_cose::CoseError;

use crate::model::ComponentId;

/// Why an envelope was rejected or a procedure failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuitError {
    /// The bytes are not the CBOR structure the SUIT CDDL requires.
    #[error("malformed SUIT structure at byte {offset}: {what}")]
    Malformed { what: &'static str, offset: usize },
    /// An envelope or manifest key that SUIT (or we) do not support; unknown things fail.
    #[error("unsupported {container} member {key}")]
    UnsupportedMember { container: &'static str, key: i64 },
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
    Rollback { installed: u64, offered: u64 },
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
    ConditionFailed { condition: u8 },
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
    Fetch { uri: String, reason: String },
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
        dependency: ComponentId,
        section: u64,
    },
    /// A dependency's own signed manifest-component-id differs from the location the
    /// dependent chose for it (its prefix): the signed ID keys rollback and ownership.
    #[error("dependency at {prefix} is signed for {manifest_id}")]
    DependencyLocation {
        prefix: ComponentId,
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
    /// A blob of the device state fails its seal (tampered, swapped with another blob,
    /// sealed under another key) or is missing; none of it is returned.
    #[error("state blob {0} is damaged or was tampered with")]
    StateTampered(String),
    /// The state's generation is below the one the caller expects (a TEE's monotonic
    /// counter): an older copy of the state was put back.
    #[error("state generation {found} is older than the expected {expected}")]
    StateRolledBack { found: u64, expected: u64 },
    /// A report that must carry the device's signature does not.
    #[error("the report is not signed by the device")]
    UnsignedReport,
}

impl SuitError {
    /// The `suit-report-reason` (draft-ietf-suit-report) for this error.
    pub fn report_reason(&self) -> u8 {
        match self {
            Self::Malformed { .. } => 1,
            Self::UnsupportedAuthenticationBlock(_) => 2,
            Self::UnsupportedDigestAlgorithm(_) => 3,
            Self::Authentication(CoseError::UnsupportedAlgorithm(_)) => 3,
            Self::NoAuthenticationBlock
            | Self::Authentication(_)
            | Self::ManifestDigestMismatch
            | Self::DependencyDigestMismatch => 4,
            Self::UnsupportedCommand(_) | Self::NotAllowedInShared(_) => 5,
            Self::ComponentIndexOutOfRange(_)
            | Self::TooManyComponents(_)
            | Self::NotADependency(_)
            | Self::NotInstalled(_)
            | Self::NoManifestComponentId => 6,
            Self::SignerMismatch(_) => 4,
            Self::ComponentReferenced(_)
            | Self::OutOfScope(_)
            | Self::ForeignComponent(_)
            | Self::DependencyLocation { .. } => 7,
            Self::EmptyComponentIndexList => 1,
            Self::UnsupportedParameter(_) | Self::UnsupportedMember { .. } => 8,
            Self::SeveredElementMissing(_) | Self::SeveredElementDigestMismatch(_) => 9,
            Self::ConditionFailed { .. }
            | Self::TryEachExhausted
            | Self::Rollback { .. }
            | Self::MissingCompatibilityCheck
            | Self::UnsupportedVersion(_) => 10,
            _ => 11,
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
            Self::StateTampered(_) => 42,
            Self::StateRolledBack { .. } => 43,
            Self::UnsignedReport => 44,
        }
    }
}

pub(crate) fn malformed(what: &'static str, offset: usize) -> SuitError {
    SuitError::Malformed { what, offset }
}
