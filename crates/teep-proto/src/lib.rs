//! teep-proto: the five TEEP messages (draft-ietf-teep-protocol) as types, a strict codec
//! for both wire numberings, COSE signing/verification of whole messages, and a JSON view.
//!
//! ```
//! use teep_proto::{decode_unsigned, Message, Numbering};
//! let bytes = hex::decode("8204a11350a0a1a2a3a4a5a6a7a8a9aaabacadaeaf").unwrap();
//! let msg = decode_unsigned(&bytes, Numbering::Draft26).unwrap();
//! assert!(matches!(msg, Message::Success(_)));
//! assert_eq!(msg.encode(Numbering::Draft26).unwrap(), bytes);
//! ```
//!
//! Messages from a peer are signed: [`Unverified::parse`] reads one for looking at,
//! [`Unverified::verify`] turns it into a [`VerifiedMessage`]; nothing else gives a
//! message from signed bytes ([`decode_unsigned`] is for bare messages: vectors, tests,
//! the JSON view).
//!
//! Choices where the draft is ambiguous (each pinned by a test):
//! * option order on the wire: `token` first, then ascending labels ([`Message::encode`]);
//! * empty `tc-list`, `ext-list`, `unneeded-manifest-list` are accepted and may be sent
//!   (spec §16.4), all other `[+ ...]` lists must be non-empty;
//! * unknown option labels are kept as raw CBOR ([`Extensions`]), unknown message types
//!   and positional structure are rejected (spec §16.6);
//! * indefinite lengths and non-preferred heads are accepted on input (the draft does not
//!   require deterministic encoding); we emit preferred serialization only;
//! * the codec does not tie `token` to the attestation bit (spec §16.2: the draft's own
//!   QueryRequest example has both); that rule belongs to the TAM/Agent state machines;
//! * a have-binary `true` without tc-manifest-sequence-number is rejected (a MUST);
//! * COSE: we emit COSE_Sign1_Tagged with `alg` protected and kid = RFC 9679 thumbprint,
//!   and accept COSE_Sign1 or COSE_Sign, tagged or not (spec §3, §16.14);
//! * failures map onto err-codes in one place: [`ProtoError::err_code`]; a failed SUIT
//!   Update's code (`teep_suit::TeepErrCode`) converts by meaning (`ErrCode::from`), so
//!   ERR_MANIFEST_PROCESSING_FAILED is 17 in the pre-26 numbering and 11 in -26.
//!
//! SUIT's vocabulary is teep-suit's: [`ComponentId`] is `teep_suit::ComponentId`, and
//! [`SystemPropertyClaims::new`] / [`SystemPropertyClaims::image_digest`] make and read
//! tc-list entries with `teep_suit::Digest`.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod cose;
mod decode;
mod encode;
mod error;
#[cfg(feature = "json")]
pub mod json;
mod numbering;
mod parts;
mod suit;
mod types;
mod validate;

/// Deliberate re-export (feature `json`): [`json::to_json`] and [`json::cose_view`] return
/// [`serde_json::Value`], so callers name it through this path and get the version this
/// crate was built with.
#[cfg(feature = "json")]
pub use serde_json;

pub use cose::{
    CoseStructure, Unverified, UnverifiedCose, UnverifiedSignature, VerifiedMessage,
    decode_unverified_cose, sign_message, sign_message_multi,
};
pub use decode::decode_unsigned;
pub use error::{MalformedKind, ProtoError, Violation};
pub use numbering::{Field, MessageType, Numbering};
pub use types::{
    CipherOperation, CipherSuite, ComponentId, DataItemRequested, ErrCode, ErrorMessage,
    Extensions, FreshnessMechanism, Message, QueryRequest, QueryResponse, RawCbor, RequestedTcInfo,
    Success, SuitCoseProfile, SystemPropertyClaims, Update,
};

/// A TAM task holds a parsed message across the `.await` of its appraisal (between
/// `Unverified::parse` and `verify`), and both roles send messages and errors between
/// tasks: these must stay `Send + Sync`, so a field that is not fails the build here
/// rather than in a role's async code.
const _: fn() = || {
    fn send_sync<T: Send + Sync + ?Sized>() {}
    send_sync::<Unverified<'static>>();
    send_sync::<UnverifiedCose>();
    send_sync::<UnverifiedSignature>();
    send_sync::<VerifiedMessage>();
    send_sync::<Message>();
    send_sync::<SystemPropertyClaims>();
    send_sync::<ComponentId>();
    send_sync::<ProtoError>();
};
