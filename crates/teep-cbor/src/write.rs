//! One encoder style for the minicbor codecs: containers count their own entries.
//!
//! A [`MapEncoder`] or [`ArrayEncoder`] collects what the caller writes into a buffer,
//! checks that each entry is exactly the items it should be (a key and a value, or one
//! element), and writes the header from that count when it is finished, so no length is
//! ever counted by hand next to the code that writes the entries. Every failure is a
//! typed [`EncodeError`] returned as `Result`; nothing is dropped with `let _ =`.
//!
//! ```
//! use teep_cbor::write::{EncodeError, MapEncoder, encode_vec};
//! let out = encode_vec(|e| {
//!     let mut map = MapEncoder::new();
//!     map.entry(1, "a")?;
//!     for n in [7u8] {
//!         map.entry_with(2, |e| Ok(e.array(1)?.u8(n).map(drop)?))?;
//!     }
//!     map.finish(e)
//! })?;
//! assert_eq!(out, [0xa2, 0x01, 0x61, b'a', 0x02, 0x81, 0x07]);
//! # Ok::<(), EncodeError>(())
//! ```

use alloc::vec::Vec;
use core::convert::Infallible;
use core::marker::PhantomData;

use minicbor::{Encode, Encoder};

use crate::head::read_head;
use crate::{CborError, Major, Profile, check_prefix, write_head};

/// An encoder over a growable buffer, the only kind our codecs write with.
pub type VecEncoder<'a> = Encoder<&'a mut Vec<u8>>;

/// Why an encoding was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A pre-encoded item given to [`raw`] is not exactly one well-formed item.
    #[error("pre-encoded item rejected: {0}")]
    Raw(CborError),
    /// Entry `index` of a map or array wrote another number of items than it should
    /// (a key and a value, or one element), or bytes that are not well-formed.
    #[error("container entry {index} is not the items it should be")]
    Entry {
        /// Index of the entry, in the order written.
        index: u64,
    },
    /// minicbor refused: writing into a `Vec` cannot fail, so only an `Encode` impl's own
    /// error gets here.
    #[error("the encoder failed")]
    Encoder,
}

impl From<minicbor::encode::Error<Infallible>> for EncodeError {
    fn from(_: minicbor::encode::Error<Infallible>) -> Self {
        Self::Encoder
    }
}

/// Runs `f` on a fresh encoder and returns the bytes it wrote.
///
/// # Errors
/// Whatever `f` returns.
pub fn encode_vec(
    f: impl FnOnce(&mut VecEncoder<'_>) -> Result<(), EncodeError>,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    f(&mut Encoder::new(&mut out))?;
    Ok(out)
}

/// Splices an already-encoded item (a COSE_Key, a kept unknown body) into the output,
/// after checking it is one well-formed item, so it cannot swallow what follows it.
///
/// # Errors
/// [`EncodeError::Raw`] for anything else; nothing is written then.
pub fn raw(e: &mut VecEncoder<'_>, item: &[u8]) -> Result<(), EncodeError> {
    let len = check_prefix(item, &Profile::TEEP).map_err(EncodeError::Raw)?;
    if len != item.len() {
        return Err(EncodeError::Raw(CborError::new(
            len,
            crate::CborErrorKind::TrailingBytes,
        )));
    }
    e.writer_mut().extend_from_slice(item);
    Ok(())
}

/// Which container a [`Counted`] writes: [`MapKind`] or [`ArrayKind`] (sealed, so that
/// no other major type can be given a count).
pub trait ContainerKind: sealed::Sealed {
    /// The header's major type.
    const MAJOR: Major;
    /// Items per entry: a key and a value, or one element.
    const ITEMS: usize;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::MapKind {}
    impl Sealed for super::ArrayKind {}
}

/// Marks a [`Counted`] map.
#[derive(Debug, Clone, Copy)]
pub struct MapKind;

/// Marks a [`Counted`] array.
#[derive(Debug, Clone, Copy)]
pub struct ArrayKind;

impl ContainerKind for MapKind {
    const MAJOR: Major = Major::Map;
    const ITEMS: usize = 2;
}

impl ContainerKind for ArrayKind {
    const MAJOR: Major = Major::Array;
    const ITEMS: usize = 1;
}

/// A definite-length map ([`MapEncoder`]) or array ([`ArrayEncoder`]) whose header holds
/// the number of entries written.
///
/// Map entries are written in the order given: a deterministic map inserts them in key
/// order (or uses [`crate::MapBuilder`], which sorts).
#[derive(Debug, Clone)]
pub struct Counted<K> {
    /// The entries written so far, back to back (after the output's earlier bytes for a
    /// container written in place, [`Counted::write_to`]).
    buf: Vec<u8>,
    len: u64,
    kind: PhantomData<K>,
}

/// A map that counts its entries.
pub type MapEncoder = Counted<MapKind>;
/// An array that counts its elements.
pub type ArrayEncoder = Counted<ArrayKind>;

impl<K: ContainerKind> Default for Counted<K> {
    fn default() -> Self {
        Self {
            buf: Vec::new(),
            len: 0,
            kind: PhantomData,
        }
    }
}

impl<K: ContainerKind> Counted<K> {
    /// An empty container.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries so far.
    #[must_use]
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// Whether no entry was added.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the container: the header with the number of entries, then the entries.
    ///
    /// # Errors
    /// None today (the output is a `Vec`); a `Result` so that callers propagate with `?`.
    pub fn finish(self, e: &mut VecEncoder<'_>) -> Result<(), EncodeError> {
        let out = e.writer_mut();
        write_head(K::MAJOR, self.len, out);
        out.extend_from_slice(&self.buf);
        Ok(())
    }

    /// Writes a container straight into `e`'s output: `entries` adds them, then the header
    /// is put in front of them. The same checks as [`Counted::new`] then
    /// [`Counted::finish`], without a buffer of its own, so nested containers are neither
    /// allocated nor copied level by level (the codecs' hot path).
    ///
    /// # Errors
    /// What `entries` returns; nothing is written then.
    pub fn write_to(
        e: &mut VecEncoder<'_>,
        entries: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let out: &mut Vec<u8> = e.writer_mut();
        let start = out.len();
        // One byte is kept for the header, which is all it takes below 24 entries.
        out.push(0);
        // The output is borrowed by value for the duration (moving a Vec copies no bytes).
        let mut container = Self {
            buf: core::mem::take(out),
            len: 0,
            kind: PhantomData,
        };
        let written = entries(&mut container);
        let Self { mut buf, len, .. } = container;
        if written.is_ok() {
            match (u8::try_from(len), buf.get_mut(start)) {
                (Ok(small @ 0..24), Some(slot)) => *slot = ((K::MAJOR as u8) << 5) | small,
                _ => {
                    let mut head = Vec::new();
                    write_head(K::MAJOR, len, &mut head);
                    buf.splice(start..=start, head);
                }
            }
        } else {
            buf.truncate(start);
        }
        **e.writer_mut() = buf;
        written
    }

    /// Runs `f` to write one entry; on any failure the buffer is cut back, so the entry is
    /// either wholly in or not at all.
    fn push(
        &mut self,
        f: impl FnOnce(&mut VecEncoder<'_>) -> Result<(), EncodeError>,
    ) -> Result<&mut Self, EncodeError> {
        let start = self.buf.len();
        let written = f(&mut Encoder::new(&mut self.buf)).and_then(|()| {
            let entry = self.buf.get(start..).unwrap_or_default();
            if count_items(entry) == Some(K::ITEMS) {
                Ok(())
            } else {
                Err(EncodeError::Entry { index: self.len })
            }
        });
        self.settle(start, written)
    }

    /// Counts the entry begun at `start` if it was `written`, else cuts it off again.
    fn settle(
        &mut self,
        start: usize,
        written: Result<(), EncodeError>,
    ) -> Result<&mut Self, EncodeError> {
        match written {
            Ok(()) => {
                self.len = self.len.saturating_add(1);
                Ok(self)
            }
            Err(e) => {
                self.buf.truncate(start);
                Err(e)
            }
        }
    }
}

/// How many well-formed items `bytes` holds back to back; `None` if they are not.
///
/// Definite-length items, all that minicbor writes, are walked head by head; an item this
/// does not handle (indefinite, inside a pre-encoded one that [`raw`] let through, or not
/// well-formed) goes to the full checker. UTF-8 and map keys are not looked at again:
/// minicbor writes text from `&str`, and [`raw`] checked pre-encoded items whole.
fn count_items(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut n = 0;
    while pos < bytes.len() {
        pos = match skip_definite(bytes, pos) {
            Some(end) => end,
            None => pos.checked_add(check_prefix(bytes.get(pos..)?, &Profile::TEEP).ok()?)?,
        };
        n += 1;
    }
    Some(n)
}

/// The end of the definite-length item at `pos`, reading only heads; `None` for an
/// indefinite length, a two-byte simple value below 32 or bytes that end too soon.
fn skip_definite(bytes: &[u8], mut pos: usize) -> Option<usize> {
    // Items still to skip: each head consumes at least one byte, so this ends.
    let mut pending: u64 = 1;
    while pending > 0 {
        let head = read_head(bytes, pos).ok()?;
        if head.is_indefinite() {
            return None;
        }
        pos = pos.checked_add(head.len)?;
        pending -= 1;
        match head.major {
            2 | 3 => pos = pos.checked_add(usize::try_from(head.arg).ok()?)?,
            4 => pending = pending.checked_add(head.arg)?,
            5 => pending = pending.checked_add(head.arg.checked_mul(2)?)?,
            6 => pending = pending.checked_add(1)?,
            7 if head.ai == 24 && head.arg < 32 => return None,
            _ => {}
        }
    }
    (pos <= bytes.len()).then_some(pos)
}

impl Counted<MapKind> {
    /// Adds `key` and a nested array or map as its value (see [`Counted::item_nested`]);
    /// only the key is read back.
    ///
    /// # Errors
    /// What `entries` returns, or [`EncodeError::Entry`] when `key` is not one item; the
    /// map is unchanged then.
    pub fn entry_nested<N: ContainerKind, K: Encode<()>>(
        &mut self,
        key: K,
        entries: impl FnOnce(&mut Counted<N>) -> Result<(), EncodeError>,
    ) -> Result<&mut Self, EncodeError> {
        let start = self.buf.len();
        let index = self.len;
        let written = (|| {
            Encoder::new(&mut self.buf).encode(key)?;
            if count_items(self.buf.get(start..).unwrap_or_default()) != Some(1) {
                return Err(EncodeError::Entry { index });
            }
            Counted::<N>::write_to(&mut Encoder::new(&mut self.buf), entries)
        })();
        self.settle(start, written)
    }

    /// Adds `key: value`.
    ///
    /// # Errors
    /// As [`Counted::entry_with`].
    pub fn entry<K: Encode<()>, V: Encode<()>>(
        &mut self,
        key: K,
        value: V,
    ) -> Result<&mut Self, EncodeError> {
        self.entry_with(key, |e| Ok(e.encode(value).map(drop)?))
    }

    /// Adds `key` and the value `value` writes, which must be exactly one item.
    ///
    /// # Errors
    /// What `value` returns, or [`EncodeError::Entry`] when it wrote no item or several;
    /// the map is unchanged then.
    pub fn entry_with<K: Encode<()>>(
        &mut self,
        key: K,
        value: impl FnOnce(&mut VecEncoder<'_>) -> Result<(), EncodeError>,
    ) -> Result<&mut Self, EncodeError> {
        self.push(|e| {
            e.encode(key)?;
            value(e)
        })
    }
}

impl Counted<ArrayKind> {
    /// Adds a nested array or map, written in place by `entries` as with
    /// [`Counted::write_to`]. Its entries were checked as they were added, so it is known
    /// to be one item without reading it again (nesting costs no extra pass).
    ///
    /// # Errors
    /// What `entries` returns; the array is unchanged then.
    pub fn item_nested<N: ContainerKind>(
        &mut self,
        entries: impl FnOnce(&mut Counted<N>) -> Result<(), EncodeError>,
    ) -> Result<&mut Self, EncodeError> {
        Counted::<N>::write_to(&mut Encoder::new(&mut self.buf), entries)?;
        self.len = self.len.saturating_add(1);
        Ok(self)
    }

    /// Adds one element.
    ///
    /// # Errors
    /// As [`Counted::item_with`].
    pub fn item<V: Encode<()>>(&mut self, value: V) -> Result<&mut Self, EncodeError> {
        self.item_with(|e| Ok(e.encode(value).map(drop)?))
    }

    /// Adds the element `value` writes, which must be exactly one item.
    ///
    /// # Errors
    /// What `value` returns, or [`EncodeError::Entry`]; the array is unchanged then.
    pub fn item_with(
        &mut self,
        value: impl FnOnce(&mut VecEncoder<'_>) -> Result<(), EncodeError>,
    ) -> Result<&mut Self, EncodeError> {
        self.push(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CborErrorKind;

    #[test]
    fn the_header_counts_the_entries_written() {
        let out = encode_vec(|e| {
            let mut map = MapEncoder::new();
            assert!(map.is_empty());
            for k in 0..30u8 {
                map.entry(k, k)?;
            }
            assert_eq!(map.len(), 30);
            map.finish(e)
        })
        .unwrap();
        // 30 entries need the one-byte length form: 0xb8 0x1e.
        assert_eq!(out.get(..3), Some(&[0xb8, 30, 0x00][..]));
        assert!(crate::check(&out, &Profile::DETERMINISTIC).is_ok());
    }

    #[test]
    fn an_entry_of_the_wrong_shape_is_refused_and_leaves_no_trace() {
        let mut map = MapEncoder::new();
        map.entry(1, 1).unwrap();
        // No value; two values; a truncated array.
        let none = map.entry_with(2, |_| Ok(()));
        assert_eq!(none.unwrap_err(), EncodeError::Entry { index: 1 });
        let two = map.entry_with(2, |e| Ok(e.u8(1)?.u8(2).map(drop)?));
        assert_eq!(two.unwrap_err(), EncodeError::Entry { index: 1 });
        let cut = map.entry_with(2, |e| Ok(e.array(2)?.u8(1).map(drop)?));
        assert_eq!(cut.unwrap_err(), EncodeError::Entry { index: 1 });
        map.entry(3, 3).unwrap();
        let out = encode_vec(|e| map.finish(e)).unwrap();
        assert_eq!(out, [0xa2, 0x01, 0x01, 0x03, 0x03]);

        let mut array = ArrayEncoder::new();
        let two = array.item_with(|e| Ok(e.u8(1)?.u8(2).map(drop)?));
        assert_eq!(two.unwrap_err(), EncodeError::Entry { index: 0 });
        array.item("x").unwrap();
        assert_eq!(array.len(), 1);
        let out = encode_vec(|e| array.finish(e)).unwrap();
        assert_eq!(out, [0x81, 0x61, b'x']);
    }

    #[test]
    fn containers_written_in_place_match_buffered_ones() {
        // {1: [2, "x"], 30 entries more}: a nested array, and a map needing a 2-byte head.
        let build = |in_place: bool| {
            encode_vec(|e| {
                e.u8(9)?;
                let entries = |m: &mut MapEncoder| {
                    m.entry_with(1, |e| {
                        ArrayEncoder::write_to(e, |a| a.item(2)?.item("x").map(drop))
                    })?;
                    for k in 2..32u8 {
                        m.entry(k, k)?;
                    }
                    Ok(())
                };
                if in_place {
                    MapEncoder::write_to(e, entries)
                } else {
                    let mut m = MapEncoder::new();
                    entries(&mut m)?;
                    m.finish(e)
                }
            })
            .unwrap()
        };
        let out = build(true);
        assert_eq!(out, build(false));
        assert_eq!(
            out.get(..7),
            Some(&[0x09, 0xb8, 31, 0x01, 0x82, 0x02, 0x61][..])
        );
        // A failing entry leaves the output as it was before the container.
        let out = encode_vec(|e| {
            e.u8(9)?;
            let failed = MapEncoder::write_to(e, |m| {
                m.entry(1, 1)?;
                m.entry_with(2, |_| Ok(())).map(drop)
            });
            assert_eq!(failed, Err(EncodeError::Entry { index: 1 }));
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [0x09]);
    }

    #[test]
    fn items_are_counted_by_their_heads_and_odd_ones_by_the_checker() {
        // 1, h'aa', [1, {2: 3}], 6(0), 1.5 (f16), true; then an indefinite array.
        let definite = [
            0x01, 0x41, 0xaa, 0x82, 0x01, 0xa1, 0x02, 0x03, 0xc6, 0x00, 0xf9, 0x3e, 0x00, 0xf5,
        ];
        assert_eq!(count_items(&definite), Some(6));
        assert_eq!(count_items(&[0x9f, 0x01, 0xff, 0x02]), Some(2));
        assert_eq!(count_items(&[]), Some(0));
        // Cut short: a string, an array, a map value, a tag; a stray break; a simple
        // value below 32 in two bytes; reserved additional information.
        for bad in [
            &[0x42, 0x01][..],
            &[0x82, 0x01],
            &[0xa1, 0x01],
            &[0xc6],
            &[0xff],
            &[0xf8, 0x10],
            &[0x1c],
        ] {
            assert_eq!(count_items(bad), None, "{bad:02x?}");
        }
    }

    /// An `Encode` impl that writes two items where one belongs.
    struct TwoItems;

    impl<C> Encode<C> for TwoItems {
        fn encode<W: minicbor::encode::Write>(
            &self,
            e: &mut Encoder<W>,
            _: &mut C,
        ) -> Result<(), minicbor::encode::Error<W::Error>> {
            e.u8(6)?.u8(7)?;
            Ok(())
        }
    }

    #[test]
    fn nested_containers_are_one_entry_each() {
        let out = encode_vec(|e| {
            MapEncoder::write_to(e, |m| {
                m.entry_nested::<ArrayKind, _>(1, |a| {
                    a.item(2)?
                        .item_nested::<MapKind>(|inner| inner.entry(3, 4).map(drop))?;
                    Ok(())
                })?;
                // A failing nested value leaves no trace, key included.
                let failed =
                    m.entry_nested::<ArrayKind, _>(5, |a| a.item_with(|_| Ok(())).map(drop));
                assert_eq!(failed.unwrap_err(), EncodeError::Entry { index: 0 });
                // A key that is two items is refused.
                let two = m.entry_nested::<ArrayKind, _>(TwoItems, |_| Ok(()));
                assert_eq!(two.unwrap_err(), EncodeError::Entry { index: 1 });
                assert_eq!(m.len(), 1);
                Ok(())
            })
        })
        .unwrap();
        // {1: [2, {3: 4}]}
        assert_eq!(out, [0xa1, 0x01, 0x82, 0x02, 0xa1, 0x03, 0x04]);
    }

    #[test]
    fn raw_items_must_be_one_well_formed_item() {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out);
        raw(&mut e, &[0x82, 0x01, 0x02]).unwrap();
        let truncated = raw(&mut e, &[0x82, 0x01]).unwrap_err();
        assert!(matches!(
            truncated,
            EncodeError::Raw(CborError {
                kind: CborErrorKind::Truncated,
                ..
            })
        ));
        assert_eq!(
            raw(&mut e, &[0x01, 0x02]),
            Err(EncodeError::Raw(CborError::new(
                1,
                CborErrorKind::TrailingBytes
            )))
        );
        assert!(matches!(raw(&mut e, &[]), Err(EncodeError::Raw(_))));
        assert_eq!(out, [0x82, 0x01, 0x02]);
    }

    #[test]
    fn a_failing_value_propagates_its_error() {
        let mut array = ArrayEncoder::new();
        let failed = array.item_with(|e| {
            e.u8(1)?;
            raw(e, &[0x41])
        });
        assert!(matches!(failed, Err(EncodeError::Raw(_))));
        assert!(array.is_empty());
    }
}
