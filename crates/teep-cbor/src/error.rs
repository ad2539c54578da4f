//! Typed errors: every rejection names what is wrong and the byte offset where it is.

/// Why an input was rejected, and where.
///
/// `offset` is a byte offset into the checked input. For most kinds it is the first byte of
/// the offending item's head; see each [`CborErrorKind`] variant for the exceptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct CborError {
    /// Byte offset into the input.
    pub offset: usize,
    /// What is wrong.
    pub kind: CborErrorKind,
}

impl CborError {
    pub(crate) const fn new(offset: usize, kind: CborErrorKind) -> Self {
        Self { offset, kind }
    }
}

/// What is wrong with a CBOR input.
///
/// The first group of variants makes an input not well-formed (RFC 8949 §3 and Appendix F);
/// every profile rejects those. The second group is a profile rule (see [`crate::Profile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborErrorKind {
    /// The input ends inside an item. `offset` is the head of the item whose argument or
    /// content runs past the end, or the end of the input when a whole item is missing.
    #[error("input ends inside an item")]
    Truncated,
    /// Bytes follow the single expected item. `offset` is the first extra byte.
    #[error("bytes follow the end of the item")]
    TrailingBytes,
    /// Additional information 28..30 (reserved), or 31 (indefinite length) on an integer or
    /// a tag, where RFC 8949 gives it no meaning.
    #[error("reserved additional information in the head")]
    ReservedAdditionalInfo,
    /// A "break" (0xff) outside an indefinite-length item, or between a map key and its value.
    #[error("unexpected break byte")]
    UnexpectedBreak,
    /// A simple value encoded in two bytes with a value below 32 (RFC 8949 §3.3: not
    /// well-formed).
    #[error("two-byte simple value below 32")]
    InvalidSimpleValue,
    /// A chunk of an indefinite-length string that is not a definite-length string of the
    /// same major type. `offset` is the chunk's head.
    #[error("indefinite-length string chunk of the wrong type")]
    InvalidChunk,
    /// A text string (or one chunk of an indefinite-length text string) that is not valid
    /// UTF-8. `offset` is the first byte that is not part of a valid UTF-8 sequence.
    #[error("text string is not valid UTF-8")]
    InvalidUtf8,
    /// An indefinite-length string, array or map where the profile requires definite lengths.
    #[error("indefinite length not allowed")]
    IndefiniteLength,
    /// An integer, length or tag argument not in its shortest form (preferred serialization,
    /// RFC 8949 §4.1).
    #[error("argument not in its shortest form")]
    NonPreferredHead,
    /// A float that a shorter float encodes exactly (preferred serialization, RFC 8949 §4.1).
    #[error("float not in its shortest exact form")]
    NonPreferredFloat,
    /// A map key equal to an earlier key of the same map. Keys are compared as data items, so
    /// `1` and its non-preferred encoding `0x18 0x01` are the same key. `offset` is the head of
    /// the later key.
    #[error("duplicate map key")]
    DuplicateMapKey,
    /// A map key that does not follow the previous key in bytewise order of the encodings
    /// (RFC 8949 §4.2.1). `offset` is the head of the out-of-order key.
    #[error("map keys not in bytewise lexicographic order")]
    UnsortedMapKeys,
    /// A tag where the profile forbids tags (the TEEP EAT profile).
    #[error("tag not allowed")]
    TagNotAllowed,
    /// Arrays, maps and tags nested deeper than the profile's `max_depth`. `offset` is the head
    /// of the item that goes one level too deep.
    #[error("nesting too deep")]
    TooDeep,
    /// The item is longer than the profile's `max_size`. `offset` is `max_size`.
    #[error("item larger than the size limit")]
    TooLarge,
}
