//! Success and Error: what the device did with an Update (or a QueryRequest).

use teep_proto::{ComponentId, ErrCode};

use crate::store::{FAILED_BACKOFF, FAILED_PER_DEVICE, Failed};

use super::*;

impl Tam {
    /// Success or Error answering an Update, verified with the device's key.
    pub(super) fn on_result(
        &self,
        session: &SessionRecord,
        state: &ExpectSuccess,
        message: &Message,
        view: DeviceView,
        now: u64,
    ) -> Result<Handled, Dropped> {
        let revision = view.revision;
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
        let reader = self.report_reader();
        for entry in reports {
            let facts = reader.read(entry).map_err(Dropped::Report)?;
            if facts.nonce.as_deref() != Some(session.token.as_slice()) {
                return Err(Dropped::ReportNonce);
            }
            // A report is about a manifest this Update sent, or about one it unlinked (the
            // installed manifest the TAM named in `unneeded-manifest-list`); no other.
            let sent = state
                .sent_manifests
                .iter()
                .any(|m| m.digest == facts.manifest_digest);
            if !sent && unlinked_by(&device, state, facts.manifest_digest).is_none() {
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
        // Success: every unlinked manifest is gone. Error: all but those a report says
        // failed to unlink. An Error with no report about an unlink (the Agent refusing a
        // replayed copy of an Update whose first copy it applied, its Success lost) leaves
        // the outcome unknown: the record then claims less, never what the device may no
        // longer hold, and the next QueryResponse's tc-list puts back what is still there.
        let unlinked: Vec<ComponentId> = state
            .unneeded
            .iter()
            .filter(|id| {
                code.is_none()
                    || !records.iter().any(|r| {
                        !r.success && unlinked_by(&device, state, r.manifest_digest) == Some(*id)
                    })
            })
            .cloned()
            .collect();
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
        // An Error with no report at all is a refusal of the whole message (a replayed copy
        // of an Update whose first copy the Agent applied, its Success lost; one it judged
        // superseded): whether the device holds a sent manifest, and which version, is
        // unknown. Its entry is dropped, so the record claims nothing the device may not
        // hold; the next QueryResponse's tc-list puts back what is there (found by the
        // simulation: the record kept a version the device had replaced, or a manifest
        // recorded from a stale tc-list that the device had unlinked).
        if code.is_some() && records.is_empty() {
            device.installed.retain(|i| {
                !state
                    .sent_manifests
                    .iter()
                    .any(|m| m.manifest_id == i.manifest_id)
            });
        }
        for m in &installed {
            device.installed.retain(|i| i.manifest_id != m.manifest_id);
            device.installed.push(Installed {
                manifest_id: m.manifest_id.clone(),
                sequence: m.sequence,
                digest: m.digest,
            });
        }
        device
            .installed
            .retain(|i| !unlinked.contains(&i.manifest_id));
        // A manifest the Agent could not process waits before it is sent to this device
        // again if it fails again (see `Failed`); installing a manifest clears its
        // failures.
        if code == Some(ErrCode::ManifestProcessingFailed) {
            for m in &state.sent_manifests {
                let failed = records
                    .iter()
                    .any(|r| r.manifest_digest == m.digest && !r.success);
                if !failed {
                    continue;
                }
                match device.failed.iter().position(|f| f.digest == m.digest) {
                    Some(i) => {
                        // Moved to the newest end (trimmed last), and counted again unless
                        // it failed less than FAILED_BACKOFF ago: the retries of one
                        // policy check, or of a device asking for it, are one failure.
                        let mut again = device.failed.remove(i);
                        if now >= again.at.saturating_add(FAILED_BACKOFF) {
                            again.failures = again.failures.saturating_add(1);
                            again.at = now;
                        }
                        device.failed.push(again);
                    }
                    None => device.failed.push(Failed {
                        manifest_id: m.manifest_id.clone(),
                        digest: m.digest,
                        failures: 1,
                        at: now,
                    }),
                }
            }
        }
        device
            .failed
            .retain(|f| !installed.iter().any(|m| m.manifest_id == f.manifest_id));
        let excess = device.failed.len().saturating_sub(FAILED_PER_DEVICE);
        device.failed.drain(..excess);
        let event = match code {
            None => Event::Installed {
                manifests: installed.len(),
                unlinked: unlinked.len(),
            },
            Some(code) => Event::AgentError { code },
        };
        let id = device.id;
        Ok(Handled {
            reply: None,
            changes: Changes {
                consume: Some(session.token.clone()),
                device: Some(device),
                // The record is rewritten from this view: only if no commit changed it since.
                device_revision: Some(revision),
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

/// The manifest of `state`'s `unneeded-manifest-list` whose installed version has
/// `digest`, if any (what a report about an unlink names).
fn unlinked_by<'a>(
    device: &Device,
    state: &'a ExpectSuccess,
    digest: [u8; 32],
) -> Option<&'a ComponentId> {
    state.unneeded.iter().find(|id| {
        device
            .installed
            .iter()
            .any(|i| &i.manifest_id == *id && i.digest == digest)
    })
}

/// An Error answering a QueryRequest, from a known device: logged and the token retired.
pub(super) fn agent_error(session: &SessionRecord, err: &ErrorMessage, now: u64) -> Handled {
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
