//! Wire numbers of message types, option labels and error codes, for both numberings.
//!
//! draft-ietf-teep-protocol-26 renumbered message types, option labels and one error
//! code; older peers (libteep, drafts up to -25) still use the old numbers. Every number
//! the codec reads or writes comes from the tables below, so a future RFC renumbering is
//! a table edit.

/// Which set of wire numbers a peer speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Numbering {
    /// draft-ietf-teep-protocol-26 (IANA registry of 2026-03): success = 4, error = 5,
    /// labels 1..=22, ERR_MANIFEST_PROCESSING_FAILED = 11.
    #[default]
    Draft26,
    /// Drafts before -26 (e.g. -20, libteep): success = 5, error = 6, labels from
    /// selected-version on shifted by one, ERR_MANIFEST_PROCESSING_FAILED = 17.
    Pre26,
}

/// The five message types (the first element of every TEEP message array).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// TAM -> Agent.
    QueryRequest,
    /// Agent -> TAM.
    QueryResponse,
    /// TAM -> Agent.
    Update,
    /// Agent -> TAM.
    Success,
    /// Agent -> TAM.
    Error,
}

impl MessageType {
    /// All types, in wire order.
    pub const ALL: [Self; 5] = [
        Self::QueryRequest,
        Self::QueryResponse,
        Self::Update,
        Self::Success,
        Self::Error,
    ];

    /// The CDDL rule name (`"query-request"`, ...), used by the JSON view.
    pub const fn name(self) -> &'static str {
        match self {
            Self::QueryRequest => "query-request",
            Self::QueryResponse => "query-response",
            Self::Update => "update",
            Self::Success => "success",
            Self::Error => "error",
        }
    }

    /// The wire number of this type in `numbering`.
    pub const fn number(self, numbering: Numbering) -> u64 {
        match (self, numbering) {
            (Self::QueryRequest, _) => 1,
            (Self::QueryResponse, _) => 2,
            (Self::Update, _) => 3,
            (Self::Success, Numbering::Draft26) => 4,
            (Self::Success, Numbering::Pre26) => 5,
            (Self::Error, Numbering::Draft26) => 5,
            (Self::Error, Numbering::Pre26) => 6,
        }
    }

    /// The type with wire number `n` in `numbering`, if any.
    pub fn from_number(n: u64, numbering: Numbering) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.number(numbering) == n)
    }

    /// Number of elements of the message array (type and options included).
    pub(crate) const fn array_len(self) -> u64 {
        match self {
            Self::QueryRequest => 5,
            Self::Error => 3,
            _ => 2,
        }
    }
}

/// Every named part of a TEEP message: the option labels of the CDDL, the positional
/// elements, and the parts inside them. Errors name the field they are about, and the
/// JSON view uses [`Field::name`] as key.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    // --- option labels, in -26 label order (label = index + 1 in -26) ---
    /// `supported-teep-cipher-suites` (option in Error, positional in QueryRequest).
    SupportedTeepCipherSuites,
    /// `challenge`.
    Challenge,
    /// `versions`.
    Versions,
    /// `supported-suit-cose-profiles` (option in Error, positional in QueryRequest).
    SupportedSuitCoseProfiles,
    /// `selected-version`.
    SelectedVersion,
    /// `attestation-payload`.
    AttestationPayload,
    /// `tc-list`.
    TcList,
    /// `ext-list`.
    ExtList,
    /// `manifest-list`.
    ManifestList,
    /// `msg`.
    Msg,
    /// `err-msg`.
    ErrMsg,
    /// `attestation-payload-format`.
    AttestationPayloadFormat,
    /// `requested-tc-list`.
    RequestedTcList,
    /// `unneeded-manifest-list`.
    UnneededManifestList,
    /// `component-id` (inside requested-tc-info).
    ComponentId,
    /// `tc-manifest-sequence-number` (inside requested-tc-info).
    TcManifestSequenceNumber,
    /// `have-binary` (inside requested-tc-info).
    HaveBinary,
    /// `suit-reports`.
    SuitReports,
    /// `token`.
    Token,
    /// `supported-freshness-mechanisms`.
    SupportedFreshnessMechanisms,
    /// `err-lang`.
    ErrLang,
    /// `err-code` (option in Update, positional in Error).
    ErrCode,
    // --- structure without a label of its own ---
    /// The message array itself.
    Message,
    /// The first element: the message type.
    Type,
    /// The options map.
    Options,
    /// A key of the options map.
    OptionLabel,
    /// `data-item-requested` (positional in QueryRequest).
    DataItemRequested,
    /// One `$teep-cipher-suite` (an array of operations).
    CipherSuite,
    /// One `[cose-type, cose-alg]` operation of a cipher suite.
    CipherOperation,
    /// One `$suit-cose-profile` (four algorithm ids).
    SuitCoseProfile,
    /// One `$freshness-mechanism`.
    FreshnessMechanism,
    /// One `version` / `ext-info` (uint .size 4).
    Version,
    /// One entry of tc-list (`system-property-claims` map).
    SystemPropertyClaims,
    /// `system-component-id` (key 0 of system-property-claims).
    SystemComponentId,
    /// A SUIT parameter inside system-property-claims, kept as raw CBOR.
    SuitParameter,
    /// One `requested-tc-info` map.
    RequestedTcInfo,
    /// One element (bstr) of a SUIT_Component_Identifier.
    ComponentIdPart,
    /// One bstr of manifest-list or suit-reports.
    ListItem,
    /// The value of an option whose label this message does not define (kept raw).
    Extension,
}

/// Option labels in -26 label order: `LABELED[i]` has -26 label `i + 1`.
const LABELED: [Field; 22] = [
    Field::SupportedTeepCipherSuites,
    Field::Challenge,
    Field::Versions,
    Field::SupportedSuitCoseProfiles,
    Field::SelectedVersion,
    Field::AttestationPayload,
    Field::TcList,
    Field::ExtList,
    Field::ManifestList,
    Field::Msg,
    Field::ErrMsg,
    Field::AttestationPayloadFormat,
    Field::RequestedTcList,
    Field::UnneededManifestList,
    Field::ComponentId,
    Field::TcManifestSequenceNumber,
    Field::HaveBinary,
    Field::SuitReports,
    Field::Token,
    Field::SupportedFreshnessMechanisms,
    Field::ErrLang,
    Field::ErrCode,
];

/// Label of `LABELED[i]` before -26: the first four are unchanged, the rest moved up by
/// one (pre-26 left 5 unassigned).
const PRE26_LABELS: [u64; 22] = [
    1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
];

impl Field {
    /// The CDDL name (`"token"`, `"tc-list"`, ...) used by errors and the JSON view.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SupportedTeepCipherSuites => "supported-teep-cipher-suites",
            Self::Challenge => "challenge",
            Self::Versions => "versions",
            Self::SupportedSuitCoseProfiles => "supported-suit-cose-profiles",
            Self::SelectedVersion => "selected-version",
            Self::AttestationPayload => "attestation-payload",
            Self::TcList => "tc-list",
            Self::ExtList => "ext-list",
            Self::ManifestList => "manifest-list",
            Self::Msg => "msg",
            Self::ErrMsg => "err-msg",
            Self::AttestationPayloadFormat => "attestation-payload-format",
            Self::RequestedTcList => "requested-tc-list",
            Self::UnneededManifestList => "unneeded-manifest-list",
            Self::ComponentId => "component-id",
            Self::TcManifestSequenceNumber => "tc-manifest-sequence-number",
            Self::HaveBinary => "have-binary",
            Self::SuitReports => "suit-reports",
            Self::Token => "token",
            Self::SupportedFreshnessMechanisms => "supported-freshness-mechanisms",
            Self::ErrLang => "err-lang",
            Self::ErrCode => "err-code",
            Self::Message => "message",
            Self::Type => "type",
            Self::Options => "options",
            Self::OptionLabel => "option label",
            Self::DataItemRequested => "data-item-requested",
            Self::CipherSuite => "teep-cipher-suite",
            Self::CipherOperation => "teep-operation",
            Self::SuitCoseProfile => "suit-cose-profile",
            Self::FreshnessMechanism => "freshness-mechanism",
            Self::Version => "version",
            Self::SystemPropertyClaims => "system-property-claims",
            Self::SystemComponentId => "system-component-id",
            Self::SuitParameter => "SUIT parameter",
            Self::RequestedTcInfo => "requested-tc-info",
            Self::ComponentIdPart => "SUIT_Component_Identifier element",
            Self::ListItem => "list item",
            Self::Extension => "extension option",
        }
    }

    /// The CBOR map label of this field in `numbering`, if it is a labelled field.
    pub fn label(self, numbering: Numbering) -> Option<u64> {
        let index = LABELED.iter().position(|f| *f == self)?;
        match numbering {
            Numbering::Draft26 => u64::try_from(index).ok().map(|i| i + 1),
            Numbering::Pre26 => PRE26_LABELS.get(index).copied(),
        }
    }

    /// The labelled field with `label` in `numbering`, if any.
    pub fn from_label(label: u64, numbering: Numbering) -> Option<Self> {
        let index = match numbering {
            Numbering::Draft26 => usize::try_from(label.checked_sub(1)?).ok()?,
            Numbering::Pre26 => PRE26_LABELS.iter().position(|l| *l == label)?,
        };
        LABELED.get(index).copied()
    }

    /// `(min, max)` byte length from the CDDL `.size` control, for the fields that have one.
    pub const fn size_limits(self) -> Option<(usize, usize)> {
        match self {
            Self::Token => Some((8, 64)),
            Self::Challenge => Some((8, 512)),
            Self::Msg | Self::ErrMsg => Some((1, 128)),
            Self::ErrLang => Some((1, 35)),
            _ => None,
        }
    }
}

impl core::fmt::Display for Field {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_in_both_numberings() {
        for numbering in [Numbering::Draft26, Numbering::Pre26] {
            for field in LABELED {
                let label = field.label(numbering).unwrap();
                assert_eq!(Field::from_label(label, numbering), Some(field));
            }
        }
        assert_eq!(Field::Token.label(Numbering::Draft26), Some(19));
        assert_eq!(Field::Token.label(Numbering::Pre26), Some(20));
        assert_eq!(Field::SelectedVersion.label(Numbering::Pre26), Some(6));
        assert_eq!(Field::from_label(5, Numbering::Pre26), None);
        assert_eq!(Field::from_label(0, Numbering::Draft26), None);
        assert_eq!(Field::from_label(23, Numbering::Draft26), None);
        assert_eq!(Field::Message.label(Numbering::Draft26), None);
    }

    #[test]
    fn message_types_per_numbering() {
        assert_eq!(
            MessageType::from_number(4, Numbering::Draft26),
            Some(MessageType::Success)
        );
        assert_eq!(MessageType::from_number(4, Numbering::Pre26), None);
        assert_eq!(
            MessageType::from_number(6, Numbering::Pre26),
            Some(MessageType::Error)
        );
        assert_eq!(MessageType::from_number(0, Numbering::Draft26), None);
    }
}
