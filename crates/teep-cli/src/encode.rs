//! `teep encode`: the JSON view `teep inspect` prints, back to CBOR, so that the JSON is a
//! two-way human form of the wire format.
//!
//! Without `--key`, a bare message view gives the bare message, and a COSE view the
//! envelope rebuilt from the `alg`, `kid` and signature bytes it carries (not checked: an
//! edited payload gives an envelope that no longer verifies). With `--key` (repeatable) the
//! message is signed afresh: one key gives a COSE_Sign1 (unless the view is a COSE_Sign),
//! several a COSE_Sign. The JSON reader and the encoder are teep-proto's.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use teep_cose::{Algorithm, SignOptions, Signer};
use teep_proto::json::{View, view_from_json};
use teep_proto::{CoseStructure, Numbering, sign_message, sign_message_multi};

use crate::input;
use crate::inspect::NumberingArg;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Numbers of TEEP message types, labels and error codes (those of the view).
    #[arg(long, value_enum, default_value = "26")]
    numbering: NumberingArg,
    /// Sign with this private key (COSE_Key or PEM); repeatable: several keys give a
    /// COSE_Sign with one signature each.
    #[arg(long, value_name = "KEYFILE")]
    key: Vec<PathBuf>,
    /// Signature algorithm for every key. Default: the view's `alg` for that signature,
    /// else the key's own algorithm.
    #[arg(long, value_enum, requires = "key")]
    alg: Option<AlgArg>,
    /// Write binary CBOR here; without it, lowercase hex goes to standard output.
    #[arg(short, long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// A JSON view (`teep inspect` output); `-` or nothing reads standard input.
    file: Option<PathBuf>,
}

/// The COSE signature algorithms teep-cose signs with.
#[derive(Clone, Copy, clap::ValueEnum)]
enum AlgArg {
    /// ECDSA P-256, fully specified (-9).
    Esp256,
    /// Ed25519, fully specified (-19).
    Ed25519,
    /// ECDSA P-256 with SHA-256, older peers (-7).
    Es256,
    /// EdDSA, older peers (-8).
    Eddsa,
    /// ECDSA P-384 (-35).
    Es384,
}

impl From<AlgArg> for Algorithm {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::Esp256 => Self::Esp256,
            AlgArg::Ed25519 => Self::Ed25519,
            AlgArg::Es256 => Self::Es256,
            AlgArg::Eddsa => Self::EdDsa,
            AlgArg::Es384 => Self::Es384,
        }
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = input::read_or_stdin(args.file.as_deref())?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).context("input is not a JSON document")?;
    let numbering = Numbering::from(args.numbering);
    let view = view_from_json(&json, numbering).map_err(|e| anyhow!("JSON view: {e}"))?;
    let bytes = if args.key.is_empty() {
        match &view {
            View::Bare(message) => message.encode(numbering)?,
            View::Cose(cose) => cose
                .to_cbor(numbering)
                .map_err(|e| anyhow!("JSON view: {e}"))?,
        }
    } else {
        sign(&view, numbering, &args)?
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => crate::print_line(&hex::encode(&bytes))?,
    }
    tracing::debug!(bytes = bytes.len(), "encoded");
    Ok(ExitCode::SUCCESS)
}

fn sign(view: &View, numbering: Numbering, args: &Args) -> anyhow::Result<Vec<u8>> {
    let provider = teep_cose::default_provider();
    let cose = match view {
        View::Cose(c) => Some(c),
        View::Bare(_) => None,
    };
    let mut signers: Vec<Box<dyn Signer>> = Vec::with_capacity(args.key.len());
    for (i, path) in args.key.iter().enumerate() {
        let key = input::private_key(path)?;
        let from_view = cose
            .and_then(|c| c.signatures.get(i))
            .and_then(|s| s.alg)
            .and_then(Algorithm::from_cose_id);
        let alg = args
            .alg
            .map(Algorithm::from)
            .or(from_view)
            .unwrap_or_else(|| key.default_algorithm());
        let signer = provider
            .signer(&key, alg)
            .with_context(|| format!("key {} with {alg:?}", path.display()))?;
        signers.push(signer);
    }
    let opts = SignOptions {
        tagged: cose.is_none_or(|c| c.tagged),
        ..SignOptions::default()
    };
    let multi = signers.len() > 1 || cose.is_some_and(|c| c.structure == CoseStructure::Sign);
    let message = view.message();
    let signed = match signers.as_slice() {
        [one] if !multi => sign_message(message, numbering, one.as_ref(), &opts)?,
        many => {
            let refs: Vec<&dyn Signer> = many.iter().map(AsRef::as_ref).collect();
            sign_message_multi(message, numbering, &refs, &opts)?
        }
    };
    // A closed stderr must not stop the command: this is a note.
    let _ = writeln!(
        std::io::stderr().lock(),
        "teep: signed with {} key(s)",
        signers.len()
    );
    Ok(signed)
}
