//! Strict and deterministic CBOR checks shared by the TEEP, SUIT and EAT codecs.
//!
//! Typed decoders (minicbor, coset/ciborium) accept indefinite lengths, non-preferred heads
//! and repeated map keys without telling the caller. [`check`] is a fast pre-pass over the
//! raw bytes that rejects whatever a [`Profile`] forbids, with a typed [`CborError`] naming
//! what is wrong and at which byte, before any typed decoding happens. The [`encode`] module
//! writes what we emit in deterministic form.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod canonical;
mod check;
pub mod encode;
mod error;
mod head;
mod profile;

pub use check::{check, check_prefix};
pub use encode::{DuplicateKey, Major, MapBuilder, write_head};
pub use error::{CborError, CborErrorKind};
pub use profile::Profile;
