//! teep-cose: COSE_Sign1 / COSE_Sign over `coset`, keys (COSE_Key, PEM), RFC 9679
//! thumbprints, X.509 chains, and the `CryptoProvider` seam with a RustCrypto (no_std) and an
//! aws-lc (host) backend.
//!
//! Key use follows the key (RFC 9052 §7.1, module `usage`, [`KeyUse`]): a COSE_Key's own `alg`
//! and `key_ops` are kept on import and checked wherever the key is used, so a trust anchor
//! marked for key agreement (or lacking `verify`, or naming another `alg`) verifies nothing.
//! The one documented alias: a key marked ES256 (-7) verifies and signs ESP256 (-9) and the
//! reverse, and EdDSA (-8) / Ed25519 (-19) likewise, as each pair is one operation here.
//!
//! Encryption ([`encrypt`]): an attached ciphertext (TEEP §12 EATs and SUIT reports) must be
//! an AEAD named in the protected header; A128CTR is for detached SUIT payloads only.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// Deliberate re-export: [`PublicKey::from_cose_key`] / [`PublicKey::to_cose_key`] (and
/// the [`PrivateKey`] twins) and [`ParsedSigned`] expose `coset` types, so callers use this
/// path and always get the version this crate was built with.
pub use coset;
/// Deliberate re-export: secrets cross the public API as [`zeroize::Zeroizing`] (wiped on
/// drop), e.g. [`CryptoProvider::aes_kw_unwrap`], [`encrypt::decrypt`] and
/// [`encrypt::DecryptionKey::A128Kw`]; callers build and take them through this path.
pub use zeroize;

mod alg;
#[cfg(feature = "aws-lc")]
mod awslc;
pub mod encrypt;
mod error;
mod key;
#[cfg(feature = "std")]
mod pem;
mod provider;
mod rustcrypto;
mod sign;
mod trust;
mod usage;
#[cfg(feature = "x509")]
mod x509;

pub use alg::{Algorithm, Curve};
#[cfg(feature = "aws-lc")]
pub use awslc::AwsLcProvider;
pub use error::{CertificateError, CoseError, TeepClass};
pub use key::{PrivateKey, PublicKey};
#[cfg(feature = "std")]
pub use pem::{ImportNotice, certificates_from_pem};
pub use provider::{CryptoProvider, Signer, default_provider};
pub use rustcrypto::RustCryptoProvider;
pub use sign::{
    ParsedSigned, SignOptions, Verified, parse_signed, sign, sign1, sign1_with, verify_sign,
    verify_sign1, verify_sign1_detached, verify_signed,
};
pub use trust::{CaCertificate, TrustStore, VerifyContext};
pub use usage::{KeyOp, KeyUse};
