//! aws-lc-rs provider: the fast host backend (TAM, CLI, Verifier).
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use aws_lc_rs::key_wrap::KeyWrap as _;
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::{aead, agreement, cipher, digest, hkdf, hmac, key_wrap, rand, signature};
use zeroize::Zeroizing;

use crate::alg::{Algorithm, Curve};
use crate::error::CoseError;
use crate::key::{PrivateKey, PublicKey, is_strict_ed25519_point};
use crate::provider::{CryptoProvider, Signer, check_ecdh_p256, check_key_alg, check_signer};

/// aws-lc backend (needs std and a C compiler).
#[derive(Clone, Copy, Debug, Default)]
pub struct AwsLcProvider;

enum KeyPair {
    Ecdsa(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
}

struct AwsLcSigner {
    key: KeyPair,
    alg: Algorithm,
    public: PublicKey,
    rng: rand::SystemRandom,
}

impl Signer for AwsLcSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, tbs: &[u8]) -> Result<Vec<u8>, CoseError> {
        Ok(match &self.key {
            KeyPair::Ecdsa(k) => k
                .sign(&self.rng, tbs)
                .map_err(|_| CoseError::Crypto("signing failed"))?
                .as_ref()
                .to_vec(),
            KeyPair::Ed25519(k) => k.sign(tbs).as_ref().to_vec(),
        })
    }
}

fn bad_key(_: impl Sized) -> CoseError {
    CoseError::invalid_key("key rejected by aws-lc")
}

/// Verification algorithm with fixed-size (r||s) ECDSA signatures, as COSE encodes them.
fn verification_alg(curve: Curve) -> &'static dyn signature::VerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::Ed25519 => &signature::ED25519,
    }
}

/// HKDF output length for aws-lc's typed `expand`.
struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn aes_kw_cipher(kek: &[u8]) -> Result<&'static key_wrap::AesBlockCipher, CoseError> {
    match kek.len() {
        16 => Ok(&key_wrap::AES_128),
        32 => Ok(&key_wrap::AES_256),
        _ => Err(CoseError::Crypto(
            "AES key wrap: KEK must be 16 or 32 bytes",
        )),
    }
}

fn aes_gcm_key(key: &[u8]) -> Result<aead::LessSafeKey, CoseError> {
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        32 => &aead::AES_256_GCM,
        _ => return Err(CoseError::Crypto("AES-GCM: key must be 16 or 32 bytes")),
    };
    Ok(aead::LessSafeKey::new(
        aead::UnboundKey::new(alg, key).map_err(bad_key)?,
    ))
}

fn gcm_nonce(nonce: &[u8]) -> Result<aead::Nonce, CoseError> {
    aead::Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| CoseError::Crypto("AES-GCM: nonce must be 12 bytes"))
}

impl CryptoProvider for AwsLcProvider {
    fn name(&self) -> &'static str {
        "aws-lc"
    }

    fn signer(&self, key: &PrivateKey, alg: Algorithm) -> Result<Box<dyn Signer>, CoseError> {
        check_signer(key, alg)?;
        let d = key.secret_bytes();
        let public = key.public_key();
        let pair = match key.curve() {
            Curve::P256 | Curve::P384 => {
                let signing_alg = if key.curve() == Curve::P256 {
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                KeyPair::Ecdsa(
                    signature::EcdsaKeyPair::from_private_key_and_public_key(
                        signing_alg,
                        d,
                        public.as_bytes(),
                    )
                    .map_err(bad_key)?,
                )
            }
            Curve::Ed25519 => KeyPair::Ed25519(
                signature::Ed25519KeyPair::from_seed_and_public_key(d, public.as_bytes())
                    .map_err(bad_key)?,
            ),
        };
        // Both halves were validated by PrivateKey; aws-lc agreeing is a cross-check.
        let derived = match &pair {
            KeyPair::Ecdsa(k) => k.public_key().as_ref(),
            KeyPair::Ed25519(k) => k.public_key().as_ref(),
        };
        if derived != public.as_bytes() {
            return Err(CoseError::invalid_key("aws-lc derived another public key"));
        }
        Ok(Box::new(AwsLcSigner {
            key: pair,
            alg,
            public: public.clone(),
            rng: rand::SystemRandom::new(),
        }))
    }

    fn verify(
        &self,
        key: &PublicKey,
        alg: Algorithm,
        tbs: &[u8],
        sig: &[u8],
    ) -> Result<(), CoseError> {
        check_key_alg(key, alg)?;
        // aws-lc checks S < L and the cofactorless equation, as ed25519-dalek does, but not
        // whether R is of small order; rejecting that here makes it match `verify_strict` in
        // the RustCrypto provider (the key itself was checked at import).
        if key.curve() == Curve::Ed25519
            && !sig.first_chunk::<32>().is_some_and(is_strict_ed25519_point)
        {
            return Err(CoseError::BadSignature);
        }
        signature::UnparsedPublicKey::new(verification_alg(key.curve()), key.as_bytes())
            .verify(tbs, sig)
            .map_err(|_| CoseError::BadSignature)
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
        out
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CoseError> {
        rand::fill(out).map_err(|_| CoseError::Crypto("aws-lc random generator failed"))
    }

    fn hmac_sha256(&self, key: &[u8], data: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn ecdh_p256(
        &self,
        private: &PrivateKey,
        peer: &PublicKey,
    ) -> Result<Zeroizing<[u8; 32]>, CoseError> {
        check_ecdh_p256(private, peer)?;
        let mine =
            agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, private.secret_bytes())
                .map_err(bad_key)?;
        let theirs = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer.as_bytes());
        agreement::agree(&mine, theirs, CoseError::Crypto("ECDH failed"), |shared| {
            let mut out = Zeroizing::new([0u8; 32]);
            if shared.len() != out.len() {
                return Err(CoseError::Crypto("ECDH output length"));
            }
            out.copy_from_slice(shared);
            Ok(out)
        })
    }

    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CoseError> {
        let too_long = |_| CoseError::Crypto("HKDF output too long");
        hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
            .extract(ikm)
            .expand(&[info], OutLen(out.len()))
            .map_err(too_long)?
            .fill(out)
            .map_err(too_long)
    }

    fn aes_kw_wrap(&self, kek: &[u8], key: &[u8]) -> Result<Vec<u8>, CoseError> {
        let kek = key_wrap::KeyEncryptionKey::new(aes_kw_cipher(kek)?, kek).map_err(bad_key)?;
        let mut out = vec![0u8; key.len() + 8];
        let len = kek
            .wrap(key, &mut out)
            .map_err(|_| CoseError::Crypto("AES key wrap: key length not a multiple of 8"))?
            .len();
        out.truncate(len);
        Ok(out)
    }

    fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CoseError> {
        let kek = key_wrap::KeyEncryptionKey::new(aes_kw_cipher(kek)?, kek).map_err(bad_key)?;
        let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
        let len = kek
            .unwrap(wrapped, &mut out)
            .map_err(|_| CoseError::Crypto("AES key unwrap: integrity check failed"))?
            .len();
        out.truncate(len);
        Ok(out)
    }

    fn aes_ctr_apply(&self, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), CoseError> {
        let bad_len = |_| CoseError::Crypto("AES-CTR: key must be 16 or 32 bytes, iv 16");
        let alg = match key.len() {
            16 => &cipher::AES_128,
            32 => &cipher::AES_256,
            _ => {
                return Err(CoseError::Crypto(
                    "AES-CTR: key must be 16 or 32 bytes, iv 16",
                ));
            }
        };
        let iv = aws_lc_rs::iv::FixedLength::<16>::try_from(iv).map_err(bad_len)?;
        let key = cipher::UnboundCipherKey::new(alg, key).map_err(bad_key)?;
        // CTR decryption is the same keystream XOR as encryption, and it takes a given IV.
        cipher::DecryptingKey::ctr(key)
            .map_err(bad_key)?
            .decrypt(data, cipher::DecryptionContext::Iv128(iv))
            .map_err(bad_len)?;
        Ok(())
    }

    fn aes_gcm_seal(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CoseError> {
        let key = aes_gcm_key(key)?;
        let nonce = gcm_nonce(nonce)?;
        let mut out = Vec::with_capacity(plaintext.len() + 16);
        out.extend_from_slice(plaintext);
        key.seal_in_place_append_tag(nonce, aead::Aad::from(aad), &mut out)
            .map_err(|_| CoseError::Crypto("AES-GCM seal failed"))?;
        Ok(out)
    }

    fn aes_gcm_open(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, CoseError> {
        let key = aes_gcm_key(key)?;
        let nonce = gcm_nonce(nonce)?;
        let mut buf = ciphertext_and_tag.to_vec();
        let len = key
            .open_in_place(nonce, aead::Aad::from(aad), &mut buf)
            .map_err(|_| CoseError::Crypto("AES-GCM: authentication failed"))?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}
