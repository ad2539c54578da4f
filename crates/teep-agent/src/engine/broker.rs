//! The Broker-facing calls (RFC 9397 §6.2.1, draft-ietf-teep-otrp-over-http §3.2) and the
//! two run-time calls of apps (list and invoke TAs).

use alloc::string::String;
use alloc::vec::Vec;

use teep_proto::Message;
use teep_suit::{ComponentId, Envelope, Manifest, SuitError};

use super::{Agent, AgentError};
use crate::tee::Tee;

/// The answer to RequestTA, UnrequestTA, RequestPolicyCheck and ProcessError, shaped like
/// `teep_broker::agent::AgentAnswer` (teep-agent does not depend on the Broker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Nothing to do.
    Nothing,
    /// Contact this TAM: with `message`, POST it first (an unsolicited QueryResponse);
    /// without, start with an empty POST.
    Contact {
        /// The TAM chosen by the Agent (never an unconfigured hint).
        tam_uri: String,
        /// The first message to send, if any.
        message: Option<Vec<u8>>,
    },
}

/// An installed TA (or other component), as apps see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaInfo {
    /// The component.
    pub component_id: ComponentId,
    /// The manifest that installed it (its manifest component ID).
    pub manifest_id: ComponentId,
    /// That manifest's sequence number.
    pub sequence_number: u64,
}

impl<T: Tee> Agent<T> {
    /// The installed components with the manifest that lists each.
    ///
    /// # Errors
    /// [`AgentError::Storage`] when the storage fails or a stored manifest is damaged.
    pub fn list_tas(&self) -> Result<Vec<TaInfo>, AgentError> {
        let storage = self.tee.storage();
        let mut out = Vec::new();
        for m in storage.manifests().map_err(AgentError::Storage)? {
            let bytes = storage
                .read(&m.component_id)
                .map_err(AgentError::Storage)?
                .ok_or_else(|| {
                    AgentError::Storage(SuitError::NotInstalled(m.component_id.clone()))
                })?;
            let envelope = Envelope::decode(&bytes).map_err(AgentError::Storage)?;
            let manifest =
                Manifest::decode(envelope.manifest_bytes).map_err(AgentError::Storage)?;
            for c in manifest.common.components {
                out.push(TaInfo {
                    component_id: c,
                    manifest_id: m.component_id.clone(),
                    sequence_number: m.sequence_number,
                });
            }
        }
        Ok(out)
    }

    /// Component IDs of everything installed (components and the manifests themselves).
    pub(super) fn installed_components(&self) -> Result<Vec<ComponentId>, AgentError> {
        let tas = self.list_tas()?;
        let mut ids: Vec<ComponentId> = tas.iter().map(|t| t.manifest_id.clone()).collect();
        ids.extend(tas.into_iter().map(|t| t.component_id));
        Ok(ids)
    }

    /// The TAM to contact: the app's hint when it is one we trust, else the default.
    fn choose_tam(&self, hint: Option<&str>) -> Result<String, AgentError> {
        let uris = &self.cfg.tam_uris;
        hint.and_then(|h| uris.iter().find(|u| *u == h))
            .or_else(|| uris.first())
            .cloned()
            .ok_or(AgentError::NoTam)
    }

    /// An unsolicited QueryResponse for `tam_uri`, only when §11 allows it: that TAM's
    /// last QueryRequest had neither token nor challenge, ProcessError was not called for
    /// it since our last QueryResponse, and the key that verified it is still a trust
    /// anchor (raw keys; a key known only through a CA is not cached, so no message).
    fn unsolicited(&self, tam_uri: &str) -> Result<Option<Vec<u8>>, AgentError> {
        let Some(tam) = self.state.tam(tam_uri) else {
            return Ok(None);
        };
        let cached = self
            .tam_trust
            .keys()
            .iter()
            .any(|k| k.thumbprint() == tam.key);
        if !tam.plain_query || tam.error_since_response || !cached {
            return Ok(None);
        }
        let response = self.inventory(tam_uri, &tam.key, true)?;
        self.sign(&Message::QueryResponse(response))
            .map(Some)
            .map_err(AgentError::Message)
    }

    fn contact(&mut self, tam_uri: String) -> Result<Answer, AgentError> {
        let message = self.unsolicited(&tam_uri)?;
        // An unsolicited QueryResponse is a QueryResponse: the Update answering it is due.
        if message.is_some() {
            let mut next = self.state.clone();
            if let Some(t) = next.tams.iter_mut().find(|t| t.uri == tam_uri) {
                t.applied_since_response = false;
            }
            if next != self.state {
                self.commit_state(next)?;
            }
        }
        Ok(Answer::Contact { tam_uri, message })
    }

    /// RequestTA: an app needs `component`. Installed: nothing. Otherwise it is remembered
    /// (sealed) for the next `requested-tc-list` and the chosen TAM is returned.
    ///
    /// # Errors
    /// No TAM configured, too many pending requests, or the TEE failed.
    pub fn request_ta(
        &mut self,
        component: ComponentId,
        tam_uri_hint: Option<&str>,
    ) -> Result<Answer, AgentError> {
        if self.installed_components()?.contains(&component) {
            return Ok(Answer::Nothing);
        }
        let tam_uri = self.choose_tam(tam_uri_hint)?;
        if !self
            .state
            .requested
            .iter()
            .any(|r| r.component == component)
        {
            if self.state.requested.len() >= self.cfg.limits.max_requested {
                return Err(AgentError::TooManyRequests);
            }
            let mut next = self.state.clone();
            next.requested.push(super::state::Requested {
                component,
                tam_uri: Some(tam_uri.clone()),
            });
            self.commit_state(next)?;
        }
        self.contact(tam_uri)
    }

    /// UnrequestTA: no app needs `component` any more. Its manifest goes into the next
    /// `unneeded-manifest-list` and the TAM is returned; a TA not installed is only
    /// dropped from the pending requests.
    ///
    /// # Errors
    /// No TAM configured, or the TEE failed.
    pub fn unrequest_ta(&mut self, component: &ComponentId) -> Result<Answer, AgentError> {
        let manifest = self
            .list_tas()?
            .into_iter()
            .find(|t| &t.component_id == component || &t.manifest_id == component)
            .map(|t| t.manifest_id);
        let mut next = self.state.clone();
        next.requested.retain(|r| &r.component != component);
        let Some(manifest) = manifest else {
            if next != self.state {
                self.commit_state(next)?;
            }
            return Ok(Answer::Nothing);
        };
        let tam_uri = self.choose_tam(None)?;
        if !next.unneeded.contains(&manifest) {
            next.unneeded.push(manifest);
        }
        if next != self.state {
            self.commit_state(next)?;
        }
        self.contact(tam_uri)
    }

    /// RequestPolicyCheck: each configured TAM once per round, then nothing (which ends
    /// the round; the Broker calls until it gets nothing).
    ///
    /// `new_check` is true on the Broker's first call of a policy check: it starts a fresh
    /// round, so that a round a Broker left midway (killed, or stopped at an Agent error)
    /// cannot make the next check skip the TAMs it had already named.
    pub fn policy_check(&mut self, new_check: bool) -> Answer {
        if new_check {
            self.policy_round.clear();
        }
        let next = self
            .cfg
            .tam_uris
            .iter()
            .find(|u| !self.policy_round.contains(u))
            .cloned();
        match next {
            Some(tam_uri) => {
                self.policy_round.push(tam_uri.clone());
                Answer::Contact {
                    tam_uri,
                    message: None,
                }
            }
            None => {
                self.policy_round.clear();
                Answer::Nothing
            }
        }
    }

    /// ProcessError: the exchange with `tam_uri` failed below TEEP. Recorded (no
    /// unsolicited QueryResponse to that TAM until it queries again); nothing to do.
    ///
    /// # Errors
    /// The TEE could not save the record.
    pub fn process_error(&mut self, tam_uri: &str) -> Result<Answer, AgentError> {
        let mut next = self.state.clone();
        if let Some(t) = next.tams.iter_mut().find(|t| t.uri == tam_uri) {
            t.error_since_response = true;
        }
        if next != self.state {
            self.commit_state(next)?;
        }
        Ok(Answer::Nothing)
    }

    /// Runs the installed TA `component` on `input`.
    ///
    /// # Errors
    /// [`AgentError::UnknownTa`] when it is not installed; the TA's own failure.
    pub fn invoke_ta(
        &mut self,
        component: &ComponentId,
        input: &[u8],
    ) -> Result<Vec<u8>, AgentError> {
        if !self
            .list_tas()?
            .iter()
            .any(|t| &t.component_id == component)
        {
            return Err(AgentError::UnknownTa);
        }
        Ok(self.tee.invoke(component, input)?)
    }
}
