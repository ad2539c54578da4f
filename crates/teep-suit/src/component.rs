//! The text forms of a [`ComponentId`]: the canonical one (`Display` / `FromStr`, for
//! URIs, command lines and configuration), the human one ([`ComponentId::human`], for
//! diagnostics) and, with feature `serde`, the JSON one (an array of hex strings).
//!
//! The canonical form (docs/wire-format.md, "ComponentId text form") writes every segment
//! as `/` followed by the segment percent-encoded: the RFC 3986 unreserved bytes
//! (`A-Z a-z 0-9 - . _ ~`) stand for themselves, every other byte is `%XX` with upper-case
//! hex, and a segment that is exactly `.` or `..` has its dots encoded (`%2E`) so that URI
//! dot-segment removal cannot change it. No segments is the empty string and one empty
//! segment is `/`, so every identifier has exactly one form; the parser accepts only that
//! form, which makes `parse(display(id)) == id` and `display(parse(s)) == s`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::str::FromStr;

use crate::model::ComponentId;

/// Why a string is not the canonical text form of a [`ComponentId`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseComponentIdError {
    /// A non-empty form starts with `/` (the segment separator comes before each segment).
    #[error("a component ID's text form starts with '/' (or is empty for no segments)")]
    MissingLeadingSlash,
    /// A character outside the unreserved set was not percent-encoded.
    #[error("character {ch:?} at byte {at} must be percent-encoded")]
    Unescaped {
        /// Byte offset in the input.
        at: usize,
        /// The character found.
        ch: char,
    },
    /// `%` not followed by two hex digits.
    #[error("bad percent escape at byte {at}")]
    BadEscape {
        /// Byte offset of the `%`.
        at: usize,
    },
    /// The input decodes, but is not the one canonical form of what it decodes to (an
    /// escaped unreserved byte, lower-case hex, a bare `.`/`..` segment): accepting it
    /// would give one identifier two spellings, so allow-lists and URIs could disagree.
    #[error("not the canonical form; write {canonical}")]
    NonCanonical {
        /// The canonical form of the decoded identifier.
        canonical: String,
    },
}

/// A byte written as itself in a segment (RFC 3986 `unreserved`).
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Writes one segment, without its leading `/`.
fn write_segment(f: &mut impl fmt::Write, segment: &[u8]) -> fmt::Result {
    let dots = matches!(segment, b"." | b"..");
    for &b in segment {
        if unreserved(b) && !dots {
            f.write_char(char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// The canonical text form.
impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.0 {
            f.write_char('/')?;
            write_segment(f, segment)?;
        }
        Ok(())
    }
}

/// Decodes one segment (`text` starts at byte `base` of the whole input).
fn parse_segment(text: &str, base: usize) -> Result<Vec<u8>, ParseComponentIdError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| core::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(ParseComponentIdError::BadEscape { at: base + i })?;
            out.push(hex);
            i += 3;
        } else if unreserved(b) {
            out.push(b);
            i += 1;
        } else {
            let ch = text
                .get(i..)
                .and_then(|rest| rest.chars().next())
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            return Err(ParseComponentIdError::Unescaped { at: base + i, ch });
        }
    }
    Ok(out)
}

/// Parses the canonical text form (and only it).
impl FromStr for ComponentId {
    type Err = ParseComponentIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        let rest = s
            .strip_prefix('/')
            .ok_or(ParseComponentIdError::MissingLeadingSlash)?;
        let mut segments = Vec::new();
        let mut base = 1;
        for text in rest.split('/') {
            segments.push(parse_segment(text, base)?);
            base += text.len() + 1;
        }
        let id = Self(segments);
        let canonical = alloc::string::ToString::to_string(&id);
        if canonical != s {
            return Err(ParseComponentIdError::NonCanonical { canonical });
        }
        Ok(id)
    }
}

/// [`ComponentId::human`]: `['TEEP-Device', h'00ff']`, printable text segments quoted,
/// others in hex (the diagnostic-notation look of `teep suit inspect`).
#[derive(Clone, Copy, Debug)]
pub struct Human<'a>(&'a ComponentId);

impl fmt::Display for Human<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, s) in self.0.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match core::str::from_utf8(s) {
                Ok(t) if t.chars().all(|c| !c.is_control()) && !t.is_empty() => write!(f, "'{t}'")?,
                _ => write!(f, "h'{}'", hex::encode(s))?,
            }
        }
        f.write_str("]")
    }
}

impl ComponentId {
    /// The form for people reading diagnostics (not parseable; use `Display` for that).
    pub fn human(&self) -> Human<'_> {
        Human(self)
    }
}

/// JSON (and any serde format): an array of hex strings, one per segment, as the Broker's
/// local API has always written it.
#[cfg(feature = "serde")]
impl serde::Serialize for ComponentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(hex::encode))
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ComponentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let segments = Vec::<String>::deserialize(d)?;
        segments
            .iter()
            .map(hex::decode)
            .collect::<Result<_, _>>()
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;

    use super::*;

    fn id(segments: &[&[u8]]) -> ComponentId {
        ComponentId(segments.iter().map(|s| s.to_vec()).collect())
    }

    #[test]
    fn pinned_forms() {
        let cases: &[(&[&[u8]], &str)] = &[
            (&[], ""),
            (&[b""], "/"),
            (&[b"", b""], "//"),
            (
                &[b"TEEP-Device", b"SecureFS", b"com.example.app", b"ta"],
                "/TEEP-Device/SecureFS/com.example.app/ta",
            ),
            (&[b"a/b", b"c d", b"%"], "/a%2Fb/c%20d/%25"),
            (&[&[0x00, 0xff]], "/%00%FF"),
            (&[b".", b"..", b"..."], "/%2E/%2E%2E/..."),
            (&[b"\xc3\xa9"], "/%C3%A9"),
        ];
        for (segments, text) in cases {
            let id = id(segments);
            assert_eq!(id.to_string(), *text, "{segments:?}");
            assert_eq!(text.parse::<ComponentId>(), Ok(id), "{text}");
        }
    }

    /// Every other spelling of an identifier is refused, so one ID has one text.
    #[test]
    fn refuses_other_spellings() {
        let non_canonical = ["/%61", "/%ff", "/.", "/..", "/%2e"];
        for text in non_canonical {
            assert!(
                matches!(
                    text.parse::<ComponentId>(),
                    Err(ParseComponentIdError::NonCanonical { .. })
                ),
                "{text}"
            );
        }
        assert_eq!(
            "a/b".parse::<ComponentId>(),
            Err(ParseComponentIdError::MissingLeadingSlash)
        );
        assert_eq!(
            "/a b".parse::<ComponentId>(),
            Err(ParseComponentIdError::Unescaped { at: 2, ch: ' ' })
        );
        assert_eq!(
            "/ok/é".parse::<ComponentId>(),
            Err(ParseComponentIdError::Unescaped { at: 4, ch: 'é' })
        );
        for (text, at) in [("/%", 1), ("/x%4", 2), ("/%zz", 1), ("//%é0", 2)] {
            assert_eq!(
                text.parse::<ComponentId>(),
                Err(ParseComponentIdError::BadEscape { at }),
                "{text}"
            );
        }
    }

    proptest::proptest! {
        /// Text -> ID -> text and ID -> text -> ID are identities.
        #[test]
        fn round_trips(segments in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6), 0..5)) {
            let id = ComponentId(segments);
            let text = id.to_string();
            proptest::prop_assert_eq!(text.parse::<ComponentId>(), Ok(id.clone()));
            proptest::prop_assert_eq!(text.parse::<ComponentId>().map(|i| i.to_string()), Ok(text));
        }

        /// Any string the parser accepts is printed back unchanged (and any other string,
        /// multi-byte characters included, is refused without a panic).
        #[test]
        fn accepted_text_is_canonical(text in proptest::prop_oneof![
            "(/[a-zA-Z0-9%._~-]{0,4}){0,4}",
            "(/[%0-9a-fA-F.]{0,5}){0,3}",
            "\\PC{0,12}",
        ]) {
            if let Ok(id) = text.parse::<ComponentId>() {
                proptest::prop_assert_eq!(id.to_string(), text);
            }
        }
    }

    #[test]
    fn human_form() {
        let id = ComponentId(vec![b"TEEP-Device".to_vec(), vec![0, 0xff], vec![]]);
        assert_eq!(id.human().to_string(), "['TEEP-Device', h'00ff', h'']");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_is_hex_segments() {
        let id = ComponentId(vec![b"ta".to_vec(), vec![0xff]]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#"["7461","ff"]"#);
        assert_eq!(serde_json::from_str::<ComponentId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ComponentId>(r#"["zz"]"#).is_err());
    }
}
