//! Success and Error: what the device did with an Update (or a QueryRequest).

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
