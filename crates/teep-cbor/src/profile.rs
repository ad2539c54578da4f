//! Which encodings a caller accepts.

/// The rules an input must follow beyond well-formedness.
///
/// Every profile rejects inputs that are not well-formed, duplicate map keys, invalid UTF-8
/// in text strings and trailing bytes; those are not fields because no TEEP, SUIT or EAT
/// reader can tolerate them. Start from one of the consts and adjust:
///
/// ```
/// use teep_cbor::Profile;
/// let p = Profile::TEEP.with_max_depth(8).with_max_size(4096);
/// assert!(teep_cbor::check(&[0x81, 0x01], &p).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Accept indefinite-length strings, arrays and maps.
    pub allow_indefinite: bool,
    /// Require preferred serialization: shortest heads for integers, lengths and tags, and the
    /// shortest float that keeps the value (RFC 8949 §4.1).
    pub require_preferred: bool,
    /// Accept tags (major type 6).
    pub allow_tags: bool,
    /// Require map keys in strictly increasing bytewise order of their encodings
    /// (RFC 8949 §4.2.1).
    pub require_sorted_keys: bool,
    /// Deepest nesting of arrays, maps and tags; a top-level scalar has depth 0, `[1]` depth 1.
    /// A `u8` so that no profile can ask the checker's recursive key comparison for a depth
    /// that would exhaust a small (TEE) stack.
    pub max_depth: u8,
    /// Longest accepted item, in bytes.
    pub max_size: usize,
}

/// Nesting limit of the built-in profiles: TEEP messages, SUIT manifests and EAT claim sets
/// nest fewer than 12 levels, so 32 leaves room for extensions while bounding work.
const DEFAULT_MAX_DEPTH: u8 = 32;

/// Size limit of the built-in profiles: an Update may carry integrated TC binaries, so the
/// limit is generous; callers with tighter transports lower it.
const DEFAULT_MAX_SIZE: usize = 16 * 1024 * 1024;

impl Profile {
    /// What we accept from TEEP peers (TAM, Agent). The protocol draft does not require
    /// deterministic encoding (its own QueryRequest example has unsorted keys), so any
    /// well-formed encoding is accepted: non-preferred heads, indefinite lengths, any key
    /// order and tags (COSE_Sign1_Tagged).
    pub const TEEP: Self = Self {
        allow_indefinite: true,
        require_preferred: false,
        allow_tags: true,
        require_sorted_keys: false,
        max_depth: DEFAULT_MAX_DEPTH,
        max_size: DEFAULT_MAX_SIZE,
    };

    /// The TEEP EAT profile (draft-ietf-teep-protocol §7.3 / Appendix A): definite lengths
    /// only, preferred serialization (including floats), no tags. Key order is free.
    pub const EAT: Self = Self {
        allow_indefinite: false,
        require_preferred: true,
        allow_tags: false,
        require_sorted_keys: false,
        max_depth: DEFAULT_MAX_DEPTH,
        max_size: DEFAULT_MAX_SIZE,
    };

    /// RFC 8949 §4.2.1 core deterministic encoding: definite lengths, preferred serialization
    /// and map keys sorted bytewise by their encodings. Tags are allowed.
    pub const DETERMINISTIC: Self = Self {
        allow_indefinite: false,
        require_preferred: true,
        allow_tags: true,
        require_sorted_keys: true,
        max_depth: DEFAULT_MAX_DEPTH,
        max_size: DEFAULT_MAX_SIZE,
    };

    /// The same profile with another nesting limit.
    #[must_use]
    pub const fn with_max_depth(self, max_depth: u8) -> Self {
        Self { max_depth, ..self }
    }

    /// The same profile with another size limit.
    #[must_use]
    pub const fn with_max_size(self, max_size: usize) -> Self {
        Self { max_size, ..self }
    }
}
