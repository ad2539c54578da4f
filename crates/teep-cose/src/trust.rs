//! Trust anchors and the context of one verification.
use alloc::vec::Vec;

use crate::alg::Algorithm;
use crate::error::CoseError;
use crate::key::PublicKey;
use crate::provider::CryptoProvider;

/// A CA certificate accepted as a trust anchor: its DER, checked on construction to be
/// usable as one. It names the anchor an `x5chain` verified to ([`crate::Verified::ca`]),
/// so a caller can scope certificate-chain signers per CA.
#[derive(Clone)]
pub struct CaCertificate {
    der: Vec<u8>,
    #[cfg(feature = "x509")]
    pub(crate) anchor: rustls_pki_types::TrustAnchor<'static>,
}

/// Shown by fingerprint: the DER would drown any error message.
impl core::fmt::Debug for CaCertificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CaCertificate(sha256:")?;
        for b in self.fingerprint() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// Two CA certificates are the same anchor when their DER is equal.
impl PartialEq for CaCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for CaCertificate {}

impl CaCertificate {
    /// Parses a CA certificate (DER) as a trust anchor.
    #[cfg(feature = "x509")]
    pub fn from_der(der: Vec<u8>) -> Result<Self, CoseError> {
        let anchor = crate::x509::anchor_of(&der)?;
        Ok(Self { der, anchor })
    }

    /// Without X.509 support no certificate can be an anchor.
    #[cfg(not(feature = "x509"))]
    pub fn from_der(_der: Vec<u8>) -> Result<Self, CoseError> {
        Err(
            crate::error::CertificateError::Unsupported("built without the x509 feature".into())
                .into(),
        )
    }

    /// The certificate as given.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the certificate DER: a stable name for the anchor.
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(&self.der).into()
    }
}

/// Trust anchors: raw public keys and (feature x509) CA certificates + CRLs.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    keys: Vec<PublicKey>,
    pub(crate) cas: Vec<CaCertificate>,
    #[cfg(feature = "x509")]
    pub(crate) x509: crate::x509::X509Anchors,
}

impl TrustStore {
    /// An empty store: trusts nothing until keys or CAs are added.
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

    /// The trusted raw keys, in the order added.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Trusts a CA certificate: x5chain leaves that chain to it are trusted signers. The
    /// same certificate added again keeps the first entry.
    pub fn add_ca(&mut self, ca: CaCertificate) {
        if !self.cas.contains(&ca) {
            self.cas.push(ca);
        }
    }

    /// The CA anchors, in the order added (a chain that verifies to two anchors, e.g. two
    /// certificates of one CA key, is reported against the first).
    pub fn cas(&self) -> &[CaCertificate] {
        &self.cas
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
    /// The backend that checks signatures (and certificate chains).
    pub provider: &'a dyn CryptoProvider,
    /// The anchors a signer must be, or chain to.
    pub trust: &'a TrustStore,
    /// Current time in unix seconds for certificate validity; `None` refuses x5chain.
    pub now: Option<u64>,
    /// Application data bound into the Sig_structure (RFC 9052 §4.3 external_aad); must
    /// equal what the signer used.
    pub external_aad: &'a [u8],
    /// The signature algorithms accepted here (`None`: every one the library implements).
    /// A signature under another is refused before any key is tried
    /// ([`CoseError::DisallowedAlgorithm`]), even by a trusted key: a deployment that
    /// negotiated one cipher suite does not accept the others.
    pub algorithms: Option<&'a [Algorithm]>,
}

impl<'a> VerifyContext<'a> {
    /// No clock and no external AAD: enough for raw-key trust.
    pub fn new(provider: &'a dyn CryptoProvider, trust: &'a TrustStore) -> Self {
        Self {
            provider,
            trust,
            now: None,
            external_aad: &[],
            algorithms: None,
        }
    }

    /// This context accepting only signatures under `algorithms`.
    #[must_use]
    pub fn with_algorithms(self, algorithms: &'a [Algorithm]) -> Self {
        Self {
            algorithms: Some(algorithms),
            ..self
        }
    }

    /// Refuses `alg` when an allow-list is set and does not name it.
    pub(crate) fn allow(&self, alg: Algorithm) -> Result<(), CoseError> {
        match self.algorithms {
            Some(allowed) if !allowed.contains(&alg) => Err(CoseError::DisallowedAlgorithm(alg)),
            _ => Ok(()),
        }
    }
}
