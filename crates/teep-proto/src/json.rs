//! A JSON view of TEEP messages for people (`teep inspect`), not a wire format.
//!
//! Keys are the CDDL names: `"type"` is the message's rule name (`"query-request"`, ...),
//! every other key the field name (`"token"`, `"tc-list"`, ...). Byte strings are
//! lowercase hex; err-code shows number and name; data-item-requested shows its value
//! and the names of its bits; SUIT parameters in tc-list are decoded by name (UUIDs as UUID
//! strings, digests, sizes); values TEEP keeps raw and cannot name (extensions, unknown
//! parameters) are the hex of their CBOR encoding. Numbers that differ between numberings
//! (err-code, the labels of extensions) are shown in the numbering given.
//!
//! The view is two-way: [`from_json`] / [`view_from_json`] read it back into the message
//! (and [`CoseJson::to_cbor`] into the envelope), byte for byte for what our encoder
//! writes. To keep it so, a SUIT parameter is shown decoded only when the decoded value
//! encodes back to its exact bytes; otherwise (a wrong type, a non-preferred encoding, an
//! unwrapped digest) it is `{"cbor": hex}`. A COSE view carries each signature's bytes
//! and says `"other-headers": true` when the headers hold more than `alg` and `kid`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use minicbor::Decoder;
use minicbor::data::{Tag, Type};
use serde_json::{Map, Value as Json, json};

#[path = "json_decode.rs"]
mod decode;

pub use decode::{
    CoseJson, JsonError, JsonErrorKind, SignatureJson, View, from_json, view_from_json,
};

use crate::cose::UnverifiedCose;
use crate::numbering::{Field, Numbering};
use crate::parts::Value;
use crate::types::{ComponentId, Extensions, Message, RawCbor, SystemPropertyClaims};

/// The JSON view of `message`, with numbers as in `numbering`.
pub fn to_json(message: &Message, numbering: Numbering) -> Json {
    view(message, numbering, None)
}

/// `shorten(to_json(message, numbering), limit)`, made without writing in hex what
/// [`shorten`] would cut: the view a log keeps. The hex of an Update's 64 KiB TC was
/// written whole, to be cut to its first 2048 digits, for every Update logged.
pub fn to_json_within(message: &Message, numbering: Numbering, limit: usize) -> Json {
    view(message, numbering, Some(limit))
}

/// Cuts every string of `view` longer than `limit` bytes to its first `limit` (back to a
/// character boundary) and says how long it was ([`cut`]), keeping the view's structure.
pub fn shorten(view: &mut Json, limit: usize) {
    match view {
        Json::String(text) if text.len() > limit => {
            let mut end = limit;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            *text = cut(text.get(..end).unwrap_or_default(), text.len());
        }
        Json::Array(items) => items.iter_mut().for_each(|v| shorten(v, limit)),
        Json::Object(members) => members.values_mut().for_each(|v| shorten(v, limit)),
        _ => {}
    }
}

/// How a string cut to its first characters `kept` reads in a view, `total` being the
/// length of the whole.
pub fn cut(kept: &str, total: usize) -> String {
    alloc::format!("{kept}… ({total} characters in all)")
}

/// The view of [`to_json`]; with `limit`, [`to_json_within`]'s: the byte strings of the
/// message's own fields are cut as their hex is written ([`value_json`]), everything else
/// by [`shorten`] once made.
fn view(message: &Message, numbering: Numbering, limit: Option<usize>) -> Json {
    let parts = message.parts();
    let mut obj = Map::new();
    let within = |mut json: Json| {
        if let Some(limit) = limit {
            shorten(&mut json, limit);
        }
        json
    };
    obj.insert("type".into(), within(message.message_type().name().into()));
    for (field, value) in parts.options.iter().chain(&parts.positional) {
        let json = value_json(*value, numbering, limit);
        let cut_already = matches!(value, Value::Bytes(_) | Value::BstrList(_));
        let json = if cut_already { json } else { within(json) };
        obj.insert(field.name().into(), json);
    }
    if !parts.extensions.is_empty() {
        obj.insert("extensions".into(), within(raw_map(parts.extensions)));
    }
    Json::Object(obj)
}

/// Whether a COSE signature was checked, and how it went: the `"verified"` entry of
/// [`cose_view`]. `true` only when a signature verified under a key the caller trusts.
#[derive(Clone, Copy, Debug)]
pub enum SignatureCheck<'a> {
    /// No trust key was given: `"verified": null`.
    NotChecked,
    /// `"verified": true, "verified-with": {"key": .., "thumbprint-sha256": .., "alg": ..}`:
    /// `key` is the caller's name for the key (a file path), `signer` the key itself, `alg`
    /// the algorithm of the signature that verified.
    Verified {
        /// The caller's name for the key, if it has one.
        key: Option<&'a str>,
        /// The key the signature verified with.
        signer: &'a teep_cose::PublicKey,
        /// COSE algorithm of the signature that verified.
        alg: i64,
    },
    /// `"verified": false, "reason": ..`.
    Failed(&'a str),
}

/// The view of a COSE_Sign1 / COSE_Sign around any `payload` view (a TEEP message's
/// [`to_json`], an EAR, generic CBOR): `{"cose": "COSE_Sign1", "tagged": true,
/// "verified": .., "protected": {"alg": -9}, "kid": "..", "payload": {...}}`; a COSE_Sign
/// lists `"signatures"` (each with `protected` and `kid`) instead. `"verified"` is as
/// `check` says ([`SignatureCheck`]).
pub fn cose_view(cose: &UnverifiedCose, check: &SignatureCheck<'_>, payload: Json) -> Json {
    let signature = |s: &crate::cose::UnverifiedSignature| {
        let mut o = Map::new();
        o.insert("protected".into(), json!({ "alg": s.alg }));
        if let Some(kid) = &s.kid {
            o.insert("kid".into(), to_hex(kid).into());
        }
        o.insert("signature".into(), to_hex(&s.signature).into());
        o
    };
    let mut obj = Map::new();
    obj.insert("cose".into(), cose.structure.name().into());
    obj.insert("tagged".into(), cose.tagged.into());
    if cose.other_headers {
        obj.insert("other-headers".into(), true.into());
    }
    match check {
        SignatureCheck::NotChecked => {
            obj.insert("verified".into(), Json::Null);
        }
        SignatureCheck::Verified { key, signer, alg } => {
            obj.insert("verified".into(), true.into());
            obj.insert(
                "verified-with".into(),
                json!({
                    "key": key,
                    "thumbprint-sha256": to_hex(signer.thumbprint()),
                    "alg": alg,
                }),
            );
        }
        SignatureCheck::Failed(reason) => {
            obj.insert("verified".into(), false.into());
            obj.insert("reason".into(), (*reason).into());
        }
    }
    match cose.structure {
        crate::cose::CoseStructure::Sign1 => {
            for s in &cose.signatures {
                obj.extend(signature(s));
            }
        }
        crate::cose::CoseStructure::Sign => {
            let sigs: Vec<Json> = cose
                .signatures
                .iter()
                .map(|s| signature(s).into())
                .collect();
            obj.insert("signatures".into(), sigs.into());
        }
    }
    obj.insert("payload".into(), payload);
    Json::Object(obj)
}

/// Lowercase hex of `bytes`, written into a buffer of its final size: `hex::encode`
/// collects an iterator of chars one push at a time, several times slower on the view of
/// an Update carrying a TC (the TAM's message log makes one per exchange).
pub(crate) fn to_hex(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = alloc::vec![0; bytes.len() * 2];
    // Cannot fail: `out` is twice as long as `bytes`, and hex digits are ASCII.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn hex_list(items: &[Vec<u8>]) -> Json {
    items.iter().map(to_hex).collect::<Vec<String>>().into()
}

/// The hex of `bytes`, or with `limit` and more than `limit` hex digits, the first
/// `limit` of them and [`cut`]'s note (only the bytes kept are written in hex).
fn hex_within(bytes: &[u8], limit: Option<usize>) -> String {
    let total = bytes.len().saturating_mul(2);
    match limit {
        Some(limit) if total > limit => {
            let mut kept = to_hex(bytes.get(..limit.div_ceil(2)).unwrap_or(bytes));
            kept.truncate(limit);
            cut(&kept, total)
        }
        _ => to_hex(bytes),
    }
}

fn component_id(id: &ComponentId) -> Json {
    hex_list(&id.0)
}

fn raw_map(ext: &Extensions) -> Json {
    ext.iter()
        .map(|(label, raw)| (label.to_string(), Json::from(to_hex(raw.as_bytes()))))
        .collect::<Map<String, Json>>()
        .into()
}

fn claims(c: &SystemPropertyClaims) -> Json {
    let mut o = Map::new();
    o.insert(
        Field::SystemComponentId.name().into(),
        component_id(&c.component_id),
    );
    for (key, raw) in &c.parameters {
        let (name, value) = suit_parameter(*key, raw);
        o.insert(name, value);
    }
    o.into()
}

/// A SUIT parameter of a tc-list entry (draft-ietf-suit-manifest §8.4.8): known keys by
/// name with their value decoded (UUIDs as UUID strings, the digest as the SUIT view shows
/// it, sizes as numbers); unknown keys by number with the hex of their CBOR. A known key
/// whose decoded value would not encode back to the same bytes (a wrong type, a
/// non-preferred head, an unwrapped digest) is `{"cbor": hex}`, so the view stays two-way.
fn suit_parameter(key: i64, raw: &RawCbor) -> (String, Json) {
    let (name, value) = suit_parameter_decoded(key, raw);
    if decode::suit_parameter_name(key).is_none() {
        return (name, value);
    }
    let exact = decode::suit_parameter(key, &value, &decode::ROOT)
        .is_ok_and(|back| back.as_bytes() == raw.as_bytes());
    if exact {
        (name, value)
    } else {
        (name, json!({ "cbor": to_hex(raw.as_bytes()) }))
    }
}

fn suit_parameter_decoded(key: i64, raw: &RawCbor) -> (String, Json) {
    let bytes = raw.as_bytes();
    let (name, value) = match key {
        1 => ("vendor-identifier", vendor_id(bytes)),
        2 => ("class-identifier", read_bstr(bytes).map(uuid)),
        3 => ("image-digest", digest(bytes)),
        5 => ("component-slot", read_uint(bytes)),
        12 => ("strict-order", read_bool(bytes)),
        13 => ("soft-failure", read_bool(bytes)),
        14 => ("image-size", read_uint(bytes)),
        18 => ("content", read_bstr(bytes).map(|b| to_hex(b).into())),
        21 => ("uri", Decoder::new(bytes).str().ok().map(Json::from)),
        22 => ("source-component", read_uint(bytes)),
        23 => ("invoke-args", read_bstr(bytes).map(|b| to_hex(b).into())),
        24 => ("device-identifier", read_bstr(bytes).map(uuid)),
        25 => (
            "fetch-arguments",
            read_bstr(bytes).map(|b| to_hex(b).into()),
        ),
        _ => return (key.to_string(), to_hex(bytes).into()),
    };
    let value = value.unwrap_or_else(|| to_hex(bytes).into());
    (name.into(), value)
}

fn read_bstr(bytes: &[u8]) -> Option<&[u8]> {
    Decoder::new(bytes).bytes().ok()
}

fn read_uint(bytes: &[u8]) -> Option<Json> {
    Decoder::new(bytes).u64().ok().map(Json::from)
}

fn read_bool(bytes: &[u8]) -> Option<Json> {
    Decoder::new(bytes).bool().ok().map(Json::from)
}

/// `RFC4122_UUID = bstr .size 16` as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`; an id of
/// another length as plain hex.
fn uuid(b: &[u8]) -> Json {
    let h = to_hex(b);
    if b.len() != 16 {
        return h.into();
    }
    let part = |r: core::ops::Range<usize>| h.get(r).unwrap_or_default();
    let text = alloc::format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    );
    text.into()
}

/// A UUID, or a CBOR PEN (`#6.112(bstr)`).
fn vendor_id(bytes: &[u8]) -> Option<Json> {
    let mut d = Decoder::new(bytes);
    if d.datatype().ok()? == Type::Tag {
        (d.tag().ok()? == Tag::new(112)).then_some(())?;
        return Some(json!({ "cbor-pen": to_hex(d.bytes().ok()?) }));
    }
    d.bytes().ok().map(uuid)
}

/// `bstr .cbor SUIT_Digest` (also accepted unwrapped): `[algorithm-id, digest-bytes]`.
fn digest(bytes: &[u8]) -> Option<Json> {
    let inner = read_bstr(bytes).unwrap_or(bytes);
    let mut d = Decoder::new(inner);
    (d.array().ok()? == Some(2)).then_some(())?;
    let alg = d.i64().ok()?;
    let value = d.bytes().ok()?;
    (d.position() == inner.len()).then_some(())?;
    Some(json!({ "algorithm-id": alg, "digest-bytes": to_hex(value) }))
}

/// The view of one field; with `limit`, a byte string (or each of a list) is cut to
/// `limit` hex digits as [`shorten`] would cut its whole hex.
fn value_json(value: Value<'_>, numbering: Numbering, limit: Option<usize>) -> Json {
    match value {
        Value::Bytes(b) => hex_within(b, limit).into(),
        Value::Text(s) => s.into(),
        Value::Uint(n) => n.into(),
        Value::Freshness(list) => list
            .iter()
            .map(|f| json!({ "value": f.0, "name": f.name() }))
            .collect(),
        Value::Versions(list) => list.iter().copied().collect(),
        Value::BstrList(list) => list
            .iter()
            .map(|b| Json::from(hex_within(b, limit)))
            .collect(),
        Value::CipherSuites(list) => list
            .iter()
            .map(|suite| {
                suite
                    .operations()
                    .iter()
                    .map(|op| json!([op.cose_type, op.alg]))
                    .collect::<Json>()
            })
            .collect(),
        Value::Profiles(list) => list
            .iter()
            .map(|p| json!({ "value": p.0, "name": p.name() }))
            .collect(),
        Value::DataItems(d) => {
            let names: Vec<&str> = crate::types::DataItemRequested::NAMED
                .iter()
                .filter(|(bit, _)| d.contains(*bit))
                .map(|(_, name)| *name)
                .collect();
            json!({ "value": d.0, "names": names })
        }
        Value::TcList(list) => list.iter().map(claims).collect(),
        Value::RequestedTcList(list) => list
            .iter()
            .map(|info| {
                let mut o = Map::new();
                o.insert(
                    Field::ComponentId.name().into(),
                    component_id(&info.component_id),
                );
                if let Some(n) = info.tc_manifest_sequence_number {
                    o.insert(Field::TcManifestSequenceNumber.name().into(), n.into());
                }
                if let Some(b) = info.have_binary {
                    o.insert(Field::HaveBinary.name().into(), b.into());
                }
                Json::Object(o)
            })
            .collect(),
        Value::ComponentIds(list) => list.iter().map(component_id).collect(),
        Value::ErrCode(code) => json!({ "value": code.number(numbering), "name": code.name() }),
    }
}
