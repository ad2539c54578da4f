//! teep-suit's side of the one CBOR reader (`teep_cbor::read::Reader`): its typed
//! `ReadError` becomes `SuitError::Malformed` with the field read and the byte offset
//! (report reason CborParse), and the few reads SUIT needs beyond it. Definite lengths
//! only: SUIT envelopes and manifests are deterministically encoded.

use alloc::vec::Vec;

use minicbor::data::Type;
use teep_cbor::Profile;
use teep_cbor::read::ReadError;
pub(crate) use teep_cbor::read::Reader;
use teep_cbor::write::{EncodeError, VecEncoder};

use crate::error::{SuitError, malformed};

/// What SUIT accepts of every CBOR input it decodes, checked over the whole input after
/// the typed walk (so members the walk skips, unknown or carried, are held to it too):
/// well-formed, no repeated map key, valid UTF-8, definite lengths only, at most 32
/// levels deep. Tags (107, COSE) and any key order or head length are accepted; size is
/// bounded by whoever received the bytes (a TEEP message, a file).
pub(crate) const PROFILE: Profile = Profile {
    allow_indefinite: false,
    ..Profile::TEEP
}
.with_max_size(usize::MAX);

/// The whole-input pass with [`PROFILE`]: `what` names the structure that is refused
/// (report reason CborParse), at the offending item's offset.
pub(crate) fn strict(bytes: &[u8], what: &'static str) -> Result<(), SuitError> {
    strict_at(bytes, 0, what)
}

/// [`strict`] for input that sits at `base` in what the caller reports offsets against.
pub(crate) fn strict_at(bytes: &[u8], base: usize, what: &'static str) -> Result<(), SuitError> {
    teep_cbor::check(bytes, &PROFILE).map_err(|e| malformed(what, base.saturating_add(e.offset)))
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ComponentId, Envelope};

    #[test]
    fn a_failed_read_is_malformed_at_its_field_and_offset() {
        // [ "a" ]: a text segment where a byte string belongs, at byte 1.
        assert_eq!(
            ComponentId::from_cbor(&[0x81, 0x61, b'a']),
            Err(malformed("component identifier segment", 1))
        );
        // A byte left over after the identifier.
        assert_eq!(
            ComponentId::from_cbor(&[0x80, 0x00]),
            Err(malformed("trailing bytes after component identifier", 1))
        );
        // An indefinite-length envelope map, and one cut short: CborParse either way.
        for bad in [&[0xbf, 0xff][..], &[0xa1]] {
            let e = Envelope::decode(bad).unwrap_err();
            assert!(
                matches!(e, SuitError::Malformed { .. }),
                "{bad:02x?}: {e:?}"
            );
            assert_eq!(e.reason(), crate::ReportReason::CborParse);
        }
    }

    #[test]
    fn an_item_with_an_indefinite_head_is_refused_and_the_reader_stays() {
        for bad in [
            &[0x9f, 0xff][..],
            &[0xbf, 0xff],
            &[0x5f, 0xff],
            &[0x7f, 0xff],
        ] {
            let mut r = Reader::new(bad);
            assert_eq!(r.item("x"), Err(malformed("indefinite length", 0)));
            assert_eq!(r.position(), 0);
        }
        // A truncated item names the field; a whole one comes back with its head.
        let mut r = Reader::new(&[0x82, 0x01]);
        assert_eq!(r.item("x"), Err(malformed("x", 0)));
        assert_eq!(r.position(), 0);
        let mut r = Reader::new(&[0x82, 0x01, 0x02, 0x03]);
        assert_eq!(r.item("x"), Ok(&[0x82, 0x01, 0x02][..]));
        assert_eq!(r.next_type(), Ok(Type::U8));
        r.u64("y").unwrap();
        assert_eq!(r.next_type(), Err(malformed("unexpected end of input", 4)));
    }

    #[test]
    fn bytes_with_header_and_offsets_point_into_the_input() {
        let input = [0x00, 0x42, 0xaa, 0xbb];
        let mut r = Reader::new(&input);
        r.u64("x").unwrap();
        let (encoded, contents) = r.bytes_with_header("b").unwrap();
        assert_eq!((encoded, contents), (&input[1..], &input[2..]));
        assert_eq!(r.offset_of(contents), 2);
    }
}
