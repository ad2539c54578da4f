//! Registering a TC release from a signed SUIT envelope.
//!
//! [`release_from_envelope`] is the one place that reads a manifest's component ID,
//! sequence number and digest; it uses the teep-suit model directly and is to be swapped
//! for `Envelope::summary()` once that lands.

use teep_cose::CryptoProvider;
use teep_proto::ComponentId;
use teep_suit::SuitError;
use teep_suit::verify::{Anchors, authenticate};

use crate::store::TcRelease;

/// Authenticates `envelope` against the TC signer anchors and describes it as a release.
/// Only TCs from authorised TC signers are relayed (spec §10), so an envelope no anchor
/// verifies is refused here, before it can reach any device. `depends_on` is extended by
/// the dependencies the manifest declares (`suit-dependency-prefix`, the dependency's
/// manifest component ID).
///
/// # Errors
/// The envelope does not authenticate, or names no manifest component ID.
pub fn release_from_envelope(
    envelope: Vec<u8>,
    provider: &dyn CryptoProvider,
    anchors: &Anchors<'_>,
    depends_on: Vec<ComponentId>,
) -> Result<TcRelease, SuitError> {
    release_and_ca(envelope, provider, anchors, depends_on).map(|(release, _)| release)
}

/// [`release_from_envelope`], also naming the CA anchor (SHA-256 of its certificate) the
/// signer's `x5chain` verified to (`None`: a raw key signed), so that the caller applies
/// that anchor's scope and not a raw key's.
///
/// # Errors
/// As [`release_from_envelope`].
pub fn release_and_ca(
    envelope: Vec<u8>,
    provider: &dyn CryptoProvider,
    anchors: &Anchors<'_>,
    depends_on: Vec<ComponentId>,
) -> Result<(TcRelease, Option<[u8; 32]>), SuitError> {
    let auth = authenticate(&envelope, provider, anchors)?;
    let ca = auth.ca.as_ref().map(teep_cose::CaCertificate::fingerprint);
    let manifest_id = auth
        .manifest
        .manifest_component_id
        .clone()
        .ok_or(SuitError::NoManifestComponentId)?;
    let mut depends_on = depends_on;
    for prefix in auth
        .manifest
        .common
        .dependencies
        .iter()
        .filter_map(|d| d.prefix.as_ref())
    {
        let id = prefix.clone();
        if !depends_on.contains(&id) {
            depends_on.push(id);
        }
    }
    let (sequence, digest) = (auth.manifest.sequence_number, auth.digest);
    let signer = auth.signer.as_ref().map(teep_cose::PublicKey::thumbprint);
    let release = TcRelease {
        manifest_id,
        sequence,
        digest,
        signer,
        envelope: envelope.into(),
        depends_on,
    };
    Ok((release, ca))
}
