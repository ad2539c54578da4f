//! The Broker→Agent API (RFC 9397 §6.2.1, TEEP/HTTP §1), plus the two calls apps make
//! at run time (list and invoke TAs), which the Agent (the TEE) answers too.

use core::future::Future;

use serde::{Deserialize, Serialize};

use crate::http::TransportError;

/// A SUIT component identifier (`[* bstr]`): teep-suit's type (the Broker only carries it
/// between app and Agent). In JSON it is an array of hex strings (teep-suit's `serde`
/// feature); `Display` is its canonical text form.
pub use teep_suit::ComponentId;

/// RequestTA's argument: what an app or installer says it needs.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaRequest {
    /// The TA (or other TC) the app depends on.
    pub component_id: ComponentId,
    /// A TAM URI hint from the app's manifest. The Agent decides which TAM to use; the
    /// Broker contacts the URI the Agent answers with, never this one directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tam_uri: Option<String>,
}

/// An installed TA, as the Agent reports it to apps.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TaInfo {
    /// Its component identifier.
    pub component_id: ComponentId,
    /// The `suit-manifest-sequence-number` of the manifest that installed it, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<u64>,
}

/// The Agent's answer to RequestTA, UnrequestTA, RequestPolicyCheck and ProcessError
/// (TEEP/HTTP §3.2): (a) nothing, (b) a TAM URI, (c) a TAM URI and a message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AgentAnswer {
    /// (a) Nothing to do: the Broker reports success to its caller.
    Nothing,
    /// (b) or (c): contact this TAM. Without a message (or with an empty one) the Broker
    /// starts with an empty POST; with one, it POSTs the message.
    Contact {
        /// The TAM URI chosen by the Agent.
        tam_uri: String,
        /// The opaque TEEP message to send first, if any.
        message: Option<Vec<u8>>,
    },
}

/// Why the Agent could not answer. The Broker passes it to its caller; it never reaches
/// the TAM (the Agent reports protocol errors to the TAM in TEEP Error messages).
/// Serializable: the TEE process sends it back over the IPC socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentError {
    /// The Agent (the TEE process) cannot be reached.
    #[error("agent unavailable: {0}")]
    Unavailable(String),
    /// No such TA is installed (list/invoke).
    #[error("no installed TA {0}")]
    UnknownTa(ComponentId),
    /// The Agent refused the request (bad input from the app).
    #[error("agent refused the request: {0}")]
    Refused(String),
    /// Failure inside the Agent or the TA.
    #[error("agent failure: {0}")]
    Internal(String),
}

/// The Broker→Agent API. The Agent may live in another process (a TEE reached over a
/// Unix socket), so every call is async and may fail with [`AgentError`]. Futures are
/// `Send` so that the Broker can serve apps from a multi-threaded runtime.
///
/// The Broker runs one exchange at a time, so `tam_uri` in
/// [`process_teep_message`](Self::process_teep_message) and
/// [`process_error`](Self::process_error) always names the session in progress.
pub trait Agent: Send + Sync {
    /// RequestTA: an app needs this TA.
    fn request_ta(
        &self,
        request: TaRequest,
    ) -> impl Future<Output = Result<AgentAnswer, AgentError>> + Send;

    /// UnrequestTA: an app no longer needs this TA.
    fn unrequest_ta(
        &self,
        component_id: ComponentId,
    ) -> impl Future<Output = Result<AgentAnswer, AgentError>> + Send;

    /// ProcessTeepMessage: a message from the TAM at `tam_uri`. The answer is the message
    /// to POST back to the same URI, or `None` (or an empty message) when the exchange is over.
    fn process_teep_message(
        &self,
        tam_uri: &str,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, AgentError>> + Send;

    /// RequestPolicyCheck: may the Agent want to contact a TAM? Called repeatedly until it
    /// answers [`AgentAnswer::Nothing`], one TAM per answer. `new_check` is true on the
    /// first call of a check: the Agent then starts a fresh round (one an earlier Broker left
    /// midway is forgotten), and otherwise goes on naming the TAMs not named yet.
    fn request_policy_check(
        &self,
        new_check: bool,
    ) -> impl Future<Output = Result<AgentAnswer, AgentError>> + Send;

    /// ProcessError: the exchange with `tam_uri` failed below TEEP. The Agent may answer
    /// with another TAM to try.
    fn process_error(
        &self,
        tam_uri: &str,
        error: &TransportError,
    ) -> impl Future<Output = Result<AgentAnswer, AgentError>> + Send;

    /// The TAs installed in this TEE (for apps).
    fn list_tas(&self) -> impl Future<Output = Result<Vec<TaInfo>, AgentError>> + Send;

    /// Run an installed TA on `input` and return its output (for apps).
    fn invoke_ta(
        &self,
        component_id: &ComponentId,
        input: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, AgentError>> + Send;

    /// Passport model, step 1: Evidence over a Verifier's challenge `nonce`, which the
    /// Broker takes to the Verifier. An Agent not in passport mode refuses (the default).
    fn passport_evidence(
        &self,
        nonce: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, AgentError>> + Send {
        drop(nonce);
        async { Err(AgentError::Refused("no passport attestation".into())) }
    }

    /// Passport model, step 2: the Verifier's Attestation Result for that Evidence, which
    /// the Agent checks and keeps to present to TAMs. Refused by default.
    fn store_passport(&self, ear: Vec<u8>) -> impl Future<Output = Result<(), AgentError>> + Send {
        drop(ear);
        async { Err(AgentError::Refused("no passport attestation".into())) }
    }
}
