//! An in-memory [`Agent`] that answers from a script and records every call: for tests of
//! the Broker and of what sits on top of it (the CLI, the local API).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::agent::{Agent, AgentAnswer, AgentError, ComponentId, TaInfo, TaRequest};
use crate::http::TransportError;

/// One call the Broker made, in order. It is also what [`crate::ipc`] sends to the TEE
/// process: one request frame is one `AgentCall` in CBOR.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AgentCall {
    /// RequestTA.
    RequestTa(TaRequest),
    /// UnrequestTA.
    UnrequestTa(ComponentId),
    /// ProcessTeepMessage.
    ProcessTeepMessage {
        /// The session's TAM.
        tam_uri: String,
        /// The bytes relayed from the TAM.
        #[serde(with = "crate::ipc::bstr")]
        message: Vec<u8>,
    },
    /// RequestPolicyCheck.
    RequestPolicyCheck {
        /// The first call of a policy check (the Agent starts a fresh round).
        new_check: bool,
    },
    /// ProcessError.
    ProcessError {
        /// The TAM that failed.
        tam_uri: String,
        /// Why.
        error: TransportError,
    },
    /// list TAs.
    ListTas,
    /// invoke a TA.
    InvokeTa {
        /// Which.
        component_id: ComponentId,
        /// Its input.
        #[serde(with = "crate::ipc::bstr")]
        input: Vec<u8>,
    },
    /// Passport Evidence over a Verifier's challenge.
    PassportEvidence {
        /// The Verifier's challenge.
        #[serde(with = "crate::ipc::bstr")]
        nonce: Vec<u8>,
    },
    /// Keep a passport Attestation Result.
    StorePassport {
        /// The Verifier's EAR.
        #[serde(with = "crate::ipc::bstr")]
        ear: Vec<u8>,
    },
}

type TaBehaviour = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

#[derive(Default)]
struct Script {
    request_ta: VecDeque<Result<AgentAnswer, AgentError>>,
    unrequest_ta: VecDeque<Result<AgentAnswer, AgentError>>,
    policy_check: VecDeque<Result<AgentAnswer, AgentError>>,
    process_error: VecDeque<Result<AgentAnswer, AgentError>>,
    replies: VecDeque<Result<Option<Vec<u8>>, AgentError>>,
    tas: Vec<(TaInfo, TaBehaviour)>,
    calls: Vec<AgentCall>,
}

/// An Agent that gives queued answers, one per call of each kind; when a queue is empty
/// it answers nothing (`AgentAnswer::Nothing`, no reply).
#[derive(Default)]
pub struct ScriptedAgent {
    script: Mutex<Script>,
}

impl core::fmt::Debug for ScriptedAgent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScriptedAgent")
            .field("calls", &self.lock().calls.len())
            .finish_non_exhaustive()
    }
}

impl ScriptedAgent {
    /// An Agent with nothing scripted.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        // A test that panicked while holding the lock leaves a usable script behind.
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the answer to the next RequestTA.
    #[must_use]
    pub fn on_request_ta(self, answer: Result<AgentAnswer, AgentError>) -> Self {
        self.lock().request_ta.push_back(answer);
        self
    }

    /// Queues the answer to the next UnrequestTA.
    #[must_use]
    pub fn on_unrequest_ta(self, answer: Result<AgentAnswer, AgentError>) -> Self {
        self.lock().unrequest_ta.push_back(answer);
        self
    }

    /// Queues the answer to the next RequestPolicyCheck.
    #[must_use]
    pub fn on_policy_check(self, answer: Result<AgentAnswer, AgentError>) -> Self {
        self.lock().policy_check.push_back(answer);
        self
    }

    /// Queues the answer to the next ProcessError.
    #[must_use]
    pub fn on_process_error(self, answer: Result<AgentAnswer, AgentError>) -> Self {
        self.lock().process_error.push_back(answer);
        self
    }

    /// Queues the answer to the next ProcessTeepMessage.
    #[must_use]
    pub fn reply(self, answer: Result<Option<Vec<u8>>, AgentError>) -> Self {
        self.lock().replies.push_back(answer);
        self
    }

    /// An installed TA whose invocation computes `behaviour(input)`.
    #[must_use]
    pub fn with_ta(
        self,
        info: TaInfo,
        behaviour: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        self.lock().tas.push((info, Box::new(behaviour)));
        self
    }

    /// Every call so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<AgentCall> {
        self.lock().calls.clone()
    }

    fn record(&self, call: AgentCall) -> MutexGuard<'_, Script> {
        let mut script = self.lock();
        script.calls.push(call);
        script
    }
}

fn next_answer(
    queue: &mut VecDeque<Result<AgentAnswer, AgentError>>,
) -> Result<AgentAnswer, AgentError> {
    queue.pop_front().unwrap_or(Ok(AgentAnswer::Nothing))
}

impl Agent for ScriptedAgent {
    async fn request_ta(&self, request: TaRequest) -> Result<AgentAnswer, AgentError> {
        next_answer(&mut self.record(AgentCall::RequestTa(request)).request_ta)
    }

    async fn unrequest_ta(&self, component_id: ComponentId) -> Result<AgentAnswer, AgentError> {
        next_answer(
            &mut self
                .record(AgentCall::UnrequestTa(component_id))
                .unrequest_ta,
        )
    }

    async fn process_teep_message(
        &self,
        tam_uri: &str,
        message: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, AgentError> {
        let call = AgentCall::ProcessTeepMessage {
            tam_uri: tam_uri.to_owned(),
            message,
        };
        self.record(call).replies.pop_front().unwrap_or(Ok(None))
    }

    async fn request_policy_check(&self, new_check: bool) -> Result<AgentAnswer, AgentError> {
        next_answer(
            &mut self
                .record(AgentCall::RequestPolicyCheck { new_check })
                .policy_check,
        )
    }

    async fn process_error(
        &self,
        tam_uri: &str,
        error: &TransportError,
    ) -> Result<AgentAnswer, AgentError> {
        let call = AgentCall::ProcessError {
            tam_uri: tam_uri.to_owned(),
            error: error.clone(),
        };
        next_answer(&mut self.record(call).process_error)
    }

    async fn list_tas(&self) -> Result<Vec<TaInfo>, AgentError> {
        let script = self.record(AgentCall::ListTas);
        Ok(script.tas.iter().map(|(info, _)| info.clone()).collect())
    }

    async fn invoke_ta(
        &self,
        component_id: &ComponentId,
        input: Vec<u8>,
    ) -> Result<Vec<u8>, AgentError> {
        let call = AgentCall::InvokeTa {
            component_id: component_id.clone(),
            input: input.clone(),
        };
        let script = self.record(call);
        let (_, behaviour) = script
            .tas
            .iter()
            .find(|(info, _)| &info.component_id == component_id)
            .ok_or_else(|| AgentError::UnknownTa(component_id.clone()))?;
        Ok(behaviour(&input))
    }
}
