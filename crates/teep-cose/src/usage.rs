//! What a key may be used for: a COSE_Key's own `alg` and `key_ops` (RFC 9052 §7.1).
//!
//! RFC 9052 §7.1: when a key carries `alg`, the application MUST check that it matches the
//! algorithm the key is used with; `key_ops` lists the operations the key is for. Both are
//! kept on import ([`crate::PublicKey::from_cose_key`], `from_any`) and enforced where the
//! key is used:
//! - signature verification (every provider's `verify`, and the trust-anchor scan of
//!   `verify_sign1` & co): `key_ops` must hold `verify`, and `alg` must be the signature's
//!   alg or its alias (below). A key-agreement key never verifies.
//! - signing (every provider's `signer`): `key_ops` must hold `sign`, `alg` as above.
//! - ECDH-ES+A128KW, both as recipient ([`crate::encrypt::decrypt`] skips a static key
//!   whose use does not allow it, like a key of the wrong kind) and as sender
//!   ([`crate::encrypt::encrypt_esdh`] refuses such a recipient key): `key_ops` must hold
//!   `derive key` or `derive bits` (RFC 9053 §6.3.1), `alg` must be ECDH-ES+A128KW (-29).
//!
//! Aliases: ES256 (-7) and ESP256 (-9) are the same operation on a P-256 key, as are EdDSA
//! (-8) and Ed25519 (-19) on an Ed25519 key (RFC 9864 deprecated the polymorphic ids, TEEP
//! peers still send them; this library has no Ed448). A key marked with one of a pair
//! therefore verifies and signs under the other; there is no other alias.
//!
//! The public half of a private COSE_Key may do the public counterpart of each private
//! operation: `sign` lets it `verify`, `decrypt` lets it `encrypt`, `unwrap key` lets it
//! `wrap key`. Without `alg` and `key_ops` a key is unrestricted (PEM, and certificates
//! without keyUsage; a certificate's keyUsage becomes its `key_ops`).
use crate::alg::Algorithm;
use crate::error::CoseError;

/// A `key_ops` value (RFC 9052 §7.1, Table 5).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyOp {
    /// `sign` (1): create signatures.
    Sign,
    /// `verify` (2): check signatures.
    Verify,
    /// `encrypt` (3): encrypt content.
    Encrypt,
    /// `decrypt` (4): decrypt content.
    Decrypt,
    /// `wrap key` (5): encrypt a key.
    WrapKey,
    /// `unwrap key` (6): decrypt a key.
    UnwrapKey,
    /// `derive key` (7): derive a key (e.g. the ECDH-ES KEK).
    DeriveKey,
    /// `derive bits` (8): derive bits not used as a key.
    DeriveBits,
    /// `MAC create` (9): create MAC tags.
    MacCreate,
    /// `MAC verify` (10): check MAC tags.
    MacVerify,
}

const ALL_OPS: [KeyOp; 10] = [
    KeyOp::Sign,
    KeyOp::Verify,
    KeyOp::Encrypt,
    KeyOp::Decrypt,
    KeyOp::WrapKey,
    KeyOp::UnwrapKey,
    KeyOp::DeriveKey,
    KeyOp::DeriveBits,
    KeyOp::MacCreate,
    KeyOp::MacVerify,
];

impl KeyOp {
    /// The COSE `key_ops` value.
    pub const fn cose_id(self) -> i64 {
        match self {
            Self::Sign => 1,
            Self::Verify => 2,
            Self::Encrypt => 3,
            Self::Decrypt => 4,
            Self::WrapKey => 5,
            Self::UnwrapKey => 6,
            Self::DeriveKey => 7,
            Self::DeriveBits => 8,
            Self::MacCreate => 9,
            Self::MacVerify => 10,
        }
    }

    /// The operation for a COSE `key_ops` value, if registered.
    pub fn from_cose_id(id: i64) -> Option<Self> {
        ALL_OPS.into_iter().find(|op| op.cose_id() == id)
    }

    const fn bit(self) -> u16 {
        1 << self.cose_id()
    }
}

/// A key's own restrictions: its COSE_Key `alg` and `key_ops`; `None` = not restricted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyUse {
    alg: Option<i64>,
    ops: Option<u16>,
}

impl KeyUse {
    /// No `alg`, no `key_ops`: any use that fits the key type.
    pub const UNRESTRICTED: Self = Self {
        alg: None,
        ops: None,
    };

    /// Restricts to `alg` (a COSE algorithm id) and to the operations `ops`.
    pub fn new(alg: Option<i64>, ops: Option<&[KeyOp]>) -> Self {
        Self {
            alg,
            ops: ops.map(|ops| ops.iter().fold(0, |bits, op| bits | op.bit())),
        }
    }

    /// The COSE algorithm the key is restricted to.
    pub fn alg(&self) -> Option<i64> {
        self.alg
    }

    /// Does `key_ops` allow `op` (true when the key has no `key_ops`)?
    pub fn permits(&self, op: KeyOp) -> bool {
        self.ops.is_none_or(|bits| bits & op.bit() != 0)
    }

    /// The operations `key_ops` lists, or `None` when the key has none.
    pub fn ops(&self) -> Option<impl Iterator<Item = KeyOp> + '_> {
        let bits = self.ops?;
        Some(ALL_OPS.into_iter().filter(move |op| bits & op.bit() != 0))
    }

    /// The restrictions of a private key's public half (see the module doc).
    pub(crate) fn public_half(self) -> Self {
        const PAIRS: [(KeyOp, KeyOp); 3] = [
            (KeyOp::Sign, KeyOp::Verify),
            (KeyOp::Decrypt, KeyOp::Encrypt),
            (KeyOp::UnwrapKey, KeyOp::WrapKey),
        ];
        let ops = self.ops.map(|bits| {
            PAIRS
                .iter()
                .filter(|(private, _)| bits & private.bit() != 0)
                .fold(bits, |bits, (_, public)| bits | public.bit())
        });
        Self { ops, ..self }
    }

    /// May the key `op` (sign or verify) under the signature algorithm `alg`?
    pub(crate) fn check_signature(&self, alg: Algorithm, op: KeyOp) -> Result<(), CoseError> {
        if !self.permits(op) {
            return Err(CoseError::KeyOpNotPermitted(op));
        }
        match self.alg {
            Some(own)
                if Algorithm::from_cose_id(own).map(Algorithm::fully_specified)
                    != Some(alg.fully_specified()) =>
            {
                Err(CoseError::AlgorithmKeyMismatch { alg: alg.cose_id() })
            }
            _ => Ok(()),
        }
    }

    /// May the key take part in the key agreement `alg` (e.g. ECDH-ES+A128KW)?
    pub(crate) fn check_agreement(&self, alg: i64) -> Result<(), CoseError> {
        if !(self.permits(KeyOp::DeriveKey) || self.permits(KeyOp::DeriveBits)) {
            return Err(CoseError::KeyOpNotPermitted(KeyOp::DeriveBits));
        }
        match self.alg {
            Some(own) if own != alg => Err(CoseError::AlgorithmKeyMismatch { alg }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for op in ALL_OPS {
            assert_eq!(KeyOp::from_cose_id(op.cose_id()), Some(op));
        }
        assert_eq!(KeyOp::from_cose_id(0), None);
        assert_eq!(KeyOp::from_cose_id(11), None);
    }

    #[test]
    fn the_public_half_of_a_signing_key_verifies_and_nothing_more() {
        let private = KeyUse::new(None, Some(&[KeyOp::Sign]));
        assert!(!private.permits(KeyOp::Verify));
        let public = private.public_half();
        assert!(public.permits(KeyOp::Verify));
        assert!(!public.permits(KeyOp::DeriveBits));
        let listed: alloc::vec::Vec<KeyOp> = public.ops().unwrap().collect();
        assert_eq!(listed, [KeyOp::Sign, KeyOp::Verify]);
        assert!(KeyUse::UNRESTRICTED.ops().is_none());
        assert_eq!(KeyUse::UNRESTRICTED.public_half(), KeyUse::UNRESTRICTED);
    }

    #[test]
    fn signature_aliases_are_exactly_the_two_pairs() {
        let es256 = KeyUse::new(Some(-7), None);
        assert!(
            es256
                .check_signature(Algorithm::Esp256, KeyOp::Verify)
                .is_ok()
        );
        assert!(
            es256
                .check_signature(Algorithm::Es256, KeyOp::Verify)
                .is_ok()
        );
        assert_eq!(
            es256.check_signature(Algorithm::Es384, KeyOp::Verify),
            Err(CoseError::AlgorithmKeyMismatch { alg: -35 })
        );
        let eddsa = KeyUse::new(Some(-8), None);
        assert!(
            eddsa
                .check_signature(Algorithm::Ed25519, KeyOp::Verify)
                .is_ok()
        );
        assert_eq!(
            eddsa.check_signature(Algorithm::Esp256, KeyOp::Verify),
            Err(CoseError::AlgorithmKeyMismatch { alg: -9 })
        );
        // An alg this library does not sign with matches no signature alg.
        let ecdh = KeyUse::new(Some(-29), None);
        assert_eq!(
            ecdh.check_signature(Algorithm::Esp256, KeyOp::Verify),
            Err(CoseError::AlgorithmKeyMismatch { alg: -9 })
        );
    }
}
