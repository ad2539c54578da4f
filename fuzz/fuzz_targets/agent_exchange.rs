//! The TEEP Agent engine (`teep_agent::engine::Agent::handle`) on a `MemoryTee`, fed by an
//! attacker who controls the network between TAM and device, or is a TAM the device does
//! not trust.
//!
//! Set up once: TAM keys A and B (Ed25519, the Agent's suite: A is the signed vectors'
//! `ed25519` key, so their `*.ed25519.cose` messages verify), C (the vectors' `esp256`
//! key: trusted, but in another suite), two strangers (Ed25519, P-256), the Agent's TEEP
//! key (Ed25519), its attestation key, the TEE's TC decryption key, B's report encryption
//! key (`tam_encryption_keys`), the trusted TC signer (P-256) and a rogue one, a pool of
//! signed SUIT envelopes (TCs at several sequence numbers, a dependency chain, an encrypted
//! TC, a tampered one, rogue-signed ones), and four TEE states: (0) fresh; (1) after A's
//! QueryRequest (attestation, tc-list) under `TAM_URI`; (2) A installed `one` v1 and `app`
//! v1 (depending on `lib` v1), B installed `bee` v1 under `TAM2_URI`, an app requested
//! `two` and dropped `app`, then A's QueryRequest was answered; (3) state 2 after A's
//! Update to `one` v2 (so `TAM_URI`'s next state-changing Update is superseded). Each
//! input runs on a fresh engine over a copy of one state.
//!
//! First byte: mode (bits 0-1), state (bits 2-3), TAM URI the Broker names (bits 4-5:
//! `TAM_URI`, `TAM2_URI`, an unconfigured one, `TAM_URI`), signer variant (bits 6-7). Modes:
//! (0) the rest is the body as received; (1) the rest is a TEEP message payload the harness
//! signs with a trusted key (variant: A Sign1, B Sign1, COSE_Sign by C and A, A Sign1
//! untagged without kid); (2) the same signed by an untrusted key (stranger Ed25519,
//! stranger P-256, C alone, COSE_Sign by both strangers); (3) a structured Update: a
//! template byte, then 3-byte edits (push / replace / remove / duplicate / swap / flip a
//! bit in / truncate / extend envelopes, edit the unneeded list, the token, err-code,
//! attestation payload), encoded and signed as in mode 1. In modes 1 and 2 a manifest-list
//! entry of at most one byte `k` stands for pool envelope `k` (so seeds stay short and
//! valid whatever the TC signer's signatures are).
//!
//! Asserts: no panic; every reply is present, signed by the Agent's key, of the type the
//! event says, and echoes the token exactly when the message verified (never from an
//! unverified one); Errors carry the lists their code requires (§4.5); a message that does
//! not verify with a trusted key in the Agent's suite is refused; a refusal or failed
//! Update leaves the TEE (SUIT storage and sealed state) byte for byte unchanged; a
//! QueryRequest or an err-code-only Update changes no SUIT storage; sequence-number records
//! never go down and each installed manifest's number is its record; every manifest stored
//! or changed authenticates with the trusted TC signer; a TAM's message never changes a
//! root manifest the other TAM installed, and its tc-list never names one; after a
//! successful Update every listed envelope's location holds at least its sequence number,
//! with one SUIT report per envelope, and every unlinked manifest lost its root link (and
//! is gone unless another manifest links it); a changed sealed state starts an engine
//! again; SUIT reports carry the token as nonce and are
//! encrypted exactly for B; a QueryResponse has Evidence (nonce = challenge, else token;
//! `cnf` = the Agent's key; encrypted exactly for B), tc-list and ext-list exactly when
//! asked; an accepted message replayed is refused (`Replay`) when it has a token and
//! changes no SUIT storage when it has none; after a committed state-changing Update from a
//! TAM URI the Agent answered before, that URI's next state-changing Update is
//! `Superseded`.
#![no_main]

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the Agent engine tests' helpers, shared as they are"
)]
#[path = "../../crates/teep-agent/tests/common/mod.rs"]
mod common;

use std::sync::OnceLock;

use common::{device_claims, manifest_id, signer, spec, ta_id, update};
use libfuzzer_sys::fuzz_target;
use teep_agent::engine::{Agent, AgentConfig, Attestation, Context, Event, Limits, Refusal};
use teep_agent::memory::{MemoryTee, Snapshot};
use teep_attest::{decrypt_evidence, verify_evidence};
use teep_cose::encrypt::DecryptionKey;
use teep_cose::{AwsLcProvider, Curve, PrivateKey, SignOptions, Signer, TrustStore, VerifyContext};
use teep_proto::{
    CipherSuite, DataItemRequested, ErrCode, FreshnessMechanism, Message, Numbering, QueryRequest,
    SuitCoseProfile, Unverified, Update, decode_unsigned,
};
use teep_suit::builder::{self, DependencySpec, ManifestSpec, PayloadLocation};
use teep_suit::processor::{DeviceIdentity, KeyDecryptor};
use teep_suit::report::{ReceivedReport, ReportKeys};
use teep_suit::storage::MemoryStorage;
use teep_suit::trust::{TrustAnchor, TrustAnchors};
use teep_suit::verify::{Anchors, authenticate};
use teep_suit::{ComponentId, Envelope, Manifest};

static PROVIDER: AwsLcProvider = AwsLcProvider;

const NUMBERING: Numbering = Numbering::Draft26;
/// 2026-01-01T00:00:00Z.
const NOW: u64 = 1_767_225_600;
const TAM_URI: &str = "https://tam.example/tam";
const TAM2_URI: &str = "https://tam2.example/tam";
const EVIL_URI: &str = "https://evil.example/tam";
const URIS: [&str; 4] = [TAM_URI, TAM2_URI, EVIL_URI, TAM_URI];
const CX: Context = Context {
    now: NOW,
    random: [0x5a; 32],
};

/// Tokens the setup used (remembered as answered in the states that followed).
const SETUP_TOKENS: [[u8; 16]; 5] = [[0x01; 16], [0x02; 16], [0x03; 16], [0x04; 16], [0x05; 16]];

/// The pool of envelopes (index: what it is). Mode 1/2 placeholders and mode 3 edits pick
/// from it by index.
const POOL: [&str; 20] = [
    "one v1",
    "one v2",
    "one v3",
    "two v1",
    "two v2",
    "lib v1",
    "lib v2",
    "app v1 (lib v1)",
    "app v2 (lib v1)",
    "app v2 (lib v2)",
    "three v1 (rogue signer)",
    "one v9 (rogue signer)",
    "secret v1 (encrypted to the TEE)",
    "bee v2",
    "one v2 (payload tampered)",
    "two v1 (by URI, nothing fetches it)",
    "app v3 (one v2 as dependency)",
    "one v0",
    "bee v1",
    "secret v2 (encrypted to another key)",
];

struct Fixture {
    tam_a: Box<dyn Signer>,
    tam_b: Box<dyn Signer>,
    tam_c: Box<dyn Signer>,
    stranger_ed: Box<dyn Signer>,
    stranger_p256: Box<dyn Signer>,
    agent_key: PrivateKey,
    attestation_key: PrivateKey,
    tee_key: PrivateKey,
    /// B's report and Evidence encryption key.
    b_enc: PrivateKey,
    /// The Agent's effective TAM anchors (its suite): A and B.
    ours: TrustStore,
    /// C alone (trusted, other suite).
    only_c: TrustStore,
    /// The TC signer, for `authenticate`.
    tc_store: TrustStore,
    tc_trust: TrustAnchors,
    tam_trust: TrustStore,
    no_keys: TrustStore,
    pool: Vec<Vec<u8>>,
    probe: Vec<u8>,
    unneeded_ids: Vec<ComponentId>,
    states: Vec<Snapshot>,
}

fn sign_spec(spec: &ManifestSpec, signer: &dyn Signer) -> Vec<u8> {
    let built = builder::build(spec, &PROVIDER).expect("envelope builds");
    builder::sign(&built.envelope, signer, &PROVIDER).expect("envelope signs")
}

fn fixed(curve: Curve, byte: u8) -> PrivateKey {
    PrivateKey::from_bytes(curve, &[byte; 32]).expect("fixed key")
}

fn config(f: &Fixture) -> AgentConfig {
    AgentConfig {
        provider: &PROVIDER,
        numbering: NUMBERING,
        tam_trust: f.tam_trust.clone(),
        tam_uris: vec![TAM_URI.into(), TAM2_URI.into()],
        tc_trust: f.tc_trust.clone(),
        device: DeviceIdentity::default(),
        suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
        tam_attestation: None,
        tam_encryption_key: None,
        tam_encryption_keys: vec![(
            f.tam_b.public_key().thumbprint(),
            f.b_enc.public_key().clone(),
        )],
        limits: Limits::default(),
        attestation: Attestation::Evidence,
    }
}

fn agent_on(f: &Fixture, state: &Snapshot) -> Agent<MemoryTee> {
    let mut tee = MemoryTee::new(
        signer(&f.agent_key),
        signer(&f.attestation_key),
        device_claims(),
        Box::new(|image, input| Ok([image, input].concat())),
    )
    .with_decryptor(Box::new(KeyDecryptor {
        provider: &PROVIDER,
        keys: vec![DecryptionKey::EcdhEs(f.tee_key.clone())],
    }));
    tee.storage = state.storage.clone();
    tee.state = state.state.clone();
    Agent::new(config(f), tee).expect("the engine starts on a saved state")
}

fn sign1(s: &dyn Signer, payload: &[u8], tagged: bool) -> Vec<u8> {
    let opts = SignOptions {
        tagged,
        kid: tagged,
        ..SignOptions::default()
    };
    teep_cose::sign1(s, payload, &opts).expect("signs")
}

fn sign_multi(signers: &[&dyn Signer], payload: &[u8]) -> Vec<u8> {
    teep_cose::sign(signers, payload, &SignOptions::default()).expect("signs")
}

fn encode(m: &Message) -> Vec<u8> {
    m.encode(NUMBERING).expect("setup message encodes")
}

fn query(token: &[u8], challenge: Option<&[u8]>, bits: DataItemRequested) -> Message {
    Message::QueryRequest(QueryRequest {
        token: Some(token.to_vec()),
        challenge: challenge.map(<[u8]>::to_vec),
        supported_freshness_mechanisms: Some(vec![FreshnessMechanism::NONCE]),
        supported_teep_cipher_suites: vec![CipherSuite::SIGN1_ESP256, CipherSuite::SIGN1_ED25519],
        supported_suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
        data_item_requested: bits,
        ..QueryRequest::default()
    })
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let tam_a = PrivateKey::from_pem(include_str!(
            "../../tests/vectors/signed/keys/ed25519.priv.pem"
        ))
        .expect("vector ed25519 key");
        let tam_c = PrivateKey::from_pem(include_str!(
            "../../tests/vectors/signed/keys/esp256.priv.pem"
        ))
        .expect("vector esp256 key");
        let tam_b = fixed(Curve::Ed25519, 0xb2);
        let tc_key = fixed(Curve::P256, 0x7c);
        let rogue_key = fixed(Curve::P256, 0x66);
        let tee_key = fixed(Curve::P256, 0x7e);
        let other_tee = fixed(Curve::P256, 0x7f);

        let mut tam_trust = TrustStore::new();
        for k in [&tam_a, &tam_b, &tam_c] {
            tam_trust.add_key(k.public_key().clone());
        }
        let mut ours = TrustStore::new();
        ours.add_key(tam_a.public_key().clone());
        ours.add_key(tam_b.public_key().clone());
        let mut only_c = TrustStore::new();
        only_c.add_key(tam_c.public_key().clone());
        let mut tc_store = TrustStore::new();
        tc_store.add_key(tc_key.public_key().clone());
        let mut tc_trust = TrustAnchors::new();
        tc_trust.add(TrustAnchor::unscoped(tc_key.public_key().clone()));

        let tc = signer(&tc_key);
        let rogue = signer(&rogue_key);
        let env = |name: &str, seq| sign_spec(&spec(name, seq), tc.as_ref());
        let depending = |name: &str, seq, dep: Vec<u8>| {
            let mut s = spec(name, seq);
            s.dependencies = vec![DependencySpec { envelope: dep }];
            sign_spec(&s, tc.as_ref())
        };
        let encrypted = |seq, to: &PrivateKey| {
            let mut s = spec("secret", seq);
            s.encrypt_to = Some(to.public_key().clone());
            sign_spec(&s, tc.as_ref())
        };
        let tampered = {
            let mut e = env("one", 2);
            let image = b"one image v2";
            let at = e
                .windows(image.len())
                .position(|w| w == image)
                .expect("integrated payload");
            e[at] ^= 0x20;
            e
        };
        let by_uri = {
            let mut s = spec("two", 1);
            s.location = PayloadLocation::Uri("https://tam.example/two.ta".into());
            sign_spec(&s, tc.as_ref())
        };
        let pool = vec![
            env("one", 1),
            env("one", 2),
            env("one", 3),
            env("two", 1),
            env("two", 2),
            env("lib", 1),
            env("lib", 2),
            depending("app", 1, env("lib", 1)),
            depending("app", 2, env("lib", 1)),
            depending("app", 2, env("lib", 2)),
            sign_spec(&spec("three", 1), rogue.as_ref()),
            sign_spec(&spec("one", 9), rogue.as_ref()),
            encrypted(1, &tee_key),
            env("bee", 2),
            tampered,
            by_uri,
            depending("app", 3, env("one", 2)),
            env("one", 0),
            env("bee", 1),
            encrypted(2, &other_tee),
        ];
        assert_eq!(pool.len(), POOL.len());
        let unneeded_ids = vec![
            manifest_id("one"),
            manifest_id("two"),
            manifest_id("lib"),
            manifest_id("app"),
            manifest_id("bee"),
            manifest_id("secret"),
            manifest_id("three"),
            manifest_id("ghost"),
            ta_id("one"),
            manifest_id("probe"),
            ComponentId::from_strs(&["TEEP-Device"]),
        ];

        let mut f = Fixture {
            tam_a: signer(&tam_a),
            tam_b: signer(&tam_b),
            tam_c: signer(&tam_c),
            stranger_ed: signer(&fixed(Curve::Ed25519, 0x99)),
            stranger_p256: signer(&fixed(Curve::P256, 0x98)),
            agent_key: fixed(Curve::Ed25519, 0xa9),
            attestation_key: fixed(Curve::P256, 0xa7),
            tee_key,
            b_enc: fixed(Curve::P256, 0xbe),
            ours,
            only_c,
            tc_store,
            tc_trust,
            tam_trust,
            no_keys: TrustStore::new(),
            probe: env("probe", 1),
            pool,
            unneeded_ids,
            states: Vec::new(),
        };

        // The four states.
        let fresh = Snapshot {
            storage: MemoryStorage::new(),
            state: None,
        };
        let run = |agent: &mut Agent<MemoryTee>, uri, s: &dyn Signer, m: &Message| {
            let event = agent.handle(uri, &sign1(s, &encode(m), true), CX).event;
            assert!(
                matches!(
                    event,
                    Event::QueryAnswered { .. } | Event::UpdateApplied { .. }
                ),
                "setup message refused: {event:?}"
            );
        };
        let all = DataItemRequested::ATTESTATION.with(DataItemRequested::TRUSTED_COMPONENTS);
        let queried = {
            let mut agent = agent_on(&f, &fresh);
            let q = query(&SETUP_TOKENS[2], Some(&[0xc4; 32]), all);
            run(&mut agent, TAM_URI, f.tam_a.as_ref(), &q);
            agent.tee().snapshot()
        };
        let (installed, superseded) = {
            let mut agent = agent_on(&f, &fresh);
            let u = update(
                &SETUP_TOKENS[0],
                vec![f.pool[0].clone(), f.pool[7].clone()],
                vec![],
            );
            run(&mut agent, TAM_URI, f.tam_a.as_ref(), &u);
            let u = update(&SETUP_TOKENS[1], vec![f.pool[18].clone()], vec![]);
            run(&mut agent, TAM2_URI, f.tam_b.as_ref(), &u);
            agent
                .request_ta(ta_id("two"), None)
                .expect("request_ta works");
            agent
                .unrequest_ta(&ta_id("app"))
                .expect("unrequest_ta works");
            let q = query(
                &SETUP_TOKENS[3],
                None,
                DataItemRequested::TRUSTED_COMPONENTS,
            );
            run(&mut agent, TAM_URI, f.tam_a.as_ref(), &q);
            let installed = agent.tee().snapshot();
            let u = update(&SETUP_TOKENS[4], vec![f.pool[1].clone()], vec![]);
            run(&mut agent, TAM_URI, f.tam_a.as_ref(), &u);
            (installed, agent.tee().snapshot())
        };
        f.states = vec![fresh, queried, installed, superseded];
        f
    })
}

// ---- Building the message ----

/// Who signed what the harness sends (for the ownership and encryption checks).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tam {
    A,
    B,
}

/// Replaces manifest-list entries of at most one byte by pool envelopes; `None` when there
/// is nothing to replace (the payload is then signed as it came).
fn substitute(f: &Fixture, payload: &[u8]) -> Option<Vec<u8>> {
    let Ok(Message::Update(mut u)) = decode_unsigned(payload, NUMBERING) else {
        return None;
    };
    let list = u.manifest_list.as_mut()?;
    let mut changed = false;
    for e in list.iter_mut().filter(|e| e.len() <= 1) {
        let k = usize::from(e.first().copied().unwrap_or(0)) % f.pool.len();
        *e = f.pool[k].clone();
        changed = true;
    }
    if !changed {
        return None;
    }
    Message::Update(u).encode(NUMBERING).ok()
}

fn sign_trusted(f: &Fixture, variant: u8, payload: &[u8]) -> Vec<u8> {
    match variant {
        0 => sign1(f.tam_a.as_ref(), payload, true),
        1 => sign1(f.tam_b.as_ref(), payload, true),
        2 => sign_multi(&[f.tam_c.as_ref(), f.tam_a.as_ref()], payload),
        _ => sign1(f.tam_a.as_ref(), payload, false),
    }
}

fn sign_untrusted(f: &Fixture, variant: u8, payload: &[u8]) -> Vec<u8> {
    match variant {
        0 => sign1(f.stranger_ed.as_ref(), payload, true),
        1 => sign1(f.stranger_p256.as_ref(), payload, true),
        2 => sign1(f.tam_c.as_ref(), payload, true),
        _ => sign_multi(&[f.stranger_p256.as_ref(), f.stranger_ed.as_ref()], payload),
    }
}

/// Mode 3: a template Update, edited, encoded. `None` when the edits make it unencodable.
fn structured(f: &Fixture, data: &[u8]) -> Option<Vec<u8>> {
    let (&template, mut edits) = data.split_first()?;
    let p = |k: usize| f.pool[k].clone();
    let id = |k: usize| f.unneeded_ids[k].clone();
    let mut u = Update {
        token: Some(vec![0x5e; 16]),
        ..Update::default()
    };
    let (mut list, mut unneeded): (Vec<Vec<u8>>, Vec<ComponentId>) = match template % 8 {
        0 => (vec![p(1)], vec![]),
        1 => (vec![p(3)], vec![]),
        2 => (vec![p(9)], vec![]),
        3 => (vec![], vec![id(0)]),
        4 => (vec![p(3)], vec![id(3)]),
        5 => {
            u.err_code = Some(ErrCode::PermanentError);
            (vec![], vec![])
        }
        6 => (vec![p(12)], vec![]),
        _ => (vec![p(2), p(4), p(8)], vec![id(4)]),
    };
    let mut unneeded_present = !unneeded.is_empty();
    let mut count = 0;
    while let [op, a, b, rest @ ..] = edits {
        edits = rest;
        count += 1;
        if count > 24 {
            break;
        }
        let (code, x, a, b) = (op & 0x0f, op >> 4, usize::from(*a), usize::from(*b));
        let n = list.len();
        match code {
            0 => list.push(p(a % f.pool.len())),
            1 if n > 0 => list[a % n] = p(b % f.pool.len()),
            2 if n > 0 => {
                list.remove(a % n);
            }
            3 if n > 0 => {
                let e = list[a % n].clone();
                list.insert(b % (n + 1), e);
            }
            4 if n > 0 => list.swap(a % n, b % n),
            5 => {
                unneeded.push(id(a % f.unneeded_ids.len()));
                unneeded_present = true;
            }
            6 if !unneeded.is_empty() => {
                let m = unneeded.len();
                unneeded.remove(a % m);
            }
            7 => {
                u.token = match x % 7 {
                    0 => None,
                    1 => Some(vec![b as u8; 16]),
                    2 => Some(SETUP_TOKENS[b % SETUP_TOKENS.len()].to_vec()),
                    3 => Some(vec![b as u8; 8]),
                    4 => Some(vec![b as u8; 64]),
                    5 => Some(vec![b as u8; 1 + a % 8]),
                    _ => Some(vec![b as u8; 65]),
                }
            }
            8 if n > 0 => {
                let e = &mut list[n - 1];
                if !e.is_empty() {
                    let at = ((a << 8) | b) % e.len();
                    e[at] ^= 1 << (x % 8);
                }
            }
            9 if n > 0 => {
                let e = &mut list[a % n];
                let keep = e.len() * b / 256;
                e.truncate(keep);
            }
            10 => {
                u.err_code = (b != 0).then(|| ErrCode::KNOWN[a % ErrCode::KNOWN.len()]);
                u.err_msg = (x & 1 != 0).then(|| "bad QueryResponse".into());
            }
            11 => {
                u.attestation_payload_format = (x & 1 != 0).then(|| "application/eat+cwt".into());
                u.attestation_payload = Some(vec![b as u8; 1 + a % 32]);
            }
            12 => unneeded_present = x & 1 != 0,
            13 if n > 0 => {
                let e = &mut list[a % n];
                e.extend(std::iter::repeat_n(b as u8, 1 + usize::from(x)));
            }
            14 => list.clear(),
            _ => {}
        }
    }
    u.manifest_list = (!list.is_empty()).then_some(list);
    u.unneeded_manifest_list = unneeded_present.then_some(unneeded);
    Message::Update(u).encode(NUMBERING).ok()
}

// ---- Checks ----

/// What was sent, as the Agent should see it.
struct Sent<'a> {
    uri: &'a str,
    bytes: &'a [u8],
    /// The message as claimed (parsed, not verified).
    claimed: Option<Message>,
    /// The trusted TAM (in the Agent's suite) whose signature verifies, if any.
    verified: Option<Tam>,
    /// Verifies with C (trusted, another suite): the Agent may echo the token.
    by_c: bool,
}

fn sent<'a>(f: &Fixture, uri: &'a str, bytes: &'a [u8]) -> Sent<'a> {
    let verify = |store: &TrustStore| {
        let cx = VerifyContext {
            now: Some(NOW),
            ..VerifyContext::new(&PROVIDER, store)
        };
        Unverified::parse(bytes, NUMBERING)
            .and_then(|u| u.verify(&cx))
            .ok()
    };
    let claimed = Unverified::parse(bytes, NUMBERING)
        .ok()
        .map(|u| u.message().clone());
    let verified = verify(&f.ours).map(|v| {
        if v.signer() == f.tam_a.public_key() {
            Tam::A
        } else {
            assert_eq!(
                v.signer(),
                f.tam_b.public_key(),
                "verified by an unknown key"
            );
            Tam::B
        }
    });
    Sent {
        uri,
        bytes,
        claimed,
        verified,
        by_c: verify(&f.only_c).is_some(),
    }
}

/// The root manifests each TAM installed in state `state` (A's, B's).
fn owned(state: usize) -> (Vec<ComponentId>, Vec<ComponentId>) {
    if state >= 2 {
        (
            vec![manifest_id("one"), manifest_id("app")],
            vec![manifest_id("bee")],
        )
    } else {
        (vec![], vec![])
    }
}

/// Where the processor stores an envelope's manifest (as the engine computes it).
fn location(envelope: &[u8]) -> Option<(ComponentId, u64)> {
    let env = Envelope::decode(envelope).ok()?;
    let m = Manifest::decode(env.manifest_bytes).ok()?;
    let seq = m.sequence_number;
    let id = m.manifest_component_id.or_else(|| {
        let mut id = m.common.components.first()?.clone();
        id.0.push(b"suit".to_vec());
        Some(id)
    })?;
    Some((id, seq))
}

fn check_storage(f: &Fixture, before: &MemoryStorage, after: &MemoryStorage) {
    for (id, old) in &before.sequence_numbers {
        let new = after.sequence_numbers.get(id);
        assert!(
            new.is_some_and(|n| n >= old),
            "sequence number of {id} went from {old} to {new:?}"
        );
    }
    let anchors = Anchors {
        signers: &f.tc_store,
        mac_keys: &[],
        now: Some(NOW),
    };
    for id in after.installed() {
        let bytes = &after.data[&id];
        let env = Envelope::decode(bytes).expect("a stored manifest decodes");
        let summary = env.summary().expect("a stored manifest summarizes");
        assert_eq!(
            Some(&summary.sequence_number),
            after.sequence_numbers.get(&id),
            "{id} stored at a number other than its record"
        );
        if before.data.get(&id) != Some(bytes) {
            assert!(
                authenticate(bytes, &PROVIDER, &anchors).is_ok(),
                "{id} stored without the trusted TC signer's signature"
            );
        }
    }
}

/// The checks on one handled message; `before` is the TEE before it.
fn check(
    f: &Fixture,
    state: usize,
    s: &Sent<'_>,
    before: &Snapshot,
    event: &Event,
    reply: Option<&Vec<u8>>,
    after: &Snapshot,
) {
    let reply = reply.expect("a MemoryTee always signs: every message gets a reply");
    let answer = Unverified::parse(reply, NUMBERING)
        .and_then(|u| u.verify_with_key(&PROVIDER, f.agent_key.public_key()))
        .expect("the reply verifies with the Agent's key")
        .into_message();
    let claimed_token = s.claimed.as_ref().and_then(Message::token);

    // The reply type follows the event.
    let accepted = !matches!(event, Event::Refused(_) | Event::UpdateFailed { .. });
    match (event, &answer) {
        (Event::QueryAnswered { .. }, Message::QueryResponse(_))
        | (
            Event::UpdateApplied { .. } | Event::TamReported { .. } | Event::StateNotSaved,
            Message::Success(_),
        )
        | (Event::Refused(_) | Event::UpdateFailed { .. }, Message::Error(_)) => {}
        _ => panic!("event {event:?} answered with {answer:?}"),
    }
    if accepted {
        let expected_type = match event {
            Event::QueryAnswered { .. } => matches!(s.claimed, Some(Message::QueryRequest(_))),
            _ => matches!(s.claimed, Some(Message::Update(_))),
        };
        assert!(expected_type, "{event:?} for {:?}", s.claimed);
    }

    // Authentication: only a trusted TAM in our suite gets anything done.
    if s.verified.is_none() {
        assert!(
            matches!(event, Event::Refused(_)),
            "accepted without a trusted signature: {event:?}"
        );
    }
    if s.verified.is_some() {
        assert_eq!(answer.token(), claimed_token, "token not echoed");
    } else if !s.by_c {
        assert_eq!(
            answer.token(),
            None,
            "token echoed from an unverified message"
        );
    }
    if !accepted {
        assert_eq!(
            after, before,
            "a refused message or failed Update changed the TEE"
        );
    }
    if matches!(
        event,
        Event::QueryAnswered { .. } | Event::TamReported { .. }
    ) {
        assert_eq!(
            after.storage, before.storage,
            "{event:?} changed SUIT storage"
        );
    }
    check_storage(f, &before.storage, &after.storage);
    let (a_owned, b_owned) = owned(state);
    let others = match s.verified {
        Some(Tam::A) => b_owned,
        Some(Tam::B) => a_owned,
        None => vec![],
    };
    for id in &others {
        assert_eq!(
            (
                after.storage.data.get(id),
                after.storage.sequence_numbers.get(id)
            ),
            (
                before.storage.data.get(id),
                before.storage.sequence_numbers.get(id)
            ),
            "{:?} changed {id}, installed by the other TAM",
            s.verified
        );
    }
    if state == 3 && s.uri == TAM_URI {
        assert_eq!(
            after.storage, before.storage,
            "an Update after one applied since the last QueryResponse changed storage"
        );
    }

    // Reports: nonce = token, encrypted exactly for B.
    let reports = match &answer {
        Message::Success(m) => m.suit_reports.as_deref(),
        Message::Error(m) => m.suit_reports.as_deref(),
        _ => None,
    };
    let keys = ReportKeys {
        provider: &PROVIDER,
        device: &f.no_keys,
        tam: Some(&f.b_enc),
        require_signature: false,
    };
    for r in reports.unwrap_or_default() {
        let report = ReceivedReport::decode(r, &keys).expect("a SUIT report decodes");
        if let Some(t) = claimed_token {
            assert_eq!(
                report.nonce.as_deref(),
                Some(t),
                "report nonce is not the token"
            );
        }
        assert_eq!(
            report.protection.encrypted,
            s.verified == Some(Tam::B),
            "report encryption does not follow the TAM answered"
        );
    }
    if let (Event::UpdateApplied { installed, .. }, Some(Message::Update(u))) = (event, &s.claimed)
    {
        let list = u.manifest_list.as_deref().unwrap_or_default();
        assert_eq!(*installed, list.len(), "installed count");
        assert_eq!(
            reports.map_or(0, <[_]>::len),
            list.len(),
            "one report per envelope"
        );
        let mut locations = Vec::new();
        for e in list {
            let (id, seq) = location(e).expect("an installed envelope decodes");
            assert!(
                after.storage.installed().contains(&id)
                    && after.storage.sequence_numbers.get(&id) >= Some(&seq),
                "Success, but {id} is not installed at {seq} or above"
            );
            locations.push(id);
        }
        // An unlinked manifest loses its root link, and goes unless another still links it.
        for id in u.unneeded_manifest_list.iter().flatten() {
            if locations.contains(id) {
                continue;
            }
            let links = after.storage.owners_of(id);
            assert!(
                !links.contains(id),
                "Success, but {id} is still linked as a root"
            );
            assert!(
                !links.is_empty() || !after.storage.installed().contains(id),
                "Success, but {id} is still installed and nothing links it"
            );
        }
    }
    if after.state != before.state {
        // What the engine sealed, it can start from.
        drop(agent_on(f, after));
    }

    match &answer {
        Message::Error(e) => {
            let needs = match e.err_code {
                ErrCode::UnsupportedCipherSuites => e.supported_teep_cipher_suites.is_some(),
                ErrCode::UnsupportedFreshnessMechanisms => {
                    e.supported_freshness_mechanisms.is_some()
                }
                ErrCode::UnsupportedSuitReport => e.supported_suit_cose_profiles.is_some(),
                ErrCode::UnsupportedMsgVersion => e.versions.is_some(),
                _ => true,
            };
            assert!(needs, "Error {:?} without its required list", e.err_code);
        }
        Message::QueryResponse(r) => {
            let Some(Message::QueryRequest(q)) = &s.claimed else {
                unreachable!("checked above")
            };
            let asked = q.data_item_requested;
            assert_eq!(
                r.attestation_payload.is_some(),
                asked.contains(DataItemRequested::ATTESTATION),
                "attestation payload iff asked"
            );
            assert_eq!(
                r.tc_list.is_some(),
                asked.contains(DataItemRequested::TRUSTED_COMPONENTS),
                "tc-list iff asked"
            );
            assert_eq!(
                r.ext_list.is_some(),
                asked.contains(DataItemRequested::EXTENSIONS),
                "ext-list iff asked"
            );
            if let Event::QueryAnswered { attested, tcs } = event {
                assert_eq!(*attested, r.attestation_payload.is_some());
                assert_eq!(*tcs, r.tc_list.as_ref().map_or(0, Vec::len));
            }
            let (a_owned, b_owned) = owned(state);
            let hidden = if s.verified == Some(Tam::A) {
                b_owned
            } else {
                a_owned
            };
            for c in r.tc_list.iter().flatten() {
                assert!(
                    !hidden.contains(&c.component_id),
                    "tc-list names {}, the other TAM's",
                    c.component_id
                );
            }
            if let Some(payload) = &r.attestation_payload {
                check_evidence(f, s, q, payload);
            }
        }
        _ => {}
    }
}

fn check_evidence(f: &Fixture, s: &Sent<'_>, q: &QueryRequest, payload: &[u8]) {
    let plain = if s.verified == Some(Tam::B) {
        decrypt_evidence(&PROVIDER, payload, &f.b_enc).expect("Evidence for B is encrypted to B")
    } else {
        payload.to_vec()
    };
    let mut trust = TrustStore::new();
    trust.add_key(f.attestation_key.public_key().clone());
    let (claims, _) = verify_evidence(&plain, &VerifyContext::new(&PROVIDER, &trust))
        .expect("Evidence verifies with the attestation key");
    assert_eq!(
        claims.nonce.as_deref(),
        q.challenge.as_deref().or(q.token.as_deref()),
        "eat_nonce is not the challenge (else the token)"
    );
    assert_eq!(
        claims.cnf_key().ok().as_ref(),
        Some(f.agent_key.public_key()),
        "cnf is not the Agent's TEEP key"
    );
    assert_eq!(claims.iat, i64::try_from(NOW).ok(), "iat");
}

fn handle_checked(
    f: &Fixture,
    state: usize,
    agent: &mut Agent<MemoryTee>,
    s: &Sent<'_>,
) -> (Event, Snapshot) {
    let before = agent.tee().snapshot();
    let handled = agent.handle(s.uri, s.bytes, CX);
    let after = agent.tee().snapshot();
    check(
        f,
        state,
        s,
        &before,
        &handled.event,
        handled.reply.as_ref(),
        &after,
    );
    (handled.event, after)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode_byte, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let (mode, state) = (mode_byte & 3, usize::from(mode_byte >> 2 & 3));
    let uri = URIS[usize::from(mode_byte >> 4 & 3)];
    let variant = mode_byte >> 6;
    let bytes = match mode {
        0 => rest.to_vec(),
        1 => sign_trusted(
            f,
            variant,
            &substitute(f, rest).unwrap_or_else(|| rest.to_vec()),
        ),
        2 => sign_untrusted(
            f,
            variant,
            &substitute(f, rest).unwrap_or_else(|| rest.to_vec()),
        ),
        _ => match structured(f, rest) {
            Some(payload) => sign_trusted(f, variant, &payload),
            None => return,
        },
    };
    let s = sent(f, uri, &bytes);
    let mut agent = agent_on(f, &f.states[state]);
    let (event, after) = handle_checked(f, state, &mut agent, &s);
    if matches!(event, Event::Refused(_) | Event::UpdateFailed { .. }) {
        return;
    }

    // A replay of what was accepted.
    let (again, replayed) = handle_checked(f, state, &mut agent, &s);
    if s.claimed.as_ref().and_then(Message::token).is_some() {
        assert_eq!(
            again,
            Event::Refused(Refusal::Replay),
            "an answered token accepted again"
        );
    } else {
        assert_eq!(
            replayed.storage, after.storage,
            "a replay changed SUIT storage"
        );
    }

    // One state-changing Update per QueryResponse, for a TAM URI the Agent answered.
    let known = state >= 1 && uri == TAM_URI;
    if let Event::UpdateApplied {
        installed,
        unlinked,
    } = event
        && installed + unlinked > 0
        && known
    {
        let token = if s.claimed.as_ref().and_then(Message::token) == Some(&[0xf7; 16]) {
            [0xf8; 16]
        } else {
            [0xf7; 16]
        };
        let probe = update(&token, vec![f.probe.clone()], vec![]);
        let bytes = sign1(f.tam_a.as_ref(), &encode(&probe), true);
        let p = sent(f, uri, &bytes);
        let (event, _) = handle_checked(f, state, &mut agent, &p);
        assert_eq!(
            event,
            Event::Refused(Refusal::Superseded),
            "a second state-changing Update without a QueryResponse between"
        );
    }
});
