//! Opening sessions: the QueryRequest, and renegotiating it after the Agent's
//! negotiation Errors.

use super::*;

impl Tam {
    /// Opens a session for `device` (a view without record: a device not known yet, whose
    /// outstanding tokens are the anonymous ones).
    pub(super) fn connect(
        &self,
        meta: MessageMeta,
        device: DeviceView,
        cx: &mut Context<'_>,
    ) -> Step {
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

    /// A new session: QueryRequest, asking for attestation when `challenge` is set.
    pub(super) fn query_request(
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
            tam_attested: false,
        };
        let own = self
            .cfg
            .self_attestation
            .as_ref()
            .filter(|a| a.up_front)
            .and_then(|a| a.source.current(cx.now));
        let outstanding = &view.outstanding;
        let query = NewQuery {
            session: SessionId(session),
            device: known,
            state,
            outstanding,
            consume: None,
            own,
        };
        self.send_query_request(meta, query, cx)
    }

    pub(super) fn send_query_request(
        &self,
        mut meta: MessageMeta,
        query: NewQuery<'_>,
        cx: &mut Context<'_>,
    ) -> Step {
        let NewQuery {
            session,
            device,
            mut state,
            outstanding,
            consume,
            own,
        } = query;
        // The TAM's own attestation binds one of its keys: only that key signs, and the
        // offer names only its suite, so the Agent checks the result against the key
        // that verified.
        let own_signer = match &own {
            Some(o) => match self.own_signer(o, &mut state) {
                Some(s) => Some(s),
                None => return done(meta, Err(Dropped::NoSignerForSuite)),
            },
            None => None,
        };
        state.tam_attested = own.is_some();
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
            attestation_payload_format: own.as_ref().map(|o| o.format.clone()),
            attestation_payload: own.map(|o| o.ear),
            ..QueryRequest::default()
        };
        let message = Message::QueryRequest(qr);
        let known_suite = device.and_then(|d| d.suite.as_ref());
        let signed = match (own_signer, known_suite) {
            (Some(signer), _) => teep_proto::sign_message(
                &message,
                self.cfg.numbering,
                signer,
                &SignOptions::default(),
            )
            .map_err(Dropped::Sign),
            (None, Some(suite)) => self.sign1(&message, suite),
            (None, None) => {
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
                detail: None,
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

    /// A negotiation Error from an Agent the TAM cannot authenticate yet: a new QueryRequest
    /// with what both sides support. Accepting it unverified gives an attacker nothing an
    /// empty POST would not (a fresh QueryRequest), and the offer only ever narrows.
    pub(super) fn renegotiate(
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
        // A renegotiated QueryRequest carries the TAM's attestation again if the one it
        // replaces did (the Agent demanded it), and then counts as the one retry.
        let own = state
            .tam_attested
            .then(|| self.own_attestation(cx.now))
            .flatten();
        let state = ExpectQueryResponse {
            challenge: state.challenge.clone().filter(|_| nonce),
            offer,
            requested: state.requested,
            tam_attested: false,
        };
        let query = NewQuery {
            session: session.session,
            device: None,
            state,
            outstanding: &[],
            consume: Some(session.token),
            own,
        };
        self.send_query_request(meta, query, cx)
    }
}

/// The offer narrowed to what a negotiation Error lists, or `None` for other Errors.
pub(super) fn narrowed(offer: &Offer, err: &ErrorMessage) -> Option<Offer> {
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
