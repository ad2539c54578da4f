//! Public and private signing keys: COSE_Key import/export, RFC 9679 thumbprints, generation.
use alloc::vec::Vec;
use core::fmt;

use teep_cbor::encode::{self, Major};

use coset::{CborSerializable, CoseKey, KeyType, Label, iana};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::alg::{Algorithm, Curve};
use crate::error::CoseError;
use crate::usage::{KeyOp, KeyUse};

const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const LABEL_KTY: i64 = 1;
const LABEL_ALG: i64 = 3;
const LABEL_KEY_OPS: i64 = 4;
const LABEL_CRV: i64 = -1;
const LABEL_X: i64 = -2;
const LABEL_Y: i64 = -3;
const LABEL_D: i64 = -4;

/// Public key: SEC1 uncompressed point for EC, 32 raw bytes for Ed25519.
///
/// Always validated on construction (point on the curve; for Ed25519 also canonically
/// encoded and not of small order, see `is_strict_ed25519_point`), and its RFC 9679
/// thumbprint is computed once then, because the kid of every signature is that thumbprint.
///
/// It carries its [`KeyUse`] (a COSE_Key's `alg` and `key_ops`), which every use of the key
/// enforces. Equality and hashing are the key's identity (curve and point, as the
/// thumbprint), not its restrictions: the same key read from a PEM and from a COSE_Key
/// marked ESP256 is the same key.
#[derive(Clone)]
pub struct PublicKey {
    curve: Curve,
    bytes: Vec<u8>,
    thumbprint: [u8; 32],
    key_use: KeyUse,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.curve == other.curve && self.bytes == other.bytes
    }
}

impl Eq for PublicKey {}

impl core::hash::Hash for PublicKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.curve.hash(state);
        self.bytes.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("curve", &self.curve)
            .field("thumbprint", &HexBytes(&self.thumbprint))
            .field("key_use", &self.key_use)
            .finish()
    }
}

/// Is `raw` an Ed25519 point by the strict rules: a point, encoded canonically (y < p, no sign
/// bit on x = 0), and not of small order (RFC 8032 leaves those open; with a small-order
/// public key one signature verifies for many messages).
///
/// Every Ed25519 public key passes this at import, so both providers see only such keys;
/// the aws-lc provider also applies it to a signature's R, which is what ed25519-dalek's
/// `verify_strict` rejects beyond the cofactorless equation both libraries check.
pub(crate) fn is_strict_ed25519_point(raw: &[u8; 32]) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(raw)
        .is_ok_and(|point| point.to_edwards().compress().to_bytes() == *raw && !point.is_weak())
}

/// Lowercase hex in `Debug` output without pulling a hex crate into no_std builds.
struct HexBytes<'a>(&'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl PublicKey {
    /// Builds a key from its encoded form (SEC1 point for EC, uncompressed or compressed;
    /// 32 bytes for Ed25519), validating it.
    pub fn from_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, CoseError> {
        let bytes: Vec<u8> = match curve {
            Curve::P256 => {
                use p256::elliptic_curve::sec1::ToSec1Point;
                let key = p256::PublicKey::from_sec1_bytes(bytes)
                    .map_err(|_| CoseError::invalid_key("not a P-256 point"))?;
                key.to_sec1_point(false).as_bytes().to_vec()
            }
            Curve::P384 => {
                use p384::elliptic_curve::sec1::ToSec1Point;
                let key = p384::PublicKey::from_sec1_bytes(bytes)
                    .map_err(|_| CoseError::invalid_key("not a P-384 point"))?;
                key.to_sec1_point(false).as_bytes().to_vec()
            }
            Curve::Ed25519 => {
                let raw: &[u8; 32] = bytes
                    .try_into()
                    .map_err(|_| CoseError::invalid_key("Ed25519 key must be 32 bytes"))?;
                if !is_strict_ed25519_point(raw) {
                    return Err(CoseError::invalid_key(
                        "not a canonically encoded Ed25519 point of large order",
                    ));
                }
                raw.to_vec()
            }
        };
        let mut key = Self {
            curve,
            bytes,
            thumbprint: [0; 32],
            key_use: KeyUse::UNRESTRICTED,
        };
        key.thumbprint = Sha256::digest(encode_cose_key(&key, None, KeyUse::UNRESTRICTED)).into();
        Ok(key)
    }

    /// The key's curve (P-256, P-384 or Ed25519).
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// SEC1 uncompressed point (EC) or the 32 raw bytes (Ed25519).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Imports the public part of a COSE_Key (EC2 P-256/P-384 or OKP Ed25519), keeping its
    /// `alg` and `key_ops` as the key's [`KeyUse`] (a key-agreement key imports fine and
    /// then verifies nothing).
    ///
    /// A private `d` is ignored, so a private COSE_Key file also names its public key; its
    /// `key_ops` then apply as the public half's (`sign` allows `verify`).
    pub fn from_cose_key(key: &CoseKey) -> Result<Self, CoseError> {
        let parts = CoseKeyParts::read(key)?;
        let key_use = match parts.d {
            Some(_) => parts.key_use.public_half(),
            None => parts.key_use,
        };
        Ok(parts.public.with_key_use(key_use))
    }

    /// What this key may be used for (its COSE_Key `alg` and `key_ops`).
    pub fn key_use(&self) -> KeyUse {
        self.key_use
    }

    /// The same key restricted to `key_use` (replacing any restriction it had).
    pub fn with_key_use(self, key_use: KeyUse) -> Self {
        Self { key_use, ..self }
    }

    /// COSE_Key with kty, crv, x (and y) and the key's own `alg` and `key_ops` (so an
    /// exported anchor keeps its restrictions); no d, no kid.
    pub fn to_cose_key(&self) -> CoseKey {
        cose_key_from_parts(self, None, self.key_use)
    }

    /// Decodes an encoded COSE_Key and imports it like [`Self::from_cose_key`].
    pub fn from_cose_key_bytes(cbor: &[u8]) -> Result<Self, CoseError> {
        Self::from_cose_key(&decode_cose_key(cbor)?)
    }

    /// Deterministic encoding (RFC 8949 §4.2.1) of [`Self::to_cose_key`]. The RFC 9679
    /// thumbprint covers only the required parameters (kty, crv, x, y), so restricting a
    /// key does not change its kid.
    pub fn to_cose_key_bytes(&self) -> Vec<u8> {
        encode_cose_key(self, None, self.key_use)
    }

    /// RFC 9679 COSE Key Thumbprint with SHA-256.
    pub fn thumbprint(&self) -> [u8; 32] {
        self.thumbprint
    }

    /// May this key verify a signature under `alg`: same curve, and its own `alg` and
    /// `key_ops` allow it (`AlgorithmKeyMismatch` or `KeyOpNotPermitted` otherwise)?
    pub fn check_verify(&self, alg: Algorithm) -> Result<(), CoseError> {
        check_curve(self.curve, alg)?;
        self.key_use.check_signature(alg, KeyOp::Verify)
    }

    /// Does `alg` fit this key ([`PublicKey::check_verify`] succeeds)?
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.check_verify(alg).is_ok()
    }

    /// (x, y) coordinates of an EC key; `None` for Ed25519.
    fn ec_coordinates(&self) -> Option<(&[u8], &[u8])> {
        match self.curve {
            Curve::P256 | Curve::P384 => self
                .bytes
                .get(1..)
                .and_then(|xy| xy.split_at_checked(self.curve.field_len())),
            Curve::Ed25519 => None,
        }
    }
}

/// The curve check every use of a key makes first.
fn check_curve(curve: Curve, alg: Algorithm) -> Result<(), CoseError> {
    if alg.curve() == curve {
        Ok(())
    } else {
        Err(CoseError::AlgorithmKeyMismatch { alg: alg.cose_id() })
    }
}

/// Private key (zeroized on drop) with its public half, and its own [`KeyUse`] (the public
/// half carries the public counterpart, see `KeyUse`).
#[derive(Clone)]
pub struct PrivateKey {
    public: PublicKey,
    d: Zeroizing<Vec<u8>>,
    key_use: KeyUse,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Builds a key from its private scalar (EC) or seed (Ed25519), deriving the public half.
    pub fn from_bytes(curve: Curve, d: &[u8]) -> Result<Self, CoseError> {
        if d.len() != curve.field_len() {
            return Err(CoseError::invalid_key("private key has the wrong length"));
        }
        let public = match curve {
            Curve::P256 => {
                use p256::elliptic_curve::sec1::ToSec1Point;
                let sk = p256::SecretKey::from_slice(d)
                    .map_err(|_| CoseError::invalid_key("not a P-256 private key"))?;
                PublicKey::from_bytes(curve, sk.public_key().to_sec1_point(false).as_bytes())?
            }
            Curve::P384 => {
                use p384::elliptic_curve::sec1::ToSec1Point;
                let sk = p384::SecretKey::from_slice(d)
                    .map_err(|_| CoseError::invalid_key("not a P-384 private key"))?;
                PublicKey::from_bytes(curve, sk.public_key().to_sec1_point(false).as_bytes())?
            }
            Curve::Ed25519 => {
                let seed: &[u8; 32] = d
                    .try_into()
                    .map_err(|_| CoseError::invalid_key("Ed25519 private key must be 32 bytes"))?;
                let sk = ed25519_dalek::SigningKey::from_bytes(seed);
                PublicKey::from_bytes(curve, sk.verifying_key().as_bytes())?
            }
        };
        Ok(Self {
            public,
            d: Zeroizing::new(d.to_vec()),
            key_use: KeyUse::UNRESTRICTED,
        })
    }

    /// A fresh key from the OS RNG (getrandom).
    pub fn generate(curve: Curve) -> Result<Self, CoseError> {
        let mut d = Zeroizing::new([0u8; 48]);
        let d = d
            .get_mut(..curve.field_len())
            .ok_or(CoseError::Crypto("field length"))?;
        // A random 256/384-bit string is a valid scalar except with probability < 2^-32;
        // retrying a few times turns that into "never" without looping forever on a bad RNG.
        for _ in 0..4 {
            getrandom::fill(d).map_err(|_| CoseError::Crypto("OS random generator failed"))?;
            if let Ok(key) = Self::from_bytes(curve, d) {
                return Ok(key);
            }
        }
        Err(CoseError::Crypto("random generator gave no valid scalar"))
    }

    /// The public half (with the public counterparts of this key's `key_ops`).
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's curve (P-256, P-384 or Ed25519).
    pub fn curve(&self) -> Curve {
        self.public.curve
    }

    /// Private scalar (EC, big-endian) or seed (Ed25519), for crypto providers.
    pub fn secret_bytes(&self) -> &[u8] {
        &self.d
    }

    /// Imports a private COSE_Key, keeping its `alg` and `key_ops`; `d` must match `x`/`y`.
    pub fn from_cose_key(key: &CoseKey) -> Result<Self, CoseError> {
        let parts = CoseKeyParts::read(key)?;
        let d = parts
            .d
            .ok_or_else(|| CoseError::invalid_key("COSE_Key has no private part (d)"))?;
        let private = Self::from_bytes(parts.public.curve, d)?;
        if private.public != parts.public {
            return Err(CoseError::invalid_key(
                "COSE_Key private part does not match its public part",
            ));
        }
        Ok(private.with_key_use(parts.key_use))
    }

    /// What this key may be used for (its COSE_Key `alg` and `key_ops`).
    pub fn key_use(&self) -> KeyUse {
        self.key_use
    }

    /// The same key restricted to `key_use`; its public half gets the public counterpart.
    pub fn with_key_use(self, key_use: KeyUse) -> Self {
        Self {
            public: self.public.with_key_use(key_use.public_half()),
            key_use,
            ..self
        }
    }

    /// May this key sign under `alg`: same curve, and its own `alg` and `key_ops` allow it?
    pub fn check_sign(&self, alg: Algorithm) -> Result<(), CoseError> {
        check_curve(self.curve(), alg)?;
        self.key_use.check_signature(alg, KeyOp::Sign)
    }

    /// COSE_Key including d and the key's own `alg` and `key_ops`.
    pub fn to_cose_key(&self) -> CoseKey {
        cose_key_from_parts(&self.public, Some(&self.d), self.key_use)
    }

    /// Decodes an encoded COSE_Key (with `d`) and imports it like [`Self::from_cose_key`].
    pub fn from_cose_key_bytes(cbor: &[u8]) -> Result<Self, CoseError> {
        Self::from_cose_key(&decode_cose_key(cbor)?)
    }

    /// Deterministic encoding of [`Self::to_cose_key`].
    pub fn to_cose_key_bytes(&self) -> Vec<u8> {
        encode_cose_key(&self.public, Some(&self.d), self.key_use)
    }

    /// The algorithm TEEP prefers for this key: P-256 -> ESP256, P-384 -> ES384,
    /// Ed25519 -> Ed25519.
    pub fn default_algorithm(&self) -> Algorithm {
        match self.curve() {
            Curve::P256 => Algorithm::Esp256,
            Curve::P384 => Algorithm::Es384,
            Curve::Ed25519 => Algorithm::Ed25519,
        }
    }
}

fn decode_cose_key(cbor: &[u8]) -> Result<CoseKey, CoseError> {
    CoseKey::from_slice(cbor).map_err(|e| CoseError::Malformed(alloc::format!("COSE_Key: {e}")))
}

/// What a COSE_Key says about a signing key.
struct CoseKeyParts<'a> {
    public: PublicKey,
    d: Option<&'a [u8]>,
    key_use: KeyUse,
}

/// The `alg` and `key_ops` of a COSE_Key. A text `alg` names nothing this library could
/// match, so the key is refused rather than imported unrestricted; text `key_ops` allow
/// nothing here.
fn key_use_of(key: &CoseKey) -> Result<KeyUse, CoseError> {
    use coset::RegisteredLabel;
    use coset::RegisteredLabelWithPrivate as Alg;
    let alg = match &key.alg {
        None => None,
        Some(Alg::Assigned(a)) => Some(*a as i64),
        Some(Alg::PrivateUse(a)) => Some(*a),
        Some(Alg::Text(_)) => return Err(CoseError::invalid_key("COSE_Key alg is text")),
    };
    // coset refuses an empty key_ops array, so empty means absent.
    let ops: Option<Vec<KeyOp>> = (!key.key_ops.is_empty()).then(|| {
        key.key_ops
            .iter()
            .filter_map(|op| match op {
                RegisteredLabel::Assigned(op) => KeyOp::from_cose_id(*op as i64),
                RegisteredLabel::Text(_) => None,
            })
            .collect()
    });
    Ok(KeyUse::new(alg, ops.as_deref()))
}

impl<'a> CoseKeyParts<'a> {
    fn read(key: &'a CoseKey) -> Result<Self, CoseError> {
        let mut crv = None;
        let mut x = None;
        let mut y = None;
        let mut d = None;
        for (label, value) in &key.params {
            let Label::Int(label) = label else { continue };
            match *label {
                LABEL_CRV => crv = Some(value),
                LABEL_X => x = Some(value),
                LABEL_Y => y = Some(value),
                LABEL_D => d = Some(value),
                _ => {}
            }
        }
        let crv = crv
            .and_then(|v| v.as_integer())
            .and_then(|i| i64::try_from(i).ok())
            .ok_or_else(|| CoseError::invalid_key("COSE_Key crv missing or not an integer"))?;
        let bstr = |v: Option<&'a coset::cbor::value::Value>, what: &str| match v {
            None => Ok(None),
            Some(v) => v.as_bytes().map(|b| Some(b.as_slice())).ok_or_else(|| {
                CoseError::InvalidKey(alloc::format!("COSE_Key {what} is not a bstr"))
            }),
        };
        let x = bstr(x, "x")?.ok_or_else(|| CoseError::invalid_key("COSE_Key x missing"))?;
        let d = bstr(d, "d")?;
        let key_use = key_use_of(key)?;
        let curve = match (&key.kty, crv) {
            (KeyType::Assigned(iana::KeyType::EC2), 1) => Curve::P256,
            (KeyType::Assigned(iana::KeyType::EC2), 2) => Curve::P384,
            (KeyType::Assigned(iana::KeyType::OKP), 6) => Curve::Ed25519,
            (KeyType::Assigned(iana::KeyType::EC2 | iana::KeyType::OKP), crv) => {
                return Err(CoseError::InvalidKey(alloc::format!(
                    "unsupported COSE_Key curve {crv}"
                )));
            }
            _ => return Err(CoseError::invalid_key("COSE_Key kty is not EC2 or OKP")),
        };
        let len = curve.field_len();
        if x.len() != len || d.is_some_and(|d| d.len() != len) {
            return Err(CoseError::invalid_key(
                "COSE_Key coordinate has the wrong length",
            ));
        }
        let public = match curve {
            Curve::Ed25519 => PublicKey::from_bytes(curve, x)?,
            Curve::P256 | Curve::P384 => {
                let mut sec1 = Vec::with_capacity(1 + 2 * len);
                match y {
                    Some(coset::cbor::value::Value::Bytes(y)) if y.len() == len => {
                        sec1.push(0x04);
                        sec1.extend_from_slice(x);
                        sec1.extend_from_slice(y);
                    }
                    // RFC 9053 §7.1.1: a bool y is the sign bit of a compressed point.
                    Some(coset::cbor::value::Value::Bool(odd)) => {
                        sec1.push(if *odd { 0x03 } else { 0x02 });
                        sec1.extend_from_slice(x);
                    }
                    _ => return Err(CoseError::invalid_key("COSE_Key y missing or invalid")),
                }
                PublicKey::from_bytes(curve, &sec1)?
            }
        };
        Ok(Self { public, d, key_use })
    }
}

/// The `key_ops` entry written for a key whose `key_ops` allow no operation this library
/// knows (it was imported with text operations only): COSE has no empty `key_ops`, and
/// leaving the member out would make the exported key unrestricted. An unknown text
/// operation allows nothing here, nor to any other reader.
const NO_KNOWN_OP: &str = "teep-no-known-op";

fn cose_key_from_parts(public: &PublicKey, d: Option<&[u8]>, key_use: KeyUse) -> CoseKey {
    use coset::iana::EnumI64;
    use coset::{RegisteredLabel, RegisteredLabelWithPrivate};
    let crv = Label::Int(LABEL_CRV);
    let mut params = Vec::with_capacity(4);
    params.push((
        crv,
        coset::cbor::value::Value::from(public.curve.cose_crv()),
    ));
    let kty = match public.ec_coordinates() {
        Some((x, y)) => {
            params.push((
                Label::Int(LABEL_X),
                coset::cbor::value::Value::Bytes(x.to_vec()),
            ));
            params.push((
                Label::Int(LABEL_Y),
                coset::cbor::value::Value::Bytes(y.to_vec()),
            ));
            iana::KeyType::EC2
        }
        None => {
            params.push((
                Label::Int(LABEL_X),
                coset::cbor::value::Value::Bytes(public.bytes.clone()),
            ));
            iana::KeyType::OKP
        }
    };
    if let Some(d) = d {
        params.push((
            Label::Int(LABEL_D),
            coset::cbor::value::Value::Bytes(d.to_vec()),
        ));
    }
    let alg = key_use.alg().map(|id| match iana::Algorithm::from_i64(id) {
        Some(a) => RegisteredLabelWithPrivate::Assigned(a),
        // coset writes PrivateUse(id) as the plain integer, which is all it is.
        None => RegisteredLabelWithPrivate::PrivateUse(id),
    });
    let key_ops = key_use
        .ops()
        .map(|ops| {
            let known: alloc::collections::BTreeSet<_> = ops
                .filter_map(|op| iana::KeyOperation::from_i64(op.cose_id()))
                .map(RegisteredLabel::Assigned)
                .collect();
            if known.is_empty() {
                [RegisteredLabel::Text(NO_KNOWN_OP.into())].into()
            } else {
                known
            }
        })
        .unwrap_or_default();
    CoseKey {
        kty: KeyType::Assigned(kty),
        alg,
        key_ops,
        params,
        ..CoseKey::default()
    }
}

/// Deterministic COSE_Key: labels in bytewise order of their encodings (1, 3, 4, -1, -2,
/// -3, -4); with [`KeyUse::UNRESTRICTED`] exactly the RFC 9679 thumbprint input.
fn encode_cose_key(public: &PublicKey, d: Option<&[u8]>, key_use: KeyUse) -> Vec<u8> {
    let coords = public.ec_coordinates();
    let ops: Option<Vec<KeyOp>> = key_use.ops().map(Iterator::collect);
    let entries = 3
        + usize::from(coords.is_some())
        + usize::from(d.is_some())
        + usize::from(key_use.alg().is_some())
        + usize::from(ops.is_some());
    let mut out = Vec::with_capacity(8 + 3 * encode::bytes_len(public.curve.field_len()));
    encode::write_head(Major::Map, entries as u64, &mut out);
    encode::write_int(LABEL_KTY, &mut out);
    encode::write_int(if coords.is_some() { KTY_EC2 } else { KTY_OKP }, &mut out);
    if let Some(alg) = key_use.alg() {
        encode::write_int(LABEL_ALG, &mut out);
        encode::write_int(alg, &mut out);
    }
    if let Some(ops) = &ops {
        encode::write_int(LABEL_KEY_OPS, &mut out);
        if ops.is_empty() {
            encode::write_head(Major::Array, 1, &mut out);
            encode::write_text(NO_KNOWN_OP, &mut out);
        } else {
            encode::write_head(Major::Array, ops.len() as u64, &mut out);
            for op in ops {
                encode::write_int(op.cose_id(), &mut out);
            }
        }
    }
    match coords {
        Some((x, y)) => {
            encode::write_int(LABEL_CRV, &mut out);
            encode::write_int(public.curve.cose_crv(), &mut out);
            encode::write_int(LABEL_X, &mut out);
            encode::write_bytes(x, &mut out);
            encode::write_int(LABEL_Y, &mut out);
            encode::write_bytes(y, &mut out);
        }
        None => {
            encode::write_int(LABEL_CRV, &mut out);
            encode::write_int(public.curve.cose_crv(), &mut out);
            encode::write_int(LABEL_X, &mut out);
            encode::write_bytes(&public.bytes, &mut out);
        }
    }
    if let Some(d) = d {
        encode::write_int(LABEL_D, &mut out);
        encode::write_bytes(d, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");

    fn read_hex(path: &str) -> Vec<u8> {
        let text = std::fs::read_to_string(std::format!("{VECTORS}/{path}")).unwrap();
        hex::decode(text.trim()).unwrap()
    }

    extern crate std;

    #[test]
    fn teep_appendix_e_key_has_the_published_thumbprint() {
        // suit_signer_p256.cose_key.diag, written out: x, y, d of the Appendix E key.
        let x = hex::decode("8496811aae0baaabd26157189eecda26beaa8bf11b6f3fe6e2b5659c85dbc0ad")
            .unwrap();
        let y = hex::decode("3b1f2a4b6c098131c0a36dacd1d78bd381dcdfb09c052db33991db7338b4a896")
            .unwrap();
        let d = hex::decode("0296588d909418b339d150420a3612b57fb4f631a69f224fae90cb4f3fe18973")
            .unwrap();
        let key = PrivateKey::from_bytes(Curve::P256, &d).unwrap();
        let mut sec1 = std::vec![4u8];
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        assert_eq!(key.public_key().as_bytes(), &sec1[..]);
        assert_eq!(
            hex::encode(key.public_key().thumbprint()),
            "ca9e35f23b2b525fb4fc83f512b0dcac4ac29e457e873a5d6a7313f71690b33c"
        );
    }

    #[test]
    fn suit_cose_key_files_import_and_kid_is_the_thumbprint() {
        for name in [
            "suit-example-signer-p256",
            "fwenc-dependent-signer-p256",
            "fwenc-receiver-esdh-p256",
        ] {
            let public_cbor = read_hex(&std::format!("suit/keys/{name}.cose-key-public.hex"));
            let private_cbor = read_hex(&std::format!("suit/keys/{name}.cose-key-private.hex"));
            let public = PublicKey::from_cose_key_bytes(&public_cbor).unwrap();
            let private = PrivateKey::from_cose_key_bytes(&private_cbor).unwrap();
            assert_eq!(private.public_key(), &public, "{name}");
            // libcsuit's kid for these keys is their RFC 9679 thumbprint.
            let kid = CoseKey::from_slice(&public_cbor).unwrap().key_id;
            assert_eq!(kid, public.thumbprint(), "{name}");
            // A private COSE_Key also reads as its public key.
            assert_eq!(
                PublicKey::from_cose_key_bytes(&private_cbor).unwrap(),
                public
            );
        }
    }

    #[test]
    fn symmetric_cose_keys_are_not_signing_keys() {
        for name in ["fwenc-kek-a128kw.cose-key", "fwenc-mac-hmac256.cose-key"] {
            let cbor = read_hex(&std::format!("suit/keys/{name}.hex"));
            assert!(matches!(
                PublicKey::from_cose_key_bytes(&cbor),
                Err(CoseError::InvalidKey(_))
            ));
        }
    }

    #[test]
    fn export_import_round_trips_for_every_curve() {
        for curve in [Curve::P256, Curve::P384, Curve::Ed25519] {
            let key = PrivateKey::generate(curve).unwrap();
            let again = PrivateKey::from_cose_key_bytes(&key.to_cose_key_bytes()).unwrap();
            assert_eq!(again.secret_bytes(), key.secret_bytes());
            let public = key.public_key();
            let via_coset = public.to_cose_key().to_vec().unwrap();
            assert_eq!(
                via_coset,
                public.to_cose_key_bytes(),
                "hand encoding matches coset"
            );
            let private_via_coset = key.to_cose_key().to_vec().unwrap();
            assert_eq!(private_via_coset, key.to_cose_key_bytes());
            assert_eq!(&PublicKey::from_cose_key_bytes(&via_coset).unwrap(), public);
        }
    }

    #[test]
    fn compressed_y_imports_as_the_same_key() {
        let key = PrivateKey::generate(Curve::P256).unwrap();
        let public = key.public_key();
        let (x, y) = public.ec_coordinates().unwrap();
        let odd = y.last().unwrap() & 1 == 1;
        let mut cose = public.to_cose_key();
        for (label, value) in &mut cose.params {
            if *label == Label::Int(LABEL_Y) {
                *value = coset::cbor::value::Value::Bool(odd);
            }
        }
        assert_eq!(&PublicKey::from_cose_key(&cose).unwrap(), public);
        assert_eq!(x.len(), 32);
    }

    #[test]
    fn bad_keys_are_typed_errors() {
        let key = PrivateKey::generate(Curve::P256).unwrap();
        // A point off the curve.
        let mut cose = key.public_key().to_cose_key();
        for (label, value) in &mut cose.params {
            if *label == Label::Int(LABEL_Y) {
                *value = coset::cbor::value::Value::Bytes(std::vec![1; 32]);
            }
        }
        assert!(matches!(
            PublicKey::from_cose_key(&cose),
            Err(CoseError::InvalidKey(_))
        ));
        // d of another key.
        let other = PrivateKey::generate(Curve::P256).unwrap();
        let mut mixed = key.to_cose_key();
        for (label, value) in &mut mixed.params {
            if *label == Label::Int(LABEL_D) {
                *value = coset::cbor::value::Value::Bytes(other.secret_bytes().to_vec());
            }
        }
        assert!(matches!(
            PrivateKey::from_cose_key(&mixed),
            Err(CoseError::InvalidKey(_))
        ));
        // A public key where a private one is needed.
        assert!(matches!(
            PrivateKey::from_cose_key(&key.public_key().to_cose_key()),
            Err(CoseError::InvalidKey(_))
        ));
        // Not CBOR at all, and trailing bytes.
        assert!(matches!(
            PublicKey::from_cose_key_bytes(b"\xff"),
            Err(CoseError::Malformed(_))
        ));
        let mut trailing = key.public_key().to_cose_key_bytes();
        trailing.push(0);
        assert!(matches!(
            PublicKey::from_cose_key_bytes(&trailing),
            Err(CoseError::Malformed(_))
        ));
        // Scalar zero.
        assert!(PrivateKey::from_bytes(Curve::P256, &[0; 32]).is_err());
    }
}
