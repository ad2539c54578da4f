//! The EAT claims-set of TEEP Evidence (RFC 9711 with the TEEP EAT profile).
//!
//! Claim keys come from the IANA "CWT Claims" registry as RFC 9711 registered them. The
//! TEEP draft's D.2 example puts its installed-component list under key 273, which the
//! registry assigns to `measurements`; `manifests` is 272. We follow the registry: 272 is
//! decoded as [`EatClaims::manifests`], 273 as [`EatClaims::measurements`] (same shape),
//! and the test `d2_example_273_is_measurements` pins the choice.

use alloc::{string::String, vec::Vec};

use minicbor::{Decoder, data::Type};

use crate::cbor::{EncodeResult, VecEncoder, encode_with, int_key};
use teep_cbor::read::{definite, raw_item};
use teep_cose::{CoseError, PublicKey};

/// CWT / EAT claim keys (IANA CWT Claims registry, RFC 8392 / RFC 8747 / RFC 9711).
pub mod key {
    /// `exp`, RFC 8392.
    pub const EXP: i64 = 4;
    /// `nbf`, RFC 8392.
    pub const NBF: i64 = 5;
    /// `iat`, RFC 8392.
    pub const IAT: i64 = 6;
    /// `cnf`, RFC 8747.
    pub const CNF: i64 = 8;
    /// `eat_nonce`.
    pub const NONCE: i64 = 10;
    /// `ueid`.
    pub const UEID: i64 = 256;
    /// `oemid`.
    pub const OEMID: i64 = 258;
    /// `hwmodel`.
    pub const HWMODEL: i64 = 259;
    /// `hwversion`.
    pub const HWVERSION: i64 = 260;
    /// `oemboot` (secure boot).
    pub const SECBOOT: i64 = 262;
    /// `dbgstat`.
    pub const DBGSTAT: i64 = 263;
    /// `eat_profile`.
    pub const PROFILE: i64 = 265;
    /// `swname`.
    pub const SWNAME: i64 = 270;
    /// `swversion`.
    pub const SWVERSION: i64 = 271;
    /// `manifests` (272 in the registry; the TEEP draft example uses 273).
    pub const MANIFESTS: i64 = 272;
    /// `measurements`.
    pub const MEASUREMENTS: i64 = 273;
}

/// The EAT profile the TEEP protocol draft defines (its RFC number is not assigned yet).
pub const TEEP_EAT_PROFILE: &str = "urn:ietf:rfc:rfcXXXX";

/// CoAP content format of a manifest body. The TEEP draft uses 60 (application/cbor) for a
/// SUIT_Reference "until one is allocated".
pub const CONTENT_FORMAT_CBOR: u64 = 60;

/// Shortest `eat_nonce` RFC 9711 §4.1 allows.
pub const EAT_NONCE_MIN: usize = 8;
/// Longest `eat_nonce` RFC 9711 §4.1 allows. A TEEP `challenge` may be up to 512 bytes, but
/// only one of at most this length can come back in Evidence (see `docs/wire-format.md`).
pub const EAT_NONCE_MAX: usize = 64;

/// COSE algorithm id of SHA-256, the digest of SUIT_Digest in the TEEP profile.
pub const SHA256_ALG: i64 = -16;

/// Who made the device (RFC 9711 §4.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Oemid {
    /// IEEE OUI / MA-L, 3 bytes.
    Ieee([u8; 3]),
    /// Random 16-byte id.
    Random([u8; 16]),
    /// IANA Private Enterprise Number.
    Pen(u64),
}

impl Oemid {
    /// The byte-string forms, told apart by length: 3 bytes are an IEEE OUI, 16 a random
    /// ID; any other length is no oemid.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        if let Ok(ieee) = <[u8; 3]>::try_from(b) {
            Some(Self::Ieee(ieee))
        } else {
            <[u8; 16]>::try_from(b).ok().map(Self::Random)
        }
    }
}

/// `hwversion` / `swversion`: a version string and its optional scheme (CoSWID version-scheme).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// The version text, e.g. "1.3.4".
    pub version: String,
    /// Version scheme (1 = multipartnumeric, ...), if given.
    pub scheme: Option<i64>,
}

/// `dbgstat` values (RFC 9711 §4.2.9), from least to most locked down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DebugStatus {
    /// Debug is enabled.
    Enabled = 0,
    /// Debug is disabled now but may be re-enabled.
    Disabled = 1,
    /// Disabled since boot.
    DisabledSinceBoot = 2,
    /// Disabled permanently.
    DisabledPermanently = 3,
    /// Disabled fully and permanently (includes the manufacturer).
    DisabledFullyAndPermanently = 4,
}

impl DebugStatus {
    /// The value on the wire.
    pub const fn code(self) -> u64 {
        self as u64
    }

    /// From the wire value; `None` for a value RFC 9711 does not define.
    pub const fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Enabled,
            1 => Self::Disabled,
            2 => Self::DisabledSinceBoot,
            3 => Self::DisabledPermanently,
            4 => Self::DisabledFullyAndPermanently,
            _ => return None,
        })
    }

    /// The RFC 9711 name (used in JSON policies and views).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::DisabledSinceBoot => "disabled-since-boot",
            Self::DisabledPermanently => "disabled-permanently",
            Self::DisabledFullyAndPermanently => "disabled-fully-and-permanently",
        }
    }

    /// From the RFC 9711 name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Enabled,
            Self::Disabled,
            Self::DisabledSinceBoot,
            Self::DisabledPermanently,
            Self::DisabledFullyAndPermanently,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// `cnf` (RFC 8747): the key the Attester binds the Evidence to, i.e. the TEEP Agent's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cnf {
    /// The full public key, as an encoded COSE_Key.
    CoseKey(Vec<u8>),
    /// The key id: in the TEEP profile, the RFC 9679 thumbprint of the key.
    Kid(Vec<u8>),
}

impl Cnf {
    /// The confirmation key itself, for verifying the TEEP message that carried the Evidence
    /// (first contact, when the TAM does not know the Agent's key yet).
    ///
    /// # Errors
    /// [`CnfKeyError::KidOnly`] when `cnf` holds only a kid: the key must already be known
    /// (compare it with [`crate::verifier::cnf_matches`]); [`CnfKeyError::InvalidKey`] for a
    /// COSE_Key that is no usable public key (decoded claims never hold one).
    pub fn public_key(&self) -> Result<PublicKey, CnfKeyError> {
        match self {
            Self::CoseKey(bytes) => {
                PublicKey::from_cose_key_bytes(bytes).map_err(CnfKeyError::InvalidKey)
            }
            Self::Kid(kid) => Err(CnfKeyError::KidOnly(kid.clone())),
        }
    }
}

/// Why `cnf` gives no key to verify with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CnfKeyError {
    /// The Evidence has no `cnf`.
    #[error("the Evidence has no cnf claim")]
    Missing,
    /// The Evidence did not verify, so nothing in it is a key to trust.
    #[error("the Evidence did not verify")]
    Unverified,
    /// `cnf` names the key only by this kid (RFC 9679 thumbprint).
    #[error("cnf holds only a kid; the key must already be known")]
    KidOnly(Vec<u8>),
    /// The COSE_Key is no public key teep-cose can use.
    #[error("cnf COSE_Key is not a usable public key: {0}")]
    InvalidKey(CoseError),
}

/// `SUIT_Digest = [alg, bytes]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SuitDigest {
    /// COSE hash algorithm id (-16 = SHA-256).
    pub alg: i64,
    /// The digest.
    pub bytes: Vec<u8>,
}

/// `SUIT_Reference = [uri, digest]` (draft-ietf-suit-report): which manifest is installed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SuitReference {
    /// Where the manifest came from.
    pub uri: String,
    /// Digest of the manifest.
    pub digest: SuitDigest,
}

/// The body of one `manifests` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ManifestBody {
    /// A SUIT_Reference: read inline (the TEEP D.2 example) or bstr-wrapped (RFC 9711),
    /// always written wrapped.
    SuitReference(SuitReference),
    /// Any other body, kept as its encoded CBOR item.
    Other(Vec<u8>),
}

/// One entry of `manifests` / `measurements`: `[content-type, content-format]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Manifest {
    /// CoAP content format of the body.
    pub content_type: u64,
    /// The body.
    pub body: ManifestBody,
}

impl Manifest {
    /// A SUIT_Reference entry with the content format the TEEP draft uses.
    pub fn suit_reference(uri: impl Into<String>, sha256: [u8; 32]) -> Self {
        Self {
            content_type: CONTENT_FORMAT_CBOR,
            body: ManifestBody::SuitReference(SuitReference {
                uri: uri.into(),
                digest: SuitDigest {
                    alg: SHA256_ALG,
                    bytes: sha256.to_vec(),
                },
            }),
        }
    }

    /// The manifest digest, when the body is a SUIT_Reference.
    pub fn digest(&self) -> Option<&SuitDigest> {
        match &self.body {
            ManifestBody::SuitReference(r) => Some(&r.digest),
            ManifestBody::Other(_) => None,
        }
    }
}

/// The claims of TEEP Evidence. Every claim is optional in the model; which ones must be
/// present is an appraisal question (the Verifier reports missing ones in the EAR).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EatClaims {
    /// `eat_profile`: [`TEEP_EAT_PROFILE`] for TEEP Evidence.
    pub profile: Option<String>,
    /// `eat_nonce`: the Verifier's or TAM's challenge (8..=64 bytes).
    pub nonce: Option<Vec<u8>>,
    /// `ueid`: the device's unique id (7..=33 bytes).
    pub ueid: Option<Vec<u8>>,
    /// `oemid`.
    pub oemid: Option<Oemid>,
    /// `hwmodel` (1..=32 bytes).
    pub hwmodel: Option<Vec<u8>>,
    /// `hwversion`.
    pub hwversion: Option<Version>,
    /// `manifests`: the installed Trusted Components and the Agent's own firmware.
    pub manifests: Option<Vec<Manifest>>,
    /// `measurements`.
    pub measurements: Option<Vec<Manifest>>,
    /// `cnf`: the TEEP Agent's key or its thumbprint.
    pub cnf: Option<Cnf>,
    /// `iat`, seconds since the Unix epoch.
    pub iat: Option<i64>,
    /// `exp`: the Evidence must not be accepted at or after this time (Unix seconds).
    pub exp: Option<i64>,
    /// `nbf`: the Evidence must not be accepted before this time (Unix seconds).
    pub nbf: Option<i64>,
    /// `dbgstat`.
    pub dbgstat: Option<DebugStatus>,
    /// `oemboot`: true when secure boot verified everything that ran.
    pub secboot: Option<bool>,
    /// `swname`: for a Trusted Component, the URI of its SUIT manifest.
    pub swname: Option<String>,
    /// `swversion`.
    pub swversion: Option<Version>,
}

/// Why a claims-set was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// Not well-formed CBOR, or breaks the EAT profile's encoding rules (tags, indefinite
    /// lengths, non-preferred serialization, duplicate keys, trailing bytes).
    #[error("the claims-set breaks the TEEP EAT encoding rules: {0}")]
    Encoding(teep_cbor::CborError),
    /// The top-level item is not a map.
    #[error("the claims-set is not a CBOR map")]
    NotAMap,
    /// A claim key appears twice.
    #[error("claim {0} appears twice")]
    DuplicateClaim(i64),
    /// A known claim has the wrong type or size.
    #[error("claim {key} is invalid: {reason}")]
    InvalidClaim {
        /// The claim key.
        key: i64,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl EatClaims {
    /// Encodes the claims-set deterministically: definite lengths, preferred serialization,
    /// keys in ascending order, no tags (the TEEP EAT profile).
    pub fn to_cbor(&self) -> Vec<u8> {
        encode_with(|e| self.encode(e))
    }

    fn count(&self) -> u64 {
        [
            self.exp.is_some(),
            self.nbf.is_some(),
            self.iat.is_some(),
            self.cnf.is_some(),
            self.nonce.is_some(),
            self.ueid.is_some(),
            self.oemid.is_some(),
            self.hwmodel.is_some(),
            self.hwversion.is_some(),
            self.secboot.is_some(),
            self.dbgstat.is_some(),
            self.profile.is_some(),
            self.swname.is_some(),
            self.swversion.is_some(),
            self.manifests.is_some(),
            self.measurements.is_some(),
        ]
        .into_iter()
        .map(u64::from)
        .sum()
    }

    fn encode(&self, e: &mut VecEncoder<'_>) -> EncodeResult {
        e.map(self.count())?;
        if let Some(exp) = self.exp {
            e.i64(key::EXP)?.i64(exp)?;
        }
        if let Some(nbf) = self.nbf {
            e.i64(key::NBF)?.i64(nbf)?;
        }
        if let Some(iat) = self.iat {
            e.i64(key::IAT)?.i64(iat)?;
        }
        if let Some(cnf) = &self.cnf {
            e.i64(key::CNF)?;
            encode_cnf(e, cnf)?;
        }
        if let Some(n) = &self.nonce {
            e.i64(key::NONCE)?.bytes(n)?;
        }
        if let Some(u) = &self.ueid {
            e.i64(key::UEID)?.bytes(u)?;
        }
        if let Some(o) = &self.oemid {
            e.i64(key::OEMID)?;
            match o {
                Oemid::Ieee(b) => e.bytes(b)?,
                Oemid::Random(b) => e.bytes(b)?,
                Oemid::Pen(p) => e.u64(*p)?,
            };
        }
        if let Some(m) = &self.hwmodel {
            e.i64(key::HWMODEL)?.bytes(m)?;
        }
        if let Some(v) = &self.hwversion {
            e.i64(key::HWVERSION)?;
            encode_version(e, v)?;
        }
        if let Some(b) = self.secboot {
            e.i64(key::SECBOOT)?.bool(b)?;
        }
        if let Some(d) = self.dbgstat {
            e.i64(key::DBGSTAT)?.u64(d.code())?;
        }
        if let Some(p) = &self.profile {
            e.i64(key::PROFILE)?.str(p)?;
        }
        if let Some(n) = &self.swname {
            e.i64(key::SWNAME)?.str(n)?;
        }
        if let Some(v) = &self.swversion {
            e.i64(key::SWVERSION)?;
            encode_version(e, v)?;
        }
        if let Some(m) = &self.manifests {
            e.i64(key::MANIFESTS)?;
            encode_manifests(e, m)?;
        }
        if let Some(m) = &self.measurements {
            e.i64(key::MEASUREMENTS)?;
            encode_manifests(e, m)?;
        }
        Ok(())
    }

    /// The key `cnf` confirms; see [`Cnf::public_key`].
    ///
    /// # Errors
    /// [`CnfKeyError::Missing`] without `cnf`, else as [`Cnf::public_key`].
    pub fn cnf_key(&self) -> Result<PublicKey, CnfKeyError> {
        self.cnf.as_ref().ok_or(CnfKeyError::Missing)?.public_key()
    }

    /// Decodes a claims-set. Enforces the TEEP EAT profile's encoding rules first (no tags,
    /// definite lengths, preferred serialization, no duplicate keys), then the type and size
    /// of every claim this crate knows; unknown claims are ignored as RFC 9711 asks.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, ClaimsError> {
        teep_cbor::check(bytes, &teep_cbor::Profile::EAT).map_err(ClaimsError::Encoding)?;
        // From here the input is one well-formed, definite-length, tag-free item, so the
        // structural errors below can only be type mismatches.
        let mut d = Decoder::new(bytes);
        if !matches!(d.datatype(), Ok(Type::Map)) {
            return Err(ClaimsError::NotAMap);
        }
        let len = d.map().ok().flatten().ok_or(ClaimsError::NotAMap)?;
        let mut claims = Self::default();
        for _ in 0..len {
            match int_key(&mut d).map_err(|_| ClaimsError::NotAMap)? {
                Some(key) => claims.decode_claim(key, &mut d)?,
                None => d.skip().map_err(|_| ClaimsError::NotAMap)?,
            }
        }
        Ok(claims)
    }

    fn decode_claim(&mut self, key: i64, d: &mut Decoder<'_>) -> Result<(), ClaimsError> {
        let invalid = |reason| ClaimsError::InvalidClaim { key, reason };
        let cbor = |_| invalid("wrong type");
        match key {
            key::EXP => set(&mut self.exp, key, d.i64().map_err(cbor)?),
            key::NBF => set(&mut self.nbf, key, d.i64().map_err(cbor)?),
            key::IAT => set(&mut self.iat, key, d.i64().map_err(cbor)?),
            key::CNF => set(&mut self.cnf, key, decode_cnf(d).map_err(cbor)??),
            key::NONCE => {
                let n = d.bytes().map_err(cbor)?;
                if !(EAT_NONCE_MIN..=EAT_NONCE_MAX).contains(&n.len()) {
                    return Err(invalid("eat_nonce must be 8 to 64 bytes"));
                }
                set(&mut self.nonce, key, n.to_vec())
            }
            key::UEID => {
                let u = d.bytes().map_err(cbor)?;
                if !(7..=33).contains(&u.len()) {
                    return Err(invalid("ueid must be 7 to 33 bytes"));
                }
                set(&mut self.ueid, key, u.to_vec())
            }
            key::OEMID => {
                let o = match d.datatype().map_err(cbor)? {
                    Type::Bytes => Oemid::from_bytes(d.bytes().map_err(cbor)?)
                        .ok_or_else(|| invalid("oemid must be 3 or 16 bytes, or a PEN"))?,
                    _ => Oemid::Pen(d.u64().map_err(cbor)?),
                };
                set(&mut self.oemid, key, o)
            }
            key::HWMODEL => {
                let m = d.bytes().map_err(cbor)?;
                if !(1..=32).contains(&m.len()) {
                    return Err(invalid("hwmodel must be 1 to 32 bytes"));
                }
                set(&mut self.hwmodel, key, m.to_vec())
            }
            key::HWVERSION => set(&mut self.hwversion, key, decode_version(d).map_err(cbor)?),
            key::SECBOOT => set(&mut self.secboot, key, d.bool().map_err(cbor)?),
            key::DBGSTAT => {
                let code = d.u64().map_err(cbor)?;
                let s =
                    DebugStatus::from_code(code).ok_or_else(|| invalid("unknown dbgstat value"))?;
                set(&mut self.dbgstat, key, s)
            }
            key::PROFILE => {
                // general-oid profiles (a bstr) are not used by TEEP.
                let p = d
                    .str()
                    .map_err(|_| invalid("eat_profile must be a URI text"))?;
                set(&mut self.profile, key, p.into())
            }
            key::SWNAME => set(&mut self.swname, key, d.str().map_err(cbor)?.into()),
            key::SWVERSION => set(&mut self.swversion, key, decode_version(d).map_err(cbor)?),
            key::MANIFESTS | key::MEASUREMENTS => {
                let list = decode_manifests(d).map_err(cbor)?;
                // RFC 9711: `[+ ...]`; an empty list says nothing and is malformed.
                if list.is_empty() {
                    return Err(invalid("must hold one or more entries"));
                }
                let slot = if key == key::MANIFESTS {
                    &mut self.manifests
                } else {
                    &mut self.measurements
                };
                set(slot, key, list)
            }
            _ => d.skip().map_err(cbor),
        }
    }
}

fn set<T>(slot: &mut Option<T>, key: i64, value: T) -> Result<(), ClaimsError> {
    if slot.is_some() {
        return Err(ClaimsError::DuplicateClaim(key));
    }
    *slot = Some(value);
    Ok(())
}

fn encode_version(e: &mut VecEncoder<'_>, v: &Version) -> EncodeResult {
    match v.scheme {
        Some(s) => e.array(2)?.str(&v.version)?.i64(s)?,
        None => e.array(1)?.str(&v.version)?,
    };
    Ok(())
}

fn decode_version(d: &mut Decoder<'_>) -> Result<Version, minicbor::decode::Error> {
    let len = definite(d.array()?)?;
    let version = d.str()?.into();
    let scheme = match len {
        1 => None,
        2 => Some(d.i64()?),
        _ => {
            return Err(minicbor::decode::Error::message(
                "version has 1 or 2 elements",
            ));
        }
    };
    Ok(Version { version, scheme })
}

/// `cnf = { 1: COSE_Key } / { 3: kid }` (Evidence and EAR both carry it).
pub(crate) fn encode_cnf(e: &mut VecEncoder<'_>, cnf: &Cnf) -> EncodeResult {
    e.map(1)?;
    match cnf {
        Cnf::CoseKey(k) => {
            e.u8(1)?;
            e.writer_mut().extend_from_slice(k);
        }
        Cnf::Kid(kid) => {
            e.u8(3)?.bytes(kid)?;
        }
    }
    Ok(())
}

/// `cnf = { 1: COSE_Key } / { 3: kid }`. The outer result is CBOR well-formedness, the
/// inner one the claim's meaning (an encrypted key, label 2, is not supported).
pub(crate) fn decode_cnf(
    d: &mut Decoder<'_>,
) -> Result<Result<Cnf, ClaimsError>, minicbor::decode::Error> {
    let invalid = |reason| {
        Ok(Err(ClaimsError::InvalidClaim {
            key: key::CNF,
            reason,
        }))
    };
    if definite(d.map()?)? != 1 {
        return invalid("cnf must hold exactly one confirmation method");
    }
    match d.i64()? {
        1 => {
            if d.datatype()? != Type::Map {
                return invalid("cnf COSE_Key must be a map");
            }
            let raw = raw_item(d)?;
            // Checked here so that a decoded cnf key is always one the relying party can use.
            if PublicKey::from_cose_key_bytes(raw).is_err() {
                return invalid("cnf COSE_Key is not a usable public key");
            }
            Ok(Ok(Cnf::CoseKey(raw.to_vec())))
        }
        3 => Ok(Ok(Cnf::Kid(d.bytes()?.to_vec()))),
        _ => invalid("cnf method must be a COSE_Key (1) or a kid (3)"),
    }
}

fn encode_manifests(e: &mut VecEncoder<'_>, list: &[Manifest]) -> EncodeResult {
    e.array(list.len() as u64)?;
    for m in list {
        e.array(2)?.u64(m.content_type)?;
        match &m.body {
            // RFC 9711 carries a CBOR manifest body as `bytes .cbor`: wrapped, not inline.
            ManifestBody::SuitReference(r) => {
                let inner = encode_with(|e| {
                    e.array(2)?
                        .str(&r.uri)?
                        .array(2)?
                        .i64(r.digest.alg)?
                        .bytes(&r.digest.bytes)?;
                    Ok(())
                });
                e.bytes(&inner)?;
            }
            ManifestBody::Other(raw) => e.writer_mut().extend_from_slice(raw),
        }
    }
    Ok(())
}

fn decode_manifests(d: &mut Decoder<'_>) -> Result<Vec<Manifest>, minicbor::decode::Error> {
    let len = definite(d.array()?)?;
    let mut out = Vec::new();
    for _ in 0..len {
        if definite(d.array()?)? != 2 {
            return Err(minicbor::decode::Error::message(
                "manifest entry has 2 elements",
            ));
        }
        let content_type = d.u64()?;
        let raw = raw_item(d)?;
        let body = match parse_suit_reference(raw) {
            Some(r) => ManifestBody::SuitReference(r),
            None => ManifestBody::Other(raw.to_vec()),
        };
        out.push(Manifest { content_type, body });
    }
    Ok(out)
}

/// Recognises a SUIT_Reference body: `[uri, [alg, digest]]`, inline or wrapped in a bstr
/// (`bytes .cbor`). Also the layout of the TEEP draft's D.2 example, `{1: uri, 0: digest}`,
/// which predates draft-ietf-suit-report's array form; it is read, never written.
fn parse_suit_reference(raw: &[u8]) -> Option<SuitReference> {
    let mut d = Decoder::new(raw);
    match d.datatype().ok()? {
        // One level of wrapping only: deeper nesting is no SUIT_Reference.
        Type::Bytes => parse_unwrapped_suit_reference(d.bytes().ok()?),
        _ => parse_unwrapped_suit_reference(raw),
    }
}

fn parse_unwrapped_suit_reference(raw: &[u8]) -> Option<SuitReference> {
    let mut d = Decoder::new(raw);
    let parsed = match d.datatype().ok()? {
        Type::Array => {
            if definite(d.array().ok()?).ok()? != 2 {
                return None;
            }
            let uri = d.str().ok()?.into();
            let digest = decode_digest(&mut d)?;
            SuitReference { uri, digest }
        }
        Type::Map => {
            if definite(d.map().ok()?).ok()? != 2 {
                return None;
            }
            let (mut uri, mut digest) = (None, None);
            for _ in 0..2 {
                match d.u64().ok()? {
                    1 => uri = Some(d.str().ok()?.into()),
                    0 => digest = Some(decode_digest(&mut d)?),
                    _ => return None,
                }
            }
            SuitReference {
                uri: uri?,
                digest: digest?,
            }
        }
        _ => return None,
    };
    (d.position() == raw.len()).then_some(parsed)
}

fn decode_digest(d: &mut Decoder<'_>) -> Option<SuitDigest> {
    if definite(d.array().ok()?).ok()? != 2 {
        return None;
    }
    Some(SuitDigest {
        alg: d.i64().ok()?,
        bytes: d.bytes().ok()?.to_vec(),
    })
}

#[cfg(feature = "json")]
pub(crate) mod json {
    use alloc::{string::String, vec::Vec};

    use serde::Deserialize;

    use super::{Cnf, DebugStatus, EatClaims, Manifest, Oemid, Version};

    /// The JSON form in which tools describe the claims of Evidence to build (the
    /// `--claims` file of `teep attest evidence`). Byte strings are hex.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ClaimsFile {
        #[serde(default)]
        profile: Option<String>,
        nonce: Option<String>,
        ueid: Option<String>,
        oemid: Option<OemidFile>,
        hwmodel: Option<String>,
        hwversion: Option<VersionFile>,
        #[serde(default)]
        manifests: Option<Vec<ManifestFile>>,
        cnf: Option<CnfFile>,
        iat: Option<i64>,
        exp: Option<i64>,
        nbf: Option<i64>,
        dbgstat: Option<String>,
        secboot: Option<bool>,
        swname: Option<String>,
        swversion: Option<VersionFile>,
    }

    /// An oemid in a JSON file: a PEN, or the hex of its byte form (claims and policy files).
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(crate) enum OemidFile {
        Pen(u64),
        Hex(String),
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum VersionFile {
        Plain(String),
        WithScheme(String, i64),
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ManifestFile {
        uri: String,
        sha256: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "snake_case")]
    enum CnfFile {
        Kid(String),
        CoseKey(String),
    }

    /// Why a claims description was rejected.
    #[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
    #[non_exhaustive]
    pub enum ClaimsJsonError {
        /// Not JSON of the documented shape.
        #[error("claims file is not valid JSON of the documented shape: {0}")]
        Json(String),
        /// A hex field is not hex, has the wrong length, or (cnf.cose_key) is no COSE_Key.
        #[error("claims field {0} is not hex of the right length")]
        Hex(&'static str),
        /// Unknown dbgstat name.
        #[error("unknown dbgstat name {0:?}")]
        Dbgstat(String),
    }

    fn unhex(field: &'static str, s: &str) -> Result<Vec<u8>, ClaimsJsonError> {
        hex::decode(s).map_err(|_| ClaimsJsonError::Hex(field))
    }

    fn version(v: VersionFile) -> Version {
        match v {
            VersionFile::Plain(version) => Version {
                version,
                scheme: None,
            },
            VersionFile::WithScheme(version, scheme) => Version {
                version,
                scheme: Some(scheme),
            },
        }
    }

    impl EatClaims {
        /// Reads a claims description (see `docs/verifier-policy.md`, "Claims files").
        pub fn from_json(text: &str) -> Result<Self, ClaimsJsonError> {
            let f: ClaimsFile = serde_json::from_str(text)
                .map_err(|e| ClaimsJsonError::Json(alloc::format!("{e}")))?;
            let opt_hex = |field, v: Option<String>| v.map(|h| unhex(field, &h)).transpose();
            let oemid = match f.oemid {
                None => None,
                Some(OemidFile::Pen(p)) => Some(Oemid::Pen(p)),
                Some(OemidFile::Hex(h)) => Some(
                    Oemid::from_bytes(&unhex("oemid", &h)?).ok_or(ClaimsJsonError::Hex("oemid"))?,
                ),
            };
            let manifests = f
                .manifests
                .map(|list| {
                    list.into_iter()
                        .map(|m| {
                            let digest = <[u8; 32]>::try_from(unhex("sha256", &m.sha256)?)
                                .map_err(|_| ClaimsJsonError::Hex("sha256"))?;
                            Ok(Manifest::suit_reference(m.uri, digest))
                        })
                        .collect::<Result<Vec<_>, ClaimsJsonError>>()
                })
                .transpose()?;
            let cnf = match f.cnf {
                None => None,
                Some(CnfFile::Kid(h)) => Some(Cnf::Kid(unhex("cnf.kid", &h)?)),
                // Re-encoded so that what goes on the wire is a valid, deterministic COSE_Key.
                Some(CnfFile::CoseKey(h)) => Some(Cnf::CoseKey(
                    teep_cose::PublicKey::from_cose_key_bytes(&unhex("cnf.cose_key", &h)?)
                        .map_err(|_| ClaimsJsonError::Hex("cnf.cose_key"))?
                        .to_cose_key_bytes(),
                )),
            };
            Ok(Self {
                profile: f.profile,
                nonce: opt_hex("nonce", f.nonce)?,
                ueid: opt_hex("ueid", f.ueid)?,
                oemid,
                hwmodel: opt_hex("hwmodel", f.hwmodel)?,
                hwversion: f.hwversion.map(version),
                manifests,
                measurements: None,
                cnf,
                iat: f.iat,
                exp: f.exp,
                nbf: f.nbf,
                dbgstat: f
                    .dbgstat
                    .map(|n| DebugStatus::from_name(&n).ok_or(ClaimsJsonError::Dbgstat(n)))
                    .transpose()?,
                secboot: f.secboot,
                swname: f.swname,
                swversion: f.swversion.map(version),
            })
        }
    }
}

#[cfg(feature = "json")]
pub use json::ClaimsJsonError;
