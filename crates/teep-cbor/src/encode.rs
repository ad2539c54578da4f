//! Deterministic encoding helpers for what we emit: shortest heads and sorted maps.
//!
//! minicbor already writes shortest heads; these helpers exist for the one thing it leaves
//! to the caller, map key order (RFC 8949 §4.2.1), and for hand-built structures such as
//! COSE `Sig_structure`s or SUIT digests.

use alloc::vec::Vec;
use core::ops::Range;

/// CBOR major types (RFC 8949 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Major {
    /// Unsigned integer.
    Unsigned = 0,
    /// Negative integer `-1 - arg`.
    Negative = 1,
    /// Byte string.
    Bytes = 2,
    /// UTF-8 text string.
    Text = 3,
    /// Array.
    Array = 4,
    /// Map.
    Map = 5,
    /// Tag.
    Tag = 6,
    /// Simple values and floats.
    Simple = 7,
}

/// Appends a head with the shortest encoding of `arg` (preferred serialization).
///
/// For [`Major::Simple`] only values below 24 and from 32 to 255 are meaningful; floats have
/// their own widths and are not written through this function.
pub fn write_head(major: Major, arg: u64, out: &mut Vec<u8>) {
    let m = (major as u8) << 5;
    // The casts below only run after the range test shows the value fits.
    match arg {
        0..=23 => out.push(m | arg as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

/// Length in bytes of the head [`write_head`] writes for `arg`, so that callers can size a
/// buffer exactly before writing into it.
#[must_use]
pub const fn head_len(arg: u64) -> usize {
    match arg {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Length in bytes of the integer [`write_int`] writes.
#[must_use]
pub const fn int_len(value: i64) -> usize {
    if value >= 0 {
        head_len(value.unsigned_abs())
    } else {
        head_len(!value as u64)
    }
}

/// Length in bytes of the byte string [`write_bytes`] writes for `len` bytes of content.
#[must_use]
pub const fn bytes_len(len: usize) -> usize {
    head_len(len as u64) + len
}

/// Appends an integer in its shortest encoding.
pub fn write_int(value: i64, out: &mut Vec<u8>) {
    match u64::try_from(value) {
        Ok(unsigned) => write_head(Major::Unsigned, unsigned, out),
        // -1 - value, computed without overflow as the bitwise complement.
        Err(_) => write_head(Major::Negative, !value as u64, out),
    }
}

/// Appends a byte string.
pub fn write_bytes(value: &[u8], out: &mut Vec<u8>) {
    write_head(Major::Bytes, value.len() as u64, out);
    out.extend_from_slice(value);
}

/// Appends a text string.
pub fn write_text(value: &str, out: &mut Vec<u8>) {
    write_head(Major::Text, value.len() as u64, out);
    out.extend_from_slice(value.as_bytes());
}

/// A map built from already-encoded keys and values and written with its keys in bytewise
/// order of their encodings (RFC 8949 §4.2.1 core deterministic encoding).
///
/// ```
/// use teep_cbor::{MapBuilder, check, Profile};
/// let mut map = MapBuilder::new();
/// map.insert(&[0x13], &[0x40]).insert(&[0x03], &[0x80]); // {19: h'', 3: []}
/// let mut out = Vec::new();
/// map.finish(&mut out).unwrap();
/// assert_eq!(out, [0xa2, 0x03, 0x80, 0x13, 0x40]);
/// assert!(check(&out, &Profile::DETERMINISTIC).is_ok());
/// ```
#[derive(Debug, Default, Clone)]
pub struct MapBuilder {
    /// All keys and values, back to back; `entries` index into it.
    buf: Vec<u8>,
    entries: Vec<(Range<usize>, Range<usize>)>,
}

/// Two entries of a [`MapBuilder`] have the same encoded key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("map key of entry {later} repeats the key of entry {earlier}")]
pub struct DuplicateKey {
    /// Insertion index of the first entry with the key.
    pub earlier: usize,
    /// Insertion index of the repeat.
    pub later: usize,
}

impl MapBuilder {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry. `key` and `value` must each be one encoded item in preferred
    /// serialization (as minicbor or the writers of this module produce).
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        let key_at = self.append(key);
        let value_at = self.append(value);
        self.entries.push((key_at, value_at));
        self
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        start..self.buf.len()
    }

    /// Number of entries so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the map, keys sorted, to `out`.
    ///
    /// # Errors
    /// [`DuplicateKey`] when two entries have the same key; `out` is then left unchanged.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), DuplicateKey> {
        let slice = |range: &Range<usize>| self.buf.get(range.clone()).unwrap_or_default();
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        let key_of = |i: &usize| self.entries.get(*i).map(|(key, _)| slice(key));
        // Stable sort: equal keys stay in insertion order, so the pair names earlier/later.
        order.sort_by_key(key_of);
        for pair in order.windows(2) {
            if let [earlier, later] = pair
                && key_of(earlier) == key_of(later)
            {
                return Err(DuplicateKey {
                    earlier: *earlier,
                    later: *later,
                });
            }
        }
        write_head(Major::Map, self.entries.len() as u64, out);
        for (key, value) in order.iter().filter_map(|i| self.entries.get(*i)) {
            out.extend_from_slice(slice(key));
            out.extend_from_slice(slice(value));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn heads_use_the_shortest_form_at_every_boundary() {
        let cases: [(u64, &[u8]); 9] = [
            (0, &[0x00]),
            (23, &[0x17]),
            (24, &[0x18, 0x18]),
            (0xff, &[0x18, 0xff]),
            (0x100, &[0x19, 0x01, 0x00]),
            (0xffff, &[0x19, 0xff, 0xff]),
            (0x1_0000, &[0x1a, 0x00, 0x01, 0x00, 0x00]),
            (0xffff_ffff, &[0x1a, 0xff, 0xff, 0xff, 0xff]),
            (0x1_0000_0000, &[0x1b, 0, 0, 0, 1, 0, 0, 0, 0]),
        ];
        for (arg, want) in cases {
            let mut out = Vec::new();
            write_head(Major::Unsigned, arg, &mut out);
            assert_eq!(out, want, "arg {arg}");
        }
    }

    #[test]
    fn lengths_match_what_is_written() {
        for arg in [
            0,
            23,
            24,
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
        ] {
            let mut out = Vec::new();
            write_head(Major::Bytes, arg, &mut out);
            assert_eq!(head_len(arg), out.len(), "arg {arg}");
        }
        for value in [0, 23, 24, -1, -24, -25, -9, -35, 33, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_int(value, &mut out);
            assert_eq!(int_len(value), out.len(), "value {value}");
        }
        let mut out = Vec::new();
        write_bytes(&[7; 300], &mut out);
        assert_eq!(bytes_len(300), out.len());
    }

    /// Moved from teep-cose's former head writer, whose callers now use this module.
    #[test]
    fn heads_are_preferred_and_sized_right() {
        for (value, expect) in [
            (0u64, &[0x40u8][..]),
            (23, &[0x57]),
            (24, &[0x58, 24]),
            (256, &[0x59, 1, 0]),
            (65536, &[0x5a, 0, 1, 0, 0]),
            (1 << 32, &[0x5b, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            let mut out = Vec::new();
            write_head(Major::Bytes, value, &mut out);
            assert_eq!(out, expect);
            assert_eq!(head_len(value), expect.len());
        }
        let mut out = Vec::new();
        write_int(-9, &mut out);
        write_int(-35, &mut out);
        write_int(33, &mut out);
        assert_eq!(out, [0x28, 0x38, 0x22, 0x18, 0x21]);
        assert_eq!(int_len(-35) + int_len(-9) + int_len(33), 5);
    }

    #[test]
    fn integers_strings_and_tags() {
        let mut out = Vec::new();
        write_int(-1, &mut out);
        write_int(-25, &mut out);
        write_int(i64::MIN, &mut out);
        write_int(500, &mut out);
        write_bytes(&[1, 2], &mut out);
        write_text("a", &mut out);
        write_head(Major::Tag, 18, &mut out);
        assert_eq!(
            out,
            [
                0x20, 0x38, 0x18, 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x19, 0x01,
                0xf4, 0x42, 1, 2, 0x61, b'a', 0xd2
            ]
        );
    }

    #[test]
    fn map_keys_sort_bytewise_not_numerically() {
        // 24 encodes as 0x1818, -1 as 0x20: bytewise, 10 < 24 < -1 < "a".
        let mut map = MapBuilder::new();
        map.insert(&[0x61, b'a'], &[0x01])
            .insert(&[0x20], &[0x02])
            .insert(&[0x18, 0x18], &[0x03])
            .insert(&[0x0a], &[0x04]);
        assert_eq!(map.len(), 4);
        let mut out = Vec::new();
        map.finish(&mut out).unwrap();
        assert_eq!(
            out,
            [
                0xa4, 0x0a, 0x04, 0x18, 0x18, 0x03, 0x20, 0x02, 0x61, b'a', 0x01
            ]
        );
    }

    #[test]
    fn duplicate_keys_are_refused_and_out_untouched() {
        let mut map = MapBuilder::new();
        map.insert(&[0x01], &[0x01])
            .insert(&[0x02], &[0x02])
            .insert(&[0x01], &[0x03]);
        let mut out = vec![0xaa];
        assert_eq!(
            map.finish(&mut out),
            Err(DuplicateKey {
                earlier: 0,
                later: 2
            })
        );
        assert_eq!(out, [0xaa]);
    }

    #[test]
    fn empty_map() {
        let map = MapBuilder::new();
        assert!(map.is_empty());
        let mut out = Vec::new();
        map.finish(&mut out).unwrap();
        assert_eq!(out, [0xa0]);
    }
}
