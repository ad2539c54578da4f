//! One reader for every minicbor-based codec (TEEP, SUIT, EAT): [`Reader`] wraps
//! `minicbor::Decoder` so that each read names the field it is for and fails with a typed
//! [`ReadError`] (where, which field, what is wrong) instead of a message string, refuses
//! indefinite lengths (the `_any` reads take both forms, for codecs whose profile allows
//! any well-formed encoding), checks sizes, and leaves the position unchanged when it fails.
//! "Nothing left over" is one call, [`Reader::expect_empty`].
//!
//! The field is whatever the caller uses to name what it reads: a claim key, a protocol
//! field enum, or a `&'static str`. Each codec turns a `ReadError<ItsField>` into its own
//! error with one `From` impl.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use minicbor::Decoder;
use minicbor::data::Type;
use minicbor::decode::Error;

/// Whether `ty` is a CBOR integer (major type 0 or 1) of any width; minicbor reports
/// negative integers below `i64::MIN` as `Type::Int`.
const fn is_int(ty: Type) -> bool {
    matches!(
        ty,
        Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::I8
            | Type::I16
            | Type::I32
            | Type::I64
            | Type::Int
    )
}

/// Skips the next item and returns its encoded bytes (head included).
fn raw_item<'b>(d: &mut Decoder<'b>) -> Result<&'b [u8], Error> {
    let start = d.position();
    d.skip()?;
    let end = d.position();
    d.input()
        .get(start..end)
        .ok_or_else(|| Error::message("item out of range"))
}

/// The length of a map or array header, refusing indefinite lengths (`None` from
/// `Decoder::map` / `Decoder::array`).
fn definite(len: Option<u64>) -> Result<u64, Error> {
    len.ok_or_else(|| Error::message("indefinite length"))
}

/// The kind of item a read expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CborType {
    /// An unsigned integer.
    Unsigned,
    /// An integer of either sign.
    Int,
    /// A byte string.
    Bytes,
    /// A text string.
    Text,
    /// An array.
    Array,
    /// A map.
    Map,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
    /// A tag.
    Tag,
}

/// What is wrong with the item a [`Reader`] was asked to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The item is of another type.
    #[error("expected {0:?}")]
    Expected(CborType),
    /// An indefinite-length string, array or map where a definite length is required.
    #[error("indefinite length")]
    Indefinite,
    /// The input ends inside the item, or before it.
    #[error("input ends inside the item")]
    Truncated,
    /// Bytes follow where the input should end.
    #[error("bytes left over")]
    Trailing,
    /// A map key equal to an earlier one.
    #[error("duplicate key")]
    Duplicate,
    /// A map lacks an entry the field requires.
    #[error("required entry missing")]
    Missing,
    /// An integer (or code) outside what the field allows.
    #[error("value out of range")]
    OutOfRange,
    /// A string's length or an array's or map's count outside `min..=max`.
    #[error("size {found} not in {min}..={max}")]
    Size {
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
        /// What the input has.
        found: u64,
    },
    /// A text string that is not UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// Not well-formed CBOR in another way (reserved head, stray break).
    #[error("malformed CBOR")]
    Malformed,
}

/// A failed read: at which byte, of which field, and what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field:?}: {kind} at byte {offset}")]
pub struct ReadError<F = &'static str> {
    /// Offset of the offending item's head in the reader's input (for
    /// [`ReadErrorKind::Trailing`], the first byte left over).
    pub offset: usize,
    /// The field being read, as the caller named it.
    pub field: F,
    /// What is wrong.
    pub kind: ReadErrorKind,
}

/// A typed reader over one CBOR input; see the module documentation.
///
/// Every method leaves the position where it was when it returns an error, so a caller
/// that recovers (e.g. treats an unknown key as "skip") sees a consistent position.
#[derive(Debug, Clone)]
pub struct Reader<'b> {
    d: Decoder<'b>,
}

impl<'b> Reader<'b> {
    /// A reader at the start of `input`.
    #[must_use]
    pub fn new(input: &'b [u8]) -> Self {
        Self {
            d: Decoder::new(input),
        }
    }

    /// Byte offset of the next item.
    #[inline]
    #[must_use]
    pub fn position(&self) -> usize {
        self.d.position()
    }

    /// The whole input.
    #[inline]
    #[must_use]
    pub fn input(&self) -> &'b [u8] {
        self.d.input()
    }

    /// The type of the next item, `None` at the end of the input or for a reserved head.
    /// It is minicbor's [`Type`]: minicbor is a public dependency of this module (see the
    /// crate's `minicbor` re-export) and the codecs compare against its variants.
    #[inline]
    #[must_use]
    pub fn datatype(&self) -> Option<Type> {
        self.d.datatype().ok()
    }

    /// Whether the next item is an integer (major type 0 or 1) of any width.
    #[inline]
    #[must_use]
    pub fn is_int(&self) -> bool {
        self.datatype().is_some_and(is_int)
    }

    /// An error of `kind` for `field` at the current position (for checks the caller makes
    /// on what it read, e.g. an unknown code).
    pub fn error<F>(&self, field: F, kind: ReadErrorKind) -> ReadError<F> {
        ReadError {
            offset: self.d.position(),
            field,
            kind,
        }
    }

    /// The same with an explicit offset, for a check on an item already read.
    pub const fn error_at<F>(offset: usize, field: F, kind: ReadErrorKind) -> ReadError<F> {
        ReadError {
            offset,
            field,
            kind,
        }
    }

    /// Fails with [`ReadErrorKind::Trailing`] unless the whole input has been read.
    ///
    /// # Errors
    /// Trailing at the first byte left over.
    pub fn expect_empty<F>(&self, field: F) -> Result<(), ReadError<F>> {
        if self.position() == self.input().len() {
            Ok(())
        } else {
            Err(self.error(field, ReadErrorKind::Trailing))
        }
    }

    /// Runs `read`, which accepts exactly the types `accept` does (minicbor's own type
    /// check); on any failure the position is restored and the failure classified against
    /// `want`. The type is looked at only on that path, which is kept out of line so that
    /// a good read costs one decode and no call of its own.
    #[inline]
    fn typed<F, T>(
        &mut self,
        field: F,
        want: CborType,
        accept: fn(Type) -> bool,
        read: impl FnOnce(&mut Decoder<'b>) -> Result<T, Error>,
    ) -> Result<T, ReadError<F>> {
        let at = self.position();
        match read(&mut self.d) {
            Ok(value) => Ok(value),
            Err(e) => Err(Self::error_at(at, field, self.failed(at, want, accept, &e))),
        }
    }

    /// What went wrong with a read of `want` at `at`; rewinds there.
    #[cold]
    #[inline(never)]
    fn failed(
        &mut self,
        at: usize,
        want: CborType,
        accept: fn(Type) -> bool,
        e: &Error,
    ) -> ReadErrorKind {
        self.d.set_position(at);
        match self.d.datatype() {
            Ok(ty) if accept(ty) => lift(e, want),
            Ok(ty) if indefinite_of(ty, want) => ReadErrorKind::Indefinite,
            Ok(Type::Unknown(_)) => ReadErrorKind::Malformed,
            Ok(_) => ReadErrorKind::Expected(want),
            Err(e) => lift(&e, want),
        }
    }

    /// An unsigned integer.
    ///
    /// # Errors
    /// Expected(Unsigned) for anything else (a negative integer included).
    pub fn u64<F>(&mut self, field: F) -> Result<u64, ReadError<F>> {
        let unsigned = |ty| matches!(ty, Type::U8 | Type::U16 | Type::U32 | Type::U64);
        self.typed(field, CborType::Unsigned, unsigned, Decoder::u64)
    }

    /// An integer that fits an `i64`.
    ///
    /// # Errors
    /// Expected(Int) for a non-integer, OutOfRange for one outside `i64`.
    pub fn i64<F>(&mut self, field: F) -> Result<i64, ReadError<F>> {
        self.typed(field, CborType::Int, is_int, Decoder::i64)
    }

    /// An integer that fits `T` (e.g. `u8`, `i8`, `u32`).
    ///
    /// # Errors
    /// As [`Reader::i64`]; OutOfRange also when the value does not fit `T`.
    pub fn int<T: TryFrom<i64>, F: Copy>(&mut self, field: F) -> Result<T, ReadError<F>> {
        let at = self.position();
        let value = self.i64(field)?;
        T::try_from(value).map_err(|_| {
            self.d.set_position(at);
            Self::error_at(at, field, ReadErrorKind::OutOfRange)
        })
    }

    /// `true` or `false`.
    ///
    /// # Errors
    /// Expected(Bool) for anything else.
    pub fn bool<F>(&mut self, field: F) -> Result<bool, ReadError<F>> {
        self.typed(field, CborType::Bool, |ty| ty == Type::Bool, Decoder::bool)
    }

    /// `null`.
    ///
    /// # Errors
    /// Expected(Null) for anything else.
    pub fn null<F>(&mut self, field: F) -> Result<(), ReadError<F>> {
        self.typed(field, CborType::Null, |ty| ty == Type::Null, Decoder::null)
    }

    /// A tag's number (the tagged item follows).
    ///
    /// # Errors
    /// Expected(Tag) for anything else.
    pub fn tag<F>(&mut self, field: F) -> Result<u64, ReadError<F>> {
        self.typed(
            field,
            CborType::Tag,
            |ty| ty == Type::Tag,
            |d| d.tag().map(|t| t.as_u64()),
        )
    }

    /// A definite-length byte string's contents.
    ///
    /// # Errors
    /// Expected(Bytes), Indefinite, Truncated.
    pub fn bytes<F>(&mut self, field: F) -> Result<&'b [u8], ReadError<F>> {
        self.typed(
            field,
            CborType::Bytes,
            |ty| ty == Type::Bytes,
            Decoder::bytes,
        )
    }

    /// A byte string whose length is in `len`.
    ///
    /// # Errors
    /// As [`Reader::bytes`], and Size for another length.
    pub fn bytes_sized<F: Copy>(
        &mut self,
        field: F,
        len: RangeInclusive<usize>,
    ) -> Result<&'b [u8], ReadError<F>> {
        let at = self.position();
        let value = self.bytes(field)?;
        self.within(at, field, value, value.len() as u64, widen(len))
    }

    /// A definite-length text string.
    ///
    /// # Errors
    /// Expected(Text), Indefinite, InvalidUtf8, Truncated.
    pub fn str<F>(&mut self, field: F) -> Result<&'b str, ReadError<F>> {
        self.typed(field, CborType::Text, |ty| ty == Type::String, Decoder::str)
    }

    /// A text string whose length in bytes is in `len`.
    ///
    /// # Errors
    /// As [`Reader::str`], and Size for another length.
    pub fn str_sized<F: Copy>(
        &mut self,
        field: F,
        len: RangeInclusive<usize>,
    ) -> Result<&'b str, ReadError<F>> {
        let at = self.position();
        let value = self.str(field)?;
        self.within(at, field, value, value.len() as u64, widen(len))
    }

    /// A definite-length array's element count.
    ///
    /// # Errors
    /// Expected(Array), Indefinite.
    pub fn array<F>(&mut self, field: F) -> Result<u64, ReadError<F>> {
        self.typed(
            field,
            CborType::Array,
            |ty| ty == Type::Array,
            |d| definite(d.array()?),
        )
    }

    /// An array of `len` elements (bounds inclusive), e.g. `1..=2` for `[a, ? b]`.
    ///
    /// # Errors
    /// As [`Reader::array`], and Size for another count.
    pub fn array_of<F: Copy>(
        &mut self,
        field: F,
        len: RangeInclusive<u64>,
    ) -> Result<u64, ReadError<F>> {
        let at = self.position();
        let n = self.array(field)?;
        self.within(at, field, n, n, len)
    }

    /// A definite-length map's entry count.
    ///
    /// # Errors
    /// Expected(Map), Indefinite.
    pub fn map<F>(&mut self, field: F) -> Result<u64, ReadError<F>> {
        self.typed(
            field,
            CborType::Map,
            |ty| ty == Type::Map,
            |d| definite(d.map()?),
        )
    }

    /// A map of `len` entries.
    ///
    /// # Errors
    /// As [`Reader::map`], and Size for another count.
    pub fn map_of<F: Copy>(
        &mut self,
        field: F,
        len: RangeInclusive<u64>,
    ) -> Result<u64, ReadError<F>> {
        let at = self.position();
        let n = self.map(field)?;
        self.within(at, field, n, n, len)
    }

    /// An array's element count, `None` for an indefinite length (ended by a break that
    /// [`Reader::more`] consumes), for codecs whose profile allows any well-formed encoding.
    ///
    /// # Errors
    /// Expected(Array).
    pub fn array_any<F>(&mut self, field: F) -> Result<Option<u64>, ReadError<F>> {
        let array = |ty| matches!(ty, Type::Array | Type::ArrayIndef);
        self.typed(field, CborType::Array, array, Decoder::array)
    }

    /// A map's entry count, `None` for an indefinite length (see [`Reader::array_any`]).
    ///
    /// # Errors
    /// Expected(Map).
    pub fn map_any<F>(&mut self, field: F) -> Result<Option<u64>, ReadError<F>> {
        let map = |ty| matches!(ty, Type::Map | Type::MapIndef);
        self.typed(field, CborType::Map, map, Decoder::map)
    }

    /// Whether another element (or map entry) of a container follows. `remaining` is what
    /// [`Reader::array_any`] or [`Reader::map_any`] returned and is counted down; for an
    /// indefinite length the closing break is consumed when it is reached.
    ///
    /// # Errors
    /// Truncated when the input ends inside an indefinite container.
    pub fn more<F>(&mut self, field: F, remaining: &mut Option<u64>) -> Result<bool, ReadError<F>> {
        match remaining {
            Some(0) => Ok(false),
            Some(n) => {
                *n -= 1;
                Ok(true)
            }
            None => match self.d.datatype() {
                Ok(Type::Break) => {
                    self.d.set_position(self.position().saturating_add(1));
                    Ok(false)
                }
                Ok(_) => Ok(true),
                Err(e) => Err(self.error(field, lift(&e, CborType::Array))),
            },
        }
    }

    /// A byte string of either length form: borrowed when definite, the chunks joined when
    /// indefinite.
    ///
    /// # Errors
    /// Expected(Bytes), Truncated.
    pub fn bytes_any<F>(&mut self, field: F) -> Result<Cow<'b, [u8]>, ReadError<F>> {
        if self.next_byte() != Some(0x5f) {
            return self.bytes(field).map(Cow::Borrowed);
        }
        let indefinite = |ty| ty == Type::BytesIndef;
        self.typed(field, CborType::Bytes, indefinite, |d| {
            let mut out = Vec::new();
            for chunk in d.bytes_iter()? {
                out.extend_from_slice(chunk?);
            }
            Ok(Cow::Owned(out))
        })
    }

    /// A text string of either length form (see [`Reader::bytes_any`]).
    ///
    /// # Errors
    /// Expected(Text), InvalidUtf8, Truncated.
    pub fn str_any<F>(&mut self, field: F) -> Result<Cow<'b, str>, ReadError<F>> {
        if self.next_byte() != Some(0x7f) {
            return self.str(field).map(Cow::Borrowed);
        }
        let indefinite = |ty| ty == Type::StringIndef;
        self.typed(field, CborType::Text, indefinite, |d| {
            let mut out = String::new();
            for chunk in d.str_iter()? {
                out.push_str(chunk?);
            }
            Ok(Cow::Owned(out))
        })
    }

    /// The initial byte of the next item, to tell indefinite strings apart cheaply.
    #[inline]
    fn next_byte(&self) -> Option<u8> {
        self.input().get(self.position()).copied()
    }

    /// Any one item, returned as its encoded bytes (head included); indefinite lengths
    /// inside it are not refused (the codec's pre-pass decides about those).
    ///
    /// # Errors
    /// Truncated, Malformed.
    pub fn raw<F>(&mut self, field: F) -> Result<&'b [u8], ReadError<F>> {
        let at = self.position();
        // minicbor skips a lone break as if it were an item (reserved heads it refuses).
        if self.next_byte() == Some(0xff) {
            return Err(Self::error_at(at, field, ReadErrorKind::Malformed));
        }
        raw_item(&mut self.d).map_err(|e| {
            self.d.set_position(at);
            let kind = if e.is_end_of_input() {
                ReadErrorKind::Truncated
            } else {
                ReadErrorKind::Malformed
            };
            Self::error_at(at, field, kind)
        })
    }

    /// Skips one item.
    ///
    /// # Errors
    /// As [`Reader::raw`].
    pub fn skip<F>(&mut self, field: F) -> Result<(), ReadError<F>> {
        self.raw(field).map(|_| ())
    }

    /// Checks a length just read; on failure rewinds to `at` (the item's head).
    fn within<F, T>(
        &mut self,
        at: usize,
        field: F,
        value: T,
        found: u64,
        len: RangeInclusive<u64>,
    ) -> Result<T, ReadError<F>> {
        if len.contains(&found) {
            return Ok(value);
        }
        self.d.set_position(at);
        let (min, max) = len.into_inner();
        Err(Self::error_at(
            at,
            field,
            ReadErrorKind::Size { min, max, found },
        ))
    }
}

/// Whether `ty` is the indefinite-length form of `want`.
const fn indefinite_of(ty: Type, want: CborType) -> bool {
    matches!(
        (ty, want),
        (Type::BytesIndef, CborType::Bytes)
            | (Type::StringIndef, CborType::Text)
            | (Type::ArrayIndef, CborType::Array)
            | (Type::MapIndef, CborType::Map)
    )
}

/// A `usize` range as `u64` (lossless on every target Rust supports).
fn widen(len: RangeInclusive<usize>) -> RangeInclusive<u64> {
    let (min, max) = len.into_inner();
    min as u64..=max as u64
}

/// Maps a minicbor failure of a typed read onto a kind; `want` is what was being read.
fn lift(e: &Error, want: CborType) -> ReadErrorKind {
    if e.is_end_of_input() {
        ReadErrorKind::Truncated
    } else if e.is_type_mismatch() {
        ReadErrorKind::Expected(want)
    } else if core::error::Error::source(e).is_some_and(|s| s.is::<core::str::Utf8Error>()) {
        ReadErrorKind::InvalidUtf8
    } else {
        // After the type check, what remains is an integer wider than the target.
        ReadErrorKind::OutOfRange
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_every_width_and_sign_are_ints() {
        // 1, 24, 256, 65536, 2^32, -1, -25, -257, -65537, -2^32 - 1, -2^64
        let items: [&[u8]; 11] = [
            &[0x01],
            &[0x18, 24],
            &[0x19, 1, 0],
            &[0x1a, 0, 1, 0, 0],
            &[0x1b, 0, 0, 0, 1, 0, 0, 0, 0],
            &[0x20],
            &[0x38, 24],
            &[0x39, 1, 0],
            &[0x3a, 0, 1, 0, 0],
            &[0x3b, 0, 0, 0, 1, 0, 0, 0, 0],
            &[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ];
        for item in items {
            let ty = Decoder::new(item).datatype().unwrap();
            assert!(is_int(ty), "{item:02x?} is {ty:?}");
            assert!(Reader::new(item).is_int());
        }
        for item in [&[0x40u8][..], &[0x60], &[0xf4], &[0xc1, 0x00], &[0x80]] {
            assert!(
                !is_int(Decoder::new(item).datatype().unwrap()),
                "{item:02x?}"
            );
        }
    }

    #[test]
    fn raw_item_returns_the_whole_item_and_advances() {
        let input = [0x82, 0x01, 0x41, 0xaa, 0x05];
        let mut d = Decoder::new(&input);
        assert_eq!(raw_item(&mut d).unwrap(), &input[..4]);
        assert_eq!(d.position(), 4);
        assert!(raw_item(&mut Decoder::new(&[0x82, 0x01])).is_err());
    }

    #[test]
    fn indefinite_lengths_are_refused() {
        assert_eq!(definite(Some(3)).unwrap(), 3);
        assert!(definite(None).is_err());
    }

    /// `err(input, read)` runs one read on `input` and returns its error, checking that the
    /// position did not move.
    fn err<'b, T: core::fmt::Debug>(
        input: &'b [u8],
        read: impl FnOnce(&mut Reader<'b>) -> Result<T, ReadError>,
    ) -> ReadError {
        let mut r = Reader::new(input);
        let e = read(&mut r).unwrap_err();
        assert_eq!(r.position(), 0, "a failed read moved the reader");
        e
    }

    fn at0(kind: ReadErrorKind) -> ReadError {
        ReadError {
            offset: 0,
            field: "f",
            kind,
        }
    }

    #[test]
    fn each_read_names_its_field_and_what_was_expected() {
        use CborType::*;
        use ReadErrorKind::Expected;
        // A text string where each typed read wants something else.
        let text = [0x61, b'a'];
        assert_eq!(err(&text, |r| r.u64("f")), at0(Expected(Unsigned)));
        assert_eq!(err(&text, |r| r.i64("f")), at0(Expected(Int)));
        assert_eq!(err(&text, |r| r.bool("f")), at0(Expected(Bool)));
        assert_eq!(err(&text, |r| r.null("f")), at0(Expected(Null)));
        assert_eq!(err(&text, |r| r.tag("f")), at0(Expected(Tag)));
        assert_eq!(err(&text, |r| r.bytes("f")), at0(Expected(Bytes)));
        assert_eq!(err(&text, |r| r.array("f")), at0(Expected(Array)));
        assert_eq!(err(&text, |r| r.map("f")), at0(Expected(Map)));
        assert_eq!(err(&[0x40], |r| r.str("f")), at0(Expected(Text)));
        // -1 is no unsigned integer.
        assert_eq!(err(&[0x20], |r| r.u64("f")), at0(Expected(Unsigned)));
    }

    #[test]
    fn typed_reads_return_values_and_advance() {
        // [1, -2, true, null, 6(h'aa'), "hi", {}]
        let input = [
            0x87, 0x01, 0x21, 0xf5, 0xf6, 0xc6, 0x41, 0xaa, 0x62, b'h', b'i', 0xa0,
        ];
        let mut r = Reader::new(&input);
        assert_eq!(r.array_of("a", 7..=7), Ok(7));
        assert_eq!(r.u64("u"), Ok(1));
        assert_eq!(r.int::<i8, _>("i"), Ok(-2));
        assert_eq!(r.bool("b"), Ok(true));
        assert_eq!(r.null("n"), Ok(()));
        assert_eq!(r.tag("t"), Ok(6));
        assert_eq!(r.bytes_sized("s", 1..=1), Ok(&[0xaa][..]));
        assert_eq!(r.str_sized("x", 2..=2), Ok("hi"));
        assert_eq!(r.map_of("m", 0..=0), Ok(0));
        assert_eq!(r.expect_empty("end"), Ok(()));
    }

    #[test]
    fn indefinite_items_are_refused_where_a_length_is_read() {
        assert_eq!(
            err(&[0x5f, 0xff], |r| r.bytes("f")),
            at0(ReadErrorKind::Indefinite)
        );
        assert_eq!(
            err(&[0x7f, 0xff], |r| r.str("f")),
            at0(ReadErrorKind::Indefinite)
        );
        assert_eq!(
            err(&[0x9f, 0xff], |r| r.array("f")),
            at0(ReadErrorKind::Indefinite)
        );
        assert_eq!(
            err(&[0xbf, 0xff], |r| r.map("f")),
            at0(ReadErrorKind::Indefinite)
        );
        // Another type's indefinite form is just another type.
        assert_eq!(
            err(&[0xbf, 0xff], |r| r.array("f")),
            at0(ReadErrorKind::Expected(CborType::Array))
        );
        // raw keeps them: the codec's pre-pass decides.
        assert_eq!(Reader::new(&[0x9f, 0xff]).raw("f"), Ok(&[0x9f, 0xff][..]));
    }

    #[test]
    fn any_length_reads_take_both_forms_and_walk_to_the_break() {
        // [1, {2: 3}] definite, then the same with every container indefinite.
        for input in [
            &[0x82, 0x01, 0xa1, 0x02, 0x03][..],
            &[0x9f, 0x01, 0xbf, 0x02, 0x03, 0xff, 0xff],
        ] {
            let mut r = Reader::new(input);
            let mut outer = r.array_any("a").unwrap();
            let mut items = 0;
            while r.more("a", &mut outer).unwrap() {
                if r.is_int() {
                    assert_eq!(r.u64("i"), Ok(1));
                } else {
                    let mut inner = r.map_any("m").unwrap();
                    while r.more("m", &mut inner).unwrap() {
                        assert_eq!((r.u64("k"), r.u64("v")), (Ok(2), Ok(3)));
                    }
                }
                items += 1;
            }
            assert_eq!(items, 2, "{input:02x?}");
            assert_eq!(r.expect_empty("end"), Ok(()), "{input:02x?}");
        }
        assert_eq!(Reader::new(&[0x83]).array_any("f"), Ok(Some(3)));
        assert_eq!(Reader::new(&[0x9f]).array_any("f"), Ok(None));
        assert_eq!(Reader::new(&[0xbf]).map_any("f"), Ok(None));
        // A map is no array and the other way round; the reader does not move.
        use CborType::*;
        use ReadErrorKind::Expected;
        assert_eq!(
            err(&[0xbf, 0xff], |r| r.array_any("f")),
            at0(Expected(Array))
        );
        assert_eq!(err(&[0x9f, 0xff], |r| r.map_any("f")), at0(Expected(Map)));
        // An indefinite container cut before its break.
        let mut r = Reader::new(&[0x9f, 0x01]);
        let mut len = r.array_any("f").unwrap();
        assert_eq!(r.more("f", &mut len), Ok(true));
        r.u64("f").unwrap();
        let cut = r.more("f", &mut len).unwrap_err();
        assert_eq!((cut.offset, cut.kind), (2, ReadErrorKind::Truncated));
    }

    #[test]
    fn any_length_strings_join_their_chunks() {
        let mut r = Reader::new(&[0x42, 0x01, 0x02]);
        assert_eq!(r.bytes_any("f"), Ok(Cow::Borrowed(&[1u8, 2][..])));
        // (_ h'01', h'02') and (_ "a", "b").
        let mut r = Reader::new(&[0x5f, 0x41, 0x01, 0x41, 0x02, 0xff]);
        assert_eq!(r.bytes_any("f").unwrap().as_ref(), [1, 2]);
        assert_eq!(r.expect_empty("end"), Ok(()));
        let mut r = Reader::new(&[0x7f, 0x61, b'a', 0x61, b'b', 0xff, 0x61, b'c']);
        assert_eq!(r.str_any("f").unwrap(), "ab");
        assert_eq!(r.str_any("f"), Ok(Cow::Borrowed("c")));
        use CborType::*;
        use ReadErrorKind::Expected;
        assert_eq!(
            err(&[0x7f, 0xff], |r| r.bytes_any("f")),
            at0(Expected(Bytes))
        );
        assert_eq!(err(&[0x5f, 0xff], |r| r.str_any("f")), at0(Expected(Text)));
        // A chunk of the wrong type, and a cut before the break: the reader stays put.
        assert_eq!(
            err(&[0x5f, 0x61, b'a', 0xff], |r| r.bytes_any("f")),
            at0(Expected(Bytes))
        );
        assert_eq!(
            err(&[0x7f, 0x61, b'a'], |r| r.str_any("f")),
            at0(ReadErrorKind::Truncated)
        );
    }

    #[test]
    fn truncation_and_malformation_are_told_apart() {
        // bstr of 2 with one byte; uint head with no argument; nothing at all.
        assert_eq!(
            err(&[0x42, 0x01], |r| r.bytes("f")),
            at0(ReadErrorKind::Truncated)
        );
        assert_eq!(err(&[0x18], |r| r.u64("f")), at0(ReadErrorKind::Truncated));
        assert_eq!(err(&[], |r| r.i64("f")), at0(ReadErrorKind::Truncated));
        assert_eq!(
            err(&[0x82, 0x01], |r| r.raw("f")),
            at0(ReadErrorKind::Truncated)
        );
        // Reserved additional information 28.
        assert_eq!(err(&[0x1c], |r| r.u64("f")), at0(ReadErrorKind::Malformed));
        assert_eq!(err(&[0xff], |r| r.raw("f")), at0(ReadErrorKind::Malformed));
        // "\xff" is no UTF-8.
        assert_eq!(
            err(&[0x61, 0xff], |r| r.str("f")),
            at0(ReadErrorKind::InvalidUtf8)
        );
    }

    #[test]
    fn integers_and_sizes_out_of_range() {
        // 2^63 does not fit i64; -2^64 neither; 300 does not fit u8.
        let big = [0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(err(&big, |r| r.i64("f")), at0(ReadErrorKind::OutOfRange));
        let low = [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(err(&low, |r| r.i64("f")), at0(ReadErrorKind::OutOfRange));
        assert_eq!(
            err(&[0x19, 0x01, 0x2c], |r| r.int::<u8, _>("f")),
            at0(ReadErrorKind::OutOfRange)
        );
        let size = |min, max, found| at0(ReadErrorKind::Size { min, max, found });
        assert_eq!(
            err(&[0x41, 0], |r| r.bytes_sized("f", 2..=4)),
            size(2, 4, 1)
        );
        assert_eq!(
            err(&[0x61, b'a'], |r| r.str_sized("f", 0..=0)),
            size(0, 0, 1)
        );
        assert_eq!(
            err(&[0x83, 1, 2, 3], |r| r.array_of("f", 1..=2)),
            size(1, 2, 3)
        );
        assert_eq!(err(&[0xa0], |r| r.map_of("f", 1..=1)), size(1, 1, 0));
    }

    #[test]
    fn leftover_bytes_are_trailing_at_the_first_extra_byte() {
        let mut r = Reader::new(&[0x01, 0x02]);
        assert_eq!(r.u64(()), Ok(1));
        assert_eq!(
            r.expect_empty("end"),
            Err(ReadError {
                offset: 1,
                field: "end",
                kind: ReadErrorKind::Trailing
            })
        );
    }

    #[test]
    fn the_field_can_be_any_caller_type() {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Field {
            Version,
        }
        let mut r = Reader::new(&[0x00, 0x40]);
        r.skip(Field::Version).unwrap();
        let e = r.u64(Field::Version).unwrap_err();
        assert_eq!(
            (e.offset, e.field, e.kind),
            (
                1,
                Field::Version,
                ReadErrorKind::Expected(CborType::Unsigned)
            )
        );
        assert_eq!(r.error(7i64, ReadErrorKind::Duplicate).offset, 1);
        assert_eq!(
            alloc::format!("{e}"),
            "Version: expected Unsigned at byte 1"
        );
    }
}
