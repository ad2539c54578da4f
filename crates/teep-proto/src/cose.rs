//! COSE wrapping of TEEP messages: signing, and verification as a type.
//!
//! A received signed message passes through two types, the way rustls separates what it
//! parsed from what it trusts. [`Unverified::parse`] reads the envelope and decodes the
//! payload strictly, so that the receiver can look before it trusts: the token to find its
//! session, the Evidence in a QueryResponse, the `kid` and `alg` of each signature.
//! [`Unverified::verify`] (trust anchors) or [`Unverified::verify_with_key`] (one key)
//! consume it and give a [`VerifiedMessage`]. No other public function returns a message
//! from signed bytes.
//!
//! We emit COSE_Sign1_Tagged (tag 18) by default, with `alg` protected and the RFC 9679
//! thumbprint as unprotected `kid` (as AttesTAM does); we accept COSE_Sign1 and COSE_Sign,
//! tagged or not (spec §3 leaves both choices open).

use alloc::vec::Vec;

use teep_cose::coset::{CoseSign, CoseSign1, Header, RegisteredLabelWithPrivate};
use teep_cose::{
    Algorithm, CoseError, CryptoProvider, ParsedSigned, PublicKey, SignOptions, Signer, TrustStore,
    VerifyContext,
};

use crate::decode::{check_cbor, decode_unsigned};
use crate::error::ProtoError;
use crate::numbering::Numbering;
use crate::types::{CipherSuite, Message};

/// Encodes `message` and signs it as one COSE_Sign1 (the normal case after the first
/// exchange, when the peer's cipher suite is known).
pub fn sign_message(
    message: &Message,
    numbering: Numbering,
    signer: &dyn Signer,
    opts: &SignOptions,
) -> Result<Vec<u8>, ProtoError> {
    // Encoded straight into the buffer it is signed and sent in: an Update's TCs are
    // copied once, not three times.
    teep_cose::sign1_with(signer, opts, message.size_hint(), |out| {
        message.encode_into(numbering, out)
    })
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
    /// The signature bytes (for the JSON view, which can then be encoded back).
    pub signature: Vec<u8>,
}

/// The envelope of a COSE_Sign1 / COSE_Sign, read WITHOUT verifying any signature: for
/// display (`teep inspect` shows any payload this way, EATs included) and diagnostics
/// only. A TEEP message is read with [`Unverified::parse`].
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
    /// Some header holds more than a protected `alg` and an unprotected `kid` (an
    /// x5chain, a content type, a COSE_Sign's own headers): the JSON view, which shows
    /// only those two, then says so, and `teep encode` cannot rebuild the bytes from it.
    pub other_headers: bool,
}

fn alg_of(h: &Header) -> Option<i64> {
    match h.alg.as_ref()? {
        RegisteredLabelWithPrivate::Assigned(a) => Some(*a as i64),
        RegisteredLabelWithPrivate::PrivateUse(n) => Some(*n),
        RegisteredLabelWithPrivate::Text(_) => None,
    }
}

/// Whether a signature's headers are exactly what the JSON view shows: `alg` protected,
/// `kid` unprotected, nothing else.
fn only_alg_and_kid(protected: &Header, unprotected: &Header) -> bool {
    let alg = Header {
        alg: protected.alg.clone(),
        ..Header::default()
    };
    let kid = Header {
        key_id: unprotected.key_id.clone(),
        ..Header::default()
    };
    *protected == alg && *unprotected == kid
}

fn kid_of(protected: &Header, unprotected: &Header) -> Option<Vec<u8>> {
    [&protected.key_id, &unprotected.key_id]
        .into_iter()
        .find(|k| !k.is_empty())
        .cloned()
}

/// Reads a COSE_Sign1 or COSE_Sign (tagged or not) WITHOUT verifying it: payload, `alg`
/// and `kid` as the sender claims them. For inspection only; a TEEP message is read with
/// [`Unverified::parse`] and accepted only once verified.
pub fn decode_unverified_cose(bytes: &[u8]) -> Result<UnverifiedCose, ProtoError> {
    check_cbor(bytes)?;
    let sign1 = |s: CoseSign1, tagged| UnverifiedCose {
        structure: CoseStructure::Sign1,
        tagged,
        signatures: alloc::vec![UnverifiedSignature {
            alg: alg_of(&s.protected.header),
            kid: kid_of(&s.protected.header, &s.unprotected),
            signature: s.signature.clone(),
        }],
        other_headers: !only_alg_and_kid(&s.protected.header, &s.unprotected),
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
                signature: sig.signature.clone(),
            })
            .collect(),
        other_headers: !(s.protected.header.is_empty()
            && s.unprotected.is_empty()
            && s.signatures
                .iter()
                .all(|sig| only_alg_and_kid(&sig.protected.header, &sig.unprotected))),
        payload: s.payload,
    };
    // teep-cose's own parse, so that reading an envelope and verifying it fail alike (an
    // unregistered `alg` is `UnsupportedAlgorithm`, and a COSE_Sign with one such
    // signature still reads).
    Ok(match teep_cose::parse_signed(bytes)? {
        ParsedSigned::Sign1 { message, tagged } => sign1(message, tagged),
        ParsedSigned::Sign { message, tagged } => sign(message, tagged),
    })
}

/// A signed TEEP message, parsed and decoded but NOT verified: look at it (which session
/// its token names, which key its `kid` names, what Evidence it carries), then verify it,
/// which consumes it. Acting on its content before [`Self::verify`] succeeds is a bug.
#[derive(Debug)]
pub struct Unverified<'a> {
    bytes: &'a [u8],
    cose: UnverifiedCose,
    message: Message,
}

impl<'a> Unverified<'a> {
    /// Reads a COSE_Sign1 or COSE_Sign (tagged or not) and decodes its payload strictly as
    /// a TEEP message in `numbering`. Fails on a malformed envelope, a detached payload or
    /// a malformed message ([`ProtoError::Malformed`] offsets are into the payload); no
    /// signature is checked yet.
    pub fn parse(bytes: &'a [u8], numbering: Numbering) -> Result<Self, ProtoError> {
        let cose = decode_unverified_cose(bytes)?;
        let Some(payload) = cose.payload.as_deref() else {
            return Err(CoseError::Malformed("detached payload".into()).into());
        };
        let message = decode_unsigned(payload, numbering)?;
        Ok(Self {
            bytes,
            cose,
            message,
        })
    }

    /// The message as the sender claims it (not authenticated).
    pub const fn message(&self) -> &Message {
        &self.message
    }

    /// The envelope: structure, tagging and each signature's claimed `alg` and `kid`.
    pub const fn cose(&self) -> &UnverifiedCose {
        &self.cose
    }

    /// Verifies the signature (for a COSE_Sign: at least one) against `cx`'s trust
    /// anchors and gives the verified message, with the signer, `alg` and `kid` of the
    /// signature that verified.
    pub fn verify(self, cx: &VerifyContext<'_>) -> Result<VerifiedMessage, ProtoError> {
        let verified = teep_cose::verify_signed(self.bytes, cx)?;
        // teep-cose parsed the same bytes; this ties the message we hand out to the payload
        // that verified even if the two parsers ever disagreed.
        if self.cose.payload.as_deref() != Some(verified.payload.as_slice()) {
            return Err(CoseError::Malformed("verified payload differs".into()).into());
        }
        Ok(VerifiedMessage {
            message: self.message,
            structure: self.cose.structure,
            signer: verified.signer,
            alg: verified.alg,
            kid: verified.kid,
        })
    }

    /// [`Self::verify`] with `key` as the only trust anchor (the key a session or
    /// configuration names). A `kid`, if present, must be that key's RFC 9679 thumbprint.
    pub fn verify_with_key(
        self,
        provider: &dyn CryptoProvider,
        key: &PublicKey,
    ) -> Result<VerifiedMessage, ProtoError> {
        let mut trust = TrustStore::new();
        trust.add_key(key.clone());
        self.verify(&VerifyContext::new(provider, &trust))
    }
}

/// A TEEP message whose COSE signature verified: the only way to get a [`Message`] out of
/// signed bytes.
#[derive(Clone, Debug)]
pub struct VerifiedMessage {
    message: Message,
    structure: CoseStructure,
    signer: PublicKey,
    alg: Algorithm,
    kid: Option<Vec<u8>>,
}

impl VerifiedMessage {
    /// The verified message.
    pub const fn message(&self) -> &Message {
        &self.message
    }

    /// The verified message, by value.
    pub fn into_message(self) -> Message {
        self.message
    }

    /// The key the signature verified with (a trusted raw key or a certified leaf key).
    pub const fn signer(&self) -> &PublicKey {
        &self.signer
    }

    /// The algorithm of the signature that verified (for a COSE_Sign: the one of the
    /// several that verified).
    pub const fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `kid` of the signature that verified, if it had one.
    pub fn kid(&self) -> Option<&[u8]> {
        self.kid.as_deref()
    }

    /// COSE_Sign1 or COSE_Sign.
    pub const fn structure(&self) -> CoseStructure {
        self.structure
    }

    /// The TEEP cipher suite of the signature that verified, `[[18, alg]]`: an Agent
    /// answers a TAM's multi-signed first QueryRequest in this suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        CipherSuite::sign1(self.alg.cose_id())
    }
}
