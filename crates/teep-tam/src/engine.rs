//! The engine: one incoming body becomes a chain of [`Step`]s (load this, appraise that)
//! ending in a [`Decision`]: the reply to send and the [`Changes`] to commit.
//!
//! The engine holds no state between calls. Everything a step needs next travels in the
//! opaque [`Pending`] value the shell hands back with its answer; everything a later
//! message needs is in the `Changes` (sessions with their typed states).

use teep_attest::{
    AppraisalRequest, AppraisalResponse, Ear, PayloadKind, ResultCheck, payload_kind, verify_ear,
};
use teep_cose::{CryptoProvider, PublicKey, SignOptions, Signer, TrustStore};
use teep_proto::{
    CipherSuite, DataItemRequested, ErrCode, ErrorMessage, FreshnessMechanism, Message,
    MessageType, Numbering, ProtoError, QueryRequest, QueryResponse, SuitCoseProfile, Unverified,
    Update, VerifiedMessage,
};

use crate::error::{Dropped, Event, Handled};
use crate::plan::plan;
use crate::report::read_report;
use crate::store::{
    AttestationRecord, AuditEntry, Changes, Device, DeviceId, DeviceView, ExpectQueryResponse,
    ExpectSuccess, Installed, LoadRequest, Loaded, Offer, ReportRecord, SentManifest, SessionId,
    SessionRecord, SessionState, Token,
};

/// Bytes in every token the TAM issues (spec §16.3: always 16 random bytes).
pub const TOKEN_LEN: usize = 16;

/// The randomness the engine draws tokens and session ids from.
pub trait Random {
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
    /// The reply and changes, or why the message was dropped (nothing to commit).
    pub result: Result<Handled, Dropped>,
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
    /// Waiting for the EAR about the Evidence.
    Appraisal { session: SessionRecord },
    /// Waiting for the device whose key verifies (or signed) the message.
    Device {
        session: SessionRecord,
        attested: Option<Attested>,
    },
}

/// A QueryRequest about to be sent: its session, the device (if known, for the suite and
/// the bound on outstanding tokens), the state it opens and the token it answers (a
/// renegotiation consumes the previous one).
struct NewQuery<'a> {
    session: SessionId,
    device: Option<&'a Device>,
    state: ExpectQueryResponse,
    outstanding: &'a [Token],
    consume: Option<Token>,
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
}

impl Pending {
    /// Ends handling because the shell could not answer the step.
    pub fn fail(self, why: Dropped) -> Decision {
        Decision {
            meta: self.meta,
            result: Err(why),
        }
    }
}

fn prefix(token: &[u8]) -> String {
    hex::encode(token.get(..4).unwrap_or(token))
}

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
                    LoadRequest::AnonymousSessions,
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
            (Stage::Appraisal { session }, Resume::Appraised(AppraisalResponse::Ear(ear))) => {
                self.on_ear(meta, body, session, ear, cx)
            }
            (Stage::Device { session, attested }, Resume::Loaded(Loaded::Device(view))) => {
                self.on_device(meta, body, session, attested, *view, cx)
            }
            _ => done(meta, Err(Dropped::ShellMismatch)),
        }
    }

    /// Opens a session for `device` (a view without record: a device not known yet, whose
    /// outstanding tokens are the anonymous ones).
    fn connect(&self, meta: MessageMeta, device: DeviceView, cx: &mut Context<'_>) -> Step {
        let fresh = device
            .device
            .as_ref()
            .is_some_and(|d| !d.revoked && self.attestation_fresh(d, cx.now));
        if fresh {
            return self.query_request(meta, device, None, cx);
        }
        Step::Appraise(
            AppraisalRequest::Challenge,
            Pending {
                meta,
                body: Vec::new(),
                stage: Stage::ConnectChallenge {
                    device: Box::new(device),
                },
            },
        )
    }

    fn load_device(&self, id: DeviceId) -> LoadRequest {
        LoadRequest::Device {
            id,
            class: self.cfg.default_class.clone(),
        }
    }

    fn attestation_fresh(&self, d: &Device, now: u64) -> bool {
        d.attested_at
            .is_some_and(|at| now.saturating_sub(at) <= self.cfg.attestation_max_age)
    }

    /// A new session: QueryRequest, asking for attestation when `challenge` is set.
    fn query_request(
        &self,
        meta: MessageMeta,
        view: DeviceView,
        challenge: Option<Vec<u8>>,
        cx: &mut Context<'_>,
    ) -> Step {
        let mut session = [0; 16];
        if let Err(e) = cx.rng.fill(&mut session) {
            return done(meta, Err(Dropped::Random(e)));
        }
        let known = view.device.as_ref();
        let requested = if challenge.is_some() || known.is_none() {
            DataItemRequested::ATTESTATION.with(DataItemRequested::TRUSTED_COMPONENTS)
        } else {
            DataItemRequested::TRUSTED_COMPONENTS
        };
        let state = ExpectQueryResponse {
            challenge,
            requested,
            offer: self.full_offer(),
        };
        let outstanding = &view.outstanding;
        let query = NewQuery {
            session: SessionId(session),
            device: known,
            state,
            outstanding,
            consume: None,
        };
        self.send_query_request(meta, query, cx)
    }

    fn send_query_request(
        &self,
        mut meta: MessageMeta,
        query: NewQuery<'_>,
        cx: &mut Context<'_>,
    ) -> Step {
        let NewQuery {
            session,
            device,
            state,
            outstanding,
            consume,
        } = query;
        let token = match new_token(cx) {
            Ok(t) => t,
            Err(e) => return done(meta, Err(e)),
        };
        let attest = state.requested.contains(DataItemRequested::ATTESTATION);
        let qr = QueryRequest {
            token: Some(token.clone()),
            supported_freshness_mechanisms: attest.then(|| state.offer.freshness.clone()),
            challenge: state.challenge.clone(),
            versions: Some(state.offer.versions.clone()),
            supported_teep_cipher_suites: state.offer.suites.clone(),
            supported_suit_cose_profiles: state.offer.profiles.clone(),
            data_item_requested: state.requested,
            ..QueryRequest::default()
        };
        let message = Message::QueryRequest(qr);
        let known_suite = device.and_then(|d| d.suite.as_ref());
        let signed = match known_suite {
            Some(suite) => self.sign1(&message, suite),
            None => {
                let signers: Vec<&dyn Signer> = self
                    .cfg
                    .signers
                    .iter()
                    .filter(|s| {
                        state
                            .offer
                            .suites
                            .contains(&CipherSuite::sign1(s.algorithm().cose_id()))
                    })
                    .map(AsRef::as_ref)
                    .collect();
                teep_proto::sign_message_multi(
                    &message,
                    self.cfg.numbering,
                    &signers,
                    &SignOptions::default(),
                )
                .map_err(Dropped::Sign)
            }
        };
        let reply = match signed {
            Ok(r) => r,
            Err(e) => return done(meta, Err(e)),
        };
        meta.token_prefix = prefix(&token);
        let device_id = device.map(|d| d.id);
        let changes = Changes {
            consume,
            new_sessions: vec![SessionRecord {
                token,
                session,
                device: device_id,
                issued_at: cx.now,
                expires_at: cx.now.saturating_add(self.cfg.token_lifetime),
                consumed: false,
                state: SessionState::ExpectQueryResponse(state),
            }],
            retire: self.over_bound(outstanding, device.is_some()),
            purge_expired_before: Some(cx.now),
            audit: vec![AuditEntry {
                at: cx.now,
                device: device_id,
                event: "query-request sent".into(),
            }],
            ..Changes::default()
        };
        done(
            meta,
            Ok(Handled {
                reply: Some(reply),
                changes,
                event: Event::QueryRequestSent,
            }),
        )
    }

    /// The oldest outstanding tokens to retire so that one more stays within the bound (a
    /// device's, or the one on sessions of devices not known yet).
    fn over_bound(&self, outstanding: &[Token], known: bool) -> Vec<Token> {
        let bound = if known {
            self.cfg.max_sessions_per_device
        } else {
            self.cfg.max_anonymous_sessions
        };
        let keep = bound.saturating_sub(1);
        let excess = outstanding.len().saturating_sub(keep);
        outstanding.iter().take(excess).cloned().collect()
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

    /// The token's session is loaded: check it, then route by state and message type.
    fn on_session(
        &self,
        mut meta: MessageMeta,
        body: Vec<u8>,
        record: Option<Box<SessionRecord>>,
        cx: &mut Context<'_>,
    ) -> Step {
        let Some(session) = record.map(|b| *b) else {
            return done(meta, Err(Dropped::UnknownToken));
        };
        meta.device = session.device;
        if session.consumed {
            return done(meta, Err(Dropped::TokenReused));
        }
        if session.expires_at < cx.now {
            return done(meta, Err(Dropped::TokenExpired));
        }
        let message = match Unverified::parse(&body, self.cfg.numbering) {
            Ok(p) => p.message().clone(),
            Err(e) => return done(meta, Err(Dropped::Malformed(e))),
        };
        let wrong = |s: &SessionRecord, got: MessageType| Dropped::WrongState {
            expected: s.state.name(),
            got: got.name(),
        };
        match (&session.state, &message) {
            (SessionState::ExpectQueryResponse(_), Message::QueryResponse(qr)) => {
                match (
                    &qr.attestation_payload,
                    payload_kind(qr.attestation_payload_format.as_deref()),
                ) {
                    (Some(evidence), PayloadKind::Evidence) => Step::Appraise(
                        AppraisalRequest::Appraise(evidence.clone()),
                        Pending {
                            meta,
                            body,
                            stage: Stage::Appraisal { session },
                        },
                    ),
                    (Some(ear), PayloadKind::AttestationResult) => {
                        let ear = ear.clone();
                        self.on_ear(meta, body, session, ear, cx)
                    }
                    (None, _) => self.load_signer(meta, body, session, None),
                }
            }
            (SessionState::ExpectQueryResponse(state), Message::Error(err)) => {
                match narrowed(&state.offer, err) {
                    Some(offer) if session.device.is_none() => {
                        self.renegotiate(meta, session.clone(), state, offer, cx)
                    }
                    _ => self.load_signer(meta, body, session, None),
                }
            }
            (SessionState::ExpectSuccess(_), Message::Success(_) | Message::Error(_)) => {
                self.load_signer(meta, body, session, None)
            }
            (_, m) => done(meta, Err(wrong(&session, m.message_type()))),
        }
    }

    /// Needs the device record to verify the message: the session's device, else the one
    /// the COSE `kid` names (RFC 9679 thumbprint = device id).
    fn load_signer(
        &self,
        meta: MessageMeta,
        body: Vec<u8>,
        session: SessionRecord,
        attested: Option<Attested>,
    ) -> Step {
        let id = match (&attested, session.device) {
            (Some(a), _) => Some(DeviceId(a.key.thumbprint())),
            (None, Some(id)) => Some(id),
            (None, None) => Unverified::parse(&body, self.cfg.numbering)
                .ok()
                .and_then(|p| {
                    p.cose()
                        .signatures
                        .first()
                        .and_then(|s| s.kid.as_deref())
                        .and_then(|k| <[u8; 32]>::try_from(k).ok())
                })
                .map(DeviceId),
        };
        let Some(id) = id else {
            return done(meta, Err(Dropped::UnknownAgent));
        };
        Step::Load(
            self.load_device(id),
            Pending {
                meta,
                body,
                stage: Stage::Device { session, attested },
            },
        )
    }

    /// The EAR is in (from the Verifier, or a passport): its `cnf` key must verify the
    /// QueryResponse, and the EAR must check out for that key and this session's nonce.
    fn on_ear(
        &self,
        meta: MessageMeta,
        body: Vec<u8>,
        session: SessionRecord,
        ear: Vec<u8>,
        cx: &mut Context<'_>,
    ) -> Step {
        let SessionState::ExpectQueryResponse(state) = &session.state else {
            return done(meta, Err(Dropped::ShellMismatch));
        };
        // The key is read from the EAR before its signature is checked; `verify_ear` below
        // checks the signature and that `cnf` names exactly this key, and `on_device` then
        // verifies the QueryResponse with it, so nothing rests on the unchecked read.
        let Some(key) = ear_cnf_key(&ear) else {
            return done(meta, Err(Dropped::NoCnfKey));
        };
        let passport = Unverified::parse(&body, self.cfg.numbering).ok().is_some_and(|p| {
            matches!(p.message(), Message::QueryResponse(qr)
                if payload_kind(qr.attestation_payload_format.as_deref()) == PayloadKind::AttestationResult)
        });
        // Passport: the Agent's Verifier saw our token as nonce; background check: the
        // challenge our Verifier issued for this session.
        let nonce = if passport {
            Some(session.token.as_slice())
        } else {
            state.challenge.as_deref()
        };
        let check = ResultCheck {
            provider: self.cfg.provider,
            verifiers: &self.cfg.verifiers,
            nonce,
            now: cx.now,
            max_age: self.cfg.attestation_max_age,
            teep_key: &key,
        };
        if let Err(e) = verify_ear(&ear, &check) {
            return done(meta, Err(Dropped::Attestation(e)));
        }
        self.load_signer(meta, body, session, Some(Attested { key, ear }))
    }

    /// The device is loaded: verify the message with its key (or the attested key), then
    /// decide.
    fn on_device(
        &self,
        mut meta: MessageMeta,
        body: Vec<u8>,
        session: SessionRecord,
        attested: Option<Attested>,
        view: DeviceView,
        cx: &mut Context<'_>,
    ) -> Step {
        let key = match (&attested, &view.device) {
            (Some(a), _) => a.key.clone(),
            (None, Some(d)) => match PublicKey::from_cose_key_bytes(&d.key) {
                Ok(k) => k,
                Err(_) => return done(meta, Err(Dropped::UnknownAgent)),
            },
            (None, None) => return done(meta, Err(Dropped::UnknownAgent)),
        };
        let id = DeviceId(key.thumbprint());
        meta.device = Some(id);
        // A session opened for a known device is answered by that device only, also when
        // another one attests in it.
        if session.device.is_some_and(|expected| expected != id) {
            return done(meta, Err(Dropped::NotSessionDevice));
        }
        let verified = match verify_with(&body, self.cfg.numbering, self.cfg.provider, &key) {
            Ok(v) => v,
            Err(e) if session.device.is_some() => {
                return done(meta, Err(Dropped::WrongDevice(e)));
            }
            Err(e) => return done(meta, Err(Dropped::BadSignature(e))),
        };
        if view.device.as_ref().is_some_and(|d| d.revoked) {
            return done(meta, Err(Dropped::Revoked));
        }
        let result = match (&session.state, verified.message()) {
            (SessionState::ExpectQueryResponse(state), Message::QueryResponse(qr)) => {
                let answering = Answering {
                    session: &session,
                    state,
                    qr,
                    verified: &verified,
                };
                self.answer_query(answering, attested, view, cx)
            }
            (SessionState::ExpectQueryResponse(_), Message::Error(err)) => {
                Ok(agent_error(&session, err, cx.now))
            }
            (SessionState::ExpectSuccess(state), msg) => {
                self.on_result(&session, state, msg, view, cx.now)
            }
            (s, m) => Err(Dropped::WrongState {
                expected: s.name(),
                got: m.message_type().name(),
            }),
        };
        done(meta, result)
    }

    /// A verified QueryResponse from a known or attested device: the Update.
    fn answer_query(
        &self,
        answering: Answering<'_>,
        attested: Option<Attested>,
        view: DeviceView,
        cx: &mut Context<'_>,
    ) -> Result<Handled, Dropped> {
        let Answering {
            session,
            state,
            qr,
            verified,
        } = answering;
        let id = DeviceId(verified.signer().thumbprint());
        let mut device = view.device.clone().unwrap_or_else(|| Device {
            id,
            key: verified.signer().to_cose_key_bytes(),
            class: self.cfg.default_class.clone(),
            revoked: false,
            suite: None,
            attested_at: None,
            installed: Vec::new(),
        });
        let suite = verified.cipher_suite();
        device.suite = Some(suite.clone());
        let mut changes = Changes {
            consume: Some(session.token.clone()),
            retire: self.over_bound(&view.outstanding_except(&session.token), true),
            ..Changes::default()
        };
        if let Some(a) = attested {
            device.attested_at = Some(cx.now);
            changes.attestation = Some(AttestationRecord {
                device: id,
                at: cx.now,
                ear: a.ear,
            });
        }
        let fresh = self.attestation_fresh(&device, cx.now);
        let problem = missing_item(state.requested, qr, fresh)
            .or_else(|| bad_report_nonce(qr, &session.token));
        let (update, sent, unneeded, event) = match problem {
            Some((code, msg)) => {
                let update = Update {
                    err_code: Some(code),
                    err_msg: Some(msg.into()),
                    ..Update::default()
                };
                (
                    update,
                    Vec::new(),
                    Vec::new(),
                    Event::UpdateSent {
                        manifests: 0,
                        unlinked: 0,
                        err_code: Some(code),
                    },
                )
            }
            None => {
                // The view's device record is the TAM's memory of what is installed.
                let view = DeviceView {
                    device: Some(device.clone()),
                    ..view
                };
                let p = plan(&view, qr);
                if !p.refused.is_empty() {
                    tracing::info!(device = %id, refused = p.refused.len(), "requested TCs not permitted by policy");
                }
                if p.is_empty() {
                    changes.device = Some(device);
                    changes.audit.push(audit(cx.now, id, "up to date"));
                    return Ok(Handled {
                        reply: None,
                        changes,
                        event: Event::UpToDate,
                    });
                }
                let sent: Vec<SentManifest> = p
                    .send
                    .iter()
                    .map(|r| SentManifest {
                        manifest_id: r.manifest_id.clone(),
                        sequence: r.sequence,
                        digest: r.digest,
                    })
                    .collect();
                let update = Update {
                    manifest_list: (!p.send.is_empty())
                        .then(|| p.send.iter().map(|r| r.envelope.clone()).collect()),
                    unneeded_manifest_list: (!p.unlink.is_empty()).then(|| p.unlink.clone()),
                    ..Update::default()
                };
                let event = Event::UpdateSent {
                    manifests: sent.len(),
                    unlinked: p.unlink.len(),
                    err_code: None,
                };
                (update, sent, p.unlink, event)
            }
        };
        let token = new_token(cx)?;
        let update = Message::Update(Update {
            token: Some(token.clone()),
            ..update
        });
        let reply = self.sign1(&update, &suite)?;
        changes.new_sessions.push(SessionRecord {
            token,
            session: session.session,
            device: Some(id),
            issued_at: cx.now,
            expires_at: cx.now.saturating_add(self.cfg.token_lifetime),
            consumed: false,
            state: SessionState::ExpectSuccess(ExpectSuccess {
                sent_manifests: sent,
                unneeded,
            }),
        });
        changes.device = Some(device);
        changes.audit.push(audit(cx.now, id, "update sent"));
        Ok(Handled {
            reply: Some(reply),
            changes,
            event,
        })
    }

    /// A negotiation Error from an Agent the TAM cannot authenticate yet: a new QueryRequest
    /// with what both sides support. Accepting it unverified gives an attacker nothing an
    /// empty POST would not (a fresh QueryRequest), and the offer only ever narrows.
    fn renegotiate(
        &self,
        meta: MessageMeta,
        session: SessionRecord,
        state: &ExpectQueryResponse,
        offer: Offer,
        cx: &mut Context<'_>,
    ) -> Step {
        if offer.versions.is_empty()
            || offer.suites.is_empty()
            || offer.profiles.is_empty()
            || offer.freshness.is_empty()
        {
            return done(meta, Err(Dropped::NegotiationFailed));
        }
        // Without the nonce mechanism the challenge is neither sent nor expected back.
        let nonce = offer.freshness.contains(&FreshnessMechanism::NONCE);
        let state = ExpectQueryResponse {
            challenge: state.challenge.clone().filter(|_| nonce),
            offer,
            requested: state.requested,
        };
        let query = NewQuery {
            session: session.session,
            device: None,
            state,
            outstanding: &[],
            consume: Some(session.token),
        };
        self.send_query_request(meta, query, cx)
    }

    /// Success or Error answering an Update, verified with the device's key.
    fn on_result(
        &self,
        session: &SessionRecord,
        state: &ExpectSuccess,
        message: &Message,
        view: DeviceView,
        now: u64,
    ) -> Result<Handled, Dropped> {
        let Some(mut device) = view.device else {
            return Err(Dropped::UnknownAgent);
        };
        let (reports, code) = match message {
            Message::Success(s) => (s.suit_reports.as_deref().unwrap_or_default(), None),
            Message::Error(e) => (
                e.suit_reports.as_deref().unwrap_or_default(),
                Some(e.err_code),
            ),
            other => {
                return Err(Dropped::WrongState {
                    expected: session.state.name(),
                    got: other.message_type().name(),
                });
            }
        };
        let mut records = Vec::new();
        for entry in reports {
            let facts = read_report(entry).map_err(Dropped::Report)?;
            if facts.nonce.as_deref() != Some(session.token.as_slice()) {
                return Err(Dropped::ReportNonce);
            }
            if !state
                .sent_manifests
                .iter()
                .any(|m| m.digest == facts.manifest_digest)
            {
                return Err(Dropped::ReportForUnsentManifest);
            }
            records.push(ReportRecord {
                device: device.id,
                at: now,
                manifest_digest: facts.manifest_digest,
                success: facts.success,
                report: entry.clone(),
            });
        }
        // Success: all sent manifests are installed and the unlinked ones gone. Error: only
        // those a report says succeeded.
        let installed: Vec<&SentManifest> = state
            .sent_manifests
            .iter()
            .filter(|m| {
                code.is_none()
                    || records
                        .iter()
                        .any(|r| r.manifest_digest == m.digest && r.success)
            })
            .collect();
        for m in &installed {
            device.installed.retain(|i| i.manifest_id != m.manifest_id);
            device.installed.push(Installed {
                manifest_id: m.manifest_id.clone(),
                sequence: m.sequence,
                digest: m.digest,
            });
        }
        if code.is_none() {
            device
                .installed
                .retain(|i| !state.unneeded.contains(&i.manifest_id));
        }
        let event = match code {
            None => Event::Installed {
                manifests: installed.len(),
                unlinked: state.unneeded.len(),
            },
            Some(code) => Event::AgentError { code },
        };
        let id = device.id;
        Ok(Handled {
            reply: None,
            changes: Changes {
                consume: Some(session.token.clone()),
                device: Some(device),
                reports: records,
                audit: vec![audit(
                    now,
                    id,
                    if code.is_none() { "success" } else { "error" },
                )],
                ..Changes::default()
            },
            event,
        })
    }
}

impl DeviceView {
    /// Outstanding tokens other than `token` (the one being answered).
    fn outstanding_except(&self, token: &[u8]) -> Vec<Token> {
        self.outstanding
            .iter()
            .filter(|t| t.as_slice() != token)
            .cloned()
            .collect()
    }
}

fn done(meta: MessageMeta, result: Result<Handled, Dropped>) -> Step {
    Step::Done(Decision { meta, result })
}

fn audit(at: u64, device: DeviceId, event: &str) -> AuditEntry {
    AuditEntry {
        at,
        device: Some(device),
        event: event.into(),
    }
}

fn new_token(cx: &mut Context<'_>) -> Result<Token, Dropped> {
    let mut token = vec![0; TOKEN_LEN];
    cx.rng.fill(&mut token).map_err(Dropped::Random)?;
    Ok(token)
}

fn verify_with(
    body: &[u8],
    numbering: Numbering,
    provider: &dyn CryptoProvider,
    key: &PublicKey,
) -> Result<VerifiedMessage, ProtoError> {
    Unverified::parse(body, numbering)?.verify_with_key(provider, key)
}

/// The `cnf` key of an EAR, read without checking the EAR (see [`Tam::on_ear`]).
fn ear_cnf_key(ear: &[u8]) -> Option<PublicKey> {
    let payload = teep_proto::decode_unverified_cose(ear).ok()?.payload?;
    Ear::from_cbor(&payload).ok()?.cnf?.public_key().ok()
}

/// An Error answering a QueryRequest, from a known device: logged and the token retired.
fn agent_error(session: &SessionRecord, err: &ErrorMessage, now: u64) -> Handled {
    let device = session.device.map(|d| audit(now, d, "error"));
    Handled {
        reply: None,
        changes: Changes {
            consume: Some(session.token.clone()),
            audit: device.into_iter().collect(),
            ..Changes::default()
        },
        event: Event::AgentError { code: err.err_code },
    }
}

/// The offer narrowed to what a negotiation Error lists, or `None` for other Errors.
fn narrowed(offer: &Offer, err: &ErrorMessage) -> Option<Offer> {
    fn keep<T: PartialEq + Clone>(ours: &[T], theirs: Option<&Vec<T>>) -> Vec<T> {
        let theirs = theirs.map(Vec::as_slice).unwrap_or_default();
        ours.iter()
            .filter(|x| theirs.contains(x))
            .cloned()
            .collect()
    }
    let mut next = offer.clone();
    match err.err_code {
        ErrCode::UnsupportedMsgVersion => {
            next.versions = keep(&offer.versions, err.versions.as_ref())
        }
        ErrCode::UnsupportedCipherSuites => {
            next.suites = keep(&offer.suites, err.supported_teep_cipher_suites.as_ref());
        }
        ErrCode::UnsupportedFreshnessMechanisms => {
            next.freshness = keep(
                &offer.freshness,
                err.supported_freshness_mechanisms.as_ref(),
            );
        }
        ErrCode::UnsupportedSuitReport => {
            next.profiles = keep(&offer.profiles, err.supported_suit_cose_profiles.as_ref());
        }
        _ => return None,
    }
    Some(next)
}

/// An item the QueryRequest asked for that the QueryResponse lacks (spec §10: answered by
/// an Update with err-code). Attestation counts as missing only when the device's last
/// attestation is not fresh.
fn missing_item(
    requested: DataItemRequested,
    qr: &QueryResponse,
    attested: bool,
) -> Option<(ErrCode, &'static str)> {
    if requested.contains(DataItemRequested::ATTESTATION) && !attested {
        return Some((ErrCode::AttestationRequired, "attestation-payload missing"));
    }
    if requested.contains(DataItemRequested::TRUSTED_COMPONENTS) && qr.tc_list.is_none() {
        return Some((ErrCode::PermanentError, "tc-list missing"));
    }
    None
}

/// A SUIT report in the QueryResponse whose nonce is not the token.
fn bad_report_nonce(qr: &QueryResponse, token: &[u8]) -> Option<(ErrCode, &'static str)> {
    let bad = qr
        .suit_reports
        .iter()
        .flatten()
        .any(|r| read_report(r).map_or(true, |f| f.nonce.as_deref() != Some(token)));
    bad.then_some((
        ErrCode::PermanentError,
        "suit-report nonce is not the token",
    ))
}
