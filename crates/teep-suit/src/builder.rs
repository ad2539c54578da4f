//! Builds the manifests our tools make (one Trusted Component, optionally encrypted,
//! optionally depending on other manifests) and signs envelopes.
//!
//! Layout of a built manifest (component 0 = the TC; 1 = staging for an encrypted payload,
//! the TC's sibling [`staging_id`];
//! dependencies after the components, identified by their manifest component IDs):
//! shared: set 0, override {vendor, class, digest, size}, check vendor, check class, per
//! dependency set k, override {digest}; dependency-resolution: per dependency set k,
//! override {uri}, fetch, dependency-integrity, process-dependency; install: per dependency
//! set k, process-dependency; set 0, override {uri}, fetch (into 1 and copy with decryption
//! into 0 when encrypted), image-match; validate: per dependency process-dependency, set 0,
//! image-match; invoke: set 0, invoke; uninstall: per dependency process-dependency, unlink
//! the components.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use minicbor::data::Tag;
use teep_cbor::encode::write_text;
use teep_cbor::write::{
    ArrayEncoder, ArrayKind, EncodeError, MapEncoder, MapKind, encode_vec, raw,
};
use teep_cose::encrypt::{ContentAlgorithm, SUIT_PAYLOAD_ENCRYPTION, encrypt_detached_esdh};
use teep_cose::{CryptoProvider, PublicKey, SignOptions, Signer};

use crate::cbor::{appended, bstr};
use crate::command::{Parameters, VendorId};
use crate::error::SuitError;
use crate::model::{ComponentId, Digest, ENVELOPE_TAG, Envelope};
use crate::verify::{Anchors, authenticate};

/// Where the device gets the payload.
#[derive(Clone, Debug)]
pub enum PayloadLocation {
    /// In the envelope under this key (a fragment-only URI such as `#tc`).
    Integrated(String),
    /// Fetched from this URI.
    Uri(String),
}

/// A dependency on another (signed) manifest.
#[derive(Clone, Debug)]
pub struct DependencySpec {
    /// The dependency envelope, integrated into the dependent.
    pub envelope: Vec<u8>,
}

/// What to build.
#[derive(Clone, Debug)]
pub struct ManifestSpec {
    /// The TC's component: the one `suit-components` entry the manifest installs.
    pub component_id: ComponentId,
    /// Where the manifest is stored on the device; default: [`manifest_id_for`] the
    /// component ID.
    pub manifest_component_id: Option<ComponentId>,
    /// `suit-manifest-sequence-number`: must exceed the installed manifest's.
    pub sequence_number: u64,
    /// The TC binary (plaintext; encrypted here if `encrypt_to` is set).
    pub payload: Vec<u8>,
    /// Integrated in the envelope or fetched by URI.
    pub location: PayloadLocation,
    /// `suit-parameter-vendor-identifier` to check, if any (a UUID).
    pub vendor_id: Option<[u8; 16]>,
    /// `suit-parameter-class-identifier` to check, if any (a UUID).
    pub class_id: Option<[u8; 16]>,
    /// `suit-reference-uri` of the manifest.
    pub reference_uri: Option<String>,
    /// Encrypt the payload to this P-256 key (ECDH-ES+A128KW, A128GCM).
    pub encrypt_to: Option<PublicKey>,
    /// Dependency envelopes, processed before the TC is installed.
    pub dependencies: Vec<DependencySpec>,
}

/// The built, unsigned envelope and, for an encrypted payload fetched by URI, the
/// ciphertext to publish there.
#[derive(Clone, Debug)]
pub struct Built {
    /// The encoded `SUIT_Envelope`, tagged, without authentication blocks yet.
    pub envelope: Vec<u8>,
    /// The ciphertext to publish at the payload URI (encrypted, fetched payloads only).
    pub published_payload: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
enum Cmd {
    SetIndex(u64),
    /// A condition or directive with reporting policy 15 (all records).
    Rep(i64),
    Override(Box<Parameters>),
}

const REPORT_ALL: u64 = 15;
const FETCH: i64 = 21;
const IMAGE_MATCH: i64 = 3;
const PROCESS_DEPENDENCY: i64 = 11;
const DEPENDENCY_INTEGRITY: i64 = 7;
const COPY: i64 = 22;
const INVOKE: i64 = 23;
const UNLINK: i64 = 33;

fn encode_seq(cmds: &[Cmd]) -> Result<Vec<u8>, EncodeError> {
    encode_vec(|e| {
        ArrayEncoder::write_to(e, |a| {
            for c in cmds {
                match c {
                    Cmd::SetIndex(i) => a.item(12u8)?.item(*i)?,
                    Cmd::Rep(n) => a.item(*n)?.item(REPORT_ALL)?,
                    Cmd::Override(p) => a
                        .item(20u8)?
                        .item_nested::<MapKind>(|m| p.encode_entries(m))?,
                };
            }
            Ok(())
        })
    })
}

/// The manifest component ID the builder gives a TC's manifest when the caller names
/// none: a sibling of the TC, never a path under it (a device mapping IDs to files could
/// not store both), and a different one for every component ID (two TCs that got the same
/// manifest ID would replace each other's manifest). The last segment gets `.suit`
/// appended (`config.json` -> `config.json.suit`, `greeting` -> `greeting.suit`, a lone
/// `app` -> `app.suit`), except a TA's `ta` under a parent, which becomes `suit`
/// (Appendix E Examples 1 and 2). The mapping is one-to-one: `suit` has no dot, every
/// other result ends in `.suit`, and the segments before the last are kept.
pub fn manifest_id_for(component: &ComponentId) -> ComponentId {
    let mut id = component.clone();
    let Some(last) = id.0.pop() else {
        return ComponentId(vec![b"suit".to_vec()]);
    };
    let name = if last == b"ta" && !id.0.is_empty() {
        b"suit".to_vec()
    } else {
        [last.as_slice(), b".suit"].concat()
    };
    id.0.push(name);
    id
}

/// Suffix of the last segment that names where an encrypted payload is fetched to.
pub const STAGING_SUFFIX: &[u8] = b".encrypted";

/// The component an encrypted payload is fetched into before it is decrypted: a sibling
/// of the TC, its last segment with [`STAGING_SUFFIX`] (`.../config.json` ->
/// `.../config.json.encrypted`). Never a child path: a device that maps component IDs to
/// files cannot have `config.json` be both a file and a directory.
pub fn staging_id(component: &ComponentId) -> ComponentId {
    let mut id = component.clone();
    match id.0.last_mut() {
        Some(last) => last.extend_from_slice(STAGING_SUFFIX),
        None => id.0.push(STAGING_SUFFIX.to_vec()),
    }
    id
}

/// A dependency's manifest digest and storage ID, read from its envelope.
fn dependency_facts(
    envelope: &[u8],
    provider: &dyn CryptoProvider,
) -> Result<(Digest, ComponentId), SuitError> {
    let env = Envelope::decode(envelope)?;
    let digest = provider.sha256(env.manifest_bstr);
    if !env.authentication.digest.matches_sha256(&digest)? {
        return Err(SuitError::ManifestDigestMismatch);
    }
    let manifest = crate::model::Manifest::decode(env.manifest_bytes)?;
    let id = match manifest.manifest_component_id {
        Some(id) => id,
        // Where the processor keeps a manifest without an ID: under its first component.
        None => {
            let mut id = manifest
                .common
                .components
                .first()
                .cloned()
                .ok_or(SuitError::NoManifestComponentId)?;
            id.0.push(b"suit".to_vec());
            id
        }
    };
    Ok((Digest::sha256(digest), id))
}

/// Builds an unsigned envelope (authentication wrapper with the digest only).
pub fn build(spec: &ManifestSpec, provider: &dyn CryptoProvider) -> Result<Built, SuitError> {
    let plain_digest = Digest::sha256(provider.sha256(&spec.payload));
    let encrypted = match &spec.encrypt_to {
        Some(key) => Some(
            encrypt_detached_esdh(
                provider,
                key,
                ContentAlgorithm::A128Gcm,
                &spec.payload,
                SUIT_PAYLOAD_ENCRYPTION,
            )
            .map_err(SuitError::Decryption)?,
        ),
        None => None,
    };
    let mut components = vec![spec.component_id.clone()];
    if encrypted.is_some() {
        components.push(staging_id(&spec.component_id));
    }
    let payload_index = if encrypted.is_some() { 1 } else { 0 };
    let mut deps = Vec::new();
    for (k, d) in spec.dependencies.iter().enumerate() {
        let (digest, id) = dependency_facts(&d.envelope, provider)?;
        deps.push((
            components.len() as u64 + k as u64,
            digest,
            id,
            format!("#dependency-{k}"),
        ));
    }

    // Shared: compatibility checks and the TC's expected digest and size.
    let mut shared = vec![
        Cmd::SetIndex(0),
        Cmd::Override(Box::new(Parameters {
            vendor_id: spec.vendor_id.map(|v| VendorId::Uuid(v.to_vec())),
            class_id: spec.class_id.map(|v| v.to_vec()),
            image_digest: Some(plain_digest.clone()),
            image_size: Some(spec.payload.len() as u64),
            ..Parameters::default()
        })),
    ];
    if spec.vendor_id.is_some() {
        shared.push(Cmd::Rep(1));
    }
    if spec.class_id.is_some() {
        shared.push(Cmd::Rep(2));
    }
    // Each dependency's manifest digest, in the shared sequence (the trust-domains
    // dependency template): validate processes the dependency in Invocation too, which
    // does not run dependency-resolution.
    for (k, digest, _, _) in &deps {
        shared.extend([
            Cmd::SetIndex(*k),
            Cmd::Override(Box::new(Parameters {
                image_digest: Some(digest.clone()),
                ..Parameters::default()
            })),
        ]);
    }

    let mut resolution = Vec::new();
    let mut install = Vec::new();
    let mut validate = Vec::new();
    let mut uninstall = Vec::new();
    for (k, _, _, key) in &deps {
        resolution.extend([
            Cmd::SetIndex(*k),
            Cmd::Override(Box::new(Parameters {
                uri: Some(key.clone()),
                ..Parameters::default()
            })),
            Cmd::Rep(FETCH),
            Cmd::Rep(DEPENDENCY_INTEGRITY),
            Cmd::Rep(PROCESS_DEPENDENCY),
        ]);
        for seq in [&mut install, &mut validate, &mut uninstall] {
            seq.extend([Cmd::SetIndex(*k), Cmd::Rep(PROCESS_DEPENDENCY)]);
        }
    }
    let uri = match &spec.location {
        PayloadLocation::Integrated(key) | PayloadLocation::Uri(key) => key.clone(),
    };
    install.extend([
        Cmd::SetIndex(payload_index),
        Cmd::Override(Box::new(Parameters {
            uri: Some(uri),
            ..Parameters::default()
        })),
        Cmd::Rep(FETCH),
    ]);
    if let Some(enc) = &encrypted {
        install.extend([
            Cmd::SetIndex(0),
            Cmd::Override(Box::new(Parameters {
                encryption_info: Some(enc.cose_encrypt.clone()),
                source_component: Some(1),
                ..Parameters::default()
            })),
            Cmd::Rep(COPY),
        ]);
    }
    install.push(Cmd::Rep(IMAGE_MATCH));
    validate.extend([Cmd::SetIndex(0), Cmd::Rep(IMAGE_MATCH)]);
    let invoke = [Cmd::SetIndex(0), Cmd::Rep(INVOKE)];
    for i in 0..components.len() as u64 {
        uninstall.extend([Cmd::SetIndex(i), Cmd::Rep(UNLINK)]);
    }

    // SUIT_Common
    let common = encode_vec(|e| {
        MapEncoder::write_to(e, |m| {
            if !deps.is_empty() {
                m.entry_nested::<MapKind, _>(1, |d| {
                    for (k, _, id, _) in &deps {
                        d.entry_nested::<MapKind, _>(*k, |meta| {
                            meta.entry_with(1, appended(|out| id.encode(out))).map(drop)
                        })?;
                    }
                    Ok(())
                })?;
            }
            m.entry_nested::<ArrayKind, _>(2, |a| {
                for c in &components {
                    a.item_with(appended(|out| c.encode(out)))?;
                }
                Ok(())
            })?;
            m.entry(4, bstr(&encode_seq(&shared)?))?;
            Ok(())
        })
    })?;

    // SUIT_Manifest, keys ascending.
    let manifest_id = spec
        .manifest_component_id
        .clone()
        .unwrap_or_else(|| manifest_id_for(&spec.component_id));
    let manifest = encode_vec(|e| {
        MapEncoder::write_to(e, |m| {
            m.entry(1, 1u8)?
                .entry(2, spec.sequence_number)?
                .entry(3, bstr(&common))?;
            if let Some(uri) = &spec.reference_uri {
                m.entry(4, uri.as_str())?;
            }
            m.entry_with(5, appended(|out| manifest_id.encode(out)))?
                .entry(7, bstr(&encode_seq(&validate)?))?
                .entry(9, bstr(&encode_seq(&invoke)?))?;
            if !deps.is_empty() {
                m.entry(15, bstr(&encode_seq(&resolution)?))?;
            }
            m.entry(20, bstr(&encode_seq(&install)?))?
                .entry(24, bstr(&encode_seq(&uninstall)?))?;
            Ok(())
        })
    })?;

    // Integrated payloads and dependencies, keyed by tstr.
    let mut integrated: Vec<(String, Vec<u8>)> = Vec::new();
    let delivered = match &encrypted {
        Some(enc) => enc.ciphertext.clone(),
        None => spec.payload.clone(),
    };
    let published_payload = match &spec.location {
        PayloadLocation::Integrated(key) => {
            integrated.push((key.clone(), delivered));
            None
        }
        PayloadLocation::Uri(_) => encrypted.as_ref().map(|_| delivered),
    };
    for (d, (_, _, _, key)) in spec.dependencies.iter().zip(&deps) {
        integrated.push((key.clone(), d.envelope.clone()));
    }

    Ok(Built {
        envelope: unsigned_envelope(&manifest, &integrated, provider)?,
        published_payload,
    })
}

/// An untagged envelope around an encoded SUIT_Manifest, with integrated payloads and an
/// authentication wrapper holding only the manifest digest (sign it with [`sign`]).
///
/// # Errors
/// [`SuitError::Encode`] only if the envelope encoder writes an entry of the wrong shape
/// (a bug; every input encodes).
pub fn unsigned_envelope(
    manifest: &[u8],
    integrated: &[(String, Vec<u8>)],
    provider: &dyn CryptoProvider,
) -> Result<Vec<u8>, SuitError> {
    let manifest_bstr = encode_vec(|e| Ok(e.bytes(manifest).map(drop)?))?;
    let digest = Digest::sha256(provider.sha256(&manifest_bstr));
    let auth =
        encode_vec(|e| ArrayEncoder::write_to(e, |a| a.item(bstr(&digest.to_cbor())).map(drop)))?;
    Ok(encode_envelope(
        false,
        &auth,
        &manifest_bstr,
        &[],
        integrated,
    )?)
}

/// Encodes an envelope from its parts in deterministic key order: 2, 3, severed elements
/// (already bstr-encoded), then tstr keys in bytewise order of their encodings.
fn encode_envelope(
    tagged: bool,
    auth_contents: &[u8],
    manifest_bstr: &[u8],
    severed: &[(u64, &[u8])],
    integrated: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, EncodeError> {
    let mut keyed: Vec<(Vec<u8>, &str, &[u8])> = integrated
        .iter()
        .map(|(k, v)| {
            let mut key = Vec::new();
            write_text(k, &mut key);
            (key, k.as_str(), v.as_slice())
        })
        .collect();
    keyed.sort();
    encode_vec(|e| {
        if tagged {
            e.tag(Tag::new(ENVELOPE_TAG))?;
        }
        MapEncoder::write_to(e, |m| {
            m.entry(2, bstr(auth_contents))?
                .entry_with(3, |e| raw(e, manifest_bstr))?;
            for (key, encoded) in severed {
                m.entry_with(*key, |e| raw(e, encoded))?;
            }
            for (_, key, value) in keyed {
                m.entry(key, bstr(value))?;
            }
            Ok(())
        })
    })
}

/// Adds a COSE_Sign1 authentication block (detached, over the encoded SUIT_Digest) after
/// checking that the wrapper's digest matches the manifest (never sign a digest that does
/// not describe the manifest at hand). Existing blocks are kept.
pub fn sign(
    envelope: &[u8],
    signer: &dyn Signer,
    provider: &dyn CryptoProvider,
) -> Result<Vec<u8>, SuitError> {
    let env = Envelope::decode(envelope)?;
    let auth = &env.authentication;
    if !auth
        .digest
        .matches_sha256(&provider.sha256(env.manifest_bstr))?
    {
        return Err(SuitError::ManifestDigestMismatch);
    }
    let opts = SignOptions {
        detached: true,
        ..SignOptions::default()
    };
    let block =
        teep_cose::sign1(signer, auth.digest_cbor, &opts).map_err(SuitError::Authentication)?;
    let wrapper = encode_vec(|e| {
        ArrayEncoder::write_to(e, |a| {
            a.item(bstr(auth.digest_cbor))?;
            for b in &auth.blocks {
                a.item(bstr(b))?;
            }
            a.item(bstr(&block)).map(drop)
        })
    })?;
    let severed: Vec<(u64, &[u8])> = env.severed.iter().map(|s| (s.key, s.encoded)).collect();
    let integrated: Vec<(String, Vec<u8>)> = env
        .integrated
        .iter()
        .map(|(k, v)| (String::from(*k), v.to_vec()))
        .collect();
    let signed = encode_envelope(
        env.tagged,
        &wrapper,
        env.manifest_bstr,
        &severed,
        &integrated,
    )?;
    // The result must verify with the signer's own key.
    let mut trust = teep_cose::TrustStore::new();
    trust.add_key(signer.public_key().clone());
    let anchors = Anchors {
        signers: &trust,
        mac_keys: &[],
        now: None,
    };
    authenticate(&signed, provider, &anchors)?;
    Ok(signed)
}
