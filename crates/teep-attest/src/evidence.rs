//! Signed TEEP Evidence: an EAT claims-set in a COSE_Sign1 by the attestation key, and the
//! `attestation-payload-format` strings that tell Evidence from Attestation Results.

use alloc::vec::Vec;

use teep_cbor::write::EncodeError;
use teep_cose::encrypt::{ContentAlgorithm, DecryptionKey, EAT_ENCRYPTION};
use teep_cose::{
    CoseError, CryptoProvider, PrivateKey, PublicKey, SignOptions, Signer, Verified, VerifyContext,
};

use crate::claims::{ClaimsError, EatClaims};

/// The TEEP EAT media type (RFC 9782 with the TEEP profile). In a TEEP message it is also the
/// default `attestation-payload-format`, and it means an **Attestation Result** (protocol
/// draft §7.1): our EARs travel under it.
pub const ATTESTATION_RESULT_FORMAT: &str = "application/eat+cwt; eat_profile=urn:ietf:rfc:rfcXXXX";

/// The `attestation-payload-format` we send with raw EAT **Evidence**. The draft leaves it to
/// us (digest §16.5): any string other than the TEEP EAT media type means Evidence, and the
/// plain EAT-in-CWT media type of RFC 9782 says what the bytes are without claiming the TEEP
/// profile's Attestation Result meaning.
pub const EVIDENCE_FORMAT: &str = "application/eat+cwt";

/// What an `attestation-payload` holds, by its `attestation-payload-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// Evidence, for a Verifier to appraise.
    Evidence,
    /// An Attestation Result (for us: a signed EAR).
    AttestationResult,
}

/// Classifies an `attestation-payload-format` (absent = the TEEP default = Attestation
/// Result). Media types compare case-insensitively in type and parameter names, so the
/// comparison ignores ASCII case and the blanks around the `;`.
pub fn payload_kind(format: Option<&str>) -> PayloadKind {
    let Some(format) = format else {
        return PayloadKind::AttestationResult;
    };
    let normalize = |s: &str| -> Vec<u8> {
        s.bytes()
            .filter(|b| *b != b' ' && *b != b'\t')
            .map(|b| b.to_ascii_lowercase())
            .collect()
    };
    if normalize(format) == normalize(ATTESTATION_RESULT_FORMAT) {
        PayloadKind::AttestationResult
    } else {
        PayloadKind::Evidence
    }
}

/// Why Evidence did not verify or decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The COSE layer rejected it (not COSE_Sign1, bad signature, unknown key, ...).
    #[error("Evidence COSE_Sign1 rejected: {0}")]
    Cose(CoseError),
    /// The payload is no valid TEEP EAT claims-set.
    #[error("Evidence claims rejected: {0}")]
    Claims(ClaimsError),
    /// The claims do not encode: a pre-encoded part (a `cnf` COSE_Key, a kept manifest
    /// body) is not one well-formed CBOR item.
    #[error("Evidence claims do not encode: {0}")]
    Encoding(EncodeError),
    /// Encrypted Evidence did not decrypt: malformed COSE_Encrypt, not for this key, not
    /// under the "EAT Encryption" context, or tampered.
    #[error("encrypted Evidence rejected: {0}")]
    Decryption(CoseError),
}

/// Signs Evidence with the attestation key: COSE_Sign1 **untagged** (the TEEP EAT profile
/// allows no CBOR tags), `alg` protected, `kid` = RFC 9679 thumbprint of the key.
///
/// # Errors
/// [`EvidenceError::Claims`] for claims no Verifier may accept (an `eat_nonce` outside
/// 8..=64 bytes, e.g. a TEEP challenge too long to return, or an empty `manifests`): the
/// encoding is decoded again before signing, so we never attest to what we would reject.
/// [`EvidenceError::Encoding`] for claims that do not encode; [`EvidenceError::Cose`] when
/// signing fails.
pub fn sign_evidence(claims: &EatClaims, signer: &dyn Signer) -> Result<Vec<u8>, EvidenceError> {
    let opts = SignOptions {
        tagged: false,
        ..SignOptions::default()
    };
    let payload = claims.to_cbor().map_err(EvidenceError::Encoding)?;
    EatClaims::from_cbor(&payload).map_err(EvidenceError::Claims)?;
    teep_cose::sign1(signer, &payload, &opts).map_err(EvidenceError::Cose)
}

/// Verifies Evidence against the trust anchors in `cx` and decodes its claims.
pub fn verify_evidence(
    evidence: &[u8],
    cx: &VerifyContext<'_>,
) -> Result<(EatClaims, Verified), EvidenceError> {
    let verified = teep_cose::verify_sign1(evidence, cx).map_err(EvidenceError::Cose)?;
    let claims = EatClaims::from_cbor(&verified.payload).map_err(EvidenceError::Claims)?;
    Ok((claims, verified))
}

/// Encrypts signed Evidence to the TAM (draft-ietf-teep-protocol §12): the COSE_Sign1 of
/// [`sign_evidence`] becomes the content of a tagged, attached COSE_Encrypt under
/// ECDH-ES+A128KW and A128GCM with KDF `other` = "EAT Encryption". Sign-then-encrypt keeps
/// the attestation signature verifiable by whoever decrypts (the TAM or its Verifier).
///
/// # Errors
/// The TAM key is not P-256, or the provider failed (RNG).
pub fn encrypt_evidence(
    provider: &dyn CryptoProvider,
    signed_evidence: &[u8],
    tam_key: &PublicKey,
) -> Result<Vec<u8>, CoseError> {
    teep_cose::encrypt::encrypt_esdh(
        provider,
        tam_key,
        ContentAlgorithm::default(),
        signed_evidence,
        EAT_ENCRYPTION,
    )
}

/// TAM side of [`encrypt_evidence`]: returns the signed Evidence (the COSE_Sign1 bytes),
/// still to be checked with [`verify_evidence`]; decryption proves nothing about who
/// attested.
///
/// # Errors
/// [`EvidenceError::Decryption`] for a malformed COSE_Encrypt, another key, another
/// purpose (e.g. an encrypted SUIT report) or tampering.
pub fn decrypt_evidence(
    provider: &dyn CryptoProvider,
    encrypted: &[u8],
    tam_key: &PrivateKey,
) -> Result<Vec<u8>, EvidenceError> {
    let keys = [DecryptionKey::EcdhEs(tam_key.clone())];
    let mut plain = teep_cose::encrypt::decrypt(provider, encrypted, None, &keys, EAT_ENCRYPTION)
        .map_err(EvidenceError::Decryption)?;
    Ok(core::mem::take(&mut *plain))
}
