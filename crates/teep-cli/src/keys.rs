//! `teep keys` sub-commands: make, convert, fingerprint and certify keys. Every key-taking
//! argument accepts COSE_Key (binary or hex) and PEM; the work is done by teep-cose and rcgen.
use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm,
};
use teep_cose::{Curve, PrivateKey, PublicKey};
use time::{Duration, OffsetDateTime};

use crate::input::{Symmetric, public_key, warn_import};
use crate::print_line;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Generate a key pair: private COSE_Key to FILE, public COSE_Key to FILE.pub; prints the
    /// RFC 9679 thumbprint (the kid of every signature by this key). A symmetric key
    /// (hmac256, a128kw) is one COSE_Key `{kty: Symmetric, alg, k}` to FILE (owner-only),
    /// and nothing is printed.
    Generate {
        #[arg(long, value_enum, default_value_t = KeyAlg::Esp256)]
        alg: KeyAlg,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a key's RFC 9679 thumbprint in lowercase hex (COSE_Key binary or hex, or PEM:
    /// SPKI, PKCS#8, SEC1, certificate).
    Thumbprint { file: PathBuf },
    /// Convert a PEM key to COSE_Key: a private key writes FILE and FILE.pub, a public key
    /// (SPKI or certificate) writes FILE only.
    ImportPem {
        pem: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a P-256 CA: DIR/ca.key (PKCS#8 PEM) and DIR/ca.pem (self-signed certificate).
    Ca {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "teep CA")]
        name: String,
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Certify a public key (any accepted form) with a CA made by `teep keys ca`; writes the
    /// certificate as PEM.
    Certify {
        /// Directory holding ca.key and ca.pem.
        #[arg(long)]
        ca: PathBuf,
        key: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "teep signer")]
        name: String,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

/// Algorithms a generated key is meant for.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum KeyAlg {
    Esp256,
    Ed25519,
    Es384,
    /// HMAC 256/256 (COSE_Mac0 authentication of SUIT envelopes).
    Hmac256,
    /// AES-128 key wrap (KEK of A128KW-encrypted SUIT payloads).
    A128kw,
}

/// What a generated key is: a signing key pair on a curve, or a shared secret.
enum KeyKind {
    Pair(Curve),
    Secret(Symmetric),
}

impl KeyAlg {
    fn kind(self) -> KeyKind {
        match self {
            Self::Esp256 => KeyKind::Pair(Curve::P256),
            Self::Ed25519 => KeyKind::Pair(Curve::Ed25519),
            Self::Es384 => KeyKind::Pair(Curve::P384),
            Self::Hmac256 => KeyKind::Secret(Symmetric::Hmac256),
            Self::A128kw => KeyKind::Secret(Symmetric::A128Kw),
        }
    }
}

pub(crate) fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Generate { alg, out } => match alg.kind() {
            KeyKind::Pair(curve) => {
                let key = PrivateKey::generate(curve)?;
                write_key_pair(&key, &out)?;
                print_line(&hex::encode(key.public_key().thumbprint()))?;
            }
            KeyKind::Secret(use_) => {
                write_file(&out, &use_.generate(teep_cose::default_provider())?, true)?;
            }
        },
        Command::Thumbprint { file } => {
            let key = public_key(&file)?;
            print_line(&hex::encode(key.thumbprint()))?;
        }
        Command::ImportPem { pem, out } => {
            let text =
                fs::read_to_string(&pem).with_context(|| format!("reading {}", pem.display()))?;
            let public = match PrivateKey::from_pem_noting(&text) {
                Ok((key, notice)) => {
                    warn_import(&pem, notice);
                    write_key_pair(&key, &out)?;
                    key.public_key().clone()
                }
                Err(private_err) => match PublicKey::from_pem(&text) {
                    Ok(key) => {
                        write_file(&out, &key.to_cose_key_bytes(), false)?;
                        key
                    }
                    Err(public_err) if text.contains("PRIVATE KEY") => {
                        bail!("{}: {private_err} ({public_err})", pem.display())
                    }
                    Err(public_err) => bail!("{}: {public_err}", pem.display()),
                },
            };
            print_line(&hex::encode(public.thumbprint()))?;
        }
        Command::Ca { out, name, days } => make_ca(&out, &name, days)?,
        Command::Certify {
            ca,
            key,
            out,
            name,
            days,
        } => certify(&ca, &key, &out, &name, days)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a file; secrets are created owner-only (on Unix) so they never exist world-readable.
fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    options
        .open(path)
        .and_then(|mut f| f.write_all(data))
        .with_context(|| format!("writing {}", path.display()))
}

/// FILE gets the private COSE_Key, FILE.pub the public one.
fn write_key_pair(key: &PrivateKey, out: &Path) -> Result<()> {
    write_file(out, &key.to_cose_key_bytes(), true)?;
    let mut public_path = OsString::from(out.as_os_str());
    public_path.push(".pub");
    write_file(
        Path::new(&public_path),
        &key.public_key().to_cose_key_bytes(),
        false,
    )
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + Duration::days(i64::from(days));
}

fn make_ca(dir: &Path, name: &str, days: u32) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, days);
    let cert = params.self_signed(&key)?;
    write_file(&dir.join("ca.key"), key.serialize_pem().as_bytes(), true)?;
    write_file(&dir.join("ca.pem"), cert.pem().as_bytes(), false)?;
    print_line(&dir.join("ca.pem").display().to_string())
}

/// A public key rcgen can put in a certificate without holding its private half.
struct ForeignKey {
    key: PublicKey,
}

impl rcgen::PublicKeyData for ForeignKey {
    fn der_bytes(&self) -> &[u8] {
        self.key.as_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self.key.curve() {
            Curve::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Curve::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Curve::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

fn certify(ca_dir: &Path, key_file: &Path, out: &Path, name: &str, days: u32) -> Result<()> {
    let ca_key_path = ca_dir.join("ca.key");
    let ca_cert_path = ca_dir.join("ca.pem");
    let ca_key = KeyPair::from_pem(
        &fs::read_to_string(&ca_key_path)
            .with_context(|| format!("reading {}", ca_key_path.display()))?,
    )?;
    let ca_cert = fs::read_to_string(&ca_cert_path)
        .with_context(|| format!("reading {}", ca_cert_path.display()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_key)?;
    let key = public_key(key_file)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, days);
    let cert = params.signed_by(&ForeignKey { key }, &issuer)?;
    write_file(out, cert.pem().as_bytes(), false)
}
