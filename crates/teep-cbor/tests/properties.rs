//! Property tests: no input panics; deterministic encodings pass DETERMINISTIC; a single
//! non-preferred variation of one fails it at exactly that head but passes TEEP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use proptest::prelude::*;
use teep_cbor::encode::{write_bytes, write_text};
use teep_cbor::{CborErrorKind, Major, MapBuilder, Profile, check, check_prefix, write_head};

#[derive(Debug, Clone)]
enum Value {
    Uint(u64),
    Nint(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Self>),
    Map(Vec<(Self, Self)>),
    Tag(u64, Box<Self>),
    Bool(bool),
    Float(f64),
}

fn arb_arg() -> impl Strategy<Value = u64> {
    // Every head width, and the values on either side of each boundary.
    prop_oneof![
        0u64..30,
        prop::sample::select(vec![
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000
        ]),
        any::<u64>(),
    ]
}

fn arb_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        // Values of each width: f16, f32 and f64.
        any::<u16>().prop_map(|h| f64::from(half::f16::from_bits(h).to_f32())),
        any::<f32>().prop_map(f64::from),
        any::<f64>(),
    ]
    .prop_filter("NaN payloads are tested in the unit tests", |f| !f.is_nan())
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        arb_arg().prop_map(Value::Uint),
        arb_arg().prop_map(Value::Nint),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        ".{0,12}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        arb_float().prop_map(Value::Float),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((inner.clone(), inner.clone()), 0..6).prop_map(Value::Map),
            (arb_arg(), inner).prop_map(|(t, v)| Value::Tag(t, Box::new(v))),
        ]
    })
}

/// Where to put the one non-preferred encoding: the `target`-th head that has one.
struct Encoder {
    target: usize,
    seen: usize,
    /// Offset and kind of the variation written, if it was.
    varied: Option<(usize, CborErrorKind)>,
}

impl Encoder {
    fn deterministic() -> Self {
        Self {
            target: usize::MAX,
            seen: 0,
            varied: None,
        }
    }

    /// Whether the current variable head is the one to vary.
    fn hit(&mut self, out: &[u8], kind: CborErrorKind) -> bool {
        let hit = self.seen == self.target;
        self.seen += 1;
        if hit {
            self.varied = Some((out.len(), kind));
        }
        hit
    }

    fn head(&mut self, major: Major, arg: u64, out: &mut Vec<u8>) {
        if arg <= 0xffff_ffff && self.hit(out, CborErrorKind::NonPreferredHead) {
            // One width wider than needed.
            let m = (major as u8) << 5;
            match arg {
                0..=0xff => out.extend_from_slice(&[m | 25, 0, arg as u8]),
                0x100..=0xffff => {
                    out.push(m | 26);
                    out.extend_from_slice(&(arg as u32).to_be_bytes());
                }
                _ => {
                    out.push(m | 27);
                    out.extend_from_slice(&arg.to_be_bytes());
                }
            }
        } else {
            write_head(major, arg, out);
        }
    }

    fn string(&mut self, major: Major, content: &[u8], out: &mut Vec<u8>) {
        if self.hit(out, CborErrorKind::IndefiniteLength) {
            // Two chunks, split on a character boundary for text.
            let text = std::str::from_utf8(content).ok();
            let mut mid = content.len() / 2;
            while text.is_some_and(|t| !t.is_char_boundary(mid)) {
                mid -= 1;
            }
            out.push(((major as u8) << 5) | 31);
            for chunk in [&content[..mid], &content[mid..]] {
                write_head(major, chunk.len() as u64, out);
                out.extend_from_slice(chunk);
            }
            out.push(0xff);
        } else {
            self.head(major, content.len() as u64, out);
            out.extend_from_slice(content);
        }
    }

    fn float(&mut self, f: f64, out: &mut Vec<u8>) {
        let h = half::f16::from_f64(f);
        let narrow = if f64::from(h) == f {
            Some(u32::from(h.to_bits()))
        } else if f64::from(f as f32) == f {
            Some((f as f32).to_bits())
        } else {
            None
        };
        match narrow {
            Some(_) if self.hit(out, CborErrorKind::NonPreferredFloat) => {
                out.push(0xfb);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Some(bits) if f64::from(h) == f => {
                out.extend_from_slice(&[0xf9, (bits >> 8) as u8, bits as u8])
            }
            Some(bits) => {
                out.push(0xfa);
                out.extend_from_slice(&bits.to_be_bytes());
            }
            None => {
                out.push(0xfb);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
        }
    }

    fn value(&mut self, v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Uint(n) => self.head(Major::Unsigned, *n, out),
            Value::Nint(n) => self.head(Major::Negative, *n, out),
            Value::Bytes(b) => self.string(Major::Bytes, b, out),
            Value::Text(t) => self.string(Major::Text, t.as_bytes(), out),
            Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
            Value::Float(f) => self.float(*f, out),
            Value::Tag(t, inner) => {
                self.head(Major::Tag, *t, out);
                self.value(inner, out);
            }
            Value::Array(items) => {
                let indefinite = self.hit(out, CborErrorKind::IndefiniteLength);
                if indefinite {
                    out.push(0x9f);
                } else {
                    self.head(Major::Array, items.len() as u64, out);
                }
                for item in items {
                    self.value(item, out);
                }
                if indefinite {
                    out.push(0xff);
                }
            }
            Value::Map(entries) => self.map(entries, out),
        }
    }

    /// Maps: keys deduplicated and sorted by their deterministic encodings, then written
    /// (with any variation) in that order.
    fn map(&mut self, entries: &[(Value, Value)], out: &mut Vec<u8>) {
        let mut sorted: Vec<(Vec<u8>, &Value, &Value)> = Vec::new();
        for (k, v) in entries {
            let mut key = Vec::new();
            Self::deterministic().value(k, &mut key);
            if !sorted.iter().any(|(seen, ..)| *seen == key) {
                sorted.push((key, k, v));
            }
        }
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let indefinite = self.hit(out, CborErrorKind::IndefiniteLength);
        if indefinite {
            out.push(0xbf);
        } else {
            self.head(Major::Map, sorted.len() as u64, out);
        }
        for (_, k, v) in sorted {
            self.value(k, out);
            self.value(v, out);
        }
        if indefinite {
            out.push(0xff);
        }
    }
}

fn has_tag(v: &Value) -> bool {
    match v {
        Value::Tag(..) => true,
        Value::Array(items) => items.iter().any(has_tag),
        Value::Map(entries) => entries.iter().any(|(k, v)| has_tag(k) || has_tag(v)),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for profile in [Profile::TEEP, Profile::EAT, Profile::DETERMINISTIC, Profile::TEEP.with_max_depth(3)] {
            let whole = check(&bytes, &profile);
            // A prefix check agrees with the whole-input check on where the item ends.
            match check_prefix(&bytes, &profile) {
                Ok(end) => prop_assert!(whole.is_ok() == (end == bytes.len())),
                Err(err) => prop_assert_eq!(whole, Err(err)),
            }
        }
    }

    #[test]
    fn deterministic_encodings_pass_every_profile_that_allows_them(value in arb_value()) {
        let mut bytes = Vec::new();
        Encoder::deterministic().value(&value, &mut bytes);
        prop_assert_eq!(check(&bytes, &Profile::DETERMINISTIC), Ok(()));
        prop_assert_eq!(check(&bytes, &Profile::TEEP), Ok(()));
        if !has_tag(&value) {
            prop_assert_eq!(check(&bytes, &Profile::EAT), Ok(()));
        }
    }

    #[test]
    fn one_non_preferred_head_fails_deterministic_there_and_passes_teep(
        value in arb_value(),
        target in 0usize..64,
    ) {
        let mut counter = Encoder::deterministic();
        counter.value(&value, &mut Vec::new());
        prop_assume!(counter.seen > 0);
        let mut varied = Encoder { target: target % counter.seen, seen: 0, varied: None };
        let mut bytes = Vec::new();
        varied.value(&value, &mut bytes);
        let (offset, kind) = varied.varied.unwrap();
        let err = check(&bytes, &Profile::DETERMINISTIC).unwrap_err();
        prop_assert_eq!((err.offset, err.kind), (offset, kind));
        prop_assert_eq!(check(&bytes, &Profile::TEEP), Ok(()));
    }

    #[test]
    fn deterministic_maps_from_map_builder_pass(entries in prop::collection::btree_map(arb_arg(), arb_arg(), 0..40)) {
        let mut map = MapBuilder::new();
        for (k, v) in &entries {
            let (mut key, mut value) = (Vec::new(), Vec::new());
            write_head(Major::Negative, *k, &mut key);
            write_text(&v.to_string(), &mut value);
            map.insert(&key, &value);
        }
        let mut bytes = Vec::new();
        map.finish(&mut bytes).unwrap();
        prop_assert_eq!(check(&bytes, &Profile::DETERMINISTIC), Ok(()));
    }

    #[test]
    fn repeated_key_in_any_position_is_found(keys in prop::collection::btree_set(any::<u32>(), 2..40), pick in any::<prop::sample::Index>()) {
        // Distinct keys, then one of them again with a different encoding width.
        let keys: Vec<u32> = keys.into_iter().collect();
        let repeat = *pick.get(&keys);
        let mut bytes = Vec::new();
        write_head(Major::Map, keys.len() as u64 + 1, &mut bytes);
        for k in &keys {
            write_head(Major::Unsigned, u64::from(*k), &mut bytes);
            write_bytes(&[], &mut bytes);
        }
        let at = bytes.len();
        bytes.push(0x1b);
        bytes.extend_from_slice(&u64::from(repeat).to_be_bytes());
        write_bytes(&[], &mut bytes);
        let err = check(&bytes, &Profile::TEEP).unwrap_err();
        prop_assert_eq!((err.offset, err.kind), (at, CborErrorKind::DuplicateMapKey));
    }
}

#[test]
fn mutated_vectors_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/teep");
    let text = std::fs::read_to_string(dir.join("update.hex")).unwrap();
    let update = hex::decode(text.trim()).unwrap();
    let mut rejected = 0;
    for i in 0..update.len() {
        for flip in [0x01u8, 0x10, 0x80, 0xff] {
            let mut bytes = update.clone();
            bytes[i] ^= flip;
            if check(&bytes, &Profile::TEEP).is_err() {
                rejected += 1;
            }
        }
    }
    // Most flips land in byte-string content and stay well-formed; some must break it.
    assert!(rejected > 0);
}

/// What one entry handed to a `MapEncoder` writes as its value: one item (right), or a
/// shape that must be refused.
#[cfg(feature = "minicbor")]
#[derive(Debug, Clone, Copy)]
enum Shape {
    One,
    Nothing,
    Two,
    Truncated,
}

#[cfg(feature = "minicbor")]
proptest! {
    /// Whatever mix of right and wrong entries is written, the map header says exactly how
    /// many entries were accepted, the body is those entries in order, and every wrong one
    /// was refused with its index.
    #[test]
    fn map_encoder_length_always_matches_the_entries(
        entries in prop::collection::vec(
            (arb_value(), prop::sample::select(vec![Shape::One, Shape::One, Shape::Nothing, Shape::Two, Shape::Truncated])),
            0..30,
        ),
    ) {
        use teep_cbor::write::{EncodeError, MapEncoder, encode_vec, raw};
        let mut map = MapEncoder::new();
        let mut body = Vec::new();
        let mut accepted = 0u64;
        for (key, (value, shape)) in (0u64..).zip(&entries) {
            let mut item = Vec::new();
            Encoder::deterministic().value(value, &mut item);
            let result = map.entry_with(key, |e| match shape {
                Shape::One => raw(e, &item),
                Shape::Nothing => Ok(()),
                Shape::Two => raw(e, &item).and_then(|()| raw(e, &item)),
                // The head and all but the last byte, written past `raw`'s check.
                Shape::Truncated => {
                    e.writer_mut().extend_from_slice(&item[..item.len() - 1]);
                    Ok(())
                }
            });
            if matches!(shape, Shape::One) {
                prop_assert!(result.is_ok());
                write_head(Major::Unsigned, key, &mut body);
                body.extend_from_slice(&item);
                accepted += 1;
            } else {
                prop_assert_eq!(result.unwrap_err(), EncodeError::Entry { index: accepted });
            }
            prop_assert_eq!(map.len(), accepted);
        }
        let out = encode_vec(|e| map.finish(e)).unwrap();
        let mut want = Vec::new();
        write_head(Major::Map, accepted, &mut want);
        want.extend_from_slice(&body);
        prop_assert_eq!(&out, &want);
        prop_assert!(check(&out, &Profile::TEEP).is_ok());
    }
}
