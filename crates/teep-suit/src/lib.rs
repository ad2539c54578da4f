//! teep-suit: SUIT manifests for TEEP (draft-ietf-suit-manifest, -trust-domains,
//! -firmware-encryption, -report): the envelope/manifest model and codec, envelope
//! authentication, the manifest processor behind `Storage`/`Fetcher`/`Decryptor` traits,
//! SUIT reports, and a builder for the manifests our tools make.
//!
//! * [`model`]: `Envelope::decode` (tag 107 optional), `Manifest::decode`, borrowed views
//!   that keep the received bytes (digests are never computed over re-encodings).
//! * [`verify`]: `authenticate` (COSE_Sign1 through teep-cose, COSE_Mac0 HMAC-256, digest
//!   over the bstr-wrapped manifest) and `section_bytes` (severed elements checked).
//! * [`command`]: `parse_sequence` with byte offsets; unknown commands and parameters fail;
//!   `CommandNumber` / `COMMANDS`, the one table of supported command numbers.
//! * [`processor`]: `Processor::{install, uninstall, invoke}` return an `Outcome` (report
//!   plus result), `update` an `UpdateOutcome` for a TEEP Update (`unneeded-manifest-list`
//!   unlinked, then `manifest-list` installed: all or nothing; `install_all` without
//!   unlinks); state changes are committed at once through [`storage::Storage`]
//!   ([`storage::MemoryStorage`]; [`store::IndexedStore`], an index over a blob backend
//!   and a seal, with atomic commits: `dir::DirStorage`, `dir::SealedDirStorage`).
//! * [`report`]: `Report::to_cbor` / `sign` / `encrypt` (to the TAM), `decrypt_report`,
//!   and the TAM's `ReceivedReport::decode` (plain, signed or encrypted device reports);
//!   `json` (feature `json`): JSON views.
//! * [`component`]: the canonical text form of a [`ComponentId`] (`Display` / `FromStr`),
//!   its human form, and (feature `serde`) its JSON form.
//! * [`trust`]: `TrustAnchors` of scoped TC-signer anchors (`TrustAnchor`), `SignerId`.
//! * [`builder`]: `build` and `sign` for `teep suit create` / `sign`.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod builder;
mod cbor;
pub mod command;
pub mod component;
#[cfg(feature = "std")]
pub mod dir;
pub mod error;
#[cfg(feature = "json")]
pub mod json;
pub mod model;
pub mod processor;
pub mod report;
pub mod storage;
pub mod store;
pub mod trust;
pub mod verify;

/// The serde_json whose `Value` the [`json`] views return: its version is part of our API,
/// so callers name it through this re-export to stay on the same one.
#[cfg(feature = "json")]
pub use serde_json;

/// Not API: what the fuzz targets need beyond the public surface (rustls style). No
/// stability promise; anything here may change or go in any release.
#[doc(hidden)]
pub mod internal {
    use teep_cbor::write::{EncodeError, VecEncoder};

    use crate::command::Parameters;

    /// Encodes `p` as a `SUIT_Parameters` map: `suit_process` writes the command
    /// sequences of its mutated manifests with it.
    ///
    /// # Errors
    /// [`EncodeError`] if the encoder refuses (writing into a `Vec` does not).
    pub fn encode_parameters(p: &Parameters, e: &mut VecEncoder<'_>) -> Result<(), EncodeError> {
        p.encode(e)
    }
}

pub use command::{
    Command, Condition, Directive, IndexArg, Parameters, Step, VendorId, parse_sequence,
};
pub use component::ParseComponentIdError;
pub use error::{ReportReason, SuitError, TeepErrCode};
pub use model::{
    Authentication, Common, ComponentId, Dependency, Digest, Envelope, Manifest, Member, Section,
    SeveredElement, UnknownMember,
};
