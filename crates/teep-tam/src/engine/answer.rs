//! Answering a verified QueryResponse: the Update computed from policy, or one carrying
//! err-code when the QueryResponse lacks what was asked for.

use super::*;

impl Tam {
    /// A verified QueryResponse from a known or attested device: the Update.
    pub(super) fn answer_query(
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
            attestation_exempt: false,
            installed: Vec::new(),
            failed: Vec::new(),
        });
        let suite = verified.cipher_suite();
        device.suite = Some(suite.clone());
        let mut changes = Changes {
            consume: Some(session.token.clone()),
            // Every other outstanding token of the device is retired: this QueryResponse
            // is the device's latest word, and a Success to an older Update, processed
            // after this session, would rewrite the record with stale news (found by the
            // simulation). The spec lets a TAM discard outstanding requests (§5).
            retire: view.outstanding_except(&session.token),
            // The record is rewritten from this view: only if no commit changed it since.
            device_revision: Some(view.revision),
            ..Changes::default()
        };
        let failed = attested.as_ref().is_some_and(|a| !a.affirming);
        let known = view.device.is_some();
        // The store keeps it only for a device with a record: a stranger failing its first
        // appraisal (not recorded below) proves no identity.
        changes.outcome = attested.as_ref().map(|a| AttestationOutcome {
            device: id,
            at: cx.now,
            verdict: if a.affirming {
                AttestationVerdict::Affirming
            } else {
                AttestationVerdict::NotAffirming
            },
            detail: format!("EAR status {}", a.status),
        });
        match attested {
            Some(a) if a.affirming => {
                device.attested_at = Some(cx.now);
                changes.attestation = Some(AttestationRecord {
                    device: id,
                    at: cx.now,
                    ear: a.ear,
                });
            }
            // Attestation failed: the device is unattested until it attests again. This TAM
            // cannot update the Agent or its firmware, so (spec §10, QueryResponse handling
            // 3) it answers an Update with ERR_ATTESTATION_REQUIRED and installs nothing.
            Some(_) => {
                device.attested_at = None;
                changes
                    .audit
                    .push(audit(cx.now, id, "attestation not affirming"));
            }
            None => {}
        }
        let fresh = self.attestation_fresh(&device, cx.now);
        let problem = failed
            .then_some((ErrCode::AttestationRequired, "attestation failed"))
            .or_else(|| missing_item(state.requested, qr, fresh))
            .or_else(|| bad_report_nonce(&self.report_reader(), qr, &session.token));
        // The record follows what the device says it holds (its verified tc-list), also
        // when the Update carries err-code (attestation missing, a bad report): else a
        // record made stale by an Update whose Success was lost stays stale through this
        // session's end (found by the simulation). Not after a failed attestation: the
        // device's word is not trusted then.
        if !failed {
            device.installed = reconcile(&view, &device.installed, qr.tc_list.as_deref());
        }
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
                // The plan starts from the reconciled record.
                let view = DeviceView {
                    device: Some(device.clone()),
                    ..view
                };
                let p = plan(&view, qr, cx.now);
                if !p.refused.is_empty() {
                    tracing::info!(device = %id, refused = p.refused.len(), "requested TCs not permitted by policy");
                }
                if !p.held.is_empty() {
                    tracing::info!(device = %id, held = p.held.len(), "releases the device failed to install again and again wait");
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
                        .then(|| p.send.iter().map(|r| p.envelope(r)).collect()),
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
        // A device first seen with a failed attestation is not recorded (anyone can make
        // Evidence a Verifier rejects; the audit entry says it was here).
        if known || !failed {
            changes.device = Some(device);
        }
        changes.audit.push(audit(cx.now, id, "update sent"));
        Ok(Handled {
            reply: Some(reply),
            changes,
            event,
        })
    }
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
fn bad_report_nonce(
    reader: &ReportReader<'_>,
    qr: &QueryResponse,
    token: &[u8],
) -> Option<(ErrCode, &'static str)> {
    let bad = qr.suit_reports.iter().flatten().any(|r| {
        reader
            .read(r)
            .map_or(true, |f| f.nonce.as_deref() != Some(token))
    });
    bad.then_some((
        ErrCode::PermanentError,
        "suit-report nonce is not the token",
    ))
}
