//! Host-side key import: PEM (SPKI, PKCS#8, SEC1, certificates), hex text, and the
//! "read whatever the user gave us" entry points used by the CLI.
use alloc::string::String;
use alloc::vec::Vec;

use der::oid::ObjectIdentifier;
use der::pem::LineEnding;
use der::{Decode, Encode};
use pkcs8::{DecodePrivateKey, EncodePrivateKey};
use spki::EncodePublicKey;

use crate::alg::Curve;
use crate::error::CoseError;
use crate::key::{PrivateKey, PublicKey};
use crate::usage::{KeyOp, KeyUse};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

fn pem_error(e: impl core::fmt::Display) -> CoseError {
    CoseError::InvalidKey(alloc::format!("PEM: {e}"))
}

/// The curve named by an X.509/PKCS#8 algorithm identifier.
fn curve_of(alg: &spki::AlgorithmIdentifierRef<'_>) -> Result<Curve, CoseError> {
    if alg.oid == ID_ED25519 {
        return Ok(Curve::Ed25519);
    }
    if alg.oid != ID_EC_PUBLIC_KEY {
        return Err(CoseError::InvalidKey(alloc::format!(
            "unsupported key algorithm {}",
            alg.oid
        )));
    }
    match alg.parameters_oid().map_err(pem_error)? {
        SECP256R1 => Ok(Curve::P256),
        SECP384R1 => Ok(Curve::P384),
        other => Err(CoseError::InvalidKey(alloc::format!(
            "unsupported EC curve {other}"
        ))),
    }
}

/// Splits text into its PEM blocks (a file may hold e.g. "EC PARAMETERS" before the key, or
/// a certificate chain). A block that does not decode is an error, not skipped.
fn pem_blocks(text: &str) -> impl Iterator<Item = Result<(String, Vec<u8>), CoseError>> + '_ {
    text.match_indices("-----BEGIN ").map(move |(start, _)| {
        let unterminated = || CoseError::invalid_key("PEM block without END line");
        let rest = text.get(start..).ok_or_else(unterminated)?;
        let end_marker = rest.find("-----END ").ok_or_else(unterminated)?;
        let after = rest.get(end_marker + 9..).ok_or_else(unterminated)?;
        let close = after.find("-----").ok_or_else(unterminated)?;
        let block = rest
            .get(..end_marker + 9 + close + 5)
            .ok_or_else(unterminated)?;
        let (label, der) = der::pem::decode_vec(block.as_bytes()).map_err(pem_error)?;
        Ok((String::from(label), der))
    })
}

fn public_from_spki_der(der: &[u8]) -> Result<PublicKey, CoseError> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(pem_error)?;
    let curve = curve_of(&spki.algorithm)?;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CoseError::invalid_key("public key bit string is not whole bytes"))?;
    PublicKey::from_bytes(curve, bits)
}

/// The subject public key of a DER certificate, restricted by the certificate's keyUsage
/// (RFC 5280 §4.2.1.3) when it has one, so that e.g. a key-agreement-only certificate never
/// verifies a signature (`KeyOpNotPermitted`). Without keyUsage the key is unrestricted.
pub(crate) fn public_from_cert_der(der: &[u8]) -> Result<PublicKey, CoseError> {
    let malformed = |e: der::Error| {
        CoseError::from(crate::error::CertificateError::Malformed(alloc::format!(
            "{e}"
        )))
    };
    let cert = x509_cert::Certificate::from_der(der).map_err(malformed)?;
    let tbs = cert.tbs_certificate();
    let spki = tbs.subject_public_key_info().to_der().map_err(pem_error)?;
    let key = public_from_spki_der(&spki)?;
    Ok(
        match tbs
            .get_extension::<x509_cert::ext::pkix::KeyUsage>()
            .map_err(malformed)?
        {
            Some((_critical, usage)) => key.with_key_use(key_use_of_cert(usage)),
            None => key,
        },
    )
}

/// The COSE `key_ops` of a certificate's public key from its keyUsage bits: only
/// digitalSignature verifies COSE signatures (nonRepudiation alone, keyCertSign and
/// cRLSign are for other signatures); keyAgreement derives, keyEncipherment wraps,
/// dataEncipherment encrypts.
fn key_use_of_cert(usage: x509_cert::ext::pkix::KeyUsage) -> KeyUse {
    let ops = [
        (usage.digital_signature(), &[KeyOp::Verify][..]),
        (
            usage.key_agreement(),
            &[KeyOp::DeriveKey, KeyOp::DeriveBits][..],
        ),
        (usage.key_encipherment(), &[KeyOp::WrapKey][..]),
        (usage.data_encipherment(), &[KeyOp::Encrypt][..]),
    ];
    let ops: Vec<KeyOp> = ops
        .into_iter()
        .filter(|(set, _)| *set)
        .flat_map(|(_, ops)| ops.iter().copied())
        .collect();
    KeyUse::new(None, Some(&ops))
}

fn private_from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, CoseError> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(pem_error)?;
    let curve = curve_of(&info.algorithm)?;
    let reject = |e: pkcs8::Error| pem_error(e);
    match curve {
        Curve::P256 => {
            let sk = p256::SecretKey::from_pkcs8_der(der).map_err(reject)?;
            PrivateKey::from_bytes(curve, &sk.to_bytes())
        }
        Curve::P384 => {
            let sk = p384::SecretKey::from_pkcs8_der(der).map_err(reject)?;
            PrivateKey::from_bytes(curve, &sk.to_bytes())
        }
        Curve::Ed25519 => {
            let sk = ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(reject)?;
            PrivateKey::from_bytes(curve, sk.as_bytes())
        }
    }
}

/// SEC1 "EC PRIVATE KEY": the curve is named inside, so try the curves we know.
fn private_from_sec1_der(der: &[u8]) -> Result<PrivateKey, CoseError> {
    if let Ok(sk) = p256::SecretKey::from_sec1_der(der) {
        return PrivateKey::from_bytes(Curve::P256, &sk.to_bytes());
    }
    if let Ok(sk) = p384::SecretKey::from_sec1_der(der) {
        return PrivateKey::from_bytes(Curve::P384, &sk.to_bytes());
    }
    Err(CoseError::invalid_key(
        "not a P-256 or P-384 SEC1 private key",
    ))
}

/// Something a key file did that was accepted although it is not what its format says.
/// This crate does not log: the caller (the CLI) shows it as a warning.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportNotice {
    /// A PKCS#8 `PrivateKeyInfo` under the SEC1 label "EC PRIVATE KEY" (some tools write
    /// that). It was read as PKCS#8: its algorithm identifier names the key type, so the
    /// wrong label changes nothing about which key it is.
    Pkcs8UnderEcPrivateKeyLabel,
}

impl core::fmt::Display for ImportNotice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Pkcs8UnderEcPrivateKeyLabel => f.write_str(
                "PEM block labelled EC PRIVATE KEY holds a PKCS#8 key; read as PKCS#8 \
                 (relabel it PRIVATE KEY)",
            ),
        }
    }
}

/// SEC1 is what the "EC PRIVATE KEY" label promises; a PKCS#8 key under it is taken with a
/// notice. If neither parses, the SEC1 error is the one reported.
fn private_from_ec_label(der: &[u8]) -> Result<(PrivateKey, Option<ImportNotice>), CoseError> {
    match private_from_sec1_der(der) {
        Ok(key) => Ok((key, None)),
        Err(sec1_err) => private_from_pkcs8_der(der)
            .map(|key| (key, Some(ImportNotice::Pkcs8UnderEcPrivateKeyLabel)))
            .map_err(|_| sec1_err),
    }
}

/// Which of a file's forms to read.
enum Want {
    Public,
    Private,
}

/// A key found in a PEM file.
enum PemKey {
    Public(PublicKey),
    Private(PrivateKey),
}

/// First key-bearing block of a PEM file, with a notice if it was read leniently.
fn read_pem(text: &str, want: Want) -> Result<(PemKey, Option<ImportNotice>), CoseError> {
    let mut found_block = false;
    for block in pem_blocks(text) {
        let (label, der) = block?;
        found_block = true;
        let key = match (label.as_str(), &want) {
            ("PUBLIC KEY", Want::Public) => (PemKey::Public(public_from_spki_der(&der)?), None),
            ("CERTIFICATE", Want::Public) => (PemKey::Public(public_from_cert_der(&der)?), None),
            ("PRIVATE KEY", _) => (PemKey::Private(private_from_pkcs8_der(&der)?), None),
            ("EC PRIVATE KEY", _) => {
                let (key, notice) = private_from_ec_label(&der)?;
                (PemKey::Private(key), notice)
            }
            _ => continue,
        };
        return Ok(key);
    }
    Err(CoseError::invalid_key(if found_block {
        "PEM holds no key of the expected kind"
    } else {
        "no PEM block found"
    }))
}

/// Forms of a key file other than PEM: binary CBOR or hex text of CBOR.
fn cbor_of(bytes: &[u8]) -> Result<Vec<u8>, CoseError> {
    let is_hex_text = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if is_hex_text {
        let digits: Vec<u8> = bytes
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        hex::decode(digits).map_err(|e| CoseError::InvalidKey(alloc::format!("hex: {e}")))
    } else {
        Ok(bytes.to_vec())
    }
}

/// The DER certificates of a PEM text, in file order (leaf first for a chain file): what
/// `SignOptions::x5chain` takes.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, CoseError> {
    let mut certs = Vec::new();
    for block in pem_blocks(pem) {
        let (label, der) = block?;
        if label == "CERTIFICATE" {
            certs.push(der);
        }
    }
    if certs.is_empty() {
        return Err(
            crate::error::CertificateError::Malformed("no CERTIFICATE in PEM".into()).into(),
        );
    }
    Ok(certs)
}

fn pem_text(bytes: &[u8]) -> Option<&str> {
    let text = core::str::from_utf8(bytes).ok()?;
    text.contains("-----BEGIN ").then_some(text)
}

impl PublicKey {
    /// SPKI "PUBLIC KEY" or "CERTIFICATE" PEM.
    pub fn from_pem(pem: &str) -> Result<Self, CoseError> {
        match read_pem(pem, Want::Public)?.0 {
            PemKey::Public(key) => Ok(key),
            PemKey::Private(_) => Err(CoseError::invalid_key(
                "PEM holds a private key where a public key was expected",
            )),
        }
    }

    /// SPKI "PUBLIC KEY" PEM.
    pub fn to_pem(&self) -> String {
        let der = self.to_spki_der();
        der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &der).unwrap_or_default()
    }

    /// SubjectPublicKeyInfo DER.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let der = match self.curve() {
            Curve::P256 => p256::PublicKey::from_sec1_bytes(self.as_bytes())
                .ok()
                .and_then(|k| k.to_public_key_der().ok()),
            Curve::P384 => p384::PublicKey::from_sec1_bytes(self.as_bytes())
                .ok()
                .and_then(|k| k.to_public_key_der().ok()),
            Curve::Ed25519 => <&[u8; 32]>::try_from(self.as_bytes())
                .ok()
                .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(b).ok())
                .and_then(|k| k.to_public_key_der().ok()),
        };
        // PublicKey is validated on construction, so encoding cannot fail.
        der.map(|d| d.into_vec()).unwrap_or_default()
    }

    /// Reads a file's contents in any accepted form: COSE_Key (binary CBOR or hex; private
    /// keys give their public half; `alg` and `key_ops` are kept) or PEM (SPKI, PKCS#8,
    /// SEC1: unrestricted; a certificate: restricted by its keyUsage, if any).
    pub fn from_any(bytes: &[u8]) -> Result<Self, CoseError> {
        Self::from_any_noting(bytes).map(|(key, _)| key)
    }

    /// [`PublicKey::from_any`], also returning what was accepted leniently (to show).
    pub fn from_any_noting(bytes: &[u8]) -> Result<(Self, Option<ImportNotice>), CoseError> {
        if let Some(text) = pem_text(bytes) {
            let (key, notice) = read_pem(text, Want::Public)?;
            let key = match key {
                PemKey::Public(key) => key,
                PemKey::Private(key) => key.public_key().clone(),
            };
            return Ok((key, notice));
        }
        Ok((Self::from_cose_key_bytes(&cbor_of(bytes)?)?, None))
    }
}

impl PrivateKey {
    /// PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY" PEM (a PKCS#8 key under the SEC1
    /// label is accepted too, see [`ImportNotice`]).
    pub fn from_pem(pem: &str) -> Result<Self, CoseError> {
        Self::from_pem_noting(pem).map(|(key, _)| key)
    }

    /// [`PrivateKey::from_pem`], also returning what was accepted leniently (to show).
    pub fn from_pem_noting(pem: &str) -> Result<(Self, Option<ImportNotice>), CoseError> {
        match read_pem(pem, Want::Private)? {
            (PemKey::Private(key), notice) => Ok((key, notice)),
            (PemKey::Public(_), _) => Err(CoseError::invalid_key("PEM holds no private key")),
        }
    }

    /// PKCS#8 "PRIVATE KEY" PEM.
    pub fn to_pkcs8_pem(&self) -> String {
        let der = match self.curve() {
            Curve::P256 => p256::SecretKey::from_slice(self.secret_bytes())
                .ok()
                .and_then(|k| k.to_pkcs8_der().ok()),
            Curve::P384 => p384::SecretKey::from_slice(self.secret_bytes())
                .ok()
                .and_then(|k| k.to_pkcs8_der().ok()),
            Curve::Ed25519 => <&[u8; 32]>::try_from(self.secret_bytes())
                .ok()
                .map(ed25519_dalek::SigningKey::from_bytes)
                .and_then(|k| k.to_pkcs8_der().ok()),
        };
        // PrivateKey is validated on construction, so encoding cannot fail.
        der.and_then(|d| d.to_pem("PRIVATE KEY", LineEnding::LF).ok())
            .map(|pem| String::from(pem.as_str()))
            .unwrap_or_default()
    }

    /// Reads a file's contents in any accepted form: COSE_Key (binary CBOR or hex; `alg`
    /// and `key_ops` are kept) or PEM (PKCS#8, SEC1; unrestricted).
    pub fn from_any(bytes: &[u8]) -> Result<Self, CoseError> {
        Self::from_any_noting(bytes).map(|(key, _)| key)
    }

    /// [`PrivateKey::from_any`], also returning what was accepted leniently (to show).
    pub fn from_any_noting(bytes: &[u8]) -> Result<(Self, Option<ImportNotice>), CoseError> {
        match pem_text(bytes) {
            Some(text) => Self::from_pem_noting(text),
            None => Ok((Self::from_cose_key_bytes(&cbor_of(bytes)?)?, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(std::format!("{VECTORS}/{path}")).unwrap()
    }

    const APPENDIX_E_THUMBPRINT: &str =
        "ca9e35f23b2b525fb4fc83f512b0dcac4ac29e457e873a5d6a7313f71690b33c";

    #[test]
    fn appendix_e_pems_give_the_published_thumbprint() {
        let private = PrivateKey::from_any(&read("teep/keys/suit_signer_p256.priv.pem")).unwrap();
        let public = PublicKey::from_any(&read("teep/keys/suit_signer_p256.pub.pem")).unwrap();
        assert_eq!(private.public_key(), &public);
        assert_eq!(hex::encode(public.thumbprint()), APPENDIX_E_THUMBPRINT);
        // The private PEM also names its public key, and hex COSE_Key files import too.
        let via_private =
            PublicKey::from_any(&read("teep/keys/suit_signer_p256.priv.pem")).unwrap();
        assert_eq!(via_private, public);
        let hex_file = read("suit/keys/suit-example-signer-p256.cose-key-private.hex");
        assert_eq!(
            PrivateKey::from_any(&hex_file).unwrap().secret_bytes(),
            private.secret_bytes()
        );
        // Binary COSE_Key.
        assert_eq!(
            PublicKey::from_any(&public.to_cose_key_bytes()).unwrap(),
            public
        );
    }

    #[test]
    fn suit_pems_match_their_cose_keys() {
        for name in ["suit-example-signer-p256", "fwenc-dependent-signer-p256"] {
            let pem = read(&std::format!("suit/keys/{name}.private.pem"));
            let cose = read(&std::format!("suit/keys/{name}.cose-key-private.hex"));
            assert_eq!(
                PrivateKey::from_any(&pem).unwrap().public_key(),
                PrivateKey::from_any(&cose).unwrap().public_key(),
                "{name}"
            );
        }
    }

    #[test]
    fn pem_round_trips_for_every_curve() {
        for curve in [Curve::P256, Curve::P384, Curve::Ed25519] {
            let key = PrivateKey::generate(curve).unwrap();
            let again = PrivateKey::from_pem(&key.to_pkcs8_pem()).unwrap();
            assert_eq!(again.secret_bytes(), key.secret_bytes());
            let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
            assert_eq!(&public, key.public_key());
        }
    }

    #[test]
    fn sec1_pem_after_ec_parameters_imports() {
        let key = PrivateKey::generate(Curve::P256).unwrap();
        let sk = p256::SecretKey::from_slice(key.secret_bytes()).unwrap();
        let sec1 = sk.to_sec1_pem(LineEnding::LF).unwrap();
        // What `openssl ecparam -genkey -name prime256v1` writes: parameters, then the key.
        let text = std::format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            sec1.as_str()
        );
        let again = PrivateKey::from_any(text.as_bytes()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
    }

    /// A PKCS#8 PEM with its label replaced by `label`.
    fn relabelled_pkcs8(key: &PrivateKey, label: &str) -> String {
        key.to_pkcs8_pem().replace("PRIVATE KEY", label)
    }

    #[test]
    fn pkcs8_under_the_ec_label_is_accepted_with_a_notice() {
        for curve in [Curve::P256, Curve::P384, Curve::Ed25519] {
            let key = PrivateKey::generate(curve).unwrap();
            // The right label: no notice.
            let (again, notice) = PrivateKey::from_pem_noting(&key.to_pkcs8_pem()).unwrap();
            assert_eq!(again.secret_bytes(), key.secret_bytes());
            assert_eq!(notice, None);
            // PKCS#8 under "EC PRIVATE KEY": the same key, and the notice.
            let mislabelled = relabelled_pkcs8(&key, "EC PRIVATE KEY");
            assert!(mislabelled.starts_with("-----BEGIN EC PRIVATE KEY-----"));
            let (again, notice) = PrivateKey::from_any_noting(mislabelled.as_bytes()).unwrap();
            assert_eq!(again.secret_bytes(), key.secret_bytes(), "{curve:?}");
            assert_eq!(notice, Some(ImportNotice::Pkcs8UnderEcPrivateKeyLabel));
            let (public, notice) = PublicKey::from_any_noting(mislabelled.as_bytes()).unwrap();
            assert_eq!(&public, key.public_key());
            assert_eq!(notice, Some(ImportNotice::Pkcs8UnderEcPrivateKeyLabel));
            assert_eq!(
                PrivateKey::from_pem(&mislabelled).unwrap().secret_bytes(),
                key.secret_bytes()
            );
        }
        // A real SEC1 key under its own label: no notice.
        let key = PrivateKey::generate(Curve::P256).unwrap();
        let sec1 = p256::SecretKey::from_slice(key.secret_bytes())
            .unwrap()
            .to_sec1_pem(LineEnding::LF)
            .unwrap();
        let (again, notice) = PrivateKey::from_pem_noting(sec1.as_str()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(notice, None);
    }

    #[test]
    fn garbage_under_the_ec_label_is_the_sec1_error() {
        // Neither SEC1 nor PKCS#8 (an SPKI): the error speaks of SEC1, what the label says.
        let key = PrivateKey::generate(Curve::P256).unwrap();
        let spki = key
            .public_key()
            .to_pem()
            .replace("PUBLIC KEY", "EC PRIVATE KEY");
        assert_eq!(
            PrivateKey::from_pem_noting(&spki).unwrap_err(),
            CoseError::InvalidKey("not a P-256 or P-384 SEC1 private key".into())
        );
        // A SEC1 key under the PKCS#8 label stays refused: the lenience is one way only.
        let sec1 = p256::SecretKey::from_slice(key.secret_bytes())
            .unwrap()
            .to_sec1_pem(LineEnding::LF)
            .unwrap()
            .replace("EC PRIVATE KEY", "PRIVATE KEY");
        assert!(matches!(
            PrivateKey::from_pem(&sec1),
            Err(CoseError::InvalidKey(_))
        ));
    }

    #[test]
    fn wrong_pem_kinds_are_typed_errors() {
        let public_pem = read("teep/keys/suit_signer_p256.pub.pem");
        let text = core::str::from_utf8(&public_pem).unwrap();
        assert!(matches!(
            PrivateKey::from_pem(text),
            Err(CoseError::InvalidKey(_))
        ));
        assert!(matches!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            Err(CoseError::InvalidKey(_))
        ));
        assert!(matches!(
            PublicKey::from_any(b"not a key"),
            Err(CoseError::Malformed(_))
        ));
    }
}
