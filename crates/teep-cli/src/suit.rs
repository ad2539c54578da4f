//! `teep suit` sub-commands: create, sign, verify, inspect and process SUIT manifests.
//!
//! Exit codes: 0 success; 1 the envelope was rejected (verify) or processing failed
//! (process; the state directory is unchanged); 2 usage or I/O errors.
//! Component IDs are written as `/`-separated segments; a segment `hex:..` is raw bytes,
//! anything else its UTF-8 text (`TEEP-Device/SecureFS/hex:8d82573a.../ta`).
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use teep_cose::encrypt::DecryptionKey;
use teep_cose::{CryptoProvider, TrustStore, default_provider};
use teep_suit::builder::{self, DependencySpec, ManifestSpec, PayloadLocation};
use teep_suit::dir::DirStorage;
use teep_suit::processor::{DeviceIdentity, Fetcher, KeyDecryptor, Processor};
use teep_suit::trust::{TrustAnchor, TrustAnchors};
use teep_suit::verify::{Anchors, authenticate, resolve_member};
use teep_suit::{ComponentId, VendorId};
use zeroize::Zeroizing;

use crate::input::{Symmetric, private_key, public_key, read, read_cbor, symmetric_key};
use crate::print_line;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Make an unsigned manifest for one Trusted Component (install, validate, invoke and
    /// uninstall sections).
    Create(CreateArgs),
    /// Add a COSE_Sign1 signature to an envelope.
    Sign(SignArgs),
    /// Check an envelope's signature, manifest digest and severed elements.
    Verify(VerifyArgs),
    /// Show an envelope as JSON (signature not checked).
    Inspect(InspectArgs),
    /// Run the Update procedure (or Uninstall with --uninstall) against a state directory
    /// and print the SUIT report as JSON.
    Process(ProcessArgs),
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    /// Component ID segments of the TC (repeat: one per segment; `hex:..` for bytes).
    #[arg(long = "component-id", required = true, num_args = 1..)]
    component_id: Vec<String>,
    /// Manifest component ID segments: where the device stores the manifest (repeat, like
    /// --component-id); never the component's path nor one above or under it. Default: the
    /// last component segment with `.suit` appended (`config.json` -> `config.json.suit`,
    /// `greeting` -> `greeting.suit`), except a TA's `ta` -> `suit`: one manifest ID per
    /// component ID.
    #[arg(long = "manifest-id", num_args = 1..)]
    manifest_id: Vec<String>,
    /// Manifest sequence number.
    #[arg(long)]
    seq: u64,
    /// The TC binary (integrated into the envelope unless --uri is given).
    #[arg(long)]
    payload: PathBuf,
    /// Fetch the payload from this URI instead; --payload then only gives digest and size.
    #[arg(long)]
    uri: Option<String>,
    #[arg(long = "vendor-id")]
    vendor_id: Option<String>,
    #[arg(long = "class-id")]
    class_id: Option<String>,
    /// Reference URI echoed in SUIT reports.
    #[arg(long = "reference-uri")]
    reference_uri: Option<String>,
    /// Encrypt the payload to this TEE public key (ECDH-ES+A128KW, A128GCM). The device
    /// fetches the ciphertext into a sibling component, the last segment with
    /// `.encrypted` appended (`config.json` -> `config.json.encrypted`), and decrypts it
    /// into the TC. With --uri the ciphertext to publish is written to OUT.payload.
    #[arg(long = "encrypt-to")]
    encrypt_to: Option<PathBuf>,
    /// A signed envelope this manifest depends on (integrated; repeatable).
    #[arg(long = "depends-on")]
    depends_on: Vec<PathBuf>,
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct SignArgs {
    /// Private key (COSE_Key binary or hex, or PEM).
    #[arg(long)]
    key: PathBuf,
    input: PathBuf,
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// TC signer public key (COSE_Key binary or hex, or PEM); repeatable.
    #[arg(long, required_unless_present = "mac_key")]
    key: Vec<PathBuf>,
    #[command(flatten)]
    mac: MacKeys,
    envelope: PathBuf,
}

/// Shared keys for envelopes authenticated with COSE_Mac0 instead of a signature.
#[derive(clap::Args)]
pub(crate) struct MacKeys {
    /// HMAC 256/256 key for COSE_Mac0 authentication blocks: a COSE_Key (binary or hex)
    /// with kty Symmetric (4), `k` of 32 bytes and, if any, alg 5 (see `teep keys generate
    /// --alg hmac256`); repeatable.
    #[arg(long = "mac-key")]
    mac_key: Vec<PathBuf>,
}

impl MacKeys {
    fn load(&self) -> Result<Zeroizing<Vec<Vec<u8>>>> {
        let mut keys = Zeroizing::new(Vec::with_capacity(self.mac_key.len()));
        for path in &self.mac_key {
            keys.push(symmetric_key(path, Symmetric::Hmac256)?.to_vec());
        }
        Ok(keys)
    }
}

#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    envelope: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct ProcessArgs {
    /// Device state directory (created if missing).
    #[arg(long = "state-dir")]
    state_dir: PathBuf,
    /// Trusted TC signer public key, optionally scoped: `KEY=PREFIX` lets the key's
    /// manifests install, update and delete only components under the `/`-separated
    /// component-ID PREFIX (repeat with the same KEY for several prefixes). A bare KEY is
    /// trusted for every component. Repeatable.
    #[arg(long, required_unless_present = "mac_key")]
    trust: Vec<String>,
    #[command(flatten)]
    mac: MacKeys,
    /// The TEE's private key for encrypted payloads (ECDH-ES+A128KW recipients).
    #[arg(long = "decrypt-key")]
    decrypt_key: Option<PathBuf>,
    /// A pre-shared KEK for encrypted payloads (A128KW recipients): a COSE_Key (binary or
    /// hex) with kty Symmetric (4), `k` of 16 bytes and, if any, alg -3 (see `teep keys
    /// generate --alg a128kw`); tried on every A128KW recipient. Repeatable.
    #[arg(long)]
    kek: Vec<PathBuf>,
    /// Serve fetched URIs from this directory, by the URI's last path segment.
    #[arg(long = "fetch-dir")]
    fetch_dir: Option<PathBuf>,
    /// Vendor IDs (UUID) the device asserts; repeatable.
    #[arg(long = "vendor-id")]
    vendor_id: Vec<String>,
    /// Class IDs (UUID) the device asserts; repeatable.
    #[arg(long = "class-id")]
    class_id: Vec<String>,
    /// Report nonce (hex), e.g. the TEEP token.
    #[arg(long)]
    nonce: Option<String>,
    /// Uninstall the manifest stored at this manifest component ID instead.
    #[arg(long, conflicts_with = "envelope")]
    uninstall: Option<String>,
    #[arg(required_unless_present = "uninstall")]
    envelope: Option<PathBuf>,
}

pub(crate) fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Create(a) => create(a),
        Command::Sign(a) => sign(a),
        Command::Verify(a) => verify(a),
        Command::Inspect(a) => inspect(a),
        Command::Process(a) => process(a),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn segment(s: &str) -> Result<Vec<u8>> {
    match s.strip_prefix("hex:") {
        Some(h) => hex::decode(h).with_context(|| format!("bad hex segment {s}")),
        None => Ok(s.as_bytes().to_vec()),
    }
}

fn component_id(segments: &[String]) -> Result<ComponentId> {
    Ok(ComponentId(
        segments.iter().map(|s| segment(s)).collect::<Result<_>>()?,
    ))
}

/// `--trust KEY[=PREFIX]` values as scoped anchors, one per key (named by thumbprint).
pub(crate) fn trust_anchors(args: &[String]) -> Result<TrustAnchors> {
    let mut anchors: Vec<TrustAnchor> = Vec::new();
    for arg in args {
        let (path, prefix) = match arg.rsplit_once('=') {
            Some((path, prefix)) if !Path::new(arg).exists() => (path, Some(prefix)),
            _ => (arg.as_str(), None),
        };
        let key = public_key(Path::new(path))?;
        let scope = match prefix {
            Some("") => {
                bail!("--trust {arg}: empty prefix (leave out `=` to trust every component)")
            }
            Some(p) => component_id(&p.split('/').map(String::from).collect::<Vec<_>>())?,
            None => ComponentId::default(),
        };
        match anchors.iter_mut().find(|a| a.keys.contains(&key)) {
            Some(a) => a.scope.push(scope),
            None => anchors.push(TrustAnchor::scoped(key, vec![scope])),
        }
    }
    let mut trust = TrustAnchors::new();
    for a in anchors {
        trust.add(a);
    }
    Ok(trust)
}

fn uuid(s: &str) -> Result<[u8; 16]> {
    let h: String = s.chars().filter(|c| *c != '-').collect();
    hex::decode(&h)
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{s} is not a UUID"))
}

fn create(a: CreateArgs) -> Result<ExitCode> {
    let provider = default_provider();
    let payload = read(&a.payload)?;
    let location = match &a.uri {
        Some(uri) => PayloadLocation::Uri(uri.clone()),
        None => PayloadLocation::Integrated("#tc".into()),
    };
    let dependencies = a
        .depends_on
        .iter()
        .map(|p| read_cbor(p).map(|envelope| DependencySpec { envelope }))
        .collect::<Result<_>>()?;
    let spec = ManifestSpec {
        component_id: component_id(&a.component_id)?,
        manifest_component_id: (!a.manifest_id.is_empty())
            .then(|| component_id(&a.manifest_id))
            .transpose()?,
        sequence_number: a.seq,
        payload,
        location,
        vendor_id: a.vendor_id.as_deref().map(uuid).transpose()?,
        class_id: a.class_id.as_deref().map(uuid).transpose()?,
        reference_uri: a.reference_uri,
        encrypt_to: a.encrypt_to.as_deref().map(public_key).transpose()?,
        dependencies,
    };
    check_manifest_id(&spec)?;
    let built = builder::build(&spec, provider)?;
    write(&a.out, &built.envelope)?;
    if let Some(ciphertext) = built.published_payload {
        let mut path = a.out.clone().into_os_string();
        path.push(".payload");
        write(Path::new(&path), &ciphertext)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A `--manifest-id` must not be a component's ID nor a path above or under one: a device
/// mapping component IDs to files could not store both.
fn check_manifest_id(spec: &ManifestSpec) -> Result<()> {
    let Some(manifest) = &spec.manifest_component_id else {
        return Ok(());
    };
    let mut stored = vec![spec.component_id.clone()];
    if spec.encrypt_to.is_some() {
        stored.push(builder::staging_id(&spec.component_id));
    }
    match stored
        .iter()
        .find(|c| c.0.starts_with(&manifest.0) || manifest.0.starts_with(&c.0))
    {
        Some(c) => bail!("--manifest-id {manifest} overlaps component {c}: give it a sibling path"),
        None => Ok(()),
    }
}

fn sign(a: SignArgs) -> Result<ExitCode> {
    let provider = default_provider();
    let key = private_key(&a.key)?;
    let signer = provider.signer(&key, key.default_algorithm())?;
    let signed = builder::sign(&read_cbor(&a.input)?, signer.as_ref(), provider)?;
    write(&a.out, &signed)?;
    Ok(ExitCode::SUCCESS)
}

fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let provider = default_provider();
    let mut trust = TrustStore::new();
    for k in &a.key {
        trust.add_key(public_key(k)?);
    }
    let bytes = read_cbor(&a.envelope)?;
    let mac_keys = a.mac.load()?;
    let anchors = Anchors {
        signers: &trust,
        mac_keys: &mac_keys,
        now: None,
    };
    let checked = authenticate(&bytes, provider, &anchors).and_then(|auth| {
        // Severed elements that travel with the envelope must match their digests.
        for s in auth.manifest.sections() {
            if s.severable()
                && let Some(member) = auth.manifest.member(s)
                && auth.envelope.severed_element(s.key()).is_some()
            {
                resolve_member(&auth.envelope, member, s.key(), provider)?;
            }
        }
        Ok(auth)
    });
    match checked {
        Ok(auth) => {
            let signer = auth.signer.as_ref().map_or_else(
                || "none (authenticated by a MAC key)".to_owned(),
                |k| hex::encode(k.thumbprint()),
            );
            print_line(&format!(
                "valid: manifest digest {}, sequence number {}, signer {}",
                hex::encode(auth.digest),
                auth.manifest.sequence_number,
                signer
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("invalid: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn inspect(a: InspectArgs) -> Result<ExitCode> {
    let json = teep_suit::json::envelope(&read_cbor(&a.envelope)?, default_provider())?;
    print_line(&serde_json::to_string_pretty(&json)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Serves URIs from a directory by their last path segment.
struct DirFetcher(PathBuf);

impl Fetcher for DirFetcher {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, String> {
        let name = uri.rsplit('/').next().unwrap_or(uri);
        if name.is_empty() || name == ".." {
            return Err(format!("no file name in {uri}"));
        }
        std::fs::read(self.0.join(name)).map_err(|e| format!("{name}: {e}"))
    }
}

fn process(a: ProcessArgs) -> Result<ExitCode> {
    let provider: &dyn CryptoProvider = default_provider();
    let trust = trust_anchors(&a.trust)?;
    let device = DeviceIdentity {
        vendor_ids: a
            .vendor_id
            .iter()
            .map(|v| uuid(v).map(|u| VendorId::Uuid(u.to_vec())))
            .collect::<Result<_>>()?,
        class_ids: a
            .class_id
            .iter()
            .map(|v| uuid(v).map(|u| u.to_vec()))
            .collect::<Result<_>>()?,
        ..DeviceIdentity::default()
    };
    let mut keys = Vec::new();
    if let Some(path) = &a.decrypt_key {
        keys.push(DecryptionKey::EcdhEs(private_key(path)?));
    }
    for path in &a.kek {
        keys.push(DecryptionKey::A128Kw {
            kek: symmetric_key(path, Symmetric::A128Kw)?,
            kid: None,
        });
    }
    let decryptor = (!keys.is_empty()).then_some(KeyDecryptor { provider, keys });
    let mac_keys = a.mac.load()?;
    let fetcher = a.fetch_dir.clone().map(DirFetcher);
    let mut processor = Processor::new(provider, &trust, &device);
    processor.mac_keys = &mac_keys;
    if let Some(d) = &decryptor {
        processor.decryptor = Some(d);
    }
    if let Some(f) = &fetcher {
        processor.fetcher = f;
    }
    let nonce = a
        .nonce
        .as_deref()
        .map(hex::decode)
        .transpose()
        .context("nonce must be hex")?;
    let mut storage = DirStorage::open(&a.state_dir)?;
    let outcome = match (&a.uninstall, &a.envelope) {
        (Some(id), _) => {
            let segments: Vec<String> = id.split('/').map(String::from).collect();
            processor.uninstall(&mut storage, &component_id(&segments)?, nonce.as_deref())
        }
        (None, Some(path)) => processor.install(&mut storage, &read_cbor(path)?, nonce.as_deref()),
        (None, None) => bail!("an envelope or --uninstall is required"),
    };
    print_line(&serde_json::to_string_pretty(&teep_suit::json::report(
        &outcome.report,
    ))?)?;
    Ok(if outcome.result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
