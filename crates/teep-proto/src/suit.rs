//! Where TEEP meets SUIT: teep-suit's err-code for a failed Update as a TEEP [`ErrCode`],
//! and tc-list entries ([`SystemPropertyClaims`]) made from, and read back as, SUIT types.
//! The one place these conversions live (teep-proto depends on teep-suit, not the reverse).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use teep_cbor::encode::{Major, write_bytes, write_head};
use teep_suit::command::param;
use teep_suit::storage::InstalledManifest;
use teep_suit::{ComponentId, Digest, SuitError, TeepErrCode};

use crate::types::{ErrCode, RawCbor, SystemPropertyClaims};

/// By meaning, not by number: teep-suit states -26's numbers, and
/// `ERR_MANIFEST_PROCESSING_FAILED` is 17 before -26 ([`ErrCode::number`] writes it for the
/// numbering in use). Exhaustive, so a new SUIT-side code must be mapped here.
impl From<TeepErrCode> for ErrCode {
    fn from(code: TeepErrCode) -> Self {
        match code {
            TeepErrCode::TemporaryError => Self::TemporaryError,
            TeepErrCode::ManifestProcessingFailed => Self::ManifestProcessingFailed,
        }
    }
}

/// A SUIT parameter of a tc-list entry that is not what SUIT says it is.
fn bad(what: &'static str) -> SuitError {
    SuitError::Malformed { what, offset: 0 }
}

impl SystemPropertyClaims {
    /// A tc-list entry: `system-component-id` and `suit-parameter-image-digest` (3, a
    /// `bstr .cbor SUIT_Digest`), with `suit-parameter-image-size` (14, a uint) when given.
    pub fn new(component_id: ComponentId, image_digest: &Digest, image_size: Option<u64>) -> Self {
        let mut digest = Vec::new();
        write_bytes(&image_digest.to_cbor(), &mut digest);
        let mut parameters = BTreeMap::from([(
            i64::from(param::IMAGE_DIGEST),
            RawCbor::from_checked(digest),
        )]);
        if let Some(size) = image_size {
            let mut out = Vec::new();
            write_head(Major::Unsigned, size, &mut out);
            parameters.insert(i64::from(param::IMAGE_SIZE), RawCbor::from_checked(out));
        }
        Self {
            component_id,
            parameters,
        }
    }

    /// `suit-parameter-image-digest`, decoded (`None` when the entry has none).
    ///
    /// # Errors
    /// The value is not a byte string holding exactly one `SUIT_Digest`.
    pub fn image_digest(&self) -> Result<Option<Digest>, SuitError> {
        let Some(raw) = self.parameters.get(&i64::from(param::IMAGE_DIGEST)) else {
            return Ok(None);
        };
        let mut d = minicbor::Decoder::new(raw.as_bytes());
        let wrapped = d
            .bytes()
            .map_err(|_| bad("image digest is not a bstr .cbor SUIT_Digest"))?;
        Digest::from_cbor(wrapped).map(Some)
    }

    /// `suit-parameter-image-size`, decoded (`None` when the entry has none).
    ///
    /// # Errors
    /// The value is not an unsigned integer.
    pub fn image_size(&self) -> Result<Option<u64>, SuitError> {
        let Some(raw) = self.parameters.get(&i64::from(param::IMAGE_SIZE)) else {
            return Ok(None);
        };
        minicbor::Decoder::new(raw.as_bytes())
            .u64()
            .map(Some)
            .map_err(|_| bad("image size is not a uint"))
    }
}

/// The tc-list entry an Agent sends for an installed manifest (`Storage::manifests`): its
/// manifest component ID and authenticated manifest digest, which a TAM matches with
/// `Envelope::summary().digest`. No image size: what is stored there (an envelope) changes
/// size with tagging, severing and re-signing while the manifest digest stays.
impl From<&InstalledManifest> for SystemPropertyClaims {
    fn from(m: &InstalledManifest) -> Self {
        Self::new(m.component_id.clone(), &m.digest, None)
    }
}
