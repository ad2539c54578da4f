//! Routing a message by the state its token names, and the attestation checks that give
//! the key it must verify with.

use super::open::narrowed;
use super::result::agent_error;
use super::*;
use crate::own::ear_cnf_key;
use teep_attest::{EatClaims, ResultError};

impl Tam {
    /// The token's session is loaded: check it, then route by state and message type.
    pub(super) fn on_session(
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
        let parsed = match Unverified::parse(&body, self.cfg.numbering) {
            Ok(p) => p,
            Err(e) => return done(meta, Err(Dropped::Malformed(e))),
        };
        let message = parsed.message().clone();
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
                    (Some(evidence), PayloadKind::Evidence) => {
                        match self.open_evidence(evidence).and_then(|evidence| {
                            let signed =
                                self.signed_by_evidence_key(parsed, &evidence, &session)?;
                            Ok((evidence, signed))
                        }) {
                            Ok((evidence, signed)) => Step::Appraise(
                                AppraisalRequest::Appraise(evidence),
                                Pending {
                                    meta,
                                    body,
                                    stage: Stage::Appraisal { session, signed },
                                },
                            ),
                            Err(e) => done(meta, Err(e)),
                        }
                    }
                    (Some(ear), PayloadKind::AttestationResult) => {
                        let ear = ear.clone();
                        self.on_ear(meta, body, session, None, ear, cx)
                    }
                    (None, _) => self.load_signer(meta, body, session, None),
                }
            }
            (SessionState::ExpectQueryResponse(state), Message::Error(err)) => {
                // An unknown Agent's negotiation Error cannot be verified (no key is known
                // yet). It is accepted because it can only narrow the offer, and only
                // strictly: one that removes nothing is dropped, so a forged Error can
                // neither widen the offer nor keep a session renegotiating (at most one
                // round per item offered).
                // ERR_ATTESTATION_REQUIRED from an unknown Agent likewise: all it can cause is
                // this session's QueryRequest again with the TAM's Attestation Result (which
                // any Agent may have), once.
                match narrowed(&state.offer, err) {
                    Some(offer) if session.device.is_none() && offer == state.offer => {
                        done(meta, Err(Dropped::NegotiationFailed))
                    }
                    Some(offer) if session.device.is_none() => {
                        self.renegotiate(meta, session.clone(), state, offer, cx)
                    }
                    None if session.device.is_none()
                        && err.err_code == ErrCode::AttestationRequired =>
                    {
                        self.attest_tam(meta, &session, state, None, err, cx)
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

    /// Evidence as the Verifier takes it: signed EAT, decrypted first when the Agent
    /// encrypted it to the TAM (§12: a tagged COSE_Encrypt).
    fn open_evidence(&self, evidence: &[u8]) -> Result<Vec<u8>, Dropped> {
        if !evidence.starts_with(&COSE_ENCRYPT_TAG) {
            return Ok(evidence.to_vec());
        }
        let key = self
            .cfg
            .encryption_key
            .as_ref()
            .ok_or(Dropped::NoEncryptionKey)?;
        teep_attest::decrypt_evidence(self.cfg.provider, evidence, key)
            .map_err(Dropped::EvidenceDecryption)
    }

    /// Before the Verifier sees the Evidence (and its challenge is spent): the
    /// QueryResponse must verify with the key the Evidence's `cnf` claims, read without
    /// checking the Evidence. Else a tampered copy of a genuine QueryResponse would make
    /// the TAM do Verifier work for it and spend the challenge the genuine one needs.
    /// After the appraisal the EAR's `cnf` must name that key again ([`Self::on_ear`]) and
    /// [`Self::on_device`] verifies with it, so nothing rests on this unchecked read.
    /// Returns the device that key names (the sender holds it, so a failed appraisal can
    /// be recorded for that device when the TAM knows it) and the verified message, which
    /// [`Self::on_device`] takes when the EAR's `cnf` is that same key instead of
    /// verifying the same bytes with the same key again.
    fn signed_by_evidence_key(
        &self,
        parsed: Unverified<'_>,
        evidence: &[u8],
        session: &SessionRecord,
    ) -> Result<SignedBy, Dropped> {
        let key = teep_proto::decode_unverified_cose(evidence)
            .ok()
            .and_then(|cose| cose.payload)
            .and_then(|claims| EatClaims::from_cbor(&claims).ok())
            .and_then(|claims| claims.cnf_key().ok())
            .ok_or(Dropped::NoCnfKey)?;
        match parsed.verify_with_key(self.cfg.provider, &key) {
            Ok(verified) => Ok(SignedBy {
                device: DeviceId(key.thumbprint()),
                verified: Box::new(verified),
            }),
            Err(e) if session.device.is_some() => Err(Dropped::WrongDevice(e)),
            Err(e) => Err(Dropped::BadSignature(e)),
        }
    }

    /// Needs the device record to verify the message: the session's device, else the one
    /// the COSE `kid` names (RFC 9679 thumbprint = device id).
    pub(super) fn load_signer(
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
    /// `background`: the Evidence's key had verified the QueryResponse before the Verifier
    /// was asked (a background check); `None` for a passport.
    pub(super) fn on_ear(
        &self,
        meta: MessageMeta,
        body: Vec<u8>,
        session: SessionRecord,
        background: Option<SignedBy>,
        ear: Vec<u8>,
        cx: &mut Context<'_>,
    ) -> Step {
        let SessionState::ExpectQueryResponse(state) = &session.state else {
            return done(meta, Err(Dropped::ShellMismatch));
        };
        // Whose appraisal failed, if it fails: the device the session was opened for, else
        // the one whose key signed the QueryResponse (checked before the appraisal).
        let appraised = session
            .device
            .or_else(|| background.as_ref().map(|b| b.device));
        // The key is read from the EAR before its signature is checked; `verify_ear` below
        // checks the signature and that `cnf` names exactly this key, and `on_device` then
        // verifies the QueryResponse with it, so nothing rests on the unchecked read.
        let Some(key) = ear_cnf_key(&ear) else {
            return rejected(meta, Dropped::NoCnfKey, appraised, cx.now);
        };
        // A QueryResponse carrying an Attestation Result (a passport) comes here straight
        // from `on_session`; one carrying Evidence, after the Verifier's answer.
        let passport = background.is_none();
        // Passport: the Agent's Verifier saw our token as nonce (or, with
        // `passport_by_age`, its own challenge: fresh by `iat` only); background check: the
        // challenge our Verifier issued for this session.
        let nonce = match (passport, self.cfg.passport_by_age) {
            (true, false) => Some(session.token.as_slice()),
            (true, true) => None,
            (false, _) => state.challenge.as_deref(),
        };
        let check = ResultCheck {
            provider: self.cfg.provider,
            verifiers: &self.cfg.verifiers,
            nonce,
            now: cx.now,
            max_age: self.cfg.attestation_max_age,
            teep_key: &key,
        };
        // `NotAffirming` is verify_ear's last check: everything else about the EAR holds,
        // so the QueryResponse is answered (with ERR_ATTESTATION_REQUIRED), not dropped.
        let (affirming, status) = match verify_ear(&ear, &check) {
            Ok(_) => (true, "affirming"),
            Err(ResultError::NotAffirming(status)) => (false, status.name()),
            Err(e) => {
                return rejected(meta, Dropped::Attestation(e), appraised, cx.now);
            }
        };
        let attested = Attested {
            key,
            ear,
            affirming,
            status,
            verified: background.map(|b| b.verified),
        };
        self.load_signer(meta, body, session, Some(attested))
    }

    /// The device is loaded: verify the message with its key (or the attested key), then
    /// decide.
    pub(super) fn on_device(
        &self,
        mut meta: MessageMeta,
        body: Vec<u8>,
        session: SessionRecord,
        mut attested: Option<Attested>,
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
        // With attestation, a failure here is that appraisal's failure for the known
        // device the session was opened for.
        let attesting = session.device.filter(|_| attested.is_some());
        if session.device.is_some_and(|expected| expected != id) {
            return rejected(meta, Dropped::NotSessionDevice, attesting, cx.now);
        }
        // Verified before the appraisal with the Evidence's key, when the EAR's is the same.
        let checked = attested
            .as_mut()
            .and_then(|a| a.verified.take())
            .filter(|v| v.signer() == &key);
        let verified = match checked.map_or_else(
            || verify_with(&body, self.cfg.numbering, self.cfg.provider, &key),
            |v| Ok(*v),
        ) {
            Ok(v) => v,
            Err(e) if session.device.is_some() => {
                return rejected(meta, Dropped::WrongDevice(e), attesting, cx.now);
            }
            Err(e) => return done(meta, Err(Dropped::BadSignature(e))),
        };
        if view.device.as_ref().is_some_and(|d| d.revoked) {
            return done(meta, Err(Dropped::Revoked));
        }
        if let (SessionState::ExpectQueryResponse(state), Message::Error(err)) =
            (&session.state, verified.message())
            && err.err_code == ErrCode::AttestationRequired
        {
            return self.attest_tam(meta, &session, state, Some(&view), err, cx);
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
}

/// CBOR tag 96 (COSE_Encrypt), as our Agents and the draft's examples encode it.
const COSE_ENCRYPT_TAG: [u8; 2] = [0xd8, 0x60];
