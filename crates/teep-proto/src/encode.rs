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
use teep_cbor::write::{
    ArrayEncoder, ArrayKind, ContainerKind, Counted, EncodeError, MapEncoder, VecEncoder, raw,
};

use crate::error::{ProtoError, Violation};
use crate::numbering::{Field, Numbering};
use crate::parts::{Parts, Value};
use crate::types::{ComponentId, Message, RawCbor, RequestedTcInfo, SystemPropertyClaims};
use crate::validate;

type Result<T> = core::result::Result<T, ProtoError>;
type Written = core::result::Result<(), EncodeError>;

impl Message {
    /// Encodes the bare TEEP message (the COSE payload) in `numbering`.
    ///
    /// Refuses (with [`ProtoError::Invalid`]) a message that breaks a CDDL rule the
    /// decoder enforces, so that `decode(encode(m)) == m` for every `m` it accepts.
    pub fn encode(&self, numbering: Numbering) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size_hint());
        self.encode_into(numbering, &mut out)?;
        Ok(out)
    }

    /// [`Message::encode`] appending to `out` (on an error, `out` may hold part of it).
    pub fn encode_into(&self, numbering: Numbering, out: &mut Vec<u8>) -> Result<()> {
        let parts = self.parts();
        let options = options(&parts, numbering)?;
        check(&options, &parts.positional, numbering).map_err(ProtoError::Invalid)?;
        let w = Writer { numbering };
        w.message(&mut Encoder::new(out), self, &options, &parts)?;
        Ok(())
    }

    /// Rough output size, so that the output vector is allocated once in common cases.
    pub(crate) fn size_hint(&self) -> usize {
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

/// Where one value goes: the next element of an array, or the value of a map entry. A
/// nested array or map is added with `item_nested` / `entry_nested`, so no container is
/// read back after it is written.
trait Slot {
    fn scalar(self, write: impl FnOnce(&mut VecEncoder<'_>) -> Written) -> Written;
    fn nested<N: ContainerKind>(self, entries: impl FnOnce(&mut Counted<N>) -> Written) -> Written;
}

impl Slot for &mut ArrayEncoder {
    fn scalar(self, write: impl FnOnce(&mut VecEncoder<'_>) -> Written) -> Written {
        self.item_with(write).map(drop)
    }

    fn nested<N: ContainerKind>(self, entries: impl FnOnce(&mut Counted<N>) -> Written) -> Written {
        self.item_nested(entries).map(drop)
    }
}

/// The value of the entry `1` of map `0`.
struct Keyed<'m>(&'m mut MapEncoder, u64);

impl Slot for Keyed<'_> {
    fn scalar(self, write: impl FnOnce(&mut VecEncoder<'_>) -> Written) -> Written {
        self.0.entry_with(self.1, write).map(drop)
    }

    fn nested<N: ContainerKind>(self, entries: impl FnOnce(&mut Counted<N>) -> Written) -> Written {
        self.0.entry_nested(self.1, entries).map(drop)
    }
}

/// An array with one element per item of `items`, each added by `f`.
fn array<T>(
    slot: impl Slot,
    items: impl IntoIterator<Item = T>,
    mut f: impl FnMut(&mut ArrayEncoder, T) -> Written,
) -> Written {
    slot.nested(|a: &mut ArrayEncoder| items.into_iter().try_for_each(|item| f(a, item)))
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
            a.item_nested(|map| self.options(map, options))?;
            for (_, value) in &parts.positional {
                self.value(&mut *a, *value)?;
            }
            Ok(())
        })
    }

    fn options(&self, map: &mut MapEncoder, options: &[(u64, Entry<'_>)]) -> Written {
        for (label, entry) in options {
            match entry {
                Entry::Known(_, value) => self.value(Keyed(map, *label), *value)?,
                Entry::Raw(item) => {
                    map.entry_with(*label, |e| raw(e, item.as_bytes()))?;
                }
            }
        }
        Ok(())
    }

    fn value(&self, slot: impl Slot, value: Value<'_>) -> Written {
        match value {
            Value::Bytes(b) => slot.scalar(|e| bytes(e, b)),
            Value::Text(s) => slot.scalar(|e| Ok(e.str(s).map(drop)?)),
            Value::Uint(u) | Value::DataItems(crate::types::DataItemRequested(u)) => {
                slot.scalar(|e| Ok(e.u64(u).map(drop)?))
            }
            Value::Freshness(l) => array(slot, l, |a, f| a.item(f.0).map(drop)),
            Value::Versions(l) => array(slot, l, |a, v| a.item(*v).map(drop)),
            Value::BstrList(l) => array(slot, l, |a, b| a.item_with(|e| bytes(e, b)).map(drop)),
            Value::CipherSuites(l) => array(slot, l, |a, suite| {
                array(a, suite.operations(), |ops, op| {
                    ops.item_nested::<ArrayKind>(|pair| {
                        pair.item(op.cose_type)?.item(op.alg).map(drop)
                    })
                    .map(drop)
                })
            }),
            Value::Profiles(l) => array(slot, l, |a, profile| {
                array(a, &profile.0, |algs, alg| algs.item(*alg).map(drop))
            }),
            Value::TcList(l) => array(slot, l, |a, c| a.item_nested(|m| claims(m, c)).map(drop)),
            Value::RequestedTcList(l) => array(slot, l, |a, info| {
                a.item_nested(|m| self.requested_tc_info(m, info)).map(drop)
            }),
            Value::ComponentIds(l) => array(slot, l, |a, id| component_id(a, id)),
            Value::ErrCode(code) => {
                slot.scalar(|e| Ok(e.u64(code.number(self.numbering)).map(drop)?))
            }
        }
    }

    /// requested-tc-info; its labels ascend in this order in both numberings.
    fn requested_tc_info(&self, map: &mut MapEncoder, info: &RequestedTcInfo) -> Written {
        let n = self.numbering;
        component_id(
            Keyed(&mut *map, label(Field::ComponentId, n)),
            &info.component_id,
        )?;
        if let Some(seq) = info.tc_manifest_sequence_number {
            map.entry(label(Field::TcManifestSequenceNumber, n), seq)?;
        }
        if let Some(have) = info.have_binary {
            map.entry(label(Field::HaveBinary, n), have)?;
        }
        Ok(())
    }
}

fn bytes(e: &mut VecEncoder<'_>, b: &[u8]) -> Written {
    Ok(e.bytes(b).map(drop)?)
}

fn component_id(slot: impl Slot, id: &ComponentId) -> Written {
    array(slot, &id.0, |a, part| {
        a.item_with(|e| bytes(e, part)).map(drop)
    })
}

/// system-property-claims: component id (key 0) and parameters in ascending key order.
fn claims(map: &mut MapEncoder, claims: &SystemPropertyClaims) -> Written {
    for (key, value) in claims.parameters.range(..0) {
        map.entry_with(*key, |e| raw(e, value.as_bytes()))?;
    }
    component_id(Keyed(&mut *map, 0), &claims.component_id)?;
    for (key, value) in claims.parameters.range(1..) {
        map.entry_with(*key, |e| raw(e, value.as_bytes()))?;
    }
    Ok(())
}
