//! The engine: one incoming body becomes a chain of [`Step`]s (load this, appraise that)
//! ending in a [`Decision`]: the reply to send and the [`Changes`] to commit.
//!
//! The engine holds no state between calls. Everything a step needs next travels in the
//! opaque [`Pending`] value the shell hands back with its answer; everything a later
//! message needs is in the `Changes` (sessions with their typed states).
//!
//! By concern: `open` (QueryRequests and renegotiation), `route` (the token's state, the
//! attestation checks, the signature), `answer` (the Update), `result` (Success and Error).

use teep_attest::{
    AppraisalRequest, AppraisalResponse, PayloadKind, ResultCheck, payload_kind, verify_ear,
};
use teep_cose::{CryptoProvider, PrivateKey, PublicKey, SignOptions, Signer, TrustStore};
use teep_proto::{
    CipherSuite, DataItemRequested, ErrCode, ErrorMessage, FreshnessMechanism, Message,
    MessageType, Numbering, ProtoError, QueryRequest, QueryResponse, SuitCoseProfile, Unverified,
    Update, VerifiedMessage,
};

use crate::error::{Dropped, Event, Handled};
use crate::own::{OwnEar, SelfAttestation};
use crate::plan::{plan, reconcile};
use crate::report::ReportReader;
use crate::store::{
    AttestationOutcome, AttestationRecord, AttestationVerdict, AuditEntry, Changes, Device,
    DeviceId, DeviceView, ExpectQueryResponse, ExpectSuccess, Installed, LoadRequest, Loaded,
    Offer, ReportRecord, SentManifest, SessionId, SessionRecord, SessionState, Token,
};

/// Bytes in every token the TAM issues (spec §16.3: always 16 random bytes).
pub const TOKEN_LEN: usize = 16;

/// The randomness the engine draws tokens and session ids from. `Send`, so that a
/// message's whole load-decide-commit future can move between a runtime's worker threads.
pub trait Random: Send {
    /// Fills `out` from a cryptographically secure source.
    fn fill(&mut self, out: &mut [u8]) -> Result<(), teep_cose::CoseError>;
}

/// [`Random`] from a crypto provider (the production source).
pub struct ProviderRandom(pub &'static dyn CryptoProvider);

impl Random for ProviderRandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), teep_cose::CoseError> {
        self.0.fill_random(out)
    }
}

/// The TAM's configuration: keys, trust anchors, limits.
pub struct TamConfig {
    /// Crypto provider for signatures.
    pub provider: &'static dyn CryptoProvider,
    /// One signer per cipher suite the TAM offers (ESP256 and Ed25519).
    pub signers: Vec<Box<dyn Signer>>,
    /// Keys of the Verifiers whose EARs the TAM accepts.
    pub verifiers: TrustStore,
    /// Wire numbering.
    pub numbering: Numbering,
    /// Seconds a token stays valid (spec §5: hours, since installs are slow).
    pub token_lifetime: u64,
    /// Outstanding tokens per device; issuing one more retires the oldest.
    pub max_sessions_per_device: usize,
    /// Outstanding tokens of sessions with devices not known yet (empty POSTs), all
    /// together; issuing one more retires the oldest (spec §5: bounded token state).
    pub max_anonymous_sessions: usize,
    /// How old an EAR may be when presented, and how long a device's attestation counts
    /// before it must attest again.
    pub attestation_max_age: u64,
    /// The class a newly attested device is put in (the operator may change it).
    pub default_class: Option<String>,
    /// The TAM's P-256 key that Agents encrypt Evidence and SUIT reports to (§12); `None`:
    /// encrypted ones are refused.
    pub encryption_key: Option<PrivateKey>,
    /// How the TAM attests itself to Agents that demand it (`None`: an Agent's
    /// ERR_ATTESTATION_REQUIRED ends the session).
    pub self_attestation: Option<SelfAttestation>,
    /// How a passport EAR (an Attestation Result the Agent presents) shows it is fresh:
    /// `false`, its nonce is this session's token (draft §6, the -26 path); `true`, by its
    /// `iat` alone (within `attestation_max_age`), for Agents that obtain their EAR from
    /// their Verifier ahead of time, whose nonce is that Verifier's challenge (the pre-26
    /// path: older Agents cannot answer a challenge). Either way it must be signed by a
    /// trusted Verifier, affirming, and its `cnf` must verify this very QueryResponse,
    /// whose token is single use, so only the attested key holder can present it.
    pub passport_by_age: bool,
}

/// The TAM engine.
pub struct Tam {
    cfg: TamConfig,
}

/// What the shell supplies with every step: the time and the randomness.
pub struct Context<'a> {
    /// Unix time, seconds.
    pub now: u64,
    /// Randomness for tokens.
    pub rng: &'a mut dyn Random,
}

/// Names the message in the one log line it gets (never Evidence or keys).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageMeta {
    /// `"connect"` for an empty POST, else the message type.
    pub kind: &'static str,
    /// The device, once known.
    pub device: Option<DeviceId>,
    /// The first four bytes of the token, hex.
    pub token_prefix: String,
}

/// The end of handling one body: nothing is committed yet.
#[derive(Debug)]
pub struct Decision {
    /// What the message was, for the log.
    pub meta: MessageMeta,
    /// The reply and changes, or why the message was dropped (nothing to commit but
    /// `failed_attestation`).
    pub result: Result<Handled, Dropped>,
    /// A dropped message's failed appraisal, for the device the session was opened for or
    /// whose key signed the QueryResponse: the one thing committed for a dropped message,
    /// so that the operator sees the failure. The store keeps it only for a device it
    /// has a record of (a stranger's proves nothing), at most
    /// [`crate::store::OUTCOMES_PER_DEVICE`] per device.
    pub failed_attestation: Option<AttestationOutcome>,
}

/// One step of handling a body.
#[derive(Debug)]
pub enum Step {
    /// Load this and call [`Tam::resume`] with [`Resume::Loaded`].
    Load(LoadRequest, Pending),
    /// Ask the Verifier and call [`Tam::resume`] with [`Resume::Appraised`].
    Appraise(AppraisalRequest, Pending),
    /// Done: send `reply` (if any) after committing `changes`.
    Done(Decision),
}

/// The shell's answer to a [`Step`].
#[derive(Debug)]
pub enum Resume {
    /// Answer to [`Step::Load`].
    Loaded(Loaded),
    /// Answer to [`Step::Appraise`].
    Appraised(AppraisalResponse),
}

/// Where handling stopped, to continue with the shell's answer. Opaque.
#[derive(Debug)]
pub struct Pending {
    meta: MessageMeta,
    body: Vec<u8>,
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    /// Connect with a device hint: waiting for that device.
    ConnectDevice,
    /// Connect: waiting for the Verifier's challenge.
    ConnectChallenge { device: Box<DeviceView> },
    /// Waiting for the session the token names.
    Session,
    /// Waiting for the EAR about the Evidence, which the device `sender`'s key (the
    /// Evidence's `cnf`) has been shown to sign the QueryResponse with.
    Appraisal {
        session: SessionRecord,
        signed: SignedBy,
    },
    /// Waiting for the device whose key verifies (or signed) the message.
    Device {
        session: SessionRecord,
        attested: Option<Attested>,
    },
}

/// A QueryRequest about to be sent: its session, the device (if known, for the suite and
/// the bound on outstanding tokens), the state it opens, the token it answers (a
/// renegotiation consumes the previous one) and the TAM's own attestation it carries.
struct NewQuery<'a> {
    session: SessionId,
    device: Option<&'a Device>,
    state: ExpectQueryResponse,
    outstanding: &'a [Token],
    consume: Option<Token>,
    own: Option<OwnEar>,
}

/// A verified QueryResponse and the session state it answers.
struct Answering<'a> {
    session: &'a SessionRecord,
    state: &'a ExpectQueryResponse,
    qr: &'a QueryResponse,
    verified: &'a VerifiedMessage,
}

/// An attestation that checked out: the Agent key `cnf` bound and the EAR.
#[derive(Debug)]
struct Attested {
    key: PublicKey,
    ear: Vec<u8>,
    /// The EAR checked out (signature, nonce, age, `cnf`) but its status is not
    /// affirming: answered with ERR_ATTESTATION_REQUIRED, nothing installed (spec §10).
    affirming: bool,
    /// The EAR's status (`affirming`, `warning`, `contraindicated`).
    status: &'static str,
    /// The QueryResponse as the Evidence's key verified it before the appraisal (a
    /// background check); used only if that key is `key`.
    verified: Option<Box<VerifiedMessage>>,
}

/// A QueryResponse verified with the key its Evidence's `cnf` claims, before the Verifier
/// saw the Evidence: the device that key names, and the verified message.
#[derive(Debug)]
struct SignedBy {
    device: DeviceId,
    verified: Box<VerifiedMessage>,
}

impl Pending {
    /// Ends handling at `now` because the shell could not answer the step (a Verifier
    /// that gave no answer about a known device's Evidence is recorded for that device).
    pub fn fail(self, why: Dropped, now: u64) -> Decision {
        let failed_attestation = match (&self.stage, &why) {
            (Stage::Appraisal { session, signed }, Dropped::Verifier(reason)) => {
                Some(AttestationOutcome {
                    device: session.device.unwrap_or(signed.device),
                    at: now,
                    verdict: AttestationVerdict::VerifierUnavailable,
                    detail: outcome_detail(reason),
                })
            }
            _ => None,
        };
        Decision {
            meta: self.meta,
            result: Err(why),
            failed_attestation,
        }
    }
}

fn prefix(token: &[u8]) -> String {
    hex::encode(token.get(..4).unwrap_or(token))
}

mod answer;
mod attest_tam;
mod open;
mod result;
mod route;

impl Tam {
    /// An engine with `cfg`.
    pub fn new(cfg: TamConfig) -> Self {
        Self { cfg }
    }

    /// The configuration.
    pub fn config(&self) -> &TamConfig {
        &self.cfg
    }

    /// The offer of a fresh QueryRequest: everything the engine supports.
    pub fn full_offer(&self) -> Offer {
        Offer {
            versions: vec![0],
            suites: self
                .cfg
                .signers
                .iter()
                .map(|s| CipherSuite::sign1(s.algorithm().cose_id()))
                .collect(),
            profiles: SuitCoseProfile::ALL_MTI.to_vec(),
            freshness: vec![FreshnessMechanism::NONCE, FreshnessMechanism::TIMESTAMP],
        }
    }

    /// Starts handling one HTTP body. An empty body opens a session (`device_hint` names the
    /// device when the transport identified it); otherwise it is a TEEP message.
    pub fn start(&self, body: &[u8], device_hint: Option<DeviceId>) -> Step {
        if body.is_empty() {
            let meta = MessageMeta {
                kind: "connect",
                device: device_hint,
                token_prefix: String::new(),
            };
            return match device_hint {
                Some(id) => Step::Load(
                    self.load_device(id),
                    Pending {
                        meta,
                        body: Vec::new(),
                        stage: Stage::ConnectDevice,
                    },
                ),
                None => Step::Load(
                    LoadRequest::AnonymousSessions {
                        keep: self.cfg.max_anonymous_sessions.saturating_sub(1),
                    },
                    Pending {
                        meta,
                        body: Vec::new(),
                        stage: Stage::ConnectDevice,
                    },
                ),
            };
        }
        let mut meta = MessageMeta {
            kind: "unparsed",
            ..MessageMeta::default()
        };
        let parsed = match Unverified::parse(body, self.cfg.numbering) {
            Ok(p) => p,
            Err(e) => return done(meta, Err(Dropped::Malformed(e))),
        };
        meta.kind = parsed.message().message_type().name();
        let Some(token) = parsed.message().token() else {
            return done(meta, Err(Dropped::NoToken));
        };
        meta.token_prefix = prefix(token);
        Step::Load(
            LoadRequest::Session(token.to_vec()),
            Pending {
                meta,
                body: body.to_vec(),
                stage: Stage::Session,
            },
        )
    }

    /// Continues with the shell's answer to the last step.
    pub fn resume(&self, pending: Pending, answer: Resume, cx: &mut Context<'_>) -> Step {
        let Pending { meta, body, stage } = pending;
        match (stage, answer) {
            (Stage::ConnectDevice, Resume::Loaded(Loaded::Device(view))) => {
                self.connect(meta, *view, cx)
            }
            (Stage::ConnectDevice, Resume::Loaded(Loaded::Anonymous(outstanding))) => {
                let view = DeviceView {
                    outstanding,
                    ..DeviceView::default()
                };
                self.connect(meta, view, cx)
            }
            (
                Stage::ConnectChallenge { device },
                Resume::Appraised(AppraisalResponse::Challenge(c)),
            ) => self.query_request(meta, *device, Some(c.nonce), cx),
            (Stage::Session, Resume::Loaded(Loaded::Session(record))) => {
                self.on_session(meta, body, record, cx)
            }
            (
                Stage::Appraisal { session, signed },
                Resume::Appraised(AppraisalResponse::Ear(ear)),
            ) => self.on_ear(meta, body, session, Some(signed), ear, cx),
            (Stage::Device { session, attested }, Resume::Loaded(Loaded::Device(view))) => {
                self.on_device(meta, body, session, attested, *view, cx)
            }
            _ => done(meta, Err(Dropped::ShellMismatch)),
        }
    }

    fn load_device(&self, id: DeviceId) -> LoadRequest {
        LoadRequest::Device {
            id,
            class: self.cfg.default_class.clone(),
        }
    }

    /// Whether `d` needs no attestation now: it attested recently, or the operator who
    /// registered its key exempted it (an older Agent that cannot produce Evidence).
    fn attestation_fresh(&self, d: &Device, now: u64) -> bool {
        d.attestation_exempt
            || d.attested_at
                .is_some_and(|at| now.saturating_sub(at) <= self.cfg.attestation_max_age)
    }

    /// The oldest outstanding tokens to retire so that one more stays within the bound: a
    /// known device's beyond `max_sessions_per_device`; those of devices not known yet
    /// come from the store already cut to the ones beyond `max_anonymous_sessions`
    /// ([`LoadRequest::AnonymousSessions`]).
    fn over_bound(&self, outstanding: &[Token], known: bool) -> Vec<Token> {
        if !known {
            return outstanding.to_vec();
        }
        let keep = self.cfg.max_sessions_per_device.saturating_sub(1);
        let excess = outstanding.len().saturating_sub(keep);
        outstanding.iter().take(excess).cloned().collect()
    }

    /// Reads SUIT reports with the TAM's encryption key (§12).
    fn report_reader(&self) -> ReportReader<'_> {
        ReportReader {
            provider: self.cfg.provider,
            tam_key: self.cfg.encryption_key.as_ref(),
        }
    }

    fn sign1(&self, message: &Message, suite: &CipherSuite) -> Result<Vec<u8>, Dropped> {
        let signer = self
            .cfg
            .signers
            .iter()
            .find(|s| Some(s.algorithm().cose_id()) == suite.sign1_alg())
            .ok_or(Dropped::NoSignerForSuite)?;
        teep_proto::sign_message(
            message,
            self.cfg.numbering,
            signer.as_ref(),
            &SignOptions::default(),
        )
        .map_err(Dropped::Sign)
    }
}

impl DeviceView {
    /// Outstanding tokens other than `token` (the one being answered).
    pub(super) fn outstanding_except(&self, token: &[u8]) -> Vec<Token> {
        self.outstanding
            .iter()
            .filter(|t| t.as_slice() != token)
            .cloned()
            .collect()
    }
}

pub(super) fn done(meta: MessageMeta, result: Result<Handled, Dropped>) -> Step {
    Step::Done(Decision {
        meta,
        result,
        failed_attestation: None,
    })
}

/// Drops the message, recording the failed attestation for `device` (the known device the
/// session was opened for; none: nothing recorded).
pub(super) fn rejected(
    meta: MessageMeta,
    why: Dropped,
    device: Option<DeviceId>,
    now: u64,
) -> Step {
    let failed_attestation = device.map(|device| AttestationOutcome {
        device,
        at: now,
        verdict: AttestationVerdict::Rejected,
        detail: outcome_detail(&why.to_string()),
    });
    Step::Done(Decision {
        meta,
        result: Err(why),
        failed_attestation,
    })
}

/// An outcome's detail: one line, at most 200 characters (it may quote the Verifier).
pub(super) fn outcome_detail(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

pub(super) fn audit(at: u64, device: DeviceId, event: &str) -> AuditEntry {
    AuditEntry {
        at,
        device: Some(device),
        event: event.into(),
        detail: None,
    }
}

pub(super) fn new_token(cx: &mut Context<'_>) -> Result<Token, Dropped> {
    let mut token = vec![0; TOKEN_LEN];
    cx.rng.fill(&mut token).map_err(Dropped::Random)?;
    Ok(token)
}

pub(super) fn verify_with(
    body: &[u8],
    numbering: Numbering,
    provider: &dyn CryptoProvider,
    key: &PublicKey,
) -> Result<VerifiedMessage, ProtoError> {
    Unverified::parse(body, numbering)?.verify_with_key(provider, key)
}
