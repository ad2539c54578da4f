//! Pure-Rust provider (RustCrypto crates): no_std, no C compiler, constant-time where the
//! crates are. The device-side default.
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use aes_gcm::aead::{Aead, Payload};
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::alg::{Algorithm, Curve};
use crate::error::CoseError;
use crate::key::{PrivateKey, PublicKey};
use crate::provider::{CryptoProvider, Signer, check_ecdh_p256, check_key_alg, check_signer};

/// RustCrypto backend; always available, no_std.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCryptoProvider;

/// Parsed signing key, kept so that no signature re-parses or re-validates the key.
enum SigningKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

struct RustCryptoSigner {
    key: SigningKey,
    alg: Algorithm,
    public: PublicKey,
}

impl Signer for RustCryptoSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, tbs: &[u8]) -> Result<Vec<u8>, CoseError> {
        use ed25519_dalek::ed25519::signature::Signer as _;
        let failed = |_| CoseError::Crypto("signing failed");
        // ECDSA signatures are deterministic (RFC 6979), so no RNG is needed on the device.
        Ok(match &self.key {
            SigningKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.try_sign(tbs).map_err(failed)?;
                sig.to_bytes().to_vec()
            }
            SigningKey::P384(k) => {
                let sig: p384::ecdsa::Signature = k.try_sign(tbs).map_err(failed)?;
                sig.to_bytes().to_vec()
            }
            SigningKey::Ed25519(k) => k.try_sign(tbs).map_err(failed)?.to_bytes().to_vec(),
        })
    }
}

fn bad_key(_: impl Sized) -> CoseError {
    CoseError::invalid_key("key rejected by RustCrypto")
}

impl CryptoProvider for RustCryptoProvider {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn signer(&self, key: &PrivateKey, alg: Algorithm) -> Result<Box<dyn Signer>, CoseError> {
        check_signer(key, alg)?;
        let d = key.secret_bytes();
        let signing = match key.curve() {
            Curve::P256 => {
                SigningKey::P256(p256::ecdsa::SigningKey::from_slice(d).map_err(bad_key)?)
            }
            Curve::P384 => {
                SigningKey::P384(p384::ecdsa::SigningKey::from_slice(d).map_err(bad_key)?)
            }
            Curve::Ed25519 => {
                let seed: &[u8; 32] = d.try_into().map_err(bad_key)?;
                SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed))
            }
        };
        Ok(Box::new(RustCryptoSigner {
            key: signing,
            alg,
            public: key.public_key().clone(),
        }))
    }

    fn verify(
        &self,
        key: &PublicKey,
        alg: Algorithm,
        tbs: &[u8],
        sig: &[u8],
    ) -> Result<(), CoseError> {
        use ed25519_dalek::ed25519::signature::Verifier as _;
        check_key_alg(key, alg)?;
        let bad = |_| CoseError::BadSignature;
        match key.curve() {
            Curve::P256 => {
                let vk =
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(key.as_bytes()).map_err(bad_key)?;
                let sig = p256::ecdsa::Signature::from_slice(sig).map_err(bad)?;
                vk.verify(tbs, &sig).map_err(bad)
            }
            Curve::P384 => {
                let vk =
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(key.as_bytes()).map_err(bad_key)?;
                let sig = p384::ecdsa::Signature::from_slice(sig).map_err(bad)?;
                vk.verify(tbs, &sig).map_err(bad)
            }
            Curve::Ed25519 => {
                let raw: &[u8; 32] = key.as_bytes().try_into().map_err(bad_key)?;
                let vk = ed25519_dalek::VerifyingKey::from_bytes(raw).map_err(bad_key)?;
                let sig = ed25519_dalek::Signature::from_slice(sig).map_err(bad)?;
                // Strict: S < L, and neither R nor the key of small order, so a signature
                // cannot be altered into another valid one and both providers agree.
                vk.verify_strict(tbs, &sig).map_err(bad)
            }
        }
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CoseError> {
        getrandom::fill(out).map_err(|_| CoseError::Crypto("OS random generator failed"))
    }

    fn hmac_sha256(&self, key: &[u8], data: &[u8]) -> [u8; 32] {
        // HMAC takes keys of any length (long keys are hashed), so this cannot fail.
        match hmac::Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().into()
            }
            Err(_) => [0; 32],
        }
    }

    fn ecdh_p256(
        &self,
        private: &PrivateKey,
        peer: &PublicKey,
    ) -> Result<Zeroizing<[u8; 32]>, CoseError> {
        check_ecdh_p256(private, peer)?;
        let secret = p256::SecretKey::from_slice(private.secret_bytes()).map_err(bad_key)?;
        let peer = p256::PublicKey::from_sec1_bytes(peer.as_bytes()).map_err(bad_key)?;
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }

    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CoseError> {
        hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
            .expand(info, out)
            .map_err(|_| CoseError::Crypto("HKDF output too long"))
    }

    fn aes_kw_wrap(&self, kek: &[u8], key: &[u8]) -> Result<Vec<u8>, CoseError> {
        let mut out = vec![0u8; key.len() + 8];
        let failed = |_| CoseError::Crypto("AES key wrap: key length not a multiple of 8");
        match kek.len() {
            16 => aes_kw::KwAes128::new_from_slice(kek)
                .map_err(bad_key)?
                .wrap_key(key, &mut out)
                .map_err(failed)?,
            32 => aes_kw::KwAes256::new_from_slice(kek)
                .map_err(bad_key)?
                .wrap_key(key, &mut out)
                .map_err(failed)?,
            _ => {
                return Err(CoseError::Crypto(
                    "AES key wrap: KEK must be 16 or 32 bytes",
                ));
            }
        };
        Ok(out)
    }

    fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CoseError> {
        let len = wrapped
            .len()
            .checked_sub(8)
            .ok_or(CoseError::Crypto("AES key unwrap: input too short"))?;
        let mut out = Zeroizing::new(vec![0u8; len]);
        let failed = |_| CoseError::Crypto("AES key unwrap: integrity check failed");
        match kek.len() {
            16 => aes_kw::KwAes128::new_from_slice(kek)
                .map_err(bad_key)?
                .unwrap_key(wrapped, &mut out)
                .map_err(failed)?,
            32 => aes_kw::KwAes256::new_from_slice(kek)
                .map_err(bad_key)?
                .unwrap_key(wrapped, &mut out)
                .map_err(failed)?,
            _ => {
                return Err(CoseError::Crypto(
                    "AES key unwrap: KEK must be 16 or 32 bytes",
                ));
            }
        };
        Ok(out)
    }

    fn aes_ctr_apply(&self, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), CoseError> {
        let bad_len = |_| CoseError::Crypto("AES-CTR: key must be 16 or 32 bytes, iv 16");
        match key.len() {
            16 => ctr::Ctr128BE::<aes::Aes128>::new_from_slices(key, iv)
                .map_err(bad_len)?
                .apply_keystream(data),
            32 => ctr::Ctr128BE::<aes::Aes256>::new_from_slices(key, iv)
                .map_err(bad_len)?
                .apply_keystream(data),
            _ => {
                return Err(CoseError::Crypto(
                    "AES-CTR: key must be 16 or 32 bytes, iv 16",
                ));
            }
        }
        Ok(())
    }

    fn aes_gcm_seal(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CoseError> {
        let payload = Payload {
            msg: plaintext,
            aad,
        };
        let failed = |_| CoseError::Crypto("AES-GCM seal failed");
        let nonce = gcm_nonce(nonce)?;
        match key.len() {
            16 => aes_gcm::Aes128Gcm::new_from_slice(key)
                .map_err(bad_key)?
                .encrypt(&nonce, payload)
                .map_err(failed),
            32 => aes_gcm::Aes256Gcm::new_from_slice(key)
                .map_err(bad_key)?
                .encrypt(&nonce, payload)
                .map_err(failed),
            _ => Err(CoseError::Crypto("AES-GCM: key must be 16 or 32 bytes")),
        }
    }

    fn aes_gcm_open(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, CoseError> {
        let payload = Payload {
            msg: ciphertext_and_tag,
            aad,
        };
        let failed = |_| CoseError::Crypto("AES-GCM: authentication failed");
        let nonce = gcm_nonce(nonce)?;
        match key.len() {
            16 => aes_gcm::Aes128Gcm::new_from_slice(key)
                .map_err(bad_key)?
                .decrypt(&nonce, payload)
                .map_err(failed),
            32 => aes_gcm::Aes256Gcm::new_from_slice(key)
                .map_err(bad_key)?
                .decrypt(&nonce, payload)
                .map_err(failed),
            _ => Err(CoseError::Crypto("AES-GCM: key must be 16 or 32 bytes")),
        }
    }
}

fn gcm_nonce(nonce: &[u8]) -> Result<aes_gcm::Nonce<aes_gcm::aead::consts::U12>, CoseError> {
    aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::try_from(nonce)
        .map_err(|_| CoseError::Crypto("AES-GCM: nonce must be 12 bytes"))
}
