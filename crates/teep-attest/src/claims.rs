//! The EAT claims-set of TEEP Evidence (RFC 9711 with the TEEP EAT profile).
//!
//! Claim keys come from the IANA "CWT Claims" registry as RFC 9711 registered them. The
//! TEEP draft's D.2 example puts its installed-component list under key 273, which the
//! registry assigns to `measurements`; `manifests` is 272. We follow the registry: 272 is
//! decoded as [`EatClaims::manifests`], 273 as [`EatClaims::measurements`] (same shape),
//! and the test `d2_example_273_is_measurements` pins the choice.

use alloc::{string::String, vec::Vec};

use minicbor::data::Type;
use teep_cbor::read::{ReadError, ReadErrorKind, Reader};
use teep_cbor::write::{ArrayEncoder, EncodeError, MapEncoder, VecEncoder, encode_vec, raw};
use teep_cose::{CoseError, PublicKey};

use crate::cbor::{bstr, int_key};

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
pub const SHA256_ALG: i64 = teep_suit::model::SHA256;

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

/// `SUIT_Digest = [alg, bytes]`: SUIT's type (`teep_suit::Digest`, fields `algorithm`
/// and `bytes`), so a manifest digest from Evidence compares with one from an envelope.
pub type SuitDigest = teep_suit::Digest;

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
                digest: SuitDigest::sha256(sha256),
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
        reason: ClaimReason,
    },
}

/// What is wrong with a known claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimReason {
    /// Its CBOR is not of the claim's type, size or range (e.g. `Size` for an
    /// `eat_nonce` outside 8..=64 bytes or an empty `manifests`, `OutOfRange` for an
    /// undefined `dbgstat` or an `oemid` of another length).
    #[error("{0}")]
    Read(ReadErrorKind),
    /// The `cnf` COSE_Key is no public key teep-cose can use.
    #[error("cnf COSE_Key is not a usable public key")]
    UnusableCnfKey,
}

/// The claims decoder names each field by its claim key.
impl From<ReadError<i64>> for ClaimsError {
    fn from(e: ReadError<i64>) -> Self {
        Self::InvalidClaim {
            key: e.field,
            reason: ClaimReason::Read(e.kind),
        }
    }
}

impl EatClaims {
    /// Encodes the claims-set deterministically: definite lengths, preferred serialization,
    /// keys in ascending order, no tags (the TEEP EAT profile).
    ///
    /// # Errors
    /// [`EncodeError::Raw`] when a pre-encoded part (a [`Cnf::CoseKey`] or a
    /// [`ManifestBody::Other`]) is not exactly one well-formed CBOR item.
    pub fn to_cbor(&self) -> Result<Vec<u8>, EncodeError> {
        encode_vec(|e| self.encode(e))
    }

    fn encode(&self, e: &mut VecEncoder<'_>) -> Result<(), EncodeError> {
        let mut m = MapEncoder::new();
        if let Some(exp) = self.exp {
            m.entry(key::EXP, exp)?;
        }
        if let Some(nbf) = self.nbf {
            m.entry(key::NBF, nbf)?;
        }
        if let Some(iat) = self.iat {
            m.entry(key::IAT, iat)?;
        }
        if let Some(cnf) = &self.cnf {
            m.entry_with(key::CNF, |e| encode_cnf(e, cnf))?;
        }
        if let Some(n) = &self.nonce {
            m.entry(key::NONCE, bstr(n))?;
        }
        if let Some(u) = &self.ueid {
            m.entry(key::UEID, bstr(u))?;
        }
        if let Some(o) = &self.oemid {
            match o {
                Oemid::Ieee(b) => m.entry(key::OEMID, bstr(b))?,
                Oemid::Random(b) => m.entry(key::OEMID, bstr(b))?,
                Oemid::Pen(p) => m.entry(key::OEMID, *p)?,
            };
        }
        if let Some(h) = &self.hwmodel {
            m.entry(key::HWMODEL, bstr(h))?;
        }
        if let Some(v) = &self.hwversion {
            m.entry_with(key::HWVERSION, |e| encode_version(e, v))?;
        }
        if let Some(b) = self.secboot {
            m.entry(key::SECBOOT, b)?;
        }
        if let Some(d) = self.dbgstat {
            m.entry(key::DBGSTAT, d.code())?;
        }
        if let Some(p) = &self.profile {
            m.entry(key::PROFILE, p.as_str())?;
        }
        if let Some(n) = &self.swname {
            m.entry(key::SWNAME, n.as_str())?;
        }
        if let Some(v) = &self.swversion {
            m.entry_with(key::SWVERSION, |e| encode_version(e, v))?;
        }
        if let Some(list) = &self.manifests {
            m.entry_with(key::MANIFESTS, |e| encode_manifests(e, list))?;
        }
        if let Some(list) = &self.measurements {
            m.entry_with(key::MEASUREMENTS, |e| encode_manifests(e, list))?;
        }
        m.finish(e)
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
        let mut r = Reader::new(bytes);
        let len = r.map(()).map_err(|_| ClaimsError::NotAMap)?;
        let mut claims = Self::default();
        for _ in 0..len {
            match int_key(&mut r, ()).map_err(|_| ClaimsError::NotAMap)? {
                Some(key) => claims.decode_claim(key, &mut r)?,
                None => r.skip(()).map_err(|_| ClaimsError::NotAMap)?,
            }
        }
        Ok(claims)
    }

    fn decode_claim(&mut self, key: i64, r: &mut Reader<'_>) -> Result<(), ClaimsError> {
        let out_of_range = |at| Reader::error_at(at, key, ReadErrorKind::OutOfRange);
        match key {
            key::EXP => set(&mut self.exp, key, r.i64(key)?),
            key::NBF => set(&mut self.nbf, key, r.i64(key)?),
            key::IAT => set(&mut self.iat, key, r.i64(key)?),
            key::CNF => set(&mut self.cnf, key, decode_cnf(r)?),
            key::NONCE => {
                let n = r.bytes_sized(key, EAT_NONCE_MIN..=EAT_NONCE_MAX)?;
                set(&mut self.nonce, key, n.to_vec())
            }
            key::UEID => set(&mut self.ueid, key, r.bytes_sized(key, 7..=33)?.to_vec()),
            key::OEMID => {
                let at = r.position();
                let o = if r.datatype() == Some(Type::Bytes) {
                    Oemid::from_bytes(r.bytes(key)?).ok_or_else(|| out_of_range(at))?
                } else {
                    Oemid::Pen(r.u64(key)?)
                };
                set(&mut self.oemid, key, o)
            }
            key::HWMODEL => set(&mut self.hwmodel, key, r.bytes_sized(key, 1..=32)?.to_vec()),
            key::HWVERSION => set(&mut self.hwversion, key, decode_version(r, key)?),
            key::SECBOOT => set(&mut self.secboot, key, r.bool(key)?),
            key::DBGSTAT => {
                let at = r.position();
                let s = DebugStatus::from_code(r.u64(key)?).ok_or_else(|| out_of_range(at))?;
                set(&mut self.dbgstat, key, s)
            }
            // general-oid profiles (a bstr) are not used by TEEP.
            key::PROFILE => set(&mut self.profile, key, r.str(key)?.into()),
            key::SWNAME => set(&mut self.swname, key, r.str(key)?.into()),
            key::SWVERSION => set(&mut self.swversion, key, decode_version(r, key)?),
            key::MANIFESTS => set(&mut self.manifests, key, decode_manifests(r, key)?),
            key::MEASUREMENTS => set(&mut self.measurements, key, decode_manifests(r, key)?),
            _ => Ok(r.skip(key)?),
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

fn encode_version(e: &mut VecEncoder<'_>, v: &Version) -> Result<(), EncodeError> {
    let mut a = ArrayEncoder::new();
    a.item(v.version.as_str())?;
    if let Some(scheme) = v.scheme {
        a.item(scheme)?;
    }
    a.finish(e)
}

/// `[version, ? version-scheme]`.
fn decode_version(r: &mut Reader<'_>, key: i64) -> Result<Version, ReadError<i64>> {
    let len = r.array_of(key, 1..=2)?;
    let version = r.str(key)?.into();
    let scheme = if len == 2 { Some(r.i64(key)?) } else { None };
    Ok(Version { version, scheme })
}

/// `cnf = { 1: COSE_Key } / { 3: kid }` (Evidence and EAR both carry it).
pub(crate) fn encode_cnf(e: &mut VecEncoder<'_>, cnf: &Cnf) -> Result<(), EncodeError> {
    let mut m = MapEncoder::new();
    match cnf {
        Cnf::CoseKey(k) => m.entry_with(1, |e| raw(e, k))?,
        Cnf::Kid(kid) => m.entry(3, bstr(kid))?,
    };
    m.finish(e)
}

/// `cnf = { 1: COSE_Key } / { 3: kid }`; an encrypted key (label 2) is not supported.
pub(crate) fn decode_cnf(r: &mut Reader<'_>) -> Result<Cnf, ClaimsError> {
    const CNF: i64 = key::CNF;
    r.map_of(CNF, 1..=1)?;
    let at = r.position();
    match r.i64(CNF)? {
        1 => {
            // The type is checked on a copy so that the key is then taken whole.
            r.clone().map(CNF)?;
            let key = r.raw(CNF)?;
            // Checked here so that a decoded cnf key is always one the relying party can use.
            if PublicKey::from_cose_key_bytes(key).is_err() {
                return Err(ClaimsError::InvalidClaim {
                    key: CNF,
                    reason: ClaimReason::UnusableCnfKey,
                });
            }
            Ok(Cnf::CoseKey(key.to_vec()))
        }
        3 => Ok(Cnf::Kid(r.bytes(CNF)?.to_vec())),
        _ => Err(Reader::error_at(at, CNF, ReadErrorKind::OutOfRange).into()),
    }
}

fn encode_manifests(e: &mut VecEncoder<'_>, list: &[Manifest]) -> Result<(), EncodeError> {
    let mut a = ArrayEncoder::new();
    for m in list {
        a.item_with(|e| {
            let mut entry = ArrayEncoder::new();
            entry.item(m.content_type)?;
            match &m.body {
                // RFC 9711 carries a CBOR manifest body as `bytes .cbor`: wrapped, not inline.
                ManifestBody::SuitReference(r) => {
                    let inner = encode_vec(|e| encode_suit_reference(e, r))?;
                    entry.item(bstr(&inner))?
                }
                ManifestBody::Other(body) => entry.item_with(|e| raw(e, body))?,
            };
            entry.finish(e)
        })?;
    }
    a.finish(e)
}

/// `SUIT_Reference = [uri, [alg, digest]]`.
fn encode_suit_reference(e: &mut VecEncoder<'_>, r: &SuitReference) -> Result<(), EncodeError> {
    let mut reference = ArrayEncoder::new();
    reference.item(r.uri.as_str())?.item_with(|e| {
        let mut digest = ArrayEncoder::new();
        digest
            .item(r.digest.algorithm)?
            .item(bstr(&r.digest.bytes))?;
        digest.finish(e)
    })?;
    reference.finish(e)
}

/// `[+ [content-type, content-format]]`: RFC 9711 allows no empty list, which says nothing.
fn decode_manifests(r: &mut Reader<'_>, key: i64) -> Result<Vec<Manifest>, ReadError<i64>> {
    let len = r.array_of(key, 1..=u64::MAX)?;
    let mut out = Vec::new();
    for _ in 0..len {
        r.array_of(key, 2..=2)?;
        let content_type = r.u64(key)?;
        let raw = r.raw(key)?;
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
    let mut r = Reader::new(raw);
    match r.datatype()? {
        // One level of wrapping only: deeper nesting is no SUIT_Reference.
        Type::Bytes => parse_unwrapped_suit_reference(r.bytes(()).ok()?),
        _ => parse_unwrapped_suit_reference(raw),
    }
}

fn parse_unwrapped_suit_reference(raw: &[u8]) -> Option<SuitReference> {
    let mut r = Reader::new(raw);
    let parsed = match r.datatype()? {
        Type::Array => {
            r.array_of((), 2..=2).ok()?;
            let uri = r.str(()).ok()?.into();
            let digest = decode_digest(&mut r)?;
            SuitReference { uri, digest }
        }
        Type::Map => {
            r.map_of((), 2..=2).ok()?;
            let (mut uri, mut digest) = (None, None);
            for _ in 0..2 {
                match r.u64(()).ok()? {
                    1 => uri = Some(r.str(()).ok()?.into()),
                    0 => digest = Some(decode_digest(&mut r)?),
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
    r.expect_empty(()).ok()?;
    Some(parsed)
}

fn decode_digest(r: &mut Reader<'_>) -> Option<SuitDigest> {
    r.array_of((), 2..=2).ok()?;
    Some(SuitDigest {
        algorithm: r.i64(()).ok()?,
        bytes: r.bytes(()).ok()?.to_vec(),
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
