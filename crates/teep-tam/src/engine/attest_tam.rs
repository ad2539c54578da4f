//! The TAM attesting itself: an Agent's ERR_ATTESTATION_REQUIRED answered by a new
//! QueryRequest carrying the TAM's Attestation Result (spec §10: the TAM MUST re-send its
//! QueryRequest with its attestation-payload), at most once per session.

use super::result::agent_error;
use super::*;

impl Tam {
    /// The TAM's current Attestation Result, if it is configured to attest itself.
    pub(super) fn own_attestation(&self, now: u64) -> Option<OwnEar> {
        self.cfg
            .self_attestation
            .as_ref()
            .and_then(|a| a.source.current(now))
    }

    /// The signer of the key `own` binds, with `state`'s offer narrowed to its suite;
    /// `None` when the TAM holds no such key or the offer lacks its suite.
    pub(super) fn own_signer(
        &self,
        own: &OwnEar,
        state: &mut ExpectQueryResponse,
    ) -> Option<&dyn Signer> {
        let thumbprint = own.key.thumbprint();
        let signer = self
            .cfg
            .signers
            .iter()
            .find(|s| s.public_key().thumbprint() == thumbprint)?;
        let suite = CipherSuite::sign1(signer.algorithm().cose_id());
        if !state.offer.suites.contains(&suite) {
            return None;
        }
        state.offer.suites = vec![suite];
        Some(signer.as_ref())
    }

    /// ERR_ATTESTATION_REQUIRED answering the QueryRequest of `session`: the same
    /// QueryRequest again with the TAM's Attestation Result, under a new token (the old one
    /// consumed in the same commit). `device` is the device that signed the Error, when the
    /// session's device is known (the Error then verified with its key); `None` for an
    /// Agent not known yet, whose Error cannot be verified and so, as a negotiation Error,
    /// can get no more than what an empty POST gives anyone. Without a result, or when
    /// this session's QueryRequest already carried one, no QueryRequest is sent: the
    /// session ends (the token consumed when the Error verified).
    pub(super) fn attest_tam(
        &self,
        meta: MessageMeta,
        session: &SessionRecord,
        state: &ExpectQueryResponse,
        device: Option<&DeviceView>,
        err: &ErrorMessage,
        cx: &mut Context<'_>,
    ) -> Step {
        let end = |meta: MessageMeta, why: Dropped| match device {
            Some(_) => {
                tracing::warn!(reason = %why, "Agent demands TAM attestation: session ended");
                done(meta, Ok(agent_error(session, err, cx.now)))
            }
            None => done(meta, Err(why)),
        };
        if state.tam_attested {
            return end(meta, Dropped::TamAttestationRefused);
        }
        let Some(own) = self.own_attestation(cx.now) else {
            return end(meta, Dropped::NoTamAttestation);
        };
        let known = device.and_then(|v| v.device.as_ref());
        let outstanding = device
            .map(|v| v.outstanding_except(&session.token))
            .unwrap_or_default();
        tracing::info!(device = ?meta.device, "Agent demands TAM attestation: QueryRequest re-sent with it");
        let query = NewQuery {
            session: session.session,
            device: known,
            state: state.clone(),
            outstanding: &outstanding,
            consume: Some(session.token.clone()),
            own: Some(own),
        };
        self.send_query_request(meta, query, cx)
    }
}
