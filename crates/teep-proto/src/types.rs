//! The five TEEP messages and the values they carry.
//!
//! Fields are public and plain (`Vec<u8>`, `String`, `Option`) so that the TAM and Agent
//! can build messages directly. The CDDL limits that a type cannot express (`.size`
//! ranges, non-empty lists, err-code 0) are checked by the codec in both directions:
//! [`crate::decode`] rejects them and [`Message::encode`] refuses them.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::numbering::{MessageType, Numbering};

/// One TEEP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// TAM -> Agent: what do you have, who are you.
    QueryRequest(QueryRequest),
    /// Agent -> TAM: answer to a QueryRequest (or unsolicited).
    QueryResponse(QueryResponse),
    /// TAM -> Agent: install / update / unlink, or report a problem.
    Update(Update),
    /// Agent -> TAM: the Update was processed.
    Success(Success),
    /// Agent -> TAM: a request failed.
    Error(ErrorMessage),
}

impl Message {
    /// The message type.
    pub const fn message_type(&self) -> MessageType {
        match self {
            Self::QueryRequest(_) => MessageType::QueryRequest,
            Self::QueryResponse(_) => MessageType::QueryResponse,
            Self::Update(_) => MessageType::Update,
            Self::Success(_) => MessageType::Success,
            Self::Error(_) => MessageType::Error,
        }
    }

    /// The `token`, which every message type may carry.
    pub fn token(&self) -> Option<&[u8]> {
        match self {
            Self::QueryRequest(m) => m.token.as_deref(),
            Self::QueryResponse(m) => m.token.as_deref(),
            Self::Update(m) => m.token.as_deref(),
            Self::Success(m) => m.token.as_deref(),
            Self::Error(m) => m.token.as_deref(),
        }
    }
}

/// Options whose label this message type does not define, kept as raw CBOR by label so
/// that unknown extensions survive `decode` -> `encode` and can be shown by `inspect`.
/// Labels are those of the numbering the message was decoded with.
pub type Extensions = BTreeMap<u64, RawCbor>;

/// Exactly one well-formed CBOR data item, kept as its encoded bytes.
///
/// Used for values TEEP does not interpret (SUIT parameters in tc-list, unknown options).
/// They are re-emitted byte for byte as received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawCbor(Vec<u8>);

impl RawCbor {
    /// Wraps `bytes` after checking that they hold exactly one well-formed CBOR item
    /// (the same check the decoder applies), so that encoding can never emit garbage.
    pub fn new(bytes: Vec<u8>) -> Result<Self, crate::ProtoError> {
        crate::decode::check_cbor(&bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps bytes already known to be one well-formed item (sliced by the decoder).
    pub(crate) const fn from_checked(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The encoded item.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// One operation of a cipher suite: `[cose-type, cose-alg]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CipherOperation {
    /// COSE structure as CoAP content format / tag (18 = COSE_Sign1, 98 = COSE_Sign).
    pub cose_type: u64,
    /// COSE algorithm id.
    pub alg: i64,
}

/// A TEEP cipher suite: an array of operations (not an integer; see spec §16.12).
///
/// Every defined suite has one operation, so that case is stored inline: decoding the
/// suites of a QueryRequest allocates nothing per suite, and the MTI suites are consts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CipherSuite(Ops);

/// `One` whenever there is exactly one operation, so equal suites compare equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Ops {
    One(CipherOperation),
    Many(Vec<CipherOperation>),
}

impl CipherSuite {
    /// `cose-sign1` (18).
    pub const COSE_SIGN1: u64 = 18;
    /// `cose-alg-esp256` (-9).
    pub const ALG_ESP256: i64 = -9;
    /// `cose-alg-ed25519` (-19).
    pub const ALG_ED25519: i64 = -19;
    /// `teep-cipher-suite-sign1-esp256` = `[[18, -9]]` (mandatory for the TAM).
    pub const SIGN1_ESP256: Self = Self::sign1(Self::ALG_ESP256);
    /// `teep-cipher-suite-sign1-ed25519` = `[[18, -19]]` (mandatory for the TAM).
    pub const SIGN1_ED25519: Self = Self::sign1(Self::ALG_ED25519);

    /// A suite of the given operations (an empty suite is refused by the encoder).
    pub fn new(mut operations: Vec<CipherOperation>) -> Self {
        match operations.as_slice() {
            [op] => Self(Ops::One(*op)),
            _ => {
                operations.shrink_to_fit();
                Self(Ops::Many(operations))
            }
        }
    }

    /// A suite of one operation (every suite defined so far).
    pub const fn single(operation: CipherOperation) -> Self {
        Self(Ops::One(operation))
    }

    /// A suite with one COSE_Sign1 operation using `alg`.
    pub const fn sign1(alg: i64) -> Self {
        Self::single(CipherOperation {
            cose_type: Self::COSE_SIGN1,
            alg,
        })
    }

    /// The operations, in order.
    pub fn operations(&self) -> &[CipherOperation] {
        match &self.0 {
            Ops::One(op) => core::slice::from_ref(op),
            Ops::Many(ops) => ops,
        }
    }

    /// The algorithm if this suite is a single COSE_Sign1 operation.
    pub fn sign1_alg(&self) -> Option<i64> {
        match self.operations() {
            [op] if op.cose_type == Self::COSE_SIGN1 => Some(op.alg),
            _ => None,
        }
    }
}

/// A SUIT COSE profile: `[digest-alg, auth-alg, key-exchange-alg, encryption-alg]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SuitCoseProfile(pub [i64; 4]);

impl SuitCoseProfile {
    /// `suit-sha256-esp256-ecdh-a128ctr`.
    pub const SHA256_ESP256_ECDH_A128CTR: Self = Self([-16, -9, -29, -65534]);
    /// `suit-sha256-ed25519-ecdh-a128ctr`.
    pub const SHA256_ED25519_ECDH_A128CTR: Self = Self([-16, -19, -29, -65534]);
    /// `suit-sha256-esp256-ecdh-a128gcm`.
    pub const SHA256_ESP256_ECDH_A128GCM: Self = Self([-16, -9, -29, 1]);
    /// `suit-sha256-ed25519-ecdh-chacha-poly`.
    pub const SHA256_ED25519_ECDH_CHACHA_POLY: Self = Self([-16, -19, -29, 24]);
    /// The four profiles a TAM must support, in the order of the draft's example.
    pub const ALL_MTI: [Self; 4] = [
        Self::SHA256_ESP256_ECDH_A128CTR,
        Self::SHA256_ED25519_ECDH_A128CTR,
        Self::SHA256_ESP256_ECDH_A128GCM,
        Self::SHA256_ED25519_ECDH_CHACHA_POLY,
    ];

    /// The profile an older TAM means by a two-element `[digest-alg, auth-alg]` (pre-26
    /// drafts): SHA-256 (-16) with ES256 (-7) or ESP256 (-9) is
    /// `suit-sha256-esp256-ecdh-a128ctr`, with EdDSA (-8) or Ed25519 (-19)
    /// `suit-sha256-ed25519-ecdh-a128ctr`: the digest and the signature, which is all the
    /// pair says, are the same, and our SUIT processor verifies ES256 and ESP256 alike
    /// (one operation on P-256). Any other pair is `None`: refused, not guessed.
    pub const fn from_pre26_pair(digest: i64, auth: i64) -> Option<Self> {
        match (digest, auth) {
            (-16, -7 | -9) => Some(Self::SHA256_ESP256_ECDH_A128CTR),
            (-16, -8 | -19) => Some(Self::SHA256_ED25519_ECDH_A128CTR),
            _ => None,
        }
    }

    /// The draft-ietf-suit-mti name, for the known profiles.
    pub fn name(&self) -> Option<&'static str> {
        Some(match *self {
            Self::SHA256_ESP256_ECDH_A128CTR => "suit-sha256-esp256-ecdh-a128ctr",
            Self::SHA256_ED25519_ECDH_A128CTR => "suit-sha256-ed25519-ecdh-a128ctr",
            Self::SHA256_ESP256_ECDH_A128GCM => "suit-sha256-esp256-ecdh-a128gcm",
            Self::SHA256_ED25519_ECDH_CHACHA_POLY => "suit-sha256-ed25519-ecdh-chacha-poly",
            _ => return None,
        })
    }
}

/// A `$freshness-mechanism` (unknown values are kept: the registry can grow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FreshnessMechanism(pub u64);

impl FreshnessMechanism {
    /// `FRESHNESS_NONCE` (mandatory to implement).
    pub const NONCE: Self = Self(0);
    /// `FRESHNESS_TIMESTAMP`.
    pub const TIMESTAMP: Self = Self(1);

    /// The registry name, for the known mechanisms.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("FRESHNESS_NONCE"),
            1 => Some("FRESHNESS_TIMESTAMP"),
            _ => None,
        }
    }
}

/// `data-item-requested`: a bit set (`uint .bits`); unassigned bits are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DataItemRequested(pub u64);

impl DataItemRequested {
    /// Bit 0: the Agent MUST send attestation-payload.
    pub const ATTESTATION: Self = Self(1);
    /// Bit 1: the Agent MUST send tc-list.
    pub const TRUSTED_COMPONENTS: Self = Self(1 << 1);
    /// Bit 2: the Agent MUST send ext-list.
    pub const EXTENSIONS: Self = Self(1 << 2);
    /// Bit 3: the Agent sends suit-reports.
    pub const SUIT_REPORTS: Self = Self(1 << 3);
    /// The assigned bits with their CDDL names.
    pub const NAMED: [(Self, &'static str); 4] = [
        (Self::ATTESTATION, "attestation"),
        (Self::TRUSTED_COMPONENTS, "trusted-components"),
        (Self::EXTENSIONS, "extensions"),
        (Self::SUIT_REPORTS, "suit-reports"),
    ];

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union of two bit sets.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// A SUIT_Component_Identifier (`[* bstr]`): SUIT's type, the same one teep-suit uses.
pub use teep_suit::ComponentId;

/// One tc-list entry: SUIT-report `system-property-claims`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemPropertyClaims {
    /// `system-component-id` (key 0).
    pub component_id: ComponentId,
    /// The other SUIT parameters (image digest 3, image size 14, ...) by integer key,
    /// as raw CBOR: TEEP does not interpret them. Key 0 is not allowed here, and there
    /// must be at least one (the codec checks both).
    pub parameters: BTreeMap<i64, RawCbor>,
}

/// One requested-tc-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedTcInfo {
    /// The TC the Agent wants.
    pub component_id: ComponentId,
    /// Minimum acceptable manifest sequence number (absent = any).
    pub tc_manifest_sequence_number: Option<u64>,
    /// The Agent already has the binary and needs only a manifest. When `Some(true)`,
    /// `tc_manifest_sequence_number` MUST be present (checked by the codec).
    pub have_binary: Option<bool>,
}

/// TEEP error codes. Receivers treat a code they do not know as an unknown error
/// ([`ErrCode::Unknown`]); code 0 is reserved and rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrCode {
    /// 1: wrong or inconsistent fields.
    PermanentError,
    /// 2: an extension is not supported.
    UnsupportedExtension,
    /// 3: none of the offered freshness mechanisms is supported.
    UnsupportedFreshnessMechanisms,
    /// 4: protocol version not supported.
    UnsupportedMsgVersion,
    /// 5: none of the offered cipher suites is supported.
    UnsupportedCipherSuites,
    /// 6: certificate (or signer key) processing failed.
    BadCertificate,
    /// 7: the sender requires attestation of the receiver.
    AttestationRequired,
    /// 8: a SUIT report uses an unsupported profile.
    UnsupportedSuitReport,
    /// 9: certificate expired or not yet valid.
    CertificateExpired,
    /// 10: transient failure; retry.
    TemporaryError,
    /// 11 (17 before -26): one or more manifests failed.
    ManifestProcessingFailed,
    /// A code this implementation does not know (never 0, never a known code).
    Unknown(u64),
}

impl ErrCode {
    /// The known codes, in registry order.
    pub const KNOWN: [Self; 11] = [
        Self::PermanentError,
        Self::UnsupportedExtension,
        Self::UnsupportedFreshnessMechanisms,
        Self::UnsupportedMsgVersion,
        Self::UnsupportedCipherSuites,
        Self::BadCertificate,
        Self::AttestationRequired,
        Self::UnsupportedSuitReport,
        Self::CertificateExpired,
        Self::TemporaryError,
        Self::ManifestProcessingFailed,
    ];

    /// The wire number in `numbering`.
    pub const fn number(self, numbering: Numbering) -> u64 {
        match self {
            Self::PermanentError => 1,
            Self::UnsupportedExtension => 2,
            Self::UnsupportedFreshnessMechanisms => 3,
            Self::UnsupportedMsgVersion => 4,
            Self::UnsupportedCipherSuites => 5,
            Self::BadCertificate => 6,
            Self::AttestationRequired => 7,
            Self::UnsupportedSuitReport => 8,
            Self::CertificateExpired => 9,
            Self::TemporaryError => 10,
            Self::ManifestProcessingFailed => match numbering {
                Numbering::Draft26 => 11,
                Numbering::Pre26 => 17,
            },
            Self::Unknown(n) => n,
        }
    }

    /// The code with wire number `n`: a known code, `Unknown(n)`, or `None` for the
    /// reserved 0.
    pub fn from_number(n: u64, numbering: Numbering) -> Option<Self> {
        if n == 0 {
            return None;
        }
        Some(
            Self::KNOWN
                .into_iter()
                .find(|c| c.number(numbering) == n)
                .unwrap_or(Self::Unknown(n)),
        )
    }

    /// The registry name (`"ERR_PERMANENT_ERROR"`, ...); `None` for unknown codes.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::PermanentError => "ERR_PERMANENT_ERROR",
            Self::UnsupportedExtension => "ERR_UNSUPPORTED_EXTENSION",
            Self::UnsupportedFreshnessMechanisms => "ERR_UNSUPPORTED_FRESHNESS_MECHANISMS",
            Self::UnsupportedMsgVersion => "ERR_UNSUPPORTED_MSG_VERSION",
            Self::UnsupportedCipherSuites => "ERR_UNSUPPORTED_CIPHER_SUITES",
            Self::BadCertificate => "ERR_BAD_CERTIFICATE",
            Self::AttestationRequired => "ERR_ATTESTATION_REQUIRED",
            Self::UnsupportedSuitReport => "ERR_UNSUPPORTED_SUIT_REPORT",
            Self::CertificateExpired => "ERR_CERTIFICATE_EXPIRED",
            Self::TemporaryError => "ERR_TEMPORARY_ERROR",
            Self::ManifestProcessingFailed => "ERR_MANIFEST_PROCESSING_FAILED",
            Self::Unknown(_) => return None,
        })
    }
}

/// QueryRequest (TAM -> Agent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryRequest {
    /// `token` (8..64 bytes).
    pub token: Option<Vec<u8>>,
    /// `supported-freshness-mechanisms` (absent = nonce only).
    pub supported_freshness_mechanisms: Option<Vec<FreshnessMechanism>>,
    /// `challenge` (8..512 bytes).
    pub challenge: Option<Vec<u8>>,
    /// `versions` (absent = `[0]`).
    pub versions: Option<Vec<u32>>,
    /// `attestation-payload-format` (media type).
    pub attestation_payload_format: Option<String>,
    /// `attestation-payload` about the TAM.
    pub attestation_payload: Option<Vec<u8>>,
    /// `suit-reports`: each a bstr-wrapped SUIT report.
    pub suit_reports: Option<Vec<Vec<u8>>>,
    /// Options this message type does not define.
    pub extensions: Extensions,
    /// `supported-teep-cipher-suites` (positional, non-empty).
    pub supported_teep_cipher_suites: Vec<CipherSuite>,
    /// `supported-suit-cose-profiles` (positional, non-empty).
    pub supported_suit_cose_profiles: Vec<SuitCoseProfile>,
    /// `data-item-requested` (positional).
    pub data_item_requested: DataItemRequested,
}

/// QueryResponse (Agent -> TAM).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryResponse {
    /// `token`: echoes the QueryRequest's.
    pub token: Option<Vec<u8>>,
    /// `selected-version` (absent = 0).
    pub selected_version: Option<u32>,
    /// `attestation-payload-format`.
    pub attestation_payload_format: Option<String>,
    /// `attestation-payload` about the Agent.
    pub attestation_payload: Option<Vec<u8>>,
    /// `suit-reports`.
    pub suit_reports: Option<Vec<Vec<u8>>>,
    /// `tc-list` (may be empty: spec §16.4).
    pub tc_list: Option<Vec<SystemPropertyClaims>>,
    /// `requested-tc-list`.
    pub requested_tc_list: Option<Vec<RequestedTcInfo>>,
    /// `unneeded-manifest-list` (may be empty: spec §16.4).
    pub unneeded_manifest_list: Option<Vec<ComponentId>>,
    /// `ext-list` (may be empty: spec §16.4).
    pub ext_list: Option<Vec<u32>>,
    /// Options this message type does not define.
    pub extensions: Extensions,
}

/// Update (TAM -> Agent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// `token`.
    pub token: Option<Vec<u8>>,
    /// `unneeded-manifest-list`: manifest component IDs to unlink (may be empty).
    pub unneeded_manifest_list: Option<Vec<ComponentId>>,
    /// `manifest-list`: encoded SUIT envelopes (raw bytes, not interpreted here).
    pub manifest_list: Option<Vec<Vec<u8>>>,
    /// `attestation-payload-format`.
    pub attestation_payload_format: Option<String>,
    /// `attestation-payload` (an Attestation Result).
    pub attestation_payload: Option<Vec<u8>>,
    /// `err-code`: a problem the TAM found in the Agent's QueryResponse.
    pub err_code: Option<ErrCode>,
    /// `err-msg` (1..128 bytes).
    pub err_msg: Option<String>,
    /// `err-lang` (1..35 bytes).
    pub err_lang: Option<String>,
    /// Options this message type does not define.
    pub extensions: Extensions,
}

/// Success (Agent -> TAM).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Success {
    /// `token`: echoes the Update's.
    pub token: Option<Vec<u8>>,
    /// `msg` (1..128 bytes).
    pub msg: Option<String>,
    /// `suit-reports`.
    pub suit_reports: Option<Vec<Vec<u8>>>,
    /// Options this message type does not define.
    pub extensions: Extensions,
}

/// Error (Agent -> TAM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMessage {
    /// `token`: echoes the answered message's.
    pub token: Option<Vec<u8>>,
    /// `err-msg` (1..128 bytes).
    pub err_msg: Option<String>,
    /// `err-lang` (1..35 bytes).
    pub err_lang: Option<String>,
    /// `supported-teep-cipher-suites` (with ERR_UNSUPPORTED_CIPHER_SUITES).
    pub supported_teep_cipher_suites: Option<Vec<CipherSuite>>,
    /// `supported-freshness-mechanisms` (with ERR_UNSUPPORTED_FRESHNESS_MECHANISMS).
    pub supported_freshness_mechanisms: Option<Vec<FreshnessMechanism>>,
    /// `supported-suit-cose-profiles` (with ERR_UNSUPPORTED_SUIT_REPORT).
    pub supported_suit_cose_profiles: Option<Vec<SuitCoseProfile>>,
    /// `challenge` for the TAM's Evidence (with ERR_ATTESTATION_REQUIRED).
    pub challenge: Option<Vec<u8>>,
    /// `versions` (with ERR_UNSUPPORTED_MSG_VERSION).
    pub versions: Option<Vec<u32>>,
    /// `suit-reports` with failure details.
    pub suit_reports: Option<Vec<Vec<u8>>>,
    /// Options this message type does not define.
    pub extensions: Extensions,
    /// `err-code` (positional).
    pub err_code: ErrCode,
}

impl ErrorMessage {
    /// An Error with only its code set.
    pub fn new(err_code: ErrCode) -> Self {
        Self {
            token: None,
            err_msg: None,
            err_lang: None,
            supported_teep_cipher_suites: None,
            supported_freshness_mechanisms: None,
            supported_suit_cose_profiles: None,
            challenge: None,
            versions: None,
            suit_reports: None,
            extensions: Extensions::new(),
            err_code,
        }
    }
}

impl QueryRequest {
    /// The TEEP version to answer with: the first of `supported` that the TAM offers
    /// (`versions` absent means `[0]`). Failing gives ERR_UNSUPPORTED_MSG_VERSION.
    pub fn select_version(&self, supported: &[u32]) -> Result<u32, crate::ProtoError> {
        let offered = self.versions.as_deref().unwrap_or(&[0]);
        supported
            .iter()
            .copied()
            .find(|v| offered.contains(v))
            .ok_or_else(|| crate::ProtoError::UnsupportedVersion {
                offered: offered.to_vec(),
            })
    }

    /// The cipher suite to answer with: the first suite the TAM offers that is in
    /// `supported` (the TAM's preference wins). Failing gives
    /// ERR_UNSUPPORTED_CIPHER_SUITES.
    pub fn select_cipher_suite(
        &self,
        supported: &[CipherSuite],
    ) -> Result<&CipherSuite, crate::ProtoError> {
        self.supported_teep_cipher_suites
            .iter()
            .find(|s| supported.contains(s))
            .ok_or(crate::ProtoError::UnsupportedCipherSuites)
    }
}
