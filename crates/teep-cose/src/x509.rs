//! X.509 (RFC 9360 `x5chain`) chains to CA trust anchors, verified by rustls-webpki with
//! aws-lc-rs signature algorithms, with expiry against the caller's clock and optional CRLs.
use alloc::vec::Vec;
use core::time::Duration;

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyPurposeIdIter, RevocationOptionsBuilder};

use crate::error::{CertificateError, CoseError};
use crate::key::PublicKey;
use crate::trust::{CaCertificate, TrustStore, VerifyContext};

/// CRLs (kept as validated DER, parsed per use because webpki's CRL type is not `Clone`);
/// the CA anchors themselves are [`TrustStore::cas`].
#[derive(Clone, Debug, Default)]
pub(crate) struct X509Anchors {
    crls: Vec<Vec<u8>>,
}

fn malformed(e: impl core::fmt::Debug) -> CoseError {
    CertificateError::Malformed(alloc::format!("{e:?}")).into()
}

/// The webpki trust anchor of a CA certificate (DER).
pub(crate) fn anchor_of(der: &[u8]) -> Result<TrustAnchor<'static>, CoseError> {
    let cert = CertificateDer::from(der);
    Ok(webpki::anchor_from_trusted_cert(&cert)
        .map_err(malformed)?
        .to_owned())
}

impl TrustStore {
    /// Trusts a CA certificate (DER): x5chain leaves that chain to it are trusted signers.
    pub fn add_ca_der(&mut self, der: Vec<u8>) -> Result<(), CoseError> {
        self.add_ca(CaCertificate::from_der(der)?);
        Ok(())
    }

    /// Trusts every CERTIFICATE block of a PEM text.
    pub fn add_ca_pem(&mut self, pem: &str) -> Result<(), CoseError> {
        for der in crate::pem::certificates_from_pem(pem)? {
            self.add_ca_der(der)?;
        }
        Ok(())
    }

    /// Adds a CRL (DER); once any CRL is configured, chains are checked against them.
    pub fn add_crl_der(&mut self, der: Vec<u8>) -> Result<(), CoseError> {
        webpki::BorrowedCertRevocationList::from_der(&der).map_err(malformed)?;
        self.x509.crls.push(der);
        Ok(())
    }
}

/// COSE signing has no registered extended key usage and TEEP names none, so any EKU (or
/// none) is accepted; the trust decision rests on the CA anchor, which is TEEP-specific.
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, _iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

fn map_webpki(e: webpki::Error) -> CoseError {
    use webpki::Error as W;
    let cert = match e {
        W::CertExpired { .. } => CertificateError::Expired,
        W::CertNotValidYet { .. } => CertificateError::NotYetValid,
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::CertRevoked => CertificateError::Revoked,
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        W::BadDer | W::BadDerTime | W::TrailingData(_) | W::MalformedExtensions => {
            CertificateError::Malformed(alloc::format!("{e:?}"))
        }
        other => CertificateError::Unsupported(alloc::format!("{other:?}")),
    };
    cert.into()
}

/// Verifies `chain` (leaf first) to a CA anchor at `cx.now` and returns the leaf's key and
/// the anchor it verified to.
pub(crate) fn verify_chain(
    chain: &[&[u8]],
    cx: &VerifyContext<'_>,
) -> Result<(PublicKey, CaCertificate), CoseError> {
    let now = cx.now.ok_or(CertificateError::NoClock)?;
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| CoseError::malformed("empty x5chain"))?;
    let store = &cx.trust.x509;
    let cas = cx.trust.cas();
    if cas.is_empty() {
        return Err(CertificateError::UnknownIssuer.into());
    }
    let anchors: Vec<TrustAnchor<'_>> = cas.iter().map(|ca| ca.anchor.clone()).collect();
    let leaf_der = CertificateDer::from(*leaf);
    let end_entity = EndEntityCert::try_from(&leaf_der).map_err(map_webpki)?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(*c))
        .collect();
    let crls: Vec<webpki::CertRevocationList<'_>> = store
        .crls
        .iter()
        .map(|der| webpki::BorrowedCertRevocationList::from_der(der).map(Into::into))
        .collect::<Result<_, _>>()
        .map_err(map_webpki)?;
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
    // A certificate no configured CRL speaks about is accepted: CRLs are an extra check
    // where configured, not a requirement for every issuer.
    let revocation = match RevocationOptionsBuilder::new(&crl_refs) {
        Ok(builder) => Some(
            builder
                .with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .build(),
        ),
        Err(_no_crls) => None,
    };
    let path = end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            UnixTime::since_unix_epoch(Duration::from_secs(now)),
            AnyEku,
            revocation,
            None,
        )
        .map_err(map_webpki)?;
    // webpki hands back a reference into `anchors`, which is index-aligned with `cas`.
    let ca = anchors
        .iter()
        .position(|a| core::ptr::eq(a, path.anchor()))
        .and_then(|i| cas.get(i))
        .ok_or(CoseError::Crypto(
            "verified anchor not among the configured ones",
        ))?;
    Ok((crate::pem::public_from_cert_der(leaf)?, ca.clone()))
}
