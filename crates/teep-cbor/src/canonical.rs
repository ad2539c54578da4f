//! Re-encoding one already-checked item in preferred serialization with definite lengths.
//!
//! Used to compare map keys as data items when a peer's encoding of a key is not the
//! canonical one (allowed by [`crate::Profile::TEEP`]); map order inside the key is kept.

use alloc::vec::Vec;

use crate::encode::{Major, write_head};
use crate::head::{BREAK, Head, definite_content, f32_to_f16_exact, f64_to_f32_exact, read_head};
use crate::{CborError, CborErrorKind};

/// Recursion guard: keys were already checked against a `u8` depth limit, so this is never
/// reached for checked input; it keeps the function safe if misused.
const MAX_RECURSION: u8 = u8::MAX;

/// Appends the canonical encoding of the single item `item` to `out`.
pub(crate) fn write_canonical(item: &[u8], out: &mut Vec<u8>) -> Result<(), CborError> {
    item_at(item, 0, out, MAX_RECURSION).map(|_| ())
}

/// Writes the item at `pos`; returns the offset after it.
fn item_at(bytes: &[u8], pos: usize, out: &mut Vec<u8>, depth: u8) -> Result<usize, CborError> {
    let head = read_head(bytes, pos)?;
    let after_head = pos + head.len;
    let nested = || {
        depth
            .checked_sub(1)
            .ok_or_else(|| CborError::new(pos, CborErrorKind::TooDeep))
    };
    match (head.major, head.is_indefinite()) {
        (0 | 1, false) => {
            write_head(major(head.major), head.arg, out);
            Ok(after_head)
        }
        (2 | 3, false) => {
            let (content, end) = definite_content(bytes, pos, &head)?;
            write_string(head.major, content, out);
            Ok(end)
        }
        (2 | 3, true) => indefinite_string(bytes, pos, &head, out),
        (4 | 5, false) => {
            write_head(major(head.major), head.arg, out);
            let items = if head.major == 5 {
                head.arg.saturating_mul(2)
            } else {
                head.arg
            };
            let mut at = after_head;
            for _ in 0..items {
                at = item_at(bytes, at, out, nested()?)?;
            }
            Ok(at)
        }
        (4 | 5, true) => {
            // The count is known only at the break, so the items go to a side buffer first.
            let mut items = Vec::new();
            let mut count: u64 = 0;
            let mut at = after_head;
            while bytes.get(at) != Some(&BREAK) {
                at = item_at(bytes, at, &mut items, nested()?)?;
                count += 1;
            }
            let entries = if head.major == 5 { count / 2 } else { count };
            write_head(major(head.major), entries, out);
            out.extend_from_slice(&items);
            Ok(at + 1)
        }
        (6, false) => {
            write_head(Major::Tag, head.arg, out);
            item_at(bytes, after_head, out, nested()?)
        }
        (7, false) => {
            write_simple_or_float(&head, out);
            Ok(after_head)
        }
        _ => Err(CborError::new(pos, CborErrorKind::ReservedAdditionalInfo)),
    }
}

const fn major(m: u8) -> Major {
    match m {
        0 => Major::Unsigned,
        1 => Major::Negative,
        2 => Major::Bytes,
        3 => Major::Text,
        4 => Major::Array,
        5 => Major::Map,
        6 => Major::Tag,
        _ => Major::Simple,
    }
}

fn write_string(m: u8, content: &[u8], out: &mut Vec<u8>) {
    write_head(major(m), content.len() as u64, out);
    out.extend_from_slice(content);
}

/// Joins the chunks of an indefinite-length string into one definite string.
fn indefinite_string(
    bytes: &[u8],
    pos: usize,
    head: &Head,
    out: &mut Vec<u8>,
) -> Result<usize, CborError> {
    let mut joined = Vec::new();
    let mut at = pos + head.len;
    while bytes.get(at) != Some(&BREAK) {
        let chunk = read_head(bytes, at)?;
        let (content, end) = definite_content(bytes, at, &chunk)?;
        joined.extend_from_slice(content);
        at = end;
    }
    write_string(head.major, &joined, out);
    Ok(at + 1)
}

fn write_simple_or_float(head: &Head, out: &mut Vec<u8>) {
    match head.ai {
        25 => write_half(head.arg as u16, out),
        26 => write_single(head.arg as u32, out),
        27 => match f64_to_f32_exact(head.arg) {
            Some(single) => write_single(single, out),
            None => {
                out.push(0xfb);
                out.extend_from_slice(&head.arg.to_be_bytes());
            }
        },
        // Simple values: a checked input has no non-preferred form for them.
        _ => write_head(Major::Simple, head.arg, out),
    }
}

fn write_single(bits: u32, out: &mut Vec<u8>) {
    match f32_to_f16_exact(bits) {
        Some(half) => write_half(half, out),
        None => {
            out.push(0xfa);
            out.extend_from_slice(&bits.to_be_bytes());
        }
    }
}

fn write_half(bits: u16, out: &mut Vec<u8>) {
    out.push(0xf9);
    out.extend_from_slice(&bits.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(hex_text: &str) -> alloc::string::String {
        let mut out = Vec::new();
        write_canonical(&hex::decode(hex_text.replace(' ', "")).unwrap(), &mut out).unwrap();
        hex::encode(out)
    }

    #[test]
    fn every_kind_of_variation_is_undone() {
        let cases = [
            ("18 01", "01"),                              // wide integer
            ("39 00 00", "20"),                           // wide negative integer
            ("5f 41 01 42 02 03 ff", "43010203"),         // chunked bytes
            ("7f 61 61 60 ff", "6161"),                   // chunked text with an empty chunk
            ("9f 18 01 9f ff ff", "820180"),              // indefinite arrays
            ("bf 01 bf ff ff", "a101a0"),                 // indefinite maps, count in pairs
            ("d9 00 01 1a 00 00 00 02", "c102"),          // wide tag and content
            ("fb 3f f0 00 00 00 00 00 00", "f93c00"),     // 1.0 as f64 -> f16
            ("fb 40 f8 6a 00 00 00 00 00", "fa47c35000"), // 100000.0: f64 -> f32, too big for f16
            ("fa 7f c0 00 00", "f97e00"),                 // NaN
            ("f8 20", "f820"),                            // simple(32) stays
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "{input}");
        }
    }
}
