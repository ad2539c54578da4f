//! Envelope authentication: the digest over the bstr-wrapped manifest, COSE_Sign1 and
//! COSE_Mac0 authentication blocks with the encoded SUIT_Digest as detached payload, and
//! severed elements against their digests.

use alloc::vec::Vec;

use teep_cose::coset::{self, TaggedCborSerializable, iana::EnumI64};
use teep_cose::{CaCertificate, CoseError, CryptoProvider, PublicKey, TrustStore, VerifyContext};

use crate::cbor::{Reader, SuitRead, ct_eq};
use crate::error::SuitError;
use crate::model::{Envelope, Manifest, Member, SHA256, Section};

const TAG_SIGN1: u64 = 18;
const TAG_MAC0: u64 = 17;
/// HMAC 256/256, the MAC of the suit-sha256-hmac-a128kw-a128ctr profile.
const ALG_HMAC_256_256: i64 = 5;

/// What an envelope's authentication blocks are checked against.
#[derive(Clone, Copy)]
pub struct Anchors<'a> {
    /// TC signer keys (and CA certificates) for COSE_Sign1 blocks.
    pub signers: &'a TrustStore,
    /// Shared HMAC-256 keys for COSE_Mac0 blocks.
    pub mac_keys: &'a [Vec<u8>],
    /// Unix time for certificate validity (`None` rejects certificate chains).
    pub now: Option<u64>,
}

/// An envelope whose manifest is authenticated (digest and one authentication block).
#[derive(Clone, Debug)]
pub struct Authenticated<'a> {
    /// The decoded envelope.
    pub envelope: Envelope<'a>,
    /// The manifest it authenticates, decoded from the envelope's manifest bstr.
    pub manifest: Manifest<'a>,
    /// SHA-256 of the bstr-wrapped manifest (= the authenticated digest).
    pub digest: [u8; 32],
    /// Which key signed (None when a MAC authenticated the manifest).
    pub signer: Option<PublicKey>,
    /// The CA anchor the signer's certificate chain verified to (None for a raw key or MAC).
    pub ca: Option<CaCertificate>,
}

/// Decodes and authenticates an envelope. The manifest is decoded only after a block
/// verified and the digest matched (nothing unauthenticated is interpreted).
pub fn authenticate<'a>(
    bytes: &'a [u8],
    provider: &dyn CryptoProvider,
    anchors: &Anchors<'_>,
) -> Result<Authenticated<'a>, SuitError> {
    let envelope = Envelope::decode(bytes)?;
    let auth = &envelope.authentication;
    if auth.digest.algorithm != SHA256 {
        return Err(SuitError::UnsupportedDigestAlgorithm(auth.digest.algorithm));
    }
    let mut first_error = None;
    let mut signer = None;
    let mut verified = false;
    for block in &auth.blocks {
        match verify_block(block, auth.digest_cbor, provider, anchors) {
            Ok(by) => {
                signer = by;
                verified = true;
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if !verified {
        return Err(first_error.unwrap_or(SuitError::NoAuthenticationBlock));
    }
    let digest = provider.sha256(envelope.manifest_bstr);
    if !ct_eq(&digest, &auth.digest.bytes) {
        return Err(SuitError::ManifestDigestMismatch);
    }
    let manifest = Manifest::decode(envelope.manifest_bytes)?;
    let (signer, ca) = signer.unzip();
    Ok(Authenticated {
        envelope,
        manifest,
        digest,
        signer,
        ca: ca.flatten(),
    })
}

/// Verifies one authentication block over the detached encoded SUIT_Digest; gives the
/// signer's key and CA anchor (None for a MAC).
fn verify_block(
    block: &[u8],
    digest_cbor: &[u8],
    provider: &dyn CryptoProvider,
    anchors: &Anchors<'_>,
) -> Result<Option<(PublicKey, Option<CaCertificate>)>, SuitError> {
    let mut r = Reader::new(block);
    if r.next_type()? != minicbor::data::Type::Tag {
        return Err(SuitError::UnsupportedAuthenticationBlock(0));
    }
    match r.tag("COSE tag")? {
        TAG_SIGN1 => {
            let cx = VerifyContext {
                now: anchors.now,
                ..VerifyContext::new(provider, anchors.signers)
            };
            let verified = teep_cose::verify_sign1_detached(block, digest_cbor, &cx)
                .map_err(SuitError::Authentication)?;
            Ok(Some((verified.signer, verified.ca)))
        }
        TAG_MAC0 => verify_mac0(block, digest_cbor, provider, anchors.mac_keys).map(|()| None),
        other => Err(SuitError::UnsupportedAuthenticationBlock(other)),
    }
}

fn verify_mac0(
    block: &[u8],
    digest_cbor: &[u8],
    provider: &dyn CryptoProvider,
    keys: &[Vec<u8>],
) -> Result<(), SuitError> {
    let mac = coset::CoseMac0::from_tagged_slice(block)
        .map_err(|_| SuitError::Authentication(CoseError::Malformed("COSE_Mac0".into())))?;
    if mac.payload.is_some() {
        return Err(SuitError::Authentication(CoseError::Malformed(
            "SUIT COSE_Mac0 must have a detached payload".into(),
        )));
    }
    match &mac.protected.header.alg {
        Some(coset::RegisteredLabelWithPrivate::Assigned(a)) if a.to_i64() == ALG_HMAC_256_256 => {}
        Some(coset::RegisteredLabelWithPrivate::Assigned(a)) => {
            return Err(SuitError::Authentication(CoseError::UnsupportedAlgorithm(
                a.to_i64(),
            )));
        }
        Some(coset::RegisteredLabelWithPrivate::PrivateUse(a)) => {
            return Err(SuitError::Authentication(CoseError::UnsupportedAlgorithm(
                *a,
            )));
        }
        _ => return Err(SuitError::Authentication(CoseError::MissingAlgorithm)),
    }
    if !mac.protected.header.crit.is_empty() {
        return Err(SuitError::Authentication(CoseError::UnknownCriticalHeader(
            "crit in COSE_Mac0".into(),
        )));
    }
    let tbm = coset::mac_structure_data(
        coset::MacContext::CoseMac0,
        mac.protected.clone(),
        &[],
        digest_cbor,
    );
    if keys
        .iter()
        .any(|k| ct_eq(&provider.hmac_sha256(k, &tbm), &mac.tag))
    {
        Ok(())
    } else if keys.is_empty() {
        Err(SuitError::Authentication(CoseError::UntrustedSigner))
    } else {
        Err(SuitError::Authentication(CoseError::BadSignature))
    }
}

/// The bytes of a sequence (or text map) of an authenticated envelope: the manifest's own
/// bstr, or the severed element from the envelope after checking it against its digest.
pub fn section_bytes<'a>(
    auth: &Authenticated<'a>,
    section: Section,
    provider: &dyn CryptoProvider,
) -> Result<Option<&'a [u8]>, SuitError> {
    match auth.manifest.member(section) {
        None => Ok(None),
        Some(member) => resolve_member(&auth.envelope, member, section.key(), provider).map(Some),
    }
}

/// Resolves a (possibly severed) member with manifest key `key`.
pub fn resolve_member<'a>(
    envelope: &Envelope<'a>,
    member: Member<'a>,
    key: u64,
    provider: &dyn CryptoProvider,
) -> Result<&'a [u8], SuitError> {
    match member {
        Member::Present(bytes) => Ok(bytes),
        Member::Severed(digest) => {
            let element = envelope
                .severed_element(key)
                .ok_or(SuitError::SeveredElementMissing(key))?;
            if digest.matches_sha256(&provider.sha256(element.encoded))? {
                Ok(element.contents)
            } else {
                Err(SuitError::SeveredElementDigestMismatch(key))
            }
        }
    }
}
