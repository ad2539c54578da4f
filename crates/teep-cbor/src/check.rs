//! The strict pre-pass: one hand-written walk over the bytes, before any typed decoding.
//!
//! The walk is iterative (an explicit stack, inline for the first 16 levels) so that hostile
//! nesting cannot exhaust the call stack, and it allocates nothing for ordinary messages:
//! map keys are remembered as byte ranges, compared pairwise in small maps and sorted only in
//! maps of more than [`SMALL_MAP`] entries.

use alloc::vec::Vec;
use core::cmp::Ordering;

use smallvec::SmallVec;

use crate::canonical::write_canonical;
use crate::head::{
    AI_INDEFINITE, BREAK, Head, definite_content, f32_to_f16_exact, f64_to_f32_exact, read_head,
};
use crate::{CborError, CborErrorKind, Profile};

/// Maps up to this many entries check duplicates pairwise as each key arrives (no allocation);
/// larger maps sort their keys once at the end.
const SMALL_MAP: usize = 16;

/// Checks that `bytes` holds exactly one complete CBOR item that follows `profile`.
///
/// # Errors
/// The first violation found in a left-to-right walk (duplicate keys of maps larger than
/// 16 entries are found when the map ends), or [`CborErrorKind::TrailingBytes`].
pub fn check(bytes: &[u8], profile: &Profile) -> Result<(), CborError> {
    let end = check_prefix(bytes, profile)?;
    if end == bytes.len() {
        Ok(())
    } else {
        Err(CborError::new(end, CborErrorKind::TrailingBytes))
    }
}

/// Checks the first CBOR item of `bytes` (e.g. one element of a CBOR sequence) and returns
/// its length; whatever follows it is not looked at.
///
/// # Errors
/// As [`check`], except that trailing bytes are allowed.
pub fn check_prefix(bytes: &[u8], profile: &Profile) -> Result<usize, CborError> {
    let limit = bytes.len().min(profile.max_size);
    let window = bytes.get(..limit).unwrap_or(bytes);
    Walker::new(window, profile).run().map_err(|err| {
        // Running off the window while the input goes on means the item is too large.
        if err.kind == CborErrorKind::Truncated && bytes.len() > limit {
            CborError::new(limit, CborErrorKind::TooLarge)
        } else {
            err
        }
    })
}

/// An open array, map or tag.
#[derive(Clone, Copy)]
enum Frame {
    /// `remaining` items, or `None` until a break for an indefinite-length array.
    Array {
        remaining: Option<u64>,
    },
    Map(MapFrame),
    /// A tag waits for its single content item.
    Tag,
}

#[derive(Clone, Copy)]
struct MapFrame {
    /// Entries still to come, or `None` for an indefinite-length map.
    remaining: Option<u64>,
    /// Where this map's keys start in [`Walker::keys`] and [`Walker::rewritten`].
    keys_base: usize,
    rewritten_base: usize,
    /// Whether the next item is a value (otherwise a key).
    in_value: bool,
    /// Offset of the key being read (or of the next key, while a value is read).
    key_start: usize,
    /// [`Walker::non_canonical`] when the key started, to tell whether the key's bytes are its
    /// canonical encoding.
    key_non_canonical: usize,
}

/// A map key already read.
#[derive(Clone, Copy)]
struct Key {
    start: usize,
    end: usize,
    /// Index into [`Walker::rewritten`] when the key's bytes are not its canonical encoding
    /// (preferred, definite lengths); `None` when they are, so that byte equality is value
    /// equality.
    rewritten: Option<usize>,
}

/// Whether an item ended or opened a container whose contents come next.
enum Step {
    Done,
    Opened,
}

struct Walker<'a> {
    bytes: &'a [u8],
    profile: &'a Profile,
    pos: usize,
    /// Count of non-preferred or indefinite encodings seen so far (only grows when the profile
    /// allows them).
    non_canonical: usize,
    frames: SmallVec<[Frame; 16]>,
    keys: SmallVec<[Key; 32]>,
    /// Canonical re-encodings of the keys of open maps that were not sent canonically,
    /// made once per key so that comparisons stay cheap.
    rewritten: Vec<Vec<u8>>,
}

impl<'a> Walker<'a> {
    fn new(bytes: &'a [u8], profile: &'a Profile) -> Self {
        Self {
            bytes,
            profile,
            pos: 0,
            non_canonical: 0,
            frames: SmallVec::new(),
            keys: SmallVec::new(),
            rewritten: Vec::new(),
        }
    }

    /// Walks one item; returns the offset just past it.
    fn run(&mut self) -> Result<usize, CborError> {
        loop {
            let start = self.pos;
            let initial = *self
                .bytes
                .get(start)
                .ok_or_else(|| CborError::new(start, CborErrorKind::Truncated))?;
            let step = if initial == BREAK {
                self.pos = start + 1;
                self.close_indefinite(start)?
            } else {
                let head = read_head(self.bytes, start)?;
                self.pos = start + head.len;
                self.item(start, &head)?
            };
            if matches!(step, Step::Done) && self.complete_item()? {
                return Ok(self.pos);
            }
        }
    }

    /// Handles the item whose head was just read; `self.pos` is just past the head.
    fn item(&mut self, start: usize, head: &Head) -> Result<Step, CborError> {
        match head.major {
            0 | 1 => {
                if head.is_indefinite() {
                    return Err(CborError::new(start, CborErrorKind::ReservedAdditionalInfo));
                }
                self.note_head(start, head)?;
                Ok(Step::Done)
            }
            2 | 3 => {
                self.string(start, head)?;
                Ok(Step::Done)
            }
            4 | 5 => self.open_container(start, head),
            6 => {
                if head.is_indefinite() {
                    return Err(CborError::new(start, CborErrorKind::ReservedAdditionalInfo));
                }
                if !self.profile.allow_tags {
                    return Err(CborError::new(start, CborErrorKind::TagNotAllowed));
                }
                self.note_head(start, head)?;
                self.push(start, Frame::Tag)?;
                Ok(Step::Opened)
            }
            _ => {
                self.simple_or_float(start, head)?;
                Ok(Step::Done)
            }
        }
    }

    /// Records a non-preferred integer, length or tag head, or rejects it.
    fn note_head(&mut self, start: usize, head: &Head) -> Result<(), CborError> {
        if !head.is_shortest() {
            self.non_preferred(start, CborErrorKind::NonPreferredHead)?;
        }
        Ok(())
    }

    fn non_preferred(&mut self, start: usize, kind: CborErrorKind) -> Result<(), CborError> {
        if self.profile.require_preferred {
            return Err(CborError::new(start, kind));
        }
        self.non_canonical += 1;
        Ok(())
    }

    fn indefinite(&mut self, start: usize) -> Result<(), CborError> {
        if !self.profile.allow_indefinite {
            return Err(CborError::new(start, CborErrorKind::IndefiniteLength));
        }
        self.non_canonical += 1;
        Ok(())
    }

    fn string(&mut self, start: usize, head: &Head) -> Result<(), CborError> {
        if !head.is_indefinite() {
            self.note_head(start, head)?;
            self.pos = self.string_content(start, head)?;
            return Ok(());
        }
        self.indefinite(start)?;
        loop {
            let chunk_start = self.pos;
            let initial = *self
                .bytes
                .get(chunk_start)
                .ok_or_else(|| CborError::new(chunk_start, CborErrorKind::Truncated))?;
            if initial == BREAK {
                self.pos = chunk_start + 1;
                return Ok(());
            }
            let chunk = read_head(self.bytes, chunk_start)?;
            if chunk.major != head.major || chunk.is_indefinite() {
                return Err(CborError::new(chunk_start, CborErrorKind::InvalidChunk));
            }
            self.note_head(chunk_start, &chunk)?;
            self.pos = self.string_content(chunk_start, &chunk)?;
        }
    }

    /// Bounds-checks a definite string (and its UTF-8 for text); returns the offset after it.
    fn string_content(&self, start: usize, head: &Head) -> Result<usize, CborError> {
        let (content, end) = definite_content(self.bytes, start, head)?;
        if head.major == 3
            && let Err(err) = core::str::from_utf8(content)
        {
            let at = end - content.len() + err.valid_up_to();
            return Err(CborError::new(at, CborErrorKind::InvalidUtf8));
        }
        Ok(end)
    }

    fn open_container(&mut self, start: usize, head: &Head) -> Result<Step, CborError> {
        let remaining = if head.is_indefinite() {
            self.indefinite(start)?;
            None
        } else {
            self.note_head(start, head)?;
            Some(head.arg)
        };
        let frame = if head.major == 4 {
            Frame::Array { remaining }
        } else {
            Frame::Map(MapFrame {
                remaining,
                keys_base: self.keys.len(),
                rewritten_base: self.rewritten.len(),
                in_value: false,
                key_start: self.pos,
                key_non_canonical: self.non_canonical,
            })
        };
        self.push(start, frame)?;
        if remaining == Some(0) {
            // Empty: it still counts for depth, but ends right here.
            self.frames.pop();
            return Ok(Step::Done);
        }
        Ok(Step::Opened)
    }

    fn push(&mut self, start: usize, frame: Frame) -> Result<(), CborError> {
        if self.frames.len() >= usize::from(self.profile.max_depth) {
            return Err(CborError::new(start, CborErrorKind::TooDeep));
        }
        self.frames.push(frame);
        Ok(())
    }

    fn simple_or_float(&mut self, start: usize, head: &Head) -> Result<(), CborError> {
        let preferred = match head.ai {
            24 if head.arg < 32 => {
                return Err(CborError::new(start, CborErrorKind::InvalidSimpleValue));
            }
            // The argument of a 4-byte head fits in u32 by construction.
            26 => f32_to_f16_exact(head.arg as u32).is_none(),
            27 => f64_to_f32_exact(head.arg).is_none(),
            AI_INDEFINITE => return Err(CborError::new(start, CborErrorKind::UnexpectedBreak)),
            _ => true,
        };
        if !preferred {
            self.non_preferred(start, CborErrorKind::NonPreferredFloat)?;
        }
        Ok(())
    }

    /// A break at `start`: it must end an indefinite-length array, or an indefinite-length
    /// map between entries.
    fn close_indefinite(&mut self, start: usize) -> Result<Step, CborError> {
        match self.frames.last() {
            Some(Frame::Array { remaining: None }) => {}
            Some(Frame::Map(map)) if map.remaining.is_none() && !map.in_value => {
                let map = *map;
                self.finish_map(&map)?;
            }
            _ => return Err(CborError::new(start, CborErrorKind::UnexpectedBreak)),
        }
        self.frames.pop();
        Ok(Step::Done)
    }

    /// Counts one finished item against the open containers; returns true when the
    /// top-level item is complete.
    fn complete_item(&mut self) -> Result<bool, CborError> {
        loop {
            let Some(frame) = self.frames.last_mut() else {
                return Ok(true);
            };
            match frame {
                Frame::Tag => {}
                Frame::Array { remaining: None } => return Ok(false),
                Frame::Array { remaining: Some(n) } => {
                    *n = n.saturating_sub(1);
                    if *n > 0 {
                        return Ok(false);
                    }
                }
                Frame::Map(map) if !map.in_value => {
                    map.in_value = true;
                    let map = *map;
                    self.add_key(&map)?;
                    return Ok(false);
                }
                Frame::Map(map) => {
                    map.in_value = false;
                    // The next key (if any) starts here.
                    map.key_start = self.pos;
                    map.key_non_canonical = self.non_canonical;
                    let Some(n) = map.remaining.as_mut() else {
                        return Ok(false);
                    };
                    *n = n.saturating_sub(1);
                    if *n > 0 {
                        return Ok(false);
                    }
                    let map = *map;
                    self.finish_map(&map)?;
                }
            }
            self.frames.pop();
        }
    }

    /// Records the key that just ended (from `map.key_start` to here) and checks it against
    /// the map's earlier keys.
    fn add_key(&mut self, map: &MapFrame) -> Result<(), CborError> {
        let rewritten = if map.key_non_canonical == self.non_canonical {
            None
        } else {
            let raw = self.bytes.get(map.key_start..self.pos).unwrap_or_default();
            let mut canonical = Vec::new();
            write_canonical(raw, &mut canonical)?;
            self.rewritten.push(canonical);
            Some(self.rewritten.len() - 1)
        };
        let key = Key {
            start: map.key_start,
            end: self.pos,
            rewritten,
        };
        let new = self.key_bytes(&key);
        let earlier = self.keys.get(map.keys_base..).unwrap_or_default();
        let kind = if self.profile.require_sorted_keys {
            earlier
                .last()
                .and_then(|prev| match self.key_bytes(prev).cmp(new) {
                    Ordering::Less => None,
                    Ordering::Equal => Some(CborErrorKind::DuplicateMapKey),
                    Ordering::Greater => Some(CborErrorKind::UnsortedMapKeys),
                })
        } else if earlier.len() < SMALL_MAP {
            earlier
                .iter()
                .any(|prev| self.key_bytes(prev) == new)
                .then_some(CborErrorKind::DuplicateMapKey)
        } else {
            None
        };
        if let Some(kind) = kind {
            return Err(CborError::new(key.start, kind));
        }
        self.keys.push(key);
        Ok(())
    }

    /// Ends a map: large unsorted maps get their full duplicate check here.
    fn finish_map(&mut self, map: &MapFrame) -> Result<(), CborError> {
        let keys = self.keys.get(map.keys_base..).unwrap_or_default();
        if !self.profile.require_sorted_keys && keys.len() > SMALL_MAP {
            let mut sorted: Vec<(&[u8], usize)> = keys
                .iter()
                .map(|key| (self.key_bytes(key), key.start))
                .collect();
            sorted.sort_unstable();
            // With equal keys ordered by offset, the second of each equal pair is a repeat;
            // report the earliest repeat in the input.
            let first_repeat = sorted
                .windows(2)
                .filter_map(|pair| match pair {
                    [(a, _), (b, b_start)] if a == b => Some(*b_start),
                    _ => None,
                })
                .min();
            if let Some(start) = first_repeat {
                return Err(CborError::new(start, CborErrorKind::DuplicateMapKey));
            }
        }
        self.keys.truncate(map.keys_base);
        self.rewritten.truncate(map.rewritten_base);
        Ok(())
    }

    /// The canonical encoding of a key: its own bytes, or its re-encoding.
    fn key_bytes(&self, key: &Key) -> &[u8] {
        match key.rewritten {
            Some(i) => self.rewritten.get(i).map_or(&[], Vec::as_slice),
            None => self.bytes.get(key.start..key.end).unwrap_or_default(),
        }
    }
}
