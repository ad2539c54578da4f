//! The Broker: turns an app request or a policy-check tick into Agent calls and TEEP/HTTP
//! exchanges (TEEP/HTTP §3), relaying bytes it never reads.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::agent::{Agent, AgentAnswer, AgentError, ComponentId, TaInfo, TaRequest};
use crate::http::{BuildError, HttpConfig, TeepHttp, TransportError};

/// Broker settings.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// The TEEP/HTTP client's settings.
    pub http: HttpConfig,
    /// Most messages POSTed in one exchange (empty POST included). TEEP needs three or
    /// four (empty, QueryResponse, Success/Error); the bound stops a TAM and Agent from
    /// ping-ponging forever.
    pub max_messages_per_exchange: usize,
    /// Most exchanges for one trigger: the first, plus the TAMs the Agent names in
    /// ProcessError answers after failures.
    pub max_exchanges_per_trigger: usize,
    /// Most RequestPolicyCheck calls in one policy check (each names at most one TAM).
    pub max_policy_rounds: usize,
    /// Time between two policy checks of [`Broker::run_policy_checks`].
    pub policy_check_interval: Duration,
    /// The TAM URI hint given to the Agent in RequestTA when the app names none (the
    /// device's configured TAM). Still only a hint: the Broker contacts the Agent's choice.
    pub default_tam_uri: Option<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            max_messages_per_exchange: 16,
            max_exchanges_per_trigger: 4,
            max_policy_rounds: 16,
            policy_check_interval: Duration::from_secs(3600),
            default_tam_uri: None,
        }
    }
}

/// What a trigger achieved.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// The Agent had nothing to do: no TAM was contacted.
    NothingToDo,
    /// An exchange ran to its end (after `exchanges - 1` failed ones).
    Completed {
        /// Exchanges started, the successful one included.
        exchanges: usize,
    },
}

/// What one policy check did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
pub struct PolicyReport {
    /// TAMs whose exchange completed.
    pub completed: usize,
    /// TAMs that could not be reached (the Agent was told through ProcessError).
    pub failed: usize,
}

/// Why a trigger failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The last exchange failed below TEEP and the Agent named no other TAM.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// The Agent failed (the exchange was dropped; nothing was reported to the TAM).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The Agent kept naming TAMs after failures beyond [`BrokerConfig::max_exchanges_per_trigger`].
    #[error("more than {limit} exchanges for one trigger")]
    TooManyExchanges {
        /// The configured limit.
        limit: usize,
    },
    /// The Agent kept answering RequestPolicyCheck beyond [`BrokerConfig::max_policy_rounds`].
    #[error("policy check did not end within {limit} rounds")]
    PolicyCheckUnbounded {
        /// The configured limit.
        limit: usize,
    },
}

/// How one exchange failed: below TEEP (goes to ProcessError) or in the Agent (does not).
enum ExchangeError {
    Transport(TransportError),
    Agent(AgentError),
}

impl From<TransportError> for ExchangeError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}

/// The TEEP Broker for one TEE (one Agent).
///
/// Exchanges run one at a time (a trigger waits for the one in progress), so the Agent
/// sees at most one session and at most one outstanding HTTP request. List and invoke do
/// not wait for exchanges.
#[derive(Debug)]
pub struct Broker<A> {
    agent: A,
    http: TeepHttp,
    cfg: BrokerConfig,
    exchange: Mutex<()>,
}

impl<A: Agent> Broker<A> {
    /// A Broker talking to `agent`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (see [`BuildError`]).
    pub fn new(agent: A, cfg: BrokerConfig) -> Result<Self, BuildError> {
        Ok(Self {
            agent,
            http: TeepHttp::new(cfg.http.clone())?,
            cfg,
            exchange: Mutex::new(()),
        })
    }

    /// The Agent this Broker talks to.
    pub fn agent(&self) -> &A {
        &self.agent
    }

    /// The settings in use.
    pub fn config(&self) -> &BrokerConfig {
        &self.cfg
    }

    /// An app needs a TA: RequestTA, then the exchange the Agent asks for.
    ///
    /// # Errors
    /// See [`BrokerError`].
    pub async fn request_ta(&self, mut request: TaRequest) -> Result<Outcome, BrokerError> {
        if request.tam_uri.is_none() {
            request.tam_uri.clone_from(&self.cfg.default_tam_uri);
        }
        let _one_at_a_time = self.exchange.lock().await;
        let answer = self.agent.request_ta(request).await?;
        self.drive(answer).await
    }

    /// An app no longer needs a TA: UnrequestTA, then the exchange the Agent asks for.
    ///
    /// # Errors
    /// See [`BrokerError`].
    pub async fn unrequest_ta(&self, component_id: ComponentId) -> Result<Outcome, BrokerError> {
        let _one_at_a_time = self.exchange.lock().await;
        let answer = self.agent.unrequest_ta(component_id).await?;
        self.drive(answer).await
    }

    /// One policy check: RequestPolicyCheck until the Agent answers nothing, running each
    /// exchange it asks for. A TAM that cannot be reached is counted in
    /// [`PolicyReport::failed`] and does not stop the check.
    ///
    /// # Errors
    /// An Agent failure, or more than [`BrokerConfig::max_policy_rounds`] answers.
    pub async fn policy_check(&self) -> Result<PolicyReport, BrokerError> {
        let mut report = PolicyReport::default();
        for round in 0..self.cfg.max_policy_rounds {
            // Locked per round, so that apps' requests can run between two TAMs.
            let _one_at_a_time = self.exchange.lock().await;
            let answer = self.agent.request_policy_check(round == 0).await?;
            if answer == AgentAnswer::Nothing {
                return Ok(report);
            }
            match self.drive(answer).await {
                Ok(_) => report.completed += 1,
                Err(BrokerError::Agent(e)) => return Err(e.into()),
                Err(e) => {
                    warn!(error = %e, "policy check: TAM not reached");
                    report.failed += 1;
                }
            }
        }
        Err(BrokerError::PolicyCheckUnbounded {
            limit: self.cfg.max_policy_rounds,
        })
    }

    /// Runs [`policy_check`](Self::policy_check) at once and then every
    /// [`BrokerConfig::policy_check_interval`], until `shutdown` completes. Failures are
    /// logged; the next tick tries again.
    pub async fn run_policy_checks(&self, shutdown: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval(self.cfg.policy_check_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => match self.policy_check().await {
                    Ok(report) => info!(completed = report.completed, failed = report.failed, "policy check"),
                    Err(e) => warn!(error = %e, "policy check failed"),
                },
            }
        }
    }

    /// The installed TAs, as the Agent reports them.
    ///
    /// # Errors
    /// The Agent's.
    pub async fn list_tas(&self) -> Result<Vec<TaInfo>, AgentError> {
        self.agent.list_tas().await
    }

    /// Runs a TA in the TEE.
    ///
    /// # Errors
    /// The Agent's.
    pub async fn invoke_ta(
        &self,
        component_id: &ComponentId,
        input: Vec<u8>,
    ) -> Result<Vec<u8>, AgentError> {
        self.agent.invoke_ta(component_id, input).await
    }

    /// Runs the exchange an answer asks for; after a transport failure, tells the Agent
    /// (ProcessError) and follows its new answer. Called with the exchange lock held.
    async fn drive(&self, mut answer: AgentAnswer) -> Result<Outcome, BrokerError> {
        let limit = self.cfg.max_exchanges_per_trigger;
        let mut exchanges = 0;
        let mut failure = None;
        loop {
            let AgentAnswer::Contact { tam_uri, message } = answer else {
                return match failure {
                    None => Ok(Outcome::NothingToDo),
                    Some(e) => Err(BrokerError::Transport(e)),
                };
            };
            if exchanges == limit {
                return Err(BrokerError::TooManyExchanges { limit });
            }
            exchanges += 1;
            match self.exchange(&tam_uri, message).await {
                Ok(()) => return Ok(Outcome::Completed { exchanges }),
                Err(ExchangeError::Agent(e)) => return Err(e.into()),
                Err(ExchangeError::Transport(e)) => {
                    answer = self.agent.process_error(&tam_uri, &e).await?;
                    failure = Some(e);
                }
            }
        }
    }

    /// One session with one TAM (TEEP/HTTP §3.2-3.3): POST, hand a non-empty answer to the
    /// Agent, POST its reply; an empty answer, or no reply, ends it.
    async fn exchange(&self, tam_uri: &str, first: Option<Vec<u8>>) -> Result<(), ExchangeError> {
        let url = self.http.check_uri(tam_uri)?;
        info!(tam = %url, "teep/http exchange starts");
        let limit = self.cfg.max_messages_per_exchange;
        let mut outgoing = first.filter(|m| !m.is_empty());
        // The Agent's first message is only ever an unsolicited QueryResponse (draft §11).
        let mut unsolicited = outgoing.is_some();
        for _ in 0..limit {
            let Some(incoming) = self.http.post(&url, outgoing.as_deref()).await? else {
                if std::mem::take(&mut unsolicited) {
                    // No content for an unsolicited QueryResponse: the TAM dropped it (it
                    // issued no token it answers, §5) or had nothing to say. Either way
                    // the app's request is unserved, so start one ordinary session: its
                    // QueryRequest (with a token) also ends the Agent's §11 condition 1.
                    info!(tam = %url, "teep/http unsolicited query-response got no content; new session with an empty post");
                    outgoing = None;
                    continue;
                }
                info!(tam = %url, "teep/http exchange ends: no content");
                return Ok(());
            };
            unsolicited = false;
            let reply = self
                .agent
                .process_teep_message(tam_uri, incoming)
                .await
                .map_err(ExchangeError::Agent)?;
            match reply.filter(|m| !m.is_empty()) {
                Some(m) => outgoing = Some(m),
                None => {
                    info!(tam = %url, "teep/http exchange ends: agent has no reply");
                    return Ok(());
                }
            }
        }
        Err(TransportError::ExchangeTooLong { limit }.into())
    }
}
