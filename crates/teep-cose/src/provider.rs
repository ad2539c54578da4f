//! The crypto backend seam: core crates take `&dyn CryptoProvider` and never name a crypto
//! library, so device builds use RustCrypto and hosts use aws-lc without code changes.
use alloc::boxed::Box;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::alg::{Algorithm, Curve};
use crate::error::CoseError;
use crate::key::{PrivateKey, PublicKey};

/// One crypto backend.
pub trait CryptoProvider: Send + Sync {
    /// Short backend name for logs, benches and test messages (e.g. `"rustcrypto"`).
    fn name(&self) -> &'static str;
    /// Prepares a signing key once (parsing/validation is not repeated per signature).
    fn signer(&self, key: &PrivateKey, alg: Algorithm) -> Result<Box<dyn Signer>, CoseError>;
    /// Verifies a raw COSE signature (r||s for ECDSA) over `tbs`.
    ///
    /// Ed25519 is verified strictly and alike in every provider: S must be below the group
    /// order L and R neither small-order nor non-canonical (ed25519-dalek `verify_strict`);
    /// small-order or non-canonical keys never get here, `PublicKey` refuses them.
    fn verify(
        &self,
        key: &PublicKey,
        alg: Algorithm,
        tbs: &[u8],
        sig: &[u8],
    ) -> Result<(), CoseError>;
    /// SHA-256 of `data` (RFC 9679 thumbprints, certificate fingerprints, SUIT digests).
    fn sha256(&self, data: &[u8]) -> [u8; 32];
    /// Fills `out` from a cryptographically secure generator (IVs, CEKs, ephemeral keys);
    /// fails rather than returning predictable bytes.
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CoseError>;
    /// HMAC-SHA-256 of `data` under `key` (any key length, as RFC 2104 allows).
    fn hmac_sha256(&self, key: &[u8], data: &[u8]) -> [u8; 32];
    /// ECDH on P-256 with a static private key; returns the shared x coordinate.
    fn ecdh_p256(
        &self,
        private: &PrivateKey,
        peer: &PublicKey,
    ) -> Result<Zeroizing<[u8; 32]>, CoseError>;
    /// HKDF-SHA-256 (RFC 5869) extract with `salt`, expand with `info` into `out`; fails when
    /// `out` is longer than HKDF allows. Derives the KEK of ECDH-ES+A128KW (RFC 9053 §6.3.1).
    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CoseError>;
    /// AES key wrap (RFC 3394) with a 16- or 32-byte KEK.
    fn aes_kw_wrap(&self, kek: &[u8], key: &[u8]) -> Result<Vec<u8>, CoseError>;
    /// Inverse of [`Self::aes_kw_wrap`]: the unwrapped key, zeroized on drop, or an error when
    /// the RFC 3394 integrity check fails.
    fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CoseError>;
    /// AES-CTR (128-bit counter, big-endian) in place; key 16 or 32 bytes, iv 16 bytes.
    fn aes_ctr_apply(&self, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), CoseError>;
    /// AES-GCM (key 16 or 32 bytes, nonce 12 bytes); returns ciphertext || 16-byte tag.
    fn aes_gcm_seal(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CoseError>;
    /// Inverse of [`Self::aes_gcm_seal`]: the plaintext, or an error when the tag does not
    /// authenticate `ciphertext_and_tag` and `aad` (no plaintext is released then).
    fn aes_gcm_open(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, CoseError>;
}

/// A signing key prepared by a provider for one algorithm.
pub trait Signer: Send + Sync {
    /// The algorithm this signer was prepared for (written as the protected `alg`).
    fn algorithm(&self) -> Algorithm;
    /// The public half of the signing key (its RFC 9679 thumbprint becomes the `kid`).
    fn public_key(&self) -> &PublicKey;
    /// Raw COSE signature (r||s for ECDSA) over `tbs`.
    fn sign(&self, tbs: &[u8]) -> Result<Vec<u8>, CoseError>;
}

/// Checks what every provider's `verify` must check first: the key's curve fits the
/// algorithm, and the key's own `alg`/`key_ops` allow verifying with it.
pub(crate) fn check_key_alg(key: &PublicKey, alg: Algorithm) -> Result<(), CoseError> {
    key.check_verify(alg)
}

/// Checks what every provider's `signer` must check first: as [`check_key_alg`], for
/// signing with the private key's own restrictions.
pub(crate) fn check_signer(key: &PrivateKey, alg: Algorithm) -> Result<(), CoseError> {
    key.check_sign(alg)
}

/// Checks what every provider's `ecdh_p256` must check first: both keys are on P-256.
pub(crate) fn check_ecdh_p256(private: &PrivateKey, peer: &PublicKey) -> Result<(), CoseError> {
    if private.curve() == Curve::P256 && peer.curve() == Curve::P256 {
        Ok(())
    } else {
        Err(CoseError::invalid_key("ECDH needs two P-256 keys"))
    }
}

/// aws-lc when the feature is on, RustCrypto otherwise.
pub fn default_provider() -> &'static dyn CryptoProvider {
    #[cfg(feature = "aws-lc")]
    {
        &crate::awslc::AwsLcProvider
    }
    #[cfg(not(feature = "aws-lc"))]
    {
        &crate::rustcrypto::RustCryptoProvider
    }
}
