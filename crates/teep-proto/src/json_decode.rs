//! JSON view -> message: the inverse of [`super::to_json`] and [`super::cose_view`], so that
//! the view is a two-way human form of the wire format (`teep encode`).
//!
//! It reads exactly what the view emits, in the numbering given: every key the view writes
//! for that message type and nothing else (an unknown key is refused, never skipped), the
//! same value shapes (hex byte strings, `{"value", "name"}` pairs whose `name`, when given,
//! must agree with the value), SUIT parameters by name or, as the view shows values it cannot
//! decode, `{"cbor": hex}`. The message is then checked by the encoder's own CDDL pass, so a
//! view that reads is a message that encodes. Every failure names its JSON path
//! (`$.tc-list[0].image-digest`). Nothing here recurses over the input's depth: the walk
//! follows the message's fixed shape.
//!
//! Keys that only report what `teep inspect` found (`verified`, `verified-with`, `reason`)
//! are accepted and ignored: they describe a check, not the bytes.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value as Json;
use teep_cose::coset::{
    self, CborSerializable as _, CoseSignature, Header, ProtectedHeader,
    TaggedCborSerializable as _,
};

use crate::cose::CoseStructure;
use crate::error::{ProtoError, Violation};
use crate::numbering::{Field, MessageType, Numbering};
use crate::types::{
    CipherOperation, CipherSuite, ComponentId, DataItemRequested, ErrCode, ErrorMessage,
    Extensions, FreshnessMechanism, Message, QueryRequest, QueryResponse, RawCbor, RequestedTcInfo,
    Success, SuitCoseProfile, SystemPropertyClaims, Update,
};

/// Why a JSON view does not read back: where (`path`, from `$`) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct JsonError {
    /// The JSON path of the offending value (`$`, `$.token`, `$.tc-list[0].uri`).
    pub path: String,
    /// What is wrong there.
    pub kind: JsonErrorKind,
}

/// What is wrong with one value of a JSON view.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonErrorKind {
    /// The value has the wrong JSON type (`expected` says which shape belongs there).
    #[error("expected {0}")]
    Expected(&'static str),
    /// A key the view does not write at this place.
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    /// A key the view always writes here is absent.
    #[error("missing {0:?}")]
    Missing(&'static str),
    /// A number does not fit (negative where a uint belongs, over 64 bits, over 4 bytes
    /// for a version, a fraction).
    #[error("number out of range")]
    OutOfRange,
    /// A byte string that is not an even number of hex digits.
    #[error("not a hex byte string")]
    Hex,
    /// `"type"` is not one of the five message types.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A `name` that does not agree with its `value` (the view derives one from the other).
    #[error("name {found:?} does not match the value (its name is {expected:?})")]
    NameMismatch {
        /// What the value's name is (`null` for an unnamed value).
        expected: Option<String>,
        /// What the view says.
        found: String,
    },
    /// The same wire key given twice (a SUIT parameter by name and by number).
    #[error("given twice")]
    Duplicate,
    /// The value breaks a CDDL rule of the message (the encoder's own check).
    #[error("{0}")]
    Invalid(Violation),
    /// Raw CBOR (an extension, an unknown SUIT parameter, `{"cbor": ..}`) that is not one
    /// well-formed item, or a message the encoder refused.
    #[error("{0}")]
    Proto(ProtoError),
    /// A COSE view that cannot be rebuilt without a key (no signature bytes, or headers
    /// beyond `alg` and `kid` that the view does not carry).
    #[error("{0}")]
    NotRebuildable(&'static str),
}

type Result<T> = core::result::Result<T, JsonError>;

/// The path of the view itself (`$`).
pub(crate) const ROOT: Path<'static> = Path::Root;

/// A JSON path under construction; cheap to extend, rendered only on error.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Self, &'a str),
    Index(&'a Self, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Self::Root => "$".to_owned(),
            Self::Key(parent, key) => format!("{}.{key}", parent.render()),
            Self::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }

    fn err<T>(&self, kind: JsonErrorKind) -> Result<T> {
        Err(JsonError {
            path: self.render(),
            kind,
        })
    }

    fn key<'a>(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    fn index(&self, i: usize) -> Path<'_> {
        Path::Index(self, i)
    }
}

/// An object being read: each key is taken once; [`Obj::finish`] refuses what is left.
struct Obj<'j, 'p> {
    map: BTreeMap<&'j str, &'j Json>,
    path: &'p Path<'p>,
}

impl<'j, 'p> Obj<'j, 'p> {
    fn new(value: &'j Json, path: &'p Path<'p>) -> Result<Self> {
        let Json::Object(map) = value else {
            return path.err(JsonErrorKind::Expected("an object"));
        };
        Ok(Self {
            map: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            path,
        })
    }

    fn take(&mut self, key: &str) -> Option<&'j Json> {
        self.map.remove(key)
    }

    /// The value of `key` read by `f`, if present.
    fn opt<T>(
        &mut self,
        key: &'static str,
        f: impl FnOnce(&'j Json, &Path<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.take(key) {
            Some(v) => f(v, &self.path.key(key)).map(Some),
            None => Ok(None),
        }
    }

    /// The value of `key` read by `f`; absent is [`JsonErrorKind::Missing`].
    fn req<T>(
        &mut self,
        key: &'static str,
        f: impl FnOnce(&'j Json, &Path<'_>) -> Result<T>,
    ) -> Result<T> {
        self.opt(key, f)?
            .map_or_else(|| self.path.err(JsonErrorKind::Missing(key)), Ok)
    }

    /// An option of the message, read as `f` reads its value.
    fn field<T>(
        &mut self,
        field: Field,
        f: impl FnOnce(&'j Json, &Path<'_>, Field) -> Result<T>,
    ) -> Result<Option<T>> {
        self.opt(field.name(), |v, p| f(v, p, field))
    }

    /// A positional element of the message (always present in the view).
    fn positional<T>(
        &mut self,
        field: Field,
        f: impl FnOnce(&'j Json, &Path<'_>, Field) -> Result<T>,
    ) -> Result<T> {
        self.req(field.name(), |v, p| f(v, p, field))
    }

    /// The keys that report a check (`teep inspect --trust`), not bytes.
    fn skip_report(&mut self) {
        for key in ["verified", "verified-with", "reason"] {
            self.take(key);
        }
    }

    fn finish(self) -> Result<()> {
        match self.map.into_keys().next() {
            Some(key) => self
                .path
                .key(key)
                .err(JsonErrorKind::UnknownKey(key.to_owned())),
            None => Ok(()),
        }
    }
}

fn array<'j>(v: &'j Json, path: &Path<'_>) -> Result<&'j [Json]> {
    v.as_array()
        .map(Vec::as_slice)
        .map_or_else(|| path.err(JsonErrorKind::Expected("an array")), Ok)
}

/// Each element of an array read by `f`, with its index in the path.
fn list<T>(
    v: &Json,
    path: &Path<'_>,
    mut f: impl FnMut(&Json, &Path<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    array(v, path)?
        .iter()
        .enumerate()
        .map(|(i, item)| f(item, &path.index(i)))
        .collect()
}

fn string<'j>(v: &'j Json, path: &Path<'_>) -> Result<&'j str> {
    v.as_str()
        .map_or_else(|| path.err(JsonErrorKind::Expected("a string")), Ok)
}

fn uint(v: &Json, path: &Path<'_>) -> Result<u64> {
    match v {
        Json::Number(n) => n
            .as_u64()
            .map_or_else(|| path.err(JsonErrorKind::OutOfRange), Ok),
        _ => path.err(JsonErrorKind::Expected("an unsigned integer")),
    }
}

fn int(v: &Json, path: &Path<'_>) -> Result<i64> {
    match v {
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| path.err(JsonErrorKind::OutOfRange), Ok),
        _ => path.err(JsonErrorKind::Expected("an integer")),
    }
}

fn u32_of(v: &Json, path: &Path<'_>) -> Result<u32> {
    u32::try_from(uint(v, path)?).or_else(|_| path.err(JsonErrorKind::OutOfRange))
}

fn boolean(v: &Json, path: &Path<'_>) -> Result<bool> {
    v.as_bool()
        .map_or_else(|| path.err(JsonErrorKind::Expected("true or false")), Ok)
}

fn hex_bytes(v: &Json, path: &Path<'_>) -> Result<Vec<u8>> {
    hex::decode(string(v, path)?).or_else(|_| path.err(JsonErrorKind::Hex))
}

/// The `.size` range of `field`, checked where the value is, so the path points at it.
fn sized(field: Field, len: usize, path: &Path<'_>) -> Result<()> {
    crate::validate::size(field, len).or_else(|v| path.err(JsonErrorKind::Invalid(v)))
}

fn bytes_field(v: &Json, path: &Path<'_>, field: Field) -> Result<Vec<u8>> {
    let b = hex_bytes(v, path)?;
    sized(field, b.len(), path)?;
    Ok(b)
}

fn text_field(v: &Json, path: &Path<'_>, field: Field) -> Result<String> {
    let s = string(v, path)?;
    sized(field, s.len(), path)?;
    Ok(s.to_owned())
}

/// Raw CBOR given as hex: exactly one well-formed item (the decoder's pre-pass).
fn raw_cbor(v: &Json, path: &Path<'_>) -> Result<RawCbor> {
    RawCbor::new(hex_bytes(v, path)?).or_else(|e| path.err(JsonErrorKind::Proto(e)))
}

/// The optional `name` beside a `value`: when given it must be the value's own name.
fn check_name(o: &mut Obj<'_, '_>, expected: Option<&str>) -> Result<()> {
    let Some(found) = o.take("name") else {
        return Ok(());
    };
    let path = o.path.key("name");
    let found = match found {
        Json::Null => None,
        other => Some(string(other, &path)?),
    };
    if found == expected {
        return Ok(());
    }
    path.err(JsonErrorKind::NameMismatch {
        expected: expected.map(ToOwned::to_owned),
        found: found.unwrap_or("null").to_owned(),
    })
}

fn freshness(v: &Json, path: &Path<'_>) -> Result<FreshnessMechanism> {
    let mut o = Obj::new(v, path)?;
    let f = FreshnessMechanism(o.req("value", uint)?);
    check_name(&mut o, f.name())?;
    o.finish()?;
    Ok(f)
}

fn profile(v: &Json, path: &Path<'_>) -> Result<SuitCoseProfile> {
    let mut o = Obj::new(v, path)?;
    let algs = o.req("value", |v, p| list(v, p, int))?;
    let Ok(algs) = <[i64; 4]>::try_from(algs) else {
        return path
            .key("value")
            .err(JsonErrorKind::Expected("an array of four integers"));
    };
    let p = SuitCoseProfile(algs);
    check_name(&mut o, p.name())?;
    o.finish()?;
    Ok(p)
}

fn cipher_suite(v: &Json, path: &Path<'_>) -> Result<CipherSuite> {
    let ops = list(v, path, |op, p| {
        let pair = array(op, p)?;
        let [cose_type, alg] = pair else {
            return p.err(JsonErrorKind::Expected("[cose-type, cose-alg]"));
        };
        Ok(CipherOperation {
            cose_type: uint(cose_type, &p.index(0))?,
            alg: int(alg, &p.index(1))?,
        })
    })?;
    Ok(CipherSuite::new(ops))
}

fn data_items(v: &Json, path: &Path<'_>) -> Result<DataItemRequested> {
    let mut o = Obj::new(v, path)?;
    let d = DataItemRequested(o.req("value", uint)?);
    if let Some(names) = o.take("names") {
        let p = path.key("names");
        let given = list(names, &p, |n, p| string(n, p).map(ToOwned::to_owned))?;
        let own: Vec<String> = DataItemRequested::NAMED
            .iter()
            .filter(|(bit, _)| d.contains(*bit))
            .map(|(_, name)| (*name).to_owned())
            .collect();
        if given != own {
            return p.err(JsonErrorKind::NameMismatch {
                expected: Some(own.join(",")),
                found: given.join(","),
            });
        }
    }
    o.finish()?;
    Ok(d)
}

fn err_code(v: &Json, path: &Path<'_>, numbering: Numbering) -> Result<ErrCode> {
    let mut o = Obj::new(v, path)?;
    let n = o.req("value", uint)?;
    let Some(code) = ErrCode::from_number(n, numbering) else {
        return path
            .key("value")
            .err(JsonErrorKind::Invalid(Violation::ReservedErrCode));
    };
    check_name(&mut o, code.name())?;
    o.finish()?;
    Ok(code)
}

fn component_id(v: &Json, path: &Path<'_>) -> Result<ComponentId> {
    list(v, path, hex_bytes).map(ComponentId)
}

fn bstr_list(v: &Json, path: &Path<'_>, _: Field) -> Result<Vec<Vec<u8>>> {
    list(v, path, hex_bytes)
}

fn requested_tc_info(v: &Json, path: &Path<'_>) -> Result<RequestedTcInfo> {
    let mut o = Obj::new(v, path)?;
    let info = RequestedTcInfo {
        component_id: o.req(Field::ComponentId.name(), component_id)?,
        tc_manifest_sequence_number: o.opt(Field::TcManifestSequenceNumber.name(), uint)?,
        have_binary: o.opt(Field::HaveBinary.name(), boolean)?,
    };
    o.finish()?;
    crate::validate::requested_tc_info(&info).or_else(|e| path.err(JsonErrorKind::Invalid(e)))?;
    Ok(info)
}

/// The named SUIT parameters of a tc-list entry and how the view decodes each.
#[derive(Clone, Copy)]
enum ParamKind {
    VendorId,
    Uuid,
    Digest,
    Uint,
    Bool,
    Bytes,
    Text,
}

const SUIT_PARAMETERS: [(i64, &str, ParamKind); 13] = [
    (1, "vendor-identifier", ParamKind::VendorId),
    (2, "class-identifier", ParamKind::Uuid),
    (3, "image-digest", ParamKind::Digest),
    (5, "component-slot", ParamKind::Uint),
    (12, "strict-order", ParamKind::Bool),
    (13, "soft-failure", ParamKind::Bool),
    (14, "image-size", ParamKind::Uint),
    (18, "content", ParamKind::Bytes),
    (21, "uri", ParamKind::Text),
    (22, "source-component", ParamKind::Uint),
    (23, "invoke-args", ParamKind::Bytes),
    (24, "device-identifier", ParamKind::Uuid),
    (25, "fetch-arguments", ParamKind::Bytes),
];

/// The view's name of SUIT parameter `key`, if it has one.
pub(crate) fn suit_parameter_name(key: i64) -> Option<&'static str> {
    SUIT_PARAMETERS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, name, _)| *name)
}

type Enc = minicbor::Encoder<Vec<u8>>;
type Wrote = core::result::Result<(), minicbor::encode::Error<core::convert::Infallible>>;

/// One CBOR item written by `f` into a vector (which cannot fail to take bytes; were the
/// encoder ever to fail, the empty result is refused by `RawCbor::new` as a typed error).
fn cbor(f: impl FnOnce(&mut Enc) -> Wrote) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    f(&mut e).map(|()| e.into_writer()).unwrap_or_default()
}

/// `RFC4122_UUID` as `8-4-4-4-12` hex digits, or any other length as plain hex.
fn uuid_or_hex(v: &Json, path: &Path<'_>) -> Result<Vec<u8>> {
    let s = string(v, path)?;
    let dashed = s.len() == 36
        && s.char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
    let digits: String = if dashed {
        s.chars().filter(|c| *c != '-').collect()
    } else {
        s.to_owned()
    };
    hex::decode(digits).or_else(|_| path.err(JsonErrorKind::Hex))
}

/// The CBOR of SUIT parameter `key` from the view's value: the inverse of the view's
/// `suit_parameter`, which shows a parameter decoded only when this gives back its bytes.
pub(crate) fn suit_parameter(key: i64, v: &Json, path: &Path<'_>) -> Result<RawCbor> {
    let kind = SUIT_PARAMETERS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, _, kind)| *kind);
    // Unknown keys, and values the view could not decode, are the hex of their CBOR.
    let raw = match (kind, v) {
        (None, _) => return raw_cbor(v, path),
        (Some(_), Json::Object(o)) if o.contains_key("cbor") => {
            let mut o = Obj::new(v, path)?;
            let raw = o.req("cbor", raw_cbor)?;
            o.finish()?;
            return Ok(raw);
        }
        (Some(kind), _) => kind,
    };
    let bytes = match raw {
        ParamKind::VendorId => match v {
            Json::Object(_) => {
                let mut o = Obj::new(v, path)?;
                let pen = o.req("cbor-pen", hex_bytes)?;
                o.finish()?;
                cbor(|e| e.tag(minicbor::data::Tag::new(112))?.bytes(&pen).map(drop))
            }
            _ => {
                let b = uuid_or_hex(v, path)?;
                cbor(|e| e.bytes(&b).map(drop))
            }
        },
        ParamKind::Uuid => {
            let b = uuid_or_hex(v, path)?;
            cbor(|e| e.bytes(&b).map(drop))
        }
        ParamKind::Digest => {
            let mut o = Obj::new(v, path)?;
            let alg = o.req("algorithm-id", int)?;
            let digest = o.req("digest-bytes", hex_bytes)?;
            o.finish()?;
            let inner = cbor(|e| e.array(2)?.i64(alg)?.bytes(&digest).map(drop));
            cbor(|e| e.bytes(&inner).map(drop))
        }
        ParamKind::Uint => {
            let n = uint(v, path)?;
            cbor(|e| e.u64(n).map(drop))
        }
        ParamKind::Bool => {
            let b = boolean(v, path)?;
            cbor(|e| e.bool(b).map(drop))
        }
        ParamKind::Bytes => {
            let b = hex_bytes(v, path)?;
            cbor(|e| e.bytes(&b).map(drop))
        }
        ParamKind::Text => {
            let s = string(v, path)?;
            cbor(|e| e.str(s).map(drop))
        }
    };
    RawCbor::new(bytes).or_else(|e| path.err(JsonErrorKind::Proto(e)))
}

/// An integer written the way the view writes map keys (`"-257"`, never `"+1"` or `"01"`).
fn canonical_int<T: core::str::FromStr + ToString>(key: &str) -> Option<T> {
    key.parse::<T>().ok().filter(|n| n.to_string() == key)
}

fn claims(v: &Json, path: &Path<'_>) -> Result<SystemPropertyClaims> {
    let Json::Object(map) = v else {
        return path.err(JsonErrorKind::Expected("an object"));
    };
    let mut component = None;
    let mut parameters = BTreeMap::new();
    for (key, value) in map {
        let p = path.key(key);
        if key == Field::SystemComponentId.name() {
            component = Some(component_id(value, &p)?);
            continue;
        }
        let number = SUIT_PARAMETERS
            .iter()
            .find(|(_, name, _)| name == key)
            .map(|(k, _, _)| *k)
            .or_else(|| canonical_int::<i64>(key).filter(|k| suit_parameter_name(*k).is_none()));
        let Some(number) = number else {
            return p.err(JsonErrorKind::UnknownKey(key.clone()));
        };
        if number == 0 {
            return p.err(JsonErrorKind::Invalid(Violation::ParameterKeyZero));
        }
        let raw = suit_parameter(number, value, &p)?;
        if parameters.insert(number, raw).is_some() {
            return p.err(JsonErrorKind::Duplicate);
        }
    }
    let Some(component_id) = component else {
        return path.err(JsonErrorKind::Missing(Field::SystemComponentId.name()));
    };
    let claims = SystemPropertyClaims {
        component_id,
        parameters,
    };
    crate::validate::claims(&claims).or_else(|e| path.err(JsonErrorKind::Invalid(e)))?;
    Ok(claims)
}

fn extensions(v: &Json, path: &Path<'_>) -> Result<Extensions> {
    let Json::Object(map) = v else {
        return path.err(JsonErrorKind::Expected("an object"));
    };
    map.iter()
        .map(|(key, value)| {
            let p = path.key(key);
            let Some(label) = canonical_int::<u64>(key) else {
                return p.err(JsonErrorKind::Expected("an unsigned integer label"));
            };
            Ok((label, raw_cbor(value, &p)?))
        })
        .collect()
}

fn freshness_list(v: &Json, p: &Path<'_>, _: Field) -> Result<Vec<FreshnessMechanism>> {
    list(v, p, freshness)
}

fn versions(v: &Json, p: &Path<'_>, _: Field) -> Result<Vec<u32>> {
    list(v, p, u32_of)
}

fn cipher_suites(v: &Json, p: &Path<'_>, _: Field) -> Result<Vec<CipherSuite>> {
    list(v, p, cipher_suite)
}

fn profiles(v: &Json, p: &Path<'_>, _: Field) -> Result<Vec<SuitCoseProfile>> {
    list(v, p, profile)
}

fn component_ids(v: &Json, p: &Path<'_>, _: Field) -> Result<Vec<ComponentId>> {
    list(v, p, component_id)
}

fn message_body(o: &mut Obj<'_, '_>, ty: MessageType, n: Numbering) -> Result<Message> {
    use Field as F;
    Ok(match ty {
        MessageType::QueryRequest => Message::QueryRequest(QueryRequest {
            token: o.field(F::Token, bytes_field)?,
            supported_freshness_mechanisms: o
                .field(F::SupportedFreshnessMechanisms, freshness_list)?,
            challenge: o.field(F::Challenge, bytes_field)?,
            versions: o.field(F::Versions, versions)?,
            attestation_payload_format: o.field(F::AttestationPayloadFormat, text_field)?,
            attestation_payload: o.field(F::AttestationPayload, bytes_field)?,
            suit_reports: o.field(F::SuitReports, bstr_list)?,
            extensions: o.opt("extensions", extensions)?.unwrap_or_default(),
            supported_teep_cipher_suites: o
                .positional(F::SupportedTeepCipherSuites, cipher_suites)?,
            supported_suit_cose_profiles: o.positional(F::SupportedSuitCoseProfiles, profiles)?,
            data_item_requested: o.positional(F::DataItemRequested, |v, p, _| data_items(v, p))?,
        }),
        MessageType::QueryResponse => Message::QueryResponse(QueryResponse {
            token: o.field(F::Token, bytes_field)?,
            selected_version: o.field(F::SelectedVersion, |v, p, _| u32_of(v, p))?,
            attestation_payload_format: o.field(F::AttestationPayloadFormat, text_field)?,
            attestation_payload: o.field(F::AttestationPayload, bytes_field)?,
            suit_reports: o.field(F::SuitReports, bstr_list)?,
            tc_list: o.field(F::TcList, |v, p, _| list(v, p, claims))?,
            requested_tc_list: o
                .field(F::RequestedTcList, |v, p, _| list(v, p, requested_tc_info))?,
            unneeded_manifest_list: o.field(F::UnneededManifestList, component_ids)?,
            ext_list: o.field(F::ExtList, versions)?,
            extensions: o.opt("extensions", extensions)?.unwrap_or_default(),
        }),
        MessageType::Update => Message::Update(Update {
            token: o.field(F::Token, bytes_field)?,
            unneeded_manifest_list: o.field(F::UnneededManifestList, component_ids)?,
            manifest_list: o.field(F::ManifestList, bstr_list)?,
            attestation_payload_format: o.field(F::AttestationPayloadFormat, text_field)?,
            attestation_payload: o.field(F::AttestationPayload, bytes_field)?,
            err_code: o.field(F::ErrCode, |v, p, _| err_code(v, p, n))?,
            err_msg: o.field(F::ErrMsg, text_field)?,
            err_lang: o.field(F::ErrLang, text_field)?,
            extensions: o.opt("extensions", extensions)?.unwrap_or_default(),
        }),
        MessageType::Success => Message::Success(Success {
            token: o.field(F::Token, bytes_field)?,
            msg: o.field(F::Msg, text_field)?,
            suit_reports: o.field(F::SuitReports, bstr_list)?,
            extensions: o.opt("extensions", extensions)?.unwrap_or_default(),
        }),
        MessageType::Error => Message::Error(ErrorMessage {
            token: o.field(F::Token, bytes_field)?,
            err_msg: o.field(F::ErrMsg, text_field)?,
            err_lang: o.field(F::ErrLang, text_field)?,
            supported_teep_cipher_suites: o.field(F::SupportedTeepCipherSuites, cipher_suites)?,
            supported_freshness_mechanisms: o
                .field(F::SupportedFreshnessMechanisms, freshness_list)?,
            supported_suit_cose_profiles: o.field(F::SupportedSuitCoseProfiles, profiles)?,
            challenge: o.field(F::Challenge, bytes_field)?,
            versions: o.field(F::Versions, versions)?,
            suit_reports: o.field(F::SuitReports, bstr_list)?,
            extensions: o.opt("extensions", extensions)?.unwrap_or_default(),
            err_code: o.positional(F::ErrCode, |v, p, _| err_code(v, p, n))?,
        }),
    })
}

fn message_at(view: &Json, path: &Path<'_>, numbering: Numbering) -> Result<Message> {
    let mut o = Obj::new(view, path)?;
    let ty = o.req("type", |v, p| {
        let name = string(v, p)?;
        MessageType::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .map_or_else(|| p.err(JsonErrorKind::UnknownType(name.to_owned())), Ok)
    })?;
    let message = message_body(&mut o, ty, numbering)?;
    o.skip_report();
    o.finish()?;
    // The encoder's CDDL pass: whatever it refuses (an empty list, a taken extension
    // label, an unknown err-code that is a known one) is refused here, at the message.
    match message.encode(numbering) {
        Ok(_) => Ok(message),
        Err(ProtoError::Invalid(v)) => path.err(JsonErrorKind::Invalid(v)),
        Err(e) => path.err(JsonErrorKind::Proto(e)),
    }
}

/// The message a [`super::to_json`] view describes, in `numbering` (the numbering the view
/// was made in: err-codes and extension labels are numbers of that numbering).
pub fn from_json(view: &Json, numbering: Numbering) -> Result<Message> {
    message_at(view, &Path::Root, numbering)
}

/// One signature of a COSE view: what the view carries of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureJson {
    /// `protected.alg`, if the view has one.
    pub alg: Option<i64>,
    /// `kid` (unprotected), if any.
    pub kid: Option<Vec<u8>>,
    /// The signature bytes, if the view carries them.
    pub signature: Option<Vec<u8>>,
}

/// A [`super::cose_view`] read back: the envelope as the view shows it and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoseJson {
    /// COSE_Sign1 or COSE_Sign.
    pub structure: CoseStructure,
    /// Whether the tag (18 / 98) is written.
    pub tagged: bool,
    /// One per signature (exactly one for COSE_Sign1).
    pub signatures: Vec<SignatureJson>,
    /// The view says the headers hold more than `alg` and `kid` (`"other-headers":
    /// true`): they are not in the view, so the envelope cannot be rebuilt from it.
    pub other_headers: bool,
    /// The message in the payload.
    pub payload: Message,
}

/// What a JSON view describes: a bare message or a COSE-wrapped one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    /// A [`super::to_json`] view.
    Bare(Message),
    /// A [`super::cose_view`] view with a TEEP payload.
    Cose(CoseJson),
}

impl View {
    /// The message, wrapped or not.
    pub const fn message(&self) -> &Message {
        match self {
            Self::Bare(m) => m,
            Self::Cose(c) => &c.payload,
        }
    }
}

fn signature_fields(o: &mut Obj<'_, '_>) -> Result<SignatureJson> {
    let alg = o.opt("protected", |v, p| {
        let mut h = Obj::new(v, p)?;
        let alg = h.opt("alg", |v, p| match v {
            Json::Null => Ok(None),
            other => int(other, p).map(Some),
        })?;
        h.finish()?;
        Ok(alg.flatten())
    })?;
    Ok(SignatureJson {
        alg: alg.flatten(),
        kid: o.opt("kid", hex_bytes)?,
        signature: o.opt("signature", hex_bytes)?,
    })
}

/// Reads a view as `teep inspect` prints it for a TEEP message: [`super::to_json`] or
/// [`super::cose_view`] around it (a view is COSE when it has a `"cose"` key).
pub fn view_from_json(view: &Json, numbering: Numbering) -> Result<View> {
    let root = Path::Root;
    if !matches!(view, Json::Object(m) if m.contains_key("cose")) {
        return message_at(view, &root, numbering).map(View::Bare);
    }
    let mut o = Obj::new(view, &root)?;
    let structure = o.req("cose", |v, p| match string(v, p)? {
        "COSE_Sign1" => Ok(CoseStructure::Sign1),
        "COSE_Sign" => Ok(CoseStructure::Sign),
        _ => p.err(JsonErrorKind::Expected("\"COSE_Sign1\" or \"COSE_Sign\"")),
    })?;
    let tagged = o.req("tagged", boolean)?;
    let other_headers = o.opt("other-headers", boolean)?.unwrap_or(false);
    o.skip_report();
    let signatures = match structure {
        CoseStructure::Sign1 => alloc::vec![signature_fields(&mut o)?],
        CoseStructure::Sign => o.req("signatures", |v, p| {
            list(v, p, |s, p| {
                let mut so = Obj::new(s, p)?;
                let sig = signature_fields(&mut so)?;
                so.finish()?;
                Ok(sig)
            })
        })?,
    };
    let payload = o.req("payload", |v, p| message_at(v, p, numbering))?;
    o.finish()?;
    Ok(View::Cose(CoseJson {
        structure,
        tagged,
        signatures,
        other_headers,
        payload,
    }))
}

impl CoseJson {
    /// The COSE structure rebuilt from the view, without a key: `alg` protected, `kid`
    /// unprotected, the signature bytes as given, the message encoded in `numbering`. Gives
    /// back the original bytes for any envelope whose headers are exactly those (what
    /// [`crate::sign_message`] makes); refuses a view without signature bytes or with
    /// `"other-headers": true`. The signature is not checked: an edited payload gives an
    /// envelope that will not verify (which is what a test of a receiver may want).
    pub fn to_cbor(&self, numbering: Numbering) -> Result<Vec<u8>> {
        let root = Path::Root;
        let payload = self
            .payload
            .encode(numbering)
            .or_else(|e| root.key("payload").err(JsonErrorKind::Proto(e)))?;
        if self.other_headers {
            return root.err(JsonErrorKind::NotRebuildable(
                "the envelope has headers the view does not carry (\"other-headers\"); sign it with a key",
            ));
        }
        let mut parts = Vec::with_capacity(self.signatures.len());
        for sig in &self.signatures {
            let Some(signature) = sig.signature.clone() else {
                return root.err(JsonErrorKind::NotRebuildable(
                    "the view carries no signature bytes; sign it with a key",
                ));
            };
            let protected = ProtectedHeader {
                original_data: None,
                header: Header {
                    alg: sig.alg.map(|a| {
                        <coset::iana::Algorithm as coset::iana::EnumI64>::from_i64(a).map_or(
                            coset::RegisteredLabelWithPrivate::PrivateUse(a),
                            coset::RegisteredLabelWithPrivate::Assigned,
                        )
                    }),
                    ..Header::default()
                },
            };
            let unprotected = Header {
                key_id: sig.kid.clone().unwrap_or_default(),
                ..Header::default()
            };
            parts.push((protected, unprotected, signature));
        }
        let encoded = match self.structure {
            CoseStructure::Sign1 => {
                let Some((protected, unprotected, signature)) = parts.pop() else {
                    return root.err(JsonErrorKind::Missing("signature"));
                };
                let s = coset::CoseSign1 {
                    protected,
                    unprotected,
                    payload: Some(payload),
                    signature,
                };
                if self.tagged {
                    s.to_tagged_vec()
                } else {
                    s.to_vec()
                }
            }
            CoseStructure::Sign => {
                let s = coset::CoseSign {
                    protected: ProtectedHeader::default(),
                    unprotected: Header::default(),
                    payload: Some(payload),
                    signatures: parts
                        .into_iter()
                        .map(|(protected, unprotected, signature)| CoseSignature {
                            protected,
                            unprotected,
                            signature,
                        })
                        .collect(),
                };
                if self.tagged {
                    s.to_tagged_vec()
                } else {
                    s.to_vec()
                }
            }
        };
        encoded.or_else(|e| {
            root.err(JsonErrorKind::Proto(ProtoError::Cose(
                teep_cose::CoseError::Malformed(e.to_string()),
            )))
        })
    }
}
