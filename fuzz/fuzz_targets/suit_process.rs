//! The SUIT processor as a TEEP Agent runs it, on manifests that pass authentication.
//!
//! Set up once: a device with the TEEP vendor/class IDs, two trusted TC signers (A:
//! Ed25519, B: ESP256) and a MAC key, a fetcher serving a few URIs, a decryptor holding
//! the TEE's P-256 key, a clock, the aws-lc provider, and a storage with a TC (v1) and a
//! personalization manifest depending on it installed (both signed by A). Per input: a
//! template manifest made by `teep_suit::builder` (TC update over the installed one,
//! personalization v2, encrypted TC fetched by URI, app with a new dependency signed by
//! B) is mutated structurally (sequence number, component IDs, dependencies, command
//! sequences as typed commands or raw bytes, severed members), authenticated with the
//! chosen signer, MAC or a bad block, and run through install and follow-up procedures
//! (install again, invoke, uninstall) on a clone of the storage. The signers are scoped
//! (`TrustAnchor::scope`): A to the templates' components, B to the `lib` prefix. The
//! candidate and up to two more templates (each with its own signer and sequence number)
//! are also installed together by `install_all`, on another clone, and compared with
//! installing them one after the other.
//!
//! Asserts: no panic; a failed procedure leaves storage unchanged; nothing installs
//! without a valid block from a trusted signer or MAC key; an install never keeps a
//! sequence number below the stored one, nor the same one unless it re-delivers the stored
//! manifest (which then stays as stored); an installed manifest is stored stripped with
//! its sequence number; a manifest authenticated by B installs only inside
//! B's scope (its location and the components it lists) and is recorded as B's; every
//! manifest's recorded signer has a scope covering its location; `install_all` is all or
//! nothing (on failure storage is unchanged and the failing manifest is the first one that
//! fails when installed one by one; on success the storage is what installing them one by
//! one gives); every report encodes to well-formed CBOR.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use minicbor::Encoder;
use teep_cose::coset::{self, TaggedCborSerializable, iana};
use teep_cose::encrypt::DecryptionKey;
use teep_cose::{Algorithm, AwsLcProvider, CryptoProvider, Curve, PrivateKey, SignOptions, Signer};
use teep_suit::builder::{self, DependencySpec, ManifestSpec, PayloadLocation};
use teep_suit::processor::{
    Clock, DeviceIdentity, Fetcher, KeyDecryptor, Outcome, Policy, Processor, UpdateItem,
};
use teep_suit::storage::MemoryStorage;
use teep_suit::trust::{SignerId, TrustAnchor, TrustAnchors};
use teep_suit::{ComponentId, Digest, Envelope, Manifest, Member, Parameters, VendorId};

static PROVIDER: AwsLcProvider = AwsLcProvider;

const TEEP_VENDOR: [u8; 16] = [
    0xc0, 0xdd, 0xd5, 0xf1, 0x52, 0x43, 0x56, 0x60, 0x87, 0xdb, 0x4f, 0x5b, 0x0a, 0xa2, 0x6c, 0x2f,
];
const TEEP_CLASS: [u8; 16] = [
    0xdb, 0x42, 0xf7, 0x09, 0x3d, 0x8c, 0x55, 0xba, 0xa8, 0xc5, 0x26, 0x5f, 0xc5, 0x82, 0x0f, 0x4e,
];
/// 2026-01-01T00:00:00Z.
const NOW: u64 = 1_767_225_600;
const TC_URI: &str = "https://tam.example/tc.ta";
const ENC_URI: &str = "https://tam.example/enc.ta.cose";
const LIB_URI: &str = "https://tam.example/lib.suit";

/// Path segments the fuzzer picks by index (plus raw bytes), so mutated component IDs
/// often name components that exist.
const SEGMENTS: [&[u8]; 12] = [
    b"TEEP-Device",
    b"SecureFS",
    b"tc",
    b"ta",
    b"suit",
    b"config.json",
    b"config.suit",
    b"enc",
    b"encrypted",
    b"app",
    b"lib",
    b"",
];

/// A manifest taken apart into what the fuzzer edits.
#[derive(Clone, Debug)]
struct Parts {
    sequence_number: u64,
    components: Vec<ComponentId>,
    dependencies: Vec<(u64, Option<ComponentId>)>,
    shared: Option<Vec<u8>>,
    reference_uri: Option<String>,
    manifest_id: Option<ComponentId>,
    /// Command sequences by manifest key (7, 8, 9, 15, 16, 18, 20, 24).
    sections: BTreeMap<u64, Vec<u8>>,
    integrated: Vec<(String, Vec<u8>)>,
}

impl Parts {
    fn of(envelope: &[u8]) -> Self {
        let env = Envelope::decode(envelope).expect("template envelope decodes");
        let m = Manifest::decode(env.manifest_bytes).expect("template manifest decodes");
        let mut sections = BTreeMap::new();
        for (key, seq) in [
            (7, m.validate),
            (8, m.load),
            (9, m.invoke),
            (24, m.uninstall),
        ] {
            if let Some(seq) = seq {
                sections.insert(key, seq.to_vec());
            }
        }
        for (key, member) in [
            (15, m.dependency_resolution),
            (16, m.payload_fetch),
            (18, m.candidate_verification),
            (20, m.install),
        ] {
            match member {
                Some(Member::Present(seq)) => {
                    sections.insert(key, seq.to_vec());
                }
                Some(Member::Severed(_)) => panic!("the builder does not sever"),
                None => {}
            }
        }
        Self {
            sequence_number: m.sequence_number,
            components: m.common.components,
            dependencies: m
                .common
                .dependencies
                .into_iter()
                .map(|d| (d.index, d.prefix))
                .collect(),
            shared: m.common.shared_sequence.map(<[u8]>::to_vec),
            reference_uri: m.reference_uri.map(String::from),
            manifest_id: m.manifest_component_id,
            sections,
            integrated: env
                .integrated
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.to_vec()))
                .collect(),
        }
    }
}

struct UriFetcher(BTreeMap<&'static str, Vec<u8>>);

impl Fetcher for UriFetcher {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, String> {
        self.0.get(uri).cloned().ok_or_else(|| format!("404 {uri}"))
    }
}

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Option<u64> {
        Some(NOW)
    }
}

struct Fixture {
    signer_a: Box<dyn Signer>,
    signer_b: Box<dyn Signer>,
    /// Both TC signers: A scoped to the templates' components, B to `lib`.
    trust: TrustAnchors,
    /// B's anchor (its name and scope), for the scope assertions.
    anchor_b: TrustAnchor,
    mac_keys: Vec<Vec<u8>>,
    device: DeviceIdentity,
    fetcher: UriFetcher,
    decryptor: KeyDecryptor<'static>,
    /// TC v1 and the personalization manifest depending on it, installed.
    base: MemoryStorage,
    tc_id: ComponentId,
    perso_id: ComponentId,
    templates: Vec<Parts>,
    /// Digests the fuzzer may put into image-digest parameters.
    digests: Vec<Digest>,
    /// The encrypted template's SUIT_Encryption_Info.
    encryption_info: Vec<u8>,
}

fn app(name: &str) -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", name, "ta"])
}

/// The directory of a SecureFS component: the prefix a scope names.
fn under(name: &str) -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "SecureFS", name])
}

fn spec(
    component_id: ComponentId,
    seq: u64,
    payload: &[u8],
    location: PayloadLocation,
) -> ManifestSpec {
    ManifestSpec {
        component_id,
        manifest_component_id: None,
        sequence_number: seq,
        payload: payload.to_vec(),
        location,
        vendor_id: Some(TEEP_VENDOR),
        class_id: Some(TEEP_CLASS),
        reference_uri: Some("https://tam.example/manifest.suit".into()),
        encrypt_to: None,
        dependencies: vec![],
    }
}

fn integrated() -> PayloadLocation {
    PayloadLocation::Integrated("#tc".into())
}

fn sign_with(spec: &ManifestSpec, signer: &dyn Signer) -> (Vec<u8>, Option<Vec<u8>>) {
    let built = builder::build(spec, &PROVIDER).expect("template builds");
    let signed = builder::sign(&built.envelope, signer, &PROVIDER).expect("template signs");
    (signed, built.published_payload)
}

fn digest_of(bytes: &[u8]) -> Digest {
    Digest::sha256(PROVIDER.sha256(bytes))
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key_a = PrivateKey::from_bytes(Curve::Ed25519, &[0xa1; 32]).expect("key A");
        let key_b = PrivateKey::from_bytes(Curve::P256, &[0xb2; 32]).expect("key B");
        let tee = PrivateKey::from_bytes(Curve::P256, &[0x7e; 32]).expect("TEE key");
        let signer_a = PROVIDER
            .signer(&key_a, Algorithm::Ed25519)
            .expect("signer A");
        let signer_b = PROVIDER
            .signer(&key_b, Algorithm::Esp256)
            .expect("signer B");
        let mut trust = TrustAnchors::new();
        let scope_a = ["tc", "config.json", "config.json.suit", "enc", "app"]
            .map(under)
            .to_vec();
        trust.add(TrustAnchor::scoped(key_a.public_key().clone(), scope_a));
        let anchor_b = TrustAnchor::scoped(key_b.public_key().clone(), vec![under("lib")]);
        trust.add(anchor_b.clone());
        let device = DeviceIdentity {
            vendor_ids: vec![VendorId::Uuid(TEEP_VENDOR.to_vec())],
            class_ids: vec![TEEP_CLASS.to_vec()],
            ..DeviceIdentity::default()
        };

        let tc_v1_payload = b"trusted component v1".as_slice();
        let (tc_v1, _) = sign_with(&spec(app("tc"), 1, tc_v1_payload, integrated()), &*signer_a);
        let config = ComponentId::from_strs(&["TEEP-Device", "SecureFS", "config.json"]);
        let perso_payload = b"{\"setting\":1}".as_slice();
        let mut perso = spec(config.clone(), 1, perso_payload, integrated());
        perso.dependencies = vec![DependencySpec {
            envelope: tc_v1.clone(),
        }];
        let (perso_v1, _) = sign_with(&perso, &*signer_a);

        // Templates.
        let tc_v2_payload = b"trusted component v2".as_slice();
        let (tc_v2, _) = sign_with(
            &spec(
                app("tc"),
                2,
                tc_v2_payload,
                PayloadLocation::Uri(TC_URI.into()),
            ),
            &*signer_a,
        );
        let mut perso2 = spec(config, 2, b"{\"setting\":2}", integrated());
        perso2.dependencies = perso.dependencies.clone();
        let (perso_v2, _) = sign_with(&perso2, &*signer_a);
        let enc_payload = b"encrypted trusted component".as_slice();
        let mut enc = spec(
            app("enc"),
            1,
            enc_payload,
            PayloadLocation::Uri(ENC_URI.into()),
        );
        enc.encrypt_to = Some(tee.public_key().clone());
        let (enc, ciphertext) = sign_with(&enc, &*signer_a);
        let (lib, _) = sign_with(&spec(app("lib"), 1, b"library", integrated()), &*signer_b);
        let mut with_dep = spec(app("app"), 1, b"application", integrated());
        with_dep.dependencies = vec![DependencySpec {
            envelope: lib.clone(),
        }];
        let (with_dep, _) = sign_with(&with_dep, &*signer_a);

        let templates: Vec<Parts> = [&tc_v2, &perso_v2, &enc, &with_dep, &tc_v1]
            .into_iter()
            .map(|e| Parts::of(e))
            .collect();
        let encryption_info = templates[2]
            .sections
            .get(&20)
            .and_then(|seq| teep_suit::parse_sequence(seq, 0).ok())
            .and_then(|steps| {
                steps.into_iter().find_map(|s| match s.command {
                    teep_suit::Command::OverrideParameters(p) => p.encryption_info,
                    _ => None,
                })
            })
            .expect("the encrypted template carries its encryption info");
        let manifest_digest = |envelope: &[u8]| {
            let env = Envelope::decode(envelope).expect("template decodes");
            digest_of(env.manifest_bstr)
        };
        let digests = vec![
            digest_of(tc_v1_payload),
            digest_of(tc_v2_payload),
            digest_of(perso_payload),
            digest_of(enc_payload),
            manifest_digest(&tc_v1),
            manifest_digest(&lib),
        ];

        let fetcher = UriFetcher(BTreeMap::from([
            (TC_URI, tc_v2_payload.to_vec()),
            (
                ENC_URI,
                ciphertext.expect("encrypted by URI: ciphertext to publish"),
            ),
            (LIB_URI, lib),
        ]));
        let decryptor = KeyDecryptor {
            provider: &PROVIDER,
            keys: vec![DecryptionKey::EcdhEs(tee)],
        };

        let mut base = MemoryStorage::new();
        let mut fixture = Fixture {
            signer_a,
            signer_b,
            trust,
            anchor_b,
            mac_keys: vec![vec![0x4d; 32]],
            device,
            fetcher,
            decryptor,
            base: MemoryStorage::new(),
            tc_id: ComponentId::default(),
            perso_id: ComponentId::default(),
            templates,
            digests,
            encryption_info,
        };
        let (tc_id, perso_id) = {
            let p = processor(&fixture, false);
            let install = |store: &mut MemoryStorage, env: &[u8]| {
                let out = p.install(store, env, None);
                out.result.expect("base state installs").manifest_id
            };
            (install(&mut base, &tc_v1), install(&mut base, &perso_v1))
        };
        fixture.base = base;
        fixture.tc_id = tc_id;
        fixture.perso_id = perso_id;
        fixture
    })
}

fn processor(f: &Fixture, require_compatibility_check: bool) -> Processor<'_> {
    Processor {
        provider: &PROVIDER,
        trust: &f.trust,
        mac_keys: &f.mac_keys,
        fetcher: &f.fetcher,
        decryptor: Some(&f.decryptor),
        clock: &FixedClock,
        device: &f.device,
        policy: Policy {
            require_compatibility_check,
            ..Policy::default()
        },
    }
}

// ---- The fuzz input ----

/// Fixed-size fields first and the edits last (they take the rest of the input), so that
/// `make-seeds.sh` can write seeds byte by byte.
#[derive(Arbitrary, Debug)]
struct Input {
    template: u8,
    auth: Auth,
    /// Added to the template's sequence number (wrapping below zero to large numbers).
    sequence_delta: i8,
    /// For dependency-resolution, payload-fetch, candidate-verification and install.
    sever: [Sever; 4],
    require_compatibility_check: bool,
    /// Procedures after the first install.
    then: [Option<Action>; 3],
    /// Installed after the candidate by `install_all`, on a fresh copy of the base state.
    batch: [Option<Batched>; 2],
    edits: Vec<Edit>,
}

/// An unmutated template, with its own authentication and sequence number.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Batched {
    template: u8,
    auth: Auth,
    sequence_delta: i8,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    SignerA,
    SignerB,
    Mac,
    /// B's block, then A's: the first failing block must not stop the next.
    GarbageThenA,
    /// A's signature with one bit flipped.
    BadSignature(u8),
    /// A MAC under the wrong key.
    BadMac,
    Garbage,
    NoBlock,
}

impl Auth {
    fn valid(self) -> bool {
        matches!(
            self,
            Self::SignerA | Self::SignerB | Self::Mac | Self::GarbageThenA
        )
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Sever {
    Keep,
    Severed,
    /// Severed, then one byte of the element changed.
    Tampered,
    /// Severed, element left out of the envelope.
    Missing,
}

#[derive(Arbitrary, Debug)]
enum Segment {
    Known(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Components(Vec<Vec<Segment>>),
    ManifestId(Option<Vec<Segment>>),
    Dependencies(Vec<(u8, Option<Vec<Segment>>)>),
    ReferenceUri(Option<String>),
    /// An index into `SECTION_KEYS`, and what to do to that sequence.
    Section(u8, SeqOp),
    /// An integrated payload replaced (or added) under a known key.
    Integrated(u8, Vec<u8>),
}

/// The sequences an edit may target, by manifest key (0: the shared sequence in common).
const SECTION_KEYS: [u64; 9] = [0, 7, 8, 9, 15, 16, 18, 20, 24];
/// Condition and directive numbers (the processor's `Condition` and `Directive`).
const CONDITIONS: [i64; 9] = [1, 2, 3, 5, 6, 7, 8, 14, 24];
const DIRECTIVES: [i64; 7] = [11, 18, 21, 22, 23, 31, 33];

#[derive(Arbitrary, Debug)]
enum SeqOp {
    Remove,
    Raw(Vec<u8>),
    Replace(Vec<Cmd>),
    Insert(u8, Vec<Cmd>),
    Delete(u8),
}

#[derive(Arbitrary, Debug)]
enum Cmd {
    /// An index into `CONDITIONS`, and the reporting policy.
    Condition(u8, u8),
    /// An index into `DIRECTIVES`, and the reporting policy.
    Directive(u8, u8),
    SetIndex(Index),
    Override(Vec<Param>),
    Set(Vec<Param>),
    TryEach(Vec<Vec<Cmd>>, bool),
    RunSequence(Vec<Cmd>),
    Unknown(i16, u8),
}

#[derive(Arbitrary, Debug)]
enum Index {
    One(u8),
    All,
    List(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Param {
    Vendor(Option<Vec<u8>>),
    VendorPen(Vec<u8>),
    Class(Option<Vec<u8>>),
    Digest(u8),
    RawDigest(i8, Vec<u8>),
    Slot(u8),
    StrictOrder(bool),
    SoftFailure(bool),
    Size(u16),
    Content(Vec<u8>),
    EncryptionInfo(Option<Vec<u8>>),
    Uri(u8),
    RawUri(String),
    Source(u8),
    InvokeArgs(Vec<u8>),
    DeviceId(Vec<u8>),
    FetchArgs(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Action {
    InstallAgain,
    /// Re-install a template as signed by A, unmutated (e.g. TC v1 over v2: rollback).
    InstallTemplate(u8),
    Invoke(Target),
    Uninstall(Target),
}

#[derive(Arbitrary, Debug)]
enum Target {
    Candidate,
    Tc,
    Personalization,
    Other(Vec<Segment>),
}

// ---- Encoding ----

fn pick<T: Copy>(items: &[T], i: u8) -> T {
    items[usize::from(i) % items.len()]
}

fn component_id(segments: &[Segment]) -> ComponentId {
    ComponentId(
        segments
            .iter()
            .map(|s| match s {
                Segment::Known(i) => pick(&SEGMENTS, *i).to_vec(),
                Segment::Raw(b) => b.clone(),
            })
            .collect(),
    )
}

fn parameters(f: &Fixture, params: &[Param]) -> Parameters {
    const URIS: [&str; 6] = ["#tc", "#dependency-0", TC_URI, ENC_URI, LIB_URI, "#missing"];
    let mut p = Parameters::default();
    for param in params {
        match param {
            Param::Vendor(v) => {
                p.vendor_id = Some(VendorId::Uuid(v.clone().unwrap_or(TEEP_VENDOR.to_vec())))
            }
            Param::VendorPen(v) => p.vendor_id = Some(VendorId::Pen(v.clone())),
            Param::Class(c) => p.class_id = Some(c.clone().unwrap_or(TEEP_CLASS.to_vec())),
            Param::Digest(i) => {
                p.image_digest = Some(f.digests[usize::from(*i) % f.digests.len()].clone())
            }
            Param::RawDigest(alg, bytes) => {
                p.image_digest = Some(Digest {
                    algorithm: i64::from(*alg),
                    bytes: bytes.clone(),
                })
            }
            Param::Slot(s) => p.component_slot = Some(u64::from(*s)),
            Param::StrictOrder(b) => p.strict_order = Some(*b),
            Param::SoftFailure(b) => p.soft_failure = Some(*b),
            Param::Size(s) => p.image_size = Some(u64::from(*s)),
            Param::Content(c) => p.content = Some(c.clone()),
            Param::EncryptionInfo(e) => {
                p.encryption_info = Some(e.clone().unwrap_or_else(|| f.encryption_info.clone()))
            }
            Param::Uri(i) => p.uri = Some(pick(&URIS, *i).into()),
            Param::RawUri(u) => p.uri = Some(u.clone()),
            Param::Source(s) => p.source_component = Some(u64::from(*s)),
            Param::InvokeArgs(a) => p.invoke_args = Some(a.clone()),
            Param::DeviceId(d) => p.device_id = Some(d.clone()),
            Param::FetchArgs(a) => p.fetch_arguments = Some(a.clone()),
        }
    }
    p
}

/// Encodes commands as (number, argument) pairs, without the array header.
fn encode_commands(f: &Fixture, cmds: &[Cmd], e: &mut Encoder<&mut Vec<u8>>) {
    for cmd in cmds {
        match cmd {
            Cmd::Condition(i, policy) => {
                let _ = e.i64(pick(&CONDITIONS, *i)).and_then(|e| e.u8(*policy));
            }
            Cmd::Directive(i, policy) => {
                let _ = e.i64(pick(&DIRECTIVES, *i)).and_then(|e| e.u8(*policy));
            }
            Cmd::SetIndex(index) => {
                let _ = e.u8(12);
                let _ = match index {
                    Index::One(i) => e.u8(*i),
                    Index::All => e.bool(true),
                    Index::List(l) => e.array(l.len() as u64).and_then(|e| {
                        l.iter().try_for_each(|i| e.u8(*i).map(|_| ()))?;
                        Ok(e)
                    }),
                };
            }
            Cmd::Override(params) | Cmd::Set(params) => {
                let _ = e.u8(if matches!(cmd, Cmd::Override(_)) {
                    20
                } else {
                    19
                });
                let _ = teep_suit::internal::encode_parameters(&parameters(f, params), e);
            }
            Cmd::TryEach(alternatives, nil) => {
                let _ = e
                    .u8(15)
                    .and_then(|e| e.array(alternatives.len() as u64 + u64::from(*nil)));
                for alt in alternatives {
                    let _ = e.bytes(&sequence(f, alt));
                }
                if *nil {
                    let _ = e.null();
                }
            }
            Cmd::RunSequence(inner) => {
                let _ = e.u8(32).and_then(|e| e.bytes(&sequence(f, inner)));
            }
            Cmd::Unknown(number, arg) => {
                let _ = e.i16(*number).and_then(|e| e.u8(*arg));
            }
        }
    }
}

fn sequence(f: &Fixture, cmds: &[Cmd]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    let _ = e.array(2 * cmds.len() as u64);
    encode_commands(f, cmds, &mut e);
    out
}

/// The (number, argument) pairs of an encoded sequence, as byte ranges; `None` when it is
/// no definite array of pairs.
fn pairs(seq: &[u8]) -> Option<Vec<&[u8]>> {
    let mut d = minicbor::Decoder::new(seq);
    let n = d.array().ok()??;
    let mut out = Vec::new();
    for _ in 0..n / 2 {
        let start = d.position();
        d.skip().ok()?;
        d.skip().ok()?;
        out.push(seq.get(start..d.position())?);
    }
    Some(out)
}

fn edit_sequence(f: &Fixture, current: Option<Vec<u8>>, op: &SeqOp) -> Option<Vec<u8>> {
    match op {
        SeqOp::Remove => None,
        SeqOp::Raw(bytes) => Some(bytes.clone()),
        SeqOp::Replace(cmds) => Some(sequence(f, cmds)),
        SeqOp::Insert(at, cmds) => {
            let current = current.unwrap_or_else(|| sequence(f, &[]));
            let Some(old) = pairs(&current) else {
                return Some(current);
            };
            let at = usize::from(*at).min(old.len());
            let mut out = Vec::new();
            let mut e = Encoder::new(&mut out);
            let _ = e.array(2 * (old.len() + cmds.len()) as u64);
            for pair in &old[..at] {
                e.writer_mut().extend_from_slice(pair);
            }
            encode_commands(f, cmds, &mut e);
            for pair in &old[at..] {
                e.writer_mut().extend_from_slice(pair);
            }
            Some(out)
        }
        SeqOp::Delete(at) => {
            let current = current?;
            let Some(old) = pairs(&current) else {
                return Some(current);
            };
            let at = usize::from(*at) % old.len().max(1);
            let mut out = Vec::new();
            let mut e = Encoder::new(&mut out);
            let kept: Vec<&[u8]> = old
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != at)
                .map(|(_, p)| *p)
                .collect();
            let _ = e.array(2 * kept.len() as u64);
            for pair in kept {
                e.writer_mut().extend_from_slice(pair);
            }
            Some(out)
        }
    }
}

fn apply(f: &Fixture, parts: &mut Parts, edit: &Edit) {
    match edit {
        Edit::Components(ids) => {
            parts.components = ids.iter().map(|s| component_id(s)).collect();
        }
        Edit::ManifestId(id) => parts.manifest_id = id.as_deref().map(component_id),
        Edit::Dependencies(deps) => {
            parts.dependencies = deps
                .iter()
                .map(|(i, prefix)| (u64::from(*i), prefix.as_deref().map(component_id)))
                .collect();
        }
        Edit::ReferenceUri(uri) => parts.reference_uri = uri.clone(),
        Edit::Section(i, op) => match pick(&SECTION_KEYS, *i) {
            0 => parts.shared = edit_sequence(f, parts.shared.take(), op),
            key => {
                if let Some(seq) = edit_sequence(f, parts.sections.remove(&key), op) {
                    parts.sections.insert(key, seq);
                }
            }
        },
        Edit::Integrated(i, bytes) => {
            let key = pick(&["#tc", "#dependency-0", "#other"], *i);
            parts.integrated.retain(|(k, _)| k != key);
            parts.integrated.push((key.into(), bytes.clone()));
        }
    }
}

/// An encoded bstr.
fn bstr(contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = Encoder::new(&mut out).bytes(contents);
    out
}

/// SUIT_Manifest (keys ascending) and the severed elements (key, encoded bstr) it refers to.
fn encode_manifest(
    parts: &Parts,
    sequence_number: u64,
    sever: &[Sever; 4],
) -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
    let mut common = Vec::new();
    {
        let mut e = Encoder::new(&mut common);
        let fields =
            1 + u64::from(!parts.dependencies.is_empty()) + u64::from(parts.shared.is_some());
        let _ = e.map(fields);
        if !parts.dependencies.is_empty() {
            let _ = e.u8(1).and_then(|e| e.map(parts.dependencies.len() as u64));
            for (index, prefix) in &parts.dependencies {
                let _ = e.u64(*index);
                match prefix {
                    Some(id) => {
                        let _ = e.map(1).and_then(|e| e.u8(1));
                        e.writer_mut().extend_from_slice(&id.to_cbor());
                    }
                    None => {
                        let _ = e.map(0);
                    }
                }
            }
        }
        let _ = e.u8(2).and_then(|e| e.array(parts.components.len() as u64));
        for c in &parts.components {
            e.writer_mut().extend_from_slice(&c.to_cbor());
        }
        if let Some(shared) = &parts.shared {
            let _ = e.u8(4).and_then(|e| e.bytes(shared));
        }
    }
    let mut severed = Vec::new();
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    let fields = 3
        + u64::from(parts.reference_uri.is_some())
        + u64::from(parts.manifest_id.is_some())
        + parts.sections.len() as u64;
    let _ = e.map(fields);
    let _ = e.u8(1).and_then(|e| e.u8(1));
    let _ = e.u8(2).and_then(|e| e.u64(sequence_number));
    let _ = e.u8(3).and_then(|e| e.bytes(&common));
    if let Some(uri) = &parts.reference_uri {
        let _ = e.u8(4).and_then(|e| e.str(uri));
    }
    if let Some(id) = &parts.manifest_id {
        let _ = e.u8(5);
        e.writer_mut().extend_from_slice(&id.to_cbor());
    }
    for (key, seq) in &parts.sections {
        let _ = e.u64(*key);
        let mode = match key {
            15 => sever[0],
            16 => sever[1],
            18 => sever[2],
            20 => sever[3],
            _ => Sever::Keep,
        };
        let element = bstr(seq);
        match mode {
            Sever::Keep => e.writer_mut().extend_from_slice(&element),
            Sever::Severed | Sever::Tampered | Sever::Missing => {
                e.writer_mut()
                    .extend_from_slice(&digest_of(&element).to_cbor());
                let mut element = element;
                match mode {
                    Sever::Tampered => {
                        if let Some(last) = element.last_mut() {
                            *last ^= 1;
                        }
                        severed.push((*key, element));
                    }
                    Sever::Missing => {}
                    _ => severed.push((*key, element)),
                }
            }
        }
    }
    (out, severed)
}

fn mac_block(key: &[u8], digest_cbor: &[u8]) -> Vec<u8> {
    let protected = coset::HeaderBuilder::new()
        .algorithm(iana::Algorithm::HMAC_256_256)
        .build();
    let mut mac = coset::CoseMac0Builder::new()
        .protected(protected)
        .payload(digest_cbor.to_vec())
        .create_tag(&[], |tbm| PROVIDER.hmac_sha256(key, tbm).to_vec())
        .build();
    mac.payload = None;
    mac.to_tagged_vec().expect("COSE_Mac0 encodes")
}

fn sign_block(signer: &dyn Signer, digest_cbor: &[u8]) -> Vec<u8> {
    let opts = SignOptions {
        detached: true,
        ..SignOptions::default()
    };
    teep_cose::sign1(signer, digest_cbor, &opts).expect("signing works")
}

fn auth_blocks(f: &Fixture, auth: Auth, digest_cbor: &[u8]) -> Vec<Vec<u8>> {
    match auth {
        Auth::SignerA => vec![sign_block(&*f.signer_a, digest_cbor)],
        Auth::SignerB => vec![sign_block(&*f.signer_b, digest_cbor)],
        Auth::Mac => vec![mac_block(&f.mac_keys[0], digest_cbor)],
        Auth::GarbageThenA => vec![
            vec![0xd2, 0x84, 0x40],
            sign_block(&*f.signer_a, digest_cbor),
        ],
        Auth::BadSignature(bit) => {
            let mut block = sign_block(&*f.signer_a, digest_cbor);
            // The signature is the last 64 bytes of the block.
            let at = block.len() - 1 - usize::from(bit / 8) % 64;
            block[at] ^= 1 << (bit % 8);
            vec![block]
        }
        Auth::BadMac => vec![mac_block(&[0x4e; 32], digest_cbor)],
        Auth::Garbage => vec![digest_cbor.to_vec()],
        Auth::NoBlock => vec![],
    }
}

fn envelope(
    f: &Fixture,
    parts: &Parts,
    sequence_number: u64,
    sever: &[Sever; 4],
    auth: Auth,
) -> Vec<u8> {
    let (manifest, severed) = encode_manifest(parts, sequence_number, sever);
    let manifest_bstr = bstr(&manifest);
    let digest_cbor = digest_of(&manifest_bstr).to_cbor();
    let blocks = auth_blocks(f, auth, &digest_cbor);
    let mut wrapper = Vec::new();
    {
        let mut e = Encoder::new(&mut wrapper);
        let _ = e.array(1 + blocks.len() as u64);
        let _ = e.bytes(&digest_cbor);
        for b in &blocks {
            let _ = e.bytes(b);
        }
    }
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    let _ = e.map(2 + severed.len() as u64 + parts.integrated.len() as u64);
    let _ = e.u8(2).and_then(|e| e.bytes(&wrapper));
    let _ = e.u8(3);
    e.writer_mut().extend_from_slice(&manifest_bstr);
    for (key, element) in &severed {
        let _ = e.u64(*key);
        e.writer_mut().extend_from_slice(element);
    }
    for (key, value) in &parts.integrated {
        let _ = e.str(key).and_then(|e| e.bytes(value));
    }
    out
}

// ---- Checks ----

/// `install_all` of the candidate and the batch on a fresh copy of the base state: all or
/// nothing, and the same as installing them one by one.
fn check_install_all(
    f: &Fixture,
    p: &Processor<'_>,
    candidate: (&[u8], Auth),
    batch: &[Option<Batched>; 2],
) {
    let mut list = vec![(candidate.0.to_vec(), candidate.1)];
    for b in batch.iter().flatten() {
        let t = &f.templates[usize::from(b.template) % f.templates.len()];
        let seq = t
            .sequence_number
            .wrapping_add_signed(i64::from(b.sequence_delta));
        list.push((envelope(f, t, seq, &[Sever::Keep; 4], b.auth), b.auth));
    }
    let envelopes: Vec<&[u8]> = list.iter().map(|(e, _)| e.as_slice()).collect();

    let mut together = f.base.clone();
    let out = p.install_all(&mut together, &envelopes, Some(b"nonce"));
    assert_eq!(
        out.outcomes.len(),
        envelopes.len(),
        "one outcome per manifest"
    );
    out.outcomes.iter().for_each(check_report);
    check_signers(f, &together);

    let mut one_by_one = f.base.clone();
    let first_failure = list
        .iter()
        .position(|(env, auth)| install(f, p, &mut one_by_one, env, *auth).is_none());
    match out.result {
        Ok(()) => {
            assert!(
                list.iter().all(|(_, a)| a.valid()),
                "unauthenticated in a batch"
            );
            assert!(out.outcomes.iter().all(|o| o.result.is_ok()));
            assert_eq!(first_failure, None, "batch succeeded, one by one failed");
            assert_eq!(together, one_by_one, "batch and one-by-one states differ");
        }
        Err(e) => {
            assert_eq!(together, f.base, "a failed install_all changed storage");
            assert!(out.outcomes.iter().all(|o| o.result.is_err()));
            assert_eq!(
                e.item,
                first_failure.map(UpdateItem::Manifest),
                "failing manifest differs"
            );
        }
    }
}

fn check_report(out: &Outcome) {
    let cbor = out.report.to_cbor().unwrap();
    assert_eq!(
        teep_cbor::check(&cbor, &teep_cbor::Profile::TEEP),
        Ok(()),
        "report is not well-formed CBOR: {}",
        hex::encode(&cbor)
    );
    let _ = teep_suit::json::report(&out.report).to_string();
}

/// Every manifest's recorded signer is an anchor whose scope covers its location (or the
/// device's MAC keys, which may write anywhere).
fn check_signers(f: &Fixture, store: &MemoryStorage) {
    for (id, signer) in &store.signers {
        if let SignerId::Anchor(name) = signer {
            let anchor = f.trust.anchors().iter().find(|a| a.name == *name);
            assert!(
                anchor.is_some_and(|a| a.covers(id)),
                "{id} recorded as installed by {name}, outside its scope"
            );
        }
    }
}

/// A manifest authenticated by B lies inside B's scope: its location and the components
/// it lists (other than dependencies, which are their own signers'), recorded as B's.
fn check_b_scope(f: &Fixture, store: &MemoryStorage, envelope: &[u8], id: &ComponentId) {
    let b = &f.anchor_b;
    assert!(b.covers(id), "B installed {id}, outside its scope");
    assert_eq!(
        store.signers.get(id),
        Some(&SignerId::Anchor(b.name.clone())),
        "B's manifest not recorded as B's"
    );
    let env = Envelope::decode(envelope).expect("an installed envelope decodes");
    let common = Manifest::decode(env.manifest_bytes)
        .expect("an installed manifest decodes")
        .common;
    for (i, c) in common.components.iter().enumerate() {
        assert!(
            common.dependency(i as u64).is_some() || b.covers(c),
            "B's manifest lists {c}, outside B's scope"
        );
    }
}

/// Install and its invariants; the manifest ID on success.
fn install(
    f: &Fixture,
    p: &Processor<'_>,
    store: &mut MemoryStorage,
    envelope: &[u8],
    auth: Auth,
) -> Option<ComponentId> {
    let before = store.clone();
    let out = p.install(store, envelope, Some(b"nonce"));
    check_report(&out);
    check_signers(f, store);
    match out.result {
        Err(_) => {
            assert_eq!(*store, before, "a failed install changed storage");
            None
        }
        Ok(done) => {
            assert!(
                auth.valid(),
                "installed without a valid authentication block"
            );
            if auth == Auth::SignerB {
                check_b_scope(f, store, envelope, &done.manifest_id);
            }
            let id = &done.manifest_id;
            let candidate = Envelope::decode(envelope).expect("an installed envelope decodes");
            // A re-delivery (same number, same manifest as stored) succeeds and keeps
            // what is stored.
            let stored_before = before.data.get(id);
            let redelivery = before.sequence_numbers.get(id) == Some(&done.sequence_number)
                && stored_before
                    .and_then(|b| Envelope::decode(b).ok())
                    .is_some_and(|e| e.manifest_bstr == candidate.manifest_bstr);
            if let Some(old) = before.sequence_numbers.get(id) {
                assert!(
                    *old < done.sequence_number || redelivery,
                    "rollback: {id} from {old} to {}",
                    done.sequence_number
                );
            }
            assert_eq!(store.sequence_numbers.get(id), Some(&done.sequence_number));
            let stored = if redelivery {
                stored_before.cloned()
            } else {
                Some(candidate.stripped())
            };
            assert_eq!(store.data.get(id), stored.as_ref(), "stored manifest");
            Some(done.manifest_id)
        }
    }
}

fn check_unchanged_on_failure(
    f: &Fixture,
    store: &mut MemoryStorage,
    run: impl FnOnce(&mut MemoryStorage) -> Outcome,
) {
    let before = store.clone();
    let out = run(store);
    check_report(&out);
    check_signers(f, store);
    if out.result.is_err() {
        assert_eq!(*store, before, "a failed procedure changed storage");
    }
}

fuzz_target!(|input: Input| {
    let f = fixture();
    let template = &f.templates[usize::from(input.template) % f.templates.len()];
    let mut parts = template.clone();
    for edit in input.edits.iter().take(16) {
        apply(f, &mut parts, edit);
    }
    let sequence_number = template
        .sequence_number
        .wrapping_add_signed(i64::from(input.sequence_delta));
    let candidate = envelope(f, &parts, sequence_number, &input.sever, input.auth);

    let p = processor(f, input.require_compatibility_check);
    check_install_all(f, &p, (&candidate, input.auth), &input.batch);
    let mut store = f.base.clone();
    let installed = install(f, &p, &mut store, &candidate, input.auth);
    let candidate_id = installed.or_else(|| parts.manifest_id.clone());

    for action in input.then.iter().flatten() {
        let target = |t: &Target| match t {
            Target::Candidate => candidate_id.clone().unwrap_or_default(),
            Target::Tc => f.tc_id.clone(),
            Target::Personalization => f.perso_id.clone(),
            Target::Other(segments) => component_id(segments),
        };
        match action {
            Action::InstallAgain => {
                install(f, &p, &mut store, &candidate, input.auth);
            }
            Action::InstallTemplate(i) => {
                let t = &f.templates[usize::from(*i) % f.templates.len()];
                let env = envelope(f, t, t.sequence_number, &[Sever::Keep; 4], Auth::SignerA);
                install(f, &p, &mut store, &env, Auth::SignerA);
            }
            Action::Invoke(t) => {
                let id = target(t);
                check_unchanged_on_failure(f, &mut store, |s| p.invoke(s, &id, None));
            }
            Action::Uninstall(t) => {
                let id = target(t);
                check_unchanged_on_failure(f, &mut store, |s| p.uninstall(s, &id, None));
            }
        }
    }
});
