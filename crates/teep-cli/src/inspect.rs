//! `teep inspect`: shows what a CBOR item holds (a TEEP message, bare or COSE-signed, a
//! COSE_Key, a SUIT envelope, or anything else) as JSON or CBOR diagnostic notation.
//!
//! Input is binary CBOR or hex text. Every input first passes the strict pre-pass
//! (`teep_cbor::Profile::TEEP`), so that a bad input is reported once, with its byte offset,
//! before any decoder sees it. A COSE-signed item says `"verified": null` unless trust keys
//! are given (`--trust`); then `true` with the key and algorithm that verified, or `false`
//! with the reason. Only a signature that verified under a given key is `true`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use cbor_diag::{DataItem, Simple};
use serde_json::{Map, Value as Json, json};
use teep_cbor::{Profile, check};
use teep_cose::{PublicKey, TrustStore, VerifyContext};
use teep_proto::json::SignatureCheck;
use teep_proto::{Numbering, Unverified, UnverifiedCose};

use crate::input;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Numbers of TEEP message types, labels and error codes.
    #[arg(long, value_enum, default_value = "26")]
    numbering: NumberingArg,
    /// Print JSON (the default).
    #[arg(long, conflicts_with = "diag")]
    json: bool,
    /// Print CBOR diagnostic notation instead of JSON.
    #[arg(long)]
    diag: bool,
    /// A trusted public key (COSE_Key, binary or hex, or PEM); repeatable. COSE signatures
    /// are then checked and `verified` says whether one verified, with which key.
    #[arg(long, value_name = "KEY", conflicts_with = "diag")]
    trust: Vec<PathBuf>,
    /// Binary CBOR or hex text (whitespace ignored); `-` or nothing reads standard input.
    file: Option<PathBuf>,
}

/// `--numbering` (also of `teep tee serve`).
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum NumberingArg {
    /// draft-ietf-teep-protocol-26 and the IANA registry.
    #[value(name = "26")]
    Draft26,
    /// Drafts before -26 (older peers).
    #[value(name = "pre-26", alias = "pre26")]
    Pre26,
}

impl From<NumberingArg> for Numbering {
    fn from(arg: NumberingArg) -> Self {
        match arg {
            NumberingArg::Draft26 => Self::Draft26,
            NumberingArg::Pre26 => Self::Pre26,
        }
    }
}

/// The keys given with `--trust`, by the path they were given as.
struct Trust {
    keys: Vec<(String, PublicKey)>,
    store: TrustStore,
}

impl Trust {
    fn load(paths: &[PathBuf]) -> anyhow::Result<Self> {
        let mut store = TrustStore::new();
        let mut keys = Vec::with_capacity(paths.len());
        for path in paths {
            let key = input::public_key(path)?;
            store.add_key(key.clone());
            keys.push((path.display().to_string(), key));
        }
        Ok(Self { keys, store })
    }

    fn given(&self) -> bool {
        !self.keys.is_empty()
    }

    fn cx(&self) -> VerifyContext<'_> {
        VerifyContext::new(teep_cose::default_provider(), &self.store)
    }

    fn name_of(&self, signer: &PublicKey) -> Option<&str> {
        self.keys
            .iter()
            .find(|(_, key)| key == signer)
            .map(|(name, _)| name.as_str())
    }
}

/// What checking a signature gave: the key and COSE algorithm that verified, or why not.
type Outcome = Result<(PublicKey, i64), String>;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let trust = Trust::load(&args.trust)?;
    let bytes = input::hex_or_binary(input::read_or_stdin(args.file.as_deref())?);
    check(&bytes, &Profile::TEEP).map_err(|e| anyhow!("input is not valid CBOR: {e}"))?;
    // cbor-diag's own errors carry no offset; the pre-pass above already rejected what it
    // would, so a failure here is reported as is.
    let item = cbor_diag::parse_bytes(&bytes).map_err(|e| anyhow!("cannot parse CBOR: {e}"))?;
    if args.diag {
        crate::print_line(&item.to_diag_pretty())?;
    } else {
        let view = describe(&bytes, &item, args.numbering.into(), &trust)?;
        crate::print_line(&serde_json::to_string_pretty(&view)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Nested CBOR (a payload, a bstr-wrapped manifest) as a generic item, if it passes the same
/// pre-pass as the outer input; `None` shows it as hex instead.
fn parse_checked(bytes: &[u8]) -> Option<DataItem> {
    check(bytes, &Profile::TEEP).ok()?;
    cbor_diag::parse_bytes(bytes).ok()
}

/// COSE tags that wrap TEEP messages (RFC 9052): COSE_Sign1 and COSE_Sign.
const TAG_COSE_SIGN1: u64 = 18;
const TAG_COSE_SIGN: u64 = 98;
/// SUIT_Envelope_Tagged (draft-ietf-suit-manifest).
const TAG_SUIT_ENVELOPE: u64 = 107;
/// SUIT_Envelope keys of the authentication wrapper and the manifest.
const SUIT_AUTHENTICATION: u64 = 2;
const SUIT_MANIFEST: u64 = 3;

/// What an item looks like from its outer structure.
enum Shape {
    Cose,
    Teep,
    SuitEnvelope,
    CoseKey,
    Other,
}

fn shape(item: &DataItem) -> Shape {
    match item {
        DataItem::Tag { tag, .. } if matches!(tag.0, TAG_COSE_SIGN1 | TAG_COSE_SIGN) => Shape::Cose,
        DataItem::Tag { tag, .. } if tag.0 == TAG_SUIT_ENVELOPE => Shape::SuitEnvelope,
        DataItem::Array { data, .. } => match data.as_slice() {
            // [protected bstr, unprotected map, payload bstr / nil, signature(s)]
            [
                DataItem::ByteString(_),
                DataItem::Map { .. },
                DataItem::ByteString(_) | DataItem::Simple(Simple::NULL),
                DataItem::ByteString(_) | DataItem::Array { .. },
            ] => Shape::Cose,
            // [type, options, ...]: the TEEP message framework.
            [DataItem::Integer { .. }, DataItem::Map { .. }, ..] => Shape::Teep,
            _ => Shape::Other,
        },
        DataItem::Map { data, .. } => {
            let has_bstr = |key| {
                data.iter()
                    .any(|(k, v)| uint(k) == Some(key) && matches!(v, DataItem::ByteString(_)))
            };
            if has_bstr(SUIT_AUTHENTICATION) && has_bstr(SUIT_MANIFEST) {
                Shape::SuitEnvelope
            } else if is_cose_key(data) {
                Shape::CoseKey
            } else {
                Shape::Other
            }
        }
        _ => Shape::Other,
    }
}

/// A COSE_Key has an integer `kty` (label 1) and no positive labels beyond the common
/// parameters 1..=5; this keeps CWT/EAT claim sets (where 1 is the text `iss`) out.
fn is_cose_key(entries: &[(DataItem, DataItem)]) -> bool {
    let kty_is_int = entries
        .iter()
        .any(|(k, v)| uint(k) == Some(1) && uint(v).is_some());
    let labels_ok = entries.iter().all(|(k, _)| match k {
        DataItem::Integer { value, .. } => (1..=5).contains(value),
        DataItem::Negative { .. } => true,
        _ => false,
    });
    kty_is_int && labels_ok
}

fn uint(item: &DataItem) -> Option<u64> {
    match item {
        DataItem::Integer { value, .. } => Some(*value),
        _ => None,
    }
}

fn describe(
    bytes: &[u8],
    item: &DataItem,
    numbering: Numbering,
    trust: &Trust,
) -> anyhow::Result<Json> {
    let (mut view, unsigned) = match shape(item) {
        Shape::Cose => return cose(bytes, numbering, trust),
        Shape::Teep => {
            let message = teep_proto::decode_unsigned(bytes, numbering).context("TEEP message")?;
            let view = teep_proto::json::to_json(&message, numbering);
            (view, "a bare TEEP message is not signed")
        }
        // teep-suit's view; the signature is not checked, the digest is.
        Shape::SuitEnvelope => {
            let view = teep_suit::json::envelope(bytes, teep_cose::default_provider())
                .map_err(|e| anyhow!("SUIT envelope: {e}"))?;
            (
                view,
                "a SUIT envelope: its signature is checked by `teep suit verify`",
            )
        }
        Shape::CoseKey => (cose_key(bytes, item)?, "a COSE_Key is not signed"),
        Shape::Other => (
            json!({ "type": "cbor", "value": generic(item) }),
            "not a COSE_Sign1 or COSE_Sign",
        ),
    };
    // With trust keys, every view answers "verified": nothing outside COSE is signed here.
    if trust.given()
        && let Json::Object(obj) = &mut view
    {
        obj.insert("verified".into(), false.into());
        obj.insert("reason".into(), unsigned.into());
    }
    Ok(view)
}

/// A COSE_Sign1 / COSE_Sign: a TEEP payload gets teep-proto's view and an EAR teep-attest's;
/// any other payload (EAT Evidence, for instance) is shown as generic CBOR beside the same
/// headers.
fn cose(bytes: &[u8], numbering: Numbering, trust: &Trust) -> anyhow::Result<Json> {
    let cose = teep_proto::decode_unverified_cose(bytes).context("COSE structure")?;
    let payload = match cose.payload.as_deref() {
        None => Json::Null, // detached
        Some(payload) => match parse_checked(payload) {
            Some(item) if matches!(shape(&item), Shape::Teep) => {
                // A TEEP message goes the way every receiver takes: parse, then verify.
                let message = Unverified::parse(bytes, numbering)
                    .context("TEEP message in the COSE payload")?;
                let view = teep_proto::json::to_json(message.message(), numbering);
                let outcome = trust.given().then(|| {
                    message
                        .verify(&trust.cx())
                        .map(|v| (v.signer().clone(), v.alg().cose_id()))
                        .map_err(|e| e.to_string())
                });
                return Ok(cose_view(&cose, trust, outcome.as_ref(), view));
            }
            // An EAR (Attestation Result) gets teep-attest's JSON view.
            Some(item) => teep_attest::Ear::from_cbor(payload)
                .map_or_else(|_| generic(&item), |ear| ear.to_json()),
            None => hex::encode(payload).into(),
        },
    };
    let outcome = trust.given().then(|| {
        teep_cose::verify_signed(bytes, &trust.cx())
            .map(|v| (v.signer, v.alg.cose_id()))
            .map_err(|e| e.to_string())
    });
    Ok(cose_view(&cose, trust, outcome.as_ref(), payload))
}

/// teep-proto's COSE view with the outcome of the check (`None`: no key was given).
fn cose_view(
    cose: &UnverifiedCose,
    trust: &Trust,
    outcome: Option<&Outcome>,
    payload: Json,
) -> Json {
    let check = match outcome {
        None => SignatureCheck::NotChecked,
        Some(Ok((signer, alg))) => SignatureCheck::Verified {
            key: trust.name_of(signer),
            signer,
            alg: *alg,
        },
        Some(Err(reason)) => SignatureCheck::Failed(reason),
    };
    teep_proto::json::cose_view(cose, &check, payload)
}

/// COSE_Key labels (RFC 9052 §7, RFC 9053 §7): names per key type; secrets are not shown.
fn cose_key(bytes: &[u8], item: &DataItem) -> anyhow::Result<Json> {
    let DataItem::Map { data, .. } = item else {
        return Err(anyhow!("COSE_Key is not a map"));
    };
    let kty = data
        .iter()
        .find(|(k, _)| uint(k) == Some(1))
        .and_then(|(_, v)| uint(v));
    let mut view = Map::new();
    view.insert("type".into(), "COSE_Key".into());
    for (label, value) in data {
        let name = key_label(label, kty);
        let shown = match (name.as_str(), value) {
            ("d" | "k", DataItem::ByteString(secret)) => {
                format!("<secret, {} bytes, not shown>", secret.data.len()).into()
            }
            ("kty", DataItem::Integer { value, .. }) => key_type_name(*value),
            ("crv", DataItem::Integer { value, .. }) => curve_name(*value),
            _ => generic(value),
        };
        view.insert(name, shown);
    }
    let thumbprint = PublicKey::from_cose_key_bytes(bytes)
        .map(|k| k.thumbprint())
        .or_else(|_| {
            teep_cose::PrivateKey::from_cose_key_bytes(bytes).map(|k| k.public_key().thumbprint())
        });
    if let Ok(thumbprint) = thumbprint {
        // RFC 9679 COSE Key Thumbprint with SHA-256, the `kid` TEEP peers use.
        view.insert("thumbprint-sha256".into(), hex::encode(thumbprint).into());
    }
    Ok(view.into())
}

fn key_label(label: &DataItem, kty: Option<u64>) -> String {
    const OKP: u64 = 1;
    const EC2: u64 = 2;
    const SYMMETRIC: u64 = 4;
    let name = match (label, kty) {
        (DataItem::Integer { value: 1, .. }, _) => "kty",
        (DataItem::Integer { value: 2, .. }, _) => "kid",
        (DataItem::Integer { value: 3, .. }, _) => "alg",
        (DataItem::Integer { value: 4, .. }, _) => "key_ops",
        (DataItem::Integer { value: 5, .. }, _) => "Base IV",
        (DataItem::Negative { value: 0, .. }, Some(OKP | EC2)) => "crv",
        (DataItem::Negative { value: 0, .. }, Some(SYMMETRIC)) => "k",
        (DataItem::Negative { value: 1, .. }, Some(OKP | EC2)) => "x",
        (DataItem::Negative { value: 2, .. }, Some(EC2)) => "y",
        (DataItem::Negative { value: 3, .. }, Some(OKP | EC2)) => "d",
        _ => return map_key(label),
    };
    name.to_owned()
}

fn key_type_name(kty: u64) -> Json {
    match kty {
        1 => "OKP".into(),
        2 => "EC2".into(),
        3 => "RSA".into(),
        4 => "Symmetric".into(),
        other => other.into(),
    }
}

fn curve_name(crv: u64) -> Json {
    match crv {
        1 => "P-256".into(),
        2 => "P-384".into(),
        3 => "P-521".into(),
        4 => "X25519".into(),
        5 => "X448".into(),
        6 => "Ed25519".into(),
        7 => "Ed448".into(),
        other => other.into(),
    }
}

/// Any CBOR item as JSON: byte strings as lowercase hex, tags as `{"tag": n, "value": ..}`,
/// map keys as their number or text (other keys in diagnostic notation). A map whose keys
/// would collide as JSON names (`1` and `"1"`) becomes a list of `[key, value]` pairs.
fn generic(item: &DataItem) -> Json {
    match item {
        DataItem::Integer { value, .. } => (*value).into(),
        DataItem::Negative { value, .. } => match i64::try_from(*value) {
            Ok(v) => (-1 - v).into(),
            Err(_) => (-1 - i128::from(*value)).to_string().into(),
        },
        DataItem::ByteString(b) => hex::encode(&b.data).into(),
        DataItem::IndefiniteByteString(chunks) => hex::encode(
            chunks
                .iter()
                .flat_map(|c| c.data.iter().copied())
                .collect::<Vec<u8>>(),
        )
        .into(),
        DataItem::TextString(t) => t.data.clone().into(),
        DataItem::IndefiniteTextString(chunks) => chunks
            .iter()
            .map(|c| c.data.as_str())
            .collect::<String>()
            .into(),
        DataItem::Array { data, .. } => data.iter().map(generic).collect(),
        DataItem::Map { data, .. } => {
            let object: Map<String, Json> =
                data.iter().map(|(k, v)| (map_key(k), generic(v))).collect();
            if object.len() == data.len() {
                object.into()
            } else {
                data.iter()
                    .map(|(k, v)| json!([generic(k), generic(v)]))
                    .collect()
            }
        }
        DataItem::Tag { tag, value, .. } => json!({ "tag": tag.0, "value": generic(value) }),
        DataItem::Float { value, .. } => serde_json::Number::from_f64(*value)
            .map_or_else(|| value.to_string().into(), Json::Number),
        DataItem::Simple(simple) => match *simple {
            Simple::FALSE => false.into(),
            Simple::TRUE => true.into(),
            Simple::NULL => Json::Null,
            Simple::UNDEFINED => "undefined".into(),
            Simple(other) => json!({ "simple": other }),
        },
    }
}

fn map_key(key: &DataItem) -> String {
    match key {
        DataItem::Integer { value, .. } => value.to_string(),
        DataItem::Negative { value, .. } => (-1 - i128::from(*value)).to_string(),
        DataItem::TextString(t) => t.data.clone(),
        other => other.to_diag(),
    }
}
