//! What the Verifier appraises against: endorsements (which attestation keys are genuine,
//! and for which devices), reference values, and freshness. The JSON file format is
//! documented in `docs/verifier-policy.md`.

use alloc::{string::String, vec::Vec};

use teep_cose::PublicKey;

use crate::claims::{DebugStatus, Oemid};

/// Which devices an endorsed attestation key may speak for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndorsementScope {
    /// Any device of this class (a key shared by a model line, as in group attestation).
    DeviceClass {
        /// The class's `oemid`.
        oemid: Oemid,
        /// The class's `hwmodel`.
        hwmodel: Vec<u8>,
    },
    /// Exactly one device.
    Ueid(Vec<u8>),
}

/// An attestation public key the Verifier accepts, and for which devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endorsement {
    /// The attestation key.
    pub key: PublicKey,
    /// The devices it may attest.
    pub scope: EndorsementScope,
}

/// Accepted claim values. Empty `hwversions` accepts any version; every other list accepts
/// only what it names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferenceValues {
    /// Accepted `oemid`s.
    pub oemids: Vec<Oemid>,
    /// Accepted `hwmodel`s.
    pub hwmodels: Vec<Vec<u8>>,
    /// Accepted `hwversion` strings (empty = any).
    pub hwversions: Vec<String>,
    /// The least locked-down `dbgstat` accepted; `None` = not checked.
    pub min_dbgstat: Option<DebugStatus>,
    /// Whether `oemboot` (secure boot) must be true.
    pub require_secboot: bool,
    /// SHA-256 digests of the SUIT manifests a device may have installed.
    pub tc_digests: Vec<Vec<u8>>,
}

/// A complete appraisal policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Reported as `ear.appraisal-policy-id`.
    pub id: Option<String>,
    /// Endorsed attestation keys.
    pub endorsements: Vec<Endorsement>,
    /// Reference values.
    pub reference: ReferenceValues,
    /// Seconds a challenge stays valid, and how far `iat` may be from now when timestamps
    /// are the freshness mechanism.
    pub freshness_window: u64,
    /// How far the Attester's clock may be from the Verifier's when `exp` and `nbf` are
    /// checked (RFC 8392 §3.1.4-3.1.5 leave the leeway to the application), seconds.
    pub clock_skew: u64,
}

/// Default freshness window: long enough for a QueryRequest/QueryResponse round trip over a
/// slow Broker, short enough that a captured Evidence soon stops working.
pub const DEFAULT_FRESHNESS_WINDOW: u64 = 300;

/// Default clock skew allowed on `exp` / `nbf`: devices without a network time source drift,
/// but a minute keeps an expired Evidence from living on.
pub const DEFAULT_CLOCK_SKEW: u64 = 60;

/// Why a policy file was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not JSON of the documented shape.
    #[error("policy is not valid JSON of the documented shape: {0}")]
    Json(String),
    /// An endorsement's key cannot be read.
    #[error("endorsement {index}: key unreadable: {source}")]
    Key {
        /// Index in `endorsements`.
        index: usize,
        /// Why.
        source: teep_cose::CoseError,
    },
    /// An endorsement names neither a device class nor a ueid, or both.
    #[error("endorsement {0}: give exactly one of device_class or ueid")]
    Scope(usize),
    /// A hex field is not hex.
    #[error("field {0} is not hex")]
    Hex(&'static str),
    /// An oemid is neither 3 nor 16 bytes of hex, nor a number.
    #[error("an oemid must be 3 or 16 bytes of hex, or a PEN number")]
    Oemid,
    /// Unknown dbgstat name.
    #[error("unknown dbgstat name {0:?}")]
    Dbgstat(String),
}

#[cfg(feature = "json")]
mod json {
    use alloc::{string::String, vec::Vec};

    use serde::Deserialize;
    use teep_cose::PublicKey;

    use super::{
        DEFAULT_CLOCK_SKEW, DEFAULT_FRESHNESS_WINDOW, Endorsement, EndorsementScope, Policy,
        PolicyError, ReferenceValues,
    };
    use crate::claims::json::OemidFile;
    use crate::claims::{DebugStatus, Oemid};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PolicyFile {
        policy_id: Option<String>,
        endorsements: Vec<EndorsementFile>,
        #[serde(default)]
        reference_values: ReferenceFile,
        freshness_window_seconds: Option<u64>,
        clock_skew_seconds: Option<u64>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EndorsementFile {
        key: String,
        device_class: Option<DeviceClassFile>,
        ueid: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DeviceClassFile {
        oemid: OemidFile,
        hwmodel: String,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct ReferenceFile {
        #[serde(default)]
        oemids: Vec<OemidFile>,
        #[serde(default)]
        hwmodels: Vec<String>,
        #[serde(default)]
        hwversions: Vec<String>,
        dbgstat: Option<String>,
        #[serde(default)]
        secboot: bool,
        #[serde(default)]
        tc_digests: Vec<String>,
    }

    fn unhex(field: &'static str, s: &str) -> Result<Vec<u8>, PolicyError> {
        hex::decode(s).map_err(|_| PolicyError::Hex(field))
    }

    fn oemid(o: &OemidFile) -> Result<Oemid, PolicyError> {
        match o {
            OemidFile::Pen(p) => Ok(Oemid::Pen(*p)),
            OemidFile::Hex(h) => Oemid::from_bytes(&unhex("oemid", h)?).ok_or(PolicyError::Oemid),
        }
    }

    impl Policy {
        /// Reads the JSON policy format of `docs/verifier-policy.md`.
        pub fn from_json(text: &str) -> Result<Self, PolicyError> {
            let file: PolicyFile =
                serde_json::from_str(text).map_err(|e| PolicyError::Json(alloc::format!("{e}")))?;
            let mut endorsements = Vec::with_capacity(file.endorsements.len());
            for (index, e) in file.endorsements.iter().enumerate() {
                let key = PublicKey::from_any(e.key.as_bytes())
                    .map_err(|source| PolicyError::Key { index, source })?;
                let scope = match (&e.device_class, &e.ueid) {
                    (Some(c), None) => EndorsementScope::DeviceClass {
                        oemid: oemid(&c.oemid)?,
                        hwmodel: unhex("hwmodel", &c.hwmodel)?,
                    },
                    (None, Some(u)) => EndorsementScope::Ueid(unhex("ueid", u)?),
                    _ => return Err(PolicyError::Scope(index)),
                };
                endorsements.push(Endorsement { key, scope });
            }
            let r = &file.reference_values;
            let reference = ReferenceValues {
                oemids: r.oemids.iter().map(oemid).collect::<Result<_, _>>()?,
                hwmodels: r
                    .hwmodels
                    .iter()
                    .map(|h| unhex("hwmodels", h))
                    .collect::<Result<_, _>>()?,
                hwversions: r.hwversions.clone(),
                min_dbgstat: r
                    .dbgstat
                    .as_deref()
                    .map(|n| {
                        DebugStatus::from_name(n).ok_or_else(|| PolicyError::Dbgstat(n.into()))
                    })
                    .transpose()?,
                require_secboot: r.secboot,
                tc_digests: r
                    .tc_digests
                    .iter()
                    .map(|h| unhex("tc_digests", h))
                    .collect::<Result<_, _>>()?,
            };
            Ok(Self {
                id: file.policy_id,
                endorsements,
                reference,
                freshness_window: file
                    .freshness_window_seconds
                    .unwrap_or(DEFAULT_FRESHNESS_WINDOW),
                clock_skew: file.clock_skew_seconds.unwrap_or(DEFAULT_CLOCK_SKEW),
            })
        }
    }
}
