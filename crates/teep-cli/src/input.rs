//! Reading the files the sub-commands take: raw bytes, CBOR as binary or hex text, keys.

use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use teep_cose::coset::{
    self, CborSerializable as _, KeyType, Label, RegisteredLabel, RegisteredLabelWithPrivate, iana,
};
use teep_cose::{CryptoProvider, ImportNotice, PrivateKey, PublicKey};
use zeroize::Zeroizing;

/// A file's bytes, with its path in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// A file's bytes, or standard input when there is no path or it is `-`.
pub(crate) fn read_or_stdin(path: Option<&Path>) -> Result<Vec<u8>> {
    match path {
        Some(path) if path.as_os_str() != "-" => read(path),
        _ => {
            let mut input = Vec::new();
            std::io::stdin()
                .read_to_end(&mut input)
                .context("cannot read standard input")?;
            Ok(input)
        }
    }
}

/// A CBOR file, binary or hex text.
pub(crate) fn read_cbor(path: &Path) -> Result<Vec<u8>> {
    read(path).map(hex_or_binary)
}

/// Hex text when every byte is a hex digit or whitespace and the digits pair up; binary
/// CBOR otherwise (a binary item made only of such bytes is rare, and is still read as
/// binary when its hex reading fails).
pub(crate) fn hex_or_binary(input: Vec<u8>) -> Vec<u8> {
    let looks_hex = input.iter().any(u8::is_ascii_hexdigit)
        && input
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if looks_hex {
        let digits: Vec<u8> = input
            .iter()
            .copied()
            .filter(u8::is_ascii_hexdigit)
            .collect();
        if let Ok(bytes) = hex::decode(digits) {
            return bytes;
        }
    }
    input
}

/// A public key file: COSE_Key (binary or hex) or PEM.
pub(crate) fn public_key(path: &Path) -> Result<PublicKey> {
    let (key, notice) = PublicKey::from_any_noting(&read(path)?)
        .with_context(|| format!("public key {}", path.display()))?;
    warn_import(path, notice);
    Ok(key)
}

/// A private key file: COSE_Key (binary or hex) or PEM.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKey> {
    let (key, notice) = PrivateKey::from_any_noting(&read(path)?)
        .with_context(|| format!("private key {}", path.display()))?;
    warn_import(path, notice);
    Ok(key)
}

/// Says on standard error what a key file did that its format does not allow but was
/// accepted anyway (a mislabelled PEM block), so that the file gets fixed.
pub(crate) fn warn_import(path: &Path, notice: Option<ImportNotice>) {
    if let Some(notice) = notice {
        // A closed stderr must not stop the command: the warning is advice.
        let _ = writeln!(
            std::io::stderr(),
            "teep: warning: {}: {notice}",
            path.display()
        );
    }
}

/// What a symmetric key is for: each use has one COSE algorithm, key size and key operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Symmetric {
    /// HMAC 256/256 for COSE_Mac0 authentication blocks.
    Hmac256,
    /// AES key wrap with a 128-bit KEK, for A128KW recipients of encrypted payloads.
    A128Kw,
}

impl Symmetric {
    pub(crate) const fn alg(self) -> iana::Algorithm {
        match self {
            Self::Hmac256 => iana::Algorithm::HMAC_256_256,
            Self::A128Kw => iana::Algorithm::A128KW,
        }
    }

    /// Bytes of `k`: a 128-bit KEK; an HMAC-256 key as long as the hash (RFC 9053 §3.1).
    pub(crate) const fn key_len(self) -> usize {
        match self {
            Self::Hmac256 => 32,
            Self::A128Kw => 16,
        }
    }

    /// The operation the CLI does with the key (checked when the key lists `key_ops`).
    const fn key_op(self) -> iana::KeyOperation {
        match self {
            Self::Hmac256 => iana::KeyOperation::MacVerify,
            Self::A128Kw => iana::KeyOperation::UnwrapKey,
        }
    }

    /// A new random key of this use as a COSE_Key `{1: 4, 3: alg, -1: k}`, encoded here
    /// (deterministically, keys in order) so that no copy of `k` is left unwiped.
    pub(crate) fn generate(self, provider: &dyn CryptoProvider) -> Result<Zeroizing<Vec<u8>>> {
        let mut k = Zeroizing::new(vec![0u8; self.key_len()]);
        provider.fill_random(&mut k)?;
        // alg as a CBOR integer: 5 is 0x05, -3 is 0x22.
        let alg = match self {
            Self::Hmac256 => 0x05,
            Self::A128Kw => 0x22,
        };
        let mut out = Zeroizing::new(vec![0xa3, 0x01, 0x04, 0x03, alg, 0x20]);
        // bstr header: 16 bytes fit the initial byte, 32 take one length byte.
        match self {
            Self::A128Kw => out.push(0x50),
            Self::Hmac256 => out.extend([0x58, 0x20]),
        }
        out.extend_from_slice(&k);
        Ok(out)
    }
}

/// A symmetric key file: a COSE_Key (binary or hex) with kty Symmetric (4) and `k`; its
/// `alg`, when present, must be the one of `use_`, its `key_ops`, when present, must allow
/// the use, and `k` must have the use's size. The key's `kid` is not used to select it:
/// a file holds one key, tried on every block or recipient of its algorithm.
pub(crate) fn symmetric_key(path: &Path, use_: Symmetric) -> Result<Zeroizing<Vec<u8>>> {
    let name = path.display();
    let bytes = Zeroizing::new(read_cbor(path)?);
    let key = coset::CoseKey::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{name}: not a COSE_Key: {e}"))?;
    let mut key = Zeroizing::new(SecretKey(key));
    let key = &mut key.0;
    if key.kty != KeyType::Assigned(iana::KeyType::Symmetric) {
        bail!(
            "{name}: not a symmetric COSE_Key (kty {:?}, want 4)",
            key.kty
        );
    }
    match &key.alg {
        None => {}
        Some(RegisteredLabelWithPrivate::Assigned(alg)) if *alg == use_.alg() => {}
        Some(alg) => bail!(
            "{name}: the key is for alg {}, not {} ({:?})",
            alg_number(alg),
            use_.alg() as i64,
            use_
        ),
    }
    if !key.key_ops.is_empty()
        && !key
            .key_ops
            .contains(&RegisteredLabel::Assigned(use_.key_op()))
    {
        bail!("{name}: the key's key_ops do not allow {:?}", use_.key_op());
    }
    let k = key
        .params
        .iter_mut()
        .find(|(label, _)| *label == Label::Int(iana::SymmetricKeyParameter::K as i64))
        .and_then(|(_, value)| value.as_bytes_mut())
        .map(std::mem::take)
        .with_context(|| format!("{name}: the COSE_Key has no k"))?;
    let k = Zeroizing::new(k);
    if k.len() != use_.key_len() {
        bail!(
            "{name}: k is {} bytes, {:?} needs {}",
            k.len(),
            use_,
            use_.key_len()
        );
    }
    Ok(k)
}

fn alg_number(alg: &coset::Algorithm) -> String {
    match alg {
        RegisteredLabelWithPrivate::Assigned(a) => (*a as i64).to_string(),
        RegisteredLabelWithPrivate::PrivateUse(a) => a.to_string(),
        RegisteredLabelWithPrivate::Text(t) => t.clone(),
    }
}

/// A parsed COSE_Key whose byte-string parameters are wiped when dropped.
struct SecretKey(coset::CoseKey);

impl zeroize::Zeroize for SecretKey {
    fn zeroize(&mut self) {
        for (_, value) in &mut self.0.params {
            if let Some(b) = value.as_bytes_mut() {
                b.zeroize();
            }
        }
    }
}
