//! COSE wrapping of TEEP messages: sign, verify, and an explicitly unverified look inside.
//!
//! We emit COSE_Sign1_Tagged (tag 18) by default, with `alg` protected and the RFC 9679
//! thumbprint as unprotected `kid` (as AttesTAM does); we accept COSE_Sign1 and COSE_Sign,
//! tagged or not (spec §3 leaves both choices open).

use alloc::vec::Vec;

use teep_cose::coset::{
    self, CborSerializable, CoseSign, CoseSign1, Header, RegisteredLabelWithPrivate,
    TaggedCborSerializable,
};
use teep_cose::{CoseError, SignOptions, Signer, Verified, VerifyContext};

use crate::decode::{check_cbor, decode};
use crate::error::ProtoError;
use crate::numbering::Numbering;
use crate::types::Message;

/// Encodes `message` and signs it as one COSE_Sign1 (the normal case after the first
/// exchange, when the peer's cipher suite is known).
pub fn sign_message(
    message: &Message,
    numbering: Numbering,
    signer: &dyn Signer,
    opts: &SignOptions,
) -> Result<Vec<u8>, ProtoError> {
    let payload = message.encode(numbering)?;
    Ok(teep_cose::sign1(signer, &payload, opts)?)
}

/// Encodes `message` and signs it as one COSE_Sign with a signature per signer: a TAM's
/// first QueryRequest to an Agent whose cipher suite it does not know yet carries one
/// signature per offered suite (ESP256 and Ed25519), so any Agent can verify one.
pub fn sign_message_multi(
    message: &Message,
    numbering: Numbering,
    signers: &[&dyn Signer],
    opts: &SignOptions,
) -> Result<Vec<u8>, ProtoError> {
    let payload = message.encode(numbering)?;
    Ok(teep_cose::sign(signers, &payload, opts)?)
}

/// Verifies a COSE_Sign1 or COSE_Sign (tagged or not) against `cx`'s trust anchors, then
/// decodes the payload strictly. Nothing is returned unless both steps pass. Offsets in a
/// [`ProtoError::Malformed`] are relative to the payload.
pub fn verify_message(
    bytes: &[u8],
    numbering: Numbering,
    cx: &VerifyContext<'_>,
) -> Result<(Message, Verified), ProtoError> {
    let verified = teep_cose::verify_signed(bytes, cx)?;
    let message = decode(&verified.payload, numbering)?;
    Ok((message, verified))
}

/// Which COSE structure wraps a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoseStructure {
    /// COSE_Sign1 (tag 18).
    Sign1,
    /// COSE_Sign (tag 98).
    Sign,
}

impl CoseStructure {
    /// `"COSE_Sign1"` or `"COSE_Sign"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sign1 => "COSE_Sign1",
            Self::Sign => "COSE_Sign",
        }
    }
}

/// What one signature claims about itself (NOT checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnverifiedSignature {
    /// `alg` from the protected header (integer algorithms only).
    pub alg: Option<i64>,
    /// `kid` from the protected or unprotected header.
    pub kid: Option<Vec<u8>>,
}

/// The content of a COSE-wrapped message, read WITHOUT verifying any signature: for
/// display (`teep inspect`) and diagnostics only. Never act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnverifiedCose {
    /// COSE_Sign1 or COSE_Sign.
    pub structure: CoseStructure,
    /// Whether the CBOR tag (18 / 98) was present.
    pub tagged: bool,
    /// One entry per signature (exactly one for COSE_Sign1).
    pub signatures: Vec<UnverifiedSignature>,
    /// The payload (the encoded TEEP message); `None` when detached.
    pub payload: Option<Vec<u8>>,
}

impl UnverifiedCose {
    /// Decodes the payload as a TEEP message (still unverified).
    pub fn message(&self, numbering: Numbering) -> Result<Message, ProtoError> {
        match &self.payload {
            Some(p) => decode(p, numbering),
            None => Err(CoseError::Malformed("detached payload".into()).into()),
        }
    }
}

fn alg_of(h: &Header) -> Option<i64> {
    match h.alg.as_ref()? {
        RegisteredLabelWithPrivate::Assigned(a) => Some(*a as i64),
        RegisteredLabelWithPrivate::PrivateUse(n) => Some(*n),
        RegisteredLabelWithPrivate::Text(_) => None,
    }
}

fn kid_of(protected: &Header, unprotected: &Header) -> Option<Vec<u8>> {
    [&protected.key_id, &unprotected.key_id]
        .into_iter()
        .find(|k| !k.is_empty())
        .cloned()
}

fn cose_err(e: coset::CoseError) -> ProtoError {
    CoseError::Malformed(alloc::format!("{e}")).into()
}

/// Reads a COSE_Sign1 or COSE_Sign (tagged or not) WITHOUT verifying it: payload, `alg`
/// and `kid` as the sender claims them. For inspection only; use [`verify_message`] to
/// accept a message.
pub fn decode_unverified_cose(bytes: &[u8]) -> Result<UnverifiedCose, ProtoError> {
    check_cbor(bytes)?;
    let sign1 = |s: CoseSign1, tagged| UnverifiedCose {
        structure: CoseStructure::Sign1,
        tagged,
        signatures: alloc::vec![UnverifiedSignature {
            alg: alg_of(&s.protected.header),
            kid: kid_of(&s.protected.header, &s.unprotected),
        }],
        payload: s.payload,
    };
    let sign = |s: CoseSign, tagged| UnverifiedCose {
        structure: CoseStructure::Sign,
        tagged,
        signatures: s
            .signatures
            .iter()
            .map(|sig| UnverifiedSignature {
                alg: alg_of(&sig.protected.header),
                kid: kid_of(&sig.protected.header, &sig.unprotected),
            })
            .collect(),
        payload: s.payload,
    };
    match bytes.first() {
        // 0xd2 = tag 18, 0xd8 0x62 = tag 98.
        Some(0xd2) => CoseSign1::from_tagged_slice(bytes)
            .map(|s| sign1(s, true))
            .map_err(cose_err),
        Some(0xd8) => CoseSign::from_tagged_slice(bytes)
            .map(|s| sign(s, true))
            .map_err(cose_err),
        _ => match CoseSign1::from_slice(bytes) {
            Ok(s) => Ok(sign1(s, false)),
            Err(_) => CoseSign::from_slice(bytes)
                .map(|s| sign(s, false))
                .map_err(cose_err),
        },
    }
}
