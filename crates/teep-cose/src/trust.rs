//! Trust anchors and the context of one verification.
use alloc::vec::Vec;

use crate::key::PublicKey;
use crate::provider::CryptoProvider;

/// Trust anchors: raw public keys and (feature x509) CA certificates + CRLs.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    keys: Vec<PublicKey>,
    #[cfg(feature = "x509")]
    pub(crate) x509: crate::x509::X509Anchors,
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts a raw public key; a signature whose kid is its thumbprint (or with no kid)
    /// may verify with it, as far as the key's own [`crate::KeyUse`] allows. The same key
    /// added again (equal point, whatever its restrictions) keeps the first entry.
    pub fn add_key(&mut self, key: PublicKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The trusted raw key whose RFC 9679 thumbprint is `kid`.
    pub fn key_by_kid(&self, kid: &[u8]) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.thumbprint() == kid)
    }
}

/// Context of a verification: which provider, which trust anchors, what time it is
/// (unix seconds; needed for certificate expiry; `None` = certificates are rejected).
#[derive(Clone, Copy)]
pub struct VerifyContext<'a> {
    pub provider: &'a dyn CryptoProvider,
    pub trust: &'a TrustStore,
    pub now: Option<u64>,
    pub external_aad: &'a [u8],
}

impl<'a> VerifyContext<'a> {
    /// No clock and no external AAD: enough for raw-key trust.
    pub fn new(provider: &'a dyn CryptoProvider, trust: &'a TrustStore) -> Self {
        Self {
            provider,
            trust,
            now: None,
            external_aad: &[],
        }
    }
}
