//! teep-suit's side of the one CBOR reader (`teep_cbor::read::Reader`): its typed
//! `ReadError` becomes `SuitError::Malformed` with the field read and the byte offset
//! (report reason CborParse), and the few reads SUIT needs beyond it. Definite lengths
//! only: SUIT envelopes and manifests are deterministically encoded.

use alloc::vec::Vec;

use minicbor::data::Type;
use teep_cbor::read::ReadError;
pub(crate) use teep_cbor::read::Reader;
use teep_cbor::write::{EncodeError, VecEncoder};

use crate::error::{SuitError, malformed};

/// A failed read is a malformed SUIT structure: `what` is the field that was being read.
impl From<ReadError> for SuitError {
    fn from(e: ReadError) -> Self {
        malformed(e.field, e.offset)
    }
}

/// What SUIT reads beyond the shared reader's typed reads.
pub(crate) trait SuitRead<'b> {
    /// The type of the next item; Malformed at the end of the input or a reserved head.
    fn next_type(&self) -> Result<Type, SuitError>;
    /// A byte string as `(encoded item including its header, contents)`; digests of
    /// bstr-wrapped elements are computed over the first.
    fn bytes_with_header(&mut self, what: &'static str) -> Result<(&'b [u8], &'b [u8]), SuitError>;
    /// Offset of `inner` (a slice returned by `bytes`) within this reader's input.
    fn offset_of(&self, inner: &[u8]) -> usize;
    /// One complete item (an indefinite length at its head refused), as its encoding.
    fn item(&mut self, what: &'static str) -> Result<&'b [u8], SuitError>;
}

impl<'b> SuitRead<'b> for Reader<'b> {
    fn next_type(&self) -> Result<Type, SuitError> {
        self.datatype()
            .ok_or_else(|| malformed("unexpected end of input", self.position()))
    }

    fn bytes_with_header(&mut self, what: &'static str) -> Result<(&'b [u8], &'b [u8]), SuitError> {
        let start = self.position();
        let contents = self.bytes(what)?;
        let encoded = self
            .input()
            .get(start..self.position())
            .ok_or_else(|| malformed(what, start))?;
        Ok((encoded, contents))
    }

    fn offset_of(&self, inner: &[u8]) -> usize {
        (inner.as_ptr() as usize).saturating_sub(self.input().as_ptr() as usize)
    }

    fn item(&mut self, what: &'static str) -> Result<&'b [u8], SuitError> {
        if matches!(
            self.datatype(),
            Some(Type::ArrayIndef | Type::MapIndef | Type::BytesIndef | Type::StringIndef)
        ) {
            return Err(malformed("indefinite length", self.position()));
        }
        Ok(self.raw(what)?)
    }
}

/// Decodes a CBOR integer map key and rejects repeats (a duplicate key could make two
/// processors see two different manifests).
pub(crate) fn int_key(
    r: &mut Reader<'_>,
    seen: &mut Vec<i64>,
    what: &'static str,
) -> Result<i64, SuitError> {
    let at = r.position();
    let key = r.i64(what)?;
    if seen.contains(&key) {
        return Err(malformed("duplicate map key", at));
    }
    seen.push(key);
    Ok(key)
}

/// Constant-time comparison (for `check-content` and MAC tags).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `bytes` as a CBOR byte string for the counting writers (minicbor writes a bare
/// `&[u8]` as an array of integers).
pub(crate) fn bstr(bytes: &[u8]) -> &minicbor::bytes::ByteSlice {
    bytes.into()
}

/// A value closure for the counting writers that appends an item written infallibly
/// (`ComponentId::encode`, `Digest::encode`).
pub(crate) fn appended(
    write: impl FnOnce(&mut Vec<u8>),
) -> impl FnOnce(&mut VecEncoder<'_>) -> Result<(), EncodeError> {
    move |e| {
        write(e.writer_mut());
        Ok(())
    }
}
