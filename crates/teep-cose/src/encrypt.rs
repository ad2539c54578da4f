//! COSE_Encrypt / COSE_Encrypt0 content decryption and encryption for SUIT payloads
//! (draft-ietf-suit-firmware-encryption, detached content) and for the EATs and SUIT reports
//! a TEEP Agent encrypts to its TAM (draft-ietf-teep-protocol §12, attached content: the
//! same ES-DH construction with another KDF `other`, so the purpose is bound to the key).
//!
//! Recipients: A128KW (pre-shared KEK) and ECDH-ES+A128KW (P-256, HKDF-SHA-256, the
//! COSE_KDF_Context of firmware-encryption with a caller-given `other`). Content: A128GCM
//! and A256GCM (AAD = Enc_structure over the outer protected header) and A128CTR (no AAD,
//! no tag; integrity comes from a signed digest elsewhere, so the outer protected header
//! must be empty). ChaCha20-Poly1305 (24) is not implemented by the providers and is
//! `UnsupportedAlgorithm(24)`. The structures are walked as generic CBOR rather than through
//! coset because A128CTR (-65534) sits in neither the IANA table coset knows nor its private
//! range.
//!
//! **An attached ciphertext must authenticate itself.** Where the ciphertext is carried in
//! the structure (TEEP §12 EATs and SUIT reports, COSE_Encrypt0), nothing else signs it, so
//! the content algorithm must be an AEAD named in the *protected* header (which the AEAD
//! then authenticates as AAD). Otherwise an attacker on the path rewrites a GCM report as
//! A128CTR in the unprotected header with IV' = IV || 0x00000002 and the tag dropped: the
//! CEK is unchanged and GCM's keystream is exactly that CTR keystream, so each flipped
//! ciphertext bit flips the same plaintext bit (a failed report becomes a success). Such
//! input is [`CoseError::UnauthenticatedContent`] (non-AEAD) or
//! [`CoseError::MissingAlgorithm`] (AEAD named only in the unprotected header). A128CTR is
//! accepted only for a detached ciphertext (SUIT_Encryption_Info, draft-ietf-suit-firmware-
//! encryption), where the manifest signature covers the SUIT_Encryption_Info and the image
//! digest authenticates the result; [`encrypt_esdh`] refuses to produce it.
use alloc::vec;
use alloc::vec::Vec;

use ciborium::Value;
use zeroize::Zeroizing;

use crate::alg::Curve;
use crate::error::CoseError;
use crate::key::{PrivateKey, PublicKey};
use crate::provider::CryptoProvider;

/// `other` of the KDF context for SUIT payloads.
pub const SUIT_PAYLOAD_ENCRYPTION: &[u8] = b"SUIT Payload Encryption";
/// `other` of the KDF context for SUIT reports sent by a TEEP Agent.
pub const SUIT_REPORT_ENCRYPTION: &[u8] = b"SUIT Report Encryption";
/// `other` of the KDF context for encrypted EATs.
pub const EAT_ENCRYPTION: &[u8] = b"EAT Encryption";

const TAG_ENCRYPT: u64 = 96;
const TAG_ENCRYPT0: u64 = 16;
const ALG_A128KW: i64 = -3;
const ALG_ECDH_ES_A128KW: i64 = -29;
const HDR_ALG: i64 = 1;
const HDR_KID: i64 = 4;
const HDR_IV: i64 = 5;
const HDR_EPHEMERAL_KEY: i64 = -1;
const HDR_SALT: i64 = -20;

/// Content encryption algorithms. The default is A128GCM (the SUIT/TEEP profile's AEAD):
/// EATs and SUIT reports need one that authenticates the content itself, since nothing else
/// signs the ciphertext.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentAlgorithm {
    /// AES-128-GCM (1), 12-byte IV, 16-byte tag appended to the ciphertext.
    #[default]
    A128Gcm,
    /// AES-256-GCM (3), 12-byte IV, 16-byte tag appended to the ciphertext.
    A256Gcm,
    /// AES-128-CTR (-65534), 16-byte initial counter block, no integrity: detached SUIT
    /// payloads only.
    A128Ctr,
}

impl ContentAlgorithm {
    /// The COSE algorithm id (RFC 9053 Table 9 for AES-GCM; -65534 from the IANA COSE
    /// registry for A128CTR).
    pub const fn cose_id(self) -> i64 {
        match self {
            Self::A128Gcm => 1,
            Self::A256Gcm => 3,
            Self::A128Ctr => -65534,
        }
    }

    /// The content algorithm a protected `alg` names, `None` for any other id.
    pub fn from_cose_id(id: i64) -> Option<Self> {
        match id {
            1 => Some(Self::A128Gcm),
            3 => Some(Self::A256Gcm),
            -65534 => Some(Self::A128Ctr),
            _ => None,
        }
    }

    /// Does the algorithm authenticate the ciphertext (AEAD)? Only those may carry an
    /// attached ciphertext.
    pub const fn is_aead(self) -> bool {
        match self {
            Self::A128Gcm | Self::A256Gcm => true,
            Self::A128Ctr => false,
        }
    }

    const fn iv_len(self) -> usize {
        match self {
            Self::A128Gcm | Self::A256Gcm => 12,
            Self::A128Ctr => 16,
        }
    }

    /// The CEK length the algorithm names: a CEK of another length is refused rather than
    /// letting the backend silently switch between AES-128 and AES-256.
    const fn key_len(self) -> usize {
        match self {
            Self::A128Gcm | Self::A128Ctr => 16,
            Self::A256Gcm => 32,
        }
    }

    /// Refuses a non-AEAD where the ciphertext must authenticate itself.
    fn require_aead(self) -> Result<(), CoseError> {
        if self.is_aead() {
            Ok(())
        } else {
            Err(CoseError::UnauthenticatedContent {
                alg: self.cose_id(),
            })
        }
    }
}

/// A key the recipient holds.
pub enum DecryptionKey {
    /// Static P-256 key for ECDH-ES+A128KW recipients; used only if its own `alg`/`key_ops`
    /// allow that agreement (absent, or ECDH-ES+A128KW and `derive key`/`derive bits`).
    EcdhEs(PrivateKey),
    /// Pre-shared 16-byte KEK for A128KW recipients, with an optional kid to select it.
    A128Kw {
        /// The key-encryption key (RFC 3394 AES key wrap), zeroized on drop.
        kek: Zeroizing<Vec<u8>>,
        /// When set, a recipient naming another `kid` is not tried with this KEK (one with
        /// no `kid` still is).
        kid: Option<Vec<u8>>,
    },
}

fn malformed(what: &str) -> CoseError {
    CoseError::Malformed(what.into())
}

fn parse(bytes: &[u8]) -> Result<Value, CoseError> {
    ciborium::de::from_reader(bytes).map_err(|_| malformed("not CBOR"))
}

fn encode(v: &Value) -> Result<Vec<u8>, CoseError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).map_err(|_| CoseError::Crypto("CBOR encoding"))?;
    Ok(out)
}

/// A header map as (label, value) pairs.
struct Headers(Vec<(Value, Value)>);

impl Headers {
    fn from_value(v: Value) -> Result<Self, CoseError> {
        match v {
            Value::Map(m) => Ok(Self(m)),
            _ => Err(malformed("header is not a map")),
        }
    }

    /// Decodes a protected header bstr (empty bstr = empty map).
    fn from_protected(bytes: &[u8]) -> Result<Self, CoseError> {
        if bytes.is_empty() {
            return Ok(Self(Vec::new()));
        }
        Self::from_value(parse(bytes)?)
    }

    fn get(&self, label: i64) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.as_integer().and_then(|i| i64::try_from(i).ok()) == Some(label))
            .map(|(_, v)| v)
    }

    fn int(&self, label: i64) -> Result<Option<i64>, CoseError> {
        self.get(label)
            .map(|v| {
                v.as_integer()
                    .and_then(|i| i64::try_from(i).ok())
                    .ok_or_else(|| malformed("header value is not an integer"))
            })
            .transpose()
    }

    fn bytes(&self, label: i64) -> Result<Option<&[u8]>, CoseError> {
        self.get(label)
            .map(|v| {
                v.as_bytes()
                    .map(Vec::as_slice)
                    .ok_or_else(|| malformed("header value is not a byte string"))
            })
            .transpose()
    }
}

/// Which header bucket a layer's alg came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Protected,
    Unprotected,
}

/// The alg of a layer and where it sits; present in both is malformed.
fn layer_alg(protected: &Headers, unprotected: &Headers) -> Result<(i64, Bucket), CoseError> {
    match (protected.int(HDR_ALG)?, unprotected.int(HDR_ALG)?) {
        (Some(_), Some(_)) => Err(malformed("alg in both protected and unprotected headers")),
        (Some(a), None) => Ok((a, Bucket::Protected)),
        (None, Some(a)) => Ok((a, Bucket::Unprotected)),
        (None, None) => Err(CoseError::MissingAlgorithm),
    }
}

/// Strips an optional expected tag and returns the array items.
fn untag_array(v: Value, tag: u64, len: usize) -> Result<Vec<Value>, CoseError> {
    match v {
        Value::Tag(t, inner) if t == tag => array(*inner, len),
        Value::Tag(..) => Err(malformed("unexpected COSE tag")),
        other => array(other, len),
    }
}

fn array(v: Value, len: usize) -> Result<Vec<Value>, CoseError> {
    match v {
        Value::Array(items) if items.len() == len => Ok(items),
        _ => Err(malformed("COSE structure has the wrong shape")),
    }
}

fn take_bytes(v: Value, what: &str) -> Result<Vec<u8>, CoseError> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(malformed(what)),
    }
}

/// The COSE_KDF_Context of firmware-encryption: AlgorithmID is the key-wrap algorithm,
/// PartyU/V are all nil, SuppPubInfo carries the recipient's protected bstr as received.
fn kdf_context(recipient_protected: &[u8], other: &[u8]) -> Result<Vec<u8>, CoseError> {
    let nil3 = || Value::Array(vec![Value::Null, Value::Null, Value::Null]);
    encode(&Value::Array(vec![
        Value::from(ALG_A128KW),
        nil3(),
        nil3(),
        Value::Array(vec![
            Value::from(128),
            Value::Bytes(recipient_protected.to_vec()),
            Value::Bytes(other.to_vec()),
        ]),
    ]))
}

fn derive_kek(
    provider: &dyn CryptoProvider,
    private: &PrivateKey,
    ephemeral: &PublicKey,
    salt: &[u8],
    recipient_protected: &[u8],
    other: &[u8],
) -> Result<Zeroizing<[u8; 16]>, CoseError> {
    let z = provider.ecdh_p256(private, ephemeral)?;
    let info = kdf_context(recipient_protected, other)?;
    let mut kek = Zeroizing::new([0u8; 16]);
    provider.hkdf_sha256(z.as_slice(), salt, &info, kek.as_mut_slice())?;
    Ok(kek)
}

/// Tries to recover the CEK from one recipient with any of the keys.
fn unwrap_cek(
    provider: &dyn CryptoProvider,
    recipient: Value,
    keys: &[DecryptionKey],
    other: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CoseError> {
    let mut items = array(recipient, 3)?.into_iter();
    let (Some(p), Some(u), Some(c)) = (items.next(), items.next(), items.next()) else {
        return Err(malformed("COSE_recipient has the wrong shape"));
    };
    let protected_bytes = take_bytes(p, "recipient protected header is not a bstr")?;
    let protected = Headers::from_protected(&protected_bytes)?;
    let unprotected = Headers::from_value(u)?;
    let wrapped = take_bytes(c, "recipient ciphertext is not a bstr")?;
    let kid = unprotected.bytes(HDR_KID)?;
    match layer_alg(&protected, &unprotected)?.0 {
        ALG_A128KW => {
            if !protected.0.is_empty() {
                return Err(malformed(
                    "A128KW recipient must have an empty protected header",
                ));
            }
            for key in keys {
                if let DecryptionKey::A128Kw { kek, kid: key_kid } = key {
                    if let (Some(a), Some(b)) = (kid, key_kid.as_deref())
                        && a != b
                    {
                        continue;
                    }
                    if let Ok(cek) = provider.aes_kw_unwrap(kek, &wrapped) {
                        return Ok(cek);
                    }
                }
            }
            Err(CoseError::DecryptionFailed)
        }
        ALG_ECDH_ES_A128KW => {
            let eph = unprotected
                .get(HDR_EPHEMERAL_KEY)
                .ok_or_else(|| malformed("ECDH-ES recipient without ephemeral key"))?;
            let ephemeral = PublicKey::from_cose_key_bytes(&encode(eph)?)?;
            let salt = protected
                .bytes(HDR_SALT)?
                .or(unprotected.bytes(HDR_SALT)?)
                .unwrap_or(&[]);
            for key in keys {
                // A static key whose own alg/key_ops rule out this agreement is skipped,
                // like a key of the wrong kind.
                if let DecryptionKey::EcdhEs(private) = key
                    && private
                        .key_use()
                        .check_agreement(ALG_ECDH_ES_A128KW)
                        .is_ok()
                {
                    let kek =
                        derive_kek(provider, private, &ephemeral, salt, &protected_bytes, other)?;
                    if let Ok(cek) = provider.aes_kw_unwrap(kek.as_slice(), &wrapped) {
                        return Ok(cek);
                    }
                }
            }
            Err(CoseError::DecryptionFailed)
        }
        other => Err(CoseError::UnsupportedAlgorithm(other)),
    }
}

/// Applies the content algorithm with `cek`.
fn open_content(
    provider: &dyn CryptoProvider,
    alg: ContentAlgorithm,
    cek: &[u8],
    iv: &[u8],
    protected_bytes: &[u8],
    context: &str,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CoseError> {
    if iv.len() != alg.iv_len() {
        return Err(malformed("IV length does not fit the content algorithm"));
    }
    if cek.len() != alg.key_len() {
        return Err(malformed(
            "content key length does not fit the content algorithm",
        ));
    }
    match alg {
        ContentAlgorithm::A128Gcm | ContentAlgorithm::A256Gcm => {
            let aad = enc_structure(context, protected_bytes)?;
            provider
                .aes_gcm_open(cek, iv, &aad, ciphertext)
                .map(Zeroizing::new)
                .map_err(|_| CoseError::DecryptionFailed)
        }
        ContentAlgorithm::A128Ctr => {
            if !protected_bytes.is_empty() {
                return Err(malformed("A128CTR requires an empty protected header"));
            }
            let mut data = Zeroizing::new(ciphertext.to_vec());
            provider.aes_ctr_apply(cek, iv, data.as_mut_slice())?;
            Ok(data)
        }
    }
}

fn enc_structure(context: &str, protected_bytes: &[u8]) -> Result<Vec<u8>, CoseError> {
    encode(&Value::Array(vec![
        Value::Text(context.into()),
        Value::Bytes(protected_bytes.to_vec()),
        Value::Bytes(Vec::new()),
    ]))
}

/// Outer layer of a COSE_Encrypt/Encrypt0: headers, content algorithm, IV, ciphertext.
struct Outer {
    protected_bytes: Vec<u8>,
    alg: ContentAlgorithm,
    alg_bucket: Bucket,
    iv: Vec<u8>,
    ciphertext: Option<Vec<u8>>,
}

impl Outer {
    /// The ciphertext to open: the embedded one, or `detached` for a nil slot. An embedded
    /// ciphertext has nothing but the content algorithm to authenticate it, so that must be
    /// an AEAD named in the protected header (see the module doc).
    fn ciphertext<'a>(&'a self, detached: Option<&'a [u8]>) -> Result<&'a [u8], CoseError> {
        match (&self.ciphertext, detached) {
            (Some(c), None) => {
                self.alg.require_aead()?;
                if self.alg_bucket != Bucket::Protected {
                    return Err(CoseError::MissingAlgorithm);
                }
                Ok(c)
            }
            (None, Some(c)) => Ok(c),
            _ => Err(malformed("ciphertext must be either embedded or detached")),
        }
    }
}

fn outer(items: &mut impl Iterator<Item = Value>) -> Result<Outer, CoseError> {
    let (Some(p), Some(u), Some(c)) = (items.next(), items.next(), items.next()) else {
        return Err(malformed("COSE_Encrypt has the wrong shape"));
    };
    let protected_bytes = take_bytes(p, "protected header is not a bstr")?;
    let protected = Headers::from_protected(&protected_bytes)?;
    let unprotected = Headers::from_value(u)?;
    let (id, alg_bucket) = layer_alg(&protected, &unprotected)?;
    let alg = ContentAlgorithm::from_cose_id(id).ok_or(CoseError::UnsupportedAlgorithm(id))?;
    let iv = protected
        .bytes(HDR_IV)?
        .or(unprotected.bytes(HDR_IV)?)
        .ok_or_else(|| malformed("IV missing"))?
        .to_vec();
    let ciphertext = match c {
        Value::Null => None,
        Value::Bytes(b) => Some(b),
        _ => return Err(malformed("ciphertext is neither bstr nor nil")),
    };
    Ok(Outer {
        protected_bytes,
        alg,
        alg_bucket,
        iv,
        ciphertext,
    })
}

/// Decrypts a COSE_Encrypt (tag 96 or untagged). `detached` is the ciphertext when the
/// structure carries `nil` (SUIT_Encryption_Info); `other` is the KDF context's `other`
/// (e.g. [`SUIT_PAYLOAD_ENCRYPTION`]). Recipients are tried in order with every key.
///
/// With an embedded ciphertext (`detached` = `None`, the counterpart of [`encrypt_esdh`])
/// the content algorithm must be an AEAD in the protected header:
/// [`CoseError::UnauthenticatedContent`] for A128CTR, [`CoseError::MissingAlgorithm`] for an
/// AEAD named only in the unprotected header; these are checked before any key is used.
pub fn decrypt(
    provider: &dyn CryptoProvider,
    cose_encrypt: &[u8],
    detached: Option<&[u8]>,
    keys: &[DecryptionKey],
    other: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CoseError> {
    let mut items = untag_array(parse(cose_encrypt)?, TAG_ENCRYPT, 4)?.into_iter();
    let outer = outer(&mut items)?;
    let Some(Value::Array(recipients)) = items.next() else {
        return Err(malformed("recipients are not an array"));
    };
    let ciphertext = outer.ciphertext(detached)?;
    let mut last = malformed("no recipients");
    for recipient in recipients {
        match unwrap_cek(provider, recipient, keys, other) {
            Ok(cek) => {
                return open_content(
                    provider,
                    outer.alg,
                    &cek,
                    &outer.iv,
                    &outer.protected_bytes,
                    "Encrypt",
                    ciphertext,
                );
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Decrypts a COSE_Encrypt0 (tag 16 or untagged) with a known content key; an embedded
/// ciphertext needs a protected AEAD, as in [`decrypt`].
pub fn decrypt0(
    provider: &dyn CryptoProvider,
    cose_encrypt0: &[u8],
    detached: Option<&[u8]>,
    cek: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CoseError> {
    let mut items = untag_array(parse(cose_encrypt0)?, TAG_ENCRYPT0, 3)?.into_iter();
    let outer = outer(&mut items)?;
    let ciphertext = outer.ciphertext(detached)?;
    open_content(
        provider,
        outer.alg,
        cek,
        &outer.iv,
        &outer.protected_bytes,
        "Encrypt0",
        ciphertext,
    )
}

/// Result of [`encrypt_detached_esdh`].
pub struct Encrypted {
    /// The tagged COSE_Encrypt with `nil` ciphertext (a SUIT_Encryption_Info).
    pub cose_encrypt: Vec<u8>,
    /// The detached ciphertext (the SUIT payload to ship alongside).
    pub ciphertext: Vec<u8>,
}

/// Encrypts `plaintext` to a P-256 recipient with ECDH-ES+A128KW (fresh ephemeral key and
/// CEK), detached ciphertext, as a SUIT_Encryption_Info.
pub fn encrypt_detached_esdh(
    provider: &dyn CryptoProvider,
    recipient: &PublicKey,
    alg: ContentAlgorithm,
    plaintext: &[u8],
    other: &[u8],
) -> Result<Encrypted, CoseError> {
    let (layers, ciphertext) = seal_esdh(provider, recipient, alg, plaintext, other)?;
    Ok(Encrypted {
        cose_encrypt: layers.encode()?,
        ciphertext,
    })
}

/// Encrypts `plaintext` to a P-256 recipient with ECDH-ES+A128KW (fresh ephemeral key and
/// CEK) and returns a tagged COSE_Encrypt that carries the ciphertext (TEEP §12: EATs and
/// SUIT reports MUST NOT be detached). `other` binds the purpose, e.g.
/// [`SUIT_REPORT_ENCRYPTION`] or [`EAT_ENCRYPTION`]. The tag (96) stays on because an
/// untagged COSE_Encrypt and an untagged COSE_Sign1 are both 4-element arrays, and a
/// receiver must tell an encrypted EAT from a signed one.
///
/// # Errors
/// [`CoseError::UnauthenticatedContent`] for a non-AEAD `alg` (A128CTR): an attached
/// ciphertext must authenticate itself, and [`decrypt`] would refuse it.
/// `AlgorithmKeyMismatch` / `KeyOpNotPermitted` when the recipient key's own `alg` or
/// `key_ops` rule out ECDH-ES+A128KW (e.g. a signature key); `InvalidKey` if not P-256.
pub fn encrypt_esdh(
    provider: &dyn CryptoProvider,
    recipient: &PublicKey,
    alg: ContentAlgorithm,
    plaintext: &[u8],
    other: &[u8],
) -> Result<Vec<u8>, CoseError> {
    alg.require_aead()?;
    let (mut layers, ciphertext) = seal_esdh(provider, recipient, alg, plaintext, other)?;
    layers.content = Value::Bytes(ciphertext);
    layers.encode()
}

/// A COSE_Encrypt being built; `content` is the ciphertext slot (bstr or nil).
struct Layers {
    protected: Vec<u8>,
    unprotected: Vec<(Value, Value)>,
    content: Value,
    recipient: Value,
}

impl Layers {
    fn encode(self) -> Result<Vec<u8>, CoseError> {
        encode(&Value::Tag(
            TAG_ENCRYPT,
            alloc::boxed::Box::new(Value::Array(vec![
                Value::Bytes(self.protected),
                Value::Map(self.unprotected),
                self.content,
                Value::Array(vec![self.recipient]),
            ])),
        ))
    }
}

/// The two ES-DH layers shared by the detached and attached forms: CEK wrapped under an
/// ECDH+HKDF KEK (layer 1) and the content encrypted under the CEK (layer 0). Returns the
/// layers with a `nil` content slot (the detached form), and the ciphertext.
fn seal_esdh(
    provider: &dyn CryptoProvider,
    recipient: &PublicKey,
    alg: ContentAlgorithm,
    plaintext: &[u8],
    other: &[u8],
) -> Result<(Layers, Vec<u8>), CoseError> {
    if recipient.curve() != Curve::P256 {
        return Err(CoseError::InvalidKey(
            "ECDH-ES+A128KW needs a P-256 key".into(),
        ));
    }
    recipient.key_use().check_agreement(ALG_ECDH_ES_A128KW)?;
    let ephemeral = PrivateKey::generate(Curve::P256)?;
    let mut cek = Zeroizing::new(vec![0u8; alg.key_len()]);
    provider.fill_random(cek.as_mut_slice())?;
    let mut iv = vec![0u8; alg.iv_len()];
    provider.fill_random(&mut iv)?;

    let recipient_protected = encode(&Value::Map(vec![(
        Value::from(HDR_ALG),
        Value::from(ALG_ECDH_ES_A128KW),
    )]))?;
    let z = provider.ecdh_p256(&ephemeral, recipient)?;
    let info = kdf_context(&recipient_protected, other)?;
    let mut kek = Zeroizing::new([0u8; 16]);
    provider.hkdf_sha256(z.as_slice(), &[], &info, kek.as_mut_slice())?;
    let wrapped = provider.aes_kw_wrap(kek.as_slice(), cek.as_slice())?;
    let eph_key: Value = parse(&ephemeral.public_key().to_cose_key_bytes())?;

    let (protected, unprotected) = match alg {
        ContentAlgorithm::A128Gcm | ContentAlgorithm::A256Gcm => (
            encode(&Value::Map(vec![(
                Value::from(HDR_ALG),
                Value::from(alg.cose_id()),
            )]))?,
            vec![(Value::from(HDR_IV), Value::Bytes(iv.clone()))],
        ),
        ContentAlgorithm::A128Ctr => (
            Vec::new(),
            vec![
                (Value::from(HDR_ALG), Value::from(alg.cose_id())),
                (Value::from(HDR_IV), Value::Bytes(iv.clone())),
            ],
        ),
    };
    let ciphertext = match alg {
        ContentAlgorithm::A128Gcm | ContentAlgorithm::A256Gcm => {
            let aad = enc_structure("Encrypt", &protected)?;
            provider.aes_gcm_seal(cek.as_slice(), &iv, &aad, plaintext)?
        }
        ContentAlgorithm::A128Ctr => {
            let mut data = plaintext.to_vec();
            provider.aes_ctr_apply(cek.as_slice(), &iv, &mut data)?;
            data
        }
    };
    let recipient = Value::Array(vec![
        Value::Bytes(recipient_protected),
        Value::Map(vec![(Value::from(HDR_EPHEMERAL_KEY), eph_key)]),
        Value::Bytes(wrapped),
    ]);
    let layers = Layers {
        protected,
        unprotected,
        content: Value::Null,
        recipient,
    };
    Ok((layers, ciphertext))
}
