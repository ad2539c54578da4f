//! Strict decoding: the teep-cbor pre-pass, then one typed walk with teep-cbor's `Reader`.
//!
//! The pre-pass (`Profile::TEEP`) rejects what no reader may accept: ill-formed CBOR,
//! duplicate map keys, trailing bytes, excessive depth or size. It accepts indefinite
//! lengths and non-preferred heads because the draft does not require deterministic
//! encoding, so the walk below reads both forms (the `_any` reads). The walk then checks
//! the TEEP structure and the CDDL controls and reports each problem with its byte offset;
//! every read names its [`Field`], and one `From<ReadError<Field>>` turns a failed read
//! into a [`MalformedKind`].

use alloc::string::String;
use alloc::vec::Vec;

use teep_cbor::read::{ReadError, ReadErrorKind, Reader};
use teep_cbor::{CborErrorKind, Profile};

use crate::error::{MalformedKind, ProtoError, Violation};
use crate::numbering::{Field, MessageType, Numbering};
use crate::types::{
    CipherOperation, CipherSuite, ComponentId, DataItemRequested, ErrCode, ErrorMessage,
    Extensions, FreshnessMechanism, Message, QueryRequest, QueryResponse, RawCbor, RequestedTcInfo,
    Success, SuitCoseProfile, SystemPropertyClaims, Update,
};
use crate::validate;

type Result<T> = core::result::Result<T, ProtoError>;

/// Decodes one bare, UNSIGNED TEEP message (the CBOR array itself): the draft's example
/// vectors, tests, the JSON view. Nothing about it is authenticated; a message from a peer
/// is signed and read with [`crate::Unverified::parse`], then verified.
///
/// Unknown option labels are kept in the message's `extensions`; unknown positional
/// structure and unknown message types are rejected. Empty `tc-list`, `ext-list` and
/// `unneeded-manifest-list` are accepted although the CDDL says `[+ ...]` (spec §16.4:
/// an Agent with nothing to list must still send the list its TAM asked for).
pub fn decode_unsigned(bytes: &[u8], numbering: Numbering) -> Result<Message> {
    check_cbor(bytes)?;
    let mut w = Walk {
        r: Reader::new(bytes),
        numbering,
    };
    let message = w.message()?;
    // The pre-pass already guarantees this; kept so the walk alone is never lenient.
    w.r.expect_empty(Field::Message)?;
    Ok(message)
}

/// The strict CBOR pre-pass shared by the decoder and [`RawCbor::new`].
pub(crate) fn check_cbor(bytes: &[u8]) -> Result<()> {
    teep_cbor::check(bytes, &Profile::TEEP).map_err(ProtoError::from)
}

/// A failed read of `field`. Kinds the pre-pass rules out (malformed heads, invalid UTF-8,
/// trailing bytes) still map onto the pre-pass's own kinds, so the walk is never lenient.
impl From<ReadError<Field>> for ProtoError {
    fn from(e: ReadError<Field>) -> Self {
        let field = e.field;
        let kind = match e.kind {
            ReadErrorKind::Truncated => MalformedKind::Truncated,
            ReadErrorKind::OutOfRange => MalformedKind::OutOfRange { field },
            ReadErrorKind::Missing => MalformedKind::MissingField { field },
            ReadErrorKind::Duplicate => MalformedKind::DuplicateLabel,
            ReadErrorKind::Trailing => MalformedKind::Cbor(CborErrorKind::TrailingBytes),
            ReadErrorKind::InvalidUtf8 => MalformedKind::Cbor(CborErrorKind::InvalidUtf8),
            ReadErrorKind::Indefinite => MalformedKind::Cbor(CborErrorKind::IndefiniteLength),
            ReadErrorKind::Size { found, .. } => MalformedKind::Violation(Violation::Size {
                field,
                len: usize::try_from(found).unwrap_or(usize::MAX),
            }),
            // Expected(_), Malformed (a reserved head or stray break where an item belongs).
            _ => MalformedKind::UnexpectedType { field },
        };
        Self::malformed(e.offset, kind)
    }
}

/// Progress through an array of fixed length (definite or indefinite).
struct Fixed {
    at: usize,
    field: Field,
    expected: u64,
    len: Option<u64>,
    seen: u64,
}

/// The walk over one message: the reader and the numbering its labels are in.
struct Walk<'b> {
    r: Reader<'b>,
    numbering: Numbering,
}

fn malformed<T>(at: usize, kind: MalformedKind) -> Result<T> {
    Err(ProtoError::malformed(at, kind))
}

fn violation<T>(at: usize, v: Violation) -> Result<T> {
    malformed(at, MalformedKind::Violation(v))
}

/// Sets an option once; a second occurrence of a label is a duplicate.
fn set_once<T>(slot: &mut Option<T>, value: T, at: usize) -> Result<()> {
    if slot.replace(value).is_some() {
        return malformed(at, MalformedKind::DuplicateLabel);
    }
    Ok(())
}

impl Walk<'_> {
    fn pos(&self) -> usize {
        self.r.position()
    }

    fn uint(&mut self, field: Field) -> Result<u64> {
        Ok(self.r.u64(field)?)
    }

    /// A `uint .size 4` (version, ext-info): a negative number is of the wrong type, a
    /// larger one out of range.
    fn u32(&mut self, field: Field) -> Result<u32> {
        let at = self.pos();
        let n = self.uint(field)?;
        u32::try_from(n).or_else(|_| malformed(at, MalformedKind::OutOfRange { field }))
    }

    fn int(&mut self, field: Field) -> Result<i64> {
        Ok(self.r.i64(field)?)
    }

    fn bool(&mut self, field: Field) -> Result<bool> {
        Ok(self.r.bool(field)?)
    }

    /// A byte string, definite or indefinite (chunks concatenated).
    fn bytes(&mut self, field: Field) -> Result<Vec<u8>> {
        Ok(self.r.bytes_any(field)?.into_owned())
    }

    /// A text string, definite or indefinite (chunks concatenated).
    fn text(&mut self, field: Field) -> Result<String> {
        Ok(self.r.str_any(field)?.into_owned())
    }

    fn sized_bytes(&mut self, field: Field) -> Result<Vec<u8>> {
        let at = self.pos();
        let v = self.bytes(field)?;
        validate::size(field, v.len()).or_else(|e| violation(at, e))?;
        Ok(v)
    }

    fn sized_text(&mut self, field: Field) -> Result<String> {
        let at = self.pos();
        let v = self.text(field)?;
        validate::size(field, v.len()).or_else(|e| violation(at, e))?;
        Ok(v)
    }

    /// Any one item, kept as its encoded bytes.
    fn raw(&mut self, field: Field) -> Result<RawCbor> {
        Ok(RawCbor::from_checked(self.r.raw(field)?.to_vec()))
    }

    fn array(&mut self, field: Field) -> Result<Option<u64>> {
        Ok(self.r.array_any(field)?)
    }

    fn map(&mut self, field: Field) -> Result<Option<u64>> {
        Ok(self.r.map_any(field)?)
    }

    /// Whether another element of the array or map `field` follows ([`Reader::more`]).
    fn more(&mut self, field: Field, remaining: &mut Option<u64>) -> Result<bool> {
        Ok(self.r.more(field, remaining)?)
    }

    /// After `more` announced an element too many: counts (and skips) it and the rest of
    /// the array, for an ArrayLength error.
    fn count_extra(&mut self, remaining: &mut Option<u64>, field: Field) -> Result<u64> {
        if let Some(n) = *remaining {
            return Ok(n.saturating_add(1));
        }
        let mut n = 0u64;
        loop {
            self.r.skip(field)?;
            n = n.saturating_add(1);
            if !self.more(field, remaining)? {
                return Ok(n);
            }
        }
    }

    /// A capacity hint that an attacker's length cannot inflate past the input size.
    fn capacity(&self, len: Option<u64>) -> usize {
        let left = self.r.input().len().saturating_sub(self.pos());
        len.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX).min(left))
    }

    /// An array whose elements are all read by `item`.
    fn list<T>(
        &mut self,
        field: Field,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let at = self.pos();
        let mut len = self.array(field)?;
        let mut out = Vec::with_capacity(self.capacity(len));
        while self.more(field, &mut len)? {
            out.push(item(self)?);
        }
        validate::list_len(field, out.len()).or_else(|e| violation(at, e))?;
        Ok(out)
    }

    /// Starts an array of exactly `expected` elements (a definite length is checked here).
    fn fixed_array(&mut self, field: Field, expected: u64) -> Result<Fixed> {
        let at = self.pos();
        let len = self.array(field)?;
        if let Some(found) = len
            && found != expected
        {
            return malformed(
                at,
                MalformedKind::ArrayLength {
                    field,
                    expected,
                    found,
                },
            );
        }
        Ok(Fixed {
            at,
            field,
            expected,
            len,
            seen: 0,
        })
    }

    /// Steps to the next element of a fixed array, which must exist.
    fn element(&mut self, f: &mut Fixed) -> Result<()> {
        if !self.more(f.field, &mut f.len)? {
            let kind = MalformedKind::ArrayLength {
                field: f.field,
                expected: f.expected,
                found: f.seen,
            };
            return malformed(f.at, kind);
        }
        f.seen = f.seen.saturating_add(1);
        Ok(())
    }

    /// Ends a fixed array, which must have no further element.
    fn end(&mut self, mut f: Fixed) -> Result<()> {
        if self.more(f.field, &mut f.len)? {
            let found = f
                .expected
                .saturating_add(self.count_extra(&mut f.len, f.field)?);
            let kind = MalformedKind::ArrayLength {
                field: f.field,
                expected: f.expected,
                found,
            };
            return malformed(f.at, kind);
        }
        Ok(())
    }

    /// An options map; `on` handles each entry given its field (if the label is assigned
    /// in this numbering), the label and the key's offset.
    fn options(
        &mut self,
        mut on: impl FnMut(&mut Self, Option<Field>, u64, usize) -> Result<()>,
    ) -> Result<()> {
        let mut len = self.map(Field::Options)?;
        while self.more(Field::Options, &mut len)? {
            let at = self.pos();
            let label = self.uint(Field::OptionLabel)?;
            on(self, Field::from_label(label, self.numbering), label, at)?;
        }
        Ok(())
    }

    fn extension(&mut self, extensions: &mut Extensions, label: u64, at: usize) -> Result<()> {
        let value = self.raw(Field::Extension)?;
        if extensions.insert(label, value).is_some() {
            return malformed(at, MalformedKind::DuplicateLabel);
        }
        Ok(())
    }

    /// Steps to the next positional element of the message array, which must exist.
    fn positional(&mut self, len: &mut Option<u64>, field: Field) -> Result<()> {
        let at = self.pos();
        if self.more(Field::Message, len)? {
            Ok(())
        } else {
            malformed(at, MalformedKind::MissingField { field })
        }
    }

    fn message(&mut self) -> Result<Message> {
        let at = self.pos();
        let mut len = self.array(Field::Message)?;
        self.positional(&mut len, Field::Type)?;
        let type_at = self.pos();
        let number = self.uint(Field::Type)?;
        let Some(ty) = MessageType::from_number(number, self.numbering) else {
            return malformed(type_at, MalformedKind::UnknownMessageType(number));
        };
        let expected = ty.array_len();
        if let Some(rest) = len
            && rest >= expected
        {
            let found = rest.saturating_add(1);
            return malformed(
                at,
                MalformedKind::ArrayLength {
                    field: Field::Message,
                    expected,
                    found,
                },
            );
        }
        self.positional(&mut len, Field::Options)?;
        let message = match ty {
            MessageType::QueryRequest => Message::QueryRequest(self.query_request(&mut len)?),
            MessageType::QueryResponse => Message::QueryResponse(self.query_response()?),
            MessageType::Update => Message::Update(self.update()?),
            MessageType::Success => Message::Success(self.success()?),
            MessageType::Error => Message::Error(self.error(&mut len)?),
        };
        if self.more(Field::Message, &mut len)? {
            let found = expected.saturating_add(self.count_extra(&mut len, Field::Message)?);
            return malformed(
                at,
                MalformedKind::ArrayLength {
                    field: Field::Message,
                    expected,
                    found,
                },
            );
        }
        Ok(message)
    }

    fn query_request(&mut self, len: &mut Option<u64>) -> Result<QueryRequest> {
        let mut m = QueryRequest::default();
        self.options(|r, field, label, at| match field {
            Some(Field::Token) => set_once(&mut m.token, r.sized_bytes(Field::Token)?, at),
            Some(f @ Field::SupportedFreshnessMechanisms) => {
                set_once(&mut m.supported_freshness_mechanisms, r.freshness(f)?, at)
            }
            Some(Field::Challenge) => {
                set_once(&mut m.challenge, r.sized_bytes(Field::Challenge)?, at)
            }
            Some(Field::Versions) => set_once(&mut m.versions, r.versions(Field::Versions)?, at),
            Some(f @ Field::AttestationPayloadFormat) => {
                set_once(&mut m.attestation_payload_format, r.text(f)?, at)
            }
            Some(f @ Field::AttestationPayload) => {
                set_once(&mut m.attestation_payload, r.bytes(f)?, at)
            }
            Some(f @ Field::SuitReports) => set_once(&mut m.suit_reports, r.bstr_list(f)?, at),
            _ => r.extension(&mut m.extensions, label, at),
        })?;
        self.positional(len, Field::SupportedTeepCipherSuites)?;
        m.supported_teep_cipher_suites = self.cipher_suites()?;
        self.positional(len, Field::SupportedSuitCoseProfiles)?;
        m.supported_suit_cose_profiles = self.suit_cose_profiles()?;
        self.positional(len, Field::DataItemRequested)?;
        m.data_item_requested = DataItemRequested(self.uint(Field::DataItemRequested)?);
        Ok(m)
    }

    fn query_response(&mut self) -> Result<QueryResponse> {
        let mut m = QueryResponse::default();
        self.options(|r, field, label, at| match field {
            Some(Field::Token) => set_once(&mut m.token, r.sized_bytes(Field::Token)?, at),
            Some(f @ Field::SelectedVersion) => set_once(&mut m.selected_version, r.u32(f)?, at),
            Some(f @ Field::AttestationPayloadFormat) => {
                set_once(&mut m.attestation_payload_format, r.text(f)?, at)
            }
            Some(f @ Field::AttestationPayload) => {
                set_once(&mut m.attestation_payload, r.bytes(f)?, at)
            }
            Some(f @ Field::SuitReports) => set_once(&mut m.suit_reports, r.bstr_list(f)?, at),
            Some(Field::TcList) => {
                let v = r.list(Field::TcList, Self::system_property_claims)?;
                set_once(&mut m.tc_list, v, at)
            }
            Some(Field::RequestedTcList) => {
                let v = r.list(Field::RequestedTcList, Self::requested_tc_info)?;
                set_once(&mut m.requested_tc_list, v, at)
            }
            Some(f @ Field::UnneededManifestList) => {
                set_once(&mut m.unneeded_manifest_list, r.component_ids(f)?, at)
            }
            Some(f @ Field::ExtList) => set_once(&mut m.ext_list, r.versions(f)?, at),
            _ => r.extension(&mut m.extensions, label, at),
        })?;
        Ok(m)
    }

    fn update(&mut self) -> Result<Update> {
        let mut m = Update::default();
        self.options(|r, field, label, at| match field {
            Some(Field::Token) => set_once(&mut m.token, r.sized_bytes(Field::Token)?, at),
            Some(f @ Field::UnneededManifestList) => {
                set_once(&mut m.unneeded_manifest_list, r.component_ids(f)?, at)
            }
            Some(f @ Field::ManifestList) => set_once(&mut m.manifest_list, r.bstr_list(f)?, at),
            Some(f @ Field::AttestationPayloadFormat) => {
                set_once(&mut m.attestation_payload_format, r.text(f)?, at)
            }
            Some(f @ Field::AttestationPayload) => {
                set_once(&mut m.attestation_payload, r.bytes(f)?, at)
            }
            Some(Field::ErrCode) => set_once(&mut m.err_code, r.err_code()?, at),
            Some(f @ Field::ErrMsg) => set_once(&mut m.err_msg, r.sized_text(f)?, at),
            Some(f @ Field::ErrLang) => set_once(&mut m.err_lang, r.sized_text(f)?, at),
            _ => r.extension(&mut m.extensions, label, at),
        })?;
        Ok(m)
    }

    fn success(&mut self) -> Result<Success> {
        let mut m = Success::default();
        self.options(|r, field, label, at| match field {
            Some(Field::Token) => set_once(&mut m.token, r.sized_bytes(Field::Token)?, at),
            Some(f @ Field::Msg) => set_once(&mut m.msg, r.sized_text(f)?, at),
            Some(f @ Field::SuitReports) => set_once(&mut m.suit_reports, r.bstr_list(f)?, at),
            _ => r.extension(&mut m.extensions, label, at),
        })?;
        Ok(m)
    }

    fn error(&mut self, len: &mut Option<u64>) -> Result<ErrorMessage> {
        let mut m = ErrorMessage::new(ErrCode::PermanentError);
        self.options(|r, field, label, at| match field {
            Some(Field::Token) => set_once(&mut m.token, r.sized_bytes(Field::Token)?, at),
            Some(f @ Field::ErrMsg) => set_once(&mut m.err_msg, r.sized_text(f)?, at),
            Some(f @ Field::ErrLang) => set_once(&mut m.err_lang, r.sized_text(f)?, at),
            Some(Field::SupportedTeepCipherSuites) => {
                set_once(&mut m.supported_teep_cipher_suites, r.cipher_suites()?, at)
            }
            Some(f @ Field::SupportedFreshnessMechanisms) => {
                set_once(&mut m.supported_freshness_mechanisms, r.freshness(f)?, at)
            }
            Some(Field::SupportedSuitCoseProfiles) => set_once(
                &mut m.supported_suit_cose_profiles,
                r.suit_cose_profiles()?,
                at,
            ),
            Some(Field::Challenge) => {
                set_once(&mut m.challenge, r.sized_bytes(Field::Challenge)?, at)
            }
            Some(Field::Versions) => set_once(&mut m.versions, r.versions(Field::Versions)?, at),
            Some(f @ Field::SuitReports) => set_once(&mut m.suit_reports, r.bstr_list(f)?, at),
            _ => r.extension(&mut m.extensions, label, at),
        })?;
        self.positional(len, Field::ErrCode)?;
        m.err_code = self.err_code()?;
        Ok(m)
    }

    fn err_code(&mut self) -> Result<ErrCode> {
        let at = self.pos();
        let n = self.uint(Field::ErrCode)?;
        match ErrCode::from_number(n, self.numbering) {
            Some(code) => Ok(code),
            None => violation(at, Violation::ReservedErrCode),
        }
    }

    fn freshness(&mut self, field: Field) -> Result<Vec<FreshnessMechanism>> {
        self.list(field, |r| {
            r.uint(Field::FreshnessMechanism).map(FreshnessMechanism)
        })
    }

    fn versions(&mut self, field: Field) -> Result<Vec<u32>> {
        self.list(field, |r| r.u32(Field::Version))
    }

    fn bstr_list(&mut self, field: Field) -> Result<Vec<Vec<u8>>> {
        self.list(field, |r| r.bytes(Field::ListItem))
    }

    fn cipher_suites(&mut self) -> Result<Vec<CipherSuite>> {
        self.list(Field::SupportedTeepCipherSuites, Self::cipher_suite)
    }

    /// One suite; the usual single operation is read without allocating.
    fn cipher_suite(&mut self) -> Result<CipherSuite> {
        let at = self.pos();
        let mut len = self.array(Field::CipherSuite)?;
        let mut first = None;
        let mut rest = Vec::new();
        while self.more(Field::CipherSuite, &mut len)? {
            let op = self.cipher_operation()?;
            match first {
                None => first = Some(op),
                Some(_) => rest.push(op),
            }
        }
        match first {
            None => violation(
                at,
                Violation::EmptyList {
                    field: Field::CipherSuite,
                },
            ),
            Some(op) if rest.is_empty() => Ok(CipherSuite::single(op)),
            Some(op) => {
                rest.insert(0, op);
                Ok(CipherSuite::new(rest))
            }
        }
    }

    fn cipher_operation(&mut self) -> Result<CipherOperation> {
        let mut f = self.fixed_array(Field::CipherOperation, 2)?;
        self.element(&mut f)?;
        let cose_type = self.uint(Field::CipherOperation)?;
        self.element(&mut f)?;
        let alg = self.int(Field::CipherOperation)?;
        self.end(f)?;
        Ok(CipherOperation { cose_type, alg })
    }

    fn suit_cose_profiles(&mut self) -> Result<Vec<SuitCoseProfile>> {
        self.list(Field::SupportedSuitCoseProfiles, |r| {
            let at = r.pos();
            let len = r.array(Field::SuitCoseProfile)?;
            // Older TAMs write `[digest-alg, auth-alg]` (definite length only).
            let expected = if r.numbering == Numbering::Pre26 && len == Some(2) {
                2
            } else {
                4
            };
            if let Some(found) = len
                && found != expected
            {
                let kind = MalformedKind::ArrayLength {
                    field: Field::SuitCoseProfile,
                    expected,
                    found,
                };
                return malformed(at, kind);
            }
            let mut f = Fixed {
                at,
                field: Field::SuitCoseProfile,
                expected,
                len,
                seen: 0,
            };
            let mut algs = [0i64; 4];
            let count = if expected == 2 { 2 } else { 4 };
            for alg in algs.iter_mut().take(count) {
                r.element(&mut f)?;
                *alg = r.int(Field::SuitCoseProfile)?;
            }
            r.end(f)?;
            match expected {
                4 => Ok(SuitCoseProfile(algs)),
                _ => {
                    let [digest, auth, ..] = algs;
                    match SuitCoseProfile::from_pre26_pair(digest, auth) {
                        Some(p) => Ok(p),
                        None => violation(at, Violation::AmbiguousSuitCoseProfile { digest, auth }),
                    }
                }
            }
        })
    }

    fn component_id(&mut self, field: Field) -> Result<ComponentId> {
        self.list(field, |r| r.bytes(Field::ComponentIdPart))
            .map(ComponentId)
    }

    fn component_ids(&mut self, field: Field) -> Result<Vec<ComponentId>> {
        self.list(field, |r| r.component_id(Field::ComponentId))
    }

    fn system_property_claims(&mut self) -> Result<SystemPropertyClaims> {
        let at = self.pos();
        let mut len = self.map(Field::SystemPropertyClaims)?;
        let mut component_id = None;
        let mut parameters = alloc::collections::BTreeMap::new();
        while self.more(Field::SystemPropertyClaims, &mut len)? {
            let key_at = self.pos();
            match self.int(Field::SystemPropertyClaims)? {
                0 => {
                    let id = self.component_id(Field::SystemComponentId)?;
                    set_once(&mut component_id, id, key_at)?;
                }
                key => {
                    let value = self.raw(Field::SuitParameter)?;
                    if parameters.insert(key, value).is_some() {
                        return malformed(key_at, MalformedKind::DuplicateLabel);
                    }
                }
            }
        }
        let Some(component_id) = component_id else {
            return malformed(
                at,
                MalformedKind::MissingField {
                    field: Field::SystemComponentId,
                },
            );
        };
        let claims = SystemPropertyClaims {
            component_id,
            parameters,
        };
        validate::claims(&claims).or_else(|e| violation(at, e))?;
        Ok(claims)
    }

    fn requested_tc_info(&mut self) -> Result<RequestedTcInfo> {
        let at = self.pos();
        let mut len = self.map(Field::RequestedTcInfo)?;
        let mut component_id = None;
        let mut tc_manifest_sequence_number = None;
        let mut have_binary = None;
        while self.more(Field::RequestedTcInfo, &mut len)? {
            let key_at = self.pos();
            let label = self.uint(Field::RequestedTcInfo)?;
            match Field::from_label(label, self.numbering) {
                Some(f @ Field::ComponentId) => {
                    set_once(&mut component_id, self.component_id(f)?, key_at)?;
                }
                Some(f @ Field::TcManifestSequenceNumber) => {
                    set_once(&mut tc_manifest_sequence_number, self.uint(f)?, key_at)?;
                }
                Some(f @ Field::HaveBinary) => set_once(&mut have_binary, self.bool(f)?, key_at)?,
                _ => {
                    let field = Field::RequestedTcInfo;
                    return malformed(key_at, MalformedKind::UnknownKey { field, label });
                }
            }
        }
        let Some(component_id) = component_id else {
            return malformed(
                at,
                MalformedKind::MissingField {
                    field: Field::ComponentId,
                },
            );
        };
        let info = RequestedTcInfo {
            component_id,
            tc_manifest_sequence_number,
            have_binary,
        };
        validate::requested_tc_info(&info).or_else(|e| violation(at, e))?;
        Ok(info)
    }
}
