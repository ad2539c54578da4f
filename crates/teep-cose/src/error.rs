//! Typed errors: each variant maps onto exactly one TEEP `err-code` in teep-proto, so callers
//! match on variants and never on message text.
use alloc::string::String;

/// Why a COSE structure, key or signature was rejected.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoseError {
    /// Not a well-formed COSE structure (or COSE_Key); the string says what was wrong.
    #[error("malformed COSE: {0}")]
    Malformed(String),
    /// The `alg` is not one this library implements.
    #[error("unsupported COSE algorithm {0}")]
    UnsupportedAlgorithm(i64),
    /// An implemented algorithm that this verification does not accept
    /// ([`crate::VerifyContext::algorithms`]).
    #[error("COSE algorithm {0:?} is not accepted here")]
    DisallowedAlgorithm(crate::alg::Algorithm),
    /// No `alg` in the protected header.
    #[error("COSE algorithm missing from the protected header")]
    MissingAlgorithm,
    /// The `alg` does not fit the key: another curve (e.g. ESP256 with an Ed25519 key), or
    /// the key's own COSE_Key `alg` names another algorithm.
    #[error("COSE algorithm {alg} does not fit the key")]
    AlgorithmKeyMismatch {
        /// The COSE algorithm identifier that was asked for.
        alg: i64,
    },
    /// The key's own `key_ops` (RFC 9052 §7.1) do not allow this operation, e.g. a
    /// key-agreement trust anchor asked to verify a signature.
    #[error("the key's key_ops do not permit {0:?}")]
    KeyOpNotPermitted(crate::usage::KeyOp),
    /// A `crit` label that this library does not understand.
    #[error("unknown critical COSE header {0}")]
    UnknownCriticalHeader(String),
    /// The signature does not verify with the selected key.
    #[error("COSE signature does not verify")]
    BadSignature,
    /// No trust anchor matches the kid, key or certificate chain.
    #[error("COSE signer is not trusted")]
    UntrustedSigner,
    /// A key that cannot be used (wrong length, not on the curve, wrong type, ...).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The `x5chain` certificate chain was rejected.
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// An encrypted structure did not open with the keys given: no recipient's key wrap
    /// unwrapped (wrong key, or a KDF context for another purpose) or the content failed
    /// authentication (tampered). One variant for all so a sender learns nothing of which.
    #[error("COSE decryption failed")]
    DecryptionFailed,
    /// An embedded ciphertext under a content algorithm that does not authenticate it
    /// (A128CTR): only an AEAD may protect an attached EAT or SUIT report.
    #[error("COSE content algorithm {alg} is not an AEAD, as an attached ciphertext needs")]
    UnauthenticatedContent {
        /// The COSE content algorithm identifier that was given.
        alg: i64,
    },
    /// A crypto backend failure that is not the input's fault (RNG, wrong key length, ...).
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
}

/// Why an X.509 certificate chain was rejected.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Not a parsable certificate (or CRL).
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// A certificate of the chain expired before `now`.
    #[error("certificate expired")]
    Expired,
    /// A certificate of the chain is not valid yet at `now`.
    #[error("certificate not yet valid")]
    NotYetValid,
    /// The chain does not end at a configured CA anchor.
    #[error("certificate issuer unknown")]
    UnknownIssuer,
    /// A configured CRL revokes a certificate of the chain.
    #[error("certificate revoked")]
    Revoked,
    /// A certificate's signature does not verify with its issuer's key.
    #[error("certificate signature does not verify")]
    BadSignature,
    /// Something the verifier does not support (algorithm, extension, key type, ...).
    #[error("unsupported certificate: {0}")]
    Unsupported(String),
    /// The caller gave no time (`VerifyContext::now` is `None`), so validity cannot be checked.
    #[error("no clock to check certificate validity")]
    NoClock,
}

/// The class of TEEP `err-code` a failure calls for (draft-ietf-teep-protocol §9): the
/// mapping lives here, next to the enums, so that it is an exhaustive match and a new
/// variant cannot fall into a catch-all. Deliberately not `#[non_exhaustive]`: a new class
/// must break teep-proto's translation onto err-codes until it is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeepClass {
    /// Wrong or inconsistent fields: ERR_PERMANENT_ERROR.
    Permanent,
    /// An algorithm we do not support: ERR_UNSUPPORTED_CIPHER_SUITES.
    UnsupportedAlgorithm,
    /// A certificate, signer or key we cannot use: ERR_BAD_CERTIFICATE.
    BadCertificate,
    /// A certificate outside its validity: ERR_CERTIFICATE_EXPIRED.
    CertificateExpired,
    /// A local failure, not the input's fault: ERR_TEMPORARY_ERROR.
    Temporary,
}

impl CertificateError {
    /// Which TEEP err-code class this certificate failure belongs to.
    pub fn teep_class(&self) -> TeepClass {
        match self {
            Self::Expired | Self::NotYetValid => TeepClass::CertificateExpired,
            Self::Malformed(_)
            | Self::UnknownIssuer
            | Self::Revoked
            | Self::BadSignature
            | Self::Unsupported(_)
            | Self::NoClock => TeepClass::BadCertificate,
        }
    }
}

impl CoseError {
    /// Which TEEP err-code class this failure belongs to (see docs/wire-format.md).
    pub fn teep_class(&self) -> TeepClass {
        match self {
            Self::Malformed(_)
            | Self::MissingAlgorithm
            | Self::AlgorithmKeyMismatch { .. }
            | Self::UnknownCriticalHeader(_)
            | Self::BadSignature
            | Self::DecryptionFailed => TeepClass::Permanent,
            // An attached ciphertext under a non-AEAD is an algorithm we do not accept there.
            Self::UnsupportedAlgorithm(_)
            | Self::DisallowedAlgorithm(_)
            | Self::UnauthenticatedContent { .. } => TeepClass::UnsupportedAlgorithm,
            // A key whose own key_ops forbid the use is an unusable key.
            Self::UntrustedSigner | Self::InvalidKey(_) | Self::KeyOpNotPermitted(_) => {
                TeepClass::BadCertificate
            }
            Self::Certificate(e) => e.teep_class(),
            Self::Crypto(_) => TeepClass::Temporary,
        }
    }

    /// Shorthand for [`CoseError::Malformed`] from a static description.
    pub(crate) fn malformed(what: &str) -> Self {
        Self::Malformed(what.into())
    }

    /// Shorthand for [`CoseError::InvalidKey`] from a static description.
    pub(crate) fn invalid_key(what: &str) -> Self {
        Self::InvalidKey(what.into())
    }
}
