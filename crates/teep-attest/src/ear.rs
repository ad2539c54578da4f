//! EAR attestation results (draft-ietf-rats-ear) with the AR4SI trustworthiness vector.
//!
//! Written here rather than with the `ear` crate: that crate needs `std` (this one is
//! `no_std` so that an Agent inside a TEE can check a TAM's result), serializes CBOR maps
//! with indefinite lengths (the EAT profile forbids them, so every EAR would need
//! re-encoding), and has no place for `cnf`, which TEEP needs to bind a result to the key of
//! the peer that presents it (protocol draft §7.4). Keys and values follow the same drafts
//! the `ear` crate implements, so the wire form is the one Veraison reads.

use alloc::{collections::BTreeMap, string::String, vec::Vec};

use teep_cbor::read::{ReadError, ReadErrorKind, Reader};
use teep_cbor::write::{EncodeError, MapEncoder, VecEncoder, encode_vec};

use crate::{
    cbor::{bstr, int_key},
    claims::{Cnf, decode_cnf, encode_cnf, key},
};

/// `eat_profile` of an EAR.
pub const EAR_PROFILE: &str = "tag:github.com,2023:veraison/ear";

/// The submodule name under which this Verifier reports its appraisal of a TEE.
pub const TEE_SUBMOD: &str = "tee";

/// EAR claim keys (draft-ietf-rats-ear, CBOR serialization).
pub mod ear_key {
    /// `ear.status`.
    pub const STATUS: i64 = 1000;
    /// `ear.trustworthiness-vector`.
    pub const TRUST_VECTOR: i64 = 1001;
    /// `ear.appraisal-policy-id`.
    pub const POLICY_ID: i64 = 1003;
    /// `ear.verifier-id`.
    pub const VERIFIER_ID: i64 = 1004;
    /// `submods` (EAT).
    pub const SUBMODS: i64 = 266;
}

/// AR4SI trustworthiness claim values (draft-ietf-rats-ar4si §2.3), the ones this Verifier
/// emits.
pub mod trust {
    /// No claim is made.
    pub const NO_CLAIM: i8 = 0;
    /// The Evidence has elements the Verifier cannot parse.
    pub const UNEXPECTED_EVIDENCE: i8 = 1;
    /// Cryptographic validation of the Evidence failed.
    pub const CRYPTO_FAILED: i8 = 99;
    /// instance-identity: recognised and not known to be compromised.
    pub const TRUSTWORTHY_INSTANCE: i8 = 2;
    /// instance-identity: recognised, but not trustworthy (here: not bound to this exchange).
    pub const UNTRUSTWORTHY_INSTANCE: i8 = 96;
    /// instance-identity: not recognised.
    pub const UNRECOGNIZED_INSTANCE: i8 = 97;
    /// configuration: approved.
    pub const APPROVED_CONFIG: i8 = 2;
    /// configuration: elements relevant to security are unavailable.
    pub const UNAVAILABLE_CONFIG: i8 = 36;
    /// configuration: unacceptable.
    pub const UNSUPPORTABLE_CONFIG: i8 = 96;
    /// executables: approved boot- and run-time.
    pub const APPROVED_RUNTIME: i8 = 2;
    /// executables: unrecognised run-time.
    pub const UNRECOGNIZED_RUNTIME: i8 = 33;
    /// hardware: genuine.
    pub const GENUINE_HARDWARE: i8 = 2;
    /// hardware: genuine but with known vulnerabilities.
    pub const UNSAFE_HARDWARE: i8 = 32;
    /// hardware: not recognised.
    pub const UNRECOGNIZED_HARDWARE: i8 = 97;
}

/// `ear.status`: the trust tier of an appraisal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// No claim.
    None = 0,
    /// Affirming.
    Affirming = 2,
    /// Warning.
    Warning = 32,
    /// Contraindicated.
    Contraindicated = 96,
}

impl Status {
    /// The tier a trustworthiness claim value falls in (AR4SI §2.3.1).
    pub const fn of_claim(value: i8) -> Self {
        match value {
            -1..=1 => Self::None,
            -32..=31 => Self::Affirming,
            -96..=95 => Self::Warning,
            _ => Self::Contraindicated,
        }
    }

    /// The value on the wire.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// From the wire value.
    pub const fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::None,
            2 => Self::Affirming,
            32 => Self::Warning,
            96 => Self::Contraindicated,
            _ => return None,
        })
    }

    /// The JSON name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Affirming => "affirming",
            Self::Warning => "warning",
            Self::Contraindicated => "contraindicated",
        }
    }
}

/// The eight AR4SI trustworthiness claims, in key order; 0 means "no claim" and is not sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrustVector {
    /// 0: instance-identity.
    pub instance_identity: i8,
    /// 1: configuration.
    pub configuration: i8,
    /// 2: executables.
    pub executables: i8,
    /// 3: file-system.
    pub file_system: i8,
    /// 4: hardware.
    pub hardware: i8,
    /// 5: runtime-opaque.
    pub runtime_opaque: i8,
    /// 6: storage-opaque.
    pub storage_opaque: i8,
    /// 7: sourced-data.
    pub sourced_data: i8,
}

/// JSON names of the trustworthiness claims, by key.
pub const TRUST_CLAIM_NAMES: [&str; 8] = [
    "instance-identity",
    "configuration",
    "executables",
    "file-system",
    "hardware",
    "runtime-opaque",
    "storage-opaque",
    "sourced-data",
];

impl TrustVector {
    /// The claims by key, 0..=7.
    pub const fn values(&self) -> [i8; 8] {
        [
            self.instance_identity,
            self.configuration,
            self.executables,
            self.file_system,
            self.hardware,
            self.runtime_opaque,
            self.storage_opaque,
            self.sourced_data,
        ]
    }

    fn slot(&mut self, key: u64) -> Option<&mut i8> {
        Some(match key {
            0 => &mut self.instance_identity,
            1 => &mut self.configuration,
            2 => &mut self.executables,
            3 => &mut self.file_system,
            4 => &mut self.hardware,
            5 => &mut self.runtime_opaque,
            6 => &mut self.storage_opaque,
            7 => &mut self.sourced_data,
            _ => return None,
        })
    }

    /// The worst tier among the claims that are set.
    pub fn worst_tier(&self) -> Status {
        self.values()
            .into_iter()
            .map(Status::of_claim)
            .max()
            .unwrap_or(Status::None)
    }
}

/// `ear.verifier-id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VerifierId {
    /// Who made the Verifier.
    pub developer: String,
    /// Which build.
    pub build: String,
}

/// The appraisal of one submodule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EarAppraisal {
    /// `ear.status`.
    pub status: Status,
    /// `ear.trustworthiness-vector`.
    pub trust_vector: TrustVector,
    /// `ear.appraisal-policy-id`.
    pub policy_id: Option<String>,
}

/// An EAR claims-set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ear {
    /// `eat_profile`: [`EAR_PROFILE`].
    pub profile: String,
    /// `iat`: when the Verifier appraised.
    pub iat: i64,
    /// `ear.verifier-id`.
    pub verifier_id: VerifierId,
    /// `eat_nonce`, carried from the Evidence.
    pub nonce: Option<Vec<u8>>,
    /// `cnf`, carried from the Evidence: the key the result is bound to.
    pub cnf: Option<Cnf>,
    /// `submods`: appraisals by submodule name.
    pub submods: BTreeMap<String, EarAppraisal>,
}

/// Why an EAR claims-set could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EarDecodeError {
    /// Not well-formed, or not in the EAT profile's encoding.
    #[error("the EAR breaks the EAT encoding rules: {0}")]
    Encoding(teep_cbor::CborError),
    /// A claim is missing or has the wrong type.
    #[error("the EAR claim {0} is missing or invalid")]
    InvalidClaim(i64),
    /// `eat_profile` is not [`EAR_PROFILE`].
    #[error("the EAR has another eat_profile")]
    WrongProfile,
}

/// The EAR decoder names each field by its claim key (-1 for a map key itself).
impl From<ReadError<i64>> for EarDecodeError {
    fn from(e: ReadError<i64>) -> Self {
        Self::InvalidClaim(e.field)
    }
}

/// The field of a claim key that could not be read (only a truncated or malformed
/// input, which the EAT pre-pass rules out, gets there).
const ANY_KEY: i64 = -1;

impl Ear {
    /// The overall status: the worst of the submodules' (none when there are none).
    pub fn status(&self) -> Status {
        self.submods
            .values()
            .map(|a| a.status)
            .max()
            .unwrap_or(Status::None)
    }

    /// Deterministic CBOR (sorted keys, definite lengths, no tags).
    ///
    /// # Errors
    /// [`EncodeError::Raw`] when `cnf` holds a COSE_Key that is not one well-formed item.
    pub fn to_cbor(&self) -> Result<Vec<u8>, EncodeError> {
        encode_vec(|e| self.encode(e))
    }

    fn encode(&self, e: &mut VecEncoder<'_>) -> Result<(), EncodeError> {
        let mut m = MapEncoder::new();
        m.entry(key::IAT, self.iat)?;
        if let Some(cnf) = &self.cnf {
            m.entry_with(key::CNF, |e| encode_cnf(e, cnf))?;
        }
        if let Some(n) = &self.nonce {
            m.entry(key::NONCE, bstr(n))?;
        }
        m.entry(key::PROFILE, self.profile.as_str())?;
        m.entry_with(ear_key::SUBMODS, |e| {
            // Deterministic order of text keys is by encoded length first, then bytewise.
            let mut names: Vec<(&String, &EarAppraisal)> = self.submods.iter().collect();
            names.sort_by(|(a, _), (b, _)| (a.len(), a.as_bytes()).cmp(&(b.len(), b.as_bytes())));
            let mut submods = MapEncoder::new();
            for (name, a) in names {
                submods.entry_with(name.as_str(), |e| encode_appraisal(e, a))?;
            }
            submods.finish(e)
        })?;
        m.entry_with(ear_key::VERIFIER_ID, |e| {
            let mut id = MapEncoder::new();
            id.entry(0, self.verifier_id.developer.as_str())?
                .entry(1, self.verifier_id.build.as_str())?;
            id.finish(e)
        })?;
        m.finish(e)
    }

    /// Decodes an EAR claims-set in the EAT profile's encoding.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, EarDecodeError> {
        teep_cbor::check(bytes, &teep_cbor::Profile::EAT).map_err(EarDecodeError::Encoding)?;
        let mut r = Reader::new(bytes);
        let len = r.map(0)?;
        let (mut profile, mut iat, mut vid, mut nonce, mut cnf, mut submods) =
            (None, None, None, None, None, None);
        for _ in 0..len {
            match int_key(&mut r, ANY_KEY)? {
                Some(k @ key::PROFILE) => profile = Some(r.str(k)?),
                Some(k @ key::IAT) => iat = Some(r.i64(k)?),
                Some(k @ key::NONCE) => nonce = Some(r.bytes(k)?.to_vec()),
                Some(k @ key::CNF) => {
                    cnf = Some(decode_cnf(&mut r).map_err(|_| EarDecodeError::InvalidClaim(k))?);
                }
                Some(k @ ear_key::VERIFIER_ID) => vid = Some(decode_verifier_id(&mut r, k)?),
                Some(k @ ear_key::SUBMODS) => submods = Some(decode_submods(&mut r, k)?),
                _ => r.skip(ANY_KEY)?,
            }
        }
        let profile = profile.ok_or(EarDecodeError::InvalidClaim(key::PROFILE))?;
        if profile != EAR_PROFILE {
            return Err(EarDecodeError::WrongProfile);
        }
        Ok(Self {
            profile: profile.into(),
            iat: iat.ok_or(EarDecodeError::InvalidClaim(key::IAT))?,
            verifier_id: vid.ok_or(EarDecodeError::InvalidClaim(ear_key::VERIFIER_ID))?,
            nonce,
            cnf,
            submods: submods.ok_or(EarDecodeError::InvalidClaim(ear_key::SUBMODS))?,
        })
    }
}

fn encode_appraisal(e: &mut VecEncoder<'_>, a: &EarAppraisal) -> Result<(), EncodeError> {
    let mut m = MapEncoder::new();
    m.entry(ear_key::STATUS, a.status.code())?;
    m.entry_with(ear_key::TRUST_VECTOR, |e| {
        let mut tv = MapEncoder::new();
        let set = (0u64..).zip(a.trust_vector.values());
        for (k, v) in set.filter(|(_, v)| *v != trust::NO_CLAIM) {
            tv.entry(k, v)?;
        }
        tv.finish(e)
    })?;
    if let Some(p) = &a.policy_id {
        m.entry(ear_key::POLICY_ID, p.as_str())?;
    }
    m.finish(e)
}

fn decode_verifier_id(r: &mut Reader<'_>, k: i64) -> Result<VerifierId, ReadError<i64>> {
    let (mut developer, mut build) = (None, None);
    for _ in 0..r.map(k)? {
        let at = r.position();
        match r.u64(k)? {
            0 => developer = Some(r.str(k)?.into()),
            1 => build = Some(r.str(k)?.into()),
            _ => return Err(Reader::error_at(at, k, ReadErrorKind::OutOfRange)),
        }
    }
    let missing = || r.error(k, ReadErrorKind::Missing);
    Ok(VerifierId {
        developer: developer.ok_or_else(missing)?,
        build: build.ok_or_else(missing)?,
    })
}

fn decode_submods(
    r: &mut Reader<'_>,
    k: i64,
) -> Result<BTreeMap<String, EarAppraisal>, ReadError<i64>> {
    let out_of_range = |at| Reader::error_at(at, k, ReadErrorKind::OutOfRange);
    let mut out = BTreeMap::new();
    for _ in 0..r.map(k)? {
        let name: String = r.str(k)?.into();
        let (mut status, mut tv, mut policy_id) = (None, TrustVector::default(), None);
        for _ in 0..r.map(k)? {
            match r.i64(k)? {
                ear_key::STATUS => {
                    let at = r.position();
                    let code = Status::from_code(r.i64(k)?).ok_or_else(|| out_of_range(at))?;
                    status = Some(code);
                }
                ear_key::TRUST_VECTOR => {
                    for _ in 0..r.map(k)? {
                        let at = r.position();
                        let slot = tv.slot(r.u64(k)?).ok_or_else(|| out_of_range(at))?;
                        *slot = r.int(k)?;
                    }
                }
                ear_key::POLICY_ID => policy_id = Some(r.str(k)?.into()),
                _ => r.skip(k)?,
            }
        }
        let appraisal = EarAppraisal {
            status: status.ok_or_else(|| r.error(k, ReadErrorKind::Missing))?,
            trust_vector: tv,
            policy_id,
        };
        out.insert(name, appraisal);
    }
    Ok(out)
}

#[cfg(feature = "json")]
mod json {
    use alloc::string::String;

    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use serde_json::{Map, Value, json};

    use super::{Ear, TRUST_CLAIM_NAMES};
    use crate::claims::Cnf;

    fn b64(bytes: &[u8]) -> Value {
        Value::String(URL_SAFE_NO_PAD.encode(bytes))
    }

    impl Ear {
        /// The JSON serialization's claims (draft-ietf-rats-ear §3.1): names instead of
        /// keys, byte strings as base64url. `cnf` uses RFC 8747's JSON names.
        pub fn to_json(&self) -> Value {
            let mut top = Map::new();
            top.insert("eat_profile".into(), Value::String(self.profile.clone()));
            top.insert("iat".into(), json!(self.iat));
            top.insert(
                "ear.verifier-id".into(),
                json!({"developer": self.verifier_id.developer, "build": self.verifier_id.build}),
            );
            if let Some(n) = &self.nonce {
                top.insert("eat_nonce".into(), b64(n));
            }
            if let Some(cnf) = &self.cnf {
                let v = match cnf {
                    Cnf::Kid(kid) => json!({ "kid": b64(kid) }),
                    Cnf::CoseKey(k) => json!({ "cose_key": b64(k) }),
                };
                top.insert("cnf".into(), v);
            }
            let mut submods = Map::new();
            for (name, a) in &self.submods {
                let mut tv = Map::new();
                for (name, v) in TRUST_CLAIM_NAMES.iter().zip(a.trust_vector.values()) {
                    if v != 0 {
                        tv.insert(String::from(*name), json!(v));
                    }
                }
                let mut sub = Map::new();
                sub.insert("ear.status".into(), Value::String(a.status.name().into()));
                sub.insert("ear.trustworthiness-vector".into(), Value::Object(tv));
                if let Some(p) = &a.policy_id {
                    sub.insert("ear.appraisal-policy-id".into(), Value::String(p.clone()));
                }
                submods.insert(name.clone(), Value::Object(sub));
            }
            top.insert("submods".into(), Value::Object(submods));
            Value::Object(top)
        }
    }
}
