//! Strict and deterministic CBOR checks shared by the TEEP, SUIT and EAT codecs.
//!
//! Typed decoders (minicbor, coset/ciborium) accept indefinite lengths, non-preferred heads
//! and repeated map keys without telling the caller. [`check`] is a fast pre-pass over the
//! raw bytes that rejects whatever a [`Profile`] forbids, with a typed [`CborError`] naming
//! what is wrong and at which byte, before any typed decoding happens. The [`encode`] module
//! writes what we emit in deterministic form; with the `minicbor` feature, `read` holds the
//! reader (`read::Reader`) and the counting container encoders (`write::MapEncoder`,
//! `write::ArrayEncoder`) that the minicbor-based codecs (TEEP, SUIT, EAT) share; those two
//! modules expose minicbor types, re-exported (with the feature) as `teep_cbor::minicbor`.
//!
//! Choices the RFCs and drafts leave open, each pinned by a test:
//! * Map keys are compared as data items, not as bytes: `1` and its non-preferred encoding
//!   `0x18 0x01` are the same key, so a lenient profile cannot be used to smuggle a repeat.
//! * Each chunk of an indefinite-length text string must be valid UTF-8 on its own
//!   (RFC 8949 §3.2.3: a character may not be split between chunks).
//! * Tags count towards the nesting depth, like arrays and maps; empty containers count too.
//! * [`Profile::TEEP`] accepts any key order: the draft's own QueryRequest example lists
//!   `token` (19) before `versions` (3), so it fails [`Profile::DETERMINISTIC`].
//! * Error precedence: the first violation in one left-to-right walk; only repeats in maps of
//!   more than 16 entries are found when the map ends.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod canonical;
mod check;
pub mod encode;
mod error;
mod head;
mod profile;
#[cfg(feature = "minicbor")]
pub mod read;
#[cfg(feature = "minicbor")]
pub mod write;

/// The minicbor that `read` and `write` are built on: their signatures name its `Decoder`,
/// `Encoder`, `data::Type` and `Encode`, so this dependency is public. Codecs name it through
/// this re-export to stay on teep-cbor's version; a minicbor major release is a teep-cbor
/// major release.
#[cfg(feature = "minicbor")]
pub use minicbor;

pub use check::{check, check_prefix};
pub use encode::{DuplicateKey, Major, MapBuilder, write_head};
pub use error::{CborError, CborErrorKind};
pub use profile::Profile;
