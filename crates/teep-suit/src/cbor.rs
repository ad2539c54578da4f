//! A thin reader over `minicbor::Decoder` that turns every decoding problem into a typed
//! `SuitError::Malformed` with the byte offset, and refuses indefinite lengths (SUIT
//! envelopes and manifests are deterministically encoded).

use minicbor::Decoder;
use minicbor::data::Type;
use teep_cbor::read::internal as read;

use crate::error::{SuitError, malformed};

pub(crate) struct Reader<'b> {
    d: Decoder<'b>,
}

impl<'b> Reader<'b> {
    pub(crate) fn new(bytes: &'b [u8]) -> Self {
        Self {
            d: Decoder::new(bytes),
        }
    }

    pub(crate) fn position(&self) -> usize {
        self.d.position()
    }

    pub(crate) fn input(&self) -> &'b [u8] {
        self.d.input()
    }

    pub(crate) fn datatype(&self) -> Result<Type, SuitError> {
        self.d
            .datatype()
            .map_err(|_| malformed("unexpected end of input", self.position()))
    }

    pub(crate) fn is_int(&self) -> bool {
        self.d.datatype().is_ok_and(read::is_int)
    }

    pub(crate) fn map(&mut self, what: &'static str) -> Result<u64, SuitError> {
        let at = self.position();
        self.d
            .map()
            .and_then(read::definite)
            .map_err(|_| malformed(what, at))
    }

    pub(crate) fn array(&mut self, what: &'static str) -> Result<u64, SuitError> {
        let at = self.position();
        self.d
            .array()
            .and_then(read::definite)
            .map_err(|_| malformed(what, at))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, SuitError> {
        let at = self.position();
        self.d.u64().map_err(|_| malformed(what, at))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, SuitError> {
        let at = self.position();
        self.d.i64().map_err(|_| malformed(what, at))
    }

    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, SuitError> {
        let at = self.position();
        self.d.bool().map_err(|_| malformed(what, at))
    }

    pub(crate) fn str(&mut self, what: &'static str) -> Result<&'b str, SuitError> {
        let at = self.position();
        if self.d.datatype().ok() != Some(Type::String) {
            return Err(malformed(what, at));
        }
        self.d.str().map_err(|_| malformed(what, at))
    }

    /// A definite-length byte string's contents.
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'b [u8], SuitError> {
        let at = self.position();
        if self.d.datatype().ok() != Some(Type::Bytes) {
            return Err(malformed(what, at));
        }
        self.d.bytes().map_err(|_| malformed(what, at))
    }

    /// A byte string as `(encoded item including its header, contents)`; digests of
    /// bstr-wrapped elements are computed over the first.
    pub(crate) fn bytes_with_header(
        &mut self,
        what: &'static str,
    ) -> Result<(&'b [u8], &'b [u8]), SuitError> {
        let start = self.position();
        let contents = self.bytes(what)?;
        let input = self.input();
        let encoded = input
            .get(start..self.position())
            .ok_or_else(|| malformed(what, start))?;
        Ok((encoded, contents))
    }

    /// Offset of `inner` (a slice returned by `bytes`) within this reader's input.
    pub(crate) fn offset_of(&self, inner: &[u8]) -> usize {
        (inner.as_ptr() as usize).saturating_sub(self.input().as_ptr() as usize)
    }

    pub(crate) fn tag(&mut self, what: &'static str) -> Result<u64, SuitError> {
        let at = self.position();
        self.d
            .tag()
            .map(|t| t.as_u64())
            .map_err(|_| malformed(what, at))
    }

    pub(crate) fn null(&mut self, what: &'static str) -> Result<(), SuitError> {
        let at = self.position();
        self.d.null().map_err(|_| malformed(what, at))
    }

    /// Skips one complete item (rejecting indefinite lengths), returning its encoding.
    pub(crate) fn skip(&mut self, what: &'static str) -> Result<&'b [u8], SuitError> {
        let start = self.position();
        if matches!(
            self.d.datatype(),
            Ok(Type::ArrayIndef | Type::MapIndef | Type::BytesIndef | Type::StringIndef)
        ) {
            return Err(malformed("indefinite length", start));
        }
        read::raw_item(&mut self.d).map_err(|_| malformed(what, start))
    }

    /// Fails unless every input byte was consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), SuitError> {
        if self.position() == self.input().len() {
            Ok(())
        } else {
            Err(malformed(what, self.position()))
        }
    }
}

/// Decodes a CBOR integer map key and rejects repeats (a duplicate key could make two
/// processors see two different manifests).
pub(crate) fn int_key(
    r: &mut Reader<'_>,
    seen: &mut alloc::vec::Vec<i64>,
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
