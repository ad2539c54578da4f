//! Update -> Success / Error (§11 Update handling): unlink every manifest of
//! `unneeded-manifest-list`, then run the SUIT Update Procedure on every envelope of
//! `manifest-list`, as one transaction of the teep-suit processor; the reply is built only
//! once the whole procedure is over.

use alloc::vec::Vec;

use teep_proto::{ErrCode, ErrorMessage, Message, Success, Update};
use teep_suit::processor::{Processor, UpdateItem, UpdateOutcome};
use teep_suit::report::Report;
use teep_suit::{ComponentId, Envelope, Manifest};

use super::{Agent, Event, Handled, Refusal, Rejection, err_msg};
use crate::tee::Tee;

/// Where each envelope of a manifest-list would be stored (its manifest component ID, or
/// its first component's with `suit` appended, as the processor stores it), for the
/// ownership check before anything runs. An envelope that does not decode is left out: the
/// processor refuses it anyway, and its manifest bytes are what the signature covers.
fn envelope_locations(envelopes: &[Vec<u8>]) -> Vec<ComponentId> {
    envelopes
        .iter()
        .filter_map(|e| {
            let envelope = Envelope::decode(e).ok()?;
            let manifest = Manifest::decode(envelope.manifest_bytes).ok()?;
            manifest.manifest_component_id.or_else(|| {
                let mut id = manifest.common.components.first()?.clone();
                id.0.push(b"suit".to_vec());
                Some(id)
            })
        })
        .collect()
}

/// teep-suit states its err-codes by their -26 meaning; these are ours.
impl<T: Tee> Agent<T> {
    /// `tam_uri` is the TAM the Broker names; `tam` is the thumbprint of the TAM key the
    /// Update verified with.
    pub(super) fn on_update(
        &mut self,
        tam_uri: &str,
        u: Update,
        tam: [u8; 32],
    ) -> Result<Handled, Rejection> {
        let token = u.token.as_deref();
        let reject = |refusal| Rejection::with_token(refusal, token);
        if token.is_some_and(|t| self.state.tokens.iter().any(|seen| seen == t)) {
            // The Error echoes the token, as every response must (draft §4): the TAM
            // tells a refused replay from a failed Update by its reports (it has none).
            return Err(reject(Refusal::Replay));
        }
        let envelopes = u.manifest_list.as_deref().unwrap_or_default();
        let unneeded: Vec<ComponentId> =
            u.unneeded_manifest_list.iter().flatten().cloned().collect();
        let limits = &self.cfg.limits;
        let total: usize = envelopes.iter().map(Vec::len).sum();
        if envelopes.len() > limits.max_manifests
            || total > limits.max_update_bytes
            || unneeded.len() > limits.max_unneeded
        {
            return Err(reject(Refusal::OverLimits));
        }
        // A repeated install inside one Update is declined; an envelope already installed
        // (same manifest, same number) goes to the processor, which treats it as the
        // re-delivery of an Update whose Success was lost.
        let repeated = |i: usize, e: &Vec<u8>| envelopes.get(..i).is_some_and(|b| b.contains(e));
        if envelopes.iter().enumerate().any(|(i, e)| repeated(i, e))
            || unneeded
                .iter()
                .enumerate()
                .any(|(i, id)| unneeded.get(..i).is_some_and(|b| b.contains(id)))
        {
            return Err(reject(Refusal::Repeated));
        }
        if envelopes.is_empty() && unneeded.is_empty() {
            return self.acknowledge(u);
        }
        // One state-changing Update per QueryResponse: after one is committed, the TAM must
        // hear the device's new state before it plans another (an Update held back and
        // delivered after a newer one would unlink or replace what that one installed,
        // found by the simulation). An Update changing nothing is harmless and acknowledged.
        if self
            .state
            .tam(tam_uri)
            .is_some_and(|t| t.applied_since_response)
        {
            return Err(reject(Refusal::Superseded));
        }
        if unneeded
            .iter()
            .chain(&envelope_locations(envelopes))
            .any(|m| self.state.owner(m).is_some_and(|owner| *owner != tam))
        {
            return Err(reject(Refusal::NotOwner));
        }
        let outcome = {
            let parts = self.tee.update_parts();
            let processor = Processor {
                decryptor: parts.decryptor,
                fetcher: parts.fetcher,
                ..Processor::new(self.cfg.provider, &self.cfg.tc_trust, &self.cfg.device)
            };
            processor.update(parts.storage, &unneeded, envelopes, token)
        };
        self.answer_update(u.token, tam_uri, tam, &unneeded, &outcome)
    }

    /// An Update with nothing to install or unlink: at most the TAM's err-code, or an
    /// Attestation Result for us to keep (passport). Acknowledged with Success; nothing
    /// changes but the token, remembered as answered.
    fn acknowledge(&mut self, u: Update) -> Result<Handled, Rejection> {
        let token = u.token.as_deref();
        let reply = self
            .sign(&Message::Success(Success {
                token: u.token.clone(),
                ..Success::default()
            }))
            .map_err(|_| Rejection::with_token(Refusal::Tee, token))?;
        let mut next = self.state.clone();
        if let Some(t) = token {
            next.remember_token(t, self.cfg.limits.remembered_tokens);
        }
        self.commit_state(next)
            .map_err(|_| Rejection::with_token(Refusal::Tee, token))?;
        let event = match u.err_code {
            Some(err_code) => Event::TamReported { err_code },
            None => Event::UpdateApplied {
                installed: 0,
                unlinked: 0,
            },
        };
        Ok(Handled {
            reply: Some(reply),
            event,
        })
    }

    fn answer_update(
        &mut self,
        token: Option<Vec<u8>>,
        tam_uri: &str,
        tam: [u8; 32],
        unneeded: &[ComponentId],
        outcome: &UpdateOutcome,
    ) -> Result<Handled, Rejection> {
        let failed = outcome.result.as_ref().err();
        // One report per envelope of manifest-list, in order (what the TAM sent); an
        // unlink's report only when that unlink is what failed (the TAM did not send that
        // manifest, it named it). `suit-reports` is `[+ ...]`: absent when empty.
        let failed_unlink = match failed.and_then(|f| f.item) {
            Some(UpdateItem::Unneeded(k)) => outcome.unlinked.get(k),
            _ => None,
        };
        let reports = failed_unlink
            .into_iter()
            .chain(&outcome.outcomes)
            .map(|o| self.protect(&o.report, &tam))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|refusal| Rejection::with_token(refusal, token.as_deref()))?;
        let reports = (!reports.is_empty()).then_some(reports);
        let Some(failure) = failed else {
            let reply = self
                .sign(&Message::Success(Success {
                    token: token.clone(),
                    suit_reports: reports,
                    ..Success::default()
                }))
                .map_err(|_| Rejection::with_token(Refusal::Tee, token.as_deref()))?;
            let event = self.after_commit(token.as_deref(), tam_uri, tam, unneeded, outcome);
            return Ok(Handled {
                reply: Some(reply),
                event,
            });
        };
        let code = ErrCode::from(failure.failure.error.teep_err_code());
        let error = ErrorMessage {
            token: token.clone(),
            err_msg: Some(err_msg(&alloc::format!("{}", failure.failure.error))),
            suit_reports: reports,
            ..ErrorMessage::new(code)
        };
        let reply = self
            .sign(&Message::Error(error))
            .map_err(|_| Rejection::with_token(Refusal::Tee, token.as_deref()))?;
        Ok(Handled {
            reply: Some(reply),
            event: Event::UpdateFailed {
                err_code: code,
                manifest: match failure.item {
                    Some(UpdateItem::Manifest(k)) => Some(k),
                    _ => None,
                },
            },
        })
    }

    /// After a committed Update: the token is answered, installed TAs are no longer
    /// requested and unlinked manifests no longer unneeded; the installed manifests are
    /// `tam`'s, the unlinked ones nobody's; `tam_uri` may send no further Update until it
    /// has the device's next QueryResponse.
    fn after_commit(
        &mut self,
        token: Option<&[u8]>,
        tam_uri: &str,
        tam: [u8; 32],
        unneeded: &[ComponentId],
        outcome: &UpdateOutcome,
    ) -> Event {
        let mut next = self.state.clone();
        next.owners.retain(|(m, _)| !unneeded.contains(m));
        if let Some(t) = next.tams.iter_mut().find(|t| t.uri == tam_uri) {
            t.applied_since_response = true;
        }
        for done in outcome
            .outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().ok())
        {
            next.set_owner(&done.manifest_id, tam);
        }
        if let Some(t) = token {
            next.remember_token(t, self.cfg.limits.remembered_tokens);
        }
        next.unneeded.retain(|id| !unneeded.contains(id));
        let installed = self.installed_components().unwrap_or_default();
        next.requested.retain(|r| !installed.contains(&r.component));
        match self.commit_state(next) {
            Ok(()) => Event::UpdateApplied {
                installed: outcome.outcomes.len(),
                unlinked: outcome.unlinked.len(),
            },
            Err(_) => Event::StateNotSaved,
        }
    }

    /// A SUIT report as it goes into `suit-reports`: encrypted to the TAM (`tam`, the
    /// thumbprint of the key the Update verified with) when its key is configured (§12), else plain CBOR inside the signed TEEP message (the report key
    /// must differ from the TEEP key, and the TEEP signature authenticates it).
    /// Fails only if the TEE cannot encrypt or encode its own report: a TEE fault.
    fn protect(&self, report: &Report, tam: &[u8; 32]) -> Result<Vec<u8>, Refusal> {
        match self.encryption_key(tam) {
            Some(key) => report
                .encrypt(self.cfg.provider, key)
                .map_err(|_| Refusal::Tee),
            None => report.to_cbor().map_err(|_| Refusal::Tee),
        }
    }
}
