//! Errors of the TEEP layer and their one mapping onto the wire's `err-code`.
//!
//! Layers, outermost first: [`ProtoError::Cose`] (the COSE envelope or its signer),
//! [`ProtoError::Malformed`] (bytes that are not a valid TEEP message, with the byte
//! offset into the TEEP payload), [`ProtoError::Invalid`] (a message we were asked to
//! encode breaks a CDDL rule), and negotiation failures. [`ProtoError::err_code`] is the
//! single place that decides which `err-code` an Agent sends back for each of them.

use alloc::vec::Vec;

use teep_cbor::CborErrorKind;
use teep_cose::{CoseError, TeepClass};

use crate::numbering::Field;
use crate::types::ErrCode;

/// Why a TEEP message was rejected (decode, verify) or refused (encode).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The bytes are not a valid TEEP message. `offset` is a byte offset into the TEEP
    /// message (the COSE payload when the message came signed).
    #[error("malformed TEEP message at byte {offset}: {kind}")]
    Malformed {
        /// Byte offset of the offending item.
        offset: usize,
        /// What is wrong.
        kind: MalformedKind,
    },
    /// A message given to the encoder breaks a rule of the CDDL; nothing was emitted.
    #[error("cannot encode TEEP message: {0}")]
    Invalid(Violation),
    /// The COSE layer rejected the envelope, the signature or the signer.
    #[error("COSE: {0}")]
    Cose(#[from] CoseError),
    /// None of the TEEP versions the peer offered is supported.
    #[error("none of the offered TEEP versions {offered:?} is supported")]
    UnsupportedVersion {
        /// The versions the peer offered.
        offered: Vec<u32>,
    },
    /// None of the TEEP cipher suites the peer offered is supported.
    #[error("none of the offered TEEP cipher suites is supported")]
    UnsupportedCipherSuites,
    /// The CBOR encoder refused its own output (a container entry of the wrong shape): a
    /// bug of the encoder, never the message's content, which [`ProtoError::Invalid`] covers.
    #[error("TEEP encoder: {0}")]
    Encode(#[from] teep_cbor::write::EncodeError),
}

/// What is wrong with a received TEEP message.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKind {
    /// The strict CBOR pre-pass (teep-cbor, `Profile::TEEP`) rejected the bytes:
    /// not well-formed, duplicate map key, trailing bytes, too deep, too large, ...
    #[error("CBOR: {0}")]
    Cbor(CborErrorKind),
    /// The input ends inside an item.
    #[error("input ends inside an item")]
    Truncated,
    /// An item has the wrong CBOR type (e.g. a text string where a bstr belongs, or a tag).
    #[error("{field} has the wrong CBOR type")]
    UnexpectedType {
        /// The field being read.
        field: Field,
    },
    /// An integer does not fit the field (negative where a uint belongs, version over
    /// 4 bytes, ...).
    #[error("{field} is out of range")]
    OutOfRange {
        /// The field being read.
        field: Field,
    },
    /// An array has more elements than its CDDL rule allows (message array, cipher-suite
    /// operation, SUIT COSE profile).
    #[error("{field} has {found} elements, expected {expected}")]
    ArrayLength {
        /// The array.
        field: Field,
        /// Elements the rule requires.
        expected: u64,
        /// Elements present.
        found: u64,
    },
    /// A positional element or a mandatory map entry is missing.
    #[error("{field} is missing")]
    MissingField {
        /// The missing field.
        field: Field,
    },
    /// The message type is not one of the five of this numbering.
    #[error("unknown message type {0}")]
    UnknownMessageType(u64),
    /// A label occurs twice in one map (the offset is the second key). The CBOR pre-pass
    /// reports duplicate keys first; this is the walk's own defence in depth.
    #[error("label occurs twice")]
    DuplicateLabel,
    /// A key that a closed map (requested-tc-info) does not define.
    #[error("unknown key {label} in {field}")]
    UnknownKey {
        /// The closed map.
        field: Field,
        /// The key.
        label: u64,
    },
    /// A value breaks a CDDL control (`.size`, `[+ ...]`, err-code 0, ...).
    #[error("{0}")]
    Violation(Violation),
}

/// A CDDL rule broken by a message's content; checked identically on decode and encode.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A byte or text string is outside its `.size` range ([`Field::size_limits`]).
    #[error("{field} is {len} bytes long, outside its allowed size")]
    Size {
        /// The field.
        field: Field,
        /// Its length in bytes.
        len: usize,
    },
    /// A `[+ ...]` list is empty.
    #[error("{field} must not be empty")]
    EmptyList {
        /// The list.
        field: Field,
    },
    /// err-code 0 is reserved ("MUST NOT be used").
    #[error("err-code 0 is reserved")]
    ReservedErrCode,
    /// `ErrCode::Unknown(n)` with a number this numbering assigns to a known code; it
    /// would decode as that code (encode only).
    #[error("err-code {0} is a known code, not an unknown one")]
    KnownCodeAsUnknown(u64),
    /// have-binary is true but tc-manifest-sequence-number is absent (a MUST of §4.2).
    #[error("have-binary without tc-manifest-sequence-number")]
    HaveBinaryWithoutSequenceNumber,
    /// An extension uses a label this message type defines (encode only).
    #[error("extension label {0} is a defined option of this message")]
    ExtensionLabelTaken(u64),
    /// A SUIT parameter keyed 0, which is system-component-id (encode only).
    #[error("SUIT parameter key 0 is the system-component-id")]
    ParameterKeyZero,
    /// A tc-list entry carries no SUIT parameter besides its system-component-id
    /// (`system-property-claims` has `+ $$SUIT_Parameters`: at least one).
    #[error("system-property-claims without any SUIT parameter")]
    NoSuitParameter,
    /// A pre-26 two-element SUIT COSE profile `[digest-alg, auth-alg]` that maps onto no
    /// profile of ours (see [`crate::SuitCoseProfile::from_pre26_pair`]).
    #[error("SUIT COSE profile [{digest}, {auth}] has no unambiguous meaning")]
    AmbiguousSuitCoseProfile {
        /// Its digest algorithm.
        digest: i64,
        /// Its signature algorithm.
        auth: i64,
    },
}

impl ProtoError {
    pub(crate) const fn malformed(offset: usize, kind: MalformedKind) -> Self {
        Self::Malformed { offset, kind }
    }

    /// The TEEP `err-code` an Agent answers this failure with (spec §9):
    ///
    /// * anything malformed, a bad signature, a missing/mismatched `alg`, an unknown
    ///   critical header, a failed decryption: ERR_PERMANENT_ERROR ("wrong or inconsistent
    ///   fields");
    /// * an unsupported algorithm (also a non-AEAD for an attached ciphertext) or no
    ///   common cipher suite: ERR_UNSUPPORTED_CIPHER_SUITES;
    /// * an expired or not-yet-valid certificate: ERR_CERTIFICATE_EXPIRED;
    /// * any other certificate failure, an invalid key, a key whose own `key_ops` forbid
    ///   the use, and an untrusted signer (a key no trust anchor vouches for; the peer's
    ///   remedy is the same as for a rejected certificate: try another one):
    ///   ERR_BAD_CERTIFICATE;
    /// * an unsupported version: ERR_UNSUPPORTED_MSG_VERSION;
    /// * a local crypto-backend failure (RNG, ...): ERR_TEMPORARY_ERROR.
    pub fn err_code(&self) -> ErrCode {
        match self {
            Self::Malformed { .. } | Self::Invalid(_) => ErrCode::PermanentError,
            Self::UnsupportedVersion { .. } => ErrCode::UnsupportedMsgVersion,
            Self::UnsupportedCipherSuites => ErrCode::UnsupportedCipherSuites,
            Self::Cose(e) => cose_err_code(e),
            Self::Encode(_) => ErrCode::PermanentError,
        }
    }
}

/// Translates teep-cose's exhaustive classification (`CoseError::teep_class`) onto err-codes.
fn cose_err_code(e: &CoseError) -> ErrCode {
    match e.teep_class() {
        TeepClass::Permanent => ErrCode::PermanentError,
        TeepClass::UnsupportedAlgorithm => ErrCode::UnsupportedCipherSuites,
        TeepClass::BadCertificate => ErrCode::BadCertificate,
        TeepClass::CertificateExpired => ErrCode::CertificateExpired,
        TeepClass::Temporary => ErrCode::TemporaryError,
    }
}

impl From<teep_cbor::CborError> for ProtoError {
    fn from(e: teep_cbor::CborError) -> Self {
        Self::malformed(e.offset, MalformedKind::Cbor(e.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teep_cose::{CertificateError as C, KeyOp};

    /// Every variant of ProtoError, CoseError and CertificateError with the err-code of
    /// docs/wire-format.md's failures table.
    #[test]
    fn every_failure_has_its_err_code() {
        use ErrCode::*;
        let cose = [
            (CoseError::Malformed("x".into()), PermanentError),
            (
                CoseError::UnsupportedAlgorithm(-65537),
                UnsupportedCipherSuites,
            ),
            (
                CoseError::DisallowedAlgorithm(teep_cose::Algorithm::Ed25519),
                UnsupportedCipherSuites,
            ),
            (CoseError::MissingAlgorithm, PermanentError),
            (CoseError::AlgorithmKeyMismatch { alg: -9 }, PermanentError),
            (CoseError::KeyOpNotPermitted(KeyOp::Verify), BadCertificate),
            (
                CoseError::UnknownCriticalHeader("99".into()),
                PermanentError,
            ),
            (CoseError::BadSignature, PermanentError),
            (CoseError::UntrustedSigner, BadCertificate),
            (CoseError::InvalidKey("x".into()), BadCertificate),
            (CoseError::DecryptionFailed, PermanentError),
            (
                CoseError::UnauthenticatedContent { alg: -65534 },
                UnsupportedCipherSuites,
            ),
            (CoseError::Crypto("rng"), TemporaryError),
            (C::Malformed("x".into()).into(), BadCertificate),
            (C::Expired.into(), CertificateExpired),
            (C::NotYetValid.into(), CertificateExpired),
            (C::UnknownIssuer.into(), BadCertificate),
            (C::Revoked.into(), BadCertificate),
            (C::BadSignature.into(), BadCertificate),
            (C::Unsupported("x".into()).into(), BadCertificate),
            (C::NoClock.into(), BadCertificate),
        ];
        for (e, code) in cose {
            assert_eq!(ProtoError::Cose(e.clone()).err_code(), code, "{e:?}");
        }
        let proto = [
            (
                ProtoError::malformed(0, MalformedKind::Truncated),
                PermanentError,
            ),
            (
                ProtoError::Invalid(Violation::ReservedErrCode),
                PermanentError,
            ),
            (
                ProtoError::UnsupportedVersion {
                    offered: alloc::vec![7],
                },
                UnsupportedMsgVersion,
            ),
            (ProtoError::UnsupportedCipherSuites, UnsupportedCipherSuites),
        ];
        for (e, code) in proto {
            assert_eq!(e.err_code(), code, "{e:?}");
        }
    }
}
