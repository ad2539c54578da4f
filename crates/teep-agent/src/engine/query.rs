//! QueryRequest -> QueryResponse (§11 QueryRequest handling), and the unsolicited
//! QueryResponse of RequestTA.

use alloc::vec::Vec;

use teep_attest::claims::TEEP_EAT_PROFILE;
use teep_attest::{
    ATTESTATION_RESULT_FORMAT, Cnf, EVIDENCE_FORMAT, EvidenceError, PayloadKind, ResultCheck,
    ResultError, Status, encrypt_evidence, payload_kind, sign_evidence, verify_ear,
};
use teep_cose::PublicKey;
use teep_proto::{
    ComponentId, DataItemRequested, FreshnessMechanism, Message, QueryRequest, QueryResponse,
    RequestedTcInfo, SystemPropertyClaims,
};

use super::state::KnownTam;
use super::{
    Agent, AgentError, Attestation, Context, Event, FRESHNESS, Handled, Passport, Refusal,
    Rejection, VERSIONS,
};
use crate::tee::Tee;

impl<T: Tee> Agent<T> {
    pub(super) fn on_query(
        &mut self,
        tam_uri: &str,
        tam_key: &PublicKey,
        q: QueryRequest,
        cx: Context,
    ) -> Result<Handled, Rejection> {
        let token = q.token.as_deref();
        let reject = |refusal| Rejection::with_token(refusal, token);
        if token.is_some_and(|t| self.state.tokens.iter().any(|seen| seen == t)) {
            // The Error echoes the token, as every response must (draft §4): the TAM
            // tells a refused replay from a failed Update by its reports (it has none).
            return Err(reject(Refusal::Replay));
        }
        let version = q
            .select_version(&VERSIONS)
            .map_err(|_| reject(Refusal::Version))?;
        q.select_cipher_suite(&self.cipher_suites())
            .map_err(|_| reject(Refusal::CipherSuite))?;
        if !q
            .supported_suit_cose_profiles
            .iter()
            .any(|p| self.cfg.suit_cose_profiles.contains(p))
        {
            return Err(reject(Refusal::SuitProfile));
        }
        self.check_tam_attestation(tam_uri, tam_key, &q, cx)?;
        let asked = q.data_item_requested;
        let payload = match (
            asked.contains(DataItemRequested::ATTESTATION),
            &self.cfg.attestation,
        ) {
            (false, _) | (true, Attestation::None) => None,
            // Passport: the kept Attestation Result while fresh, else nothing.
            (true, Attestation::Passport(p)) => self
                .fresh_passport(p, cx.now)
                .map(|ear| (ATTESTATION_RESULT_FORMAT, ear.to_vec())),
            (true, Attestation::Evidence) => Some((
                EVIDENCE_FORMAT,
                self.evidence(&q, tam_key, cx.now).map_err(reject)?,
            )),
        };
        let attested = payload.is_some();
        let mut response = self
            .inventory(
                tam_uri,
                &tam_key.thumbprint(),
                asked.contains(DataItemRequested::TRUSTED_COMPONENTS),
            )
            .map_err(|_| reject(Refusal::Tee))?;
        response.token = q.token.clone();
        response.selected_version = (version != 0).then_some(version);
        if let Some((format, payload)) = payload {
            response.attestation_payload_format = Some(format.into());
            response.attestation_payload = Some(payload);
        }
        if asked.contains(DataItemRequested::EXTENSIONS) {
            // No TEEP extension is defined: the list is empty (spec ambiguity §16.4).
            response.ext_list = Some(Vec::new());
        }
        let tcs = response.tc_list.as_ref().map_or(0, Vec::len);
        let reply = self
            .sign(&Message::QueryResponse(response))
            .map_err(|_| reject(Refusal::Tee))?;
        let mut next = self.state.clone();
        if let Some(t) = token {
            next.remember_token(t, self.cfg.limits.remembered_tokens);
        }
        // The URI comes from the Broker (the REE): only configured TAMs get a record, so a
        // replayed QueryRequest under made-up URIs cannot grow the sealed state.
        if self.is_configured(tam_uri) {
            next.remember_tam(KnownTam {
                uri: tam_uri.into(),
                key: tam_key.thumbprint(),
                plain_query: q.token.is_none() && q.challenge.is_none(),
                error_since_response: false,
                applied_since_response: false,
            });
        }
        self.commit_state(next).map_err(|_| reject(Refusal::Tee))?;
        self.challenges.retain(|(uri, _)| uri != tam_uri);
        Ok(Handled {
            reply: Some(reply),
            event: Event::QueryAnswered { attested, tcs },
        })
    }

    /// §11 step 1-2: with [`super::TamAttestation`] configured, a QueryRequest must carry
    /// an Attestation Result about the TAM, fresh for the challenge we sent (or by its `iat`
    /// when the timestamp mechanism is allowed), from a trusted
    /// Verifier, whose `cnf` names the key that signed the QueryRequest. Without it, a TAM's
    /// own attestation payload is ignored (older TAMs send one; it asks nothing of us).
    fn check_tam_attestation(
        &self,
        tam_uri: &str,
        tam_key: &PublicKey,
        q: &QueryRequest,
        cx: Context,
    ) -> Result<(), Rejection> {
        let Some(policy) = &self.cfg.tam_attestation else {
            return Ok(());
        };
        let token = q.token.as_deref();
        let issued = self
            .challenges
            .iter()
            .find(|(uri, _)| uri == tam_uri)
            .map(|(_, c)| c.as_slice());
        let required = || Rejection {
            token: token.map(<[u8]>::to_vec),
            refusal: Refusal::AttestationRequired,
            challenge: Some(cx.random.to_vec()),
        };
        let Some(payload) = q.attestation_payload.as_deref() else {
            return Err(required());
        };
        // Evidence about the TAM would need a Verifier reachable from the TEE: refused.
        let result =
            payload_kind(q.attestation_payload_format.as_deref()) == PayloadKind::AttestationResult;
        // Signature, age, cnf and status first; then freshness: a result carrying the
        // challenge we issued is fresh; any other (no nonce, or the nonce of the Verifier
        // the TAM attested itself to, which proves freshness to that Verifier only) counts
        // only under the timestamp mechanism (its `iat` within `max_age`, checked here).
        let check = ResultCheck {
            provider: self.cfg.provider,
            verifiers: &policy.verifiers,
            nonce: None,
            now: cx.now,
            max_age: policy.max_age,
            teep_key: tam_key,
        };
        let fresh = |ear: &teep_attest::Ear| {
            (ear.nonce.is_some() && ear.nonce.as_deref() == issued) || policy.timestamp
        };
        match result.then(|| verify_ear(payload, &check)) {
            Some(Ok(ear)) if ear.status() == Status::Affirming && fresh(&ear) => Ok(()),
            // Nothing to be fresh for yet: ask again, with a challenge.
            _ if issued.is_none() => Err(required()),
            _ => Err(Rejection::with_token(Refusal::TamAttestation, token)),
        }
    }

    /// Evidence for `q`: the device's claims with the TEEP profile, `cnf` our TEEP key,
    /// `eat_nonce` the challenge (background check) or else the token (passport), signed
    /// by the attestation key, encrypted to the encryption key configured for `tam_key` (the
    /// TAM key `q` verified with; [`Agent::encryption_key`], §12) if any.
    fn evidence(
        &self,
        q: &QueryRequest,
        tam_key: &PublicKey,
        now: u64,
    ) -> Result<Vec<u8>, Refusal> {
        let offered = q
            .supported_freshness_mechanisms
            .as_deref()
            .unwrap_or(&[FreshnessMechanism::NONCE]);
        if !offered.iter().any(|m| FRESHNESS.contains(m)) {
            return Err(Refusal::Freshness);
        }
        let nonce = q
            .challenge
            .as_deref()
            .or(q.token.as_deref())
            .ok_or(Refusal::Nonce)?;
        let signed = self.signed_evidence(nonce, now).map_err(|e| match e {
            // The nonce (a challenge of 65..512 bytes) does not fit eat_nonce.
            EvidenceError::Claims(_) => Refusal::Nonce,
            _ => Refusal::Tee,
        })?;
        match self.encryption_key(&tam_key.thumbprint()) {
            Some(key) => {
                encrypt_evidence(self.cfg.provider, &signed, key).map_err(|_| Refusal::Tee)
            }
            None => Ok(signed),
        }
    }

    /// The device's claims with the TEEP profile, `eat_nonce` = `nonce`, `cnf` our TEEP
    /// key, `iat` = `now`, signed by the attestation key (plain: for a TAM, [`Self::evidence`]
    /// encrypts it).
    fn signed_evidence(&self, nonce: &[u8], now: u64) -> Result<Vec<u8>, EvidenceError> {
        let teep_key = self.tee.teep_signer().public_key();
        let claims = teep_attest::EatClaims {
            profile: Some(TEEP_EAT_PROFILE.into()),
            nonce: Some(nonce.to_vec()),
            cnf: Some(Cnf::CoseKey(teep_key.to_cose_key_bytes())),
            iat: i64::try_from(now).ok(),
            ..self.tee.device_claims()
        };
        sign_evidence(&claims, self.tee.attestation_signer())
    }

    /// Passport step 1: Evidence for a Verifier, with the Verifier's challenge `nonce` as
    /// `eat_nonce` (8..64 bytes) and `cnf` our TEEP key, so that the Verifier's EAR names
    /// the key that signs our QueryResponses. Never encrypted (the Verifier reads it).
    ///
    /// # Errors
    /// [`AgentError::NoPassport`] unless passport mode is configured;
    /// [`AgentError::Evidence`] when the nonce does not fit or the TEE cannot sign.
    pub fn passport_evidence(&self, nonce: &[u8], now: u64) -> Result<Vec<u8>, AgentError> {
        if !matches!(self.cfg.attestation, Attestation::Passport(_)) {
            return Err(AgentError::NoPassport);
        }
        self.signed_evidence(nonce, now)
            .map_err(AgentError::Evidence)
    }

    /// Passport step 2: keeps `ear` (the Verifier's answer to [`Self::passport_evidence`])
    /// in the sealed state, replacing the one kept before. It must verify now: signed by a
    /// configured Verifier, fresh, affirming, `cnf` = our TEEP key; anything else is
    /// refused and the state is unchanged (the Broker that hands it over is not trusted).
    ///
    /// # Errors
    /// [`AgentError::NoPassport`], [`AgentError::Passport`], or the TEE's failure to save.
    pub fn store_passport(&mut self, ear: &[u8], now: u64) -> Result<(), AgentError> {
        let Attestation::Passport(passport) = &self.cfg.attestation else {
            return Err(AgentError::NoPassport);
        };
        self.check_passport(passport, ear, now)
            .map_err(AgentError::Passport)?;
        let mut next = self.state.clone();
        next.passport = Some(ear.to_vec());
        self.commit_state(next)?;
        Ok(())
    }

    /// The kept Attestation Result if it still verifies at `now` (fresh by `iat`).
    fn fresh_passport(&self, passport: &Passport, now: u64) -> Option<&[u8]> {
        let ear = self.state.passport.as_deref()?;
        self.check_passport(passport, ear, now).ok().map(|()| ear)
    }

    /// An Attestation Result about this device from a passport Verifier, bound to our
    /// TEEP key, fresh by `iat` at `now`.
    fn check_passport(&self, passport: &Passport, ear: &[u8], now: u64) -> Result<(), ResultError> {
        let check = ResultCheck {
            provider: self.cfg.provider,
            verifiers: &passport.verifiers,
            nonce: None,
            now,
            max_age: passport.max_age,
            teep_key: self.tee.teep_signer().public_key(),
        };
        verify_ear(ear, &check).map(|_| ())
    }

    /// A QueryResponse for `tam_uri` listing what apps asked for: the TAs requested from this
    /// TAM (or from none in particular), so one TAM does not learn what was asked of another;
    /// and, of what is installed (`tc-list`, when `tcs`) and unneeded, the manifests this TAM
    /// (by its key thumbprint `tam_key`) manages: its own and those without a recorded owner.
    /// Another TAM's TCs are none of its business: it would plan to unlink them (a TC it
    /// has no policy for), and that Update would only be refused, round after round.
    /// Whether the TAM with key thumbprint `tam_key` manages `manifest` (it installed it, or
    /// nobody is recorded as having done so).
    fn may_manage(&self, manifest: &ComponentId, tam_key: &[u8; 32]) -> bool {
        self.state
            .owner(manifest)
            .is_none_or(|owner| owner == tam_key)
    }

    pub(super) fn inventory(
        &self,
        tam_uri: &str,
        tam_key: &[u8; 32],
        tcs: bool,
    ) -> Result<QueryResponse, AgentError> {
        let tc_list = if tcs {
            let installed = self
                .tee
                .storage()
                .manifests()
                .map_err(AgentError::Storage)?;
            Some(
                installed
                    .iter()
                    .filter(|m| self.may_manage(&m.component_id, tam_key))
                    .map(SystemPropertyClaims::from)
                    .collect(),
            )
        } else {
            None
        };
        let requested: Vec<RequestedTcInfo> = self
            .state
            .requested
            .iter()
            .filter(|r| r.tam_uri.as_deref().is_none_or(|u| u == tam_uri))
            .map(|r| RequestedTcInfo {
                component_id: r.component.clone(),
                tc_manifest_sequence_number: None,
                have_binary: None,
            })
            .collect();
        let unneeded: Vec<ComponentId> = self
            .state
            .unneeded
            .iter()
            .filter(|m| self.may_manage(m, tam_key))
            .cloned()
            .collect();
        Ok(QueryResponse {
            tc_list,
            requested_tc_list: (!requested.is_empty()).then_some(requested),
            unneeded_manifest_list: (!unneeded.is_empty()).then_some(unneeded),
            ..QueryResponse::default()
        })
    }
}
