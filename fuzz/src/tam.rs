//! The TAM side's fixture for `tam_exchange` and its seed writer (`examples/tam_seeds.rs`):
//! the TAM engine's test world (`crates/teep-tam/tests/common`: engine, in-memory store,
//! in-process Verifier, fixed clock, counting random source) with one device driven
//! through a whole first contact, its store kept at each step.
//!
//! The device's and the stranger's TEEP keys are fixed scalars and the TAM's random source
//! counts, so the tokens and the `cnf` key the seeds carry are the same in every process.
//! The in-process Verifier's challenges are random and single use: a seed's Evidence
//! carries a placeholder that the harness replaces with a challenge issued for that input.
//! The harness makes every signature per input.

#[allow(
    unexpected_cfgs,
    dead_code,
    unreachable_pub,
    reason = "the engine tests' helpers, shared as they are: `server` is their crate's feature"
)]
#[path = "../../crates/teep-tam/tests/common/mod.rs"]
pub mod common;

use std::cell::RefCell;

use common::{Agent, CountingRng, World, signer};
use teep_cose::{Curve, PrivateKey};
use teep_proto::{Message, Numbering, QueryResponse, Success};
use teep_tam::store::{DeviceId, MemoryState};

/// The device's TEEP key (P-256 scalar): fixed, so its `cnf` in a seed's claims stays it.
const DEVICE_KEY: [u8; 32] = [0x11; 32];
/// Another Agent's key: a stranger to the TAM and to the device's sessions.
const STRANGER_KEY: [u8; 32] = [0x22; 32];

/// The byte a seed's challenge placeholder repeats ([`Fixture::challenge_placeholder`]).
const CHALLENGE_PLACEHOLDER: u8 = 0xc5;

/// Where the device's first contact stands, and what the store holds there.
pub struct Stage {
    pub name: &'static str,
    pub state: MemoryState,
    /// The random source's counter at this point (the next token follows from it).
    pub rng: u8,
    /// The token the TAM is waiting on: of its QueryRequest or its Update.
    pub token: Option<Vec<u8>>,
    /// The challenge of the outstanding QueryRequest, if it asked for Evidence.
    pub challenge: Option<Vec<u8>>,
    /// The digests of the manifests the outstanding Update carried (SUIT report seeds).
    pub sent: Vec<[u8; 32]>,
}

/// The world, the two Agents and the stages of one first contact.
pub struct Fixture {
    pub world: RefCell<World>,
    pub device: Agent,
    pub stranger: Agent,
    pub stages: Vec<Stage>,
}

/// A test Agent of `world` with the fixed P-256 key `d`.
fn agent(world: &World, d: &[u8; 32]) -> Agent {
    let key = PrivateKey::from_bytes(Curve::P256, d).expect("a P-256 scalar");
    let mut agent = world.agent(Curve::P256);
    agent.signer = signer(&key);
    agent.key = key;
    agent
}

impl Fixture {
    /// The TAM with TC `tc` v1 and `cfg` v1 (personalization data depending on it), a
    /// class policy installing `cfg` (so `tc` goes first) with `extra` requestable; then
    /// the device's first contact step by step: nothing yet; QueryRequest sent (asking for
    /// Evidence); Update sent; installed, and a known device's QueryRequest sent.
    pub fn new() -> Self {
        let world = World::new();
        let tc = world.release("tc", 1, &[]);
        let cfg = world.release("cfg", 1, &["tc"]);
        world.release("extra", 1, &[]);
        world.class_policy(&["cfg"], &["extra"]);
        let device = agent(&world, &DEVICE_KEY);
        let stranger = agent(&world, &STRANGER_KEY);
        let mut fixture = Self {
            world: RefCell::new(world),
            device,
            stranger,
            stages: Vec::new(),
        };
        fixture.keep("fresh", None, None, Vec::new());

        let qr_bytes = fixture.world.borrow_mut().connect();
        let qr = fixture.device.read_query(&qr_bytes);
        fixture.keep(
            "query-request-sent",
            qr.token.clone(),
            qr.challenge.clone(),
            Vec::new(),
        );

        let response = fixture
            .device
            .attested_response(&qr, qr.challenge.as_deref().expect("asks for Evidence"));
        let update_bytes = fixture.post(&response).reply.expect("an Update");
        let update = common::update(fixture.device.read(&update_bytes));
        fixture.keep(
            "update-sent",
            update.token.clone(),
            None,
            vec![tc.digest, cfg.digest],
        );

        let token = update.token.expect("the Update's token");
        let reports = [tc.digest, cfg.digest]
            .iter()
            .map(|d| common::report(*d, &token, true))
            .collect();
        let success = fixture.device.success(&token, Some(reports));
        fixture.post(&success);
        let hint = Some(fixture.device.id());
        let known = fixture
            .world
            .borrow_mut()
            .post_hint(&[], hint)
            .expect("a known device's QueryRequest")
            .reply
            .expect("a QueryRequest");
        let qr = fixture.device.read_query(&known);
        fixture.keep(
            "known-query-request-sent",
            qr.token,
            qr.challenge,
            Vec::new(),
        );
        fixture
    }

    fn post(&self, body: &[u8]) -> teep_tam::Handled {
        self.world
            .borrow_mut()
            .post(body)
            .expect("the first contact goes through")
    }

    fn keep(
        &mut self,
        name: &'static str,
        token: Option<Vec<u8>>,
        challenge: Option<Vec<u8>>,
        sent: Vec<[u8; 32]>,
    ) {
        let world = self.world.borrow();
        self.stages.push(Stage {
            name,
            state: world.snapshot(),
            rng: world.rng.0,
            token,
            challenge,
            sent,
        });
    }

    /// Puts the store and the random source back where `stage` left them.
    pub fn restore(&self, stage: &Stage) {
        let mut world = self.world.borrow_mut();
        world.store.with(|s| *s = stage.state.clone());
        world.rng = CountingRng(stage.rng);
    }

    /// Opens the device's session afresh (the store as it was before the first contact, a
    /// restarted Verifier, then an empty POST): the Verifier's challenges are random and
    /// single use, so the recorded one is spent; and one that no Evidence redeemed stays
    /// outstanding on the fixed clock, until the Verifier's bound refuses new ones. The
    /// store then and the new challenge.
    pub fn fresh_challenge(&self) -> (MemoryState, Vec<u8>) {
        self.restore(&self.stages[0]);
        self.world.borrow_mut().restart_verifier();
        let bytes = self.world.borrow_mut().connect();
        let qr = self.device.read_query(&bytes);
        self.device.updates.borrow_mut().clear();
        let challenge = qr.challenge.expect("a first contact asks for Evidence");
        (self.world.borrow().snapshot(), challenge)
    }

    /// What a seed carries in place of the challenge (the harness puts the live one in):
    /// as long as the Verifier's challenges.
    pub fn challenge_placeholder(&self) -> Vec<u8> {
        let len = self.stages[1].challenge.as_ref().map_or(32, Vec::len);
        vec![CHALLENGE_PLACEHOLDER; len]
    }

    /// The device's id (its key's thumbprint).
    pub fn device_id(&self) -> DeviceId {
        self.device.id()
    }

    /// The seeds of `tam_exchange`, by name, each starting with its selector byte (see the
    /// target): unsigned messages to sign, the Evidence claims of the first contact, the
    /// SUIT reports of its Success.
    pub fn seeds(&self) -> Vec<(String, Vec<u8>)> {
        let encode = |m: Message| m.encode(Numbering::Draft26).expect("encodes");
        let mut seeds = Vec::new();
        let mut seed = |name: String, selector: u8, body: Vec<u8>| {
            seeds.push((name, [vec![selector], body].concat()));
        };
        for (index, stage) in self.stages.iter().enumerate() {
            let at = u8::try_from(index).expect("four stages");
            let response = QueryResponse {
                token: stage.token.clone(),
                tc_list: Some(self.device.held.borrow().clone()),
                ..QueryResponse::default()
            };
            let success = Success {
                token: stage.token.clone(),
                ..Success::default()
            };
            for (mode, signed) in [(Mode::Device, "device"), (Mode::Stranger, "stranger")] {
                let selector = selector(at, mode, false);
                seed(
                    format!("{}-{signed}-query-response", stage.name),
                    selector,
                    encode(Message::QueryResponse(response.clone())),
                );
                seed(
                    format!("{}-{signed}-success", stage.name),
                    selector,
                    encode(Message::Success(success.clone())),
                );
            }
            if stage.challenge.is_some() {
                let placeholder = self.challenge_placeholder();
                let claims = |a: &Agent| a.claims(&placeholder).to_cbor().expect("claims");
                let evidence = [
                    ("evidence", Mode::Evidence, claims(&self.device)),
                    (
                        "device-evidence-by-stranger",
                        Mode::EvidenceByStranger,
                        claims(&self.device),
                    ),
                    (
                        "stranger-evidence",
                        Mode::EvidenceByStranger,
                        claims(&self.stranger),
                    ),
                ];
                for (name, mode, claims) in evidence {
                    seed(
                        format!("{}-{name}", stage.name),
                        selector(at, mode, false),
                        claims,
                    );
                }
            }
            if let Some(token) = &stage.token {
                for digest in &stage.sent {
                    seed(
                        format!("{}-report-{}", stage.name, hex::encode(&digest[..4])),
                        selector(at, Mode::Report, false),
                        common::report(*digest, token, true),
                    );
                }
            }
            seed(
                format!("{}-empty", stage.name),
                selector(at, Mode::Raw, true),
                Vec::new(),
            );
        }
        seeds
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// What the rest of a `tam_exchange` input is (bits 2-4 of its first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The body as it is.
    Raw,
    /// A TEEP message that the harness signs (COSE_Sign1) with the device's key.
    Device,
    /// The same, signed with the stranger's key.
    Stranger,
    /// EAT claims the harness signs with the endorsed attestation key, as the Evidence of
    /// a QueryResponse for the stage's token that the device signs.
    Evidence,
    /// The same Evidence in a QueryResponse the stranger signs.
    EvidenceByStranger,
    /// A SUIT report, in a Success for the stage's token that the device signs.
    Report,
}

impl Mode {
    /// The mode bits 2-4 of `selector` name (6 and 7 read as `Raw`).
    pub fn of(selector: u8) -> Self {
        match (selector >> 2) & 7 {
            1 => Self::Device,
            2 => Self::Stranger,
            3 => Self::Evidence,
            4 => Self::EvidenceByStranger,
            5 => Self::Report,
            _ => Self::Raw,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Self::Raw => 0,
            Self::Device => 1,
            Self::Stranger => 2,
            Self::Evidence => 3,
            Self::EvidenceByStranger => 4,
            Self::Report => 5,
        }
    }
}

/// A selector byte: stage in bits 0-1, mode in bits 2-4, bit 7: the device id as the
/// hint an HTTP front end may pass.
pub fn selector(stage: u8, mode: Mode, hint: bool) -> u8 {
    (stage & 3) | (mode.bits() << 2) | if hint { 0x80 } else { 0 }
}
