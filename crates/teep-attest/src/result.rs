//! Signed attestation results, and how a relying party checks one: the background-check
//! relying party that got it from the Verifier, or the passport relying party that got it
//! from the Agent. Both checks are the protocol draft's §7.4 ones plus freshness.

use alloc::vec::Vec;

use teep_cose::{
    CoseError, CryptoProvider, PublicKey, SignOptions, Signer, TrustStore, VerifyContext,
};

use crate::{
    ear::{Ear, EarDecodeError, Status},
    verifier::cnf_matches,
};

/// Signs an EAR with the Verifier key: COSE_Sign1 (tagged, `kid` = thumbprint), payload the
/// deterministic CBOR claims-set.
///
/// # Errors
/// [`CoseError::Malformed`] when the EAR does not encode (a `cnf` COSE_Key that is not one
/// CBOR item: never one decoded from Evidence), so nothing malformed is signed; else as
/// signing fails.
pub fn sign_ear(ear: &Ear, signer: &dyn Signer) -> Result<Vec<u8>, CoseError> {
    let payload = ear
        .to_cbor()
        .map_err(|e| CoseError::Malformed(alloc::format!("EAR payload: {e}")))?;
    teep_cose::sign1(signer, &payload, &SignOptions::default())
}

/// What the relying party expects of a result.
pub struct ResultCheck<'a> {
    /// Crypto provider.
    pub provider: &'a dyn CryptoProvider,
    /// Keys of the Verifiers this relying party trusts.
    pub verifiers: &'a TrustStore,
    /// The nonce the result must carry: the challenge (background check) or the TEEP token
    /// (passport). `None` skips the check (freshness by `iat` only).
    pub nonce: Option<&'a [u8]>,
    /// Unix time, seconds.
    pub now: u64,
    /// How old (by its `iat`) a result may be.
    pub max_age: u64,
    /// The key that verified the presenting peer's TEEP message; `cnf` must name it.
    pub teep_key: &'a PublicKey,
}

/// Why a relying party rejects a result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResultError {
    /// Signed by no Verifier this relying party trusts.
    #[error("attestation result is not from a trusted Verifier")]
    UntrustedVerifier,
    /// The signature does not verify.
    #[error("attestation result signature does not verify")]
    BadSignature,
    /// Not a COSE_Sign1 or not an EAR.
    #[error("malformed attestation result: {0}")]
    Malformed(CoseError),
    /// The claims are no EAR.
    #[error("malformed EAR claims: {0}")]
    Claims(EarDecodeError),
    /// `eat_nonce` is absent or differs from the expected nonce.
    #[error("attestation result nonce does not match")]
    NonceMismatch,
    /// Issued more than `max_age` seconds before (or after) now.
    #[error("attestation result is stale (iat {iat}, now {now})")]
    Stale {
        /// The result's `iat`.
        iat: i64,
        /// The relying party's time.
        now: u64,
    },
    /// No `cnf`, or it names another key than the presenting peer's.
    #[error("attestation result is bound to another key")]
    CnfMismatch,
    /// Valid, but the Verifier did not affirm.
    #[error("attestation result status is {}", .0.name())]
    NotAffirming(Status),
}

/// Checks a signed EAR and returns it when it is trusted, fresh, bound to the presenting key
/// and affirming.
pub fn verify_ear(signed: &[u8], check: &ResultCheck<'_>) -> Result<Ear, ResultError> {
    let cx = VerifyContext::new(check.provider, check.verifiers);
    let verified = teep_cose::verify_sign1(signed, &cx).map_err(|e| match e {
        CoseError::UntrustedSigner => ResultError::UntrustedVerifier,
        CoseError::BadSignature => ResultError::BadSignature,
        other => ResultError::Malformed(other),
    })?;
    let ear = Ear::from_cbor(&verified.payload).map_err(ResultError::Claims)?;
    if let Some(expected) = check.nonce
        && ear.nonce.as_deref() != Some(expected)
    {
        return Err(ResultError::NonceMismatch);
    }
    // Clock skew counts like age: a result from the future is as suspect as an old one.
    let now = i64::try_from(check.now).unwrap_or(i64::MAX);
    if ear.iat.abs_diff(now) > check.max_age {
        return Err(ResultError::Stale {
            iat: ear.iat,
            now: check.now,
        });
    }
    if !ear
        .cnf
        .as_ref()
        .is_some_and(|c| cnf_matches(c, check.teep_key))
    {
        return Err(ResultError::CnfMismatch);
    }
    match ear.status() {
        Status::Affirming => Ok(ear),
        other => Err(ResultError::NotAffirming(other)),
    }
}
