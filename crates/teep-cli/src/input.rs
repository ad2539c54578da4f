//! Reading the files the sub-commands take: raw bytes, CBOR as binary or hex text, keys.

use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result};
use teep_cose::{ImportNotice, PrivateKey, PublicKey};

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
