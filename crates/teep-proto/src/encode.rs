//! Encoding: preferred serialization, definite lengths, and a fixed option order.
//!
//! The draft leaves the order of options free (the map is not required to be
//! deterministic). We emit `token` first and then the other labels in ascending order,
//! extensions included: that is the order of every example in the draft, in both
//! numberings, so the encoder reproduces each vector byte for byte, and the same message
//! always gives the same bytes. Raw values (SUIT parameters, extensions) are copied as
//! they were received or built.
//!
//! Two passes: [`check`] refuses, in output order, whatever breaks a CDDL rule the decoder
//! enforces; only then is anything written, with teep-cbor's counting containers
//! (`MapEncoder`, `ArrayEncoder`), so no length is counted by hand.

use alloc::vec::Vec;

use minicbor::Encoder;
use teep_cbor::write::{ArrayEncoder, EncodeError, MapEncoder, VecEncoder, raw};

use crate::error::{ProtoError, Violation};
use crate::numbering::{Field, Numbering};
use crate::parts::{Parts, Value};
use crate::types::{
    CipherSuite, ComponentId, Message, RawCbor, RequestedTcInfo, SuitCoseProfile,
    SystemPropertyClaims,
};
use crate::validate;

type Result<T> = core::result::Result<T, ProtoError>;
type Written = core::result::Result<(), EncodeError>;

impl Message {
    /// Encodes the bare TEEP message (the COSE payload) in `numbering`.
    ///
    /// Refuses (with [`ProtoError::Invalid`]) a message that breaks a CDDL rule the
    /// decoder enforces, so that `decode(encode(m)) == m` for every `m` it accepts.
    pub fn encode(&self, numbering: Numbering) -> Result<Vec<u8>> {
        let parts = self.parts();
        let options = options(&parts, numbering)?;
        check(&options, &parts.positional, numbering).map_err(ProtoError::Invalid)?;
        let w = Writer { numbering };
        let mut out = Vec::with_capacity(self.size_hint());
        w.message(&mut Encoder::new(&mut out), self, &options, &parts)?;
        Ok(out)
    }

    /// Rough output size, so that the output vector is allocated once in common cases.
    fn size_hint(&self) -> usize {
        match self {
            Self::Update(u) => u
                .manifest_list
                .as_ref()
                .map_or(0, |l| l.iter().map(|m| m.len() + 4).sum::<usize>())
                .saturating_add(96),
            _ => 128,
        }
    }
}

/// One entry of the options map: a field this message defines, or a kept extension.
enum Entry<'a> {
    Known(Field, Value<'a>),
    Raw(&'a RawCbor),
}

/// The label of a field the encoder writes as a map key. Only labelled fields reach here
/// (the option lists of `parts` and requested-tc-info); the fallback, a label no table
/// assigns, exists only so that no panic path is needed.
fn label(field: Field, numbering: Numbering) -> u64 {
    field.label(numbering).unwrap_or(u64::MAX)
}

/// The options map's entries in output order (`token` first, then ascending labels),
/// after refusing an extension that reuses a label this message type defines.
fn options<'a>(parts: &Parts<'a>, n: Numbering) -> Result<Vec<(u64, Entry<'a>)>> {
    for label in parts.extensions.keys() {
        if parts.defined.iter().any(|f| f.label(n) == Some(*label)) {
            return Err(ProtoError::Invalid(Violation::ExtensionLabelTaken(*label)));
        }
    }
    let token = Field::Token.label(n);
    let mut entries: Vec<(u64, Entry<'_>)> =
        Vec::with_capacity(parts.options.len() + parts.extensions.len());
    for (field, value) in &parts.options {
        entries.push((label(*field, n), Entry::Known(*field, *value)));
    }
    for (label, raw) in parts.extensions {
        entries.push((*label, Entry::Raw(raw)));
    }
    entries.sort_unstable_by_key(|(label, _)| (Some(*label) != token, *label));
    Ok(entries)
}

/// Every CDDL control of the message, in the order the values are written, so the first
/// one broken is reported.
fn check(
    options: &[(u64, Entry<'_>)],
    positional: &[(Field, Value<'_>)],
    n: Numbering,
) -> core::result::Result<(), Violation> {
    for (_, entry) in options {
        if let Entry::Known(field, value) = entry {
            check_value(*field, *value, n)?;
        }
    }
    positional
        .iter()
        .try_for_each(|(field, value)| check_value(*field, *value, n))
}

fn check_value(
    field: Field,
    value: Value<'_>,
    n: Numbering,
) -> core::result::Result<(), Violation> {
    let list = |len| validate::list_len(field, len);
    match value {
        Value::Bytes(b) => validate::size(field, b.len()),
        Value::Text(s) => validate::size(field, s.len()),
        Value::Uint(_) | Value::DataItems(_) => Ok(()),
        Value::Freshness(l) => list(l.len()),
        Value::Versions(l) => list(l.len()),
        Value::BstrList(l) => list(l.len()),
        Value::Profiles(l) => list(l.len()),
        Value::CipherSuites(l) => {
            list(l.len())?;
            l.iter()
                .try_for_each(|s| validate::list_len(Field::CipherSuite, s.operations().len()))
        }
        Value::TcList(l) => {
            list(l.len())?;
            l.iter().try_for_each(|c| {
                validate::claims(c)?;
                component_id_len(Field::SystemComponentId, &c.component_id)
            })
        }
        Value::RequestedTcList(l) => {
            list(l.len())?;
            l.iter().try_for_each(|info| {
                validate::requested_tc_info(info)?;
                component_id_len(Field::ComponentId, &info.component_id)
            })
        }
        Value::ComponentIds(l) => {
            list(l.len())?;
            l.iter()
                .try_for_each(|id| component_id_len(Field::ComponentId, id))
        }
        Value::ErrCode(code) => validate::err_code(code, n).map(drop),
    }
}

fn component_id_len(field: Field, id: &ComponentId) -> core::result::Result<(), Violation> {
    validate::list_len(field, id.0.len())
}

/// An array with one element per item of `items`, each written by `f`.
fn array<T>(
    e: &mut VecEncoder<'_>,
    items: impl IntoIterator<Item = T>,
    mut f: impl FnMut(&mut VecEncoder<'_>, T) -> Written,
) -> Written {
    ArrayEncoder::write_to(e, |a| {
        items
            .into_iter()
            .try_for_each(|item| a.item_with(|e| f(e, item)).map(drop))
    })
}

/// Writes a message [`check`] has accepted.
struct Writer {
    numbering: Numbering,
}

impl Writer {
    fn message(
        &self,
        e: &mut VecEncoder<'_>,
        m: &Message,
        options: &[(u64, Entry<'_>)],
        parts: &Parts<'_>,
    ) -> Written {
        ArrayEncoder::write_to(e, |a| {
            a.item(m.message_type().number(self.numbering))?;
            a.item_with(|e| self.options(e, options))?;
            for (_, value) in &parts.positional {
                a.item_with(|e| self.value(e, *value))?;
            }
            Ok(())
        })
    }

    fn options(&self, e: &mut VecEncoder<'_>, options: &[(u64, Entry<'_>)]) -> Written {
        MapEncoder::write_to(e, |map| {
            for (label, entry) in options {
                match entry {
                    Entry::Known(_, value) => map.entry_with(*label, |e| self.value(e, *value))?,
                    Entry::Raw(item) => map.entry_with(*label, |e| raw(e, item.as_bytes()))?,
                };
            }
            Ok(())
        })
    }

    fn value(&self, e: &mut VecEncoder<'_>, value: Value<'_>) -> Written {
        match value {
            Value::Bytes(b) => bytes(e, b),
            Value::Text(s) => Ok(e.str(s).map(drop)?),
            Value::Uint(u) | Value::DataItems(crate::types::DataItemRequested(u)) => {
                Ok(e.u64(u).map(drop)?)
            }
            Value::Freshness(l) => array(e, l, |e, f| Ok(e.u64(f.0).map(drop)?)),
            Value::Versions(l) => array(e, l, |e, v| Ok(e.u32(*v).map(drop)?)),
            Value::BstrList(l) => array(e, l, |e, b| bytes(e, b)),
            Value::CipherSuites(l) => array(e, l, cipher_suite),
            Value::Profiles(l) => array(e, l, profile),
            Value::TcList(l) => array(e, l, claims),
            Value::RequestedTcList(l) => array(e, l, |e, info| self.requested_tc_info(e, info)),
            Value::ComponentIds(l) => array(e, l, component_id),
            Value::ErrCode(code) => Ok(e.u64(code.number(self.numbering)).map(drop)?),
        }
    }

    /// requested-tc-info; its labels ascend in this order in both numberings.
    fn requested_tc_info(&self, e: &mut VecEncoder<'_>, info: &RequestedTcInfo) -> Written {
        let n = self.numbering;
        MapEncoder::write_to(e, |map| {
            map.entry_with(label(Field::ComponentId, n), |e| {
                component_id(e, &info.component_id)
            })?;
            if let Some(seq) = info.tc_manifest_sequence_number {
                map.entry(label(Field::TcManifestSequenceNumber, n), seq)?;
            }
            if let Some(have) = info.have_binary {
                map.entry(label(Field::HaveBinary, n), have)?;
            }
            Ok(())
        })
    }
}

fn bytes(e: &mut VecEncoder<'_>, b: &[u8]) -> Written {
    Ok(e.bytes(b).map(drop)?)
}

fn cipher_suite(e: &mut VecEncoder<'_>, suite: &CipherSuite) -> Written {
    array(e, suite.operations(), |e, op| {
        ArrayEncoder::write_to(e, |a| a.item(op.cose_type)?.item(op.alg).map(drop))
    })
}

fn profile(e: &mut VecEncoder<'_>, profile: &SuitCoseProfile) -> Written {
    array(e, &profile.0, |e, alg| Ok(e.i64(*alg).map(drop)?))
}

fn component_id(e: &mut VecEncoder<'_>, id: &ComponentId) -> Written {
    array(e, &id.0, |e, part| bytes(e, part))
}

/// system-property-claims: component id (key 0) and parameters in ascending key order.
fn claims(e: &mut VecEncoder<'_>, claims: &SystemPropertyClaims) -> Written {
    MapEncoder::write_to(e, |map| {
        for (key, value) in claims.parameters.range(..0) {
            map.entry_with(*key, |e| raw(e, value.as_bytes()))?;
        }
        map.entry_with(0, |e| component_id(e, &claims.component_id))?;
        for (key, value) in claims.parameters.range(1..) {
            map.entry_with(*key, |e| raw(e, value.as_bytes()))?;
        }
        Ok(())
    })
}
