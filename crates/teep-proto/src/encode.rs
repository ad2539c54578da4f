//! Encoding: preferred serialization, definite lengths, and a fixed option order.
//!
//! The draft leaves the order of options free (the map is not required to be
//! deterministic). We emit `token` first and then the other labels in ascending order,
//! extensions included: that is the order of every example in the draft, in both
//! numberings, so the encoder reproduces each vector byte for byte, and the same message
//! always gives the same bytes. Raw values (SUIT parameters, extensions) are copied as
//! they were received or built.

use alloc::vec::Vec;

use crate::error::{ProtoError, Violation};
use crate::numbering::{Field, Numbering};
use crate::parts::{Parts, Value};
use crate::types::{CipherSuite, ComponentId, Message, RawCbor, SystemPropertyClaims};
use crate::validate;

type Result<T> = core::result::Result<T, ProtoError>;

use teep_cbor::encode::{Major, write_bytes, write_head, write_int, write_text};

impl Message {
    /// Encodes the bare TEEP message (the COSE payload) in `numbering`.
    ///
    /// Refuses (with [`ProtoError::Invalid`]) a message that breaks a CDDL rule the
    /// decoder enforces, so that `decode(encode(m)) == m` for every `m` it accepts.
    pub fn encode(&self, numbering: Numbering) -> Result<Vec<u8>> {
        let mut w = Writer {
            out: Vec::with_capacity(self.size_hint()),
            numbering,
        };
        w.message(self)?;
        Ok(w.out)
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

struct Writer {
    out: Vec<u8>,
    numbering: Numbering,
}

/// The label of a field the encoder writes as a map key. Only labelled fields reach here
/// (the option lists of `parts` and requested-tc-info); the fallback, a label no table
/// assigns, exists only so that no panic path is needed.
fn label(field: Field, numbering: Numbering) -> u64 {
    field.label(numbering).unwrap_or(u64::MAX)
}

fn invalid<T>(v: Violation) -> Result<T> {
    Err(ProtoError::Invalid(v))
}

impl Writer {
    fn head(&mut self, major: Major, n: u64) {
        write_head(major, n, &mut self.out);
    }

    fn len_head(&mut self, major: Major, len: usize) {
        write_head(major, len as u64, &mut self.out);
    }

    fn int(&mut self, n: i64) {
        write_int(n, &mut self.out);
    }

    fn bytes(&mut self, b: &[u8]) {
        write_bytes(b, &mut self.out);
    }

    fn text(&mut self, s: &str) {
        write_text(s, &mut self.out);
    }

    fn raw(&mut self, r: &RawCbor) {
        self.out.extend_from_slice(r.as_bytes());
    }

    /// Array header of a list after checking its non-empty rule.
    fn list(&mut self, field: Field, len: usize) -> Result<()> {
        validate::list_len(field, len).map_err(ProtoError::Invalid)?;
        self.len_head(Major::Array, len);
        Ok(())
    }

    fn message(&mut self, m: &Message) -> Result<()> {
        let parts = m.parts();
        self.len_head(Major::Array, 2 + parts.positional.len());
        self.head(Major::Unsigned, m.message_type().number(self.numbering));
        self.options(&parts)?;
        for (field, value) in &parts.positional {
            self.value(*field, *value)?;
        }
        Ok(())
    }

    fn options(&mut self, parts: &Parts<'_>) -> Result<()> {
        let n = self.numbering;
        let token = Field::Token.label(n);
        for label in parts.extensions.keys() {
            if parts.defined.iter().any(|f| f.label(n) == Some(*label)) {
                return invalid(Violation::ExtensionLabelTaken(*label));
            }
        }
        let mut entries: Vec<(bool, u64, Entry<'_>)> =
            Vec::with_capacity(parts.options.len() + parts.extensions.len());
        for (field, value) in &parts.options {
            let label = label(*field, n);
            entries.push((Some(label) != token, label, Entry::Known(*field, *value)));
        }
        for (label, raw) in parts.extensions {
            entries.push((true, *label, Entry::Raw(raw)));
        }
        entries.sort_unstable_by_key(|(not_token, label, _)| (*not_token, *label));
        self.len_head(Major::Map, entries.len());
        for (_, label, entry) in entries {
            self.head(Major::Unsigned, label);
            match entry {
                Entry::Known(field, value) => self.value(field, value)?,
                Entry::Raw(raw) => self.raw(raw),
            }
        }
        Ok(())
    }

    fn value(&mut self, field: Field, value: Value<'_>) -> Result<()> {
        match value {
            Value::Bytes(b) => {
                validate::size(field, b.len()).map_err(ProtoError::Invalid)?;
                self.bytes(b);
            }
            Value::Text(s) => {
                validate::size(field, s.len()).map_err(ProtoError::Invalid)?;
                self.text(s);
            }
            Value::Uint(u) => self.head(Major::Unsigned, u),
            Value::Freshness(list) => {
                self.list(field, list.len())?;
                list.iter().for_each(|f| self.head(Major::Unsigned, f.0));
            }
            Value::Versions(list) => {
                self.list(field, list.len())?;
                list.iter()
                    .for_each(|v| self.head(Major::Unsigned, u64::from(*v)));
            }
            Value::BstrList(list) => {
                self.list(field, list.len())?;
                list.iter().for_each(|b| self.bytes(b));
            }
            Value::CipherSuites(list) => {
                self.list(field, list.len())?;
                for suite in list {
                    self.cipher_suite(suite)?;
                }
            }
            Value::Profiles(list) => {
                self.list(field, list.len())?;
                for profile in list {
                    self.len_head(Major::Array, profile.0.len());
                    profile.0.iter().for_each(|a| self.int(*a));
                }
            }
            Value::DataItems(d) => self.head(Major::Unsigned, d.0),
            Value::TcList(list) => {
                self.list(field, list.len())?;
                for claims in list {
                    self.claims(claims)?;
                }
            }
            Value::RequestedTcList(list) => {
                self.list(field, list.len())?;
                for info in list {
                    validate::requested_tc_info(info).map_err(ProtoError::Invalid)?;
                    self.requested_tc_info(info)?;
                }
            }
            Value::ComponentIds(list) => {
                self.list(field, list.len())?;
                for id in list {
                    self.component_id(Field::ComponentId, id)?;
                }
            }
            Value::ErrCode(code) => {
                let number =
                    validate::err_code(code, self.numbering).map_err(ProtoError::Invalid)?;
                self.head(Major::Unsigned, number);
            }
        }
        Ok(())
    }

    fn cipher_suite(&mut self, suite: &CipherSuite) -> Result<()> {
        self.list(Field::CipherSuite, suite.operations().len())?;
        for op in suite.operations() {
            self.len_head(Major::Array, 2);
            self.head(Major::Unsigned, op.cose_type);
            self.int(op.alg);
        }
        Ok(())
    }

    fn component_id(&mut self, field: Field, id: &ComponentId) -> Result<()> {
        self.list(field, id.0.len())?;
        id.0.iter().for_each(|part| self.bytes(part));
        Ok(())
    }

    /// system-property-claims: component id (key 0) and parameters in ascending key order.
    fn claims(&mut self, claims: &SystemPropertyClaims) -> Result<()> {
        validate::claims(claims).map_err(ProtoError::Invalid)?;
        self.len_head(Major::Map, claims.parameters.len() + 1);
        for (key, value) in claims.parameters.range(..0) {
            self.int(*key);
            self.raw(value);
        }
        self.head(Major::Unsigned, 0);
        self.component_id(Field::SystemComponentId, &claims.component_id)?;
        for (key, value) in claims.parameters.range(1..) {
            self.int(*key);
            self.raw(value);
        }
        Ok(())
    }

    fn requested_tc_info(&mut self, info: &crate::types::RequestedTcInfo) -> Result<()> {
        let n = self.numbering;
        let count = 1
            + usize::from(info.tc_manifest_sequence_number.is_some())
            + usize::from(info.have_binary.is_some());
        self.len_head(Major::Map, count);
        // Labels ascend in this order in both numberings.
        self.head(Major::Unsigned, label(Field::ComponentId, n));
        self.component_id(Field::ComponentId, &info.component_id)?;
        if let Some(seq) = info.tc_manifest_sequence_number {
            self.head(Major::Unsigned, label(Field::TcManifestSequenceNumber, n));
            self.head(Major::Unsigned, seq);
        }
        if let Some(have) = info.have_binary {
            self.head(Major::Unsigned, label(Field::HaveBinary, n));
            self.out.push(if have { 0xf5 } else { 0xf4 });
        }
        Ok(())
    }
}

enum Entry<'a> {
    Known(Field, Value<'a>),
    Raw(&'a RawCbor),
}
